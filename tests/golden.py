"""Draw the golden samples: every family through the CLI on tiny configs, then a digest of every samples file.

Run by tests/test_golden.py in a subprocess whose floating point is pinned so that the bytes do not depend on
the machine: one thread, ATen's scalar kernels (``ATEN_CPU_CAPABILITY=default``), MKL's reproducible branch
(``MKL_CBWR=COMPATIBLE``) and oneDNN off, float32 training. On the machines of this project the default
settings give other bytes (bf16 autocast, AVX-512 kernels, two threads), so the digests hold only pinned.

    python -m tests.golden OUT          # writes OUT/digests.json: {"<run>/<samples file>": digest, ...}
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import torch

CONFIGS = Path(__file__).resolve().parent / "configs"
FP32 = ["--set", "train.precision=fp32", "--device", "cpu", "--quiet"]


def commands(out: Path) -> list[list[str]]:
    """The CLI calls whose samples are held: the demo, guidance rules, RHM, branched, labelled, TreeVAE."""
    tiny, digits, rhm = CONFIGS / "tiny.yaml", CONFIGS / "tiny_digits.yaml", CONFIGS / "rhm_tiny.yaml"
    flat = str(out / "demo" / "reference" / "seed0" / "flat")
    return [
        ["demo", "--config", str(tiny), "--out", str(out / "demo"), *FP32],
        *[
            ["sample", "--run-dir", flat, "--guidance", "3", "--guidance-method", m, "--quiet"]
            for m in ("interval", "cads", "apg", "cfg-zero-star", "tcfg", "fdg", "mambo")
        ],
        [
            "sample",
            "--run-dir",
            str(out / "demo" / "reference" / "seed0" / "hierarchical"),
            "--prior-guidance",
            "2",
            "--quiet",
        ],
        ["sample", "--run-dir", flat, "--sampler", "ddim", "--steps", "4", "--guidance", "1", "--quiet"],
        ["sample", "--run-dir", flat, "--sampler", "dpmsolver++", "--steps", "3", "--quiet"],
        ["rhm", "train", "--config", str(rhm), "--run-dir", str(out / "rhm"), *FP32],
        ["rhm", "sample", "--run-dir", str(out / "rhm"), "--quiet"],
        ["rhm", "sample", "--run-dir", str(out / "rhm"), "--denoiser", "bp", "--quiet"],
        ["rhm", "train", "--config", str(rhm), "--process", "gaussian", "--run-dir", str(out / "rhm-g"), *FP32],
        ["rhm", "sample", "--run-dir", str(out / "rhm-g"), "--quiet"],
        ["rhm", "sample", "--run-dir", str(out / "rhm-g"), "--denoiser", "bp", "--quiet"],
        ["branched", "train", "--config", str(digits), "--run-dir", str(out / "branched"), *FP32],
        ["sample", "--run-dir", str(out / "branched"), "--quiet"],
        ["sample", "--run-dir", str(out / "branched"), "--request", "classes-cached", "--quiet"],
        ["train", "--model", "labelled", "--config", str(digits), "--run-dir", str(out / "labelled"), *FP32],
        ["sample", "--run-dir", str(out / "labelled"), "--guidance", "2", "--quiet"],
        ["train", "--config", str(CONFIGS / "tiny_treevae.yaml"), "--run-dir", str(out / "treevae"), *FP32],
        ["sample", "--run-dir", str(out / "treevae"), "--request", "tree", "--quiet"],
    ]


def digest(path: Path) -> str:
    from safetensors.torch import load_file

    tensors = load_file(str(path))
    h = hashlib.sha256()
    for key in sorted(k for k in tensors if k != "step"):
        h.update(key.encode())
        h.update(tensors[key].contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def main(out: Path) -> dict[str, str]:
    from taxodiff.cli import main as cli

    torch.backends.mkldnn.enabled = False
    torch.set_num_threads(1)
    for argv in commands(out):
        rc = cli(argv)
        if rc != 0:
            raise SystemExit(f"taxodiff {' '.join(argv)} exited with {rc}")
    return {str(p.relative_to(out)): digest(p) for p in sorted(out.rglob("samples/*.safetensors"))}


if __name__ == "__main__":
    out = Path(sys.argv[1])
    digests = main(out)
    (out / "digests.json").write_text(json.dumps(digests, indent=1, sort_keys=True))
