"""Promises of the training CLI that other tests leave alone, on real MP4s (generated moving shapes):

* ``quovadis train`` with bf16 autocast and channels-last memory (the CPU stand-in for the GPU recipe);
* fine-tuning an I3D zoo model in ``fixed`` mode: only its ``Logits`` head (and no BatchNorm statistics
  outside it) changes;
* ``quovadis evaluate --fuse --weights``: the fusion weights are used, and the per-class report is right,
  checked against the saved per-video predictions.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from zoo.data.synthetic import make_moving_shapes

ROOT = Path(__file__).resolve().parents[1]
COMMON = ["model.pretrained=false", "data.flip=false", "data.multiscale=false", "data.batch_size=2",
          "data.workers=0", "optim.name=sgd", "progress=false", "tensorboard=false", "epochs=1", "--no-val"]
TIMM = ["model.name=timm:test_resnet", "model.dropout=0.0", "data.clip_len=4", "data.size=32", "data.short_side=32",
        "optim.lr=0.05", "seed=5"]
I3D = ["model.name=i3d_inception_k400_rgb", "finetune=fixed", "data.clip_len=9", "data.size=193",
       "data.short_side=193", "optim.lr=0.5", "seed=2"]


def cli(*args):
    proc = subprocess.run([sys.executable, "-m", "zoo.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONWARNINGS": "ignore", "HF_HUB_OFFLINE": "1"}, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def final_weights(run: Path) -> dict:
    if (run / "last.safetensors").is_file():
        return load_file(str(run / "last.safetensors"))
    return torch.load(run / "last.pt", map_location="cpu", weights_only=False)["model"]


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return make_moving_shapes(tmp_path_factory.mktemp("shapes"), classes=2, per_class=4, frames=10, size=32, seed=4)


@pytest.fixture(scope="module")
def runs(shapes, tmp_path_factory):
    """Two small runs on the same split: bf16 + channels-last, and plain fp32 with another seed."""
    out = tmp_path_factory.mktemp("runs")
    cli("train", f"out={out / 'a'}", f"data.root={shapes}", *COMMON, *TIMM, "precision=bf16", "channels_last=true")
    cli("train", f"out={out / 'b'}", f"data.root={shapes}", *COMMON, *TIMM, "seed=6")
    return out / "a", out / "b"


def test_bf16_channels_last_training_on_cpu_updates_float32_weights(runs):
    from zoo.train.build import build_model
    from zoo.train.config import from_dict
    run = runs[0]
    cfg = from_dict(json.loads((run / "config.json").read_text()))
    assert cfg.precision == "bf16" and cfg.channels_last
    torch.manual_seed(cfg.seed)
    start, end = build_model(cfg, 2).state_dict(), final_weights(run)
    floats = [k for k in end if end[k].is_floating_point()]
    assert all(end[k].dtype == torch.float32 and torch.isfinite(end[k]).all() for k in floats)
    assert sum(not torch.equal(start[k], end[k]) for k in floats) > len(floats) // 2  # the whole net trained
    rows = (run / "metrics.csv").read_text().splitlines()
    assert len(rows) == 2


def test_fixed_finetune_of_an_i3d_zoo_model_trains_only_its_logits(shapes, tmp_path):
    from zoo.train.build import build_model
    from zoo.train.config import from_dict
    run = tmp_path / "i3d"
    cli("train", f"out={run}", f"data.root={shapes}", *COMMON, *I3D)
    cfg = from_dict(json.loads((run / "config.json").read_text()))
    torch.manual_seed(cfg.seed)
    start, end = build_model(cfg, 2).state_dict(), final_weights(run)
    assert start["Logits.Conv3d_0c_1x1.conv.weight"].shape[0] == 2  # the 400-class head was replaced
    changed = sorted(k for k in start if not torch.equal(start[k], end[k]))
    assert changed and all(k.startswith("Logits.") for k in changed), changed
    assert "Logits.Conv3d_0c_1x1.conv.weight" in changed and "Logits.Conv3d_0c_1x1.conv.bias" in changed


@pytest.mark.parametrize("weights", [(1.0, 0.0), (0.0, 2.0)])
def test_evaluate_fuses_with_the_given_weights_and_reports_per_class(runs, tmp_path, weights):
    """The report, class by class, equals the given weights applied to the per-video logits evaluate saves."""
    run_a, run_b = runs
    out = tmp_path / "eval"
    proc = cli("evaluate", "--run", str(run_a), "--fuse", str(run_b), "--weights", ",".join(map(str, weights)),
               "--clips", "1", "--crops", "1", "--out", str(out))
    report = json.loads((out / "eval_report.json").read_text())
    a, b = (torch.load(r / "test_predictions.pt", weights_only=False) for r in runs)
    pos = {p: i for i, p in enumerate(b["paths"])}
    idx = torch.tensor([pos[p] for p in a["paths"]])
    assert torch.equal(b["labels"][idx], a["labels"])
    fused = weights[0] * a["logits"].float() + weights[1] * b["logits"][idx].float()
    pred, labels = fused.argmax(-1), a["labels"]
    classes = json.loads((run_a / "config.json").read_text())["data"]["classes"]
    per_class = {}
    for c, name in enumerate(classes):
        mask = labels == c
        if mask.any():
            per_class[name] = {"acc": 100.0 * (pred[mask] == c).float().mean().item(), "support": int(mask.sum())}
    assert report["per_class"].keys() == per_class.keys()
    for name, row in per_class.items():
        assert report["per_class"][name]["support"] == row["support"]
        assert report["per_class"][name]["acc"] == pytest.approx(row["acc"])
    assert report["top1"] == pytest.approx(100.0 * (pred == labels).float().mean().item())
    assert report["num_videos"] == len(labels) == sum(r["support"] for r in per_class.values())
    assert "per class:" in proc.stdout and all(name in proc.stdout for name in per_class)
    assert [e["run"] for e in report["evaluated"]] == [str(run_a), str(run_b)]
    assert f"fused ({weights[0]:g} x {run_a}, {weights[1]:g} x {run_b}): top1 {report['top1']:.2f}%" in proc.stdout


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (the CPU stand-in is the bf16 run above)")
def test_bf16_channels_last_training_step_on_cuda():
    import inflate
    import timm
    model = inflate.inflate(timm.create_model("test_resnet", num_classes=3), time_kernel=3).cuda().train()
    model.to_channels_last()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(2, 3, 4, 32, 32, device="cuda").contiguous(memory_format=torch.channels_last_3d)
    before = [p.detach().clone() for p in model.parameters()]
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = torch.nn.functional.cross_entropy(model(x).float(), torch.tensor([0, 2], device="cuda"))
    loss.backward()
    opt.step()
    assert torch.isfinite(loss) and all(p.dtype == torch.float32 for p in model.parameters())
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters()))
