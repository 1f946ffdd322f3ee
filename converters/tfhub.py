"""The TF-Hub module layout of ``deepmind/i3d-kinetics-400/1`` (the I3D network behind FVD): find its bundle.

A TF-Hub module (TF1 hub format, as downloaded and unpacked) is a folder::

    saved_model.pb  (the graph: not needed for the weights and not read)
    variables/variables.index
    variables/variables.data-00000-of-00001

with the tensor names of DeepMind's release under ``RGB/inception_i3d/``. That module is DeepMind's
``rgb_scratch`` checkpoint byte for byte (same data blob, same 230 index entries, offsets and CRC32C), so it
converts to ``i3d_inception_k400_rgb`` (alias ``i3d_inception_k400_rgb_tfhub``). The folder or the module's
``.tar.gz`` (``?tf-hub-format=compressed``) are accepted:

    quovadis convert tfhub i3d-kinetics-400_1/ -o i3d_rgb.safetensors

Every tensor's CRC32C is checked as it is read, and the data shard's git blob id is compared with the
release's ``rgb_scratch`` pin by :func:`zoo.weights.deepmind.convert_tfhub`.
"""
from __future__ import annotations

import gzip
import tarfile
import zlib
from pathlib import Path

from converters.tf_bundle import CheckpointError

__all__ = ["extract_module", "module_prefix", "open_module"]


def module_prefix(folder: Path) -> Path:
    """``folder/variables/variables`` after checking the module layout."""
    prefix = folder / "variables" / "variables"
    missing = [p for p in (folder / "saved_model.pb", Path(f"{prefix}.index")) if not p.is_file()]
    if missing:
        raise CheckpointError(f"{folder} is not a TF-Hub module: {', '.join(map(str, missing))} missing. Expected "
                              "saved_model.pb and variables/variables.{index,data-00000-of-00001} (unpack the "
                              "module's .tar.gz, or pass it as it is)")
    return prefix


def extract_module(archive: Path, into: Path) -> Path:
    """Unpack a TF-Hub module's ``.tar.gz`` into ``into`` (only the three files a module needs).
    A damaged or truncated archive raises :class:`CheckpointError`."""
    try:
        with tarfile.open(archive) as tar:
            wanted = [m for m in tar.getmembers() if m.isfile() and Path(m.name).name in (
                "saved_model.pb", "variables.index", "variables.data-00000-of-00001")]
            for m in wanted:
                target = into / ("variables" if m.name.rsplit("/", 1)[-1].startswith("variables.") else "") \
                    / Path(m.name).name
                target.parent.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(m) as src, open(target, "wb") as dst:
                    while chunk := src.read(1 << 20):
                        dst.write(chunk)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as e:  # EOFError etc.: found by fuzzing
        raise CheckpointError(f"{archive} is not a readable TF-Hub module archive ({type(e).__name__}: {e}). "
                              "Pass the module's folder or its .tar.gz; if this is the archive, the download is "
                              "truncated or corrupt: fetch it again") from None
    return into


def open_module(src: Path, into: Path) -> Path:
    """The bundle prefix of a TF-Hub module given as its folder, or as its ``.tar.gz`` (unpacked into ``into``)."""
    src = Path(src)
    return module_prefix(extract_module(src, into) if src.is_file() else src)
