"""Data pipeline: decoding, index sampling laws, paired transforms, datasets (all formats), corrupt files,
DataLoader workers. Fixtures are tiny real MP4s (32x32, a few frames) written here with PyAV."""
from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader

av = pytest.importorskip("av")

from zoo.data import decode, sampling  # noqa: E402
from zoo.data import transforms as T  # noqa: E402
from zoo.data.datasets import (  # noqa: E402
    HMDB51, UCF101, CorruptVideoWarning, CSVVideoDataset, FolderVideoDataset, Kinetics, Skipped,
    VideoClipDataset, collate_skip_corrupt)

SIZE = 32


# ---------------------------------------------------------------- fixtures

def level(t: int) -> int:
    """Grey level that frame t of a fixture video shows (recoverable after compression)."""
    return 10 + 20 * (t % 12)


def frame_of(level_value: float) -> int:
    return int(round((float(level_value) - 10) / 20))


def write_mp4(path: Path, n: int, gop: int = 8, fps: int = 25) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4") as c:
        s = c.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=fps)
        s.width = s.height = SIZE
        s.pix_fmt = "yuv420p"
        s.codec_context.gop_size = gop
        s.codec_context.thread_count = 1
        for t in range(n):
            img = np.full((SIZE, SIZE, 3), level(t), np.uint8)
            img[:4, :4] = 255 - level(t)                       # a little structure
            c.mux(s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        c.mux(s.encode())
    return path


def write_corrupt(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(range(256)) * 8)
    return path


@pytest.fixture(scope="module")
def long_video(tmp_path_factory) -> Path:
    return write_mp4(tmp_path_factory.mktemp("vid") / "long.mp4", 60, gop=8)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """root/<Class>/<video>.mp4: two classes, two 10-frame videos each, plus one corrupt video."""
    root = tmp_path_factory.mktemp("tree")
    for cls in ("Jump", "Run"):
        for k in (1, 2):
            write_mp4(root / cls / f"v_{cls}_g0{k}_c01.mp4", 10)
    write_corrupt(root / "Run" / "v_Run_g03_c01.mp4")
    return root


def write_test_flow(d: Path, num_frames: int) -> None:
    """Stored flow (zoo.data.flow_store) for a video of ``num_frames`` frames: flow frame t is the
    constant field (u, v) = (t, -t) pixels (float16: exact)."""
    from zoo.data import flow_store
    t = np.arange(num_frames - 1, dtype=np.float32)[:, None, None]
    shape = (num_frames - 1, SIZE, SIZE)
    flow = np.stack([np.broadcast_to(t, shape), np.broadcast_to(-t, shape)], -1)
    flow_store.write_flow(d, flow, algorithm="test", bound=20.0, fmt="npz-f16")


def backends():
    return ["pyav"] + (["torchcodec"] if decode.torchcodec_available() else [])


# ---------------------------------------------------------------- decode

def test_video_info_mp4_and_gif(long_video, tmp_path):
    assert decode.video_info(long_video) == (60, 25.0, SIZE, SIZE)
    from PIL import Image
    frames = [Image.new("RGB", (20, 10), (level(t), 0, 0)) for t in range(5)]
    gif = tmp_path / "a.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=40, loop=0)
    assert decode.video_info(gif) == (5, 25.0, 10, 20)
    x = decode.read_frames(gif, [4, 1, 1])
    assert x.shape == (3, 10, 20, 3) and x.dtype == torch.uint8
    assert [frame_of(v) for v in x[:, 0, 0, 0]] == [4, 1, 1]


@pytest.mark.parametrize("backend", backends())
@settings(max_examples=12, deadline=None)
@given(idx=st.lists(st.integers(0, 59), min_size=1, max_size=10))
def test_read_frames_equals_full_decode(long_video, backend, idx):
    full = decode.read_frames(long_video, backend="pyav")
    got = decode.read_frames(long_video, idx, backend=backend)
    assert got.shape == (len(idx), SIZE, SIZE, 3) and got.dtype == torch.uint8
    assert (got.int() - full[idx].int()).abs().max() <= 2          # pyav: bit-exact; torchcodec: same FFmpeg
    assert [frame_of(v) for v in got[:, 16, 16, 0]] == [i % 12 for i in idx]


def test_read_frames_seeks_and_stops_early(long_video, monkeypatch):
    decoded = []
    real_open = decode._open_av

    class Counting:                                             # the container, counting decoded frames
        def __init__(self, c):
            self.c = c

        def __getattr__(self, name):
            return getattr(self.c, name)

        def decode(self, *a, **k):
            for f in self.c.decode(*a, **k):
                decoded.append(f.pts)
                yield f
    monkeypatch.setattr(decode, "_open_av", lambda path: Counting(real_open(path)))
    decode.read_frames(long_video, [2, 5], backend="pyav")
    assert len(decoded) == 6                                    # frames 0..5, then stop
    decoded.clear()
    decode.read_frames(long_video, [41, 44], "pyav")                  # keyframes every <= 8: seek, not from 0
    assert decoded[0] > 0 and len(decoded) <= 12


def test_read_frames_end_slack_and_errors(long_video, tmp_path):
    x = decode.read_frames(long_video, [58, 59, 59 + decode.END_SLACK])
    assert torch.equal(x[2], x[1])
    with pytest.raises(decode.VideoDecodeError):
        decode.read_frames(long_video, [59 + decode.END_SLACK + 1])
    with pytest.raises(decode.VideoDecodeError):
        decode.read_frames(write_corrupt(tmp_path / "bad.mp4"), [0])
    with pytest.raises(decode.VideoDecodeError):
        decode.video_info(tmp_path / "missing.mp4")


def test_backend_resolution(monkeypatch):
    assert decode.resolve_backend("auto") == ("torchcodec" if decode.torchcodec_available() else "pyav")
    assert decode.resolve_backend("PyAV") == "pyav"
    with pytest.raises(ValueError):
        decode.resolve_backend("opencv")
    monkeypatch.setattr(decode, "torchcodec_available", lambda: False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                                      # auto falls back silently
        assert decode.resolve_backend("auto") == "pyav"
    monkeypatch.setenv("QUOVADIS_VIDEO_BACKEND", "torchcodec")
    with pytest.warns(RuntimeWarning, match="torchcodec"):                  # asked for: says so
        assert decode.resolve_backend() == "pyav"


# ---------------------------------------------------------------- sampling laws

lengths = st.integers(1, 300)


@given(n=lengths, clip=st.integers(1, 80), stride=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_dense_indices_laws(n, clip, stride, seed):
    idx = sampling.dense_indices(n, clip, stride, np.random.default_rng(seed))
    assert idx.dtype == torch.long and idx.shape == (clip,)
    assert idx.min() >= 0 and idx.max() < n
    if n >= sampling.span(clip, stride):                        # long enough: never wraps, stride kept
        assert torch.all(idx.diff() == stride)
    else:                                                       # the short-clip rule: loop the video
        assert torch.equal(idx, (idx[0] + stride * torch.arange(clip)) % n)
    assert torch.equal(sampling.dense_indices(n, clip, stride, 7), (7 + stride * torch.arange(clip)) % n)


@given(n=lengths, clip=st.integers(1, 64), stride=st.integers(1, 3), k=st.integers(1, 10))
def test_uniform_clips_laws(n, clip, stride, k):
    idx = sampling.uniform_clips(n, clip, stride, k)
    assert idx.shape == (k, clip) and idx.min() >= 0 and idx.max() < n
    starts = idx[:, 0]
    if n >= sampling.span(clip, stride):
        assert torch.all(idx.diff(dim=1) == stride)
        if k >= 2:                                              # first at 0, last ends at the last frame
            assert starts[0] == 0 and idx[-1, -1] == n - 1
    if k >= 2:                                                  # evenly spread: gaps differ by <= 1
        gaps = starts.diff()
        assert gaps.min() >= 0 and gaps.max() - gaps.min() <= 1
    if stride == 1 and k >= 2 and k * clip >= n:                # and together they cover the whole video
        assert set(idx.flatten().tolist()) == set(range(n))


@given(n=lengths, src=st.sampled_from([12.0, 24.0, 25.0, 29.97, 30.0, 60.0]), dst=st.sampled_from([25.0, 30.0]))
def test_resample_fps_laws(n, src, dst):
    idx = sampling.resample_fps(n, src, dst)
    assert idx.min() >= 0 and idx.max() < n and torch.all(idx.diff() >= 0)
    assert abs(len(idx) - n * dst / src) <= 1
    if src == dst:
        assert torch.equal(idx, torch.arange(n))


# ---------------------------------------------------------------- transforms

def moving_square_flow(h: int, w: int, x0: int, speed: float) -> torch.Tensor:
    """(2, 1, h, w) flow of a 4x4 square at column x0 moving horizontally at ``speed`` px/frame."""
    f = torch.zeros(2, 1, h, w)
    f[0, :, 2:6, x0:x0 + 4] = speed
    return f


def test_flip_law_shape_moving_right_becomes_moving_left():
    right = moving_square_flow(8, 12, x0=1, speed=3.0)
    left = moving_square_flow(8, 12, x0=12 - 1 - 4, speed=-3.0)     # the mirrored square, moving left
    assert torch.equal(T.hflip(right, "flow"), left)
    flow = torch.randn(2, 3, 5, 7)
    flipped = T.hflip(flow, "flow")
    assert torch.equal(flipped[0], -flow[0].flip(-1)) and torch.equal(flipped[1], flow[1].flip(-1))
    rgb = torch.randint(0, 256, (3, 2, 5, 7), dtype=torch.uint8)
    assert torch.equal(T.hflip(rgb, "rgb"), rgb.flip(-1))


@given(seed=st.integers(0, 2**16), kind=st.sampled_from(["rgb", "flow"]))
def test_flip_twice_is_identity(seed, kind):
    x = torch.randn(3 if kind == "rgb" else 2, 2, 4, 6, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(T.hflip(T.hflip(x, kind), kind), x)


def coordinate_sample(h: int, w: int) -> dict:
    """rgb and flow channels all hold 1000*row + col + 1 (float), so a box is visible in both streams."""
    f = (torch.arange(h)[:, None] * 1000 + torch.arange(w)[None, :] + 1).float().expand(1, 2, h, w)
    return {"rgb": f.expand(3, 2, h, w).clone(), "flow": f.expand(2, 2, h, w).clone(), "label": 3}


@given(seed=st.integers(0, 2**16), multiscale=st.booleans())
def test_one_draw_for_both_streams(seed, multiscale):
    crop = T.MultiScaleCrop(16, more_fix_crop=True) if multiscale else T.RandomCrop(16)
    t = T.Compose([crop, T.RandomHorizontalFlip()])
    out = t(coordinate_sample(24, 36), torch.Generator().manual_seed(seed))
    rgb, flow = out["rgb"][0], out["flow"]
    assert out["label"] == 3 and rgb.shape == flow.shape[1:] == (2, 16, 16)
    ry, rx = flow[1] / rgb, flow[0] / rgb                           # the resize factors, flip sign on x
    assert torch.allclose(ry, ry.flatten()[0].expand_as(ry), rtol=1e-4) and ry.flatten()[0] > 0
    assert torch.allclose(rx, rx.flatten()[0].expand_as(rx), rtol=1e-4)
    flipped = bool(rgb[0, 0, 0] > rgb[0, 0, -1])
    assert (rx.flatten()[0] < 0) == flipped
    if not multiscale:                                              # pure crop: the same pixels
        assert torch.equal(flow[1], rgb) and torch.equal(flow[0], -rgb if flipped else rgb)


def test_resize_scales_flow_vectors_and_keeps_uint8():
    flow = torch.stack([torch.full((2, 32, 48), 2.0), torch.full((2, 32, 48), 1.0)])
    out = T.resize(flow, (16, 96), "flow")
    assert torch.allclose(out[0], torch.tensor(4.0)) and torch.allclose(out[1], torch.tensor(0.5))
    rgb = torch.randint(0, 256, (3, 2, 24, 32), dtype=torch.uint8)
    out = T.Compose([T.ResizeShortSide(20), T.CenterCrop(16), T.RandomHorizontalFlip(1.0)])({"rgb": rgb})
    assert out["rgb"].dtype == torch.uint8 and out["rgb"].shape == (3, 2, 16, 16)


@given(size=st.integers(1, 40), ratio=st.floats(1.0, 3.0), tall=st.booleans())
def test_three_crop_covers_the_frame(size, ratio, tall):
    h, w = size, int(size * ratio)
    if tall:
        h, w = w, h
    covered = torch.zeros(h, w, dtype=torch.bool)
    for top, left, bh, bw in T.three_crop_boxes(h, w, size):
        assert bh == bw == size and 0 <= top <= h - size and 0 <= left <= w - size
        covered[top:top + bh, left:left + bw] = True
    assert covered.all()
    out = T.ThreeCrop(size)({"rgb": torch.zeros(3, 1, h, w)})["rgb"]
    assert out.shape == (3, 3, 1, size, size)


@given(bound=st.floats(1.0, 40.0), seed=st.integers(0, 2**16))
def test_scaling_bounds(bound, seed):
    g = torch.Generator().manual_seed(seed)
    rgb = torch.randint(0, 256, (3, 2, 4, 4), dtype=torch.uint8, generator=g)
    flow = torch.randn(2, 2, 4, 4, generator=g) * 3 * bound
    out = T.Normalize(bound)({"rgb": rgb, "flow": flow})
    assert out["rgb"].dtype == torch.float32 and out["rgb"].abs().max() <= 1.0
    assert out["flow"].abs().max() <= 1.0
    inside = flow.abs() <= bound
    assert torch.allclose(out["flow"][inside], flow[inside] / bound)
    assert T.scale_rgb(torch.tensor([0, 255], dtype=torch.uint8)).tolist() == [-1.0, 1.0]


# ---------------------------------------------------------------- datasets

def check_sample(s, clip_len, label=None, views=None):
    shape = (3, clip_len, SIZE, SIZE) if views is None else (views, 3, clip_len, SIZE, SIZE)
    assert s["rgb"].shape == shape and s["rgb"].dtype == torch.float32
    assert s["rgb"].abs().max() <= 1.0 and isinstance(s["index"], int) and Path(s["path"]).is_file()
    if label is not None:
        assert s["label"] == label


def test_folder_dataset_train_and_multiclip_test(tree):
    ds = FolderVideoDataset(tree, clip_len=6, stride=2)              # span 11 > 10 frames: loops
    assert ds.classes == ["Jump", "Run"] and len(ds) == 5
    check_sample(ds[0], 6, label=0)
    test = FolderVideoDataset(tree, clip_len=4, num_clips=3, mode="test")
    check_sample(test[1], 4, label=0, views=3)
    three = FolderVideoDataset(tree, clip_len=4, num_clips=2, mode="test",
                               transform=T.Compose([T.ThreeCrop(SIZE), T.Normalize()]))
    assert three[0]["rgb"].shape == (6, 3, 4, SIZE, SIZE)


def test_ucf101_lists(tree):
    ann = tree / "ucfTrainTestlist"
    ann.mkdir(exist_ok=True)
    (ann / "classInd.txt").write_text("1 JUMP\n2 Run\n")                 # class names match in any case
    (ann / "trainlist01.txt").write_text("Jump/v_Jump_g01_c01.mp4 1\nRun/v_Run_g01_c01.mp4 2\n")
    (ann / "testlist01.txt").write_text("Jump/v_Jump_g02_c01.mp4\nRun/v_Run_g02_c01.mp4\n")
    train, test = UCF101(tree, split=1, clip_len=4), UCF101(tree, split=1, subset="test", clip_len=4)
    assert [y for _, y in train.items] == [0, 1] and [y for _, y in test.items] == [0, 1]
    assert test.mode == "test" and train.classes == ["JUMP", "Run"]
    check_sample(train[1], 4, label=1)
    check_sample(test[0], 4, label=0, views=1)


def test_ucf101_synthetic_with_corrupt(tmp_path):
    from zoo.data.synthetic import make_moving_shapes
    root = make_moving_shapes(tmp_path / "ucf", classes=2, per_class=2, frames=8, size=SIZE, corrupt=1)
    ds = UCF101(root, clip_len=8)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        samples = [ds[i] for i in range(len(ds))]
    assert len(ds.corrupt) == 1 and sum(issubclass(x.category, CorruptVideoWarning) for x in w) == 1
    assert all(s["rgb"].shape == (3, 8, SIZE, SIZE) for s in samples)


def test_hmdb51_splits(tree, tmp_path):
    (tmp_path / "Jump_test_split1.txt").write_text("v_Jump_g01_c01.mp4 1 \nv_Jump_g02_c01.mp4 2 \n")
    (tmp_path / "Run_test_split1.txt").write_text("v_Run_g01_c01.mp4 0 \nv_Run_g02_c01.mp4 1 \n")
    train, test = HMDB51(tree, tmp_path, subset="train", clip_len=4), HMDB51(tree, tmp_path, subset="test", clip_len=4)
    assert [(str(p), y) for p, y in train.items] == [("Jump/v_Jump_g01_c01.mp4", 0), ("Run/v_Run_g02_c01.mp4", 1)]
    assert [str(p) for p, _ in test.items] == ["Jump/v_Jump_g02_c01.mp4"]
    check_sample(train[1], 4, label=1)


def test_kinetics_csv_nested_and_flat(tmp_path):
    root = tmp_path / "k400"
    write_mp4(root / "train" / "air drumming" / "abc_000010_000020.mp4", 6)
    write_mp4(root / "xyz_000000_000010.mp4", 6)                           # flat layout
    rows = [("air drumming", "abc", 10, 20, "train"), ("zumba", "xyz", 0, 10, "train"),
            ("zumba", "gone", 0, 10, "train"), ("zumba", "val1", 0, 10, "val")]
    with open(tmp_path / "train.csv", "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["label", "youtube_id", "time_start", "time_end", "split"])
        wr.writerows(rows)
    ds = Kinetics(root, tmp_path / "train.csv", subset="train", clip_len=4)
    assert ds.classes == ["air drumming", "zumba"] and ds.missing == ["gone_000000_000010.mp4"]
    assert [y for _, y in ds.items] == [0, 1]
    check_sample(ds[0], 4, label=0)
    check_sample(ds[1], 4, label=1)


def test_generic_csv(tree, tmp_path):
    rows = f"{tree}/Run/v_Run_g01_c01.mp4,run\n{tree}/Jump/v_Jump_g01_c01.mp4,jump\n"      # absolute paths
    (tmp_path / "l.csv").write_text("path,label\n" + rows)
    ds = CSVVideoDataset(tmp_path / "l.csv", clip_len=3)
    assert ds.classes == ["jump", "run"] and [y for _, y in ds.items] == [1, 0]
    (tmp_path / "n.csv").write_text("path,label\nRun/v_Run_g01_c01.mp4,7\n")
    ds = CSVVideoDataset(tmp_path / "n.csv", root=tree, clip_len=3)
    check_sample(ds[0], 3, label=7)


def test_corrupt_skipped_warned_once_and_counted(tree):
    ds = FolderVideoDataset(tree, clip_len=4)
    bad = str(tree / "Run" / "v_Run_g03_c01.mp4")
    bad_index = [str(ds.video_path(i)) for i in range(len(ds))].index(bad)
    with pytest.warns(CorruptVideoWarning, match="v_Run_g03_c01"):
        s = ds[bad_index]
    assert ds.corrupt == {bad} and s["index"] == (bad_index + 1) % len(ds) and s.skipped == (bad,)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                                      # warned once only
        assert ds[bad_index]["index"] == (bad_index + 1) % len(ds)
    sentinel = FolderVideoDataset(tree, clip_len=4, on_corrupt="sentinel")
    with pytest.warns(CorruptVideoWarning):
        batch = collate_skip_corrupt([sentinel[i] for i in range(len(sentinel))])
    assert isinstance(sentinel[bad_index], Skipped) and batch["skipped"] == [bad]
    assert batch["rgb"].shape == (4, 3, 4, SIZE, SIZE)
    assert collate_skip_corrupt([sentinel[bad_index]]) == {"skipped": [bad]}


@pytest.mark.parametrize("on_corrupt", ["next", "sentinel"])
def test_dataloader_two_workers_counts_corrupt(tree, on_corrupt):
    ds = FolderVideoDataset(tree, clip_len=4, on_corrupt=on_corrupt)
    loader = DataLoader(ds, batch_size=2, num_workers=2, collate_fn=collate_skip_corrupt)
    n_valid, skipped = 0, []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CorruptVideoWarning)
        for batch in loader:
            skipped += batch["skipped"]
            n_valid += len(batch.get("label", []))
    assert skipped == [str(tree / "Run" / "v_Run_g03_c01.mp4")]
    assert n_valid == len(ds) - (on_corrupt == "sentinel")


def test_flow_and_rgb_aligned_in_time(tree, tmp_path):
    flow_root = tmp_path / "flow"
    root = tmp_path / "short"
    write_mp4(root / "A" / "v.mp4", 6)                                      # 6 frames: 5 flow frames
    write_test_flow(flow_root / "A" / "v.mp4", 6)
    ident = T.Compose([])
    ds = FolderVideoDataset(root, modality="both", flow_root=flow_root, clip_len=9, transform=ident)
    for _ in range(5):
        s = ds[0]
        frames = [frame_of(v) for v in s["rgb"][0, :, 16, 16]]
        start = frames[0]
        assert frames == [(start + k) % 6 for k in range(9)]                 # short-clip rule: loop
        assert s["flow"][0, :, 0, 0].tolist() == [min(f, 4) for f in frames]  # same index, clamped to N-2
        assert s["flow"][1, :, 0, 0].tolist() == [-min(f, 4) for f in frames]
    flow_only = FolderVideoDataset(root, modality="flow", flow_root=flow_root, clip_len=3, num_clips=2,
                                   mode="test", transform=T.Normalize(4.0))
    s = flow_only[0]
    assert "rgb" not in s and s["flow"].shape == (2, 2, 3, SIZE, SIZE)
    assert s["flow"][:, 0, :, 0, 0].tolist() == [[0.0, 0.25, 0.5], [0.75, 1.0, 1.0]]
    retimed = FolderVideoDataset(root, modality="flow", flow_root=flow_root, clip_len=3, fps=25.0,
                                 mode="test", transform=T.Compose([]))      # no fps in the meta: the video's
    assert retimed[0]["flow"][0, 0, :, 0, 0].tolist() == [1.0, 2.0, 3.0]    # the centred clip
    missing = FolderVideoDataset(tree, modality="flow", flow_root=flow_root, clip_len=3, on_corrupt="sentinel")
    with pytest.warns(CorruptVideoWarning, match="flow"):
        assert isinstance(missing[0], Skipped)


def test_dataset_fps_resampling(tmp_path):
    root = tmp_path / "fps"
    write_mp4(root / "A" / "v.mp4", 12, fps=50)
    ds = FolderVideoDataset(root, clip_len=6, fps=25.0, num_clips=1, mode="test", transform=T.Compose([]))
    frames = [frame_of(v) for v in ds[0]["rgb"][0, 0, :, 16, 16]]
    assert frames == [0, 2, 4, 6, 8, 10]                                     # every other frame at 25 fps


def test_dataset_argument_errors(tree):
    with pytest.raises(ValueError, match="flow_root"):
        VideoClipDataset([], tree, modality="flow")
    with pytest.raises(ValueError):
        VideoClipDataset([], tree, modality="depth")
