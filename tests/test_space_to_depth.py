"""The space-to-depth stem (``SpaceToDepthConv``): a strided SAME conv rewritten as a stride-1 conv over the
stride phases folded into channels. It must be the same function as the conv it replaces, for any kernel,
stride and input length (odd ones included), eager and under torch.compile."""
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from zoo.models.i3d import InceptionI3d, SpaceToDepthConv, Unit3D, space_to_depth


def _unit(cin, cout, kernel, stride, seed=0):
    torch.manual_seed(seed)
    unit = Unit3D(cin, cout, kernel, stride, bn=False, bias=True).double()
    with torch.no_grad():
        unit.conv.bias.normal_()
    return unit


@given(kernel=st.tuples(*[st.integers(1, 7)] * 3), stride=st.tuples(*[st.integers(1, 3)] * 3),
       size=st.tuples(*[st.integers(1, 12)] * 3), cin=st.integers(1, 3), channels_last=st.booleans())
def test_space_to_depth_conv_is_the_strided_same_conv(kernel, stride, size, cin, channels_last):
    unit = _unit(cin, 4, kernel, stride)
    x = torch.randn(2, cin, *size, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last_3d)
    want = unit(x)
    with torch.no_grad():
        got = SpaceToDepthConv(unit)(x)
    assert got.shape == want.shape
    assert (got - want).abs().max().item() < 1e-12


def test_phases_fold_into_channels_in_the_documented_order():
    """Channel ((b_t*s_h + b_h)*s_w + b_w)*C + c of output position (j_t, j_h, j_w) is padded input
    [c, s_t*j_t + b_t, ...] with SAME's front padding (kernel 7, stride 2: 3 frames for 5 or 7, 2 for 6)."""
    x = torch.arange(2 * 5 * 6 * 7, dtype=torch.float32).view(1, 2, 5, 6, 7) + 1
    y = space_to_depth(x, [7, 7, 7], [2, 2, 2], torch.float32)
    assert y.shape == (1, 16, 6, 6, 7) and y.is_contiguous(memory_format=torch.channels_last_3d)
    padded = torch.nn.functional.pad(x, (3, 14 - 7 - 3, 2, 12 - 6 - 2, 3, 12 - 5 - 3))  # to 2 * (6, 6, 7)
    for bt in range(2):
        for bh in range(2):
            for bw in range(2):
                for c in range(2):
                    got = y[0, ((bt * 2 + bh) * 2 + bw) * 2 + c]
                    assert torch.equal(got, padded[0, c, bt::2, bh::2, bw::2])


def test_the_cpu_runner_uses_it_in_bf16_only_and_fused_only_when_asked():
    from zoo.models.inference import InferenceModel
    model = InceptionI3d(num_classes=5, final_endpoint="Mixed_3b").eval()
    stem = lambda precision: InferenceModel(model, device="cpu", precision=precision, compile=False).model.Conv3d_1a_7x7  # noqa: E731
    assert isinstance(stem("bf16"), SpaceToDepthConv) and isinstance(stem("fp32"), Unit3D)
    assert isinstance(model.fused(dtype=torch.bfloat16).Conv3d_1a_7x7, Unit3D)  # unmeasured on GPUs: opt-in
    assert isinstance(model.fused(space_to_depth=True).Conv3d_1a_7x7, SpaceToDepthConv)


def test_fused_i3d_with_the_stem_equals_the_reference():
    torch.manual_seed(0)
    model = InceptionI3d(num_classes=5, final_endpoint="Mixed_3c").eval()
    with torch.no_grad():
        for m in model.modules():  # BatchNorm statistics that are not the identity
            if hasattr(m, "running_var"):
                m.running_var.uniform_(0.5, 2.0)
                m.running_mean.normal_(0, 0.1)
                m.bias.normal_(0, 0.1)
    x = torch.rand(2, 3, 9, 45, 37) * 2 - 1
    with torch.no_grad():
        want = model.extract_endpoints(x, ["Mixed_3c"])["Mixed_3c"]
        got = model.fused(space_to_depth=True).extract_endpoints(
            x.contiguous(memory_format=torch.channels_last_3d), ["Mixed_3c"])["Mixed_3c"]
        bf16 = model.fused(dtype=torch.bfloat16, space_to_depth=True).extract_endpoints(
            x.to(torch.bfloat16), ["Mixed_3c"])["Mixed_3c"]
    assert (got - want).abs().max() <= 1e-5 * want.abs().max()
    assert (bf16.float() - want).abs().max() <= 5e-2 * want.abs().max()


def test_input_gradients_go_through_the_stem():
    """The custom op has no backward; with a gradient asked of the input the fold runs as pad + permute
    (the same values), so saliency through the fused model works and equals the strided conv's."""
    unit = _unit(3, 4, (7, 7, 7), (2, 2, 2))
    stem = SpaceToDepthConv(unit)
    x = torch.randn(1, 3, 9, 13, 11, dtype=torch.float64, requires_grad=True)
    stem(x).sum().backward()
    got, x.grad = x.grad, None
    unit(x).sum().backward()
    assert torch.allclose(got, x.grad, atol=1e-12)
    from zoo.models.i3d import space_to_depth_differentiable
    with torch.no_grad():
        assert torch.equal(space_to_depth_differentiable(x, (7, 7, 7), (2, 2, 2), torch.float64),
                           space_to_depth(x, [7, 7, 7], [2, 2, 2], torch.float64))


@pytest.mark.slow
def test_compiled_stem_equals_eager():
    """Under torch.compile the phase copies run as the custom op ``quovadis::space_to_depth`` (one graph)."""
    unit = _unit(3, 8, (7, 7, 7), (2, 2, 2)).float()
    stem = SpaceToDepthConv(unit)
    x = torch.randn(1, 3, 9, 33, 31)
    with torch.no_grad():
        want = stem(x)
        got = torch.compile(stem, fullgraph=True)(x)
    assert (got - want).abs().max() <= 1e-5 * want.abs().max()
