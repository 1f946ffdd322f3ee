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


# ---------------------------------------------------------------- every refused setting names its key and fix

@pytest.mark.parametrize("override, message", [
    ("finetune=half", "config key 'finetune' expects one of full, fixed, got 'half'"),
    ("optim.name=adam", "config key 'optim.name' expects one of sgd, adamw, got 'adam'"),
    ("optim.schedule=poly", "config key 'optim.schedule' expects one of cosine, step, constant, got 'poly'"),
    ("data.format=avi", "config key 'data.format' expects one of ucf101, hmdb51, kinetics, csv, folders, got 'avi'"),
    ("data.modality=depth", "data.modality must be 'rgb' or 'flow', got 'depth'"),
    ("data.test_clips=0", "data.test_clips must be a positive integer or 'all', got 0"),
    ("data.val_fraction=1", "data.val_fraction must be in [0, 1), got 1.0"),
    ("data.val_fraction=-0.1", "data.val_fraction must be in [0, 1), got -0.1"),
    ("precise_bn=-1", "precise_bn is a number of training batches (0: off), got -1"),
    ("protocol=tsn", "unknown protocol 'tsn'; known: ['i3d'] (or leave it unset)"),
    ("protocol=3", "unknown protocol 3; known: ['i3d'] (or leave it unset)"),
    ("protocol=[i3d]", "unknown protocol ['i3d']; known: ['i3d'] (or leave it unset)"),
    ("=3", "override '=3' is not KEY=VALUE (for example optim.lr=0.01)"),
    ("model.kwargs=3", "config key 'model.kwargs' expects dict[str, Any], got 3"),
    ("optim.step_epochs=3", "config key 'optim.step_epochs' expects list[int], got 3"),
    ("data.classes=[a,[b]]", "config key 'data.classes' expects str | list[str] | None (a class map file or the "
                             "class names), got ['a', ['b']]"),
    ("optim=null", "config key 'optim' expects a section of keys (name, lr, momentum, weight_decay, ...), got null; "
                   "set its keys instead, e.g. optim.name=..."),
    # a list where a mapping is declared, and the other way round (OmegaConf's merge names no key)
    ("model.kwargs=[1]", "config key 'model.kwargs' expects dict[str, Any], got [1]"),
    ("optim.step_epochs.x=1", "config key 'optim.step_epochs' expects list[int], got {'x': 1}"),
    # OmegaConf's missing value used to be accepted and keep the default; an empty key part named 'optim' unknown
    ("epochs=???", "config key 'epochs' is ??? (OmegaConf's missing value): give it a value, or leave the key out "
                   "for its default"),
    ("optim.lr=???", "config key 'optim.lr' is ??? (OmegaConf's missing value): give it a value, or leave the key "
                     "out for its default"),
    ("optim..lr=1", "override 'optim..lr=1': key 'optim..lr' has an empty part; write SECTION.KEY=VALUE (for "
                    "example optim.lr=0.01)"),
    ("lr.=1", "override 'lr.=1': key 'lr.' has an empty part; write SECTION.KEY=VALUE (for example optim.lr=0.01)"),
])
def test_each_refusal_is_one_exact_line(override, message):
    with pytest.raises(ValueError) as e:
        load_config(None, [override])
    assert type(e.value).__name__ == "ConfigError" and str(e.value) == message


def test_modality_both_is_refused_with_the_two_run_recipe():
    with pytest.raises(ValueError) as e:
        load_config(None, ["data.modality=both"])
    assert str(e.value).startswith("data.modality='both' does not train both streams in one run; train the two "
                                   "streams as two runs, e.g. `quovadis train --config c.yaml data.modality=rgb")
    assert "`quovadis evaluate --run runs/rgb --fuse runs/flow` (logits summed)" in str(e.value)


def test_boundary_values_are_accepted():
    cfg = load_config(None, ["data.test_clips=1", "data.val_fraction=0", "precise_bn=0", "data.val_list=v.csv"])
    assert (cfg.data.test_clips, cfg.data.val_fraction, cfg.precise_bn, cfg.data.val_list) == (1, 0.0, 0, "v.csv")
    cfg = load_config(None, ["data.test_clips=all", "data.val_fraction=0.99", "data.modality=flow"])
    assert (cfg.data.test_clips, cfg.data.val_fraction, cfg.data.modality) == ("all", 0.99, "flow")
    with pytest.raises(ValueError, match=r"^set data.val_fraction or data.val_list, not both$"):
        load_config(None, ["data.val_fraction=0.2", "data.val_list=v.csv"])


def test_the_i3d_preset_sets_the_whole_protocol_and_nothing_else():
    default, i3d = load_config(), load_config(None, ["protocol=i3d"])
    changed = {k: v for k, v in i3d.to_dict()["data"].items() if default.to_dict()["data"][k] != v}
    assert changed == {"fps": 25.0, "multiscale": False, "test_clips": "all"}   # the rest of PROTOCOLS["i3d"]
    want = {"fps": 25.0, "short_side": 256, "size": 224, "multiscale": False, "flip": True, "clip_len": 64,
            "stride": 1, "test_clips": "all", "test_crops": 1}                  # equals the defaults today
    assert {k: i3d.to_dict()["data"][k] for k in want} == want
    d, p = default.to_dict(), i3d.to_dict()
    assert [k for k in d if k != "data" and d[k] != p[k]] == ["protocol"]
    # from_dict (a run's config.json) applies no preset: the stored values are the run's values
    assert from_dict({"protocol": "i3d"}).data.fps is None
    with pytest.raises(ValueError, match=r"^unknown protocol 'x'; known: \['i3d'\] \(or leave it unset\)$"):
        from_dict({"protocol": "x"})


# ---------------------------------------------------------------- config files

def test_config_files_of_each_format_are_read(tmp_path):
    assert load_config(write(tmp_path / "c.yml", "epochs: 3\n")).epochs == 3
    assert load_config(write(tmp_path / "c.json", '{"epochs": 4, "optim": {"lr": 0.5}}')).optim.lr == 0.5
    assert load_config(write(tmp_path / "d.json", '{"epochs": 4}')).epochs == 4
    assert load_config(write(tmp_path / "c.toml", "epochs = 5\n")).epochs == 5
    assert load_config(write(tmp_path / "e.yaml", "")) == TrainConfig()        # an empty file: the defaults


@pytest.mark.parametrize("name, text, message", [
    ("c.yml", "epochs: [1\n", "is not valid YML: while parsing a flow sequence"),
    ("c.toml", "epochs = \n", "is not valid TOML: Invalid value (at line 1, column 10)"),
    ("c.json", '{"epochs": 3', "is not valid JSON: Expecting ',' delimiter: line 1 column 13 (char 12)"),
    ("c.json", "[3]", "must be a mapping of keys (out, model, data, optim, ...), got list"),
    ("c.toml", "", None),
    ("c.YML", "epochs: 3\n", ": use .yaml, .toml or .json"),
    ("c.cfg", "epochs: 3\n", ": use .yaml, .toml or .json"),
])
def test_bad_config_files_are_named(tmp_path, name, text, message):
    path = write(tmp_path / name, text)
    if message is None:
        assert load_config(path) == TrainConfig()
        return
    with pytest.raises(ValueError) as e:
        load_config(path)
    assert str(e.value).startswith(f"config {path}") and message in str(e.value) and "\n" not in str(e.value)


def test_a_missing_config_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"^config file .*nope\.yaml does not exist$"):
        load_config(str(tmp_path / "nope.yaml"))


@pytest.mark.parametrize("text, message", [
    # TOML dates are values OmegaConf cannot hold: each is named at its key, with the type declared there
    ("epochs = 1979-05-27\n", "config key 'epochs' expects int, got datetime.date(1979, 5, 27)"),
    ("[data]\nroot = 1979-05-27\n", "config key 'data.root' expects str, got datetime.date(1979, 5, 27)"),
    ("data = 1979-05-27\n", "config key 'data' expects a section of keys (format, root, annotations, split, ...), "
                            "got datetime.date(1979, 5, 27); set its keys instead, e.g. data.format=..."),
    ("[model.kwargs]\na = 1979-05-27\n", "config key 'model.kwargs.a': Value 'date' is not a supported primitive type"),
    ("[optim.step_epochs]\nx = 1\n", "config key 'optim.step_epochs' expects list[int], got {'x': 1}"),
])
def test_toml_values_of_the_wrong_kind_are_named(tmp_path, text, message):
    with pytest.raises(ValueError) as e:
        load_config(write(tmp_path / "c.toml", text))
    assert type(e.value).__name__ == "ConfigError" and str(e.value) == message


@pytest.mark.parametrize("text, message", [
    ("null: 1\n", ": Incompatible key type 'NoneType'"),
    ("data: {null: 1}\n", ": Incompatible key type 'NoneType' (at key 'data')"),
])
def test_yaml_keys_omegaconf_cannot_hold_are_refused_in_one_line(tmp_path, text, message):
    path = write(tmp_path / "c.yaml", text)
    with pytest.raises(ValueError) as e:
        load_config(path)
    assert type(e.value).__name__ == "ConfigError" and str(e.value) == f"config {path}{message}"


def test_from_dict_refuses_what_json_cannot_hold_in_one_line():
    with pytest.raises(ValueError) as e:
        from_dict({None: 1})
    assert type(e.value).__name__ == "ConfigError" and str(e.value) == "config: Incompatible key type 'NoneType'"
    with pytest.raises(ValueError, match=r"^the config must be a mapping of keys \(out, model, .*got list$"):
        from_dict([1])


def test_override_syntax():
    assert load_config(None, ["out=a=b"]).out == "a=b"                   # the first "=" splits key from value
    assert load_config(None, ["data.annotations="]).data.annotations is None   # an empty value is null
    for bad in ("=a=b", "=3", "epochs"):
        with pytest.raises(ValueError, match=rf"^override '{bad}' is not KEY=VALUE \(for example optim.lr=0.01\)$"):
            load_config(None, [bad])
    with pytest.raises(ValueError) as e:
        load_config(None, ["data.root=[1"])
    assert str(e.value) == ("an override is not valid YAML (while parsing a flow sequence in \"<unicode string>\", "
                            "line 1, column 1 did not find expected ',' or ']' in \"<unicode string>\", line 2, "
                            "column 1); quote the value, e.g. 'data.root=\"a[1\"'")


def test_declared_type_follows_sections_lists_and_unions():
    from zoo.train.config import DataConfig, declared_type
    assert declared_type("data") is DataConfig and declared_type("optim.lr") is float
    assert declared_type("optim.step_epochs[1]") is int and declared_type("data.classes[0]") is str
    for key in ("nope", "data.nope", "data.fps.x", "data.fps[0]", "epochs[0]", "model.kwargs.x"):
        assert declared_type(key) is None, key


def test_interpolations_resolve_and_a_dangling_one_is_named():
    assert load_config(None, ["data.root=videos", "out=${data.root}/run"]).out == "videos/run"
    with pytest.raises(ValueError) as e:
        load_config(None, ["epochs=${nope}"])
    assert type(e.value).__name__ == "ConfigError" and "\n" not in str(e.value)
    assert str(e.value).startswith("config key 'epochs': Interpolation key 'nope' not found")


def test_odd_keys_and_empty_documents(tmp_path):
    assert load_config(write(tmp_path / "n.json", "null")) == TrainConfig()   # like an empty YAML file
    path = write(tmp_path / "l.yaml", "- 1\n- 2\n")
    with pytest.raises(ValueError) as e:
        load_config(path)
    assert str(e.value) == f"config {path} must be a mapping of keys (out, model, data, optim, ...), got list"
    with pytest.raises(ValueError) as e:                                     # a YAML float key: a dot in one name
        load_config(write(tmp_path / "f.yaml", "1.5: 1\n"))
    assert str(e.value) == "unknown config key '1.5'"


def test_a_scalar_document_and_keys_after_an_interpolation_are_checked(tmp_path):
    with pytest.raises(ValueError, match=r"must be a mapping of keys \(out, model, data, optim, \.\.\.\), got int$"):
        load_config(write(tmp_path / "c.json", "3"))
    with pytest.raises(ValueError, match=r"^config key 'model.kwargs' expects dict\[str, Any\], got \[1\]$"):
        load_config(None, ["out=${data.root}", "model.kwargs=[1]"])


def test_an_override_with_a_broken_interpolation_is_one_line_naming_it():
    from zoo.train.config import ConfigError, parse_overrides
    with pytest.raises(ConfigError) as info:
        parse_overrides(["epochs=${"])
    assert str(info.value) == "override: no viable alternative at input '${'"
