"""The datasets a run trains and validates on, built from ``cfg.data`` (zoo.data formats and transforms)."""
from __future__ import annotations

from pathlib import Path

from zoo.data import datasets as D
from zoo.data import transforms as T

from zoo.train.config import TrainConfig


class NormalizeFlowOnly(T.Normalize):
    """Flow to [-1, 1] in the loader workers; RGB stays uint8, a quarter of float32's bytes through worker
    memory, pinned memory and the host-to-device copy, and is scaled to [-1, 1] on the device by the
    training loop (``loop.to_model_input``)."""

    def apply(self, x, params, kind):
        return super().apply(x, params, kind) if kind == "flow" else x


def train_transform(cfg: TrainConfig):
    d = cfg.data
    steps = [T.ResizeShortSide(d.short_side), T.MultiScaleCrop(d.size) if d.multiscale else T.RandomCrop(d.size)]
    if d.flip:
        steps.append(T.RandomHorizontalFlip())
    return T.Compose(steps + [NormalizeFlowOnly()])


def test_transform(cfg: TrainConfig):
    d = cfg.data
    crop = T.ThreeCrop(d.size) if d.test_crops == 3 else T.CenterCrop(d.size)
    return T.Compose([T.ResizeShortSide(d.short_side), crop, NormalizeFlowOnly()])


KINETICS_CSV_NAMES = {"train": ("train.csv",), "val": ("validate.csv", "val.csv")}  # official; CVDF's mirror


def kinetics_csv(where: Path, split: str) -> tuple[Path, str | None]:
    """The Kinetics annotation CSV of ``split`` ("train" or "val") and the ``split`` column value to keep
    (None: every row). ``where`` a file: that CSV, its rows of ``split``. ``where`` a folder: the split's own
    CSV in it, ``train.csv`` / ``validate.csv`` or ``val.csv``, else the one file named like ``*_train.csv``."""
    if where.is_file():
        return where, split
    if not where.is_dir():
        raise FileNotFoundError(f"data.annotations={where} does not exist (a Kinetics CSV, or the folder "
                                "holding train.csv and validate.csv)")
    names = KINETICS_CSV_NAMES[split]
    exact = [where / n for n in names if (where / n).is_file()]
    if exact:
        return exact[0], None
    found = sorted({f for n in names for f in where.glob(f"*[_-]{n}")})
    if len(found) == 1:
        return found[0], None
    if found:
        raise ValueError(f"{where} holds several CSVs of the {split!r} split ({', '.join(f.name for f in found)}); "
                         "set data.annotations to the one to use")
    present = ", ".join(sorted(f.name for f in where.glob("*.csv"))) or "none"
    raise FileNotFoundError(f"{where} has no CSV of the {split!r} split (looked for {' or '.join(names)}; "
                            f"CSVs there: {present}); set data.annotations to a Kinetics CSV or its folder")


def build_dataset(cfg: TrainConfig, subset: str, *, test_views: bool = False, classes=None):
    """``subset`` "train", "test" or "val" (``data.val_list``) of the configured format; test sets give
    multi-view samples only when ``test_views`` (evaluation), else one centre view per video (validation
    during training). ``classes``: the class list that numbers the labels (the training split's; None: the
    split's own). Held-out validation (``data.val_fraction``) is built by ``zoo.train.splits``."""
    d = cfg.data
    train = subset == "train"
    common = dict(modality=d.modality, flow_root=d.flow_root, clip_len=d.clip_len, stride=d.stride, fps=d.fps,
                  transform=train_transform(cfg) if train else test_transform(cfg), classes=classes,
                  flow_short_side=d.short_side,
                  num_clips=1 if train or not test_views else d.test_clips, mode="train" if train else "test")
    fmt, root = d.format, Path(d.root)
    if subset == "val":
        if not d.val_list:
            raise ValueError("a validation list needs data.val_list (a CSV path,label)")
        return D.CSVVideoDataset(d.val_list, root=root, **common)
    if fmt == "ucf101":
        return D.UCF101(root, d.annotations, split=d.split, subset=subset, **common)
    if fmt == "hmdb51":
        return D.HMDB51(root, d.annotations or root / "testTrainMulti_7030_splits", split=d.split, subset=subset,
                        **common)
    if fmt == "kinetics":
        split = "train" if train else "val"     # Kinetics' test labels are withheld: its test is the val split
        csv, rows = kinetics_csv(Path(d.annotations) if d.annotations else root, split)
        dataset = D.Kinetics(root, csv, subset=rows, **common)
        if rows and not dataset.items and not dataset.missing:
            raise ValueError(f"data.annotations={csv} has no rows of the {split!r} split (its 'split' column); "
                             f"point data.annotations at the folder holding train.csv and validate.csv, or at "
                             f"one CSV holding every split")
        return dataset
    if fmt == "csv":
        csv = Path(d.annotations or root) / f"{'train' if train else 'test'}.csv"
        return D.CSVVideoDataset(csv, root=root, **common)
    if fmt == "folders":
        return D.FolderVideoDataset(root / ("train" if train else "test"), **common)
    raise ValueError(f"data.format must be ucf101, hmdb51, kinetics, csv or folders, got {fmt!r}")
