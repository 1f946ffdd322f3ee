"""Command-line options that several commands share, defined once."""
from __future__ import annotations

import argparse


def add_compile_option(p: argparse.ArgumentParser) -> None:
    """``--compile`` / ``--no-compile``: torch.compile the inference model (:mod:`zoo.models.compiled`)."""
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="torch.compile the model (inductor, freezing): about 1.2x on the CPU after a one-off "
                        "compile of ~15 s per input shape. Default: after the first 64 clips of a CPU run, for "
                        "the fused I3D; QUOVADIS_COMPILE=0/1 sets the default")
