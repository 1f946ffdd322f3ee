"""The compiled (torch.compile, inductor freezing) inference path: same outputs as the eager fused model,
only after enough clips, eager for other shapes, and switchable by QUOVADIS_COMPILE."""
import pytest
import torch

from zoo.models.compiled import COMPILE_AFTER_CLIPS, CompiledForward, compile_after
from zoo.models.i3d import InceptionI3d
from zoo.models.inference import InferenceModel

CPU = torch.device("cpu")


def test_compiled_equals_eager_fused_and_other_shapes_stay_eager():
    torch.manual_seed(0)
    model = InceptionI3d(num_classes=7).eval()
    x = torch.rand(2, 3, 9, 200, 200) * 2 - 1
    eager, compiled = InferenceModel(model, compile=False), InferenceModel(model, compile=True)
    assert not isinstance(eager.forward, CompiledForward) and "torch.compile after 0 clips" in compiled.describe()
    a, b = compiled(x), eager(x)
    assert compiled.forward.failed is None, compiled.forward.failed
    assert compiled.forward.compiled is not None and compiled.forward.compile_seconds > 0
    assert (a - b).abs().max() <= 1e-5 * b.abs().max()
    smaller = x[:1]  # the last, smaller batch runs eager: no second compile
    assert torch.equal(compiled(smaller), eager(smaller))
    assert compiled.forward.key[0][0] == tuple(x.shape)


def test_auto_compiles_only_long_cpu_runs(monkeypatch):
    monkeypatch.delenv("QUOVADIS_COMPILE", raising=False)
    assert compile_after(None, CPU, fused=True) == COMPILE_AFTER_CLIPS
    assert compile_after(None, CPU, fused=False) is None  # inflated models: eager
    assert compile_after(None, torch.device("cuda"), fused=True) is None
    assert compile_after(True, CPU, fused=True) == 0 and compile_after(False, CPU, fused=True) is None
    monkeypatch.setenv("QUOVADIS_COMPILE", "0")
    assert compile_after(None, CPU, fused=True) is None
    monkeypatch.setenv("QUOVADIS_COMPILE", "1")
    assert compile_after(None, CPU, fused=True) == 0
    monkeypatch.setenv("QUOVADIS_COMPILE", "yes please")
    with pytest.raises(ValueError, match="QUOVADIS_COMPILE"):
        compile_after(None, CPU, fused=True)


def test_small_run_never_compiles(monkeypatch):
    monkeypatch.delenv("QUOVADIS_COMPILE", raising=False)
    model = InceptionI3d(num_classes=5, final_endpoint="Logits").eval()
    runner = InferenceModel(model)
    runner(torch.rand(2, 3, 9, 193, 193) * 2 - 1)
    assert isinstance(runner.forward, CompiledForward) and runner.forward.compiled is None
    assert runner.forward.seen == 2 < COMPILE_AFTER_CLIPS
