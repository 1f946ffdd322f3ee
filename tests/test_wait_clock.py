"""zoo.data.wait_clock: the data-wait fraction that train, fvd-stats and features report."""
import time

import numpy as np
import torch

from zoo.data.wait_clock import WaitClock


def _slow(n: int, seconds: float):
    for i in range(n):
        time.sleep(seconds)
        yield i


def test_the_clock_counts_the_waits_for_items_and_not_the_work_between():
    start = time.perf_counter()
    clock = WaitClock()
    seen, worked = [], 0.0
    for item in clock.wrap(_slow(3, 0.05)):
        seen.append(item)
        t = time.perf_counter()
        time.sleep(0.1)  # the network's work: not waiting
        worked += time.perf_counter() - t
    elapsed = time.perf_counter() - start
    assert seen == [0, 1, 2]
    assert 0.15 <= clock.waited <= elapsed - worked  # the three waits, none of the work
    assert abs(clock.fraction() - clock.waited / elapsed) < 0.05


def test_a_loader_that_is_never_late_gives_almost_no_wait():
    clock = WaitClock()
    assert list(clock.wrap(range(5))) == [0, 1, 2, 3, 4] and clock.waited < 0.01
    time.sleep(0.05)
    assert clock.fraction() < 0.2


def test_features_and_fvd_stats_report_the_wait(tmp_path):
    from zoo.metrics.fvd import FVDModel, compute_stats
    from zoo.models.i3d import InceptionI3d
    torch.manual_seed(0)
    net = InceptionI3d(num_classes=400, final_endpoint="Logits").eval()
    model = FVDModel(model=net, device="cpu", compile=False)
    videos = torch.from_numpy(np.random.default_rng(0).integers(0, 255, (2, 10, 32, 32, 3), dtype=np.uint8))
    stats, _ = compute_stats(videos, model, frames=10, progress=False, batch_size=2)
    assert stats.count == 2 and 0 <= stats.data_wait < 1
