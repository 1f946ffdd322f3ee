"""The DeepMind converter on real TF tensor bundles that are wrong: a foreign tensor, a missing tensor,
a wrong shape. Each error names the file and the tensor, and no output file is left behind.

The bundles are written by ``converters.tf_bundle_writer`` in the release's layout (the real .index
format, checked against TensorFlow in test_tf_bundle.py), from a random I3D, so no TensorFlow is needed.
"""
import numpy as np
import pytest
import torch

from zoo.weights.deepmind import VARIANTS, convert_deepmind, state_dict_from_tensors
from converters.tf_bundle import CheckpointError
from converters.tf_bundle_writer import write_bundle
from zoo.models.i3d import InceptionI3d

from .i3d_release_layout import release_layout

SCOPE = "Flow/inception_i3d/"


@pytest.fixture(scope="module")
def flow_tensors():
    torch.manual_seed(0)
    _, channels, classes, _, _ = VARIANTS["flow_scratch"]
    model = InceptionI3d(num_classes=classes, in_channels=channels)
    return model.state_dict(), release_layout(model.state_dict(), SCOPE)


def test_release_layout_round_trips(flow_tensors):
    state, tensors = flow_tensors
    back, skipped = state_dict_from_tensors(tensors, "flow_scratch", "memory")
    assert skipped == 0 and set(back) == {k for k in state if not k.endswith("num_batches_tracked")}
    assert all(torch.equal(back[k], state[k]) for k in back)


def test_foreign_tensor_is_named(flow_tensors):
    _, tensors = flow_tensors
    foreign = {**tensors, SCOPE + "Mixed_9z/Branch_7/Conv3d_0a_1x1/conv_3d/w": np.zeros((1, 1, 1, 2, 2), np.float32)}
    with pytest.raises(CheckpointError, match=r"where: 1 tensor\(s\) are not part of I3D.*Mixed_9z/Branch_7"):
        state_dict_from_tensors(foreign, "flow_scratch", "where")
    odd = {**tensors, SCOPE + "Mixed_4b/Branch_0/Conv3d_0a_1x1/extra_scale": np.zeros(3, np.float32)}
    with pytest.raises(CheckpointError, match="extra_scale"):
        state_dict_from_tensors(odd, "flow_scratch", "where")


def test_missing_tensor_is_named(flow_tensors):
    _, tensors = flow_tensors
    gone = SCOPE + "Mixed_5c/Branch_3/Conv3d_0b_1x1/batch_norm/moving_variance"
    partial = {k: v for k, v in tensors.items() if k != gone}
    with pytest.raises(CheckpointError,
                       match=r"where: the checkpoint lacks 1 tensor\(s\).*Mixed_5c\.Branch_3\.Conv3d_0b_1x1\.bn\.running_var"):
        state_dict_from_tensors(partial, "flow_scratch", "where")


def test_wrong_shape_is_named(flow_tensors):
    _, tensors = flow_tensors
    name = SCOPE + "Logits/Conv3d_0c_1x1/conv_3d/w"
    bad = {**tensors, name: np.zeros((1, 1, 1, 1024, 600), np.float32)}
    with pytest.raises(CheckpointError, match=r"tensor Flow/inception_i3d/Logits/Conv3d_0c_1x1/conv_3d/w has shape "
                                              r"\(1, 1, 1, 1024, 600\).*needs \(400, 1024, 1, 1, 1\)"):
        state_dict_from_tensors(bad, "flow_scratch", "where")


def test_bundle_files_with_foreign_or_missing_tensors_fail_and_write_nothing(flow_tensors, tmp_path):
    _, tensors = flow_tensors
    folder = tmp_path / "flow_scratch"
    folder.mkdir()
    drop = SCOPE + "Conv3d_1a_7x7/batch_norm/beta"
    write_bundle(folder / "model.ckpt", {**{k: v for k, v in tensors.items() if k != drop},
                                         "RGB/inception_i3d/Conv3d_1a_7x7/conv_3d/w": np.zeros(2, np.float32)})
    out = tmp_path / "out.safetensors"
    with pytest.raises(CheckpointError) as err:
        convert_deepmind(folder, out, variant="flow_scratch")
    assert "model.ckpt" in str(err.value) and "RGB/inception_i3d/Conv3d_1a_7x7/conv_3d/w" in str(err.value)
    assert not out.exists() and not list(tmp_path.glob("*.tmp*"))
    write_bundle(folder / "model.ckpt", {k: v for k, v in tensors.items() if k != drop})
    with pytest.raises(CheckpointError, match=r"model\.ckpt.*lacks 1 tensor\(s\).*Conv3d_1a_7x7\.bn\.bias"):
        convert_deepmind(folder, out, variant="flow_scratch")
    assert not out.exists()
