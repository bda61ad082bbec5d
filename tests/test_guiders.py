"""Every guidance rule through our adapter of diffusers' guiders: scale 0 is the conditional model, and each
rule equals its own formula, written out here, on fixed tensors in the space it acts in."""

from __future__ import annotations

import pytest
import torch

from taxodiff.processes.gaussian import GaussianConfig, GaussianProcess
from taxodiff.processes.guidance import Guidance, guided
from taxodiff.processes.guiders import APG, FDG, MAMBO, TCFG, CFGZeroStar, Guiders
from taxodiff.processes.predictions import convert

PROCESS = GaussianProcess(GaussianConfig(beta_schedule="squaredcos_cap_v2", prediction="v_prediction"))
AB = PROCESS.abar(torch.arange(1, PROCESS.T + 1))  # indexed by the network's time t - 1
RULES = ("cfg", "interval", "cads", "apg", "cfg-zero-star", "tcfg", "fdg", "mambo")


class Toy(torch.nn.Module):
    """A deterministic conditional 'network' on images: output depends on x, t and the condition (a learned
    null condition where ``drop``); it counts the rows it evaluates."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.w = torch.randn(3, 2, generator=g, dtype=torch.float64)
        self.null = torch.randn(3, generator=g, dtype=torch.float64)
        self.rows = 0

    def forward(self, x, t, cond, drop=None):  # type: ignore[no-untyped-def]
        self.rows += len(x)
        c = cond.clone()
        if drop is not None:
            c[drop] = self.null
        bias = (c @ self.w)[:, :, None, None]  # (B, 2, 1, 1)
        return torch.tanh(x * (1 + t[:, None, None, None] / 1000) + bias + 0.1 * x.roll(1, dims=-1))


def _inputs(t: int = 500, b: int = 3):  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(t)
    x = torch.randn(b, 2, 8, 8, generator=g, dtype=torch.float64)
    return x, torch.full((b,), t), torch.randn(b, 3, generator=g, dtype=torch.float64)


def _two(net: Toy, x, t, c):  # type: ignore[no-untyped-def]
    """The conditional and unconditional outputs, as the guided denoiser computes them."""
    b = len(x)
    drop = torch.cat([torch.zeros(b, dtype=torch.bool), torch.ones(b, dtype=torch.bool)])
    return net(torch.cat([x, x]), torch.cat([t, t]), torch.cat([c, c]), drop).chunk(2)


def _run(rule: Guidance, steps: int = 1, t: int = 500):  # type: ignore[no-untyped-def]
    from taxodiff.noise import Noise

    net = Toy()
    x, tb, c = _inputs(t)
    den = guided(net, c, rule, PROCESS, Noise(torch.Generator().manual_seed(0)), steps)
    return net, x, tb, c, den


def _abar(t: int) -> torch.Tensor:
    return AB[t].double().reshape(1, 1, 1, 1)


@pytest.mark.parametrize("method", RULES)
def test_scale_zero_is_the_conditional_model_under_every_rule(method: str) -> None:
    net, x, tb, c, den = _run(Guidance(0.0, Guiders().rule(method)), t=100)  # t/T = 0.1: CADS' condition is clean
    out = den(x, tb)
    assert net.rows == len(x)  # one conditional pass, no unconditional one
    torch.testing.assert_close(out, Toy()(x, tb, c), rtol=0, atol=1e-6 if method == "cads" else 0)  # CADS: rescaled c


def test_cfg_is_the_original_formula() -> None:
    net, x, tb, c, den = _run(Guidance(scale=3.0))
    oc, ou = _two(Toy(), x, tb, c)
    assert torch.equal(den(x, tb), oc + 3.0 * (oc - ou))


def _in_space(space: str, x, t: int, oc, ou):  # type: ignore[no-untyped-def]
    a = _abar(t)
    return convert(oc, x, a, "v_prediction", space), convert(ou, x, a, "v_prediction", space)


def _back(space: str, x, t: int, out):  # type: ignore[no-untyped-def]
    return convert(out, x, _abar(t), space, "v_prediction")


def test_apg_projects_the_update_in_the_denoised_image_and_keeps_momentum() -> None:
    w, m = 2.0, -0.5
    net, x, tb, c, den = _run(Guidance(w, APG(momentum=m)), steps=2)
    oc, ou = _two(Toy(), x, tb, c)
    xc, xu = _in_space("sample", x, 500, oc, ou)
    running = None
    for _ in range(2):  # the same inputs twice: the momentum buffer adds m times the previous update
        diff = xc - xu
        running = diff if running is None else diff + m * running
        unit = xc / xc.flatten(1).norm(dim=1).reshape(-1, 1, 1, 1)
        parallel = (running * unit).flatten(1).sum(1).reshape(-1, 1, 1, 1) * unit
        want = _back("sample", x, 500, xc + w * (running - parallel))  # eta = 0: the parallel part dropped
        torch.testing.assert_close(den(x, tb), want, rtol=1e-9, atol=1e-9)


def test_cfg_zero_star_zeroes_its_first_step_then_rescales_the_unconditional() -> None:
    w = 2.0
    net, x, tb, c, den = _run(Guidance(w, CFGZeroStar(zero_init=1)), steps=2)
    oc, ou = _two(Toy(), x, tb, c)
    assert torch.equal(den(x, tb), torch.zeros_like(x))  # step 0: zero velocity
    s = (oc.flatten(1) * ou.flatten(1)).sum(1) / (ou.flatten(1).pow(2).sum(1) + 1e-8)
    want = oc + w * (oc - s.reshape(-1, 1, 1, 1) * ou)
    torch.testing.assert_close(den(x, tb), want, rtol=1e-6, atol=1e-6)  # diffusers computes s* in float32


def test_tcfg_projects_the_unconditional_on_the_principal_direction_in_noise_space() -> None:
    w = 2.0
    net, x, tb, c, den = _run(Guidance(w, TCFG()))
    ec, eu = _in_space("epsilon", x, 500, *_two(Toy(), x, tb, c))
    out = []
    for i in range(len(x)):
        _, _, vh = torch.linalg.svd(torch.stack([ec[i].flatten(), eu[i].flatten()]), full_matrices=False)
        u = (eu[i].flatten() @ vh[0]) * vh[0]
        out.append(ec[i] + w * (ec[i] - u.reshape(ec[i].shape)))
    torch.testing.assert_close(
        den(x, tb), _back("epsilon", x, 500, torch.stack(out)), rtol=0, atol=2e-5
    )  # SVD in float32


def test_fdg_with_equal_band_scales_is_cfg() -> None:
    """The Laplacian pyramid is linear and inverts exactly: one scale for both bands is plain CFG."""
    net, x, tb, c, den = _run(Guidance(2.0, FDG(low=1.0)))
    oc, ou = _two(Toy(), x, tb, c)
    torch.testing.assert_close(den(x, tb), oc + 2.0 * (oc - ou), rtol=1e-6, atol=1e-6)
    _, x, tb, _, low = _run(Guidance(2.0, FDG(low=0.25)))
    assert not torch.allclose(low(x, tb), oc + 2.0 * (oc - ou), atol=1e-3)


def test_mambo_damps_the_scale_by_the_updates_relative_magnitude() -> None:
    w, alpha = 3.0, 8.0
    net, x, tb, c, den = _run(Guidance(w, MAMBO(alpha=alpha)))
    ec, eu = _in_space("epsilon", x, 500, *_two(Toy(), x, tb, c))
    ratio = (ec - eu).flatten(1).norm(dim=1) / eu.flatten(1).norm(dim=1)
    want = ec + (w * torch.exp(-alpha * ratio)).reshape(-1, 1, 1, 1) * (ec - eu)
    torch.testing.assert_close(den(x, tb), _back("epsilon", x, 500, want), rtol=1e-7, atol=1e-7)


def test_a_window_guides_only_its_share_of_the_steps() -> None:
    net, x, tb, c, den = _run(Guidance(scale=2.0, window=(0.5, 1.0)), steps=4)
    oc, ou = _two(Toy(), x, tb, c)
    rows = []
    for k in range(4):
        net.rows = 0
        out = den(x, tb)
        rows.append(net.rows)
        assert torch.equal(out, oc if k < 2 else oc + 2.0 * (oc - ou))
    assert rows == [3, 3, 6, 6]


def test_predictions_convert_into_one_another_as_the_process_defines_them() -> None:
    g = torch.Generator().manual_seed(1)
    x0, eps = torch.randn(4, 2, 3, 3, generator=g), torch.randn(4, 2, 3, 3, generator=g)
    t = torch.tensor([1, 200, 700, 999])
    xt = PROCESS.q_sample(x0, eps, t + 1)
    a = AB[t].reshape(-1, 1, 1, 1)
    v = PROCESS.train_scheduler.get_velocity(x0, eps, t)
    for kind, value in (("epsilon", eps), ("v_prediction", v), ("sample", x0)):
        for target, want in (("epsilon", eps), ("v_prediction", v), ("sample", x0)):
            if kind == "epsilon" and target == "sample" and int(t[-1]) == 999:
                continue  # x_0 from epsilon divides by sqrt(abar): ill-conditioned at the last step
            got = convert(value, xt, a, kind, target)
            torch.testing.assert_close(got[:3], want[:3], rtol=1e-4, atol=1e-4)


def test_fdg_on_vectors_and_unknown_rules_are_refused() -> None:
    vec = torch.zeros(2, 4, dtype=torch.float64)
    den = guided(lambda x, t, c, d=None: x, torch.zeros(2, 3), Guidance(1.0, FDG()), PROCESS)
    with pytest.raises(ValueError, match="acts on images"):
        den(vec, torch.full((2,), 10))
    with pytest.raises(ValueError, match="not one of cfg"):
        Guiders().rule("nope")
