"""quovadis export: ONNX (run in onnxruntime) and pt2 (torch.export.load) against the torch model."""
import numpy as np
import pytest
import torch

import inflate
import zoo
from zoo.cli.main import main
from zoo.models.export import export, onnx_session

pytest.importorskip("onnxruntime")
I3D_MIN = (9, 193)  # the smallest clip whose Mixed_5c map fits the 2x7x7 Logits pool


@pytest.fixture(scope="module")
def i3d():
    torch.manual_seed(0)
    return zoo.load("i3d_inception_k400_rgb", pretrained=False).eval()


def _check_onnx(model, path, x, tol):
    with torch.no_grad():
        ref = model(x).numpy()
    out = onnx_session(path).run(None, {"video": x.numpy()})[0]
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, rtol=0, atol=tol * max(1.0, float(np.abs(ref).max())))


def test_i3d_onnx_matches_torch_at_another_batch(i3d, tmp_path):
    frames, size = I3D_MIN
    export(i3d, tmp_path / "i3d.onnx", "onnx", frames=frames, size=size)
    _check_onnx(i3d, tmp_path / "i3d.onnx", torch.randn(3, 3, frames, size, size), 1e-4)


def test_i3d_pt2_reloads_and_matches_torch(i3d, tmp_path):
    frames, size = I3D_MIN
    export(i3d, tmp_path / "i3d.pt2", "pt2", frames=frames, size=size)
    program = torch.export.load(tmp_path / "i3d.pt2").module()
    x = torch.randn(1, 3, frames, size, size)
    with torch.no_grad():
        torch.testing.assert_close(program(x), i3d(x), rtol=1e-5, atol=1e-5)


def test_cli_exports_an_inflated_resnet18_file(tmp_path):
    torch.manual_seed(0)
    video = inflate.from_torchvision("resnet18", time_kernel=3).eval()
    inflate.save(video, tmp_path / "r18.safetensors")
    assert main(["export", str(tmp_path / "r18.safetensors"), "-o", str(tmp_path / "r18.onnx"),
                 "--frames", "4", "--size", "32"]) == 0
    _check_onnx(video, tmp_path / "r18.onnx", torch.randn(2, 3, 4, 32, 32), 1e-4)
    assert main(["export", str(tmp_path / "r18.safetensors"), "-o", str(tmp_path / "r18.pt2"),
                 "--frames", "4", "--size", "32"]) == 0
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(torch.export.load(tmp_path / "r18.pt2").module()(x), video(x),
                                   rtol=1e-5, atol=1e-5)


def test_unknown_format_names_the_formats(i3d, tmp_path):
    with pytest.raises(ValueError, match="formats are"):
        export(i3d, tmp_path / "x.tflite", "tflite")
    with pytest.raises(SystemExit, match="pass --format"):
        main(["export", "i3d_inception_k400_rgb", "--no-pretrained", "-o", str(tmp_path / "x.bin")])
