"""The study runner: a study killed after its first seed's evaluations evaluates none of them again; rows are
merged, never dropped; a baseline's job is configured from the run it needs; study time sums every call."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from taxodiff import api
from taxodiff.cli import main
from tests.conftest import ROOT

DIGITS = ROOT / "tests" / "configs" / "tiny_digits.yaml"


def _rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(json.JSONDecodeError):  # a line being written when the process was killed
            out.append(json.loads(line))
    return out


def _study_rows(path: Path, seed: int) -> list[dict]:
    return [r for r in _rows(path) if r.get("seed") == seed and "part" not in r]


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every run directory api.evaluate is called on, from now on."""
    calls: list[Path] = []
    real = api.evaluate

    def counted(run_dir, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(Path(run_dir))
        return real(run_dir, *args, **kwargs)

    monkeypatch.setattr(api, "evaluate", counted)
    return calls


def test_a_study_killed_after_its_first_seed_evaluates_none_of_it_again(tmp_path, monkeypatch):
    out = tmp_path / "study"
    argv = ["study", "branched", "--preset", "quick", "--seeds", "2", "--config", str(DIGITS), "--out", str(out)]
    argv += ["--quiet", "--device", "cpu"]
    results = out / "results.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "taxodiff.cli", *argv], cwd=ROOT, stderr=subprocess.PIPE)
    while proc.poll() is None and len(_study_rows(results, 0)) < 4:  # both families, both requests of seed 0
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(_study_rows(results, 0)) == 4, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
    before = len(_study_rows(results, 1))
    assert before < 4  # killed before seed 1 was done

    calls = _counting(monkeypatch)
    assert main(argv) == 0
    assert [c for c in calls if "seed0" in c.parts] == []  # none of the first seed's evaluations again
    assert len([c for c in calls if "seed1" in c.parts]) == 4 - before
    assert len(_study_rows(results, 0)) == 4 and len(_study_rows(results, 1)) == 4
    rows = _study_rows(results, 0) + _study_rows(results, 1)
    labelled = [r for r in rows if r["model"] == "labelled"]
    branched = {r["seed"]: r["parameters"] for r in rows if r["model"] == "branched"}
    assert all(abs(r["parameters"] - branched[r["seed"]]) / branched[r["seed"]] < 0.05 for r in labelled)
    assert len(json.loads((out / "seconds.json").read_text())["calls"]) == 2  # the killed call's time counts
    md = (out / "report.md").read_text()
    assert "Continual learning" in md and "Transmutation" in md


def test_rows_are_merged_never_dropped(tmp_path, monkeypatch):
    out = tmp_path / "demo"
    common = ["--config", str(ROOT / "tests" / "configs" / "tiny.yaml"), "--out", str(out), "--quiet"]
    assert main(["demo", *common, "--guidance", "0", "--seeds", "2"]) == 0
    assert len(_rows(out / "results.jsonl")) == 4
    calls = _counting(monkeypatch)
    assert main(["demo", *common, "--guidance", "0"]) == 0  # one seed: its rows reused, the other's kept
    assert calls == [] and len(_rows(out / "results.jsonl")) == 4
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seeds"] == [0] and summary["rows_made"] == 0


def test_a_finished_run_resumed_under_another_sampler_is_sampled_as_its_rows_say(tmp_path):
    out = tmp_path / "demo"
    common = ["--config", str(ROOT / "tests" / "configs" / "tiny.yaml"), "--out", str(out), "--quiet"]
    assert main(["demo", *common, "--guidance", "0", "--set", "sample.sampler=ddpm"]) == 0
    trained = out / "reference" / "seed0" / "flat" / "train.json"
    before = trained.read_text()
    assert main(["demo", *common, "--guidance", "0", "--set", "sample.sampler=ddim"]) == 0
    assert trained.read_text() == before  # not trained again: only sampled
    rows = [r for r in _rows(out / "results.jsonl") if r["tag"].startswith("ddim")]
    assert len(rows) == 2 and {r["sampler"] for r in rows} == {"ddim"}
    drawn = {p.name for p in (out / "reference" / "seed0" / "flat" / "samples").iterdir()}
    assert any(name.startswith("ddim") for name in drawn), drawn


def test_the_branched_seeds_preset_on_two_workers_runs_the_comparison_and_no_other_part(tmp_path):
    out = tmp_path / "study"
    argv = ["study", "branched", "--preset", "seeds", "--seeds", "1", "--config", str(DIGITS), "--out", str(out)]
    argv += ["--quiet", "--device", "cpu", "--set", "net.branch_network=whole", "--workers", "2"]
    assert main(argv) == 0
    rows = _rows(out / "results.jsonl")
    assert sorted({r["model"] for r in rows if "model" in r}) == ["branched", "labelled"]
    assert [r["part"] for r in rows if "part" in r] == ["tree"]
    # the baseline ran after the run it is configured from: its parameters matched to the branched network's
    branched = {r["parameters"] for r in rows if r.get("model") == "branched"}.pop()
    assert all(abs(r["parameters"] - branched) / branched < 0.05 for r in rows if r.get("model") == "labelled")
    md = (out / "report.md").read_text()
    assert "figures/tree.png" in md and "All classes at once" not in md
    assert "Continual learning" not in md and "Transmutation" not in md
    assert main(argv) == 0  # every row found: none made again, no worker started
    assert json.loads((out / "summary.json").read_text())["rows_made"] == 0


def test_workers_take_a_job_after_those_training_its_runs_and_a_run_folder_one_job_at_a_time():
    from taxodiff.studies.jobs import Job
    from taxodiff.studies.pool import order

    jobs = [
        Job("c", 0, None, name="a"),  # type: ignore[arg-type]
        Job("c", 0, None, name="a"),  # type: ignore[arg-type]  the same folder trained further
        Job("c", 0, None, name="b", needs=("a",)),  # type: ignore[arg-type]
        Job("c", 1, None, name="a"),  # type: ignore[arg-type]  another seed: free
        Job("d", 0, None, name="b", needs=("x",)),  # type: ignore[arg-type]  a need no job trains: ignored
    ]
    assert order(jobs) == [set(), {0}, {1}, set(), set()]
