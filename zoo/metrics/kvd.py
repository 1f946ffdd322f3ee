"""Kernel Video Distance (Unterthiner et al. 2018): the unbiased MMD² between two sets of I3D embeddings
with the polynomial kernel ``k(x, y) = (x·y / d + 1)^3``, as clean-fid's KID computes it for images.

    >>> from zoo.metrics.kvd import kvd
    >>> result = kvd(real_features, fake_features)      # (N, 400) and (M, 400)
    >>> result.kvd, result.subsets, result.subset_size, result.seed

When both sets hold at most ``max_subset_size`` (1000) videos the estimate uses all pairs (one "subset",
the sets themselves). Above that it is the mean, over ``num_subsets`` (100) random subsets of
``m = min(N, M, max_subset_size)`` videos per side drawn without replacement (seeded), of the unbiased MMD²
of equal-size sets, as clean-fid's ``kernel_distance`` does. Computed in float64.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

MAX_SUBSET_SIZE = 1000
NUM_SUBSETS = 100


class KVDError(ValueError):
    """Too few videos or mismatched feature sizes for KVD."""


@dataclass
class KVDResult:
    kvd: float
    subsets: int            # 1 when all pairs were used
    subset_size: int | None  # None when all pairs were used
    seed: int | None

    def to_dict(self) -> dict:
        return {"kvd": self.kvd, "kvd_subsets": self.subsets, "kvd_subset_size": self.subset_size,
                "kvd_seed": self.seed}


def _kernel(a: torch.Tensor, b: torch.Tensor, d: int) -> torch.Tensor:
    return (a @ b.T / d + 1.0) ** 3


def mmd2_unbiased(x, y) -> float:
    """``1/(n(n-1)) sum_{i!=j} k(x_i, x_j) + 1/(m(m-1)) sum_{i!=j} k(y_i, y_j) - 2/(nm) sum k(x_i, y_j)``."""
    x = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    y = torch.as_tensor(np.asarray(y), dtype=torch.float64)
    n, m, d = x.shape[0], y.shape[0], x.shape[1]
    kxx, kyy, kxy = _kernel(x, x, d), _kernel(y, y, d), _kernel(x, y, d)
    within_x = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
    within_y = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return float(within_x + within_y - 2.0 * kxy.sum() / (n * m))


def kvd(real, fake, *, max_subset_size: int = MAX_SUBSET_SIZE, num_subsets: int = NUM_SUBSETS,
        seed: int = 0) -> KVDResult:
    """KVD between two ``(N, D)`` feature sets (see the module docstring)."""
    x, y = np.asarray(real), np.asarray(fake)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise KVDError(f"KVD needs (N, D) feature sets of the same D, got {x.shape} and {y.shape}")
    if min(x.shape[0], y.shape[0]) < 2:
        raise KVDError(f"KVD needs at least 2 videos per side, got {x.shape[0]} and {y.shape[0]}")
    if x.shape[0] <= max_subset_size and y.shape[0] <= max_subset_size:
        return KVDResult(mmd2_unbiased(x, y), 1, None, None)
    m = min(x.shape[0], y.shape[0], max_subset_size)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(num_subsets):
        xs = x[rng.choice(x.shape[0], m, replace=False)]
        ys = y[rng.choice(y.shape[0], m, replace=False)]
        values.append(mmd2_unbiased(xs, ys))
    return KVDResult(float(np.mean(values)), num_subsets, m, seed)
