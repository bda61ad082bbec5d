"""Diffusion on the Random Hierarchy Model: a sequence network plus a discrete or Gaussian process.

Generates sequences unconditionally, as the seed does; the class is read back from each sample by parsing.

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

from dataclasses import asdict, dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from taxodiff.config.fields import choice, nonneg, positive
from taxodiff.errors import TaxodiffError
from taxodiff.families.base import Commands, Family, Parent
from taxodiff.families.rhm.evaluation import SequenceEvaluation

if TYPE_CHECKING:
    from torch import Tensor, nn

    from taxodiff.families.module import FamilyModule
    from taxodiff.families.rhm.adapters import OneHot, Tokens
    from taxodiff.noise import Noise
    from taxodiff.processes.gaussian import GaussianProcess
    from taxodiff.processes.multinomial import MultinomialProcess


@dataclass(frozen=True)
class RHMNet:
    arch: str = choice("tree_unet", ("tree_unet", "transformer"))  # transformer: the equal-size baseline
    width: int = positive(256)  # tree U-Net channels; the transformer's width is matched to its parameter count
    depth: int = nonneg(0)  # tree U-Net levels; 0 = L (down to the root)
    layers: int = positive(3)  # transformer layers
    heads: int = positive(4)  # transformer heads
    emb_dim: int = positive(128)  # time embedding


@dataclass(frozen=True)
class RHMDiffusionConfig:
    process: str = choice("discrete", ("discrete", "gaussian"))  # uniform multinomial, or Gaussian on one-hot
    num_steps: int = positive(200)  # T (the seed's nT)
    beta_start: float = positive(0.001)  # the seed's linear schedule
    beta_end: float = positive(0.1)
    beta_schedule: str = choice("linear", ("linear", "cosine"))
    ce_weight: float = nonneg(0.0)  # discrete: weight of an extra cross-entropy on x_0
    target: str = choice("x0", ("epsilon", "x0", "exact_score"))  # gaussian: what the network is regressed onto


@dataclass(frozen=True)
class RHMSample:
    n_samples: int = positive(1024)
    batch_size: int = positive(1024)
    denoiser: str = choice("model", ("model", "bp"))  # the trained network, or exact belief propagation


class RHMDiffusion(Family):
    name: ClassVar[str] = "rhm"
    summary: ClassVar[str] = "discrete or Gaussian diffusion on RHM sequences, with exact BP as the reference"
    data_kinds: ClassVar[tuple[str, ...]] = ("sequences",)
    sections: ClassVar[dict[str, type]] = {"net": RHMNet, "diffusion": RHMDiffusionConfig, "sample": RHMSample}
    # 8,000 steps of 64 = 500 epochs of P = 1,024: ~11 min on 2 CPU cores, full validity 0.84 (0.76 at 6,000)
    defaults: ClassVar[dict[str, Any]] = {
        "train.steps": 8000,
        "train.lr": 1e-3,
        "train.warmup": 200,
        "train.lr_schedule": "constant",
        "train.checkpoint_every": 2000,
    }
    evaluation: ClassVar[type] = SequenceEvaluation
    commands: ClassVar[Commands] = Commands(
        flags={
            "--arch": ("net.arch", "RHM network: tree_unet or transformer (default: the config's)"),
            "--process": ("diffusion.process", "RHM diffusion process: discrete or gaussian (default: the config's)"),
            "--n-train": ("data.n_train", "training sequences P (or images)"),
            "--denoiser": ("sample.denoiser", "RHM: model (default) or bp: exact belief propagation"),
            "--n": ("sample.n_samples", "RHM: number of sequences to sample"),
        },
        alias=True,
    )

    @classmethod
    def check(cls, cfg: Any) -> None:
        d = cfg.diffusion
        if d.beta_start >= d.beta_end or d.beta_end >= 1:
            raise TaxodiffError(
                f"diffusion betas {d.beta_start}..{d.beta_end} are invalid: allowed is 0 < beta_start < beta_end < 1"
            )
        if cfg.net.depth > cfg.data.L:
            raise TaxodiffError(f"net.depth = {cfg.net.depth} is invalid: allowed is 0..L = {cfg.data.L} (0 means L)")

    @property
    def grammar(self) -> Any:
        return self.source.grammar

    @property
    def v(self) -> int:
        return self.cfg.data.v

    @cached_property
    def adapter(self) -> Tokens | OneHot:
        """How sequences diffuse: tokens (discrete) or one-hot vectors (gaussian), chosen once."""
        from taxodiff.families.rhm.adapters import ADAPTERS

        return ADAPTERS[self.cfg.diffusion.process](self.cfg.diffusion, self.v)

    @property
    def process(self) -> MultinomialProcess | GaussianProcess:
        return self.adapter.process

    def bp(self, device: Any) -> Any:
        from taxodiff.data.rhm.bp import BeliefPropagation

        cache = self.__dict__.setdefault("_bp", {})
        if str(device) not in cache:
            cache[str(device)] = BeliefPropagation(self.grammar, device)
        return cache[str(device)]

    # -- building and training --------------------------------------------------------------------------
    def build(self, structure: dict[str, Any] | None = None, parent: Parent | None = None) -> FamilyModule:
        from taxodiff.families.module import FamilyModule

        return FamilyModule(self, {"net": self.network()})

    def network(self) -> nn.Module:
        """The tree U-Net, or the transformer with as many parameters as the tree U-Net of the same config."""
        from taxodiff.families.rhm.transformer import SeqTransformer, TransformerConfig, count_params, width_for_params
        from taxodiff.families.rhm.tree_unet import TreeUNet, TreeUNetConfig

        g, n = self.cfg.data, self.cfg.net
        tree = TreeUNetConfig(vocab=g.v, length=g.s**g.L, s=g.s, depth=n.depth or g.L, width=n.width, emb_dim=n.emb_dim)
        if n.arch == "tree_unet":
            return TreeUNet(tree)
        base = TransformerConfig(vocab=g.v, length=g.s**g.L, layers=n.layers, heads=n.heads, emb_dim=n.emb_dim)
        return SeqTransformer(width_for_params(base, count_params(TreeUNet(tree))))

    def loss(self, module: FamilyModule, batch: dict[str, Tensor], noise: Noise) -> dict[str, Tensor]:
        return {"loss": self.loss_at(module, batch["tokens"], noise).mean()}

    def loss_at(self, module: FamilyModule, x0: Tensor, noise: Noise, t: Tensor | None = None) -> Tensor:
        """The training loss of each sequence (B,), at random times or at the given ones."""
        return self.adapter.loss(module.net, x0, noise, t, self.bp(x0.device))

    def loss_by_time(self, module: FamilyModule, x0: Tensor, noise: Noise, windows: int = 10) -> list[float]:
        """Mean loss of ``x0`` in each of ``windows`` equal windows of diffusion time (t drawn inside each)."""
        import torch

        T = self.process.T
        out = []
        with torch.no_grad():
            for w in range(windows):
                a, b = 1 + w * T // windows, 1 + (w + 1) * T // windows
                t = noise.randint(max(1, b - a), (len(x0),), x0.device) + a
                out.append(float(self.loss_at(module, x0, noise, t).mean()))
        return out

    # -- denoising ---------------------------------------------------------------------------------------
    def x0_model(self, module: FamilyModule, denoiser: str, noise: Noise) -> Any:
        """(x_t, net_t) -> what the process's reverse step takes, from the network or, for "bp", from a one-hot
        x_0 drawn from the exact posterior."""
        from taxodiff.data.rhm.grammar import one_hot

        a = self.adapter
        if denoiser != "bp":
            return a.predict(module.net)

        def exact(xt: Tensor, tn: Tensor) -> Tensor:
            x0 = self.exact_x0(xt, a.process.process_time(tn), noise)
            return a.from_x0(one_hot(x0, self.v), xt, tn)

        return exact

    def exact_x0(self, xt: Tensor, t: Tensor, noise: Noise) -> Tensor:
        """Tokens x_0 (B, N) drawn from the exact posterior p(x_0 | x_t) at process times t (a whole valid
        sequence)."""
        return self.bp(xt.device).sample(self.adapter.evidence(xt, t), noise).tokens.to(xt.device)

    def noise_to(self, tokens: Tensor, t: int, noise: Noise) -> Tensor:
        """A draw of x_t given clean tokens: tokens (discrete) or noisy one-hot vectors (Gaussian)."""
        import torch

        tb = torch.full((len(tokens),), t, dtype=torch.long, device=tokens.device)
        return self.adapter.noised(tokens, tb, noise)

    def denoise(
        self, module: FamilyModule, xt: Tensor, t: int, noise: Noise, denoiser: str = "model", progress: Any = None
    ) -> Tensor:
        """Tokens (B, N) from x_t at time t (t = T: from the prior): the reverse chain, every time step."""
        fn = self.x0_model(module, denoiser, noise)
        x = self.process.sample(fn, xt, noise, t_from=t, sampler="ddpm", progress=progress)
        return self.adapter.tokens(x)

    # -- sampling ----------------------------------------------------------------------------------------
    def sample_tag(self, sc: Any) -> str:
        return f"{sc.denoiser}_n{sc.n_samples}"

    def sample_count(self, sc: Any) -> int:
        return sc.n_samples

    def generate(self, module: FamilyModule, sc: Any, seed: int, progress: bool = True) -> dict[str, Tensor]:
        import torch
        from tqdm.auto import tqdm

        from taxodiff.families.sampling import draw_in_batches

        keys = [("sample", k) for k in range(sc.n_samples)]
        T, n = self.process.T, self.grammar.length
        bar = tqdm(
            total=T * -(-len(keys) // sc.batch_size), desc=f"sample {sc.denoiser}", disable=not progress, leave=False
        )

        @torch.no_grad()
        def draw(rows: slice, noise: Noise) -> dict[str, Tensor]:
            x = self.process.prior(self.adapter.prior_shape(rows.stop - rows.start, n), noise, module.device)
            return {"tokens": self.denoise(module, x, T, noise, sc.denoiser, bar.update)}

        out = draw_in_batches(keys, sc.batch_size, seed, draw)
        bar.close()
        return out or {"tokens": torch.zeros(0, n, dtype=torch.long)}

    # -- evaluation --------------------------------------------------------------------------------------
    def evaluate(self, module: FamilyModule, samples: dict[str, Tensor], progress: bool = True) -> dict:
        from taxodiff.metrics.rhm import sequence_metrics
        from taxodiff.noise import Noise

        train, test = self.source.sequences()
        result: dict[str, Any] = {
            "model": self.name,
            "checkpoint_step": int(samples["step"][0]),
            "sample": asdict(self.cfg.sample),
        }
        result |= sequence_metrics(self.grammar, samples["tokens"], train)
        dev = module.device
        windows = [[w / 10, (w + 1) / 10] for w in range(10)]
        loss = {"windows": windows}
        for name, tokens in (("train", train), ("test", test)):
            noise = Noise.from_seed(self.cfg.seed, "loss-by-time", name)
            loss[name] = self.loss_by_time(module, tokens[:1024].to(dev), noise) if len(tokens) else []
        result["loss_by_time"] = loss
        return result
