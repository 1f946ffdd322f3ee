"""How long the network waits for data: the seconds a loop spends in ``next(loader)``.

Training, FVD and feature extraction all report it, so a user sees whether decoding keeps the network busy
(``data_wait`` 0.05 = the network idled 5% of the run waiting for the loader; add ``--workers`` if it is high)::

    clock = WaitClock()
    for batch in clock.wrap(loader):
        ...
    print(f"data wait {clock.fraction():.0%}")
"""
from __future__ import annotations

import time
from collections.abc import Iterable, Iterator


class WaitClock:
    """Seconds spent waiting for the items of the iterables passed to :meth:`wrap`, since creation."""

    def __init__(self):
        self.started = time.perf_counter()
        self.waited = 0.0

    def wrap(self, items: Iterable) -> Iterator:
        """Yield from ``items``, adding the seconds each ``next`` takes to :attr:`waited`."""
        it = iter(items)
        while True:
            t = time.perf_counter()
            try:
                item = next(it)
            except StopIteration:
                return
            finally:
                self.waited += time.perf_counter() - t
            yield item

    def fraction(self) -> float:
        """:attr:`waited` over the seconds since the clock started (0 for a clock started just now)."""
        return self.waited / max(time.perf_counter() - self.started, 1e-9)
