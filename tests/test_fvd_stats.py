"""Mergeable FVD statistics (issue 21): K/N shards merged equal one run, the merge refuses mixed protocols and
overlapping videos, merging is commutative and associative, the CLI (`quovadis fvd-stats`) and a two-rank
torchrun-style gloo run on real MP4 files."""
import json
import os
import re
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
from zoo.metrics.fvd_stats import FVDStats, is_stats_file, merge, name_digests

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


# ------------------------------------------------------------------ statistics without a network (fast)
HINT = "write one with `quovadis fvd-stats SRC -o FILE.safetensors`"


def test_from_features_sorts_rows_by_name_digest_and_keeps_what_it_was_given():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 3))
    names = [f"clip{i}.mp4" for i in range(6)]
    s = FVDStats.from_features(x, {"frames": 16}, names=names, sampling={"side": "real"}, skipped=2)
    assert s.count == 6 and isinstance(s.count, int) and s.dim == 3 and s.skipped == 2
    assert s.protocol == {"frames": 16} and s.sampling == {"side": "real"}
    rows = [bytes(r) for r in s.video_digests]
    assert rows == sorted(rows) and rows == sorted(bytes(r) for r in name_digests(names))
    # the features, the names and the digests stay row-aligned, in digest order
    assert [bytes(r) for r in name_digests(s.names)] == rows
    order = [names.index(n) for n in s.names]
    assert s.features.dtype == np.float32
    np.testing.assert_array_equal(s.features, x[order].astype(np.float32))
    np.testing.assert_allclose(s.mu, x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(s.outer, x.T @ x, rtol=1e-12)
    assert FVDStats.from_features(x, keep_features=False).features is None
    unnamed = FVDStats.from_features(x[:2])
    assert sorted(unnamed.names) == ["video_000000000", "video_000000001"]
    assert FVDStats.from_features(x, names=iter(names)).names == s.names  # any iterable of names
    lean = s.without_features()
    assert lean.features is None and lean.names == s.names and lean.skipped == 2 and lean.sampling == s.sampling
    np.testing.assert_array_equal(lean.video_digests, s.video_digests)
    np.testing.assert_array_equal(lean.sigma, s.sigma)


def test_name_digests_are_the_first_16_bytes_of_sha256():
    import hashlib
    d = name_digests(["a", "vidéo.mp4", 7])
    assert d.dtype == np.uint8 and d.shape == (3, 16)
    assert bytes(d[0]) == hashlib.sha256(b"a").digest()[:16]
    assert bytes(d[1]) == hashlib.sha256("vidéo.mp4".encode("utf-8")).digest()[:16]
    assert bytes(d[2]) == hashlib.sha256(b"7").digest()[:16]
    empty = name_digests([])
    assert empty.shape == (0, 16) and empty.dtype == np.uint8
    assert FVDStats.from_features(np.zeros((0, 2))).video_digests.shape == (0, 16)


def test_two_videos_are_enough_for_a_covariance():
    x = np.array([[0.0, 1.0], [2.0, 5.0]])
    s = FVDStats.from_features(x)
    np.testing.assert_allclose(s.sigma, np.cov(x, rowvar=False), rtol=1e-12)
    for n in (0, 1):
        with pytest.raises(FVDError, match=rf"^FVD needs at least 2 videos per side \(the covariance divides by "
                                           rf"N - 1\), got {n}$"):
            FVDStats.from_features(np.ones((n, 2))).sigma


def test_from_features_refusals_name_the_rows():
    with pytest.raises(FVDError, match=r"^features must be \(N, D\), got shape \(2, 3, 4\)$"):
        FVDStats.from_features(np.zeros((2, 3, 4)))
    bad = np.zeros((14, 2))
    bad[[0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13], 1] = np.inf
    with pytest.raises(FVDError, match=r"^non-finite features for videos \[0, 2, 3, 4, 5, 6, 7, 8, 9, 10\] \(of 14\); "
                                       r"check those inputs$"):
        FVDStats.from_features(bad)
    with pytest.raises(FVDError, match=r"^2 names for 3 feature rows$"):
        FVDStats.from_features(np.zeros((3, 2)), names=["a", "b"])


def _stats_meta(path):
    from safetensors import safe_open
    with safe_open(str(path), "np") as f:
        return f.metadata(), {k: f.get_tensor(k) for k in f.keys()}


def test_stats_file_round_trip_keeps_every_field(tmp_path):
    from zoo.metrics.fvd_stats import STATS_FORMAT, quovadis_version
    x = np.random.default_rng(2).normal(size=(5, 3))
    s = FVDStats.from_features(x, {"stride": 2, "frames": 16}, names=list("abcde"),
                               sampling={"side": "fake", "clip_offset": "start"}, skipped=3)
    path = s.save(tmp_path / "deep" / "er" / "s.safetensors")
    assert path == tmp_path / "deep" / "er" / "s.safetensors" and is_stats_file(path)
    meta, tensors = _stats_meta(path)
    assert meta == {"format": STATS_FORMAT, "protocol": '{"frames": 16, "stride": 2}',
                    "sampling": '{"clip_offset": "start", "side": "fake"}',
                    "skipped": "3", "quovadis_version": quovadis_version()}
    assert STATS_FORMAT == "quovadis.fvd_stats.v2"
    assert {k: (v.dtype, v.shape) for k, v in tensors.items()} == {
        "count": (np.float64, (1,)), "sum": (np.float64, (3,)), "sum_outer": (np.float64, (3, 3)),
        "video_digests": (np.uint8, (5, 16)), "features": (np.float32, (5, 3))}
    back = FVDStats.load(path)
    assert back.count == 5 and isinstance(back.count, int) and back.skipped == 3
    assert back.protocol == {"frames": 16, "stride": 2} and back.sampling == {"side": "fake", "clip_offset": "start"}
    np.testing.assert_array_equal(back.total, s.total)
    np.testing.assert_array_equal(back.outer, s.outer)
    np.testing.assert_array_equal(back.video_digests, s.video_digests)
    np.testing.assert_array_equal(back.features, s.features)
    # without features there is no features tensor; a protocol's own version is the one recorded
    lean = FVDStats.from_features(x, {"quovadis_version": "0.0.7"}, keep_features=False)
    meta, tensors = _stats_meta(lean.save(tmp_path / "lean.safetensors"))
    assert "features" not in tensors and meta["quovadis_version"] == "0.0.7" and meta["skipped"] == "0"
    assert meta["sampling"] == "{}"
    back = FVDStats.load(tmp_path / "lean.safetensors")
    assert back.features is None and back.skipped == 0 and back.sampling == {}
    # the file holds float64 sums, uint8 digests and float32 features whatever arrays the statistics hold
    loose = FVDStats(2, np.ones(3, np.float32), np.eye(3, dtype=np.float32), {}, {}, name_digests("ab").astype(np.int64),
                     np.ones((2, 3), np.float64))
    _, tensors = _stats_meta(loose.save(tmp_path / "loose.safetensors"))
    assert {k: v.dtype for k, v in tensors.items()} == {"count": np.float64, "sum": np.float64,
                                                       "sum_outer": np.float64, "video_digests": np.uint8,
                                                       "features": np.float32}


def test_quovadis_version_of_a_source_tree(monkeypatch):
    """Not installed (no package metadata): the version is inflate's."""
    import importlib.metadata

    import inflate
    from zoo.metrics.fvd_stats import quovadis_version

    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)
    assert quovadis_version() == importlib.metadata.version("quovadis")
    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    assert quovadis_version() == inflate.__version__


def _write_raw(path, tensors, meta):
    from safetensors.numpy import save_file
    save_file(tensors, str(path), metadata=meta)
    return path


def _good(count=2, d=3):
    return ({"count": np.array([count], np.float64), "sum": np.zeros(d), "sum_outer": np.zeros((d, d)),
             "video_digests": np.zeros((count, 16), np.uint8)},
            {"format": "quovadis.fvd_stats.v2", "protocol": "{}", "sampling": "{}", "skipped": "0"})


def test_stats_load_names_each_damage(tmp_path):
    from zoo.metrics.fvd_stats import STATS_FORMAT

    def refused(tensors, meta, pattern):
        p = _write_raw(tmp_path / "f.safetensors", tensors, meta)
        with pytest.raises(FVDError, match="^" + pattern.replace("PATH", re.escape(str(p))) + "$"):
            FVDStats.load(p)

    t, m = _good()
    p = _write_raw(tmp_path / "ok.safetensors", t, {k: v for k, v in m.items() if k != "skipped"})
    assert FVDStats.load(p).skipped == 0 and FVDStats.load(p).count == 2  # files without a skipped count
    (tmp_path / "junk.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(FVDError, match=rf"^{re.escape(str(tmp_path / 'junk.safetensors'))} is not an FVD statistics "
                                       rf"file \(.+\); {re.escape(HINT)}$"):
        FVDStats.load(tmp_path / "junk.safetensors")
    refused(t, None, rf"PATH is not an FVD statistics file, not {STATS_FORMAT}; {re.escape(HINT)}")
    refused(t, {"format": "other"}, rf"PATH is not an FVD statistics file, not {STATS_FORMAT}; {re.escape(HINT)}")
    refused(t, {"format": "quovadis.fvd_stats.v1"}, rf"PATH is an older FVD statistics file \(quovadis.fvd_stats.v1\), "
                                                     rf"not {STATS_FORMAT}; {re.escape(HINT)}")
    refused({k: v for k, v in t.items() if k in ("count", "sum")}, m,
            rf"PATH: FVD statistics file lacks tensors \['sum_outer', 'video_digests'\]; {re.escape(HINT)}")
    for key, value, err in [("protocol", "{", "JSONDecodeError"), ("skipped", "x", "ValueError"),
                            ("sampling", None, "KeyError"), ("protocol", None, "KeyError")]:
        meta = {k: v for k, v in m.items() if k != key}
        if value is not None:
            meta[key] = value
        refused(t, meta, rf"PATH: damaged FVD statistics metadata \({err}: .*\); {re.escape(HINT)}")
    refused({**t, "count": np.zeros(0)}, m, rf"PATH: damaged FVD statistics metadata \(IndexError: .*\); "
                                            rf"{re.escape(HINT)}")
    for key in ("protocol", "sampling"):
        refused(t, {**m, key: "[1]"}, rf"PATH: damaged FVD statistics metadata \(protocol/sampling are not objects\); "
                                      rf"{re.escape(HINT)}")
    refused({**t, "sum_outer": np.zeros((3, 2))}, m,
            r"PATH: inconsistent shapes: sum \(3,\), sum_outer \(3, 2\), video_digests \(2, 16\) for count 2; "
            r"the file is damaged, recompute it")
    refused({**t, "video_digests": np.zeros((3, 16), np.uint8)}, m,
            r"PATH: inconsistent shapes: sum \(3,\), sum_outer \(3, 3\), video_digests \(3, 16\) for count 2; "
            r"the file is damaged, recompute it")
    refused({**t, "features": np.zeros((2, 4), np.float32)}, m,
            r"PATH: features \(2, 4\), expected \(2, 3\); recompute the file")
    back = FVDStats.load(_write_raw(tmp_path / "f2.safetensors", {**t, "features": np.ones((2, 3), np.float32)}, m))
    np.testing.assert_array_equal(back.features, np.ones((2, 3), np.float32))


def test_is_stats_file_reads_the_format_of_any_version(tmp_path):
    t, m = _good()
    assert is_stats_file(_write_raw(tmp_path / "now.safetensors", t, m))
    assert is_stats_file(_write_raw(tmp_path / "OLD.SAFETENSORS", t, {**m, "format": "quovadis.fvd_stats.v1"}))
    assert not is_stats_file(_write_raw(tmp_path / "weights.safetensors", t, {"format": "pt"}))
    assert not is_stats_file(_write_raw(tmp_path / "bare.safetensors", t, None))
    _write_raw(tmp_path / "stats.npy", t, m)
    assert not is_stats_file(tmp_path / "stats.npy")  # a stats file by content, but not by name
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    assert not is_stats_file(tmp_path / "junk.safetensors")
    assert not is_stats_file(tmp_path / "missing.safetensors")
    (tmp_path / "dir.safetensors").mkdir()
    assert not is_stats_file(tmp_path / "dir.safetensors")


def test_protocol_check_names_every_difference_but_the_version():
    from zoo.metrics.fvd_stats import check_protocols, protocol_difference
    a = {"frames": 16, "stride": 1, "quovadis_version": "0.1.0", "weights": "w"}
    b = {"frames": 128, "stride": 1, "quovadis_version": "0.2.0", "precision": "fp32", "weights": "w"}
    assert protocol_difference(a, b) == {"frames": (16, 128), "precision": (None, "fp32")}
    check_protocols(a, {**a, "quovadis_version": "9"})  # a new release does not invalidate published statistics
    with pytest.raises(FVDError, match=r"^REAL and FAKE were computed under different protocols \(frames: REAL 16 vs "
                                       r"FAKE 128; precision: REAL None vs FAKE 'fp32'\); recompute one side with the "
                                       r"other's settings \(e\.g\. --protocol/--frames/--stride/--weights\)$"):
        check_protocols(a, b)
    with pytest.raises(FVDError, match=r"^mine and theirs were computed .*\(stride: mine 1 vs theirs 2\)"):
        check_protocols(a, {**a, "stride": 2}, ("mine", "theirs"))


def _named(names, d=2, protocol=None, sampling=None, seed=0, **kw):
    x = np.random.default_rng(seed).normal(size=(len(names), d))
    return FVDStats.from_features(x, protocol or {"p": 1}, names=names, sampling=sampling, **kw)


def test_merge_keeps_sides_counts_and_names():
    a = _named(["a", "b"], sampling={"side": "real", "clip_offset": "start"}, skipped=1)
    b = _named(["c"], sampling={"side": "real", "clip_offset": "start"}, seed=1, skipped=2)
    m = merge([a, b])
    assert m.count == 3 and m.skipped == 3 and m.protocol == {"p": 1} and m.protocol is not a.protocol
    assert m.sampling == {"side": "real", "clip_offset": "start"} and m.sampling is not a.sampling
    assert sorted(m.names) == ["a", "b", "c"] and [bytes(r) for r in name_digests(m.names)] == \
        [bytes(r) for r in m.video_digests]
    np.testing.assert_array_equal(m.total, a.total + b.total)
    np.testing.assert_array_equal(m.outer, a.outer + b.outer)
    assert merge([a, b.without_features()]).features is None  # features are kept only if every part has them
    unnamed = FVDStats(b.count, b.total, b.outer, b.protocol, b.sampling, b.video_digests, b.features)
    assert merge([a, unnamed]).names is None and merge([unnamed]).names is None
    one = merge([a])
    assert one.count == 2 and one.names == a.names
    assert merge([_named(["solo"])]).count == 1 and merge([_named([]), _named(["solo"])]).names == ["solo"]
    np.testing.assert_array_equal(one.features, a.features)
    # many videos: sorted digests often share leading bytes, yet only equal digests are duplicates
    many = merge([_named([f"v{i}" for i in range(0, 300, 2)]), _named([f"v{i}" for i in range(1, 300, 2)])])
    assert many.count == 300


def test_merge_refusals_name_the_parts():
    with pytest.raises(FVDError, match="^nothing to merge$"):
        merge([])
    with pytest.raises(FVDError, match=r"^part 0 and part 1 were computed under different protocols \(p: part 0 1 vs "
                                       r"part 1 2\)"):
        merge([_named(["a"]), _named(["b"], protocol={"p": 2})])
    real = _named(["a"], sampling={"side": "real", "clip_offset": "random"})
    fake = _named(["b"], sampling={"side": "fake", "clip_offset": "start"})
    with pytest.raises(FVDError, match=r"^R and F sample clips differently \(\{'side': 'real', 'clip_offset': "
                                       r"'random'\} vs \{'side': 'fake', 'clip_offset': 'start'\}\): one is the real "
                                       r"side and the other the fake side of a protocol; merge one side only$"):
        merge([real, fake], labels=iter(["R", "F"]))
    assert merge([_named(["a"], sampling={"side": "real"}), _named(["b"], sampling={"side": "fake"})]).count == 2
    with pytest.raises(FVDError, match=r"^part 0 and part 2 hold 2-d and 3-d features$"):
        merge([_named(["a"]), _named(["b"]), _named(["c"], d=3)])
    with pytest.raises(FVDError, match=r"^1 videos appear in more than one part \(part 0 and part 1\): the same video "
                                       r"would count twice; merge disjoint shards \(--shard K/N of one listing\)$"):
        merge([_named(["a"]), _named(["a"], seed=1)])
    with pytest.raises(FVDError, match=r"^2 videos appear in more than one part \(x and z, y and z\): "):
        merge([_named(["a", "q"]), _named(["b", "r"]), _named(["a", "b", "s"])], labels=["x", "y", "z"])
    seven = [_named(["same"], seed=i) for i in range(7)]
    with pytest.raises(FVDError, match=r"^6 videos appear in more than one part \(part 0 and part 1, part 1 and part 2, "
                                       r"part 2 and part 3, part 3 and part 4, part 4 and part 5\): "):
        merge(seven)
