"""``quovadis features``: equals extract_endpoints on the same clips, shards split deterministically, resumes
after a SIGKILL, refuses to mix settings, and reads flow folders for flow models."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.torch import save_file

import zoo
from zoo.data.flow_store import write_flow
from zoo.data.synthetic import make_moving_shapes
from zoo.data.sampling import clip_frames, clip_starts
from zoo.metrics.features import FeatureError, FeatureExtractor
from zoo.data.video_folder import parse_shard, select_shard

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


@given(st.integers(0, 40), st.integers(1, 7))
def test_shards_cover_every_item_once_and_are_balanced(n, shards):
    items = [f"v{i:03d}" for i in range(n)]
    parts = [select_shard(items, k, shards) for k in range(shards)]
    assert sorted(sum(parts, [])) == items
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    assert parse_shard(f"{shards - 1}/{shards}") == (shards - 1, shards)


@pytest.mark.parametrize("bad", ["3/3", "1", "a/b", "-1/2", "0/0"])
def test_bad_shard_specs_say_how(bad):
    with pytest.raises(ValueError, match="K/N|0 <= K < N"):
        parse_shard(bad)


@given(st.integers(1, 50), st.integers(1, 16), st.integers(1, 16))
def test_clips_stay_inside_the_video(n, clip_len, stride):
    starts = clip_starts(n, clip_len, stride)
    assert starts[0] == 0 and all(b - a == stride for a, b in zip(starts, starts[1:]))
    for s in starts:
        frames = clip_frames(s, clip_len, n)
        assert len(frames) == clip_len and max(frames) <= n - 1
    if n >= clip_len:  # no clip runs past the end, and no further clip would fit
        assert starts[-1] + clip_len <= n < starts[-1] + stride + clip_len


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """Three real H.264 videos (10 frames) and one folder of PNG frames, plus random I3D weights."""
    root = tmp_path_factory.mktemp("features")
    src = make_moving_shapes(root / "ds", classes=2, per_class=2, frames=10, size=32, seed=3)
    folder = root / "videos"
    (folder / "sub").mkdir(parents=True)
    mp4s = sorted(Path(src).rglob("*.mp4"))[:3]
    for p in mp4s:
        (folder / "sub" / p.name).symlink_to(p)
    from PIL import Image
    frames_dir = folder / "frames_video"
    frames_dir.mkdir()
    rng = np.random.default_rng(0)
    for i in range(9):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(frames_dir / f"img_{i:05d}.png")
    torch.manual_seed(0)
    weights = root / "rgb.safetensors"
    save_file(zoo.load("i3d_inception_k400_rgb", pretrained=False).state_dict(), str(weights))
    return folder, weights


def _read(path):
    with safe_open(str(path), "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()


def test_features_equal_extract_endpoints_and_shards_split(videos, tmp_path):
    folder, weights = videos
    model = zoo.load("i3d_inception_k400_rgb", weights=weights)
    prep = zoo.info("i3d_inception_k400_rgb").transform
    from zoo.data.video_folder import list_videos
    names = [v.name for v in list_videos(folder)]
    assert names == ["frames_video", "sub/v_MoveLeft_g01_c01.mp4", "sub/v_MoveLeft_g02_c01.mp4",
                     "sub/v_MoveRight_g01_c01.mp4"]

    out = tmp_path / "exact"
    runs = []
    for k in range(2):  # two shards into one folder: together they hold every video once
        fx = FeatureExtractor("i3d_inception_k400_rgb", endpoints=["Mixed_3c"], clip_len=8, stride=2, weights=weights,
                              exact=True, batch_size=2)
        runs.append(fx.run(folder, out, shard=(k, 2), workers=1, progress=False))
    assert [r["done"] for r in runs] == [2, 2] and all(not r["failed"] for r in runs)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.safetensors")) == \
        sorted(f"{n}.safetensors" for n in names)

    for video in list_videos(folder):
        got, meta = _read(out / f"{video.name}.safetensors")
        n = video.num_frames()
        starts = clip_starts(n, 8, 2)
        assert got["frames"].tolist() == [[s, s + 8] for s in starts]
        torch.testing.assert_close(got["timestamps"], got["frames"].double() / float(meta["fps"]))
        clips = torch.stack([prep(video.read(clip_frames(s, 8, n))) for s in starts])
        with torch.inference_mode():
            want = model.extract_endpoints(clips, ["Mixed_3c"])["Mixed_3c"]
        assert got["Mixed_3c"].shape == want.shape == (len(starts), 480, 4, 28, 28)
        torch.testing.assert_close(got["Mixed_3c"], want, rtol=1e-5, atol=1e-6)

    # the default fused path: the same function within float rounding, and it says so
    fast = FeatureExtractor("i3d_inception_k400_rgb", endpoints=["Mixed_3c"], clip_len=8, stride=2, weights=weights)
    assert "fast path: fused" in fast.describe()
    fast.run(folder, tmp_path / "fast", shard=(0, 4), workers=0, progress=False)  # frames_video only
    a, _ = _read(tmp_path / "fast" / "frames_video.safetensors")
    b, _ = _read(out / "frames_video.safetensors")
    assert (a["Mixed_3c"] - b["Mixed_3c"]).abs().max() <= 1e-4 * b["Mixed_3c"].abs().max()

    with pytest.raises(FeatureError, match="other settings.*pool"):
        FeatureExtractor("i3d_inception_k400_rgb", endpoints=["Mixed_3c"], clip_len=8, stride=2, weights=weights,
                         exact=True, pool="mean").run(folder, out, workers=0, progress=False)
    with pytest.raises(FeatureError, match="no endpoint 'Mixed_9z'"):
        FeatureExtractor("i3d_inception_k400_rgb", endpoints=["Mixed_9z"], weights=weights)


def test_flow_model_reads_a_flow_folder(videos, tmp_path):
    """A flow model's clips come from `quovadis flow`'s folders; a missing --flow-dir says what to run."""
    torch.manual_seed(1)
    weights = tmp_path / "flow.safetensors"
    net = zoo.load("i3d_inception_k400_flow", pretrained=False)
    save_file(net.state_dict(), str(weights))
    flow = np.random.default_rng(0).normal(0, 3, (7, 24, 30, 2)).astype(np.float32)
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.mp4").symlink_to(next(videos[0].glob("sub/*.mp4")))
    write_flow(tmp_path / "flow" / "a.mp4", flow, algorithm="tvl1", fps=25.0, fmt="npz-f16")
    fx = FeatureExtractor("i3d_inception_k400_flow", endpoints=["Mixed_3b"], clip_len=4, stride=3, weights=weights,
                          exact=True, pool="mean")
    with pytest.raises(FeatureError, match="quovadis flow"):
        fx.run(src, tmp_path / "out", workers=0, progress=False)
    fx.run(src, tmp_path / "out", flow_dir=tmp_path / "flow", workers=0, progress=False)
    got, _ = _read(tmp_path / "out" / "a.mp4.safetensors")
    assert got["frames"].tolist() == [[0, 4], [3, 7]]
    prep = zoo.info("i3d_inception_k400_flow").transform
    from zoo.data.flow_store import read_flow
    clip = prep(torch.from_numpy(read_flow(tmp_path / "flow" / "a.mp4", [3, 4, 5, 6])))
    with torch.inference_mode():
        want = net.eval().extract_endpoints(clip[None], ["Mixed_3b"])["Mixed_3b"].mean(dim=(2, 3, 4))
    torch.testing.assert_close(got["Mixed_3b"][1:], want, rtol=1e-5, atol=1e-6)


def test_cli_resumes_after_sigkill(tmp_path):
    src = make_moving_shapes(tmp_path / "ds", classes=2, per_class=4, frames=8, size=24, seed=5)
    n_videos = len(list(Path(src).rglob("*.mp4")))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "zoo.cli", "features", str(src), str(out), "--model", "i3d_inception_k400_rgb",
           "--endpoint", "Conv3d_2c_3x3", "--pool", "mean", "--clip-len", "8", "--stride", "8", "--workers", "0",
           "--batch-size", "1", "--no-progress"]
    torch.manual_seed(2)
    weights = tmp_path / "rgb.safetensors"
    save_file(zoo.load("i3d_inception_k400_rgb", pretrained=False).state_dict(), str(weights))
    cmd += ["--weights", str(weights)]
    proc = subprocess.Popen(cmd, env=ENV, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not list(out.rglob("*.safetensors")) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = {p: p.stat().st_mtime_ns for p in out.rglob("*.safetensors")}
    assert 1 <= len(finished) < n_videos, f"{len(finished)} of {n_videos} finished before the kill"
    for p in finished:  # everything that looks finished is whole (atomic writes)
        assert _read(p)[0]["Conv3d_2c_3x3"].shape == (1, 192)

    again = subprocess.run(cmd, env=ENV, cwd=ROOT, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"{n_videos - len(finished)} done, {len(finished)} already finished, 0 failed" in again.stdout
    assert "fast path: fused" in again.stderr
    assert len(list(out.rglob("*.safetensors"))) == n_videos
    assert all(p.stat().st_mtime_ns == t for p, t in finished.items())  # finished files were not redone


def test_array_files_are_video_sources(tmp_path):
    from zoo.data.decode import VideoDecodeError
    from zoo.data.video_folder import list_videos
    arr = np.random.default_rng(0).integers(0, 256, (3, 5, 6, 7, 3), dtype=np.uint8)
    np.save(tmp_path / "v.npy", arr)
    np.savez(tmp_path / "v.npz", videos=arr)
    for path in (tmp_path / "v.npy", tmp_path / "v.npz"):
        videos = list_videos(path)
        assert [v.name for v in videos] == [f"v_{i:06d}" for i in range(3)] and videos[2].num_frames() == 5
        np.testing.assert_array_equal(videos[2].read([4, 0]).numpy(), arr[2, [4, 0]])
    np.save(tmp_path / "bad.npy", arr.astype(np.float32))
    with pytest.raises(VideoDecodeError, match=r"bad.npy: expected uint8 videos \(N, T, H, W, 3\), got float32"):
        list_videos(tmp_path / "bad.npy")


def test_two_stream_follows_retimed_flow(videos, tmp_path):
    """Flow made by `quovadis flow --fps` indexes the retimed video: the RGB stream reads the same frames."""
    folder, rgb_weights = videos
    torch.manual_seed(3)
    flow_weights = tmp_path / "flow.safetensors"
    save_file(zoo.load("i3d_inception_k400_flow", pretrained=False).state_dict(), str(flow_weights))
    src = tmp_path / "src"
    src.mkdir()
    video = next(folder.glob("sub/*.mp4"))                      # 10 frames at 25 fps
    (src / "a.mp4").symlink_to(video)
    flow = np.random.default_rng(1).normal(0, 2, (4, 24, 30, 2)).astype(np.float32)
    write_flow(tmp_path / "flow" / "a.mp4", flow, algorithm="tvl1", fps=12.5, source_fps=25.0, fmt="npz-f16")
    fx = FeatureExtractor("i3d_inception_k400_two_stream", endpoints=["Mixed_3b"], clip_len=4, stride=4,
                          weights={"rgb": rgb_weights, "flow": flow_weights}, exact=True, pool="mean")
    fx.run(src, tmp_path / "out", flow_dir=tmp_path / "flow", workers=0, progress=False)
    got, _ = _read(tmp_path / "out" / "a.mp4.safetensors")
    assert sorted(got) == ["flow.Mixed_3b", "frames", "rgb.Mixed_3b", "timestamps"]
    torch.testing.assert_close(got["timestamps"], torch.tensor([[0.0, 4 / 12.5]], dtype=torch.float64))
    from zoo.data.decode import read_frames
    rgb = zoo.info("i3d_inception_k400_two_stream").transform["rgb"](read_frames(video, [0, 2, 4, 6]))
    net = zoo.load("i3d_inception_k400_rgb_imagenet", weights=rgb_weights)
    with torch.inference_mode():
        want = net.extract_endpoints(rgb[None], ["Mixed_3b"])["Mixed_3b"].mean(dim=(2, 3, 4))
    torch.testing.assert_close(got["rgb.Mixed_3b"], want, rtol=1e-5, atol=1e-6)
