"""I3D Inception-v1, written to match DeepMind's TensorFlow/Sonnet model (kinetics-i3d ``i3d.py``) exactly.

Module paths mirror the TensorFlow scopes (``Mixed_4b.Branch_1.Conv3d_0b_3x3``), so the checkpoint name
map in :mod:`converters.deepmind_names` is one line per tensor kind. Every conv and max pool pads
TensorFlow-"SAME"-style for any T, H and W (asymmetric, the extra element at the end), computed by the
rule in :mod:`inflate.padding`; where that padding is symmetric it is passed to the conv itself, so no
padded copy of the input is made.

Input: ``(B, C, T, H, W)`` float in [-1, 1], C = 3 (RGB) or 2 (flow). Output: TF's "Logits" endpoint,
per-time logits averaged over time, ``(B, num_classes)``.
"""
from __future__ import annotations

import copy
import weakref

import torch
import torch.nn as nn
import torch.nn.functional as F

from inflate.padding import same_padding

ENDPOINTS = (
    "Conv3d_1a_7x7", "MaxPool3d_2a_3x3", "Conv3d_2b_1x1", "Conv3d_2c_3x3", "MaxPool3d_3a_3x3", "Mixed_3b",
    "Mixed_3c", "MaxPool3d_4a_3x3", "Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f", "MaxPool3d_5a_2x2",
    "Mixed_5b", "Mixed_5c", "Logits", "Predictions",
)

# Mixed block widths: (branch0 1x1, branch1 1x1 -> 3x3, branch2 1x1 -> 3x3, branch3 pool -> 1x1)
MIXED = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32), "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64), "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64), "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128), "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}
POOLS = {  # kernel, stride (T, H, W)
    "MaxPool3d_2a_3x3": ((1, 3, 3), (1, 2, 2)), "MaxPool3d_3a_3x3": ((1, 3, 3), (1, 2, 2)),
    "MaxPool3d_4a_3x3": ((3, 3, 3), (2, 2, 2)), "MaxPool3d_5a_2x2": ((2, 2, 2), (2, 2, 2)),
}


def _same_pads(shape, kernel, stride) -> list[tuple[int, int]]:
    return [same_padding(n, k, s) for n, k, s in zip(shape, kernel, stride)]


def _split_pads(pads):
    """Symmetric part (for the op's own padding) and the F.pad tuple for the rest (None if not needed)."""
    sym = tuple(min(a, b) for a, b in pads)
    rest = [(a - s, b - s) for (a, b), s in zip(pads, sym)]
    if all(r == (0, 0) for r in rest):
        return sym, None
    return sym, (rest[2][0], rest[2][1], rest[1][0], rest[1][1], rest[0][0], rest[0][1])


def _ceil_mode_is_same(shape, kernel, stride, pads) -> bool:
    """Whether ``max_pool3d(..., padding=min(front, back), ceil_mode=True)`` has TF SAME's windows: every
    axis pads at most one more element at the back than at the front, and torch's ceil-mode output
    length (whose last window may run past the end) is TF's ``ceil(n / s)``."""
    for n, k, s, (front, back) in zip(shape, kernel, stride, pads):
        if back - front not in (0, 1):
            return False
        p = front
        out = -(-(n + 2 * p - k) // s) + 1
        if (out - 1) * s >= n + p:  # torch drops a last window that would start in the padding
            out -= 1
        if out != -(-n // s):
            return False
    return True


def _conv3d_relu(x, weight, bias, stride, padding):
    """conv3d + bias + ReLU for inference. On CPU, one oneDNN primitive (the ops inductor uses): the ReLU
    runs inside the conv, so there is no second pass over the output, and the weight is kept in oneDNN's
    blocked layout for this input shape, so it is not reordered on every call. Same bits as
    ``relu_(conv3d(...))``, which runs everywhere else (and whenever autograd is on)."""
    if (x.device.type == "cpu" and _MKLDNN_POINTWISE and not torch.is_grad_enabled() and x.dtype == weight.dtype
            and x.dtype in (torch.float32, torch.bfloat16)  # oneDNN has no float64 conv
            and not torch.compiler.is_compiling()  # inductor (freezing) prepacks and fuses on its own
            and not torch.is_autocast_enabled("cpu")  # autocast would not reach this op
            and not weight.is_inference()):  # made under inference_mode: no version counter to key the cache on
        padding, stride = list(padding), list(stride)
        return torch.ops.mkldnn._convolution_pointwise(x, _packed_weight(weight, x, padding, stride), bias, padding,
                                                       stride, [1, 1, 1], 1, "relu", [], "")
    return F.relu_(F.conv3d(x, weight, bias, stride, padding))


_MKLDNN_POINTWISE = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_convolution_pointwise")
_PACKED: dict[int, tuple[weakref.ref, dict]] = {}  # id(weight) -> (weakref to it, {key: packed}); dropped with it


def _packed_weight(weight, x, padding, stride):
    """``weight`` reordered for oneDNN's conv on inputs like ``x``; cached per weight (dropped with it),
    keyed by everything the layout depends on, and by the weight's version so in-place edits repack."""
    key = (tuple(x.shape), x.dtype, weight.dtype, weight.data_ptr(), weight._version, tuple(padding), tuple(stride))
    ref, cache = _PACKED.get(id(weight), (None, None))
    if ref is None or ref() is not weight:
        wid = id(weight)
        ref, cache = weakref.ref(weight, lambda _: _PACKED.pop(wid, None)), {}
        _PACKED[wid] = ref, cache
    if key not in cache:
        if len(cache) >= 4:  # a few input shapes (the last, smaller batch) at most
            cache.clear()
        cache[key] = torch._C._nn.mkldnn_reorder_conv3d_weight(weight.to_mkldnn(), padding, stride, [1, 1, 1], 1,
                                                              list(x.shape))
    return cache[key]


class BatchNormNoScale(nn.Module):
    """Sonnet's BatchNorm as the checkpoints use it: offset (beta), no scale, epsilon 1e-3."""

    def __init__(self, channels: int, eps: float = 1e-3, momentum: float = 0.001):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x):
        return F.batch_norm(x, self.running_mean, self.running_var, None, self.bias, self.training,
                            self.momentum, self.eps)


class Unit3D(nn.Module):
    """conv3d (SAME, no bias) -> BatchNorm (no scale, eps 1e-3) -> ReLU, as DeepMind's ``Unit3D``."""

    def __init__(self, cin, cout, kernel=(1, 1, 1), stride=(1, 1, 1), *, bn=True, relu=True, bias=False):
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)
        self.conv = nn.Conv3d(cin, cout, kernel, stride, bias=bias)
        self.bn = BatchNormNoScale(cout) if bn else None
        self.relu = relu

    def forward(self, x):
        sym, rest = _split_pads(_same_pads(x.shape[2:], self.kernel, self.stride))
        if rest is not None:
            x = F.pad(x, rest)
        if self.bn is None and self.relu and self.conv.bias is not None:  # fused(): BatchNorm folded
            return _conv3d_relu(x, self.conv.weight, self.conv.bias, self.stride, sym)
        x = F.conv3d(x, self.conv.weight, self.conv.bias, self.stride, sym)
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x, inplace=True) if self.relu else x


def _space_to_depth_layout(shape, kernel, stride):
    """For :func:`space_to_depth`: the stride-1 lengths ``q`` per axis, and per axis and phase the
    (first output index, first input index, count) of the copy."""
    lengths, phases = [], []
    for n, k, s in zip(shape, kernel, stride):
        front, q = same_padding(n, k, s)[0], -(-n // s) + -(-k // s) - 1  # stride-1 output length + taps - 1
        lengths.append(q)
        axis = []
        for phase in range(s):  # q_phase[j] = padded[s*j + phase] = x[s*j + phase - front]
            j0 = max(0, -(-(front - phase) // s))
            i0 = s * j0 + phase - front
            axis.append((j0, i0, max(0, min(q - j0, -(-(n - i0) // s)))))
        phases.append(axis)
    return lengths, phases


@torch.library.custom_op("quovadis::space_to_depth", mutates_args=())
def space_to_depth(x: torch.Tensor, kernel: list[int], stride: list[int], dtype: torch.dtype) -> torch.Tensor:
    """SAME-pad ``x`` (B, C, T, H, W) for a ``kernel``/``stride`` conv and fold each stride phase into
    channels: ``(B, C*s_t*s_h*s_w, T', H', W')`` in ``channels_last_3d`` memory and ``dtype``, channel
    ``((b_t*s_h + b_h)*s_w + b_w)*C + c``. One strided copy per phase into a zeroed buffer (the zeros are
    the padding): 2-3x faster than ``F.pad`` then a permuting copy. A custom op, so ``torch.compile`` calls
    it as it is (inductor's own kernel for these copies ran 5x slower)."""
    b, c = x.shape[:2]
    lengths, phases = _space_to_depth_layout(x.shape[2:], kernel, stride)
    src = x.permute(0, 2, 3, 4, 1)  # (B, T, H, W, C) view
    st, sh, sw = stride
    out = x.new_zeros((b, *lengths, st, sh, sw, c), dtype=dtype)
    for pt, (jt, it, nt) in enumerate(phases[0]):
        for ph, (jh, ih, nh) in enumerate(phases[1]):
            for pw, (jw, iw, nw) in enumerate(phases[2]):
                if nt and nh and nw:
                    out[:, jt:jt + nt, jh:jh + nh, jw:jw + nw, pt, ph, pw].copy_(
                        src[:, it:it + st * (nt - 1) + 1:st, ih:ih + sh * (nh - 1) + 1:sh, iw:iw + sw * (nw - 1) + 1:sw])
    return out.view(b, *lengths, st * sh * sw * c).permute(0, 4, 1, 2, 3)


def space_to_depth_differentiable(x: torch.Tensor, kernel, stride, dtype: torch.dtype) -> torch.Tensor:
    """:func:`space_to_depth` as ``F.pad`` then a permuting copy: slower, but autograd goes through it."""
    b, c = x.shape[:2]
    lengths, _ = _space_to_depth_layout(x.shape[2:], kernel, stride)
    pad = [0, 0]
    for n, q, k, s in zip(x.shape[2:], lengths, kernel, stride):
        front = same_padding(n, k, s)[0]
        pad[2:2] = [front, s * q - n - front]
    st, sh, sw = stride
    y = F.pad(x.permute(0, 2, 3, 4, 1), pad).to(dtype)  # (B, T, H, W, C) padded to s * q per axis
    y = y.reshape(b, lengths[0], st, lengths[1], sh, lengths[2], sw, c).permute(0, 1, 3, 5, 2, 4, 6, 7)
    return y.reshape(b, *lengths, st * sh * sw * c).permute(0, 4, 1, 2, 3)


@space_to_depth.register_fake
def _(x, kernel, stride, dtype):
    lengths, _ = _space_to_depth_layout(x.shape[2:], kernel, stride)
    return torch.empty((x.shape[0], x.shape[1] * stride[0] * stride[1] * stride[2], *lengths), dtype=dtype,
                       device=x.device, memory_format=torch.channels_last_3d)


class SpaceToDepthConv(nn.Module):
    """A fused strided ``Unit3D`` (SAME conv + bias + ReLU) as a stride-1 conv on a space-to-depth input.

    Output ``o = sum_k w[k] x[s*i + k]``; with ``k = s*a + b`` that is ``sum_a sum_b w[s*a + b] q_b[i + a]``,
    where ``q_b = x[b::s]``: a stride-1 conv with kernel ``ceil(k / s)`` over ``s_t*s_h*s_w`` times the input
    channels (the kernel padded with zero taps to a multiple of the stride). The same sums, so the same
    function up to float rounding. Only worth it where the strided conv has few input channels: I3D's stem
    (3 channels, 7x7x7, stride 2) becomes 24 channels, 4x4x4, stride 1, which runs 2.3x faster in bf16 on
    an AMX CPU even though it is 1.5x the multiply-adds (oneDNN cannot fill AMX tiles from 3 channels), and
    1.7x slower in fp32 (see ``docs/benchmarks.md``), so the CPU runner uses it for bf16 only. When a
    gradient is asked of the input, the fold runs as ``F.pad`` and a permute, which autograd follows.
    """

    def __init__(self, unit: "Unit3D"):
        super().__init__()
        if unit.bn is not None or not unit.relu or unit.conv.bias is None:
            raise RuntimeError("fold BatchNorm first (InceptionI3d.fused())")
        self.kernel, self.stride = unit.kernel, unit.stride
        self.taps = tuple(-(-k // s) for k, s in zip(self.kernel, self.stride))  # kernel of the stride-1 conv
        w = unit.conv.weight.detach()
        o, c = w.shape[:2]
        (at, ah, aw), (st, sh, sw) = self.taps, self.stride
        w = F.pad(w, (0, aw * sw - w.shape[4], 0, ah * sh - w.shape[3], 0, at * st - w.shape[2]))
        w = w.reshape(o, c, at, st, ah, sh, aw, sw).permute(0, 3, 5, 7, 1, 2, 4, 6).reshape(o, st * sh * sw * c, at, ah, aw)
        self.weight = nn.Parameter(w.contiguous(memory_format=torch.channels_last_3d), requires_grad=False)
        self.bias = nn.Parameter(unit.conv.bias.detach().clone(), requires_grad=False)

    def space_to_depth(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and x.requires_grad:  # the custom op has no backward: the same fold, traced
            return space_to_depth_differentiable(x, self.kernel, self.stride, self.weight.dtype)
        return space_to_depth(x, list(self.kernel), list(self.stride), self.weight.dtype)

    def forward(self, x):
        return _conv3d_relu(self.space_to_depth(x), self.weight, self.bias, (1, 1, 1), (0, 0, 0))


class MaxPoolSame(nn.Module):
    """TF ``max_pool3d`` with "SAME" padding: padded positions never win (padding is -inf)."""

    def __init__(self, kernel, stride):
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)

    def forward(self, x):
        pads = _same_pads(x.shape[2:], self.kernel, self.stride)
        sym, rest = _split_pads(pads)
        if rest is not None and _ceil_mode_is_same(x.shape[2:], self.kernel, self.stride, pads):
            # the extra padding is at the end only, where ceil_mode's last window already stops at the
            # edge: the same windows without a -inf padded copy of x (max is exact, so equal bits)
            return F.max_pool3d(x, self.kernel, self.stride, sym, ceil_mode=True)
        if rest is not None:
            x = F.pad(x, rest, value=float("-inf"))
        return F.max_pool3d(x, self.kernel, self.stride, sym)


class Branch(nn.Sequential):
    pass


class Mixed(nn.Module):
    """An Inception block; ``Mixed_5b``'s branch-2 conv is named ``Conv3d_0a_3x3`` as in the checkpoints."""

    def __init__(self, name: str, cin: int):
        super().__init__()
        b0, b1a, b1b, b2a, b2b, b3 = MIXED[name]
        conv_2b = "Conv3d_0a_3x3" if name == "Mixed_5b" else "Conv3d_0b_3x3"
        self.Branch_0 = Branch()
        self.Branch_0.add_module("Conv3d_0a_1x1", Unit3D(cin, b0))
        self.Branch_1 = Branch()
        self.Branch_1.add_module("Conv3d_0a_1x1", Unit3D(cin, b1a))
        self.Branch_1.add_module("Conv3d_0b_3x3", Unit3D(b1a, b1b, (3, 3, 3)))
        self.Branch_2 = Branch()
        self.Branch_2.add_module("Conv3d_0a_1x1", Unit3D(cin, b2a))
        self.Branch_2.add_module(conv_2b, Unit3D(b2a, b2b, (3, 3, 3)))
        self.Branch_3 = Branch()
        self.Branch_3.add_module("MaxPool3d_0a_3x3", MaxPoolSame((3, 3, 3), (1, 1, 1)))
        self.Branch_3.add_module("Conv3d_0b_1x1", Unit3D(cin, b3))
        self.out_channels = b0 + b1b + b2b + b3
        self.conv_2b, self.split = conv_2b, (b0, b1a, b2a)
        self.merged_1x1: Unit3D | None = None  # set by InceptionI3d.fused()

    def forward(self, x):
        if self.merged_1x1 is None:
            return torch.cat([self.Branch_0(x), self.Branch_1(x), self.Branch_2(x), self.Branch_3(x)], dim=1)
        # fused inference: the three 1x1 convs that read x run as one conv, then split
        b0, b1, _ = self.split
        y = self.merged_1x1(x)
        parts = [y[:, :b0], self.Branch_1.Conv3d_0b_3x3(y[:, b0:b0 + b1]),
                 getattr(self.Branch_2, self.conv_2b)(y[:, b0 + b1:]), self.Branch_3(x)]
        if torch.compiler.is_compiling():  # inductor plans the concat itself (and fails on the slice copies)
            return torch.cat(parts, dim=1)
        fmt = torch.channels_last_3d if x.is_contiguous(memory_format=torch.channels_last_3d) else torch.contiguous_format
        out = torch.empty((x.shape[0], self.out_channels, *parts[0].shape[2:]), dtype=y.dtype, device=y.device,
                          memory_format=fmt)
        start = 0
        for p in parts:  # one copy per branch into its channel slice (no contiguous() copy, then cat)
            out[:, start:start + p.shape[1]].copy_(p)
            start += p.shape[1]
        return out

    def merge_1x1(self) -> None:
        """Merge the 1x1 convs of branches 0, 1 and 2 (BatchNorm already folded) into one conv."""
        units = [self.Branch_0.Conv3d_0a_1x1, self.Branch_1.Conv3d_0a_1x1, self.Branch_2.Conv3d_0a_1x1]
        if any(u.bn is not None for u in units):
            raise RuntimeError("fold BatchNorm first (InceptionI3d.fused())")
        cin = units[0].conv.in_channels
        merged = Unit3D(cin, sum(u.conv.out_channels for u in units), bn=False, bias=True)
        merged.conv.weight.data = torch.cat([u.conv.weight.data for u in units])
        merged.conv.bias = nn.Parameter(torch.cat([u.conv.bias.data for u in units]))
        self.merged_1x1 = merged.to(units[0].conv.weight.device, units[0].conv.weight.dtype)


class InceptionI3d(nn.Module):
    """I3D Inception-v1 (Carreira & Zisserman, CVPR 2017), equal to DeepMind's TF model.

    Args:
        num_classes: logits (400 for Kinetics-400, 600 for Kinetics-600).
        in_channels: 3 for RGB, 2 for optical flow.
        dropout: dropout probability before the logits (DeepMind's ``1 - dropout_keep_prob``).
        final_endpoint: build only up to this endpoint (see :data:`ENDPOINTS`).
    """

    def __init__(self, num_classes: int = 400, in_channels: int = 3, dropout: float = 0.0,
                 final_endpoint: str = "Logits"):
        super().__init__()
        if final_endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {final_endpoint!r}; endpoints are {ENDPOINTS}")
        self.num_classes, self.in_channels, self.final_endpoint = num_classes, in_channels, final_endpoint
        self.config = {"num_classes": num_classes, "in_channels": in_channels,
                       "dropout": dropout}
        layers, c = [], in_channels
        for name in ENDPOINTS[: ENDPOINTS.index(final_endpoint) + 1]:
            if name == "Conv3d_1a_7x7":
                layers.append((name, Unit3D(c, 64, (7, 7, 7), (2, 2, 2)))); c = 64
            elif name == "Conv3d_2b_1x1":
                layers.append((name, Unit3D(c, 64))); c = 64
            elif name == "Conv3d_2c_3x3":
                layers.append((name, Unit3D(c, 192, (3, 3, 3)))); c = 192
            elif name in POOLS:
                layers.append((name, MaxPoolSame(*POOLS[name])))
            elif name in MIXED:
                block = Mixed(name, c)
                layers.append((name, block)); c = block.out_channels
        for name, module in layers:
            self.add_module(name, module)
        self._features = [name for name, _ in layers]
        self.feature_channels = c
        if ENDPOINTS.index(final_endpoint) >= ENDPOINTS.index("Logits"):
            self.dropout = nn.Dropout(dropout)
            self.Logits = nn.Module()
            self.Logits.add_module("Conv3d_0c_1x1", Unit3D(c, num_classes, bn=False, relu=False, bias=True))

    # -- endpoints ---------------------------------------------------------------------------------
    def extract_endpoints(self, x: torch.Tensor, names=ENDPOINTS) -> dict[str, torch.Tensor]:
        """Run up to the last of ``names`` and return those endpoints. "Logits" is ``(B, classes)``;
        "Predictions" is its softmax; every other endpoint is a ``(B, C, T, H, W)`` feature map."""
        wanted = set(names)
        unknown = wanted - set(ENDPOINTS)
        if unknown:
            raise ValueError(f"unknown endpoints {sorted(unknown)}; endpoints are {ENDPOINTS}")
        self._check_input(x)
        last = max(ENDPOINTS.index(n) for n in wanted)
        out = {}
        for name in self._features:
            x = getattr(self, name)(x)
            if name in wanted:
                out[name] = x
            if ENDPOINTS.index(name) >= last:
                return out
        logits = self.logits(x)
        if "Logits" in wanted:
            out["Logits"] = logits
        if "Predictions" in wanted:
            out["Predictions"] = logits.softmax(-1)
        return out

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The ``Mixed_5c`` (or final) feature map, ``(B, 1024, T/8, H/32, W/32)``."""
        self._check_input(x)
        for name in self._features:
            x = getattr(self, name)(x)
        return x

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """TF's Logits head: AvgPool [2,7,7] VALID -> dropout -> 1x1x1 conv -> mean over time.

        At 224x224 the pool leaves one spatial position, as in DeepMind's model; for larger frames the
        logits are averaged over the spatial positions that remain too.
        """
        t, h, w = features.shape[2:]
        if t < 2 or h < 7 or w < 7:
            raise ValueError(f"the Logits average pool [2, 7, 7] (VALID) needs a feature map of at least 2x7x7, "
                             f"got {t}x{h}x{w} from Mixed_5c; give at least 9 frames of 193x193 pixels "
                             "(DeepMind's models use 224x224)")
        head = self.Logits.Conv3d_0c_1x1
        x = F.avg_pool3d(features.float(), (2, 7, 7), (1, 1, 1)).to(next(head.parameters()).dtype)  # no bf16 CPU kernel
        x = head(self.dropout(x))
        return x.float().mean(dim=(2, 3, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(self.forward_features(x))

    def _check_input(self, x):
        if not isinstance(x, torch.Tensor) or x.dim() != 5 or x.shape[1] != self.in_channels:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"I3D expects a clip (B, {self.in_channels}, T, H, W) in [-1, 1]; got {shape}. "
                             "Make one from frames (numpy, tensors or PIL images; THWC or CTHW) with "
                             "zoo.info(name).transform(frames)[None]")

    # -- fine-tuning and inference -------------------------------------------------------------------
    def replace_logits(self, num_classes: int, dropout: float | None = None) -> "InceptionI3d":
        """A fresh head for ``num_classes`` (the backbone is kept), as DeepMind's ``replace_logits``."""
        self.Logits.Conv3d_0c_1x1 = Unit3D(self.feature_channels, num_classes, bn=False, relu=False, bias=True)
        if dropout is not None:
            self.dropout.p = dropout
            self.config["dropout"] = dropout
        self.num_classes = self.config["num_classes"] = num_classes
        return self

    def fused(self, dtype: torch.dtype | None = None, channels_last: bool = True,
              space_to_depth: bool = False) -> "InceptionI3d":
        """An inference copy: every BatchNorm folded into its conv, each Mixed block's three 1x1 convs on
        the same input merged into one, weights in ``channels_last_3d`` (feed it
        ``x.contiguous(memory_format=torch.channels_last_3d)``) and, with ``dtype=torch.bfloat16``, bf16
        weights for CPUs with AMX or GPUs. ``space_to_depth=True``: run the stem conv as
        :class:`SpaceToDepthConv` (:class:`zoo.models.inference.InferenceModel` asks for it in bf16 on the
        CPU, where it measured faster; it is slower in fp32 and not yet measured on a GPU). Same function as
        the original up to float rounding; eval only."""
        model = copy.deepcopy(self).eval()
        for unit in model.modules():
            if isinstance(unit, Unit3D) and unit.bn is not None:
                bn = unit.bn
                scale = torch.rsqrt(bn.running_var + bn.eps)
                conv = unit.conv
                conv.weight.data.mul_(scale.view(-1, 1, 1, 1, 1))
                conv.bias = nn.Parameter(bn.bias - bn.running_mean * scale)
                unit.bn = None
        if space_to_depth:
            if hasattr(model, "Conv3d_1a_7x7"):
                model.Conv3d_1a_7x7 = SpaceToDepthConv(model.Conv3d_1a_7x7)
        for block in model.modules():
            if isinstance(block, Mixed):
                block.merge_1x1()
                for name in ("Branch_0", "Branch_1", "Branch_2"):  # their 1x1 convs now live in merged_1x1
                    getattr(block, name).Conv3d_0a_1x1 = nn.Identity()
        if channels_last:
            model = model.to(memory_format=torch.channels_last_3d)
        if dtype is not None:
            model = model.to(dtype)
        return model.requires_grad_(False)
