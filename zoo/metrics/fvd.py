"""Fréchet Video Distance, exact to the reference implementation (google-research ``frechet_video_distance``).

    >>> import zoo.metrics.fvd
    >>> result = zoo.metrics.fvd.fvd("real_videos/", "fake_videos/", frames=16)     # folders, arrays or stats files
    >>> result.fvd, result.num_real, result.num_fake
    >>> zoo.metrics.fvd.fvd(real_uint8, fake_uint8, kvd=True, bootstrap=100)          # (N, T, H, W, 3) tensors/arrays
    >>> stats, skipped = zoo.metrics.fvd.compute_stats("real_videos/", model, shard=(0, 4))   # one shard's sums

The reference, step by step, and where each step lives here:

1. videos ``(N, T, H, W, 3)`` uint8; each frame resized to 224x224 with TF1's legacy
   ``tf.image.resize_bilinear`` (``align_corners=False, half_pixel_centers=False``):
   :func:`zoo.metrics.tf_resize.resize_bilinear_tf1`, bit-identical to TensorFlow's kernel. No crop.
2. ``2. * x / 255. - 1``: :func:`preprocess`.
3. TF-Hub ``deepmind/i3d-kinetics-400/1`` = DeepMind's ``rgb_scratch`` = ``i3d_inception_k400_rgb``; the
   embedding is ``RGB/inception_i3d/Mean:0``, the 400 logits averaged over time before the softmax (the
   model's "Logits" endpoint).
4. tfgan's ``frechet_classifier_distance_from_activations`` (:mod:`zoo.metrics.frechet`).

Unlike the reference, N need not be a multiple of 16. Which clip of which video is the protocol's choice
(:mod:`zoo.metrics.fvd_protocols`; ``reference``: the first ``frames`` frames of every video, every
``stride``-th). Embeddings are summed as they come (:mod:`zoo.metrics.fvd_stats`), so memory does not grow
with the number of videos, and each video is decoded one clip at a time, never whole. Statistics of
shards, of ``torchrun`` ranks or of separate runs merge exactly; two sets compare only under the same
protocol (network weights, clip, resize, precision, ...).
"""
from __future__ import annotations

import math
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from zoo.metrics.frechet import frechet_distance
from zoo.metrics.fvd_protocols import Protocol, clip_for, clip_offset, get_protocol
from zoo.metrics.fvd_stats import FVDError, FVDStats, check_protocols, is_stats_file, name_digests, quovadis_version
from zoo.metrics.tf_resize import resize_bilinear_tf1

MODEL = "i3d_inception_k400_rgb"
SIZE = 224
ON_ERROR = ("fail", "skip")


# ------------------------------------------------------------------------------------------------ pipeline
def preprocess(videos: torch.Tensor, size: int = SIZE) -> torch.Tensor:
    """uint8 ``(N, T, H, W, 3)`` -> float32 ``(N, 3, T, size, size)``: TF1 legacy bilinear resize, no crop,
    ``2 * x / 255 - 1`` (the reference's order of operations)."""
    if videos.dim() != 5 or videos.shape[-1] != 3:
        raise FVDError(f"videos must be (N, T, H, W, 3) uint8, got {videos.dtype} {tuple(videos.shape)}")
    x = resize_bilinear_tf1(videos, (size, size))
    x = x.mul_(2.0).div_(255.0).sub_(1.0) if x.data_ptr() != videos.data_ptr() else 2.0 * x / 255.0 - 1.0
    return x.permute(0, 4, 1, 2, 3)  # (N, 3, T, H, W) in channels_last_3d memory, as the fused model wants


def clip_indices(frames: int, stride: int = 1) -> list[int]:
    if frames < 1 or stride < 1:
        raise FVDError(f"--frames and --stride must be >= 1, got {frames} and {stride}")
    return list(range(0, (frames - 1) * stride + 1, stride))


class _Clips(torch.utils.data.Dataset):
    """The protocol's clip of each video, preprocessed; a failure comes back as its message, a video too
    short for a protocol that drops such videos as ``"drop"``."""

    def __init__(self, videos, indices, size, offset_kind="start", seed=0, drop_short=False):
        self.videos, self.indices, self.size = videos, indices, size
        self.offset_kind, self.seed, self.drop_short = offset_kind, seed, drop_short

    def __len__(self):
        return len(self.videos)

    def __getitem__(self, i):
        video = self.videos[i]
        need = self.indices[-1] + 1
        try:
            n = video.num_frames()
            if n < need:
                msg = _short_message(video, n, self.indices)
                return i, None, ("drop", msg) if self.drop_short else msg
            start = clip_offset(self.offset_kind, n, need, self.seed, video.name)
            clip = video.read([start + k for k in self.indices])
        except Exception as e:  # any decoding failure: reported with the file's name
            return i, None, f"{video.path}: {e}"
        return i, preprocess(clip[None], self.size)[0], None


def _short_message(video, n, indices) -> str:
    where = f"{video.path}{'' if video.kind != 'array' else f'[{video.index}]'}"
    stride = indices[1] - indices[0] if len(indices) > 1 else 1
    return f"{where}: {n} frames, the protocol needs {indices[-1] + 1} (--frames {len(indices)} x --stride {stride})"


def _collate(items):
    return items


class FVDModel:
    """The embedding network of the protocol: I3D (rgb_scratch) Logits, on ``device``.

    Default: the fused model in fp32 (BatchNorm folded; the parity test holds it to the TensorFlow
    reference within 1e-4 on features). ``exact=True``: the unfused fp32 model. ``precision="bf16"`` is
    faster but moves FVD (see the README's shortcut table); it is recorded in the protocol. ``model``: any
    network from ``(B, 3, T, 224, 224)`` to ``(B, dim)`` instead (recorded as weights ``custom``).
    ``compile``: see :mod:`zoo.models.compiled` (None: on the CPU, once a run has 1000+ clips still to come).
    """
    dim = 400  # the I3D Logits

    def __init__(self, weights=None, device=None, exact: bool = False, precision: str = "fp32", model=None,
                 compile: bool | None = None):
        import zoo
        from zoo.models.inference import InferenceModel
        net = model if model is not None else zoo.load(MODEL, weights=weights)
        self.runner = InferenceModel(net, device=device, precision=precision, exact=exact, compile=compile)
        self.weights_id = _weights_id(weights, net if model is None else None)

    def describe(self) -> str:
        return self.runner.describe()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Preprocessed clips ``(B, 3, T, 224, 224)`` -> embeddings ``(B, 400)`` float32."""
        return self.runner(x)


def _weights_id(weights, net) -> str:
    """The sha256 of the weights file (so stats from ``--weights FILE`` and from the zoo cache compare)."""
    from zoo.weights.resolve import resolve
    from zoo.weights.files import sha256_of
    entry = getattr(net, "zoo_entry", None)
    if weights is None and entry is not None:
        weights = resolve(entry)
    return "sha256:" + sha256_of(Path(weights)) if weights is not None else "custom"


def protocol_for(model: FVDModel, frames: int = 16, stride: int = 1, protocol: str | Protocol = "reference",
                 seed: int = 0) -> dict:
    """What must match for two statistics to compare: the protocol preset, the clip, the network's weights, the
    resize and the precision (the quovadis version is recorded too, and not compared)."""
    p = get_protocol(protocol) if isinstance(protocol, str) else protocol
    return {"protocol": p.name, "frames": frames, "stride": stride, "videos": p.videos, "real_offset": p.real_offset,
            "fake_offset": p.fake_offset, "short_videos": p.short_videos, "trials": p.trials,
            "trial_videos": p.trial_videos, "seed": seed, "metric": "fvd", "embedding": f"{MODEL}/Logits",
            "weights": model.weights_id, "size": SIZE, "resize": "tf1_bilinear_legacy", "crop": "none",
            "precision": model.runner.precision, "quovadis_version": quovadis_version()}


def sampling_for(protocol: dict, side: str) -> dict:
    """How this side's clips were taken: ``{"side", "clip_offset"}`` (the side matters where the protocol
    samples real and fake clips differently, as StyleGAN-V's does)."""
    if side not in ("real", "fake"):
        raise FVDError(f"side must be 'real' or 'fake', got {side!r}")
    return {"side": side, "clip_offset": protocol[f"{side}_offset"]}


def check_side(stats: FVDStats, role: str, label: str) -> None:
    """Refuse a stats file used as the other side when the protocol samples the two sides differently."""
    p = stats.protocol
    if p.get("real_offset") != p.get("fake_offset") and stats.sampling.get("side") != role:
        raise FVDError(f"{label} holds the {stats.sampling.get('side')} side of protocol {p.get('protocol')} "
                       f"(clips at offset {stats.sampling.get('clip_offset')!r}), used here as {role.upper()}; "
                       f"recompute it with --side {role}")


def _as_videos(src):
    """A source -> list of :class:`zoo.data.video_folder.Video`-like items."""
    from zoo.data.video_folder import list_videos
    if isinstance(src, (np.ndarray, torch.Tensor)):
        arr = torch.as_tensor(src)
        if arr.dim() != 5 or arr.shape[-1] != 3 or arr.dtype != torch.uint8:
            raise FVDError(f"videos must be a uint8 array (N, T, H, W, 3), got {arr.dtype} {tuple(arr.shape)}; "
                           "for floats in [0, 1] pass (x * 255).round().to(torch.uint8)")
        return [_TensorVideo(arr, i) for i in range(arr.shape[0])]
    return list_videos(src)


class _TensorVideo:
    kind = "array"

    def __init__(self, arr, index):
        self.arr, self.index, self.path, self.name = arr, index, "<array>", f"video_{index:06d}"

    def num_frames(self):
        return int(self.arr.shape[1])

    def read(self, indices):
        return self.arr[self.index, indices]


def select_videos(videos, indices: list, cap: int | None, *, drop_short: bool, on_error: str, name: str):
    """The first ``cap`` usable videos of the sorted list (all when ``cap`` is None), probing their lengths
    (metadata only); returns them and the messages of the videos left out. Every shard and rank selects the
    same videos, so a cap means the same set however the work is split."""
    if cap is None:
        return list(videos), []
    need = indices[-1] + 1
    chosen, left_out = [], []
    for video in videos:
        if len(chosen) >= cap:
            break
        try:
            n = video.num_frames()
        except Exception as e:
            if on_error == "fail":
                raise FVDError(f"{name}: {video.path}: {e}. Use --on-error skip to skip such videos (they are "
                               "named and counted)") from e
            left_out.append(f"{video.path}: {e}")
            continue
        if n < need:
            msg = _short_message(video, n, indices)
            if not drop_short and on_error == "fail":
                raise FVDError(f"{name}: {msg}. Use --on-error skip to skip such videos (they are named and "
                               "counted)")
            left_out.append(msg)
            continue
        chosen.append(video)
    return chosen, left_out


def compute_stats(src, model: FVDModel, *, protocol: str = "reference", side: str = "real",
                  frames: int | None = None, stride: int | None = None, seed: int = 0,
                  num_videos: int | None = None, shard: tuple[int, int] = (0, 1), world=None,
                  keep_features: bool = False, batch_size: int = 8, workers: int | None = None,
                  on_error: str = "fail", name: str | None = None, progress: bool = True) -> tuple[FVDStats, list]:
    """The FVD statistics of ``src`` (a folder, an array file or a uint8 ``(N, T, H, W, 3)`` tensor) under
    ``protocol``, for the videos of shard ``K/N`` (``shard=(K, N)``) and, under ``torchrun``, of this rank
    (``world``: :class:`zoo.train.distributed.World`): every rank returns the sums of all ranks, added in
    float64. Returns the statistics and the messages of the videos skipped or dropped."""
    from zoo.data.video_folder import select_shard
    from zoo.data.wait_clock import WaitClock
    from zoo.data.workers import decode_workers
    from tqdm.auto import tqdm
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
    preset = get_protocol(protocol)
    frames, stride = clip_for(preset, frames, stride)
    proto = protocol_for(model, frames, stride, preset, seed)
    sampling = sampling_for(proto, side)
    name = name or side.upper()
    indices = clip_indices(frames, stride)
    cap = num_videos if num_videos is not None else preset.videos
    if cap is not None and cap < 2:
        raise FVDError(f"--num-videos must be >= 2, got {cap}")
    videos = _as_videos(src)
    drop = preset.short_videos == "drop"
    videos, skipped = select_videos(videos, indices, cap, drop_short=drop, on_error=on_error, name=name)
    whole = shard == (0, 1) and (world is None or not world.distributed)
    if whole and len(videos) < 2:
        raise FVDError(f"{name}: FVD needs at least 2 videos per side, "
                       f"{src if not hasattr(src, 'shape') else 'the array'} holds {len(videos)} usable")
    if num_videos is not None and len(videos) < num_videos:
        raise FVDError(f"{name}: only {len(videos)} usable videos ({len(skipped)} skipped), --num-videos "
                       f"{num_videos} asked")
    if cap is not None and len(videos) < cap:
        warnings.warn(f"FVD {name}: protocol {preset.name} asks for {cap} videos, only {len(videos)} usable",
                      RuntimeWarning, stacklevel=2)
    mine = select_shard(videos, *shard)
    if world is not None and world.distributed:
        mine = select_shard(mine, world.rank, world.world_size)
    dataset = _Clips(mine, indices, SIZE, sampling["clip_offset"], seed, drop)
    model.runner.expect(len(mine))  # a compiling runner compiles only if enough clips are left to pay for it
    if workers is None:
        in_memory = not mine or isinstance(mine[0], _TensorVideo)  # nothing to decode
        workers = 0 if in_memory else decode_workers(len(mine), model.runner.device.type)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=workers, collate_fn=_collate,
                                         pin_memory=model.runner.device.type == "cuda")
    bar = tqdm(total=len(mine), unit="video", desc=f"FVD {name}", disable=not progress, file=sys.stderr)
    total, outer, count = None, None, 0
    feats, names = [], []
    clock = WaitClock()
    for items in clock.wrap(loader):
        ok = []
        for i, clip, err in items:
            if err is None:
                ok.append((i, clip))
            elif isinstance(err, tuple):  # too short, dropped by the protocol
                skipped.append(err[1])
            elif on_error == "fail":
                raise FVDError(f"{name}: {err}. Use --on-error skip to skip such videos (they are named and counted)")
            else:
                warnings.warn(f"FVD {name}: skipping {err}", RuntimeWarning, stacklevel=2)
                skipped.append(err)
        bar.update(len(items))
        if not ok:
            continue
        emb = model(model.runner.batch([c for _, c in ok])).cpu()
        batch_names = [mine[i].name for i, _ in ok]
        if not torch.isfinite(emb).all():
            bad = [batch_names[j] for j in (~torch.isfinite(emb)).any(1).nonzero().flatten().tolist()]
            raise FVDError(f"{name}: non-finite I3D features for {len(bad)} videos ({', '.join(bad[:5])}); "
                           "with --precision bf16 try fp32, else check those videos")
        x = emb.double()
        total = x.sum(0) if total is None else total + x.sum(0)
        outer = x.T @ x if outer is None else outer + x.T @ x
        count += len(ok)
        names.extend(batch_names)
        if keep_features:
            feats.append(emb)
    bar.close()
    dim = int(total.shape[0]) if total is not None else model.dim
    sums = torch.zeros(1 + dim + dim * dim, dtype=torch.float64)
    if count:
        sums[0], sums[1:1 + dim], sums[1 + dim:] = count, total, outer.flatten()
    features = torch.cat(feats).numpy() if feats else np.zeros((0, dim), np.float32)
    if world is not None and world.distributed:
        from zoo.train.distributed import all_gather_objects, all_reduce_sum
        sums = all_reduce_sum(sums, world)
        gathered = all_gather_objects((names, features if keep_features else None, skipped), world)
        names = [n for g in gathered for n in g[0]]
        features = np.concatenate([g[1] for g in gathered]) if keep_features else features
        skipped = [m for g in gathered for m in g[2]]
    count = int(round(float(sums[0])))
    digests = name_digests(names)
    order = np.lexsort(digests.T[::-1]) if count else np.zeros(0, np.int64)
    if len(set(names)) != len(names):
        raise FVDError(f"{name}: two videos share a name; the statistics identify videos by name")
    stats = FVDStats(count, sums[1:1 + dim].numpy(), sums[1 + dim:].reshape(dim, dim).numpy(), proto, sampling,
                     digests[order], features[order] if keep_features else None, len(skipped),
                     [names[i] for i in order])
    stats.data_wait = clock.fraction()
    if whole and count < 2:
        raise FVDError(f"{name}: FVD needs at least 2 videos per side, got {count} usable ({len(skipped)} skipped)")
    return stats, skipped


def _load_side(src):
    if isinstance(src, FVDStats):
        return src
    if isinstance(src, (str, os.PathLike)) and is_stats_file(src):
        return FVDStats.load(src)
    return None


@dataclass
class FVDResult:
    fvd: float
    num_real: int
    num_fake: int
    frames: int
    stride: int
    protocol: dict
    skipped_real: list = field(default_factory=list)
    skipped_fake: list = field(default_factory=list)
    real_stats: FVDStats | None = None
    fake_stats: FVDStats | None = None
    kvd: object = None              # zoo.metrics.kvd.KVDResult
    bootstrap: object = None        # zoo.metrics.fvd_uncertainty.Bootstrap
    extrapolation: object = None    # zoo.metrics.fvd_uncertainty.Extrapolation
    trials: object = None           # zoo.metrics.fvd_uncertainty.Trials

    @property
    def few_videos(self) -> bool:
        from zoo.metrics.fvd_uncertainty import few_videos
        return few_videos(self.num_real, self.num_fake)

    def to_dict(self) -> dict:
        from zoo.metrics.fvd_uncertainty import FEW_VIDEOS
        out = {"fvd": self.fvd, "num_real": self.num_real, "num_fake": self.num_fake, "frames": self.frames,
               "stride": self.stride, "protocol_name": self.protocol.get("protocol"),
               "quovadis_version": self.protocol.get("quovadis_version"), "skipped_real": len(self.skipped_real),
               "skipped_fake": len(self.skipped_fake), "few_videos": self.few_videos,
               "few_videos_threshold": FEW_VIDEOS, "protocol": self.protocol}
        if self.kvd is not None:
            out.update(self.kvd.to_dict())
        if self.bootstrap is not None:
            out.update(self.bootstrap.to_dict())
        if self.extrapolation is not None:
            out.update(self.extrapolation.to_dict())
        if self.trials is not None:
            out.update(self.trials.to_dict())
        return out


def fvd(real, fake, *, protocol: str = "reference", frames: int | None = None, stride: int | None = None,
        seed: int = 0, num_videos: int | None = None, weights=None, device=None, batch_size: int = 8,
        exact: bool = False, precision: str = "fp32", workers: int | None = None, on_error: str = "fail",
        progress: bool = False, model: FVDModel | None = None, kvd: bool = False, bootstrap: int = 0,
        extrapolate: bool = False, keep_features: bool = False) -> FVDResult:
    """FVD between ``real`` and ``fake``: each a folder of videos, a folder of frame folders, an
    ``.npy``/``.npz`` file, a stats file from ``quovadis fvd-stats``, an :class:`FVDStats`, or a uint8
    ``(N, T, H, W, 3)`` tensor/array.

    ``kvd``: also KVD (:mod:`zoo.metrics.kvd`); ``bootstrap=N``: a 95% interval from N resamples;
    ``extrapolate``: FVD∞ (:mod:`zoo.metrics.fvd_uncertainty`). These need each video's features: a stats
    file side must hold them (``fvd-stats --keep-features``)."""
    from zoo.metrics import fvd_uncertainty as U
    preset = get_protocol(protocol)
    sides = [_load_side(real), _load_side(fake)]
    if model is None and any(s is None for s in sides):
        model = FVDModel(weights=weights, device=device, exact=exact, precision=precision)
    for s, role in zip(sides, ("real", "fake")):
        if s is not None:
            check_side(s, role, f"{role.upper()} stats")
            if s.protocol.get("protocol") != preset.name:
                raise FVDError(f"{role.upper()} stats were made under protocol {s.protocol.get('protocol')!r}, this "
                               f"run is --protocol {preset.name}; pass --protocol {s.protocol.get('protocol')}")
    if model is not None:  # a stats file must match the protocol of this run: check before any embedding
        run_frames, run_stride = clip_for(preset, frames, stride)
        expected = protocol_for(model, run_frames, run_stride, preset, seed)
        for s, label in zip(sides, ("REAL", "FAKE")):
            if s is not None:
                check_protocols(s.protocol, expected, (f"{label} stats", "this run"))
    wants_features = keep_features or kvd or bootstrap or extrapolate or preset.trials > 1
    skipped = [[], []]
    for k, (src, role) in enumerate(zip((real, fake), ("real", "fake"))):
        if sides[k] is None:
            sides[k], skipped[k] = compute_stats(src, model, protocol=preset.name, side=role, frames=frames,
                                                 stride=stride, seed=seed, num_videos=num_videos,
                                                 keep_features=bool(wants_features), batch_size=batch_size,
                                                 workers=workers, on_error=on_error, progress=progress)
    a, b = sides
    check_protocols(a.protocol, b.protocol)
    value = frechet_distance(a.mu, a.sigma, b.mu, b.sigma)
    if not math.isfinite(value):
        raise FVDError(f"FVD is {value}; the statistics hold non-finite values")
    proto = a.protocol
    result = FVDResult(value, a.count, b.count, proto.get("frames"), proto.get("stride"), proto, skipped[0],
                       skipped[1], a, b)
    if preset.trials > 1:
        result.trials = U.trials(a.features, b.features, videos=preset.trial_videos, trials=preset.trials, seed=seed)
        result.fvd = result.trials.mean
    if kvd:
        from zoo.metrics.kvd import kvd as kvd_of
        for s, label in ((a, "REAL"), (b, "FAKE")):
            if s.features is None:
                raise FVDError(f"--kvd needs each {label} video's features, and the {label} stats file holds only "
                               "sums: make it with `quovadis fvd-stats ... --keep-features`, or pass the videos")
        result.kvd = kvd_of(a.features, b.features, seed=seed)
    if bootstrap:
        result.bootstrap = U.bootstrap_interval(a.features, b.features, bootstrap, seed=seed)
    if extrapolate:
        result.extrapolation = U.extrapolate(a.features, b.features, real_stats=(a.mu, a.sigma),
                                             fake_stats=(b.mu, b.sigma), seed=seed)
    return result
