"""The VideoModel's promises beyond the maths of plain convs: timm's TF-"SAME" and weight-standardised
convs against a 3D reference, ``reset_classifier``, ``forward_features``, circular padding, deep copies,
input errors and what the layers say about themselves."""
import copy
import math

import pytest
import timm
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from hypothesis import example, given, settings
from hypothesis import strategies as st
from timm.layers import Conv2dSame, ScaledStdConv2d, ScaledStdConv2dSame, StdConv2d, StdConv2dSame

import inflate
from inflate import InflatedConv

from .reference3d import pad_frames, time_pad_amounts

SPECIAL = [Conv2dSame, StdConv2d, StdConv2dSame, ScaledStdConv2d, ScaledStdConv2dSame]


def tf_same_pads(size, k, s, d):
    total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2


def standardized(w, kt, conv):
    """Weight standardisation over the kernel's temporal sum, spread back over the taps."""
    total = w.sum(2)
    mean = total.mean(dim=(1, 2, 3)).view(-1, 1, 1, 1, 1)
    var = total.var(dim=(1, 2, 3), unbiased=False).view(-1, 1, 1, 1, 1)
    w = (w - mean / kt) / torch.sqrt(var + conv.eps)
    if type(conv).__name__.startswith("Scaled"):
        w = w * (conv.gain * conv.scale).view(-1, 1, 1, 1, 1)
    return w


def special_reference(x, conv, w, kt, ts, time_padding, causal):
    if type(conv).__name__.startswith(("StdConv", "ScaledStdConv")):
        w = standardized(w, kt, conv)
    x = pad_frames(x, *time_pad_amounts(x.shape[2], kt, ts, 1, causal), time_padding)
    if type(conv).__name__.endswith("Same"):
        (kh, kw), (sh, sw), (dh, dw) = conv.kernel_size, conv.stride, conv.dilation
        ph, pw = tf_same_pads(x.shape[3], kh, sh, dh), tf_same_pads(x.shape[4], kw, sw, dw)
        x = F.pad(x, (*pw, *ph, 0, 0))
        padding = (0, 0, 0)
    else:
        padding = (0, *conv.padding)
    return F.conv3d(x, w, conv.bias, (ts, *conv.stride), padding, (1, *conv.dilation), conv.groups)


@settings(max_examples=15)
@example(Conv2dSame, 2, 2, 1, 1, "replicate", False, 2, 0, 8, 9)  # TF "SAME" under a stride: even sizes differ
@example(StdConv2dSame, 1, 2, 1, 2, "zeros", True, 3, 1, 9, 8)
@example(ScaledStdConv2dSame, 1, 1, 2, 1, "circular", False, 2, 2, 6, 7)  # even kernel, stride 1: dynamic pad
@given(st.sampled_from(SPECIAL), st.integers(1, 3), st.integers(1, 2), st.integers(1, 2), st.integers(1, 2),
       st.sampled_from(inflate.TIME_PADDING_MODES), st.booleans(), st.integers(2, 5), st.integers(0, 999),
       st.integers(6, 9), st.integers(6, 9))
def test_timm_special_convs_equal_their_3d_reference(cls, k, stride, kt, ts, time_padding, causal, frames, seed,
                                                     height, width):
    """Even and odd frame sizes: TF "SAME" pads them differently under a stride."""
    causal = causal and time_padding != "circular"
    torch.manual_seed(seed)
    conv = cls(4, 6, k + 1, stride=stride, groups=2, bias=True).double()
    if hasattr(conv, "gain"):
        with torch.no_grad():
            conv.gain.uniform_(0.5, 2.0)
    video = inflate.inflate(nn.Sequential(conv), policy=[inflate.Rule("0", kernel=kt + 1, stride=ts)],
                            init="noise", time_padding=time_padding, causal=causal)
    layer = video.net[0]
    assert isinstance(layer, InflatedConv)
    with torch.no_grad():
        layer.weight.normal_()
        x = torch.randn(2, 4, frames, height, width, dtype=torch.float64)
        got = video(x, reduce_time=False).transpose(1, 2)
        want = special_reference(x, conv, layer.weight, kt + 1, ts, time_padding, causal)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("kernel, stride, dilation", [((3, 1), (2, 1), 1), ((1, 3), 1, 1), ((1, 2), 1, 1),
                                                      ((3, 2), (2, 1), (1, 2)), ((2, 3), (1, 2), (2, 1))])
@pytest.mark.parametrize("height, width", [(8, 9), (7, 8)])
def test_tf_same_conv_pads_each_axis_by_its_own_kernel_stride_and_dilation(kernel, stride, dilation, height, width):
    conv = Conv2dSame(2, 3, kernel, stride=stride, dilation=dilation).double()
    video = inflate.inflate(nn.Sequential(conv), policy="0=2")
    x = torch.randn(1, 2, 3, height, width, dtype=torch.float64)
    with torch.no_grad():
        got = video(x, reduce_time=False).transpose(1, 2)
        want = special_reference(x, conv, video.net[0].weight, 2, 1, "replicate", False)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("cls", SPECIAL)
def test_timm_special_convs_keep_the_boring_video_law(cls):
    torch.manual_seed(0)
    conv = cls(3, 4, 3, stride=2, bias=True).double().eval()
    video = inflate.inflate(nn.Sequential(conv), time_kernel=3, init="noise")
    x = torch.randn(2, 3, 11, 10, dtype=torch.float64)
    with torch.no_grad():
        per_time = video(x[:, :, None].expand(-1, -1, 4, -1, -1), reduce_time=False)
        torch.testing.assert_close(per_time, conv(x)[:, None].expand_as(per_time), rtol=1e-9, atol=1e-10)


def test_circular_padding_wraps_the_clip_and_differs_from_replicate():
    conv = nn.Conv2d(1, 1, 1, bias=False).double()
    x = torch.arange(1.0, 6.0, dtype=torch.float64).view(1, 1, 5, 1, 1)
    out = {}
    for mode in inflate.TIME_PADDING_MODES:
        video = inflate.inflate(nn.Sequential(conv), policy="0=5", time_padding=mode)
        with torch.no_grad():
            video.net[0].weight.copy_(torch.tensor([1.0, 0, 0, 0, 0]).view(1, 1, 5, 1, 1))
            out[mode] = video(x, reduce_time=False).flatten().tolist()
    # taps (1, 0, 0, 0, 0): output t is padded frame t, two frames before input frame t
    assert out["circular"] == [4.0, 5.0, 1.0, 2.0, 3.0]
    assert out["replicate"] == [1.0, 1.0, 1.0, 2.0, 3.0]
    assert out["zeros"] == [0.0, 0.0, 1.0, 2.0, 3.0]


# ------------------------------------------------------------------------------ heads and features
def head_params(video):
    return {n for n, _ in video.named_parameters()}


@pytest.mark.parametrize("builder", [
    lambda: timm.create_model("test_resnet", num_classes=10),
    lambda: torchvision.models.resnet18(num_classes=10),
    lambda: torchvision.models.mobilenet_v3_small(num_classes=10),
])
def test_reset_classifier_gives_new_classes_and_keeps_the_backbone(builder):
    torch.manual_seed(0)
    video = inflate.inflate(builder().eval(), time_kernel=3)
    before = {k: v.clone() for k, v in video.state_dict().items()}
    x = torch.randn(1, 3, 2, 32, 32)
    with torch.no_grad():
        assert video(x).shape == (1, 10)
        feats = video.forward_features(x)
    video.reset_classifier(7)
    assert video.config["num_classes"] == 7
    if hasattr(video.net, "get_classifier"):  # timm's own reset_classifier ran (it also updates num_classes)
        assert video.net.num_classes == 7 and video.net.get_classifier().out_features == 7
    with torch.no_grad():
        assert video(x).shape == (1, 7)
        torch.testing.assert_close(video.forward_features(x), feats)
    after = video.state_dict()
    changed = {k for k in before if k not in after or before[k].shape != after[k].shape
               or not torch.equal(before[k], after[k])}
    assert changed and all(k.rsplit(".", 2)[-2] in ("fc", "classifier", "3", "head") for k in changed), changed
    assert all(p.requires_grad for p in video.parameters())


def test_reset_classifier_on_a_model_without_a_head_says_what_to_do():
    video = inflate.inflate(nn.Sequential(nn.Conv2d(3, 4, 3)))
    with pytest.raises(AttributeError, match=r"^Sequential has no classifier attribute \(fc, classifier, heads, "
                                             r"head\); use forward\(x, reduce_time=False\) for per-time outputs$"):
        video.reset_classifier(3)


class HeadsNet(nn.Module):  # torchvision's ViTs call their classifier ``heads``
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.heads = nn.Sequential(nn.Linear(4, 6))

    def forward(self, x):
        return self.heads(self.conv(x).mean((2, 3)))


def test_reset_classifier_finds_heads():
    video = inflate.inflate(HeadsNet())
    video.reset_classifier(2)
    assert video(torch.randn(1, 3, 2, 8, 8)).shape == (1, 2)


def test_reset_classifier_replaces_the_last_linear_of_a_sequential_head():
    net = nn.Sequential()
    net.add_module("conv", nn.Conv2d(3, 4, 3))
    net.add_module("pool", nn.AdaptiveAvgPool2d(1))
    net.add_module("flat", nn.Flatten())
    net.add_module("head", nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8),
                                         nn.Sequential(nn.Linear(8, 5))))
    video = inflate.inflate(net)
    first, second = video.net.head[0].weight.clone(), video.net.head[2].weight.clone()
    video.reset_classifier(2)
    assert video.net.head[3][0].out_features == 2 and torch.equal(video.net.head[0].weight, first)
    assert torch.equal(video.net.head[2].weight, second) and video.net.head[2].out_features == 8
    assert video(torch.randn(1, 3, 2, 8, 8)).shape == (1, 2)


def test_forward_features_keeps_time_and_restores_the_head():
    torch.manual_seed(0)
    tv = inflate.inflate(torchvision.models.resnet18(num_classes=4).eval(), policy="conv1=3/2")
    x = torch.randn(2, 3, 6, 32, 32)
    with torch.no_grad():
        feats = tv.forward_features(x)
        assert feats.shape == (2, 3, 512)  # torchvision: everything up to fc, per time step
        assert isinstance(tv.net.fc, nn.Linear)  # the head is back
        torch.testing.assert_close(tv.net.fc(feats).mean(1), tv(x), rtol=1e-5, atol=1e-6)
        with pytest.raises(ValueError):
            tv.forward_features(torch.randn(2, 3, 64, 64))
        with pytest.raises(ValueError, match=r"\(B, C, T, H, W\); got list"):
            tv.forward_features([x])
        assert isinstance(tv.net.fc, nn.Linear)
    tm = inflate.inflate(timm.create_model("test_resnet", num_classes=4).eval(), time_kernel=3)
    with torch.no_grad():
        f = tm.forward_features(x)
    assert f.dim() == 5 and f.shape[:3] == (2, tm.net.num_features, 6)  # (B, C, T', h, w)


def test_deep_copy_is_independent():
    video = inflate.inflate(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()), time_kernel=3)
    twin = copy.deepcopy(video)
    x = torch.randn(2, 3, 4, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(twin(x), video(x))
        assert twin(torch.randn(3, 3, 4, 8, 8)).shape[0] == 3
        torch.testing.assert_close(video(x), twin(x))
        twin.net[0].weight.add_(1.0)
    assert not torch.equal(twin.net[0].weight, video.net[0].weight)


def test_inputs_that_are_not_clips_are_explained():
    video = inflate.inflate(nn.Sequential(nn.Conv2d(3, 4, 3)))
    with pytest.raises(ValueError, match=r"\(B, C, T, H, W\); got \(3, 8, 8, 8\).*x\[None\]"):
        video(torch.randn(3, 8, 8, 8))
    with pytest.raises(ValueError, match=r"got list"):
        video([torch.randn(1, 3, 2, 8, 8)])
    with pytest.raises(ValueError, match=r"clip has 8 channels at dim 1.*expects 3.*\(B, T, C, H, W\)"):
        video(torch.randn(1, 8, 3, 8, 8))


def test_layers_outside_their_video_model_say_so():
    video = inflate.inflate(nn.Sequential(nn.Conv2d(3, 4, 3)), time_kernel=3)
    fresh = inflate.inflate(nn.Sequential(nn.Conv2d(3, 4, 3)), time_kernel=3)
    with pytest.raises(RuntimeError, match="only run inside their VideoModel"):
        fresh.net[0](torch.randn(4, 3, 8, 8))
    video(torch.randn(3, 3, 2, 8, 8))
    with pytest.raises(RuntimeError, match="got 4 frames, not a multiple of the clip batch size 3"):
        video.net[0](torch.randn(4, 3, 8, 8))


def test_to_channels_last_also_lays_out_the_convs_left_2d():
    video = inflate.inflate(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3)), policy="0=3")
    x = torch.randn(2, 3, 3, 9, 9)
    with torch.no_grad():
        want = video(x)
        video.to_channels_last()
        assert video.net[0].weight.is_contiguous(memory_format=torch.channels_last_3d)
        assert video.net[2].weight.dim() == 4 and video.net[2].weight.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(video(x.contiguous(memory_format=torch.channels_last_3d)), want)


def test_layers_describe_themselves():
    video = inflate.inflate(nn.Sequential(nn.Conv2d(3, 4, (3, 5), stride=(1, 2)), nn.MaxPool2d(2)),
                            policy="0=3/2/2; pool:1=2", time_padding="zeros", causal=True)
    conv, pool = repr(video.net[0]), repr(video.net[1])
    assert "3, 4, kernel=(3, 3, 5), stride=(2, 1, 2), groups=1" in conv
    assert "time_kernel=3, time_stride=2, time_dilation=2, time_padding='zeros', causal=True" in conv
    assert "time_kernel=2, time_stride=1, time_dilation=1, time_padding='zeros', causal=True" in pool
