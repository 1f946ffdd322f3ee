"""Data and evaluation correctness: bugs that would train or score a wrong model without any error.

Fixtures are real files: MP4s with the frame number burnt in as 8 black/white stripes (one bit each), a
variable-frame-rate MP4 with one missing timestamp written with PyAV, stored flow in its real formats."""
from __future__ import annotations

import csv
import json
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

av = pytest.importorskip("av")

from zoo.data import decode, flow_store, sampling  # noqa: E402
from zoo.data import transforms as T  # noqa: E402
from zoo.data import datasets as D  # noqa: E402
from zoo.data.datasets import CSVVideoDataset, FolderVideoDataset  # noqa: E402

SIZE = 32
GAP = 10            # the VFR fixture has no frame at timestamp GAP (in 1/25 s): frames >= GAP sit one tick late


# ---------------------------------------------------------------- fixtures

def stripes(t: int, size: int = SIZE) -> np.ndarray:
    """Frame number ``t`` burnt in as 8 vertical stripes, bit b white iff bit b of t is set."""
    img = np.zeros((size, size, 3), np.uint8)
    w = size // 8
    for b in range(8):
        if (t >> b) & 1:
            img[:, b * w:(b + 1) * w] = 255
    return img


def number(img) -> int:
    """The frame number burnt into a decoded RGB (or gray) frame."""
    img = np.asarray(img)
    w = img.shape[1] // 8
    return sum(1 << b for b in range(8) if img[:, b * w + 1:(b + 1) * w - 1].mean() > 128)


def write_video(path: Path, n: int, fps: int = 25, pts=None, size: int = SIZE, frame=stripes) -> Path:
    """H.264 MP4 of ``n`` frames; ``pts[t]`` (in 1/fps s) is frame t's timestamp (default t)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width = s.height = size
        s.pix_fmt = "yuv420p"
        s.time_base = Fraction(1, fps)
        s.codec_context.gop_size = 8
        s.codec_context.thread_count = 1
        for t in range(n):
            f = av.VideoFrame.from_ndarray(frame(t, size), format="rgb24")
            f.pts, f.time_base = (t if pts is None else pts[t]), Fraction(1, fps)
            c.mux(s.encode(f))
        c.mux(s.encode())
    return path


@pytest.fixture(scope="module")
def vfr(tmp_path_factory) -> Path:
    """120 frames at 25 fps whose timestamp GAP is missing (frame t shows at tick t, or t + 1 from GAP on)."""
    return write_video(tmp_path_factory.mktemp("vfr") / "A" / "vfr.mp4", 120, pts=[t + (t >= GAP) for t in range(120)])


# ---------------------------------------------------------------- bug 4: one frame-numbering rule

@pytest.mark.parametrize("backend", ["pyav"] + (["torchcodec"] if decode.torchcodec_available() else []))
def test_vfr_frames_are_counted_alike_with_and_without_seek(vfr, backend):
    """Before: PyAV's seek numbered frames by timestamp x average rate, and torchcodec's approximate mode
    alike, so read_frames([40, 41]) gave frames 39 and 40 while flow extraction counted."""
    from zoo.flow.videos import read_gray_frames
    gray, _ = read_gray_frames(vfr, size=None)                               # what flow extraction sees
    assert [number(g) for g in gray] == list(range(120))
    for idx in ([40, 41], [3, 4], [100, 119], [GAP - 1, GAP, GAP + 1]):      # with and without a seek
        got = decode.read_frames(vfr, idx, backend=backend)
        assert [number(f) for f in got.numpy()] == idx, idx


def test_vfr_retimed_by_timestamps(vfr):
    """At 25 fps, tick k shows the last frame whose timestamp is <= k: the missing tick repeats a frame."""
    times = decode.frame_times(vfr)
    assert len(times) == 120 and times[GAP] == pytest.approx((GAP + 1) / 25)
    timeline = sampling.resample_times(times, 25.0)
    assert len(timeline) == 121
    assert timeline[GAP - 1:GAP + 3].tolist() == [GAP - 1, GAP - 1, GAP, GAP + 1]
    ds = FolderVideoDataset(vfr.parent.parent, fps=25.0, clip_len=121, mode="test", transform=T.Compose([]))
    frames = [number(f) for f in ds[0]["rgb"][0].permute(1, 2, 3, 0).numpy()]
    assert frames == timeline.tolist()


# ---------------------------------------------------------------- bug 1: flow at the network's resolution

def square_video(t: int, size: int) -> np.ndarray:
    """A textured square moving right by size/16 px per frame on a flat background."""
    img = np.full((size, size, 3), 90, np.uint8)
    s, x = size // 4, size // 4 + t * size // 16
    rng = np.random.default_rng(0)
    img[s:2 * s, x:x + s] = rng.integers(0, 255, (s, s, 1), dtype=np.uint8)
    return img


def test_flow_extracted_at_short_side_256_by_default_with_geometry_recorded(tmp_path):
    cv2 = pytest.importorskip("cv2")  # noqa: F841
    from zoo.flow.extract import extract_dataset_flow
    write_video(tmp_path / "src" / "A" / "v.mp4", 3, size=64, frame=square_video)
    extract_dataset_flow(tmp_path / "src", tmp_path / "flow", workers=1, algorithm="farneback", progress=False)
    meta = flow_store.read_meta(tmp_path / "flow" / "A" / "v.mp4")
    assert (meta["height"], meta["width"], meta["short_side"]) == (256, 256, 256)
    assert meta["bound"] == 20.0 and meta["fps"] == 25.0 and meta["source_fps"] == 25.0


def test_flow_retimed_before_extraction(tmp_path):
    pytest.importorskip("cv2")
    from zoo.flow.extract import extract_video_flow
    video = write_video(tmp_path / "v50.mp4", 12, fps=50)
    n = extract_video_flow(video, tmp_path / "f", algorithm="farneback", size=None, fps=25.0)
    meta = flow_store.read_meta(tmp_path / "f")
    assert n == 5 and meta["num_frames"] == 5 and meta["fps"] == 25.0 and meta["source_fps"] == 50.0


def write_flow(d: Path, num_frames: int, size: int, value: float, bound: float) -> None:
    """A constant field (value, -value) px at ``size`` x ``size``, float16 (exact)."""
    flow = np.zeros((num_frames - 1, size, size, 2), np.float32)
    flow[..., 0], flow[..., 1] = value, -value
    flow_store.write_flow(d, flow, algorithm="test", bound=bound, fps=25.0, fmt="npz-f16")


def test_flow_of_another_short_side_is_refused(tmp_path):
    write_video(tmp_path / "v" / "A" / "v.mp4", 6)
    write_flow(tmp_path / "f" / "A" / "v.mp4", 6, 2 * SIZE, 3.0, 20.0)           # extracted at twice the size
    ds = FolderVideoDataset(tmp_path / "v", modality="flow", flow_root=tmp_path / "f", clip_len=4,
                            flow_short_side=SIZE, transform=T.ResizeShortSide(SIZE))
    with pytest.raises(D.FlowGeometryError, match=r"short side 64.*--size 32"):
        ds[0]


def test_normalize_uses_the_recorded_bound(tmp_path):
    write_video(tmp_path / "v" / "A" / "v.mp4", 6)
    write_flow(tmp_path / "f" / "A" / "v.mp4", 6, SIZE, 3.0, 4.0)                # clipped at +-4 when stored
    ds = FolderVideoDataset(tmp_path / "v", modality="flow", flow_root=tmp_path / "f", clip_len=4,
                            flow_short_side=SIZE, transform=T.Normalize())
    flow = ds[0]["flow"]
    assert flow[0].unique().tolist() == [0.75] and flow[1].unique().tolist() == [-0.75]


def test_flow_at_another_fps_than_the_data_is_refused(tmp_path):
    write_video(tmp_path / "v" / "A" / "v.mp4", 12, fps=50)
    write_flow(tmp_path / "f" / "A" / "v.mp4", 12, SIZE, 1.0, 20.0)              # flow at 25 fps of a 50 fps video...
    meta = flow_store.read_meta(tmp_path / "f" / "A" / "v.mp4")
    meta["fps"] = 50.0                                                       # ...recorded as 50 fps (unretimed)
    (tmp_path / "f" / "A" / "v.mp4" / "meta.json").write_text(json.dumps(meta))
    ds = FolderVideoDataset(tmp_path / "v", modality="flow", flow_root=tmp_path / "f", clip_len=4, fps=25.0)
    with pytest.raises(D.FlowGeometryError, match=r"50 fps.*--fps 25"):
        ds[0]


# ---------------------------------------------------------------- bug 2: modality=both

def test_modality_both_is_refused_at_config_load():
    from zoo.train.config import load_config
    with pytest.raises(ValueError, match=r"two runs.*--fuse"):
        load_config(None, ["data.modality=both"])


# ---------------------------------------------------------------- bug 3: one class list, from training

def test_test_split_numbered_with_the_training_classes(tmp_path):
    for cls in ("Apple", "Banana", "Cherry"):
        write_video(tmp_path / cls / "v.mp4", 4)
    rows = {"train": ["Apple", "Banana", "Cherry"], "test": ["Apple", "Cherry"]}    # the test split lacks Banana
    for split, names in rows.items():
        with open(tmp_path / f"{split}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["path", "label"])
            w.writerows([(f"{n}/v.mp4", n) for n in names])
    from zoo.train.config import load_config
    from zoo.train.data import build_dataset
    cfg = load_config(None, ["data.format=csv", f"data.root={tmp_path}"])
    train = build_dataset(cfg, "train")
    test = build_dataset(cfg, "test", classes=train.classes)
    assert test.classes == ["Apple", "Banana", "Cherry"] and [y for _, y in test.items] == [0, 2]
    with pytest.raises(ValueError, match=r"Cherry.*not among the 3 classes"):
        CSVVideoDataset(tmp_path / "test.csv", classes=["Durian", "Apple", "Banana"])


# ---------------------------------------------------------------- I3D protocol preset

def test_i3d_preset_and_user_values_win(tmp_path):
    from zoo.train.config import load_config
    cfg = load_config(None, ["protocol=i3d"])
    d = cfg.data
    assert (d.fps, d.short_side, d.size, d.multiscale, d.flip, d.clip_len, d.stride, d.test_clips) == \
        (25.0, 256, 224, False, True, 64, 1, "all")
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"protocol": "i3d", "data": {"clip_len": 32}}))
    cfg = load_config(str(path), ["data.multiscale=true"])
    assert cfg.data.clip_len == 32 and cfg.data.multiscale and cfg.data.fps == 25.0
    with pytest.raises(ValueError, match="protocol"):
        load_config(None, ["protocol=tsn"])


def test_whole_video_at_test_time(tmp_path):
    write_video(tmp_path / "A" / "v.mp4", 21)
    ds = FolderVideoDataset(tmp_path, clip_len=8, num_clips="all", mode="test", transform=T.Compose([]))
    rgb = ds[0]["rgb"]
    assert rgb.shape[0] == math.ceil(21 / 8)
    starts = [number(rgb[v, :, 0].permute(1, 2, 0).numpy()) for v in range(rgb.shape[0])]
    assert starts == [0, 6, 13]                                              # evenly spread, last ends at 20


# ---------------------------------------------------------------- evaluation details

def test_precise_bn_recomputes_the_statistics():
    from zoo.models.i3d import BatchNormNoScale
    from zoo.train.precise_bn import recompute_bn_stats
    model = nn.Sequential(nn.Conv3d(2, 3, 1), BatchNormNoScale(3), nn.Conv3d(3, 3, 1), nn.BatchNorm3d(3))
    g = torch.Generator().manual_seed(1)
    batches = [{"flow": torch.randn(2, 2, 3, 4, 4, generator=g) * 3 + 1, "label": [0, 1]} for _ in range(4)]
    model.eval()
    recompute_bn_stats(model, batches, "flow", num_batches=3)
    with torch.no_grad():
        a = [model[0](b["flow"]) for b in batches[:3]]                      # what the first BN sees
    mean = torch.stack([x.mean((0, 2, 3, 4)) for x in a]).mean(0)          # equal batches: the true mean
    var = torch.stack([x.var((0, 2, 3, 4)) for x in a]).mean(0)            # PySlowFast: mean batch variance
    torch.testing.assert_close(model[1].running_mean, mean, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(model[1].running_var, var, rtol=1e-5, atol=1e-5)
    assert model[1].momentum == 0.001 and model[3].momentum == 0.1 and not model.training


# ---------------------------------------------------------------- laws

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=200, deadline=None)
@given(n=st.integers(2, 400), src=st.sampled_from([12.0, 15.0, 23.976, 24.0, 25.0, 29.97, 30.0, 50.0, 59.94, 60.0]),
       dst=st.sampled_from([10.0, 24.0, 25.0, 30.0]))
def test_timestamp_retiming_equals_rate_retiming_at_a_constant_rate(n, src, dst):
    by_time = sampling.resample_times(np.arange(n) / src, dst).tolist()
    by_rate = sampling.resample_fps(n, src, dst).tolist()
    k = min(len(by_time), len(by_rate))
    assert by_time[:k] == by_rate[:k]
    x = n / src * dst                                                        # the retimed length before rounding
    tie = abs(x - math.floor(x) - 0.5) < 1e-6
    assert len(by_time) == len(by_rate) or (tie and abs(len(by_time) - len(by_rate)) == 1)


@settings(max_examples=100, deadline=None)
@given(labels=st.lists(st.integers(0, 5), min_size=1, max_size=60), fraction=st.floats(0.05, 0.95),
       seed=st.integers(0, 10))
def test_holdout_is_a_stratified_partition(labels, fraction, seed):
    keep, held = D.holdout_indices(labels, fraction, seed)
    assert sorted(keep + held) == list(range(len(labels)))
    for y in set(labels):
        n, k = labels.count(y), sum(labels[i] == y for i in held)
        assert (1 <= k <= n - 1) if n > 1 else k == 0                        # each class keeps a training video
    assert D.holdout_indices(labels, fraction, seed) == (keep, held)
