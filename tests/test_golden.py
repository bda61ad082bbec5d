"""Golden samples: the same seed and config draw the same samples, release after release.

Every family runs through the CLI on tiny configs (tests/golden.py) under pinned floating point, and every
samples file must match tests/golden_samples.safetensors: labels, classes and tokens exactly, images to within
one level in at most 1% of their pixels. The tolerance is what pinned floating point still leaves between CPUs:
the byte digests recorded on an Intel Xeon (commit 05dccbd, kept until 2026-12-06) failed on an AMD EPYC in 11 of
the demo's 21 files, and on one machine ATen's AVX2 kernels against its scalar ones move at most one level in at
most 0.1% of a file's pixels. Tangential CFG projects on a singular vector of two nearly equal predictions and
amplifies those differences (27% of its pixels, mean 0.32 levels), so its images are held to a mean difference of
0.6 levels, half the way to plain CFG's images (1.2 levels away). A refactor that changes what is sampled fails
this test; re-record (``python -m tests.golden OUT --record``, pinned) only with a change meant to change
samples, and say so in its commit. Recorded on an AMD EPYC on 2026-12-06, the samples of commit 4a4d456;
re-recorded the same day for the fused AdamW and the one-call EMA, which moved samples by rounding only (the prior's
z1 by at most 1.2e-7, images by one level in at most 0.08% of a file's pixels).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import ROOT
from tests.golden import GOLDEN

PINNED = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MKL_CBWR": "COMPATIBLE", "ATEN_CPU_CAPABILITY": "default"}


def compare(key: str, golden: torch.Tensor, now: torch.Tensor) -> str | None:
    """Why ``now`` does not match ``golden`` under the tolerances above, or None."""
    if golden.shape != now.shape or golden.dtype != now.dtype:
        return f"{key}: {tuple(now.shape)} {now.dtype}, golden {tuple(golden.shape)} {golden.dtype}"
    if golden.dtype != torch.uint8:
        return None if torch.equal(golden, now) else f"{key}: differs"
    diff = (golden.long() - now.long()).abs()
    if "_tcfg" in key:
        return None if diff.double().mean() <= 0.6 else f"{key}: mean difference {diff.double().mean():.2f} levels"
    if diff.max() > 1 or (diff > 0).double().mean() > 0.01:
        return f"{key}: up to {int(diff.max())} levels, {(diff > 0).double().mean():.1%} of pixels"
    return None


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="recorded with x86-64 MKL")
def test_every_family_draws_its_golden_samples(tmp_path: Path) -> None:
    env = {**os.environ, **PINNED}
    argv = [sys.executable, "-m", "tests.golden", str(tmp_path)]
    p = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    golden, now = load_file(str(GOLDEN)), load_file(str(tmp_path / "samples.safetensors"))
    problems = [f"not drawn: {k}" for k in sorted(set(golden) - set(now))]
    problems += [f"not golden: {k}" for k in sorted(set(now) - set(golden))]
    problems += [why for k in sorted(set(golden) & set(now)) if (why := compare(k, golden[k], now[k]))]
    assert not problems, "; ".join(problems)


def test_the_tolerances_catch_a_changed_sample() -> None:
    golden = load_file(str(GOLDEN))
    key = next(k for k in golden if k.endswith("ddpm2_g0.safetensors::images"))
    images = golden[key].clone()
    assert compare(key, golden[key], images) is None
    images.view(-1)[: images.numel() // 50] ^= 1  # 2% of pixels one level off
    assert compare(key, golden[key], images) is not None
    labels = next(k for k in golden if k.endswith("::z2"))
    assert compare(labels, golden[labels], golden[labels].flip(0)) is not None
