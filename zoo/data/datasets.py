"""Video clip datasets: UCF-101, HMDB-51, Kinetics CSV, generic ``path,label`` CSV, folder per class.

All are a :class:`VideoClipDataset` over ``(relative video path, label)`` items. A sample is a dict::

    {"rgb": (3, T, H, W) float, "flow": (2, T, H, W) float, "label": int, "index": int, "path": str}

with ``rgb``/``flow`` present per ``modality`` ("rgb", "flow", "both"). Test mode (``mode="test"``) always
gives views ``(V, C, T, H, W)``, ``V = num_clips`` times the crops of the transform (3 for ThreeCrop); train
mode gives ``(C, T, H, W)`` for a single view.

Time. Clip positions are sampled (``zoo.data.sampling``) on the video's timeline, with the SHORT-CLIP RULE
(a short video loops: frame ``p % num_frames``). The timeline is the video's frames (counted, the rule of
``zoo.data.decode``) or, when ``fps`` is set, the video retimed to ``fps`` by its real timestamps BEFORE
anything else (``sampling.resample_times``; DeepMind's I3D: 25 fps). Stored flow must have been extracted on
that same timeline (``quovadis flow --fps F`` records it): flow whose recorded rate differs is refused with a
:class:`FlowGeometryError`, as is flow extracted at another short side than ``flow_short_side`` (the short
side the network's frames are resized to): its ``±bound`` clip was taken at the wrong scale. Each sample
carries the flow's recorded ``bound`` to ``transforms.Normalize``.
ALIGNMENT RULE: stored flow frame ``t`` is the motion from video frame ``t`` to ``t + 1`` (N frames give N-1
flow frames). A clip of RGB frames ``[i, i+1, ..., i+n)`` takes flow frames ``[i, ..., i+n)`` -- the same
indices, clamped to the last flow frame ``N - 2`` (so a looped clip's frame ``N-1`` uses flow ``N-2``).
RGB and flow therefore always start at the same index, and one random draw of the transform is applied to
both (see ``zoo.data.transforms``). Flow lives in ``flow_root/<video path relative to the root, extension
kept>/`` (``a/b.mp4`` -> ``flow_root/a/b.mp4/``: the naming of ``zoo.data.video_folder``, as ``quovadis flow``
writes it; ``zoo.data.flow_store``).

Corrupt files. Reading a video (or its flow) that fails -- undecodable, truncated, flow missing -- never
ends a run: the path goes into ``dataset.corrupt``, a :class:`CorruptVideoWarning` naming it is issued once
per path and process, and ``__getitem__`` returns the next valid item (``on_corrupt="next"``, after at most
``max_skips`` tries) or a :class:`Skipped` sentinel (``on_corrupt="sentinel"``, or when the tries run out).
DataLoader workers hold their own copy of the dataset, so their ``corrupt`` sets never reach the main
process; use ``collate_fn=collate_skip_corrupt``: it drops sentinels and puts in ``batch["skipped"]`` the
path of every corrupt file met for that batch (sentinels, and the files a "next" sample skipped, carried
on the sample as ``Sample.skipped``). Aggregate in the main loop::

    for batch in loader:
        dataset.corrupt.update(batch["skipped"]); n_skipped += len(batch["skipped"])
        if "label" not in batch: continue        # every sample of this batch was corrupt
"""
from __future__ import annotations

import csv
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from zoo.data import sampling
from zoo.data.decode import frame_times, read_frames, video_info
from zoo.data.transforms import Normalize
from zoo.data.video_folder import VIDEO_EXTENSIONS, output_path

MODALITIES = ("rgb", "flow", "both")

__all__ = ["VideoClipDataset", "UCF101", "HMDB51", "Kinetics", "CSVVideoDataset", "FolderVideoDataset",
           "CorruptVideoWarning", "FlowGeometryError", "Skipped", "Sample", "collate_skip_corrupt",
           "holdout_indices"]


class CorruptVideoWarning(UserWarning):
    """A video (or its stored flow) could not be read; the dataset skipped it."""


class FlowGeometryError(ValueError):
    """Stored flow extracted at another frame rate or short side than the clips are built on. Not a corrupt
    file: it is raised, never skipped, because every video of the dataset would be wrong the same way."""


@dataclass(frozen=True)
class Skipped:
    """Sentinel for a sample whose file could not be read."""
    index: int
    path: str
    error: str


class Sample(dict):
    """A sample dict; ``skipped`` holds the corrupt paths passed over to reach it (on_corrupt="next")."""
    skipped: tuple = ()


def collate_skip_corrupt(batch: list) -> dict:
    """``default_collate`` of the valid samples, plus ``"skipped"``: a list with one path per corrupt file
    met (dropped sentinels and files skipped on the way to a sample). No data keys if all were corrupt."""
    valid = [s for s in batch if not isinstance(s, Skipped)]
    skipped = [s.path for s in batch if isinstance(s, Skipped)]
    skipped += [p for s in valid for p in getattr(s, "skipped", ())]
    out = default_collate([dict(s) for s in valid]) if valid else {}
    out["skipped"] = skipped
    return out


class VideoClipDataset(Dataset):
    """Clips of videos ``root / rel`` with labels, from ``items = [(rel, label), ...]``.

    modality: "rgb", "flow" or "both"; flow_root: stored flow (needed for flow); clip_len, stride: frames
    per clip and step; num_clips: clips per video (train: random, test: spread evenly; ``"all"`` in test
    mode: ``ceil(T / clip span)`` clips covering the whole video, I3D's protocol); fps: retime to this rate
    by timestamps before sampling (DeepMind's I3D: 25) or None; flow_short_side: the short side the
    transform resizes frames to (stored flow must have been extracted at it; None: not checked);
    transform: a paired transform (default: ``Normalize()``, which takes the flow's recorded bound), drawn
    per clip; mode: "train" or "test"; classes: the class names, index = label; backend: video decoder."""

    def __init__(self, items: Iterable[tuple[str | Path, int]], root: str | Path, *, modality: str = "rgb",
                 flow_root: str | Path | None = None, clip_len: int = 64, stride: int = 1, num_clips: int = 1,
                 fps: float | None = None, transform=None, mode: str = "train", classes: Sequence[str] = (),
                 on_corrupt: str = "next", max_skips: int = 16, backend: str | None = None,
                 flow_short_side: int | None = None):
        if modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")
        if modality != "rgb" and flow_root is None:
            raise ValueError(f"modality={modality!r} needs flow_root (stored flow, zoo.data.flow_store)")
        if modality != "rgb":
            from zoo.data import flow_store  # noqa: F401  (fail here, not as "corrupt" on every item)
        if mode not in ("train", "test") or on_corrupt not in ("next", "sentinel"):
            raise ValueError(f"mode must be train/test and on_corrupt next/sentinel, got {mode!r}, {on_corrupt!r}")
        if num_clips == "all" and mode != "test" or num_clips != "all" and (not isinstance(num_clips, int)
                                                                          or num_clips < 1):
            raise ValueError(f"num_clips must be a positive int, or 'all' in test mode; got {num_clips!r}")
        self.root = Path(root)
        self.items = [(Path(p), int(y)) for p, y in items]
        self.modality, self.mode, self.classes = modality, mode, list(classes)
        self.flow_root = Path(flow_root) if flow_root is not None else None
        self.clip_len, self.stride, self.num_clips, self.fps = clip_len, stride, num_clips, fps
        self.transform = transform if transform is not None else Normalize()
        self.on_corrupt, self.max_skips, self.backend = on_corrupt, max_skips, backend
        self.flow_short_side = flow_short_side
        self.corrupt: set[str] = set()

    def __len__(self) -> int:
        return len(self.items)

    def subset(self, indices: Sequence[int], **changes) -> "VideoClipDataset":
        """A copy holding ``items[indices]`` only, with attributes replaced by ``changes`` (for a held-out
        validation split: ``mode="test"``, its own ``transform``)."""
        import copy
        new = copy.copy(self)
        new.items, new.corrupt = [self.items[i] for i in indices], set()
        for k, v in changes.items():
            if not hasattr(new, k):
                raise AttributeError(f"{type(self).__name__} has no attribute {k!r}")
            setattr(new, k, v)
        return new

    def video_path(self, i: int) -> Path:
        return self.root / self.items[i][0]

    def flow_dir(self, i: int) -> Path:
        rel = self.items[i][0]
        if rel.is_absolute():
            rel = Path(*rel.parts[1:])
        return output_path(self.flow_root, rel)

    @property
    def streams(self) -> tuple[str, ...]:
        return ("rgb", "flow") if self.modality == "both" else (self.modality,)

    # ------------------------------------------------------------ time
    def clip_positions(self, num_frames: int) -> torch.Tensor:
        """``(V, clip_len)`` positions on a timeline of ``num_frames`` frames (sampled and looped)."""
        if self.mode == "test":
            k = (sampling.whole_video_clips(num_frames, self.clip_len, self.stride) if self.num_clips == "all"
                 else self.num_clips)
            return sampling.uniform_clips(num_frames, self.clip_len, self.stride, k)
        return torch.stack([sampling.dense_indices(num_frames, self.clip_len, self.stride, "random")
                            for _ in range(self.num_clips)])

    def video_timeline(self, path: Path) -> torch.Tensor:
        """The video frame shown at each step of the clip timeline: all frames, or retimed to ``fps``."""
        if self.fps:
            return sampling.resample_times(frame_times(path), self.fps)
        return torch.arange(video_info(path, self.backend)[0])

    # ------------------------------------------------------------ reading
    def flow_meta(self, i: int) -> dict:
        """The stored flow's ``meta.json`` for item ``i``, checked against the clip timeline's frame rate
        and the network's short side (:class:`FlowGeometryError`)."""
        from zoo.data import flow_store
        fdir, path = self.flow_dir(i), self.video_path(i)
        if not flow_store.is_complete(fdir):
            raise FileNotFoundError(f"no complete stored flow for {path} in {fdir}")
        meta = flow_store.read_meta(fdir)
        rate, source = meta.get("fps"), meta.get("source_fps")
        if self.fps:
            rate = rate or video_info(path, self.backend)[1]
            if abs(rate - self.fps) > 1e-3 * self.fps:
                raise FlowGeometryError(
                    f"flow in {fdir} is at {rate:g} fps but clips are built at data.fps={self.fps:g}: RGB and flow "
                    f"would be misaligned. Re-extract it on the retimed video: "
                    f"quovadis flow SRC OUT --fps {self.fps:g}")
        elif rate and source and abs(rate - source) > 1e-3 * source:
            raise FlowGeometryError(
                f"flow in {fdir} was retimed to {rate:g} fps (video: {source:g} fps) but data.fps is unset, so "
                f"clips are built on the video's own frames. Set data.fps={rate:g}, or re-extract without --fps")
        short = min(int(meta["height"]), int(meta["width"]))
        if self.flow_short_side and short != self.flow_short_side:
            b, ss = float(meta["bound"]), self.flow_short_side
            raise FlowGeometryError(
                f"flow in {fdir} was extracted at short side {short} ({meta['height']}x{meta['width']}) but the "
                f"network is fed short side {ss}: its +-{b:g} px clip would be +-{b * ss / short:g} px there. "
                f"Re-extract it: quovadis flow SRC OUT --size {ss}")
        return meta

    def load(self, i: int) -> dict:
        """Raw views ``{"rgb": uint8 (V, 3, T, H, W), "flow": float (V, 2, T, H, W), "flow_bound": float}``;
        raises on a bad file."""
        path, out, lengths = self.video_path(i), {}, []
        if "flow" in self.streams:
            from zoo.data import flow_store
            meta = self.flow_meta(i)
            lengths.append(int(meta["num_frames"]) + 1)                    # N - 1 flow frames for N frames
        if "rgb" in self.streams:
            timeline = self.video_timeline(path)
            lengths.append(len(timeline))
        n = min(lengths)
        pos = self.clip_positions(n)
        v, t = pos.shape
        if "rgb" in self.streams:
            frames = read_frames(path, timeline[pos].reshape(-1), self.backend)   # (V*T, H, W, 3)
            out["rgb"] = frames.view(v, t, *frames.shape[1:]).permute(0, 4, 1, 2, 3)
        if "flow" in self.streams:
            fidx = pos.reshape(-1).clamp(max=max(n - 2, 0)).numpy()          # the alignment rule: <= N-2
            wanted = np.unique(fidx)
            flow = torch.as_tensor(np.asarray(flow_store.read_flow(self.flow_dir(i), wanted), dtype=np.float32))
            flow = flow[torch.from_numpy(np.searchsorted(wanted, fidx))]     # (V*T, H, W, 2)
            out["flow"] = flow.view(v, t, *flow.shape[1:]).permute(0, 4, 1, 2, 3)
            out["flow_bound"] = float(meta["bound"])
        return out

    def _views(self, raw: dict) -> dict:
        extra = {"flow_bound": raw.pop("flow_bound")} if "flow_bound" in raw else {}
        num_views = len(next(iter(raw.values())))
        outs = [self.transform({**{k: x[j] for k, x in raw.items()}, **extra}) for j in range(num_views)]
        views = {}
        for k in raw:
            parts = [o[k] if o[k].dim() == 5 else o[k][None] for o in outs]
            if self.mode == "train" and len(parts) == 1 and len(parts[0]) == 1:
                views[k] = parts[0][0]                        # one view: no copy
            else:
                views[k] = parts[0] if len(parts) == 1 else torch.cat(parts)
        return views

    def _mark_corrupt(self, path: str, err: Exception) -> None:
        if path not in self.corrupt:
            self.corrupt.add(path)
            warnings.warn(f"skipping unreadable video {path}: {type(err).__name__}: {err}",
                          CorruptVideoWarning, stacklevel=3)

    def __getitem__(self, i: int):
        skipped = []
        for k in range(min(self.max_skips, len(self) - 1) + 1):
            j = (i + k) % len(self)
            path = str(self.video_path(j))
            if path not in self.corrupt:
                try:
                    raw = self.load(j)
                except FlowGeometryError:
                    raise
                except Exception as e:  # any failure to read the file or its flow; transforms are outside
                    self._mark_corrupt(path, e)
                else:
                    sample = Sample(self._views(raw), label=self.items[j][1], index=j, path=path)
                    sample.skipped = tuple(skipped)
                    return sample
            if self.on_corrupt == "sentinel":
                return Skipped(j, path, "unreadable")
            skipped.append(path)
        return Skipped(i, str(self.video_path(i)), f"{len(skipped)} unreadable items in a row")

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({len(self)} videos, {len(self.classes)} classes, "
                f"modality={self.modality!r}, mode={self.mode!r}, clip_len={self.clip_len}, "
                f"stride={self.stride}, num_clips={self.num_clips}, fps={self.fps})")


# ---------------------------------------------------------------- formats
# CLASS RULE: a split's labels are numbered by the class list it is given (``classes=``: the training
# split's list, or an explicit class map), never by the labels its own rows happen to hold; a test split
# that lacks a class keeps the training numbering. A label outside the given list is an error.

def _lines(path: Path) -> list[str]:
    return [ln.strip() for ln in Path(path).read_text().splitlines() if ln.strip()]


def _lookup(names: Sequence[str], where) -> "callable":
    index = {n: k for k, n in enumerate(names)}

    def label_of(name: str) -> int:
        if name not in index:
            raise ValueError(f"{where}: label {name!r} is not among the {len(names)} classes of the class list "
                             f"({', '.join(list(names)[:5])}{', ...' if len(names) > 5 else ''}); pass the "
                             "training split's classes (or a class map, data.classes) that include it")
        return index[name]
    return label_of


def _same_classes(given: Sequence[str] | None, own: list[str], where) -> None:
    if given is not None and list(given) != own:
        raise ValueError(f"{where} defines its own class list ({len(own)} classes), which differs from the one "
                         f"given ({len(given)} classes); train and evaluate with the same annotations")


def holdout_indices(labels: Sequence[int], fraction: float, seed: int = 0) -> tuple[list[int], list[int]]:
    """``(train, val)`` item indices: ``fraction`` of each class's items (rounded, at least one when the class
    has two or more) held out for validation, drawn with ``seed``; both lists sorted."""
    if not 0 < fraction < 1:
        raise ValueError(f"the held-out fraction must be in (0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    by_class: dict[int, list[int]] = {}
    for i, y in enumerate(labels):
        by_class.setdefault(int(y), []).append(i)
    val = []
    for y in sorted(by_class):
        idx = by_class[y]
        k = min(len(idx) - 1, max(1, round(fraction * len(idx)))) if len(idx) > 1 else 0
        val += rng.permutation(idx)[:k].tolist()
    val_set = set(val)
    return [i for i in range(len(labels)) if i not in val_set], sorted(val)


class UCF101(VideoClipDataset):
    """UCF-101: ``classInd.txt`` ("1 ApplyEyeMakeup", 1-based), ``trainlist0N.txt`` ("Class/v_..avi 1"),
    ``testlist0N.txt`` ("Class/v_..avi"); paths relative to ``root``; labels 0-based here.
    ``annotations`` defaults to ``root/ucfTrainTestlist``. Class names match case-insensitively (UCF
    writes both "HandstandPushups" and "HandStandPushups")."""

    def __init__(self, root, annotations=None, split: int = 1, subset: str = "train", classes=None, **kw):
        ann = Path(annotations) if annotations is not None else Path(root) / "ucfTrainTestlist"
        given, classes = classes, {}
        for ln in _lines(ann / "classInd.txt"):
            num, name = ln.split(maxsplit=1)
            classes[int(num) - 1] = name
        names = [classes[k] for k in sorted(classes)]
        _same_classes(given, names, ann / "classInd.txt")
        lookup = {n.lower(): k for k, n in classes.items()}
        items = []
        for ln in _lines(ann / f"{'train' if subset == 'train' else 'test'}list{split:02d}.txt"):
            parts = ln.split()
            label = int(parts[1]) - 1 if len(parts) > 1 else lookup[parts[0].split("/")[0].lower()]
            items.append((parts[0], label))
        kw.setdefault("mode", "train" if subset == "train" else "test")
        super().__init__(items, root, classes=names, **kw)


class HMDB51(VideoClipDataset):
    """HMDB-51: split files ``<class>_test_split<N>.txt`` with lines "<video> <0|1|2>" (1 train, 2 test,
    0 unused); videos at ``root/<class>/<video>``; classes sorted by name."""

    def __init__(self, root, splits_dir, split: int = 1, subset: str = "train", classes=None, **kw):
        suffix = f"_test_split{split}.txt"
        files = sorted(Path(splits_dir).glob(f"*{suffix}"))
        if not files:
            raise FileNotFoundError(f"no *{suffix} files in {splits_dir}")
        names = [f.name[: -len(suffix)] for f in files]
        _same_classes(classes, names, splits_dir)
        keep = "1" if subset == "train" else "2"
        items = [(f"{name}/{ln.split()[0]}", label)
                 for label, (name, f) in enumerate(zip(names, files))
                 for ln in _lines(f) if ln.split()[1] == keep]
        kw.setdefault("mode", "train" if subset == "train" else "test")
        super().__init__(items, root, classes=names, **kw)


class Kinetics(VideoClipDataset):
    """Kinetics CSV ``label,youtube_id,time_start,time_end,split`` (label absent in test CSVs -> -1).
    Files ``<youtube_id>_<time_start:06d>_<time_end:06d><ext>`` under ``root/<split>/<label>/``,
    ``root/<label>/``, ``root/<split>/`` or ``root/`` (label folders with spaces or underscores). Rows whose
    file is found nowhere are left out and listed in ``self.missing``. ``classes`` (e.g. the model's label
    list) fixes the numbering; by default the sorted labels of the CSV."""

    def __init__(self, root, csv_path, subset: str | None = None, classes: Sequence[str] | None = None,
                 ext: str = ".mp4", **kw):
        root = Path(root)
        with open(csv_path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if subset is None or r.get("split") == subset]
        names = list(classes) if classes is not None else sorted({r["label"] for r in rows if r.get("label")})
        label_of = _lookup(names, csv_path)
        items, self.missing = [], []
        for r in rows:
            name = f"{r['youtube_id']}_{int(float(r['time_start'])):06d}_{int(float(r['time_end'])):06d}{ext}"
            label, split = r.get("label") or "", r.get("split") or ""
            dirs = [Path(split, label), Path(split, label.replace(" ", "_")), Path(label),
                    Path(label.replace(" ", "_")), Path(split), Path()]
            rel = next((d / name for d in dirs if (root / d / name).is_file()), None)
            if rel is None:
                self.missing.append(name)
            else:
                items.append((rel, label_of(label) if label else -1))
        super().__init__(items, root, classes=names, **kw)


class CSVVideoDataset(VideoClipDataset):
    """A CSV with header ``path,label``: label an int or a class name (numbered by sorted name unless
    ``classes`` is given); paths relative to ``root`` (default: the CSV's folder) or absolute."""

    def __init__(self, csv_path, root=None, classes: Sequence[str] | None = None, **kw):
        with open(csv_path, newline="") as f:
            rows = [(r["path"], r["label"].strip()) for r in csv.DictReader(f)]
        numeric = all(re.fullmatch(r"-?\d+", y) for _, y in rows)
        if classes is not None:
            names = list(classes)
            numeric = numeric and not any(y in names for _, y in rows)
        else:
            names = [] if numeric else sorted({y for _, y in rows})
        label_of = _lookup(names, csv_path)
        items = [(p, int(y) if numeric else label_of(y)) for p, y in rows]
        super().__init__(items, root if root is not None else Path(csv_path).parent, classes=names, **kw)


class FolderVideoDataset(VideoClipDataset):
    """``root/<class>/<video>``; classes sorted by folder name (or ``classes``), videos by file name."""

    def __init__(self, root, extensions: Sequence[str] = VIDEO_EXTENSIONS, classes: Sequence[str] | None = None,
                 **kw):
        root = Path(root)
        found = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
        names = list(classes) if classes is not None else found
        label_of = _lookup(names, root)
        exts = {e.lower() for e in extensions}
        items = [(Path(n) / f.name, label_of(n)) for n in found
                 for f in sorted((root / n).iterdir()) if f.suffix.lower() in exts]
        super().__init__(items, root, classes=names, **kw)
