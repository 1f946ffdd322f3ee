"""Fréchet Video Distance, exact to the reference implementation (google-research ``frechet_video_distance``).

    >>> import zoo.metrics.fvd
    >>> result = zoo.metrics.fvd.fvd("real_videos/", "fake_videos/", frames=16)     # folders, arrays or stats files
    >>> result.fvd, result.num_real, result.num_fake
    >>> zoo.metrics.fvd.fvd(real_uint8, fake_uint8)                                  # (N, T, H, W, 3) tensors/arrays

The reference, step by step, and where each step lives here:

1. videos ``(N, T, H, W, 3)`` uint8; each frame resized to 224x224 with TF1's legacy
   ``tf.image.resize_bilinear`` (``align_corners=False, half_pixel_centers=False``):
   :func:`zoo.metrics.tf_resize.resize_bilinear_tf1`, bit-identical to TensorFlow's kernel. No crop.
2. ``2. * x / 255. - 1``: :func:`preprocess`.
3. TF-Hub ``deepmind/i3d-kinetics-400/1`` = DeepMind's ``rgb_scratch`` = ``i3d_inception_k400_rgb``; the
   embedding is ``RGB/inception_i3d/Mean:0``, the 400 logits averaged over time before the softmax (the
   model's "Logits" endpoint).
4. tfgan's ``frechet_classifier_distance_from_activations``: float64, covariance divided by N - 1, and
   ``trace(sqrtm(sigma sigma_w))`` from symmetric square roots taken by SVD, singular values below 1e-10
   kept as they are (:func:`frechet_distance`).

Unlike the reference, N need not be a multiple of 16. The clip is the first ``frames`` frames of each
video, every ``stride``-th (StyleGAN-V's ``fvd2048_128f_subsample8f`` is ``frames=16, stride=8``).
Statistics (mu, sigma, n, protocol) save to a safetensors file and load back; the protocol recorded in
them (frames, stride, model weights, precision, ...) must match to compare two sets.
"""
from __future__ import annotations

import json
import math
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from zoo.metrics.tf_resize import resize_bilinear_tf1

MODEL = "i3d_inception_k400_rgb"
SIZE = 224
STATS_FORMAT = "quovadis.fvd_stats.v1"
ON_ERROR = ("fail", "skip")


class FVDError(ValueError):
    """Bad FVD input: unreadable or short videos, too few videos, non-finite features, mismatched stats."""


# ------------------------------------------------------------------------------------------------ formula
def _symmetric_sqrt(mat: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """tfgan's ``_symmetric_matrix_square_root``: ``u diag(s') v^T`` with ``s' = sqrt(s)``, or ``s`` where
    ``s < eps`` (sqrt is unstable near 0)."""
    u, s, vh = torch.linalg.svd(mat)
    si = torch.where(s < eps, s, s.sqrt())
    return (u * si) @ vh


def trace_sqrt_product(sigma: torch.Tensor, sigma_v: torch.Tensor) -> torch.Tensor:
    """``trace(sqrtm(sigma @ sigma_v))`` the tfgan way: ``trace(sqrt(sqrt(sigma) sigma_v sqrt(sigma)))``."""
    sqrt_sigma = _symmetric_sqrt(sigma)
    return torch.trace(_symmetric_sqrt(sqrt_sigma @ (sigma_v @ sqrt_sigma)))


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """``|mu1 - mu2|^2 + tr(sigma1 + sigma2) - 2 tr(sqrtm(sigma1 sigma2))``, in float64, as tfgan."""
    mu1, mu2, sigma1, sigma2 = (torch.as_tensor(np.asarray(a), dtype=torch.float64) for a in (mu1, mu2, sigma1, sigma2))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise FVDError(f"statistics differ in size: mu {tuple(mu1.shape)} vs {tuple(mu2.shape)}, "
                       f"sigma {tuple(sigma1.shape)} vs {tuple(sigma2.shape)}")
    trace = torch.trace(sigma1 + sigma2) - 2.0 * trace_sqrt_product(sigma1, sigma2)
    return float(trace + ((mu1 - mu2) ** 2).sum())


# ------------------------------------------------------------------------------------------------ stats
@dataclass
class FVDStats:
    """Mean and unbiased covariance of ``n`` embeddings, with the protocol that produced them."""
    mu: np.ndarray
    sigma: np.ndarray
    n: int
    protocol: dict = field(default_factory=dict)

    @classmethod
    def from_features(cls, features, protocol: dict | None = None) -> "FVDStats":
        x = torch.as_tensor(np.asarray(features), dtype=torch.float64)
        if x.dim() != 2:
            raise FVDError(f"features must be (N, D), got shape {tuple(x.shape)}")
        if x.shape[0] < 2:
            raise FVDError(f"FVD needs at least 2 videos per side (the covariance divides by N - 1), got {x.shape[0]}")
        if not torch.isfinite(x).all():
            bad = (~torch.isfinite(x)).any(1).nonzero().flatten().tolist()
            raise FVDError(f"non-finite features for videos {bad[:10]} (of {x.shape[0]}); check those inputs")
        mu = x.mean(0)
        centered = x - mu
        sigma = centered.T @ centered / (x.shape[0] - 1)
        return cls(mu.numpy(), sigma.numpy(), int(x.shape[0]), dict(protocol or {}))

    def save(self, path) -> Path:
        """Write a safetensors file (``mu``, ``sigma`` in float64; n and protocol in the metadata), atomically."""
        from safetensors.numpy import save_file

        from inflate.atomic import atomic_path
        path = Path(path)
        meta = {"format": STATS_FORMAT, "n": str(self.n), "protocol": json.dumps(self.protocol, sort_keys=True)}
        with atomic_path(path) as tmp:
            save_file({"mu": np.ascontiguousarray(self.mu, np.float64),
                       "sigma": np.ascontiguousarray(self.sigma, np.float64)}, str(tmp), metadata=meta)
        return path

    @classmethod
    def load(cls, path) -> "FVDStats":
        from safetensors import safe_open
        path = Path(path)
        try:
            with safe_open(str(path), "np") as f:
                meta = f.metadata() or {}
                if meta.get("format") != STATS_FORMAT:
                    raise FVDError(f"{path} is not an FVD statistics file (written by --save-stats)")
                mu, sigma = f.get_tensor("mu"), f.get_tensor("sigma")
        except FVDError:
            raise
        except Exception as e:
            raise FVDError(f"{path} is not an FVD statistics file (written by --save-stats): {e}") from e
        return cls(mu, sigma, int(meta["n"]), json.loads(meta["protocol"]))


def is_stats_file(path) -> bool:
    from zoo.data.video_folder import ARRAY_EXTENSIONS, VIDEO_EXTENSIONS
    path = Path(path)
    if not path.is_file() or path.suffix.lower() in ARRAY_EXTENSIONS + VIDEO_EXTENSIONS:
        return False
    from safetensors import safe_open
    try:
        with safe_open(str(path), "np") as f:
            return (f.metadata() or {}).get("format") == STATS_FORMAT
    except Exception:
        return False


def check_protocols(a: dict, b: dict, names=("REAL", "FAKE")) -> None:
    """Refuse to compare statistics from different protocols (frames, stride, weights, precision, ...)."""
    diff = {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}
    if diff:
        lines = "; ".join(f"{k}: {names[0]} {va!r} vs {names[1]} {vb!r}" for k, (va, vb) in diff.items())
        raise FVDError(f"{names[0]} and {names[1]} were computed under different protocols ({lines}); recompute "
                       f"one side with the other's settings (e.g. --frames/--stride/--weights)")


def fvd_from_stats(real: FVDStats, fake: FVDStats) -> float:
    check_protocols(real.protocol, fake.protocol)
    return frechet_distance(real.mu, real.sigma, fake.mu, fake.sigma)


def fvd_from_features(real, fake) -> float:
    """FVD between two ``(N, 400)`` embedding sets (float64, unbiased covariance, tfgan's sqrtm)."""
    a, b = FVDStats.from_features(real), FVDStats.from_features(fake)
    return frechet_distance(a.mu, a.sigma, b.mu, b.sigma)


# ------------------------------------------------------------------------------------------------ pipeline
def preprocess(videos: torch.Tensor, size: int = SIZE) -> torch.Tensor:
    """uint8 ``(N, T, H, W, 3)`` -> float32 ``(N, 3, T, size, size)``: TF1 legacy bilinear resize, no crop,
    ``2 * x / 255 - 1`` (the reference's order of operations)."""
    if videos.dim() != 5 or videos.shape[-1] != 3:
        raise FVDError(f"videos must be (N, T, H, W, 3) uint8, got {videos.dtype} {tuple(videos.shape)}")
    x = resize_bilinear_tf1(videos, (size, size))
    x = x.mul_(2.0).div_(255.0).sub_(1.0) if x.data_ptr() != videos.data_ptr() else 2.0 * x / 255.0 - 1.0
    return x.permute(0, 4, 1, 2, 3)  # (N, 3, T, H, W) in channels_last_3d memory, as the fused model wants


def clip_indices(frames: int, stride: int = 1) -> list[int]:
    if frames < 1 or stride < 1:
        raise FVDError(f"--frames and --stride must be >= 1, got {frames} and {stride}")
    return list(range(0, (frames - 1) * stride + 1, stride))


class _Clips(torch.utils.data.Dataset):
    """The protocol's clip of each video, preprocessed; a failure comes back as its message."""

    def __init__(self, videos, indices, size):
        self.videos, self.indices, self.size = videos, indices, size

    def __len__(self):
        return len(self.videos)

    def __getitem__(self, i):
        video = self.videos[i]
        need = self.indices[-1] + 1
        try:
            n = video.num_frames()
            if n < need:
                return i, None, f"{video.path}{'' if video.kind != 'array' else f'[{video.index}]'}: {n} frames, " \
                                f"the protocol needs {need} (--frames {len(self.indices)} x --stride " \
                                f"{self.indices[1] - self.indices[0] if len(self.indices) > 1 else 1})"
            clip = video.read(self.indices)
        except Exception as e:  # any decoding failure: reported with the file's name
            return i, None, f"{video.path}: {e}"
        return i, preprocess(clip[None], self.size)[0], None


def _collate(items):
    return items


@dataclass
class FVDResult:
    fvd: float
    num_real: int
    num_fake: int
    frames: int
    stride: int
    protocol: dict
    skipped_real: list = field(default_factory=list)
    skipped_fake: list = field(default_factory=list)
    real_stats: FVDStats | None = None
    fake_stats: FVDStats | None = None
    real_embeddings: "Embeddings | None" = None
    fake_embeddings: "Embeddings | None" = None

    def to_dict(self) -> dict:
        return {"fvd": self.fvd, "num_real": self.num_real, "num_fake": self.num_fake, "frames": self.frames,
                "stride": self.stride, "skipped_real": len(self.skipped_real), "skipped_fake": len(self.skipped_fake),
                "protocol": self.protocol}


class FVDModel:
    """The embedding network of the protocol: I3D (rgb_scratch) Logits, on ``device``.

    Default: the fused model in fp32 (BatchNorm folded; the parity test holds it to the TensorFlow
    reference within 1e-4 on features). ``exact=True``: the unfused fp32 model. ``precision="bf16"`` is
    faster but moves FVD (see the README's shortcut table); it is recorded in the protocol.
    """

    def __init__(self, weights=None, device=None, exact: bool = False, precision: str = "fp32", model=None):
        import zoo
        from zoo.models.inference import InferenceModel
        net = model if model is not None else zoo.load(MODEL, weights=weights)
        self.runner = InferenceModel(net, device=device, precision=precision, exact=exact)
        self.weights_id = _weights_id(weights, net if model is None else None)

    def describe(self) -> str:
        return self.runner.describe()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Preprocessed clips ``(B, 3, T, 224, 224)`` -> embeddings ``(B, 400)`` float32."""
        return self.runner(x)


def _weights_id(weights, net) -> str:
    """The sha256 of the weights file (so stats from ``--weights FILE`` and from the zoo cache compare)."""
    from zoo.weights.resolve import resolve
    from zoo.weights.files import sha256_of
    entry = getattr(net, "zoo_entry", None)
    if weights is None and entry is not None:
        weights = resolve(entry)
    return "sha256:" + sha256_of(Path(weights)) if weights is not None else "custom"


def protocol_for(model: FVDModel, frames: int, stride: int) -> dict:
    return {"metric": "fvd", "embedding": f"{MODEL}/Logits", "weights": model.weights_id, "frames": frames,
            "stride": stride, "size": SIZE, "resize": "tf1_bilinear_legacy", "crop": "none",
            "precision": model.runner.precision}


def _as_videos(src):
    """A source -> list of :class:`zoo.data.video_folder.Video`-like items, plus a display name."""
    from zoo.data.video_folder import Video, list_videos
    if isinstance(src, (np.ndarray, torch.Tensor)):
        arr = torch.as_tensor(src)
        if arr.dim() != 5 or arr.shape[-1] != 3 or arr.dtype != torch.uint8:
            raise FVDError(f"videos must be a uint8 array (N, T, H, W, 3), got {arr.dtype} {tuple(arr.shape)}; "
                           "for floats in [0, 1] pass (x * 255).round().to(torch.uint8)")
        return [_TensorVideo(arr, i) for i in range(arr.shape[0])]
    return list_videos(src)


class _TensorVideo:
    kind = "array"

    def __init__(self, arr, index):
        self.arr, self.index, self.path, self.name = arr, index, "<array>", f"video_{index:06d}"

    def num_frames(self):
        return int(self.arr.shape[1])

    def read(self, indices):
        return self.arr[self.index, indices]


@dataclass
class Embeddings:
    features: torch.Tensor       # (N, 400) float32
    names: list                  # the videos' names, in order
    skipped: list                # messages of the videos skipped (unreadable or too short)
    protocol: dict


def embed_videos(src, model: FVDModel, *, frames: int = 16, stride: int = 1, num_videos: int | None = None,
                 batch_size: int = 8, workers: int | None = None, on_error: str = "fail", name: str = "videos",
                 progress: bool = True) -> Embeddings:
    """The protocol's I3D embedding of each video of ``src`` (the first ``num_videos`` usable ones)."""
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
    protocol = protocol_for(model, frames, stride)
    videos = _as_videos(src)
    if num_videos is not None and num_videos < 2:
        raise FVDError(f"--num-videos must be >= 2, got {num_videos}")
    if len(videos) < 2:
        raise FVDError(f"{name}: FVD needs at least 2 videos per side, {src if not hasattr(src, 'shape') else 'the array'}"
                       f" holds {len(videos)}")
    indices = clip_indices(frames, stride)
    dataset = _Clips(videos, indices, SIZE)
    if workers is None:
        workers = 0 if isinstance(videos[0], _TensorVideo) else min(4, os.cpu_count() or 1, len(videos))
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=workers, collate_fn=_collate,
                                         pin_memory=model.runner.device.type == "cuda")
    from tqdm.auto import tqdm
    want = num_videos or len(videos)
    bar = tqdm(total=want, unit="video", desc=f"FVD {name}", disable=not progress, file=sys.stderr)
    feats, names, skipped = [], [], []
    for items in loader:
        ok = []
        for i, clip, err in items:
            if err is not None:
                if on_error == "fail":
                    raise FVDError(f"{name}: {err}. Use --on-error skip to skip such videos (they are named and "
                                   "counted)")
                warnings.warn(f"FVD {name}: skipping {err}", RuntimeWarning, stacklevel=2)
                skipped.append(err)
            else:
                ok.append((i, clip))
        ok = ok[: max(0, want - len(feats))]
        if ok:
            emb = model(torch.stack([c for _, c in ok]))
            feats.extend(emb.cpu())
            names.extend(videos[i].name for i, _ in ok)
            bar.update(len(ok))
        if len(feats) >= want:
            break
    bar.close()
    if num_videos is not None and len(feats) < num_videos:
        raise FVDError(f"{name}: only {len(feats)} usable videos ({len(skipped)} skipped), --num-videos "
                       f"{num_videos} asked")
    if len(feats) < 2:
        raise FVDError(f"{name}: FVD needs at least 2 videos per side, got {len(feats)} usable "
                       f"({len(skipped)} skipped)")
    x = torch.stack(feats)
    if not torch.isfinite(x).all():
        bad = [names[j] for j in (~torch.isfinite(x)).any(1).nonzero().flatten().tolist()]
        raise FVDError(f"{name}: non-finite I3D features for {len(bad)} videos ({', '.join(bad[:5])}); "
                       "with --precision bf16 try fp32, else check those videos")
    return Embeddings(x, names, skipped, protocol)


def compute_stats(src, model: FVDModel, **kwargs) -> tuple[FVDStats, list[str]]:
    """Embed the clips of ``src`` (see :func:`embed_videos`); their statistics and the skipped videos."""
    emb = embed_videos(src, model, **kwargs)
    return FVDStats.from_features(emb.features, emb.protocol), emb.skipped


def fvd(real, fake, *, frames: int = 16, stride: int = 1, num_videos: int | None = None, weights=None,
        device=None, batch_size: int = 8, exact: bool = False, precision: str = "fp32", workers: int | None = None,
        on_error: str = "fail", progress: bool = False, model: FVDModel | None = None) -> FVDResult:
    """FVD between ``real`` and ``fake``: each a folder of videos, a folder of frame folders, an
    ``.npy``/``.npz`` file, a stats file from :meth:`FVDStats.save`, an :class:`FVDStats`, or a uint8
    ``(N, T, H, W, 3)`` tensor/array."""
    sides = []
    for src in (real, fake):
        if isinstance(src, FVDStats):
            sides.append(src)
        elif isinstance(src, (str, os.PathLike)) and is_stats_file(src):
            sides.append(FVDStats.load(src))
        else:
            sides.append(None)
    if model is None and any(s is None for s in sides):
        model = FVDModel(weights=weights, device=device, exact=exact, precision=precision)
    if model is not None:  # a stats file must match the protocol of this run: check before any embedding
        expected = protocol_for(model, frames, stride)
        for s, label in zip(sides, ("REAL", "FAKE")):
            if s is not None:
                check_protocols(s.protocol, expected, (f"{label} stats", "this run"))
    skipped, embeddings = [[], []], [None, None]
    for k, (src, label) in enumerate(zip((real, fake), ("REAL", "FAKE"))):
        if sides[k] is None:
            emb = embed_videos(src, model, frames=frames, stride=stride, num_videos=num_videos, batch_size=batch_size,
                               workers=workers, on_error=on_error, name=label, progress=progress)
            sides[k], skipped[k], embeddings[k] = FVDStats.from_features(emb.features, emb.protocol), emb.skipped, emb
    check_protocols(sides[0].protocol, sides[1].protocol)
    value = frechet_distance(sides[0].mu, sides[0].sigma, sides[1].mu, sides[1].sigma)
    if not math.isfinite(value):
        raise FVDError(f"FVD is {value}; the statistics hold non-finite values")
    proto = sides[0].protocol
    return FVDResult(value, sides[0].n, sides[1].n, proto.get("frames", frames), proto.get("stride", stride), proto,
                     skipped[0], skipped[1], sides[0], sides[1], embeddings[0], embeddings[1])
