"""A tiny UCF-101-shaped dataset of real MP4 videos whose classes differ ONLY in motion.

Each video shows one shape (square, disc or triangle; random colour, size and rotation) on a static
textured or noisy background, moving in one of 8 directions at a random speed. The class is the
direction (``MoveRight``, ``MoveUpRight``, ...), so a model must look at motion to tell classes apart:

* the start position is uniform over the frame and motion wraps around the frame edges (the frame is a
  torus), so at every frame k the shape's position is uniform whatever the class -- no single frame
  (position, appearance, background) carries information about the class;
* appearance (shape, colour, size, rotation, background, noise) is drawn independently of the class.

Layout, exactly as UCF-101 (but ``.mp4``)::

    ROOT/<Class>/v_<Class>_g<GG>_c<CC>.mp4
    ROOT/ucfTrainTestlist/classInd.txt        "1 MoveDown"            (classes sorted by name, as UCF)
    ROOT/ucfTrainTestlist/trainlist0{1,2,3}.txt  "MoveDown/v_MoveDown_g02_c01.mp4 1"
    ROOT/ucfTrainTestlist/testlist0{1,2,3}.txt   "MoveDown/v_MoveDown_g01_c01.mp4"

Clips of one group share background and shape (like UCF's groups share actor and scene), and the
train/test split is by group, so test groups are unseen. ``corrupt=N`` adds N undecodable ``.mp4``
files (truncated or garbage) as the clips of one extra group ``g{groups+1}``, listed in every trainlist.

    python -m zoo.data.synthetic OUT [--classes 8] [--per-class 12] [--frames 32] [--size 64] [--seed 0]
"""
from __future__ import annotations

import argparse
import math
import os
from fractions import Fraction
from pathlib import Path

import numpy as np

# Canonical order (counter-clockwise from right); image y points DOWN, so "Up" is dy = -1.
DIRECTIONS: dict[str, tuple[float, float]] = {
    "MoveRight": (1.0, 0.0), "MoveUpRight": (1.0, -1.0), "MoveUp": (0.0, -1.0), "MoveUpLeft": (-1.0, -1.0),
    "MoveLeft": (-1.0, 0.0), "MoveDownLeft": (-1.0, 1.0), "MoveDown": (0.0, 1.0), "MoveDownRight": (1.0, 1.0),
}
_NAMES = list(DIRECTIONS)
SHAPES = ("square", "disc", "triangle")
CLIPS_PER_GROUP = 4


def class_names(classes: int = 8) -> list[str]:
    """The ``classes`` direction names used (2, 4 or 8 evenly spaced directions), in canonical order."""
    if classes not in (2, 4, 8):
        raise ValueError(f"classes must be 2, 4 or 8 (evenly spaced directions), got {classes}")
    return _NAMES[:: 8 // classes]


def direction(name: str) -> np.ndarray:
    """Unit motion vector ``(dx, dy)`` in image coordinates (y down) of a class name."""
    v = np.asarray(DIRECTIONS[name])
    return v / np.linalg.norm(v)


# --------------------------------------------------------------------------------------------- rendering
def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A static (size, size, 3) float background: smooth blobs, a grating, or pixel noise."""
    kind = rng.integers(3)
    base = rng.uniform(60, 190, 3)
    if kind == 0:  # smooth texture: a coarse random grid, bilinearly upsampled
        n = int(rng.integers(3, 7))
        grid = rng.uniform(-40, 40, (n + 1, n + 1, 3))
        t = np.linspace(0, n, size, endpoint=False)
        i, f = t.astype(int), (t - t.astype(int))[:, None]
        rows = grid[i] * (1 - f[..., None]) + grid[i + 1] * f[..., None]            # (size, n+1, 3)
        tex = rows[:, i] * (1 - f.T[..., None]) + rows[:, i + 1] * f.T[..., None]  # (size, size, 3)
    elif kind == 1:  # grating of random orientation and period
        ang, period = rng.uniform(0, math.pi), rng.uniform(5, 12)
        y, x = np.mgrid[:size, :size]
        wave = np.sin(2 * math.pi * (x * math.cos(ang) + y * math.sin(ang)) / period)
        tex = wave[..., None] * rng.uniform(8, 25, 3)
    else:  # static pixel noise
        tex = rng.normal(0, rng.uniform(8, 25), (size, size, 3))
    return base + tex


def _pick_colour(rng: np.random.Generator, bg_mean: np.ndarray) -> np.ndarray:
    """A random colour whose luma differs from the background's by >= 60 (so the shape stays visible;
    rejection sampling keeps it independent of the class)."""
    luma = np.array([0.299, 0.587, 0.114])
    while True:
        c = rng.uniform(0, 255, 3)
        if abs(c @ luma - bg_mean @ luma) >= 60:
            return c


def render_moving_shape(direction_name: str, frames: int = 32, size: int = 64,
                        rng: np.random.Generator | None = None, *, appearance: dict | None = None) -> np.ndarray:
    """Frames ``(frames, size, size, 3)`` uint8 RGB of one shape moving in ``direction_name``.

    ``appearance`` (from :func:`random_appearance`) fixes background/shape/colour (a UCF "group"); the rest
    (start, speed, size, rotation, noise) is drawn from ``rng`` for this clip."""
    rng = rng if rng is not None else np.random.default_rng()
    app = appearance if appearance is not None else random_appearance(rng, size)
    start = rng.uniform(0, size, 2)                       # uniform start + wrapping => uniform position
    speed = rng.uniform(0.03, 0.08) * size                 # pixels / frame
    radius = rng.uniform(0.12, 0.22) * size                # circumradius << size/2: torus distance exact
    theta = rng.uniform(0, 2 * math.pi)                    # orientation, independent of the motion
    noise = rng.uniform(0, 4)                              # temporal sensor noise

    t = np.arange(frames)[:, None]
    centre = ((start + t * speed * direction(direction_name)) % size).astype(np.float32)  # (T, 2): x, y
    px = np.arange(size, dtype=np.float32) + 0.5                        # pixel centres (float32: speed)
    # shortest displacement on the torus (the shape leaving one edge re-enters at the opposite one);
    # separable, so computed as (T, 1, W) and (T, H, 1) and broadcast
    dx = ((px[None] - centre[:, :1] + size / 2) % size - size / 2)[:, None, :]
    dy = ((px[None] - centre[:, 1:] + size / 2) % size - size / 2)[:, :, None]
    u = dx * math.cos(theta) + dy * math.sin(theta)                      # shape-local coordinates
    v = -dx * math.sin(theta) + dy * math.cos(theta)
    if app["shape"] == "disc":
        sd = np.hypot(u, v) - 0.85 * radius
    elif app["shape"] == "square":
        sd = np.maximum(abs(u), abs(v)) - 0.75 * radius
    else:  # equilateral triangle: max over its 3 edge half-planes (inradius = radius / 2)
        angles = math.pi / 2 + np.arange(3) * 2 * math.pi / 3
        sd = np.max([u * math.cos(a) + v * math.sin(a) for a in angles], axis=0) - radius / 2
    alpha = np.clip(0.5 - sd, 0, 1)[..., None]                           # 1-pixel anti-aliased edge
    bg, colour = app["background"].astype(np.float32), app["colour"].astype(np.float32)
    video = bg + alpha * (colour - bg)
    video += rng.standard_normal(video.shape[:-1] + (1,), dtype=np.float32) * np.float32(noise)  # luma noise
    return np.clip(np.rint(video), 0, 255).astype(np.uint8)


def random_appearance(rng: np.random.Generator, size: int) -> dict:
    """What a UCF "group" shares: ``{"background": (size, size, 3) float, "shape": str, "colour": (3,)}``."""
    bg = _background(rng, size)
    return {"background": bg, "shape": SHAPES[rng.integers(len(SHAPES))],
            "colour": _pick_colour(rng, bg.reshape(-1, 3).mean(0))}


# --------------------------------------------------------------------------------------------- encoding
def encode_mp4(path: Path, video: np.ndarray, fps: float = 25) -> None:
    """Write uint8 RGB frames ``(T, H, W, 3)`` as H.264 (libx264, else MPEG-4 Part 2) in an MP4."""
    import av

    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    rate = Fraction(fps).limit_denominator(1001)
    tmp = path.with_name(path.name + ".part")
    with av.open(str(tmp), "w", format="mp4") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.height, stream.width = video.shape[1:3]
        stream.pix_fmt = "yuv420p"
        # Byte-identical files for identical frames. Measured (300 encodes of the same 8 frames, 3 runs):
        # default x264 gave 4-5 distinct files, mbtree=0 gave 1 (macroblock-tree rate control is
        # apparently not deterministic on these tiny frames). One thread: independent of the core count.
        if codec == "libx264":
            stream.options = {"threads": "1", "crf": "18", "preset": "veryfast", "x264-params": "mbtree=0"}
        else:
            stream.options, stream.bit_rate = {"threads": "1"}, 2_000_000
        for i, img in enumerate(video):
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = i, 1 / rate
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    os.replace(tmp, path)


def _corrupt_bytes(rng: np.random.Generator, valid: bytes, i: int) -> bytes:
    if i % 2 == 0:
        # truncated MP4: the moov atom (index) is written last, so the first 40% cannot be decoded
        return valid[: int(len(valid) * 0.4)]
    # garbage behind a plausible 'ftyp' header: probing says MP4, demuxing fails
    return b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + rng.bytes(2048)


# --------------------------------------------------------------------------------------------- dataset
def make_moving_shapes(root, classes: int = 8, per_class: int = 12, frames: int = 32, size: int = 64,
                       fps: float = 25, seed: int = 0, *, corrupt: int | bool = 0) -> Path:
    """Write the dataset under ``root`` (see the module docstring) and return ``root`` as a Path.

    Deterministic for a ``seed``; a video depends only on (seed, class, group, clip), so a class's videos
    are the same whatever ``classes``/``per_class``. ``corrupt`` (N or True for 1) adds N undecodable files."""
    names = class_names(classes)
    if per_class < 2:
        raise ValueError("per_class must be >= 2 (train and test groups)")
    if size % 2 or size < 8:
        raise ValueError(f"size must be even and >= 8 (yuv420p), got {size}")
    if frames < 2:
        raise ValueError("frames must be >= 2")
    corrupt = int(corrupt)
    root = Path(root)
    per_group = min(CLIPS_PER_GROUP, math.ceil(per_class / 2))     # >= 2 groups
    groups = math.ceil(per_class / per_group)
    n_test = max(1, min(groups - 1, round(groups * 7 / 25)))       # UCF: 7 of 25 groups in each test split

    entries = []                                                   # (class name, group, clip, rel path)
    for name in names:
        (root / name).mkdir(parents=True, exist_ok=True)
        k = _NAMES.index(name)
        for g in range(1, groups + 1):
            app = random_appearance(np.random.default_rng([seed, k, g, 0]), size)
            for c in range(1, min(per_group, per_class - (g - 1) * per_group) + 1):
                rng = np.random.default_rng([seed, k, g, c])
                rel = f"{name}/v_{name}_g{g:02d}_c{c:02d}.mp4"
                encode_mp4(root / rel, render_moving_shape(name, frames, size, rng, appearance=app), fps)
                entries.append((name, g, c, rel))

    bad = []
    for i in range(corrupt):
        name, clip = names[i % len(names)], i // len(names) + 1
        rel = f"{name}/v_{name}_g{groups + 1:02d}_c{clip:02d}.mp4"
        (root / rel).write_bytes(_corrupt_bytes(np.random.default_rng([seed, 99, i]),
                                                (root / entries[0][3]).read_bytes(), i))
        bad.append((name, groups + 1, clip, rel))

    _write_lists(root, names, entries + bad, groups, n_test)
    return root


def _write_lists(root: Path, names: list[str], entries, groups: int, n_test: int) -> None:
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True, exist_ok=True)
    label = {n: i + 1 for i, n in enumerate(sorted(names))}       # UCF numbers classes alphabetically
    (lists / "classInd.txt").write_text("".join(f"{label[n]} {n}\n" for n in sorted(names)))
    entries = sorted(entries, key=lambda e: (e[0], e[1], e[2]))
    for split in (1, 2, 3):  # split s tests the s-th block of n_test groups (wrapping), like UCF's 3 splits
        test_groups = {((split - 1) * n_test + j) % groups + 1 for j in range(n_test)}
        train = [f"{rel} {label[n]}\n" for n, g, _, rel in entries if g not in test_groups]
        test = [f"{rel}\n" for n, g, _, rel in entries if g in test_groups]
        (lists / f"trainlist{split:02d}.txt").write_text("".join(train))
        (lists / f"testlist{split:02d}.txt").write_text("".join(test))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m zoo.data.synthetic", description=__doc__.split("\n")[0])
    p.add_argument("out")
    p.add_argument("--classes", type=int, default=8, choices=(2, 4, 8))
    p.add_argument("--per-class", type=int, default=12)
    p.add_argument("--frames", type=int, default=32)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--fps", type=float, default=25)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--corrupt", type=int, default=0, metavar="N", help="add N undecodable files to the trainlist")
    a = p.parse_args(argv)
    root = make_moving_shapes(a.out, a.classes, a.per_class, a.frames, a.size, a.fps, a.seed, corrupt=a.corrupt)
    n = sum(1 for _ in root.glob("*/*.mp4"))
    print(f"wrote {n} videos ({a.classes} classes, {a.frames} frames {a.size}x{a.size}) under {root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
