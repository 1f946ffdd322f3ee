"""Mergeable FVD statistics (issue 21): K/N shards merged equal one run, the merge refuses mixed protocols and
overlapping videos, merging is commutative and associative, the CLI (`quovadis fvd-stats`) and a two-rank
torchrun-style gloo run on real MP4 files."""
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from hypothesis import given
from hypothesis import strategies as st

from zoo.cli.main import main as cli_main
from zoo.data.synthetic import make_moving_shapes
from zoo.metrics.frechet import frechet_distance, fvd_from_features
from zoo.metrics.fvd import FVDError, compute_stats
from zoo.metrics.fvd_stats import FVDStats, is_stats_file, merge

from .fvd_helpers import tiny_fvd_model
from .test_distributed import free_port


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """8 real H.264 videos, 10 frames (I3D needs 9), 16x16, in two class folders."""
    return make_moving_shapes(tmp_path_factory.mktemp("fvd_stats"), classes=2, per_class=4, frames=10, size=16)


@pytest.fixture(scope="module")
def fake_videos(tmp_path_factory):
    return make_moving_shapes(tmp_path_factory.mktemp("fvd_stats_fake"), classes=2, per_class=3, frames=10, size=24,
                              seed=5)


@pytest.fixture(scope="module")
def i3d_weights(rgb_scratch_weights):
    """The real FVD network (a freshly initialised I3D maps every video to nearly the same features, which would
    make FVD ~1e-11 and these comparisons empty)."""
    return rgb_scratch_weights


def rel(a, b):
    return abs(a - b) / abs(b)


@pytest.mark.parametrize("num_shards", [2, 3])
def test_shards_merged_equal_one_run(videos, fake_videos, num_shards):
    model = tiny_fvd_model()
    kw = dict(frames=4, batch_size=1, workers=0, progress=False)
    whole, _ = compute_stats(videos, model, **kw)
    parts = [compute_stats(videos, model, shard=(k, num_shards), **kw)[0] for k in range(num_shards)]
    merged = merge(parts)
    assert merged.count == whole.count == 8 and sum(p.count for p in parts) == 8
    np.testing.assert_array_equal(merged.video_digests, whole.video_digests)
    fake, _ = compute_stats(fake_videos, model, side="fake", **kw)
    one, split = (frechet_distance(s.mu, s.sigma, fake.mu, fake.sigma) for s in (whole, merged))
    assert rel(split, one) < 1e-9, (split, one)


def test_merge_refuses_overlaps_and_other_protocols(videos, tmp_path):
    model = tiny_fvd_model()
    kw = dict(batch_size=4, workers=0, progress=False)
    a, _ = compute_stats(videos, model, frames=4, shard=(0, 2), **kw)
    b, _ = compute_stats(videos, model, frames=4, shard=(1, 2), **kw)
    with pytest.raises(FVDError, match="4 videos appear in more than one part .*A and A2"):
        merge([a, b, a], labels=["A", "B", "A2"])
    c, _ = compute_stats(videos, model, frames=5, shard=(1, 2), **kw)
    with pytest.raises(FVDError, match="frames: A 4 vs C 5"):
        merge([a, c], labels=["A", "C"])
    d, _ = compute_stats(videos, model, frames=4, shard=(1, 2), side="fake", protocol="reference", **kw)
    assert merge([a, d]).count == 8  # reference samples both sides alike: the side does not matter
    s1, _ = compute_stats(videos, model, protocol="stylegan-v-16f", side="real", shard=(0, 2), **kw)
    s2, _ = compute_stats(videos, model, protocol="stylegan-v-16f", side="fake", shard=(1, 2), **kw)
    with pytest.raises(FVDError, match="sample clips differently"):
        merge([s1, s2])


names_and_features = st.integers(0, 2**31 - 1).map(lambda seed: np.random.default_rng(seed))


def _parts(rng, k, d=3):
    sizes = rng.integers(1, 6, k)
    ids = rng.permutation(1000)[: sizes.sum()]
    out, raw, at = [], [], 0
    for n in sizes:
        names = [f"v{i}" for i in ids[at:at + n]]
        raw.append(rng.normal(2, 3, (n, d)))
        out.append(FVDStats.from_features(raw[-1], {"protocol": "reference"}, names=names))
        at += n
    return out, np.concatenate(raw)


@given(names_and_features)
def test_merge_is_commutative_and_associative(rng):
    (a, b, c), flat = _parts(rng, 3)
    left, right, swapped = merge([merge([a, b]), c]), merge([a, merge([b, c])]), merge([c, a, b])
    for other in (right, swapped):
        np.testing.assert_array_equal(left.video_digests, other.video_digests)
        np.testing.assert_array_equal(left.features, other.features)
        assert left.names == other.names and left.count == other.count
        np.testing.assert_allclose(left.outer, other.outer, rtol=1e-12)
        np.testing.assert_allclose(left.total, other.total, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(left.sigma, np.cov(flat, rowvar=False), rtol=1e-9, atol=1e-9)


@given(st.integers(2, 9), st.integers(2, 9), st.integers(1, 6), st.integers(0, 2**31 - 1))
def test_fvd_laws(n1, n2, d, seed):
    """FVD(X, X) = 0, FVD is symmetric, and does not depend on the order of the videos."""
    rng = np.random.default_rng(seed)
    x, y = rng.normal(0, 2, (n1, d)), rng.normal(1, 3, (n2, d))
    scale = 1 + np.abs(np.concatenate([x, y])).max() ** 2
    assert abs(fvd_from_features(x, x)) < 1e-7 * scale
    assert fvd_from_features(x, y) == pytest.approx(fvd_from_features(y, x), rel=1e-8, abs=1e-8 * scale)
    assert fvd_from_features(x[rng.permutation(n1)], y) == pytest.approx(fvd_from_features(x, y), rel=1e-9,
                                                                        abs=1e-9 * scale)


def test_cli_shards_merge_and_compare(videos, fake_videos, i3d_weights, tmp_path, capsys):
    """`quovadis fvd-stats` in two shards, `--merge`, and `quovadis fvd` with a stats file, a folder and an
    array file on either side (the real weights, 9-frame clips)."""
    common = ["--weights", str(i3d_weights), "--frames", "9", "--batch-size", "1", "--workers", "0", "--device", "cpu"]
    for k in range(2):
        assert cli_main(["fvd-stats", str(videos), "-o", str(tmp_path / f"s{k}.safetensors"), "--shard", f"{k}/2",
                         "--keep-features", "--no-progress", *common]) == 0
    assert cli_main(["fvd-stats", str(videos), "-o", str(tmp_path / "one.safetensors"), "--keep-features",
                     "--no-progress", *common]) == 0
    assert cli_main(["fvd-stats", "--merge", str(tmp_path / "s0.safetensors"), str(tmp_path / "s1.safetensors"),
                     "-o", str(tmp_path / "merged.safetensors")]) == 0
    printed = capsys.readouterr().out
    assert "merged 2 files" in printed and printed.count("sha256:") == 4
    one, merged = FVDStats.load(tmp_path / "one.safetensors"), FVDStats.load(tmp_path / "merged.safetensors")
    assert one.count == merged.count == 8 and one.protocol == merged.protocol
    assert merged.protocol["weights"].startswith("sha256:") and merged.protocol["protocol"] == "reference"
    np.testing.assert_array_equal(one.features, merged.features)

    frames = np.stack([v.read(range(10)).numpy() for v in __import__("zoo.data.video_folder",
                                                                      fromlist=["list_videos"]).list_videos(fake_videos)])
    np.save(tmp_path / "fake.npy", frames)
    results = {}
    for real, fake in (("merged.safetensors", tmp_path / "fake.npy"), (str(videos), fake_videos)):
        real = tmp_path / real if str(real).endswith(".safetensors") else real
        assert cli_main(["fvd", str(real), str(fake), "--json", *common]) == 0
        results[(Path(real).name, Path(fake).name)] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    values = [r["fvd"] for r in results.values()]
    assert all(rel(v, values[0]) < 1e-9 for v in values) and values[0] > 1.0, values
    r = next(iter(results.values()))
    assert r["few_videos"] is True and r["protocol_name"] == "reference" and r["quovadis_version"]
    # merging a file with itself, or a file of another protocol, is refused by name
    assert cli_main(["fvd-stats", "--merge", str(tmp_path / "s0.safetensors"), str(tmp_path / "merged.safetensors"),
                     "-o", str(tmp_path / "bad.safetensors")]) == 2
    assert "appear in more than one part" in capsys.readouterr().err
    assert not (tmp_path / "bad.safetensors").exists() and is_stats_file(tmp_path / "merged.safetensors")


def _rank(rank, world, port, src, weights, out):
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world))
    rc = cli_main(["fvd-stats", src, "-o", out, "--weights", weights, "--frames", "9", "--batch-size", "1",
                   "--workers", "0", "--keep-features", "--no-progress"])
    Path(out + f".rank{rank}").write_text(str(rc))


def test_two_gloo_ranks_all_reduce_the_sums(videos, i3d_weights, tmp_path):
    """Two processes under a gloo process group (the torchrun path): each embeds half the videos, the sums are
    all-reduced in float64 and rank 0 writes the same statistics as one process."""
    out = str(tmp_path / "ranks.safetensors")
    ctx = mp.start_processes(_rank, args=(2, free_port(), str(videos), str(i3d_weights), out), nprocs=2,
                             join=False, start_method="spawn")
    deadline = time.time() + 300
    try:
        while not ctx.join(timeout=5):
            assert time.time() < deadline, "the two ranks did not finish in 300 s"
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.kill()
    assert [Path(out + f".rank{r}").read_text() for r in range(2)] == ["0", "0"]
    ranks = FVDStats.load(out)
    one, _ = compute_stats(videos, __import__("zoo.metrics.fvd", fromlist=["FVDModel"]).FVDModel(
        weights=i3d_weights, device="cpu"), frames=9, batch_size=1, workers=0, keep_features=True, progress=False)
    assert ranks.count == one.count == 8
    np.testing.assert_array_equal(ranks.video_digests, one.video_digests)
    np.testing.assert_array_equal(ranks.features, one.features)
    np.testing.assert_allclose(ranks.outer, one.outer, rtol=1e-12)
    assert rel(frechet_distance(ranks.mu, ranks.sigma, one.mu, one.sigma + np.eye(one.dim)),
               frechet_distance(one.mu, one.sigma, one.mu, one.sigma + np.eye(one.dim))) < 1e-9


def test_flat_memory_without_keep_features(videos):
    """Without --keep-features nothing per video is kept but the 16-byte name digests."""
    stats, _ = compute_stats(videos, tiny_fvd_model(), frames=4, workers=0, progress=False)
    assert stats.features is None and stats.video_digests.shape == (8, 16) and stats.outer.dtype == np.float64
