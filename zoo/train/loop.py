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

from .build import (apply_finetune_mode, build_model, build_optimizer, build_scheduler, frozen_norms,
                    set_train_mode)
from .checkpoint import BEST, LAST, load_checkpoint, save_checkpoint, set_rng_state
from .config import TrainConfig
from .distributed import World, all_gather_objects, all_reduce_sum, barrier, init_world, shutdown
from .logs import RunLog
from .metrics import save_confusion_png, summarize


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class SeededSamples(Dataset):
    """Each sample's augmentation randomness depends only on (seed, epoch, index), so a resumed run draws
    exactly what an uninterrupted one would, whatever worker or position the sample lands on."""

    def __init__(self, dataset: Dataset, seed: int):
        self.dataset, self.seed, self.epoch = dataset, seed, 0

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        s = (self.seed * 1_000_003 + self.epoch * 100_003 + int(index)) % (2 ** 62)
        py, npy = random.getstate(), np.random.get_state()
        try:
            with torch.random.fork_rng(devices=[]):
                random.seed(s), np.random.seed(s % 2 ** 32), torch.manual_seed(s)
                return self.dataset[index]
        finally:
            random.setstate(py), np.random.set_state(npy)


class ResumableSampler(Sampler):
    """A DistributedSampler (also for one process) that can start an epoch at a given batch."""

    def __init__(self, n: int, world: World, seed: int, shuffle: bool, batch_size: int):
        self.base = DistributedSampler(range(n), num_replicas=world.world_size, rank=world.rank, shuffle=shuffle,
                                       seed=seed, drop_last=False)
        self.batch_size, self.start_batch = batch_size, 0

    def set_epoch(self, epoch: int, start_batch: int = 0):
        self.base.set_epoch(epoch)
        self.start_batch = start_batch

    def __iter__(self):
        return iter(list(self.base)[self.start_batch * self.batch_size:])

    def __len__(self):
        return max(0, len(self.base) - self.start_batch * self.batch_size)


@dataclass
class Batch:
    x: torch.Tensor
    y: torch.Tensor
    index: torch.Tensor
    paths: list
    skipped: int


def to_batch(raw, modality: str, cfg: TrainConfig, device: torch.device) -> Batch:
    """A collated batch as tensors on ``device`` (channels-last when configured); ``x`` is empty when every
    sample of the batch was a corrupt video."""
    skipped = len(raw.get("skipped", ())) if isinstance(raw, dict) else 0
    if modality not in raw or len(raw["label"]) == 0:
        return Batch(torch.empty(0), torch.empty(0, dtype=torch.long), torch.empty(0), [], skipped)
    x = raw[modality].to(device, non_blocking=True)
    if cfg.channels_last and x.dim() == 5:
        x = x.contiguous(memory_format=torch.channels_last_3d)
    return Batch(x, torch.as_tensor(raw["label"]).long().to(device, non_blocking=True),
                 torch.as_tensor(raw.get("index", [])), list(raw.get("path", [])), skipped)


def _autocast(cfg: TrainConfig, device: torch.device):
    if cfg.precision == "fp32":
        return contextlib.nullcontext()
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[cfg.precision]
    return torch.autocast(device.type, dtype=dtype)


def _forward_views(model, x: torch.Tensor) -> torch.Tensor:
    """``(B, C, T, H, W)`` or multi-view ``(B, V, C, T, H, W)`` -> logits ``(B, K)`` averaged over views."""
    if x.dim() == 6:
        b, v = x.shape[:2]
        return model(x.flatten(0, 1)).float().view(b, v, -1).mean(1)
    return model(x).float()


def make_loader(dataset, world, cfg, shuffle, collate_fn, batch_size):
    sampler = ResumableSampler(len(dataset), world, cfg.seed, shuffle, batch_size)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=cfg.data.workers,
                        collate_fn=collate_fn, drop_last=shuffle, pin_memory=world.device.type == "cuda",
                        persistent_workers=False)
    return loader, sampler


@torch.no_grad()
def evaluate(model, loader, cfg: TrainConfig, world: World, class_names=None) -> tuple[dict, dict]:
    """Top-1/top-5/mean class accuracy over every video (multi-view averaged), gathered across ranks."""
    model.eval()
    rows, loss_sum, n, skipped = [], 0.0, 0, 0
    for raw in loader:
        batch = to_batch(raw, cfg.data.modality, cfg, world.device)
        skipped += batch.skipped
        if len(batch.y) == 0:
            continue
        with _autocast(cfg, world.device):
            logits = _forward_views(model, batch.x)
        loss_sum += F.cross_entropy(logits, batch.y, reduction="sum").item()
        n += len(batch.y)
        for i in range(len(batch.y)):
            rows.append((int(batch.index[i]) if len(batch.index) else len(rows), batch.paths[i] if batch.paths else "",
                         int(batch.y[i]), logits[i].cpu()))
    gathered = [r for part in all_gather_objects(rows, world) for r in part]
    unique = {}
    for idx, path, label, logit in gathered:  # DistributedSampler pads with repeats: keep one per video
        unique.setdefault(idx, (path, label, logit))
    order = sorted(unique)
    preds = {"paths": [unique[i][0] for i in order], "labels": torch.tensor([unique[i][1] for i in order]),
             "logits": torch.stack([unique[i][2] for i in order]) if order else torch.zeros(0, 1)}
    totals = all_reduce_sum(torch.tensor([loss_sum, float(n), float(skipped)]), world)
    metrics = summarize(preds["logits"], preds["labels"], class_names) if order else {}
    metrics["loss"] = (totals[0] / totals[1].clamp_min(1)).item()
    metrics["skipped"] = int(totals[2])
    return metrics, preds


def train(cfg: TrainConfig, train_set, val_set, num_classes: int, class_names=None, *, resume=None,
          collate_fn=None, world: World | None = None) -> dict:
    """Train ``cfg`` on the given datasets; returns the final metrics. See ``quovadis train --help``."""
    world = world or init_world(cfg.device)
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
    random.seed(cfg.seed), np.random.seed(cfg.seed), torch.manual_seed(cfg.seed)
    if cfg.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=False)
        torch.backends.cudnn.benchmark = False

    model = build_model(cfg, num_classes)
    apply_finetune_mode(model, cfg.finetune)
    frozen = frozen_norms(model, cfg.freeze_bn, cfg.finetune == "fixed")
    params = [p for p in model.parameters() if p.requires_grad]
    model.to(world.device)
    if cfg.channels_last:
        model = model.to_channels_last() if hasattr(model, "to_channels_last") else model.to(
            memory_format=torch.channels_last_3d)
    seeded = SeededSamples(train_set, cfg.seed)
    loader, sampler = make_loader(seeded, world, cfg, True, collate_fn, cfg.data.batch_size)
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
        set_rng_state(state["rng"])
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

    def checkpoint(epoch, step_in_epoch, metrics, name=LAST):
        if not all(torch.isfinite(p).all() for p in model.parameters()):  # never overwrite a good checkpoint
            raise TrainingDiverged(f"the weights became non-finite at epoch {epoch + 1}; stopped without "
                                   f"overwriting {out / LAST}. Lower optim.lr or use precision=fp32.")
        if world.is_main:
            save_checkpoint(out / name, model=model, optimizer=optimizer, scheduler=scheduler, scaler=scaler,
                            epoch=epoch, step_in_epoch=step_in_epoch, global_step=global_step,
                            config=config_dict, metrics=metrics)
        barrier(world)

    try:
        for epoch in range(start_epoch, cfg.epochs):
            first = start_batch if epoch == start_epoch else 0
            sampler.set_epoch(epoch, first)
            seeded.epoch = epoch
            set_train_mode(model, True, frozen)
            t0, seen, loss_sum, correct, skipped = time.perf_counter(), 0, 0.0, 0, 0
            progress = _progress(loader, world, cfg, epoch)
            optimizer.zero_grad(set_to_none=True)
            for i, raw in enumerate(progress, start=first):
                batch = to_batch(raw, cfg.data.modality, cfg, world.device)
                skipped += batch.skipped
                if len(batch.y) == 0:
                    continue
                x, y = batch.x, batch.y
                with _autocast(cfg, world.device):
                    logits = net(x).float()
                loss = F.cross_entropy(logits, y)
                bad = all_reduce_sum(torch.tensor([0.0 if torch.isfinite(loss) else 1.0]), world)
                if bad.item() > 0:
                    raise TrainingDiverged(
                        f"loss became {loss.item()} at epoch {epoch + 1}, batch {i + 1}; stopped. The last good "
                        f"checkpoint is kept at {out / LAST}. Lower optim.lr, add warmup, or use precision=fp32, "
                        f"then --resume {out / LAST}.")
                (scaler.scale(loss / cfg.accumulate) if scaler else loss / cfg.accumulate).backward()
                if (i + 1) % cfg.accumulate == 0:
                    if scaler:
                        scaler.step(optimizer)
                        scaler.update()
                    else:
                        optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
                    scheduler.step()
                    global_step += 1
                    if cfg.checkpoint_every and global_step % cfg.checkpoint_every == 0:
                        checkpoint(epoch, i + 1, {})
                seen += len(y)
                loss_sum += loss.item() * len(y)
                correct += int((logits.argmax(-1) == y).sum())
                if hasattr(progress, "set_postfix"):
                    dt = time.perf_counter() - t0
                    progress.set_postfix(loss=f"{loss.item():.3f}", lr=f"{scheduler.get_last_lr()[0]:.2e}",
                                         clips_s=f"{seen * world.world_size / max(dt, 1e-9):.1f}")
            totals = all_reduce_sum(torch.tensor([loss_sum, float(seen), float(correct), float(skipped)]), world)
            seconds = time.perf_counter() - t0
            row = {"epoch": epoch + 1, "train_loss": (totals[0] / totals[1].clamp_min(1)).item(),
                   "train_top1": (100 * totals[2] / totals[1].clamp_min(1)).item(), "lr": scheduler.get_last_lr()[0],
                   "clips_per_s": totals[1].item() / max(seconds, 1e-9), "skipped": int(totals[3])}
            if val_loader is not None and ((epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs):
                metrics, preds = evaluate(net, val_loader, cfg, world, class_names)
                row.update(val_loss=metrics["loss"], val_top1=metrics.get("top1"), val_top5=metrics.get("top5"),
                           val_mean_class_acc=metrics.get("mean_class_acc"))
                row["skipped"] += metrics["skipped"]
                final = metrics
                if world.is_main:
                    torch.save(preds, out / "val_predictions.pt")
            checkpoint(epoch + 1, 0, row)
            if row.get("val_top1") is not None and row["val_top1"] >= best and world.is_main:
                best = row["val_top1"]
                torch.save({"model": model.state_dict(), "config": config_dict, "metrics": row}, out / BEST)
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
    if row.get("skipped"):
        text += f"  skipped {row['skipped']} corrupt video(s)"
    return text
