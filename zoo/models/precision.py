"""Which precision inference runs in: the choices every inference command offers, and how each resolves.

No torch import at module level, so the command line can list the choices without loading torch.
"""
from __future__ import annotations

PRECISIONS = ("auto", "fp32", "bf16", "fast")


def has_fast_bf16(device) -> bool:
    """Whether ``device`` runs bf16 convs natively: a CUDA GPU of compute capability 8 or more (Ampere and
    later; a T4 or V100 only emulates bf16) or a ROCm GPU, or a CPU with AMX tiles (Intel Sapphire Rapids
    and later), where the fused bf16 I3D runs 3-4x faster than fp32 (docs/benchmarks.md). Without AMX,
    oneDNN emulates bf16 and it can be slower than fp32."""
    import torch
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return False
        return torch.version.hip is not None or torch.cuda.get_device_capability(device)[0] >= 8
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return device.type == "cpu" and amx is not None and bool(amx())


def resolve_precision(precision: str | None, device, exact: bool = False) -> str:
    precision = (precision or "auto").lower()
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if exact:
        if precision == "bf16":
            raise ValueError("--exact runs the unfused model in fp32; it cannot be combined with --precision bf16")
        return "fp32"
    if precision == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    if precision == "fast":  # speed over exactness: bf16 wherever the hardware runs it natively
        return "bf16" if has_fast_bf16(device) else "fp32"
    return precision
