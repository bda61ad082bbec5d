"""Auditing any generator's samples: a run's samples exported as PNG folders and audited give the run's own
evaluation; the class layout round trip; bad samples and bad requests refused in one line."""

from __future__ import annotations

import json
import math
import re

import pytest
import torch

from taxodiff import config
from taxodiff.data import get_source
from taxodiff.errors import TaxodiffError
from taxodiff.evaluate.audit import export_samples, read_samples
from tests import disk_data
from tests.test_cli import light_run, run
from tests.test_disk_data import _config_file


def _close(a, b, path="") -> list[str]:  # type: ignore[no-untyped-def]
    """Where two JSON values differ (numbers beyond 1e-6)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in a.keys() | b.keys() for d in _close(a.get(k), b.get(k), f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _close(x, y, f"{path}[{i}]")]
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        same = math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6) or (math.isnan(a) and math.isnan(b))
        return [] if same else [f"{path}: {a} != {b}"]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("audit")
    root = disk_data.image_folder(tmp / "zoo", {"animal": ["cat", "dog"], "vehicle": ["car"]}, n=16)
    f = _config_file(tmp, f"{{source: imagefolder, root: {root}}}")
    p = run(
        "train",
        "--config",
        f,
        "--run-dir",
        tmp / "r",
        "--quiet",
        "--device",
        "cpu",
        "--set",
        "sample.n_per_category=12",
    )
    assert p.returncode == 0, p.stderr
    p = run("evaluate", "--run-dir", tmp / "r", "--quiet")
    assert p.returncode == 0, p.stderr
    return tmp


def test_export_then_audit_gives_the_runs_own_evaluation(trained):
    tmp = trained
    p = run("export", "--run-dir", tmp / "r", "--out", tmp / "pngs")
    assert p.returncode == 0 and "24 images written" in p.stdout, p.stderr
    assert sorted(d.name for d in (tmp / "pngs").iterdir()) == ["animal", "vehicle"]
    p = run("audit", "--samples", tmp / "pngs", "--config", tmp / "r" / "config.yaml", "--out", tmp / "a", "--quiet")
    assert p.returncode == 0 and "coverage" in p.stdout, p.stderr
    (own,) = json.loads((tmp / "r" / "eval.json").read_text())["evaluations"].values()
    audit = json.loads((tmp / "a" / "eval.json").read_text())["evaluations"]["audit"]
    for key in ("images", "predicted", "features", "classifier"):
        assert not _close(own[key], audit[key]), _close(own[key], audit[key])[:5]
    report = (tmp / "a" / "report.md").read_text()
    assert "| animal | 12 |" in report and (tmp / "a" / "figures" / "samples.png").read_bytes()[:4] == b"\x89PNG"
    # the run's own samples file audits the same
    (samples,) = (tmp / "r" / "samples").glob("*.safetensors")
    p = run("audit", "--samples", samples, "--config", tmp / "r" / "config.yaml", "--out", tmp / "b", "--quiet")
    assert p.returncode == 0, p.stderr
    again = json.loads((tmp / "b" / "eval.json").read_text())["evaluations"]["audit"]
    assert not _close(audit["images"], again["images"])


def test_the_class_layout_round_trips(tmp_path):
    root = disk_data.image_folder(tmp_path / "zoo", {"animal": ["cat", "dog"], "vehicle": ["car"]}, n=4)
    cfg = config.load(None, {"data.source": "imagefolder", "data.root": str(root)})
    h = get_source("imagefolder")(cfg).hierarchy
    gen = torch.Generator().manual_seed(0)
    leaf = torch.tensor([2, 0, 1, 1, 0, 2, 2])
    samples = {"images": torch.randint(0, 256, (7, 3, 8, 8), generator=gen, dtype=torch.uint8), "leaf": leaf}
    samples["z2"] = torch.tensor([h.leaf_category()[i] for i in leaf.tolist()])
    assert export_samples(samples, h, tmp_path / "out") == 7
    assert sorted(p.name for p in (tmp_path / "out" / "animal").iterdir()) == ["cat", "dog"]
    back = read_samples(tmp_path / "out", h, (3, 8, 8))
    for k in ("images", "z2", "leaf"):
        assert torch.equal(back[k], samples[k]), k
    with pytest.raises(TaxodiffError, match="exists and is not an empty folder"):
        export_samples(samples, h, tmp_path / "out")


def _bad_samples(tmp_path, how):  # type: ignore[no-untyped-def]
    from PIL import Image

    out = tmp_path / "s"
    (out / "animal").mkdir(parents=True)
    size = 9 if how == "shape" else 8
    Image.new("RGB", (size, size)).save(out / "animal" / "0.png")
    if how == "category":
        (out / "plant").mkdir()
        Image.new("RGB", (8, 8)).save(out / "plant" / "1.png")
    if how == "corrupt":
        (out / "animal" / "2.png").write_bytes(b"not a png")
    if how == "class":
        (out / "animal" / "car").mkdir()
        Image.new("RGB", (8, 8)).save(out / "animal" / "car" / "3.png")
    return out


@pytest.mark.parametrize(
    ("how", "needle"),
    [
        ("category", "names the category 'plant', which the class tree does not have"),
        ("shape", "is 9x9, the data's images are 8x8"),
        ("corrupt", "is not a readable image"),
        ("class", "class 'car' is not under 'animal'"),
        ("missing", "does not exist"),
        ("sequences", "allowed are image sources with labels"),
        ("no-config", "--config is missing"),
    ],
)
def test_bad_audits_get_one_line_and_write_nothing(tmp_path, how, needle):
    root = disk_data.image_folder(tmp_path / "zoo", {"animal": ["cat", "dog"], "vehicle": ["car"]}, n=4)
    f = tmp_path / "c.yaml"
    f.write_text(f"data: {{source: imagefolder, root: {root}}}\n" if how != "sequences" else "data: {source: rhm}\n")
    samples = tmp_path / "nowhere" if how == "missing" else _bad_samples(tmp_path, how)
    args = ["audit", "--samples", samples, "--out", tmp_path / "a"] + ([] if how == "no-config" else ["--config", f])
    rc, err, _ = light_run(args)
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "a").exists()


def test_export_refuses_an_unknown_tag_and_a_full_folder(trained):
    rc, err, _ = light_run(["export", "--run-dir", trained / "r", "--tag", "nope", "--out", trained / "x"])
    assert rc == 2 and "--tag 'nope' is not a samples file" in err and not (trained / "x").exists()
    (trained / "full").mkdir()
    (trained / "full" / "keep.txt").write_text("mine")
    rc, err, _ = light_run(["export", "--run-dir", trained / "r", "--out", trained / "full"])
    assert rc == 2 and "exists and is not an empty folder" in err
    assert [p.name for p in (trained / "full").iterdir()] == ["keep.txt"]


def test_a_samples_file_is_checked_against_the_tree(tmp_path):
    from safetensors.torch import save_file

    root = disk_data.image_folder(tmp_path / "zoo", {"animal": ["cat", "dog"], "vehicle": ["car"]}, n=4)
    cfg = config.load(None, {"data.source": "imagefolder", "data.root": str(root)})
    h = get_source("imagefolder")(cfg).hierarchy
    images = torch.zeros(3, 8, 8, 3, dtype=torch.uint8)  # (N, H, W, C) is read too
    cases = [
        ({"z2": torch.tensor([0, 1, 2])}, "'z2' must give every image a category index in 0..1"),
        ({"z2": torch.tensor([0, 1, 1]), "leaf": torch.tensor([0, 2, 7])}, "'leaf' must give every image a class"),
        ({"z2": torch.tensor([0, 1, 1]), "leaf": torch.tensor([0, 1, 2])}, "names classes outside the category"),
        ({"category": torch.tensor([0, 1])}, "'z2' must give every image a category index"),
    ]
    for extra, needle in cases:
        save_file({"images": images, **extra}, str(tmp_path / "s.safetensors"))
        with pytest.raises(TaxodiffError, match=re.escape(needle)):
            read_samples(tmp_path / "s.safetensors", h, (3, 8, 8))
    save_file({"images": images, "category": torch.tensor([1, 0, 1])}, str(tmp_path / "s.safetensors"))
    back = read_samples(tmp_path / "s.safetensors", h, (3, 8, 8))
    assert back["images"].shape == (3, 3, 8, 8) and back["z2"].tolist() == [1, 0, 1]
