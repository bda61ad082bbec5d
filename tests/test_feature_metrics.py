"""Feature-space metrics: PRDC, Vendi, Fréchet distance, memorisation against hand-computed tiny cases and the
reference packages (prdc, vendi-score) where they are installed."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from taxodiff.metrics.frechet import frechet_distance
from taxodiff.metrics.memorisation import memorisation
from taxodiff.metrics.prdc import prdc
from taxodiff.metrics.vendi import vendi_by_group, vendi_score


def test_prdc_hand_case():
    # reals 0..5 on a line, k = 1: every real radius is 1. Fakes at 0.5 and 10 (fake radii 9.5).
    real = np.arange(6.0)[:, None]
    fake = np.array([[0.5], [10.0]])
    m = prdc(real, fake, k=1)
    assert m["precision"] == pytest.approx(0.5)  # 0.5 lies in the balls of reals 0 and 1; 10 in none
    assert m["recall"] == pytest.approx(1.0)  # every real is within 9.5 of the fake at 0.5
    assert m["density"] == pytest.approx(2 / 2)  # 2 ball memberships / (k * M)
    assert m["coverage"] == pytest.approx(2 / 6)  # only reals 0 and 1 have a fake within distance 1


def test_prdc_identical_sets_and_disjoint_sets():
    x = np.random.default_rng(0).normal(size=(200, 4))
    same = prdc(x, x, k=5)
    assert same["precision"] == same["recall"] == same["coverage"] == 1.0
    far = prdc(x, x + 100.0, k=5)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_prdc_matches_reference_package():
    ref = pytest.importorskip("prdc")
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(300, 8)), rng.normal(0.3, 1.2, size=(250, 8))
    ours, theirs = prdc(real, fake, k=5), ref.compute_prdc(real_features=real, fake_features=fake, nearest_k=5)
    for key in ("precision", "recall", "density", "coverage"):
        assert ours[key] == pytest.approx(float(theirs[key]), abs=1e-12)


def test_prdc_rejects_too_few_samples():
    with pytest.raises(ValueError, match="more than 5"):
        prdc(np.zeros((5, 2)), np.zeros((10, 2)), k=5)


def test_vendi_copies_orthogonal_and_two_clusters():
    assert vendi_score(np.tile([[1.0, 2.0, 3.0]], (50, 1))) == pytest.approx(1.0)
    assert vendi_score(np.eye(7)) == pytest.approx(7.0)
    # half the rows e1, half e2: eigenvalues 1/2, 1/2 -> exp(log 2) = 2
    x = np.vstack([np.tile([1.0, 0.0], (10, 1)), np.tile([0.0, 3.0], (10, 1))])
    assert vendi_score(x) == pytest.approx(2.0)
    assert vendi_by_group(x, np.repeat([0, 1, 2], [10, 10, 0]), 3) == [pytest.approx(1.0), pytest.approx(1.0), None]


def test_vendi_matches_reference_package():
    pytest.importorskip("vendi_score")
    from vendi_score import vendi

    x = np.random.default_rng(2).normal(size=(120, 6))
    assert vendi_score(x) == pytest.approx(float(vendi.score_dual(x, normalize=True)), rel=1e-9)


def test_frechet_closed_form():
    # exact sample statistics: real mean 0, unbiased cov (2/3) I; fake = 2 real + (3, 4): cov (8/3) I
    real = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]])
    fake = 2 * real + np.array([3.0, 4.0])
    expected = 25 + 2 * (2 / 3 + 8 / 3 - 2 * math.sqrt(2 / 3 * 8 / 3))
    assert frechet_distance(real, fake) == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(real, real) == pytest.approx(0.0, abs=1e-9)


def test_memorisation_hand_case():
    train = torch.tensor([[0.0], [10.0], [30.0]])
    samples = torch.tensor([[1.0], [5.0], [20.0], [10.0]])
    # ratios d1/d2: 1/9 (copy-like), 5/5, 10/10, 0/10 (exact copy)
    m = memorisation(samples, train)
    assert m["rate"] == pytest.approx(2 / 4)
    assert m["median_ratio"] == pytest.approx(1 / 9)  # torch's median of (1/9, 1, 1, 0) is the lower middle


def test_memorisation_of_copies_and_fresh_images():
    g = torch.Generator().manual_seed(0)
    train = torch.rand(200, 3, 8, 8, generator=g)
    copies = train[:20] + 0.01 * torch.randn(20, 3, 8, 8, generator=g)
    fresh = torch.rand(30, 3, 8, 8, generator=g)
    assert memorisation(copies, train)["rate"] == 1.0
    assert memorisation(fresh, train)["rate"] == 0.0


def test_within_subtype_ratio_tells_collapse_inside_modes():
    from taxodiff.hierarchy import Hierarchy
    from taxodiff.metrics.features import feature_metrics

    h = Hierarchy.from_spec({"animal": {"dog": 0.5, "cat": 0.5}})
    rng = np.random.default_rng(3)
    leaf = np.repeat([0, 1], 50)
    real = rng.normal(size=(100, 16)) + 5 * np.eye(16)[leaf]  # two varied clusters
    z2 = np.zeros(100, dtype=int)
    same = feature_metrics(h, real, z2, leaf, real, z2, leaf)
    assert same["overall"]["within_subtype_ratio"] == pytest.approx(1.0)
    assert same["overall"]["frechet"] == pytest.approx(0.0, abs=1e-6)
    # every mode present, each collapsed to one image (plus tiny jitter): within-mode diversity ~1 of ~data's
    collapsed = real[[0] * 50 + [50] * 50] + 1e-6 * rng.normal(size=(100, 16))
    out = feature_metrics(h, collapsed, z2, leaf, real, z2, leaf)
    within = out["categories"]["animal"]["within_subtype"]
    assert within["vendi"] == [pytest.approx(1.0, abs=1e-3)] * 2
    assert min(within["vendi_data"]) > 3  # the data's clusters are varied ...
    expected = np.mean([1 / v for v in within["vendi_data"]])  # ... so the ratio is 1 / their Vendi
    assert out["overall"]["within_subtype_ratio"] == pytest.approx(expected, rel=1e-3)
