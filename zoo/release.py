"""DeepMind's kinetics-i3d release as a weights source: the pins, and where the files are.

The pins (``zoo/release_pins.json``, a copy of ``data/kinetics-i3d/release.json``) name the release commit
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
import hashlib
import json
import os
from dataclasses import dataclass
from importlib import resources

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
    return json.loads(resources.files("zoo").joinpath("release_pins.json").read_text())


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


def git_blob_sha1(data: bytes) -> str:
    """Git's object id for a file with these bytes: ``sha1(b"blob <size>\\0" + data)``."""
    h = hashlib.sha1(b"blob %d\0" % len(data))
    h.update(data)
    return h.hexdigest()
