"""The Fréchet distance of FVD, as tfgan's ``frechet_classifier_distance_from_activations`` computes it:
float64, covariance divided by N - 1, and ``trace(sqrtm(sigma1 sigma2))`` from symmetric square roots taken
by SVD, singular values below 1e-10 kept as they are.

    >>> from zoo.metrics.frechet import fvd_from_features, fvd_from_stats
    >>> fvd_from_features(real_features, fake_features)       # (N, 400), (M, 400)
    >>> fvd_from_stats(real_stats, fake_stats)                # zoo.metrics.fvd_stats.FVDStats, same protocol
"""
from __future__ import annotations

import numpy as np
import torch

from zoo.metrics.fvd_stats import FVDError, FVDStats, check_protocols


def _symmetric_sqrt(mat: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """tfgan's ``_symmetric_matrix_square_root``: ``u diag(s') v^T`` with ``s' = sqrt(s)``, or ``s`` where
    ``s < eps`` (sqrt is unstable near 0)."""
    u, s, vh = torch.linalg.svd(mat)
    si = torch.where(s < eps, s, s.sqrt())
    return (u * si) @ vh


def trace_sqrt_product(sigma: torch.Tensor, sigma_v: torch.Tensor) -> torch.Tensor:
    """``trace(sqrtm(sigma @ sigma_v))`` the tfgan way: ``trace(sqrt(sqrt(sigma) sigma_v sqrt(sigma)))``."""
    sqrt_sigma = _symmetric_sqrt(sigma)
    return torch.trace(_symmetric_sqrt(sqrt_sigma @ (sigma_v @ sqrt_sigma)))


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """``|mu1 - mu2|^2 + tr(sigma1 + sigma2) - 2 tr(sqrtm(sigma1 sigma2))``, in float64, as tfgan."""
    mu1, mu2, sigma1, sigma2 = (torch.as_tensor(np.asarray(a), dtype=torch.float64) for a in (mu1, mu2, sigma1, sigma2))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise FVDError(f"statistics differ in size: mu {tuple(mu1.shape)} vs {tuple(mu2.shape)}, "
                       f"sigma {tuple(sigma1.shape)} vs {tuple(sigma2.shape)}")
    trace = torch.trace(sigma1 + sigma2) - 2.0 * trace_sqrt_product(sigma1, sigma2)
    return float(trace + ((mu1 - mu2) ** 2).sum())


def fvd_from_stats(real: FVDStats, fake: FVDStats) -> float:
    """FVD between two statistics of the same protocol."""
    check_protocols(real.protocol, fake.protocol)
    return frechet_distance(real.mu, real.sigma, fake.mu, fake.sigma)


def fvd_from_features(real, fake) -> float:
    """FVD between two ``(N, D)`` embedding sets (float64, unbiased covariance, tfgan's sqrtm)."""
    a, b = FVDStats.from_features(real, keep_features=False), FVDStats.from_features(fake, keep_features=False)
    return frechet_distance(a.mu, a.sigma, b.mu, b.sigma)
