"""benchmarks/gpu_check.sh, the script that runs everything needing a GPU, run here as its dry run (tiny
sizes, CPU), so that it still runs when a GPU machine is next available: every step must end ``ok``
(the optional ones may skip, saying why), and the table and JSON must be written."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STEPS = ["gpu_tests", "weights", "predict", "fvd", "features", "flow_torch", "flow_opencv", "train", "torchrun",
         "fvd_stats", "export_onnx", "stem", "compile"]
OPTIONAL = ["fvd_stats", "export_onnx"]  # skip, with the reason, where this quovadis lacks the command
REQUIRED = [s for s in STEPS if s not in OPTIONAL]


@pytest.mark.slow
def test_gpu_check_dry_run_runs_every_step(tmp_path):
    cv2 = pytest.importorskip("cv2")
    if not hasattr(getattr(cv2, "optflow", None), "DualTVL1OpticalFlow_create"):
        pytest.skip("the flow_opencv step needs OpenCV's TV-L1: pip install 'quovadis[flow]' (opencv-contrib)")
    out = tmp_path / "out"
    p = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--dry-run", "--out", str(out)],
                       check=False, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900,
                       env={**os.environ, "PYTHON": sys.executable})
    report = json.loads((out / "gpu_check.json").read_text())
    steps = {s["name"]: s for s in report["steps"]}
    assert list(steps) == STEPS, p.stdout[-3000:]
    bad = {n: s["error"] for n, s in steps.items() if n in REQUIRED and s["status"] != "ok"}
    assert not bad, f"{bad}\n{p.stdout[-3000:]}"
    for name in OPTIONAL:
        assert steps[name]["status"] == "ok" or steps[name]["status"] == "skipped" and steps[name]["error"], steps[name]
    assert p.returncode == 0, p.stdout[-3000:]
    assert report["dry_run"] is True and report["device"] == "cpu"

    figures = {(s["name"], f["name"]): f["value"] for s in report["steps"] for f in s["figures"]}
    assert figures[("gpu_tests", "failed")] == 0
    assert figures[("gpu_tests", "passed")] + figures[("gpu_tests", "skipped")] >= 1
    assert 0 <= figures[("train", "data wait (fraction of the epoch)")] <= 1
    assert figures[("train", "clips/s")] > 0 and figures[("train", "MFU (measured bf16 matmul peak)")] > 0
    assert figures[("flow_opencv", "EPE vs OpenCV, mean (px)")] >= 0
    assert figures[("fvd", "FVD")] > 0 and figures[("torchrun", "processes")] == 1
    assert figures[("compile", "I3D: compile seconds")] > 0
    assert figures[("stem", "space-to-depth speedup")] > 0 and figures[("stem", "logits apart (relative, bf16)")] < 0.1

    table = (out / "gpu_check.md").read_text()
    assert "| step | status | s | figure | value | goal |" in table
    for name in STEPS:
        assert f"| {name} | {steps[name]['status']} |" in table
    assert ">= 0.3" in table and "< 0.1" in table  # the goals stand next to the figures
