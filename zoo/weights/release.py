"""DeepMind's kinetics-i3d release as a weights source: the pins, and where the files are.

The pins (``zoo/weights/release_pins.json``, a copy of ``data/kinetics-i3d/release.json``) name the release commit
and, for each of the five checkpoints, its ``.index`` and ``.data-00000-of-00001`` files with their git blob
ids (``sha1(b"blob <size>\\0" + bytes)``); each index also has its sha256 and size. The data shards are
plain git blobs (not LFS), so they are served at::

    https://raw.githubusercontent.com/google-deepmind/kinetics-i3d/<commit>/data/checkpoints/<variant>/<file>

``QUOVADIS_KINETICS_I3D_MIRROR=URL`` replaces that base with a copy of the repository tree at the pinned
commit (a web server, or a shared folder as ``file:///path``): files are then read from
``URL/data/checkpoints/<variant>/model.ckpt.index`` and so on. The same pins apply to a mirror.
"""
from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from zoo.weights.files import git_blob_sha1_of, sha256_of

MIRROR_ENV = "QUOVADIS_KINETICS_I3D_MIRROR"
INDEX = "model.ckpt.index"
DATA = "model.ckpt.data-00000-of-00001"
FILES = (INDEX, DATA)


@dataclass(frozen=True)
class Pin:
    """What one released file must be: its path in the repository and digests."""
    path: str
    git_blob_sha1: str
    sha256: str | None = None
    size: int | None = None  # known for the index; the data shard's size follows from the index


@functools.lru_cache(maxsize=None)
def _release() -> dict:
    return json.loads(resources.files("zoo.weights").joinpath("release_pins.json").read_text())


def commit() -> str:
    """The release commit every pin refers to."""
    return _release()["commit"]


def variants() -> list[str]:
    return sorted(_release()["checkpoints"])


def pins(variant: str) -> dict[str, Pin]:
    """``{file name: Pin}`` for one released checkpoint."""
    checkpoints = _release()["checkpoints"]
    if variant not in checkpoints:
        raise KeyError(f"the kinetics-i3d release has no checkpoint {variant!r}; it has {sorted(checkpoints)}")
    return {name: Pin(path=p["path"], git_blob_sha1=p["git_blob_sha1"], sha256=p.get("sha256"), size=p.get("bytes"))
            for name, p in checkpoints[variant].items()}


def base_url() -> str:
    """``$QUOVADIS_KINETICS_I3D_MIRROR`` if set, else raw.githubusercontent.com at the pinned commit."""
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    if mirror:
        return mirror.rstrip("/")
    return _release()["raw_url_template"].format(commit=commit(), path="").rstrip("/")


def file_url(variant: str, name: str) -> str:
    return f"{base_url()}/{pins(variant)[name].path}"


# ---------------------------------------------------------------------------------------------------- fetching

def _what_to_do(variant: str) -> str:
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    where = (f"The mirror {mirror} ({MIRROR_ENV}) does not hold the release's file at commit {commit()[:12]}: "
             f"fix or unset it." if mirror else "The download was damaged or the server sent another file: run "
             "the command again.")
    return (f"{where} Nothing was cached. To use a copy you trust instead, run `quovadis convert deepmind "
            f"kinetics-i3d/data/checkpoints/{variant} -o OUT.safetensors` and pass weights=OUT.safetensors.")


class VerificationError(ValueError):
    """A downloaded file that is not the released one."""


def _check(variant: str, name: str, url: str, what: str, expected, actual) -> None:
    if expected != actual:
        raise VerificationError(f"{url}: {name} of {variant} has {what} {actual}, but the release pins {expected}. "
                                + _what_to_do(variant))


def verify_index(variant: str, path: Path, url: str = "") -> None:
    """The index's size and sha256 against the pins. (Its git blob id is pinned too, and tests check that it
    names the same bytes as the sha256; checking both here would only repeat the sha256's verdict.)"""
    pin = pins(variant)[INDEX]
    _check(variant, INDEX, url or str(path), "size", pin.size, Path(path).stat().st_size)
    _check(variant, INDEX, url or str(path), "sha256", pin.sha256, sha256_of(path))


def data_size(index_path: Path) -> int:
    """The data shard's size, from the (verified) index: the end of its last tensor."""
    from converters.tf_bundle import read_index
    return max((i.offset + i.size for i in read_index(index_path).values()), default=0)


def verify_data(variant: str, path: Path, size: int, url: str = "") -> None:
    """The data shard's size (from the index) and git blob id against the pins."""
    pin = pins(variant)[DATA]
    actual = path.stat().st_size
    _check(variant, DATA, url or str(path), "size (from the index's offsets)", size, actual)
    _check(variant, DATA, url or str(path), "git blob id", pin.git_blob_sha1, git_blob_sha1_of(path))


def fetch_checkpoint(variant: str, folder: Path, *, quiet: bool = False) -> Path:
    """Download and verify one released checkpoint into ``folder``; returns its prefix ``folder/model.ckpt``.

    The index is checked (size, sha256) before the data shard is asked for; the shard is
    checked (size from the index's offsets, git blob id) before it is kept. A file that fails is deleted.
    """
    from zoo.weights.download import download

    folder = Path(folder)
    index_url, data_url = file_url(variant, INDEX), file_url(variant, DATA)
    index = download(index_url, folder / INDEX, expected_size=pins(variant)[INDEX].size, quiet=quiet,
                     verify=lambda p: verify_index(variant, p, index_url), desc=f"{variant}/{INDEX}")
    verify_index(variant, index)  # a file left by an earlier run is checked too
    size = data_size(index)
    download(data_url, folder / DATA, expected_size=size, quiet=quiet,
             verify=lambda p: verify_data(variant, p, size, data_url), desc=f"{variant}/{DATA}")
    return folder / "model.ckpt"
