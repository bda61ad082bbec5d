"""The domain classifier: cached round trip, its key, the augmentation, the style targets."""

import torch

from taxodiff import config, runs
from taxodiff.data import get_source
from taxodiff.data.shapes.render import StyleConfig, style_targets
from taxodiff.evaluate.classifier import classifier_data, corrupt, domain_classifier, predict
from tests.conftest import TINY


def _source(**over):  # type: ignore[no-untyped-def]
    base = {"hierarchy": {"a": {"dog": 0.5, "car": 0.5}, "b": {"star": 1.0}}, "eval.classifier_train": 256}
    cfg = config.load(TINY, {**base, "eval.classifier_test": 64, "eval.classifier_epochs": 1, **over})
    return get_source(cfg.data.source)(cfg)


def test_cached_classifier_round_trip(monkeypatch):
    locks = []
    real = runs.locked
    monkeypatch.setattr(runs, "locked", lambda path: (locks.append(path), real(path))[1])
    a, info_a = domain_classifier(_source(), torch.device("cpu"), progress=False)
    b, info_b = domain_classifier(_source(), torch.device("cpu"), progress=False)
    assert not info_a["cached"] and info_b["cached"]
    assert len(locks) == 1  # trained under the lock; found in the cache without it
    assert info_a["accuracy"] == info_b["accuracy"] and info_b["classes"] == ["dog", "car", "star"]
    x = torch.rand(5, 3, 16, 16) * 2 - 1
    assert torch.equal(predict(a, x), predict(b, x))
    assert classifier_data(_source(**{"eval.classifier_train": 128})).digest() != classifier_data(_source()).digest()
    # the classifier does not depend on the run's seed or the tree's probabilities: one scores every run
    same = _source(seed=5, hierarchy={"a": {"dog": 0.9, "car": 0.1}, "b": {"star": 1.0}})
    assert classifier_data(same).digest() == classifier_data(_source()).digest()


def test_corruption_is_mild_and_seeded():
    x = torch.zeros(64, 3, 8, 8)
    a, b = corrupt(x, torch.Generator().manual_seed(0)), corrupt(x, torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    assert a.std() < 0.15 and a.std() > 0.01


def test_style_targets_span_minus_one_to_one():
    st = StyleConfig(max_offset=0.1, scale=(0.5, 1.0), brightness=(0.2, 0.6))
    z0 = torch.tensor([[-0.1, 0.1, 0.5, 0.0, 0.2, 0.0], [0.1, -0.1, 1.0, 0.25, 0.6, 1.0]])
    t = style_targets(z0, st)
    expected = torch.tensor([[-1.0, 1.0, -1.0, 1.0, 0.0, -1.0, -1.0], [1.0, -1.0, 1.0, 0.0, 1.0, 1.0, 1.0]])
    assert torch.allclose(t, expected, atol=1e-6)


def test_classifier_reports_style_fit():
    """The style head explains most of the style factors' variance on held-out images once trained (R^2 0.80 at
    30 epochs here; about 0 after one, when it predicts little more than the mean: -0.02)."""
    over = {"hierarchy": {"a": {"dog": 0.5, "car": 0.5}}, "eval.classifier_epochs": 30, "eval.classifier_train": 512}
    _, info = domain_classifier(_source(**over), torch.device("cpu"), False)
    assert info["style_r2"] > 0.5 and info["accuracy"] > 0.95
