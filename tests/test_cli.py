"""Every CLI verb on a tiny config, and the error paths: one line, exit code 2, nothing written."""

import json
import subprocess
import sys

import pytest

from tests.conftest import TINY


def run(*args):
    return subprocess.run([sys.executable, "-m", "taxodiff.cli", *map(str, args)], capture_output=True, text=True)


def light_run(argv):
    """Run the CLI in this interpreter; returns (exit code, stderr, whether torch got imported)."""
    code = (
        "import sys\nfrom taxodiff.cli import main\n"
        "try:\n rc = main(sys.argv[1:])\nexcept SystemExit as e:\n rc = e.code\n"
        "print('TORCH' if 'torch' in sys.modules else 'NOTORCH')\nsys.exit(rc)"
    )
    p = subprocess.run([sys.executable, "-c", code, *map(str, argv)], capture_output=True, text=True)
    return p.returncode, p.stderr, "NOTORCH" in p.stdout


def test_version_and_help_are_light():
    p = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from taxodiff.cli import main\n"
            "try:\n main(['--help'])\nexcept SystemExit: pass\nprint('torch' in sys.modules)",
        ],
        capture_output=True,
        text=True,
    )
    assert "demo" in p.stdout and p.stdout.strip().endswith("False")
    assert run("--version").stdout.startswith("taxodiff ")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    for family in ("flat", "hierarchical"):
        p = run("train", "--config", TINY, "--model", family, "--run-dir", root / family, "--quiet", "--device", "cpu")
        assert p.returncode == 0, p.stderr
    return root


def test_train_writes_a_run_directory(trained):
    h = trained / "hierarchical"
    for name in ("config.yaml", "metrics.jsonl", "train.json", "checkpoints/latest"):
        assert (h / name).exists(), name
    assert json.loads((h / "train.json").read_text())["steps"] == 4


def test_train_resumes_finished_run(trained):
    p = run(
        "train", "--config", TINY, "--model", "flat", "--run-dir", trained / "flat", "--quiet", "--train-steps", "6"
    )
    assert p.returncode == 0, p.stderr
    assert json.loads((trained / "flat" / "train.json").read_text())["resumed_from"] == 4


def test_sample_and_evaluate(trained):
    p = run("sample", "--run-dir", trained / "hierarchical", "--guidance", "2", "--quiet")
    assert p.returncode == 0, p.stderr
    assert (trained / "hierarchical" / "samples" / "ddpm2_g2_pg0.safetensors").exists()
    assert (trained / "hierarchical" / "figures" / "samples_ddpm2_g2_pg0.png").exists()
    p = run("evaluate", "--run-dir", trained / "hierarchical", "--guidance", "2", "--quiet")
    assert p.returncode == 0, p.stderr
    assert "fidelity" in p.stdout
    ev = json.loads((trained / "hierarchical" / "eval.json").read_text())["evaluations"]["ddpm2_g2_pg0"]
    assert set(ev) >= {"images", "prior", "fidelity", "classifier"}
    p = run("evaluate", "--run-dir", trained / "flat", "--quiet")
    assert p.returncode == 0, p.stderr and "fidelity" not in p.stdout


def test_data_preview(tmp_path):
    p = run("data", "preview", "--config", TINY, "--out", tmp_path / "p.png", "--n", "4")
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"


def test_demo(tmp_path):
    out = tmp_path / "demo"
    p = run("demo", "--config", TINY, "--out", out, "--quiet", "--guidance", "2")
    assert p.returncode == 0, p.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert [(r["model"], r["guidance"]) for r in summary["rows"]] == [
        ("flat", 0.0),
        ("flat", 2.0),
        ("hierarchical", 0.0),
        ("hierarchical", 2.0),
    ]
    assert "kl_sd" not in summary["rows"][0] and summary["rows"][0]["kl_ci"]  # one seed: bootstrap interval
    md = (out / "report.md").read_text()
    flat = out / "reference" / "seed0" / "flat"
    assert "| model | guidance | coverage" in md and str(flat) in md
    assert "<table>" in (out / "report.html").read_text()
    assert (out / "figures" / "proportions.png").exists()
    first = (flat / "train.json").read_text()

    # a second seed adds runs under seed<k>/ and reuses the first seed's (resumed, not retrained)
    p = run("demo", "--config", TINY, "--out", out, "--quiet", "--guidance", "2", "--seeds", "2")
    assert p.returncode == 0, p.stderr
    assert (flat / "train.json").read_text() == first and (out / "reference" / "seed1" / "hierarchical").is_dir()
    summary = json.loads((out / "summary.json").read_text())
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert summary["seeds"] == [0, 1] and len(rows) == 8 and summary["rows_made"] == 4  # the first seed's reused
    r = summary["rows"][0]
    kls = [s["kl"] for s in rows if (s["model"], s["guidance"]) == ("flat", 0.0)]
    assert r["kl"] == pytest.approx(sum(kls) / 2) and r["kl_sd"] == pytest.approx(abs(kls[0] - kls[1]) / 2**0.5)
    assert "mean ± sd over 2 training seeds" in (out / "report.md").read_text()


def _config(tmp_path, text):
    f = tmp_path / "c.yaml"
    f.write_text(text)
    return f


@pytest.mark.parametrize(
    "text, needle",
    [
        ("hierarchy: {a: {dog: 0.5, cat: 0.6}}", "sum to 1.1"),
        ("hierarchy: {a: {dog: 0.5, dragon: 0.5}}", "unknown shape 'dragon'"),
        ("hierarchy: {a: {}}", "is empty"),
        ("data: {size: -32}", "data.size = -32"),
        ("data: {n_train: 0}", "data.n_train = 0"),
        ("train: {lr: fast}", "train.lr = 'fast'"),
        ("trian: {steps: 3}", "unknown config key 'trian'"),
        ("sample: {sampler: euler}", "sample.sampler = 'euler'"),
        ("data: {source: cifar}", "data.source = 'cifar' is invalid: allowed are shapes, rhm, digits, mnist, idx"),
        ("model: deep", "model = 'deep' is invalid: allowed are hierarchical, flat, rhm"),
        ("data: {source: rhm}\nmodel: flat", "model = 'flat' does not take data.source = 'rhm'"),
        ("train: {steps: 3}\ntrain: {steps: 4}", "key 'train' appears twice"),
        ("[1, 2", "not valid YAML"),
        ("- 1\n- 2", "must hold a mapping"),
    ],
)
def test_config_errors_are_one_line_exit_2_without_torch(tmp_path, text, needle):
    rc, err, light = light_run(["train", "--config", _config(tmp_path, text), "--run-dir", tmp_path / "r"])
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert light, "an error path imported torch (slow)"
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["train", "--model", "deep"], "invalid choice: 'deep'"),
        (["train", "--seed", "-1"], "seed = -1 is invalid: allowed is a number >= 0"),
        (["sample", "--run-dir", "x", "--guidance", "-2"], "allowed is a number >= 0"),
        (["sample", "--run-dir", "x", "--steps", "0"], "sample.steps = 0 is invalid: allowed is a positive number"),
        (["sample", "--run-dir", "x", "--sampler", "euler"], "allowed are ddpm, ddim, dpmsolver++"),
        (["train", "--set", "train.steps"], "is not KEY=VALUE"),
        (["train", "--set", "trian.steps=3"], "unknown config key 'trian'"),
        (["train", "--model", "flat", "--set", "sample.prior_guidance=3"], "not a setting of the 'flat' model family"),
        (["demo", "--device", "tpu"], "invalid choice: 'tpu'"),
        (["train", "--config", "missing.yaml"], "does not exist"),
        (["sample", "--run-dir", "no/such/run"], "does not exist"),
    ],
)
def test_flag_errors(argv, needle, tmp_path):
    rc, err, light = light_run(argv)
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert light


def test_foreign_checkpoint(tmp_path):
    ck = tmp_path / "run" / "checkpoints" / "step-000001"
    ck.mkdir(parents=True)
    (ck.parent / "latest").write_text("step-000001\n")
    (ck / "state.json").write_text('{"format": "other-tool"}')
    rc, err, light = light_run(["evaluate", "--run-dir", tmp_path / "run"])
    assert rc == 2 and "not a taxodiff checkpoint" in err and light


def test_corrupt_weights(trained, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(trained / "flat", bad)
    ck = bad / "checkpoints" / (bad / "checkpoints" / "latest").read_text().strip()
    (ck / "model.safetensors").write_bytes(b"\x00" * 64)
    p = run("sample", "--run-dir", bad, "--quiet")
    assert p.returncode == 2 and "not a valid safetensors file" in p.stderr and "Traceback" not in p.stderr


def test_no_resume_refuses_existing(trained):
    p = run("train", "--config", TINY, "--model", "flat", "--run-dir", trained / "flat", "--no-resume")
    assert p.returncode == 2 and "already holds a run" in p.stderr


def test_three_unequal_categories_run_unchanged(tmp_path):
    cfg = TINY.parent / "tiny_three.yaml"
    p = run("train", "--config", cfg, "--model", "hierarchical", "--run-dir", tmp_path / "h", "--quiet")
    assert p.returncode == 0, p.stderr
    p = run("evaluate", "--run-dir", tmp_path / "h", "--quiet")
    assert p.returncode == 0, p.stderr
    ev = next(iter(json.loads((tmp_path / "h" / "eval.json").read_text())["evaluations"].values()))
    assert list(ev["images"]["categories"]) == ["animal", "vehicle", "scenery"]
    assert ev["prior"]["categories"]["scenery"]["p_data"] == [0.45, 0.35, 0.15, 0.05]


@pytest.mark.parametrize(
    "content",
    [b"\x00\x01\x02binary", "caf\xe9".encode("latin-1"), b"hierarchy: [1, 2]\n", b"data: 3\n", b"train:\n  - 1\n"],
)
def test_unreadable_config_files_are_one_line(tmp_path, content):
    f = tmp_path / "c.yaml"
    f.write_bytes(content)
    rc, err, _ = light_run(["train", "--config", f, "--run-dir", tmp_path / "r"])
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


def test_set_and_dry_run(tmp_path):
    p = run("train", "--config", TINY, "--set", "train.steps=7", "--set", "net.channels=[16, 16]", "--dry-run")
    assert p.returncode == 0 and "steps: 7" in p.stdout and "- 16" in p.stdout, p.stderr


def test_profile_prints_where_the_seconds_went(tmp_path):
    """--profile: the table of parts (nested) on stderr, each part's seconds at most its parent's."""
    p = run("train", "--config", TINY, "--run-dir", tmp_path / "r", "--quiet", "--profile", "--device", "cpu")
    assert p.returncode == 0, p.stderr
    p = run("evaluate", "--run-dir", tmp_path / "r", "--quiet", "--profile")
    assert p.returncode == 0, p.stderr
    lines = p.stderr.strip().splitlines()
    table = lines[lines.index(next(x for x in lines if x.startswith("part"))) :]
    parts = {x[:48].strip(): float(x[55:65]) for x in table[1:]}
    assert {"evaluate", "classifier", "modes (bootstrap)", "PRDC", "whole command"} <= parts.keys()
    assert parts["classifier"] <= parts["evaluate"] <= parts["whole command"]
    assert "  classifier" in "\n".join(table)  # nested under evaluate


def test_profile_adds_up_the_timers_of_worker_processes():
    from taxodiff import profiling

    profiling.reset()
    profiling.merge({"train": [2.0, 1]})
    profiling.merge({"train": [3.0, 2], "sample": [1.0, 1]})
    assert profiling.totals() == {"train": [5.0, 3], "sample": [1.0, 1]}
    assert "every worker process" in profiling.table()
    profiling.reset()
    assert profiling.totals() == {} and "worker" not in profiling.table()
