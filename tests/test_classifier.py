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


def test_style_targets_span_minus_one_to_one():
    from taxodiff.metrics.classifier import style_targets

    st = StyleConfig(max_offset=0.1, scale=(0.5, 1.0), brightness=(0.2, 0.6))
    z0 = torch.tensor([[-0.1, 0.1, 0.5, 0.0, 0.2, 0.0], [0.1, -0.1, 1.0, 0.25, 0.6, 1.0]])
    t = style_targets(z0, st)
    expected = torch.tensor([[-1.0, 1.0, -1.0, 1.0, 0.0, -1.0, -1.0], [1.0, -1.0, 1.0, 0.0, 1.0, 1.0, 1.0]])
    assert torch.allclose(t, expected, atol=1e-6)


def test_classifier_reports_style_fit():
    spec = DomainSpec(shapes=("dog", "car"), size=16, style=StyleConfig(), n_train=256, n_test=64, epochs=1, width=8)
    _, info = domain_classifier(spec, torch.device("cpu"), progress=False)
    assert info["style_r2"] <= 1.0 and "accuracy" in info
