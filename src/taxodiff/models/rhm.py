"""Diffusion on the Random Hierarchy Model: a sequence network plus a discrete or Gaussian process.

``RHMDiffusion`` is a model family like the image ones (``loss(batch, gen)``, ``param_groups()``,
``sample(...)``), trained by the same trainer on batches ``{"tokens": (B, N)}``. It generates sequences
unconditionally, as the seed does; the class is read back from each sample by parsing.

Processes:
  discrete  uniform multinomial diffusion; the network gives x_0 logits (B, v, N).
  gaussian  DDPM on one-hot vectors (diffusers' schedulers). Targets: "epsilon"; "x0", the network's
            softmax over the vocabulary regressed onto the one-hot x_0; "exact_score", the same output
            regressed onto E[x_0 | x_t] under the grammar, computed exactly by belief propagation (the
            exact score is (sqrt(abar) E[x_0 | x_t] - x_t) / (1 - abar)).

``denoiser="bp"`` swaps the network for the exact posterior: each reverse step draws x_0 from
p(x_0 | x_t) by belief propagation and then x_{t-1} from q(x_{t-1} | x_t, x_0), which is exact ancestral
sampling, the Bayes-optimal reference for any learned model.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from taxodiff.bp import BeliefPropagation
from taxodiff.data.rhm import Grammar, one_hot
from taxodiff.nets.transformer import SeqTransformer, TransformerConfig, count_params, width_for_params
from taxodiff.nets.tree_unet import TreeUNet, TreeUNetConfig
from taxodiff.processes.gaussian import GaussianConfig, GaussianProcess
from taxodiff.processes.multinomial import MultinomialConfig, MultinomialProcess
from taxodiff.rhm_config import RHMRunConfig


def build_net(cfg: RHMRunConfig) -> nn.Module:
    """The tree U-Net, or the transformer with as many parameters as the tree U-Net of the same config."""
    g, n = cfg.rhm, cfg.net
    tree = TreeUNetConfig(vocab=g.v, length=g.s**g.L, s=g.s, depth=n.depth or g.L, width=n.width, emb_dim=n.emb_dim)
    if n.arch == "tree_unet":
        return TreeUNet(tree)
    base = TransformerConfig(vocab=g.v, length=g.s**g.L, layers=n.layers, heads=n.heads, emb_dim=n.emb_dim)
    return SeqTransformer(width_for_params(base, count_params(TreeUNet(tree))))


def one_hot_log_likelihood(xt: Tensor, abar: Tensor) -> Tensor:
    """log N(x_t; sqrt(abar) e_a, (1 - abar) I) per leaf and symbol a, up to a constant per leaf: (B, N, v)."""
    ab = abar.double()[:, None, None]
    return ((ab.sqrt() * xt.double() - ab / 2) / (1 - ab)).permute(0, 2, 1)


class RHMDiffusion(nn.Module):
    family = "rhm"

    def __init__(self, cfg: RHMRunConfig, grammar: Grammar) -> None:
        super().__init__()
        self.cfg, self.grammar = cfg, grammar
        self.net = build_net(cfg)
        d = cfg.diffusion
        self.v = cfg.rhm.v
        if d.process == "discrete":
            self.process: MultinomialProcess | GaussianProcess = MultinomialProcess(
                MultinomialConfig(self.v, d.num_steps, d.beta_start, d.beta_end, d.beta_schedule, d.ce_weight)
            )
        else:
            self.process = GaussianProcess(
                GaussianConfig(
                    num_train_timesteps=d.num_steps,
                    beta_start=d.beta_start,
                    beta_end=d.beta_end,
                    beta_schedule="squaredcos_cap_v2" if d.beta_schedule == "cosine" else "linear",
                    clip_sample=False,
                    prediction="epsilon" if d.target == "epsilon" else "sample",
                )
            )
        self._bp: BeliefPropagation | None = None

    @property
    def bp(self) -> BeliefPropagation:
        device = next(self.parameters()).device
        if self._bp is None or self._bp.device != device:
            self._bp = BeliefPropagation(self.grammar, device)
        return self._bp

    @property
    def discrete(self) -> bool:
        return self.cfg.diffusion.process == "discrete"

    # -- training -------------------------------------------------------------------------------------
    def forward(self, batch: dict[str, Tensor], gen: torch.Generator) -> dict[str, Tensor]:
        return {"loss": self.loss_at(batch["tokens"], gen).mean()}

    def loss_at(self, x0: Tensor, gen: torch.Generator, t: Tensor | None = None) -> Tensor:
        """The training loss of each sequence (B,), at random timesteps or at the given ones."""
        if self.discrete:
            return self.process.loss(lambda xt, tt: self.net(one_hot(xt, self.v), tt), x0, gen, False, t)
        return self._gaussian_loss(x0, gen, t)

    def _gaussian_loss(self, x0: Tensor, gen: torch.Generator, t: Tensor | None) -> Tensor:
        proc, target = self.process, self.cfg.diffusion.target
        assert isinstance(proc, GaussianProcess)
        if target == "epsilon":
            return proc.loss(self.net, one_hot(x0, self.v), gen, False, t)
        if t is None:
            t = torch.randint(0, proc.T, (x0.shape[0],), generator=gen).to(x0.device)
        clean = one_hot(x0, self.v)
        xt = proc.add_noise(clean, torch.randn(clean.shape, generator=gen).to(x0.device), t)
        if target == "exact_score":
            abar = proc.alphas_cumprod.to(x0.device)[t]
            clean = self.bp.marginals(one_hot_log_likelihood(xt, abar))[-1].permute(0, 2, 1).float()
        pred = self.net(xt, t).float().softmax(dim=1)
        return (pred - clean).pow(2).sum(dim=1).mean(dim=1)

    @torch.no_grad()
    def loss_by_time(self, x0: Tensor, gen: torch.Generator, windows: int = 10) -> list[float]:
        """Mean loss of ``x0`` in each of ``windows`` equal windows of diffusion time (t drawn inside each)."""
        T, lo = self.process.T, 1 if self.discrete else 0
        out = []
        for w in range(windows):
            a, b = lo + w * T // windows, lo + (w + 1) * T // windows
            t = torch.randint(a, max(a + 1, b), (len(x0),), generator=gen).to(x0.device)
            out.append(float(self.loss_at(x0, gen, t).mean()))
        return out

    def param_groups(self) -> list[dict]:
        return [{"params": list(self.net.parameters()), "lr": self.cfg.train.lr}]

    # -- denoisers ------------------------------------------------------------------------------------
    def x0_model(self, denoiser: str, gen: torch.Generator) -> Callable[[Tensor, Tensor], Tensor]:
        """(x_t, t) -> what the process's reverse step takes: x_0 probabilities (discrete) or the network's
        prediction (Gaussian); for "bp", the same made from a one-hot x_0 drawn from the exact posterior."""
        if denoiser == "bp":
            return lambda xt, t: self._as_prediction(one_hot(self.exact_x0(xt, t, gen), self.v), xt, t)
        if self.discrete:
            return lambda xt, t: self.net(one_hot(xt, self.v), t).float().softmax(dim=1)
        if self.cfg.diffusion.target == "epsilon":
            return lambda xt, t: self.net(xt, t).float()
        return lambda xt, t: self.net(xt, t).float().softmax(dim=1)

    def _as_prediction(self, x0: Tensor, xt: Tensor, t: Tensor) -> Tensor:
        if self.discrete or self.cfg.diffusion.target != "epsilon":
            return x0
        ab = self.process.alphas_cumprod.to(xt.device)[t][:, None, None]
        return (xt - ab.sqrt() * x0) / (1 - ab).sqrt()  # the noise that maps x_0 to x_t

    def evidence(self, xt: Tensor, t: Tensor) -> Tensor:
        """Per-leaf log-likelihood of x_t under each clean token: (B, N, v)."""
        if self.discrete:
            return self.process.log_likelihood(xt, t)
        return one_hot_log_likelihood(xt, self.process.alphas_cumprod.to(xt.device)[t])

    def exact_x0(self, xt: Tensor, t: Tensor, gen: torch.Generator) -> Tensor:
        """Tokens x_0 (B, N) drawn from the exact posterior p(x_0 | x_t) (a whole valid sequence)."""
        return self.bp.sample(self.evidence(xt, t), gen).tokens.to(xt.device)

    # -- sampling -------------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(
        self,
        count: int,
        gen: torch.Generator,
        denoiser: str = "model",
        start: Tensor | None = None,
        t_start: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> Tensor:
        """Tokens (count, N) from noise, or denoised from ``start``, a draw of x_t at timestep ``t_start``."""
        device = next(self.parameters()).device
        shape = (count, self.grammar.length)
        fn = self.x0_model(denoiser, gen)
        if self.discrete:
            assert isinstance(self.process, MultinomialProcess)
            return self.process.sample(fn, shape, gen, device, start, t_start, progress)
        assert isinstance(self.process, GaussianProcess)
        x = self.process.sample(
            fn, (count, self.v, self.grammar.length), gen, "ddpm", self.process.T, device, progress, start, t_start
        )
        return x.argmax(dim=1)


def noise_to(model: RHMDiffusion, tokens: Tensor, t: int, gen: torch.Generator) -> Tensor:
    """A draw of x_t given clean tokens: tokens (discrete) or noisy one-hot vectors (Gaussian)."""
    tb = torch.full((len(tokens),), t, dtype=torch.long, device=tokens.device)
    if model.discrete:
        return model.process.q_sample(tokens, tb, gen)
    clean = one_hot(tokens, model.v)
    return model.process.add_noise(clean, torch.randn(clean.shape, generator=gen).to(tokens.device), tb)
