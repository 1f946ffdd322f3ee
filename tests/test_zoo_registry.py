"""Every registry entry carries what a user needs, and its transform and architecture work."""
import pytest
import torch

import inflate
import zoo


@pytest.mark.parametrize("name", zoo.list())
def test_entry_is_complete_and_its_transform_runs(name):
    e = zoo.info(name)
    assert e.source and e.license and e.citation and e.modality in ("rgb", "flow", "rgb+flow")
    assert e.preprocessing and callable(e.transform) or isinstance(e.transform, dict)
    if e.labels in ("kinetics400", "kinetics600"):
        assert len(e.label_names) == e.num_classes
    frames = torch.randint(0, 256, (5, 240, 320, 3), dtype=torch.uint8)
    transforms = e.transform if isinstance(e.transform, dict) else {e.modality: e.transform}
    for modality, t in transforms.items():
        x = t(frames, fps=30) if modality == "rgb" else t(torch.randn(5, 240, 320, 2) * 10)
        assert x.shape[1:] == (x.shape[1], 224, 224) and x.shape[0] == (3 if modality == "rgb" else 2)
        if modality == "flow" or e.arch != "inflated":
            assert x.abs().max() <= 1.0


def test_reported_accuracies_are_the_releases():
    acc = {n: zoo.info(n).reported.get("kinetics400_top1") for n in zoo.list("i3d_inception_k400_*")}
    assert acc == {"i3d_inception_k400_rgb": 68.4, "i3d_inception_k400_flow": 61.5,
                   "i3d_inception_k400_rgb_imagenet": 71.1, "i3d_inception_k400_flow_imagenet": 63.4,
                   "i3d_inception_k400_two_stream": 74.2}


@pytest.mark.parametrize("name", zoo.list("*_inflated"))
def test_inflated_entries_record_their_policy(name):
    model = zoo.load(name, pretrained=False)
    assert isinstance(model, inflate.VideoModel)
    assert model.config["policy"]["name"] == zoo.info(name).config["policy"]
    assert model.config["source"]["name"] == zoo.info(name).config["source"]["name"]


def test_unknown_name_suggests():
    with pytest.raises(KeyError, match="i3d_inception_k400_rgb"):
        zoo.load("i3d_inception_k400_rbg")
