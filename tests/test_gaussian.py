import math

import pytest
import torch

from taxodiff.nets.mlp import MLPConfig, MLPDenoiser
from taxodiff.processes.gaussian import GaussianConfig, GaussianProcess
from taxodiff.processes.guidance import guided


def abar_closed_form(t: int, T: int = 1000, b0: float = 1e-4, b1: float = 0.02) -> float:
    betas = [b0 + (b1 - b0) * i / (T - 1) for i in range(T)]
    return math.prod(1 - b for b in betas[: t + 1])


def test_schedule_matches_closed_form():
    p = GaussianProcess()
    for t in (0, 10, 500, 999):
        assert float(p.alphas_cumprod[t]) == pytest.approx(abar_closed_form(t), rel=1e-5)


def test_forward_process_moments():
    """x_t | x_0 ~ N(sqrt(abar) x_0, (1 - abar) I): empirical mean and variance over 200k draws."""
    p = GaussianProcess()
    g = torch.Generator().manual_seed(0)
    n, x0 = 200_000, 0.7
    for t in (50, 400, 900):
        noise = torch.randn(n, 1, generator=g)
        xt = p.add_noise(torch.full((n, 1), x0), noise, torch.full((n,), t))
        ab = abar_closed_form(t)
        # tolerances: 5 standard errors of the mean and of the variance
        assert float(xt.mean()) == pytest.approx(math.sqrt(ab) * x0, abs=5 * math.sqrt((1 - ab) / n))
        assert float(xt.var()) == pytest.approx(1 - ab, abs=5 * (1 - ab) * math.sqrt(2 / n))


def test_v_target_and_weight():
    p = GaussianProcess(GaussianConfig(prediction="v_prediction", min_snr_gamma=5.0))
    x0, noise, t = torch.randn(4, 2), torch.randn(4, 2), torch.tensor([3, 300, 600, 990])
    ab = p.alphas_cumprod[t].view(-1, 1)
    assert torch.allclose(
        p.train_scheduler.get_velocity(x0, noise, t), ab.sqrt() * noise - (1 - ab).sqrt() * x0, atol=1e-6
    )
    snr = (ab / (1 - ab)).view(-1)
    assert torch.allclose(p.weight(t), torch.minimum(snr, torch.tensor(5.0)) / (snr + 1))


def test_min_snr_weight():
    p = GaussianProcess(GaussianConfig(min_snr_gamma=5.0))
    t = torch.tensor([0, 999])
    ab = p.alphas_cumprod[t]
    snr = ab / (1 - ab)
    assert torch.allclose(p.weight(t), torch.minimum(snr, torch.tensor(5.0)) / snr)
    assert float(p.weight(torch.tensor([999]))) == pytest.approx(1.0)


def _net():
    torch.manual_seed(0)
    return MLPDenoiser(MLPConfig(dim=2, cond_dim=3, hidden=16, layers=1))


def test_guidance_zero_is_conditional_model():
    net = _net()
    x, t, c = torch.randn(5, 2), torch.randint(0, 1000, (5,)), torch.randn(5, 3)
    assert torch.equal(guided(net, c, 0.0)(x, t), net(x, t, c))


def test_guidance_formula():
    net = _net()
    x, t, c = torch.randn(5, 2), torch.randint(0, 1000, (5,)), torch.randn(5, 3)
    drop = torch.ones(5, dtype=torch.bool)
    cond, uncond = net(x, t, c), net(x, t, c, drop)
    assert torch.allclose(guided(net, c, 2.5)(x, t), cond + 2.5 * (cond - uncond), atol=1e-6)


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
@pytest.mark.parametrize("sampler", ["ddpm", "ddim", "dpmsolver++"])
def test_samplers_recover_a_point_mass(sampler, prediction):
    """With the exact eps (or v = sqrt(abar) eps - sqrt(1 - abar) x0) of a point mass at m, every sampler ends at m."""
    p = GaussianProcess(GaussianConfig(clip_sample=False, prediction=prediction))
    m = torch.tensor([0.3, -0.5])

    def exact_eps(x, t):
        ab = p.alphas_cumprod[t].view(-1, 1)
        eps = (x - ab.sqrt() * m) / (1 - ab).sqrt()
        return eps if prediction == "epsilon" else ab.sqrt() * eps - (1 - ab).sqrt() * m

    out = p.sample(exact_eps, (4, 2), torch.Generator().manual_seed(0), sampler, 25)
    assert torch.allclose(out, m.expand(4, 2), atol=1e-2)


def test_sampling_is_deterministic_in_generator():
    p, net = GaussianProcess(), _net()
    c = torch.randn(3, 3)
    a = p.sample(guided(net, c, 1.0), (3, 2), torch.Generator().manual_seed(4), "ddpm", 10)
    b = p.sample(guided(net, c, 1.0), (3, 2), torch.Generator().manual_seed(4), "ddpm", 10)
    assert torch.equal(a, b)
