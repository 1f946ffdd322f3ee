"""converters.tf_bundle_writer writes what TensorFlow's BundleWriter writes, byte for byte.

(The five released indexes rebuilt byte for byte are in test_real_weights.py.)"""
from __future__ import annotations

import string
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from converters.tf_bundle import BundleReader
from converters.tf_bundle_writer import BLOCK_SIZE, bundle_bytes, index_bytes, write_bundle

DTYPES = ["float32", "float64", "float16", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
          "uint64", "bool", "complex64", "complex128"]
NAMES = st.text(alphabet=string.ascii_letters + string.digits + "/_.-", min_size=1, max_size=60)


def _random(rng, dtype, shape):
    if dtype == "bool":
        return rng.integers(0, 2, shape).astype(bool)
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
    if np.dtype(dtype).kind == "c":
        return (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(dtype)
    return rng.normal(size=shape).astype(dtype)


@pytest.fixture(scope="module")
def tf():
    tf = pytest.importorskip("tensorflow")
    tf.get_logger().setLevel("ERROR")
    return tf


def tf_bytes(tf, tensors) -> tuple[bytes, bytes]:
    with tempfile.TemporaryDirectory() as folder:
        prefix = str(Path(folder) / "ckpt")
        names = sorted(tensors)
        tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                          tensors=[tf.constant(tensors[n]) for n in names])
        return Path(prefix + ".index").read_bytes(), Path(prefix + ".data-00000-of-00001").read_bytes()


@settings(max_examples=25, deadline=None)
@given(specs=st.dictionaries(NAMES, st.tuples(st.sampled_from(DTYPES),
                                              st.lists(st.integers(0, 5), max_size=4).map(tuple)),
                             min_size=1, max_size=40),
       seed=st.integers(0, 2**32 - 1))
def test_property_same_bytes_as_tensorflow(tf, specs, seed):
    rng = np.random.default_rng(seed)
    tensors = {name: _random(rng, dtype, shape) for name, (dtype, shape) in specs.items()}
    assert bundle_bytes(tensors) == tf_bytes(tf, tensors)


def test_index_of_several_blocks_is_tensorflows(tf):
    # 7000 names that share little make an index of several 256 KiB data blocks, with shortened separator keys
    import hashlib
    tensors = {hashlib.sha256(b"%d" % i).hexdigest() * 2: np.float32(i) for i in range(7000)}
    index, data = bundle_bytes(tensors)
    assert len(index) > 2 * BLOCK_SIZE
    assert (index, data) == tf_bytes(tf, tensors)


@settings(max_examples=30, deadline=None)
@given(specs=st.dictionaries(NAMES, st.tuples(st.sampled_from(DTYPES),
                                              st.lists(st.integers(0, 4), max_size=3).map(tuple)),
                             min_size=1, max_size=20),
       seed=st.integers(0, 2**32 - 1))
def test_property_written_bundle_reads_back_and_its_index_is_a_fixpoint(specs, seed):
    rng = np.random.default_rng(seed)
    tensors = {name: _random(rng, dtype, shape) for name, (dtype, shape) in specs.items()}
    with tempfile.TemporaryDirectory() as folder:
        prefix = write_bundle(Path(folder) / "ckpt", tensors)
        with BundleReader(prefix) as reader:
            assert reader.names() == sorted(tensors)
            for name, value in tensors.items():
                got = reader.read(name)
                assert got.dtype == value.dtype and got.shape == value.shape and got.tobytes() == value.tobytes()
            rebuilt = index_bytes(reader.info(n) for n in reader.names())
        assert rebuilt == Path(f"{prefix}.index").read_bytes()


def test_unsupported_dtype_is_named():
    with pytest.raises(TypeError, match=r"tensor 's': dtype <U1 cannot be written"):
        bundle_bytes({"s": np.array(["a"])})
