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


# ---------------------------------------------------------------- which videos each split holds (CSV lists; no decoding)

from zoo.data.datasets import holdout_indices  # noqa: E402
from zoo.train.splits import describe_validation, read_class_map  # noqa: E402


def csv_root(tmp_path, train, test=(), val=None):
    """A ``data.format=csv`` layout: train.csv and test.csv ("path,label") under ``tmp_path`` (and a val list)."""
    for name, rows in (("train", train), ("test", test), ("val", val)):
        if rows is not None:
            with open(tmp_path / f"{name}.csv", "w", newline="") as f:
                csv.writer(f).writerows([("path", "label"), *rows])
    return tmp_path


def csv_cfg(root, *overrides):
    return load_config(None, ["data.format=csv", f"data.root={root}", "data.clip_len=2", *overrides])


TRAIN = [(f"{c}/{c}{i}.mp4", c) for c in ("walk", "run", "jump") for i in range(4)]


def test_read_class_map_reads_lists_and_files(tmp_path):
    assert read_class_map(None) is None
    assert read_class_map(["b", 2]) == ["b", "2"] and read_class_map(("x",)) == ["x"]
    (tmp_path / "classes.txt").write_text("run\n\n  walk  \njump\n")
    assert read_class_map(str(tmp_path / "classes.txt")) == ["run", "walk", "jump"]
    with pytest.raises(FileNotFoundError, match=r"^data\.classes='nope\.txt': no such class map file \(one class "
                                                r"name per line\)$"):
        read_class_map("nope.txt")


def test_held_out_videos_never_train_and_validate_like_test_videos(tmp_path):
    root = csv_root(tmp_path, TRAIN)
    cfg = csv_cfg(root, "data.val_fraction=0.25", "seed=3", "data.test_clips=3")
    assert describe_validation(cfg) == ("holdout", True)
    s = build_splits(cfg)
    every = [(Path(p), ["jump", "run", "walk"].index(c)) for p, c in TRAIN]
    _, held = holdout_indices([y for _, y in every], 0.25, 3)           # the seed of the config draws them
    assert held != holdout_indices([y for _, y in every], 0.25, 0)[1]
    assert s.val.items == [every[i] for i in held] and len(held) == 3   # one video of each class
    assert not set(s.val.items) & set(s.train.items) and len(s.train.items) + len(held) == len(every)
    assert (s.val.mode, s.val.num_clips, s.train.mode) == ("test", 1, "train")
    assert [type(t).__name__ for t in s.val.transform.transforms] == ["ResizeShortSide", "CenterCrop",
                                                                      "NormalizeFlowOnly"]
    assert (s.val_split, s.selects_best, s.val.split_name, s.val.selects_best) == ("holdout", True, "holdout", True)
    assert s.classes == ["jump", "run", "walk"]


def test_a_fraction_that_holds_out_nothing_is_refused(tmp_path):
    root = csv_root(tmp_path, [("a/1.mp4", "a"), ("b/1.mp4", "b")])
    with pytest.raises(ValueError, match=r"^data\.val_fraction=0\.5 holds out no video \(every class has one\); "
                                         r"use a larger fraction or data\.val_list$"):
        build_splits(csv_cfg(root, "data.val_fraction=0.5"))


def test_val_list_and_test_split_are_numbered_by_the_training_classes(tmp_path):
    root = csv_root(tmp_path, TRAIN, test=[("walk/t.mp4", "walk"), ("run/t.mp4", "run")],
                    val=[("walk/v.mp4", "walk")])
    cfg = csv_cfg(root, f"data.val_list={root / 'val.csv'}", "data.classes=[walk, run, jump]")
    assert describe_validation(cfg) == ("val_list", True)
    s = build_splits(cfg)
    assert s.classes == ["walk", "run", "jump"] and s.train.items[:1] == [(Path("walk/walk0.mp4"), 0)]
    assert s.val.items == [(Path("walk/v.mp4"), 0)] and len(s.train.items) == 12
    assert (s.val_split, s.selects_best, s.val.split_name, s.val.selects_best) == ("val_list", True, "val_list", True)

    monitor = csv_cfg(root)                                             # neither: the test split, monitoring only
    assert describe_validation(monitor) == ("test", False)
    s = build_splits(monitor)
    assert s.val.items == [(Path("walk/t.mp4"), 2), (Path("run/t.mp4"), 1)]   # jump, run, walk: sorted names
    assert (s.val_split, s.selects_best, s.val.split_name, s.val.selects_best) == ("test", False, "test", False)
    assert build_splits(monitor, validate=False).val is None


def test_numeric_labels_name_the_classes_by_number(tmp_path):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    root = csv_root(tmp_path / "a", [("x.mp4", 0), ("y.mp4", 2)])
    assert build_splits(csv_cfg(root), validate=False).classes == ["0", "1", "2"]
    empty = csv_root(tmp_path / "b", [])
    assert build_splits(csv_cfg(empty), validate=False).classes == []
