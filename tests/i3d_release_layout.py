"""An I3D state dict written the way DeepMind's kinetics-i3d release lays it out (names, shapes, float32),
so converter and ``zoo build`` tests can write real TF tensor bundles without TensorFlow."""
import numpy as np

from converters.deepmind_names import torch_to_tf


def release_layout(state: dict, scope: str) -> dict:
    """Conv kernels ``[t, h, w, in, out]``, BatchNorm vectors ``[1, 1, 1, 1, C]``, under ``scope``
    (``"RGB/inception_i3d/"``, ``"Flow/inception_i3d/"`` or ``""`` for rgb_scratch_kin600)."""
    out = {}
    for key, value in state.items():
        if key.endswith("num_batches_tracked"):
            continue
        a = value.numpy()
        if key.endswith("conv.weight"):
            a = a.transpose(2, 3, 4, 1, 0)
        elif key.endswith(("bn.running_mean", "bn.running_var", "bn.bias")):
            a = a.reshape(1, 1, 1, 1, -1)
        out[torch_to_tf(key, scope)] = np.ascontiguousarray(a, dtype=np.float32)
    return out
