"""Golden samples: the same seed and config draw the same bytes, release after release.

Every family runs through the CLI on tiny configs (tests/golden.py) under pinned floating point, and the digest
of every samples file must equal the one recorded here. The digests were recorded at commit 05dccbd, before the
study runner, the family folders and the typed processes (the demo's runs then lay in demo/<family>; they moved
to the study runner's layout, their bytes did not): a refactor that changes a single sampled pixel fails this
test. Change a digest only with a change that is meant to change samples, and say so in its commit.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

GOLDEN = {
    "branched/samples/ddpm10_g0.safetensors": "80b93fc4cdfde58a",
    # redrawn on purpose: cached sampling keys every step's noise by (head, time, sample), not by the branch's
    # classes, so adding a class no longer changes the old classes' cached samples (was 876756afa89dc320)
    "branched/samples/ddpm10_g0_classes-cached3.safetensors": "98d5abdfe795aece",
    "demo/reference/seed0/flat/samples/ddim4_g1.safetensors": "e672659e3cca89c8",
    "demo/reference/seed0/flat/samples/ddpm2_g0.safetensors": "edf3ad0ce6e134cf",
    "demo/reference/seed0/flat/samples/ddpm2_g3.safetensors": "f84d909382f19f71",
    "demo/reference/seed0/flat/samples/ddpm2_g3_apg0_r0_m-0.5.safetensors": "039832fc73c5d569",
    "demo/reference/seed0/flat/samples/ddpm2_g3_cads0.25_0.6-0.9.safetensors": "e07904d11eaa8975",
    "demo/reference/seed0/flat/samples/ddpm2_g3_fdg0.5.safetensors": "bb56bb9eb5b3f781",
    "demo/reference/seed0/flat/samples/ddpm2_g3_interval0.28-5.42.safetensors": "d13525d32f580497",
    "demo/reference/seed0/flat/samples/ddpm2_g3_mambo8.safetensors": "6d40c817a939d36d",
    "demo/reference/seed0/flat/samples/ddpm2_g3_tcfg.safetensors": "b904a51dd24351a5",
    "demo/reference/seed0/flat/samples/ddpm2_g3_zero-star1.safetensors": "4d4ef1f8a02da168",
    "demo/reference/seed0/flat/samples/dpmsolver++3_g0.safetensors": "f2b0e683e47ae3b9",
    "demo/reference/seed0/hierarchical/samples/ddpm2_g0_pg0.safetensors": "e54b1a0cc5da4231",
    "demo/reference/seed0/hierarchical/samples/ddpm2_g0_pg2.safetensors": "3676d01657a4cba4",
    "demo/reference/seed0/hierarchical/samples/ddpm2_g3_pg0.safetensors": "f0f249ba6efae53b",
    "labelled/samples/ddpm10_g2.safetensors": "543dea346c449fc5",
    "rhm-g/samples/bp_n16.safetensors": "c44fbdbd5d2ebd6e",
    "rhm-g/samples/model_n16.safetensors": "31da864133666fef",
    "rhm/samples/bp_n16.safetensors": "b19b1cdf04ad49d9",
    "rhm/samples/model_n16.safetensors": "8145f7a475822534",
    "treevae/samples/tree_ddpm5.safetensors": "9806c556fe34f8f6",
}
PINNED = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MKL_CBWR": "COMPATIBLE", "ATEN_CPU_CAPABILITY": "default"}


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="digests recorded with x86-64 MKL")
def test_every_family_draws_its_golden_samples(tmp_path: Path) -> None:
    env = {**os.environ, **PINNED}
    argv = [sys.executable, "-m", "tests.golden", str(tmp_path)]
    p = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    got = json.loads((tmp_path / "digests.json").read_text())
    changed = {k: (GOLDEN.get(k), v) for k, v in got.items() if GOLDEN.get(k) != v}
    missing = sorted(set(GOLDEN) - set(got))
    assert not changed and not missing, f"changed (golden, now): {changed}; not drawn: {missing}"
