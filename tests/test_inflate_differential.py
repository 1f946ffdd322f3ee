"""Differential tests: every inflated layer, and whole inflated models, on random clips (frames that
differ) against a plain ``F.conv3d`` / ``F.max_pool3d`` / ``F.avg_pool3d`` reference on explicitly padded
input (``tests/reference3d.py``), in float64, over every time padding mode, causal and not, every init
mode, strides, dilations and groups. Then the model-level laws: time reduction, causality, layout."""
import copy
import math

import pytest
import torch
import torch.nn as nn
from hypothesis import event, given, settings
from hypothesis import strategies as st

import inflate
from inflate import InflatedConv, InflatedPool
from inflate.policy import PolicyError

from .reference3d import conv3d_reference, expected_init, pool3d_reference
from .strategies import SIZE, policies, small_cnns

PADDINGS = inflate.TIME_PADDING_MODES
ATOL = 1e-10


def per_time(video, x):
    """The video model's per-time output as a clip (B, C, T', H, W) for a conv/pool-only network."""
    with torch.no_grad():
        return video(x, reduce_time=False).transpose(1, 2)


def assert_matches(actual, expected):
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    torch.testing.assert_close(actual, expected, rtol=1e-9, atol=ATOL)


# -------------------------------------------------------------------------------- single layers
@st.composite
def conv_cases(draw):
    cin, cout = draw(st.sampled_from([1, 2, 4])), draw(st.sampled_from([2, 4]))
    groups = draw(st.sampled_from([g for g in (1, 2, 4) if cin % g == 0 and cout % g == 0]))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    style = draw(st.sampled_from(["int", "int", "same", "valid"]))
    stride = (1, 1) if style == "same" else (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = {"int": draw(st.integers(0, 2)), "same": "same", "valid": "valid"}[style]
    mode = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
    conv = nn.Conv2d(cin, cout, (kh, kw), stride, padding, (draw(st.integers(1, 2)), draw(st.integers(1, 2))),
                     groups, bias=draw(st.booleans()), padding_mode=mode).double()
    kt, ts, td = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
    frames = draw(st.integers(ts, 7))
    return conv, (kt, ts, td), frames, (draw(st.integers(5, 8)), draw(st.integers(5, 8)))


@given(conv_cases(), st.sampled_from(PADDINGS), st.booleans(), st.sampled_from(inflate.INIT_MODES),
       st.integers(0, 2**16))
def test_inflated_conv_equals_conv3d_on_padded_clip(case, time_padding, causal, init, seed):
    conv, (kt, ts, td), frames, (height, width) = case
    causal = causal and time_padding != "circular"
    event(f"conv kt={kt} stride={ts} dilation={td} padding={time_padding} causal={causal}")
    video = inflate.inflate(nn.Sequential(conv), policy=[inflate.Rule("0", kernel=kt, stride=ts, dilation=td)],
                            init=init, time_padding=time_padding, causal=causal)
    layer = video.net[0]
    assert isinstance(layer, InflatedConv) or (kt, ts) == (1, 1)
    weight = layer.weight if isinstance(layer, InflatedConv) else conv.weight[:, :, None]
    expected = expected_init(conv.weight.detach(), kt, init)
    if expected is not None:
        torch.testing.assert_close(weight.detach(), expected, rtol=1e-12, atol=0)
    else:  # noise: taps sum to the 2D kernel but differ from each other
        torch.testing.assert_close(weight.detach().sum(2), conv.weight.detach(), rtol=1e-9, atol=1e-12)
        assert kt == 1 or not torch.equal(weight[:, :, 0], weight[:, :, -1])
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, conv.in_channels, frames, height, width, generator=g, dtype=torch.float64)
    assert_matches(per_time(video, x), conv3d_reference(x, conv, weight, kt, ts, td, time_padding, causal))
    if isinstance(layer, InflatedConv):  # taps that differ in time: order and offsets all matter
        with torch.no_grad():
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=g, dtype=torch.float64))
        assert_matches(per_time(video, x), conv3d_reference(x, conv, layer.weight, kt, ts, td, time_padding, causal))


@st.composite
def pool_cases(draw):
    k, s = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    pad, ceil = draw(st.integers(0, k // 2)), draw(st.booleans())
    if draw(st.booleans()):
        pool = nn.MaxPool2d(k, s, pad, dilation=draw(st.integers(1, 2)), ceil_mode=ceil)
    else:
        pool = nn.AvgPool2d(k, s, pad, ceil_mode=ceil, count_include_pad=draw(st.booleans()))
    kt, ts, td = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
    return pool, (kt, ts, td), draw(st.integers(ts, 7)), (draw(st.integers(5, 8)), draw(st.integers(5, 8)))


@given(pool_cases(), st.sampled_from(PADDINGS), st.booleans(), st.integers(0, 2**16))
def test_inflated_pool_equals_pool3d_on_padded_clip(case, time_padding, causal, seed):
    pool, (kt, ts, td), frames, (height, width) = case
    causal = causal and time_padding != "circular"
    event(f"{type(pool).__name__} kt={kt} stride={ts} padding={time_padding} causal={causal}")
    video = inflate.inflate(nn.Sequential(pool), policy=[inflate.Rule("0", kernel=kt, stride=ts, dilation=td,
                                                                      kind="pool")],
                            time_padding=time_padding, causal=causal)
    assert isinstance(video.net[0], InflatedPool) or (kt, ts) == (1, 1)
    x = torch.randn(2, 3, frames, height, width, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    assert_matches(per_time(video, x), pool3d_reference(x, pool, kt, ts, td, time_padding, causal))


@pytest.mark.parametrize("time_padding, causal", [(p, False) for p in PADDINGS] + [("replicate", True),
                                                                                   ("zeros", True)])
def test_conv_example_by_hand(time_padding, causal):
    """One case small enough to check by eye: a 1x1 conv with taps (1, 10, 100) over frames 1..4."""
    conv = nn.Conv2d(1, 1, 1, bias=False).double()
    video = inflate.inflate(nn.Sequential(conv), policy="0=3", time_padding=time_padding, causal=causal)
    with torch.no_grad():
        video.net[0].weight.copy_(torch.tensor([1.0, 10.0, 100.0]).view(1, 1, 3, 1, 1))
    x = torch.arange(1.0, 5.0, dtype=torch.float64).view(1, 1, 4, 1, 1)
    got = per_time(video, x).flatten().tolist()
    padded = {("replicate", False): [1, 1, 2, 3, 4, 4], ("zeros", False): [0, 1, 2, 3, 4, 0],
              ("circular", False): [4, 1, 2, 3, 4, 1], ("replicate", True): [1, 1, 1, 2, 3, 4],
              ("zeros", True): [0, 0, 1, 2, 3, 4]}[time_padding, causal]
    want = [padded[t] + 10 * padded[t + 1] + 100 * padded[t + 2] for t in range(4)]
    assert got == want


def test_temporal_max_pool_takes_the_max_and_avg_the_mean():
    x = torch.tensor([0.0, 5.0, 1.0, 7.0, 2.0], dtype=torch.float64).view(1, 1, 5, 1, 1)
    mx = inflate.inflate(nn.Sequential(nn.MaxPool2d(1)), policy="pool:0=3/2")
    av = inflate.inflate(nn.Sequential(nn.AvgPool2d(1)), policy="pool:0=3/2", time_padding="zeros")
    assert per_time(mx, x).flatten().tolist() == [5.0, 7.0, 7.0]
    assert per_time(av, x).flatten().tolist() == pytest.approx([5 / 3, 13 / 3, 9 / 3])


# -------------------------------------------------------------------------------- whole models
def apply_per_frame(module, h, batch):
    """Run a 2D module on every frame of ``h``: a clip (B, C, T, H, W) or per-time features (B, T, ...)."""
    frames = h.transpose(1, 2).flatten(0, 1) if h.dim() == 5 else h.flatten(0, 1)
    y = module(frames).unflatten(0, (batch, -1))
    return y.transpose(1, 2) if y.dim() == 5 else y


def model_reference(model_2d, video, x, conv_spec, pool_spec, time_padding, causal):
    """The inflated Sequential, layer by layer: 3D references for convs and pools, the rest per frame."""
    h = x
    for m2, m3 in zip(model_2d, video.net):
        if isinstance(m2, nn.Conv2d):
            w = m3.weight if isinstance(m3, InflatedConv) else m2.weight[:, :, None]
            h = conv3d_reference(h, m2, w, *conv_spec, time_padding, causal)
        elif isinstance(m2, (nn.MaxPool2d, nn.AvgPool2d)):
            h = pool3d_reference(h, m2, *pool_spec, time_padding, causal)
        else:
            h = apply_per_frame(m2, h, x.shape[0])
    return h  # (B, T', classes)


@st.composite
def model_cases(draw, time_paddings=PADDINGS):
    model_2d = draw(small_cnns()).double()
    kind = draw(st.sampled_from(["conv", "any"]))
    conv_spec = (draw(st.integers(2, 4)), draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    pool_spec = conv_spec if kind == "any" else (draw(st.integers(1, 3)), draw(st.integers(1, 2)), 1)
    rules = [inflate.Rule("*", *conv_spec, kind=kind, required=False),
             inflate.Rule("*", *pool_spec, kind="pool", required=False)]
    return model_2d, rules, conv_spec, pool_spec, draw(st.sampled_from(list(time_paddings)))


def inflate_case(case, causal: bool, init: str):
    """Inflate a drawn model case (causal is dropped with circular padding, which cannot be causal)."""
    model_2d, rules, _, _, time_padding = case
    return inflate.inflate(model_2d, policy=rules, init=init, time_padding=time_padding,
                           causal=causal and time_padding != "circular")


def randomize_taps(video, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in video.modules():
            if isinstance(m, InflatedConv):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g, dtype=m.weight.dtype) * m.weight.std())


def strides_product(video):
    return math.prod(m.time_stride for m in video.modules() if isinstance(m, (InflatedConv, InflatedPool)))


@given(model_cases(), st.booleans(), st.sampled_from(inflate.INIT_MODES), st.integers(1, 6), st.integers(0, 2**16))
def test_video_model_equals_layerwise_3d_reference(case, causal, init, frames, seed):
    model_2d, rules, conv_spec, pool_spec, time_padding = case
    causal = causal and time_padding != "circular"
    video = inflate.inflate(model_2d, policy=rules, init=init, time_padding=time_padding, causal=causal)
    randomize_taps(video, seed)
    x = torch.randn(2, 3, frames, SIZE, SIZE, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    try:
        with torch.no_grad():
            got = video(x, reduce_time=False)
    except ValueError as e:  # a temporal stride longer than what reaches that layer
        assert "temporal stride" in str(e)
        event("clip too short for the strides")
        return
    try:
        want = model_reference(model_2d, video, x, conv_spec, pool_spec, time_padding, causal)
    except RuntimeError as e:
        # F.avg_pool3d/max_pool3d check the kernel against the *unpadded* input, where the 2D pool (and so the
        # inflated one) accepts a frame smaller than its kernel once padded: the reference cannot express it.
        assert "smaller than kernel size" in str(e)
        event("frame smaller than a padded pool's kernel (no 3D reference)")
        return
    assert_matches(got, want)
    with torch.no_grad():
        torch.testing.assert_close(video(x), want.mean(1), rtol=1e-9, atol=ATOL)


@settings(max_examples=20)
@given(model_cases(), st.booleans(), st.integers(1, 6))
def test_reduce_time_is_the_mean_of_the_per_time_output(case, causal, frames):
    video = inflate_case(case, causal, init="noise")
    x = torch.randn(3, 3, frames, SIZE, SIZE, dtype=torch.float64)
    try:
        with torch.no_grad():
            per = video(x, reduce_time=False)
            reduced = video(x)
    except ValueError:
        return
    assert reduced.shape == (3, 5)
    torch.testing.assert_close(reduced, per.mean(1), rtol=0, atol=0)


@given(model_cases(time_paddings=("replicate", "zeros")), st.sampled_from(inflate.INIT_MODES), st.integers(2, 8),
       st.data())
def test_causal_model_never_sees_later_frames(case, init, frames, data):
    """causal=True: changing frames after t leaves every output step that ends at or before t unchanged
    (output i of a network with temporal strides multiplying to S ends at input frame i * S)."""
    model_2d, rules, _, _, time_padding = case
    video = inflate.inflate(model_2d, policy=rules, init=init, time_padding=time_padding, causal=True)
    randomize_taps(video, 0)
    x = torch.randn(1, 3, frames, SIZE, SIZE, dtype=torch.float64)
    t = data.draw(st.integers(0, frames - 2), label="last unchanged frame")
    x2 = x.clone()
    x2[:, :, t + 1:] = torch.randn_like(x2[:, :, t + 1:])
    try:
        with torch.no_grad():
            y, y2 = video(x, reduce_time=False), video(x2, reduce_time=False)
    except ValueError:
        return
    s = strides_product(video)
    seen = [i for i in range(y.shape[1]) if i * s <= t]
    event(f"{len(seen)} of {y.shape[1]} output steps must not change")
    torch.testing.assert_close(y[:, seen], y2[:, seen], rtol=0, atol=0)


def test_causal_circular_padding_is_refused():
    with pytest.raises(ValueError, match="circular"):
        inflate.inflate(nn.Sequential(nn.Conv2d(3, 4, 3)), causal=True, time_padding="circular")


def test_causal_flag_is_not_ignored():
    """The causal law above holds trivially for a model that ignores later frames anyway; this one does not."""
    conv = nn.Conv2d(1, 1, 1, bias=False).double()
    x = torch.randn(1, 1, 5, 2, 2, dtype=torch.float64)
    x2 = x.clone()
    x2[:, :, 3:] += 1.0
    for causal, changes_step_2 in ((False, True), (True, False)):
        video = inflate.inflate(nn.Sequential(conv), policy="0=3", causal=causal)
        with torch.no_grad():
            video.net[0].weight.copy_(torch.tensor([1.0, 2.0, 3.0]).view(1, 1, 3, 1, 1))
        changed = (per_time(video, x) != per_time(video, x2)).any(dim=(0, 1, 3, 4)).tolist()
        assert changed[2] is changes_step_2 and changed[3] and changed[4]


@settings(max_examples=15)
@given(model_cases(), st.booleans(), st.integers(2, 5))
def test_to_channels_last_changes_only_the_layout(case, causal, frames):
    video = inflate_case(case, causal, init="noise")
    before = copy.deepcopy(video)
    assert video.to_channels_last() is video
    a, b = before.state_dict(), video.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    for t in video.parameters():
        if t.dim() == 5:
            assert t.is_contiguous(memory_format=torch.channels_last_3d)
        elif t.dim() == 4 and min(t.shape[2:]) > 1:
            assert t.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(2, 3, frames, SIZE, SIZE, dtype=torch.float64)
    try:
        with torch.no_grad():
            want = before(x, reduce_time=False)
            got = video(x.contiguous(memory_format=torch.channels_last_3d), reduce_time=False)
    except ValueError:
        return
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-10)


def test_strategies_mix():
    """The random (CNN, policy) draws test something: every one inflates a layer with a temporal kernel
    >= 2; pools, strides and all padding modes come up often."""
    seen = []

    @settings(max_examples=80, database=None, derandomize=True)
    @given(small_cnns(), policies(time_paddings=PADDINGS))
    def draw(model_2d, policy):
        try:
            video = inflate.inflate(model_2d, **policy)
        except PolicyError:
            seen.append(None)
            return
        layers = [m for m in video.modules() if isinstance(m, (InflatedConv, InflatedPool))]
        seen.append({"kt": max((m.time_kernel for m in layers), default=1),
                     "pool_kt": max((m.time_kernel for m in layers if isinstance(m, InflatedPool)), default=1),
                     "stride": max((m.time_stride for m in layers), default=1),
                     "padding": video.config["time_padding"]})

    draw()
    n = len(seen)
    assert n >= 60 and None not in seen
    assert sum(d["kt"] >= 2 for d in seen) == n
    assert sum(d["pool_kt"] >= 2 for d in seen) >= 0.1 * n
    assert sum(d["stride"] >= 2 for d in seen) >= 0.1 * n
    assert {d["padding"] for d in seen} == set(PADDINGS)
