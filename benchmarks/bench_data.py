"""Data pipeline throughput: decode + sample + augment 64-frame clips at 224, in 64-clip DataLoaders.

Writes a few 10-second 25 fps 320x240 H.264 videos (moving shapes on a textured background, a keyframe
every 2 s as in typical web video) to a temp folder, then measures clips per second:

* decode only, one process: zoo.data.decode with PyAV (seek + decode to the last wanted frame, RGB
  conversion of wanted frames only) and with torchcodec when usable, against the naive full decode;
* the whole pipeline (FolderVideoDataset -> ResizeShortSide 256 -> MultiScaleCrop 224 -> flip ->
  [-1, 1]) through a DataLoader with 1 and 2 workers, against a baseline in the same run that decodes the
  FULL video with PyAV and then samples the clip (same transform, same loader);
* the training harness's batches: bytes per batch and clips/s with RGB normalised to float32 in the
  workers (before) against uint8 batches normalised after the copy (after), in the same run.

    python benchmarks/bench_data.py [--videos 4] [--clips 24] [--gop 50] [--rounds 5] [--loader-rounds 2]
    python benchmarks/bench_data.py --only-batches [--batch 4] [--batch-workers 2]
"""
from __future__ import annotations

import argparse
import functools
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler

from zoo.data import decode, sampling
from zoo.data.datasets import FolderVideoDataset
from zoo.data.transforms import train_transform


def write_video(path: Path, seed: int, seconds: int = 10, fps: int = 25, w: int = 320, h: int = 240,
                gop: int = 50) -> None:
    import av
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    bg = (120 + 50 * np.sin(xx / rng.uniform(8, 30))[..., None] * np.cos(yy / rng.uniform(8, 30))[..., None]
          * rng.uniform(0.3, 1, 3)).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.codec_context.gop_size = gop
        s.options = {"crf": "23", "preset": "veryfast"}
        for t in range(seconds * fps):
            img = bg + rng.normal(0, 4, bg.shape).astype(np.float32)
            for k in range(3):
                cx, cy = (40 + 90 * k + 4 * t) % w, (60 + 50 * k + (k - 1) * 3 * t) % h
                img[max(0, cy - 20):cy + 20, max(0, cx - 20):cx + 20] = (60 * k + 40, 200 - 60 * k, 90)
            c.mux(s.encode(av.VideoFrame.from_ndarray(np.clip(img, 0, 255).astype(np.uint8), format="rgb24")))
        c.mux(s.encode())


class FullDecodeDataset(Dataset):
    """The naive baseline: decode every frame with PyAV, then sample the clip, then augment."""

    def __init__(self, files, clip_len, transform):
        self.files, self.clip_len, self.transform = files, clip_len, transform

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        frames = decode.read_frames(self.files[i], backend="pyav")
        idx = sampling.dense_indices(len(frames), self.clip_len, 1, "random")
        return self.transform({"rgb": frames[idx].permute(3, 0, 1, 2), "label": 0})


def loader_rate(ds, clips: int, workers: int) -> float:
    sampler = RandomSampler(ds, replacement=True, num_samples=clips + 2 * workers,
                            generator=torch.Generator().manual_seed(0))
    loader = DataLoader(ds, batch_size=1, sampler=sampler, num_workers=workers, prefetch_factor=2)
    it = iter(loader)
    for _ in range(2 * workers):  # warm up: workers started, first batches in flight
        next(it)
    t0 = time.perf_counter()
    n = sum(1 for _ in it)
    return n / (time.perf_counter() - t0)


def read_clip(path, start: int, clip_len: int, backend: str, threads: int):
    return decode.read_frames(path, range(start, start + clip_len), backend, threads)


def decode_rates(methods: dict, jobs: list, clip_len: int, rounds: int) -> dict:
    """Median clips/s of each method over ``rounds``, the methods interleaved within a round (a shared
    machine's load then hits them alike), all on the same clips; the naive decode on a quarter of them."""
    times = {name: [] for name in methods}
    for fn in methods.values():
        fn(*jobs[0], clip_len)  # warm up
    for _ in range(rounds):
        for name, fn in methods.items():
            todo = jobs[: max(2, len(jobs) // 4)] if "naive" in name else jobs
            t0 = time.perf_counter()
            for f, s in todo:
                fn(f, s, clip_len)
            times[name].append(len(todo) / (time.perf_counter() - t0))
    return {name: float(np.median(r)) for name, r in times.items()}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--videos", type=int, default=4)
    p.add_argument("--clips", type=int, default=24)
    p.add_argument("--clip-len", type=int, default=64)
    p.add_argument("--gop", type=int, default=50)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--loader-rounds", type=int, default=2)
    p.add_argument("--batch", type=int, default=4, help="clips per batch in the uint8-vs-float32 comparison")
    p.add_argument("--batch-workers", type=int, default=2)
    p.add_argument("--only-batches", action="store_true", help="run only the uint8-vs-float32 comparison")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    L = args.clip_len
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "videos"
        for k in range(args.videos):
            write_video(root / "c" / f"v{k}.mp4", k, gop=args.gop)
        files = sorted((root / "c").glob("*.mp4"))
        n, fps, h, w = decode.video_info(files[0])
        backends = ["pyav"] + (["torchcodec"] if decode.torchcodec_available() else [])
        print(f"{len(files)} videos of {n} frames, {fps:g} fps, {w}x{h}, keyframe every {args.gop} frames; "
              f"{args.clips} clips of {L} frames; {os.cpu_count()} cores; torch {torch.__version__}\n")

        if args.only_batches:
            uint8_vs_float(root, L, args.clips, args.loader_rounds, args.batch, args.batch_workers)
            return
        rng = np.random.default_rng(0)
        jobs = [(files[rng.integers(len(files))], int(rng.integers(0, n - L + 1))) for _ in range(args.clips)]
        methods = {"PyAV, naive full decode then sample (baseline)":
                   lambda f, s, L: decode.read_frames(f, backend="pyav")}
        for threads in (1, 0):
            tag = "1 thread" if threads else "FFmpeg's threads"
            for be in backends:
                name = (f"PyAV, seek + stop after last ({tag})" if be == "pyav"
                        else f"torchcodec get_frames_at ({tag})")
                methods[name] = functools.partial(read_clip, backend=be, threads=threads)
        rates = decode_rates(methods, jobs, L, args.rounds)
        base = rates[next(iter(rates))]
        print(f"| decode only, one process (median of {args.rounds} interleaved rounds) | clips/s | vs baseline |"
              "\n|---|---:|---:|")
        for name, r in rates.items():
            print(f"| {name} | {r:.2f} | {r / base:.2f}x |")

        transform = train_transform(224, 256)
        print(f"\n| pipeline, decode + sample + augment to 3x{L}x224x224 (median of {args.loader_rounds}) | workers "
              "| clips/s | vs baseline |"
              "\n|---|---:|---:|---:|")
        for workers in (1, 2):
            datasets = {"PyAV full decode, then sample (baseline)": FullDecodeDataset(files, L, transform)}
            for be in backends:
                datasets[f"zoo.data FolderVideoDataset, {be}"] = FolderVideoDataset(root, clip_len=L,
                                                                                   transform=transform, backend=be)
            rates = {name: [] for name in datasets}
            for _ in range(args.loader_rounds):  # interleaved, as above
                for name, ds in datasets.items():
                    k = max(4, args.clips // 3) if "baseline" in name else args.clips
                    rates[name].append(loader_rate(ds, k, workers))
            base = float(np.median(rates[next(iter(rates))]))
            for name, r in rates.items():
                print(f"| {name} | {workers} | {np.median(r):.2f} | {np.median(r) / base:.2f}x |")

        uint8_vs_float(root, L, args.clips, args.loader_rounds, args.batch, args.batch_workers)

def batch_rate(ds, clips: int, workers: int, batch: int, to_input) -> tuple[float, int]:
    """Clips/s of batches from a persistent-worker loader through ``to_input`` (what reaches the model),
    and the bytes of one batch as the loader hands it over (what crosses worker memory and the PCIe bus)."""
    n_batches = max(2, clips // batch)
    sampler = RandomSampler(ds, replacement=True, num_samples=(n_batches + 2 * workers) * batch,
                            generator=torch.Generator().manual_seed(0))
    loader = DataLoader(ds, batch_size=batch, sampler=sampler, num_workers=workers, prefetch_factor=2,
                        persistent_workers=True)
    it = iter(loader)
    first = next(it)["rgb"]
    for _ in range(2 * workers - 1):  # warm up: workers started, first batches in flight
        next(it)
    t0 = time.perf_counter()
    n = 0
    for b in it:
        to_input(b["rgb"])
        n += len(b["rgb"])
    return n / (time.perf_counter() - t0), first.numel() * first.element_size()


def uint8_vs_float(root, L: int, clips: int, rounds: int, batch: int, workers: int) -> None:
    """The training harness's loader before (RGB normalised to float32 in the workers) and after (uint8
    batches, normalised where the model runs: ``zoo.train.loop.to_model_input``, on the CPU here)."""
    from zoo.data import transforms as T
    from zoo.train.data import NormalizeFlowOnly
    from zoo.train.loop import to_model_input
    steps = [T.ResizeShortSide(256), T.MultiScaleCrop(224), T.RandomHorizontalFlip()]
    variants = {"float32 batches, normalised in the workers (before)": (T.Compose(steps + [T.Normalize()]),
                                                                        lambda x: x),
                "uint8 batches, normalised after the copy (after)": (T.Compose(steps + [NormalizeFlowOnly()]),
                                                                     lambda x: to_model_input(x, False))}
    rates = {name: [] for name in variants}
    sizes = {}
    for _ in range(rounds):  # interleaved
        for name, (transform, to_input) in variants.items():
            ds = FolderVideoDataset(root, clip_len=L, transform=transform)
            r, sizes[name] = batch_rate(ds, clips, workers, batch, to_input)
            rates[name].append(r)
    print(f"\n| loader to model input, batches of {batch}x3x{L}x224x224, {workers} persistent workers (median of "
          f"{rounds}) | MB per batch | clips/s | vs before |\n|---|---:|---:|---:|")
    base = float(np.median(rates[next(iter(rates))]))
    for name, r in rates.items():
        print(f"| {name} | {sizes[name] / 1e6:.1f} | {np.median(r):.2f} | {np.median(r) / base:.2f}x |")


if __name__ == "__main__":
    main()
