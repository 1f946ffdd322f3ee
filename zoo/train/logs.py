"""What a run writes for people: a CSV and TensorBoard scalars, a one-line summary per epoch, and a PNG
of the training curves at the end."""
from __future__ import annotations

import csv
from pathlib import Path


class RunLog:
    def __init__(self, out: Path, enabled: bool = True, tensorboard: bool = True):
        self.out, self.enabled = Path(out), enabled
        self.rows: list[dict] = []
        self._tb = None
        if enabled:
            self.out.mkdir(parents=True, exist_ok=True)
        if enabled and tensorboard:
            try:
                from zoo.train.tensorboard_writer import summary_writer  # TensorBoard without importing TensorFlow
                self._tb = summary_writer(str(self.out / "tensorboard"))
            except Exception:  # tensorboard is optional ([train] extra)
                self._tb = None
        if enabled:
            path = self.out / "metrics.csv"
            if path.exists():  # resumed run: keep earlier epochs
                with open(path) as f:
                    self.rows = [{k: float(v) if v not in ("", None) else None for k, v in r.items()}
                                 for r in csv.DictReader(f)]

    def epoch(self, row: dict) -> None:
        if not self.enabled:
            return
        self.rows = [r for r in self.rows if r.get("epoch") != row["epoch"]] + [row]
        keys = sorted({k for r in self.rows for k in r}, key=lambda k: (k != "epoch", k))
        with open(self.out / "metrics.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            w.writerows(self.rows)
        if self._tb is not None:
            for k, v in row.items():
                if k != "epoch" and v is not None:
                    self._tb.add_scalar(k, v, int(row["epoch"]))
            self._tb.flush()

    def curves_png(self) -> Path | None:
        if not self.enabled or not self.rows:
            return None
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        epochs = [r["epoch"] for r in self.rows]
        fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
        for key in ("train_loss", "val_loss"):
            if any(r.get(key) is not None for r in self.rows):
                a.plot(epochs, [r.get(key) for r in self.rows], marker="o", label=key)
        for key in ("train_top1", "val_top1", "val_mean_class_acc"):
            if any(r.get(key) is not None for r in self.rows):
                b.plot(epochs, [r.get(key) for r in self.rows], marker="o", label=key)
        a.set_xlabel("epoch"); a.set_title("loss"); a.legend()
        b.set_xlabel("epoch"); b.set_title("accuracy (%)"); b.legend()
        fig.tight_layout()
        path = self.out / "curves.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path

    def close(self):
        if self._tb is not None:
            self._tb.close()
