import math

import pytest

from taxodiff.data.shapes.sdf import SHAPE_NAMES
from taxodiff.errors import TaxodiffError
from taxodiff.hierarchy import Hierarchy

SEED = {"animal": {"dog": 0.5, "cat": 0.5}, "vehicle": {"car": 0.7, "truck": 0.3}}


def test_probabilities_and_structure():
    h = Hierarchy.from_spec(SEED)
    assert h.category_names == ["animal", "vehicle"]
    assert h.leaf_names == ["dog", "cat", "car", "truck"]
    assert h.leaf_category() == [0, 0, 1, 1]
    assert h.category_probs() == pytest.approx([0.5, 0.5])
    assert h.leaf_probs() == pytest.approx([0.25, 0.25, 0.35, 0.15])
    assert h.conditional(1) == pytest.approx([0.7, 0.3])
    expected = 0.5 * math.log(2) + 0.5 * -(0.7 * math.log(0.7) + 0.3 * math.log(0.3))
    assert h.entropy() == pytest.approx(expected)


def test_seed_anchor_layout():
    angles = [math.degrees(math.atan2(y, x)) % 360 for x, y in Hierarchy.from_spec(SEED).anchors()]
    assert angles == pytest.approx([60, 120, 240, 300])


@pytest.mark.parametrize("dim", [2, 3, 8])
def test_anchors_unit_norm_and_distinct(dim):
    spec = {"a": {"dog": 0.2, "cat": 0.8}, "b": {"car": 1.0}, "c": {"fish": 0.1, "bird": 0.3, "star": 0.6}}
    a = Hierarchy.from_spec(spec, embed_dim=dim).anchors()
    assert len(a) == 6 and all(len(v) == dim for v in a)
    assert all(abs(sum(x * x for x in v) - 1) < 1e-9 for v in a)
    assert len({tuple(round(x, 6) for x in v) for v in a}) == 6


def test_deeper_tree_and_uniform_default():
    spec = {
        "living": {"animal": {"dog": 0.5, "cat": 0.5}, "plant": {"tree": 1.0}},
        "object": {"p": 1.0, "children": {"vehicle": {"car": 0.5, "truck": 0.5}}},
    }
    with pytest.raises(TaxodiffError, match="every child or to none"):
        Hierarchy.from_spec(spec)
    spec["living"] = {"p": 0.4, "children": spec["living"]}
    spec["object"]["p"] = 0.6
    h = Hierarchy.from_spec(spec)
    assert h.depth == 3
    assert h.category_names == ["living", "object"]
    assert h.conditional(0) == pytest.approx([0.25, 0.25, 0.5])
    h2 = Hierarchy.from_spec(spec, cond_level=2)
    assert h2.category_names == ["animal", "plant", "vehicle"]
    assert h2.category_probs() == pytest.approx([0.2, 0.2, 0.6])
    assert Hierarchy.from_spec({"a": {"dog": {"p": 1.0}}}).leaf_names == ["dog"]


def test_round_trip_spec():
    h = Hierarchy.from_spec({"a": {"x": {"p": 0.3, "shape": "star"}, "cat": 0.7}, "b": {"car": 1.0}})
    assert Hierarchy.from_spec(h.to_spec()).leaf_probs() == pytest.approx(h.leaf_probs())
    assert [n.label for n in h.leaves] == ["star", "cat", "car"]


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"a": {"dog": 0.5, "cat": 0.6}}, "sum to 1.1"),
        ({"a": {"dog": 0.5, "unicorn": 0.5}}, "unknown shape 'unicorn'"),
        ({"a": {}}, "is empty"),
        ({}, "non-empty mapping"),
        ({"a": {"dog": -0.5, "cat": 1.5}}, "probability -0.5"),
        ({"a": {"dog": "half"}}, "allowed is a probability"),
        ({"a": {"dog": 1.0}, "b": {"dog": 1.0}}, "unique"),
        ({"a": {"dog": 0.5, "x": {"p": 0.5, "shape": "dog"}}}, "different shape"),
    ],
)
def test_invalid_hierarchies(spec, message):
    with pytest.raises(TaxodiffError, match=message):
        Hierarchy.from_spec(spec, labels=SHAPE_NAMES)


def test_cond_level_bounds():
    with pytest.raises(TaxodiffError, match="cond_level=2"):
        Hierarchy.from_spec(SEED, cond_level=2)


def test_lists_of_leaves_and_data_frequencies():
    """A list names leaves without probabilities: uniform, or proportional to the data's label frequencies."""
    spec = {"round": ["0", "6"], "straight": ["1"]}
    assert Hierarchy.from_spec(spec).leaf_probs() == pytest.approx([0.25, 0.25, 0.5])
    h = Hierarchy.from_spec(spec, labels=tuple("0123456789"), label_word="class", weights={"0": 10, "6": 30, "1": 60})
    assert h.leaf_probs() == pytest.approx([0.1, 0.3, 0.6]) and h.category_probs() == pytest.approx([0.4, 0.6])
    stated = {"round": {"p": 0.5, "children": ["0", "6"]}, "straight": {"p": 0.5, "children": ["1"]}}
    h = Hierarchy.from_spec(stated, weights={"0": 10, "6": 30, "1": 60})  # stated levels win
    assert h.leaf_probs() == pytest.approx([0.125, 0.375, 0.5])


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"a": ["0", "0"]}, "lists '0' twice"),
        ({"a": ["0"], "b": ["0"]}, "unique"),
        ({"a": {"x": {"label": "0"}, "y": {"label": "0"}}}, "different class, listed twice: 0"),
        ({"a": ["11"]}, "unknown class '11'; allowed classes: 0, 1"),
    ],
)
def test_class_listed_twice_or_unknown(spec, message):
    with pytest.raises(TaxodiffError, match=message):
        Hierarchy.from_spec(spec, labels=tuple("0123456789"), label_word="class")
