"""converters.tf_bundle reads TensorFlow checkpoints exactly as TensorFlow does, and every way a checkpoint can be
broken gives one clear CheckpointError.

Three sources of checkpoints:
* DeepMind's real kinetics-i3d ``.index`` files (their data shards are not shipped): index facts only;
* a small hand-written bundle writer below (no TensorFlow needed): byte orders, several shards and SSTable
  blocks, bfloat16, strings, and features TensorFlow will not easily write (snappy, slices, odd dtypes);
* TensorFlow itself when it is installed: TF1 ``Saver`` (sharded over two devices), TF2 ``tf.train.Checkpoint``,
  raw ``SaveV2``/``MergeV2Checkpoints``, and a property test over dtypes and shapes.
"""
import os
import shutil
import struct
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before any TensorFlow import: keep it quiet

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from converters import tf_bundle
from converters.sstable import TABLE_MAGIC, crc32c, mask_crc
from converters.tf_bundle import (
    BundleReader,
    CheckpointError,
    read_index,
    resolve_prefix,
)
from converters.tf_reference import compare_with_tensorflow

DEEPMIND = Path(__file__).parent / "data" / "kinetics-i3d"
NOT_A_CHECKPOINT = r"not a (readable )?TensorFlow checkpoint"


# ------------------------------------------------------------------------------------- a minimal bundle writer

def _uvarint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes(out + bytes([n]))


def _vfield(number: int, value: int) -> bytes:
    return _uvarint(number << 3) + _uvarint(value)


def _bfield(number: int, value: bytes) -> bytes:
    return _uvarint(number << 3 | 2) + _uvarint(len(value)) + value


def _entry(dtype: int, shape, shard: int, offset: int, size: int, crc: int, slices: int = 0) -> bytes:
    shape_pb = b"".join(_bfield(2, _vfield(1, d)) for d in shape)
    return (_vfield(1, dtype) + _bfield(2, shape_pb) + _vfield(3, shard) + _vfield(4, offset) + _vfield(5, size)
            + _uvarint(6 << 3 | 5) + struct.pack("<I", crc) + _bfield(7, b"") * slices)


def _block(items, restart_interval: int = 3) -> bytes:
    out, restarts, prev = bytearray(), [], b""
    for i, (key, value) in enumerate(items):
        shared = 0 if i % restart_interval == 0 else len(os.path.commonprefix([prev, key]))
        if i % restart_interval == 0:
            restarts.append(len(out))
        out += _uvarint(shared) + _uvarint(len(key) - shared) + _uvarint(len(value)) + key[shared:] + value
        prev = key
    restarts = restarts or [0]
    return bytes(out) + struct.pack(f"<{len(restarts) + 1}I", *restarts, len(restarts))


def _table(items, per_block: int = 1000, compression: int = 0) -> bytes:
    out = bytearray()

    def put(block: bytes) -> bytes:
        handle = _uvarint(len(out)) + _uvarint(len(block))
        out.extend(block + bytes([compression]) + struct.pack("<I", mask_crc(crc32c(block + bytes([compression])))))
        return handle

    index = []
    for i in range(0, len(items), per_block):
        chunk = items[i:i + per_block]
        index.append((chunk[-1][0], put(_block(chunk))))
    meta, idx = put(_block([])), put(_block(index, restart_interval=1))
    return bytes(out) + (meta + idx).ljust(40, b"\0") + struct.pack("<Q", TABLE_MAGIC)


_CODES = {np.dtype(t): code for code, t in tf_bundle._NUMPY_DTYPES.items()}


def _string_bytes(strings, byte_order: str) -> tuple[bytes, int]:
    """TensorFlow's DT_STRING layout and its (unmasked) CRC: lengths, masked CRC of lengths as uint32, bytes."""
    endian = "little" if byte_order == "<" else "big"
    lengths = b"".join(_uvarint(len(s)) for s in strings)
    crc = 0
    for s in strings:
        crc = crc32c(len(s).to_bytes(4, endian), crc)
    length_crc = mask_crc(crc).to_bytes(4, endian)
    body = b"".join(strings)
    return lengths + length_crc + body, crc32c(body, crc32c(length_crc, crc))


def write_bundle(prefix, tensors, byte_order="<", num_shards=1, per_block=1000, compression=0, header=True,
                 slices=()):
    """Write a checkpoint as TensorFlow's BundleWriter would. ``tensors`` values: numpy arrays (object arrays of
    bytes for strings), ``("bfloat16", uint16 bit patterns)`` or ``(dtype_code, shape, raw_bytes)``."""
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    shards = [bytearray() for _ in range(num_shards)]
    items = []
    for i, name in enumerate(sorted(tensors)):
        value, shard, crc = tensors[name], i % num_shards, None
        if isinstance(value, tuple) and value[0] == "bfloat16":
            code, shape, raw = 14, value[1].shape, value[1].astype(byte_order + "u2").tobytes()
        elif isinstance(value, tuple):
            code, shape, raw = value
        elif value.dtype == object:
            code, shape = 7, value.shape
            raw, crc = _string_bytes(list(value.ravel()), byte_order)
        else:  # (np.asarray: numpy scalars ignore a non-native byte order in astype)
            value = np.asarray(value)
            code, shape = _CODES[value.dtype], value.shape
            raw = value.astype(value.dtype.newbyteorder(byte_order)).tobytes()
        crc = crc32c(raw) if crc is None else crc
        entry = _entry(code, shape, shard, len(shards[shard]), len(raw), mask_crc(crc), name in slices)
        items.append((name.encode(), entry))
        shards[shard] += raw
    if header:
        endianness = 0 if byte_order == "<" else 1  # version: VersionDef(producer=1)
        items.append((b"", _vfield(1, num_shards) + _vfield(2, endianness) + _bfield(3, _vfield(1, 1))))
    Path(f"{prefix}.index").write_bytes(_table(sorted(items), per_block, compression))
    for i, data in enumerate(shards):
        Path(f"{prefix}.data-{i:05d}-of-{num_shards:05d}").write_bytes(data)
    return prefix


def _bf16_bits(rng, shape) -> np.ndarray:
    bits = rng.integers(0, 1 << 16, size=shape, dtype=np.uint16)
    return np.where((bits & 0x7F80) == 0x7F80, bits & 0xBFFF, bits).astype(np.uint16)  # no inf/NaN


def _bf16_as_f32(bits: np.ndarray) -> np.ndarray:
    return (bits.astype(np.uint32) << 16).view(np.float32)


def _random(rng, dtype, shape) -> np.ndarray:
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
    if dtype.kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
    return (rng.standard_normal(shape) * 100).astype(dtype)


def assert_same(ours: np.ndarray, expected: np.ndarray):
    """Bit-exact equality (so -0.0 vs 0.0 and NaN payloads count)."""
    assert ours.shape == expected.shape and ours.dtype == expected.dtype, (ours.shape, ours.dtype, expected.shape,
                                                                           expected.dtype)
    if ours.dtype == object:
        assert ours.tolist() == expected.tolist()
    else:
        assert ours.tobytes() == expected.tobytes()


NUMERIC = ["float32", "float64", "float16", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
           "uint64", "bool", "complex64", "complex128"]


# ------------------------------------------------------------------------------------- DeepMind's real index files

@pytest.mark.parametrize("variant, scope, in_channels", [
    ("rgb_scratch", "RGB", 3), ("rgb_imagenet", "RGB", 3), ("flow_scratch", "Flow", 2), ("flow_imagenet", "Flow", 2)])
def test_deepmind_kinetics400_index(variant, scope, in_channels):
    index = read_index(DEEPMIND / variant / "model.ckpt.index")
    assert len(index) == 230
    assert all(name.startswith(f"{scope}/inception_i3d/") for name in index)
    assert {info.dtype for info in index.values()} == {np.dtype(np.float32)}
    assert {info.shard_id for info in index.values()} == {0}
    p = f"{scope}/inception_i3d/"
    assert index[p + "Conv3d_1a_7x7/conv_3d/w"].shape == (7, 7, 7, in_channels, 64)
    assert index[p + "Logits/Conv3d_0c_1x1/conv_3d/w"].shape == (1, 1, 1, 1024, 400)
    assert index[p + "Logits/Conv3d_0c_1x1/conv_3d/b"].shape == (400,)
    assert index[p + "Conv3d_1a_7x7/batch_norm/moving_variance"].shape == (64,)
    assert p + "Mixed_5b/Branch_2/Conv3d_0a_3x3/conv_3d/w" in index
    assert p + "Mixed_5b/Branch_2/Conv3d_0b_3x3/conv_3d/w" not in index
    assert p + "Mixed_4b/Branch_2/Conv3d_0b_3x3/conv_3d/w" in index
    assert {name.rsplit("/", 1)[1] for name in index} == {"w", "b", "beta", "moving_mean", "moving_variance"}
    assert all(len(info.shape) == 5 for name, info in index.items() if name.endswith("/w"))
    # every tensor is packed back to back in the one data shard, float32 bytes of its shape
    infos = sorted(index.values(), key=lambda i: i.offset)
    assert infos[0].offset == 0
    assert all(a.offset + a.size == b.offset for a, b in zip(infos[:-1], infos[1:], strict=True))
    assert all(info.size == 4 * info.num_elements for info in infos)


def test_deepmind_kinetics600_index():
    index = read_index(DEEPMIND / "rgb_scratch_kin600")  # the folder works as well as the .index file
    assert len(index) == 230 + 116
    momentum = [name for name in index if name.endswith("/Momentum")]
    assert len(momentum) == 116
    assert all(name[:-len("/Momentum")] in index for name in momentum)
    assert not any(name.startswith(("RGB/", "inception_i3d/")) for name in index)
    assert index["Conv3d_1a_7x7/conv_3d/w"].shape == (7, 7, 7, 3, 64)
    assert index["Logits/Conv3d_0c_1x1/conv_3d/w"].shape == (1, 1, 1, 1024, 600)
    assert index["Logits/Conv3d_0c_1x1/conv_3d/b"].shape == (600,)
    bn = [info for name, info in index.items() if "/batch_norm/" in name]
    assert bn and all(info.shape[:4] == (1, 1, 1, 1) and len(info.shape) == 5 for info in bn)
    assert index["Mixed_5c/Branch_0/Conv3d_0a_1x1/batch_norm/beta"].shape == (1, 1, 1, 1, 384)


def test_deepmind_index_without_data_names_the_missing_shard():
    with BundleReader(DEEPMIND / "rgb_imagenet" / "model.ckpt") as ckpt:
        assert ckpt.header.num_shards == 1 and ckpt.header.byte_order == "<"
        with pytest.raises(CheckpointError, match=r"model\.ckpt\.data-00000-of-00001 is missing.*Logits"):
            ckpt.read("RGB/inception_i3d/Logits/Conv3d_0c_1x1/conv_3d/b")
        with pytest.raises(CheckpointError, match=r"no tensor 'RGB/inception_i3d/Logits/Conv3d_0c_1x1/conv_3d/B'"
                                                  r".*did you mean.*conv_3d/b"):
            ckpt.info("RGB/inception_i3d/Logits/Conv3d_0c_1x1/conv_3d/B")


# ------------------------------------------------------------------------------------- hand-written bundles

@pytest.mark.parametrize("byte_order", ["<", ">"])
def test_every_dtype_both_byte_orders_several_shards_and_blocks(tmp_path, byte_order):
    rng = np.random.default_rng(0)
    tensors = {f"t/{dtype}/{i}": _random(rng, dtype, shape)
               for dtype in NUMERIC for i, shape in enumerate([(), (0,), (3, 0, 2), (2, 3, 4)])}
    tensors["strings"] = np.array([[b"", b"abc"], [b"\x00\xff" * 70, "é".encode()]], dtype=object)
    tensors["no_strings"] = np.empty((0, 3), dtype=object)
    bits = _bf16_bits(rng, (4, 5))
    tensors["bf16"] = ("bfloat16", bits)
    prefix = write_bundle(tmp_path / "ckpt", tensors, byte_order=byte_order, num_shards=3, per_block=4)
    with BundleReader(prefix) as ckpt:
        assert ckpt.header.num_shards == 3 and ckpt.header.byte_order == byte_order
        assert ckpt.names() == sorted(tensors)
        assert {ckpt.info(n).shard_id for n in ckpt.names()} == {0, 1, 2}
        assert ckpt.info("bf16").dtype == "bfloat16" and ckpt.info("strings").dtype == "string"
        assert_same(ckpt.read("bf16"), _bf16_as_f32(bits))
        everything = ckpt.read_all(skip_strings=False)
        for name, value in tensors.items():
            if name != "bf16":
                assert_same(everything[name], value)
                assert everything[name].dtype.isnative
        assert set(ckpt.read_all()) == set(tensors) - {"strings", "no_strings"}
        assert ckpt.read("t/float32/3").flags.writeable


def test_resolve_prefix_accepts_folder_prefix_index_data_and_state_file(tmp_path):
    prefix = write_bundle(tmp_path / "run" / "model.ckpt-7", {"x": np.arange(3.0)}, num_shards=2)
    for form in [tmp_path / "run", prefix, f"{prefix}.index", f"{prefix}.data-00001-of-00002", str(prefix)]:
        assert resolve_prefix(form) == prefix
    # a second checkpoint makes the folder ambiguous ...
    write_bundle(tmp_path / "run" / "model.ckpt-9", {"x": np.arange(4.0)})
    with pytest.raises(CheckpointError, match=r"several checkpoints \(model\.ckpt-7\.index, model\.ckpt-9\.index\)"):
        resolve_prefix(tmp_path / "run")
    # ... until a state file chooses: relative, or absolute from another machine (then found beside it)
    state = tmp_path / "run" / "checkpoint"
    state.write_text('model_checkpoint_path: "model.ckpt-7"\nall_model_checkpoint_paths: "model.ckpt-9"\n')
    assert resolve_prefix(tmp_path / "run") == prefix
    state.write_text('model_checkpoint_path: "/elsewhere/train/model.ckpt-9"\n')
    assert resolve_prefix(tmp_path / "run") == tmp_path / "run" / "model.ckpt-9"
    state.write_text('model_checkpoint_path: "model.ckpt-8"\n')
    with pytest.raises(CheckpointError, match=r"names checkpoint 'model\.ckpt-8'.*model\.ckpt-8\.index does not"):
        resolve_prefix(tmp_path / "run")


def test_things_that_are_not_checkpoints(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match=r"empty is not a TensorFlow checkpoint.*no \*\.index file"):
        resolve_prefix(tmp_path / "empty")
    junk = tmp_path / "junk.bin"
    junk.write_bytes(np.random.default_rng(1).bytes(5000))
    with pytest.raises(CheckpointError, match=r"junk\.bin is not a TensorFlow checkpoint \(a file\).*junk\.bin\.index"):
        BundleReader(junk)
    with pytest.raises(CheckpointError, match=r"nowhere is not a TensorFlow checkpoint \(no such file or folder\)"):
        read_index(tmp_path / "nowhere")
    for name, data in [("junk.index", junk.read_bytes()), ("tiny.index", b"abc"), ("zero.index", b"")]:
        (tmp_path / name).write_bytes(data)
        with pytest.raises(CheckpointError, match=rf"{name} is {NOT_A_CHECKPOINT} index"):
            read_index(tmp_path / name)
    # a valid SSTable without the bundle header is still not a checkpoint
    write_bundle(tmp_path / "headless", {"x": np.zeros(2)}, header=False)
    with pytest.raises(CheckpointError, match="no bundle header"):
        read_index(tmp_path / "headless")


def test_unsupported_features_are_named(tmp_path):
    with pytest.raises(CheckpointError, match=r"snappy-compressed"):
        read_index(write_bundle(tmp_path / "snappy", {"x": np.zeros(2)}, compression=1))
    with pytest.raises(CheckpointError, match=r"tensor 'part' is a partitioned variable saved as 1 slices"):
        read_index(write_bundle(tmp_path / "sliced", {"part": np.zeros(2), "x": np.zeros(1)}, slices={"part"}))
    prefix = write_bundle(tmp_path / "odd", {"handle": (20, (2,), b"\0" * 8), "q": (11, (3,), b"abc"),
                                             "future": (99, (), b"")})
    with BundleReader(prefix) as ckpt:
        assert ckpt.info("handle").dtype == "resource" and ckpt.info("q").dtype == "qint8"
        with pytest.raises(CheckpointError, match=r"tensor 'q' has dtype qint8, which this reader does not support"):
            ckpt.read("q")
        with pytest.raises(CheckpointError, match=r"'future' has dtype dtype enum 99"):
            ckpt.read_all()


def test_index_that_disagrees_with_itself(tmp_path):
    prefix = write_bundle(tmp_path / "bad", {"short": (1, (2, 3), b"\0" * 20)})
    with pytest.raises(CheckpointError, match=r"tensor 'short' of shape \[2, 3\] and dtype float32 needs 24 bytes "
                                              r"but the index says 20"):
        BundleReader(prefix).read("short")
    prefix = write_bundle(tmp_path / "shards", {"a": np.zeros(1), "b": np.zeros(1)}, num_shards=2)
    index = Path(f"{prefix}.index")
    # rewrite the header to claim a single shard: tensor 'b' (in shard 1) is then out of range
    items = [(b"", _vfield(1, 1) + _bfield(3, b""))]
    items += [(k.encode(), _entry(2, (1,), i, 0, 8, mask_crc(crc32c(b"\0" * 8)))) for i, k in enumerate("ab")]
    index.write_bytes(_table(items))
    with pytest.raises(CheckpointError, match=r"tensor 'b' is in shard 1, but the header says there are 1 shards"):
        read_index(prefix)


def _flip(path: Path, position: int):
    data = bytearray(path.read_bytes())
    data[position] ^= 0xFF
    path.write_bytes(bytes(data))


def test_every_corrupted_index_byte_is_caught_or_harmless(tmp_path):
    """Flipping any byte before the footer fails a block CRC; in the footer it fails or changes nothing."""
    prefix = write_bundle(tmp_path / "c", {"a/b": np.arange(4.0), "a/c": np.zeros((2, 2), np.int8)}, per_block=2)
    index_path = Path(f"{prefix}.index")
    pristine = index_path.read_bytes()
    expected = read_index(prefix)
    for position in range(len(pristine)):
        index_path.write_bytes(pristine)
        _flip(index_path, position)
        try:
            got = read_index(prefix)
        except CheckpointError as e:
            assert str(index_path) in str(e)
            continue
        assert position >= len(pristine) - 48, f"flipping index byte {position} went unnoticed"
        assert got == expected


# ------------------------------------------------------------------------------------- TensorFlow-written bundles

@pytest.fixture(scope="module")
def tf():
    tf = pytest.importorskip("tensorflow")
    tf.get_logger().setLevel("ERROR")
    return tf


def _tf_constant(tf, value):
    if isinstance(value, tuple):  # ("bfloat16", bits)
        return tf.constant(_bf16_as_f32(value[1]), dtype=tf.bfloat16)
    return tf.constant(value)


def _expected(value):
    return _bf16_as_f32(value[1]) if isinstance(value, tuple) else value


def save_v2(tf, prefix, tensors):
    names = sorted(tensors)
    tf.raw_ops.SaveV2(prefix=str(prefix), tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[_tf_constant(tf, tensors[n]) for n in names])
    return Path(prefix)


def test_tf1_saver_sharded_over_two_devices(tf, tmp_path):
    rng = np.random.default_rng(2)
    groups = [{"dev0/w": _random(rng, "float32", (3, 4)), "dev0/i8": _random(rng, "int8", (5,)),
               "dev0/bf": ("bfloat16", _bf16_bits(rng, (2, 3))), "dev0/empty": np.zeros((0, 4), np.float16)},
              {"dev1/scalar": np.float64(3.25), "dev1/flags": _random(rng, "bool", (2, 2)),
               "dev1/u16": _random(rng, "uint16", (3,)), "dev1/i64": _random(rng, "int64", (2, 1, 2))}]
    (tmp_path / "train").mkdir()
    graph = tf.Graph()
    with graph.as_default():
        variables = {}
        for device, group in enumerate(groups):
            with tf.device(f"/cpu:{device}"):
                for name, value in group.items():
                    variables[name] = tf.compat.v1.Variable(_tf_constant(tf, value), name=name.replace("/", "_"))
        saver = tf.compat.v1.train.Saver(variables, sharded=True)
        config = tf.compat.v1.ConfigProto(device_count={"CPU": len(groups)})
        with tf.compat.v1.Session(graph=graph, config=config) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            saved = saver.save(session, str(tmp_path / "train" / "model.ckpt"), global_step=5, write_meta_graph=False)
    assert saved.endswith("model.ckpt-5")
    assert resolve_prefix(tmp_path / "train") == Path(saved)  # through the 'checkpoint' state file
    with BundleReader(tmp_path / "train") as ckpt:
        assert ckpt.header.num_shards == 2
        assert Path(f"{saved}.data-00001-of-00002").is_file()
        assert {ckpt.info(n).shard_id for n in ckpt.names()} == {0, 1}
        for group in groups:
            for name, value in group.items():
                assert_same(ckpt.read(name), np.asarray(_expected(value)))
    assert len(compare_with_tensorflow(saved)) == 8


def test_tf2_checkpoint_with_object_graph(tf, tmp_path):
    rng = np.random.default_rng(3)
    w, b = _random(rng, "float32", (3, 2)), _random(rng, "int32", (2,))
    ckpt = tf.train.Checkpoint(layer=tf.train.Checkpoint(w=tf.Variable(w)), b=tf.Variable(b))
    saved = ckpt.save(str(tmp_path / "tf2" / "ckpt"))
    names = set(read_index(tmp_path / "tf2"))
    assert {"_CHECKPOINTABLE_OBJECT_GRAPH", "layer/w/.ATTRIBUTES/VARIABLE_VALUE", "b/.ATTRIBUTES/VARIABLE_VALUE",
            "save_counter/.ATTRIBUTES/VARIABLE_VALUE"} <= names
    with BundleReader(saved) as reader:
        assert_same(reader.read("layer/w/.ATTRIBUTES/VARIABLE_VALUE"), w)
        assert_same(reader.read("b/.ATTRIBUTES/VARIABLE_VALUE"), b)
        assert reader.read("save_counter/.ATTRIBUTES/VARIABLE_VALUE") == 1
        assert "_CHECKPOINTABLE_OBJECT_GRAPH" not in reader.read_all()
        graph = reader.read_all(skip_strings=False)["_CHECKPOINTABLE_OBJECT_GRAPH"]
        assert graph.shape == () and isinstance(graph.item(), bytes) and b"VARIABLE_VALUE" in graph.item()
    compare_with_tensorflow(saved)


def test_merged_checkpoint_has_one_shard_per_part(tf, tmp_path):
    parts = [save_v2(tf, tmp_path / f"part{i}" / "p", {f"v{i}": np.full((i + 1,), i, np.int32)}) for i in range(3)]
    tf.raw_ops.MergeV2Checkpoints(checkpoint_prefixes=[str(p) for p in parts],
                                  destination_prefix=str(tmp_path / "merged" / "m"))
    with BundleReader(tmp_path / "merged" / "m") as ckpt:
        assert ckpt.header.num_shards == 3
        assert [ckpt.info(f"v{i}").shard_id for i in range(3)] == [0, 1, 2]
        assert [ckpt.read(f"v{i}").tolist() for i in range(3)] == [[0], [1, 1], [2, 2, 2]]
        assert ckpt.shard_path(2).name == "m.data-00002-of-00003"


def test_tf_index_spanning_several_blocks(tf, tmp_path):
    rng = np.random.default_rng(4)  # ~400 kB of incompressible names > TensorFlow's 256 kB index blocks
    tensors = {"".join(rng.choice(list("abcdefghij"), 1000)): np.float32(i) for i in range(400)}
    prefix = save_v2(tf, tmp_path / "big", tensors)
    index = read_index(prefix)
    assert list(index) == sorted(tensors) and len(index) == 400
    with BundleReader(prefix) as ckpt:
        assert all(ckpt.read(name) == value for name, value in tensors.items())


def test_partitioned_variable_is_rejected(tf, tmp_path):
    (tmp_path / "p").mkdir()
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.get_variable("part", shape=[4, 3], partitioner=tf.compat.v1.fixed_size_partitioner(2))
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            saved = saver.save(session, str(tmp_path / "p" / "model.ckpt"), write_meta_graph=False)
    with pytest.raises(CheckpointError, match=r"tensor 'part' is a partitioned variable saved as 2 slices.*re-save"):
        read_index(saved)


@pytest.mark.parametrize("byte_order", ["<", ">"])
def test_hand_written_bundle_reads_the_same_in_tensorflow(tf, tmp_path, byte_order):
    """Checks the test writer above against TensorFlow (which byte-swaps big-endian bundles on reading), so the
    TF-free tests test the real format."""
    rng = np.random.default_rng(5)
    tensors = {f"{dtype}": _random(rng, dtype, (2, 3)) for dtype in NUMERIC}
    tensors["s"] = np.array([b"x", b"", b"yz" * 100], dtype=object)
    tensors["bf"] = ("bfloat16", _bf16_bits(rng, (3,)))
    prefix = write_bundle(tmp_path / "mine", tensors, byte_order=byte_order, num_shards=2, per_block=3)
    assert len(compare_with_tensorflow(prefix)) == len(tensors)


@settings(max_examples=15, deadline=None)
@given(specs=st.lists(st.tuples(st.sampled_from(NUMERIC + ["bfloat16"]),
                                st.lists(st.integers(0, 4), max_size=4).map(tuple)), min_size=1, max_size=4),
       seed=st.integers(0, 2**32 - 1))
def test_property_read_equals_what_tensorflow_wrote(tf, specs, seed):
    rng = np.random.default_rng(seed)
    tensors = {f"v{i}/{dtype}": ("bfloat16", _bf16_bits(rng, shape)) if dtype == "bfloat16" else
               _random(rng, dtype, shape) for i, (dtype, shape) in enumerate(specs)}
    with tempfile.TemporaryDirectory() as folder:
        prefix = save_v2(tf, Path(folder) / "ckpt", tensors)
        with BundleReader(prefix) as ckpt:
            for name, value in tensors.items():
                assert_same(ckpt.read(name), np.asarray(_expected(value)))
        assert compare_with_tensorflow(prefix) == sorted(tensors)


# ------------------------------------------------------------------------------------- corrupting a checkpoint

@pytest.fixture(scope="module", params=["tensorflow", "hand-written"])
def pristine(request, tmp_path_factory):
    """The same small checkpoint written by TensorFlow (skipped without it) and by the writer above."""
    rng = np.random.default_rng(6)
    tensors = {"conv/w": _random(rng, "float32", (3, 3, 2, 4)), "conv/b": _random(rng, "float32", (4,)),
               "names": np.array([b"alpha", b"beta"], dtype=object), "step": np.int64(7)}
    prefix = tmp_path_factory.mktemp("pristine") / "model.ckpt"
    if request.param == "tensorflow":
        return save_v2(request.getfixturevalue("tf"), prefix, tensors)
    return write_bundle(prefix, tensors)


@pytest.fixture
def broken(pristine, tmp_path):
    """A fresh copy of the pristine checkpoint to break: (prefix, its single data shard)."""
    shutil.copytree(pristine.parent, tmp_path / "ckpt")
    prefix = tmp_path / "ckpt" / pristine.name
    return prefix, Path(f"{prefix}.data-00000-of-00001")


@pytest.mark.parametrize("name", ["conv/w", "names", "step"])
def test_flipped_data_byte_names_the_tensor_and_shard(broken, name):
    prefix, shard = broken
    info = read_index(prefix)[name]
    _flip(shard, info.offset + info.size - 1)
    with BundleReader(prefix) as ckpt:
        with pytest.raises(CheckpointError, match=rf"{shard.name}: the (bytes|strings) of tensor '{name}' fail "
                                                  r"the CRC32C check.*corrupt"):
            ckpt.read(name)
        others = [n for n in ckpt.names() if n != name and not ckpt.info(n).is_a("string")]
        assert all(ckpt.read(n) is not None for n in others)  # the rest still read


def test_flipped_string_length_is_caught(broken):
    prefix, shard = broken
    _flip(shard, read_index(prefix)["names"].offset)  # the first varint length
    with pytest.raises(CheckpointError, match=r"tensor 'names'"):
        BundleReader(prefix).read("names")


def test_truncated_shard_names_the_tensor_and_file(broken):
    prefix, shard = broken
    last = max(read_index(prefix).values(), key=lambda info: info.offset)
    with open(shard, "r+b") as f:
        f.truncate(last.offset + last.size - 1)
    with BundleReader(prefix) as ckpt:
        with pytest.raises(CheckpointError, match=rf"{shard.name} is truncated: tensor '{last.name}' needs bytes "
                                                  rf"\[{last.offset}, {last.offset + last.size}\)"):
            ckpt.read(last.name)
        first = min(read_index(prefix).values(), key=lambda info: info.offset)
        ckpt.read(first.name)


def test_deleted_shard_names_the_expected_file(broken):
    prefix, shard = broken
    shard.unlink()
    with pytest.raises(CheckpointError, match=rf"{shard} is missing: tensor 'conv/b' is stored in data shard 0 of 1"):
        BundleReader(prefix).read_all()


@pytest.mark.parametrize("where", ["data block", "index block", "footer magic"])
def test_flipped_index_byte_is_caught(broken, where):
    prefix, _ = broken
    index_path = Path(f"{prefix}.index")
    size = index_path.stat().st_size
    position = {"data block": 10, "index block": size - 48 - 6, "footer magic": size - 3}[where]
    _flip(index_path, position)
    with pytest.raises(CheckpointError, match=rf"{index_path.name} is {NOT_A_CHECKPOINT} index.*"
                                              + ("CRC32C" if "block" in where else "magic")):
        read_index(prefix)


def test_compare_with_tensorflow_needs_tensorflow(monkeypatch, tmp_path):
    monkeypatch.setitem(__import__("sys").modules, "tensorflow", None)
    with pytest.raises(ImportError, match="pip install tensorflow-cpu"):
        compare_with_tensorflow(write_bundle(tmp_path / "x", {"x": np.zeros(1)}))
