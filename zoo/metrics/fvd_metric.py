"""FVD as a metric object for training loops: feed batches of real and generated videos, read FVD.

    >>> from zoo.metrics import FVD
    >>> metric = FVD(frames=16, device="cuda")
    >>> for batch in loader:
    ...     metric.update(batch["video"], real=True)          # uint8 (N, T, H, W, 3) or (N, 3, T, H, W)
    ...     metric.update(generator(batch), real=False)
    >>> metric.compute(); metric.reset()

Inputs are uint8 videos, channels last ``(N, T, H, W, 3)`` or channels first ``(N, 3, T, H, W)``. Floats are
taken only with an explicit ``value_range=(lo, hi)``: they are mapped to 0..255 and rounded to uint8, the
values a video file of them would hold, so the metric sees what ``quovadis fvd`` would. Each video's clip is
the protocol's (``reference``: the first ``frames`` frames, every ``stride``-th).

The metric keeps float64 sums only (count, sum, sum of outer products per side), so memory does not grow with
the number of videos. Under ``torch.distributed`` (DDP, ``torchrun``), :meth:`compute` adds the sums of every
rank, so each rank may update with its own share and all ranks get the FVD of the union; every rank must
call it (it is a collective).

``FVD`` is :class:`StreamingFVD`, or, where torchmetrics is installed (``pip install 'quovadis[metrics]'``),
:class:`TorchmetricsFVD`: the same metric as a ``torchmetrics.Metric`` whose sums are its states, synced by
torchmetrics.
"""
from __future__ import annotations

import numpy as np
import torch

from zoo.metrics.frechet import frechet_distance
from zoo.metrics.fvd import SIZE, FVDError, FVDModel, clip_indices, preprocess, protocol_for


def as_uint8_videos(videos, value_range=None) -> torch.Tensor:
    """``(N, T, H, W, 3)`` uint8 from uint8 ``(N, T, H, W, 3)`` / ``(N, 3, T, H, W)``, or floats in ``value_range``."""
    x = torch.as_tensor(videos)
    if x.dim() != 5:
        raise FVDError(f"videos must be 5-d, (N, T, H, W, 3) or (N, 3, T, H, W), got shape {tuple(x.shape)}")
    last, first = x.shape[-1] == 3, x.shape[1] == 3
    if last and first and x.shape[2] != 3:
        raise FVDError(f"videos of shape {tuple(x.shape)} read both as (N, T=3, H, W, 3) and (N, 3, T, H, W=3); "
                       "give more than 3 frames or a width other than 3")
    if not (last or first):
        raise FVDError(f"videos must be (N, T, H, W, 3) or (N, 3, T, H, W), got shape {tuple(x.shape)}")
    if first and not last:
        x = x.permute(0, 2, 3, 4, 1)
    if x.dtype == torch.uint8:
        if value_range is not None and tuple(value_range) != (0, 255):
            raise FVDError(f"uint8 videos hold 0..255; value_range={value_range} is for float videos")
        return x
    if not x.is_floating_point():
        raise FVDError(f"videos must be uint8, or float with value_range=(lo, hi); got {x.dtype}")
    if value_range is None:
        raise FVDError(f"float videos ({x.dtype}) need an explicit value_range, e.g. value_range=(0, 1) or (-1, 1): "
                       "FVD's network sees uint8 frames, and guessing the range silently moves FVD")
    lo, hi = (float(v) for v in value_range)
    if not hi > lo:
        raise FVDError(f"value_range must be (lo, hi) with hi > lo, got {value_range}")
    return ((x.float() - lo) * (255.0 / (hi - lo))).round_().clamp_(0, 255).to(torch.uint8)


class _Streaming:
    """The clip, the network and the float64 sums of one FVD metric (shared by both metric classes)."""

    def __init__(self, frames, stride, value_range, weights, device, precision, exact, batch_size, model):
        self.model = model if model is not None else FVDModel(weights=weights, device=device, exact=exact,
                                                                precision=precision)
        self.indices = clip_indices(frames, stride)
        self.value_range, self.batch_size = value_range, batch_size
        self.protocol = protocol_for(self.model, frames, stride, "reference")

    def zeros(self) -> torch.Tensor:
        d = self.model.dim
        return torch.zeros(1 + d + d * d, dtype=torch.float64)

    @torch.no_grad()
    def add(self, videos, sums: torch.Tensor) -> None:
        x = as_uint8_videos(videos, self.value_range)
        need = self.indices[-1] + 1
        if x.shape[1] < need:
            raise FVDError(f"videos have {x.shape[1]} frames; the clip needs {need} (frames={len(self.indices)}, "
                           f"stride={self.indices[1] - self.indices[0] if len(self.indices) > 1 else 1})")
        d = self.model.dim
        for i in range(0, x.shape[0], self.batch_size):
            clip = x[i:i + self.batch_size, self.indices].cpu()
            emb = self.model(preprocess(clip, SIZE)).double().to(sums.device)
            if not torch.isfinite(emb).all():
                raise FVDError("non-finite FVD features in this batch; with precision bf16 try fp32")
            sums[0] += emb.shape[0]
            sums[1:1 + d] += emb.sum(0)
            sums[1 + d:] += (emb.T @ emb).flatten()

    def distance(self, real_sums: torch.Tensor, fake_sums: torch.Tensor) -> float:
        d = self.model.dim
        stats = []
        for side, s in (("real", real_sums), ("fake", fake_sums)):
            s = s.detach().cpu().numpy()
            n = int(round(s[0]))
            if n < 2:
                raise FVDError(f"FVD needs at least 2 {side} videos, got {n}: call update(videos, real="
                               f"{side == 'real'}) with more")
            total, outer = s[1:1 + d], s[1 + d:].reshape(d, d)
            stats += [total / n, (outer - np.outer(total, total) / n) / (n - 1)]
        return frechet_distance(*stats)


class StreamingFVD:
    """Streaming FVD (see the module docstring), with its own torch.distributed sync. ``model``: an
    :class:`~zoo.metrics.fvd.FVDModel` to share; else one is built from ``weights``/``device``/``precision``/
    ``exact`` as ``quovadis fvd`` does."""

    def __init__(self, *, frames: int = 16, stride: int = 1, value_range=None, weights=None, device=None,
                 precision: str = "fp32", exact: bool = False, batch_size: int = 8, model: FVDModel | None = None):
        self._core = _Streaming(frames, stride, value_range, weights, device, precision, exact, batch_size, model)
        self.model, self.protocol = self._core.model, self._core.protocol
        self.reset()

    def reset(self) -> None:
        self._sums = {side: self._core.zeros() for side in ("real", "fake")}

    def update(self, videos, real: bool) -> None:
        """Add a batch of videos to the real (``real=True``) or generated side."""
        self._core.add(videos, self._sums["real" if real else "fake"])

    def _synced(self, side: str) -> torch.Tensor:
        import torch.distributed as dist
        sums = self._sums[side]
        if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return sums
        from zoo.train.distributed import collective_device
        out = sums.to(collective_device(dist.get_backend(), torch.cuda.current_device()
                                        if torch.cuda.is_available() else 0), copy=True)
        dist.all_reduce(out)
        return out.cpu()

    def counts(self) -> tuple[int, int]:
        """Videos seen so far on this rank: (real, fake)."""
        return int(self._sums["real"][0]), int(self._sums["fake"][0])

    def compute(self) -> float:
        """FVD between everything given so far (on every rank, under torch.distributed)."""
        return self._core.distance(self._synced("real"), self._synced("fake"))


try:  # the optional torchmetrics extra: then zoo.metrics.FVD is a torchmetrics.Metric
    from torchmetrics import Metric as _TorchmetricsMetric
except ImportError:
    _TorchmetricsMetric = None

if _TorchmetricsMetric is not None:
    class TorchmetricsFVD(_TorchmetricsMetric):
        """:class:`StreamingFVD` as a ``torchmetrics.Metric``: the float64 sums are its states (summed across
        ranks by torchmetrics' sync); ``metric(videos, real=...)`` only updates, since FVD of one batch is
        not meaningful."""
        full_state_update = False
        higher_is_better = False
        is_differentiable = False

        def __init__(self, *, frames: int = 16, stride: int = 1, value_range=None, weights=None, device=None,
                     precision: str = "fp32", exact: bool = False, batch_size: int = 8,
                     model: FVDModel | None = None, **metric_kwargs):
            super().__init__(**metric_kwargs)
            self._core = _Streaming(frames, stride, value_range, weights, device, precision, exact, batch_size,
                                    model)
            self.model, self.protocol = self._core.model, self._core.protocol
            self.add_state("real_sums", self._core.zeros(), dist_reduce_fx="sum")
            self.add_state("fake_sums", self._core.zeros(), dist_reduce_fx="sum")

        def update(self, videos, real: bool) -> None:
            self._core.add(videos, self.real_sums if real else self.fake_sums)

        def forward(self, videos, real: bool) -> None:
            self.update(videos, real=real)

        def counts(self) -> tuple[int, int]:
            return int(self.real_sums[0]), int(self.fake_sums[0])

        def compute(self) -> float:
            return self._core.distance(self.real_sums, self.fake_sums)

    FVD = TorchmetricsFVD
else:
    FVD = StreamingFVD
