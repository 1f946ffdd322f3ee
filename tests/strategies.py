"""Hypothesis strategies: random small 2D CNNs and random inflation policies.

Every draw tests something: the first layer of a CNN is always a conv with a spatial kernel above 1x1,
and every policy gives convs a temporal kernel of 2 or more, so each (CNN, policy) pair inflates at
least one layer with a real temporal kernel. Policies also vary temporal strides, dilations, pool
kernels and (when asked) the time padding mode. ``hypothesis.event`` records the mix; run pytest with
``--hypothesis-show-statistics`` to see it, and ``test_strategy_mix`` asserts it.
"""
import torch
import torch.nn as nn
from hypothesis import assume, event
from hypothesis import strategies as st
from timm.layers import LayerNorm2d

import inflate

SIZE = 12


@st.composite
def small_cnns(draw, in_chans=3):
    """A random CNN over a few channels: convs of any kernel/stride/dilation/groups/padding, norms, pools."""
    layers, c = [], in_chans
    for i in range(draw(st.integers(1, 4))):
        kind = "conv" if i == 0 else draw(st.sampled_from(["conv", "pool"]))
        if kind == "pool":
            k = draw(st.integers(2, 3))
            s = draw(st.integers(1, 2))
            pad, ceil = draw(st.integers(0, k // 2)), draw(st.booleans())
            if draw(st.booleans()):
                layers.append(nn.MaxPool2d(k, s, padding=pad, ceil_mode=ceil))
            else:
                layers.append(nn.AvgPool2d(k, s, padding=pad, ceil_mode=ceil, count_include_pad=draw(st.booleans())))
            continue
        out = draw(st.sampled_from([4, 6, 8]))
        groups = draw(st.sampled_from([g for g in (1, 2, c) if c % g == 0 and out % g == 0]))
        kh = draw(st.integers(1, 5))
        kw = draw(st.integers(2 if i == 0 and kh == 1 else 1, 5))  # the first conv is never 1x1
        dil = draw(st.integers(1, 2))
        padding_style = draw(st.sampled_from(["int", "same", "valid"]))
        stride = 1 if padding_style == "same" else draw(st.integers(1, 2))
        padding = {"int": draw(st.integers(0, 2)), "same": "same", "valid": "valid"}[padding_style]
        mode = draw(st.sampled_from(["zeros", "zeros", "reflect", "replicate", "circular"]))
        if mode == "reflect" and padding == "int":
            mode = "zeros"
        layers.append(nn.Conv2d(c, out, (kh, kw), stride, padding, dil, groups, bias=draw(st.booleans()),
                                padding_mode=mode))
        norm = draw(st.sampled_from(["bn", "gn", "ln2d", "none"]))
        layers.append({"bn": nn.BatchNorm2d(out), "gn": nn.GroupNorm(2, out), "ln2d": LayerNorm2d(out),
                       "none": nn.Identity()}[norm])
        layers.append(nn.ReLU())
        c = out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 5)]
    model = nn.Sequential(*layers)
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(generator=g)
                m.running_var.uniform_(0.5, 2.0, generator=g)
                m.weight.normal_(generator=g)
                m.bias.normal_(generator=g)
    model.eval()
    try:  # keep only networks whose 2D forward works at the test size
        with torch.no_grad():
            model(torch.zeros(1, in_chans, SIZE, SIZE))
    except RuntimeError:
        assume(False)
    return model


@st.composite
def policies(draw, time_paddings=("replicate",)):
    """``inflate()`` keyword arguments: a plain time kernel >= 2, or glob rules giving every conv a temporal
    kernel >= 2 (with strides and dilations) and pools a temporal kernel of 1 to 3; plus a time padding
    mode drawn from ``time_paddings``."""
    padding = draw(st.sampled_from(list(time_paddings)))
    event(f"time_padding={padding}")
    if draw(st.booleans()):
        kt = draw(st.integers(2, 4))
        event(f"plain time_kernel={kt}")
        return {"time_kernel": kt, "time_padding": padding}
    kind = draw(st.sampled_from(["conv", "any", "conv"]))
    conv = inflate.Rule("*", kernel=draw(st.integers(2, 4)), stride=draw(st.integers(1, 2)),
                        dilation=draw(st.integers(1, 2)), kind=kind, required=False)
    pool = inflate.Rule("*", kernel=draw(st.sampled_from([2, 3, 1])), stride=draw(st.integers(1, 2)),
                        dilation=draw(st.integers(1, 2)), kind="pool", required=False)
    event(f"conv rule kt={conv.kernel} stride={conv.stride} dilation={conv.dilation} kind={kind}")
    if kind == "conv":
        event(f"pool rule kt={pool.kernel} stride={pool.stride}")
    return {"policy": [conv, pool], "time_padding": padding}
