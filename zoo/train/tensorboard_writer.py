"""A TensorBoard ``SummaryWriter`` that does not import TensorFlow.

``torch.utils.tensorboard`` reaches TensorFlow through ``tensorboard.compat.tf`` whenever TensorFlow is installed,
which costs seconds and prints oneDNN banners. Writing scalars needs none of it: TensorBoard ships a TF-free stub
and switches to it when a module ``tensorboard.compat.notf`` exists (what its ``no_tensorflow`` build adds). We
register that switch, unless TensorFlow is already imported (then the user asked for it and TensorBoard uses it).
"""
from __future__ import annotations

import sys
import types

_SWITCH = "tensorboard.compat.notf"


def summary_writer(logdir: str):
    """``torch.utils.tensorboard.SummaryWriter(logdir)``, with TensorBoard's TF-free stub unless TF is loaded."""
    if "tensorflow" not in sys.modules and _SWITCH not in sys.modules:
        sys.modules[_SWITCH] = types.ModuleType(_SWITCH)
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(logdir)
