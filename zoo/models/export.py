"""Export a video model (zoo I3D or an inflated model) to ONNX or a ``torch.export`` program (pt2).

ONNX is for ONNX Runtime and OpenVINO users (batch axis dynamic); ``pt2`` is a :func:`torch.export.export`
program saved with :func:`torch.export.save` and reloaded with :func:`torch.export.load`.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

FORMATS = ("onnx", "pt2")


def example_input(model: nn.Module, frames: int = 16, size: int = 224, batch: int = 2) -> torch.Tensor:
    """A random clip (B, C, T, H, W) with the model's input channels (``model.in_channels``, else 3)."""
    channels = getattr(model, "in_channels", 3)
    return torch.randn(batch, channels, frames, size, size)


def export(model: nn.Module, path, fmt: str, *, frames: int = 16, size: int = 224) -> Path:
    """Write ``model`` (put in eval mode) traced on a (2, C, frames, size, size) clip to ``path`` as ``fmt``."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; formats are {FORMATS}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    x = example_input(model, frames, size)
    with torch.no_grad():
        if fmt == "onnx":
            _export_onnx(model, x, path)
        else:
            program = torch.export.export(model, (x,), dynamic_shapes=({0: torch.export.Dim("batch", max=1024)},))
            torch.export.save(program, path)
    return path


def _export_onnx(model: nn.Module, x: torch.Tensor, path: Path) -> None:
    try:
        import onnx  # noqa: F401  (torch.onnx.export needs it)
        import onnxscript  # noqa: F401  (the dynamo exporter needs it)
    except ImportError as e:
        raise ImportError(f"ONNX export needs onnx and onnxscript ({e}): pip install 'quovadis[export]'") from e
    torch.onnx.export(model, (x,), str(path), input_names=["video"], output_names=["logits"],
                      dynamic_shapes=({0: torch.export.Dim("batch", max=1024)},), dynamo=True, external_data=False)


def onnx_session(path):
    """An ONNX Runtime CPU session on ``path``; raises an ImportError naming the extra if onnxruntime is missing."""
    try:
        import onnxruntime
    except ImportError as e:
        raise ImportError("running ONNX files needs onnxruntime: pip install 'quovadis[export]'") from e
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
