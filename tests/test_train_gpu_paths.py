"""The training harness's GPU paths, checked on the CPU: collectives' devices, deterministic mode, host
syncs per step, loader settings, views in chunks, thread-safe inflated models, zoo fine-tuning, resume
across process counts, and run folders that cannot execute code (issue 16)."""
import json
import os
import pickle
import threading
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from torch.utils.data import Dataset

import inflate
import zoo
from zoo.data.datasets import collate_skip_corrupt
from zoo.train import distributed as D
from zoo.train import loop as L
from zoo.train.build import build_model
from zoo.train.checkpoint import load_checkpoint, load_run_weights, save_checkpoint
from zoo.train.config import TrainConfig, from_dict
from zoo.train.reproducibility import (configure_backends, rank_seed, restore_rank_rng, rng_state, seed_all,
                                       set_rng_state)

ROOT = Path(__file__).resolve().parents[1]


def tiny_cfg(tmp_path, **kw) -> TrainConfig:
    cfg = TrainConfig()
    cfg.out = str(tmp_path / "run")
    cfg.model.name, cfg.model.pretrained, cfg.model.dropout = "timm:test_resnet", False, 0.0
    cfg.data.clip_len, cfg.data.size, cfg.data.batch_size, cfg.data.workers = 2, 32, 2, 0
    cfg.epochs, cfg.progress, cfg.tensorboard = 1, False, False
    for k, v in kw.items():
        setattr(cfg, k, v)
    return cfg


class ClipSet(Dataset):
    """In-memory uint8 clips with the keys the harness's collate gives (rgb, label, index, path)."""

    def __init__(self, n, classes=3, frames=2, size=32, views=None):
        g = torch.Generator().manual_seed(n)
        shape = ((views,) if views else ()) + (3, frames, size, size)
        self.x = torch.randint(0, 256, (n, *shape), generator=g, dtype=torch.uint8)
        self.y = [i % classes for i in range(n)]

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return {"rgb": self.x[i], "label": self.y[i], "index": i, "path": f"v{i}.mp4"}


# ------------------------------------------------------------------ collectives

def test_collectives_go_to_the_process_groups_device():
    assert D.collective_device("nccl", 3) == torch.device("cuda", 3)  # nccl rejects CPU tensors
    assert D.collective_device("gloo", 3) == torch.device("cpu")
    assert D.collective_device("cpu:gloo,cuda:nccl", 1) == torch.device("cpu")
    one = D.World()
    t = torch.tensor([1.0, 2.0])
    assert D.all_reduce_sum(t, one) is t and D.any_rank(True, one) and not D.any_rank(False, one)


def test_a_rank_without_a_gpu_is_named(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(RuntimeError, match="local rank 1 has no GPU: 1 visible"):
        D.init_world("cuda")


# ------------------------------------------------------------------ host syncs

class SyncCounter:
    """Counts host reads of tensor values made while training (``.item()``, ``.cpu()``, ``.tolist()``,
    ``.numpy()``, ``bool``/``int``/``float``), except on the loader's own host tensors (collated batches)."""

    METHODS = ("item", "cpu", "tolist", "numpy", "__bool__", "__int__", "__float__")

    def __init__(self, monkeypatch):
        self.count, self.host = 0, {}
        for name in self.METHODS:
            original = getattr(torch.Tensor, name)
            monkeypatch.setattr(torch.Tensor, name, self._wrap(original))

    def _wrap(self, original):
        def counted(t, *a, **k):
            if id(t) not in self.host:
                self.count += 1
            return original(t, *a, **k)
        return counted

    def collate(self, batch):
        out = collate_skip_corrupt(batch)
        self.host.update({id(v): v for v in out.values() if isinstance(v, torch.Tensor)})
        return out


def syncs_of_one_epoch(tmp_path, monkeypatch, n, log_every, **kw):
    cfg = tiny_cfg(tmp_path / f"n{n}", log_every=log_every, **kw)
    data = ClipSet(n)
    counter = SyncCounter(monkeypatch)
    L.train(cfg, data, None, 3, collate_fn=counter.collate, world=D.World())
    monkeypatch.undo()
    return counter.count


def test_training_step_syncs_once_per_logging_interval(tmp_path, monkeypatch):
    """8 more micro-batches with log_every=4 may add 2 host syncs, not 4-5 per step (as before)."""
    short = syncs_of_one_epoch(tmp_path, monkeypatch, 8, 4)  # 4 micro-batches of 2
    long = syncs_of_one_epoch(tmp_path, monkeypatch, 24, 4)  # 12 micro-batches
    assert long - short <= 2, (short, long)
    assert short <= 8, short  # the epoch's end: loss check, totals, checkpoint's finite-weights check


def test_evaluation_syncs_once_not_per_video(tmp_path, monkeypatch):
    cfg = tiny_cfg(tmp_path)
    torch.manual_seed(0)
    model = build_model(cfg, 3)
    counts = []
    for n in (4, 12):
        counter = SyncCounter(monkeypatch)
        loader, _ = L.make_loader(ClipSet(n, views=2), D.World(), cfg, False, counter.collate, 2)
        metrics, preds = L.evaluate(model, loader, cfg, D.World())
        monkeypatch.undo()
        counts.append(counter.count)
        assert metrics["num_videos"] == n and preds["logits"].shape == (n, 3)
    assert counts[1] == counts[0], counts


def test_multi_view_evaluation_runs_views_in_chunks():
    seen = []

    class PerClip(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(3, 4))

        def forward(self, x):
            seen.append(x.shape[0])
            return x.float().mean((2, 3, 4)) @ self.w

    model = PerClip()
    x = torch.randint(0, 256, (2, 6, 3, 2, 4, 4), dtype=torch.uint8)  # 2 videos x 6 views
    chunked = L.forward_views(model, x, max_clips=4)
    assert seen == [4, 4, 4]
    whole = L.forward_views(model, x)
    assert seen[-1] == 12
    torch.testing.assert_close(chunked, whole)
    torch.testing.assert_close(whole, L.to_model_input(x.flatten(0, 1), False).mean((2, 3, 4)).matmul(model.w)
                               .view(2, 6, 4).mean(1))


# ------------------------------------------------------------------ loader

def test_loader_defaults_feed_a_gpu(tmp_path, monkeypatch):
    assert TrainConfig().data.workers is None
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(32)), raising=False)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert L.default_workers() == 7
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    assert L.default_workers() == 16
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert L.default_workers() == 1
    cfg = tiny_cfg(tmp_path)
    cfg.data.workers = 1
    loader, _ = L.make_loader(ClipSet(4), D.World(device=torch.device("cuda", 0)), cfg, True, None, 2)
    assert loader.persistent_workers and loader.pin_memory and loader.num_workers == 1


def test_rgb_travels_as_uint8_and_is_scaled_on_the_device(tmp_path):
    from zoo.data import transforms as T
    from zoo.train.data import test_transform, train_transform
    cfg = tiny_cfg(tmp_path)
    clip = {"rgb": torch.randint(0, 256, (3, 2, 40, 48), dtype=torch.uint8),
            "flow": torch.randn(2, 2, 40, 48) * 30}
    for transform in (train_transform(cfg), test_transform(cfg)):
        out = transform(clip, generator=torch.Generator().manual_seed(0))
        assert out["rgb"].dtype == torch.uint8  # 1 byte per value to the device, not 4
        assert out["flow"].dtype == torch.float32 and out["flow"].abs().max() <= 1
    u8 = torch.arange(256, dtype=torch.uint8).view(1, 1, 1, 16, 16).expand(1, 3, 2, 16, 16)
    torch.testing.assert_close(L.to_model_input(u8, channels_last=True), T.scale_rgb(u8), rtol=0, atol=1e-6)
    assert L.to_model_input(u8, channels_last=True).is_contiguous(memory_format=torch.channels_last_3d)


def test_persistent_workers_see_each_new_epoch():
    class Noise(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return torch.rand(1)

    world, cfg = D.World(), TrainConfig()
    draws = {}
    for workers in (0, 1):
        cfg.data.workers = workers
        seeded = L.SeededSamples(Noise(), seed=5)
        loader, sampler = L.make_loader(seeded, world, cfg, True, None, 2, with_epoch=True)
        for epoch in (0, 1):
            sampler.set_epoch(epoch)
            draws[workers, epoch] = torch.cat(list(loader))
    assert not torch.equal(draws[1, 0], draws[1, 1])  # the workers saw the new epoch
    assert torch.equal(draws[0, 1], draws[1, 1]) and torch.equal(draws[0, 0], draws[1, 0])


# ------------------------------------------------------------------ determinism, seeds, resume

@pytest.fixture
def restore_backends():
    yield
    torch.use_deterministic_algorithms(False)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = False


def test_deterministic_mode_is_usable_on_cuda(monkeypatch, restore_backends):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    configure_backends(True, cuda=True)
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.is_deterministic_algorithms_warn_only_enabled()  # avg_pool3d backward has no CUDA kernel
    assert not torch.backends.cudnn.benchmark and torch.backends.cudnn.deterministic
    configure_backends(True, cuda=False)
    assert not torch.is_deterministic_algorithms_warn_only_enabled()  # the CPU is strict
    configure_backends(False, cuda=True)
    assert torch.backends.cudnn.benchmark and not torch.are_deterministic_algorithms_enabled()


def test_ranks_draw_different_dropout_masks():
    masks = []
    for rank in (0, 1):
        seed_all(rank_seed(7, rank))
        masks.append(nn.functional.dropout(torch.ones(64), 0.5))
    assert rank_seed(7, 0) == 7 and not torch.equal(*masks)


def test_resume_restores_each_rank_or_reseeds_when_the_count_changed():
    states = []
    for rank in (0, 1):
        seed_all(100 + rank)
        states.append(rng_state())
    saved = pickle.loads(pickle.dumps({"world_size": 2, "ranks": states}))
    expected = {}
    for rank in (0, 1):
        set_rng_state(states[rank])
        expected[rank] = torch.rand(3)
    for rank in (0, 1):  # the same number of processes: exact
        assert restore_rank_rng(saved, rank=rank, world_size=2, seed=7, step=10)
        assert torch.equal(torch.rand(3), expected[rank])
    draws = []  # 2 processes -> 1 or 4: re-seeded per rank from (seed, rank, step)
    for rank, world in ((0, 1), (0, 4), (3, 4)):
        assert not restore_rank_rng(saved, rank=rank, world_size=world, seed=7, step=10)
        draws.append(torch.rand(3))
    assert not torch.equal(draws[1], draws[2])


def test_checkpoint_loads_without_unpickling_code(tmp_path):
    model = nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    seed_all(3)
    rng = {"world_size": 1, "ranks": [rng_state()]}
    path = save_checkpoint(tmp_path / "last.pt", model=model, optimizer=opt, scheduler=sched, scaler=None,
                           epoch=1, step_in_epoch=2, global_step=3, config={"a": [1, 2]}, metrics={"x": 1.5},
                           rng=rng)
    expected = torch.rand(2)
    state = load_checkpoint(path)  # weights_only=True inside
    assert state["global_step"] == 3 and torch.equal(state["model"]["weight"], model.weight)
    assert restore_rank_rng(state["rng"], rank=0, world_size=1, seed=0, step=0)
    assert torch.equal(torch.rand(2), expected)
    weights, meta, src = load_run_weights(tmp_path)
    assert src.name == "last.safetensors" and meta["epoch"] == 1 and meta["metrics"] == {"x": 1.5}
    assert torch.equal(weights["bias"], model.bias)


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_a_shared_run_folder_cannot_execute_code(tmp_path):
    from zoo.cli.main import main
    run = tmp_path / "shared_run"
    run.mkdir()
    marker = tmp_path / "pwned"
    (run / "config.json").write_text(json.dumps(tiny_cfg(tmp_path).to_dict()))
    torch.save({"format": "quovadis.train/1", "model": _Payload(marker)}, run / "last.pt")
    with pytest.raises(ValueError, match="not loaded"):
        load_run_weights(run)
    with pytest.raises(ValueError, match="not loaded"):
        load_checkpoint(run / "last.pt")
    assert main(["evaluate", "--run", str(run)]) == 2
    assert not marker.exists()


# ------------------------------------------------------------------ models

def tiny_video_model():
    net2d = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5))
    return inflate.inflate(net2d, time_kernel=3).eval()


def run_in_threads(models, inputs, first_inflated):
    """Call ``models[k](inputs[k])`` in one thread each; both threads set their batch size before either
    passes the first inflated layer (the interleaving that mixed clips up)."""
    gate = threading.Barrier(len(models), timeout=30)
    for layer in {id(first_inflated(m)): first_inflated(m) for m in models}.values():
        layer.register_forward_pre_hook(lambda mod, args: None if gate.wait() is None else None)
    outs, errors = [None] * len(models), []

    def work(k):
        try:
            with torch.no_grad():
                outs[k] = models[k](inputs[k])
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(models))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return outs


def _first_inflated(model):
    return next(m for m in model.modules() if type(m).__name__ == "InflatedConv")


def test_inflated_model_is_safe_under_threads_and_data_parallel_replicas():
    model = tiny_video_model()
    a, b = torch.randn(1, 3, 4, 8, 8), torch.randn(2, 3, 4, 8, 8)
    with torch.no_grad():
        ref_a, ref_b = model(a), model(b)
    out = run_in_threads([model, model], [a, b], _first_inflated)  # two threads, one model
    torch.testing.assert_close(out[0], ref_a)
    torch.testing.assert_close(out[1], ref_b)
    replicas = [model._replicate_for_data_parallel() for _ in range(2)]  # what nn.DataParallel runs
    assert replicas[0]._clip is replicas[1]._clip  # DataParallel's shallow copy shares the state...
    out = run_in_threads(replicas, [a, b], _first_inflated)
    torch.testing.assert_close(out[0], ref_a)  # ...which is per thread
    torch.testing.assert_close(out[1], ref_b)


@pytest.mark.parametrize("name", zoo.list())
def test_every_zoo_entry_fine_tunes_with_a_new_head(name, tmp_path):
    entry = zoo.info(name)
    cfg = tiny_cfg(tmp_path)
    cfg.model.name, cfg.model.dropout = name, 0.3
    cfg.data.modality = "flow" if entry.modality == "flow" else "rgb"
    if entry.arch == "two_stream_i3d":
        with pytest.raises(ValueError, match="two-stream: train each stream"):
            build_model(cfg, 5)
        return
    torch.manual_seed(0)
    model = build_model(cfg, 5)
    model.train()
    if entry.arch == "inception_i3d":  # the head on a Mixed_5c-shaped map (the backbone is tested elsewhere)
        assert model.dropout.p == 0.3 and model.in_channels == entry.in_channels
        logits = model.logits(torch.randn(2, 1024, 2, 7, 7))
    else:
        logits = model(torch.randn(2, 3, 8, 32, 32))
    assert logits.shape == (2, 5)
    nn.functional.cross_entropy(logits, torch.tensor([0, 4])).backward()
    head = [p for p in model.parameters() if p.grad is not None and p.shape[0] == 5]
    assert head and all(torch.isfinite(p.grad).all() for p in head)


def test_torch_floor_has_the_apis_the_harness_uses():
    import tomllib
    from packaging.requirements import Requirement
    from packaging.version import Version
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    torch_req = next(Requirement(d) for d in deps if Requirement(d).name == "torch")
    floor = min(Version(s.version) for s in torch_req.specifier if s.operator == ">=")
    assert floor >= Version("2.3"), "torch.amp.GradScaler(device) and init_process_group(device_id) need torch 2.3"
