"""Read TensorFlow checkpoints ("tensor bundles": TF1 ``Saver`` V2 format, TF2 ``tf.train.Checkpoint``) without TF.

A checkpoint with prefix ``P`` is:

* ``P.index`` -- an SSTable (see :mod:`converters.sstable`) mapping each tensor name to a serialized
  ``BundleEntryProto`` (dtype, shape, which data shard, byte offset and size, masked CRC32C of the bytes).
  The entry under the empty key ``""`` is the ``BundleHeaderProto``: number of shards, byte order, format version.
* ``P.data-00000-of-0000N`` ... -- the data shards: raw tensor bytes, concatenated, in the header's byte order.

Usage::

    with BundleReader("checkpoints/rgb_imagenet") as ckpt:      # a folder, a prefix, or the .index file
        for name in ckpt.names():
            print(name, ckpt.info(name).shape)
        w = ckpt.read("RGB/inception_i3d/Logits/Conv3d_0c_1x1/conv_3d/w")

``read_index`` needs only the ``.index`` file, so a checkpoint's contents can be listed without its data.
bfloat16 tensors are returned as float32 (exact: bfloat16 is the top half of a float32), because numpy
has no bfloat16 of its own and torch cannot take ml_dtypes arrays.
"""
from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from converters import protowire
from converters.sstable import TableError, crc32c, iter_table, mask_crc

__all__ = ["CheckpointError", "TensorInfo", "BundleHeader", "BundleReader", "resolve_prefix", "read_index"]


class CheckpointError(ValueError):
    """A checkpoint that cannot be read: not a checkpoint, corrupt, incomplete, or using an unsupported feature."""


# TensorFlow's DataType enum (tensorflow/core/framework/types.proto) -> numpy dtype, for the types read natively.
_NUMPY_DTYPES = {
    1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 5: np.int16, 6: np.int8, 8: np.complex64,
    9: np.int64, 10: np.bool_, 17: np.uint16, 18: np.complex128, 19: np.float16, 22: np.uint32, 23: np.uint64,
}
DT_STRING, DT_BFLOAT16 = 7, 14
# The rest of the enum, named so that errors and ``TensorInfo.dtype`` can say what a tensor is.
_OTHER_DTYPES = {
    DT_STRING: "string", DT_BFLOAT16: "bfloat16", 11: "qint8", 12: "quint8", 13: "qint32", 15: "qint16",
    16: "quint16", 20: "resource", 21: "variant", 24: "float8_e5m2", 25: "float8_e4m3fn", 26: "float8_e4m3fnuz",
    27: "float8_e4m3b11fnuz", 28: "float8_e5m2fnuz", 29: "int4", 30: "uint4", 31: "int2", 32: "uint2",
    33: "float4_e2m1fn",
}

# BundleHeaderProto.Endianness
_LITTLE, _BIG = 0, 1
# Newest bundle format version this reader understands (TensorFlow's kTensorBundleVersion).
_BUNDLE_VERSION = 1


@dataclass(frozen=True)
class TensorInfo:
    """One tensor's index entry.

    ``dtype`` is a numpy dtype for numeric/bool tensors, otherwise TensorFlow's name for the type as a string
    (``'bfloat16'``, ``'string'``, ``'resource'``, ...). ``crc32c`` is the *masked* CRC32C as stored.
    """
    name: str
    dtype: np.dtype | str
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int

    @property
    def num_elements(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def is_a(self, type_name: str) -> bool:
        """Whether this is a non-numpy type such as 'string' or 'bfloat16' (never asks numpy to parse the name)."""
        return isinstance(self.dtype, str) and self.dtype == type_name


@dataclass(frozen=True)
class BundleHeader:
    num_shards: int
    byte_order: str  # numpy's '<' (little-endian) or '>' (big-endian)
    producer: int
    min_consumer: int


# ---------------------------------------------------------------------------------------------------- locating

_SHARD_SUFFIX = re.compile(r"\.data-\d{5}-of-\d{5}$")
_STATE_PATH = re.compile(r'^\s*model_checkpoint_path\s*:\s*"((?:[^"\\]|\\.)*)"', re.MULTILINE)


def _index_of(prefix: Path) -> Path:
    return Path(str(prefix) + ".index")


def _prefix_from_state_file(folder: Path) -> Path:
    """The prefix named by a folder's ``checkpoint`` state file (a text proto written by Saver/CheckpointManager)."""
    state = folder / "checkpoint"
    match = _STATE_PATH.search(state.read_text(errors="replace"))
    if not match:
        raise CheckpointError(f"{state}: the checkpoint state file names no model_checkpoint_path; "
                              f"pass the checkpoint prefix (PATH/model.ckpt) or its .index file instead")
    named = Path(re.sub(r"\\(.)", r"\1", match.group(1)))
    candidates = [named if named.is_absolute() else folder / named]
    # Absolute paths written on another machine: the checkpoint usually still sits beside the state file.
    candidates.append(folder / named.name)
    for prefix in candidates:
        if _index_of(prefix).is_file():
            return prefix
    raise CheckpointError(f"{state} names checkpoint {str(named)!r}, but {_index_of(candidates[0])} does not "
                          f"exist; copy that checkpoint's files there or pass another prefix")


def resolve_prefix(path: str | os.PathLike) -> Path:
    """The checkpoint prefix ``P`` (so that ``P.index`` exists) for a folder, a prefix, an .index or a .data file.

    A folder must hold a ``checkpoint`` state file or exactly one ``*.index`` file.
    """
    path = Path(path)
    if path.is_dir():
        if (path / "checkpoint").is_file():
            return _prefix_from_state_file(path)
        indexes = sorted(path.glob("*.index"))
        if len(indexes) == 1:
            return indexes[0].with_suffix("")
        if not indexes:
            raise CheckpointError(f"{path} is not a TensorFlow checkpoint: the folder has no *.index file and no "
                                  f"'checkpoint' state file")
        names = ", ".join(p.name for p in indexes)
        raise CheckpointError(f"{path} holds several checkpoints ({names}) and no 'checkpoint' state file to "
                              f"choose one; pass the prefix of the one you want, e.g. {indexes[-1].with_suffix('')}")
    if path.suffix == ".index" and path.is_file():
        return path.with_suffix("")
    if _SHARD_SUFFIX.search(path.name) and path.is_file():
        return path.with_name(_SHARD_SUFFIX.sub("", path.name))
    if _index_of(path).is_file():
        return path
    what = "a file" if path.is_file() else "no such file or folder" if not path.exists() else "not a regular file"
    raise CheckpointError(f"{path} is not a TensorFlow checkpoint ({what}): expected a checkpoint folder, a prefix "
                          f"P with a P.index file beside it, or the .index file itself, but found no "
                          f"{_index_of(path).name}")


# ---------------------------------------------------------------------------------------------------- the index

def _int(fields: dict, number: int, default: int = 0) -> int:
    """A singular integer field (last value wins), or the proto3 default when absent."""
    value = fields.get(number, [default])[-1]
    if not isinstance(value, int):
        raise protowire.WireError(f"field {number} should be an integer but is length-delimited")
    return value


def _message(fields: dict, number: int) -> dict:
    """A singular sub-message field, parsed (several occurrences of a message field merge, so concatenate)."""
    parts = fields.get(number, [])
    if any(not isinstance(p, bytes) for p in parts):
        raise protowire.WireError(f"field {number} should be a message but is a scalar")
    return protowire.parse(b"".join(parts))


def _parse_header(value: bytes) -> BundleHeader:
    fields = protowire.parse(value)
    version = _message(fields, 3)  # VersionDef: producer=1, min_consumer=2, bad_consumers=3
    endianness = _int(fields, 2)
    if endianness not in (_LITTLE, _BIG):
        raise protowire.WireError(f"unknown byte order {endianness}")
    return BundleHeader(num_shards=_int(fields, 1), byte_order="<" if endianness == _LITTLE else ">",
                        producer=protowire.to_int64(_int(version, 1)),
                        min_consumer=protowire.to_int64(_int(version, 2)))


def _parse_entry(name: str, value: bytes) -> tuple[TensorInfo, int]:
    """A BundleEntryProto -> (TensorInfo, number of slices)."""
    fields = protowire.parse(value)
    code = _int(fields, 1)
    dtype = np.dtype(_NUMPY_DTYPES[code]) if code in _NUMPY_DTYPES else _OTHER_DTYPES.get(code, f"dtype enum {code}")
    shape_fields = _message(fields, 2)  # TensorShapeProto: dim=2 (Dim: size=1, name=2), unknown_rank=3
    if _int(shape_fields, 3):
        raise protowire.WireError("shape has unknown rank")
    shape = tuple(protowire.to_int64(_int(protowire.parse(d), 1)) for d in shape_fields.get(2, []))
    if any(d < 0 for d in shape):
        raise protowire.WireError(f"shape {list(shape)} has an unknown dimension")
    info = TensorInfo(name=name, dtype=dtype, shape=shape, shard_id=_int(fields, 3),
                      offset=protowire.to_int64(_int(fields, 4)), size=protowire.to_int64(_int(fields, 5)),
                      crc32c=_int(fields, 6))
    if info.offset < 0 or info.size < 0:
        raise protowire.WireError(f"negative offset {info.offset} or size {info.size}")
    return info, len(fields.get(7, []))


def _load_index(path: str | os.PathLike) -> tuple[Path, BundleHeader, dict[str, TensorInfo]]:
    prefix = resolve_prefix(path)
    index_path = _index_of(prefix)
    data = index_path.read_bytes()
    header = None
    infos: dict[str, TensorInfo] = {}
    name = ""
    try:
        for key, value in iter_table(data):
            if key == b"":
                header = _parse_header(value)
                continue
            if key.startswith(b"\x00"):
                # The encoded key of one slice of a partitioned variable; the variable's own entry
                # (which lists its slices) is rejected below with its readable name.
                continue
            name = key.decode("utf-8", errors="backslashreplace")
            info, num_slices = _parse_entry(name, value)
            if num_slices:
                raise CheckpointError(
                    f"{index_path}: tensor {name!r} is a partitioned variable saved as {num_slices} slices, which "
                    f"this reader does not support; load it in TensorFlow and re-save it unpartitioned")
            infos[name] = info
    except TableError as e:
        raise CheckpointError(f"{index_path} is not a readable TensorFlow checkpoint index: {e}. The file is "
                              f"corrupt or truncated (re-download or re-copy it), or it is not a checkpoint") from None
    except protowire.WireError as e:
        where = f"the entry for tensor {name!r}" if name else "the bundle header"
        raise CheckpointError(f"{index_path}: {where} is not a valid checkpoint record ({e}); "
                              f"the index is corrupt, re-download or re-copy it") from None
    if header is None:
        raise CheckpointError(f"{index_path} is an SSTable but has no bundle header (the entry with the empty key), "
                              f"so it is not a TensorFlow V2 checkpoint index")
    if header.min_consumer > _BUNDLE_VERSION:
        raise CheckpointError(f"{index_path} needs a checkpoint reader of version >= {header.min_consumer} "
                              f"(this one reads version {_BUNDLE_VERSION}); convert it with a recent TensorFlow")
    for info in infos.values():
        if not 0 <= info.shard_id < max(header.num_shards, 1):
            raise CheckpointError(f"{index_path}: tensor {info.name!r} is in shard {info.shard_id}, but the header "
                                  f"says there are {header.num_shards} shards; the index is corrupt")
    return prefix, header, infos


def read_index(path: str | os.PathLike) -> dict[str, TensorInfo]:
    """Every tensor's index entry, by name (in the index's sorted order). Only the ``.index`` file is read."""
    return _load_index(path)[2]


# ---------------------------------------------------------------------------------------------------- the data

class BundleReader:
    """Reads tensors from a checkpoint. Data shards are opened on first use; use as a context manager or ``close()``."""

    def __init__(self, path: str | os.PathLike):
        self.prefix, self.header, self._infos = _load_index(path)
        self._files: dict[int, tuple[object, int]] = {}  # shard_id -> (open file, its size)

    @property
    def index_path(self) -> Path:
        return _index_of(self.prefix)

    def shard_path(self, shard_id: int) -> Path:
        """The data file holding shard ``shard_id``: ``{prefix}.data-{shard:05d}-of-{num_shards:05d}``."""
        return Path(f"{self.prefix}.data-{shard_id:05d}-of-{self.header.num_shards:05d}")

    def names(self) -> list[str]:
        return list(self._infos)

    def __contains__(self, name: str) -> bool:
        return name in self._infos

    def __len__(self) -> int:
        return len(self._infos)

    def info(self, name: str) -> TensorInfo:
        try:
            return self._infos[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._infos, n=3)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else "; see .names() for the list"
            raise CheckpointError(f"{self.index_path} has no tensor {name!r}{hint}") from None

    def read(self, name: str) -> np.ndarray:
        """The tensor as a new numpy array in native byte order, after checking its CRC32C.

        bfloat16 comes back as float32 (exactly); strings as an object array of ``bytes``.
        """
        info = self.info(name)
        if info.is_a("string"):
            return self._read_strings(info)
        if info.is_a("bfloat16"):
            itemsize = 2
        elif isinstance(info.dtype, np.dtype):
            itemsize = info.dtype.itemsize
        else:
            raise CheckpointError(f"{self.index_path}: tensor {name!r} has dtype {info.dtype}, which this reader "
                                  f"does not support; read it with TensorFlow (tf.train.load_checkpoint)")
        if info.size != info.num_elements * itemsize:
            raise CheckpointError(f"{self.index_path}: tensor {name!r} of shape {list(info.shape)} and dtype "
                                  f"{info.dtype} needs {info.num_elements * itemsize} bytes but the index says "
                                  f"{info.size}; the index is corrupt")
        raw = self._read_checked(info)
        if info.is_a("bfloat16"):
            bits = raw.view(np.dtype("u2").newbyteorder(self.header.byte_order)).astype(np.uint32)
            return (bits << 16).view(np.float32).reshape(info.shape)
        array = raw.view(info.dtype.newbyteorder(self.header.byte_order)).reshape(info.shape)
        return array if array.dtype.isnative else array.astype(info.dtype)

    def read_all(self, skip_strings: bool = True) -> dict[str, np.ndarray]:
        """Every tensor, by name. String tensors (e.g. TF2's ``_CHECKPOINTABLE_OBJECT_GRAPH``) are left out
        unless ``skip_strings=False``."""
        return {name: self.read(name) for name, info in self._infos.items()
                if not (skip_strings and info.is_a("string"))}

    # -- shard access

    def _shard(self, info: TensorInfo):
        if info.shard_id not in self._files:
            path = self.shard_path(info.shard_id)
            try:
                f = open(path, "rb")
            except FileNotFoundError:
                raise CheckpointError(
                    f"{path} is missing: tensor {info.name!r} is stored in data shard {info.shard_id} of "
                    f"{self.header.num_shards} of checkpoint {self.prefix}. Put every "
                    f"{self.prefix.name}.data-*-of-{self.header.num_shards:05d} file next to {self.index_path.name}"
                ) from None
            self._files[info.shard_id] = (f, os.fstat(f.fileno()).st_size)
        return self._files[info.shard_id]

    def _read_raw(self, info: TensorInfo) -> np.ndarray:
        """The tensor's bytes from its shard, as a new uint8 array."""
        f, file_size = self._shard(info)
        path = self.shard_path(info.shard_id)
        got = -1
        if info.offset + info.size <= file_size:
            buf = np.empty(info.size, np.uint8)
            f.seek(info.offset)
            got = f.readinto(buf)
        if got != info.size:
            raise CheckpointError(f"{path} is truncated: tensor {info.name!r} needs bytes [{info.offset}, "
                                  f"{info.offset + info.size}) but the file has only {file_size} bytes. "
                                  f"The download or copy is incomplete; fetch the file again")
        return buf

    def _crc_error(self, info: TensorInfo, what: str, stored: int, actual: int) -> CheckpointError:
        return CheckpointError(f"{self.shard_path(info.shard_id)}: {what} of tensor {info.name!r} fail the CRC32C "
                               f"check (stored {stored:#010x}, computed {actual:#010x}); the data file is "
                               f"corrupt, fetch it again")

    def _read_checked(self, info: TensorInfo) -> np.ndarray:
        raw = self._read_raw(info)
        actual = mask_crc(crc32c(raw))
        if actual != info.crc32c:
            raise self._crc_error(info, "the bytes", info.crc32c, actual)
        return raw

    def _read_strings(self, info: TensorInfo) -> np.ndarray:
        """A DT_STRING tensor. Its bytes in the shard are (tensor_bundle.cc, WriteStringTensor)::

            [varint64 len_0] ... [varint64 len_n-1] [fixed32 masked CRC of the lengths] [bytes_0] ... [bytes_n-1]

        The CRCs are not over those bytes: both run over each length as a *uint32* (uint64 if it does not
        fit) in the writer's byte order; the entry's CRC then continues over the stored length CRC and the strings.
        """
        raw = self._read_raw(info).tobytes()
        order = self.header.byte_order
        lengths, pos, crc = [], 0, 0
        try:
            for _ in range(info.num_elements):
                n, pos = protowire.read_varint(raw, pos)
                lengths.append(n)
                crc = crc32c(n.to_bytes(4 if n <= 0xFFFFFFFF else 8, "little" if order == "<" else "big"), crc)
        except protowire.WireError:
            raise CheckpointError(f"{self.shard_path(info.shard_id)}: the string lengths of tensor {info.name!r} "
                                  f"are malformed; the data file is corrupt") from None
        if pos + 4 + sum(lengths) != info.size:
            raise CheckpointError(f"{self.shard_path(info.shard_id)}: string tensor {info.name!r} takes "
                                  f"{pos + 4 + sum(lengths)} bytes but the index says {info.size}; the data is corrupt")
        stored = int.from_bytes(raw[pos:pos + 4], "little" if order == "<" else "big")
        if mask_crc(crc) != stored:
            raise self._crc_error(info, "the string lengths", stored, mask_crc(crc))
        actual = mask_crc(crc32c(raw[pos:], crc))
        if actual != info.crc32c:
            raise self._crc_error(info, "the strings", info.crc32c, actual)
        pos += 4
        out = np.empty(len(lengths), dtype=object)
        for i, n in enumerate(lengths):
            out[i] = raw[pos:pos + n]
            pos += n
        return out.reshape(info.shape)

    # -- lifetime

    def close(self) -> None:
        for f, _ in self._files.values():
            f.close()
        self._files.clear()

    def __enter__(self) -> BundleReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"BundleReader({str(self.prefix)!r}: {len(self)} tensors in {self.header.num_shards} shard(s))"
