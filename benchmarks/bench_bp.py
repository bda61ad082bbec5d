"""Belief-propagation throughput: sequences per second for exact marginals at every node (and for exact
posterior samples), on the seed's grammar family (v = n = 8, m = 3, s = 2) at L = 3 and L = 5, in one process.

    python benchmarks/bench_bp.py [--batch 256 1024 4096] [--repeats 5] [--device cpu] [--dtype float32 float64]

Evidence is the uniform multinomial process's likelihood of a noisy sequence at t = T/2. Prints one row
per depth, precision, batch size and operation (best of ``--repeats``), the largest difference of the float32
marginals from the float64 ones, and the ratio of the marginal pass to a brute-force enumeration where the
grammar is small enough to list.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from taxodiff.data.rhm.bp import BeliefPropagation
from taxodiff.data.rhm.grammar import Grammar
from taxodiff.data.rhm.spec import GrammarSpec
from taxodiff.noise import Noise
from taxodiff.processes.multinomial import MultinomialConfig, MultinomialProcess


def best_of(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, nargs="+", default=[256, 1024, 4096])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", nargs="+", choices=("float32", "float64"), default=["float32", "float64"])
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}")
    for L in (3, 5):
        g = Grammar(GrammarSpec(v=8, n=8, m=3, s=2, L=L))
        for dtype in args.dtype:
            for batch in args.batch:
                bench_throughput(g, batch, args, getattr(torch, dtype))
        if "float32" in args.dtype:
            worst = float32_error(g, max(args.batch), args.device)
            print(f"L={L}  float32 marginals against float64: largest difference {worst:.1e}", flush=True)
        if g.num_sequences <= 20_000:
            bench_brute_force(g, args)


def noisy_evidence(g: Grammar, batch: int, device: str) -> torch.Tensor:
    proc = MultinomialProcess(MultinomialConfig(num_classes=g.spec.v))
    x0 = g.sample(batch, seed=0, replace=True).tokens
    t = torch.full((batch,), proc.T // 2)
    return proc.log_likelihood(proc.add_noise(x0, t, Noise(torch.Generator().manual_seed(1))), t).to(device)


def float32_error(g: Grammar, batch: int, device: str) -> float:
    evidence = noisy_evidence(g, batch, device)
    exact = BeliefPropagation(g, device, torch.float64).marginals(evidence)
    single = BeliefPropagation(g, device, torch.float32).marginals(evidence)
    return max((a.double() - b).abs().max().item() for a, b in zip(single, exact, strict=True))


def bench_throughput(g: Grammar, batch: int, args: argparse.Namespace, dtype: torch.dtype) -> None:
    evidence = noisy_evidence(g, batch, args.device)
    bp = BeliefPropagation(g, args.device, dtype)
    gen = torch.Generator().manual_seed(2)
    bp.marginals(evidence)  # warm-up
    for name, fn in (
        ("marginals", lambda: bp.marginals(evidence)),
        ("posterior sample", lambda: bp.sample(evidence, gen)),
    ):
        sec = best_of(fn, args.repeats)
        print(
            f"L={g.spec.L} ({g.length:3d} tokens) {str(dtype)[6:]:>7} batch {batch:6,d} {name:>16}: "
            f"{batch / sec:12,.0f} sequences/s",
            flush=True,
        )


def bench_brute_force(g: Grammar, args: argparse.Namespace) -> None:
    evidence = noisy_evidence(g, 1024, args.device)
    bp = BeliefPropagation(g, args.device, torch.float64)
    L = g.spec.L
    seqs = g.trees_from_indices(np.arange(g.num_sequences)).tokens
    pos = torch.arange(g.length)
    small = evidence[:64].cpu().double()

    def brute() -> None:
        logw = torch.stack([small[b, pos, seqs].sum(-1) for b in range(len(small))])
        w = torch.softmax(logw, dim=1)
        torch.einsum("bn,nlv->blv", w, torch.nn.functional.one_hot(seqs, 8).double())

    sec_brute = best_of(brute, args.repeats) / len(small)
    sec_bp = best_of(lambda: bp.marginals(evidence), args.repeats) / len(evidence)
    print(
        f"L={L}  brute-force leaf marginals over all {g.num_sequences:,} sequences: "
        f"{1 / sec_brute:,.0f} sequences/s; BP (float64, batch 1,024) is {sec_brute / sec_bp:.0f}x faster",
        flush=True,
    )


if __name__ == "__main__":
    main()
