import itertools
import math
from math import factorial

import numpy as np
import pytest

from taxodiff.hierarchy import Hierarchy
from taxodiff.metrics.modes import ModeSettings, category_stats, chance_in_seeds, chance_lost, fidelity, mode_metrics

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


CHANCE_CASES = [([0.5, 0.3, 0.2], 7, 0.25), ([0.9, 0.05, 0.05], 12, 0.5), ([1.0], 5, 0.25)]


@pytest.mark.parametrize(("p", "n", "rel"), CHANCE_CASES)
def test_chance_lost_equals_enumerating_every_draw(p: list[float], n: int, rel: float) -> None:
    """The exact sampler's chance of losing a subtype, against the sum over every count vector of its
    multinomial probability, a vector counted lost as category_stats counts coverage."""
    lost = 0.0
    for counts in itertools.product(range(n + 1), repeat=len(p)):
        if sum(counts) != n:
            continue
        prob = factorial(n) * np.prod([pk**c / factorial(c) for pk, c in zip(p, counts, strict=True)])
        pred = np.repeat(np.arange(len(p)), counts)
        cov = category_stats(pred, np.array(p), list(range(len(p))), ModeSettings(coverage_rel=rel))["coverage"]
        lost += prob * (cov < 1.0)
    assert chance_lost(p, n, rel) == pytest.approx(lost, abs=1e-12)


def test_chance_in_seeds_is_the_binomial_tail() -> None:
    assert chance_in_seeds(0.5, 2, 3) == pytest.approx(0.5)  # 3/8 + 1/8
    assert chance_in_seeds(0.2, 0, 3) == 1.0 and chance_in_seeds(0.2, 3, 3) == pytest.approx(0.008)


def test_chance_lost_beyond_the_exact_size_is_drawn_near_the_exact_value() -> None:
    """The seeded-draw estimate used for large samples agrees with the exact value at a size both can do
    (tolerance: 5 standard errors of 100,000 draws at p = 0.2, 0.0063)."""
    from taxodiff.metrics.modes import _chance_lost_drawn

    p = [0.9, 0.1 / 3, 0.1 / 3, 0.1 / 3]
    exact = chance_lost(p, 128, 0.25)
    assert 0.15 < exact < 0.25
    assert _chance_lost_drawn(np.array(p), 128, 0.25) == pytest.approx(exact, abs=0.0063)
    assert chance_lost(p, 5000, 0.25) == pytest.approx(0.0, abs=1e-3)  # drawn: a rare class is 167 samples
