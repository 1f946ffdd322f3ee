"""The real ``huggingface_hub`` client against the local Hub server of ``tests/hub_server.py`` (no mocks)."""
from __future__ import annotations

import hashlib
import os

import pytest
from huggingface_hub import HfApi, hf_hub_download, model_info
from huggingface_hub.errors import (EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError,
                                    OfflineModeIsEnabled, RemoteEntryNotFoundError, RepositoryNotFoundError,
                                    RevisionNotFoundError)

from zoo.weights.files import git_blob_sha1

from .conftest_hub import local_hub, set_offline  # noqa: F401  (fixture)

REPO = "org/model"
README = b"---\nlicense: mit\nlibrary_name: quovadis\npipeline_tag: video-classification\ntags:\n- i3d\n---\n# Model\n"
BLOB = os.urandom(2 * 1024 * 1024 + 123)


@pytest.fixture
def repo(local_hub):
    api = HfApi()
    url = api.create_repo(REPO)
    assert url == f"{local_hub.url}/{REPO}" and url.repo_id == REPO
    api.upload_file(path_or_fileobj=BLOB, path_in_repo="weights/model.bin", repo_id=REPO)
    info = api.upload_file(path_or_fileobj=README, path_in_repo="README.md", repo_id=REPO)
    return info


def gets(hub, filename):
    return [r for r in hub.requests if r == ("GET", f"/{REPO}/resolve/main/{filename}")]


def test_create_repo_exist_ok_and_conflict(local_hub):
    api = HfApi()
    api.create_repo(REPO)
    assert api.repo_exists(REPO) and not api.repo_exists("org/other")
    assert api.create_repo(REPO, exist_ok=True).repo_id == REPO
    with pytest.raises(HfHubHTTPError) as e:
        api.create_repo(REPO)
    assert e.value.response.status_code == 409
    assert api.list_repo_files(REPO) == [".gitattributes"]


def test_upload_commits_and_no_xet_or_lfs(local_hub, repo):
    api = HfApi()
    assert len(repo.oid) == 40 and repo.repo_url.repo_id == REPO
    info = api.model_info(REPO)
    assert info.sha == repo.oid  # main resolves to the latest commit
    assert sorted(s.rfilename for s in info.siblings) == [".gitattributes", "README.md", "weights/model.bin"]
    assert info.card_data["license"] == "mit" and info.card_data.tags == ["i3d"]
    assert info.library_name == "quovadis" and info.pipeline_tag == "video-classification"
    assert {"quovadis", "i3d", "license:mit"} <= set(info.tags)
    sizes = {s.rfilename: s for s in api.model_info(REPO, files_metadata=True).siblings}
    assert sizes["weights/model.bin"].size == len(BLOB)
    assert sizes["weights/model.bin"].lfs.sha256 == hashlib.sha256(BLOB).hexdigest()
    assert sizes["README.md"].lfs is None and sizes["README.md"].blob_id == git_blob_sha1(README)
    assert api.list_repo_files(REPO) == [".gitattributes", "README.md", "weights/model.bin"]
    # Everything went through preupload ("regular") + NDJSON commit: no LFS batch, no Xet token request
    paths = {p for _, p in local_hub.requests}
    assert not any("lfs" in p or "xet" in p for p in paths), paths
    # an older revision still serves its own files
    parent = local_hub.repos[REPO]["commits"][repo.oid]["parent"]
    assert api.list_repo_files(REPO, revision=parent) == [".gitattributes", "weights/model.bin"]
    # re-uploading identical bytes is a no-op commit (preupload returned the remote oid)
    assert api.upload_file(path_or_fileobj=README, path_in_repo="README.md", repo_id=REPO).oid == repo.oid
    api.upload_folder(repo_id=REPO, folder_path=os.path.dirname(__file__), allow_patterns=["hub_server.py"],
                      path_in_repo="src")
    assert "src/hub_server.py" in api.list_repo_files(REPO)


def test_download_identical_bytes_and_cached(local_hub, repo):
    path = hf_hub_download(REPO, "weights/model.bin")
    assert open(path, "rb").read() == BLOB
    assert os.path.basename(os.path.realpath(path)) == hashlib.sha256(BLOB).hexdigest()  # blob named by ETag
    assert len(gets(local_hub, "weights/model.bin")) == 1
    assert hf_hub_download(REPO, "weights/model.bin") == path
    assert len(gets(local_hub, "weights/model.bin")) == 1  # second call: HEAD only, no GET
    readme = hf_hub_download(REPO, "README.md", revision=repo.oid)
    assert open(readme, "rb").read() == README
    assert os.path.basename(os.path.realpath(readme)) == git_blob_sha1(README)


def test_missing_repo_file_revision(local_hub, repo):
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("org/nope", "README.md")
    with pytest.raises(RepositoryNotFoundError):
        model_info("org/nope")
    with pytest.raises(RemoteEntryNotFoundError) as e:
        hf_hub_download(REPO, "missing.bin")
    assert isinstance(e.value, EntryNotFoundError)
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(REPO, "README.md", revision="no-such-branch")


def test_offline_mode(local_hub, repo, monkeypatch):
    path = hf_hub_download(REPO, "README.md")
    local_hub.requests.clear()
    set_offline(monkeypatch, True)
    assert hf_hub_download(REPO, "README.md") == path
    with pytest.raises(LocalEntryNotFoundError):
        hf_hub_download(REPO, "weights/model.bin")
    with pytest.raises(OfflineModeIsEnabled):
        model_info(REPO)
    assert local_hub.requests == []
    set_offline(monkeypatch, False)
    assert open(hf_hub_download(REPO, "weights/model.bin"), "rb").read() == BLOB


def test_force_download_after_corrupt(local_hub, repo):
    path = hf_hub_download(REPO, "weights/model.bin")
    bad = bytes(len(BLOB))
    local_hub.corrupt(REPO, "weights/model.bin", bad)
    assert open(hf_hub_download(REPO, "weights/model.bin"), "rb").read() == BLOB  # cache hit, ETag unchanged
    again = hf_hub_download(REPO, "weights/model.bin", force_download=True)
    assert again == path and open(again, "rb").read() == bad
    assert len(gets(local_hub, "weights/model.bin")) == 2
