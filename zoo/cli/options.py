"""Command-line options that several commands share, defined once."""
from __future__ import annotations

import argparse


def add_compile_option(p: argparse.ArgumentParser) -> None:
    """``--compile`` / ``--no-compile``: torch.compile the inference model (:mod:`zoo.models.compiled`)."""
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="torch.compile the model (inductor, freezing): ~15 ms less per clip on the CPU after a "
                        "one-off compile of ~12 s per input shape. Default: for the fused I3D on a CPU run with "
                        "1000 or more clips still to come; QUOVADIS_COMPILE=0/1 sets the default")


def add_workers_option(p: argparse.ArgumentParser) -> None:
    """``--workers``: decoding processes; the default is :func:`zoo.data.workers.decode_workers`."""
    p.add_argument("--workers", type=int, default=None,
                   help="decoding workers (default on the CPU: none on 2 cores or fewer, else min(4, cores - 2); "
                        "on a GPU min(4, cores))")


def add_precision_option(p: argparse.ArgumentParser, default: str = "auto") -> None:
    """``--precision``: the choices of :data:`zoo.models.precision.PRECISIONS`, with ``default``."""
    from zoo.models.precision import PRECISIONS
    if default not in ("auto", "fp32"):
        raise ValueError(f"--precision default must be auto or fp32, got {default!r}")
    # FVD's default is fp32 everywhere: auto (bf16 on CUDA) would move a published number without asking
    choices = [c for c in PRECISIONS if default == "auto" or c != "auto"]
    what = {"auto": "auto: bf16 on CUDA, fp32 on the CPU",
            "fp32": "fp32: the fused fp32 model (features within 2e-6 of TensorFlow's)"}[default]
    p.add_argument("--precision", default=default, choices=choices,
                   help=f"{what} (default); bf16: faster, moves features by ~1e-2 relative (FVD by -0.010%% in "
                        "benchmarks/fvd_shortcuts.py); fast: bf16 where the hardware runs it natively (a CUDA GPU "
                        "of compute capability 8+, or a CPU with AMX), else fp32")
