"""On-disk storage of optical flow: one folder per video, frames first, ``meta.json`` last.

A folder is complete iff its ``meta.json`` exists. A video is written into a private hidden folder beside
its destination (``.<name>.<host>-<pid>-<random>.partial``), frames first and ``meta.json`` last, and only
then renamed to its place (:func:`write_flow`). So every frame of a complete folder was written by the run
that wrote its ``meta.json``, and runs that overlap (a re-queued SLURM job beside the one it replaces, two
shards) never write into, or clear, each other's unfinished work: rename is atomic on a local disk and on
NFS/Lustre/GPFS alike, and there is no lock to go stale. A run killed mid-video leaves only its hidden
``.partial`` folder (safe to delete; it is never read). Flow is clipped to ``[-bound, bound]`` pixels.

Formats (``fmt``); frame ``i`` (0-based, the flow from video frame i to i+1) lives in file number i+1:

* ``"jpg95"``   ``flow_x_00001.jpg`` / ``flow_y_00001.jpg``: grayscale JPEG, quality 95, of the
                MMAction2/denseflow quantisation ``v = round((clip(f, -b, b) + b) / (2b) * 255)``
* ``"jpg100"``  the same at JPEG quality 100
* ``"png"``     ``flow_x_00001.png`` / ``flow_y_00001.png``: the same uint8 values, lossless
* ``"npz-u8"``  ``flow_00001.npz``: the same uint8 values, (H, W, 2), ``np.savez_compressed``
* ``"npz-f16"`` ``flow_00001.npz``: float16 pixels (H, W, 2), ``np.savez_compressed``

Default: ``"jpg95"``, chosen by measurement (``python benchmarks/bench_flow.py``: OpenCV 5.0 TV-L1 flow,
bound 20; per flow frame, x and y together; abs error in pixels against the clipped float flow;
ms on a shared 2-core machine, indicative only):

    format   | synthetic 64x64 (16 videos, 496 frames)   | CricketShot GIF 224x224 (78 frames)
             | bytes  max err  mean err  write  read ms  |  bytes  max err  mean err  write  read ms
    jpg95    |  1033   1.321    0.0591    0.38   0.48    |   4896   1.305    0.0621    1.3    1.5
    jpg100   |  1540   0.388    0.0561    0.47   0.57    |  11772   0.385    0.0608    1.5    1.5
    png      |  1192   0.0784   0.0531    1.32   0.66    |  12858   0.0784   0.0574   11.3    2.2
    npz-u8   |  1100   0.0784   0.0531    1.02   0.56    |  12213   0.0784   0.0574    8.3    1.5
    npz-f16  | 14379   0.0020   0.0001    1.31   1.15    | 188557   0.0026   0.0000   12.5    3.3

Why jpg95: on real video (the GIF) it is 2.5x smaller than every other format (png/npz-u8/jpg100
are all ~12 KB, float16 is 39x larger), and its mean error is only 0.005 px above the 0.057 px that
the uint8 quantisation costs anyway (every uint8 format has it: a half step is bound/255 = 0.078 px).
Its max error (1.3 px, at sharp motion edges) is the price; it is also the layout MMAction2/denseflow
read and write, so flow folders are interchangeable with theirs. Where exactness matters use "png" or
"npz-u8" (error <= 0.078 px, guaranteed) or "npz-f16" (<= 0.008 px). Note that this quantisation
maps 0 to 128, so a zero flow reads back as +0.078 px.

Reading needs only numpy and Pillow (no OpenCV).
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
from pathlib import Path
from typing import Sequence

import numpy as np

FORMATS = ("jpg95", "jpg100", "png", "npz-u8", "npz-f16")
DEFAULT_FORMAT = "jpg95"
META = "meta.json"
_JPEG_QUALITY = {"jpg95": 95, "jpg100": 100}


class IncompleteFlowError(FileNotFoundError):
    """A flow folder without ``meta.json`` (unfinished or never extracted) or with a frame missing."""


# ------------------------------------------------------------------------------------ quantisation
def quantize(flow: np.ndarray, bound: float = 20.0) -> np.ndarray:
    """Pixels -> uint8, ``round((clip(f, -b, b) + b) / (2b) * 255)`` (MMAction2/denseflow)."""
    return np.rint((np.clip(flow, -bound, bound) + bound) * (255.0 / (2 * bound))).astype(np.uint8)


def dequantize(values: np.ndarray, bound: float = 20.0) -> np.ndarray:
    """uint8 -> float32 pixels, the inverse of :func:`quantize` up to half a step (``bound / 255``)."""
    return (values.astype(np.float32) * np.float32(2 * bound / 255.0) - np.float32(bound)).astype(np.float32)


# ------------------------------------------------------------------------------------ file names
def _frame_files(out_dir: Path, fmt: str, i: int) -> list[Path]:
    """The file(s) holding flow frame ``i`` (0-based; numbered from 1 on disk, as denseflow)."""
    n = i + 1
    if fmt.startswith("npz"):
        return [out_dir / f"flow_{n:05d}.npz"]
    ext = "png" if fmt == "png" else "jpg"
    return [out_dir / f"flow_x_{n:05d}.{ext}", out_dir / f"flow_y_{n:05d}.{ext}"]


def _is_ours(name: str) -> bool:
    """Files this module writes (only these are dropped when a folder is replaced)."""
    return (name.startswith("flow_") and name.endswith((".jpg", ".png", ".npz", ".tmp"))) or \
        name == META or name.startswith(META + ".")


# ------------------------------------------------------------------------------------ write
def write_flow(out_dir: Path, flow: np.ndarray, *, algorithm: str, bound: float = 20.0, fps: float | None = None,
               fmt: str = DEFAULT_FORMAT, source: str | None = None, source_fps: float | None = None,
               short_side: int | None = None) -> None:
    """Write flow ``(T, H, W, 2)`` float32 pixels (x then y) as the folder ``out_dir``: every frame, then
    ``meta.json``, into a private ``.partial`` folder beside it, which then replaces ``out_dir`` by rename
    (:func:`_publish`). An earlier folder there is replaced whole, except files this module did not write,
    which are carried over. On any error nothing is left behind and ``out_dir`` is as it was.

    ``meta.json`` records the geometry the flow belongs to: ``height``/``width`` and ``short_side`` (the
    frames' size when flow was computed, and the scale of ``bound``, in pixels), ``fps`` (the rate of the
    frames the flow is between: the video retimed, or its own) and ``source_fps``."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown flow format {fmt!r}; choose one of {', '.join(FORMATS)}")
    flow = np.asarray(flow)
    if flow.ndim != 4 or flow.shape[-1] != 2 or flow.shape[0] < 1:
        raise ValueError(f"flow must be (T, H, W, 2) with T >= 1, got {flow.shape}")
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = out_dir.parent / f".{out_dir.name}.{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}.partial"
    work.mkdir()
    try:
        for i, f in enumerate(flow):
            _write_frame(_frame_files(work, fmt, i), f, fmt, bound)
        _write_meta(work, flow, algorithm=algorithm, bound=bound, fps=fps, fmt=fmt, source=source,
                    source_fps=source_fps, short_side=short_side)
        _publish(work, out_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)     # gone already when published


def _write_meta(out_dir: Path, flow: np.ndarray, *, algorithm, bound, fps, fmt, source, source_fps,
                short_side) -> None:
    meta = {"algorithm": algorithm, "bound": float(bound), "format": fmt, "num_frames": int(flow.shape[0]),
            "height": int(flow.shape[1]), "width": int(flow.shape[2]),
            "short_side": int(short_side if short_side is not None else min(flow.shape[1:3])),
            "fps": None if fps is None else float(fps),
            "source_fps": float(source_fps if source_fps is not None else fps) if (source_fps or fps) else None,
            "source": source}
    (out_dir / META).write_text(json.dumps(meta, indent=1))


def _publish(work: Path, dest: Path) -> None:
    """Rename the finished folder ``work`` to ``dest``. An existing ``dest`` (a finished folder of another
    run, or an unfinished one of an older version) is first renamed aside, then deleted; files in it that
    this module did not write are moved into ``work`` first, so they survive."""
    for _ in range(10):
        try:
            os.rename(work, dest)       # atomic; fails if dest exists and is not an empty folder
            return
        except FileNotFoundError:
            raise
        except OSError:
            if not dest.is_dir():
                raise
        for p in dest.iterdir():         # keep what is not ours (notes, a user's files)
            if not _is_ours(p.name) and not (work / p.name).exists():
                os.rename(p, work / p.name)
        aside = dest.parent / f".{dest.name}.{secrets.token_hex(4)}.replaced"
        try:
            os.rename(dest, aside)
        except FileNotFoundError:        # another run moved it first: try again
            continue
        shutil.rmtree(aside, ignore_errors=True)
    raise OSError(f"could not put the flow of {dest} in place: other runs keep replacing it")


def _write_frame(paths: list[Path], f: np.ndarray, fmt: str, bound: float) -> None:
    if fmt == "npz-f16":
        _save_npz(paths[0], np.clip(f, -bound, bound).astype(np.float16))
    elif fmt == "npz-u8":
        _save_npz(paths[0], quantize(f, bound))
    else:
        from PIL import Image
        q = quantize(f, bound)
        kwargs = {"quality": _JPEG_QUALITY[fmt]} if fmt in _JPEG_QUALITY else {"compress_level": 6}
        for c, path in enumerate(paths):
            Image.fromarray(np.ascontiguousarray(q[..., c])).save(path, **kwargs)


def _save_npz(path: Path, arr: np.ndarray) -> None:
    with open(path, "wb") as fh:  # a file object, so numpy does not append a second ".npz"
        np.savez_compressed(fh, flow=arr)


# ------------------------------------------------------------------------------------ read
def is_complete(out_dir: Path) -> bool:
    """True iff ``out_dir`` holds a finished flow video (a readable ``meta.json``)."""
    try:
        read_meta(out_dir)
        return True
    except (OSError, ValueError):
        return False


def read_meta(out_dir: Path) -> dict:
    """The ``meta.json`` of a finished flow folder; :class:`IncompleteFlowError` if there is none."""
    path = Path(out_dir) / META
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise IncompleteFlowError(f"flow folder {out_dir} is incomplete: no {META} "
                                  "(extraction unfinished or never run)") from None
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"flow folder {out_dir}: unreadable {META}: {e}") from None
    _check_meta(meta, Path(out_dir) / META)
    return meta


def _check_meta(meta, path: Path) -> None:
    """The fields readers rely on, with the types :func:`_write_meta` gives them (found by fuzzing: a field
    missing or of another type raised KeyError/TypeError far from the file)."""
    def bad(what):
        return ValueError(f"{path}: {what}; the file is damaged or not written by quovadis flow. Delete the "
                          f"folder and extract its flow again")
    if not isinstance(meta, dict):
        raise bad(f"expected a JSON object, found {type(meta).__name__}")
    for key in ("num_frames", "height", "width"):
        if type(meta.get(key)) is not int or meta[key] < 1:
            raise bad(f"{key} must be a positive integer, found {meta.get(key)!r}")
    if meta.get("format") not in FORMATS:
        raise bad(f"format must be one of {', '.join(FORMATS)}, found {meta.get('format')!r}")
    for key, optional in (("bound", False), ("fps", True), ("source_fps", True)):
        value = meta.get(key)
        if not (optional and value is None) and (type(value) not in (int, float) or not 0 < value < float("inf")):
            raise bad(f"{key} must be a positive number{' or null' if optional else ''}, found {value!r}")


def read_flow(out_dir: Path, indices: Sequence[int] | None = None) -> np.ndarray:
    """Flow frames ``indices`` (0-based; all if None) as float32 ``(T, H, W, 2)`` pixels, de-quantised."""
    out_dir = Path(out_dir)
    meta = read_meta(out_dir)
    n, fmt, bound = meta["num_frames"], meta["format"], meta["bound"]
    shape = (meta["height"], meta["width"], 2)
    if indices is None:
        indices = range(n)  # a damaged count stops at the first missing frame, not after n steps
    else:
        indices = [int(i) for i in indices]
        bad = [i for i in indices if not 0 <= i < n]
        if bad:
            raise IndexError(f"flow folder {out_dir} has {n} flow frames (0..{n - 1}); asked for {bad[:5]}")
    frames = []  # not np.empty from meta's sizes: a damaged meta.json must not size an allocation
    for i in indices:
        paths = _frame_files(out_dir, fmt, i)
        try:
            frame = _read_frame(paths, fmt, bound)
            if frame.shape != shape:
                raise ValueError(f"shape {frame.shape}, {META} says {shape}")
        except FileNotFoundError as e:
            raise IncompleteFlowError(f"flow folder {out_dir}: frame {i} is missing ({Path(e.filename).name})") \
                from None
        except ValueError as e:  # wrong shape or undecodable data
            raise ValueError(f"flow folder {out_dir}: frame {i} ({paths[0].name}) is bad: {e}") from None
        frames.append(frame)
    return np.stack(frames) if frames else np.empty((0,) + shape, np.float32)


def _read_frame(paths: list[Path], fmt: str, bound: float) -> np.ndarray:
    if fmt.startswith("npz"):
        with np.load(paths[0]) as z:
            a = z["flow"]
        return a.astype(np.float32) if fmt == "npz-f16" else dequantize(a, bound)
    from PIL import Image
    planes = []
    for p in paths:
        with Image.open(p) as im:
            planes.append(np.asarray(im.convert("L")))
    return dequantize(np.stack(planes, axis=-1), bound)
