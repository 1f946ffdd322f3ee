"""The laws of inflation, checked as properties over random CNNs, policies, init modes and clip lengths."""
import copy

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

import inflate
from inflate.policy import PolicyError

from .strategies import SIZE, policies, small_cnns




def rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()


def boring(model_2d, video, frames, batch=2, size=SIZE, dtype=torch.float64):
    x = torch.randn(batch, 3, size, size, dtype=dtype)
    with torch.no_grad():
        y2 = model_2d(x)
        y3 = video(x[:, :, None].expand(-1, -1, frames, -1, -1))
    return rel_err(y3, y2)


@given(small_cnns(), policies(), st.sampled_from(inflate.INIT_MODES), st.integers(1, 7), st.booleans())
def test_boring_video_law(model_2d, policy, init, frames, causal):
    """Default (replicate) padding: any policy, any init, any T >= 1, causal or not -> the 2D output."""
    model_2d = model_2d.double()
    try:
        video = inflate.inflate(model_2d, init=init, causal=causal, **policy)
    except PolicyError:
        assume(False)
    try:
        err = boring(model_2d, video, frames)
    except ValueError as e:  # a temporal stride longer than the clip at some layer: a clear error
        assert "temporal stride" in str(e) and "frame" in str(e)
        return
    assert err < 1e-10, f"boring-video error {err:.3e}"


@given(small_cnns(), st.integers(1, 3), st.integers(1, 4), st.integers(1, 4))
def test_output_length_under_temporal_strides(model_2d, s1, s2, frames):
    """Each strided layer maps T -> ceil(T / stride); the per-time output has the product's ceil chain."""
    convs = [n for n, m in model_2d.named_modules() if isinstance(m, torch.nn.Conv2d)]
    assume(len(convs) >= 1)
    rules = [inflate.Rule(convs[0], kernel=3, stride=s1)]
    if len(convs) > 1:
        rules.append(inflate.Rule(convs[-1], kernel=2, stride=s2))
    video = inflate.inflate(model_2d, policy=rules)
    expected = -(-frames // s1)
    if len(convs) > 1:
        expected = -(-expected // s2)
    clip = torch.randn(2, 3, frames, SIZE, SIZE)
    with torch.no_grad():
        try:
            y = video(clip, reduce_time=False)
        except ValueError as e:
            assert "temporal stride" in str(e)
            assert frames < s1 or -(-frames // s1) < s2
            return
    assert y.shape == (2, expected, 5)


@given(small_cnns(), policies(), st.sampled_from(inflate.INIT_MODES))
def test_weight_shape_law_and_taps_sum(model_2d, policy, init):
    """An inflated conv holds (out, in/groups, kt, kh, kw), and its taps sum to the 2D kernel."""
    try:
        video = inflate.inflate(model_2d, init=init, **policy)
    except PolicyError:
        assume(False)
    convs_2d = dict(model_2d.named_modules())
    for path, m in video.net.named_modules():
        if isinstance(m, inflate.InflatedConv):
            c2 = convs_2d[path]
            assert m.weight.shape == (c2.out_channels, c2.in_channels // c2.groups, m.time_kernel, *c2.kernel_size)
            torch.testing.assert_close(m.weight.sum(2), c2.weight, rtol=1e-5, atol=1e-6)


@given(small_cnns(), policies(), st.sampled_from(inflate.INIT_MODES))
def test_input_model_left_unmodified(model_2d, policy, init):
    before = copy.deepcopy(model_2d.state_dict())
    types = [type(m) for m in model_2d.modules()]
    try:
        video = inflate.inflate(model_2d, init=init, **policy)
    except PolicyError:
        assume(False)
    with torch.no_grad():
        for p in video.parameters():
            p.add_(1.0)
    after = model_2d.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert types == [type(m) for m in model_2d.modules()]


@given(small_cnns(), st.integers(2, 4), st.integers(1, 5))
def test_zero_padding_with_mean_init_gives_up_the_law_at_the_edges(model_2d, kt, frames):
    """Documented trade-off: zero temporal padding + mean init is not boring-exact (edge frames fade)."""
    convs = [m for m in model_2d.modules() if isinstance(m, torch.nn.Conv2d)]
    assume(convs and convs[0].weight.abs().max() > 0)
    conv = torch.nn.Sequential(convs[0]).double()
    video = inflate.inflate(conv, time_kernel=kt, policy=None if max(conv[0].kernel_size) > 1 else "*=%d" % kt,
                            time_padding="zeros")
    x = torch.randn(2, 3, SIZE, SIZE, dtype=torch.float64)
    with torch.no_grad():
        per_time = video(x[:, :, None].expand(-1, -1, frames, -1, -1), reduce_time=False)
        y2 = conv(x)
    worst = max(rel_err(per_time[:, t], y2) for t in range(frames))
    assert worst > 1e-3


@given(small_cnns(), st.sampled_from([1, 3]), st.integers(1, 5))
def test_zero_padding_with_center_init_keeps_the_law(model_2d, kt, frames):
    assume(any(isinstance(m, torch.nn.Conv2d) for m in model_2d.modules()))
    model_2d = model_2d.double()
    video = inflate.inflate(model_2d, policy=f"*={kt}", init="center", time_padding="zeros")
    assert boring(model_2d, video, frames) < 1e-10
