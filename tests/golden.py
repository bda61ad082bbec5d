"""Draw the golden samples: every family through the CLI on tiny configs, then every samples file's tensors.

Run by tests/test_golden.py in a subprocess whose floating point is pinned: one thread, ATen's scalar kernels
(``ATEN_CPU_CAPABILITY=default``), MKL's reproducible branch (``MKL_CBWR=COMPATIBLE``) and oneDNN off, float32
training. Pinned, the bytes still differ between an Intel and an AMD CPU in a few quantised pixels (the demo's
images), so the test compares with tolerances, not digests.

    python -m tests.golden OUT            # writes OUT/samples.safetensors: {"<run>/<samples file>::<key>": tensor}
    python -m tests.golden OUT --record   # and copies it to tests/golden_samples.safetensors
"""

from __future__ import annotations

import shutil
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


GOLDEN = Path(__file__).resolve().parent / "golden_samples.safetensors"


def tensors(out: Path) -> dict[str, torch.Tensor]:
    """Every samples file under ``out``, its tensors keyed ``<file>::<key>`` (the step counter left out)."""
    from safetensors.torch import load_file

    found = {}
    for path in sorted(out.rglob("samples/*.safetensors")):
        for key, value in load_file(str(path)).items():
            if key != "step":
                found[f"{path.relative_to(out)}::{key}"] = value.contiguous()
    return found


def main(out: Path) -> dict[str, torch.Tensor]:
    from taxodiff.cli import main as cli

    torch.backends.mkldnn.enabled = False
    torch.set_num_threads(1)
    for argv in commands(out):
        rc = cli(argv)
        if rc != 0:
            raise SystemExit(f"taxodiff {' '.join(argv)} exited with {rc}")
    return tensors(out)


if __name__ == "__main__":
    from safetensors.torch import save_file

    out = Path(sys.argv[1])
    save_file(main(out), str(out / "samples.safetensors"))
    if "--record" in sys.argv[2:]:
        shutil.copyfile(out / "samples.safetensors", GOLDEN)
