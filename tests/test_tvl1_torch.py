"""The PyTorch TV-L1 (zoo.flow.tvl1_torch) against OpenCV's DualTVL1, ground truth and its symmetry laws,
and `quovadis flow --algorithm tvl1-torch` end to end."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

cv2 = pytest.importorskip("cv2")
from zoo.flow.extract import tvl1_available  # noqa: E402
from zoo.flow.videos import read_gray_frames  # noqa: E402
from zoo.flow.tvl1_torch import (centered_gradient, median_blur, pyramid_sizes, resize_linear, tvl1_flow,  # noqa: E402
                                 warp_cubic)

GIF = Path(__file__).parent / "data" / "v_CricketShot_g04_c01_rgb_16f.gif"
needs_tvl1 = pytest.mark.skipif(not tvl1_available(), reason="needs opencv-contrib (cv2.optflow)")
FAST = dict(stopping="fixed", nscales=2, warps=2, outer_iterations=3, inner_iterations=10)  # laws, not defaults


def texture(seed: int, h: int, w: int, sigma: float = 1.5) -> np.ndarray:
    """Smoothed noise, uint8 on 0-255 (contrast everywhere, so flow is well posed)."""
    noise = np.random.default_rng(seed).random((h, w)).astype(np.float32)
    t = cv2.GaussianBlur(noise, (0, 0), sigma)
    t = (t - t.min()) / (t.max() - t.min())
    return np.rint(t * 255).astype(np.uint8)


def opencv_tvl1(f0: np.ndarray, f1: np.ndarray) -> np.ndarray:
    cv2.setNumThreads(1)
    tv = cv2.optflow.DualTVL1OpticalFlow_create()
    return np.stack([tv.calc(a, b, None) for a, b in zip(f0, f1)])


def epe(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.norm(a - b, axis=-1)


# ------------------------------------------------------------------------------------ building blocks
@settings(max_examples=10, deadline=None)
@given(h=st.integers(16, 60), w=st.integers(16, 60), seed=st.integers(0, 2**16))
def test_pyramid_resizes_are_cv2_resize_inter_linear(h, w, seed):
    img = np.random.default_rng(seed).random((h, w), dtype=np.float32) * 255
    sizes = pyramid_sizes(h, w, 2, 0.8)
    down = cv2.resize(img, None, fx=0.8, fy=0.8, interpolation=cv2.INTER_LINEAR)
    if len(sizes) == 2:
        assert sizes[1] == down.shape
        ours = resize_linear(torch.from_numpy(img)[None], down.shape, (0.8, 0.8))[0].numpy()
        np.testing.assert_allclose(ours, down, atol=1e-3)
    up = cv2.resize(down, (w, h), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(resize_linear(torch.from_numpy(down)[None], (h, w))[0].numpy(), up, atol=5e-3)


@settings(max_examples=10, deadline=None)
@given(h=st.integers(8, 40), w=st.integers(8, 40), seed=st.integers(0, 2**16), spread=st.floats(0.1, 6))
def test_cpu_warp_is_cv2_remap_inter_cubic(h, w, seed, spread):
    rng = np.random.default_rng(seed)
    img = rng.random((h, w), dtype=np.float32) * 255
    u = (rng.standard_normal((2, h, w)) * spread).astype(np.float32)
    mx = (np.arange(w)[None] + u[0]).astype(np.float32)
    my = (np.arange(h)[:, None] + u[1]).astype(np.float32)
    ref = cv2.remap(img, mx, my, cv2.INTER_CUBIC)           # BORDER_CONSTANT 0
    ours = warp_cubic(torch.from_numpy(img)[None, None], torch.from_numpy(u)[None])[0, 0].numpy()
    np.testing.assert_allclose(ours, ref, atol=2e-3)


@settings(max_examples=10, deadline=None)
@given(h=st.integers(5, 30), w=st.integers(5, 30), k=st.sampled_from([3, 5]), seed=st.integers(0, 2**16),
       levels=st.integers(2, 300))
def test_median_is_cv2_median_blur_on_float(h, w, k, seed, levels):
    img = np.random.default_rng(seed).integers(0, levels, (h, w)).astype(np.float32) / 7  # ties too
    np.testing.assert_array_equal(median_blur(torch.from_numpy(img)[None], k)[0].numpy(), cv2.medianBlur(img, k))


def test_centered_gradient_halves_the_one_sided_difference_at_borders():
    img = torch.tensor([[0.0, 2.0, 6.0], [1.0, 1.0, 1.0], [4.0, 0.0, 3.0]])
    g = centered_gradient(img[None])[0]
    assert g[0, 0].tolist() == [1.0, 3.0, 2.0]                       # d/dx of row 0: (2-0)/2, (6-0)/2, (6-2)/2
    assert g[1, :, 0].tolist() == [0.5, 2.0, 1.5]                    # d/dy of column 0


# ------------------------------------------------------------------------------------ laws
@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**16), n=st.integers(1, 3), h=st.integers(17, 40), w=st.integers(17, 40))
def test_identical_frames_give_exactly_zero_flow(seed, n, h, w):
    frames = np.stack([texture(seed + i, h, w) for i in range(n)])
    flow = tvl1_flow(frames, frames, nscales=2, warps=2, outer_iterations=2, inner_iterations=5)
    assert flow.shape == (n, h, w, 2) and not flow.abs().max()


@settings(max_examples=3, deadline=None)
@given(seed=st.integers(0, 2**16), dx=st.integers(-2, 2), dy=st.integers(-2, 2))
def test_translated_texture_gives_the_translation(seed, dx, dy):
    big = texture(seed, 48 + 8, 48 + 8)
    f0 = big[4:-4, 4:-4]
    f1 = big[4 - dy:4 - dy + 48, 4 - dx:4 - dx + 48]                 # frame1(p + d) = frame0(p)
    flow = tvl1_flow(f0, f1)[0].numpy()
    inner = flow[8:-8, 8:-8].reshape(-1, 2)
    np.testing.assert_allclose(np.median(inner, 0), [dx, dy], atol=0.05)
    assert np.abs(inner - [dx, dy]).mean() < 0.1


@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 2**16), dx=st.floats(-2, 2), dy=st.floats(-2, 2),
       op=st.sampled_from(["transpose", "flip_x", "flip_y"]))
def test_transposing_or_mirroring_both_frames_transforms_the_flow(seed, dx, dy, op):
    f0 = texture(seed, 40, 36)
    f1 = cv2.warpAffine(f0, np.float32([[1, 0, dx], [0, 1, dy]]), (36, 40), flags=cv2.INTER_CUBIC,
                        borderMode=cv2.BORDER_REFLECT)
    flow = tvl1_flow(f0, f1, **FAST)[0].numpy()
    if op == "transpose":
        t = lambda a: np.ascontiguousarray(a.swapaxes(0, 1))          # noqa: E731
        expect = t(flow)[..., ::-1]                                     # (x, y) components swap
    else:
        axis = 1 if op == "flip_x" else 0
        t = lambda a: np.ascontiguousarray(np.flip(a, axis))          # noqa: E731
        expect = t(flow) * ([-1, 1] if op == "flip_x" else [1, -1])
    got = tvl1_flow(t(f0), t(f1), **FAST)[0].numpy()
    err = epe(got, expect)
    # transposing is an exact symmetry of the scheme (up to float rounding); mirroring turns its forward
    # differences into backward ones, so it holds to the discretisation
    assert err.mean() < (1e-3 if op == "transpose" else 0.1), err.mean()


# ------------------------------------------------------------------------------------ agreement
@needs_tvl1
def test_agrees_with_opencv_on_the_cricket_clip_and_a_generated_clip():
    """Defaults, real decoded video (2 pairs at 112x112 to keep CI fast; the README has 224x224)
    and a generated moving-shape clip (2 pairs at 64x64): mean EPE <= 0.05 px, p99 <= 0.5 px."""
    from zoo.data.synthetic import random_appearance, render_moving_shape

    gif = read_gray_frames(GIF, size=112)[0][:3]
    rng = np.random.default_rng(3)
    rgb = render_moving_shape("MoveUpRight", 3, 64, rng, appearance=random_appearance(rng, 64))
    syn = np.stack([cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in rgb])
    for gray in (gif, syn):
        ref = opencv_tvl1(gray[:-1], gray[1:])
        ours = tvl1_flow(gray[:-1], gray[1:]).numpy()
        e = epe(ours, ref)
        assert e.mean() <= 0.05 and np.percentile(e, 99) <= 0.5, (e.mean(), np.percentile(e, 99))


def affine_pair(kind: str, size: int = 64, seed: int = 7):
    """(frame0, frame1, true flow): frame1 is frame0 moved by a known affine motion about the centre."""
    c = (size - 1) / 2
    a = {"translation": np.float64([[1, 0, 1.3], [0, 1, -0.6]]),
         "rotation": cv2.getRotationMatrix2D((c, c), 3.0, 1.0),
         "zoom": cv2.getRotationMatrix2D((c, c), 0.0, 1.05)}[kind]
    big = texture(seed, size, size, sigma=2.0).astype(np.float32)
    f1 = cv2.warpAffine(big, a, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    true = np.stack([a[0, 0] * xs + a[0, 1] * ys + a[0, 2] - xs, a[1, 0] * xs + a[1, 1] * ys + a[1, 2] - ys], -1)
    return big.astype(np.uint8), np.clip(np.rint(f1), 0, 255).astype(np.uint8), true.astype(np.float32)


@needs_tvl1
def test_against_ground_truth_no_worse_than_opencv():
    """Translation, rotation and zoom of a texture: our mean EPE to the true flow <= OpenCV's + 0.02 px."""
    pairs = [affine_pair(k) for k in ("translation", "rotation", "zoom")]
    f0, f1, true = (np.stack(x) for x in zip(*pairs))
    inner = (slice(None), slice(8, -8), slice(8, -8))
    ref, ours = opencv_tvl1(f0, f1), tvl1_flow(f0, f1).numpy()
    for k, name in enumerate(("translation", "rotation", "zoom")):
        theirs, mine = epe(ref[k], true[k])[inner[1:]].mean(), epe(ours[k], true[k])[inner[1:]].mean()
        assert mine <= theirs + 0.02, (name, mine, theirs)
        assert mine < 0.3, (name, mine)                  # and both actually recover the motion


def test_cuda_variant_differs_from_cpu_only_by_its_warp_kernel():
    """As OpenCV's own CPU-vs-CUDA test: with the median off and the same iteration count, the two
    flavours differ only in the bicubic warp (a = -0.5 normalised vs a = -0.75) -- a small difference."""
    gray = read_gray_frames(GIF, size=48)[0][:2]
    common = dict(nscales=3, warps=3, stopping="fixed")
    cpu = tvl1_flow(gray[:1], gray[1:], median_filtering=1, outer_iterations=1, inner_iterations=30, **common)
    cuda = tvl1_flow(gray[:1], gray[1:], variant="cuda", iterations=30, **common)
    assert 0 < epe(cuda.numpy(), cpu.numpy()).mean() < 0.05


def test_frozen_mask_path_equals_the_compacting_path():
    """On a GPU stopped samples are frozen by a mask (no host sync per iteration); on a CPU they leave
    the batch. Both follow OpenCV's per-image stopping rule, so they give the same flow."""
    gray = read_gray_frames(GIF, size=24)[0][:3]
    compacting = tvl1_flow(gray[:-1], gray[1:], check_every=1)
    masked = tvl1_flow(gray[:-1], gray[1:], check_every=1000)
    one_by_one = torch.cat([tvl1_flow(gray[i:i + 1], gray[i + 1:i + 2]) for i in range(2)])
    torch.testing.assert_close(masked, compacting, rtol=0, atol=1e-5)
    torch.testing.assert_close(one_by_one, compacting, rtol=0, atol=1e-5)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="same shape"):
        tvl1_flow(np.zeros((1, 20, 20), np.uint8), np.zeros((1, 20, 21), np.uint8))
    with pytest.raises(ValueError, match="grayscale"):
        tvl1_flow(np.zeros((1, 20, 20, 3), np.uint8), np.zeros((1, 20, 20, 3), np.uint8))
    with pytest.raises(ValueError, match="variant"):
        tvl1_flow(np.zeros((20, 20), np.uint8), np.zeros((20, 20), np.uint8), variant="gpu")


# ------------------------------------------------------------------------------------ extraction
def test_quovadis_flow_tvl1_torch_writes_resumes_and_shards(tmp_path, capsys):
    from zoo.cli.main import main
    from zoo.data.flow_store import read_flow
    from zoo.data.synthetic import make_moving_shapes

    src = make_moving_shapes(tmp_path / "src", classes=2, per_class=2, frames=3, size=24, corrupt=1)
    out = tmp_path / "flow"
    args = ["flow", str(src), str(out), "--algorithm", "tvl1-torch", "--size", "0", "--batch-size", "4",
            "--workers", "1", "--no-progress"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)                 # shard 0 may hold the corrupt video
        main(args + ["--shard", "0/2"])                                # decoding in a worker process
    done0 = sorted(p.parent.name for p in out.rglob("meta.json"))           # a.mp4: names keep the extension
    assert 1 <= len(done0) <= 3
    with pytest.warns(RuntimeWarning, match="flow extraction failed"):
        assert main(args[:-3] + ["--workers", "0", "--no-progress"]) == 1  # the corrupt video fails, loudly
    done = sorted(p.parent.name for p in out.rglob("meta.json"))
    assert len(done) == 4 and set(done0) < set(done)
    assert f"{len(done0)} already complete" in capsys.readouterr().out  # the shard's videos were resumed
    video = next(p for p in src.rglob("*.mp4") if p.name in done)
    dest = out / video.parent.name / video.name
    meta = json.loads((dest / "meta.json").read_text())
    assert meta["algorithm"] == "tvl1-torch" and meta["num_frames"] == 2 and meta["height"] == 24
    gray = read_gray_frames(video)[0]
    expect = np.clip(tvl1_flow(gray[:-1], gray[1:]).numpy(), -20, 20)
    assert np.abs(read_flow(dest) - expect).max() < 1.5                 # jpg95 quantisation
