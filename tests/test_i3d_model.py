"""The I3D port's own laws: endpoints, head replacement, the fused inference path and input checks."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from zoo.models.i3d import ENDPOINTS, InceptionI3d


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = InceptionI3d(num_classes=10).eval()
    for mm in m.modules():
        if isinstance(mm, torch.nn.Conv3d):  # He init keeps the signal alive through 60 convs: logits O(1)
            torch.nn.init.kaiming_normal_(mm.weight, nonlinearity="relu")
        if hasattr(mm, "running_var"):
            mm.running_var.uniform_(0.5, 2.0)
            mm.running_mean.normal_(0, 0.1)
            mm.bias.data.normal_(0, 0.1)
    return m


def test_every_endpoint_by_name(model):
    x = torch.rand(1, 3, 9, 193, 201) * 2 - 1
    with torch.no_grad():
        out = model.extract_endpoints(x)
    assert list(out) == list(ENDPOINTS)
    assert out["Mixed_5c"].shape == (1, 1024, 2, 7, 7)
    assert out["Logits"].shape == (1, 10)
    torch.testing.assert_close(out["Predictions"], out["Logits"].softmax(-1))
    with torch.no_grad():
        part = model.extract_endpoints(x, ["Mixed_3b"])
    torch.testing.assert_close(part["Mixed_3b"], out["Mixed_3b"])
    with pytest.raises(ValueError, match="unknown endpoints"):
        model.extract_endpoints(x, ["Mixed_9z"])


def test_fused_path_equals_the_reference_and_bf16_keeps_top1(model):
    x = torch.rand(2, 3, 10, 224, 224) * 2 - 1
    with torch.no_grad():
        ref = model(x)
        fused = model.fused()(x.contiguous(memory_format=torch.channels_last_3d))
        bf16 = model.fused(dtype=torch.bfloat16)(x.to(torch.bfloat16))
    assert ((fused - ref).abs().max() / ref.abs().max()).item() < 1e-5
    assert torch.equal(fused.argmax(-1), ref.argmax(-1))
    assert bf16.dtype == torch.float32 and bf16.shape == ref.shape
    assert ((bf16 - ref).abs().max() / ref.abs().max()).item() < 5e-2
    # top-1 is kept wherever the reference's top-2 margin exceeds twice bf16's largest error
    top2 = ref.topk(2, dim=-1).values
    clear = (top2[:, 0] - top2[:, 1]) > 2 * (bf16 - ref).abs().max()
    assert clear.any(), "no clip with a clear top-1: the check would be empty"
    assert torch.equal(bf16.argmax(-1)[clear], ref.argmax(-1)[clear])


def test_replace_logits_keeps_the_backbone(model):
    import copy
    m = copy.deepcopy(model).replace_logits(5, dropout=0.3)
    assert m.Logits.Conv3d_0c_1x1.conv.out_channels == 5 and m.dropout.p == 0.3 and m.config["num_classes"] == 5
    assert torch.equal(m.Mixed_5c.Branch_0.Conv3d_0a_1x1.conv.weight, model.Mixed_5c.Branch_0.Conv3d_0a_1x1.conv.weight)


def test_bad_inputs_say_what_is_expected(model):
    with pytest.raises(ValueError, match=r"\(B, 3, T, H, W\)"):
        model(torch.zeros(1, 2, 9, 224, 224))
    with pytest.raises(ValueError, match="at least 2x7x7"):
        model(torch.zeros(1, 3, 8, 160, 160))


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 12), k=st.integers(1, 4), s=st.integers(1, 3), axis=st.integers(0, 2))
def test_max_pool_without_a_padded_copy_equals_minus_inf_padding(n, k, s, axis):
    """MaxPoolSame skips the -inf padded copy (ceil_mode) where that gives TF SAME's windows: same bits."""
    from zoo.models.i3d import MaxPoolSame, _same_pads
    shape, kernel, stride = [3, 3, 3], [1, 1, 1], [1, 1, 1]
    shape[axis], kernel[axis], stride[axis] = n, k, s
    x = torch.randn(1, 2, *shape)
    pads = [(0, 0)] * 3
    pads[axis] = _same_pads(shape, kernel, stride)[axis]
    padded = torch.nn.functional.pad(x, [v for p in reversed(pads) for v in p], value=float("-inf"))
    ref = torch.nn.functional.max_pool3d(padded, kernel, stride)
    assert torch.equal(MaxPoolSame(kernel, stride)(x), ref)


def test_fused_conv_relu_path_follows_in_place_weight_edits(model):
    """The fused CPU path (ReLU inside the conv, weights kept pre-packed) gives relu(conv) and repacks when a
    weight changes in place."""
    import torch.nn.functional as F
    fused = model.fused()
    unit = fused.Conv3d_2c_3x3
    x = torch.rand(1, 64, 4, 9, 11).contiguous(memory_format=torch.channels_last_3d)
    with torch.no_grad():
        for _ in range(2):
            torch.testing.assert_close(unit(x), F.relu(F.conv3d(x, unit.conv.weight, unit.conv.bias, 1, 1)),
                                       rtol=1e-5, atol=1e-5)
            unit.conv.weight.mul_(-1)


def test_fused_model_made_and_run_under_inference_mode(model):
    """A fused model built inside ``torch.inference_mode()`` holds inference tensors (no version counter);
    running it there gives the same logits as the fused model built outside it."""
    x = torch.rand(1, 3, 9, 193, 193) * 2 - 1
    with torch.no_grad():
        want = model.fused()(x)
    with torch.inference_mode():
        got = model.fused()(x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
