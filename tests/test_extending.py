"""Adding a family or a data source is a class and a registry line: both are defined here and run through
train, evaluate and a study preset, with nothing else of the package changed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
import torch

from taxodiff import api, config
from taxodiff.config.fields import choice
from taxodiff.data import SOURCES
from taxodiff.data.real.labelled import LabelledImages, RealData
from taxodiff.errors import TaxodiffError
from taxodiff.families import FAMILIES
from taxodiff.families.base import Roles
from taxodiff.families.conditional import ConditionalImages
from taxodiff.studies import STUDIES, plugins, run_study
from tests.conftest import TINY


class Unconditional(ConditionalImages):
    """One image denoiser that reads no label at all (its condition is a constant): asked for a category, it
    can only draw from the whole data set."""

    name: ClassVar[str] = "unconditional"
    summary: ClassVar[str] = "one image denoiser that ignores every label"
    roles: ClassVar[Roles] = Roles(compared=True, guidance={"guidance": "image"})

    @property
    def cond_dim(self) -> int:
        return 1

    def condition(self, labels: torch.Tensor) -> torch.Tensor:
        return torch.ones(len(labels), 1, device=labels.device)


@dataclass(frozen=True)
class StripesData(RealData):
    source: str = choice("stripes", ("stripes",))


class Stripes(LabelledImages):
    """Grey 8x8 images of one bright row or column (four classes), with pixel noise."""

    name: ClassVar[str] = "stripes"
    summary: ClassVar[str] = "grey 8x8 images of one bright row or column"
    section: ClassVar[type] = StripesData
    class_names: ClassVar[tuple[str, ...]] = ("row2", "row5", "col2", "col5")

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(0)
        labels = np.repeat(np.arange(4), 60)
        images = rng.uniform(0.0, 0.2, (len(labels), 1, 8, 8)).astype(np.float32)
        for i, c in enumerate(labels):
            k = 2 if c % 2 == 0 else 5
            if c < 2:
                images[i, 0, k, :] = 1.0
            else:
                images[i, 0, :, k] = 1.0
        return images, labels

    def identity(self) -> str:
        return "stripes-test-1"


@pytest.fixture
def family():  # type: ignore[no-untyped-def]
    FAMILIES.register("unconditional", Unconditional)
    yield
    FAMILIES.unregister("unconditional")


@pytest.fixture
def source():  # type: ignore[no-untyped-def]
    SOURCES.register("stripes", Stripes)
    yield
    SOURCES.unregister("stripes")


def test_a_family_defined_here_trains_evaluates_and_joins_the_demo(tmp_path, family):
    cfg = config.load(TINY, {"model": "unconditional"})
    summary = api.train(cfg, tmp_path / "run", progress=False)
    assert summary["steps"] == 4 and summary["model"] == "unconditional"
    ev = api.evaluate(tmp_path / "run", {"guidance": 0}, progress=False)
    assert ev["model"] == "unconditional" and 0 <= ev["images"]["overall"]["coverage"] <= 1
    assert "unconditional ddpm2_g0" in api.describe(ev, "unconditional")
    study = STUDIES.get("mode-collapse")
    out = run_study(study, config.load(TINY), study.preset("demo", scales=(0.0,)), tmp_path / "demo", False)
    assert {r["model"] for r in out["rows"]} == {"flat", "hierarchical", "unconditional"}  # it joined by its roles
    assert "Unconditional model, guidance 0:" in (tmp_path / "demo" / "report.md").read_text()


def test_a_source_defined_here_trains_evaluates_and_runs_a_study(tmp_path, source):
    tree = {"rows": ["row2", "row5"], "columns": ["col2", "col5"]}
    sets = {"data.source": "stripes", "hierarchy": tree, "train.steps": 4, "train.batch_size": 8}
    sets |= {"net.channels": [8, 16], "net.emb_dim": 16, "sample.steps": 2, "sample.n_per_category": 4}
    sets |= {"eval.bootstrap": 20, "eval.classifier_epochs": 1}
    cfg = config.load(None, {**sets, "model": "flat"})
    assert cfg.data.source == "stripes" and api.train(cfg, tmp_path / "run", progress=False)["steps"] == 4
    ev = api.evaluate(tmp_path / "run", progress=False)
    assert set(ev["images"]["categories"]) == {"rows", "columns"}
    study = STUDIES.get("mode-collapse")  # on two worker processes, which register the source again
    preset = study.preset("demo", scales=(0.0,))
    out = run_study(study, config.load(None, sets), preset, tmp_path / "demo", False, workers=2)
    assert {r["model"] for r in out["rows"]} == {"flat", "hierarchical"} and out["rows_made"] == 2


def test_a_plugin_that_workers_cannot_import_is_refused_before_anything_is_written(tmp_path, source):
    class Local(Stripes):  # defined inside a function: another process cannot find it
        pass

    assert plugins.collect({})["data source"] == {"stripes": Stripes}
    SOURCES.register("stripes", Local)
    assert plugins.collect({})["data source"] == {}  # unused by the study: left out, nothing refused
    sets = {"data.source": "stripes", "hierarchy": {"rows": ["row2", "row5"], "columns": ["col2", "col5"]}}
    study = STUDIES.get("mode-collapse")
    with pytest.raises(TaxodiffError, match="cannot take the data source 'stripes' registered at run time"):
        run_study(study, config.load(None, sets), study.preset("demo", scales=(0.0,)), tmp_path / "x", False, 2)
    assert not (tmp_path / "x").exists()
