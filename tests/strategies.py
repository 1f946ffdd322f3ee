"""Hypothesis strategies: random small 2D CNNs and random inflation policies."""
import torch
import torch.nn as nn
from hypothesis import assume
from hypothesis import strategies as st
from timm.layers import LayerNorm2d

import inflate

SIZE = 12


@st.composite
def small_cnns(draw, in_chans=3):
    """A random CNN over a few channels: convs of any kernel/stride/dilation/groups/padding, norms, pools."""
    layers, c = [], in_chans
    for i in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["conv", "conv", "conv", "pool"]))
        if kind == "pool":
            k = draw(st.integers(2, 3))
            s = draw(st.integers(1, 2))
            pool = draw(st.sampled_from([nn.MaxPool2d, nn.AvgPool2d]))
            layers.append(pool(k, s, padding=draw(st.integers(0, k // 2)), ceil_mode=draw(st.booleans())))
            continue
        out = draw(st.sampled_from([4, 6, 8]))
        groups = draw(st.sampled_from([g for g in (1, 2, c) if c % g == 0 and out % g == 0]))
        kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
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
def policies(draw):
    """A random policy: a plain time kernel or glob rules with kernels, strides and dilations."""
    if draw(st.booleans()):
        return {"time_kernel": draw(st.integers(1, 4))}
    rule = inflate.Rule("*", kernel=draw(st.integers(1, 4)), stride=draw(st.integers(1, 2)),
                        dilation=draw(st.integers(1, 2)), kind=draw(st.sampled_from(["conv", "any"])),
                        required=False)
    return {"policy": [rule, inflate.Rule("*", kernel=1, kind="pool", required=False)]}
