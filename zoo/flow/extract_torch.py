"""Dataset flow extraction with the PyTorch TV-L1 (:mod:`zoo.flow.tvl1_torch`), for
``quovadis flow --algorithm tvl1-torch [--device cuda] [--batch-size N] [--shard K/N]``.

Same inputs, layout, ``meta.json`` and resume rule as the OpenCV path (:func:`zoo.flow.extract.extract_dataset_flow`),
both from :mod:`zoo.flow.videos`: a video whose folder has ``meta.json`` is skipped, any other is redone in a
private folder and renamed into place, so overlapping or repeated runs (and shards) are safe. A video the
solver fails on (too small for its pyramid, a CUDA out-of-memory) is reported, counted and skipped like an
undecodable one: a batch that raises is retried one video at a time, so only the failing video is lost.
The work is a three-stage pipeline, so that the flow solver is the only thing the device waits for:

1. DataLoader worker processes decode each video (retime, resize, grayscale: :func:`zoo.flow.videos.read_gray`,
   the OpenCV path's own decoding, so both paths see identical frames);
2. this process batches consecutive-frame pairs (``batch_size`` pairs of one frame size, taken across
   videos) and runs :func:`zoo.flow.tvl1_torch.tvl1_flow` on ``device``;
3. a writer thread quantises and writes each finished video (``flow_store.write_flow``: JPEG/PNG
   encoding releases the GIL) while the next batch runs.
"""
from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch

from zoo.data.flow_store import DEFAULT_FORMAT, FORMATS, write_flow
from zoo.data.video_folder import Video
from zoo.flow.tvl1_torch import STOPPING, VARIANTS, tvl1_flow
from zoo.flow.videos import (
    DEFAULT_SHORT_SIDE,
    plan_videos,
    read_gray,
    report_failure,
    summary,
)

ALGORITHM = "tvl1-torch"


class _DecodedVideos(torch.utils.data.Dataset):
    """Item i: ``{"index", "gray" (T, H, W) uint8, "rate", "source_fps"}`` or ``{"index", "error"}``."""

    def __init__(self, videos: list[Video], size: int | None, fps: float | None):
        self.videos, self.size, self.fps = videos, size, fps

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, i: int) -> dict:
        try:
            gray, rate, src_fps = read_gray(self.videos[i], self.size, self.fps)
            if len(gray) < 2:
                raise ValueError(f"optical flow needs at least 2 frames, got {len(gray)}")
            return {"index": i, "gray": torch.from_numpy(np.ascontiguousarray(gray)), "rate": rate,
                    "source_fps": src_fps}
        except Exception as e:  # noqa: BLE001 -- reported by the main process, one warning per video
            return {"index": i, "error": f"{type(e).__name__}: {e}"}


def _first(batch: list):
    return batch[0]


def extract_dataset_flow_torch(src_dir, out_dir, *, device: str | torch.device = "cpu", batch_size: int = 16,
                               workers: int = 2, bound: float = 20, size: int | None = DEFAULT_SHORT_SIDE,
                               fps: float | None = None, fmt: str = DEFAULT_FORMAT, shard: str | None = None,
                               variant: str | None = None, stopping: str = "epsilon", compile: bool = False,
                               progress: bool = True) -> dict:
    """Extract the TV-L1 flow of every video under ``src_dir`` (this shard's share) into ``out_dir`` with
    the PyTorch solver on ``device``; returns the same summary as ``flow.extract_dataset_flow``.

    ``variant`` defaults to OpenCV's CPU flavour (the one ``--algorithm tvl1`` runs), whatever the
    device; ``"cuda"`` reproduces ``cv2.cuda.OpticalFlowDual_TVL1`` instead. ``workers`` decoding processes
    (0: decode in this process)."""
    from tqdm import tqdm

    if fmt not in FORMATS:
        raise ValueError(f"unknown flow format {fmt!r}; choose one of {', '.join(FORMATS)}")
    variant = variant or "cpu"
    if variant not in VARIANTS or stopping not in STOPPING:
        raise ValueError(f"variant must be one of {VARIANTS} and stopping one of {STOPPING}, "
                         f"got {variant!r} and {stopping!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda: no CUDA device is visible to PyTorch; use --device cpu "
                           "(or check CUDA_VISIBLE_DEVICES / the driver)")
    start = time.perf_counter()
    videos, todo, skipped = plan_videos(src_dir, out_dir, shard)
    loader = torch.utils.data.DataLoader(
        _DecodedVideos([v for v, _ in todo], size or None, fps), batch_size=1,
        collate_fn=_first, num_workers=max(0, workers), prefetch_factor=2 if workers > 0 else None)
    done, frames, failed = 0, 0, []
    pending: dict[int, dict] = {}          # video index -> decoded frames and the flows computed so far
    queues: dict[tuple, list] = {}         # frame size -> [(video index, pair index), ...] not yet computed
    writes: list[tuple[int, Future]] = []

    def fail(i: int, why: str) -> None:
        report_failure(todo[i][0], why, failed)

    def drop(i: int, error: Exception) -> None:
        """Video ``i`` failed in the solver: forget its frames and queued pairs, report it, go on."""
        pending.pop(i, None)
        for k, queued in queues.items():
            queues[k] = [(j, t) for j, t in queued if j != i]
        fail(i, f"{type(error).__name__}: {error}")
        bar.update()

    def solve(pairs: list) -> np.ndarray:
        f0 = torch.stack([pending[i]["gray"][t] for i, t in pairs]).to(device, non_blocking=True)
        f1 = torch.stack([pending[i]["gray"][t + 1] for i, t in pairs]).to(device, non_blocking=True)
        return tvl1_flow(f0, f1, variant=variant, stopping=stopping, compile=compile).cpu().numpy()

    def solve_each_video(pairs: list, error: Exception) -> list:
        """After a batch raised: each video's pairs alone; a video that still raises is dropped."""
        if device.type == "cuda":
            torch.cuda.empty_cache()                         # after an out-of-memory error
        by_video: dict[int, list] = {}
        for i, t in pairs:
            by_video.setdefault(i, []).append((i, t))
        if len(by_video) == 1:
            drop(next(iter(by_video)), error)
            return []
        done_pairs = []
        for i, mine in by_video.items():
            try:
                done_pairs.append((mine, solve(mine)))
            except Exception as e:  # noqa: BLE001 -- a solver error or OOM fails this video only
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                drop(i, e)
        return done_pairs

    def run(key: tuple, n: int) -> None:
        pairs, queues[key] = queues[key][:n], queues[key][n:]
        try:
            solved = [(pairs, solve(pairs))]
        except Exception as e:  # noqa: BLE001
            solved = solve_each_video(pairs, e)
        for chunk, flow in solved:
            store(chunk, flow)

    def store(pairs: list, flow: np.ndarray) -> None:
        for (i, t), f in zip(pairs, flow):
            item = pending[i]
            item["flow"][t] = f
            item["left"] -= 1
            if item["left"] == 0:
                del pending[i]
                v, dest = todo[i]
                writes.append((i, writer.submit(
                    write_flow, dest, np.stack(item["flow"]), algorithm=ALGORITHM, bound=bound, fps=item["rate"],
                    fmt=fmt, source=str(v.path), source_fps=item["source_fps"], short_side=min(f.shape[:2]))))

    def collect(wait: bool) -> None:
        nonlocal done, frames
        keep = []
        for i, fut in writes:
            if not wait and not fut.done():
                keep.append((i, fut))
                continue
            try:
                fut.result()
                done += 1
                frames += _n_pairs[i]
            except Exception as e:  # noqa: BLE001
                fail(i, f"{type(e).__name__}: {e}")
            bar.update()
        writes[:] = keep

    _n_pairs: dict[int, int] = {}
    with ThreadPoolExecutor(1, thread_name_prefix="flow-writer") as writer, \
            tqdm(total=len(todo), desc="flow", unit="video", disable=not progress or not todo) as bar:
        with torch.no_grad():
            for item in loader:
                i = item["index"]
                if "error" in item:
                    fail(i, item["error"])
                    bar.update()
                    continue
                gray = item["gray"]
                n = len(gray) - 1
                _n_pairs[i] = n
                pending[i] = {"gray": gray, "rate": item["rate"], "source_fps": item["source_fps"],
                              "flow": [None] * n, "left": n}
                key = tuple(gray.shape[1:])
                queues.setdefault(key, []).extend((i, t) for t in range(n))
                while len(queues[key]) >= batch_size:
                    run(key, batch_size)
                if len(pending) > 4 * max(1, workers):     # bound memory: finish the oldest sizes first
                    for k in list(queues):
                        while queues[k]:
                            run(k, batch_size)
                collect(wait=False)
            for k in list(queues):
                while queues[k]:
                    run(k, batch_size)
        collect(wait=True)
    return summary(videos, done, skipped, failed, frames, start)
