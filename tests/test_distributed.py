"""Data-parallel training under ``accelerate launch``: 2 CPU processes (gloo), a few steps of the tiny config.

The ranks must end with identical weights (the trainer gathers a digest of every rank's parameters into
train.json) and the run directory must be written once (rank 0), not twice.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

from tests.conftest import ROOT, TINY


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_processes_train_in_sync_and_write_once(tmp_path):
    run = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",  # on a machine without GPUs this is the launcher path that gives gloo with 2 CPU ranks
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(_free_port()),
        "-m",
        "taxodiff.cli",
        "train",
        "--config",
        str(TINY),
        "--run-dir",
        str(run),
        "--device",
        "cpu",
        "--quiet",
    ]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-3000:]
    info = json.loads((run / "train.json").read_text())
    assert info["processes"] == 2, "the launcher did not give 2 processes"
    assert len(info["weight_digests"]) == 2 and len(set(info["weight_digests"])) == 1, info["weight_digests"]
    steps = info["steps"]
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == list(range(1, steps + 1))  # log_every 1, once each
    assert sorted(x.name for x in (run / "checkpoints").iterdir()) == ["latest", "step-000002", "step-000004"]
    assert p.stdout.count("trained hierarchical") == 1  # the closing line comes from rank 0 only
