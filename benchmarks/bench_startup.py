"""Start-up time of the ``quovadis`` command against a bare ``python -c "import torch"``, measured in the same run.

Each command runs as a fresh process, interleaved over rounds; the median wall time and CPU time (user + system)
are reported with their ratios to the baseline. "train setup" is what ``quovadis train`` does before it reads data: the CLI, the training loop's
modules and the run log with TensorBoard. "train setup, TensorBoard importing TF" is the same with
``torch.utils.tensorboard`` left to import TensorFlow (the behaviour before ``zoo.train.tensorboard_writer``).

    python benchmarks/bench_startup.py [--rounds 3]
"""
from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUOVADIS = Path(sys.executable).parent / "quovadis"

IMPORTS = "import sys, tempfile; from zoo.cli.main import build_parser; build_parser(); from zoo.train.loop import train; "
SETUP = IMPORTS + ("from zoo.train.logs import RunLog; RunLog(tempfile.mkdtemp()).close(); "
                   "assert 'tensorflow' not in sys.modules, 'TensorFlow was imported'")
OLD_SETUP = IMPORTS + ("from torch.utils.tensorboard import SummaryWriter; SummaryWriter(tempfile.mkdtemp()).close(); "
                       "assert 'tensorflow' in sys.modules")


def commands() -> dict[str, list[str]]:
    cli = [str(QUOVADIS)] if QUOVADIS.exists() else [sys.executable, "-m", "zoo.cli"]
    tf_installed = subprocess.run([sys.executable, "-c", "import importlib.util as u; "
                                   "print(u.find_spec('tensorflow') is not None)"],
                                  capture_output=True, text=True).stdout.strip() == "True"
    cmds = {
        'python -c "import torch" (baseline)': [sys.executable, "-c", "import torch"],
        "quovadis --version": cli + ["--version"],
        "quovadis --help": cli + ["--help"],
        "quovadis train --help": cli + ["train", "--help"],
        "train setup (CLI + loop + TensorBoard log)": [sys.executable, "-c", SETUP],
    }
    if tf_installed:
        cmds["train setup, TensorBoard importing TF (old)"] = [sys.executable, "-c", OLD_SETUP]
    return cmds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cmds = commands()
    times: dict[str, list[float]] = {k: [] for k in cmds}
    cpu: dict[str, list[float]] = {k: [] for k in cmds}
    with tempfile.TemporaryDirectory() as cwd:
        for name, cmd in cmds.items():  # warm the file cache once
            subprocess.run(cmd, cwd=ROOT, capture_output=True)
        for _ in range(args.rounds):
            for name, cmd in cmds.items():
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                start = time.perf_counter()
                proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
                times[name].append(time.perf_counter() - start)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu[name].append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
                if proc.returncode != 0:
                    raise SystemExit(f"{name} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    base = statistics.median(next(iter(times.values())))
    base_cpu = statistics.median(next(iter(cpu.values())))
    print(f"start-up, median of {args.rounds} interleaved rounds (python {sys.version.split()[0]}); CPU time is "
          "user + system of the process, steadier than wall time on a shared machine")
    print("| command | wall | vs import torch | CPU | vs import torch | CPU difference |\n|---|---:|---:|---:|---:|---:|")
    for name in times:
        m, c = statistics.median(times[name]), statistics.median(cpu[name])
        print(f"| {name} | {m * 1000:.0f} ms | {m / base:.2f}x | {c * 1000:.0f} ms | {c / base_cpu:.2f}x | "
              f"{(c - base_cpu) * 1000:+.0f} ms |")


if __name__ == "__main__":
    main()
