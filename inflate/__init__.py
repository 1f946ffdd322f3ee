"""quovadis.inflate: turn any 2D image network into an exact 3D video network (I3D inflation).

    >>> import inflate
    >>> video = inflate.from_timm("resnet50", time_kernel=3)          # (B, 3, T, H, W) -> (B, 1000)
    >>> video = inflate.from_timm("resnet50", policy="i3d_3x1x1")      # MMAction2's I3D-R50 recipe
    >>> video = inflate.inflate(my_2d_model, policy="layer4.*.conv2=3; pool:maxpool=1/2", init="center")
"""
from inflate.builders import from_timm, from_torchvision
from inflate.engine import inflate
from inflate.kernel_init import INIT_MODES, inflate_kernel
from inflate.io import load, read_config, save
from inflate.layers import InflatedConv, InflatedPool
from inflate.padding import TIME_PADDING_MODES, same_output_length, same_padding
from inflate.policy import PRESETS, Policy, PolicyError, Rule, TemporalSpec, parse_rules
from inflate.report import boring_video_error, build_report
from inflate.video_model import VideoModel

__all__ = [
    "inflate", "from_timm", "from_torchvision", "save", "load", "read_config", "VideoModel",
    "InflatedConv", "InflatedPool", "Policy", "Rule", "TemporalSpec", "PolicyError", "PRESETS", "parse_rules",
    "INIT_MODES", "TIME_PADDING_MODES", "inflate_kernel", "same_padding", "same_output_length",
    "boring_video_error", "build_report",
]
__version__ = "0.1.0"
