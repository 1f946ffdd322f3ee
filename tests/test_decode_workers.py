"""How many decoding workers inference starts by default: none where the network's threads already use every
core, a few where cores are left over, never more than one per video."""
import os

import pytest

from zoo.data.workers import decode_workers, usable_cores


@pytest.mark.parametrize("cores, items, want", [(1, 10, 0), (2, 10, 0), (3, 10, 1), (4, 10, 2), (8, 10, 4),
                                                (64, 10, 4), (64, 3, 3), (8, 0, 0)])
def test_decode_workers_leave_two_cores_to_the_network(monkeypatch, cores, items, want):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    assert usable_cores() == cores
    assert decode_workers(items) == decode_workers(items, "cpu") == want


@pytest.mark.parametrize("cores, items, want", [(1, 10, 1), (2, 10, 2), (8, 10, 4), (8, 3, 3), (2, 0, 0)])
def test_on_a_gpu_every_core_may_decode(monkeypatch, cores, items, want):
    """A 2-core machine with a GPU (a Colab T4) decodes in workers: the network does not use the cores."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    assert decode_workers(items, "cuda") == decode_workers(items, "cuda:1") == want

