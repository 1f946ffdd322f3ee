"""FVD: the TF1 resize, the tfgan formula, statistics files, input errors, and parity with the TensorFlow
reference pipeline (tests/tf_fvd_reference.py) on real decoded videos with the real rgb_scratch weights."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import zoo.metrics.fvd as F
from zoo.metrics import frechet
from zoo.metrics.fvd_stats import FVDStats, is_stats_file
from zoo.data.decode import read_frames
from zoo.data.synthetic import make_moving_shapes
from zoo.metrics.tf_resize import resize_bilinear_tf1

from .tf_fvd_reference import frechet_classifier_distance_from_activations as tfgan_numpy

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = Path(__file__).parent / "tf_fvd_reference.py"
GIF = Path(__file__).parent / "data" / "v_CricketShot_g04_c01_rgb_16f.gif"
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "2"}


# ------------------------------------------------------------------------------------ resize
def test_tf1_resize_is_bit_identical_to_tensorflow(tmp_path):
    rng = np.random.default_rng(0)
    cases = []
    for _ in range(24):
        h, w = rng.integers(1, 50, 2)
        cases.append((rng.integers(0, 256, (2, h, w, 3)).astype(np.uint8), [int(v) for v in rng.integers(1, 70, 2)]))
    cases.append((rng.integers(0, 256, (1, 64, 80, 3)).astype(np.uint8), [224, 224]))
    np.savez(tmp_path / "in.npz", *[c[0] for c in cases])
    (tmp_path / "sizes.json").write_text(json.dumps([c[1] for c in cases]))
    code = ("import json, sys, numpy as np, tensorflow as tf; d = sys.argv[1]; z = np.load(d + '/in.npz'); "
            "s = json.load(open(d + '/sizes.json')); "
            "np.savez(d + '/out.npz', *[tf.compat.v1.image.resize_bilinear(z[f'arr_{i}'], s[i]).numpy() "
            "for i in range(len(s))])")
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, env={**ENV, "TF_CPP_MIN_LOG_LEVEL": "3"},
                   capture_output=True)
    out = np.load(tmp_path / "out.npz")
    for i, (x, size) in enumerate(cases):
        ours = resize_bilinear_tf1(torch.from_numpy(x), size).numpy()
        np.testing.assert_array_equal(ours, out[f"arr_{i}"], err_msg=f"{x.shape} -> {size}")


@given(st.integers(1, 12), st.integers(1, 12), st.integers(1, 4), st.integers(1, 4), st.integers(0, 2**31 - 1))
def test_tf1_resize_integer_downscale_is_subsampling(oh, ow, kh, kw, seed):
    """src = dst * in/out with no half-pixel shift: an integer factor k picks pixels 0, k, 2k, ... exactly
    (torch's half-pixel bilinear averages neighbours instead)."""
    x = torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (oh * kh, ow * kw, 3)).astype(np.uint8))
    torch.testing.assert_close(resize_bilinear_tf1(x, (oh, ow)), x[::kh, ::kw].float(), rtol=0, atol=0)


@given(st.integers(1, 20), st.integers(1, 20), st.integers(1, 40), st.integers(1, 40), st.integers(0, 255))
def test_tf1_resize_keeps_constant_images_and_range(h, w, oh, ow, value):
    x = torch.full((h, w, 3), value, dtype=torch.uint8)
    assert torch.equal(resize_bilinear_tf1(x, (oh, ow)), torch.full((oh, ow, 3), float(value)))
    noise = torch.randint(0, 256, (h, w, 3), dtype=torch.uint8)
    y = resize_bilinear_tf1(noise, (oh, ow))
    assert y.min() >= noise.min() and y.max() <= noise.max()


# ------------------------------------------------------------------------------------ formula
feature_sets = st.tuples(st.integers(2, 12), st.integers(2, 12), st.integers(1, 9), st.integers(0, 2**31 - 1))


@given(feature_sets)
def test_formula_matches_tfgan_written_in_numpy(args):
    n1, n2, d, seed = args
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0, 3, (n1, d)), rng.normal(1, 2, (n2, d))
    assert frechet.fvd_from_features(a, b) == pytest.approx(float(tfgan_numpy(a, b)), rel=1e-9, abs=1e-9)


@given(feature_sets)
def test_formula_laws(args):
    """Symmetric, zero against itself, and the closed form for diagonal covariances."""
    n1, n2, d, seed = args
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0, 3, (n1, d)), rng.normal(1, 2, (n2, d))
    assert frechet.fvd_from_features(a, b) == pytest.approx(frechet.fvd_from_features(b, a), rel=1e-8, abs=1e-8)
    assert abs(frechet.fvd_from_features(a, a)) < 1e-7 * (1 + np.abs(a).max() ** 2)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    v1, v2 = rng.uniform(0.1, 4, d), rng.uniform(0.1, 4, d)
    closed = ((mu1 - mu2) ** 2).sum() + (v1 + v2 - 2 * np.sqrt(v1 * v2)).sum()
    assert frechet.frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(closed, rel=1e-9, abs=1e-9)


def test_covariance_is_unbiased_and_stats_round_trip(tmp_path):
    x = np.random.default_rng(0).normal(size=(7, 5))
    stats = FVDStats.from_features(x, {"frames": 16})
    np.testing.assert_allclose(stats.sigma, np.cov(x, rowvar=False, ddof=1), rtol=1e-12)
    path = stats.save(tmp_path / "real.safetensors")
    back = FVDStats.load(path)
    assert back.count == 7 and back.protocol == {"frames": 16} and is_stats_file(path)
    np.testing.assert_array_equal(back.sigma, stats.sigma)
    other = FVDStats.from_features(x + 1, {"frames": 128})
    with pytest.raises(F.FVDError, match="frames: REAL 16 vs FAKE 128"):
        frechet.fvd_from_stats(back, other)
    with pytest.raises(F.FVDError, match="not an FVD statistics file"):
        np.save(tmp_path / "x.npy", x)
        FVDStats.load(tmp_path / "x.npy")


def test_bad_features_are_refused():
    with pytest.raises(F.FVDError, match="at least 2 videos"):
        FVDStats.from_features(np.zeros((1, 4))).sigma
    bad = np.zeros((3, 4))
    bad[1, 2] = np.nan
    with pytest.raises(F.FVDError, match=r"non-finite features for videos \[1\]"):
        FVDStats.from_features(bad)


# ------------------------------------------------------------------------------------ pipeline errors
class _NoNetwork(F.FVDModel):
    """An FVD model whose network must not run: the errors below come before any embedding."""

    def __init__(self):
        import zoo
        super().__init__(model=zoo.load("i3d_inception_k400_rgb", pretrained=False))

    def __call__(self, x):
        raise AssertionError("the network ran")


def test_short_unreadable_and_too_few_videos_are_named(tmp_path):
    model = _NoNetwork()
    short = torch.zeros(3, 10, 8, 8, 3, dtype=torch.uint8)
    with pytest.raises(F.FVDError, match=r"10 frames, the protocol needs 16 \(--frames 16 x --stride 1\)"):
        F.fvd(short, short, model=model)
    with pytest.raises(F.FVDError, match="needs 25"):
        F.fvd(short, short, frames=4, stride=8, model=model)
    with pytest.raises(F.FVDError, match="at least 2 videos"):
        F.fvd(short[:1], short[:1], frames=4, model=model)
    with pytest.raises(F.FVDError, match="uint8"):
        F.fvd(short.float(), short, model=model)
    folder = tmp_path / "vids"
    make_moving_shapes(folder, classes=2, per_class=2, frames=4, size=16, corrupt=1)
    with pytest.raises(F.FVDError, match=r"v_MoveRight_g03_c01.mp4.*--on-error skip"):
        F.fvd(folder, folder, frames=2, model=model, workers=0)


# ------------------------------------------------------------------------------------ parity
@pytest.fixture(scope="module")
def video_sets(tmp_path_factory):
    """REAL: 4 synthetic 64x64 H.264 videos and one corrupt file; FAKE: 3 synthetic 80x80 (another seed) and
    the cricket GIF (224x224), so the resize runs at two ratios and at 1:1."""
    root = tmp_path_factory.mktemp("fvd")
    sets = {}
    for side, size, seed, corrupt in (("real", 64, 0, 1), ("fake", 80, 1, 0)):
        src = make_moving_shapes(root / f"{side}_src", classes=2, per_class=2, frames=18, size=size, seed=seed,
                                 corrupt=corrupt)
        folder = root / side
        folder.mkdir()
        for p in sorted(Path(src).rglob("*.mp4")):
            (folder / p.name).symlink_to(p)
        sets[side] = folder
    (sets["fake"] / "v_MoveRight_g02_c01.mp4").unlink()
    (sets["fake"] / "cricket.gif").symlink_to(GIF)
    return sets


def test_quovadis_fvd_matches_the_tensorflow_reference(video_sets, rgb_scratch_weights, tmp_path):
    """The reference pipeline in TensorFlow on the same decoded frames; ours: FVD within 1e-3 relative (via the
    CLI, default fused fp32), every video's features within 1e-4."""
    arrays = {}
    for side, folder in video_sets.items():
        clips = []
        for p in sorted(folder.iterdir()):
            try:
                clips.append(read_frames(p, range(16)).numpy())
            except RuntimeError:
                assert "g03_c01" in p.name  # the corrupt one, skipped on both sides
        arrays[side] = clips
        np.savez(tmp_path / f"{side}.npz", *clips)
    assert len(arrays["real"]) == 4 and len(arrays["fake"]) == 4
    ref = subprocess.run([sys.executable, str(REFERENCE), str(rgb_scratch_weights), str(tmp_path),
                          str(tmp_path / "real.npz"), str(tmp_path / "fake.npz")], capture_output=True, text=True,
                         env={**ENV, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert ref.returncode == 0, ref.stderr[-3000:]
    tf_fvd = float(np.load(tmp_path / "fvd.npy"))

    cli = subprocess.run([sys.executable, "-m", "zoo.cli", "fvd", str(video_sets["real"]), str(video_sets["fake"]),
                          "--weights", str(rgb_scratch_weights), "--json", "--on-error", "skip", "--workers", "1",
                          "--save-stats", str(tmp_path / "stats.safetensors"),
                          "--save-features", str(tmp_path / "features.npz")],
                         capture_output=True, text=True, env=ENV, cwd=ROOT)
    assert cli.returncode == 0, cli.stderr[-3000:]
    out = json.loads(cli.stdout)
    assert (out["num_real"], out["num_fake"], out["frames"], out["skipped_real"]) == (4, 4, 16, 1)
    assert "fast path: fused" in cli.stderr and "v_MoveRight_g03_c01.mp4" in cli.stderr
    assert out["fvd"] == pytest.approx(tf_fvd, rel=1e-3), (out["fvd"], tf_fvd)
    assert tf_fvd > 1.0  # two different sets: a real distance, not a degenerate zero

    ours = np.load(tmp_path / "features.npz")
    assert list(ours["real_names"]) == [p.name for p in sorted(video_sets["real"].iterdir()) if "g03" not in p.name]
    for side, i in (("real", 0), ("fake", 1)):
        theirs = np.load(tmp_path / f"features_{i}.npy")
        err = np.abs(ours[side] - theirs).max() / np.abs(theirs).max()
        assert err < 1e-4, (side, err)

    # the saved statistics reproduce the number without the network, and refuse another protocol
    again = F.fvd(tmp_path / "stats.safetensors", tmp_path / "stats.fake.safetensors")
    assert again.fvd == pytest.approx(out["fvd"], rel=1e-12)
    with pytest.raises(F.FVDError, match="frames"):
        F.fvd(tmp_path / "stats.safetensors", video_sets["fake"], frames=8, weights=rgb_scratch_weights)
