"""The fused model under ``torch.compile`` (inductor with freezing) for long CPU inference runs.

Freezing makes the weights constants: inductor prepacks them for oneDNN, fuses conv + bias + ReLU, and
writes its own kernels for the max pools (no argmax indices, which eager ``max_pool3d`` computes) and the
concats. On the 2-core AVX-512 machine of ``docs/benchmarks.md`` this ran I3D 1.2x faster than the eager
fused model with the same features (the convs are the same oneDNN primitives), after a one-off compile of
about 16 s per input shape.

So compiling pays only on long runs. Measured on that machine after this round's other speed-ups
(``docs/benchmarks.md``): a compile costs ~12 s (fp32 or bf16, batch 4-8, not shortened by inductor's cache
under freezing) and saves ~15 ms per clip, so it pays back after about 900 clips. :class:`CompiledForward`
therefore runs the eager model first, and compiles, for the batch shape it sees, only when at least
:data:`PAYBACK_CLIPS` clips are left: a caller that knows the run's length says so with
:meth:`CompiledForward.expect` (``compute_stats`` does), and without that it compiles once
:data:`UNKNOWN_RUN_AFTER_CLIPS` clips have gone through. Other shapes (the last, smaller batch) keep running
eager. If compiling fails (no C++ compiler, an inductor bug) it warns once and stays eager.
``QUOVADIS_COMPILE=0`` turns it off, ``=1`` compiles at the first call (as ``compile=True``).
"""
from __future__ import annotations

import os
import time
import warnings

import torch
import torch.nn as nn

COMPILE_AFTER_CLIPS = 64  # never before: a predict or a small FVD stays eager
PAYBACK_CLIPS = 1000  # clips a compile needs still to come to pay back its ~12 s
UNKNOWN_RUN_AFTER_CLIPS = 1024  # with no expected length, compile once this many clips went through
ENV = "QUOVADIS_COMPILE"


def compile_after(requested: bool | None, device: torch.device, fused: bool) -> int | None:
    """After how many clips to compile (None: never). ``requested``: True (at once, any model: an inflated
    network too, where freezing folds its BatchNorms into the convs), False, None (auto: the fused I3D on the
    CPU, after :data:`COMPILE_AFTER_CLIPS`); ``$QUOVADIS_COMPILE`` overrides auto."""
    env = os.environ.get(ENV, "").strip().lower()
    if requested is None and env:
        if env not in ("0", "1", "true", "false"):
            raise ValueError(f"{ENV}={env!r}: use 0 (never compile) or 1 (compile at the first call)")
        requested = env in ("1", "true")
    if requested is False:
        return None
    if requested:
        return 0
    return COMPILE_AFTER_CLIPS if device.type == "cpu" and fused else None


class CompiledForward:
    """``model(x)`` eager until ``after_clips`` clips were seen, then compiled for one input shape."""

    def __init__(self, model: nn.Module, after_clips: int):
        self.model, self.after_clips = model, after_clips
        self.seen = 0
        self.expected: int | None = None  # clips the whole run will have passed through, when known
        self.largest = 0  # the largest batch seen: the one to compile for (not a short last batch)
        self.compiled = None
        self.key = None  # (shape, dtype) the compiled program was made for
        self.compile_seconds: float | None = None
        self.failed: str | None = None

    def expect(self, more_clips: int) -> None:
        """The run will pass ``more_clips`` more clips (so compiling waits for none or skips a short run)."""
        self.expected = self.seen + more_clips

    def due(self, batch: int | None = None) -> bool:
        """Whether to compile now, on a batch of ``batch`` clips: at once when asked (``after_clips`` 0);
        else past ``after_clips`` clips, and then only with :data:`PAYBACK_CLIPS` still to come, or past
        :data:`UNKNOWN_RUN_AFTER_CLIPS` when the run's length is not known; and never on a batch smaller
        than the largest seen (a video's short last chunk), whose shape the full batches would not reuse."""
        if self.compiled is not None or self.failed is not None:
            return False
        if batch is not None and batch < self.largest:
            return False
        if self.after_clips == 0:
            return True
        if self.seen <= self.after_clips:
            return False
        if self.expected is None:
            return self.seen > UNKNOWN_RUN_AFTER_CLIPS
        return self.expected - self.seen >= PAYBACK_CLIPS

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        batch = inputs[0].shape[0]
        self.seen += batch
        self.largest = max(self.largest, batch)
        key = tuple((tuple(x.shape), x.dtype, x.is_contiguous(memory_format=torch.channels_last_3d)) for x in inputs)
        if self.due(batch):
            return self._compile(inputs, key)
        if self.compiled is not None and key == self.key:
            return self.compiled(*inputs)
        return self.model(*inputs)

    def _compile(self, inputs, key):
        import torch._inductor.config as inductor_config
        start = time.perf_counter()
        try:
            compiled = torch.compile(self.model, dynamic=False)
            with inductor_config.patch(freezing=True):
                out = compiled(*inputs)
        except Exception as err:  # any compile failure: stay on the eager path, say why once
            self.failed = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
            warnings.warn(f"torch.compile of the inference model failed ({self.failed}); running eager "
                          f"(set {ENV}=0 to skip the attempt)", RuntimeWarning, stacklevel=3)
            return self.model(*inputs)
        self.compiled, self.key = compiled, key
        self.compile_seconds = time.perf_counter() - start
        return out
