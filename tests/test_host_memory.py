"""CPU inference keeps freed memory for the next batch (glibc mallopt), and batches clips in one copy."""
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from zoo.models.i3d import InceptionI3d
from zoo.models.inference import InferenceModel

ROOT = Path(__file__).resolve().parent.parent
GLIBC = os.confstr("CS_GNU_LIBC_VERSION") if hasattr(os, "confstr") else None

_FAULTS = """
import resource, sys, torch
from zoo.models.host_memory import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory() is True
for _ in range(2):  # a 256 MB activation made and freed per "batch", as a forward pass does
    x = torch.ones(64 * 2**20)
    del x
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(6):
    x = torch.ones(64 * 2**20)
    del x
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str, env=None) -> int:
    out = subprocess.run([sys.executable, "-c", _FAULTS, mode], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}, timeout=120)
    assert out.returncode == 0, out.stderr
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_freed_memory_is_reused_without_page_faults():
    """glibc's default maps each 256 MB tensor anew (65536 pages faulted in per tensor); kept, the pages
    are reused (at most one tensor's worth faulted in, once)."""
    assert _faults("default") > 6 * 60000
    assert _faults("keep") <= 65536 + 1000


def test_env_turns_it_off_and_refuses_nonsense():
    code = ("import sys; from zoo.models.host_memory import keep_freed_memory as k\n"
            "try:\n    print(k())\nexcept ValueError as e:\n    print(e)")
    run = lambda v: subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,  # noqa: E731
                                   env={**os.environ, "PYTHONPATH": str(ROOT), "QUOVADIS_KEEP_MEMORY": v}).stdout.strip()
    assert run("0") == "False"
    assert run("maybe") == "QUOVADIS_KEEP_MEMORY='maybe': use 0 (give freed memory back, glibc's default) or 1"
    if GLIBC:
        assert run("1") == "True"


def test_cpu_inference_says_it_keeps_memory():
    runner = InferenceModel(InceptionI3d(num_classes=3, final_endpoint="Mixed_3b"), device="cpu", compile=False)
    assert runner.keeps_memory == bool(GLIBC) and ("freed memory kept for reuse" in runner.describe()) == bool(GLIBC)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_batch_is_the_stack_in_the_models_dtype_and_layout(precision):
    runner = InferenceModel(InceptionI3d(num_classes=3, final_endpoint="Mixed_3b"), device="cpu",
                            precision=precision, compile=False)
    clips = [torch.rand(6, 5, 7, 3).permute(3, 0, 1, 2) for _ in range(3)]  # channels_last_3d views, as FVD's
    batch = runner.batch(clips)
    want = runner.prepare_input(torch.stack(clips))
    assert batch.dtype == want.dtype == runner.dtype
    assert batch.is_contiguous(memory_format=torch.channels_last_3d)
    assert torch.equal(batch, want) and batch.stride() == want.stride()
    with pytest.raises(ValueError, match=r"clips of one batch must have one shape: \(3, 6, 5, 7\) and \(3, 6, 5, 8\)"):
        runner.batch([clips[0], torch.rand(3, 6, 5, 8)])
