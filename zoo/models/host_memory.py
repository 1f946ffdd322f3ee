"""Keep freed host memory for reuse, so a CPU forward pass does not page-fault its activations in again.

glibc serves every allocation above 32 MB with a fresh ``mmap`` and gives it back with ``munmap`` when freed.
A CPU forward of I3D allocates its activations anew on every call (eager and ``torch.compile`` alike), so
each batch faults hundreds of MB of zeroed pages in again: on the 2-core machine of ``docs/benchmarks.md``,
460 MB per bf16 batch of 8 clips, 30% of the forward time. With mmap off for allocations
(``M_MMAP_MAX=0``) and freed memory kept at the top of the heap (``M_TRIM_THRESHOLD`` 2 GB), the next batch
reuses the same pages: no faults. It is what Intel's PyTorch launch script gets by preloading jemalloc or
tcmalloc, done in-process. The cost: the process keeps its peak memory until it exits.

That is a process-wide setting, so the library does not make it behind a user's back: the inference
commands (``quovadis fvd``, ``fvd-stats``, ``features``) call :func:`keep_freed_memory`, their process
being theirs to tune. In your own process call it yourself, or set ``QUOVADIS_KEEP_MEMORY=1`` and every CPU
:class:`zoo.models.inference.InferenceModel` does; ``QUOVADIS_KEEP_MEMORY=0`` keeps glibc's default even in
the commands. Elsewhere than glibc it does nothing.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os

ENV = "QUOVADIS_KEEP_MEMORY"
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc's malloc.h
_GLIBC_MMAP_MAX = 65536  # glibc's default M_MMAP_MAX, put back if the second setting fails
_applied: bool | None = None


def _env() -> bool | None:
    """``$QUOVADIS_KEEP_MEMORY``: True (1), False (0) or None (unset)."""
    env = os.environ.get(ENV, "").strip().lower()
    if env not in ("", "0", "1", "false", "true"):
        raise ValueError(f"{ENV}={env!r}: use 1 (keep freed memory for reuse) or 0 (give it back, glibc's default)")
    return None if env == "" else env in ("1", "true")


def keep_freed_memory() -> bool:
    """Set glibc's malloc to reuse freed memory (once per process). Returns whether it is in effect: False
    without glibc or with ``QUOVADIS_KEEP_MEMORY=0``."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if _env() is False:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (macOS, musl without mallopt, Windows)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    if not mallopt(_M_MMAP_MAX, 0):
        return False
    if not mallopt(_M_TRIM_THRESHOLD, 2**31 - 1):
        mallopt(_M_MMAP_MAX, _GLIBC_MMAP_MAX)  # all or nothing
        return False
    _applied = True
    return True


def keep_if_asked() -> bool:
    """For :class:`~zoo.models.inference.InferenceModel`: keep freed memory if ``QUOVADIS_KEEP_MEMORY=1``.
    Returns whether freed memory is kept in this process (by this call or an earlier one)."""
    if _env():
        return keep_freed_memory()
    return bool(_applied)
