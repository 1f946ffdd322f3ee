"""Training checkpoints, written atomically, and the weights files that others may safely open.

A run folder holds:

* ``last.pt``: everything needed to continue exactly where the run stopped (model, optimizer, scheduler,
  scaler, every rank's RNG states, position). It contains only tensors and plain Python values, and is
  read with ``torch.load(weights_only=True)``, which cannot execute code.
* ``last.safetensors`` / ``best.safetensors``: the model weights alone, with the epoch, config and
  metrics as metadata. ``quovadis evaluate`` reads these, so evaluating a run folder someone shared
  never unpickles anything from it.
"""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from inflate.atomic import atomic_path

LAST, BEST = "last.pt", "best.safetensors"
LAST_WEIGHTS, BEST_WEIGHTS = "last.safetensors", "best.safetensors"
FORMAT = "quovadis.train/1"


def _unwrap(model):
    return model.module if hasattr(model, "module") else model


def save_weights(path: Path, model, **metadata) -> Path:
    """The model's weights as safetensors (copied to the CPU, so tied tensors are stored twice and
    still load strictly), metadata as JSON strings."""
    tensors = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in _unwrap(model).state_dict().items()}
    meta = {"format": FORMAT, **{k: json.dumps(v, default=float) for k, v in metadata.items()}}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return path


def read_weights(path: Path) -> tuple[dict, dict]:
    """``(state_dict, metadata)`` of a weights file written by :func:`save_weights`; executes nothing."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = f.metadata() or {}
        tensors = load_file(str(path))
    except Exception as e:
        raise ValueError(f"{path} is not a readable safetensors file ({e}); it may be truncated — copy it again "
                         "or re-run the evaluation from the run's last.pt with --resume") from e
    meta = {k: (json.loads(v) if k != "format" else v) for k, v in raw.items()}
    return tensors, meta


def load_run_weights(run: Path, which: str = "last") -> tuple[dict, dict, Path]:
    """The model weights of a run folder: ``which`` "last" or "best" (``<which>.safetensors``). Older runs
    without it fall back to ``last.pt`` read with ``weights_only=True`` (never executing a pickle)."""
    run = Path(run)
    path = run / f"{which}.safetensors"
    if path.is_file():
        tensors, meta = read_weights(path)
        return tensors, meta, path
    legacy = run / (LAST if which == "last" else "best.pt")
    if not legacy.is_file():
        raise FileNotFoundError(f"{run} holds no {path.name} (nor {legacy.name}); is it a training run folder? "
                                f"Evaluate with the checkpoint it has, or train it first")
    payload = load_checkpoint(legacy, what="weights")
    return payload["model"], {k: payload.get(k) for k in ("epoch", "config", "metrics")}, legacy


def save_checkpoint(path: Path, *, model, optimizer, scheduler, scaler, epoch: int, step_in_epoch: int,
                    global_step: int, config: dict, metrics: dict, rng: dict) -> Path:
    """Write ``path`` (e.g. last.pt) and its weights beside it (last.safetensors), each atomically.
    ``epoch``/``step_in_epoch`` say where to resume: the next batch. ``rng``: every rank's RNG states
    (``{"world_size": N, "ranks": [...]}``)."""
    path = Path(path)
    payload = {
        "format": FORMAT,
        "model": _unwrap(model).state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "rng": rng,
        "epoch": epoch,
        "step_in_epoch": step_in_epoch,
        "global_step": global_step,
        "config": config,
        "metrics": metrics,
    }
    save_weights(path.with_suffix(".safetensors"), model, epoch=epoch, step_in_epoch=step_in_epoch,
                 global_step=global_step, config=config, metrics=metrics)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_checkpoint(path: Path, what: str = "checkpoint") -> dict:
    """A checkpoint from :func:`save_checkpoint`, read with ``weights_only=True`` (no code runs)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; --resume takes a checkpoint file or a run folder "
                                f"holding {LAST}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise ValueError(f"{path} holds objects other than tensors and plain values, so it is not loaded (a "
                         f"pickle can run code). If you wrote it with an older quovadis and trust it, convert it: "
                         f"torch.save(torch.load(p, weights_only=False)['model'], ...) — or use the run's "
                         f"{LAST_WEIGHTS}. ({str(e).splitlines()[0]})") from e
    except Exception as e:
        raise ValueError(f"{what} {path} cannot be read ({e}); it may be corrupt — resume from another "
                         "or start afresh") from e
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not a quovadis training checkpoint")
    return payload
