"""Class names of the label sets the zoo's models predict."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

LABEL_DIR = Path(__file__).parent / "labels"
LABEL_SETS = {"kinetics400": "kinetics400.txt", "kinetics600": "kinetics600.txt"}


@lru_cache(maxsize=None)
def label_names(label_set: str) -> tuple[str, ...]:
    """The class names of ``label_set`` (``"kinetics400"``, ``"kinetics600"``), in logit order."""
    if label_set not in LABEL_SETS:
        raise ValueError(f"unknown label set {label_set!r}; known: {sorted(LABEL_SETS)}")
    names = (LABEL_DIR / LABEL_SETS[label_set]).read_text().splitlines()
    return tuple(n.strip() for n in names if n.strip())
