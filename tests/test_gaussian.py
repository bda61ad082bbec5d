import math

import pytest
import torch

from taxodiff.nets.mlp import MLPConfig, MLPDenoiser
from taxodiff.noise import Noise
from taxodiff.processes.gaussian import GaussianConfig, GaussianProcess
from taxodiff.processes.guidance import guided


def abar_closed_form(t: int, T: int = 1000, b0: float = 1e-4, b1: float = 0.02) -> float:
    """abar at process time t (1..T; the network reads t - 1, diffusers' index)."""
    betas = [b0 + (b1 - b0) * i / (T - 1) for i in range(T)]
    return math.prod(1 - b for b in betas[:t])


def test_schedule_matches_closed_form():
    p = GaussianProcess()
    for t in (1, 10, 500, 1000):
        assert float(p.abar(torch.tensor([t]))) == pytest.approx(abar_closed_form(t), rel=1e-5)
    assert float(p.abar(torch.tensor([0]))) == 1.0


def test_forward_process_moments():
    """x_t | x_0 ~ N(sqrt(abar) x_0, (1 - abar) I): empirical mean and variance over 200k draws."""
    p = GaussianProcess()
    g = torch.Generator().manual_seed(0)
    n, x0 = 200_000, 0.7
    for t in (50, 400, 900):
        xt = p.add_noise(torch.full((n, 1), x0), torch.full((n,), t), Noise(g))
        ab = abar_closed_form(t)
        # tolerances: 5 standard errors of the mean and of the variance
        assert float(xt.mean()) == pytest.approx(math.sqrt(ab) * x0, abs=5 * math.sqrt((1 - ab) / n))
        assert float(xt.var()) == pytest.approx(1 - ab, abs=5 * (1 - ab) * math.sqrt(2 / n))


def test_v_target_and_weight():
    p = GaussianProcess(GaussianConfig(prediction="v_prediction", min_snr_gamma=5.0))
    x0, noise, t = torch.randn(4, 2), torch.randn(4, 2), torch.tensor([4, 301, 601, 991])
    ab = p.abar(t).view(-1, 1)
    assert torch.allclose(
        p.train_scheduler.get_velocity(x0, noise, p.net_time(t)), ab.sqrt() * noise - (1 - ab).sqrt() * x0, atol=1e-6
    )
    snr = (ab / (1 - ab)).view(-1)
    assert torch.allclose(p.weight(t), torch.minimum(snr, torch.tensor(5.0)) / (snr + 1))


def test_min_snr_weight():
    p = GaussianProcess(GaussianConfig(min_snr_gamma=5.0))
    t = torch.tensor([1, 1000])
    ab = p.abar(t)
    snr = ab / (1 - ab)
    assert torch.allclose(p.weight(t), torch.minimum(snr, torch.tensor(5.0)) / snr)
    assert float(p.weight(torch.tensor([1000]))) == pytest.approx(1.0)


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
        ab = p.abar(p.process_time(t)).view(-1, 1)
        eps = (x - ab.sqrt() * m) / (1 - ab).sqrt()
        return eps if prediction == "epsilon" else ab.sqrt() * eps - (1 - ab).sqrt() * m

    noise = Noise(torch.Generator().manual_seed(0))
    out = p.sample(exact_eps, p.prior((4, 2), noise), noise, steps=25, sampler=sampler)
    assert torch.allclose(out, m.expand(4, 2), atol=1e-2)


def test_sampling_is_deterministic_in_generator():
    p, net = GaussianProcess(), _net()
    c = torch.randn(3, 3)

    def draw(seed: int) -> torch.Tensor:
        noise = Noise(torch.Generator().manual_seed(seed))
        return p.sample(guided(net, c, 1.0), p.prior((3, 2), noise), noise, steps=10)

    assert torch.equal(draw(4), draw(4)) and not torch.equal(draw(4), draw(5))


def _point_mass_eps(p: GaussianProcess, m: float):  # type: ignore[no-untyped-def]
    def eps(x: torch.Tensor, tn: torch.Tensor) -> torch.Tensor:
        ab = p.abar(p.process_time(tn)).view(-1, 1)
        return (x - ab.sqrt() * m) / (1 - ab).sqrt()

    return eps


@pytest.mark.parametrize("t_to", [0, 200, 600])
def test_ddpm_segment_ends_in_the_forward_marginal(t_to):
    """With the exact eps of a point mass m, the reverse chain from T to t_to has the forward marginal
    q(x_t_to | x_0 = m) = N(sqrt(abar) m, 1 - abar): mean and variance over 20,000 chains, 5 standard errors."""
    p, m, n = GaussianProcess(GaussianConfig(clip_sample=False)), 0.6, 20_000
    noise = Noise(torch.Generator().manual_seed(1))
    x = p.sample(_point_mass_eps(p, m), p.prior((n, 1), noise), noise, t_to=t_to, steps=40)
    ab = float(p.abar(torch.tensor([t_to])))
    assert float(x.mean()) == pytest.approx(ab**0.5 * m, abs=5 * ((1 - ab) / n) ** 0.5 + 1e-3)
    assert float(x.var()) == pytest.approx(1 - ab, abs=5 * (1 - ab) * (2 / n) ** 0.5 + 1e-4)


def test_two_segments_equal_one_chain():
    """Sampling T -> 400 then 400 -> 0 on the same grid is the chain T -> 0: the state can be cached at a branch."""
    p, net = GaussianProcess(), _net()
    c = torch.randn(3, 3)
    den = guided(net, c, 0.0)
    whole_noise = Noise(torch.Generator().manual_seed(2))
    whole = p.sample(den, p.prior((3, 2), whole_noise), whole_noise, steps=10)
    split_noise = Noise(torch.Generator().manual_seed(2))
    mid = p.sample(den, p.prior((3, 2), split_noise), split_noise, t_to=400, steps=6)
    out = p.sample(den, mid, split_noise, t_from=400, steps=4)
    assert p.timesteps(10, 1000) == p.timesteps(6, 1000, 400) + p.timesteps(4, 400)[1:]
    assert torch.allclose(whole, out, atol=1e-6)


def test_per_sample_streams_do_not_depend_on_the_batch():
    p, net = GaussianProcess(), _net()
    c = torch.randn(6, 3)
    keys = [("sample", i) for i in range(6)]

    def draw(rows: slice) -> torch.Tensor:
        noise = Noise.per_sample(7, keys[rows])
        return p.sample(guided(net, c[rows], 0.0), p.prior((rows.stop - rows.start, 2), noise), noise, steps=10)

    together = draw(slice(0, 6))
    apart = torch.cat([draw(slice(0, 2)), draw(slice(2, 6))])
    torch.testing.assert_close(together, apart, atol=1e-6, rtol=0)


@pytest.mark.parametrize("sampler", ["ddim", "dpmsolver++"])
def test_every_sampler_runs_any_segment(sampler):
    """A chain stopped at t_to holds the forward marginal's mean at t_to (exact predictions of a point mass), and
    T -> 400 then 400 -> 0 on one grid is the chain T -> 0 (DDIM: to float rounding; DPM-Solver++ restarts its
    multistep history at 400, a different but exact-in-the-limit solver)."""
    p, m = GaussianProcess(GaussianConfig(clip_sample=False)), 0.6
    noise = Noise(torch.Generator().manual_seed(3))
    x = p.prior((512, 1), noise)
    ab, ab_T = float(p.abar(torch.tensor(400))), float(p.abar(torch.tensor(1000)))
    eps = (x - ab_T**0.5 * m) / (1 - ab_T) ** 0.5  # the noise of every x_t on the deterministic path
    mid = p.sample(_point_mass_eps(p, m), x, noise, t_to=400, steps=12, sampler=sampler)
    torch.testing.assert_close(mid, ab**0.5 * m + (1 - ab) ** 0.5 * eps, rtol=0, atol=1e-4)
    whole = p.sample(_point_mass_eps(p, m), x, noise, steps=20, sampler="ddim", grid=p.timesteps(20, 1000))
    split = p.sample(_point_mass_eps(p, m), x, noise, t_to=400, steps=12, sampler=sampler)
    split = p.sample(_point_mass_eps(p, m), split, noise, t_from=400, steps=8, sampler=sampler)
    assert p.timesteps(20, 1000) == p.timesteps(12, 1000, 400) + p.timesteps(8, 400)[1:]
    torch.testing.assert_close(split, whole, rtol=0, atol=1e-4)


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
def test_ddim_is_diffusers_ddim_where_diffusers_can_run(prediction):
    """Our DDIM step on the whole chain with steps dividing T is diffusers' DDIMScheduler, bit for bit (clipping
    included)."""
    p, net = GaussianProcess(GaussianConfig(prediction=prediction)), _net()
    c = torch.randn(6, 3)
    noise = Noise(torch.Generator().manual_seed(4))
    x = p.prior((6, 2), noise)
    ours = p.sample(guided(net, c, 0.0), x, noise, steps=25, sampler="ddim")
    sched = p.scheduler("ddim")
    sched.set_timesteps(25)
    y = x
    for tn in sched.timesteps:
        y = sched.step(net(y, torch.full((6,), int(tn)), c).float(), tn, y).prev_sample
    assert torch.equal(ours, y)


def test_a_grid_must_span_the_segment():
    p = GaussianProcess()
    noise = Noise(torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="a grid runs from t_from"):
        p.sample(lambda x, t: x, p.prior((2, 2), noise), noise, t_to=10, grid=[1000, 500, 0], sampler="ddim")
