"""The two ways the RHM family diffuses sequences, chosen once from ``diffusion.process``.

- :class:`Tokens` (``discrete``): uniform multinomial diffusion on the tokens; the network reads one-hot
  tokens and gives x_0 logits (B, v, N); the reverse step takes x_0 probabilities.
- :class:`OneHot` (``gaussian``): DDPM on one-hot vectors (B, v, N) through diffusers' schedulers; the network
  predicts the noise ("epsilon") or x_0 as a softmax over the vocabulary ("x0"), regressed onto the one-hot
  x_0 or, for "exact_score", onto E[x_0 | x_t] computed by belief propagation.

An adapter owns its process and says, in process time, how clean tokens become x_t, what the training loss
of a sequence is, what the reverse step takes from the network (or from one exact draw of x_0), the evidence
x_t gives belief propagation about each leaf, and how a final x_0 becomes tokens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import Tensor

    from taxodiff.noise import Noise
    from taxodiff.processes.gaussian import GaussianProcess
    from taxodiff.processes.multinomial import MultinomialProcess

Net = Any  # (x_t, net_t) -> output: the tree U-Net or the transformer


class Tokens:
    def __init__(self, d: Any, v: int) -> None:
        from taxodiff.processes.multinomial import MultinomialConfig, MultinomialProcess

        self.v = v
        self.process: MultinomialProcess = MultinomialProcess(
            MultinomialConfig(v, d.num_steps, d.beta_start, d.beta_end, d.beta_schedule, d.ce_weight)
        )

    def prior_shape(self, batch: int, length: int) -> tuple[int, ...]:
        return (batch, length)

    def noised(self, tokens: Tensor, t: Tensor, noise: Noise) -> Tensor:
        return self.process.add_noise(tokens, t, noise)

    def loss(self, net: Net, x0: Tensor, noise: Noise, t: Tensor | None, bp: Any) -> Tensor:
        """The training loss of each sequence (B,): the process's KL between posteriors."""
        from taxodiff.data.rhm.grammar import one_hot

        return self.process.loss(lambda xt, tn: net(one_hot(xt, self.v), tn), x0, noise, t, reduce=False)

    def predict(self, net: Net) -> Any:
        """(x_t, net_t) -> x_0 probabilities (B, v, N), what the reverse step takes."""
        from taxodiff.data.rhm.grammar import one_hot

        return lambda xt, tn: net(one_hot(xt, self.v), tn).float().softmax(dim=1)

    def from_x0(self, x0: Tensor, xt: Tensor, net_t: Tensor) -> Tensor:
        """What the reverse step takes when x_0 (one-hot (B, v, N)) is known."""
        return x0

    def evidence(self, xt: Tensor, t: Tensor) -> Tensor:
        """log q(x_t | x_0 = a) per leaf and symbol a at process times t: (B, N, v)."""
        return self.process.log_likelihood(xt, t)

    def tokens(self, x: Tensor) -> Tensor:
        return x


class OneHot:
    def __init__(self, d: Any, v: int) -> None:
        from taxodiff.processes.gaussian import GaussianConfig, GaussianProcess

        self.v, self.target = v, d.target
        self.process: GaussianProcess = GaussianProcess(
            GaussianConfig(
                num_train_timesteps=d.num_steps,
                beta_start=d.beta_start,
                beta_end=d.beta_end,
                beta_schedule="squaredcos_cap_v2" if d.beta_schedule == "cosine" else "linear",
                clip_sample=False,
                prediction="epsilon" if d.target == "epsilon" else "sample",
            )
        )

    def prior_shape(self, batch: int, length: int) -> tuple[int, ...]:
        return (batch, self.v, length)

    def noised(self, tokens: Tensor, t: Tensor, noise: Noise) -> Tensor:
        from taxodiff.data.rhm.grammar import one_hot

        return self.process.add_noise(one_hot(tokens, self.v), t, noise)

    def loss(self, net: Net, x0: Tensor, noise: Noise, t: Tensor | None, bp: Any) -> Tensor:
        """The training loss of each sequence (B,): the noise MSE ("epsilon"), or the squared distance of the
        network's softmax to the one-hot x_0 ("x0") or to E[x_0 | x_t] ("exact_score", ``bp`` its belief
        propagation)."""
        from taxodiff.data.rhm.grammar import one_hot

        proc, clean = self.process, one_hot(x0, self.v)
        if self.target == "epsilon":
            return proc.loss(net, clean, noise, t, reduce=False)
        if t is None:
            t = noise.randint(proc.T, (x0.shape[0],), x0.device) + 1
        xt = proc.add_noise(clean, t, noise)
        if self.target == "exact_score":
            clean = bp.marginals(self.evidence(xt, t))[-1].permute(0, 2, 1).float()
        pred = net(xt, proc.net_time(t)).float().softmax(dim=1)
        return (pred - clean).pow(2).sum(dim=1).mean(dim=1)

    def predict(self, net: Net) -> Any:
        """(x_t, net_t) -> the network's prediction of its kind (noise, or x_0 probabilities)."""
        if self.target == "epsilon":
            return lambda xt, tn: net(xt, tn).float()
        return lambda xt, tn: net(xt, tn).float().softmax(dim=1)

    def from_x0(self, x0: Tensor, xt: Tensor, net_t: Tensor) -> Tensor:
        """What the reverse step takes when x_0 (one-hot (B, v, N)) is known: x_0, or the noise that maps it to
        x_t."""
        if self.target != "epsilon":
            return x0
        from taxodiff.processes.predictions import convert

        ab = self.process.abar(self.process.process_time(net_t))[:, None, None]
        return convert(x0, xt, ab, "sample", "epsilon")

    def evidence(self, xt: Tensor, t: Tensor) -> Tensor:
        """What x_t at process times t says about each leaf's symbol: (B, N, v)."""
        return one_hot_evidence(xt, self.process.abar(t))

    def tokens(self, x: Tensor) -> Tensor:
        return x.argmax(dim=1)


def one_hot_evidence(xt: Tensor, abar: Tensor) -> Tensor:
    """log N(x_t; sqrt(abar) e_a, (1 - abar) I) per leaf and symbol a, up to a constant per leaf: (B, N, v) from
    x_t (B, v, N) and the signal levels abar (B,)."""
    ab = abar.double()[:, None, None]
    return ((ab.sqrt() * xt.double() - ab / 2) / (1 - ab)).permute(0, 2, 1)


ADAPTERS: dict[str, type[Tokens] | type[OneHot]] = {"discrete": Tokens, "gaussian": OneHot}
