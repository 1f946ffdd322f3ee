"""Synthetic moving-shapes dataset (zoo.data.synthetic) and optical flow (zoo.flow.extract, flow_store).

Tiny on purpose (32x32, 8 frames, 4 classes): TV-L1 costs ~50 ms per 32x32 flow frame on one core."""
from __future__ import annotations

import argparse
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

av = pytest.importorskip("av")
cv2 = pytest.importorskip("cv2")

from zoo.flow import extract as flowmod  # noqa: E402
from zoo.data import synthetic  # noqa: E402
from zoo.cli.flow import add_parser as add_flow_parser  # noqa: E402
from zoo.flow.extract import compute_flow, extract_dataset_flow, extract_video_flow  # noqa: E402
from zoo.flow.videos import read_gray_frames  # noqa: E402
from zoo.data.flow_store import (FORMATS, IncompleteFlowError, is_complete, read_flow, read_meta,  # noqa: E402
                                 write_flow)

SIZE, FRAMES, CLASSES, PER_CLASS, CORRUPT = 32, 8, 4, 4, 2
NAME_RE = re.compile(r"^(\w+)/v_\1_g(\d\d)_c(\d\d)\.mp4$")
CORRUPT_GROUP = 3  # per_class 4 -> 2 clips per group, groups 1-2; corrupt files are group 3


def decode(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def read_list(root: Path, name: str) -> list[list[str]]:
    return [line.split() for line in (root / "ucfTrainTestlist" / name).read_text().splitlines() if line.strip()]


def group_of(rel: str) -> int:
    return int(NAME_RE.match(rel).group(2))


def motion_direction(gray: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Median over frames of the mean flow on pixels that changed (the moving shape)."""
    changed = np.abs(np.diff(gray.astype(np.int16), axis=0)) > 25
    return np.median([flow[t][changed[t]].mean(0) for t in range(len(flow)) if changed[t].any()], axis=0)


def angle_deg(v: np.ndarray, u: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip(v @ u / (np.linalg.norm(v) * np.linalg.norm(u) + 1e-12), -1, 1))))


@pytest.fixture(scope="module")
def ucf(tmp_path_factory) -> Path:
    return synthetic.make_moving_shapes(tmp_path_factory.mktemp("syn") / "ucf", classes=CLASSES, per_class=PER_CLASS,
                                        frames=FRAMES, size=SIZE, seed=3, corrupt=CORRUPT)


def good_videos(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("*/*.mp4") if group_of(p.relative_to(root).as_posix()) != CORRUPT_GROUP)


# =========================================================================================== synthetic
def test_layout_lists_and_decoding(ucf):
    names = synthetic.class_names(CLASSES)
    class_ind = read_list(ucf, "classInd.txt")
    assert class_ind == [[str(i + 1), n] for i, n in enumerate(sorted(names))]
    label = {n: int(i) for i, n in class_ind}
    files = {p.relative_to(ucf).as_posix() for p in ucf.glob("*/*.mp4")}
    assert {p.name for p in ucf.iterdir()} == set(names) | {"ucfTrainTestlist"}
    assert {f.split("/")[0] for f in files} == set(names)
    assert all(NAME_RE.match(f) for f in files)
    assert len(files) == CLASSES * PER_CLASS + CORRUPT
    for split in ("01", "02", "03"):
        train, test = read_list(ucf, f"trainlist{split}.txt"), read_list(ucf, f"testlist{split}.txt")
        assert all(len(e) == 2 and int(e[1]) == label[e[0].split("/")[0]] for e in train)
        assert all(len(e) == 1 for e in test)
        train_f, test_f = {e[0] for e in train}, {e[0] for e in test}
        assert train_f | test_f == files and not train_f & test_f
        assert not {group_of(f) for f in train_f} & {group_of(f) for f in test_f}  # split by group, as UCF
        assert {f for f in files if group_of(f) == CORRUPT_GROUP} <= train_f      # corrupt ones are trained on
    for p in good_videos(ucf):
        assert decode(p).shape == (FRAMES, SIZE, SIZE, 3)
    corrupt = [p for p in ucf.glob("*/*.mp4") if group_of(p.relative_to(ucf).as_posix()) == CORRUPT_GROUP]
    assert len(corrupt) == CORRUPT
    for p in corrupt:
        with pytest.raises(av.error.FFmpegError):
            decode(p)


def test_deterministic_per_seed(ucf, tmp_path):
    again = synthetic.make_moving_shapes(tmp_path / "a", classes=CLASSES, per_class=PER_CLASS, frames=FRAMES,
                                         size=SIZE, seed=3, corrupt=CORRUPT)
    for p in ucf.rglob("*.*"):
        assert (again / p.relative_to(ucf)).read_bytes() == p.read_bytes(), p
    other = synthetic.make_moving_shapes(tmp_path / "b", classes=2, per_class=2, frames=FRAMES, size=SIZE, seed=4)
    rel = "MoveRight/v_MoveRight_g01_c01.mp4"
    assert (other / rel).read_bytes() != (ucf / rel).read_bytes()


def _nearest_centroid_accuracy(x: np.ndarray, y: np.ndarray, train: np.ndarray) -> float:
    classes = np.unique(y)
    centroids = np.stack([x[train & (y == c)].mean(0) for c in classes])
    pred = classes[np.argmin(((x[~train, None] - centroids[None]) ** 2).sum(-1), axis=1)]
    return float((pred == y[~train]).mean())


def test_a_single_frame_does_not_reveal_the_class():
    """Per frame, where the shape is and what it looks like must not depend on the direction class.
    Nearest-centroid on frame k (shape mask, and raw pixels) is at chance for the direction; the same
    classifier finds the shape's quadrant easily (so the features do carry position)."""
    names, k, n = synthetic.class_names(4), 5, 100
    masks, pixels, direction, quadrant = [], [], [], []
    for ci, name in enumerate(names):
        for i in range(n):
            rng = np.random.default_rng([11, ci, i])
            app = synthetic.random_appearance(rng, SIZE)
            frame = synthetic.render_moving_shape(name, FRAMES, SIZE, rng, appearance=app)[k].astype(np.float32)
            mask = np.abs(frame - app["background"]).sum(-1) > 60
            masks.append(mask.reshape(8, 4, 8, 4).mean((1, 3)).ravel())
            pixels.append(frame.reshape(8, 4, 8, 4, 3).mean((1, 3)).ravel())
            direction.append(ci)
            half = SIZE // 2
            quadrant.append(2 * (mask[:half].sum() > mask[half:].sum()) + (mask[:, :half].sum() > mask[:, half:].sum()))
    masks, pixels, direction, quadrant = map(np.asarray, (masks, pixels, direction, quadrant))
    train = np.tile(np.arange(n) < n // 2, len(names))
    chance, sigma = 0.25, np.sqrt(0.25 * 0.75 / (~train).sum())                  # 200 test frames: sigma .031
    assert _nearest_centroid_accuracy(masks, direction, train) < chance + 3.5 * sigma
    assert _nearest_centroid_accuracy(pixels, direction, train) < chance + 3.5 * sigma
    assert _nearest_centroid_accuracy(masks, quadrant, train) > 0.7                  # power: position is seen


def test_synthetic_cli(tmp_path, capsys):
    assert synthetic.main([str(tmp_path / "s"), "--classes", "2", "--per-class", "2", "--frames", "4",
                           "--size", "16", "--corrupt", "1"]) == 0
    assert len(list((tmp_path / "s").glob("*/*.mp4"))) == 5 and "wrote 5 videos" in capsys.readouterr().out


# =========================================================================================== flow
def _moving_square(dx: int, dy: int) -> np.ndarray:
    """Two gray frames: a bright textured 8x8 square on a smooth texture, moved by (dx, dy) pixels."""
    app = synthetic.random_appearance(np.random.default_rng(0), SIZE)
    bg = app["background"].mean(-1) * 0.5
    patch = np.random.default_rng(1).uniform(150, 255, (8, 8))     # textured, so the inside has flow too
    frames = []
    for t in range(2):
        f = bg.copy()
        y, x = 12 + t * dy, 12 + t * dx
        f[y:y + 8, x:x + 8] = patch
        frames.append(f)
    return np.clip(np.stack(frames), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("dx,dy", [(2, 0), (-2, 0), (0, 2)])
def test_tvl1_sign_convention(dx, dy):
    """x right, y down, flow[t] points from frame t to t+1: a square moving right has positive x flow."""
    gray = _moving_square(dx, dy)
    flow = compute_flow(gray, "tvl1")
    assert flow.shape == (1, SIZE, SIZE, 2) and flow.dtype == np.float32
    v = flow[0, 14:18, 14:18].mean((0, 1))     # the square's inside
    np.testing.assert_allclose(v, [dx, dy], atol=0.5)


def test_missing_contrib_gives_install_hint(monkeypatch):
    monkeypatch.delattr(cv2, "optflow", raising=False)
    with pytest.raises(ImportError, match="pip install opencv-contrib-python-headless"):
        compute_flow(_moving_square(2, 0), "tvl1")
    with pytest.raises(ImportError, match="opencv-python lacks TV-L1"):
        extract_dataset_flow(".", "unused", workers=1)


def test_farneback_and_gif_and_resize(tmp_path):
    """GIF input (Pillow), --size short-side resize, and the meta it records."""
    from PIL import Image
    video = synthetic.render_moving_shape("MoveRight", 5, SIZE, np.random.default_rng(1))
    frames = [Image.fromarray(f) for f in video]
    frames[0].save(tmp_path / "clip.gif", save_all=True, append_images=frames[1:], duration=50, loop=0)
    n = extract_video_flow(tmp_path / "clip.gif", tmp_path / "out", algorithm="farneback", size=16, fmt="npz-u8")
    meta = read_meta(tmp_path / "out")
    assert n == 4 and meta["num_frames"] == 4 and (meta["height"], meta["width"]) == (16, 16)
    assert meta["algorithm"] == "farneback" and meta["format"] == "npz-u8" and meta["fps"] == pytest.approx(20)
    assert read_flow(tmp_path / "out").shape == (4, 16, 16, 2)


# --------------------------------------------------------------------------------------- store
_HALF_STEP = {5.0: 5.0 / 255, 20.0: 20.0 / 255}


@settings(max_examples=30, deadline=None)
@given(flow=arrays(np.float32, st.tuples(st.integers(1, 3), st.integers(1, 9), st.integers(1, 9), st.just(2)),
                   elements=st.floats(-30, 30, width=32)),
       bound=st.sampled_from([5.0, 20.0]), fmt=st.sampled_from(["png", "npz-u8", "npz-f16", "jpg100"]))
def test_store_round_trip_error_bound(tmp_path_factory, flow, bound, fmt):
    """Any flow field: uint8 formats' error <= half a step (bound/255; 0.078 px at bound 20) after
    clipping; float16 <= half a float16 ulp at |v| <= 32 (0.0078 px); JPEG 100 <= half a step + 3 levels
    (measured at most 2 levels: over 5500 such random fields, and on real flow, 0.388 px; one level of
    margin). JPEG 95's loss depends on content (up to 9 levels on random images), so it is checked on
    real flow below against the benchmark's measured maximum."""
    d = tmp_path_factory.mktemp("rt")
    write_flow(d, flow, algorithm="test", bound=bound, fmt=fmt)
    back = read_flow(d)
    assert back.dtype == np.float32 and back.shape == flow.shape
    err = np.abs(back - np.clip(flow, -bound, bound)).max()
    limit = {"npz-f16": 2.0 ** -7, "jpg100": 7 * _HALF_STEP[bound]}.get(fmt, _HALF_STEP[bound])
    assert err <= limit + 1e-5  # + float32 rounding of the de-quantisation
    assert read_meta(d)["num_frames"] == len(flow)


@pytest.fixture(scope="module")
def tvl1_flows(ucf) -> list[np.ndarray]:
    return [compute_flow(read_gray_frames(p)[0], "tvl1") for p in good_videos(ucf)[::8]]  # 2 videos


# max abs error (px) over the TV-L1 flow of benchmarks/bench_flow.py (64x64 synthetic and the 224x224 GIF)
# (measured: jpg95 1.321 / 1.305, jpg100 0.388 / 0.385, float16 0.0020 / 0.0026; uint8 is exactly 20/255)
MEASURED_MAX_ERR = {"jpg95": 1.33, "jpg100": 0.39, "png": 20 / 255, "npz-u8": 20 / 255, "npz-f16": 0.003}


@pytest.mark.parametrize("fmt", FORMATS)
def test_store_error_on_real_flow(tvl1_flows, tmp_path, fmt):
    for i, flow in enumerate(tvl1_flows):
        write_flow(tmp_path / str(i), flow, algorithm="tvl1", fmt=fmt)
        err = np.abs(read_flow(tmp_path / str(i)) - np.clip(flow, -20, 20))
        assert err.max() <= MEASURED_MAX_ERR[fmt] + 1e-6, (fmt, err.max())


def test_store_completeness_and_errors(tmp_path, monkeypatch):
    flow = np.random.default_rng(0).normal(0, 3, (4, 6, 5, 2)).astype(np.float32)
    d = tmp_path / "v"
    write_flow(d, flow, algorithm="tvl1", fps=25, fmt="png")
    assert is_complete(d) and read_meta(d)["fps"] == 25 and read_meta(d)["format"] == "png"
    np.testing.assert_array_equal(read_flow(d, [2, 0]), read_flow(d)[[2, 0]])
    with pytest.raises(IndexError, match="4 flow frames"):
        read_flow(d, [4])
    (d / "flow_y_00002.png").unlink()
    with pytest.raises(IncompleteFlowError, match=re.escape(str(d)) + ".*frame 1"):
        read_flow(d)

    # a crash mid-write leaves no meta.json: not complete, and reading names the folder
    from zoo.data import flow_store
    real = flow_store._write_frame
    calls = []

    def crash(*a):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        real(*a)
    monkeypatch.setattr(flow_store, "_write_frame", crash)
    with pytest.raises(KeyboardInterrupt):                  # an interrupted rewrite leaves the old folder as it was
        write_flow(d, flow, algorithm="tvl1")
    assert read_meta(d)["format"] == "png" and sorted(p.name for p in tmp_path.iterdir()) == ["v"]
    calls.clear()
    fresh = tmp_path / "w"
    with pytest.raises(KeyboardInterrupt):                  # an interrupted first write leaves nothing at all
        write_flow(fresh, flow, algorithm="tvl1")
    assert not is_complete(fresh) and sorted(p.name for p in tmp_path.iterdir()) == ["v"]
    with pytest.raises(IncompleteFlowError, match=re.escape(str(fresh)) + ".*no meta.json"):
        read_flow(fresh)


# --------------------------------------------------------------------------------------- dataset
@pytest.fixture(scope="module")
def flow_all(ucf, tmp_path_factory):
    """TV-L1 flow of the whole synthetic set (16 videos + 2 corrupt), 1 process."""
    out = tmp_path_factory.mktemp("flow_all")
    return out, _run(ucf, out)


def _run(src, out, workers=1):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        summary = extract_dataset_flow(src, out, workers=workers, size=None, progress=False)
    return summary, [str(x.message) for x in w if "flow extraction failed" in str(x.message)]


def test_motion_reveals_the_class(ucf, flow_all):
    """The TV-L1 flow direction of every video is its class's direction (all within 22.5 deg, so even the
    nearest of 8 directions would be right). Measured on 128 such videos: worst 19 deg, median ~1 deg."""
    angles = []
    for p in good_videos(ucf):
        gray, _ = read_gray_frames(p)
        flow = read_flow(flow_all[0] / p.relative_to(ucf))
        angles.append(angle_deg(motion_direction(gray, flow), synthetic.direction(p.parent.name)))
    assert len(angles) == CLASSES * PER_CLASS
    assert max(angles) < 22.5 and np.median(angles) < 5, np.round(angles, 1)


def test_extraction_skips_bad_videos_with_one_warning_each(ucf, flow_all):
    out, (summary, warns) = flow_all
    bad = sorted(str(p) for p in ucf.glob("*/*.mp4") if group_of(p.relative_to(ucf).as_posix()) == CORRUPT_GROUP)
    n_good = CLASSES * PER_CLASS
    assert (summary["videos"], summary["done"], summary["skipped"]) == (n_good + CORRUPT, n_good, 0)
    assert sorted(summary["failed"]) == bad and summary["flow_frames"] == n_good * (FRAMES - 1)
    assert len(warns) == CORRUPT and all(sum(b in w for w in warns) == 1 for b in bad)
    dirs = sorted(p.parent for p in out.glob("*/*/meta.json"))
    assert [d.relative_to(out).as_posix() for d in dirs] == \
        [p.relative_to(ucf).as_posix() for p in good_videos(ucf)]
    for d in dirs:
        assert read_flow(d).shape == (FRAMES - 1, SIZE, SIZE, 2) and read_meta(d)["algorithm"] == "tvl1"
    assert not any((out / Path(b).relative_to(ucf)).exists() for b in bad)  # no partial output
    assert not [p for p in out.rglob(".*")]                                      # no private folder left


@pytest.fixture(scope="module")
def flow_src(ucf, tmp_path_factory) -> Path:
    """3 good videos of different classes + 1 corrupt one, in UCF layout."""
    src = tmp_path_factory.mktemp("src")
    good = good_videos(ucf)
    corrupt = next(p for p in ucf.glob("*/*.mp4") if group_of(p.relative_to(ucf).as_posix()) == CORRUPT_GROUP)
    for p in [good[0], good[5], good[10], corrupt]:
        (src / p.parent.name).mkdir(exist_ok=True)
        shutil.copy(p, src / p.parent.name / p.name)
    return src


def test_extraction_resumes(ucf, flow_all, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(flow_all[0], out)
    stamp = lambda: {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}  # noqa: E731
    before = stamp()
    summary, warns = _run(ucf, out)
    n_good = CLASSES * PER_CLASS
    assert (summary["done"], summary["skipped"], len(summary["failed"]), len(warns)) == (0, n_good, CORRUPT, CORRUPT)
    assert stamp() == before                                              # nothing rewritten

    dirs = sorted(p.parent for p in out.glob("*/*/meta.json"))
    a, b = dirs[0], dirs[5]
    (a / "meta.json").unlink()                                            # meta.json gone -> redone
    (b / "meta.json").unlink()                                            # frames, stale extras, no meta
    (b / "flow_x_00099.jpg").write_bytes(b"stale")
    (b / "notes.txt").write_text("not ours")
    before = stamp()
    summary, _ = _run(ucf, out)
    assert (summary["done"], summary["skipped"]) == (2, n_good - 2)
    after = stamp()
    assert all(after[p] == t for p, t in before.items() if p.parent not in (a, b))  # others untouched
    first = next(a.glob("flow_*00001.*"))
    assert after[first] != before[first]                                  # rewritten
    assert not (b / "flow_x_00099.jpg").exists() and (b / "notes.txt").exists()
    for d in (a, b):
        np.testing.assert_array_equal(read_flow(d), read_flow(flow_all[0] / d.relative_to(out)))


def test_two_workers_equal_one_worker(flow_src, flow_all, tmp_path):
    summary, warns = _run(flow_src, tmp_path, workers=2)
    assert (summary["done"], len(summary["failed"]), len(warns)) == (3, 1, 1)
    metas = list(tmp_path.glob("*/*/meta.json"))
    assert len(metas) == 3
    for meta in metas:
        rel = meta.parent.relative_to(tmp_path)
        np.testing.assert_array_equal(read_flow(tmp_path / rel), read_flow(flow_all[0] / rel))


def test_flow_cli(flow_src, tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="quovadis")
    add_flow_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["flow", str(flow_src), str(tmp_path), "--workers", "1", "--algorithm", "farneback",
                              "--format", "jpg95", "--size", "0", "--no-progress"])
    with pytest.warns(RuntimeWarning, match="flow extraction failed"):
        assert args.func(args) == 1                                       # the corrupt video
    out = capsys.readouterr().out
    assert "4 videos: 3 done, 0 already complete, 1 failed" in out
    assert len(list(tmp_path.glob("*/*/flow_x_00001.jpg"))) == 3
    assert flowmod.DEFAULT_FORMAT == "jpg95"
