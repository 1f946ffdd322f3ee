"""The train / evaluate harness on the CPU, on the generated moving-shapes dataset (real MP4 files)."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from zoo.data.synthetic import make_moving_shapes

ROOT = Path(__file__).resolve().parents[1]
TINY = ["model.name=timm:test_resnet", "model.pretrained=false", "model.dropout=0.0", "data.clip_len=4",
        "data.size=32", "data.short_side=32", "data.flip=false", "data.multiscale=false", "data.batch_size=4",
        "data.workers=0", "optim.name=sgd", "optim.lr=0.01", "progress=false", "seed=3", "tensorboard=false"]


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return make_moving_shapes(tmp_path_factory.mktemp("shapes"), classes=4, per_class=6, frames=8, size=32,
                              seed=1, corrupt=1)


def run_cli(*args, env=None, timeout=600):
    env = {**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})}
    return subprocess.run([sys.executable, "-m", "zoo.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=timeout)


def weights(run: Path) -> dict:
    return torch.load(run / "last.pt", map_location="cpu", weights_only=False)["model"]


def assert_same(a: dict, b: dict, atol=0.0):
    assert a.keys() == b.keys()
    for k in a:
        if a[k].is_floating_point():
            torch.testing.assert_close(a[k], b[k], rtol=0, atol=atol, msg=k)
        else:
            assert torch.equal(a[k], b[k]), k


def test_epoch_summary_logs_and_corrupt_video_counted(shapes, tmp_path):
    out = tmp_path / "run"
    proc = run_cli("train", f"out={out}", f"data.root={shapes}", "epochs=2", *TINY, env={"PYTHONWARNINGS": "default"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("epoch ")]
    assert len(lines) == 2 and "val loss" in lines[0] and "clips/s" in lines[0]
    assert "skipped 1 corrupt video(s)" in lines[0]
    import re
    named = set(re.findall(r"v_Move\w+_g\d+_c\d+\.mp4", proc.stderr))
    assert len(named) == 1, proc.stderr[-2000:]  # one warning, naming the corrupt file
    rows = (out / "metrics.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[0].startswith("epoch")
    for name in ("curves.png", "confusion.png", "last.pt", "last.safetensors", "config.json", "val_predictions.pt"):
        assert (out / name).is_file(), name
    assert not (out / "best.safetensors").exists()  # validated on the test split: it must not choose a checkpoint
    # a run folder is never silently taken over
    again = run_cli("train", f"out={out}", f"data.root={shapes}", "epochs=2", *TINY)
    assert again.returncode == 2 and "--resume" in again.stderr


def test_fixed_mode_trains_only_the_head(shapes, tmp_path):
    from zoo.train.build import build_model
    from zoo.train.config import from_dict
    out = tmp_path / "fixed"
    proc = run_cli("train", f"out={out}", f"data.root={shapes}", "epochs=1", "finetune=fixed", *TINY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cfg = from_dict(json.loads((out / "config.json").read_text()))
    torch.manual_seed(cfg.seed)
    start = build_model(cfg, 4).state_dict()
    end = weights(out)
    changed = sorted(k for k in start if not torch.equal(start[k], end[k]))
    assert changed and all(k.startswith("net.fc.") for k in changed), changed


def test_killed_run_resumes_to_the_same_weights(shapes, tmp_path):
    common = ["--no-val", f"data.root={shapes}", "epochs=2", "checkpoint_every=2", "deterministic=true", *TINY]
    ref = tmp_path / "ref"
    assert run_cli("train", f"out={ref}", *common).returncode == 0
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen([sys.executable, "-m", "zoo.cli", "train", f"out={out}", *common], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    caught = None
    while time.time() < deadline and proc.poll() is None:
        if (out / "last.pt").exists():
            try:
                state = torch.load(out / "last.pt", weights_only=False)
                if state["step_in_epoch"] > 0 and state["epoch"] == 1:  # mid-epoch, second epoch
                    caught = state
                    break
            except Exception:
                pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run ended by itself before it could be killed"
    assert caught is not None, "no mid-epoch checkpoint of the second epoch was seen before the kill"
    resumed = run_cli("train", "--resume", "auto", f"out={out}", *common)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same(weights(out), weights(ref))


def test_two_process_gloo_ddp_matches_one_process(shapes, tmp_path):
    common = ["--no-val", f"data.root={shapes}", "epochs=1", "freeze_bn=true", *TINY]
    one = tmp_path / "one"
    assert run_cli("train", f"out={one}", *common).returncode == 0
    two = tmp_path / "two"
    per_rank = [a if not a.startswith("data.batch_size") else "data.batch_size=2" for a in common]
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "zoo.cli", "train", f"out={two}", *per_rank], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"},
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_same(weights(one), weights(two), atol=1e-5)


def test_bad_config_is_named(tmp_path):
    proc = run_cli("train", f"out={tmp_path}", "optim.lrr=0.1")
    assert proc.returncode == 2 and "unknown config key 'optim.lrr' (given 0.1)" in proc.stderr


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(shapes, tmp_path):
    out = tmp_path / "nan"
    args = [a for a in TINY if not a.startswith("optim.lr")]
    proc = run_cli("train", "--no-val", f"out={out}", f"data.root={shapes}", "epochs=1", "checkpoint_every=1",
                   "optim.lr=1e30", "optim.momentum=0.0", *args)
    assert proc.returncode == 2, proc.stdout[-2000:]
    assert "loss became" in proc.stderr and "last good checkpoint" in proc.stderr and "--resume" in proc.stderr
    state = torch.load(out / "last.pt", weights_only=False)
    assert state["global_step"] >= 1
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
