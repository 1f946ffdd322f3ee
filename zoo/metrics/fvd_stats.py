"""FVD statistics that add up: float64 count, sum and sum of outer products of the embeddings, with the
protocol that made them and the digests of the videos' names.

    >>> a = FVDStats.from_features(feats_a, protocol, names=names_a)
    >>> b = FVDStats.from_features(feats_b, protocol, names=names_b)
    >>> both = merge([a, b])            # == FVDStats.from_features(concat) up to float64 rounding
    >>> both.mu, both.sigma             # mean and unbiased covariance (divides by N - 1, as tfgan)
    >>> both.save("real.safetensors"); FVDStats.load("real.safetensors")

File format: safetensors (never pickle) with float64 ``count`` (1,), ``sum`` (D,), ``sum_outer`` (D, D),
uint8 ``video_digests`` (N, 16) (the first 16 bytes of sha256 of each video's name), and, when the
features were kept, float32 ``features`` (N, D) in the same row order; the JSON metadata holds the
format name, the protocol, the side's sampling, the skipped count and the quovadis version.

Rows are kept sorted by digest, so merging is commutative and associative for everything but the float
rounding of the sums. Two stats merge only under the same protocol and side, and with no video in common.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

STATS_FORMAT = "quovadis.fvd_stats.v2"
DIGEST_BYTES = 16
# Recorded but not compared: a new quovadis release does not invalidate published statistics.
NOT_COMPARED = ("quovadis_version",)


class FVDError(ValueError):
    """Bad FVD input: unreadable or short videos, too few videos, non-finite features, mismatched stats."""


def quovadis_version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("quovadis")
    except PackageNotFoundError:  # a source tree that was not installed
        import inflate
        return inflate.__version__


def name_digests(names) -> np.ndarray:
    """``(N, 16)`` uint8: the first 16 bytes of sha256 of each name (UTF-8)."""
    rows = [np.frombuffer(hashlib.sha256(str(n).encode()).digest()[:DIGEST_BYTES], np.uint8) for n in names]
    return np.stack(rows) if rows else np.zeros((0, DIGEST_BYTES), np.uint8)


def _digest_order(digests: np.ndarray) -> np.ndarray:
    return np.lexsort(digests.T[::-1]) if len(digests) else np.zeros(0, np.int64)


@dataclass
class FVDStats:
    """Sufficient statistics of ``count`` embeddings: ``total`` = sum, ``outer`` = sum of x x^T (float64)."""
    count: int
    total: np.ndarray
    outer: np.ndarray
    protocol: dict = field(default_factory=dict)
    sampling: dict = field(default_factory=dict)     # this side: {"side": "real", "clip_offset": "start"}
    video_digests: np.ndarray = field(default_factory=lambda: np.zeros((0, DIGEST_BYTES), np.uint8))
    features: np.ndarray | None = None               # (N, D) float32, rows in video_digests' order
    skipped: int = 0
    names: list | None = None                        # in memory only (files keep the digests)
    data_wait: float | None = None                   # in memory only: the fraction of compute_stats spent on data

    # ------------------------------------------------------------------ building
    @classmethod
    def from_features(cls, features, protocol: dict | None = None, *, names=None, sampling: dict | None = None,
                      keep_features: bool = True, skipped: int = 0) -> "FVDStats":
        x = np.asarray(features)
        if x.ndim != 2:
            raise FVDError(f"features must be (N, D), got shape {tuple(x.shape)}")
        if not np.isfinite(x).all():
            bad = np.flatnonzero(~np.isfinite(x).all(1)).tolist()
            raise FVDError(f"non-finite features for videos {bad[:10]} (of {x.shape[0]}); check those inputs")
        names = list(names) if names is not None else [f"video_{i:09d}" for i in range(x.shape[0])]
        if len(names) != x.shape[0]:
            raise FVDError(f"{len(names)} names for {x.shape[0]} feature rows")
        x64 = x.astype(np.float64)
        digests = name_digests(names)
        order = _digest_order(digests)
        return cls(int(x.shape[0]), x64.sum(0), x64.T @ x64, dict(protocol or {}), dict(sampling or {}),
                   digests[order], x[order].astype(np.float32) if keep_features else None, skipped,
                   [names[i] for i in order])

    @property
    def dim(self) -> int:
        return int(self.total.shape[0])

    @property
    def mu(self) -> np.ndarray:
        return self.total / self.count

    @property
    def sigma(self) -> np.ndarray:
        """Unbiased covariance ``(sum x x^T - n mu mu^T) / (n - 1)``."""
        if self.count < 2:
            raise FVDError(f"FVD needs at least 2 videos per side (the covariance divides by N - 1), got "
                           f"{self.count}")
        return (self.outer - np.outer(self.total, self.total) / self.count) / (self.count - 1)

    def without_features(self) -> "FVDStats":
        return replace(self, features=None)

    # ------------------------------------------------------------------ files
    def save(self, path) -> Path:
        """Write the statistics as safetensors (JSON metadata), atomically."""
        from safetensors.numpy import save_file

        from inflate.atomic import atomic_path
        path = Path(path)
        tensors = {"count": np.array([self.count], np.float64), "sum": np.ascontiguousarray(self.total, np.float64),
                   "sum_outer": np.ascontiguousarray(self.outer, np.float64),
                   "video_digests": np.ascontiguousarray(self.video_digests, np.uint8)}
        if self.features is not None:
            tensors["features"] = np.ascontiguousarray(self.features, np.float32)
        meta = {"format": STATS_FORMAT, "protocol": json.dumps(self.protocol, sort_keys=True),
                "sampling": json.dumps(self.sampling, sort_keys=True), "skipped": str(self.skipped),
                "quovadis_version": str(self.protocol.get("quovadis_version", quovadis_version()))}
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=meta)
        return path

    @classmethod
    def load(cls, path) -> "FVDStats":
        from safetensors import safe_open
        path = Path(path)
        hint = "write one with `quovadis fvd-stats SRC -o FILE.safetensors`"
        try:
            with safe_open(str(path), "np") as f:
                meta = f.metadata() or {}
                if meta.get("format") != STATS_FORMAT:
                    old = meta.get("format", "").startswith("quovadis.fvd_stats.")
                    raise FVDError(f"{path} is {'an older FVD statistics file (' + meta['format'] + ')' if old else 'not an FVD statistics file'}"
                                   f", not {STATS_FORMAT}; {hint}")
                keys = set(f.keys())
                t = {k: f.get_tensor(k) for k in keys}
        except FVDError:
            raise
        except Exception as e:
            raise FVDError(f"{path} is not an FVD statistics file ({e}); {hint}") from e
        missing = {"count", "sum", "sum_outer", "video_digests"} - keys
        if missing:
            raise FVDError(f"{path}: FVD statistics file lacks tensors {sorted(missing)}; {hint}")
        try:
            count, d = int(t["count"].reshape(-1)[0]), t["sum"].shape[0]
            protocol, sampling = json.loads(meta["protocol"]), json.loads(meta["sampling"])
            skipped = int(meta.get("skipped", 0))
        except (ValueError, KeyError, IndexError, TypeError) as e:  # damaged metadata (found by fuzzing)
            raise FVDError(f"{path}: damaged FVD statistics metadata ({type(e).__name__}: {e}); {hint}") from e
        if not (isinstance(protocol, dict) and isinstance(sampling, dict)):
            raise FVDError(f"{path}: damaged FVD statistics metadata (protocol/sampling are not objects); {hint}")
        if t["sum_outer"].shape != (d, d) or t["video_digests"].shape != (count, DIGEST_BYTES):
            raise FVDError(f"{path}: inconsistent shapes: sum {t['sum'].shape}, sum_outer {t['sum_outer'].shape}, "
                           f"video_digests {t['video_digests'].shape} for count {count}; the file is damaged, "
                           "recompute it")
        feats = t.get("features")
        if feats is not None and feats.shape != (count, d):
            raise FVDError(f"{path}: features {feats.shape}, expected {(count, d)}; recompute the file")
        return cls(count, t["sum"], t["sum_outer"], protocol, sampling, t["video_digests"], feats, skipped)


def is_stats_file(path) -> bool:
    """Whether ``path`` is a file written by :meth:`FVDStats.save` (any version: load explains old ones)."""
    path = Path(path)
    if not path.is_file() or path.suffix.lower() != ".safetensors":
        return False
    from safetensors import safe_open
    try:
        with safe_open(str(path), "np") as f:
            return (f.metadata() or {}).get("format", "").startswith("quovadis.fvd_stats.")
    except Exception:
        return False


def protocol_difference(a: dict, b: dict) -> dict:
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b))
            if k not in NOT_COMPARED and a.get(k) != b.get(k)}


def check_protocols(a: dict, b: dict, names=("REAL", "FAKE")) -> None:
    """Refuse to compare statistics from different protocols (name, frames, stride, weights, precision, ...)."""
    diff = protocol_difference(a, b)
    if diff:
        lines = "; ".join(f"{k}: {names[0]} {va!r} vs {names[1]} {vb!r}" for k, (va, vb) in diff.items())
        raise FVDError(f"{names[0]} and {names[1]} were computed under different protocols ({lines}); recompute "
                       f"one side with the other's settings (e.g. --protocol/--frames/--stride/--weights)")


def merge(parts, labels=None) -> FVDStats:
    """The statistics of the union of ``parts`` (same protocol and side, no video in two parts)."""
    parts = list(parts)
    if not parts:
        raise FVDError("nothing to merge")
    labels = list(labels) if labels is not None else [f"part {i}" for i in range(len(parts))]
    first = parts[0]
    for p, n in zip(parts[1:], labels[1:]):
        check_protocols(first.protocol, p.protocol, (labels[0], n))
        if p.sampling.get("clip_offset") != first.sampling.get("clip_offset"):
            raise FVDError(f"{labels[0]} and {n} sample clips differently ({first.sampling} vs {p.sampling}): "
                           "one is the real side and the other the fake side of a protocol; merge one side only")
        if p.dim != first.dim:
            raise FVDError(f"{labels[0]} and {n} hold {first.dim}-d and {p.dim}-d features")
    digests = np.concatenate([p.video_digests for p in parts])
    order = _digest_order(digests)
    digests = digests[order]
    dup = np.flatnonzero((digests[1:] == digests[:-1]).all(1)) if len(digests) > 1 else np.zeros(0, np.int64)
    if len(dup):
        owner = np.repeat(np.arange(len(parts)), [p.count for p in parts])[order]
        pairs = sorted({(labels[owner[i]], labels[owner[i + 1]]) for i in dup})
        raise FVDError(f"{len(dup)} videos appear in more than one part ({', '.join(f'{a} and {b}' for a, b in pairs[:5])}"
                       "): the same video would count twice; merge disjoint shards (--shard K/N of one listing)")
    keep = all(p.features is not None for p in parts)
    total = np.sum([p.total for p in parts], axis=0)
    outer = np.sum([p.outer for p in parts], axis=0)
    feats = np.concatenate([p.features for p in parts])[order] if keep else None
    all_names = [n for p in parts for n in p.names] if all(p.names is not None for p in parts) else None
    return FVDStats(sum(p.count for p in parts), total, outer, dict(first.protocol), dict(first.sampling), digests,
                    feats, sum(p.skipped for p in parts), [all_names[i] for i in order] if all_names else None)
