"""Split a job's inputs across machines or processes: ``--shard K/N`` keeps every N-th item from item K.

    >>> parse_shard("1/4")
    (1, 4)
    >>> select_shard(["a", "b", "c", "d", "e"], 1, 4)
    ['b']

K counts from 0 (like a ``torchrun`` rank), so ``0/N`` ... ``N-1/N`` cover every item exactly once. The
split is round-robin over the list as given: callers sort it first (by relative path), so every shard sees
the same order and the shards are deterministic and balanced (sizes differ by at most one).
"""
from __future__ import annotations

import re
from typing import Sequence, TypeVar

T = TypeVar("T")
_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def parse_shard(spec: str | None) -> tuple[int, int]:
    """``"K/N"`` -> ``(K, N)`` with ``0 <= K < N``; None or "" -> ``(0, 1)`` (everything)."""
    if spec is None or spec == "":
        return 0, 1
    m = _SPEC.match(str(spec))
    if not m:
        raise ValueError(f"--shard must look like K/N (e.g. 0/4: the first of 4 shards), got {spec!r}")
    k, n = int(m.group(1)), int(m.group(2))
    if n < 1 or not 0 <= k < n:
        raise ValueError(f"--shard {spec}: need N >= 1 and 0 <= K < N (K counts from 0, so 0/{max(n, 1)} "
                         f"... {max(n, 1) - 1}/{max(n, 1)})")
    return k, n


def select_shard(items: Sequence[T], k: int, n: int) -> list[T]:
    """Items ``k, k + n, k + 2n, ...`` of ``items``."""
    if n < 1 or not 0 <= k < n:
        raise ValueError(f"shard {k}/{n}: need N >= 1 and 0 <= K < N")
    return list(items)[k::n]
