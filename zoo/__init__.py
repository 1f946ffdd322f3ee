"""quovadis.zoo: named video models with their weights, labels and preprocessing.

    >>> import zoo
    >>> zoo.list("i3d_*")
    >>> model = zoo.load("i3d_inception_k400_rgb")   # DeepMind's release: downloaded once, verified, cached
    >>> model = zoo.load("i3d_inception_k400_rgb", weights="i3d_rgb.safetensors")   # a local file; eval mode
    >>> entry = zoo.info("i3d_inception_k400_rgb"); x = entry.transform(frames, fps=30)[None]
"""
from zoo.api import info, load, push_to_hub
from zoo.models.build import build_entry as build
from zoo.weights.hub import load_from_hub, save_pretrained
from zoo.models.i3d import ENDPOINTS, InceptionI3d
from zoo.labels import label_names
from zoo.preprocess import FlowPreprocess, RGBPreprocess
from zoo.registry import REGISTRY, ModelEntry, list_models
from zoo.models.two_stream import TwoStreamI3D
from zoo.weights.files import WeightsError

list = list_models  # noqa: A001  (zoo.list, as timm.list_models)

__all__ = ["load", "info", "build", "list", "list_models", "InceptionI3d", "ENDPOINTS", "TwoStreamI3D",
           "ModelEntry", "REGISTRY", "RGBPreprocess", "FlowPreprocess", "label_names", "WeightsError",
           "push_to_hub", "load_from_hub", "save_pretrained"]
