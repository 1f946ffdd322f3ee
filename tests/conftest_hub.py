"""Pytest fixture pointing the real ``huggingface_hub`` client at a :class:`tests.hub_server.LocalHub`.

Use it from ``tests/conftest.py`` with ``from .conftest_hub import local_hub  # noqa: F401``.

``huggingface_hub`` reads its environment once, at import, into ``huggingface_hub.constants``; most code then reads
``constants.X`` at call time, but a few values were derived or copied at import. So besides setting the environment
(for subprocesses and for code that reads ``os.environ``) the fixture patches:

* ``constants.ENDPOINT`` and ``constants.HUGGINGFACE_CO_URL_TEMPLATE`` (``hf_hub_url`` formats the latter),
  ``constants.HF_URL_HOSTS`` (hosts parsed as Hub URLs), ``utils._http._HUB_ORIGINS`` (origins whose redirects keep
  the token) and ``hf_api.api.endpoint`` (the module-level ``HfApi()`` behind ``huggingface_hub.model_info`` & co.);
* the cache and home paths: ``HF_HOME``, ``HF_HUB_CACHE``, ``HUGGINGFACE_HUB_CACHE``, ``HF_ASSETS_CACHE``,
  ``HUGGINGFACE_ASSETS_CACHE``, ``HF_XET_CACHE``, ``HF_TOKEN_PATH``, ``HF_STORED_TOKENS_PATH`` and the files kept in
  ``HF_HOME`` (``AGENT_HARNESSES_PATH``, ``CHECK_FOR_*_DONE_PATH``), plus the copies taken with ``from ..constants
  import`` in ``utils._cache_manager`` (``HF_HUB_CACHE``) and ``utils._cache_assets`` (``HF_ASSETS_CACHE``);
* ``HF_HUB_OFFLINE = False``, ``HF_HUB_DISABLE_XET = True``, ``HF_HUB_DISABLE_TELEMETRY = True``;
* ``utils._detect_agent._registry`` (set to the empty registry, else the first request of the process also GETs
  ``/api/agent-harnesses``, which would show up in ``hub.requests``).

It also closes the client's shared ``httpx`` session before and after, so no pooled connection or proxy setting
outlives the test. Offline mode is read per request from ``constants.HF_HUB_OFFLINE`` (``is_offline_mode()``, the
request hook of the shared session): :func:`set_offline` flips it mid-test.
"""
from __future__ import annotations

import os

import pytest

from .hub_server import LocalHub

TOKEN = "hf_test"


def set_offline(monkeypatch, offline: bool = True) -> None:
    """Turn the client's offline mode on or off for the rest of the test (env var and the imported constant)."""
    from huggingface_hub import constants
    monkeypatch.setenv("HF_HUB_OFFLINE", "1" if offline else "0")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)


def point_client_at(hub: LocalHub, home, monkeypatch) -> None:
    """Redirect the already-imported ``huggingface_hub`` to ``hub``, with its home and caches under ``home``."""
    import huggingface_hub
    from huggingface_hub import constants, hf_api
    from huggingface_hub.utils import _cache_assets, _cache_manager, _detect_agent, _http

    home = str(home)
    hub_cache, assets, token_path = os.path.join(home, "hub"), os.path.join(home, "assets"), os.path.join(home, "token")
    env = {"HF_ENDPOINT": hub.url, "HF_HOME": home, "HF_HUB_CACHE": hub_cache, "HF_ASSETS_CACHE": assets,
           "HF_XET_CACHE": os.path.join(home, "xet"), "HF_TOKEN_PATH": token_path, "HF_TOKEN": TOKEN,
           "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_XET": "1", "HF_HUB_OFFLINE": "0",
           "NO_PROXY": ",".join(filter(None, [os.environ.get("NO_PROXY"), "127.0.0.1", "localhost"]))}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    for k in ("TRANSFORMERS_OFFLINE", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE", "HUGGINGFACE_HUB_CACHE",
              "HUGGINGFACE_CO_STAGING", "HF_HUB_DISABLE_IMPLICIT_TOKEN"):
        monkeypatch.delenv(k, raising=False)

    patches = {
        "ENDPOINT": hub.url,
        "HUGGINGFACE_CO_URL_TEMPLATE": hub.url + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_URL_HOSTS": constants.HF_URL_HOSTS | {hub.host},
        "HF_HOME": home, "HF_HUB_CACHE": hub_cache, "HUGGINGFACE_HUB_CACHE": hub_cache,
        "HF_ASSETS_CACHE": assets, "HUGGINGFACE_ASSETS_CACHE": assets, "HF_XET_CACHE": env["HF_XET_CACHE"],
        "HF_TOKEN_PATH": token_path, "HF_STORED_TOKENS_PATH": os.path.join(home, "stored_tokens"),
        "AGENT_HARNESSES_PATH": os.path.join(home, ".agent_harnesses.json"),
        "CHECK_FOR_UPDATE_DONE_PATH": os.path.join(home, ".check_for_update_done"),
        "CHECK_FOR_SKILL_UPDATE_DONE_PATH": os.path.join(home, ".check_for_skill_update_done"),
        "HF_HUB_OFFLINE": False, "HF_HUB_DISABLE_XET": True, "HF_HUB_DISABLE_TELEMETRY": True,
        "HF_HUB_DISABLE_IMPLICIT_TOKEN": False,
    }
    for name, value in patches.items():
        if hasattr(constants, name):  # a constant renamed or dropped in another client version is skipped
            monkeypatch.setattr(constants, name, value)
        if name in vars(huggingface_hub):  # lazily re-exported at the top level, cached once accessed
            monkeypatch.setattr(huggingface_hub, name, value)
    monkeypatch.setattr(_cache_manager, "HF_HUB_CACHE", hub_cache)
    monkeypatch.setattr(_cache_assets, "HF_ASSETS_CACHE", assets)
    monkeypatch.setattr(_http, "_HUB_ORIGINS", _http._HUB_ORIGINS | {_http._url_origin(hub.url)})
    monkeypatch.setattr(hf_api.api, "endpoint", hub.url)
    monkeypatch.setattr(_detect_agent, "_registry", _detect_agent._EMPTY_REGISTRY)
    _http.close_session()


@pytest.fixture
def local_hub(tmp_path, monkeypatch):
    """A running :class:`LocalHub` (storage in ``tmp_path/hub``) that the ``huggingface_hub`` client talks to, with
    ``HF_HOME`` at ``tmp_path/hf_home``, token ``hf_test``, Xet and telemetry off and offline mode off."""
    from huggingface_hub.utils import _http

    with LocalHub(tmp_path / "hub") as hub:
        point_client_at(hub, tmp_path / "hf_home", monkeypatch)
        try:
            yield hub
        finally:
            _http.close_session()


def save_random_rgb(path, seed: int):
    """The RGB I3D zoo entry with N(0, 1) weights drawn from ``seed``, saved to ``path``; returns the model."""
    import torch
    from safetensors.torch import save_model

    import zoo
    model = zoo.load("i3d_inception_k400_rgb", pretrained=False)
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_()
    save_model(model, str(path))
    return model
