import math

import numpy as np
import pytest

from taxodiff.hierarchy import Hierarchy
from taxodiff.metrics.modes import ModeSettings, category_stats, fidelity, mode_metrics

H = Hierarchy.from_spec({"animal": {"dog": 0.5, "cat": 0.5}, "vehicle": {"car": 0.75, "truck": 0.25}})
S = ModeSettings(coverage_rel=0.25, kl_smoothing=0.5, bootstrap=200, seed=0)


def test_collapsed_category_by_hand():
    pred = np.array([0] * 10)  # all dogs
    st = category_stats(pred, np.array([0.5, 0.5]), [0, 1], S)
    q = np.array([10.5, 0.5]) / 11
    assert st["proportions"] == [1.0, 0.0]
    assert st["coverage"] == 0.5
    assert st["entropy"] == 0.0
    assert st["kl"] == pytest.approx(0.5 * math.log(0.5 / q[0]) + 0.5 * math.log(0.5 / q[1]))
    assert st["tv"] == pytest.approx(0.5)
    assert st["off_category"] == 0.0


def test_exact_match_by_hand():
    pred = np.array([2, 2, 2, 3])  # car 0.75, truck 0.25 exactly
    st = category_stats(pred, np.array([0.75, 0.25]), [2, 3], S)
    q = np.array([3.5, 1.5]) / 5  # smoothed
    assert st["coverage"] == 1.0
    assert st["entropy"] == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))
    assert st["kl"] == pytest.approx(0.75 * math.log(0.75 / q[0]) + 0.25 * math.log(0.25 / q[1]))
    assert st["tv"] == pytest.approx(0.0)


def test_uniform_and_off_category():
    pred = np.array([0, 1, 0, 1, 2, 3])  # two of six outside "animal"
    st = category_stats(pred, np.array([0.5, 0.5]), [0, 1], S)
    assert st["off_category"] == pytest.approx(1 / 3)
    assert st["proportions"] == [0.5, 0.5]
    assert st["entropy"] == pytest.approx(math.log(2))
    assert st["kl"] == pytest.approx(0.0)


def test_coverage_threshold_is_relative():
    # truck share 0.05 < 0.25 * 0.25 = 0.0625: not covered; 0.07 is
    low = category_stats(np.array([2] * 95 + [3] * 5), np.array([0.75, 0.25]), [2, 3], S)
    high = category_stats(np.array([2] * 93 + [3] * 7), np.array([0.75, 0.25]), [2, 3], S)
    assert low["coverage"] == 0.5 and high["coverage"] == 1.0


def test_overall_weighting_and_intervals():
    z2 = np.array([0] * 100 + [1] * 100)
    pred = np.array([0] * 100 + [2] * 75 + [3] * 25)
    m = mode_metrics(H, z2, pred, S)
    animal, vehicle = m["categories"]["animal"], m["categories"]["vehicle"]
    assert m["overall"]["coverage"] == pytest.approx(0.5 * 0.5 + 0.5 * 1.0)
    assert m["overall"]["kl"] == pytest.approx(0.5 * animal["kl"] + 0.5 * vehicle["kl"])
    lo, hi = m["overall"]["ci"]["kl"]
    assert lo <= m["overall"]["kl"] <= hi + 1e-12
    assert vehicle["ci"]["coverage"][0] <= 1.0
    assert m["overall"]["entropy_data"] == pytest.approx(H.entropy())


def test_fidelity():
    f = fidelity(np.array([0, 1, 2, 3]), np.array([0, 1, 2, 0]), bootstrap=100)
    assert f["value"] == 0.75 and 0 <= f["ci"][0] <= 0.75 <= f["ci"][1] <= 1
