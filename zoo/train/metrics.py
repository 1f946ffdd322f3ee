"""Classification metrics, two-stream late fusion and the confusion-matrix image."""
from __future__ import annotations

from pathlib import Path

import torch


def topk_correct(logits: torch.Tensor, labels: torch.Tensor, ks=(1, 5)) -> dict[int, int]:
    """Videos whose label is among the ``k`` highest logits, for each ``k`` of ``ks``. Tied logits rank the lower
    class index first, as ``argmax`` does, so top-1 always equals the confusion matrix's diagonal."""
    k_max = min(max(ks), logits.shape[-1])
    top = logits.sort(dim=-1, descending=True, stable=True).indices[:, :k_max]
    hits = top.eq(labels[:, None])
    return {k: int(hits[:, :min(k, k_max)].any(1).sum()) for k in ks}


def confusion_matrix(pred: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    idx = labels * num_classes + pred
    return torch.bincount(idx, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def summarize(logits: torch.Tensor, labels: torch.Tensor, class_names=None) -> dict:
    """top-1, top-5, mean class accuracy (over classes present), per-class accuracy and the confusion matrix."""
    n, c = logits.shape
    correct = topk_correct(logits, labels)
    cm = confusion_matrix(logits.argmax(-1), labels, c)
    support = cm.sum(1)
    per_class = (cm.diag().float() / support.clamp_min(1).float())
    present = support > 0
    names = list(class_names) if class_names else [str(i) for i in range(c)]
    return {
        "top1": 100.0 * correct[1] / max(n, 1),
        "top5": 100.0 * correct[5] / max(n, 1),
        "mean_class_acc": 100.0 * per_class[present].mean().item() if present.any() else 0.0,
        "num_videos": n,
        "per_class": {names[i]: {"acc": 100.0 * per_class[i].item(), "support": int(support[i])}
                      for i in range(c) if support[i] > 0},
        "confusion": cm,
    }


def fuse(runs: list[dict], weights) -> dict:
    """Late fusion of saved predictions ``{"paths", "labels", "logits"}``: weighted sum of logits, aligned by
    video path; every run must cover the same videos with the same labels."""
    if len(runs) != len(weights):
        raise ValueError(f"{len(runs)} runs but {len(weights)} fusion weights")
    order = runs[0]["paths"]
    fused = None
    for run, w in zip(runs, weights):
        pos = {p: i for i, p in enumerate(run["paths"])}
        missing = [p for p in order if p not in pos]
        if missing:
            raise ValueError(f"a fused run lacks predictions for {len(missing)} videos (e.g. {missing[0]}); "
                             "evaluate both runs on the same split")
        idx = torch.tensor([pos[p] for p in order])
        labels = run["labels"][idx]
        if not torch.equal(labels, runs[0]["labels"]):
            raise ValueError("the fused runs disagree on labels; were they evaluated on the same class index?")
        term = run["logits"][idx].float() * float(w)
        fused = term if fused is None else fused + term
    return {"paths": order, "labels": runs[0]["labels"], "logits": fused}


def tick_labels(class_names, num_classes: int) -> list[str] | None:
    """The class names the confusion image writes on its axes: all of them up to 60 classes, else none (they
    would overlap)."""
    return list(class_names) if class_names and num_classes <= 60 else None


def save_confusion_png(cm: torch.Tensor, path: Path, class_names=None, title="confusion matrix") -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    c = cm.shape[0]
    fig, ax = plt.subplots(figsize=(max(4, c * 0.35), max(4, c * 0.35)))
    norm = cm.float() / cm.sum(1, keepdim=True).clamp_min(1)
    ax.imshow(norm.numpy(), cmap="Blues", vmin=0, vmax=1)
    names = tick_labels(class_names, c)
    if names:
        ax.set_xticks(range(c), names, rotation=90, fontsize=6)
        ax.set_yticks(range(c), names, fontsize=6)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
