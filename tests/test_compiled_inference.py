"""The compiled (torch.compile, inductor freezing) inference path: same outputs as the eager fused model,
only after enough clips, eager for other shapes, and switchable by QUOVADIS_COMPILE."""
import pytest
import torch

from zoo.models.compiled import (COMPILE_AFTER_CLIPS, PAYBACK_CLIPS, UNKNOWN_RUN_AFTER_CLIPS, CompiledForward,
                                  compile_after)
from zoo.models.i3d import InceptionI3d
from zoo.models.inference import InferenceModel

CPU = torch.device("cpu")


def test_compiled_equals_eager_fused_and_other_shapes_stay_eager():
    torch.manual_seed(0)
    model = InceptionI3d(num_classes=7).eval()
    x = torch.rand(2, 3, 9, 200, 200) * 2 - 1
    eager, compiled = InferenceModel(model, compile=False), InferenceModel(model, compile=True)
    assert not isinstance(eager.forward, CompiledForward) and "torch.compile at once" in compiled.describe()
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
    assert compile_after(None, CPU, fused=False) is None  # inflated models: eager unless asked
    assert compile_after(True, CPU, fused=False) == 0
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


def test_an_inflated_network_compiles_on_request_with_its_batchnorms_folded():
    import timm

    import inflate
    torch.manual_seed(0)
    model = inflate.inflate(timm.create_model("resnet10t", num_classes=3), time_kernel=3).eval()
    with torch.no_grad():  # BatchNorm statistics that are not the identity, so folding them matters
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d | torch.nn.BatchNorm3d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2)
    x = torch.randn(2, 3, 4, 64, 64)
    eager, compiled = InferenceModel(model), InferenceModel(model, compile=True)
    assert not isinstance(eager.forward, CompiledForward)  # auto never compiles an inflated network
    assert "no fused form" in compiled.describe() and "torch.compile at once" in compiled.describe()
    a, b = compiled(x), eager(x)
    assert compiled.forward.failed is None, compiled.forward.failed
    assert (a - b).abs().max() <= 1e-4 * b.abs().max()


def test_the_fvd_commands_take_compile_flags():
    from zoo.cli.main import build_parser
    parser = build_parser()
    for command in (["fvd", "a", "b"], ["fvd-stats", "a", "-o", "s.safetensors"]):
        assert parser.parse_args(command).compile is None
        assert parser.parse_args([*command, "--compile"]).compile is True
        assert parser.parse_args([*command, "--no-compile"]).compile is False


def test_features_compile_their_endpoint_heads():
    """``features`` runs its endpoints through the runner's compiled path too (it used to call the eager
    model directly while describe() said it compiled)."""
    from zoo.metrics.features import FeatureExtractor
    torch.manual_seed(0)
    net = InceptionI3d(num_classes=400)
    x = torch.rand(2, 3, 8, 64, 64) * 2 - 1
    got = FeatureExtractor("i3d_inception_k400_rgb", endpoints=["Mixed_3c", "Mixed_4b"], net=net, compile=True)
    want = FeatureExtractor("i3d_inception_k400_rgb", endpoints=["Mixed_3c", "Mixed_4b"], net=net, compile=False)
    a, b = got.features({"rgb": x}), want.features({"rgb": x})
    head = got._heads["rgb"]
    assert isinstance(head, CompiledForward) and head.failed is None and head.compiled is not None, head.failed
    assert "torch.compile at once" in got.describe() and "torch.compile" not in want.describe()
    for name in ("Mixed_3c", "Mixed_4b"):
        assert (a[name] - b[name]).abs().max() <= 1e-5 * b[name].abs().max()


def _due_after(forward: CompiledForward, clips: int, batch: int = 8) -> int | None:
    """Feed ``clips`` clips in batches (counting only) and return after how many compiling came due."""
    for seen in range(batch, clips + 1, batch):
        forward.seen = seen
        if forward.due():
            return seen
    return None


def test_auto_compiles_only_when_enough_clips_are_left_to_pay_for_it():
    """A compile (~12 s) pays back after ~900 clips: a run that says it has fewer to go stays eager; a long
    one compiles right after the first COMPILE_AFTER_CLIPS; one of unknown length waits for
    UNKNOWN_RUN_AFTER_CLIPS; compile=True compiles at once."""
    model = torch.nn.Identity()
    short = CompiledForward(model, COMPILE_AFTER_CLIPS)
    short.expect(COMPILE_AFTER_CLIPS + PAYBACK_CLIPS - 8)
    assert _due_after(short, 5000) is None
    long = CompiledForward(model, COMPILE_AFTER_CLIPS)
    long.expect(5000)
    assert _due_after(long, 5000) == COMPILE_AFTER_CLIPS + 8
    unknown = CompiledForward(model, COMPILE_AFTER_CLIPS)
    assert _due_after(unknown, 5000) == UNKNOWN_RUN_AFTER_CLIPS + 8
    assert CompiledForward(model, 0).due()
    later = CompiledForward(model, COMPILE_AFTER_CLIPS)  # expect() counts from the clips already seen
    later.seen = 3000
    later.expect(PAYBACK_CLIPS)
    assert later.expected == 3000 + PAYBACK_CLIPS and later.due()


def test_a_short_last_batch_never_takes_the_compile():
    """Compiling is for the full batches' shape: a short chunk (a video's last clips) arriving when the
    compile comes due waits for the next full batch."""
    forward = CompiledForward(torch.nn.Identity(), COMPILE_AFTER_CLIPS)
    forward.expect(5000)
    forward.largest, forward.seen = 4, COMPILE_AFTER_CLIPS + 2
    assert not forward.due(2) and forward.due(4) and forward.due()
