"""The inflated layers.

An inflated network runs "time in batch": a clip ``(B, C, T, H, W)`` travels through the unchanged 2D
network as a batch of ``B*T`` frames, so norms, attention and reshapes keep their 2D meaning. Only the
layers a policy inflates regroup the frames into ``(B, C, T, H, W)``, apply their temporal kernel and
stride, and hand back ``B*T'`` frames. They learn ``B`` from a :class:`ClipState` that the
:class:`~inflate.video_model.VideoModel` sets before each forward pass. In channels-last memory the
regrouping is a free view.
"""
from __future__ import annotations

import threading

import torch
import torch.nn as nn
import torch.nn.functional as F

from inflate.kernel_init import inflate_kernel
from inflate.padding import causal_padding, pad_time, same_padding, spatial_same_pad
from inflate.policy import TemporalSpec


class ClipState:
    """The clip's batch size, shared by the root model and all its inflated layers.

    Kept per thread: two threads calling one model with different batch sizes, or the replicas of
    ``nn.DataParallel`` (which share this object, and run one thread each), never read each other's
    value. A thread that never set it (autograd's worker thread recomputing a checkpointed forward)
    reads the value set last by any thread."""

    __slots__ = ("_local", "_last")

    def __init__(self):
        self._local = threading.local()
        self._last: int | None = None

    @property
    def batch(self) -> int | None:
        return getattr(self._local, "batch", self._last)

    @batch.setter
    def batch(self, value: int | None) -> None:
        self._local.batch = value
        self._last = value

    def __getstate__(self):  # pickling / deepcopy: a fresh state (thread-locals do not travel)
        return {}

    def __setstate__(self, state):
        self.__init__()


def frames_to_clip(x: torch.Tensor, batch: int, where: str) -> torch.Tensor:
    """``(B*T, C, H, W)`` -> ``(B, C, T, H, W)``; a view when ``x`` is channels-last."""
    n = x.shape[0]
    if batch is None:
        raise RuntimeError(f"{where}: inflated layers only run inside their VideoModel, which tells them the "
                           "clip's batch size; call the video model on a (B, C, T, H, W) clip.")
    if n % batch:
        raise RuntimeError(f"{where}: got {n} frames, not a multiple of the clip batch size {batch}")
    return x.unflatten(0, (batch, n // batch)).transpose(1, 2)


def clip_to_frames(y: torch.Tensor) -> torch.Tensor:
    """``(B, C, T, H, W)`` -> ``(B*T, C, H, W)``; a view when ``y`` is channels-last-3d."""
    return y.transpose(1, 2).flatten(0, 1)


class _Temporal(nn.Module):
    """What inflated convs and pools share: the temporal spec, padding and the clip state."""

    def _init_temporal(self, spec: TemporalSpec, time_padding: str, causal: bool, clip: ClipState, path: str):
        self.time_kernel, self.time_stride, self.time_dilation = spec.kernel, spec.stride, spec.dilation
        self.time_padding, self.causal, self.path = time_padding, causal, path
        object.__setattr__(self, "_clip", clip)  # shared, not a submodule

    def _time_pad(self, length: int) -> tuple[int, int]:
        if length < self.time_stride:
            raise ValueError(
                f"layer {self.path!r} has temporal stride {self.time_stride} but receives {length} frame(s); "
                f"give the model a longer clip or lower this layer's stride in the policy.")
        rule = causal_padding if self.causal else same_padding
        return rule(length, self.time_kernel, self.time_stride, self.time_dilation)

    def extra_repr(self) -> str:
        return (f"time_kernel={self.time_kernel}, time_stride={self.time_stride}, "
                f"time_dilation={self.time_dilation}, time_padding={self.time_padding!r}, causal={self.causal}")


class InflatedConv(_Temporal):
    """A 2D conv inflated to ``kt x kh x kw``; holds a real ``(out, in/groups, kt, kh, kw)`` weight.

    Supports ``nn.Conv2d`` (any padding, including ``'same'`` and non-zero padding modes), timm's
    ``Conv2dSame`` (TF "SAME" padding) and timm's weight-standardised convs (``StdConv2d``,
    ``ScaledStdConv2d`` and their ``Same`` variants). Weight-standardised convs standardise with the
    statistics of the kernel's temporal sum, so every init mode keeps their 2D meaning exactly.
    """

    def __init__(self, conv: nn.Conv2d, spec: TemporalSpec, *, init: str, time_padding: str, causal: bool,
                 clip: ClipState, path: str, noise_std: float = 0.1):
        super().__init__()
        self._init_temporal(spec, time_padding, causal, clip, path)
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        self.kernel_size, self.stride = tuple(conv.kernel_size), tuple(conv.stride)
        self.dilation, self.groups = tuple(conv.dilation), conv.groups
        self.source_type = f"{type(conv).__module__}.{type(conv).__qualname__}"
        self.spatial_pre_pad, self.spatial_pad_mode, self.padding = _spatial_padding(conv)
        self.standardize = hasattr(conv, "eps") and type(conv).__name__.startswith(("StdConv", "ScaledStdConv"))
        self.eps = getattr(conv, "eps", 0.0)
        self.scale = getattr(conv, "scale", None)
        self.weight = nn.Parameter(inflate_kernel(conv.weight, spec.kernel, init, noise_std=noise_std).clone(),
                                   requires_grad=conv.weight.requires_grad)
        self.bias = None if conv.bias is None else nn.Parameter(conv.bias.detach().clone(),
                                                                requires_grad=conv.bias.requires_grad)
        if getattr(conv, "gain", None) is not None:
            self.gain = nn.Parameter(conv.gain.detach().clone().unsqueeze(-1))

    def effective_weight(self) -> torch.Tensor:
        w = self.weight
        if not self.standardize:
            return w
        tap_sum = w.sum(2).reshape(self.out_channels, -1)
        var, mean = torch.var_mean(tap_sum, dim=1, unbiased=False)
        shape = (-1, 1, 1, 1, 1)
        w = (w - (mean / self.time_kernel).view(shape)) * torch.rsqrt(var + self.eps).view(shape)
        if getattr(self, "gain", None) is not None:
            w = w * (self.gain * self.scale)
        return w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.spatial_pre_pad == "tf_same":
            x = spatial_same_pad(x, self.kernel_size, self.stride, self.dilation)
        elif self.spatial_pre_pad is not None:
            x = F.pad(x, self.spatial_pre_pad, mode=self.spatial_pad_mode)
        clip = frames_to_clip(x, self._clip.batch, self.path)
        front, back = self._time_pad(clip.shape[2])
        weight = self.effective_weight()
        if self.time_kernel == 1:  # a per-frame conv on every time_stride-th frame: no regrouping
            if self.time_stride > 1:
                x = clip_to_frames(clip[:, :, front::self.time_stride])
            return F.conv2d(x, weight.squeeze(2), self.bias, self.stride, self.padding, self.dilation, self.groups)
        clip = pad_time(clip, front, back, self.time_padding)
        y = F.conv3d(clip, weight, self.bias, (self.time_stride,) + self.stride, (0,) + self.padding,
                     (self.time_dilation,) + self.dilation, self.groups)
        return clip_to_frames(y)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel=({self.time_kernel}, {self.kernel_size[0]}, "
                f"{self.kernel_size[1]}), stride=({self.time_stride}, {self.stride[0]}, {self.stride[1]}), "
                f"groups={self.groups}, " + super().extra_repr())


def _spatial_padding(conv: nn.Conv2d):
    """How ``conv`` pads space: ``(pre_pad, pre_pad_mode, conv_padding)``.

    ``pre_pad`` is ``None``, ``"tf_same"`` (dynamic TF "SAME", timm's ``*Same`` convs) or an ``F.pad``
    tuple applied per frame before the conv; ``conv_padding`` is the conv's own symmetric ``(ph, pw)``.
    """
    name = type(conv).__name__
    if name in ("Conv2dSame", "Conv2dSameExport") or getattr(conv, "same_pad", False) is True:
        return "tf_same", "constant", (0, 0)
    if conv.padding_mode != "zeros":
        return tuple(conv._reversed_padding_repeated_twice), conv.padding_mode, (0, 0)
    if conv.padding == "valid":
        return None, "constant", (0, 0)
    if conv.padding == "same":
        wl, wr, hl, hr = conv._reversed_padding_repeated_twice
        if wl == wr and hl == hr:
            return None, "constant", (hl, wl)
        return (wl, wr, hl, hr), "constant", (0, 0)
    return None, "constant", tuple(conv.padding)


class InflatedPool(_Temporal):
    """A 2D pool run per frame, followed by a temporal max or average over ``kt`` frames.

    Max and average pooling over a box are separable, so this equals a ``kt x kh x kw`` 3D pool while
    keeping every spatial detail of the 2D module (``ceil_mode``, TF "SAME" pools, padding counts).
    Temporal max pooling pads with edge frames, which is the same as padding with ``-inf``.
    """

    def __init__(self, pool: nn.Module, spec: TemporalSpec, *, time_padding: str, causal: bool,
                 clip: ClipState, path: str):
        super().__init__()
        self._init_temporal(spec, time_padding, causal, clip, path)
        self.pool2d = pool
        self.reduce = "max" if "Max" in type(pool).__name__ else "avg"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool2d(x)
        clip = frames_to_clip(x, self._clip.batch, self.path)
        front, back = self._time_pad(clip.shape[2])
        mode = "replicate" if self.reduce == "max" else self.time_padding
        clip = pad_time(clip, front, back, mode)
        windows = clip.unfold(2, (self.time_kernel - 1) * self.time_dilation + 1, self.time_stride)
        windows = windows[..., :: self.time_dilation]  # (B, C, T', H, W, kt)
        y = windows.amax(-1) if self.reduce == "max" else windows.mean(-1)
        return clip_to_frames(y)
