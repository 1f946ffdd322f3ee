"""The checkpoint name map: DeepMind kinetics-i3d TensorFlow variable names <-> quovadis I3D state-dict keys.

TensorFlow: ``[SCOPE/]inception_i3d/Mixed_4b/Branch_1/Conv3d_0b_3x3/conv_3d/w``, with SCOPE ``RGB`` or
``Flow`` (rgb_scratch_kin600 has no scope and no ``inception_i3d/`` either).
quovadis:   ``Mixed_4b.Branch_1.Conv3d_0b_3x3.conv.weight``

Module paths are the TF scopes with ``/`` -> ``.``; only the leaf names differ:
"""
from __future__ import annotations

import re

import numpy as np

LEAVES = {
    "conv_3d/w": "conv.weight",
    "conv_3d/b": "conv.bias",
    "batch_norm/beta": "bn.bias",
    "batch_norm/moving_mean": "bn.running_mean",
    "batch_norm/moving_variance": "bn.running_var",
}
SCOPES = ("RGB/inception_i3d/", "Flow/inception_i3d/", "inception_i3d/", "")
IGNORED = re.compile(r"(/Momentum|/Adam(_1)?|/ExponentialMovingAverage)$|^(global_step|beta[12]_power)$")
_TF_NAME = re.compile(r"^(?P<path>(?:[A-Za-z0-9_]+/)*?[A-Za-z0-9_]+)/(?P<leaf>conv_3d/[wb]|batch_norm/[a-z_]+)$")


def split_scope(name: str) -> tuple[str, str]:
    """``("RGB/inception_i3d/", "Mixed_3b/...")``: the scope a TF name starts with, and the rest."""
    for scope in SCOPES[:-1]:
        if name.startswith(scope):
            return scope, name[len(scope):]
    return "", name


def is_ignored(name: str) -> bool:
    """Optimizer slots and training counters, which carry no model weights."""
    return IGNORED.search(name) is not None


def tf_to_torch(name: str) -> str | None:
    """The state-dict key for a TF variable name, or None when the name is not a model tensor."""
    if is_ignored(name):
        return None
    _, rest = split_scope(name)
    m = _TF_NAME.match(rest)
    if not m or m.group("leaf") not in LEAVES:
        return None
    return m.group("path").replace("/", ".") + "." + LEAVES[m.group("leaf")]


def torch_to_tf(key: str, scope: str) -> str:
    """The TF variable name for a state-dict key under ``scope`` (e.g. ``"RGB/inception_i3d/"``)."""
    for leaf_tf, leaf_pt in LEAVES.items():
        if key.endswith("." + leaf_pt):
            return scope + key[: -len(leaf_pt) - 1].replace(".", "/") + "/" + leaf_tf
    raise KeyError(f"state-dict key {key!r} has no TensorFlow counterpart")


def tf_to_torch_array(key: str, array: np.ndarray) -> np.ndarray:
    """Conv kernels ``[t, h, w, in, out]`` -> ``[out, in, t, h, w]``; BatchNorm ``[1, 1, 1, 1, C]`` -> ``[C]``."""
    if key.endswith("conv.weight"):
        if array.ndim != 5:
            raise ValueError(f"conv kernel for {key} should be 5-D [t, h, w, in, out], got shape {array.shape}")
        return np.ascontiguousarray(array.transpose(4, 3, 0, 1, 2))
    return np.ascontiguousarray(array.reshape(-1))
