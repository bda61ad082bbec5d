"""The families study end to end at toy scale: every registered family that answers the coarse request, both
regimes, 2 seeds, matched parameter counts, rows that resume, and its bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from taxodiff import api, studies
from taxodiff.cli import main
from taxodiff.families import families_for
from taxodiff.studies import STUDIES, families_report
from taxodiff.studies.pool import usable_cpus
from taxodiff.studies.runner import default_workers
from taxodiff.train import distributed
from tests.conftest import ROOT

CONFIG = ROOT / "tests" / "configs" / "tiny_families.yaml"


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("families") / "study"
    argv = ["study", "families", "--config", str(CONFIG), "--seeds", "2", "--out", str(out), "--quiet"]
    assert main([*argv, "--device", "cpu"]) == 0
    return out


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def test_every_family_appears_with_its_parameters_matched(study: Path) -> None:
    rows = _rows(study)
    coarse = {f.name for f in families_for("images") if f.roles.coarse}
    assert coarse >= {"flat", "hierarchical", "labelled", "branched", "treevae"}
    for cell in ("reference", "imbalanced"):
        for seed in (0, 1):
            assert {r["model"] for r in rows if r["cell"] == cell and r["seed"] == seed} == coarse
    target = next(r["parameters"] for r in rows if r["model"] == "flat")
    for r in rows:  # within 10% of the baseline; the TreeVAE's tree grows in phases: its diffusion network is
        matched = r["networks"]["refiner"] if r["model"] == "treevae" else r["parameters"]
        assert abs(matched - target) / target < 0.10, (r["model"], matched, target)
    guided = {r["model"] for r in rows if r.get("guidance") == 3.0}
    assert guided == {"flat", "hierarchical", "labelled"}  # the families that take guidance
    steps = {r["model"]: r["train_steps"] for r in rows}
    assert steps["flat"] == 4 and steps["treevae"] > 4  # the budget, and the tree's phases beside it


def test_the_report_has_a_table_per_regime_the_figure_and_findings(study: Path) -> None:
    md = (study / "report.md").read_text()
    assert "## Findings" in md and md.count("| family | weights | guidance |") == 2
    assert "Given the weights" in md and "Pixel SWD against the data's own" in md
    glance = md.split("## At a glance")[1].split("\n## ")[0]
    rows = [line.split(" | ")[0].strip("| ") for line in glance.splitlines() if line.startswith("| ")][1:]
    assert rows == ["flat", "hierarchical", "branched", "labelled", "treevae"]  # one row per family, baseline first
    assert (study / "figures" / "kl_vs_pixels.png").stat().st_size > 1000
    summary = json.loads((study / "summary.json").read_text())
    assert summary["families"]["labelled"]["weights"] == "given"
    assert "phases of its own" in summary["families"]["treevae"]["phases"]


def _group(model: str, cell: str, w: float | None, kl: float, lost: int = 0) -> dict:
    seeds = [[] for _ in range(2)]
    for i in range(lost):
        seeds[i] = ["dog"]
    return {"model": model, "cell": cell, "guidance": w, "kl": kl, "kl_ci": [kl / 2, kl * 2], "seeds": [0, 1]} | {
        "categories": {"animal": {"lost_in_seeds": seeds}},
        "pixel_swd": 3.0 * (1 + (w or 0)),
        "pixel_swd_data": 2.0,
        "class_accuracy": 0.9,
        "train_seconds": "10 ± 1",
        "chance_lost": 0.5,  # an exact sampler loses a class in a seed half the time: in 1 of 2 or more, 0.75
    }


def test_the_glance_puts_every_value_under_its_regime_and_scale() -> None:
    """Scales listed in the heading's order whatever order the rows came in, "-" where a scale was not run, one
    value for a family without guidance, and the first regime's unguided group for pixels and accuracy."""
    groups = [
        _group("flat", "reference", 3.0, 0.05),
        _group("flat", "reference", 0.0, 0.004),
        _group("flat", "imbalanced", 0.0, 0.03, lost=1),
        _group("tree", "reference", None, 0.002),
        _group("tree", "imbalanced", None, 0.001),
    ]
    summary = {
        "groups": groups,
        "cells": [{"name": "reference"}, {"name": "imbalanced"}],
        "families": {"flat": {"weights": "learned"}, "tree": {"weights": "unlabelled"}},
    }
    head, rows = families_report.glance(summary)
    assert head[2:4] == ["KL, reference (guidance 0 / 3)", "KL, imbalanced (guidance 0 / 3)"]
    assert rows[0][:4] == ["flat", "learned", "0.0040 / 0.0500", "0.0300 (lost in 1 of 2, chance 0.75) / -"]
    assert rows[0][4:] == ["no", "1.50x", "0.900", "10 ± 1"]  # pixels and accuracy of reference, guidance 0
    assert rows[1][2:5] == ["0.0020", "0.0010", "yes"]


def test_running_it_again_evaluates_nothing(study: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = api.evaluate
    monkeypatch.setattr(api, "evaluate", lambda *a, **k: (calls.append(str(a[0])), real(*a, **k))[1])
    before = _rows(study)
    argv = ["study", "families", "--config", str(CONFIG), "--seeds", "2", "--out", str(study), "--quiet"]
    assert main([*argv, "--device", "cpu", "--workers", "1"]) == 0  # in this process, where evaluate is counted
    assert calls == [] and _rows(study) == before
    assert json.loads((study / "summary.json").read_text())["rows_made"] == 0


def test_the_command_line_takes_the_study_s_own_workers_on_a_cpu_and_one_on_a_gpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    monkeypatch.setattr(studies, "run_study", lambda *a: seen.append(a[5]) or {})
    argv = ["study", "families", "--config", str(CONFIG), "--out", str(tmp_path / "x"), "--quiet", "--device", "cpu"]
    assert main(argv) == 0 and main([*argv, "--workers", "1"]) == 0
    assert seen == [min(2, usable_cpus()), 1]
    assert default_workers(STUDIES.get("mode-collapse"), "cpu") == 1
    monkeypatch.setattr(distributed, "resolve_device", lambda name: torch.device("cuda"))
    assert main(argv) == 0 and seen[-1] == 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--families", "flat,vae"], "--families vae is invalid: allowed are families that answer"),
        (["--families", "flat"], "allowed are two or more of"),
        (["--config", str(ROOT / "tests" / "configs" / "rhm_tiny.yaml")], "takes images: data.source = 'rhm'"),
        (["--preset", "huge"], "invalid choice: 'huge'"),
    ],
)
def test_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture, extra: list[str], message: str) -> None:
    argv = ["study", "families", "--out", str(tmp_path / "x"), "--quiet", *extra]
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse refuses a choice itself
        rc = e.code
    err = capsys.readouterr().err.strip()
    assert rc == 2 and message in err and "\n" not in err, err
    assert not (tmp_path / "x").exists()
