"""zoo/models/build.py, the one architecture dispatch: every registry entry, rebuilt from the ``config.json`` spec
that ``push_to_hub`` writes for it, is the same architecture; unknown architectures and formats are refused."""
import pytest

import zoo
from zoo.models.build import ARCHS, build_arch, build_entry, build_from_spec
from zoo.weights.hub import model_spec


def shapes(model) -> dict:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


@pytest.mark.parametrize("name", zoo.list())
def test_every_entry_rebuilds_from_its_pushed_spec(name):
    built = build_entry(zoo.info(name))
    assert zoo.build is build_entry and set(ARCHS) >= {zoo.info(name).arch}
    rebuilt = build_from_spec(model_spec(built))
    assert type(rebuilt) is type(built) and shapes(rebuilt) == shapes(built)


def test_two_stream_keeps_its_fusion_weights():
    two = build_arch("two_stream_i3d", {"rgb": {"num_classes": 5}, "flow": {"num_classes": 5, "in_channels": 2},
                                        "fusion_weights": [1.0, 0.5]})
    back = build_from_spec(model_spec(two))
    assert back.fusion_weights == (1.0, 0.5) and shapes(back) == shapes(two) and back.flow.in_channels == 2


def test_unknown_architecture_and_format_are_refused():
    entry = zoo.info("i3d_inception_k400_rgb")
    with pytest.raises(ValueError, match=r"config.json: unknown architecture 'resnet9000'; this quovadis builds "
                                         r"inception_i3d, two_stream_i3d, inflated"):
        build_from_spec({**model_spec(build_entry(entry)), "arch": "resnet9000"})
    with pytest.raises(ValueError, match=r"config.json has format 'quovadis/0'; this quovadis reads 'quovadis/1'"):
        build_from_spec({**model_spec(build_entry(entry)), "format": "quovadis/0"})
    import dataclasses
    with pytest.raises(ValueError, match=r"^i3d_inception_k400_rgb: unknown architecture 'c3d'"):
        build_entry(dataclasses.replace(entry, arch="c3d"))
