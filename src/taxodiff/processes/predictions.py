"""What a Gaussian denoiser predicts, and the same prediction in another parameterisation.

At noise level abar (x_t = sqrt(abar) x_0 + sqrt(1 - abar) eps) the three targets are affine in one another
given x_t:

    x_0 = (x_t - sqrt(1 - abar) eps) / sqrt(abar)        eps = (x_t - sqrt(abar) x_0) / sqrt(1 - abar)
    v   = sqrt(abar) eps - sqrt(1 - abar) x_0            (Salimans & Ho 2022)

so a linear rule (classifier-free guidance) gives the same sample in any of them, and a non-linear one
(projections, norms, frequency bands) depends on where it acts. Names follow diffusers' ``prediction_type``
("epsilon", "v_prediction", "sample"); x_0 from epsilon divides by sqrt(abar), which is ill-conditioned at the
noisiest steps (v and x_0 predictions are not).
"""

from __future__ import annotations

from torch import Tensor

KINDS = ("epsilon", "v_prediction", "sample")


def _x0_eps(out: Tensor, x: Tensor, abar: Tensor, kind: str) -> tuple[Tensor, Tensor]:
    a, s = abar.sqrt(), (1 - abar).sqrt()
    if kind == "epsilon":
        return (x - s * out) / a.clamp_min(1e-6), out
    if kind == "v_prediction":
        return a * x - s * out, s * x + a * out
    if kind == "sample":
        return out, (x - a * out) / s.clamp_min(1e-6)
    raise ValueError(f"prediction {kind!r} is not one of {', '.join(KINDS)}")


def convert(out: Tensor, x: Tensor, abar: Tensor, source: str, target: str) -> Tensor:
    """The prediction ``out`` of kind ``source`` at (x_t = ``x``, ``abar``: broadcastable, e.g. (B, 1, 1, 1))
    as a prediction of kind ``target``."""
    if source == target:
        return out
    x0, eps = _x0_eps(out, x, abar, source)
    if target == "sample":
        return x0
    if target == "epsilon":
        return eps
    if target == "v_prediction":
        return abar.sqrt() * eps - (1 - abar).sqrt() * x0
    raise ValueError(f"prediction {target!r} is not one of {', '.join(KINDS)}")
