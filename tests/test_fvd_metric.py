"""zoo.metrics.FVD, the metric object (issue 21): both layouts, floats only with value_range, equal to
`fvd()` on the same videos, reset, and the sum over two gloo ranks. Batches of one video, so that every
video's features are the same bits on both paths (float32 convolutions round differently with the batch)."""
import os
import warnings
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

import zoo.metrics.fvd_metric as M
from zoo.metrics import FVD
from zoo.metrics.fvd import FVDError, fvd

from .fvd_helpers import tiny_fvd_model
from .test_distributed import free_port


CLASSES = ["StreamingFVD"] + (["TorchmetricsFVD"] if M._TorchmetricsMetric is not None else [])


def test_zoo_metrics_fvd_is_a_torchmetrics_metric_where_installed():
    if M._TorchmetricsMetric is None:
        assert FVD is M.StreamingFVD
    else:
        import torchmetrics
        assert issubclass(FVD, torchmetrics.Metric) and FVD is M.TorchmetricsFVD


def videos(seed, n=10):
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.integers(0, 256, (n, 5, 8, 12, 3), dtype=np.uint8))


@pytest.mark.parametrize("cls", CLASSES)
def test_metric_equals_fvd_in_both_layouts_and_resets(cls):
    FVD = getattr(M, cls)
    model = tiny_fvd_model(dim=8)
    real, fake = videos(0), videos(1)
    expected = fvd(real, fake, frames=4, model=model, batch_size=1).fvd
    m = FVD(frames=4, model=model, batch_size=1)
    m.update(real[:4], real=True)
    m.update(real[4:].permute(0, 4, 1, 2, 3), real=True)  # channels first
    m.update(fake, real=False)
    assert m.counts() == (10, 10)
    assert m.compute() == pytest.approx(expected, rel=1e-9)
    m.reset()
    assert m.counts() == (0, 0)
    with pytest.raises(FVDError, match="at least 2 real videos"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchmetrics warns about compute() before update()
        m.compute()


@pytest.mark.parametrize("cls", CLASSES)
def test_floats_need_a_value_range(cls):
    FVD = getattr(M, cls)
    model = tiny_fvd_model(dim=8)
    real, fake = videos(0), videos(1)
    with pytest.raises(FVDError, match="explicit value_range"):
        FVD(frames=4, model=model).update(real.float() / 255, real=True)
    m = FVD(frames=4, model=model, value_range=(-1, 1), batch_size=1)
    m.update(real.double() / 127.5 - 1, real=True)  # exactly the uint8 values, in [-1, 1]
    m.update(fake.float() / 127.5 - 1, real=False)
    assert m.compute() == pytest.approx(fvd(real, fake, frames=4, model=model, batch_size=1).fvd, rel=1e-9)
    with pytest.raises(FVDError, match="read both as"):
        m.update(torch.zeros(2, 3, 4, 4, 3, dtype=torch.uint8), real=True)
    with pytest.raises(FVDError, match="the clip needs 4"):
        m.update(torch.zeros(2, 2, 8, 8, 3), real=True)
    with pytest.raises(FVDError, match="uint8 videos hold 0..255"):
        m.update(real, real=True)


def _rank(rank, port, out, cls):
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    torch.set_num_threads(1)
    import torch.distributed as dist
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    m = getattr(M, cls)(frames=4, model=tiny_fvd_model(dim=8), batch_size=1)
    m.update(videos(0)[rank::2], real=True)
    m.update(videos(1)[rank::2], real=False)
    Path(out, f"rank{rank}").write_text(repr(m.compute()))
    dist.destroy_process_group()


@pytest.mark.parametrize("cls", CLASSES)
def test_two_gloo_ranks_compute_the_fvd_of_the_union(tmp_path, cls):
    ctx = mp.start_processes(_rank, args=(free_port(), str(tmp_path), cls), nprocs=2, join=False, start_method="spawn")
    deadline = time.time() + 240
    try:
        while not ctx.join(timeout=5):
            assert time.time() < deadline, "the two ranks did not finish in 240 s"
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.kill()
    values = [float((tmp_path / f"rank{r}").read_text()) for r in range(2)]
    expected = fvd(videos(0), videos(1), frames=4, model=tiny_fvd_model(dim=8), batch_size=1).fvd
    assert values[0] == values[1] == pytest.approx(expected, rel=1e-9)
