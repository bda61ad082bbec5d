"""Uniform multinomial diffusion: transition matrices, the closed-form marginal and posterior vs Bayes' rule."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from taxodiff.noise import Noise
from taxodiff.processes.multinomial import MultinomialConfig, MultinomialProcess

PROC = MultinomialProcess(MultinomialConfig(num_classes=5, num_steps=30, beta_start=0.01, beta_end=0.3))


def test_transition_rows_sum_to_one_and_compose_to_the_marginal():
    qbar = torch.eye(5, dtype=torch.float64)
    for t in range(1, PROC.T + 1):
        q = PROC.transition(t)
        torch.testing.assert_close(q.sum(1), torch.ones(5, dtype=torch.float64))
        assert q.min() >= 0
        qbar = qbar @ q
        x0 = torch.arange(5)[:, None]
        closed = PROC.marginal_probs(x0, torch.full((5,), t))[:, :, 0].double()
        torch.testing.assert_close(closed, qbar, atol=1e-6, rtol=0)


@pytest.mark.parametrize("t", [1, 2, 15, 30])
def test_posterior_is_bayes_rule(t):
    qt, qbar_prev = PROC.transition(t), torch.eye(5, dtype=torch.float64)
    for s in range(1, t):
        qbar_prev = qbar_prev @ PROC.transition(s)
    for x0 in range(5):
        for xt in range(5):
            joint = qbar_prev[x0, :] * qt[:, xt]  # q(x_{t-1} | x0) q(x_t | x_{t-1})
            bayes = joint / joint.sum()
            got = PROC.posterior(
                torch.tensor([[xt]]), F.one_hot(torch.tensor([[x0]]), 5).permute(0, 2, 1), torch.tensor([t])
            )
            torch.testing.assert_close(got[0, :, 0].double(), bayes, atol=1e-6, rtol=0)


def test_model_step_with_soft_x0_marginalises_the_joint():
    """p(x_{t-1} | x_t) ∝ sum_x0 q(x_{t-1}, x_t | x0) p(x0): the x0-probability form of the posterior."""
    t, xt = 7, 3
    p0 = torch.tensor([0.1, 0.5, 0.2, 0.15, 0.05], dtype=torch.float64)
    qt, qbar_prev = PROC.transition(t), torch.eye(5, dtype=torch.float64)
    for s in range(1, t):
        qbar_prev = qbar_prev @ PROC.transition(s)
    joint = (p0[:, None] * qbar_prev * qt[:, xt][None, :]).sum(0)
    got = PROC.posterior(torch.tensor([[xt]]), p0.float()[None, :, None], torch.tensor([t]))[0, :, 0].double()
    torch.testing.assert_close(got, joint / joint.sum(), atol=1e-6, rtol=0)


def test_q_sample_matches_the_marginal():
    x0 = torch.full((20_000, 4), 2)
    t = torch.full((20_000,), 12)
    xt = PROC.add_noise(x0, t, Noise(torch.Generator().manual_seed(0)))
    freq = F.one_hot(xt.flatten(), 5).double().mean(0)
    expected = PROC.marginal_probs(x0[:1, :1], t[:1])[0, :, 0].double()
    assert (freq - expected).abs().max() < 5 * (0.25 / 80_000) ** 0.5  # 5 sd of a share from 80,000 draws


def test_loss_is_zero_for_a_perfect_denoiser_and_positive_otherwise():
    x0 = torch.randint(0, 5, (16, 6), generator=torch.Generator().manual_seed(1))
    oracle = lambda xt, t: 50.0 * F.one_hot(x0, 5).permute(0, 2, 1).float()  # noqa: E731
    blind = lambda xt, t: torch.zeros(16, 5, 6)  # noqa: E731
    assert PROC.loss(oracle, x0, Noise(torch.Generator().manual_seed(2))) < 1e-6
    assert PROC.loss(blind, x0, Noise(torch.Generator().manual_seed(2))) > 1e-3


def test_seed_schedule_and_likelihood():
    p = MultinomialProcess(MultinomialConfig())
    alpha = p.abar(torch.arange(1, 201)) / p.abar(torch.arange(0, 200))  # alpha_t = abar_t / abar_{t-1}
    assert p.T == 200 and float(alpha[0]) == pytest.approx(0.999) and float(alpha[-1]) == pytest.approx(0.9)
    xt = torch.tensor([[0, 1]])
    ll = p.log_likelihood(xt, torch.tensor([50]))
    ab = float(p.abar(torch.tensor(50)))
    assert ll.shape == (1, 2, 8) and float(ll[0, 0, 0].exp()) == pytest.approx(ab + (1 - ab) / 8)


@pytest.mark.parametrize("t, s", [(9, 4), (30, 1), (12, 0)])
def test_skipping_posterior_is_bayes_rule(t, s):
    """q(x_s | x_t, x_0) for s < t - 1 against q(x_s | x_0) q(x_t | x_s) from products of transition matrices."""

    def qbar(a: int, b: int) -> torch.Tensor:  # q(x_b | x_a), a <= b
        m = torch.eye(5, dtype=torch.float64)
        for k in range(a + 1, b + 1):
            m = m @ PROC.transition(k)
        return m

    for x0 in range(5):
        for xt in range(5):
            joint = qbar(0, s)[x0, :] * qbar(s, t)[:, xt]
            got = PROC.posterior(
                torch.tensor([[xt]]),
                F.one_hot(torch.tensor([[x0]]), 5).permute(0, 2, 1),
                torch.tensor([t]),
                torch.tensor([s]),
            )
            torch.testing.assert_close(got[0, :, 0].double(), joint / joint.sum(), atol=1e-6, rtol=0)


@pytest.mark.parametrize("steps", [None, 7])
def test_an_exact_x0_oracle_recovers_the_data_from_any_time(steps):
    x0 = torch.randint(0, 5, (32, 6), generator=torch.Generator().manual_seed(3))
    oracle = lambda xt, t: F.one_hot(x0, 5).permute(0, 2, 1).float()  # noqa: E731
    noise = Noise(torch.Generator().manual_seed(4))
    xt = PROC.add_noise(x0, torch.full((32,), 20), noise)
    assert torch.equal(PROC.sample(oracle, xt, noise, t_from=20, steps=steps), x0)
    mid = PROC.sample(oracle, xt, noise, t_from=20, t_to=5)  # a segment ends at time 5, not at the data
    assert mid.shape == x0.shape and not torch.equal(mid, x0)
