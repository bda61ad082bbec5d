"""Belief-propagation throughput: sequences per second for exact marginals at every node (and for exact
posterior samples), on the seed's grammar family (v = n = 8, m = 3, s = 2) at L = 3 and L = 5, in one process.

    python benchmarks/bench_bp.py [--batch 1024] [--repeats 5] [--device cpu] [--dtype float64]

Evidence is the uniform multinomial process's likelihood of a noisy sequence at t = T/2. Prints one row
per depth and operation (best of ``--repeats``), and the ratio of the marginal pass to a brute-force
enumeration where the grammar is small enough to list.
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
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", choices=("float32", "float64"), default="float64")
    args = ap.parse_args()
    dtype = getattr(torch, args.dtype)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, {args.dtype}")
    for L in (3, 5):
        bench_depth(L, args, dtype)


def bench_depth(L: int, args: argparse.Namespace, dtype: torch.dtype) -> None:
    g = Grammar(GrammarSpec(v=8, n=8, m=3, s=2, L=L))
    proc = MultinomialProcess(MultinomialConfig(num_classes=8))
    x0 = g.sample(args.batch, seed=0, replace=True).tokens
    t = torch.full((args.batch,), proc.T // 2)
    evidence = proc.log_likelihood(proc.add_noise(x0, t, Noise(torch.Generator().manual_seed(1))), t).to(args.device)
    bp = BeliefPropagation(g, args.device, dtype)
    gen = torch.Generator().manual_seed(2)
    bp.marginals(evidence)  # warm-up
    for name, fn in (
        ("marginals", lambda: bp.marginals(evidence)),
        ("posterior sample", lambda: bp.sample(evidence, gen)),
    ):
        sec = best_of(fn, args.repeats)
        print(
            f"L={L} ({g.length:3d} tokens, {g.num_sequences:.3g} sequences)  {name:>16}: "
            f"{args.batch / sec:12,.0f} sequences/s",
            flush=True,
        )
    if g.num_sequences <= 20_000:
        seqs = g.trees_from_indices(np.arange(g.num_sequences)).tokens
        pos = torch.arange(g.length)
        small = evidence[:64].cpu().double()

        def brute() -> None:
            logw = torch.stack([small[b, pos, seqs].sum(-1) for b in range(len(small))])
            w = torch.softmax(logw, dim=1)
            torch.einsum("bn,nlv->blv", w, torch.nn.functional.one_hot(seqs, 8).double())

        sec_brute = best_of(brute, args.repeats) / len(small)
        sec_bp = best_of(lambda: bp.marginals(evidence), args.repeats) / args.batch
        print(
            f"L={L}  brute-force leaf marginals over all {g.num_sequences:,} sequences: "
            f"{1 / sec_brute:,.0f} sequences/s; BP is {sec_brute / sec_bp:.0f}x faster",
            flush=True,
        )


if __name__ == "__main__":
    main()
