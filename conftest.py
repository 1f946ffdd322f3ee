"""The README's and docs/'s Python code blocks run as tests (Sybil), from ``make test``.

Each Markdown file's blocks run in order in one namespace, in a fresh working folder (files they write stay there).
The names a block uses without defining (``frames_uint8_THWC``, ``my_model``, ``real``, weights files) come from
``doc_inputs`` and the ``docs_workdir`` fixture below: tiny inputs, so that the documentation runs in about a
minute on a CPU. A block that needs the network, a GPU or a large dataset is preceded by
``<!-- skip: next "why, and which test covers it" -->``. Under xdist, run with ``--dist loadfile`` so that
each document stays on one worker.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
from sybil import Sybil
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser

DOC_FIXTURES = ["docs_workdir"]


@pytest.fixture(scope="session")
def doc_weights(tmp_path_factory):
    """Random-weight stand-ins for the checkpoints the examples name (built once): local files, and our cache."""
    import torch
    from safetensors.torch import save_model

    import zoo

    root = tmp_path_factory.mktemp("doc_weights")
    torch.manual_seed(0)
    rgb, flow = (zoo.load(name, pretrained=False) for name in ("i3d_inception_k400_rgb", "i3d_inception_k400_flow"))
    for model, path in [(rgb, root / "files" / "rgb_imagenet.safetensors"),
                        (flow, root / "files" / "flow_imagenet.safetensors"),
                        (rgb, root / "cache" / "i3d_inception_k400_rgb.safetensors")]:  # same architecture
        path.parent.mkdir(parents=True, exist_ok=True)
        save_model(model, str(path))
    return root


@pytest.fixture(scope="module")
def docs_workdir(tmp_path_factory, doc_weights):
    """A fresh working folder per document holding the weights files, with the zoo's cache pointed at the
    stand-ins, offline: nothing is downloaded (the download path has its own tests against a local server)
    and nothing lands in ~/.cache."""
    root = tmp_path_factory.mktemp("docs")
    for f in (doc_weights / "files").iterdir():
        (root / f.name).symlink_to(f)
    env = {"QUOVADIS_HOME": str(doc_weights / "cache"), "QUOVADIS_OFFLINE": "1"}
    old_cwd, old_env = os.getcwd(), {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    os.chdir(root)
    yield root
    os.chdir(old_cwd)
    for k, v in old_env.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def doc_inputs(namespace: dict) -> None:
    """Names the documents use as given inputs, tiny so that every block runs in seconds on a CPU."""
    import timm

    rng = np.random.default_rng(0)
    namespace.update(
        # 16 frames of 32x40 RGB, uint8, as a video decoder returns them (numpy, time first)
        frames_uint8_THWC=rng.integers(0, 256, size=(16, 32, 40, 3), dtype=np.uint8),
        # a user's own 2D network: timm's ResNet-18, random weights (it has layer4.*.conv2 and maxpool)
        my_model=timm.create_model("resnet18", pretrained=False, num_classes=10),
        # two sets of generated videos, uint8 (N, T, H, W, 3), for FVD
        real=rng.integers(0, 256, size=(2, 16, 32, 32, 3), dtype=np.uint8),
        fake=rng.integers(0, 256, size=(2, 16, 32, 32, 3), dtype=np.uint8),
    )


pytest_collect_file = Sybil(
    parsers=[PythonCodeBlockParser(), SkipParser()],
    patterns=["README.md", "docs/*.md", "docs/**/*.md"],
    fixtures=DOC_FIXTURES,
    setup=doc_inputs,
).pytest()
