"""Peak memory of training and sampling the hierarchical model at 32x32 (the default) and 64x64.

    python benchmarks/bench_memory.py [--steps 5]

Each measurement runs in a fresh process (peak resident memory, ru_maxrss, is per process): the process
builds the model and a small training set (512 images: the training set's own size, 4 x 3 x H x W bytes an
image, adds to both columns alike), then runs a few training steps of batch 64, or samples one batch of 256
with the default sampler. The baseline (the same process up to the first step) is printed beside it, so
the difference is what training or sampling itself costs. On a GPU, peak CUDA memory is printed too.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, torch
from taxodiff import api, config
from taxodiff._malloc import tune_malloc
from taxodiff.families import get_family
from taxodiff.train.distributed import resolve_device
from taxodiff.train.trainer import Trainer
size, phase, steps = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
tune_malloc()
# a small training set, so that rendering it does not set the process' peak before the first step
cfg = config.load(None, {"data.size": size, "data.n_train": 512, "train.steps": steps, "train.checkpoint_every": 10**6})
device = resolve_device("auto")
family = get_family(cfg.model)(cfg)
data = family.source.train_set()
model = api.build(family)
def rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
base = rss_mib()
if phase == "train":
    tr = Trainer(family, model, data, "/tmp/taxodiff-bench-memory")
    tr.enter(0, fresh=True)
    for _ in range(steps):
        tr.train_step(); tr.step += 1
else:
    from dataclasses import replace
    model = model.to(device).eval()
    family.generate(model, replace(cfg.sample, n_per_category=128), 0, progress=False)
cuda = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
print(json.dumps({"base_mib": base, "peak_mib": rss_mib(), "cuda_mib": cuda}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=5)
    args = ap.parse_args()
    print(f"{'size':>6} {'phase':>8} {'baseline MiB':>13} {'peak MiB':>9} {'peak - baseline':>16} {'CUDA MiB':>9}")
    for size in (32, 64):
        for phase in ("train", "sample"):
            p = subprocess.run(
                [sys.executable, "-c", CHILD, str(size), phase, str(args.steps)], capture_output=True, text=True
            )
            if p.returncode != 0:
                print(p.stderr[-2000:], file=sys.stderr)
                raise SystemExit(1)
            r = json.loads(p.stdout.strip().splitlines()[-1])
            cuda = "" if r["cuda_mib"] is None else f"{r['cuda_mib']:9.0f}"
            print(
                f"{size:>6} {phase:>8} {r['base_mib']:13.0f} {r['peak_mib']:9.0f} "
                f"{r['peak_mib'] - r['base_mib']:16.0f} {cuda:>9}",
                flush=True,
            )


if __name__ == "__main__":
    main()
