"""KVD against a direct numpy computation, the bootstrap interval, FVD extrapolated to infinitely many videos,
and the small-N flag (issue 21)."""
import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from zoo.cli.main import main as cli_main
from zoo.metrics.frechet import fvd_from_features
from zoo.metrics.fvd import FVDError, compute_stats, fvd
from zoo.metrics.fvd_uncertainty import FEW_VIDEOS, bootstrap_interval, extrapolate
from zoo.metrics.kvd import kvd

from .fvd_helpers import tiny_fvd_model


def kvd_numpy(x, y):
    """Unbiased MMD² with k(a, b) = (a·b / d + 1)^3, written as the double sums of its definition."""
    d = x.shape[1]

    def k(a, b):
        return (float(np.dot(a, b)) / d + 1.0) ** 3
    n, m = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
    return xx + yy - 2 * xy


@given(st.integers(2, 9), st.integers(2, 9), st.integers(1, 6), st.integers(0, 2**31 - 1))
def test_kvd_all_pairs_matches_numpy(n, m, d, seed):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(0, 1, (n, d)), rng.normal(0.5, 2, (m, d))
    result = kvd(x, y)
    assert result.subsets == 1 and result.subset_size is None
    assert result.kvd == pytest.approx(kvd_numpy(x, y), rel=1e-10, abs=1e-12)


def test_kvd_above_the_subset_size_is_the_mean_over_seeded_subsets():
    """Above max_subset_size: subsets of m = min(N, M, size) per side drawn with numpy's generator from the
    seed, as clean-fid's kernel_distance (which draws FAKE first; here REAL first, then FAKE, each subset)."""
    rng = np.random.default_rng(1)
    x, y = rng.normal(0, 1, (13, 4)), rng.normal(0.3, 1, (11, 4))
    result = kvd(x, y, max_subset_size=7, num_subsets=5, seed=3)
    draw = np.random.default_rng(3)
    expected = np.mean([kvd_numpy(x[draw.choice(13, 7, replace=False)], y[draw.choice(11, 7, replace=False)])
                        for _ in range(5)])
    assert (result.subsets, result.subset_size, result.seed) == (5, 7, 3)
    assert result.kvd == pytest.approx(expected, rel=1e-10)
    assert kvd(x, y, max_subset_size=13).kvd == pytest.approx(kvd_numpy(x, y), rel=1e-10)  # both fit: all pairs


def test_bootstrap_interval_contains_the_point_value():
    rng = np.random.default_rng(0)
    for n in (60, 200):
        x, y = rng.normal(0, 1, (n, 20)), rng.normal(0.3, 1.2, (n, 20))
        point = fvd_from_features(x, y)
        boot = bootstrap_interval(x, y, 60, seed=0)
        lo, hi = boot.ci95
        assert lo < point < hi, (n, point, boot.ci95)
        assert boot.point == pytest.approx(point, rel=1e-12)
        assert boot.bias > 0  # repeated videos inflate FVD: the raw percentiles sit above the point value
        assert boot.raw_ci95[0] - boot.bias == pytest.approx(lo)
        assert bootstrap_interval(x, y, 60, seed=0).values.tolist() == boot.values.tolist()  # seeded


def test_extrapolation_moves_toward_the_true_distance():
    """Two Gaussians with a known Fréchet distance: FVD at N = 200 is biased upward by ~d/N terms; the fit
    of FVD against 1/N lands closer to the truth."""
    rng = np.random.default_rng(0)
    d = 20
    x, y = rng.normal(0, 1, (200, d)), rng.normal(0.3, 1.2, (200, d))
    truth = d * 0.3 ** 2 + d * (1 + 1.2 ** 2 - 2 * 1.2)
    point = fvd_from_features(x, y)
    e = extrapolate(x, y, seed=0)
    assert abs(e.fvd_inf - truth) < abs(point - truth) / 2, (e.fvd_inf, point, truth)
    ns = [p["n"] for p in e.points]
    assert ns[0] == 100 and ns[-1] == 200 and len(ns) == 8
    slope, intercept = np.polyfit([1 / p["n"] for p in e.points], [p["fvd"] for p in e.points], 1)
    assert (e.fvd_inf, e.slope) == pytest.approx((intercept, slope))
    # a side given only as (mu, sigma) stays whole
    whole_real = extrapolate(None, y, real_stats=(x.mean(0), np.cov(x, rowvar=False)), seed=0)
    assert whole_real.points[-1]["fvd"] == pytest.approx(point, rel=1e-9)
    with pytest.raises(FVDError, match="--keep-features"):
        extrapolate(None, None, real_stats=(x.mean(0), np.eye(d)), fake_stats=(y.mean(0), np.eye(d)))


@pytest.fixture(scope="module")
def arrays():
    rng = np.random.default_rng(0)
    real = rng.integers(0, 256, (24, 4, 8, 8, 3), dtype=np.uint8)
    fake = np.clip(real.astype(int) + rng.integers(-60, 60, real.shape), 0, 255).astype(np.uint8)[:20]
    return real, fake


def test_pipeline_flags_few_videos_and_reports_everything(arrays):
    real, fake = arrays
    r = fvd(real, fake, frames=4, model=tiny_fvd_model(dim=16), kvd=True, bootstrap=8, extrapolate=True)
    out = r.to_dict()
    assert out["few_videos"] is True and out["few_videos_threshold"] == FEW_VIDEOS == 400
    assert out["kvd"] == pytest.approx(kvd_numpy(r.real_stats.features.astype(np.float64),
                                                 r.fake_stats.features.astype(np.float64)), rel=1e-9)
    assert out["fvd_ci95"][0] < out["fvd"] < out["fvd_ci95"][1]
    assert [p["n"] for p in out["fvd_inf_points"]][-1] == 20 and np.isfinite(out["fvd_inf"])
    assert out["protocol"]["protocol"] == "reference" and json.loads(json.dumps(out)) == out


def test_kvd_on_stats_without_features_says_what_to_do(arrays, tmp_path):
    real, fake = arrays
    model = tiny_fvd_model(dim=16)
    stats, _ = compute_stats(real, model, frames=4, progress=False)
    with pytest.raises(FVDError, match=r"--kvd needs each REAL video's features.*--keep-features"):
        fvd(stats, fake, frames=4, model=model, kvd=True)
    with pytest.raises(FVDError, match=r"--bootstrap resamples videos.*--keep-features"):
        fvd(stats, fake, frames=4, model=model, bootstrap=5)
    kept, _ = compute_stats(real, model, frames=4, keep_features=True, progress=False)
    kept.save(tmp_path / "real.safetensors")
    both = fvd(tmp_path / "real.safetensors", fake, frames=4, model=model, kvd=True)
    direct = fvd(real, fake, frames=4, model=model, kvd=True)
    assert both.kvd.kvd == pytest.approx(direct.kvd.kvd, rel=1e-9) and both.fvd == pytest.approx(direct.fvd, rel=1e-9)


def test_cli_prints_the_flag_and_the_interval(arrays, tmp_path, capsys):
    """Through the CLI on stats files with features (no network runs): text and JSON."""
    real, fake = arrays
    model = tiny_fvd_model(dim=16)
    for name, x, side in (("r", real, "real"), ("f", fake, "fake")):
        compute_stats(x, model, frames=4, side=side, keep_features=True, progress=False)[0].save(
            tmp_path / f"{name}.safetensors")
    args = ["fvd", str(tmp_path / "r.safetensors"), str(tmp_path / "f.safetensors"), "--bootstrap", "6", "--kvd"]
    assert cli_main(args) == 0
    text = capsys.readouterr().out
    assert "FVD 95% interval [" in text and "KVD " in text and "fewer than 400 videos per side" in text
    assert "protocol reference" in text and "quovadis " in text
    assert cli_main(args + ["--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["fvd_ci95"]) == 2 and out["bootstrap"] == 6 and out["few_videos"] and "kvd" in out
