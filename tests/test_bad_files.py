"""Every file the CLI reads, broken in many ways: one line naming the file, exit code 2, never a traceback."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from taxodiff import api, config
from taxodiff.cli import main
from tests.conftest import TINY

BROKEN_TEXT = {
    "binary": b"\x00\x01\x02\xff\xfe",
    "utf16": "a: 1\n".encode("utf-16"),
    "latin1": "caf\xe9: 1\n".encode("latin-1"),
    "empty": b"",
    "half json": b'{"format": 1',
    "json list": b"[1, 2]",
    "json number": b"42",
    "deep": b"[" * 100_000 + b"]" * 100_000,
}
BROKEN_YAML = {
    "binary": b"\x00\x01\x02\xff\xfe",
    "utf16": "train: {steps: 3}\n".encode("utf-16"),
    "latin1": "caf\xe9: 1\n".encode("latin-1"),
    "unclosed": b"a: [1, 2\n",
    "list": b"- 1\n- 2\n",
    "number": b"42\n",
    "string": b"just words\n",
    "python tag": b"!!python/object/apply:os.system ['true']\n",
    "recursive alias": b"a: &x [*x]\n",
    "duplicate key": b"seed: 1\nseed: 2\n",
    "section list": b"train: [1]\n",
    "hierarchy number": b"hierarchy: 3\n",
    "bad value": b"train: {steps: -4}\n",
    "unknown key": b"trian: {steps: 3}\n",
    "tabs": b"train:\n\tsteps: 3\n",
}


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as e:  # argparse
        rc = int(e.code or 0)
    return rc, capsys.readouterr().err


def _one_line(err: str, name: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("taxodiff: error:"), err
    assert name in lines[0], lines[0]
    assert "Traceback" not in err


@pytest.mark.parametrize("content", BROKEN_YAML.values(), ids=BROKEN_YAML.keys())
def test_broken_config_files(content: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "my.yaml"
    f.write_bytes(content)
    rc, err = _cli(["train", "--dry-run", "--config", f], capsys)
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


def test_config_paths_that_are_not_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for path in (tmp_path / "missing.yaml", tmp_path):
        rc, err = _cli(["train", "--dry-run", "--config", path], capsys)
        assert rc == 2
        _one_line(err, str(path))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bad") / "run"
    cfg = config.load(TINY, {"model": "flat", "device": "cpu"})
    api.train(cfg, root, progress=False)
    api.sample(root, progress=False)
    return root


def _copy(run_dir: Path, tmp_path: Path) -> Path:
    d = tmp_path / "r"
    shutil.copytree(run_dir, d)
    return d


RUN_FILES = {
    "checkpoints/latest": ["sample", "evaluate", "train"],
    "checkpoints/step-000004/state.json": ["sample", "evaluate", "train"],
    "checkpoints/step-000004/model.safetensors": ["sample", "evaluate"],
    "checkpoints/step-000004/ema.safetensors": ["sample", "evaluate"],
    "eval.json": ["evaluate"],
    "config.yaml": ["train"],
    "train.json": ["train"],
}


def _verb(verb: str, d: Path) -> list[str | Path]:
    if verb == "train":
        return ["train", "--config", TINY, "--model", "flat", "--run-dir", d, "--train-steps", "6", "--quiet"]
    return [verb, "--run-dir", d, "--quiet", "--device", "cpu"]


@pytest.mark.parametrize("name", RUN_FILES)
@pytest.mark.parametrize("content", BROKEN_TEXT.values(), ids=BROKEN_TEXT.keys())
def test_broken_run_files(
    name: str, content: bytes, run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for verb in RUN_FILES[name]:
        d = _copy(run_dir, tmp_path / verb)
        (d / name).write_bytes(content)
        rc, err = _cli(_verb(verb, d), capsys)
        assert rc == 2, (verb, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, (verb, err)


def test_a_pointer_outside_the_run_is_refused(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = _copy(run_dir, tmp_path)
    (d / "checkpoints" / "latest").write_text("../../../etc\n")
    rc, err = _cli(_verb("sample", d), capsys)
    assert rc == 2
    _one_line(err, "not a checkpoint of this run")


def test_eval_json_of_another_kind_is_refused_before_sampling(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = _copy(run_dir, tmp_path)
    (d / "eval.json").write_text('{"evaluations": 3}')
    shutil.rmtree(d / "samples")
    rc, err = _cli(_verb("evaluate", d), capsys)
    assert rc == 2
    _one_line(err, "eval.json")
    assert not (d / "samples").exists()  # nothing drawn, nothing half-written
