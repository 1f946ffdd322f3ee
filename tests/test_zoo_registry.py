"""Every registry entry carries what a user needs, and its transform and architecture work."""
import math

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
    frames = torch.randint(0, 256, (12, 120, 160, 3), dtype=torch.uint8)
    transforms = e.transform if isinstance(e.transform, dict) else {e.modality: e.transform}
    for modality, t in transforms.items():
        if modality == "rgb":
            x = t(frames, fps=30)
            # 12 frames at 30 fps last 0.4 s: the model's fps timeline keeps the nearest earlier frames
            n = round(12 / 30 * t.fps)
            kept = [math.floor(j * 30 / t.fps + 1e-6) for j in range(n)]
            assert x.shape == (3, n, 224, 224)
            if n != 12:
                torch.testing.assert_close(x, t(frames[kept]))
        else:
            x = t(torch.randn(7, 240, 320, 2) * 10)
            assert x.shape == (2, 7, 224, 224)
        if modality == "flow" or e.arch != "inflated":
            assert x.abs().max() <= 1.0


def test_fps_resampling_drops_and_repeats_the_nearest_frames():
    from zoo.preprocess import RGBPreprocess
    t = RGBPreprocess(fps=25.0, short_side=8, crop=8)
    frames = torch.arange(10, dtype=torch.uint8).mul(20).view(10, 1, 1, 1).expand(10, 8, 8, 3).contiguous()
    value = lambda x: [round(v) for v in ((x[0, :, 0, 0] + 1) / 2 * 255 / 20).tolist()]  # frame index back
    assert value(t(frames, fps=50)) == [0, 2, 4, 6, 8]  # 0.2 s at 25 fps: every other frame
    assert value(t(frames, fps=12.5)) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9]
    assert value(t(frames, fps=25)) == list(range(10))
    assert value(t(frames, fps=30)) == [0, 1, 2, 3, 4, 6, 7, 8]  # 1/3 s -> 8 frames, at 0, 0.04, ..., 0.28 s


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
