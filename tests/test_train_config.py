"""The typed training config (zoo.train.config): values mean what a person means, and a wrong key or type is
refused in one line naming the key, the type it expects and the value given (issue 19, bug 4)."""
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zoo.cli.main import main
from zoo.train.config import TrainConfig, from_dict, load_config


def write(path, text):
    path.write_text(text)
    return str(path)


# ---------------------------------------------------------------- bug 4: values are checked against their types

def test_bug4_freeze_bn_false_means_false(tmp_path):
    assert load_config(None, ["freeze_bn=False"]).freeze_bn is False
    assert load_config(None, ["freeze_bn=True"]).freeze_bn is True
    assert load_config(write(tmp_path / "c.json", '{"freeze_bn": "False"}')).freeze_bn is False
    assert load_config(write(tmp_path / "c.yaml", "freeze_bn: False\n")).freeze_bn is False


def test_bug4_yaml_lr_1e_3_is_a_float(tmp_path):
    cfg = load_config(write(tmp_path / "c.yaml", "optim:\n  lr: 1e-3\n  weight_decay: 5e-4\n"))
    assert type(cfg.optim.lr) is float and cfg.optim.lr == 0.001
    assert type(cfg.optim.weight_decay) is float and cfg.optim.weight_decay == 0.0005
    assert load_config(None, ["optim.lr=1e-3"]).optim.lr == 0.001


def test_bug4_epochs_ten_is_refused_in_one_line_naming_key_type_and_value():
    with pytest.raises(ValueError) as e:
        load_config(None, ["epochs=ten"])
    assert str(e.value) == "config key 'epochs' expects int, got 'ten'"


def test_bug4_data_null_is_refused_with_a_clear_message(tmp_path):
    with pytest.raises(ValueError, match=r"^config key 'data' expects a section of keys \(format, root, .*got null"):
        load_config(None, ["data=null"])
    with pytest.raises(ValueError, match=r"'data' expects a section.*got null"):
        load_config(write(tmp_path / "c.yaml", "data:\n"))


def test_bug4_cli_prints_the_type_error_as_one_line(capsys):
    assert main(["train", "epochs=ten"]) == 2
    err = capsys.readouterr().err
    assert err == "quovadis train: error: config key 'epochs' expects int, got 'ten'\n"


# ---------------------------------------------------------------- the typed config

@pytest.mark.parametrize("override, message", [
    ("optim.lrr=0.1", "unknown config key 'optim.lrr' (given 0.1); the keys of optim are: name, lr, momentum, "),
    ("epoch=3", "unknown config key 'epoch' (given 3); the keys of the top level are: out, protocol, model, "),
    ("optim.lr=fast", "config key 'optim.lr' expects float, got 'fast'"),
    ("data.fps=[25]", "config key 'data.fps' expects float | None, got [25]"),
    ("optim.step_epochs=[10,x]", "config key 'optim.step_epochs[1]' expects int, got 'x'"),
    ("data.test_clips=2.5", "config key 'data.test_clips' expects int | str, got 2.5"),
    ("data.test_clips=some", "data.test_clips must be a positive integer or 'all', got 'some'"),
    ("freeze_bn=maybe", "config key 'freeze_bn' expects bool, got 'maybe'"),
    ("data=3", "config key 'data' expects a section of keys (format, root, annotations, split, ...), got 3"),
    ("data.classes=[a,[b]]", "config key 'data.classes' expects str | list[str] | None"),
    ("epochs", "override 'epochs' is not KEY=VALUE"),
    ("precision=fp8", "config key 'precision' expects one of fp32, bf16, fp16, got 'fp8'"),
    ("data.test_crops=2", "config key 'data.test_crops' expects one of 1, 3, got 2"),
])
def test_wrong_keys_and_types_are_named_in_one_line(override, message):
    with pytest.raises(ValueError) as e:
        load_config(None, [override])
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


def test_bad_file_values_are_named_like_overrides(tmp_path):
    with pytest.raises(ValueError, match=r"^config key 'optim.lr' expects float, got 'x'$"):
        load_config(write(tmp_path / "c.toml", '[optim]\nlr = "x"\n'))
    with pytest.raises(ValueError, match=r"^unknown config key 'model.nam' \(given 'i3d'\)"):
        load_config(write(tmp_path / "c.yaml", "model: {nam: i3d}\n"))
    with pytest.raises(ValueError, match=r"must be a mapping"):
        load_config(write(tmp_path / "c.yaml", "- 1\n- 2\n"))


def test_layers_override_in_order_and_the_preset_sits_under_the_file(tmp_path):
    path = write(tmp_path / "c.yaml", "protocol: i3d\nepochs: 3\ndata: {clip_len: 32, root: videos}\n")
    cfg = load_config(path, ["epochs=5", "data.classes=[b, a]"])
    assert cfg.epochs == 5 and cfg.data.clip_len == 32 and cfg.data.root == "videos"
    assert cfg.data.fps == 25.0 and cfg.data.test_clips == "all"          # from the preset
    assert cfg.data.classes == ["b", "a"] and cfg.data.batch_size == 8     # an override; a default
    assert isinstance(cfg, TrainConfig) and isinstance(cfg.data.classes, list)


def test_config_json_holds_typed_values_and_reads_back(tmp_path):
    cfg = load_config(None, ["optim.lr=1e-3", "freeze_bn=False", "data.fps=25", "data.workers=2",
                             "data.classes=classes.txt", "model.kwargs={drop_path_rate: 0.1}"])
    stored = json.loads(json.dumps(cfg.to_dict()))
    assert stored["optim"]["lr"] == 0.001 and stored["freeze_bn"] is False and stored["data"]["fps"] == 25.0
    assert type(stored["data"]["fps"]) is float and stored["data"]["workers"] == 2
    assert stored["model"]["kwargs"] == {"drop_path_rate": 0.1}
    assert from_dict(stored) == cfg


BOOLS = {"true": True, "True": True, "yes": True, "on": True, "1": True,
         "false": False, "False": False, "no": False, "off": False, "0": False}


@given(spelling=st.sampled_from(sorted(BOOLS)), key=st.sampled_from(["freeze_bn", "data.flip", "channels_last"]))
def test_every_bool_spelling_means_its_value(spelling, key):
    cfg = load_config(None, [f"{key}={spelling}"])
    node = cfg.data if key.startswith("data.") else cfg
    assert getattr(node, key.split(".")[-1]) is BOOLS[spelling]


@given(lr=st.floats(min_value=1e-12, max_value=10.0, allow_nan=False), epochs=st.integers(1, 10_000))
def test_numbers_round_trip_through_overrides_and_config_json(lr, epochs):
    cfg = load_config(None, [f"optim.lr={lr!r}", f"epochs={epochs}"])
    assert cfg.optim.lr == lr and type(cfg.optim.lr) is float and cfg.epochs == epochs
    assert from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
