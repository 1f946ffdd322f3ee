"""Honest evaluation: one class list from training, no checkpoint chosen on the test split, the report names
the checkpoint and split, and the validation loss counts every video once."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from tests.test_train import TINY
from zoo.data.synthetic import make_moving_shapes


@pytest.fixture(scope="module")
def csv_lacking_a_class(tmp_path_factory):
    """The moving-shapes set as a CSV dataset whose test split lacks one of the 4 training classes."""
    root = make_moving_shapes(tmp_path_factory.mktemp("shapes"), classes=4, per_class=6, frames=8, size=32, seed=2)
    ann = root / "ucfTrainTestlist"
    train = [ln.split()[0] for ln in (ann / "trainlist01.txt").read_text().splitlines() if ln.strip()]
    test = [ln.split()[0] for ln in (ann / "testlist01.txt").read_text().splitlines() if ln.strip()]
    classes = sorted({p.split("/")[0] for p in train})
    missing = classes[1]
    for name, paths in (("train", train), ("test", [p for p in test if not p.startswith(missing + "/")])):
        with open(root / f"{name}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["path", "label"])
            w.writerows([(p, p.split("/")[0]) for p in paths])
    return root, classes, missing


def cli(*args, capsys) -> str:
    """``quovadis ...`` in this process (no interpreter start-up); returns its stdout."""
    from zoo.cli.main import main
    assert main(list(args)) == 0, capsys.readouterr().err[-3000:]
    return capsys.readouterr().out


def test_test_split_lacking_a_class_trains_and_evaluates_with_the_training_classes(csv_lacking_a_class, tmp_path,
                                                                                   capsys):
    root, classes, missing = csv_lacking_a_class
    out = tmp_path / "run"
    cli("train", f"out={out}", "data.format=csv", f"data.root={root}", "data.val_fraction=0.25", "epochs=1", *TINY,
        capsys=capsys)
    assert json.loads((out / "config.json").read_text())["data"]["classes"] == classes
    assert (out / "best.safetensors").is_file()                 # chosen on the held-out videos

    stdout = cli("evaluate", "--run", str(out), capsys=capsys)
    report = json.loads((out / "eval_report.json").read_text())
    (source,) = report["evaluated"]
    assert Path(source["checkpoint"]).name == "last.safetensors" and "csv test split" in source["split"]
    assert "checkpoint last.safetensors on the csv test split" in stdout
    preds = torch.load(out / "test_predictions.pt", weights_only=False)
    names = [Path(p).parent.name for p in preds["paths"]]
    assert [classes[y] for y in preds["labels"].tolist()] == names and missing not in names
    assert preds["logits"].shape[1] == len(classes)

    cli("evaluate", "--run", str(out), "--checkpoint", "best", capsys=capsys)
    source = json.loads((out / "eval_report.json").read_text())["evaluated"][0]
    assert Path(source["checkpoint"]).name == "best.safetensors" and "held out" in source["checkpoint_chosen_on"]


class Rows(torch.utils.data.Dataset):
    def __init__(self, n: int):
        g = torch.Generator().manual_seed(0)
        self.x, self.y = torch.randn(n, 3, 1, 2, 2, generator=g), torch.arange(n) % 2

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return {"rgb": self.x[i], "label": int(self.y[i]), "index": i, "path": f"v{i}"}


def test_validation_loss_ignores_repeated_samples():
    """DistributedSampler pads the last rank with repeats; the loss counts each video once."""
    from zoo.train.config import TrainConfig
    from zoo.train.distributed import World
    from zoo.train.loop import evaluate
    data = Rows(3)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 2))
    loader = torch.utils.data.DataLoader(data, batch_size=2, sampler=[0, 1, 2, 0])   # video 0 twice
    metrics, preds = evaluate(model, loader, TrainConfig(), World())
    with torch.no_grad():
        want = nn.functional.cross_entropy(model(data.x), data.y).item()
    assert metrics["loss"] == pytest.approx(want, rel=1e-6) and metrics["num_videos"] == 3
