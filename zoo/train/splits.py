"""Which videos a run trains on, which it validates on, and the one class list every split is numbered by.

CLASS RULE: the class list comes from an explicit class map (``data.classes``: a file with one name per
line, or a list) or else from the training split; validation and test splits are numbered by it, never by
the labels they happen to hold. The run records it (``config.json``: ``data.classes``), and
``quovadis evaluate`` numbers the test split by the recorded list.

VALIDATION RULE: a best checkpoint is chosen only on a split the test never sees: ``data.val_list`` (a CSV
the user supplies) or ``data.val_fraction`` of each training class held out (with ``seed``). Without either,
validation runs on the TEST split (UCF-101 and HMDB-51 have no other) to monitor training only: choosing a
checkpoint there would report an optimistic test accuracy, so none is chosen and evaluation uses the last.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from zoo.data.datasets import holdout_indices

from zoo.train.config import TrainConfig
from zoo.train.data import build_dataset, test_transform


@dataclass
class Splits:
    train: object
    val: object | None
    val_split: str | None  # "val_list", "holdout", "test" (monitoring only) or None (no validation)
    classes: list[str]

    @property
    def selects_best(self) -> bool:
        """Whether validation may choose the best checkpoint (a split the test never sees)."""
        return self.val_split in ("val_list", "holdout")


def read_class_map(spec) -> list[str] | None:
    """``data.classes`` -> a list of names: a list as is, a file read one name per line, None as None."""
    if spec is None or isinstance(spec, (list, tuple)):
        return None if spec is None else [str(c) for c in spec]
    path = Path(spec)
    if not path.is_file():
        raise FileNotFoundError(f"data.classes={spec!r}: no such class map file (one class name per line)")
    return [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]


def describe_validation(cfg: TrainConfig) -> tuple[str | None, bool]:
    """``(split name, selects_best)`` for a config (see the VALIDATION RULE)."""
    d = cfg.data
    if d.val_list:
        return "val_list", True
    if d.val_fraction:
        return "holdout", True
    return "test", False


def build_splits(cfg: TrainConfig, *, validate: bool = True) -> Splits:
    """The training set, the validation set (or None) and the class list, from ``cfg.data``. ``validate``
    False (``--no-val``): no validation set, whatever the config holds; the videos ``data.val_fraction``
    holds out still stay out of training, so the flag never changes what a run trains on."""
    d = cfg.data
    train = build_dataset(cfg, "train", classes=read_class_map(d.classes))
    classes = list(train.classes) or [str(i) for i in range(max((y for _, y in train.items), default=-1) + 1)]
    name, selects = describe_validation(cfg)
    val = None
    if name == "holdout":
        keep, held = holdout_indices([y for _, y in train.items], d.val_fraction, cfg.seed)
        if not held:
            raise ValueError(f"data.val_fraction={d.val_fraction} holds out no video (every class has one); "
                             "use a larger fraction or data.val_list")
        if validate:
            val = train.subset(held, mode="test", transform=test_transform(cfg), num_clips=1)
        train = train.subset(keep)
    elif validate:
        val = build_dataset(cfg, "val" if name == "val_list" else "test", classes=classes)
    if val is not None:
        val.split_name, val.selects_best = name, selects
    return Splits(train, val, name if val is not None else None, classes)
