"""The branched family (seed 004) and its label-conditioned baseline: the network, the tree on process times,
training, the three requests, continual learning (old classes bit-identical), transmutation, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from taxodiff.errors import TaxodiffError
from taxodiff.families.branched.net import BranchedUNet, BranchUNets, parameter_count
from taxodiff.families.branched.tree import BranchedTree, Segment
from taxodiff.nets.unet import UNet, UNetConfig, matched_config, unet_parameters
from tests.conftest import ROOT, TINY

DIGITS = ROOT / "tests" / "configs" / "tiny_digits.yaml"
CFG = UNetConfig(in_channels=1, channels=(8, 16), emb_dim=16, patch=1)


def _randomise(net: torch.nn.Module) -> None:
    torch.manual_seed(0)
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.2)


# (head_levels, codes, whole): a trunk with one or two up levels per head, with branch codes, a whole U-Net each
NETS = [(1, False, False), (2, False, False), (1, True, False), (1, False, True)]


@pytest.mark.parametrize(("head_levels", "codes", "whole"), NETS)
def test_a_mixed_batch_equals_each_head_on_its_own_rows(head_levels: int, codes: bool, whole: bool) -> None:
    net = BranchUNets(CFG, 3) if whole else BranchedUNet(CFG, heads=3, head_levels=head_levels, codes=codes)
    net = net.eval()
    _randomise(net)
    x, t = torch.randn(6, 1, 8, 8), torch.tensor([5, 900, 40, 40, 300, 7])
    head = torch.tensor([2, 0, 1, 2, 0, 1])
    mixed = net(x, t, head)
    for k in range(3):
        rows = head == k
        assert torch.allclose(mixed[rows], net(x[rows], t[rows], head[rows]), atol=1e-5)
    assert not torch.allclose(net(x, t, torch.zeros_like(head)), net(x, t, torch.ones_like(head)))
    assert parameter_count(CFG, 3, head_levels, codes, whole) == sum(p.numel() for p in net.parameters())
    k = net.add_head(like=1)
    assert torch.equal(net(x, t, torch.full_like(head, k)), net(x, t, torch.ones_like(head)))


def test_whole_networks_per_branch_share_nothing() -> None:
    """net.branch_network: whole: branch k's rows go through its own U-Net only; nothing else has parameters."""
    from dataclasses import replace

    net = BranchUNets(CFG, heads=3).eval()
    _randomise(net)
    x, t = torch.randn(4, 1, 8, 8), torch.tensor([5, 900, 40, 7])
    alone = net.heads[2](x, t, torch.zeros(4, 1))
    assert torch.equal(net(x, t, torch.full((4,), 2)), alone)
    assert all(isinstance(h, UNet) for h in net.heads) and all(k.startswith("heads.") for k in net.state_dict())
    count = parameter_count(CFG, 3, whole=True)
    assert count == 3 * unet_parameters(replace(CFG, cond_dim=1)) > parameter_count(CFG, 3, head_levels=2)


def test_matched_widths_are_the_nearest_count() -> None:
    for heads in (3, 7, 19):
        target = parameter_count(CFG, heads=heads)
        got = matched_config(CFG, target)
        n = parameter_count(got)
        assert all(c % 8 == 0 for c in got.channels) and got.channels[0] <= got.channels[1]
        assert abs(n - target) / target < 0.01, (heads, got, n, target)


def _tree() -> BranchedTree:
    segs = [
        Segment(("a", "b", "c"), 600, 1000, 0),
        Segment(("a", "b"), 300, 600, 1),
        Segment(("a",), 0, 300, 2),
        Segment(("b",), 0, 300, 3),
        Segment(("c",), 0, 600, 4),
    ]
    return BranchedTree(1000, tuple(segs))


def test_tree_paths_tables_and_grid_refusal() -> None:
    tree = _tree()
    tree.check()
    assert [s.head for s in tree.path("a")] == [0, 1, 2]
    table = tree.head_table(["a", "b", "c"])
    # a branch holds t_start < t <= t_end: a step from t belongs to the branch holding t
    assert table[0, 1000] == 0 and table[0, 601] == 0 and table[0, 600] == 1 and table[0, 301] == 1
    assert table[0, 300] == 2 and table[0, 0] == 2 and table[2, 600] == 4 and table[2, 601] == 0
    assert tree.meet("a", "b") == 300 and tree.meet("a", "c") == 600
    assert tree.total_length() == pytest.approx((400 + 300 + 300 + 300 + 600) / 1000)
    tree.check_grid(list(range(1000, -1, -100)), ["a", "b", "c"])  # step 100: every branch gets steps
    with pytest.raises(TaxodiffError, match="shorter than the sampler's step"):
        tree.check_grid([1000, 500, 0], ["a"])  # (300, 600] holds no grid time
    with pytest.raises(TaxodiffError, match="not in the branched tree"):
        tree.path("d")
    roundtrip = BranchedTree.from_json(tree.to_json())
    assert roundtrip == tree


@pytest.mark.parametrize("steps", [2, 3, 7])
def test_the_grid_hint_names_the_first_step_count_that_works(steps: int) -> None:
    """A short branch (a+b: 300..320) refuses coarse grids; the hint names the fewest steps whose even grid gives
    every branch a step, which a brute-force search over step counts confirms."""
    from taxodiff.processes.base import even_grid

    segs = (
        Segment(("a", "b", "c"), 320, 1000, 0),
        Segment(("a", "b"), 300, 320, 1),
        Segment(("a",), 0, 300, 2),
        Segment(("b",), 0, 300, 3),
        Segment(("c",), 0, 320, 4),
    )
    tree = BranchedTree(1000, segs)
    with pytest.raises(TaxodiffError, match="the fewest") as e:
        tree.check_grid(even_grid(steps, 1000, 0), ["a", "b"])
    hint = int(str(e.value).split("the fewest: ")[1].split(")")[0])
    works = [n for n in range(1, 1001) if tree.missed(even_grid(n, 1000, 0), ["a", "b"]) is None]
    assert hint == works[0] > steps
    tree.check_grid(even_grid(hint, 1000, 0), ["a", "b"])


def test_attaching_a_class_keeps_the_old_classes_heads() -> None:
    tree = _tree()
    grown = tree.attach("d", near="a", t=450, head=5)
    assert [s.head for s in grown.path("d")] == [0, 1, 5]
    assert torch.equal(grown.head_table(["a", "b", "c"]), tree.head_table(["a", "b", "c"]))
    grown.check_grid(list(range(1000, -1, -100)), ["a", "b"])  # the split branch (300, 600] counts as one
    with pytest.raises(TaxodiffError, match="already in the branched tree"):
        grown.attach("d", near="b", t=100, head=6)


def _run(args: list[str]) -> int:
    from taxodiff.cli import main

    return main(args)


def test_branched_train_sample_three_ways_and_baseline(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import json

    run = tmp_path / "br"
    sets = [
        "--set",
        "sample.steps=20",
        "--set",
        "sample.n_per_class=3",
        "--set",
        "net.branch_min_length=0.1",
        "--set",
        "net.branch_per_class=16",
    ]
    assert _run(["branched", "train", "--config", str(TINY), "--run-dir", str(run), "--quiet", *sets]) == 0
    for request in ("categories", "classes", "classes-cached"):
        assert _run(["evaluate", "--run-dir", str(run), "--request", request, "--quiet"]) == 0
    evals = json.loads((run / "eval.json").read_text())["evaluations"]
    assert len(evals) == 3
    assert len(list((run / "figures").glob("samples_*.png"))) == 3
    for r in evals.values():  # the overall class accuracy is the sample-weighted mean of the per-class ones
        per = r["features"]["classes"]["per_class"].values()
        weighted = sum(c["accuracy"] * c["n"] for c in per) / sum(c["n"] for c in per)
        assert r["classes"]["accuracy"] == pytest.approx(weighted)
    cached = next(r for k, r in evals.items() if "cached" in k)
    assert sum(cached["predicted"]) == 3 * 4  # n_per_class x classes
    argv = ["evaluate", "--run-dir", str(run), "--request", "classes-cached", "--classes", "car,dog", "--quiet"]
    assert _run(argv) == 0  # two classes only: the cached walk visits only their branches
    only = json.loads((run / "eval.json").read_text())["evaluations"]
    assert sum(only[next(k for k in only if k.endswith("_car-dog") or k.endswith("_dog-car"))]["predicted"]) == 6
    assert any(p.name.endswith("car-dog.png") or p.name.endswith("dog-car.png") for p in (run / "figures").iterdir())
    params = json.loads((run / "train.json").read_text())["parameters"]
    base = tmp_path / "lab"
    argv = ["train", "--model", "labelled", "--config", str(TINY), "--run-dir", str(base), "--quiet"]
    assert _run([*argv, "--set", f"net.match_parameters={params}"]) == 0
    matched = json.loads((base / "train.json").read_text())["parameters"]
    assert abs(matched - params) / params < 0.01
    assert _run(["evaluate", "--run-dir", str(base), "--quiet"]) == 0
    capsys.readouterr()
    # bad input: one line, exit 2
    for argv, message in (
        (["evaluate", "--run-dir", str(run), "--steps", "1"], "shorter than the sampler's step"),
        (["evaluate", "--run-dir", str(run), "--guidance", "3"], "no condition to guide"),
        (["evaluate", "--run-dir", str(base), "--request", "classes-cached"], "share no trajectories"),
        (["transmute", "--run-dir", str(base)], "branched tree"),
        (["transmute", "--run-dir", str(run), "--from", "dog", "--to", "zebra"], "'zebra' is not in"),
        (["transmute", "--run-dir", str(run), "--from", "dog"], "go together"),
        (["sample", "--run-dir", str(run), "--request", "classes", "--classes", "zebra"], "sample.classes = 'zebra'"),
    ):
        assert _run(argv) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err, err


def _add_class(parent: Path, label: str, under: str, run: Path) -> list[str]:
    return ["add-class", "--parent", str(parent), "--class", label, "--under", under, "--run-dir", str(run)]


def _old_classes_equal(parent: Path, child: Path, request: str) -> bool:
    """Whether every class of the parent has the same sample bytes in both runs under a class request."""
    from taxodiff import api, runs

    old = runs.load_samples(next((parent / "samples").glob(f"*_{request}3.safetensors")))
    new = runs.load_samples(next((child / "samples").glob(f"*_{request}3.safetensors")))
    names_old = api.load(parent).family.hierarchy.leaf_names
    names_new = api.load(child).family.hierarchy.leaf_names
    return all(
        torch.equal(old["images"][old["leaf"] == i], new["images"][new["leaf"] == names_new.index(name)])
        for i, name in enumerate(names_old)
    )


@pytest.fixture(scope="module")
def extended(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A branched run on the tiny digits tree and its child with class 9 added under round."""
    root = tmp_path_factory.mktemp("continual")
    parent, child = root / "p", root / "c"
    assert _run(["branched", "train", "--config", str(DIGITS), "--run-dir", str(parent), "--quiet"]) == 0
    assert _run([*_add_class(parent, "9", "round", child), "--quiet"]) == 0
    return parent, child


def test_continual_learning_keeps_old_classes_bit_identical(extended: tuple[Path, Path]) -> None:
    from taxodiff import api

    parent, child = extended
    for request in ("classes", "classes-cached"):
        for run in (parent, child):
            assert _run(["sample", "--run-dir", str(run), "--request", request, "--quiet"]) == 0
        assert _old_classes_equal(parent, child, request), request
    before, after = api.load(parent), api.load(child)
    assert set(after.family.hierarchy.leaf_names) - set(before.family.hierarchy.leaf_names) == {"9"}
    # only the new class's head moved: every old tensor equal, the new head no longer its template's copy
    a, b = before.module.net.state_dict(), after.module.net.state_dict()
    head, template = after.module.tree.path("9")[-1].head, after.module.tree.path("0")[-1].head
    assert all(torch.equal(v, b[k]) for k, v in a.items())
    new = {k: v for k, v in b.items() if k.startswith(f"heads.{head}.")}
    assert any(not torch.equal(v, a[k.replace(f"heads.{head}.", f"heads.{template}.")]) for k, v in new.items())
    assert _run(["transmute", "--run-dir", str(child), "--from", "0", "--to", "9", "--n", "3", "--quiet"]) == 0
    assert (child / "transmute" / "figures" / "transmute.png").exists()


def test_continual_learning_refuses_bad_input(
    extended: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    parent, _ = extended
    capsys.readouterr()
    for argv, message in (
        (_add_class(parent, "6", "round", tmp_path / "x"), "already in the class tree"),
        (_add_class(parent, "9", "loops", tmp_path / "x"), "not in the class tree"),
        (_add_class(tmp_path / "none", "9", "round", tmp_path / "x"), "none"),
    ):
        assert _run(argv) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err, err
    assert not (tmp_path / "x").exists()
    lab = tmp_path / "lab"
    assert _run(["train", "--model", "labelled", "--config", str(DIGITS), "--run-dir", str(lab), "--quiet"]) == 0
    wrong = ["branched", "train", "--config", str(DIGITS), "--run-dir", str(tmp_path / "y"), "--set", f"parent={lab}"]
    capsys.readouterr()
    assert _run(wrong) == 2
    assert "a branched run extends a branched run" in capsys.readouterr().err


def test_labelled_continual_keeps_the_old_conditions(tmp_path: Path) -> None:
    from taxodiff import api

    parent = tmp_path / "p"
    assert _run(["train", "--model", "labelled", "--config", str(DIGITS), "--run-dir", str(parent), "--quiet"]) == 0
    cfg = api.add_class_config(parent, "9", "round", {"train.continual_data": "all"})
    family = type(api.load(parent).family)(cfg)
    child = api.build(family, None, api.load_parent(cfg))
    before = api.load(parent).module.net.eval()
    names_old, names_new = api.load(parent).family.hierarchy.leaf_names, family.hierarchy.leaf_names
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([100, 700])
    for i, name in enumerate(names_old):
        j = names_new.index(name)
        old = before(x, t, torch.nn.functional.one_hot(torch.tensor([i, i]), len(names_old)).float())
        new = child.net.eval()(x, t, torch.nn.functional.one_hot(torch.tensor([j, j]), len(names_new)).float())
        assert torch.allclose(old, new, atol=1e-5), name
    assert len(family.train_set()) > len(type(family)(api.add_class_config(parent, "9", "round")).train_set())


@pytest.mark.parametrize("family", ["flat", "hierarchical", "labelled", "branched"])
def test_every_image_family_matches_a_parameter_count(tmp_path: Path, family: str) -> None:
    """net.match_parameters gives each family's image network the widths that bring the family to the target,
    its other networks (the hierarchical prior, the branched heads) counted; a rebuilt run keeps its widths."""
    from taxodiff import api, config
    from taxodiff.families import get_family

    target = 600_000  # above the hierarchical prior alone (about 400,000 at its default widths)
    cfg = config.load(DIGITS, {"model": family, "net.match_parameters": target, "train.steps": 1})
    api.train(cfg, tmp_path / "run", progress=False)
    loaded = api.load(tmp_path / "run")
    count = sum(p.numel() for p in loaded.module.parameters())
    assert abs(count - target) / target < 0.02, count
    plain = api.build(get_family(family)(config.with_overrides(cfg, {"net.match_parameters": 0})))
    assert abs(sum(p.numel() for p in plain.parameters()) - target) / target > 0.1  # the config's widths differ
