"""Data pipeline throughput: decode + sample + augment 64-frame clips at 224, in 64-clip DataLoaders.

Writes a few 10-second 25 fps 320x240 H.264 videos (moving shapes on a textured background, a keyframe
every 2 s as in typical web video) to a temp folder, then measures clips per second:

* decode only, one process: zoo.data.decode with PyAV (seek + decode to the last wanted frame, RGB
  conversion of wanted frames only) and with torchcodec when usable, against the naive full decode;
* the whole pipeline (FolderVideoDataset -> ResizeShortSide 256 -> MultiScaleCrop 224 -> flip ->
  [-1, 1]) through a DataLoader with 1 and 2 workers, against a baseline in the same run that decodes the
  FULL video with PyAV and then samples the clip (same transform, same loader).

    python benchmarks/bench_data.py [--videos 4] [--clips 24] [--gop 50]
"""
from __future__ import annotations

import argparse
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
        frames, _ = decode.read_all_frames(self.files[i])
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


def decode_rate(fn, files, clips: int, clip_len: int, rng) -> float:
    n = decode.video_info(files[0])[0]
    jobs = [(files[rng.integers(len(files))], int(rng.integers(0, n - clip_len + 1))) for _ in range(clips)]
    fn(*jobs[0])
    t0 = time.perf_counter()
    for f, s in jobs:
        fn(f, s)
    return clips / (time.perf_counter() - t0)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--videos", type=int, default=4)
    p.add_argument("--clips", type=int, default=24)
    p.add_argument("--clip-len", type=int, default=64)
    p.add_argument("--gop", type=int, default=50)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    L = args.clip_len
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "videos"
        for k in range(args.videos):
            write_video(root / "c" / f"v{k}.mp4", k, gop=args.gop)
        files = sorted((root / "c").glob("*.mp4"))
        n, fps, h, w = decode.video_info(files[0])
        print(f"{len(files)} videos of {n} frames, {fps:g} fps, {w}x{h}, keyframe every {args.gop} frames; "
              f"{args.clips} clips of {L} frames; {os.cpu_count()} cores; torch {torch.__version__}\n")

        rng = np.random.default_rng(0)
        rows = [("PyAV, naive full decode then sample (baseline)",
                 decode_rate(lambda f, s: decode.read_all_frames(f), files, max(4, args.clips // 4), L, rng))]
        for threads in (1, 0):
            tag = "1 thread" if threads else "FFmpeg's threads"
            rows.append((f"PyAV, seek + stop after last ({tag})", decode_rate(
                lambda f, s: decode.read_frames(f, range(s, s + L), "pyav", threads), files, args.clips, L, rng)))
            if decode.torchcodec_available():
                rows.append((f"torchcodec get_frames_at ({tag})", decode_rate(
                    lambda f, s: decode.read_frames(f, range(s, s + L), "torchcodec", threads),
                    files, args.clips, L, rng)))
        base = rows[0][1]
        print("| decode only, one process | clips/s | vs baseline |\n|---|---:|---:|")
        for name, r in rows:
            print(f"| {name} | {r:.2f} | {r / base:.2f}x |")

        transform = train_transform(224, 256)
        print("\n| pipeline (decode + sample + augment to 3x64x224x224) | workers | clips/s | vs baseline |"
              "\n|---|---:|---:|---:|")
        backends = ["pyav"] + (["torchcodec"] if decode.torchcodec_available() else [])
        for workers in (1, 2):
            b = loader_rate(FullDecodeDataset(files, L, transform), max(4, args.clips // 3), workers)
            print(f"| PyAV full decode, then sample (baseline) | {workers} | {b:.2f} | 1.00x |")
            for be in backends:
                ds = FolderVideoDataset(root, clip_len=L, transform=transform, backend=be)
                r = loader_rate(ds, args.clips, workers)
                print(f"| zoo.data FolderVideoDataset, {be} | {workers} | {r:.2f} | {r / b:.2f}x |")


if __name__ == "__main__":
    main()
