"""How far an FVD value can be trusted: a bootstrap interval, FVD extrapolated to infinitely many videos,
repeated trials on random subsets, and the small-N flag.

    >>> from zoo.metrics.fvd_uncertainty import bootstrap_interval, extrapolate, trials
    >>> lo, hi = bootstrap_interval(real_feats, fake_feats, 100, seed=0).ci95
    >>> extrapolate(real_feats, fake_feats).fvd_inf          # Chong & Forsyth (2020): FVD against 1/N
    >>> trials(real_feats, fake_feats, videos=256, trials=4)  # VideoGPT's 256 x 4, mean and std

Every function takes per-video features ``(N, D)``; a side given as sufficient statistics only
(``real_total, real_outer, n`` without features) stays whole where a function allows it (``extrapolate``),
since sums cannot be resampled. Below :data:`FEW_VIDEOS` (400) videos per side the 400x400 covariance is
singular and FVD values are not comparable across N: results carry that flag.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from zoo.metrics.frechet import frechet_distance
from zoo.metrics.fvd_stats import FVDError

FEW_VIDEOS = 400


def few_videos(num_real: int, num_fake: int) -> bool:
    return min(num_real, num_fake) < FEW_VIDEOS


def _weighted_stats(x: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance of ``x`` with each row counted ``weights[i]`` times."""
    n = weights.sum()
    total = weights @ x
    outer = x.T @ (weights[:, None] * x)
    return total / n, (outer - np.outer(total, total) / n) / (n - 1)


def _stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return _weighted_stats(x, np.ones(len(x)))


def _need_features(x, label: str, what: str) -> np.ndarray:
    if x is None:
        raise FVDError(f"{what} resamples videos and needs each {label} video's features: compute that side "
                       "from videos, or make its stats file with `quovadis fvd-stats ... --keep-features`")
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise FVDError(f"{what}: {label} features must be (N >= 2, D), got {x.shape}")
    return x


@dataclass
class Bootstrap:
    """FVD on resamples of the videos. Resampling with replacement repeats videos, and repeated rows inflate
    FVD (the covariances are estimated from fewer distinct videos): the resampled values sit above the point
    value by about FVD's own small-sample bias. :attr:`ci95` is therefore the percentile interval of the
    resampled values shifted by the bootstrap's bias estimate ``mean(values) - point`` (Efron & Tibshirani's
    bias correction); :attr:`raw_ci95` is the plain percentile interval."""
    values: np.ndarray
    point: float
    seed: int

    @property
    def bias(self) -> float:
        return float(np.mean(self.values) - self.point)

    @property
    def raw_ci95(self) -> tuple[float, float]:
        """The 2.5th and 97.5th percentiles of the resampled FVDs."""
        lo, hi = np.percentile(self.values, [2.5, 97.5])
        return float(lo), float(hi)

    @property
    def ci95(self) -> tuple[float, float]:
        """The 2.5th and 97.5th percentiles of the resampled FVDs minus the bootstrap bias."""
        lo, hi = self.raw_ci95
        return lo - self.bias, hi - self.bias

    def to_dict(self) -> dict:
        return {"fvd_ci95": list(self.ci95), "fvd_ci95_raw": list(self.raw_ci95), "bootstrap_bias": self.bias,
                "bootstrap": len(self.values), "bootstrap_seed": self.seed}


def bootstrap_interval(real, fake, num: int, seed: int = 0) -> Bootstrap:
    """FVD on ``num`` resamples of the videos, with replacement, on both sides (same sizes as the sets)."""
    x, y = _need_features(real, "REAL", "--bootstrap"), _need_features(fake, "FAKE", "--bootstrap")
    if num < 2:
        raise FVDError(f"--bootstrap needs at least 2 resamples, got {num}")
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(num):
        wx = rng.multinomial(len(x), np.full(len(x), 1.0 / len(x))).astype(np.float64)
        wy = rng.multinomial(len(y), np.full(len(y), 1.0 / len(y))).astype(np.float64)
        values.append(frechet_distance(*_weighted_stats(x, wx), *_weighted_stats(y, wy)))
    return Bootstrap(np.asarray(values), frechet_distance(*_stats(x), *_stats(y)), seed)


@dataclass
class Extrapolation:
    fvd_inf: float                 # the fit's intercept: FVD at 1/N = 0
    slope: float
    points: list = field(default_factory=list)  # [{"n": N, "fvd": value}, ...]
    seed: int = 0

    def to_dict(self) -> dict:
        return {"fvd_inf": self.fvd_inf, "fvd_inf_slope": self.slope, "fvd_inf_points": self.points,
                "fvd_inf_seed": self.seed}


def extrapolate(real, fake, *, real_stats=None, fake_stats=None, sizes: int = 8, seed: int = 0) -> Extrapolation:
    """FVD∞ (Chong & Forsyth 2020): FVD on random subsets of N videos (without replacement) for ``sizes`` values
    of N evenly spaced from half the set to all of it, and the least-squares line FVD = a + b / N; FVD∞ = a.

    A side without features (``real=None``) is used whole, through its ``(mu, sigma)`` given as
    ``real_stats``/``fake_stats``; N then counts the other side's videos. At least one side needs features."""
    sides = []
    for feats, stats, label in ((real, real_stats, "REAL"), (fake, fake_stats, "FAKE")):
        if feats is not None:
            sides.append(_need_features(feats, label, "--extrapolate"))
        elif stats is not None:
            sides.append(stats)
        else:
            raise FVDError(f"--extrapolate: no features or statistics for {label}")
    sampled = [s for s in sides if isinstance(s, np.ndarray)]
    if not sampled:
        raise FVDError("--extrapolate subsamples videos and needs the features of at least one side: compute it "
                       "from videos, or make its stats file with --keep-features")
    n_max = min(len(s) for s in sampled)
    if n_max < 2 * sizes:
        raise FVDError(f"--extrapolate fits {sizes} subset sizes between N/2 and N and needs N >= {2 * sizes} "
                       f"videos per subsampled side, got {n_max}")
    ns = np.unique(np.linspace(n_max // 2, n_max, sizes).round().astype(int))
    rng = np.random.default_rng(seed)
    points = []
    for n in ns:
        stats = [_stats(s[rng.choice(len(s), n, replace=False)]) if isinstance(s, np.ndarray) else s for s in sides]
        points.append({"n": int(n), "fvd": frechet_distance(*stats[0], *stats[1])})
    slope, intercept = np.polyfit([1.0 / p["n"] for p in points], [p["fvd"] for p in points], 1)
    return Extrapolation(float(intercept), float(slope), points, seed)


@dataclass
class Trials:
    values: list
    videos: int
    seed: int

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def std(self) -> float:
        """Standard deviation over the trials (divides by the number of trials)."""
        return float(np.std(self.values))

    def to_dict(self) -> dict:
        return {"fvd_trials": self.values, "fvd_std": self.std, "trial_videos": self.videos, "trial_seed": self.seed}


def trials(real, fake, *, videos: int, trials: int, seed: int = 0) -> Trials:
    """FVD on ``videos`` random videos per side (without replacement), ``trials`` times, each trial seeded
    ``seed + t``."""
    x, y = _need_features(real, "REAL", "the trials"), _need_features(fake, "FAKE", "the trials")
    short = [(label, len(s)) for label, s in (("REAL", x), ("FAKE", y)) if len(s) < videos]
    if short:
        raise FVDError(f"the protocol draws {videos} videos per side per trial; "
                       + ", ".join(f"{label} has {n}" for label, n in short))
    values = []
    for t in range(trials):
        rng = np.random.default_rng(seed + t)
        values.append(frechet_distance(*_stats(x[rng.choice(len(x), videos, replace=False)]),
                                       *_stats(y[rng.choice(len(y), videos, replace=False)])))
    return Trials(values, videos, seed)
