"""``quovadis zoo build`` on a kinetics-i3d checkout (real TF tensor bundles), and ``quovadis push`` to a
local Hugging Face Hub server, each loaded back and compared tensor by tensor."""
import pytest
import torch
from safetensors.torch import load_file

import zoo
from zoo.weights.deepmind import VARIANTS
from converters.tf_bundle_writer import write_bundle
from zoo.cli.main import main
from zoo.models.i3d import InceptionI3d

from .conftest_hub import save_random_rgb
from .i3d_release_layout import release_layout


def same_weights(a: dict, b: dict) -> bool:
    a = {k: v for k, v in a.items() if not k.endswith("num_batches_tracked")}
    b = {k: v for k, v in b.items() if not k.endswith("num_batches_tracked")}
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_zoo_build_converts_what_the_checkout_holds_into_the_cache(tmp_path, capsys):
    torch.manual_seed(1)
    _, channels, classes, _, _ = VARIANTS["flow_scratch"]
    model = InceptionI3d(num_classes=classes, in_channels=channels)
    folder = tmp_path / "kinetics-i3d" / "data" / "checkpoints" / "flow_scratch"
    folder.mkdir(parents=True)
    write_bundle(folder / "model.ckpt", release_layout(model.state_dict(), "Flow/inception_i3d/"))
    assert main(["zoo", "build", str(tmp_path / "kinetics-i3d"), "--cache-dir", str(tmp_path / "cache")]) == 0
    table = capsys.readouterr().out
    built = tmp_path / "cache" / "quovadis" / "i3d_inception_k400_flow.safetensors"
    assert f"cache: {built.parent}" in table
    rows = {line.split()[0]: line for line in table.splitlines() if line.startswith("i3d_")}
    assert "flow_scratch" in rows["i3d_inception_k400_flow"] and "tensors" in rows["i3d_inception_k400_flow"]
    assert sum("not found" in r for r in rows.values()) == len(VARIANTS) - 1
    assert same_weights(load_file(str(built)), model.state_dict())
    loaded = zoo.load("i3d_inception_k400_flow", weights=built)
    assert same_weights(loaded.state_dict(), model.state_dict())


def test_zoo_build_on_a_folder_without_checkpoints_says_what_it_expects(tmp_path, capsys):
    assert main(["zoo", "build", str(tmp_path), "--cache-dir", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err
    assert "holds no kinetics-i3d checkpoints" in err and "data/checkpoints/rgb_imagenet" in err
    assert not (tmp_path / "cache").exists()


def test_push_uploads_weights_that_load_back_bit_identical(local_hub, tmp_path, capsys):
    weights = tmp_path / "rgb.safetensors"
    model = save_random_rgb(weights, seed=2)
    assert main(["push", "i3d_inception_k400_rgb", "me/pushed-rgb", "--weights", str(weights)]) == 0
    assert "pushed i3d_inception_k400_rgb to me/pushed-rgb" in capsys.readouterr().out
    back = zoo.load("hf-hub:me/pushed-rgb")
    assert same_weights(back.state_dict(), model.state_dict())
    from huggingface_hub import HfApi
    files = set(HfApi().list_repo_files("me/pushed-rgb"))
    assert "README.md" in files and any(f.endswith(".safetensors") for f in files)


def test_push_of_an_unknown_model_fails_before_uploading(local_hub, capsys):
    assert main(["push", "i3d_inception_k400_rbg", "me/nothing"]) == 2
    assert "i3d_inception_k400_rgb" in capsys.readouterr().err
    from huggingface_hub import HfApi
    with pytest.raises(Exception):
        HfApi().list_repo_files("me/nothing")
