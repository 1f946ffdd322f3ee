"""Named FVD protocols (issue 21): which frames each takes (a network that reports each frame's value), the
videos it keeps, its trials, that different protocols never compare, and google-research's example.py value."""
import numpy as np
import pytest
from PIL import Image

from zoo.metrics.frechet import fvd_from_features
from zoo.metrics.fvd import FVDError, compute_stats, fvd
from zoo.metrics.fvd_protocols import PROTOCOLS, clip_offset, get_protocol
from zoo.metrics.fvd_stats import merge

from .fvd_helpers import frame_probe_model, tiny_fvd_model


def counting_videos(n, frames, size=8):
    """uint8 (n, frames, size, size, 3) whose frame k of video i holds the value 10 k + i."""
    k = np.arange(frames)[None, :, None, None, None] * 10 + np.arange(n)[:, None, None, None, None]
    return np.broadcast_to(k, (n, frames, size, size, 3)).astype(np.uint8).copy()


def first_frames(stats):
    """The first frame's value of each video's clip, in name order (FrameProbe features are 2v/255 - 1)."""
    order = np.argsort(stats.names)
    return np.rint((stats.features[order, 0].astype(np.float64) + 1) * 255 / 2).astype(int), \
        [stats.names[i] for i in order]


def test_stylegan_v_real_clips_at_seeded_random_offsets_fake_at_zero():
    videos = counting_videos(6, 24)
    model = frame_probe_model(16)
    kw = dict(protocol="stylegan-v-16f", keep_features=True, progress=False, workers=0)
    with pytest.warns(RuntimeWarning, match="asks for 2048 videos, only 6 usable"):
        real, _ = compute_stats(videos, model, side="real", seed=7, **kw)
    values, names = first_frames(real)
    expected = [10 * clip_offset("random", 24, 16, 7, name) + i for i, name in enumerate(names)]
    assert values.tolist() == expected and len(set(v // 10 for v in values)) > 1  # not all at one offset
    clip = real.features[np.argsort(real.names)][0]  # 16 consecutive frames
    np.testing.assert_allclose(np.diff(np.rint((clip.astype(np.float64) + 1) * 127.5)), 10)
    with pytest.warns(RuntimeWarning):
        fake, _ = compute_stats(videos, model, side="fake", seed=7, **kw)
    assert first_frames(fake)[0].tolist() == list(range(6))
    with pytest.warns(RuntimeWarning):  # a video's offset does not depend on the shard it is in
        parts = [compute_stats(videos, model, side="real", seed=7, shard=(k, 4), **kw)[0] for k in range(4)]
    np.testing.assert_array_equal(merge(parts).features, real.features)
    with pytest.warns(RuntimeWarning):
        other_seed, _ = compute_stats(videos, model, side="real", seed=8, **kw)
    assert first_frames(other_seed)[0].tolist() != values.tolist()


def frame_folders(root, lengths):
    for i, n in enumerate(lengths):
        folder = root / f"video_{i}"
        folder.mkdir(parents=True)
        for k in range(n):
            Image.fromarray(np.full((8, 8, 3), 10 * k + i, np.uint8)).save(folder / f"{k:03d}.png")
    return root


def test_stylegan_v_drops_short_videos_and_caps_the_count(tmp_path):
    src = frame_folders(tmp_path / "v", [20, 10, 16, 17, 15, 18])  # videos 1 and 4 are shorter than 16 frames
    model = frame_probe_model(16)
    stats, dropped = compute_stats(src, model, protocol="stylegan-v-16f", side="fake", num_videos=3,
                                   keep_features=True, progress=False, workers=0)
    assert sorted(stats.names) == ["video_0", "video_2", "video_3"]  # the first 3 long enough, in sorted order
    assert len(dropped) == 1 and "video_1: 10 frames, the protocol needs 16" in dropped[0]
    with pytest.raises(FVDError, match=r"video_1: 10 frames.*--on-error skip"):  # reference stops instead
        compute_stats(src, model, frames=16, num_videos=3, progress=False, workers=0)


def test_videogpt_is_the_mean_and_std_of_four_trials_of_256():
    """Trials draw from kept per-video features, so statistics files with features (fvd-stats --keep-features)
    serve: 260 + 258 feature rows under the videogpt protocol, no network."""
    from zoo.metrics.fvd import protocol_for
    from zoo.metrics.fvd_stats import FVDStats
    rng = np.random.default_rng(0)
    x, y = rng.normal(0, 1, (260, 8)), rng.normal(0.2, 1.1, (258, 8))
    proto = protocol_for(tiny_fvd_model(dim=8), 16, 1, "videogpt", seed=0)
    real = FVDStats.from_features(x, proto, names=[f"r{i}" for i in range(260)], sampling={"side": "real"})
    fake = FVDStats.from_features(y, proto, names=[f"f{i}" for i in range(258)], sampling={"side": "fake"})
    r = fvd(real, fake, protocol="videogpt")
    assert r.protocol["protocol"] == "videogpt" and len(r.trials.values) == 4 and r.trials.videos == 256
    xs, ys = real.features.astype(np.float64), fake.features.astype(np.float64)  # rows in the stats' order
    expected = []
    for t in range(4):
        draw = np.random.default_rng(0 + t)
        expected.append(fvd_from_features(xs[draw.choice(260, 256, replace=False)],
                                          ys[draw.choice(258, 256, replace=False)]))
    assert r.trials.values == pytest.approx(expected, rel=1e-9)
    assert r.fvd == pytest.approx(np.mean(expected)) and r.to_dict()["fvd_std"] == pytest.approx(np.std(expected))
    assert len(set(np.round(expected, 9))) == 4  # four different draws
    small = FVDStats.from_features(y[:20], proto, names=[f"f{i}" for i in range(20)], sampling={"side": "fake"})
    with pytest.raises(FVDError, match="draws 256 videos per side per trial; FAKE has 20"):
        fvd(real, small, protocol="videogpt")


def test_different_protocols_never_compare(tmp_path):
    model = tiny_fvd_model(dim=8)
    videos = counting_videos(5, 20)
    ref, _ = compute_stats(videos, model, frames=16, progress=False)
    ref.save(tmp_path / "ref.safetensors")
    with pytest.raises(FVDError, match="protocol 'reference', this run is --protocol stylegan-v-16f"):
        fvd(tmp_path / "ref.safetensors", videos, protocol="stylegan-v-16f", model=model)
    with pytest.warns(RuntimeWarning):
        sg_fake, _ = compute_stats(videos, model, protocol="stylegan-v-16f", side="fake", progress=False)
    sg_fake.save(tmp_path / "sg_fake.safetensors")
    with pytest.raises(FVDError, match="holds the fake side of protocol stylegan-v-16f.*--side real"):
        fvd(tmp_path / "sg_fake.safetensors", videos, protocol="stylegan-v-16f", model=model)
    with pytest.raises(FVDError, match="FAKE stats were made under protocol 'stylegan-v-16f', this run is "
                                       "--protocol reference"):
        fvd(ref, sg_fake)
    from zoo.metrics.frechet import fvd_from_stats
    with pytest.raises(FVDError, match="different protocols .*protocol: REAL 'reference' vs FAKE 'stylegan-v-16f'"):
        fvd_from_stats(ref, sg_fake)
    with pytest.raises(ValueError, match="--protocol stylegan-v-128f fixes --frames 128"):
        compute_stats(videos, model, protocol="stylegan-v-128f", frames=16, progress=False)
    assert {p.name for p in PROTOCOLS.values()} == {"reference", "stylegan-v-16f", "stylegan-v-128f", "videogpt"}
    assert get_protocol("stylegan-v-128f").frames == 128


@pytest.mark.slow
def test_google_research_example_py_value(rgb_scratch_weights):
    """google-research's example.py: 16 videos of zeros against 16 of 255, 15 frames, 64x64. Its docstring
    says "around 131"; common_metrics_on_video_quality reports 134.24 for its PyTorch ports. Constant frames
    stay constant under any bilinear resize, so the resize plays no part; every video of a side is the same,
    so both covariances are 0 and FVD is the squared distance of the two embeddings."""
    zeros = np.zeros((16, 15, 64, 64, 3), np.uint8)
    r = fvd(zeros, zeros + 255, frames=15, weights=rgb_scratch_weights, device="cpu", batch_size=16, workers=0)
    assert r.fvd == pytest.approx(133.91, abs=0.005), r.fvd
    assert np.abs(r.real_stats.sigma).max() < 1e-9 and r.num_real == r.num_fake == 16
