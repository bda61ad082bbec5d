"""Peak memory of training and sampling the hierarchical model at 32x32 (the default) and 64x64; and of training
on a real data set at CIFAR's scale, its images held as bytes (as the real sources hold them) and as float32.

    python benchmarks/bench_memory.py [--steps 5] [--only cifar]

Each measurement runs in a fresh process (peak resident memory, ru_maxrss, is per process): the process
builds the model and a small training set (512 images: the training set's own size, 4 x 3 x H x W bytes an
image, adds to both columns alike), then runs a few training steps of batch 64, or samples one batch of 256
with the default sampler. The baseline (the same process up to the first step) is printed beside it, so
the difference is what training or sampling itself costs. On a GPU, peak CUDA memory is printed too.

The CIFAR rows write CIFAR-100's binary files (50,000 + 10,000 records of random pixels, the real layout) to a
temporary folder and train the default family on them through the ``cifar100`` source: its whole pipeline
(reading, the split, the class tree, the training set), with the training set's images kept as uint8, or
converted to float32 first (what holding images as float would cost).
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


CIFAR_CHILD = r"""
import json, resource, sys
from taxodiff import api, config
from taxodiff._malloc import tune_malloc
from taxodiff.data.base import ImageBatch
from taxodiff.families import get_family
from taxodiff.train.trainer import Trainer
root, storage, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
tune_malloc()
cfg = config.load(None, {"data.source": "cifar100", "data.root": root, "train.steps": steps,
                         "train.checkpoint_every": 10**6})
family = get_family(cfg.model)(cfg)
data = family.train_set()
if storage == "float32":
    data = ImageBatch(data.images, data.z2, data.z1)
model = api.build(family)
tr = Trainer(family, model, data, "/tmp/taxodiff-bench-memory-cifar")
tr.enter(0, fresh=True)
for _ in range(steps):
    tr.train_step(); tr.step += 1
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"model": cfg.model, "images": len(data), "stored_mib": data.pixels.nbytes / 2**20,
                  "peak_mib": peak}))
"""


def cifar_files(folder: str) -> str:
    """CIFAR-100's binary layout with random pixels: train.bin (50,000 records), test.bin (10,000), names."""
    import os

    import numpy as np

    rng = np.random.default_rng(0)
    here = os.path.join(folder, "cifar-100-binary")
    os.makedirs(here)
    for name, n in (("train.bin", 50_000), ("test.bin", 10_000)):
        fine = np.arange(n) % 100
        rec = np.empty((n, 2 + 3072), dtype=np.uint8)
        rec[:, 0], rec[:, 1] = fine // 5, fine
        rec[:, 2:] = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        rec.tofile(os.path.join(here, name))
    for name, k in (("coarse_label_names.txt", 20), ("fine_label_names.txt", 100)):
        with open(os.path.join(here, name), "w") as f:
            f.write("\n".join(f"{name[0]}{i}" for i in range(k)) + "\n")
    return here


def cifar_rows(steps: int) -> None:
    import tempfile

    print(f"{'data':>22} {'storage':>8} {'model':>13} {'images':>7} {'stored MiB':>11} {'peak MiB':>9}")
    with tempfile.TemporaryDirectory() as folder:
        root = cifar_files(folder)
        for storage in ("uint8", "float32"):
            p = subprocess.run(
                [sys.executable, "-c", CIFAR_CHILD, root, storage, str(steps)], capture_output=True, text=True
            )
            if p.returncode != 0:
                print(p.stderr[-2000:], file=sys.stderr)
                raise SystemExit(1)
            r = json.loads(p.stdout.strip().splitlines()[-1])
            print(
                f"{'CIFAR-100 scale, 32x32':>22} {storage:>8} {r['model']:>13} {r['images']:>7} "
                f"{r['stored_mib']:11.0f} {r['peak_mib']:9.0f}",
                flush=True,
            )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--only", choices=("cifar",), help="the CIFAR-scale rows only")
    args = ap.parse_args()
    if args.only == "cifar":
        cifar_rows(args.steps)
        return
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
    print()
    cifar_rows(args.steps)


if __name__ == "__main__":
    main()
