"""What the fuzz tests share: the corruption strategy, the settings, and the check that a parser wrote nothing.

The ``ci`` profile (tests/conftest.py) draws a few examples per parser; ``HYPOTHESIS_PROFILE=fuzz`` draws 2000.
"""
from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# The real index files of DeepMind's release (the same bytes as ../shared/data/kinetics-i3d/checkpoints).
RELEASE_INDEXES = Path(__file__).parent / "data" / "kinetics-i3d"
FUZZ = settings(deadline=10_000,  # a hang (the memo bug took 25 s) fails; a slow CI machine does not
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def corrupted(draw, seed: bytes) -> bytes:
    """``seed`` with one to three corruptions: a flipped byte, a cut, inserted bytes, or 8 bytes of 0xFF
    (a varint or fixed64 length that claims far more than the file holds)."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "huge"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[pos] ^= draw(st.integers(1, 255))
        elif kind == "cut":
            del data[pos:]
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        else:
            data[pos:pos + 8] = b"\xff" * 8
    out = bytes(data)
    if out == seed:  # a no-op draw (e.g. a cut at the end): corrupt the last byte instead
        out = out[:-1] + bytes([out[-1] ^ 0x5A]) if out else b"\x00"
    return out


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder`` with its size and modification time, to check that reading wrote nothing."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(Path(folder).rglob("*")) if p.is_file()} | \
        {str(p.relative_to(folder)) + os.sep: (0, 0) for p in Path(folder).rglob("*") if p.is_dir()}
