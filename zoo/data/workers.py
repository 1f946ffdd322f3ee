"""How many processes decode videos next to the network: the usable cores, and the inference default.

Training's loader default (``zoo.train.loop.default_workers``) shares the cores among the node's ranks; the
inference commands (``fvd``, ``fvd-stats``, ``features``) decode beside a network that already runs one
thread per core, so they add workers only where cores are left over.
"""
from __future__ import annotations

import os


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity; ``os.cpu_count()`` where there is none)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def decode_workers(items: int, device: str = "cpu", cap: int = 4) -> int:
    """Default decoding workers for inference over ``items`` videos on ``device`` (its type: "cpu", "cuda").

    On a GPU the cores are free for decoding: ``min(cap, cores, items)``. On the CPU the network's threads
    use them: none on a machine of 2 or fewer usable cores (there, 2 workers cut FVD statistics at 224 from
    4.07 to 2.46 videos/s and features from 1.04 to 0.87 clips/s, with a data wait of only 7% without
    them: ``benchmarks/bench_data_wait.py``), else ``min(cap, cores - 2, items)``, leaving two to the network."""
    cores = usable_cores()
    if str(device).split(":")[0] != "cpu":
        return max(0, min(cap, cores, items))
    return 0 if cores <= 2 else max(0, min(cap, cores - 2, items))
