"""Read an SSTable (the LevelDB table format) -- the on-disk format of a TensorFlow checkpoint's ``.index`` file.

Layout of a table file::

    [data block 0][trailer] ... [data block N-1][trailer]
    [metaindex block][trailer]          (empty in TensorFlow's tables)
    [index block][trailer]              (one entry per data block: key >= every key in that block -> BlockHandle)
    [footer: 48 bytes]

* A *BlockHandle* is two varints: ``offset``, ``size`` (the size excludes the trailer).
* The *footer* holds the metaindex handle and the index handle, zero-padded to 40 bytes, followed by the
  8-byte little-endian magic number ``0xdb4775248b80fb57``.
* Every block is followed by a 5-byte *trailer*: one compression-type byte (0 = none, 1 = snappy) and the
  *masked* CRC32C (little-endian fixed32) of the block contents plus that type byte.
* A *block* is a run of entries followed by a restart array and its length (fixed32s). Keys are
  prefix-compressed against the previous key: each entry is ``shared, non_shared, value_length`` (varints),
  then ``non_shared`` key bytes and ``value_length`` value bytes. At each restart point ``shared`` is 0.
"""
from __future__ import annotations

import struct
from collections.abc import Iterator

try:
    import google_crc32c
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("reading TensorFlow checkpoints needs the google-crc32c package: "
                      "pip install google-crc32c") from e

from converters.protowire import WireError, read_varint

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
TRAILER_SIZE = 5
NO_COMPRESSION, SNAPPY_COMPRESSION = 0, 1

_MASK_DELTA = 0xA282EAD8


class TableError(ValueError):
    """The bytes are not a valid (uncompressed) SSTable."""


def mask_crc(crc: int) -> int:
    """LevelDB's CRC masking: rotate right by 15 bits and add a constant (so CRCs of CRCs stay well-spread)."""
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def crc32c(data, crc: int = 0) -> int:
    """CRC32C (Castagnoli) of a read-only bytes-like object (bytes, or a numpy array), continuing from ``crc``."""
    return google_crc32c.extend(crc, data)


def _read_handle(buf: memoryview, pos: int) -> tuple[tuple[int, int], int]:
    offset, pos = read_varint(buf, pos)
    size, pos = read_varint(buf, pos)
    return (offset, size), pos


def _read_block(data: memoryview, handle: tuple[int, int], what: str) -> memoryview:
    """Return the contents of the block at ``handle`` after checking its trailer (compression type and CRC)."""
    offset, size = handle
    if offset + size + TRAILER_SIZE > len(data):
        raise TableError(f"{what} block [{offset}, {offset + size}) runs past the end of the file ({len(data)} bytes)")
    contents = data[offset:offset + size]
    kind = data[offset + size]
    (stored,) = struct.unpack_from("<I", data, offset + size + 1)
    actual = mask_crc(crc32c(bytes(data[offset:offset + size + 1])))  # contents + type byte are contiguous
    if stored != actual:
        raise TableError(f"{what} block at offset {offset} fails its CRC32C check "
                         f"(stored {stored:#010x}, computed {actual:#010x})")
    if kind == SNAPPY_COMPRESSION:
        raise TableError(f"{what} block at offset {offset} is snappy-compressed, which this reader does not support")
    if kind != NO_COMPRESSION:
        raise TableError(f"{what} block at offset {offset} has unknown compression type {kind}")
    return contents


def _iter_block(block: memoryview, what: str) -> Iterator[tuple[bytes, memoryview]]:
    """Yield ``(key, value)`` for every entry of one block, undoing the prefix compression of keys."""
    if len(block) < 4:
        raise TableError(f"{what} block is too short ({len(block)} bytes) to hold its restart count")
    (num_restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    entries_end = len(block) - 4 - 4 * num_restarts
    if entries_end < 0:
        raise TableError(f"{what} block claims {num_restarts} restart points, more than fit in {len(block)} bytes")
    key = b""
    pos = 0
    try:
        while pos < entries_end:
            shared, pos = read_varint(block, pos)
            non_shared, pos = read_varint(block, pos)
            value_length, pos = read_varint(block, pos)
            if shared > len(key) or pos + non_shared + value_length > entries_end:
                raise TableError(f"{what} block has a malformed entry at byte {pos}")
            key = key[:shared] + bytes(block[pos:pos + non_shared])
            pos += non_shared
            yield key, block[pos:pos + value_length]
            pos += value_length
    except WireError as e:
        raise TableError(f"{what} block has a malformed entry: {e}") from None


def iter_table(data: bytes | memoryview) -> Iterator[tuple[bytes, memoryview]]:
    """Yield every ``(key, value)`` of an SSTable held in memory, in key order, checking every block's CRC.

    Raises TableError for anything that is not a well-formed uncompressed table.
    """
    data = memoryview(data)
    if len(data) < FOOTER_SIZE:
        raise TableError(f"file is {len(data)} bytes, shorter than an SSTable footer ({FOOTER_SIZE} bytes)")
    footer = data[len(data) - FOOTER_SIZE:]
    (magic,) = struct.unpack_from("<Q", footer, FOOTER_SIZE - 8)
    if magic != TABLE_MAGIC:
        raise TableError(f"no SSTable magic number at the end of the file (found {magic:#018x})")
    try:
        metaindex_handle, pos = _read_handle(footer, 0)
        index_handle, _ = _read_handle(footer, pos)
    except WireError as e:
        raise TableError(f"malformed footer: {e}") from None
    # TensorFlow writes no meta blocks, so the metaindex block is empty; it is only checked, so that every
    # byte before the footer is covered by some CRC.
    _read_block(data, metaindex_handle, "metaindex")
    index = _read_block(data, index_handle, "index")
    for _separator, handle_bytes in _iter_block(index, "index"):
        try:
            handle, _ = _read_handle(handle_bytes, 0)
        except WireError as e:
            raise TableError(f"index block has a malformed block handle: {e}") from None
        yield from _iter_block(_read_block(data, handle, "data"), "data")
