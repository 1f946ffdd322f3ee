"""The one lister (zoo.data.video_folder): which files are videos, what their outputs are called and which
shard they belong to, as flow, features and FVD see it (issue 19, bugs 2, 3, 5, 6, 7 and 8).

Real tiny video files (PyAV, 32x32, a few frames) in real containers."""
from __future__ import annotations

import argparse
import threading
import time
import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

av = pytest.importorskip("av")
cv2 = pytest.importorskip("cv2")

from zoo.cli.flow import add_parser as add_flow_parser
from zoo.data.flow_store import is_complete, read_flow, read_meta
from zoo.data.video_folder import list_videos, parse_shard, select_shard
from zoo.flow.extract import extract_dataset_flow


def write_clip(path: Path, n: int = 5, h: int = 32, w: int = 32, seed: int = 0) -> Path:
    """An H.264 clip of ``n`` random-texture frames moving right by 1 px per frame; the container is the one
    FFmpeg picks for the file's extension (.mp4, .avi, .mov, .m4v, .mkv)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (h, w + n, 3), dtype=np.uint8)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.codec_context.thread_count = 1
        for t in range(n):
            f = av.VideoFrame.from_ndarray(np.ascontiguousarray(base[:, n - t:n - t + w]), format="rgb24")
            f.pts, f.time_base = t, Fraction(1, 25)
            c.mux(s.encode(f))
        c.mux(s.encode())
    return path


def write_image(path: Path, seed: int = 0) -> Path:
    from PIL import Image
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(path)
    return path


def flow(src, out, **kw) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return extract_dataset_flow(src, out, workers=1, algorithm=kw.pop("algorithm", "farneback"), size=None,
                                    progress=False, **kw)


def complete_folders(out: Path) -> list[str]:
    return sorted(p.parent.relative_to(out).as_posix() for p in out.rglob("meta.json")
                  if not any(part.startswith(".") for part in p.relative_to(out).parts))


# ---------------------------------------------------------------- bug 7: one extension list

def test_bug7_flow_reads_mov_and_m4v_like_features_do(tmp_path):
    src = tmp_path / "src"
    for name in ("a.mov", "b.m4v", "c.mp4"):
        write_clip(src / name)
    assert [v.name for v in list_videos(src)] == ["a.mov", "b.m4v", "c.mp4"]
    s = flow(src, tmp_path / "flow")
    assert (s["videos"], s["done"], s["failed"]) == (3, 3, [])
    assert complete_folders(tmp_path / "flow") == ["a.mov", "b.m4v", "c.mp4"]


# ---------------------------------------------------------------- bug 2: outputs keep the extension

def test_bug2_same_stem_videos_get_separate_outputs(tmp_path):
    src = tmp_path / "src"
    write_clip(src / "a.mp4", seed=1)
    write_clip(src / "a.avi", n=7, seed=2)
    videos = list_videos(src)
    assert [v.name for v in videos] == ["a.avi", "a.mp4"]
    out = tmp_path / "flow"
    assert [v.output_path(out).name for v in videos] == ["a.avi", "a.mp4"]
    assert [v.output_path(out, ".safetensors").name for v in videos] == ["a.avi.safetensors", "a.mp4.safetensors"]
    s = flow(src, out)
    assert (s["done"], s["skipped"]) == (2, 0)
    assert complete_folders(out) == ["a.avi", "a.mp4"]
    assert read_meta(out / "a.avi")["num_frames"] == 6 and read_meta(out / "a.mp4")["num_frames"] == 4
    again = flow(src, out)
    assert (again["done"], again["skipped"]) == (0, 2)
    # under --shard 0/2 and 1/2 each video lands in its own folder, written by one process
    sharded = tmp_path / "sharded"
    for k in range(2):
        flow(src, sharded, shard=f"{k}/2")
    assert complete_folders(sharded) == ["a.avi", "a.mp4"]


# ---------------------------------------------------------------- bug 3: stray images are not videos

def test_bug3_a_cover_image_beside_videos_is_not_a_video(tmp_path):
    src = tmp_path / "src"
    for i in range(3):
        write_clip(src / f"v{i}.mp4", seed=i)
    write_image(src / "cover.jpg")
    write_image(src / "class_a" / "thumb.png")
    write_clip(src / "class_a" / "w.mkv", seed=5)
    assert [v.name for v in list_videos(src)] == ["class_a/w.mkv", "v0.mp4", "v1.mp4", "v2.mp4"]
    assert all(v.kind == "file" for v in list_videos(src))


def test_bug3_frame_folders_are_videos_and_a_stray_image_above_them_is_not(tmp_path):
    src = tmp_path / "src"
    for d in ("clip1", "clip2"):
        for i in range(4):
            write_image(src / d / f"img_{i:05d}.jpg", seed=i)
    write_image(src / "cover.jpg")
    videos = list_videos(src)
    assert [(v.name, v.kind) for v in videos] == [("clip1", "frames"), ("clip2", "frames")]
    assert videos[0].num_frames() == 4 and videos[0].read([0, 3]).shape == (2, 24, 24, 3)
    # a folder that is itself one video of frames keeps working
    only = list_videos(src / "clip1")
    assert [(v.name, v.kind, v.num_frames()) for v in only] == [("clip1", "frames", 4)]


# ---------------------------------------------------------------- bug 8: one shard order

def test_bug8_flow_features_and_fvd_put_the_same_videos_in_each_shard(tmp_path):
    """Names chosen so that sorting by path-with-extension ('a-b.mp4' < 'a.mp4') and by name-without-extension
    ('a' < 'a-b') disagree: --shard K/N of flow and of features must still pick the same videos."""
    from safetensors.torch import save_file

    import zoo
    from zoo.metrics.features import FeatureExtractor

    src = tmp_path / "src"
    for i, name in enumerate(("a.mp4", "a-b.mp4", "b.mp4")):
        write_clip(src / name, n=4, seed=i)
    torch.manual_seed(0)
    weights = tmp_path / "rgb.safetensors"
    save_file(zoo.load("i3d_inception_k400_rgb", pretrained=False).state_dict(), str(weights))
    fx = FeatureExtractor("i3d_inception_k400_rgb", endpoints=["Conv3d_1a_7x7"], clip_len=4, stride=4,
                          weights=weights, exact=True, batch_size=1)
    for k in range(2):
        flow_out, feat_out = tmp_path / f"flow{k}", tmp_path / f"feat{k}"
        flow(src, flow_out, shard=f"{k}/2")
        fx.run(src, feat_out, shard=(k, 2), workers=0, progress=False)
        feats = sorted(p.relative_to(feat_out).as_posix().removesuffix(".safetensors")
                       for p in feat_out.rglob("*.safetensors"))
        assert complete_folders(flow_out) == feats
        assert feats == sorted(v.name for v in select_shard(list_videos(src), *parse_shard(f"{k}/2")))


# ---------------------------------------------------------------- bug 6: one bad video, not the dataset

def test_bug6_a_solver_error_fails_one_video_and_the_run_goes_on(tmp_path, capsys):
    """(OpenCV's TV-L1 computes a 2x40 video's flow; its per-video failure path is tested in
    test_synthetic_and_flow.py with corrupt files.)"""
    src = tmp_path / "src"
    write_clip(src / "a.mp4", n=3, seed=1)
    write_clip(src / "thin.mp4", n=3, h=2, w=40, seed=2)    # 2x40 at --size 0: too small for the TV-L1 pyramid
    write_clip(src / "z.mp4", n=3, seed=3)
    parser = argparse.ArgumentParser()
    add_flow_parser(parser.add_subparsers())
    args = parser.parse_args(["flow", str(src), str(tmp_path / "out"), "--size", "0", "--workers", "1",
                              "--algorithm", "tvl1-torch", "--no-progress", "--batch-size", "8"])
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        rc = args.func(args)
    printed = capsys.readouterr().out
    assert complete_folders(tmp_path / "out") == ["a.mp4", "z.mp4"]
    assert rc == 1 and "1 failed" in printed and "thin.mp4" in printed
    assert any("thin.mp4" in str(x.message) for x in w)


# ---------------------------------------------------------------- bug 5: overlapping runs

def test_bug5_planning_of_a_second_run_does_not_break_a_folder_being_written(tmp_path):
    """Run A writes a long flow video (PNG frames, so writing takes a while). While A is writing, run B plans
    the same output folder (as a re-queued SLURM job does). Whatever B's planning does, a folder that ends up
    with meta.json must hold every one of its frames."""
    from zoo.flow.videos import plan_videos
    src = tmp_path / "src"
    write_clip(src / "long.mp4", n=48, h=160, w=160, seed=4)
    out = tmp_path / "out"
    result = {}
    run_a = threading.Thread(target=lambda: result.update(flow(src, out, fmt="png")))
    run_a.start()
    deadline = time.monotonic() + 120
    while not any(out.rglob("flow_x_00001.png")) and time.monotonic() < deadline and run_a.is_alive():
        time.sleep(0.001)
    caught_mid_write = not is_complete(out / "long.mp4")
    plan_videos(src, out)                                   # run B's planning, while A writes
    run_a.join()
    assert caught_mid_write, "run A finished before the test could plan beside it: make the clip longer"
    assert result["done"] == 1 and is_complete(out / "long.mp4")
    assert read_flow(out / "long.mp4").shape == (47, 160, 160, 2)


def test_two_whole_overlapping_runs_leave_one_whole_folder_and_no_private_ones(tmp_path):
    """Run B plans, computes and publishes the video while run A is still writing it; A then publishes over
    B's folder. Both succeed, the folder is whole, and neither run's private folder is left behind."""
    src = tmp_path / "src"
    write_clip(src / "long.mp4", n=48, h=160, w=160, seed=4)
    out = tmp_path / "out"
    result = {}
    run_a = threading.Thread(target=lambda: result.update(flow(src, out, fmt="png")))
    run_a.start()
    deadline = time.monotonic() + 120
    while not any(out.rglob("flow_x_00001.png")) and time.monotonic() < deadline and run_a.is_alive():
        time.sleep(0.001)
    b = flow(src, out, fmt="png")
    run_a.join()
    assert (result["done"], b["done"]) == (1, 1) and not result["failed"] and not b["failed"]
    assert read_flow(out / "long.mp4").shape == (47, 160, 160, 2)
    assert sorted(p.name for p in out.iterdir()) == ["long.mp4"]


# ---------------------------------------------------------------- the lister's rules, one by one

def test_output_path_appends_the_suffix_to_the_name_with_its_extension():
    from zoo.data.video_folder import Video, output_path
    assert output_path("OUT", "sub/a.mp4", ".safetensors") == Path("OUT/sub/a.mp4.safetensors")
    assert output_path(Path("OUT"), "a.mp4") == Path("OUT/a.mp4")                   # flow: a folder per video
    v = Video("sub/a.mp4", Path("src/sub/a.mp4"), "file")
    assert v.output_path("OUT") == Path("OUT/sub/a.mp4")
    assert v.output_path("OUT", ".npy") == Path("OUT/sub/a.mp4.npy")


def test_a_video_file_is_counted_timed_and_read(tmp_path):
    path = write_clip(tmp_path / "Clip.MP4", n=5)                 # the extension in any case
    (v,) = list_videos(path)
    assert (v.name, v.path, v.kind, v.index) == ("Clip.MP4", path, "file", 0)
    assert v.num_frames() == 5 and v.fps() == 25.0
    np.testing.assert_allclose(v.frame_times(), np.arange(5) / 25.0)
    assert v.read([4, 0]).shape == (2, 32, 32, 3) and v.read().shape == (5, 32, 32, 3)
    assert [x.name for x in list_videos(tmp_path)] == ["Clip.MP4"]


def test_a_folder_of_frames_is_read_in_file_name_order_at_25_fps(tmp_path):
    d = tmp_path / "clip"
    for i in (2, 0, 1):
        write_image(d / f"img_{i}.PNG", seed=i)                    # image extensions in any case
    (d / "notes.txt").write_text("not a frame")
    (d / "sub.jpg").mkdir()                                        # a folder named like an image is no frame
    (v,) = list_videos(tmp_path)
    assert (v.name, v.kind) == ("clip", "frames")
    assert v.num_frames() == 3 and v.fps() == 25.0
    np.testing.assert_array_equal(v.frame_times(), np.arange(3) / 25.0)
    frames = v.read()
    assert frames.dtype == torch.uint8 and frames.shape == (3, 24, 24, 3)
    from PIL import Image
    with Image.open(d / "img_2.PNG") as im:
        np.testing.assert_array_equal(v.read([2]).numpy()[0], np.asarray(im.convert("RGB")))
    np.testing.assert_array_equal(v.read(range(3)).numpy(), frames.numpy())
    Image.fromarray(np.full((24, 24), 77, np.uint8), mode="L").save(d / "img_3.PNG")     # grey frames read as RGB
    Image.fromarray(np.full((24, 24, 4), 9, np.uint8), mode="RGBA").save(d / "img_4.PNG")
    assert v.read([3, 4]).tolist() == [np.full((24, 24, 3), 77).tolist(), np.full((24, 24, 3), 9).tolist()]


def test_a_folder_of_frames_names_what_it_cannot_read(tmp_path):
    from zoo.data.decode import VideoDecodeError
    d = tmp_path / "clip"
    write_image(d / "a.png")
    write_image(d / "b.png")
    (v,) = list_videos(tmp_path)
    with pytest.raises(VideoDecodeError, match=r"clip: has 2 frames, frame 2 asked$"):
        v.read([0, 2, 5])
    (d / "c.png").write_bytes(b"not a png")
    with pytest.raises(VideoDecodeError, match=r"^cannot read frame image .*c\.png: "):
        v.read([2])
    from PIL import Image
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(d / "c.png")
    assert v.read([2]).shape == (1, 8, 8, 3)
    with pytest.raises(VideoDecodeError, match=r"clip: frame images differ in size$"):
        v.read([0, 2])


def test_array_sources_name_entries_by_stem_and_index(tmp_path):
    from zoo.data import video_folder as VF
    arr = np.random.default_rng(0).integers(0, 256, (2, 3, 4, 5, 3), dtype=np.uint8)
    with open(tmp_path / "one.NPZ", "wb") as f:                    # the extension in any case
        np.savez(f, anything=arr)                                  # one array: whatever its name
    np.savez(tmp_path / "named.npz", videos=arr, labels=np.arange(2))
    for name in ("one.NPZ", "named.npz"):
        videos = list_videos(tmp_path / name)
        stem = name.split(".")[0]
        assert [(v.name, v.kind, v.index) for v in videos] == [(f"{stem}_000000", "array", 0),
                                                              (f"{stem}_000001", "array", 1)]
        assert videos[1].num_frames() == 3 and videos[1].fps() == 25.0
        np.testing.assert_array_equal(videos[1].frame_times(), np.arange(3) / 25.0)
        np.testing.assert_array_equal(videos[1].read().numpy(), arr[1])
        np.testing.assert_array_equal(videos[0].read([2, 0]).numpy(), arr[0, [2, 0]])
    assert VF._load_array(tmp_path / "one.NPZ") is VF._load_array(tmp_path / "one.NPZ")   # read once
    np.save(tmp_path / "big.npy", arr)
    assert isinstance(VF._load_array(tmp_path / "big.npy"), np.memmap)   # an .npy is mapped, not loaded
    # an array file is a source of its own, not a video inside a folder
    with pytest.raises(ValueError, match="holds no videos"):
        list_videos(tmp_path)


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: np.savez(p, a=np.zeros((1, 1, 1, 1, 3), np.uint8), b=np.zeros(1)),
     r"an \.npz of videos needs one array or a 'videos' entry, found \['a', 'b'\]$"),
    (lambda p: p.write_bytes(b"PK not a zip"), r"^cannot read video array .*bad\.npz: "),
    (lambda p: np.savez(p, np.zeros((1, 2, 3, 3), np.uint8)), r"expected uint8 videos \(N, T, H, W, 3\), got uint8 "
                                                             r"\(1, 2, 3, 3\); convert with"),
    (lambda p: np.savez(p, np.zeros((1, 1, 2, 2, 4), np.uint8)), r"got uint8 \(1, 1, 2, 2, 4\)"),
    (lambda p: np.savez(p, np.zeros((1, 1, 2, 2, 3), np.float32)), r"got float32 \(1, 1, 2, 2, 3\)"),
])
def test_array_files_that_are_not_videos_say_why(tmp_path, make, message):
    from zoo.data.decode import VideoDecodeError
    make(tmp_path / "bad.npz")
    with pytest.raises(VideoDecodeError, match=message):
        list_videos(tmp_path / "bad.npz")


def test_sources_that_hold_no_video_say_what_is_expected(tmp_path):
    from zoo.data.video_folder import is_video_file
    assert is_video_file("a.MKV") and is_video_file(Path("x/b.webm")) and not is_video_file("c.jpg")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match=r"notes\.txt: not a folder of videos, a video file or an \.npy/\.npz "
                                         r"array of videos$"):
        list_videos(tmp_path / "notes.txt")
    with pytest.raises(FileNotFoundError, match=r"^no such file or folder: .*missing$"):
        list_videos(tmp_path / "missing")
    with pytest.raises(ValueError, match=r"holds no videos: expected video files \(\.mp4 \.avi \.mkv \.webm \.mov "
                                         r"\.m4v \.gif\) or folders of frame images \(\.jpg \.jpeg \.png \.bmp "
                                         r"\.webp\)$"):
        list_videos(tmp_path)


def test_frame_folders_nest_and_sort_with_video_files(tmp_path):
    """Names are relative paths sorted as plain strings; a folder of images with a video file or another frame
    folder below it is not a video; the source folder itself may be one video of frames."""
    write_image(tmp_path / "src" / "b" / "f0.jpg")
    write_image(tmp_path / "src" / "b" / "deeper" / "f0.jpg")      # b is above a frame folder: not a video
    write_image(tmp_path / "src" / "c" / "f0.jpeg")
    write_clip(tmp_path / "src" / "c" / "inner" / "x.gif.mp4", n=2)  # c holds a video below it: not a video
    write_image(tmp_path / "src" / "a-b" / "f0.bmp")
    videos = list_videos(tmp_path / "src")
    assert [(v.name, v.kind) for v in videos] == [("a-b", "frames"), ("b/deeper", "frames"),
                                                  ("c/inner/x.gif.mp4", "file")]
    (only,) = list_videos(tmp_path / "src" / "a-b")
    assert (only.name, only.path, only.kind) == ("a-b", tmp_path / "src" / "a-b", "frames")


@pytest.mark.parametrize(("spec", "want"), [(None, (0, 1)), ("", (0, 1)), ("0/1", (0, 1)), (" 2 / 5 ", (2, 5)),
                                           ("9/10", (9, 10))])
def test_parse_shard_reads_k_of_n(spec, want):
    assert parse_shard(spec) == want


@pytest.mark.parametrize(("spec", "message"), [
    ("1", r"^--shard must look like K/N \(e\.g\. 0/4: the first of 4 shards\), got '1'$"),
    ("a/b", r"got 'a/b'$"),
    ("1/2/3", r"got '1/2/3'$"),
    ("x1/2", r"got 'x1/2'$"),
    ("4/4", r"^--shard 4/4: need N >= 1 and 0 <= K < N \(K counts from 0, so 0/4 \.\.\. 3/4\)$"),
    ("0/0", r"^--shard 0/0: need N >= 1 and 0 <= K < N \(K counts from 0, so 0/1 \.\.\. 0/1\)$"),
])
def test_parse_shard_refusals_say_how(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_shard(spec)


@pytest.mark.parametrize(("k", "n"), [(1, 1), (-1, 2), (0, 0), (3, 2)])
def test_select_shard_refuses_a_shard_that_does_not_exist(k, n):
    with pytest.raises(ValueError, match=rf"^shard {k}/{n}: need N >= 1 and 0 <= K < N$"):
        select_shard(["a", "b"], k, n)


def test_select_shard_takes_every_nth_from_k():
    items = ("a", "b", "c", "d", "e")                              # any sequence; a list comes back
    assert select_shard(items, 0, 1) == list(items)
    assert select_shard(items, 1, 2) == ["b", "d"] and select_shard(items, 0, 2) == ["a", "c", "e"]
    assert select_shard(items, 4, 5) == ["e"] and select_shard([], 0, 3) == []
