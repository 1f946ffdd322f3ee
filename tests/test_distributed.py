"""Two processes on gloo through the code path nccl takes (issue 16): DDP with gradient accumulation, a
corrupt video on one rank only (an empty batch there, agreed on by both ranks instead of a hang), the
validation gathered with the sampler's duplicates removed, the process group ended by train(), and
``quovadis evaluate`` under a process group with only rank 0 writing. Real MP4 files, tiny model.
With ``QUOVADIS_TEST_NCCL=1`` on a machine with 2 GPUs the same test runs on nccl."""
import contextlib
import io
import json
import os
import socket
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from zoo.data.synthetic import make_moving_shapes

WORLD = 2
CORRUPT_NAME = "g03_c01"  # make_moving_shapes(corrupt=1) writes the undecodable clip as group 3, clip 1
TIMEOUT = 300


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny_cfg(root: Path, out: Path):
    from zoo.train.config import TrainConfig
    cfg = TrainConfig()
    cfg.out, cfg.epochs, cfg.accumulate, cfg.log_every = str(out), 1, 2, 2
    cfg.progress, cfg.tensorboard, cfg.freeze_bn = False, False, True
    cfg.model.name, cfg.model.pretrained, cfg.model.dropout = "timm:test_resnet", False, 0.0
    d = cfg.data
    d.root, d.clip_len, d.size, d.short_side, d.batch_size, d.workers = str(root), 4, 32, 32, 1, 0
    d.flip, d.multiscale = False, False
    return cfg


def _worker(rank: int, root: str, out: str, ports: tuple, results: str) -> None:
    """One rank: train (accumulate 2, batch 1), then ``quovadis evaluate`` of the run; writes what it saw."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP
    from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

    from zoo.cli.main import main as cli_main
    from zoo.data.datasets import UCF101, collate_skip_corrupt
    from zoo.train.data import test_transform, train_transform
    from zoo.train.loop import train

    if os.environ.get("QUOVADIS_TEST_NCCL") != "1":  # gloo on the CPU; set it on a 2-GPU machine for nccl
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(ports[0]), RANK=str(rank), WORLD_SIZE=str(WORLD),
                      LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(WORLD))
    synced = []  # backward passes whose gradients DDP all-reduced (first bucket of each)
    ddp_init = DDP.__init__

    def counting_init(self, *a, **k):
        ddp_init(self, *a, **k)

        def hook(state, bucket):
            if bucket.index() == 0:
                synced.append(1)
            return allreduce_hook(state, bucket)
        self.register_comm_hook(None, hook)
    DDP.__init__ = counting_init

    cfg = tiny_cfg(Path(root), Path(out))
    train_set = UCF101(root, subset="train", clip_len=4, transform=train_transform(cfg), on_corrupt="sentinel")
    corrupt = [k for k, (p, _) in enumerate(train_set.items) if CORRUPT_NAME in p.name]
    train_set.items = [it for k, it in enumerate(train_set.items) if k < 7 or k in corrupt][:8]  # 7 good + 1
    val_set = UCF101(root, subset="test", clip_len=4, transform=test_transform(cfg), mode="test")
    val_set.items = val_set.items[:5]  # odd: the sampler pads rank 1 with a repeat of a rank-0 video
    empty_batches = []

    def collate(batch):
        out_ = collate_skip_corrupt(batch)
        empty_batches.append("label" not in out_)
        return out_

    final = train(cfg, train_set, val_set, 4, collate_fn=collate)
    state = torch.load(Path(out) / "last.pt", weights_only=True)
    weights = torch.cat([p.detach().flatten() for p in final["model"].parameters()])
    record = {"empty_batches": sum(empty_batches[:4]), "micro_batches": 4, "synced_backwards": len(synced),
              "global_step": state["global_step"], "group_destroyed": not dist.is_initialized(),
              "val_videos": final["num_videos"], "weights_sum": float(weights.double().sum()),
              "val_paths": len(torch.load(Path(out) / "val_predictions.pt", weights_only=True)["paths"])}
    os.environ["MASTER_PORT"] = str(ports[1])
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        record["evaluate_rc"] = cli_main(["evaluate", "--run", out])
    record["evaluate_printed"] = printed.getvalue()
    Path(results, f"rank{rank}.json").write_text(json.dumps(record))


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return make_moving_shapes(tmp_path_factory.mktemp("shapes"), classes=4, per_class=6, frames=8, size=32,
                              seed=1, corrupt=1)


def test_two_gloo_processes_train_and_evaluate_like_nccl_would(shapes, tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    out = tmp_path / "run"
    ctx = mp.start_processes(_worker, args=(str(shapes), str(out), (free_port(), free_port()), str(results)),
                             nprocs=WORLD, join=False, start_method="spawn")
    deadline = time.time() + TIMEOUT
    try:
        while not ctx.join(timeout=5):
            if time.time() > deadline:
                pytest.fail(f"the two ranks did not finish in {TIMEOUT} s (a collective left waiting?)")
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.kill()
    r = [json.loads((results / f"rank{k}.json").read_text()) for k in range(WORLD)]
    assert sorted(x["empty_batches"] for x in r) == [0, 1]  # the corrupt video landed on one rank only
    for x in r:
        # one stepping micro-batch of two was skipped on both ranks when the corrupt one came up empty,
        # or none: either way only stepping micro-batches all-reduce (no_sync on the others)
        assert x["synced_backwards"] == x["global_step"] >= 1
        assert x["global_step"] <= x["micro_batches"] // 2
        assert x["group_destroyed"]
        assert x["val_videos"] == x["val_paths"] == 5  # 6 gathered rows, the sampler's repeat removed
    assert r[0]["weights_sum"] == pytest.approx(r[1]["weights_sum"], rel=0, abs=1e-9)  # DDP kept them equal
    assert r[0]["evaluate_rc"] == r[1]["evaluate_rc"] == 0
    assert "wrote" in r[0]["evaluate_printed"] and r[1]["evaluate_printed"] == ""  # only rank 0 writes
    report = json.loads((out / "eval_report.json").read_text())
    assert report["num_videos"] == 12  # the whole test split, each video once
