"""A tiny decoder for the protocol-buffers wire format (just enough to read TensorFlow's checkpoint protos).

A message is a sequence of fields; each starts with a varint tag ``(field_number << 3) | wire_type``:

====  ================  =========================================
wire  meaning           payload
====  ================  =========================================
0     varint            base-128, little-endian groups, 1-10 bytes
1     fixed64           8 bytes little-endian
2     length-delimited  varint length, then that many bytes
5     fixed32           4 bytes little-endian
====  ================  =========================================

Wire types 3 and 4 (groups) are long deprecated and never appear in TensorFlow's protos; they are rejected.
"""
from __future__ import annotations

from collections.abc import Iterator

VARINT, FIXED64, LENGTH_DELIMITED, FIXED32 = 0, 1, 2, 5


class WireError(ValueError):
    """Bytes that are not a well-formed protobuf message (or varint)."""


def read_varint(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Decode the unsigned varint at ``buf[pos]``; return ``(value, position after it)``."""
    result = shift = 0
    end = len(buf)
    while True:
        if pos >= end:
            raise WireError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:  # a 64-bit varint has at most 10 bytes
            raise WireError("varint longer than 10 bytes")


def to_int64(value: int) -> int:
    """Reinterpret an unsigned varint as a signed (two's complement) int64, as proto ``int64``/``int32`` fields are."""
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >= 1 << 63 else value


def iter_fields(buf: bytes | memoryview) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield ``(field_number, wire_type, value)`` for each field of a serialized message.

    ``value`` is an unsigned ``int`` for varint/fixed32/fixed64 fields and ``bytes`` for length-delimited ones.
    """
    buf = memoryview(buf)
    pos, end = 0, len(buf)
    while pos < end:
        tag, pos = read_varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise WireError("field number 0")
        if wire == VARINT:
            value, pos = read_varint(buf, pos)
        elif wire == FIXED64 or wire == FIXED32:
            width = 8 if wire == FIXED64 else 4
            if pos + width > end:
                raise WireError(f"truncated fixed{width * 8} field {number}")
            value = int.from_bytes(buf[pos:pos + width], "little")
            pos += width
        elif wire == LENGTH_DELIMITED:
            length, pos = read_varint(buf, pos)
            if pos + length > end:
                raise WireError(f"length-delimited field {number} runs past the end of the message")
            value = bytes(buf[pos:pos + length])
            pos += length
        else:
            raise WireError(f"unsupported wire type {wire} (field {number})")
        yield number, wire, value


def parse(buf: bytes | memoryview) -> dict[int, list[int | bytes]]:
    """Group a message's fields by number: ``{field_number: [values in order]}``.

    For a singular field proto semantics say the last value wins (``fields[n][-1]``); absent fields are the
    proto3 default (0, empty), which callers supply with ``.get(n, [default])``.
    """
    fields: dict[int, list[int | bytes]] = {}
    for number, _wire, value in iter_fields(buf):
        fields.setdefault(number, []).append(value)
    return fields
