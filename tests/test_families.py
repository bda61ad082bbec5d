"""The families study end to end at toy scale: every registered family that answers the coarse request, both
regimes, 2 seeds, matched parameter counts, rows that resume, and its bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from taxodiff import api
from taxodiff.cli import main
from taxodiff.families import families_for
from taxodiff.studies import STUDIES
from taxodiff.studies.pool import usable_cpus
from taxodiff.studies.runner import default_workers
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


def test_running_it_again_evaluates_nothing(study: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = api.evaluate
    monkeypatch.setattr(api, "evaluate", lambda *a, **k: (calls.append(str(a[0])), real(*a, **k))[1])
    before = _rows(study)
    argv = ["study", "families", "--config", str(CONFIG), "--seeds", "2", "--out", str(study), "--quiet"]
    assert main([*argv, "--device", "cpu", "--workers", "1"]) == 0  # in this process, where evaluate is counted
    assert calls == [] and _rows(study) == before
    assert json.loads((study / "summary.json").read_text())["rows_made"] == 0


def test_it_runs_two_training_runs_at_once_by_default_on_a_cpu() -> None:
    """The fixture above ran on the default workers: two processes where the machine has two CPUs."""
    assert default_workers(STUDIES.get("families"), "cpu") == min(2, usable_cpus())
    assert default_workers(STUDIES.get("mode-collapse"), "cpu") == 1


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
