"""Clip positions (zoo.data.sampling) against plain-Python oracles written from the docstrings: training and
testing clips (the loop rule), fps resampling by rate and by timestamps, and the clips of ``quovadis features``
with their ``[start, end)`` frames and seconds. Pure index arithmetic: no video is decoded."""
from __future__ import annotations

import math
import random
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from zoo.data import sampling as S

sizes = st.integers(1, 40)


# ---------------------------------------------------------------- span, loop, argument checks

@given(clip=st.integers(1, 20), stride=st.integers(1, 5))
def test_span_counts_first_to_last_frame(clip, stride):
    assert S.span(clip, stride) == len(range(0, (clip - 1) * stride + 1))
    assert S.span(clip) == clip


def test_loop_is_position_modulo_length_for_any_position():
    assert S.loop(torch.tensor([-4, -1, 0, 2, 3, 7]), 3).tolist() == [2, 2, 0, 2, 0, 1]
    assert S.loop(torch.tensor([0, 5]), 1).tolist() == [0, 0]
    with pytest.raises(ValueError, match=r"^a video needs at least one frame, got num_frames=0$"):
        S.loop(torch.tensor([0]), 0)


@pytest.mark.parametrize("call", [
    lambda n, c, s: S.dense_indices(n, c, s),
    lambda n, c, s: S.uniform_clips(n, c, s),
    lambda n, c, s: S.whole_video_clips(n, c, s),
    lambda n, c, s: S.clip_starts(n, c, s),
])
def test_every_clip_function_refuses_empty_videos_and_empty_clips(call):
    call(1, 1, 1)                                                  # the smallest valid arguments
    with pytest.raises(ValueError, match=r"^a video needs at least one frame, got num_frames=0$"):
        call(0, 1, 1)
    with pytest.raises(ValueError, match=r"^a video needs at least one frame, got num_frames=-2$"):
        call(-2, 1, 1)
    with pytest.raises(ValueError, match=r"^clip_len and stride must be positive, got 0 and 1$"):
        call(5, 0, 1)
    with pytest.raises(ValueError, match=r"^clip_len and stride must be positive, got 2 and 0$"):
        call(5, 2, 0)


# ---------------------------------------------------------------- dense clips (training) and the loop rule

def dense_oracle(n: int, clip: int, stride: int, first: int) -> list[int]:
    return [(first + stride * i) % n for i in range(clip)]


@given(n=sizes, clip=st.integers(1, 12), stride=st.integers(1, 4), first=st.integers(-50, 50))
@example(n=5, clip=3, stride=2, first=-1)
def test_dense_indices_from_a_given_start(n, clip, stride, first):
    got = S.dense_indices(n, clip, stride, first)
    assert got.dtype == torch.long and got.tolist() == dense_oracle(n, clip, stride, first)
    assert S.dense_indices(n, clip, stride, np.int64(first)).tolist() == got.tolist()


@given(n=sizes, clip=st.integers(1, 12), stride=st.integers(1, 4))
@example(n=10, clip=3, stride=2)                                   # extra 5: centred at 2
@example(n=3, clip=4, stride=1)                                    # short: from frame 0
def test_dense_indices_centred_for_testing(n, clip, stride):
    extra = n - ((clip - 1) * stride + 1)
    assert S.dense_indices(n, clip, stride).tolist() == dense_oracle(n, clip, stride, max(extra, 0) // 2)


@pytest.mark.parametrize("source", ["random", "torch", "numpy", "python"])
@pytest.mark.parametrize(("n", "clip", "stride", "firsts"), [
    (8, 3, 2, set(range(4))),          # span 5: starts 0..3 never wrap, and every one of them is drawn
    (4, 6, 1, set(range(4))),          # the clip is longer than the video: any frame may start it
    (5, 5, 1, {0}),                    # exactly fits: one start
])
def test_dense_indices_random_start_is_uniform_over_the_starts_that_fit(source, n, clip, stride, firsts):
    rng = {"random": "random", "torch": torch.Generator().manual_seed(0), "numpy": np.random.default_rng(0),
           "python": random.Random(0)}[source]
    torch.manual_seed(0)
    drawn = [S.dense_indices(n, clip, stride, rng) for _ in range(80)]
    assert {int(d[0]) for d in drawn} == firsts
    assert all(d.tolist() == dense_oracle(n, clip, stride, int(d[0])) for d in drawn)


@pytest.mark.parametrize(("n", "clip", "stride"), [(6, 3, 2), (4, 9, 1)])
def test_dense_indices_random_starts_are_equally_likely(n, clip, stride):
    """Every start that fits (every frame, when none fits) is drawn about as often as the others."""
    extra = n - ((clip - 1) * stride + 1)
    starts = range(extra + 1) if extra >= 0 else range(n)
    rng = np.random.default_rng(1)
    counts = np.bincount([int(S.dense_indices(n, clip, stride, rng)[0]) for _ in range(2000)], minlength=n)
    expected = 2000 / len(starts)
    assert all(abs(counts[s] - expected) < 0.2 * expected for s in starts)
    assert counts.sum() == counts[list(starts)].sum()


def test_a_seeded_generator_gives_the_same_starts_whatever_the_global_seed():
    def draws(global_seed):
        torch.manual_seed(global_seed)
        g = torch.Generator().manual_seed(5)
        return [int(S.dense_indices(50, 4, 1, g)[0]) for _ in range(10)]
    assert draws(0) == draws(1)
    torch.manual_seed(2)                                           # "random": torch's global RNG, seeded
    a = [int(S.dense_indices(50, 4, 1, "random")[0]) for _ in range(10)]
    torch.manual_seed(2)
    assert a == [int(S.dense_indices(50, 4, 1, "random")[0]) for _ in range(10)]


def test_defaults_are_stride_one_and_one_clip():
    assert S.dense_indices(9, 3).tolist() == [3, 4, 5]
    assert S.uniform_clips(9, 3).tolist() == [[3, 4, 5]]
    assert S.whole_video_clips(9, 3) == 3


@pytest.mark.parametrize("bad", [True, 2.0, "centre", [1]])
def test_dense_indices_names_a_start_it_cannot_use(bad):
    with pytest.raises(TypeError, match=r"^start must be an int, None, 'random' or a random generator "
                                        r"\(torch, numpy or random\.Random\), got "):
        S.dense_indices(10, 3, 1, bad)


# ---------------------------------------------------------------- uniform multi-clip testing

def uniform_oracle_starts(n: int, clip: int, stride: int, k: int) -> list[int]:
    extra = n - ((clip - 1) * stride + 1)
    if k == 1:
        return [max(extra, 0) // 2]
    if extra >= 0:   # round(i * extra / (k - 1)), halves to even
        return [round(Fraction(extra * i, k - 1)) for i in range(k)]
    return [math.floor(Fraction(i * n, k)) for i in range(k)]


@given(n=st.integers(1, 3000), clip=st.integers(1, 12), stride=st.integers(1, 3), k=st.integers(1, 40))
@example(n=10, clip=4, stride=1, k=3)                              # extra 6: starts 0, 3, 6
@example(n=124, clip=1, stride=1, k=15)                            # start 7 at 61.5 exactly: 62 (linspace: 61)
@example(n=238, clip=1, stride=1, k=15)                            # start 7 at 118.5 exactly: 118 (linspace: 119)
@example(n=5, clip=8, stride=1, k=2)                               # short: starts 0, 2
@example(n=9, clip=4, stride=1, k=1)                               # one clip: centred
def test_uniform_clips_start_where_the_docstring_says(n, clip, stride, k):
    got = S.uniform_clips(n, clip, stride, k)
    want = [dense_oracle(n, clip, stride, s) for s in uniform_oracle_starts(n, clip, stride, k)]
    assert got.dtype == torch.long and got.tolist() == want


def test_uniform_clips_exact_starts_and_refusal():
    assert S.uniform_clips(10, 4, 1, 3)[:, 0].tolist() == [0, 3, 6]
    assert S.uniform_clips(11, 4, 1, 3)[:, 0].tolist() == [0, 4, 7]               # 3.5: halves to even
    assert S.uniform_clips(13, 4, 1, 3)[:, 0].tolist() == [0, 4, 9]               # 4.5 too
    assert S.uniform_clips(4, 4, 1, 2).tolist() == [[0, 1, 2, 3], [0, 1, 2, 3]]   # exactly one span: no spread
    assert S.uniform_clips(5, 8, 1, 2)[:, 0].tolist() == [0, 2]
    with pytest.raises(ValueError, match=r"^num_clips must be positive, got 0$"):
        S.uniform_clips(10, 4, 1, 0)


@given(n=st.integers(1, 300), clip=st.integers(1, 64), stride=st.integers(1, 3))
@example(n=10, clip=4, stride=1)
@example(n=8, clip=4, stride=1)
@example(n=3, clip=4, stride=1)
@example(n=10, clip=4, stride=2)                                   # span 7: two clips
def test_whole_video_clips_cover_the_video(n, clip, stride):
    k = S.whole_video_clips(n, clip, stride)
    span = (clip - 1) * stride + 1
    assert k == max(1, -(-n // span))
    assert k * span >= n and (k - 1) * span < n


# ---------------------------------------------------------------- fps resampling

FPS = [10.0, 12.0, 12.5, 15.0, 23.976, 24.0, 25.0, 29.97, 30.0, 50.0, 59.94, 60.0]


def resample_oracle(n: int, src: float, dst: float) -> list[int]:
    """Retimed frame k shows source frame floor(k * src / dst), for round(n / src * dst) frames (at least one),
    in exact decimal arithmetic (the fps as written)."""
    s, d = Fraction(str(src)), Fraction(str(dst))
    length = max(1, round(n / s * d))
    return [min(math.floor(k * s / d), n - 1) for k in range(length)]


@given(n=st.integers(1, 200), src=st.sampled_from(FPS), dst=st.sampled_from(FPS))
@example(n=10, src=30.0, dst=25.0)
@example(n=1, src=60.0, dst=10.0)                                  # 1/60 s at 10 fps: still one frame
@example(n=3, src=30.0, dst=10.0)
def test_resample_indices_against_exact_arithmetic(n, src, dst):
    x = Fraction(n) / Fraction(str(src)) * Fraction(str(dst))
    if x.denominator == 2:                                          # an exact half: float rounding decides
        return
    assert S.resample_indices(n, src, dst).tolist() == resample_oracle(n, src, dst)


def test_resample_indices_exact_values():
    assert S.resample_indices(10, 30.0, 25.0).tolist() == [0, 1, 2, 3, 4, 6, 7, 8]
    assert S.resample_indices(4, 25.0, 50.0).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert S.resample_indices(3, 30.0, 10.0).tolist() == [0]
    assert S.resample_indices(0, 30.0, 25.0).tolist() == []
    assert S.resample_indices(0, 30.0, 25.0).dtype == torch.long


@given(n=st.integers(1, 200), src=st.sampled_from(FPS), dst=st.sampled_from(FPS))
def test_resample_fps_keeps_the_duration_and_plays_forward(n, src, dst):
    idx = S.resample_fps(n, src, dst)
    assert idx.dtype == torch.long
    if abs(src - dst) < 1e-3:
        assert idx.tolist() == list(range(n))
        return
    assert idx.tolist() == S.resample_indices(n, src, dst).tolist()
    assert len(idx) == 1 or abs(len(idx) / dst - n / src) <= 0.5 / dst + 1e-9  # the same duration, to half a frame
    assert idx[0] == 0 and torch.all(idx.diff() >= 0) and int(idx.max()) <= n - 1


def test_resample_fps_identity_and_refusal():
    assert S.resample_fps(4, 25.0, 25.0005).tolist() == [0, 1, 2, 3]  # within 1e-3: the same rate
    assert S.resample_fps(4, 25.0, 25.01).tolist() == [0, 0, 1, 2]   # 25.01: frame 1 shows at 0.04 s > 1/25.01 s
    assert S.resample_fps(5, 25.0, 25.002).tolist() == S.resample_indices(5, 25.0, 25.002).tolist()
    assert S.resample_fps(6, 0.0, 25.0).tolist() == list(range(6))   # unknown rate: as is
    assert S.resample_fps(6, 25.0, 0.0).tolist() == list(range(6))
    assert S.resample_fps(6, -1.0, 25.0).tolist() == list(range(6))
    assert S.resample_fps(3, 30.0, 10.0).tolist() == [0]
    assert S.resample_fps(3, 1.0, 2.0).tolist() == [0, 0, 1, 1, 2, 2]    # a time-lapse at 1 fps, and slower
    assert S.resample_fps(4, 2.0, 0.5).tolist() == [0]
    assert S.resample_fps(8, 2.0, 1.0).tolist() == [0, 2, 4, 6]
    with pytest.raises(ValueError, match=r"^a video needs at least one frame, got num_frames=0$"):
        S.resample_fps(0, 30.0, 25.0)


def times_oracle(times: list[float], dst: float) -> list[int]:
    """The frame on screen at k / dst (the last one whose time is <= it), as long as the source lasts."""
    t = [x - times[0] for x in times]
    gaps = sorted(b - a for a, b in zip(t, t[1:]))
    step = gaps[(len(gaps) - 1) // 2] if gaps else 1.0 / dst        # the lower middle gap of an even count
    length = max(1, math.floor((t[-1] + step) * dst + 0.5 + 1e-9))
    return [max(0, max(i for i, x in enumerate(t) if x <= k / dst + 1e-9)) for k in range(length)]


@given(gaps=st.lists(st.sampled_from([0.02, 0.04, 0.04, 0.04, 0.08]), max_size=30),
       offset=st.sampled_from([0.0, 1.5]), dst=st.sampled_from([10.0, 25.0, 30.0]))
def test_resample_times_shows_the_frame_on_screen(gaps, offset, dst):
    times = [offset + sum(gaps[:i]) for i in range(len(gaps) + 1)]
    assert S.resample_times(times, dst).tolist() == times_oracle(times, dst)


def test_retiming_a_long_video_to_its_own_rate_keeps_every_frame():
    """Two hours at 25 fps: tick k / 25 s must find frame k, so ticks keep float64 precision."""
    n = 25 * 7200
    assert torch.equal(S.resample_times(np.arange(n) / 25.0, 25.0), torch.arange(n))


def test_resample_times_exact_values():
    # 25 fps with frame 2 missing: frame 1 stays on screen in its place
    assert S.resample_times([0.0, 0.04, 0.12, 0.16], 25.0).tolist() == [0, 1, 1, 2, 3]
    assert S.resample_times([10.0, 10.04, 10.08], 25.0).tolist() == [0, 1, 2]   # times count from the first
    assert S.resample_times([0.0, 0.04, 0.08, 0.12], 50.0).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert S.resample_times([0.0, 0.04, 0.08, 0.12], 12.5).tolist() == [0, 2]
    assert S.resample_times([0.0, 0.1], 15.0).tolist() == [0, 0, 1]               # 0.2 s * 15 = 3 frames
    assert S.resample_times([0.0, 0.1, 0.2], 5.0).tolist() == [0, 2]              # 0.3 s * 5 = 1.5: half up
    assert S.resample_times([0.0, 0.1, 0.2, 0.3, 0.4], 5.0).tolist() == [0, 2, 4]  # 2.5: half up, not to even
    assert S.resample_times([0, 1, 2], 2.0).tolist() == [0, 0, 1, 1, 2, 2]        # whole seconds as ints
    assert S.resample_times([0.0], 25.0).tolist() == [0]                          # one frame lasts one frame
    assert S.resample_times(np.array([0.0, 0.04]), 1.0).tolist() == [0]           # never fewer than one
    assert S.resample_times([0.0, 0.04], 25.0).dtype == torch.long
    with pytest.raises(ValueError, match=r"^a video needs at least one frame, got no frame times$"):
        S.resample_times([], 25.0)
    with pytest.raises(ValueError, match=r"^dst_fps must be positive, got 0.0$"):
        S.resample_times([0.0, 0.04], 0.0)
    with pytest.raises(ValueError, match=r"^dst_fps must be positive, got -5$"):
        S.resample_times([0.0, 0.04], -5)


# ---------------------------------------------------------------- feature clips (quovadis features)

@given(n=sizes, clip=st.integers(1, 12), stride=st.integers(1, 12))
@example(n=10, clip=4, stride=3)                                   # starts 0, 3, 6: the last ends at 10
@example(n=4, clip=4, stride=1)                                    # exactly one clip
@example(n=5, clip=4, stride=1)
def test_feature_clips_start_every_stride_while_they_fit(n, clip, stride):
    starts = S.clip_starts(n, clip, stride)
    want = [s for s in range(0, n, stride) if s + clip <= n] or [0]
    assert starts == want
    for s in starts:
        frames = S.clip_frames(s, clip, n)
        assert frames == [min(s + i, n - 1) for i in range(clip)]
    bounds = S.clip_bounds(starts, clip, n)
    assert bounds.dtype == np.int64 and bounds.shape == (len(starts), 2)
    assert bounds.tolist() == [[s, min(s + clip, n)] for s in starts]


def test_feature_clips_exact_values():
    assert S.clip_starts(10, 4, 3) == [0, 3, 6]
    assert S.clip_starts(3, 4, 2) == [0]
    assert S.clip_frames(1, 4, 3) == [1, 2, 2, 2]                   # past the end: the last frame repeated
    assert S.clip_frames(0, 2, 10) == [0, 1]
    assert S.clip_bounds([0, 3, 6], 4, 10).tolist() == [[0, 4], [3, 7], [6, 10]]
    assert S.clip_bounds([0], 4, 3).tolist() == [[0, 3]]           # the repeated frame is not counted
    assert S.clip_bounds(np.array([2]), 2, 9).tolist() == [[2, 4]]
    small = S.clip_bounds(np.array([0, 5], dtype=np.int32), 3, 6)  # the file's frames are int64 whatever comes in
    assert small.dtype == np.int64 and small.tolist() == [[0, 3], [5, 6]]
    assert S.clip_bounds([], 3, 6).shape == (0, 2)


def test_feature_clip_seconds():
    bounds = S.clip_bounds([0, 3, 6], 4, 10)
    got = S.clip_seconds(bounds, 25.0)
    assert got.dtype == np.float64 and got.tolist() == [[0.0, 0.16], [0.12, 0.28], [0.24, 0.4]]
    assert S.clip_seconds(np.array([[1, 3]]), 2).tolist() == [[0.5, 1.5]]    # an int rate divides as float
    assert S.clip_seconds(np.array([[1, 3]]), 1.0).tolist() == [[1.0, 3.0]]  # a time-lapse: one frame a second
    assert S.clip_seconds(np.array([[1, 3]]), 0.5).tolist() == [[2.0, 6.0]]
    for bad in (0.0, -25.0, float("nan")):
        with pytest.raises(ValueError, match=r"^fps must be positive, got "):
            S.clip_seconds(bounds, bad)
