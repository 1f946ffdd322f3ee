"""Clip features of every video in a folder, with any zoo model: one file per video, resumable.

    >>> from zoo.metrics.features import FeatureExtractor
    >>> fx = FeatureExtractor("i3d_inception_k400_rgb", endpoints=["Mixed_5c"], clip_len=64, stride=64, pool="mean")
    >>> summary = fx.run("videos/", "features/")        # features/<relative path>.safetensors per video (a.mp4 -> a.mp4.safetensors)

Clips (:mod:`zoo.data.sampling`, ``clip_starts``): ``clip_len`` frames starting every ``stride`` frames (frame
indices; no resampling), the last clip ending at or before the video's end; a video shorter than one clip
gives one clip with its last frame repeated. Each clip is preprocessed as the model's registry entry says
(RGB: short side 256, centre crop 224, [-1, 1]; flow: the same size, clipped to +-20 px / 20).

Endpoints: for I3D models any of :data:`zoo.models.i3d.ENDPOINTS`, exactly what
:meth:`~zoo.models.i3d.InceptionI3d.extract_endpoints` returns on the same clips; for inflated timm/torchvision
models ``features`` (``forward_features``) and ``logits``. Two-stream models give ``rgb.<endpoint>`` and
``flow.<endpoint>``. ``pool="mean"`` averages a feature map ``(C, T, H, W)`` over T, H and W.

Output per video ``OUT/<relative path, extension kept>.safetensors`` (:meth:`zoo.data.video_folder.Video.output_path`): one tensor per endpoint
``(clips, ...)`` float32, ``timestamps`` ``(clips, 2)`` float64 seconds ``[start, end)``, ``frames``
``(clips, 2)`` int64 ``[start, end)``, and the settings in the metadata. ``format="npy"`` writes
``<name>.npy`` (``a.mp4.npy``: one endpoint, one stream) beside ``<name>.json`` (timestamps, frames, settings).
Writes are atomic; a video whose output exists is skipped (after checking it was made with the same
settings), so a killed run resumes where it stopped.

Flow models read the flow of video ``SRC/a/b.mp4`` from ``FLOW_DIR/a/b.mp4/`` as written by ``quovadis flow``
(flow frame i is from frame i to i + 1; clips index flow frames, at the flow's rate: for flow made with
``--fps``, a two-stream model's RGB frames are those of the video retimed the same way).
"""
from __future__ import annotations

import json
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from zoo.data.sampling import clip_bounds, clip_frames, clip_seconds, clip_starts
from zoo.data.video_folder import list_videos, select_shard
from zoo.data.wait_clock import WaitClock
from zoo.data.workers import decode_workers

POOLS = ("none", "mean")
FORMATS = ("safetensors", "npy")
FEATURES_FORMAT = "quovadis.features.v1"


class FeatureError(ValueError):
    """Bad settings or inputs for feature extraction."""


@dataclass
class _Job:
    index: int
    video: object       # zoo.data.video_folder.Video
    out: Path
    flow_dir: Path | None


class _ClipChunks(torch.utils.data.IterableDataset):
    """Decode and preprocess each job's clips, ``chunk`` clips at a time; a worker takes every k-th job."""

    def __init__(self, jobs, streams, transforms, clip_len, stride, chunk):
        self.jobs, self.streams, self.transforms = jobs, streams, transforms
        self.clip_len, self.stride, self.chunk = clip_len, stride, chunk

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        jobs = self.jobs if info is None else self.jobs[info.id::info.num_workers]
        for job in jobs:
            try:
                yield from self._clips(job)
            except Exception as e:  # reported by name and counted in the main process
                yield {"job": job.index, "error": f"{job.video.path}: {type(e).__name__}: {e}", "last": True}

    def _clips(self, job):
        from zoo.data.flow_store import read_flow, read_meta
        timeline = None  # RGB frame of each timeline frame, when the flow was made on a retimed video
        if "flow" in self.streams:
            meta = read_meta(job.flow_dir)
            n, fps = int(meta["num_frames"]), float(meta.get("fps") or job.video.fps())
            src_fps = meta.get("source_fps")
            if "rgb" in self.streams and src_fps and abs(float(src_fps) - fps) > 1e-3 and job.video.kind == "file":
                from zoo.data.decode import frame_times
                from zoo.data.sampling import resample_times
                timeline = resample_times(frame_times(job.video.path), fps).tolist()  # as `quovadis flow --fps`
        else:
            n, fps = job.video.num_frames(), job.video.fps()
        starts = clip_starts(n, self.clip_len, self.stride)
        for c in range(0, len(starts), self.chunk):
            part = starts[c:c + self.chunk]
            idx = sorted({i for s in part for i in clip_frames(s, self.clip_len, n)})
            pos = {f: k for k, f in enumerate(idx)}
            item = {"job": job.index, "starts": part, "num_frames": n, "fps": fps,
                    "last": c + self.chunk >= len(starts), "error": None}
            for stream in self.streams:
                if stream == "rgb":
                    frames = job.video.read(idx if timeline is None else [timeline[min(i, len(timeline) - 1)]
                                                                            for i in idx])
                else:
                    frames = torch.from_numpy(read_flow(job.flow_dir, idx))
                clips = []
                for s in part:
                    sel = torch.tensor([pos[f] for f in clip_frames(s, self.clip_len, n)])
                    clip = frames[sel]
                    clips.append(self.transforms[stream](clip))
                item[stream] = torch.stack(clips)
            yield item


def _collate(items):
    return items[0]


class _Outputs(nn.Module):
    """One stream's wanted outputs ``{name: tensor}`` as a module, so the runner can compile it whole: I3D
    endpoints (``extract_endpoints``), or an inflated network's ``features`` / ``logits``."""

    def __init__(self, net: nn.Module, endpoints: list[str], inflated: bool):
        super().__init__()
        self.net, self.endpoints, self.inflated = net, list(endpoints), inflated

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if not self.inflated:
            return self.net.extract_endpoints(x, self.endpoints)
        out = {}
        if "features" in self.endpoints:
            out["features"] = self.net.forward_features(x)
        if "logits" in self.endpoints:
            out["logits"] = self.net(x)
        return out


class FeatureExtractor:
    """Extract clip features with zoo model ``model`` (see the module docstring for the settings)."""

    def __init__(self, model: str, *, endpoints=None, clip_len: int = 64, stride: int = 64, pool: str = "none",
                 weights=None, device=None, precision: str = "auto", exact: bool = False, batch_size: int = 4,
                 fmt: str = "safetensors", net=None, compile: bool | None = None):
        import zoo
        from zoo.models.inference import InferenceModel
        if pool not in POOLS:
            raise FeatureError(f"unknown --pool {pool!r}; choose one of {', '.join(POOLS)}")
        if fmt not in FORMATS:
            raise FeatureError(f"unknown --format {fmt!r}; choose one of {', '.join(FORMATS)}")
        self.entry = zoo.info(model)
        self.name = model
        self.arch = self.entry.arch
        self.endpoints = list(endpoints or (["Logits"] if self.arch != "inflated" else ["features"]))
        self._check_endpoints()
        self.streams = (["rgb", "flow"] if self.arch == "two_stream_i3d" else [self.entry.modality])
        if fmt == "npy" and (len(self.streams) > 1 or len(self.endpoints) > 1):
            raise FeatureError("--format npy holds one array per video: give one --endpoint and a one-stream "
                               "model, or use --format safetensors")
        self.clip_len, self.stride, self.pool, self.fmt = clip_len, stride, pool, fmt
        if clip_len < 1 or stride < 1:
            raise FeatureError(f"--clip-len and --stride must be >= 1, got {clip_len} and {stride}")
        self.batch_size = batch_size
        if net is None:
            if self.arch == "two_stream_i3d" and isinstance(weights, str):
                raise FeatureError(f"{model} is two-stream: give weights as {{'rgb': FILE, 'flow': FILE}}")
            net = zoo.load(model, weights=weights)
        self.runner = InferenceModel(net, device=device, precision=precision, exact=exact, compile=compile)
        model = self.runner.model
        self._heads = {stream: self.runner.wrap(_Outputs(getattr(model, stream) if len(self.streams) > 1 else model,
                                                         self.endpoints, self.arch == "inflated"))
                       for stream in self.streams}
        self.weights = str(weights) if weights is not None else "zoo"

    def _check_endpoints(self):
        from zoo.models.i3d import ENDPOINTS
        allowed = ENDPOINTS if self.arch != "inflated" else ("features", "logits")
        bad = [e for e in self.endpoints if e not in allowed]
        if bad:
            raise FeatureError(f"{self.name} has no endpoint {bad[0]!r}; endpoints: {', '.join(allowed)}")

    def describe(self) -> str:
        return self.runner.describe()

    @property
    def settings(self) -> dict:
        return {"model": self.name, "endpoints": self.endpoints, "clip_len": self.clip_len, "stride": self.stride,
                "pool": self.pool, "precision": self.runner.precision, "exact": self.runner.exact,
                "weights": self.weights}

    # -- the network -------------------------------------------------------------------------------
    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool == "mean" and x.dim() == 5:
            return x.mean(dim=(2, 3, 4))
        return x

    def _stream_features(self, stream: str, x: torch.Tensor) -> dict[str, torch.Tensor]:
        runner = self.runner
        with runner.context():
            out = self._heads[stream](runner.prepare_input(x))
        return {k: self._pool(v.float()).cpu() for k, v in out.items()}

    def features(self, clips: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``{stream: (B, C, T, H, W)}`` preprocessed clips -> ``{name: (B, ...)}`` features."""
        if self.arch == "two_stream_i3d":
            out = {}
            for stream in ("rgb", "flow"):
                out.update({f"{stream}.{k}": v for k, v in self._stream_features(stream, clips[stream]).items()})
            return out
        return self._stream_features(self.streams[0], clips[self.streams[0]])

    # -- files -------------------------------------------------------------------------------------
    def output_path(self, out_dir: Path, video) -> Path:
        """``OUT/<video name, extension kept>.safetensors`` (or ``.npy``): :meth:`Video.output_path`."""
        return video.output_path(out_dir, ".safetensors" if self.fmt == "safetensors" else ".npy")

    def _done(self, path: Path) -> bool:
        """Whether ``path`` holds finished features; refuses ones made with other settings."""
        if not path.is_file():
            return False
        if self.fmt == "safetensors":
            from safetensors import safe_open
            try:
                with safe_open(str(path), "np") as f:
                    settings = json.loads((f.metadata() or {}).get("settings", "null"))
            except Exception:
                return False  # unreadable: redo it
        else:
            try:
                settings = json.loads(path.with_suffix(".json").read_text()).get("settings")
            except (OSError, ValueError):
                return False
        mine = json.loads(json.dumps(self.settings))
        if settings != mine:
            diff = [k for k in mine if (settings or {}).get(k) != mine[k]]
            raise FeatureError(f"{path} holds features made with other settings ({', '.join(diff)} differ); "
                               "write to another OUT folder, or delete the old files to redo them")
        return True

    def _write(self, path: Path, feats: dict[str, torch.Tensor], starts, n: int, fps: float, source: str) -> None:
        from inflate.atomic import atomic_path
        frames = clip_bounds(starts, self.clip_len, n)
        timestamps = clip_seconds(frames, fps)
        meta = {"format": FEATURES_FORMAT, "settings": json.dumps(self.settings), "num_frames": str(n),
                "fps": repr(fps), "source": source}
        if self.fmt == "safetensors":
            from safetensors.numpy import save_file
            tensors = {k: np.ascontiguousarray(v.numpy()) for k, v in feats.items()}
            tensors.update(timestamps=timestamps, frames=frames)
            with atomic_path(path) as tmp:
                save_file(tensors, str(tmp), metadata=meta)
            return
        side = {"settings": self.settings, "endpoint": next(iter(feats)), "timestamps": timestamps.tolist(),
                "frames": frames.tolist(), "num_frames": n, "fps": fps, "source": source}
        with atomic_path(path.with_suffix(".json")) as tmp:  # the sidecar first: the .npy marks completion
            tmp.write_text(json.dumps(side))
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, next(iter(feats.values())).numpy())

    # -- the loop ----------------------------------------------------------------------------------
    def run(self, src, out_dir, *, flow_dir=None, shard: tuple[int, int] = (0, 1), workers: int | None = None,
            on_error: str = "skip", progress: bool = True, chunk: int | None = None) -> dict:
        """Extract every video of ``src`` (see :func:`zoo.data.video_folder.list_videos`) into ``out_dir``.

        Returns ``{"videos", "done", "skipped" (already finished), "failed" (messages), "clips", "seconds",
        "clips_per_s"}``."""
        from tqdm.auto import tqdm

        if on_error not in ("skip", "fail"):
            raise FeatureError(f"on_error must be 'skip' or 'fail', got {on_error!r}")
        if "flow" in self.streams and flow_dir is None:
            raise FeatureError(f"{self.name} reads optical flow: make it with `quovadis flow SRC FLOW_DIR` "
                               "and pass --flow-dir FLOW_DIR")
        out_dir = Path(out_dir)
        videos = select_shard(list_videos(src), *shard)
        jobs, skipped = [], 0
        for v in videos:
            path = self.output_path(out_dir, v)
            if self._done(path):
                skipped += 1
                continue
            fdir = v.output_path(flow_dir) if flow_dir is not None else None
            jobs.append(_Job(len(jobs), v, path, fdir))
        transforms = self._transforms()
        dataset = _ClipChunks(jobs, self.streams, transforms, self.clip_len, self.stride, chunk or self.batch_size)
        workers = decode_workers(len(jobs), self.runner.device.type) if workers is None else min(workers, len(jobs))
        loader = torch.utils.data.DataLoader(dataset, batch_size=1, num_workers=workers, collate_fn=_collate,
                                             pin_memory=self.runner.device.type == "cuda")
        start, clips, done, failed = time.perf_counter(), 0, 0, []
        pending: dict[int, dict] = {}
        bar = tqdm(unit="clip", desc=f"features {len(jobs)} videos", disable=not progress or not jobs,
                   file=sys.stderr)
        clock = WaitClock()
        for item in clock.wrap(loader) if jobs else ():
            job = jobs[item["job"]]
            if item["error"] is not None:
                pending.pop(item["job"], None)
                if on_error == "fail":
                    raise FeatureError(f"cannot extract features of {item['error']}; --on-error skip goes on")
                warnings.warn(f"features: skipping {item['error']}", RuntimeWarning, stacklevel=2)
                failed.append(item["error"])
                continue
            feats = self.features({s: item[s] for s in self.streams})
            acc = pending.setdefault(item["job"], {"feats": {}, "starts": []})
            for k, v in feats.items():
                acc["feats"].setdefault(k, []).append(v)
            acc["starts"] += item["starts"]
            clips += len(item["starts"])
            bar.update(len(item["starts"]))
            if item["last"]:
                acc = pending.pop(item["job"])
                bad = [k for k, v in acc["feats"].items() if not all(torch.isfinite(t).all() for t in v)]
                if bad:
                    msg = f"{job.video.path}: non-finite features at {', '.join(bad)}"
                    if on_error == "fail":
                        raise FeatureError(msg + (" (try --precision fp32)" if self.runner.precision == "bf16" else ""))
                    warnings.warn(f"features: skipping {msg}", RuntimeWarning, stacklevel=2)
                    failed.append(msg)
                    continue
                self._write(job.out, {k: torch.cat(v) for k, v in acc["feats"].items()}, acc["starts"],
                            item["num_frames"], item["fps"], str(job.video.path))
                done += 1
                bar.set_postfix(videos=f"{done}/{len(jobs)}")
        bar.close()
        seconds = time.perf_counter() - start
        return {"videos": len(videos), "done": done, "skipped": skipped, "failed": failed, "clips": clips,
                "seconds": round(seconds, 3), "clips_per_s": round(clips / seconds, 3) if seconds and clips else 0.0,
                "data_wait": round(clock.fraction(), 4)}

    def _transforms(self) -> dict:
        t = self.entry.transform
        if isinstance(t, dict):
            return {"rgb": t["rgb"], "flow": t["flow"]}
        return {self.streams[0]: t}
