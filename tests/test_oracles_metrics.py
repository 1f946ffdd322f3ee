"""The numbers users publish, each checked against an independent computation on random inputs:
top-k and per-class accuracy against scikit-learn, the Fréchet distance against scipy's sqrtm in float64
(and the closed form for diagonal covariances), two-stream late fusion against a plain weighted logit sum."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from zoo.metrics.frechet import frechet_distance, fvd_from_features
from zoo.train.metrics import fuse, summarize

sklearn_metrics = pytest.importorskip("sklearn.metrics", reason="the oracle tests need scikit-learn (test extra)")
scipy_linalg = pytest.importorskip("scipy.linalg")


@settings(deadline=None, max_examples=40)
@given(n=st.integers(1, 40), c=st.integers(2, 12), seed=st.integers(0, 2**31 - 1))
def test_accuracies_match_sklearn(n, c, seed):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, generator=g)
    labels = torch.randint(0, c, (n,), generator=g)
    got = summarize(logits, labels)
    y, scores = labels.numpy(), logits.numpy()
    all_labels = np.arange(c)
    assert got["top1"] == pytest.approx(100 * sklearn_metrics.accuracy_score(y, scores.argmax(1)))
    # with 5 classes or fewer every video is a top-5 hit (sklearn warns and says the same)
    top5 = 100.0 if c <= 5 else 100 * sklearn_metrics.top_k_accuracy_score(y, scores, k=5, labels=all_labels)
    assert got["top5"] == pytest.approx(top5)
    cm = sklearn_metrics.confusion_matrix(y, scores.argmax(1), labels=all_labels)
    np.testing.assert_array_equal(got["confusion"].numpy(), cm)
    recall = sklearn_metrics.recall_score(y, scores.argmax(1), labels=np.unique(y), average=None, zero_division=0)
    assert got["mean_class_acc"] == pytest.approx(100 * recall.mean())
    for cls, r in zip(np.unique(y), recall):
        assert got["per_class"][str(cls)]["acc"] == pytest.approx(100 * r)
        assert got["per_class"][str(cls)]["support"] == int((y == cls).sum())


def _spd(rng, d):
    a = rng.standard_normal((d, d))
    return a @ a.T / d + np.eye(d)  # eigenvalues >= 1: well conditioned


def _scipy_frechet(mu1, s1, mu2, s2):
    covmean = scipy_linalg.sqrtm(s1 @ s2)
    covmean = np.real(covmean)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


@settings(deadline=None, max_examples=30)
@given(d=st.integers(1, 24), seed=st.integers(0, 2**31 - 1))
def test_frechet_matches_scipy_sqrtm(d, seed):
    rng = np.random.default_rng(seed)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    s1, s2 = _spd(rng, d), _spd(rng, d)
    want = _scipy_frechet(mu1, s1, mu2, s2)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(want, rel=1e-7, abs=1e-8)


@settings(deadline=None, max_examples=30)
@given(d=st.integers(1, 32), seed=st.integers(0, 2**31 - 1))
def test_frechet_closed_form_for_diagonal_covariances(d, seed):
    rng = np.random.default_rng(seed)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    v1, v2 = rng.uniform(0.1, 4.0, d), rng.uniform(0.1, 4.0, d)
    want = float(((mu1 - mu2) ** 2).sum() + ((np.sqrt(v1) - np.sqrt(v2)) ** 2).sum())
    assert frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(want, rel=1e-9, abs=1e-10)


@settings(deadline=None, max_examples=20)
@given(n=st.integers(3, 30), d=st.integers(1, 8), seed=st.integers(0, 2**31 - 1))
def test_fvd_of_features_is_the_scipy_formula_on_the_unbiased_covariance(n, d, seed):
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((n, d)), rng.standard_normal((n + 2, d)) * 1.5 + 0.3
    want = _scipy_frechet(x.mean(0), np.atleast_2d(np.cov(x, rowvar=False)),
                          y.mean(0), np.atleast_2d(np.cov(y, rowvar=False)))
    assert fvd_from_features(x, y) == pytest.approx(want, rel=1e-6, abs=1e-7)


@settings(deadline=None, max_examples=30)
@given(n=st.integers(1, 12), c=st.integers(1, 6), w=st.tuples(st.floats(0, 3), st.floats(0, 3)),
       seed=st.integers(0, 2**31 - 1))
def test_late_fusion_is_the_weighted_logit_sum_aligned_by_path(n, c, w, seed):
    g = torch.Generator().manual_seed(seed)
    paths = [f"v{i}.mp4" for i in range(n)]
    labels = torch.randint(0, c, (n,), generator=g)
    rgb, flow = torch.randn(n, c, generator=g), torch.randn(n, c, generator=g)
    perm = torch.randperm(n, generator=g)  # the flow run saved its videos in another order
    runs = [{"paths": paths, "labels": labels, "logits": rgb},
            {"paths": [paths[i] for i in perm], "labels": labels[perm], "logits": flow[perm]}]
    fused = fuse(runs, list(w))
    assert fused["paths"] == paths
    torch.testing.assert_close(fused["logits"], rgb * w[0] + flow * w[1])


def _tf1_resize_numpy(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """TF1's legacy resize_bilinear_op.cc, pixel by pixel in float32 (align_corners=False, no half-pixel shift)."""
    in_h, in_w = img.shape[:2]
    img = img.astype(np.float32)
    out = np.empty((out_h, out_w) + img.shape[2:], np.float32)
    sy, sx = np.float32(in_h) / np.float32(out_h), np.float32(in_w) / np.float32(out_w)
    for i in range(out_h):
        y = np.float32(i) * sy
        y0, y1, ly = int(np.floor(y)), min(int(np.ceil(y)), in_h - 1), np.float32(y - np.floor(y))
        for j in range(out_w):
            x = np.float32(j) * sx
            x0, x1, lx = int(np.floor(x)), min(int(np.ceil(x)), in_w - 1), np.float32(x - np.floor(x))
            top = img[y0, x0] + (img[y0, x1] - img[y0, x0]) * lx
            bottom = img[y1, x0] + (img[y1, x1] - img[y1, x0]) * lx
            out[i, j] = top + (bottom - top) * ly
    return out


@settings(deadline=None, max_examples=30)
@given(h=st.integers(1, 9), w=st.integers(1, 9), oh=st.integers(1, 12), ow=st.integers(1, 12),
       channels_last=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_tf1_resize_matches_the_kernel_pixel_by_pixel(h, w, oh, ow, channels_last, seed):
    from zoo.metrics.tf_resize import resize_bilinear_tf1
    img = np.random.default_rng(seed).integers(0, 256, (h, w, 3)).astype(np.uint8)
    want = _tf1_resize_numpy(img, oh, ow)
    if channels_last:
        got = resize_bilinear_tf1(torch.from_numpy(img)[None], (oh, ow))[0]
    else:
        got = resize_bilinear_tf1(torch.from_numpy(img).permute(2, 0, 1), (oh, ow), channels_last=False).permute(1, 2, 0)
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-4)
    if (oh, ow) == (h, w):
        np.testing.assert_array_equal(got.numpy(), img.astype(np.float32))
    square = resize_bilinear_tf1(torch.from_numpy(img), oh)
    assert square.shape == (oh, oh, 3)


def test_tf1_resize_refuses_empty_sizes_and_never_returns_its_input():
    from zoo.metrics.tf_resize import resize_bilinear_tf1
    x = torch.rand(2, 3, 3)
    for bad in [(0, 2), (2, 0)]:
        with pytest.raises(ValueError, match=r"cannot resize images of shape \(2, 3, 3\) to"):
            resize_bilinear_tf1(x, bad)
    with pytest.raises(ValueError, match=r"of shape \(0, 3, 3\) to 2x2"):
        resize_bilinear_tf1(torch.rand(0, 3, 3), (2, 2))
    same = resize_bilinear_tf1(x, (2, 3))
    assert torch.equal(same, x) and same.data_ptr() != x.data_ptr()


def test_frechet_refuses_statistics_of_different_sizes():
    from zoo.metrics.fvd_stats import FVDError
    mu, sigma = np.zeros(3), np.eye(3)
    with pytest.raises(FVDError, match=r"^statistics differ in size: mu \(3,\) vs \(2,\), sigma \(3, 3\) vs \(3, 3\)$"):
        frechet_distance(mu, sigma, np.zeros(2), sigma)
    with pytest.raises(FVDError, match=r"^statistics differ in size: mu \(3,\) vs \(3,\), sigma \(3, 3\) vs \(2, 2\)$"):
        frechet_distance(mu, sigma, mu, np.eye(2))


def test_frechet_is_computed_in_float64_whatever_the_input_dtype():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(9, 4)).astype(np.float32), rng.normal(1, 2, size=(7, 4)).astype(np.float32)
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False).astype(np.float32), np.cov(y, rowvar=False).astype(np.float32)
    want = frechet_distance(*(a.astype(np.float64) for a in (mu1, s1, mu2, s2)))
    assert frechet_distance(mu1, s1, mu2, s2) == want
    assert fvd_from_features(x, y) == fvd_from_features(x.astype(np.float64), y.astype(np.float64))


def test_square_root_keeps_singular_values_below_1e10_as_tfgan():
    """tfgan keeps singular values below 1e-10 as they are (no sqrt) and takes the sqrt from 1e-10 on."""
    from zoo.metrics.frechet import trace_sqrt_product

    from .tf_fvd_reference import trace_sqrt_product as tfgan_trace_sqrt_product
    for v in ([1e-10, 1.0, 4.0], [5e-11, 1.0, 2.0], [0.99e-10, 1.01e-10, 0.5]):
        a, b = np.diag(v), np.eye(3)
        want = float(tfgan_trace_sqrt_product(a, b))
        got = float(trace_sqrt_product(torch.from_numpy(a), torch.from_numpy(b)))
        assert got == pytest.approx(want, rel=1e-12, abs=1e-15), v
    # 1e-10 is square-rooted (twice: 1e-5, then sqrt(1e-5 * 1 * 1e-5) = 1e-5); 5e-11 is kept (twice: 5e-11, then
    # 5e-11 * 1 * 5e-11 = 2.5e-21)
    eye = torch.eye(2, dtype=torch.float64)
    got = trace_sqrt_product(torch.diag(torch.tensor([1e-10, 5e-11], dtype=torch.float64)), eye)
    assert float(got) == pytest.approx(1e-5 + 2.5e-21, rel=1e-12)


def test_tf1_resize_refuses_an_empty_width_or_height_alone():
    from zoo.metrics.tf_resize import resize_bilinear_tf1
    for shape in [(3, 0, 3), (0, 3, 3)]:
        with pytest.raises(ValueError, match=rf"^cannot resize images of shape \({shape[0]}, {shape[1]}, 3\) to 2x2$"):
            resize_bilinear_tf1(torch.rand(shape), (2, 2))
    with pytest.raises(ValueError, match=r"^cannot resize images of shape \(3, 0, 2\) to 2x2$"):
        resize_bilinear_tf1(torch.rand(3, 0, 2), 2, channels_last=False)


def _rank_of_label(row: list[int], label: int) -> int:
    """Classes ranked before the label: higher logits, and equal logits of a lower class index (argmax's rule)."""
    return sum(v > row[label] or (v == row[label] and j < label) for j, v in enumerate(row))


@settings(deadline=None, max_examples=60)
@given(rows=st.integers(1, 12).flatmap(lambda c: st.lists(
    st.tuples(st.lists(st.integers(-2, 2), min_size=c, max_size=c), st.integers(0, c - 1)), min_size=1, max_size=20)))
def test_tied_logits_rank_the_lower_class_first_everywhere(rows):
    """With ties (small integer logits), top-k counts the label as argmax does: the lower class index first, so
    top-1 always equals the confusion matrix's diagonal and the per-class accuracies."""
    logits = torch.tensor([r for r, _ in rows], dtype=torch.float32)
    labels = torch.tensor([y for _, y in rows])
    got = summarize(logits, labels)
    n, c = logits.shape
    for k in (1, 5):
        want = sum(_rank_of_label(r, y) < k for r, y in rows)
        assert got[f"top{k}"] == pytest.approx(100.0 * want / n)
    assert got["top1"] == pytest.approx(100.0 * int(got["confusion"].trace()) / n)


def test_per_class_accuracy_leaves_out_absent_classes_and_uses_the_names():
    logits = torch.tensor([[5.0, 0, 0, 0], [0, 5.0, 0, 0], [0, 5.0, 0, 0], [5.0, 0, 0, 0]])
    labels = torch.tensor([0, 1, 0, 3])                       # class 2 has no video, class 3 one missed
    got = summarize(logits, labels, ["walk", "run", "jump", "sit"])
    assert got["per_class"] == {"walk": {"acc": 50.0, "support": 2}, "run": {"acc": 100.0, "support": 1},
                                "sit": {"acc": 0.0, "support": 1}}
    assert got["mean_class_acc"] == pytest.approx(50.0)         # (50 + 100 + 0) / 3: the absent class not counted
    assert got["top1"] == 50.0 and got["top5"] == 100.0 and got["num_videos"] == 4
    assert got["confusion"].tolist() == [[1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0]]
    assert list(summarize(logits, labels)["per_class"]) == ["0", "1", "3"]
    empty = summarize(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))
    assert (empty["top1"], empty["top5"], empty["mean_class_acc"], empty["per_class"]) == (0.0, 0.0, 0.0, {})


def test_fusion_keeps_the_first_runs_order_and_labels_and_refuses_mismatches():
    labels = torch.tensor([0, 1, 2])
    rgb = {"paths": ["a", "b", "c"], "labels": labels, "logits": torch.eye(3)}
    flow = {"paths": ["c", "a", "b"], "labels": labels[[2, 0, 1]], "logits": 2 * torch.eye(3)[[2, 0, 1]]}
    fused = fuse([rgb, flow], [1, 0.5])
    assert fused["paths"] == ["a", "b", "c"] and torch.equal(fused["labels"], labels)
    torch.testing.assert_close(fused["logits"], 2 * torch.eye(3))
    with pytest.raises(ValueError, match=r"^2 runs but 1 fusion weights$"):
        fuse([rgb, flow], [1])
    short = {"paths": ["a", "x", "y"], "labels": labels, "logits": torch.eye(3)}
    with pytest.raises(ValueError, match=r"^a fused run lacks predictions for 2 videos \(e\.g\. b\); evaluate both "
                                         r"runs on the same split$"):
        fuse([rgb, short], [1, 1])
    relabelled = {**flow, "labels": torch.tensor([0, 0, 1])}
    with pytest.raises(ValueError, match=r"^the fused runs disagree on labels; were they evaluated on the same "
                                         r"class index\?$"):
        fuse([rgb, relabelled], [1, 1])


def _svg_texts(path) -> list[tuple[str, str, str]]:
    """(text, font size, transform) of every text element of an SVG written with svg.fonttype "none"."""
    import re
    import xml.etree.ElementTree as ET
    out = []
    for el in ET.parse(path).getroot().iter("{http://www.w3.org/2000/svg}text"):
        size = re.search(r"font-size: (\d+)px", el.get("style", "")).group(1)
        out.append((el.text, size, el.get("transform", "")))
    return out


def test_confusion_image_rows_are_normalised_per_true_class(tmp_path):
    """The PNG: 120 dpi, 4 inches (0.35 per class beyond 11), each cell coloured Blues(row-normalised count)."""
    import matplotlib
    from matplotlib.image import imread
    from zoo.train.metrics import save_confusion_png
    blues = matplotlib.colormaps["Blues"]

    def colours(cm):
        path = save_confusion_png(torch.tensor(cm), tmp_path / "cm.png")
        assert path == tmp_path / "cm.png"
        img = (imread(path)[..., :3] * 255).round().astype(np.int64)
        packed = np.unique(img[..., 0] << 16 | img[..., 1] << 8 | img[..., 2])
        return img.shape[:2], np.stack([packed >> 16, packed >> 8 & 255, packed & 255], 1)

    def drawn(v, seen):  # Blues(v) is drawn, up to the colour map's neighbouring entry
        return bool((np.abs(seen - np.array(blues(v)[:3]) * 255).max(1) <= 3).any())

    shape, seen = colours([[3, 1, 0], [0, 0, 1], [0, 0, 0]])   # rows sum to 4, 1 and 0 (an absent class)
    assert shape == (480, 480)
    assert all(drawn(v, seen) for v in (0.75, 0.25, 0.0, 1.0)) and not drawn(0.5, seen)
    shape, seen = colours([[3, 1], [1, 3]])                    # no cell at 0 or 1: the scale stays [0, 1]
    assert drawn(0.75, seen) and drawn(0.25, seen) and not drawn(0.0, seen) and not drawn(1.0, seen)
    save_confusion_png(torch.eye(20, dtype=torch.long), tmp_path / "20.png")
    assert imread(tmp_path / "20.png").shape[:2] == (840, 840)  # 20 x 0.35 = 7 inches


def test_confusion_image_names_the_classes_up_to_60(tmp_path):
    import matplotlib
    from zoo.train.metrics import save_confusion_png, tick_labels
    with matplotlib.rc_context({"svg.fonttype": "none"}):    # text as <text> elements, to read back
        save_confusion_png(torch.tensor([[1, 0], [0, 1]]), tmp_path / "cm.svg", ["walk", "run"], title="rgb run")
        texts = _svg_texts(tmp_path / "cm.svg")
        save_confusion_png(torch.tensor([[1, 0], [0, 1]]), tmp_path / "plain.svg")
        plain = _svg_texts(tmp_path / "plain.svg")
    x_ticks = [(t, s) for t, s, tr in texts if tr.endswith("rotate(-90)")]
    y_ticks = [(t, s) for t, s, tr in texts if t in ("walk", "run") and "rotate(-0 " in tr]
    assert x_ticks == [("walk", "6"), ("run", "6")] and y_ticks == [("walk", "6"), ("run", "6")]
    assert {("predicted", "10"), ("true", "10"), ("rgb run", "12")} <= {(t, s) for t, s, _ in texts}
    assert ("confusion matrix", "12") in {(t, s) for t, s, _ in plain} and not {"walk", "run"} & {t for t, _, _ in plain}
    names = [f"c{i}" for i in range(61)]
    assert tick_labels(names[:60], 60) == names[:60] and tick_labels(names, 61) is None   # beyond 60 they overlap
    assert tick_labels(None, 2) is None and tick_labels([], 0) is None


def test_fvd_from_stats_is_the_scipy_formula_and_checks_the_protocols():
    from zoo.metrics.frechet import fvd_from_stats
    from zoo.metrics.fvd_stats import FVDError, FVDStats
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((12, 3)), rng.standard_normal((9, 3)) * 2 + 0.5
    a, b = FVDStats.from_features(x, {"frames": 16}), FVDStats.from_features(y, {"frames": 16})
    want = _scipy_frechet(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
    assert fvd_from_stats(a, b) == pytest.approx(want, rel=1e-9)
    with pytest.raises(FVDError, match=r"^REAL and FAKE were computed under different protocols \(frames: REAL 16 vs "
                                       r"FAKE 8\)"):
        fvd_from_stats(a, FVDStats.from_features(y, {"frames": 8}))


def test_ties_among_many_classes_still_rank_the_lower_class_first():
    """torch's unstable sort reorders ties from 17 classes up; a constant model scores argmax's class 0."""
    logits, c = torch.zeros(3, 400), 400
    for label, top1, top5 in ((0, 100.0, 100.0), (4, 0.0, 100.0), (5, 0.0, 0.0), (c - 1, 0.0, 0.0)):
        got = summarize(logits, torch.full((3,), label))
        assert (got["top1"], got["top5"]) == (top1, top5), label
