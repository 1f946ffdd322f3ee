"""Training checkpoints: everything needed to continue exactly where a run stopped, written atomically."""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from inflate.atomic import atomic_path

LAST, BEST = "last.pt", "best.pt"


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, *, model, optimizer, scheduler, scaler, epoch: int, step_in_epoch: int,
                    global_step: int, config: dict, metrics: dict) -> Path:
    """Write a checkpoint atomically. ``epoch``/``step_in_epoch`` say where to resume: the next batch."""
    net = model.module if hasattr(model, "module") else model
    payload = {
        "format": "quovadis.train/1",
        "model": net.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "rng": rng_state(),
        "epoch": epoch,
        "step_in_epoch": step_in_epoch,
        "global_step": global_step,
        "config": config,
        "metrics": metrics,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_checkpoint(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; --resume takes a checkpoint file or a run folder "
                                f"holding {LAST}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        raise ValueError(f"checkpoint {path} cannot be read ({e}); it may be corrupt — resume from another "
                         "or start afresh") from e
    if not isinstance(payload, dict) or payload.get("format") != "quovadis.train/1":
        raise ValueError(f"{path} is not a quovadis training checkpoint")
    return payload
