"""The policy language: which layers get a temporal kernel, and with what kernel, stride and dilation.

A policy is an ordered list of rules. Each rule matches module paths (``layer4.0.conv2``) with a glob,
or with a regular expression when the pattern starts with ``re:``, and says what the matched layers
become in time. The first rule that matches a layer decides; a layer that no rule matches stays
per-frame (temporal kernel 1, stride 1).

Text form (CLI, configs), rules separated by ``;``::

    [conv:|pool:|any:]PATTERN=KERNEL[/STRIDE[/DILATION]]

    "layer4.*.conv2=3"                 # 3x3x3 convs in layer4's blocks
    "conv:conv1=5/2; pool:maxpool=1/2"  # stem conv 5xkxk with temporal stride 2, stem pool strided
    "conv:*=k"                         # kt equal to the (square) spatial kernel, as in I3D

``KERNEL`` may be ``k`` (equal to the square spatial kernel, 1 for non-square kernels) and ``STRIDE``
may be ``s`` (equal to the spatial stride). A rule kind defaults to ``conv``.

Named presets (:data:`PRESETS`) expand to explicit rules for a given model, so the policy recorded in
a model's config always lists concrete rules.
"""
from __future__ import annotations

import fnmatch
import re
from dataclasses import asdict, dataclass
from typing import Callable, Iterable, Union

import torch.nn as nn

KINDS = ("conv", "pool", "any")


class PolicyError(ValueError):
    """A policy that cannot apply to the model: bad syntax, impossible values, or no match."""


@dataclass(frozen=True)
class LayerInfo:
    """What a rule can see of a 2D layer."""

    path: str
    kind: str  # "conv" or "pool"
    kernel: tuple[int, int]
    stride: tuple[int, int]
    cls: str


@dataclass(frozen=True)
class TemporalSpec:
    """What one layer becomes in time."""

    kernel: int = 1
    stride: int = 1
    dilation: int = 1

    @property
    def is_identity(self) -> bool:
        return self.kernel == 1 and self.stride == 1


@dataclass(frozen=True)
class Rule:
    """Map the layers whose path matches ``pattern`` to a temporal kernel, stride and dilation."""

    pattern: str
    kernel: Union[int, str] = 3
    stride: Union[int, str] = 1
    dilation: int = 1
    kind: str = "conv"
    skip_pointwise: bool = False  # leave layers with a 1x1 spatial kernel per-frame
    required: bool = True  # a required rule that matches no layer is an error

    def __post_init__(self):
        if self.kind not in KINDS:
            raise PolicyError(f"rule {self.pattern!r}: kind must be one of {KINDS}, got {self.kind!r}")
        for name, value, symbol in (("kernel", self.kernel, "k"), ("stride", self.stride, "s")):
            if isinstance(value, str):
                if value != symbol:
                    raise PolicyError(f"rule {self.pattern!r}: {name} must be an int >= 1 or {symbol!r}, got {value!r}")
            elif not isinstance(value, int) or value < 1:
                raise PolicyError(
                    f"rule {self.pattern!r}: temporal {name} must be an int >= 1, got {value!r}")
        if not isinstance(self.dilation, int) or self.dilation < 1:
            raise PolicyError(f"rule {self.pattern!r}: temporal dilation must be an int >= 1, got {self.dilation!r}")
        if self.pattern.startswith("re:"):
            try:
                re.compile(self.pattern[3:])
            except re.error as e:
                raise PolicyError(f"rule {self.pattern!r}: bad regular expression: {e}") from None

    def matches(self, layer: LayerInfo) -> bool:
        if self.kind != "any" and self.kind != layer.kind:
            return False
        if self.skip_pointwise and layer.kernel == (1, 1):
            return False
        if self.pattern.startswith("re:"):
            return re.fullmatch(self.pattern[3:], layer.path) is not None
        return fnmatch.fnmatchcase(layer.path, self.pattern)

    def spec_for(self, layer: LayerInfo) -> TemporalSpec:
        kh, kw = layer.kernel
        kernel = (kh if kh == kw else 1) if self.kernel == "k" else self.kernel
        stride = (layer.stride[0] if layer.stride[0] == layer.stride[1] else 1) if self.stride == "s" else self.stride
        return TemporalSpec(kernel, stride, self.dilation)

    def to_text(self) -> str:
        text = f"{self.kind}:{self.pattern}={self.kernel}"
        if self.stride != 1 or self.dilation != 1:
            text += f"/{self.stride}"
        if self.dilation != 1:
            text += f"/{self.dilation}"
        return text + (" (1x1 convs stay per-frame)" if self.skip_pointwise else "")


@dataclass(frozen=True)
class Policy:
    """An ordered list of :class:`Rule`; the first matching rule decides."""

    rules: tuple[Rule, ...]
    name: str = "custom"
    notes: str = ""

    def spec_for(self, layer: LayerInfo) -> tuple[TemporalSpec, int] | None:
        """The temporal spec for ``layer`` and the index of the rule that gave it, or None."""
        for i, rule in enumerate(self.rules):
            if rule.matches(layer):
                return rule.spec_for(layer), i
        return None

    def to_dict(self) -> dict:
        return {"name": self.name, "notes": self.notes, "rules": [asdict(r) for r in self.rules]}

    @classmethod
    def from_dict(cls, data: dict) -> "Policy":
        return cls(tuple(Rule(**r) for r in data["rules"]), data.get("name", "custom"), data.get("notes", ""))

    @classmethod
    def uniform(cls, time_kernel: int) -> "Policy":
        """The plain-int policy: every conv with a spatial kernel above 1 gets ``time_kernel``."""
        return cls((Rule("*", kernel=time_kernel, skip_pointwise=True),), name=f"uniform{time_kernel}")

    def to_text(self) -> str:
        return "; ".join(r.to_text() for r in self.rules)


_RULE_TEXT = re.compile(r"^(?:(conv|pool|any):)?([^=]+)=(k|\d+)(?:/(s|\d+))?(?:/(\d+))?$")


def parse_rules(text: str) -> tuple[Rule, ...]:
    """Parse the text form (see the module docstring) into rules."""
    rules = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        m = _RULE_TEXT.match(part.replace(" ", ""))
        if not m:
            raise PolicyError(
                f"cannot parse policy rule {part!r}; expected [conv:|pool:|any:]PATTERN=KERNEL[/STRIDE[/DILATION]], "
                "for example 'layer4.*.conv2=3' or 'pool:maxpool=1/2'")
        kind, pattern, kernel, stride, dilation = m.groups()
        rules.append(Rule(
            pattern=pattern, kind=kind or "conv",
            kernel=kernel if kernel == "k" else int(kernel),
            stride=1 if stride is None else (stride if stride == "s" else int(stride)),
            dilation=1 if dilation is None else int(dilation)))
    if not rules:
        raise PolicyError(f"policy text {text!r} holds no rules")
    return tuple(rules)


# ----------------------------------------------------------------------------------------------------
# Presets. Each takes the list of inflatable layers (in module order) and returns a Policy.

def _i3d(layers: list[LayerInfo]) -> Policy:
    convs = [l for l in layers if l.kind == "conv"]
    max_pools = [l for l in layers if l.kind == "pool" and "Max" in l.cls]
    rules = []
    if convs:  # the stem conv: kt = k with temporal stride 2 (Conv3d_1a_7x7 is 7x7x7 / 2)
        rules.append(Rule(convs[0].path, kernel="k", stride=2))
    # the first two max pools stay spatial (MaxPool3d_2a/3a are 1x3x3); later ones pool time as space
    for pool in max_pools[:2]:
        rules.append(Rule(pool.path, kernel=1, stride=1, kind="pool"))
    rules.append(Rule("*", kernel="k", stride=1, kind="conv"))
    if len(max_pools) > 2:
        rules.append(Rule("*", kernel="k", stride="s", kind="pool", required=False))
    return Policy(tuple(rules), "i3d", "I3D (Carreira & Zisserman 2017): kt = k, stem stride 2 in time, "
                  "first two max pools spatial only, later max pools kt = k with temporal stride = spatial stride")


def _resnet_blocks(layers: list[LayerInfo], preset: str) -> dict[int, int]:
    counts: dict[int, int] = {}
    for l in layers:
        m = re.fullmatch(r"layer([1-4])\.(\d+)\.conv1", l.path)
        if m:
            counts[int(m.group(1))] = max(counts.get(int(m.group(1)), 0), int(m.group(2)) + 1)
    if sorted(counts) != [1, 2, 3, 4]:
        raise PolicyError(
            f"preset {preset!r} targets ResNet-style models with blocks layer1..layer4 (layerN.i.conv1); "
            "this model has none. Use the rule language instead, for example --policy 'conv:*=3'.")
    return counts


I3D_R50_INFLATE = ((1, 1, 1), (1, 0, 1, 0), (1, 0, 1, 0, 1, 0), (0, 1, 0))


def _i3d_3x1x1(layers: list[LayerInfo]) -> Policy:
    counts = _resnet_blocks(layers, "i3d_3x1x1")
    rules = [Rule("conv1", kernel=5, stride=2), Rule("maxpool", kernel=1, stride=2, kind="pool")]
    for stage, pattern in enumerate(I3D_R50_INFLATE, start=1):
        n = counts[stage]
        flags = [pattern[i % len(pattern)] for i in range(n)]
        rules += [Rule(f"layer{stage}.{i}.conv1", kernel=3) for i, f in enumerate(flags) if f]
    return Policy(tuple(rules), "i3d_3x1x1",
                  "MMAction2 I3D-R50 3x1x1: stem 5x7x7 / 2, stem pool temporal stride 2, bottleneck conv1 3x1x1 "
                  "per inflate=((1,1,1),(1,0,1,0),(1,0,1,0,1,0),(0,1,0)). MMAction2's extra pool2 after res2 is "
                  "not a layer of the 2D model and is not added.")


def _slow(layers: list[LayerInfo]) -> Policy:
    _resnet_blocks(layers, "slow")
    return Policy((Rule("layer3.*.conv1", kernel=3), Rule("layer4.*.conv1", kernel=3)), "slow",
                  "SlowFast's Slow pathway: temporal kernel 3 only in the first 1x1 conv of res4 and res5 blocks")


def _tubelet(layers: list[LayerInfo]) -> Policy:
    return Policy((Rule("*patch_embed*", kernel=2, stride=2),), "tubelet",
                  "ViViT tubelet embedding: the patch embedding becomes 2xPxP with temporal stride 2")


PRESETS: dict[str, Callable[[list[LayerInfo]], Policy]] = {
    "i3d": _i3d,
    "i3d_3x1x1": _i3d_3x1x1,
    "slow": _slow,
    "tubelet": _tubelet,
}


PER_FRAME = Policy((), "per_frame", "no layer inflated: the 2D network on each frame, logits averaged over time "
                   "(a baseline with no temporal modelling)")


def resolve_policy(policy, time_kernel: int, layers: list[LayerInfo]) -> Policy:
    """Turn what the user gave (None, a preset name, rule text, rules, a dict or a Policy) into a Policy."""
    if policy is None:
        if not isinstance(time_kernel, int) or time_kernel < 1:
            raise PolicyError(f"time_kernel must be an int >= 1, got {time_kernel!r}")
        return Policy.uniform(time_kernel)
    if isinstance(policy, Policy):
        return policy
    if isinstance(policy, Rule):
        return Policy((policy,))
    if isinstance(policy, dict):
        return PER_FRAME if policy.get("name") == "per_frame" else Policy.from_dict(policy)
    if isinstance(policy, str):
        if policy == "per_frame":
            return PER_FRAME
        if policy in PRESETS:
            return PRESETS[policy](layers)
        if "=" not in policy:
            raise PolicyError(f"unknown policy preset {policy!r}; presets are {sorted(PRESETS)}, "
                              "or give rules such as 'layer4.*.conv2=3'")
        return Policy(parse_rules(policy))
    if isinstance(policy, Iterable):
        rules = tuple(policy)
        if not all(isinstance(r, Rule) for r in rules):
            raise PolicyError("a policy given as a sequence must hold inflate.Rule objects")
        return Policy(rules)
    raise PolicyError(f"cannot use {type(policy).__name__} as a policy; give a preset name, rule text, "
                      "a Policy or a list of Rule")


def check_coverage(policy: Policy, used: set[int], layers: list[LayerInfo]) -> None:
    """Raise if the policy matched nothing, or if a required rule matched no layer (``per_frame`` is meant to)."""
    if policy.name == "per_frame":
        return
    def sample(kind):
        names = [l.path for l in layers if kind in ("any", l.kind)][:8]
        return ", ".join(names) if names else "(none)"
    if not used:
        raise PolicyError(
            f"policy {policy.name!r} ({policy.to_text()}) matched no layer of this model. "
            f"Its conv layers include: {sample('conv')}; its pool layers include: {sample('pool')}.")
    for i, rule in enumerate(policy.rules):
        if rule.required and i not in used:
            raise PolicyError(
                f"policy rule {rule.to_text()!r} matched no {rule.kind} layer (or every layer it matches was "
                f"taken by an earlier rule). {rule.kind} layers include: {sample(rule.kind)}. "
                "Fix the pattern, or build the Rule with required=False.")


__all__ = ["Rule", "Policy", "TemporalSpec", "LayerInfo", "PolicyError", "PRESETS", "parse_rules",
           "resolve_policy", "check_coverage"]
