"""Inference commands run the fused fast path by default and say so; --exact runs the unfused fp32 model."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import zoo
from zoo.models.i3d import InceptionI3d, Unit3D
from zoo.models.inference import InferenceModel, resolve_precision

ROOT = Path(__file__).resolve().parent.parent
GIF = Path(__file__).parent / "data" / "v_CricketShot_g04_c01_rgb_16f.gif"


def _randomize_bn(model):
    for m in model.modules():
        if isinstance(m, Unit3D) and m.bn is not None:
            m.bn.running_mean.normal_(0, 0.2)
            m.bn.running_var.uniform_(0.5, 1.5)
            m.bn.bias.data.normal_(0, 0.2)
    return model


def test_fused_default_equals_exact_on_endpoints():
    torch.manual_seed(0)
    model = _randomize_bn(InceptionI3d()).eval()
    x = torch.rand(2, 3, 6, 40, 48) * 2 - 1
    fast, exact = InferenceModel(model), InferenceModel(model, exact=True)
    assert fast.fused and not exact.fused and fast.precision == exact.precision == "fp32"  # CPU default: fp32
    assert "fast path: fused" in fast.describe() and "exact" in exact.describe()
    a, b = fast.endpoints(x, ["Mixed_4c"])["Mixed_4c"], exact.endpoints(x, ["Mixed_4c"])["Mixed_4c"]
    assert (a - b).abs().max() <= 1e-4 * b.abs().max()
    assert model.Mixed_3b.merged_1x1 is None and model.Conv3d_1a_7x7.bn is not None  # the original is untouched


def test_two_stream_fuses_each_stream_and_precision_rules():
    two = zoo.build(zoo.info("i3d_inception_k400_two_stream"))
    runner = InferenceModel(two)
    assert runner.fused and runner.model.rgb.Conv3d_1a_7x7.bn is None and two.rgb.Conv3d_1a_7x7.bn is not None
    assert resolve_precision("auto", torch.device("cuda")) == "bf16"
    with pytest.raises(ValueError, match="--exact.*bf16"):
        resolve_precision("bf16", torch.device("cpu"), exact=True)


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists(), reason="reads the CPU flags from Linux's /proc/cpuinfo")
def test_fast_precision_is_bf16_only_where_the_cpu_has_amx():
    """``fast`` asks for speed over exactness: bf16 on a CPU with AMX tiles (the kernel's ``amx_tile`` flag),
    fp32 on any other CPU; never bf16 with --exact; ``auto`` stays fp32 on the CPU either way."""
    flags = set(Path("/proc/cpuinfo").read_text().split())
    cpu = torch.device("cpu")
    assert resolve_precision("fast", cpu) == ("bf16" if "amx_tile" in flags else "fp32")
    assert resolve_precision("auto", cpu) == "fp32" and resolve_precision("fast", cpu, exact=True) == "fp32"
    runner = InferenceModel(InceptionI3d(num_classes=3, final_endpoint="Mixed_3b"), precision="fast", compile=False)
    assert runner.precision == resolve_precision("fast", cpu) and f"{runner.precision} on cpu" in runner.describe()
    with pytest.raises(ValueError, match="unknown precision 'fp8'; choose one of auto, fp32, bf16, fast"):
        resolve_precision("fp8", cpu)


def test_predict_says_which_path_and_exact_agrees(rgb_scratch_weights):
    outs = {}
    for flag in ([], ["--exact"]):
        proc = subprocess.run([sys.executable, "-m", "zoo.cli", "predict", str(GIF), "--model", "i3d_inception_k400_rgb",
                               "--weights", str(rgb_scratch_weights), "--top", "1", *flag], capture_output=True,
                              text=True, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        assert proc.returncode == 0, proc.stderr[-2000:]
        outs[bool(flag)] = proc
    assert "fast path: fused" in outs[False].stderr and "exact: unfused fp32" in outs[True].stderr
    top = [o.stdout.splitlines()[-1].split() for o in outs.values()]
    assert top[0][2:] == top[1][2:] == ["playing", "cricket"]
    assert float(top[0][1]) == pytest.approx(float(top[1][1]), rel=1e-4)
