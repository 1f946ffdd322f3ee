"""Inflation of real timm and torchvision layers: TF-SAME convs, weight standardisation, LayerNorm2d, GN,
attention, patch embeddings as tubelets, pools. Float64 so that exactness is checked, not rounding."""
import pytest
import timm
import torch
import torch.nn as nn
from timm.layers import Conv2dSame, ScaledStdConv2d, ScaledStdConv2dSame, StdConv2d, StdConv2dSame

import inflate

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def boring_err(m2, video, frames=3, size=32, chans=3):
    m2, video = m2.double().eval(), video.double().eval()
    x = torch.randn(2, chans, size, size, dtype=torch.float64)
    with torch.no_grad():
        y2, y3 = m2(x), video(x[:, :, None].expand(-1, -1, frames, -1, -1))
    return ((y3 - y2).abs().max() / y2.abs().max()).item()


@pytest.mark.parametrize("conv_cls,kwargs", [
    (Conv2dSame, dict(stride=2)),
    (StdConv2d, dict(padding=1)),
    (StdConv2dSame, dict(stride=2)),
    (ScaledStdConv2d, dict(padding=1)),
    (ScaledStdConv2dSame, dict(stride=2)),
])
@pytest.mark.parametrize("init", inflate.INIT_MODES)
def test_timm_conv_subclasses_are_exact(conv_cls, kwargs, init):
    torch.manual_seed(0)
    m2 = nn.Sequential(conv_cls(3, 8, 3, **kwargs), nn.ReLU(), conv_cls(8, 4, 5, **kwargs))
    with torch.no_grad():
        for p in m2.parameters():
            p.normal_()
    video = inflate.inflate(m2.double(), init=init)
    assert video.config["inflated"]["conv"] == 2 and not video.config["kept_per_frame"]
    assert boring_err(m2, video, size=17) < 1e-10


@pytest.mark.parametrize("name,size,extra", [
    ("test_resnet", 32, {}),
    ("test_convnext", 32, {}),           # LayerNorm2d, depthwise 7x7
    ("test_efficientnet", 32, {}),       # depthwise, SE, BN
    ("test_efficientnet_gn", 32, {}),    # GroupNorm
    ("test_nfnet", 32, {}),              # ScaledStdConv2d
    ("test_vit", 32, {"img_size": 32}),  # attention, patch embedding
    ("test_byobnet", 32, {}),
    ("tf_mobilenetv3_small_minimal_100", 32, {}),  # Conv2dSame, TF padding
])
def test_timm_families_are_boring_exact(name, size, extra):
    m2 = timm.create_model(name, **extra).double()
    video = inflate.inflate(m2)
    assert video.config["inflated"]["conv"] >= 1
    assert boring_err(m2, video, size=size) < 1e-10


def test_swin_patch_embedding_becomes_a_strided_tubelet():
    m2 = timm.create_model("swin_tiny_patch4_window7_224", img_size=56, embed_dim=24, depths=(1, 1), num_heads=(1, 1)).double()
    video = inflate.inflate(m2, policy="tubelet")
    proj = video.net.patch_embed.proj
    assert isinstance(proj, inflate.InflatedConv) and proj.weight.shape[2] == 2 and proj.time_stride == 2
    x = torch.randn(1, 3, 56, 56, dtype=torch.float64)
    video, m2 = video.double().eval(), m2.double().eval()
    with torch.no_grad():
        per_time = video(x[:, :, None].expand(-1, -1, 6, -1, -1), reduce_time=False)
        assert per_time.shape == (1, 3, 1000)  # 6 frames -> 3 tubelets
        torch.testing.assert_close(per_time, m2(x)[:, None].expand(-1, 3, -1), rtol=1e-10, atol=1e-10)


def test_torchvision_googlenet_with_i3d_preset_pools_time():
    import torchvision
    m2 = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False).eval().double()
    video = inflate.inflate(m2, policy="i3d")
    assert video.net.conv1.conv.time_stride == 2 and video.net.conv1.conv.weight.shape[2] == 7
    pools = {n: m for n, m in video.net.named_modules() if isinstance(m, inflate.InflatedPool)}
    assert pools["maxpool3"].time_kernel == 3 and pools["maxpool3"].time_stride == 2
    assert pools["maxpool4"].time_kernel == 2 and pools["maxpool4"].time_stride == 2
    assert "maxpool1" not in pools and "maxpool2" not in pools
    with torch.no_grad():
        per_time = video.eval()(torch.randn(1, 3, 16, 64, 64, dtype=torch.float64), reduce_time=False)
    assert per_time.shape == (1, 2, 1000)  # 16 -> conv1 /2 -> 8 -> maxpool3 /2 -> 4 -> maxpool4 /2 -> 2
    assert boring_err(m2, video, frames=8, size=64) < 1e-10


def test_resnet_presets_match_their_recipes():
    m2 = timm.create_model("resnet50")
    i3d = inflate.inflate(m2, policy="i3d_3x1x1")
    shapes = {n: tuple(m.weight.shape[2:]) for n, m in i3d.net.named_modules() if isinstance(m, inflate.InflatedConv)}
    assert shapes["conv1"] == (5, 7, 7) and i3d.net.conv1.time_stride == 2
    assert i3d.net.maxpool.time_stride == 2
    flags = [[int(f"layer{s}.{b}.conv1" in shapes) for b in range(n)] for s, n in zip(range(1, 5), (3, 4, 6, 3))]
    assert flags == [[1, 1, 1], [1, 0, 1, 0], [1, 0, 1, 0, 1, 0], [0, 1, 0]]
    assert all(shapes[f"layer{s}.{b}.conv1"] == (3, 1, 1) for s, n in zip(range(1, 5), (3, 4, 6, 3))
               for b in range(n) if f"layer{s}.{b}.conv1" in shapes)
    slow = inflate.inflate(m2, policy="slow")
    inflated = sorted(n for n, m in slow.net.named_modules() if isinstance(m, inflate.InflatedConv))
    assert inflated == sorted([f"layer3.{b}.conv1" for b in range(6)] + [f"layer4.{b}.conv1" for b in range(3)])


def test_forward_features_keeps_time():
    video = inflate.from_timm("test_resnet", time_kernel=3)
    with torch.no_grad():
        f = video.eval().forward_features(torch.randn(2, 3, 4, 32, 32))
    assert f.dim() == 5 and f.shape[0] == 2 and f.shape[2] == 4  # (B, C, T, h, w)
    import torchvision
    tv = inflate.from_torchvision("resnet18")
    with torch.no_grad():
        g = tv.forward_features(torch.randn(2, 3, 4, 32, 32))
    assert g.shape == (2, 4, 512)
