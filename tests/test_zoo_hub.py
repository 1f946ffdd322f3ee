"""The zoo against the real huggingface_hub client talking HTTP to a local Hub on 127.0.0.1:
push and load back, weight resolution order, offline mode, corrupt caches, hash mismatches, missing repos
and concurrent loads."""
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_model

import inflate
import zoo
from inflate.atomic import atomic_path
from zoo.weights.files import WeightsError, sha256_of

from .conftest_hub import save_random_rgb, set_offline


def same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture
def published(local_hub, tmp_path, monkeypatch):
    """Publish random weights for the RGB entry on the local Hub; the registry entry points at them."""
    path = tmp_path / "rgb.safetensors"
    model = save_random_rgb(path, seed=0)
    from huggingface_hub import HfApi
    HfApi().create_repo("quovadis/test-rgb")
    HfApi().upload_file(path_or_fileobj=str(path), path_in_repo="model.safetensors", repo_id="quovadis/test-rgb")
    entry = dataclasses.replace(zoo.info("i3d_inception_k400_rgb"), hf_repo="quovadis/test-rgb", sha256=sha256_of(path))
    monkeypatch.setitem(zoo.REGISTRY, entry.name, entry)
    monkeypatch.setenv("QUOVADIS_HOME", str(tmp_path / "quovadis-cache"))
    return model, path, entry


def test_push_and_load_back_is_bit_identical(local_hub):
    i3d = zoo.load("i3d_inception_k400_flow", pretrained=False).eval()
    video = inflate.from_timm("test_resnet", policy="i3d", init="noise", num_classes=7).eval()
    for model, repo in ((i3d, "me/i3d-flow"), (video, "me/tiny-video")):
        zoo.push_to_hub(model, repo)
        back = zoo.load(f"hf-hub:{repo}")
        assert type(back) is type(model) and not back.training
        assert same_weights(model, back)
    x = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        assert torch.equal(video(x), back(x))
    from huggingface_hub import model_info
    card = model_info("me/i3d-flow").card_data
    assert card.library_name == "quovadis" and card.pipeline_tag == "video-classification"
    assert card.license == "apache-2.0" and card.datasets == ["kinetics-400"] and "i3d" in card.tags


def test_registry_entry_resolves_through_the_hub_then_the_cache(published, local_hub, monkeypatch):
    model, path, entry = published
    loaded = zoo.load(entry.name)
    assert same_weights(model, loaded) and not loaded.training
    assert same_weights(model, zoo.load(entry.name, weights=path))  # explicit file first
    # offline: served from the Hugging Face cache without a single request
    set_offline(monkeypatch, True)
    before = len(local_hub.requests)
    assert same_weights(model, zoo.load(entry.name))
    assert len(local_hub.requests) == before
    with pytest.raises(WeightsError, match="HF_HUB_OFFLINE is set.*quovadis convert deepmind"):
        zoo.load("i3d_inception_k400_flow")


def test_local_build_cache_comes_before_the_hub(published, local_hub, tmp_path):
    model, path, entry = published
    cache = Path(os.environ["QUOVADIS_HOME"])
    cache.mkdir(parents=True)
    (cache / f"{entry.name}.safetensors").write_bytes(path.read_bytes())
    before = len(local_hub.requests)
    assert same_weights(model, zoo.load(entry.name))
    assert len(local_hub.requests) == before


def test_corrupt_cached_file_is_detected_and_fetched_again(published, local_hub, monkeypatch):
    model, path, entry = published
    cached = Path(zoo.weights.resolve.resolve(entry))
    blob = cached.resolve()
    data = bytearray(blob.read_bytes())
    data[-10] ^= 0xFF
    blob.write_bytes(bytes(data))
    set_offline(monkeypatch, True)
    with pytest.raises(WeightsError, match=r"cached file .* is corrupt"):
        zoo.load(entry.name)
    set_offline(monkeypatch, False)
    assert same_weights(model, zoo.load(entry.name))  # fetched again
    assert sha256_of(cached) == entry.sha256


def test_hash_mismatch_on_download_is_refused(published, local_hub, monkeypatch):
    model, path, entry = published
    monkeypatch.setitem(zoo.REGISTRY, entry.name, dataclasses.replace(entry, sha256="0" * 64))
    with pytest.raises(WeightsError, match="not the one we published"):
        zoo.load(entry.name)
    local_hub.corrupt("quovadis/test-rgb", "model.safetensors", b"\x00" * 100)
    monkeypatch.setitem(zoo.REGISTRY, entry.name, entry)
    with pytest.raises(WeightsError, match="sha256"):
        zoo.load(entry.name, force_download=True)


def test_missing_repo_and_missing_file(local_hub, monkeypatch):
    with pytest.raises(WeightsError, match="no such repo"):
        zoo.load("hf-hub:nobody/nothing")
    entry = dataclasses.replace(zoo.info("i3d_inception_k400_rgb"), hf_repo="nobody/nothing")
    monkeypatch.setitem(zoo.REGISTRY, entry.name, entry)
    with pytest.raises(WeightsError, match="Hub repo nobody/nothing: no such repo on the Hub"):
        zoo.load(entry.name)


def test_two_processes_loading_at_once_share_one_good_cache(published, local_hub):
    model, path, entry = published
    code = ("import dataclasses, zoo; e = dataclasses.replace(zoo.info('i3d_inception_k400_rgb'), "
            f"hf_repo='quovadis/test-rgb', sha256='{entry.sha256}'); zoo.REGISTRY[e.name] = e; "
            "m = zoo.load(e.name); print(float(sum(p.double().sum() for p in m.parameters())))")
    env = dict(os.environ)
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    expected = float(sum(p.double().sum() for p in model.parameters()))
    assert all(abs(float(o[0].strip()) - expected) < 1e-6 * abs(expected) for o in outs)
    assert sha256_of(zoo.weights.resolve.resolve(entry)) == entry.sha256


def test_every_registry_entry_loads_from_a_file_and_the_hub(local_hub, tmp_path, monkeypatch):
    from huggingface_hub import HfApi
    api = HfApi()
    for name in zoo.list():
        entry = zoo.info(name)
        if entry.arch == "two_stream_i3d":
            continue
        model = zoo.load(name, pretrained=False)
        path = tmp_path / f"{name}.safetensors"
        save_model(model, str(path))
        repo = f"quovadis/t-{name.replace('_', '-')}"
        api.create_repo(repo)
        api.upload_file(path_or_fileobj=str(path), path_in_repo="model.safetensors", repo_id=repo)
        monkeypatch.setitem(zoo.REGISTRY, name, dataclasses.replace(entry, hf_repo=repo, sha256=sha256_of(path)))
        assert same_weights(model, zoo.load(name, weights=path))
        assert same_weights(model, zoo.load(name))
    two = zoo.load("i3d_inception_k400_two_stream")
    assert same_weights(two.rgb, zoo.load("i3d_inception_k400_rgb_imagenet"))
    rgb = torch.rand(1, 3, 9, 193, 193) * 2 - 1
    flow = torch.rand(1, 2, 9, 193, 193) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(two(rgb, flow), two.rgb(rgb) + two.flow(flow))


def test_atomic_writes_leave_nothing_behind_on_failure(tmp_path):
    target = tmp_path / "out.safetensors"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["out.safetensors"]


def test_a_hub_that_cannot_be_reached_fails_at_once(tmp_path, monkeypatch):
    """huggingface_hub retries its first request 5 times with backoff when nothing is cached (about 23 s); a Hub
    whose name does not resolve fails at once, with the cause and what to do."""
    import time
    from types import SimpleNamespace

    from .conftest_hub import point_client_at
    point_client_at(SimpleNamespace(url="http://hub.invalid", host="hub.invalid"), tmp_path / "hf_home", monkeypatch)
    start = time.perf_counter()
    with pytest.raises(WeightsError, match=r"^hf-hub:me/model: Hub repo me/model: config.json is not cached and the "
                                           r"Hub \(hub.invalid\) cannot be reached \(gaierror: .*Download it once"):
        zoo.load("hf-hub:me/model")
    assert time.perf_counter() - start < 5


def test_push_takes_a_model_or_a_zoo_name(local_hub, tmp_path):
    from zoo.weights import hub
    with pytest.raises(TypeError, match="push_to_hub takes a model, not a str"):
        hub.push_to_hub("i3d_inception_k400_rgb", "me/x")
    with pytest.raises(TypeError, match="cannot publish a Linear"):
        zoo.push_to_hub(torch.nn.Linear(2, 2), "me/x")
    from huggingface_hub import HfApi
    assert not HfApi().repo_exists("me/x")  # refused before anything was created
    path = tmp_path / "flow.safetensors"
    flow = zoo.load("i3d_inception_k400_flow", pretrained=False)
    save_model(flow, str(path))
    zoo.push_to_hub("i3d_inception_k400_flow", "me/flow", weights=path)
    back = zoo.load("hf-hub:me/flow")
    assert same_weights(flow, back) and back.hub_spec["zoo_name"] == "i3d_inception_k400_flow"


def test_a_pushed_config_with_an_unknown_architecture_is_refused(local_hub, tmp_path):
    import json

    from huggingface_hub import HfApi
    from zoo.weights.hub import model_spec
    spec = {**model_spec(zoo.load("i3d_inception_k400_flow", pretrained=False)), "arch": "resnet9000"}
    HfApi().create_repo("me/odd")
    HfApi().upload_file(path_or_fileobj=json.dumps(spec).encode(), path_in_repo="config.json", repo_id="me/odd")
    HfApi().upload_file(path_or_fileobj=b"{}", path_in_repo="model.safetensors", repo_id="me/odd")
    with pytest.raises(WeightsError, match=r"hf-hub:me/odd: config.json: unknown architecture 'resnet9000'"):
        zoo.load("hf-hub:me/odd")
