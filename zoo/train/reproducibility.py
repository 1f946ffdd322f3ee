"""Seeds, random-number states and the backend switches that decide whether a run is reproducible.

Seeds. The model is built under ``cfg.seed`` on every rank (DDP then broadcasts rank 0's weights anyway);
training then runs under :func:`rank_seed`, so each GPU draws its own dropout masks. Augmentation does not
use these generators: it depends only on (seed, epoch, sample) (``loop.SeededSamples``).

Checkpoints hold each rank's generator states (:func:`rng_state` gathered over ranks). A resume with the
same number of processes restores them exactly; with another number (say 8 GPUs, then 4) each rank is
re-seeded from ``(seed, rank, global_step)`` instead: the run continues correctly, but not bitwise as the
original would have.

Deterministic mode (``deterministic: true``, :func:`configure_backends`):

* ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` is set before the first CUDA call (cuBLAS reads it when it creates
  its handle; without it the Linear heads raise under deterministic algorithms);
* ``torch.use_deterministic_algorithms(True)``; on CUDA with ``warn_only=True``, because several ops
  of these models have no deterministic CUDA backward: ``avg_pool3d`` (I3D's logits pool),
  ``max_pool3d`` (I3D's pools), ``adaptive_avg_pool2d`` / ``max_pool2d`` (timm heads and stems), and
  ``index_add`` (the backward of inflated layers' replicate time padding). Those ops warn once and stay
  not bitwise reproducible on the GPU; everything else is. On the CPU every op is deterministic and a
  resumed run ends with bitwise identical weights (tested);
* ``cudnn.benchmark`` off and ``cudnn.deterministic`` on. Without deterministic mode ``cudnn.benchmark``
  is on (fixed clip shapes: the autotuner pays off after the first step).
"""
from __future__ import annotations

import os
import random
import warnings

import numpy as np
import torch

CUBLAS_WORKSPACE = ":4096:8"


def configure_backends(deterministic: bool, cuda: bool) -> None:
    """Set cuBLAS/cuDNN and torch's deterministic switches for a run; call before the first CUDA call."""
    if deterministic:
        if "CUBLAS_WORKSPACE_CONFIG" not in os.environ:
            if cuda and torch.cuda.is_initialized():
                warnings.warn("deterministic=true but CUDA was initialised before CUBLAS_WORKSPACE_CONFIG could "
                              f"be set; export CUBLAS_WORKSPACE_CONFIG={CUBLAS_WORKSPACE} before starting Python "
                              "for reproducible matrix products", RuntimeWarning, stacklevel=2)
            os.environ["CUBLAS_WORKSPACE_CONFIG"] = CUBLAS_WORKSPACE
        torch.use_deterministic_algorithms(True, warn_only=cuda)
    else:
        torch.use_deterministic_algorithms(False)
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cudnn.deterministic = deterministic


def rank_seed(seed: int, rank: int, step: int = 0) -> int:
    """The seed of ``rank`` (rank 0 at step 0 keeps ``seed``): distinct per rank and per resume step."""
    return (int(seed) + 1_000_003 * int(rank) + 7_919 * int(step)) % (2 ** 63)


def seed_all(seed: int) -> None:
    """Seed Python's, NumPy's and torch's (CPU and every CUDA device's) global generators."""
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


def rng_state(device: torch.device | None = None) -> dict:
    """This process's generator states, in types ``torch.load(weights_only=True)`` reads back."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": random.getstate(),
             "numpy": (kind, torch.from_numpy(np.asarray(keys).astype(np.int64)), int(pos), int(has_gauss),
                       float(cached)),
             "torch": torch.get_rng_state()}
    if device is not None and device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict, device: torch.device | None = None) -> None:
    random.setstate(_tuples(state["python"]))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    keys = keys.numpy() if isinstance(keys, torch.Tensor) else np.asarray(keys)
    np.random.set_state((kind, keys.astype(np.uint32), int(pos), int(has_gauss), float(cached)))
    torch.set_rng_state(state["torch"])
    if device is not None and device.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"], device)


def _tuples(x):
    return tuple(_tuples(v) for v in x) if isinstance(x, (list, tuple)) else x


def restore_rank_rng(saved: dict, *, rank: int, world_size: int, seed: int, step: int,
                     device: torch.device | None = None) -> bool:
    """Restore this rank's generators from a checkpoint's ``{"world_size", "ranks"}``; True when restored
    exactly, False when the process count changed and the rank was re-seeded from (seed, rank, step)."""
    if saved.get("world_size") == world_size and len(saved.get("ranks", ())) == world_size:
        set_rng_state(saved["ranks"][rank], device)
        return True
    seed_all(rank_seed(seed, rank, step))
    return False
