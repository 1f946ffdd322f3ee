"""The inference commands keep freed memory for the next batch (glibc mallopt; opt-in for a library process),
and the runner batches clips in one copy."""
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


_STATE = """
import sys
from zoo.models.i3d import InceptionI3d
from zoo.models.inference import InferenceModel
from zoo.models.host_memory import keep_freed_memory
def runner():
    return InferenceModel(InceptionI3d(num_classes=3, final_endpoint="Mixed_3b"), device="cpu", compile=False)
try:
    first = runner().keeps_memory
    print(first, keep_freed_memory(), runner().keeps_memory, "freed memory kept" in runner().describe())
except ValueError as e:
    print(e)
"""


def _state(env: str | None) -> str:
    environ = {k: v for k, v in os.environ.items() if k != "QUOVADIS_KEEP_MEMORY"}
    if env is not None:
        environ["QUOVADIS_KEEP_MEMORY"] = env
    out = subprocess.run([sys.executable, "-c", _STATE], capture_output=True, text=True, cwd=ROOT, timeout=120,
                         env={**environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_a_library_runner_leaves_malloc_alone_unless_asked():
    """Process-wide, so opt-in: a runner alone does not set it; keep_freed_memory() (what the inference commands
    call) or QUOVADIS_KEEP_MEMORY=1 does, and the runners say so; =0 refuses it even to the commands."""
    assert _state(None) == "False True True True"
    assert _state("1") == "True True True True"
    assert _state("0") == "False False False False"
    assert _state("maybe") == "QUOVADIS_KEEP_MEMORY='maybe': use 1 (keep freed memory for reuse) or 0 (give it back, glibc's default)"


def test_the_features_command_keeps_memory(tmp_path):
    code = ("import sys; from zoo.cli.main import main; from zoo.models import host_memory as h\n"
            "rc = main(sys.argv[1:]); print('KEPT', h._applied)")
    from safetensors.torch import save_file

    import zoo
    from zoo.data.synthetic import make_moving_shapes
    root = make_moving_shapes(tmp_path / "v", classes=2, per_class=2, frames=9, size=32, seed=0)
    weights = tmp_path / "random.safetensors"
    save_file(zoo.load("i3d_inception_k400_rgb", pretrained=False).state_dict(), str(weights))
    out = subprocess.run([sys.executable, "-c", code, "features", str(root), str(tmp_path / "f"), "--model",
                          "i3d_inception_k400_rgb", "--weights", str(weights), "--endpoint", "Mixed_3b", "--clip-len",
                          "8", "--stride", "8", "--no-progress"], capture_output=True, text=True, cwd=ROOT, timeout=300,
                         env={**{k: v for k, v in os.environ.items() if k != "QUOVADIS_KEEP_MEMORY"},
                              "PYTHONPATH": str(ROOT)})
    assert f"KEPT {bool(GLIBC)}" in out.stdout, out.stdout[-2000:] + out.stderr[-3000:]


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
