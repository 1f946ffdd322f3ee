"""How much each shortcut that PyTorch FVD ports take moves FVD, on the same videos and the real weights.

Reference: quovadis' FVD (TF1 legacy bilinear resize to 224x224, no crop, ``2x/255 - 1``, I3D rgb_scratch
with BatchNorm eps 1e-3 in fp32, unbiased covariance). Each row changes one thing:

* torch half-pixel resize: ``F.interpolate(..., "bilinear", align_corners=False)`` instead of TF1's legacy kernel;
* BatchNorm eps 1e-5: PyTorch's default instead of the network's 1e-3;
* centre crop: short side resized to 224 (TF1 kernel), then the centre 224x224, instead of squashing the frame;
* biased covariance: dividing by N instead of N - 1;
* bf16: the fused model in bfloat16.

Videos: decoded H.264 moving-shapes clips (zoo.data.synthetic), 16 frames, cut to 64x96 (non-square, so the
crop matters). REAL: seed 0; FAKE: seed 1 with Gaussian noise (sigma 12) added, a generator's artefacts.

    python benchmarks/fvd_shortcuts.py [--videos 16] [--weights FILE]
"""
from __future__ import annotations

import argparse
import copy
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def videos(n: int, seed: int) -> np.ndarray:
    from zoo.data.decode import read_frames
    from zoo.data.synthetic import make_moving_shapes
    with tempfile.TemporaryDirectory() as d:
        root = make_moving_shapes(d, classes=2, per_class=max(2, (n + 1) // 2), frames=16, size=96, seed=seed)
        files = sorted(Path(root).rglob("*.mp4"))[:n]
        return np.stack([read_frames(p, range(16)).numpy()[:, 16:80] for p in files])


def tf1_resize(x: torch.Tensor) -> torch.Tensor:
    from zoo.metrics.tf_resize import resize_bilinear_tf1
    return resize_bilinear_tf1(x, (224, 224))


def torch_resize(x: torch.Tensor) -> torch.Tensor:
    n, t, h, w, c = x.shape
    y = F.interpolate(x.reshape(n * t, h, w, c).permute(0, 3, 1, 2).float(), size=(224, 224), mode="bilinear",
                      align_corners=False)
    return y.permute(0, 2, 3, 1).reshape(n, t, 224, 224, c)


def crop_resize(x: torch.Tensor) -> torch.Tensor:
    from zoo.metrics.tf_resize import resize_bilinear_tf1
    h, w = x.shape[2:4]
    size = (224, round(w * 224 / h)) if h <= w else (round(h * 224 / w), 224)
    y = resize_bilinear_tf1(x, size)
    top, left = (size[0] - 224) // 2, (size[1] - 224) // 2
    return y[:, :, top:top + 224, left:left + 224]


def embed(runner, x: np.ndarray, resize, batch: int = 4) -> torch.Tensor:
    out = []
    for i in range(0, len(x), batch):
        v = resize(torch.from_numpy(x[i:i + batch]))
        out.append(runner((2.0 * v / 255.0 - 1.0).permute(0, 4, 1, 2, 3)))
    return torch.cat(out).double()


def fvd(a: torch.Tensor, b: torch.Tensor, ddof: int = 1) -> float:
    from zoo.metrics.frechet import frechet_distance
    stats = []
    for x in (a, b):
        c = x - x.mean(0)
        stats += [x.mean(0), c.T @ c / (x.shape[0] - ddof)]
    return frechet_distance(*stats)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=16, help="videos per side")
    ap.add_argument("--weights", default=None, help="i3d_inception_k400_rgb safetensors (default: the test cache)")
    args = ap.parse_args(argv)
    import zoo
    from bench_fvd import default_weights
    from zoo.models.i3d import BatchNormNoScale
    from zoo.models.inference import InferenceModel
    weights = args.weights or default_weights()
    if weights is None:
        print("needs the real weights: --weights FILE, or run tests/test_real_weights.py once to fill tests/.cache")
        return 1
    real = videos(args.videos, 0)
    fake = videos(args.videos, 1).astype(np.float32)
    fake = np.clip(fake + np.random.default_rng(0).normal(0, 12, fake.shape), 0, 255).round().astype(np.uint8)
    net = zoo.load("i3d_inception_k400_rgb", weights=weights)
    eps5 = copy.deepcopy(net)
    for m in eps5.modules():
        if isinstance(m, BatchNormNoScale):
            m.eps = 1e-5
    exact = InferenceModel(net, exact=True)
    print(f"{len(real)} + {len(fake)} videos {real.shape[1:]}, weights {weights}")

    ref = (embed(exact, real, tf1_resize), embed(exact, fake, tf1_resize))
    rows = [("reference (quovadis --exact)", ref, 1)]
    rows.append(("quovadis default (fused fp32)", tuple(embed(InferenceModel(net, precision="fp32"), v, tf1_resize)
                                                         for v in (real, fake)), 1))
    rows.append(("torch half-pixel resize", tuple(embed(exact, v, torch_resize) for v in (real, fake)), 1))
    rows.append(("BatchNorm eps 1e-5", tuple(embed(InferenceModel(eps5, exact=True), v, tf1_resize)
                                              for v in (real, fake)), 1))
    rows.append(("centre crop", tuple(embed(exact, v, crop_resize) for v in (real, fake)), 1))
    rows.append(("biased covariance (/N)", ref, 0))
    rows.append(("bf16 (fused)", tuple(embed(InferenceModel(net, precision="bf16"), v, tf1_resize)
                                        for v in (real, fake)), 1))
    base = fvd(*ref)
    print("\n| variant | FVD | FVD change | feature change (mean abs / mean abs) |")
    print("|---|---|---|---|")
    for label, (a, b), ddof in rows:
        value = fvd(a, b, ddof)
        feat = float(torch.cat([a - ref[0], b - ref[1]]).abs().mean() / torch.cat(ref).abs().mean())
        print(f"| {label} | {value:.3f} | {100 * (value - base) / base:+.3f}% | {100 * feat:.3f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
