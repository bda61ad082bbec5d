import torch

from taxodiff.data.images import StyleConfig
from taxodiff.metrics.classifier import DomainSpec, corrupt, domain_classifier, predict


def test_cached_classifier_round_trip():
    spec = DomainSpec(
        shapes=("dog", "car", "star"), size=16, style=StyleConfig(), n_train=256, n_test=64, epochs=1, width=8
    )
    a, info_a = domain_classifier(spec, torch.device("cpu"), progress=False)
    b, info_b = domain_classifier(spec, torch.device("cpu"), progress=False)
    assert not info_a["cached"] and info_b["cached"]
    assert info_a["accuracy"] == info_b["accuracy"] and info_b["classes"] == ["dog", "car", "star"]
    x = torch.rand(5, 3, 16, 16) * 2 - 1
    assert torch.equal(predict(a, x), predict(b, x))
    other = DomainSpec(
        shapes=("dog", "car", "star"), size=16, style=StyleConfig(), n_train=256, n_test=64, epochs=1, width=8, seed=1
    )
    assert other.key() != spec.key()


def test_corruption_is_mild_and_seeded():
    x = torch.zeros(64, 3, 8, 8)
    a, b = corrupt(x, torch.Generator().manual_seed(0)), corrupt(x, torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    assert a.std() < 0.15 and a.std() > 0.01
