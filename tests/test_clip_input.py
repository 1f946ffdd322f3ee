"""Clips in every form users hold them (numpy from PyAV/OpenCV, torch tensors, lists of PIL images or arrays;
uint8 or float; THWC or CTHW) give the same preprocessed tensor; anything else is refused with what was expected."""
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

import zoo
from zoo.clip_input import as_clip
from zoo.preprocess import FlowPreprocess, RGBPreprocess
from zoo.data.decode import flow_from_rgb_encoding


def _frames(t, h, w, c=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(t, h, w, c), dtype=np.uint8)


def _forms(frames: np.ndarray):
    """The same clip as users pass it."""
    t = torch.from_numpy(frames)
    yield "numpy THWC", frames
    yield "numpy THWC, non-contiguous", np.ascontiguousarray(frames[:, ::-1])[:, ::-1]
    yield "tensor THWC", t
    yield "tensor CTHW", t.permute(3, 0, 1, 2)
    yield "numpy CTHW", frames.transpose(3, 0, 1, 2)
    yield "list of HWC arrays", list(frames)
    yield "tuple of HWC tensors", tuple(t)
    yield "list of CHW tensors", [f.permute(2, 0, 1) for f in t]
    if frames.shape[-1] == 3:
        yield "list of PIL images", [Image.fromarray(f) for f in frames]


@given(t=st.integers(1, 4), h=st.integers(8, 14), w=st.integers(8, 14), seed=st.integers(0, 2**16))
def test_every_form_gives_the_same_rgb_input(t, h, w, seed):
    frames = _frames(t, h, w, seed=seed)
    prep = RGBPreprocess(fps=25, short_side=8, crop=8)
    expected = prep(torch.from_numpy(frames))
    assert expected.shape == (3, t, 8, 8)
    for what, form in _forms(frames):
        torch.testing.assert_close(prep(form), expected, msg=what)
    # float in [0, 1] instead of uint8: the same up to uint8 rounding of the resize
    as_float = prep(frames.astype(np.float32) / 255)
    torch.testing.assert_close(as_float, expected, atol=2 * 2 / 255, rtol=0)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64, np.float16])
def test_as_clip_layout_and_dtype(dtype):
    frames = _frames(2, 5, 7).astype(dtype)
    clip = as_clip(frames, channels=3)
    assert clip.shape == (3, 2, 5, 7)
    assert clip.dtype == (torch.uint8 if dtype == np.uint8 else torch.from_numpy(np.zeros(1, dtype)).dtype)
    torch.testing.assert_close(clip.permute(1, 2, 3, 0), torch.from_numpy(frames))


def test_three_frames_of_three_channels_are_thwc_unless_told():
    frames = _frames(3, 6, 3)  # (3, 6, 3, 3): both first and last axis could be channels
    assert torch.equal(as_clip(frames), torch.from_numpy(frames).permute(3, 0, 1, 2))
    assert torch.equal(as_clip(frames, layout="CTHW"), torch.from_numpy(frames))


def test_readme_line_with_numpy_frames():
    frames_uint8_THWC = _frames(8, 32, 40)
    x = zoo.info("i3d_inception_k400_rgb").transform(frames_uint8_THWC, fps=30)[None]
    assert x.shape == (1, 3, 7, 224, 224) and x.dtype == torch.float32 and -1 <= x.min() <= x.max() <= 1


def test_flow_accepts_numpy_and_lists():
    flow = np.random.default_rng(0).normal(0, 5, size=(3, 10, 12, 2)).astype(np.float32)
    prep = FlowPreprocess(short_side=8, crop=8)
    expected = prep(torch.from_numpy(flow))
    torch.testing.assert_close(prep(flow), expected)
    torch.testing.assert_close(prep(list(flow)), expected)
    torch.testing.assert_close(prep(flow.transpose(3, 0, 1, 2)), expected)
    encoded = _frames(2, 6, 6)
    torch.testing.assert_close(flow_from_rgb_encoding(encoded), flow_from_rgb_encoding(torch.from_numpy(encoded)))


@pytest.mark.parametrize("bad, words", [
    ("clip.mp4", r"is a str.*zoo.data.decode.read_frames"),
    (np.zeros((4, 8, 8), np.uint8), r"4-dimensional.*\(T, H, W, C\).*\(C, T, H, W\).*got shape \(4, 8, 8\)"),
    (np.zeros((1, 3, 4, 8, 8), np.uint8), r"got shape \(1, 3, 4, 8, 8\).*x\[0\]"),
    (np.zeros((4, 8, 8, 5), np.uint8), r"3 channels.*\(4, 8, 8, 5\)"),
    (np.zeros((2, 8, 8, 3), np.int64), r"uint8 or float.*int64"),
    (np.zeros((2, 8, 8, 3), bool), r"uint8 or float.*bool"),
    ([], r"no frames"),
    ([np.zeros((8, 8, 3), np.uint8), np.zeros((6, 8, 3), np.uint8)], r"frame 1.*\(6, 8, 3\).*frame 0.*\(8, 8, 3\)"),
    ([np.zeros((8, 8, 3), np.uint8), "x"], r"frame 1.*str"),
])
def test_bad_input_says_what_was_expected(bad, words):
    with pytest.raises((TypeError, ValueError), match=words):
        RGBPreprocess(short_side=8, crop=8)(bad)


def test_layout_must_be_known():
    with pytest.raises(ValueError, match="layout"):
        as_clip(_frames(2, 4, 4), layout="TCHW")


def test_i3d_given_raw_frames_points_to_the_transform():
    model = zoo.load("i3d_inception_k400_rgb", pretrained=False)
    with pytest.raises(ValueError, match=r"zoo.info\(name\).transform\(frames\)"):
        model(_frames(2, 8, 8))
