"""The TreeVAE ELBO's terms, as functions of tensors (Manduchi et al. 2023, LadderVAE-style posteriors).

Every node n carries a Gaussian latent z_n. Its prior is N(mu_p, sd_p^2) = transformation(z_parent) (the root's
is N(0, I)); its posterior combines the bottom-up estimate N(mu_hat, sd_hat^2) with that prior by precision
weighting. Every node with two children routes: an inference router q(left | bottom-up features) and a
generative router p(left | z_n). With P(n) the probability, under the inference routers, of reaching n:

    loss = sum_leaves P(l) BCE(x, decoder_l(z_l))
           + alpha * (KL_root + sum_{n != root} P(n) KL(q_n || p_n) + sum_routers P(n) KL(q_route || p_route))

Sums run over latent dimensions and pixels; the loss is the batch mean (nats per image).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

PROB_EPS = 1e-6


def combine(mu_hat: Tensor, sd_hat: Tensor, mu_p: Tensor, sd_p: Tensor) -> tuple[Tensor, Tensor]:
    """Posterior N(mu, sd^2) from a bottom-up estimate and the prior, by precision weighting:
    1/sd^2 = 1/sd_hat^2 + 1/sd_p^2,  mu = sd^2 (mu_hat/sd_hat^2 + mu_p/sd_p^2)."""
    prec_hat, prec_p = sd_hat.pow(-2), sd_p.pow(-2)
    var = 1.0 / (prec_hat + prec_p)
    return var * (mu_hat * prec_hat + mu_p * prec_p), var.sqrt()


def gaussian_kl(mu_q: Tensor, sd_q: Tensor, mu_p: Tensor, sd_p: Tensor) -> Tensor:
    """KL(N(mu_q, sd_q^2) || N(mu_p, sd_p^2)) of diagonal Gaussians, summed over the last dimension."""
    var_q, var_p = sd_q.pow(2), sd_p.pow(2)
    kl = torch.log(sd_p / sd_q) + (var_q + (mu_q - mu_p).pow(2)) / (2 * var_p) - 0.5
    return kl.sum(dim=-1)


def standard_kl(mu: Tensor, sd: Tensor) -> Tensor:
    """KL(N(mu, sd^2) || N(0, I)), summed over the last dimension."""
    return (0.5 * (sd.pow(2) + mu.pow(2) - 1) - torch.log(sd)).sum(dim=-1)


def bernoulli_kl(q: Tensor, p: Tensor) -> Tensor:
    """KL(Bernoulli(q) || Bernoulli(p)), elementwise (probabilities clamped away from 0 and 1)."""
    q, p = q.clamp(PROB_EPS, 1 - PROB_EPS), p.clamp(PROB_EPS, 1 - PROB_EPS)
    return q * torch.log(q / p) + (1 - q) * torch.log((1 - q) / (1 - p))


def reconstruction(logits: Tensor, x01: Tensor) -> Tensor:
    """Bernoulli negative log-likelihood of targets in [0, 1] (binary cross-entropy), summed per image."""
    return F.binary_cross_entropy_with_logits(logits.float(), x01, reduction="none").flatten(1).sum(dim=1)


def gaussian_params(out: Tensor) -> tuple[Tensor, Tensor]:
    """A network's output (..., 2d) -> (mean, standard deviation) with sd = softplus + a floor."""
    mu, raw = out.float().chunk(2, dim=-1)
    return mu, F.softplus(raw) + 1e-4
