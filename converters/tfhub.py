"""Convert TF-Hub's ``deepmind/i3d-kinetics-400/1`` (the I3D network behind FVD) to safetensors, without TensorFlow.

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
release's ``rgb_scratch`` pin (:attr:`TFHubConversion.same_as_release`).
"""
from __future__ import annotations

import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .deepmind import Conversion, convert_deepmind
from .tf_bundle import CheckpointError

__all__ = ["convert_tfhub", "TFHubConversion", "module_prefix"]


@dataclass
class TFHubConversion(Conversion):
    same_as_release: bool = False  # the data shard is byte for byte DeepMind's rgb_scratch


def module_prefix(folder: Path) -> Path:
    """``folder/variables/variables`` after checking the module layout."""
    prefix = folder / "variables" / "variables"
    missing = [p for p in (folder / "saved_model.pb", Path(f"{prefix}.index")) if not p.is_file()]
    if missing:
        raise CheckpointError(f"{folder} is not a TF-Hub module: {', '.join(map(str, missing))} missing. Expected "
                              "saved_model.pb and variables/variables.{index,data-00000-of-00001} (unpack the "
                              "module's .tar.gz, or pass it as it is)")
    return prefix


def _extract(archive: Path, into: Path) -> Path:
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
    return into


def convert_tfhub(src, out, *, variant: str = "rgb_scratch") -> TFHubConversion:
    """A TF-Hub I3D module (folder or ``.tar.gz``) -> safetensors, written atomically."""
    from zoo import release

    src = Path(src)
    with tempfile.TemporaryDirectory(prefix="quovadis-tfhub-") as tmp:
        folder = _extract(src, Path(tmp)) if src.is_file() and tarfile.is_tarfile(src) else src
        prefix = module_prefix(folder)
        result = convert_deepmind(prefix, out, variant=variant)
        shard = Path(f"{prefix}.data-00000-of-00001")
        same = variant in release.variants() and shard.is_file() and \
            release.git_blob_sha1_of(shard) == release.pins(variant)[release.DATA].git_blob_sha1
    return TFHubConversion(result.out, result.variant, result.tensors, result.skipped, result.sha256, same)
