"""Which videos each split of a run reads (zoo.train.data, zoo.train.splits): Kinetics' splits read their own
annotations (issue 19, bug 1), and ``--no-val`` turns validation off whatever the config holds (bug 10).
Real MP4 files, a few frames each."""
import csv
from pathlib import Path

import numpy as np
import pytest

from zoo.cli.main import main
from zoo.data.synthetic import encode_mp4, make_moving_shapes
from zoo.train.config import load_config
from zoo.train.data import build_dataset
from zoo.train.splits import build_splits

KINETICS_HEADER = ["label", "youtube_id", "time_start", "time_end", "split"]
ROWS = {"train": [("abseiling", "trainA"), ("bowling", "trainB")],
        "val": [("abseiling", "valA"), ("bowling", "valB")]}


@pytest.fixture(scope="module")
def kinetics(tmp_path_factory):
    """A Kinetics-400 layout: root/<split>/<label>/<id>_000000_000010.mp4, and the official per-split CSVs
    (train.csv, validate.csv) in root and in root/annotations, and one CSV holding every split."""
    root = tmp_path_factory.mktemp("kinetics")
    video = np.zeros((2, 16, 16, 3), np.uint8)
    for split, rows in ROWS.items():
        for label, vid in rows:
            path = root / split / label / f"{vid}_000000_000010.mp4"
            path.parent.mkdir(parents=True, exist_ok=True)
            encode_mp4(path, video)
    for folder in (root / "annotations", root):
        folder.mkdir(exist_ok=True)
        for split, name in (("train", "train.csv"), ("val", "validate.csv")):
            write_csv(folder / name, [(label, vid, split) for label, vid in ROWS[split]])
    write_csv(root / "all.csv", [(label, vid, split) for split, rows in ROWS.items() for label, vid in rows])
    return root


def write_csv(path: Path, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(KINETICS_HEADER)
        w.writerows([(label, vid, 0, 10, split) for label, vid, split in rows])


def video_ids(dataset) -> list[str]:
    return sorted(Path(p).name.split("_")[0] for p, _ in dataset.items)


def kinetics_cfg(root, annotations=None):
    extra = [] if annotations is None else [f"data.annotations={annotations}"]
    return load_config(None, ["data.format=kinetics", f"data.root={root}", *extra])


# ---------------------------------------------------------------- bug 1: each Kinetics split reads its own rows

def test_bug1_kinetics_one_csv_gives_each_split_its_own_rows(kinetics):
    cfg = kinetics_cfg(kinetics, kinetics / "all.csv")
    train = build_dataset(cfg, "train")
    test = build_dataset(cfg, "test", classes=train.classes)
    assert video_ids(train) == ["trainA", "trainB"]
    assert video_ids(test) == ["valA", "valB"]                  # not the training videos
    assert [y for _, y in sorted(test.items)] == [0, 1]


@pytest.mark.parametrize("annotations", ["annotations", None])
def test_bug1_kinetics_annotations_folder_picks_each_splits_csv(kinetics, annotations):
    cfg = kinetics_cfg(kinetics, annotations and kinetics / annotations)   # None: the split's CSV under root
    assert video_ids(build_dataset(cfg, "train")) == ["trainA", "trainB"]
    assert video_ids(build_dataset(cfg, "test")) == ["valA", "valB"]


def test_bug1_kinetics_training_csv_alone_is_refused_for_the_test_split(kinetics):
    cfg = kinetics_cfg(kinetics, kinetics / "annotations" / "train.csv")
    assert video_ids(build_dataset(cfg, "train")) == ["trainA", "trainB"]
    with pytest.raises(ValueError, match=r"train\.csv has no rows of the 'val' split.*folder"):
        build_dataset(cfg, "test")


def test_bug1_kinetics_folder_without_the_splits_csv_is_named(kinetics, tmp_path):
    (tmp_path / "train.csv").write_bytes((kinetics / "annotations" / "train.csv").read_bytes())
    cfg = kinetics_cfg(kinetics, tmp_path)
    assert video_ids(build_dataset(cfg, "train")) == ["trainA", "trainB"]
    with pytest.raises(FileNotFoundError, match=r"no CSV of the 'val' split.*validate\.csv.*train\.csv"):
        build_dataset(cfg, "test")


# ---------------------------------------------------------------- bug 10: --no-val with a held-out fraction

@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return make_moving_shapes(tmp_path_factory.mktemp("shapes"), classes=2, per_class=4, frames=4, size=16, seed=2)


TINY = ["model.name=timm:test_resnet", "model.pretrained=false", "data.clip_len=2", "data.size=16",
        "data.short_side=16", "data.batch_size=2", "data.workers=0", "progress=false", "tensorboard=false",
        "epochs=1"]


def test_bug10_no_val_leaves_out_validation_with_a_held_out_fraction(shapes):
    cfg = load_config(None, [f"data.root={shapes}", "data.val_fraction=0.5", *TINY])
    validated = build_splits(cfg)
    assert validated.val is not None and validated.val_split == "holdout"
    unvalidated = build_splits(cfg, validate=False)
    assert unvalidated.val is None and unvalidated.val_split is None and not unvalidated.selects_best
    # the flag changes validation only, not which videos train
    assert sorted(unvalidated.train.items) == sorted(validated.train.items)


def test_bug10_cli_no_val_runs_no_validation_with_a_held_out_fraction(shapes, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--no-val", f"out={out}", f"data.root={shapes}", "data.val_fraction=0.5", *TINY]) == 0
    epochs = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("epoch ")]
    assert len(epochs) == 1 and "val loss" not in epochs[0]
    assert not (out / "val_predictions.pt").exists() and not (out / "best.safetensors").exists()
