"""The release verification (zoo/weights/release.py) against independent numbers: the pins file read as plain
JSON, ``git hash-object`` for blob ids, hashlib for sha256, and the data-shard sizes DeepMind's repository
records, computed from the real index files alone."""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from zoo.weights import release
from zoo.weights.release import DATA, INDEX, MIRROR_ENV, VerificationError

from .fuzzing import RELEASE_INDEXES

PINS = json.loads((Path(release.__file__).parent / "release_pins.json").read_text())


def test_pins_are_the_file_as_written():
    assert release.commit() == PINS["commit"] and release.variants() == sorted(PINS["checkpoints"])
    for variant, files in PINS["checkpoints"].items():
        pins = release.pins(variant)
        assert set(pins) == {INDEX, DATA}
        for name, pin in pins.items():
            want = files[name]
            assert (pin.path, pin.git_blob_sha1, pin.sha256, pin.size) == (
                want["path"], want["git_blob_sha1"], want.get("sha256"), want.get("bytes"))
    with pytest.raises(KeyError, match=r"the kinetics-i3d release has no checkpoint 'rgb'; it has \['flow_imagenet'"):
        release.pins("rgb")


def test_urls_at_the_pinned_commit_or_a_mirror(monkeypatch):
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    base = f"https://raw.githubusercontent.com/google-deepmind/kinetics-i3d/{PINS['commit']}"
    assert release.base_url() == base
    assert release.file_url("flow_scratch", DATA) == f"{base}/data/checkpoints/flow_scratch/{DATA}"
    monkeypatch.setenv(MIRROR_ENV, "  file:///srv/kinetics-i3d//  ")
    assert release.base_url() == "file:///srv/kinetics-i3d"
    assert release.file_url("rgb_imagenet", INDEX) == f"file:///srv/kinetics-i3d/data/checkpoints/rgb_imagenet/{INDEX}"
    monkeypatch.setenv(MIRROR_ENV, "http://host/MIRROR-XX/")  # only the slashes go
    assert release.base_url() == "http://host/MIRROR-XX"


@pytest.mark.parametrize("variant", sorted(PINS["checkpoints"]))
def test_the_real_indexes_verify_and_give_the_shard_sizes_the_repository_records(variant):
    index = RELEASE_INDEXES / variant / INDEX
    release.verify_index(variant, index)
    assert release.data_size(index) == PINS["checkpoints"][variant][DATA]["bytes"]
    if shutil.which("git"):
        blob = subprocess.run(["git", "hash-object", str(index)], capture_output=True, text=True, check=True)
        assert blob.stdout.strip() == release.pins(variant)[INDEX].git_blob_sha1
    assert hashlib.sha256(index.read_bytes()).hexdigest() == release.pins(variant)[INDEX].sha256


def _say(variant, url, what, actual, pinned):
    return re.escape(f"{url}: {INDEX} of {variant} has {what} {actual}, but the release pins {pinned}. ")


def test_a_tampered_index_is_named_with_what_differs(tmp_path, monkeypatch):
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    real = (RELEASE_INDEXES / "rgb_imagenet" / INDEX).read_bytes()
    pin = release.pins("rgb_imagenet")[INDEX]
    bad = tmp_path / INDEX
    bad.write_bytes(real + b"\x00")
    with pytest.raises(VerificationError, match="^" + _say("rgb_imagenet", bad, "size", len(real) + 1, pin.size)
                       + "The download was damaged or the server sent another file: run the command again. Nothing "
                       "was cached. To use a copy you trust instead, run `quovadis convert deepmind kinetics-i3d/data/"
                       r"checkpoints/rgb_imagenet -o OUT.safetensors` and pass weights=OUT.safetensors.$"):
        release.verify_index("rgb_imagenet", bad)
    flipped = bytearray(real)
    flipped[100] ^= 1
    bad.write_bytes(bytes(flipped))
    monkeypatch.setenv(MIRROR_ENV, "http://mirror.example")
    with pytest.raises(VerificationError, match="^" + _say("rgb_imagenet", "http://m/x", "sha256",
                                                           hashlib.sha256(flipped).hexdigest(), pin.sha256)
                       + re.escape(f"The mirror http://mirror.example ({MIRROR_ENV}) does not hold the release's file "
                                   f"at commit {PINS['commit'][:12]}: fix or unset it. Nothing was cached.")):
        release.verify_index("rgb_imagenet", bad, "http://m/x")
    with pytest.raises(VerificationError, match="^" + _say("rgb_imagenet", bad, "sha256",  # no URL: the file
                                                           hashlib.sha256(flipped).hexdigest(), pin.sha256)):
        release.verify_index("rgb_imagenet", bad)


def test_a_data_shard_is_checked_by_size_then_blob_id(tmp_path):
    shard = tmp_path / DATA
    shard.write_bytes(b"\x00" * 10)
    pin = release.pins("flow_scratch")[DATA]
    with pytest.raises(VerificationError, match=re.escape(f"{shard}: {DATA} of flow_scratch has size (from the "
                                                          f"index's offsets) 10, but the release pins 11. ")):
        release.verify_data("flow_scratch", shard, 11)
    blob = hashlib.sha1(b"blob 10\x00" + b"\x00" * 10).hexdigest()
    with pytest.raises(VerificationError, match=re.escape(f"http://u: {DATA} of flow_scratch has git blob id {blob}, "
                                                          f"but the release pins {pin.git_blob_sha1}. ")):
        release.verify_data("flow_scratch", shard, 10, "http://u")
    with pytest.raises(VerificationError, match="^" + re.escape(f"{shard}: {DATA} of flow_scratch has git blob id ")):
        release.verify_data("flow_scratch", shard, 10)


def test_an_empty_index_has_an_empty_shard(tmp_path):
    from converters.tf_bundle_writer import write_bundle
    prefix = write_bundle(tmp_path / "m", {})
    assert release.data_size(Path(f"{prefix}.index")) == 0
    prefix = write_bundle(tmp_path / "n", {"a": np.zeros(3, np.float32), "b": np.zeros(5, np.int64)})
    assert release.data_size(Path(f"{prefix}.index")) == Path(f"{prefix}.data-00000-of-00001").stat().st_size == 52
