"""``VideoModel``: the module that :func:`inflate.inflate` returns."""
from __future__ import annotations

import copy

import torch
import torch.nn as nn
from torch.utils._pytree import tree_map

from inflate.layers import ClipState


class VideoModel(nn.Module):
    """A 2D network run on clips ``(B, C, T, H, W)``, with some layers inflated in time.

    ``forward(x)`` returns the 2D network's output averaged over the time steps that remain, as I3D
    does: a classifier gives ``(B, num_classes)``. ``forward(x, reduce_time=False)`` keeps time:
    ``(B, T', ...)``. ``forward_features(x)`` returns the backbone's features per time step: a 2D
    feature map ``(C, h, w)`` per frame comes back as ``(B, C, T', h, w)``, anything else as
    ``(B, T', ...)``.

    ``config`` travels with the model (source, policy, init, padding): :func:`inflate.save` writes it
    beside the weights and :func:`inflate.load` rebuilds the model from it.
    """

    def __init__(self, net: nn.Module, config: dict, clip: ClipState):
        super().__init__()
        self.net = net
        self.config = config
        object.__setattr__(self, "_clip", clip)

    # -- time in batch ------------------------------------------------------------------------
    def _frames(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() != 5:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"a video model takes a clip of shape (B, C, T, H, W); got {shape}. "
                             "For one clip (C, T, H, W) use x[None]; for an image, x[:, :, None].")
        b, c, t, h, w = x.shape
        expected = self.config.get("in_chans")
        if expected is not None and c != expected:
            raise ValueError(f"clip has {c} channels at dim 1 of shape {tuple(x.shape)}, but the model expects "
                             f"{expected}; the layout is (B, C, T, H, W), not (B, T, C, H, W).")
        self._clip.batch = b
        return x.transpose(1, 2).flatten(0, 1)  # (B*T, C, H, W); a view for channels-last-3d input

    def _split_time(self, y, batch: int, reduce_time: bool, spatial_first: bool = False):
        def split(t):
            if not isinstance(t, torch.Tensor) or t.dim() == 0 or t.shape[0] % batch:
                return t
            t = t.unflatten(0, (batch, t.shape[0] // batch))
            if reduce_time:
                return t.mean(1)
            if spatial_first and t.dim() == 5:
                return t.transpose(1, 2)  # (B, T', C, h, w) -> (B, C, T', h, w)
            return t
        return tree_map(split, y)

    def forward(self, x: torch.Tensor, reduce_time: bool = True):
        batch = x.shape[0] if isinstance(x, torch.Tensor) else None
        return self._split_time(self.net(self._frames(x)), batch, reduce_time)

    def forward_features(self, x: torch.Tensor):
        batch = x.shape[0] if isinstance(x, torch.Tensor) else None
        frames = self._frames(x)
        if hasattr(self.net, "forward_features"):
            y = self.net.forward_features(frames)
        else:  # torchvision: everything up to the classifier
            head_name = _classifier_name(self.net)
            head = getattr(self.net, head_name)
            setattr(self.net, head_name, nn.Identity())
            try:
                y = self.net(frames)
            finally:
                setattr(self.net, head_name, head)
        return self._split_time(y, batch, reduce_time=False, spatial_first=True)

    def to_channels_last(self) -> "VideoModel":
        """Put 5D weights in ``channels_last_3d`` and 4D weights in ``channels_last``, in place.

        Feed the model ``x.to(memory_format=torch.channels_last_3d)``: then every regrouping of frames
        into a clip and back is a free view. (``model.to(memory_format=...)`` cannot do this, since the
        model holds 4D and 5D weights side by side.)
        """
        for t in list(self.parameters()) + list(self.buffers()):
            if t.dim() in (4, 5):
                fmt = torch.channels_last if t.dim() == 4 else torch.channels_last_3d
                t.data = t.data.contiguous(memory_format=fmt)
        return self

    def reset_classifier(self, num_classes: int):
        """Replace the classification head for ``num_classes`` (timm's API where the 2D model has it)."""
        if hasattr(self.net, "reset_classifier"):
            self.net.reset_classifier(num_classes)
        else:
            name = _classifier_name(self.net)
            head = getattr(self.net, name)
            last = head if isinstance(head, nn.Linear) else [m for m in head.modules() if isinstance(m, nn.Linear)][-1]
            new = nn.Linear(last.in_features, num_classes)
            if head is last:
                setattr(self.net, name, new)
            else:
                parent_name, _, leaf = [n for n, m in head.named_modules() if m is last][0].rpartition(".")
                setattr(head.get_submodule(parent_name) if parent_name else head, leaf, new)
        self.config = {**self.config, "num_classes": num_classes}

    def __deepcopy__(self, memo):
        clip = ClipState()
        memo[id(self._clip)] = clip
        new = nn.Module.__new__(type(self))
        memo[id(self)] = new
        for k, v in self.__dict__.items():
            object.__setattr__(new, k, copy.deepcopy(v, memo))
        return new


def _classifier_name(net: nn.Module) -> str:
    for name in ("fc", "classifier", "heads", "head"):
        if isinstance(getattr(net, name, None), nn.Module):
            return name
    raise AttributeError(f"{type(net).__name__} has no classifier attribute (fc, classifier, heads, head); "
                         "use forward(x, reduce_time=False) for per-time outputs")
