"""The training loop: one process, or one per GPU/CPU worker under ``torchrun``; resumable to the batch."""
from __future__ import annotations

import contextlib
import json
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Sampler
from torch.utils.data.distributed import DistributedSampler

from zoo.data.wait_clock import WaitClock
from zoo.data.workers import usable_cores
from zoo.train.build import (apply_finetune_mode, build_model, build_optimizer, build_scheduler, frozen_norms,
                    set_train_mode)
from zoo.train.checkpoint import BEST_WEIGHTS, LAST, load_checkpoint, save_checkpoint, save_weights
from zoo.train.config import TrainConfig
from zoo.train.distributed import (World, all_gather_objects, all_reduce_sum, any_rank, barrier, init_world,
                          local_world_size, shutdown)
from zoo.train.reproducibility import configure_backends, rank_seed, restore_rank_rng, rng_state, seed_all
from zoo.train.logs import RunLog
from zoo.train.precise_bn import recompute_bn_stats
from zoo.train.metrics import save_confusion_png, summarize


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class SeededSamples(Dataset):
    """Each sample's augmentation randomness depends only on (seed, epoch, index), so a resumed run draws
    exactly what an uninterrupted one would, whatever worker or position the sample lands on. The epoch
    travels with the index (``dataset[(epoch, index)]``, from :class:`ResumableSampler`), so persistent
    loader workers, which hold their own copy of this object, see each new epoch."""

    def __init__(self, dataset: Dataset, seed: int):
        self.dataset, self.seed, self.epoch = dataset, seed, 0

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, key):
        epoch, index = key if isinstance(key, tuple) else (self.epoch, key)
        s = (self.seed * 1_000_003 + epoch * 100_003 + int(index)) % (2 ** 62)
        py, npy = random.getstate(), np.random.get_state()
        try:
            with torch.random.fork_rng(devices=[]):
                random.seed(s), np.random.seed(s % 2 ** 32), torch.manual_seed(s)
                return self.dataset[index]
        finally:
            random.setstate(py), np.random.set_state(npy)


class ResumableSampler(Sampler):
    """A DistributedSampler (also for one process) that can start an epoch at a given batch; with
    ``with_epoch`` it yields ``(epoch, index)`` pairs for :class:`SeededSamples`."""

    def __init__(self, n: int, world: World, seed: int, shuffle: bool, batch_size: int, with_epoch: bool = False):
        self.base = DistributedSampler(range(n), num_replicas=world.world_size, rank=world.rank, shuffle=shuffle,
                                       seed=seed, drop_last=False)
        self.batch_size, self.start_batch, self.epoch, self.with_epoch = batch_size, 0, 0, with_epoch

    def set_epoch(self, epoch: int, start_batch: int = 0):
        self.base.set_epoch(epoch)
        self.epoch, self.start_batch = epoch, start_batch

    def __iter__(self):
        indices = list(self.base)[self.start_batch * self.batch_size:]
        return iter([(self.epoch, i) for i in indices] if self.with_epoch else indices)

    def __len__(self):
        return max(0, len(self.base) - self.start_batch * self.batch_size)


@dataclass
class Batch:
    x: torch.Tensor | None  # None when every sample of the batch was a corrupt video
    y: torch.Tensor  # labels on the device
    labels: torch.Tensor  # the same on the CPU (no device sync to read them)
    index: torch.Tensor
    paths: list
    skipped: int


def to_batch(raw, modality: str, device: torch.device) -> Batch:
    """A collated batch with ``x`` and ``y`` copied to ``device`` (asynchronously from pinned memory);
    ``x`` keeps the loader's dtype (uint8 RGB): :func:`to_model_input` scales it on the device."""
    skipped = len(raw.get("skipped", ())) if isinstance(raw, dict) else 0
    if modality not in raw or len(raw["label"]) == 0:
        return Batch(None, torch.empty(0, dtype=torch.long), torch.empty(0, dtype=torch.long), torch.empty(0), [],
                     skipped)
    labels = torch.as_tensor(raw["label"]).long()
    return Batch(raw[modality].to(device, non_blocking=True), labels.to(device, non_blocking=True), labels,
                 torch.as_tensor(raw.get("index", [])), list(raw.get("path", [])), skipped)


def to_model_input(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """uint8 RGB -> float in [-1, 1] (on whatever device ``x`` is); channels-last-3d when configured."""
    if x.dtype == torch.uint8:
        x = x.float().div_(127.5).sub_(1.0)
    if channels_last and x.dim() == 5:
        x = x.contiguous(memory_format=torch.channels_last_3d)
    return x


def _input_of(raw, cfg: TrainConfig, world: World):
    """A collated batch -> the model's input on the device (None when every sample was corrupt)."""
    x = to_batch(raw, cfg.data.modality, world.device).x
    return None if x is None else to_model_input(x, cfg.channels_last)


def _autocast(cfg: TrainConfig, device: torch.device):
    if cfg.precision == "fp32":
        return contextlib.nullcontext()
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[cfg.precision]
    return torch.autocast(device.type, dtype=dtype)


def forward_views(model, x: torch.Tensor, channels_last: bool = False, max_clips: int | None = None) -> torch.Tensor:
    """``(B, C, T, H, W)`` or multi-view ``(B, V, C, T, H, W)`` -> logits ``(B, K)`` averaged over views.
    The ``B * V`` views go through the model ``max_clips`` at a time (all at once when None)."""
    if x.dim() == 6:
        b, v = x.shape[:2]
        views = x.flatten(0, 1)
        chunks = views.split(max_clips) if max_clips else (views,)
        logits = torch.cat([model(to_model_input(c, channels_last)).float() for c in chunks])
        return logits.view(b, v, -1).mean(1)
    return model(to_model_input(x, channels_last)).float()


def default_workers() -> int:
    """Loader workers per rank: this node's usable cores shared among its ranks, one left for the rank's
    main process, at most 16."""
    return max(1, min(16, usable_cores() // max(1, local_world_size()) - 1))


def make_loader(dataset, world, cfg, shuffle, collate_fn, batch_size, with_epoch=False):
    """A loader over this rank's share: persistent workers (not restarted each epoch or evaluation),
    pinned memory on CUDA, and a :class:`ResumableSampler`."""
    workers = default_workers() if cfg.data.workers is None else int(cfg.data.workers)
    sampler = ResumableSampler(len(dataset), world, cfg.seed, shuffle, batch_size, with_epoch)
    extra = {"persistent_workers": True} if workers > 0 else {}
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
                        collate_fn=collate_fn, drop_last=shuffle, pin_memory=world.device.type == "cuda", **extra)
    return loader, sampler


@torch.no_grad()
def evaluate(model, loader, cfg: TrainConfig, world: World, class_names=None, max_clips: int | None = None
             ) -> tuple[dict, dict]:
    """Top-1/top-5/mean class accuracy and loss over every video (multi-view averaged), gathered across ranks
    with the sampler's padding duplicates removed. Logits stay on the device until one copy at the end;
    views go through the model ``max_clips`` at a time (default ``cfg.data.batch_size``). Pass the bare
    model, not DDP: evaluation runs no collective per batch, so ranks may hold different batch counts."""
    model.eval()
    max_clips = max_clips or cfg.data.batch_size
    parts, labels, indices, paths, skipped = [], [], [], [], 0
    for raw in loader:
        batch = to_batch(raw, cfg.data.modality, world.device)
        skipped += batch.skipped
        if batch.x is None:
            continue
        with _autocast(cfg, world.device):
            parts.append(forward_views(model, batch.x, cfg.channels_last, max_clips))
        k = len(batch.labels)
        labels += batch.labels.tolist()
        indices += batch.index.tolist() if len(batch.index) else list(range(len(indices), len(indices) + k))
        paths += batch.paths or [""] * k
    logits = torch.cat(parts).cpu() if parts else torch.zeros(0, 0)  # the one device sync
    unique = {}
    for idx, pth, lab, lg in all_gather_objects((indices, paths, labels, logits), world):
        for j, i in enumerate(idx):  # DistributedSampler pads with repeats: keep one per video
            unique.setdefault(i, (pth[j], lab[j], lg[j]))
    order = sorted(unique)
    preds = {"paths": [unique[i][0] for i in order], "labels": torch.tensor([unique[i][1] for i in order],
                                                                             dtype=torch.long),
             "logits": torch.stack([unique[i][2] for i in order]) if order else torch.zeros(0, 1)}
    metrics = summarize(preds["logits"], preds["labels"], class_names) if order else {}
    metrics["loss"] = F.cross_entropy(preds["logits"], preds["labels"]).item() if order else float("nan")
    metrics["skipped"] = int(all_reduce_sum(torch.tensor([skipped]), world)[0])
    return metrics, preds


def _wants_cuda(cfg: TrainConfig, world: World | None) -> bool:
    if world is not None:
        return world.device.type == "cuda"
    return cfg.device.startswith("cuda") or (cfg.device == "auto" and torch.cuda.is_available())


def train(cfg: TrainConfig, train_set, val_set, num_classes: int, class_names=None, *, resume=None,
          collate_fn=None, world: World | None = None) -> dict:
    """Train ``cfg`` on the given datasets; returns the final metrics. See ``quovadis train --help``.

    Under torchrun (``world`` None and torchrun's variables set) it starts the process group and ends it
    on return. The step loop syncs the host with the device once per ``cfg.log_every`` micro-batches (the
    non-finite-loss check and the progress bar), plus at checkpoints and at the end of each epoch."""
    configure_backends(cfg.deterministic, cuda=_wants_cuda(cfg, world))  # before the first CUDA call
    own_world = world is None
    world = world or init_world(cfg.device)
    try:
        return _train(cfg, train_set, val_set, num_classes, class_names, resume, collate_fn, world)
    finally:
        if own_world:
            shutdown(world)


def _train(cfg, train_set, val_set, num_classes, class_names, resume, collate_fn, world: World) -> dict:
    out = Path(cfg.out)
    if world.is_main:
        out.mkdir(parents=True, exist_ok=True)
    start_epoch, start_batch, global_step, state = 0, 0, 0, None
    if resume:
        path = out / LAST if resume == "auto" else Path(resume)
        path = path / LAST if path.is_dir() else path
        state = load_checkpoint(path)
        start_epoch, start_batch, global_step = state["epoch"], state["step_in_epoch"], state["global_step"]
    elif (out / LAST).exists():
        raise FileExistsError(f"{out} already holds a run ({out / LAST}). Pass --resume to continue it, or choose "
                              "another --out; a checkpoint is never picked up silently.")
    seed_all(cfg.seed)  # the same initial model on every rank (DDP broadcasts rank 0's anyway)

    model = build_model(cfg, num_classes)
    apply_finetune_mode(model, cfg.finetune)
    frozen = frozen_norms(model, cfg.freeze_bn, cfg.finetune == "fixed")
    params = [p for p in model.parameters() if p.requires_grad]
    model.to(world.device)
    if cfg.channels_last:
        model = model.to_channels_last() if hasattr(model, "to_channels_last") else model.to(
            memory_format=torch.channels_last_3d)
    seeded = SeededSamples(train_set, cfg.seed)
    loader, sampler = make_loader(seeded, world, cfg, True, collate_fn, cfg.data.batch_size, with_epoch=True)
    val_loader, _ = make_loader(val_set, world, cfg, False, collate_fn, cfg.data.batch_size) if val_set else (None, None)
    steps_per_epoch = max(1, len(loader) // cfg.accumulate)
    optimizer = build_optimizer(cfg, params)
    scheduler = build_scheduler(cfg, optimizer, steps_per_epoch)
    scaler = torch.amp.GradScaler(world.device.type) if cfg.precision == "fp16" else None
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and state["scaler"]:
            scaler.load_state_dict(state["scaler"])
        restore_rank_rng(state["rng"], rank=world.rank, world_size=world.world_size, seed=cfg.seed,
                         step=global_step, device=world.device)
    else:
        seed_all(rank_seed(cfg.seed, world.rank))  # each rank its own dropout masks
    net = model
    if world.distributed:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[world.local_rank] if world.device.type == "cuda" else None)
    log = RunLog(out, enabled=world.is_main, tensorboard=cfg.tensorboard)
    if world.is_main:
        (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
    best = max((r.get("val_top1") or 0 for r in log.rows), default=0.0)
    final: dict = {}
    config_dict = cfg.to_dict()
    log_every = max(1, int(cfg.log_every))

    def checkpoint(epoch, step_in_epoch, metrics):
        finite = torch.stack([torch.isfinite(p).all() for p in model.parameters()]).all()
        if not bool(finite):  # never overwrite a good checkpoint (weights are equal on every rank)
            raise TrainingDiverged(f"the weights became non-finite at epoch {epoch + 1}; stopped without "
                                   f"overwriting {out / LAST}. Lower optim.lr or use precision=fp32.")
        rng = {"world_size": world.world_size, "ranks": all_gather_objects(rng_state(world.device), world)}
        if world.is_main:
            save_checkpoint(out / LAST, model=model, optimizer=optimizer, scheduler=scheduler, scaler=scaler,
                            epoch=epoch, step_in_epoch=step_in_epoch, global_step=global_step,
                            config=config_dict, metrics=metrics, rng=rng)
        barrier(world)

    try:
        for epoch in range(start_epoch, cfg.epochs):
            first = start_batch if epoch == start_epoch else 0
            sampler.set_epoch(epoch, first)
            seeded.epoch = epoch
            set_train_mode(model, True, frozen)
            t0, seen, skipped, checked = time.perf_counter(), 0, 0, first
            clock = WaitClock()  # seconds this process spends waiting for the loader (the device idles then)
            stats = torch.zeros(3, device=world.device)  # loss sum, correct, non-finite losses: on the device

            def sync_stats(upto: int) -> list:
                """The one host sync of a logging interval: sums over ranks; stops a diverged run."""
                nonlocal checked
                totals = all_reduce_sum(stats, world).tolist()
                if totals[2] > 0:
                    raise TrainingDiverged(
                        f"loss became NaN or infinite at epoch {epoch + 1}, within batches {checked + 1}-{upto} "
                        f"(checked every log_every={log_every}); stopped. The last good checkpoint is kept at "
                        f"{out / LAST}. Lower optim.lr, add warmup, or use precision=fp32, then --resume "
                        f"{out / LAST}.")
                checked = upto
                return totals

            progress = _progress(loader, world, cfg, epoch)
            optimizer.zero_grad(set_to_none=True)
            done = first
            for i, raw in enumerate(clock.wrap(progress), start=first):
                done = i + 1
                batch = to_batch(raw, cfg.data.modality, world.device)
                skipped += batch.skipped
                if not any_rank(batch.x is None, world):  # all ranks skip an empty batch together
                    stepping = (i + 1) % cfg.accumulate == 0
                    sync = contextlib.nullcontext() if stepping or not world.distributed else net.no_sync()
                    with sync:  # micro-batches that do not step accumulate locally, without an all-reduce
                        with _autocast(cfg, world.device):
                            logits = net(to_model_input(batch.x, cfg.channels_last)).float()
                        loss = F.cross_entropy(logits, batch.y)
                        (scaler.scale(loss / cfg.accumulate) if scaler else loss / cfg.accumulate).backward()
                    with torch.no_grad():
                        stats += torch.stack([loss.detach() * len(batch.y),
                                              (logits.argmax(-1) == batch.y).sum().float(),
                                              (~torch.isfinite(loss.detach())).float()])
                    seen += len(batch.y)
                    if stepping:
                        if scaler:
                            scaler.step(optimizer)
                            scaler.update()
                        else:
                            optimizer.step()
                        optimizer.zero_grad(set_to_none=True)
                        scheduler.step()
                        global_step += 1
                        if cfg.checkpoint_every and global_step % cfg.checkpoint_every == 0:
                            sync_stats(i + 1)
                            checkpoint(epoch, i + 1, {})
                if (i + 1) % log_every == 0:
                    totals = sync_stats(i + 1)
                    if hasattr(progress, "set_postfix"):
                        dt = time.perf_counter() - t0
                        progress.set_postfix(loss=f"{totals[0] / max(1, seen * world.world_size):.3f}",
                                             lr=f"{scheduler.get_last_lr()[0]:.2e}",
                                             clips_s=f"{seen * world.world_size / max(dt, 1e-9):.1f}")
            loss_sum, correct, _ = sync_stats(done)
            n, skipped = all_reduce_sum(torch.tensor([seen, skipped], dtype=torch.float64), world).tolist()
            seconds = time.perf_counter() - t0
            row = {"epoch": epoch + 1, "train_loss": loss_sum / max(n, 1), "train_top1": 100 * correct / max(n, 1),
                   "lr": scheduler.get_last_lr()[0], "clips_per_s": n / max(seconds, 1e-9), "skipped": int(skipped),
                   "data_wait": clock.waited / max(seconds, 1e-9)}  # this rank's fraction of the epoch spent on data
            if world.device.type == "cuda":
                row["peak_memory_gib"] = torch.cuda.max_memory_allocated(world.device) / 2 ** 30
            if val_loader is not None and ((epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs):
                if cfg.precise_bn:  # BatchNorm statistics of the current weights (zoo.train.precise_bn)
                    with _autocast(cfg, world.device):
                        recompute_bn_stats(model, loader, lambda raw: _input_of(raw, cfg, world), cfg.precise_bn,
                                           world, exclude=frozen)
                metrics, preds = evaluate(model, val_loader, cfg, world, class_names)
                row.update(val_loss=metrics["loss"], val_top1=metrics.get("top1"), val_top5=metrics.get("top5"),
                           val_mean_class_acc=metrics.get("mean_class_acc"))
                row["skipped"] += metrics["skipped"]
                final = metrics
                if world.is_main:
                    torch.save(preds, out / "val_predictions.pt")
            checkpoint(epoch + 1, 0, row)
            chooses = getattr(val_set, "selects_best", False)  # never on the test split (zoo.train.splits)
            if chooses and row.get("val_top1") is not None and row["val_top1"] >= best and world.is_main:
                best = row["val_top1"]
                save_weights(out / BEST_WEIGHTS, model, epoch=epoch + 1, config=config_dict, metrics=row)
            log.epoch(row)
            if world.is_main:
                print(_summary_line(row, cfg.epochs, seconds), flush=True)
        if world.is_main:
            log.curves_png()
            if final.get("confusion") is not None:
                save_confusion_png(final["confusion"], out / "confusion.png", class_names)
    finally:
        log.close()
    final = {k: v for k, v in final.items() if k != "confusion"}
    final["model"] = model
    return final


def _progress(loader, world, cfg, epoch):
    if not (cfg.progress and world.is_main):
        return loader
    from tqdm.auto import tqdm
    return tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch", leave=False, dynamic_ncols=True)


def _summary_line(row: dict, epochs: int, seconds: float) -> str:
    text = (f"epoch {int(row['epoch'])}/{epochs}  train loss {row['train_loss']:.4f} top1 {row['train_top1']:.1f}%")
    if row.get("val_top1") is not None:
        text += (f"  val loss {row['val_loss']:.4f} top1 {row['val_top1']:.1f}% top5 {row['val_top5']:.1f}% "
                 f"mean-class {row['val_mean_class_acc']:.1f}%")
    text += f"  lr {row['lr']:.2e}  {row['clips_per_s']:.1f} clips/s  [{seconds:.1f} s]"
    if row.get("data_wait") is not None:
        text += f"  data wait {row['data_wait']:.0%}"
    if row.get("skipped"):
        text += f"  skipped {row['skipped']} corrupt video(s)"
    return text
