"""The DeepMind converter, checked against TensorFlow itself.

For each of the five released variants, TensorFlow builds DeepMind's network (tf.nn.conv3d and max_pool3d
with "SAME" padding) under the checkpoint's variable names and saves random weights with its own Saver
(tests/tf_i3d_reference.py, run in a subprocess). The checkpoint's names, shapes and dtypes must equal
the real released .index; the converted model must give TensorFlow's logits at odd T, H and W.
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import zoo
from zoo.weights.deepmind import VARIANTS, convert_deepmind, load_deepmind_state_dict
from converters.deepmind_names import is_ignored, tf_to_torch, torch_to_tf
from converters.tf_bundle import CheckpointError, read_index
from zoo.models.i3d import InceptionI3d, MaxPoolSame, Unit3D

DATA = Path(__file__).parent / "data" / "kinetics-i3d"
REFERENCE = Path(__file__).parent / "tf_i3d_reference.py"
# odd T, H and W (the smallest inputs the Logits [2,7,7] VALID pool accepts are 9 x 193 x 193)
SIZES = [(1, 9, 193, 199), (2, 11, 195, 225)]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_name_map_covers_exactly_the_real_index(variant):
    """Every model tensor of the released .index maps to one state-dict key, and every key is covered."""
    index = read_index(DATA / variant / "model.ckpt.index")
    _, channels, classes, _, _ = VARIANTS[variant]
    expected = InceptionI3d(num_classes=classes, in_channels=channels).state_dict()
    mapped = {}
    for name, info in index.items():
        key = tf_to_torch(name)
        if key is None:
            assert is_ignored(name), f"{name} is neither mapped nor an optimizer slot"
            continue
        assert key not in mapped, f"{name} and {mapped.get(key)} map to {key}"
        mapped[key] = name
        numel = int(np.prod(info.shape))
        assert numel == expected[key].numel(), f"{name} {info.shape} vs {key} {tuple(expected[key].shape)}"
        assert str(info.dtype) == "float32"
    assert set(mapped) == set(expected)
    scope = {"rgb_scratch_kin600": ""}.get(variant, "RGB/inception_i3d/" if "rgb" in variant else "Flow/inception_i3d/")
    assert all(torch_to_tf(k, scope) == n for k, n in mapped.items())
    assert sum(is_ignored(n) for n in index) == (116 if variant == "rgb_scratch_kin600" else 0)


@pytest.fixture(scope="module")
def tf_checkpoints(tmp_path_factory):
    pytest.importorskip("tensorflow")
    root = tmp_path_factory.mktemp("tf_i3d")
    rng = np.random.default_rng(0)
    out = {}
    for variant, (_, channels, _, _, _) in VARIANTS.items():
        folder = root / variant
        folder.mkdir()
        inputs = []
        for i, (b, t, h, w) in enumerate(SIZES):
            path = folder / f"input_{i}.npy"
            np.save(path, rng.uniform(-1, 1, (b, t, h, w, channels)).astype(np.float32))
            inputs.append(str(path))
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
        proc = subprocess.run([sys.executable, str(REFERENCE), str(folder), variant, *inputs],
                              capture_output=True, text=True, env=env, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        out[variant] = folder
    return out


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_tf_written_checkpoint_is_laid_out_as_released(tf_checkpoints, variant):
    ours = {n: (i.shape, str(i.dtype)) for n, i in read_index(tf_checkpoints[variant] / "model.ckpt").items()}
    real = {n: (i.shape, str(i.dtype)) for n, i in read_index(DATA / variant / "model.ckpt.index").items()}
    assert ours == real


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_converted_model_matches_tensorflow(tf_checkpoints, variant, tmp_path):
    folder = tf_checkpoints[variant]
    out = tmp_path / f"{variant}.safetensors"
    result = convert_deepmind(folder, out, variant=variant)
    assert result.variant == variant and result.tensors == 230
    assert result.skipped == (116 if variant == "rgb_scratch_kin600" else 0)
    name = next(n for n, e in zoo.REGISTRY.items() if e.variant == variant)
    model = zoo.load(name, weights=out)
    assert not model.training
    for i in range(len(SIZES)):
        x = torch.from_numpy(np.load(folder / f"input_{i}.npy")).permute(0, 4, 1, 2, 3)
        want = np.load(folder / f"logits_{i}.npy")
        with torch.no_grad():
            got = model(x).numpy()
        rel = np.abs(got - want).max() / np.abs(want).max()
        assert rel <= 1e-5, f"{variant} at {tuple(x.shape)}: relative error {rel:.2e}"


def test_variant_detection_and_metadata(tf_checkpoints, tmp_path):
    from safetensors import safe_open
    # kin600 is told apart by its names; flow/rgb by scope; imagenet/scratch by the folder name
    for variant in ("rgb_scratch_kin600", "flow_imagenet", "rgb_scratch"):
        result = convert_deepmind(tf_checkpoints[variant] / "model.ckpt.index", tmp_path / "m.safetensors")
        assert result.variant == variant
        with safe_open(str(result.out), "pt") as f:
            meta = f.metadata()
        assert meta["quovadis.variant"] == variant
        assert meta["quovadis.labels"] == ("kinetics600" if "600" in variant else "kinetics400")
        assert len(meta["quovadis.source_sha256"]) > 64
    with pytest.raises(zoo.WeightsError, match="holds DeepMind variant 'rgb_scratch'.*'rgb_imagenet'"):
        zoo.load("i3d_inception_k400_rgb_imagenet", weights=tmp_path / "m.safetensors")


def test_unknown_pretraining_asks_for_the_variant(tf_checkpoints, tmp_path):
    import shutil
    folder = tmp_path / "ckpt"
    shutil.copytree(tf_checkpoints["flow_scratch"], folder)
    with pytest.raises(CheckpointError, match="variant='flow_imagenet' or 'flow_scratch'"):
        convert_deepmind(folder, tmp_path / "m.safetensors")


def test_wrong_shape_and_foreign_tensors_are_named(tf_checkpoints, tmp_path):
    with pytest.raises(CheckpointError, match=r"Conv3d_1a_7x7/conv_3d/w has shape \(7, 7, 7, 3, 64\).*needs"):
        load_deepmind_state_dict(tf_checkpoints["rgb_scratch"], variant="flow_scratch")
    with pytest.raises(CheckpointError, match="Is the variant right"):
        convert_deepmind(tf_checkpoints["rgb_scratch"], tmp_path / "x.safetensors", variant="flow_scratch")
    assert not (tmp_path / "x.safetensors").exists() and not list(tmp_path.iterdir())
    # foreign and missing tensors in real bundle files: tests/test_converter_tensor_errors.py


def test_cli_convert_and_predict_on_the_sample_gif(tf_checkpoints, tmp_path):
    out = tmp_path / "rgb.safetensors"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    conv = subprocess.run([sys.executable, "-m", "zoo.cli", "convert", "deepmind",
                           str(tf_checkpoints["rgb_imagenet"]), "-o", str(out)], capture_output=True, text=True,
                          env=env, timeout=300)
    assert conv.returncode == 0, conv.stderr
    assert "converted rgb_imagenet: 230 tensors" in conv.stdout
    gif = Path(__file__).parent / "data" / "v_CricketShot_g04_c01_rgb_16f.gif"
    pred = subprocess.run([sys.executable, "-m", "zoo.cli", "predict", str(gif), "--model",
                           "i3d_inception_k400_rgb_imagenet", "--weights", str(out), "--top", "3"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert pred.returncode == 0, pred.stderr
    lines = pred.stdout.splitlines()
    assert "16 frames at 25.0 fps" in lines[0] and len(lines) == 5
    missing = subprocess.run([sys.executable, "-m", "zoo.cli", "predict", str(gif), "--model",
                              "i3d_inception_k400_rgb"], capture_output=True, text=True, env=env, timeout=300)
    assert missing.returncode == 2 and "HF_HUB_OFFLINE" in missing.stderr and "quovadis convert deepmind" in missing.stderr


@settings(max_examples=12, deadline=None)
@given(t=st.integers(1, 9), h=st.integers(1, 13), w=st.integers(1, 13), k=st.sampled_from([1, 2, 3, 7]),
       s=st.integers(1, 2), pool=st.booleans())
def test_same_padding_matches_tensorflow_for_any_size(t, h, w, k, s, pool):
    """Our SAME conv and max pool equal TF's at every (T, H, W), kernel and stride."""
    tf = pytest.importorskip("tensorflow")
    x = np.random.default_rng(t * 100 + h).normal(size=(1, t, h, w, 2)).astype(np.float32)
    kt = min(k, 3)
    if pool:
        want = tf.nn.max_pool3d(x, [1, kt, k, k, 1], [1, s, s, s, 1], "SAME").numpy()
        layer = MaxPoolSame((kt, k, k), (s, s, s))
    else:
        layer = Unit3D(2, 3, (kt, k, k), (s, s, s), bn=False, relu=False)
        kernel = layer.conv.weight.detach().permute(2, 3, 4, 1, 0).numpy()
        want = tf.nn.conv3d(x, kernel, [1, s, s, s, 1], "SAME").numpy()
    with torch.no_grad():
        got = layer(torch.from_numpy(x).permute(0, 4, 1, 2, 3)).permute(0, 2, 3, 4, 1).numpy()
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
