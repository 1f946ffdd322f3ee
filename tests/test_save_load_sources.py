"""inflate.save/load for every way a user builds the 2D model: timm.create_model, torchvision's builders and
classes, and their own nn.Module (rebuilt from a skeleton they pass)."""
import pytest
import timm
import torch
import torch.nn as nn
import torchvision

import inflate


def _clip(c=3, t=3, s=32):
    return torch.randn(1, c, t, s, s, generator=torch.Generator().manual_seed(0))


def _round_trip(video, tmp_path, **load_kwargs):
    path = inflate.save(video, tmp_path / "video.safetensors")
    loaded = inflate.load(path, **load_kwargs)
    video.eval()
    x = _clip(video.config.get("in_chans") or 3)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), video(x), rtol=0, atol=0)
    return loaded


@pytest.mark.parametrize("name, kwargs", [("resnet18", {}), ("resnet18", {"num_classes": 7, "in_chans": 1}),
                                          ("efficientnet_b0", {"num_classes": 5})])
def test_timm_model_built_by_the_user_saves_and_loads(tmp_path, name, kwargs):
    video = inflate.inflate(timm.create_model(name, **kwargs), time_kernel=3)
    assert video.config["source"]["kind"] == "timm" and video.config["source"]["name"] == name
    _round_trip(video, tmp_path)


@pytest.mark.parametrize("build", [
    lambda: torchvision.models.resnet18(),
    lambda: torchvision.models.resnet34(num_classes=10),
    lambda: torchvision.models.get_model("mobilenet_v3_small", num_classes=3),
    lambda: torchvision.models.ResNet(torchvision.models.resnet.BasicBlock, [2, 2, 2, 2], num_classes=4),
], ids=["resnet18", "resnet34_10", "mobilenet_v3_small_3", "ResNet_class"])
def test_torchvision_model_however_built_saves_and_loads(tmp_path, build):
    video = inflate.inflate(build(), time_kernel=3)
    assert video.config["source"]["kind"] == "torchvision"
    _round_trip(video, tmp_path)


def test_torchvision_recorded_name_is_the_builder(tmp_path):
    video = inflate.inflate(torchvision.models.resnet34(num_classes=10))
    assert video.config["source"]["name"] == "resnet34"
    assert video.config["source"]["kwargs"] == {"num_classes": 10}


class TinyNet(nn.Module):
    def __init__(self, width=8, classes=4):
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        return self.head(self.pool(self.conv(x).relu()).mean((2, 3)))


def test_custom_module_loads_from_a_skeleton(tmp_path):
    video = inflate.inflate(TinyNet(), policy="conv=3; pool:pool=2/2")
    path = inflate.save(video, tmp_path / "tiny.safetensors")
    loaded = inflate.load(path, model_2d=TinyNet())
    x = _clip()
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), video.eval()(x), rtol=0, atol=0)
    assert loaded.config["policy"] == video.config["policy"]


def test_custom_module_without_skeleton_says_how(tmp_path):
    path = inflate.save(inflate.inflate(TinyNet()), tmp_path / "tiny.safetensors")
    with pytest.raises(ValueError, match=r"model_2d=.*TinyNet"):
        inflate.load(path)


def test_wrong_skeleton_names_the_tensor(tmp_path):
    path = inflate.save(inflate.inflate(TinyNet(width=8)), tmp_path / "tiny.safetensors")
    with pytest.raises(ValueError, match=r"net\.conv\.weight|net\.head\.weight"):
        inflate.load(path, model_2d=TinyNet(width=16))
