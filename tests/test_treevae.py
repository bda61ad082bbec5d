"""TreeVAE: the ELBO's terms against closed forms on a tiny tree, routing, growing and pruning, and the
family end to end (phases, save/load, bad input)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import distributions as D

from taxodiff.cli import main
from taxodiff.families.treevae import elbo, growth
from taxodiff.families.treevae.net import TreeVAEConfig, TreeVAENet
from taxodiff.families.treevae.tree import Tree
from taxodiff.noise import Noise
from tests.conftest import ROOT

TINY = ROOT / "tests" / "configs" / "tiny_treevae.yaml"


def _net(tree: Tree | None = None, seed: int = 0) -> TreeVAENet:
    torch.manual_seed(seed)
    cfg = TreeVAEConfig(image_shape=(1, 2, 3), hidden=6, latent=3, max_depth=3)
    return TreeVAENet(cfg, tree or Tree.initial())


def _grown() -> Tree:
    tree = Tree.initial()  # 0 -> 1, 2
    tree.split(1)  # 1 -> 3, 4
    tree.split(4)  # 4 -> 5, 6
    tree.prune(3)  # 1 keeps one child, 4
    return tree


def test_posterior_combination_is_the_normalised_product_of_the_two_gaussians() -> None:
    g = torch.Generator().manual_seed(1)
    mu_h, mu_p = torch.randn(5, generator=g), torch.randn(5, generator=g)
    sd_h, sd_p = torch.rand(5, generator=g) + 0.2, torch.rand(5, generator=g) + 0.2
    mu, sd = elbo.combine(mu_h, sd_h, mu_p, sd_p)
    xs = torch.linspace(-3, 3, 7).unsqueeze(1)
    gap = D.Normal(mu_h, sd_h).log_prob(xs) + D.Normal(mu_p, sd_p).log_prob(xs) - D.Normal(mu, sd).log_prob(xs)
    assert torch.allclose(gap, gap[0].expand_as(gap), atol=1e-5)  # log N_h + log N_p - log N_post: constant in x
    assert torch.all(sd < torch.minimum(sd_h, sd_p))


def test_kl_terms_against_torch_distributions() -> None:
    g = torch.Generator().manual_seed(2)
    m1, m2 = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    s1, s2 = torch.rand(4, 3, generator=g) + 0.1, torch.rand(4, 3, generator=g) + 0.1
    ref = D.kl_divergence(D.Normal(m1, s1), D.Normal(m2, s2)).sum(-1)
    assert torch.allclose(elbo.gaussian_kl(m1, s1, m2, s2), ref, atol=1e-5)
    std = D.kl_divergence(D.Normal(m1, s1), D.Normal(torch.zeros_like(m1), torch.ones_like(s1))).sum(-1)
    assert torch.allclose(elbo.standard_kl(m1, s1), std, atol=1e-5)
    q, p = torch.rand(6, generator=g) * 0.9 + 0.05, torch.rand(6, generator=g) * 0.9 + 0.05
    assert torch.allclose(elbo.bernoulli_kl(q, p), D.kl_divergence(D.Bernoulli(q), D.Bernoulli(p)), atol=1e-6)


def test_elbo_terms_of_a_two_leaf_tree_by_hand() -> None:
    net = _net()
    x = torch.rand(5, 1, 2, 3, generator=torch.Generator().manual_seed(3))
    terms = net.loss_terms(x, Noise.from_seed(7, "t"))
    # the same computation written out with torch.distributions and the same noise draws (root, 1, 2)
    eps = Noise.from_seed(7, "t")
    feats = net.features(x)
    f = {d: feats[net.cfg.max_depth - d] for d in (0, 1)}

    def gauss(module: torch.nn.Module, inp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, raw = module(inp).chunk(2, dim=-1)
        return mu, torch.nn.functional.softplus(raw) + 1e-4

    mu0, sd0 = gauss(net.posterior["0"], f[0])
    z0 = mu0 + sd0 * eps.randn(mu0.shape)
    kl_root = D.kl_divergence(D.Normal(mu0, sd0), D.Normal(0.0, 1.0)).sum(-1)
    q_left = torch.sigmoid(net.router_q["0"](f[0])).squeeze(-1)
    p_left = torch.sigmoid(net.router_p["0"](z0)).squeeze(-1)
    prob = {1: q_left, 2: 1 - q_left}
    rec, kl_nodes = torch.zeros(5), kl_root
    for leaf in (1, 2):
        mu_p, sd_p = gauss(net.prior[str(leaf)], z0)
        mu_h, sd_h = gauss(net.posterior[str(leaf)], f[1])
        var = 1 / (sd_h**-2 + sd_p**-2)
        mu, sd = var * (mu_h / sd_h**2 + mu_p / sd_p**2), var.sqrt()
        z = mu + sd * eps.randn(mu.shape)
        kl_nodes = kl_nodes + prob[leaf] * D.kl_divergence(D.Normal(mu, sd), D.Normal(mu_p, sd_p)).sum(-1)
        s = torch.sigmoid(net.decoder[str(leaf)](z))
        nll = -(x * torch.log(s) + (1 - x) * torch.log(1 - s)).flatten(1).sum(1)
        rec = rec + prob[leaf] * nll
    kl_router = D.kl_divergence(D.Bernoulli(q_left), D.Bernoulli(p_left))
    assert torch.allclose(terms["reconstruction"], rec, atol=1e-4)
    assert torch.allclose(terms["kl_nodes"], kl_nodes, atol=1e-4)
    assert torch.allclose(terms["kl_routers"], kl_router, atol=1e-5)


def test_a_split_trains_on_its_share_of_the_full_trees_elbo() -> None:
    """Below the root, every image's terms are weighted by its probability of reaching the split node (node 4
    of the grown tree is reached through node 1, a one-child link: with the root's left probability)."""
    net = _net(_grown())
    x = torch.rand(6, 1, 2, 3, generator=torch.Generator().manual_seed(4))
    terms = net.loss_terms(x, Noise.from_seed(3, "s"), start=4)
    p = net.run(x, Noise.from_seed(3, "s"), 4)
    reach = net.route_q(net.features(x), 0)
    rec = sum(p.prob[leaf] * elbo.reconstruction(net.decoder[str(leaf)](p.z[leaf]), x) for leaf in (5, 6))
    assert torch.allclose(terms["reconstruction"], reach * rec, atol=1e-5)
    assert torch.allclose(terms["kl_nodes"], reach * (p.prob[5] * p.kl[5] + p.prob[6] * p.kl[6]), atol=1e-5)
    assert torch.allclose(terms["kl_routers"], reach * p.router_kl[4], atol=1e-6)


def test_kl_weight_follows_the_seeds_annealing() -> None:
    from taxodiff.families.base import Stage
    from taxodiff.families.treevae.family import TreeVAETrain, kl_weight

    t = TreeVAETrain(kl_growth=0.15, kl_final_warmup=0.5)
    split = Stage("split-2", 301)
    assert kl_weight(t, split, 0) == 0 and kl_weight(t, split, 150) == pytest.approx(0.075)
    assert kl_weight(t, split, 300) == pytest.approx(0.15)  # reset at the next phase
    final = Stage("prune", 601)
    assert kl_weight(t, final, 150) == pytest.approx(0.5) and kl_weight(t, final, 300) == kl_weight(t, final, 600) == 1
    fast = TreeVAETrain(kl_growth=1.0, kl_growth_warmup=0.5)
    assert kl_weight(fast, split, 75) == pytest.approx(0.5) and kl_weight(fast, split, 150) == 1


def test_conditioning_augmentation_adds_noise_of_its_std_and_nothing_at_zero() -> None:
    from taxodiff.families.treevae.refiner import augment

    guide = torch.zeros(64, 1, 16, 16)
    noise = Noise.from_seed(0, "aug")
    assert augment(guide, 0.0, noise) is guide
    first = noise.randn((2,))  # the stream did not move at std 0
    assert torch.equal(first, Noise.from_seed(0, "aug").randn((2,)))
    out = augment(guide, 0.3, Noise.from_seed(1, "aug"))
    # 16,384 draws: the sample std's standard error is 0.3 / sqrt(2 * 16384) ~ 0.0017; 0.01 is ~6 of them
    assert out.std().item() == pytest.approx(0.3, abs=0.01) and out.mean().abs().item() < 0.01


def test_leaf_probabilities_sum_to_one_on_a_grown_and_pruned_tree() -> None:
    net = _net(_grown())
    assert net.tree.leaves() == [2, 5, 6] and net.tree.routers() == [0, 4]
    assert set(net.router_q) == {"0", "4"} and set(net.decoder) == {"2", "5", "6"}
    x = torch.rand(9, 1, 2, 3)
    p = net.leaf_probs(x)
    assert p.shape == (9, 3) and torch.allclose(p.sum(1), torch.ones(9), atol=1e-6)
    sub = net.node_probs(x, start=4)
    assert torch.allclose(sub[5] + sub[6], torch.ones(9), atol=1e-6)
    terms = net.loss_terms(x, Noise.from_seed(0, "x"))
    assert all(torch.isfinite(v).all() for v in terms.values())


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_the_convolutional_variant_decodes_every_image_size(shape: tuple[int, int, int]) -> None:
    torch.manual_seed(0)
    net = TreeVAENet(TreeVAEConfig(image_shape=shape, arch="conv", hidden=16, latent=3, channels=(4, 8)), _grown())
    x = torch.rand(3, *shape)
    terms = net.loss_terms(x, Noise.from_seed(0, "c"))
    assert all(v.shape == (3,) and torch.isfinite(v).all() for v in terms.values())
    rec, leaf = net.reconstruct(x)
    assert rec.shape == x.shape and set(leaf.tolist()) <= {2, 5, 6}


def test_tree_json_round_trip_and_refusals() -> None:
    tree = _grown()
    back = Tree.from_json(json.loads(json.dumps(tree.to_json())))
    assert back.children_map() == tree.children_map() and back.nodes[6].depth == 3 and back.next_id == 7
    with pytest.raises(ValueError):
        tree.prune(4)  # not a leaf
    tree.prune(5)
    with pytest.raises(ValueError):
        tree.prune(6)  # its parent's only child: the tree would lose a branch


class _Images:
    def __init__(self, n: int) -> None:
        self.images = torch.rand(n, 1, 2, 3) * 2 - 1

    def __len__(self) -> int:
        return len(self.images)

    def rows(self, idx):  # type: ignore[no-untyped-def]
        return self.images[idx]


def _route_root(net: TreeVAENet, p_left: float) -> None:
    """Make the root's inference router send every image left with probability p_left."""
    last = net.router_q["0"][-1]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.constant_(last.bias, float(torch.logit(torch.tensor(p_left))))


def test_growing_picks_the_fullest_splittable_leaf_and_pruning_keeps_a_sibling() -> None:
    net, data = _net(), _Images(40)
    _route_root(net, 0.8)  # leaf 1 holds every image (0.8 >= 1/2), leaf 2 none
    assert growth.leaf_to_split(net, data, max_depth=3, min_split=1) == 1
    assert growth.held(net, data, 1, 2).tolist() == list(range(40))
    assert growth.leaf_to_split(net, data, max_depth=3, min_split=41) is None  # holds too few
    assert growth.leaf_to_split(net, data, max_depth=1, min_split=1) is None  # at the depth limit
    _route_root(net, 0.3)
    assert growth.leaf_to_split(net, data, max_depth=3, min_split=1) == 2
    _route_root(net, 0.999)  # leaf 2 is nobody's most probable leaf
    assert growth.leaves_to_prune(net, data, 0.01) == [2]
    net.tree.prune(2)
    net.sync()
    assert set(net.decoder) == {"1"} and not net.router_q
    assert torch.allclose(net.leaf_probs(data.images), torch.ones(40, 1))


def _run(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as e:
        return int(e.code or 0)


def test_treevae_grows_saves_and_samples_identically(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from taxodiff import api

    run = tmp_path / "tv"
    assert _run(["treevae", "train", "--config", str(TINY), "--run-dir", str(run), "--quiet"]) == 0
    stages = [json.loads(line).get("stage") for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert stages[0] == "tree" and "split-1" in stages and "prune" in stages and stages[-1] == "diffusion"
    state = json.loads(next((run / "checkpoints").glob("step-*/state.json")).read_text())
    assert len(Tree.from_json(state["structure"]["tree"]).nodes) >= 4  # the split happened
    assert state["structure"]["refiner"]["cond_dim"] == 5  # node ids 0..4
    for extra in ([], ["--decoder", "vae"], ["--mode", "every-leaf"]):
        assert _run(["evaluate", "--run-dir", str(run), "--request", "tree", "--quiet", *extra]) == 0
    result = json.loads((run / "eval.json").read_text())["evaluations"]
    assert set(result) == {"tree_ddpm5", "tree_vae", "tree_ddpm5_every-leaf"}
    r = result["tree_ddpm5"]
    assert r["ward_pixels"]["clusters"] == max(2, r["clustering"]["clusters"])  # Ward gets as many clusters
    learned = Tree.from_json(json.loads((run / "tree.json").read_text()))
    assert r["clustering"]["clusters"] <= r["tree"]["leaves"] == len(learned.leaves())
    assert r["generated"]["n"] == 8 and result["tree_ddpm5_every-leaf"]["generated"]["n"] == 8 * r["tree"]["leaves"]
    assert (run / "tree.json").exists() and (run / "figures" / "tree.png").exists()
    a = api.load(run).family.generate(api.load(run).module, api.load(run).cfg.sample, 5, False)
    loaded = api.load(run)
    b = loaded.family.generate(loaded.module, loaded.cfg.sample, 5, False)
    assert torch.equal(a["images"], b["images"]) and torch.equal(a["node_leaf"], b["node_leaf"])
    for request in ("categories", "leaves"):
        assert _run(["sample", "--run-dir", str(run), "--request", request, "--quiet"]) == 0
    leaf = Tree.from_json(json.loads((run / "tree.json").read_text())).leaves()[0]
    assert _run(["sample", "--run-dir", str(run), "--request", "node", "--node", str(leaf), "--quiet"]) == 0
    capsys.readouterr()
    base = tmp_path / "vae"
    assert _run(["train", "--model", "vae", "--config", str(TINY), "--run-dir", str(base), "--quiet"]) == 0
    vae_steps = json.loads((base / "train.json").read_text())["steps"]
    assert vae_steps == json.loads((run / "train.json").read_text())["steps"]  # the same budget
    assert _run(["evaluate", "--run-dir", str(base), "--request", "tree", "--quiet"]) == 0
    capsys.readouterr()
    for argv, message in (
        (["treevae", "train", "--config", str(TINY), "--set", "net.leaves=1"], "net.leaves = 1 is invalid"),
        (["treevae", "train", "--config", str(TINY), "--set", "net.max_depth=0"], "net.max_depth"),
        (["treevae", "evaluate", "--run-dir", str(base)], "holds a 'vae' run"),
        (["sample", "--run-dir", str(run), "--request", "node", "--node", "99"], "sample.node = 99"),
        (["sample", "--run-dir", str(run), "--request", "node"], "sample.node = None is invalid with request node"),
        (["sample", "--run-dir", str(run), "--mode", "every-leaf", "--request", "leaves"], "allowed with request tree"),
        (["sample", "--run-dir", str(base / "nothing")], "nothing"),
    ):
        assert _run([*argv, "--run-dir", str(tmp_path / "bad")] if "train" in argv else argv) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err, err


def test_resuming_inside_a_split_phase_ends_bit_identical(tmp_path: Path) -> None:
    """The split's data (the images its leaf holds) are recomputed on resume from frozen routers only."""
    import shutil

    from taxodiff import api, config

    cfg = config.load(TINY, {"train.keep_checkpoints": 100, "train.diffusion_steps": 0})
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    a = api.train(cfg, whole, progress=False)
    shutil.copytree(whole, cut)
    for ckpt in (cut / "checkpoints").iterdir():
        if ckpt.name.startswith("step-") and int(ckpt.name[5:]) > 9:  # keep 9: inside split-1 (6..9 of 14)
            shutil.rmtree(ckpt)
    (cut / "checkpoints" / "latest").write_text("step-000009\n")  # as if stopped after step 9
    b = api.train(cfg, cut, progress=False)
    assert b["resumed_from"] == 9 and b["weight_digests"] == a["weight_digests"]


def test_treevae_study_writes_the_three_methods_and_the_second_stage(tmp_path: Path) -> None:
    out = tmp_path / "study"
    assert _run(["study", "treevae", "--config", str(TINY), "--seeds", "1", "--out", str(out), "--quiet"]) == 0
    report = (out / "report.md").read_text()
    for text in ("| TreeVAE |", "| VAE + Ward |", "| Ward on pixels |", "second stage", "coarse request"):
        assert text in report, text
    assert (out / "figures" / "leaf_classes.png").exists()
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert {(r["model"], r["request"], r["decoder"]) for r in rows} == {
        ("treevae", "tree", "diffusion"),
        ("treevae", "categories", "diffusion"),
        ("treevae", "tree", "vae"),
        ("vae", "tree", "vae"),
    }


def test_the_budget_preset_multiplies_every_phase_and_reports_the_trend(tmp_path: Path) -> None:
    out = tmp_path / "study"
    argv = ["study", "treevae", "--preset", "budget", "--config", str(TINY), "--seeds", "2", "--out", str(out)]
    assert _run([*argv, "--quiet"]) == 0
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    steps = {(r["cell"], r["model"], r["seed"]): r["train_steps"] for r in rows}
    assert len(steps) == 3 * 2 * 2  # budgets x methods x seeds
    for model in ("treevae", "vae"):
        one = steps[("budget-1x", model, 0)]
        assert (steps[("budget-2x", model, 0)], steps[("budget-4x", model, 0)]) == (2 * one, 4 * one)
    assert all(r["decoder"] == "vae" for r in rows)  # no second stage
    report = (out / "report.md").read_text()
    assert "figures/budget.png" in report and (out / "figures" / "budget.png").exists()
    for text in ("| 4x | TreeVAE |", "| 4x | VAE + Ward |", "| 1x | Ward on pixels |", "the paired difference"):
        assert text in report, text


def test_one_budget_runs_alone_and_the_others_join_it_later(tmp_path: Path) -> None:
    out = tmp_path / "study"
    argv = ["study", "treevae", "--config", str(TINY), "--seeds", "1", "--out", str(out), "--quiet"]
    assert _run([*argv, "--budgets", "2"]) == 0
    assert "One budget: no trend" in (out / "report.md").read_text()
    assert _run([*argv, "--budgets", "1,2"]) == 0
    assert json.loads((out / "summary.json").read_text())["rows_made"] == 2  # the 1x pair only: 2x was kept
    report = (out / "report.md").read_text()
    assert "From 1x to 2x, the paired difference" in report and "| 2x | TreeVAE |" in report


@pytest.mark.parametrize("budgets", ["2,1", "0,1", "1,x"])
def test_a_bad_budget_list_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture, budgets: str) -> None:
    argv = ["study", "treevae", "--config", str(TINY), "--budgets", budgets, "--out", str(tmp_path / "x")]
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and "--budgets" in err and "e.g. 1,2,4" in err and "\n" not in err, err
    assert not (tmp_path / "x").exists()


def test_the_budget_verdict_pairs_seeds_and_reads_the_spread() -> None:
    from taxodiff.families.treevae import budget

    def row(factor: float, model: str, seed: int, accuracy: float) -> dict:
        scores = {"accuracy": accuracy, "nmi": 0.5, "dendrogram_purity": 0.5}
        return {"cell": budget.cell(factor), "model": model, "seed": seed, "own": scores, "ward_pixels": scores}

    def accuracy_verdict(rows: list[dict]) -> str:
        s = budget.summary(rows, (1.0, 4.0))
        return budget.verdict(s["budgets"][0]["gaps"]["accuracy"], s["budgets"][-1]["gaps"]["accuracy"])

    # the VAE at 0.6 throughout; TreeVAE 0.5 / 0.4 (seeds 0 / 1) at 1x, 0.7 / 0.6 at 4x: +0.2 on both seeds
    rows = [row(f, "vae", s, 0.6) for f in (1.0, 4.0) for s in (0, 1)]
    rows += [row(1.0, "treevae", 0, 0.5), row(1.0, "treevae", 1, 0.4), row(4.0, "treevae", 1, 0.6)]
    rows += [row(4.0, "treevae", 0, 0.7)]
    assert accuracy_verdict(rows) == "-0.150 to +0.050 (TreeVAE gains 0.200, beyond its sd over seeds, 0.000)"
    # seed 1 at 4x falls to 0.3 (moves +0.2 and -0.1: within their spread); seed 2, at 1x only, is left out
    rows = [r for r in rows if (r["cell"], r["model"], r["seed"]) != ("budget-4x", "treevae", 1)]
    rows += [row(4.0, "treevae", 1, 0.3), row(1.0, "treevae", 2, 0.9), row(1.0, "vae", 2, 0.1)]
    assert accuracy_verdict(rows) == "-0.150 to -0.100 (TreeVAE gains 0.050, within its sd over seeds, 0.212)"
