"""Guidance rules beyond plain CFG: the interval rule and CADS, checked against their definitions."""

from __future__ import annotations

import pytest
import torch

from taxodiff.nets.mlp import MLPConfig, MLPDenoiser
from taxodiff.noise import Noise
from taxodiff.processes.gaussian import GaussianProcess
from taxodiff.processes.guidance import Guidance, guided
from taxodiff.processes.guiders import CADS, Guiders, Interval, anneal_condition, cads_gamma

PROCESS = GaussianProcess()
AB = PROCESS.abar(torch.arange(1, PROCESS.T + 1))  # indexed by the network's time t - 1


class Counting(torch.nn.Module):
    """Wraps a net and counts the rows it was evaluated on."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net, self.rows = MLPDenoiser(MLPConfig(dim=2, cond_dim=3, hidden=16, layers=1)), 0

    def forward(self, x, t, cond, drop=None):  # type: ignore[no-untyped-def]
        self.rows += len(x)
        return self.net(x, t, cond, drop)


def _sigma(t: int) -> float:
    ab = float(AB[t])
    return ((1 - ab) / ab) ** 0.5


def _inputs(t: int):  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(t)
    return torch.randn(4, 2, generator=g), torch.full((4,), t), torch.randn(4, 3, generator=g)


def test_interval_guides_only_inside_its_sigma_range():
    net, rule = Counting(), Guidance(2.0, Interval(sigma=(0.5, 3.0)))
    inside = next(t for t in range(1000) if 0.5 < _sigma(t) <= 3.0)
    outside_low, outside_high = 0, 999
    assert _sigma(outside_low) <= 0.5 and _sigma(outside_high) > 3.0
    for t in (inside, outside_low, outside_high):
        x, tb, c = _inputs(t)
        out = guided(net, c, rule, PROCESS)(x, tb)
        plain_cfg = guided(net, c, 2.0)(x, tb)
        conditional = net(x, tb, c)
        assert torch.allclose(out, plain_cfg if t == inside else conditional, atol=1e-6)
    net.rows = 0
    guided(net, c, rule, PROCESS)(x, tb)  # outside: a single conditional pass, no unconditional one
    assert net.rows == 4


def test_cads_schedule_and_condition():
    tau = torch.tensor([0.0, 0.6, 0.75, 0.9, 1.0])
    assert torch.allclose(cads_gamma(tau, 0.6, 0.9), torch.tensor([1.0, 1.0, 0.5, 0.0, 0.0]))
    c = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    g = Noise(torch.Generator().manual_seed(0))
    # gamma = 1: the condition itself (rescaling it to its own statistics changes nothing)
    assert torch.allclose(anneal_condition(c, torch.tensor(1.0), 0.25, 1.0, g), c, atol=1e-6)
    # gamma = 0, psi = 0: s * n exactly
    n = torch.randn(c.shape, generator=torch.Generator().manual_seed(1))
    out = anneal_condition(c, torch.tensor(0.0), 0.25, 0.0, Noise(torch.Generator().manual_seed(1)))
    assert torch.allclose(out, 0.25 * n)
    # gamma = 0, psi = 1: noise rescaled to the mean and std of each condition row
    out = anneal_condition(c, torch.tensor(0.0), 0.25, 1.0, Noise(torch.Generator().manual_seed(1)))
    assert torch.allclose(out.mean(1), c.mean(1), atol=1e-6) and torch.allclose(out.std(1), c.std(1), atol=1e-6)


def test_cads_is_cfg_late_and_differs_early():
    net, rule = Counting(), Guidance(2.0, CADS(tau=(0.6, 0.9), noise=0.25))
    x, tb, c = _inputs(100)  # tau = 0.1 <= tau1: the clean condition
    noise = Noise(torch.Generator())
    assert torch.allclose(guided(net, c, rule, PROCESS, noise)(x, tb), guided(net, c, 2.0)(x, tb), atol=1e-6)
    x, tb, c = _inputs(950)  # tau = 0.95 >= tau2: a noise condition
    assert not torch.allclose(guided(net, c, rule, PROCESS, noise)(x, tb), guided(net, c, 2.0)(x, tb))


def test_unknown_method_and_missing_inputs_are_refused():
    net, c = Counting(), torch.zeros(1, 3)
    with pytest.raises(ValueError, match="not one of cfg, interval, cads"):
        Guiders().rule("nope")
    with pytest.raises(ValueError, match="needs the process"):
        guided(net, c, Guidance(rule=Interval()))
    with pytest.raises(ValueError, match="random streams"):
        guided(net, c, Guidance(rule=CADS()), PROCESS)
