"""The zoo's registry: every named model with its architecture, weights, labels and preprocessing."""
from __future__ import annotations

import fnmatch
from dataclasses import asdict, dataclass, field

from zoo.labels import LABEL_SETS, label_names
from zoo.preprocess import FlowPreprocess, RGBPreprocess, preprocess_from_dict

I3D_CITATION = """@inproceedings{carreira2017quo,
  title={Quo Vadis, Action Recognition? A New Model and the Kinetics Dataset},
  author={Carreira, Jo{\\~a}o and Zisserman, Andrew},
  booktitle={CVPR},
  year={2017}
}"""
DEEPMIND_LICENSE = "apache-2.0"
HUB_ORG = "quovadis"


@dataclass(frozen=True)
class ModelEntry:
    name: str
    arch: str  # "inception_i3d", "two_stream_i3d" or "inflated"
    config: dict
    modality: str  # "rgb", "flow" or "rgb+flow"
    labels: str
    preprocessing: dict
    source: str
    license: str
    citation: str
    reported: dict = field(default_factory=dict)  # accuracy the source reports, in percent
    hf_repo: str | None = None
    filename: str = "model.safetensors"
    sha256: str | None = None  # of the published file, checked after download
    variant: str | None = None  # DeepMind variant the weights must come from
    components: tuple = ()  # two-stream: the registry names of its streams
    description: str = ""

    @property
    def num_classes(self) -> int:
        return self.config.get("num_classes")

    @property
    def in_channels(self) -> int:
        return self.config.get("in_channels", 3)

    @property
    def label_names(self) -> tuple[str, ...]:
        return label_names(self.labels) if self.labels in LABEL_SETS else ()

    @property
    def transform(self):
        """The preprocessing callable (a dict of callables for two-stream models)."""
        if "rgb" in self.preprocessing and "flow" in self.preprocessing:
            return {k: preprocess_from_dict(v) for k, v in self.preprocessing.items()}
        return preprocess_from_dict(self.preprocessing)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["components"] = list(self.components)
        return d


REGISTRY: dict[str, ModelEntry] = {}
# Other names for registry entries. TF-Hub's ``deepmind/i3d-kinetics-400/1``, the network behind FVD, is
# DeepMind's ``rgb_scratch`` checkpoint byte for byte (same data blob, same 230 index entries): it is
# ``i3d_inception_k400_rgb``, not the ImageNet-inflated ``i3d_inception_k400_rgb_imagenet``.
ALIASES: dict[str, str] = {"i3d_inception_k400_rgb_tfhub": "i3d_inception_k400_rgb"}


def register(entry: ModelEntry) -> ModelEntry:
    if entry.name in REGISTRY:
        raise ValueError(f"model {entry.name!r} is already registered")
    REGISTRY[entry.name] = entry
    return entry


def get_entry(name: str) -> ModelEntry:
    """The entry registered under ``name`` or one of its :data:`ALIASES`."""
    name = ALIASES.get(name, name)
    if name not in REGISTRY:
        import difflib
        close = difflib.get_close_matches(name, list(REGISTRY) + list(ALIASES), n=4, cutoff=0.4)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise KeyError(f"unknown zoo model {name!r}.{hint} zoo.list() shows all names; "
                       "'hf-hub:ORG/REPO' loads a model pushed to the Hub.")
    return REGISTRY[name]


def list_models(pattern: str = "*") -> list[str]:
    return sorted(n for n in REGISTRY if fnmatch.fnmatchcase(n, pattern))


def name_of_variant(variant: str) -> str | None:
    """The registry name whose weights are DeepMind's checkpoint ``variant`` (e.g. ``"rgb_scratch"``), or None."""
    return next((name for name, entry in REGISTRY.items() if entry.variant == variant), None)


def _deepmind(name, variant, modality, classes, labels, reported, description):
    channels = 3 if modality == "rgb" else 2
    prep = RGBPreprocess() if modality == "rgb" else FlowPreprocess()
    return register(ModelEntry(
        name=name, arch="inception_i3d",
        config={"num_classes": classes, "in_channels": channels, "dropout": 0.0},
        modality=modality, labels=labels, preprocessing=prep.to_dict(),
        source=f"deepmind/kinetics-i3d checkpoint {variant} (data/checkpoints/{variant})",
        license=DEEPMIND_LICENSE, citation=I3D_CITATION, reported=reported,
        hf_repo=f"{HUB_ORG}/{name.replace('_', '-')}", variant=variant, description=description))


_deepmind("i3d_inception_k400_rgb", "rgb_scratch", "rgb", 400, "kinetics400", {"kinetics400_top1": 68.4},
          "I3D RGB stream trained on Kinetics-400 from scratch")
_deepmind("i3d_inception_k400_flow", "flow_scratch", "flow", 400, "kinetics400", {"kinetics400_top1": 61.5},
          "I3D optical-flow stream trained on Kinetics-400 from scratch")
_deepmind("i3d_inception_k400_rgb_imagenet", "rgb_imagenet", "rgb", 400, "kinetics400", {"kinetics400_top1": 71.1},
          "I3D RGB stream inflated from ImageNet Inception-v1, trained on Kinetics-400")
_deepmind("i3d_inception_k400_flow_imagenet", "flow_imagenet", "flow", 400, "kinetics400",
          {"kinetics400_top1": 63.4},
          "I3D optical-flow stream inflated from ImageNet Inception-v1, trained on Kinetics-400")
_deepmind("i3d_inception_k600_rgb", "rgb_scratch_kin600", "rgb", 600, "kinetics600", {},
          "I3D RGB stream trained on Kinetics-600 from scratch")
register(ModelEntry(
    name="i3d_inception_k400_two_stream", arch="two_stream_i3d", config={"num_classes": 400},
    modality="rgb+flow", labels="kinetics400",
    preprocessing={"rgb": RGBPreprocess().to_dict(), "flow": FlowPreprocess().to_dict()},
    source="deepmind/kinetics-i3d rgb_imagenet + flow_imagenet; logits summed as in the release",
    license=DEEPMIND_LICENSE, citation=I3D_CITATION, reported={"kinetics400_top1": 74.2},
    components=("i3d_inception_k400_rgb_imagenet", "i3d_inception_k400_flow_imagenet"),
    description="Two-stream I3D (ImageNet-inflated): RGB logits + flow logits"))


IMAGENET = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}


def _inflated(name, kind, model, policy, description, citation=I3D_CITATION):
    return register(ModelEntry(
        name=name, arch="inflated",
        config={"source": {"kind": kind, "name": model, "kwargs": {}}, "policy": policy, "num_classes": 1000,
                "in_channels": 3},
        modality="rgb", labels="imagenet-1k", preprocessing=RGBPreprocess(**IMAGENET).to_dict(),
        source=f"{kind} {model} ImageNet-1k weights, inflated with policy {policy!r} (mean init)",
        license="see the 2D weights' license", citation=citation, description=description))


# Inflated 2D networks: no video training; pretrained=True bootstraps from the 2D ImageNet weights
# (downloaded by timm/torchvision), so that the boring-video law gives ImageNet accuracy on still clips.
_inflated("i3d_resnet50_3x1x1_inflated", "timm", "resnet50", "i3d_3x1x1",
          "ResNet-50 inflated with MMAction2's I3D-R50 3x1x1 recipe, ready to fine-tune on video")
_inflated("slow_resnet50_inflated", "timm", "resnet50", "slow",
          "ResNet-50 inflated as SlowFast's Slow pathway (temporal kernels in res4/res5)")
_inflated("i3d_googlenet_inflated", "torchvision", "googlenet", "i3d",
          "torchvision GoogLeNet (Inception-v1) inflated with the I3D paper's kernels, strides and pools")
