"""How inference commands (predict, features, fvd, evaluate) run a model: the fused fast path by default.

    >>> runner = InferenceModel(zoo.load("i3d_inception_k400_rgb"), device="cuda")   # fused, bf16 on CUDA
    >>> print(runner.describe()); logits = runner(x)                                  # x (B, C, T, H, W)

Fused (:meth:`zoo.models.i3d.InceptionI3d.fused`): BatchNorm folded into the convs, each Mixed block's three 1x1
convs merged into one, ``channels_last_3d`` memory. It is the same function as the eager model up to float
rounding (the FVD parity test holds it to the TensorFlow reference). ``precision``: ``"fp32"``, ``"bf16"``,
``"auto"`` (bf16 on CUDA, fp32 elsewhere) or ``"fast"`` (bf16 where the hardware has it natively: CUDA, or a
CPU with AMX; else fp32). ``exact=True`` runs the unfused model in fp32 (no TF32),
op for op as DeepMind's graph. Models without a fused form (inflated timm/torchvision networks) run as
they are, in ``channels_last_3d`` and under bf16 autocast when bf16 is asked. On the CPU a long run
compiles the fused model with ``torch.compile`` (inductor, freezing) once the compile pays
(:mod:`zoo.models.compiled`; ``compile=False`` or ``QUOVADIS_COMPILE=0`` turns it off). The inference
commands keep freed memory for the next batch (:mod:`zoo.models.host_memory`: 1.2-1.4x on the CPU); in your
own process call :func:`zoo.models.host_memory.keep_freed_memory` or set ``QUOVADIS_KEEP_MEMORY=1``.
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn as nn

from zoo.models.compiled import CompiledForward, compile_after
from zoo.models.host_memory import keep_if_asked
from zoo.models.precision import PRECISIONS, has_fast_bf16, resolve_precision  # noqa: F401 (re-exported)


def resolve_device(device=None) -> torch.device:
    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"--device {device} asked, but torch finds no CUDA GPU here; use --device cpu")
    return device


def _fuse(model: nn.Module, dtype, device: torch.device) -> tuple[nn.Module, bool]:
    """The fused copy of ``model`` (I3D, or each stream of a two-stream I3D), and whether it was fused. In
    bf16 on the CPU the stem runs as a space-to-depth conv (measured 2.3x faster with AMX; unmeasured on GPUs,
    where ``benchmarks/gpu_check.sh``'s stem step will tell)."""
    s2d = dtype == torch.bfloat16 and device.type == "cpu"
    if hasattr(model, "fused"):
        return model.fused(dtype=dtype, space_to_depth=s2d), True
    if hasattr(model, "rgb") and hasattr(model, "flow") and hasattr(model.rgb, "fused"):
        import copy
        fused = copy.copy(model)
        fused._modules = dict(model._modules)
        fused.rgb = model.rgb.fused(dtype=dtype, space_to_depth=s2d)
        fused.flow = model.flow.fused(dtype=dtype, space_to_depth=s2d)
        return fused, True
    return model, False


@contextlib.contextmanager
def no_tf32():
    """Full fp32 matmuls and convs on CUDA (TF32 would move FVD): restores the previous flags after."""
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


class InferenceModel:
    """A model ready for inference on ``device``: fused and in ``precision`` unless ``exact``."""

    def __init__(self, model: nn.Module, device=None, precision: str | None = "auto", exact: bool = False,
                 compile: bool | None = None):
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device, exact)
        self.exact = exact
        self.dtype = torch.bfloat16 if self.precision == "bf16" else torch.float32
        model = model.eval()
        self.fused = False
        if not exact:
            model, self.fused = _fuse(model, self.dtype if self.dtype != torch.float32 else None, self.device)
            if not self.fused and hasattr(model, "to_channels_last"):
                model.to_channels_last()
        self.model = model.to(self.device).requires_grad_(False)
        self.channels_last = not exact
        self.autocast = self.precision == "bf16" and not self.fused
        self.input_dtype = self.dtype if self.fused else torch.float32  # autocast casts inside an unfused model
        self.compile_after = compile_after(compile, self.device, self.fused)
        self._compiling: list[CompiledForward] = []  # every wrapped module, so expect() reaches each
        self.forward = self.wrap(self.model)
        self.keeps_memory = self.device.type == "cpu" and keep_if_asked()

    def wrap(self, module: nn.Module):
        """``module`` (the model, or a module around it that returns other outputs, as ``features``' endpoint
        heads) called the way this runner calls its model: compiled after :attr:`compile_after` clips, or
        as it is."""
        if self.compile_after is None:
            return module
        self._compiling.append(CompiledForward(module, self.compile_after))
        return self._compiling[-1]

    def expect(self, clips: int) -> None:
        """Tell a compiling runner how many clips this run will pass, so it compiles only when that pays."""
        for forward in self._compiling:
            forward.expect(clips)

    def describe(self) -> str:
        if self.exact:
            return f"exact: unfused fp32 model on {self.device} (no TF32)"
        how = ("fused (BatchNorm folded, 1x1 convs merged, channels_last_3d)" if self.fused
               else "no fused form for this model: eager, channels_last_3d")
        if isinstance(self.forward, CompiledForward):
            how += (", torch.compile at once" if self.forward.after_clips == 0 else
                    ", torch.compile once a long run has 1000+ clips to go (or after 1024 clips when its length "
                    "is unknown)")
        if self.keeps_memory:
            how += ", freed memory kept for reuse"
        return f"fast path: {how}, {self.precision} on {self.device}; --exact for the unfused fp32 model"

    def batch(self, clips) -> torch.Tensor:
        """Clips ``(C, T, H, W)`` stacked into one batch already in the dtype and memory layout that
        :meth:`prepare_input` makes: one copy per clip (``torch.stack`` then :meth:`prepare_input` copies
        twice, the first a transpose when the clips are ``channels_last_3d`` views, as FVD's are)."""
        first = clips[0]
        layout = torch.channels_last_3d if self.channels_last and first.dim() == 4 else torch.contiguous_format
        out = torch.empty((len(clips), *first.shape), dtype=self.input_dtype, memory_format=layout)
        for row, clip in zip(out, clips):
            if clip.shape != first.shape:
                raise ValueError(f"clips of one batch must have one shape: {tuple(first.shape)} and {tuple(clip.shape)}")
            row.copy_(clip)
        return out

    def prepare_input(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        x = x.to(self.input_dtype)
        if self.channels_last and x.dim() == 5:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        return x

    def context(self):
        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode())
        if self.precision == "fp32":
            stack.enter_context(no_tf32())
        if self.autocast:
            stack.enter_context(torch.autocast(self.device.type, dtype=torch.bfloat16))
        return stack

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        with self.context():
            return self.forward(*(self.prepare_input(x) for x in inputs)).float()

    def endpoints(self, x: torch.Tensor, names) -> dict[str, torch.Tensor]:
        """I3D endpoints (``extract_endpoints``), as float32."""
        with self.context():
            out = self.model.extract_endpoints(self.prepare_input(x), names)
        return {k: v.float() for k, v in out.items()}
