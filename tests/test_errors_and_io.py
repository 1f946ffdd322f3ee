"""Bad input gives one clear error; models save and load through safetensors; the CLI's main job works."""
import json
import os
import subprocess
import sys

import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

import inflate
from inflate.policy import PolicyError

from .strategies import SIZE, policies, small_cnns


def test_non_module_is_rejected():
    with pytest.raises(TypeError, match="torch.nn.Module"):
        inflate.inflate("resnet50")


def test_unknown_model_names_suggest_close_matches():
    with pytest.raises(ValueError, match="unknown timm model 'resnet5O'.*resnet50"):
        inflate.from_timm("resnet5O")
    with pytest.raises(ValueError, match="unknown torchvision.*resnet18"):
        inflate.from_torchvision("resnet1")


def test_policy_that_matches_nothing_lists_the_layers():
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    with pytest.raises(PolicyError, match=r"matched no layer.*conv layers include: 0"):
        inflate.inflate(m, policy="layer5.*=3")
    with pytest.raises(PolicyError, match="matched no"):
        inflate.inflate(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3)), policy="0=3; 7=3")
    with pytest.raises(PolicyError, match="ResNet-style"):
        inflate.inflate(m, policy="slow")


@pytest.mark.parametrize("text", ["conv1=0", "conv1=3/0", "conv1=x", "pool:conv1=3/2/0", "=3", ""])
def test_impossible_or_malformed_rules(text):
    with pytest.raises(PolicyError):
        inflate.inflate(nn.Sequential(nn.Conv2d(3, 4, 3)), policy=text or ";")


def test_stride_larger_than_the_clip_names_the_layer():
    video = inflate.inflate(nn.Sequential(nn.Conv2d(3, 4, 3)), policy="0=3/4")
    with pytest.raises(ValueError, match=r"layer '0' has temporal stride 4 but receives 2 frame"):
        video(torch.randn(1, 3, 2, 8, 8))


def test_wrong_input_layout_is_explained():
    video = inflate.inflate(nn.Sequential(nn.Conv2d(3, 4, 3)))
    with pytest.raises(ValueError, match=r"\(B, C, T, H, W\)"):
        video(torch.randn(3, 8, 8, 8))
    with pytest.raises(ValueError, match="expects 3"):
        video(torch.randn(1, 8, 3, 8, 8))  # (B, T, C, H, W) by mistake


@settings(max_examples=10)
@given(small_cnns(), policies(), st.sampled_from(inflate.INIT_MODES))
def test_state_dict_round_trip_through_safetensors(tmp_path_factory, model_2d, policy, init):
    from safetensors.torch import load_file, save_file
    try:
        video = inflate.inflate(model_2d, init=init, **policy)
    except PolicyError:
        return
    path = tmp_path_factory.mktemp("st") / "video.safetensors"
    save_file({k: v.contiguous() for k, v in video.state_dict().items()}, str(path))
    fresh = inflate.inflate(model_2d, init="center", **policy)  # other init: weights must come from the file
    fresh.load_state_dict(load_file(str(path)), strict=True)
    a, b = video.state_dict(), fresh.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    x = torch.randn(1, 3, 3, SIZE, SIZE)
    with torch.no_grad():
        try:
            ya, yb = video(x), fresh(x)
        except ValueError:
            return
    assert torch.equal(ya, yb)


def test_save_and_load_rebuild_without_the_2d_weights(tmp_path):
    video = inflate.from_timm("test_resnet", policy="conv:layer*.conv2=3; pool:maxpool=3/2", init="noise")
    path = inflate.save(video, tmp_path / "m.safetensors")
    assert not list(tmp_path.glob(".*tmp"))  # atomic: no temp file left
    config = inflate.read_config(path)
    assert config["source"]["name"] == "test_resnet" and config["init"] == "noise"
    back = inflate.load(path)
    x = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        assert torch.equal(video.eval()(x), back(x))


def test_load_rejects_foreign_and_corrupt_files(tmp_path):
    from safetensors.torch import save_file
    save_file({"w": torch.zeros(1)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(ValueError, match="no quovadis inflation config"):
        inflate.load(tmp_path / "plain.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match="bad.safetensors is not a readable safetensors file"):
        inflate.load(tmp_path / "bad.safetensors")


def test_pretrained_offline_fails_with_advice(monkeypatch, tmp_path):
    from huggingface_hub import constants
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # the client read the variable at import
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(RuntimeError, match="could not download the pretrained weights"):
        inflate.from_timm("resnet18", pretrained=True)


def test_cli_main_job_writes_weights_and_reports(tmp_path):
    out = tmp_path / "r.safetensors"
    proc = subprocess.run([sys.executable, "-m", "zoo.cli", "inflate", "test_resnet", "--frames", "4", "--size", "32",
                           "--policy", "i3d", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "PASS" in proc.stdout and "GFLOPs" in proc.stdout and "layers inflated" in proc.stdout
    assert inflate.read_config(out)["policy"]["name"] == "i3d"
    bad = subprocess.run([sys.executable, "-m", "zoo.cli", "inflate", "test_resnet", "--policy", "layer9.*=3"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "matched no layer" in bad.stderr
