"""Optical flow: storage formats (bytes, error) and TV-L1 extraction speed (1 vs 2 processes).

1. Storage: TV-L1 flow (float32, clipped to +-20 px) of the synthetic moving-shapes set and of the
   kinetics-i3d sample GIF, written in every zoo.data.flow_store format; bytes per flow frame (x and y
   together) and max/mean abs error in pixels of what read_flow returns, against the clipped float flow.
2. Speed: extract_dataset_flow on the synthetic set with 1 process and with 2 processes (a baseline in
   the same run; decode + TV-L1 + write, process start-up included), and TV-L1 alone on the GIF in this
   process with 1 OpenCV thread and with OpenCV's default threads.
3. Sanity: our TV-L1 on the GIF against DeepMind's flow GIF of the same clip (sign and agreement).
4. PyTorch TV-L1 (zoo.flow.tvl1_torch) on PAIRS pairs of the GIF at 224x224, all in this run: OpenCV's
   DualTVL1 in 1 process (1 thread) and in 2 processes, ours on one batch of PAIRS pairs with 1 and with
   2 torch threads (and torch.compile'd with --compile, compile time excluded); frames/s, ratios, and
   ours against OpenCV (end-point error: mean, p99, max). ``--tvl1-torch-only`` runs just this section.

    python benchmarks/bench_flow.py [--classes 8] [--per-class 2] [--frames 32] [--size 64] [--json OUT]
    python benchmarks/bench_flow.py --tvl1-torch-only [--pairs 16] [--compile]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np

from zoo.flow.extract import compute_flow, extract_dataset_flow, tvl1_available
from zoo.data.flow_store import FORMATS, read_flow, write_flow
from zoo.data.synthetic import make_moving_shapes
from zoo.data.decode import flow_from_rgb_encoding, read_frames
from zoo.data.video_folder import list_videos
from zoo.flow.videos import read_gray_frames

GIF = Path("/work/shared/data/kinetics-i3d/v_CricketShot_g04_c01_rgb.gif")
BOUND = 20.0


def tvl1(gray: np.ndarray, threads: int = 1) -> np.ndarray:
    old = cv2.getNumThreads()
    cv2.setNumThreads(threads)
    try:
        return compute_flow(gray, "tvl1")
    finally:
        cv2.setNumThreads(old)


def spawn_startup_seconds(workers: int) -> float:
    """Seconds for a spawn pool of ``workers`` to import zoo.flow.extract and answer (what each
    multi-process extract_dataset_flow pays once)."""
    t = time.perf_counter()
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        for f in [pool.submit(tvl1_available) for _ in range(workers)]:
            f.result()
    return time.perf_counter() - t


def measure_formats(flows: list[np.ndarray], tmp: Path) -> dict:
    """{fmt: {bytes_per_frame, max_err, mean_err, write_ms, read_ms}} over all flow frames of ``flows``
    (ms per flow frame, this process, warm page cache)."""
    out = {}
    for fmt in FORMATS:
        nbytes, nframes, max_err, sum_err, count, t_write, t_read = 0, 0, 0.0, 0.0, 0, 0.0, 0.0
        for flow in flows:
            d = tmp / fmt
            t = time.perf_counter()
            write_flow(d, flow, algorithm="tvl1", bound=BOUND, fmt=fmt)
            t_write += time.perf_counter() - t
            nbytes += sum(p.stat().st_size for p in d.iterdir() if p.name != "meta.json")
            nframes += len(flow)
            t = time.perf_counter()
            back = read_flow(d)
            t_read += time.perf_counter() - t
            err = np.abs(back - np.clip(flow, -BOUND, BOUND))
            max_err, sum_err, count = max(max_err, float(err.max())), sum_err + float(err.sum()), count + err.size
            shutil.rmtree(d)
        out[fmt] = {"bytes_per_frame": round(nbytes / nframes, 1), "max_err": round(max_err, 4),
                    "mean_err": round(sum_err / count, 5), "write_ms": round(1e3 * t_write / nframes, 3),
                    "read_ms": round(1e3 * t_read / nframes, 3)}
    return out


def _opencv_tvl1_pairs(f0: np.ndarray, f1: np.ndarray) -> np.ndarray:
    cv2.setNumThreads(1)
    tv = cv2.optflow.DualTVL1OpticalFlow_create()
    return np.stack([tv.calc(a, b, None) for a, b in zip(f0, f1)])


def bench_tvl1_torch(gif: Path, pairs: int = 16, compile: bool = False) -> dict:
    """Section 4 (see the module docstring): frames/s of OpenCV (1 and 2 processes) and of the PyTorch
    TV-L1 (one batch of ``pairs`` pairs; 1 and 2 threads), and their agreement, at 224x224."""
    import torch

    from zoo.flow.tvl1_torch import tvl1_flow

    gray = read_gray_frames(gif, size=224)[0][:pairs + 1]
    f0, f1 = gray[:-1], gray[1:]
    n = len(f0)
    out: dict = {"pairs": n, "size": list(f0.shape[1:])}
    t = time.perf_counter()
    ref = _opencv_tvl1_pairs(f0, f1)
    out["opencv_1_process_fps"] = round(n / (time.perf_counter() - t), 3)
    with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
        for f in [pool.submit(tvl1_available) for _ in range(2)]:
            f.result()                                      # start-up excluded
        t = time.perf_counter()
        halves = [pool.submit(_opencv_tvl1_pairs, f0[i::2], f1[i::2]) for i in range(2)]
        [h.result() for h in halves]
        out["opencv_2_processes_fps"] = round(n / (time.perf_counter() - t), 3)
    old = torch.get_num_threads()
    modes = [("eager", False)] + ([("compiled", True)] if compile else [])
    try:
        for name, comp in modes:
            if comp:
                t = time.perf_counter()
                tvl1_flow(f0[:2], f1[:2], compile=True)
                out["compile_s"] = round(time.perf_counter() - t, 1)
            for threads in (1, 2):
                torch.set_num_threads(threads)
                t = time.perf_counter()
                ours = tvl1_flow(f0, f1, compile=comp).numpy()
                out[f"torch_{name}_{threads}_threads_fps"] = round(n / (time.perf_counter() - t), 3)
            e = np.linalg.norm(ours - ref, axis=-1)
            out[f"torch_{name}_vs_opencv_epe"] = {"mean": round(float(e.mean()), 4),
                                                  "p99": round(float(np.percentile(e, 99)), 4),
                                                  "max": round(float(e.max()), 3)}
    finally:
        torch.set_num_threads(old)
    cv1, cv2p = out["opencv_1_process_fps"], out["opencv_2_processes_fps"]
    print(f"TV-L1 at {f0.shape[1]}x{f0.shape[2]}, {n} pairs: OpenCV 1 process {cv1:.3f} frames/s, 2 processes "
          f"{cv2p:.3f} ({cv2p / cv1:.2f}x)")
    for name, _ in modes:
        o1, o2 = out[f"torch_{name}_1_threads_fps"], out[f"torch_{name}_2_threads_fps"]
        print(f"  PyTorch TV-L1 ({name}, batch {n}): 1 thread {o1:.3f} frames/s = {o1 / cv1:.2f}x OpenCV 1 process; "
              f"2 threads {o2:.3f} = {o2 / cv2p:.2f}x OpenCV 2 processes; vs OpenCV EPE {out[f'torch_{name}_vs_opencv_epe']}")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--classes", type=int, default=8)
    p.add_argument("--per-class", type=int, default=2)
    p.add_argument("--frames", type=int, default=32)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--gif", type=Path, default=GIF)
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    p.add_argument("--tvl1-torch-only", action="store_true", help="run only section 4 (PyTorch TV-L1)")
    p.add_argument("--pairs", type=int, default=16, help="section 4: frame pairs (one batch)")
    p.add_argument("--compile", action="store_true", help="section 4: also time the torch.compile'd solver")
    a = p.parse_args()
    results: dict = {"cpus": os.cpu_count(), "opencv": cv2.__version__, "opencv_default_threads": cv2.getNumThreads()}
    if a.tvl1_torch_only:
        results["tvl1_torch"] = bench_tvl1_torch(a.gif, a.pairs, a.compile)
        if a.json:
            a.json.write_text(json.dumps(results, indent=1))
        return

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        src = make_moving_shapes(tmp / "syn", a.classes, a.per_class, a.frames, a.size)
        results["synthetic_make_s"] = round(time.perf_counter() - t, 2)
        videos = [v.path for v in list_videos(src)]
        print(f"synthetic: {len(videos)} videos, {a.frames} frames {a.size}x{a.size} "
              f"({results['synthetic_make_s']} s to make)")

        # -- speed: whole pipeline, 1 process (in this process) then 2 processes
        speed = {}
        for workers in (1, 2):
            s = extract_dataset_flow(src, tmp / f"flow{workers}", workers=workers, size=None, progress=False)
            assert s["done"] == len(videos) and not s["failed"], s
            speed[workers] = s
            print(f"extract_dataset_flow workers={workers}: {s['flow_frames']} flow frames in {s['seconds']:.1f} s"
                  f" = {s['flow_frames_per_s']:.1f} frames/s")
        ratio = speed[2]["flow_frames_per_s"] / speed[1]["flow_frames_per_s"]
        startup = spawn_startup_seconds(2)
        steady = speed[2]["flow_frames"] / max(1e-9, speed[2]["seconds"] - startup)
        print(f"  2 processes / 1 process: {ratio:.2f}x; spawn start-up of 2 workers (importing zoo, torch): "
              f"{startup:.1f} s; without it 2 processes: {steady:.1f} frames/s = {steady / speed[1]['flow_frames_per_s']:.2f}x")
        results["synthetic_speed"] = {"fps_1_process": speed[1]["flow_frames_per_s"],
                                      "fps_2_processes": speed[2]["flow_frames_per_s"], "ratio": round(ratio, 2),
                                      "seconds_1": speed[1]["seconds"], "seconds_2": speed[2]["seconds"],
                                      "spawn_startup_2_workers_s": round(startup, 2),
                                      "fps_2_processes_without_startup": round(steady, 2),
                                      "ratio_without_startup": round(steady / speed[1]["flow_frames_per_s"], 2)}

        # -- storage formats on float flow (TV-L1 again, in process, 1 OpenCV thread)
        syn_flows = [tvl1(read_gray_frames(v)[0]) for v in videos]
        results["synthetic_formats"] = measure_formats(syn_flows, tmp)

        gif_gray, _ = read_gray_frames(a.gif)
        t = time.perf_counter()
        gif_flow = tvl1(gif_gray, threads=1)
        gif_s = time.perf_counter() - t
        k = min(9, len(gif_gray))
        t = time.perf_counter()
        tvl1(gif_gray[:k], threads=results["opencv_default_threads"])
        gif_default_s = (time.perf_counter() - t) / (k - 1)
        results["gif"] = {"frames": len(gif_gray), "size": list(gif_gray.shape[1:]),
                          "tvl1_fps_1_thread": round(len(gif_flow) / gif_s, 2),
                          f"tvl1_fps_{results['opencv_default_threads']}_threads_first_{k}":
                              round(1 / gif_default_s, 2)}
        results["gif_formats"] = measure_formats([gif_flow], tmp)
        clipped = np.abs(gif_flow) > BOUND
        results["gif"]["fraction_clipped"] = round(float(clipped.mean()), 6)

        # -- sanity against DeepMind's flow of the same clip (x in red, y in green, bound 20)
        ref_path = a.gif.with_name(a.gif.name.replace("_rgb", "_flow"))
        if ref_path.is_file():
            ref = flow_from_rgb_encoding(read_frames(ref_path)).numpy()
            n = min(len(ref), len(gif_flow))
            ours, theirs = np.clip(gif_flow[:n], -BOUND, BOUND), ref[:n]
            results["gif_vs_deepmind"] = {
                "frames_compared": n,
                "corr_x": round(float(np.corrcoef(ours[..., 0].ravel(), theirs[..., 0].ravel())[0, 1]), 3),
                "corr_y": round(float(np.corrcoef(ours[..., 1].ravel(), theirs[..., 1].ravel())[0, 1]), 3),
                "mean_abs_diff_px": round(float(np.abs(ours - theirs).mean()), 3)}

    print(f"\nGIF {a.gif.name}: {results['gif']}")
    if "gif_vs_deepmind" in results:
        print(f"our TV-L1 vs DeepMind's flow GIF: {results['gif_vs_deepmind']}")
    print("\nper flow frame (x and y): bytes, max/mean abs error (px), write/read ms")
    gh, gw = results["gif"]["size"]
    print(f"format   | synthetic {a.size}x{a.size}: bytes  max err  mean err  write  read | GIF {gh}x{gw}: bytes  max err"
          "  mean err  write  read")
    for fmt in FORMATS:
        s, g = results["synthetic_formats"][fmt], results["gif_formats"][fmt]
        print(f"{fmt:8s} | {s['bytes_per_frame']:7.0f} {s['max_err']:8.4f} {s['mean_err']:9.5f} {s['write_ms']:6.2f}"
              f" {s['read_ms']:5.2f} | {g['bytes_per_frame']:7.0f} {g['max_err']:8.4f} {g['mean_err']:9.5f}"
              f" {g['write_ms']:6.2f} {g['read_ms']:5.2f}")
    if a.json:
        a.json.write_text(json.dumps(results, indent=1))
        print(f"wrote {a.json}")


if __name__ == "__main__":
    main()
