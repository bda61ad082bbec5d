"""The trainer's stages and structure hooks, and runs built on a frozen parent run, with toy families
registered for the test: a family is one class plus one registry line."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
import torch

from taxodiff import api, config, runs
from taxodiff.errors import TaxodiffError
from taxodiff.families import FAMILIES
from taxodiff.families.base import Family, Stage
from tests.conftest import TINY


@dataclass(frozen=True)
class Width:
    width: int = 4


@dataclass(frozen=True)
class Nothing:
    n: int = 1


class Growing(Family):
    """Stage "first" trains a; stage "grow" adds b and trains it with a frozen."""

    name: ClassVar[str] = "toy-growing"
    data_kinds: ClassVar[tuple[str, ...]] = ("images",)
    sections: ClassVar[dict[str, type]] = {"net": Width, "diffusion": Nothing, "sample": Nothing}
    compare: ClassVar[bool] = False

    def stages(self) -> list[Stage]:
        return [Stage("first", 3), Stage("grow", self.cfg.train.steps - 3, warmup=0, lr_schedule="constant")]

    def build(self, structure: dict | None = None, parent: Any = None) -> Any:
        from taxodiff.families.module import FamilyModule

        w = self.cfg.net.width
        module = FamilyModule(self, {"a": torch.nn.Linear(w, w)})
        if structure and structure["grown"]:
            module.add_module("b", torch.nn.Linear(w, w))
        return module

    def structure(self, module: Any) -> dict:
        return {"grown": hasattr(module, "b")}

    def grow(self, module: Any, stage: Stage) -> None:
        if stage.name == "grow":
            module.add_module("b", torch.nn.Linear(self.cfg.net.width, self.cfg.net.width))

    def freeze(self, module: Any, stage: Stage) -> None:
        for name, p in module.named_parameters():
            p.requires_grad_(stage.name == "first" or name.startswith("b."))

    def loss(self, module: Any, batch: dict, noise: Any) -> dict:
        x = batch["images"].flatten(1)[:, : self.cfg.net.width]
        out = module.a(x)
        if hasattr(module, "b"):
            out = module.b(out)
        return {"loss": (out - x).pow(2).mean()}


class Child(Family):
    """A head trained on the features of a frozen parent run's network."""

    name: ClassVar[str] = "toy-child"
    data_kinds: ClassVar[tuple[str, ...]] = ("images",)
    sections: ClassVar[dict[str, type]] = {"net": Width, "diffusion": Nothing, "sample": Nothing}
    compare: ClassVar[bool] = False
    uses_parent: ClassVar[bool] = True

    def build(self, structure: dict | None = None, parent: Any = None) -> Any:
        from taxodiff.families.module import FamilyModule

        module = FamilyModule(self, {"head": torch.nn.Linear(self.cfg.net.width, 1)})
        object.__setattr__(module, "parent", parent.module)  # used, not owned: not in the child's state
        return module

    def loss(self, module: Any, batch: dict, noise: Any) -> dict:
        x = batch["images"].flatten(1)[:, : self.cfg.net.width]
        return {"loss": module.head(module.parent.a(x)).pow(2).mean()}


@pytest.fixture(autouse=True)
def _toys():  # type: ignore[no-untyped-def]
    FAMILIES.register("toy-growing", Growing)
    FAMILIES.register("toy-child", Child)
    yield
    FAMILIES.unregister("toy-growing")
    FAMILIES.unregister("toy-child")


def _cfg(model: str, **over: Any) -> Any:
    base = {"model": model, "device": "cpu", "train.steps": 6, "train.checkpoint_every": 1, "train.warmup": 1}
    base["train.keep_checkpoints"] = 9
    return config.load(TINY, {**base, **over})


def _weights(run_dir: Any, stem: str = "model") -> dict:
    tensors, _ = runs.load_checkpoint(runs.resolve_checkpoint(run_dir), (stem,))
    return tensors[stem]


def test_a_stage_grows_the_network_and_freezes_the_rest(tmp_path):
    api.train(_cfg("toy-growing"), tmp_path / "run", progress=False)
    ckpts = sorted((tmp_path / "run" / "checkpoints").glob("step-*"))
    at3 = runs.load_checkpoint(tmp_path / "run" / "checkpoints" / "step-000006", ("model", "ema"))
    state = json.loads((ckpts[-1] / "state.json").read_text())
    assert state["structure"] == {"grown": True} and state["stage"] == "grow"
    assert {k.split(".")[0] for k in at3[0]["model"]} == {"a", "b"} and "b.weight" in at3[0]["ema"]
    log = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in log] == ["first"] * 3 + ["grow"] * 3


@pytest.mark.parametrize("split", [2, 3, 4])
def test_resume_across_stages_equals_one_run(tmp_path, split):
    """Interrupted before, at or after the stage boundary (step 3): the same weights, EMA included."""
    api.train(_cfg("toy-growing"), tmp_path / "full", progress=False)
    half = tmp_path / "half"
    api.train(_cfg("toy-growing"), half, progress=False)  # then roll back to an earlier checkpoint
    runs.atomic_write(half / "checkpoints" / "latest", f"step-{split:06d}\n")
    out = api.train(_cfg("toy-growing"), half, progress=False)
    assert out["resumed_from"] == split
    for stem in ("model", "ema"):
        a, b = _weights(tmp_path / "full", stem), _weights(half, stem)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), stem


def test_frozen_parameters_do_not_move(tmp_path):
    """Frozen at step 3, a takes its average then and keeps it."""
    api.train(_cfg("toy-growing"), tmp_path / "run", progress=False)
    first = runs.load_checkpoint(tmp_path / "run" / "checkpoints" / "step-000003", ("ema",))[0]["ema"]
    last = _weights(tmp_path / "run")
    assert torch.equal(first["a.weight"], last["a.weight"])
    loaded = api.load(tmp_path / "run")
    assert hasattr(loaded.module, "b") and torch.equal(
        loaded.module.b.weight, _weights(tmp_path / "run", "ema")["b.weight"]
    )


def test_a_frozen_network_keeps_its_average(tmp_path):
    """Stage "grow" freezes a: from then on a is its average at the end of stage "first", in the weights b trains
    against and in the EMA a loaded run uses (diffusers' EMAModel would copy a's raw weights into its average)."""
    api.train(_cfg("toy-growing", **{"train.ema_decay": 0.5}), tmp_path / "run", progress=False)
    at3 = runs.load_checkpoint(tmp_path / "run" / "checkpoints" / "step-000003", ("model", "ema"))[0]
    raw, ema = _weights(tmp_path / "run"), _weights(tmp_path / "run", "ema")
    assert not torch.equal(at3["ema"]["a.weight"], at3["model"]["a.weight"])  # the average lags the weights
    assert torch.equal(ema["a.weight"], at3["ema"]["a.weight"]) and torch.equal(raw["a.weight"], ema["a.weight"])
    assert torch.equal(api.load(tmp_path / "run").module.a.weight, at3["ema"]["a.weight"])
    assert not torch.equal(ema["b.weight"], raw["b.weight"])  # the trained part is averaged as before


def test_a_child_run_uses_its_frozen_parent(tmp_path):
    api.train(_cfg("toy-growing"), tmp_path / "parent", progress=False)
    parent_weights = _weights(tmp_path / "parent")
    with pytest.raises(TaxodiffError, match="parent is missing"):
        _cfg("toy-child")
    with pytest.raises(TaxodiffError, match="builds on no parent run"):
        _cfg("toy-growing", parent=str(tmp_path / "parent"))
    child = _cfg("toy-child", parent=str(tmp_path / "parent"))
    api.train(child, tmp_path / "child", progress=False)
    assert _weights(tmp_path / "child").keys() == {"head.weight", "head.bias"}  # the parent is not copied
    assert all(torch.equal(parent_weights[k], v) for k, v in _weights(tmp_path / "parent").items())
    state = json.loads((runs.resolve_checkpoint(tmp_path / "child") / "state.json").read_text())
    assert state["parent"]["step"] == 6
    assert api.load(tmp_path / "child").module.parent is not None
    # the parent trains on: the child refuses to run on a model it was not trained with
    api.train(_cfg("toy-growing", **{"train.steps": 9}), tmp_path / "parent", progress=False)
    with pytest.raises(TaxodiffError, match="changed since this run was trained on it"):
        api.load(tmp_path / "child")
    with pytest.raises(TaxodiffError, match="changed since this run was trained on it"):  # nor trains on it
        api.train(_cfg("toy-child", parent=str(tmp_path / "parent"), **{"train.steps": 8}), tmp_path / "child")


def test_a_frozen_batch_norm_keeps_its_running_statistics() -> None:
    from taxodiff.train.trainer import frozen_statistics

    net = torch.nn.Sequential(
        torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4)
    )
    for p in net[1].parameters():
        p.requires_grad_(False)
    net.train()
    frozen_statistics(net)
    assert not net[1].training and net[3].training
    before = net[1].running_mean.clone()
    net(torch.randn(8, 3) + 5)
    assert torch.equal(net[1].running_mean, before) and not torch.equal(net[3].running_mean, torch.zeros(4))
