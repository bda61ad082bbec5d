"""RHM diffusion: networks, the one-hot Gaussian exact score, exact BP sampling, runs, studies and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch

from taxodiff import api, config
from taxodiff.data.rhm.bp import BeliefPropagation
from taxodiff.data.rhm.grammar import Grammar, one_hot
from taxodiff.data.rhm.spec import GrammarSpec
from taxodiff.errors import TaxodiffError
from taxodiff.families.rhm.adapters import one_hot_evidence
from taxodiff.families.rhm.family import RHMDiffusion
from taxodiff.families.rhm.transformer import SeqTransformer, TransformerConfig, count_params, width_for_params
from taxodiff.families.rhm.tree_unet import TreeUNet, TreeUNetConfig
from taxodiff.noise import Noise
from tests.conftest import ROOT

TINY = ROOT / "tests" / "configs" / "rhm_tiny.yaml"


def _family(**overrides):  # type: ignore[no-untyped-def]
    fam = RHMDiffusion(config.load(TINY, overrides))
    return fam, api.build(fam)


def test_tree_unet_shapes_and_tree_locality():
    net = TreeUNet(TreeUNetConfig(vocab=5, length=27, s=3, depth=2, width=16, emb_dim=16))
    x = torch.randn(2, 5, 27)
    assert net(x, torch.tensor([1, 7])).shape == (2, 5, 27)
    # the first down level merges s = 3 children: node 0 sees tokens 0..2 only
    h = torch.nn.functional.silu(net.stem(x))
    emb = torch.nn.functional.silu(net.time(torch.zeros(2, 16)))
    y = x.clone()
    y[:, :, 5] += 1.0  # a token of node 1
    h2 = torch.nn.functional.silu(net.stem(y))
    d = (net.down[0](h, emb) - net.down[0](h2, emb)).abs().sum(dim=(0, 1))
    assert d[0] == 0 and d[1] > 0 and d[2] == 0


def test_transformer_matches_the_tree_unet_size():
    tree = count_params(TreeUNet(TreeUNetConfig(width=128)))
    cfg = width_for_params(TransformerConfig(), tree)
    net = SeqTransformer(cfg)
    assert abs(count_params(net) - tree) / tree < 0.05
    assert net(torch.randn(3, 8, 8), torch.tensor([0, 5, 9])).shape == (3, 8, 8)


def test_gaussian_exact_score_matches_a_numerical_gradient():
    """score = (sqrt(abar) E[x0 | x_t] - x_t) / (1 - abar), with E[x0 | x_t] from BP, against central
    differences of log p_t(x_t) = log mean_seq N(x_t; sqrt(abar) onehot(seq), (1 - abar) I) by enumeration."""
    g = Grammar(GrammarSpec(v=3, n=2, m=2, s=2, L=2, seed_rules=5))
    seqs = one_hot(g.trees_from_indices(np.arange(g.num_sequences)).tokens, 3).double()  # (S, v, N)
    abar = torch.tensor([0.6], dtype=torch.float64)
    xt = torch.randn(1, 3, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)

    def log_p(x: torch.Tensor) -> torch.Tensor:
        d2 = (x - abar.sqrt() * seqs).pow(2).sum(dim=(1, 2))
        return torch.logsumexp(-d2 / (2 * (1 - abar)), dim=0)

    ex0 = BeliefPropagation(g).marginals(one_hot_evidence(xt, abar))[-1].permute(0, 2, 1)
    score = (abar.sqrt() * ex0 - xt) / (1 - abar)
    h = 1e-5
    numerical = torch.zeros_like(xt)
    for idx in np.ndindex(*xt.shape):
        e = torch.zeros_like(xt)
        e[idx] = h
        numerical[idx] = (log_p(xt + e) - log_p(xt - e)) / (2 * h)
    torch.testing.assert_close(score, numerical, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("process", ["discrete", "gaussian"])
def test_bp_denoiser_samples_the_grammar_exactly(process):
    fam, module = _family(**{"diffusion.process": process})
    tokens = fam.generate(module, replace(fam.cfg.sample, denoiser="bp", n_samples=1600), 0, False)["tokens"]
    g = fam.grammar
    assert g.validity(tokens)["sequences"][-1] == 1.0
    freq = torch.bincount(torch.tensor(g.indices_of(g.parse(tokens))), minlength=16).double() / 1600
    # 16 equally likely sequences, 1,600 draws: sd of a share 0.006; 5 sd
    assert (freq - 1 / 16).abs().max() < 0.031


@pytest.mark.parametrize(
    "process, target, arch",
    [("discrete", "x0", "tree_unet"), ("gaussian", "epsilon", "transformer"), ("gaussian", "exact_score", "tree_unet")],
)
def test_losses_are_finite_and_sampling_runs(process, target, arch):
    fam, module = _family(**{"diffusion.process": process, "diffusion.target": target, "net.arch": arch})
    x0 = fam.grammar.sample(8, seed=0).tokens
    loss = module({"tokens": x0}, Noise(torch.Generator().manual_seed(0)))["loss"]
    assert torch.isfinite(loss) and loss > 0
    loss.backward()
    out = fam.generate(module, replace(fam.cfg.sample, n_samples=5), 1, False)["tokens"]
    assert out.shape == (5, 4) and out.min() >= 0 and out.max() < 4


def test_impossible_grammar_and_too_many_sequences_are_refused():
    with pytest.raises(TaxodiffError, match="m=5 is impossible"):
        config.load(None, {"data.source": "rhm", "data.m": 5, "data.v": 4})
    with pytest.raises(TaxodiffError, match="more than this grammar's 16"):
        config.load(TINY, {"data.n_train": 14})
    with pytest.raises(TaxodiffError, match="has its own class tree"):
        config.load(TINY, {"hierarchy": {"a": ["x"]}})
    with pytest.raises(TaxodiffError, match="model = 'flat' does not take data.source = 'rhm'"):
        config.load(TINY, {"model": "flat"})


def test_a_study_default_picks_the_source_and_the_family():
    """What `taxodiff study rhm-learning` does without --config: its data source under the defaults."""
    cfg = config.load(None, under={"data.source": "rhm", "train.steps": 7})
    assert (cfg.model, cfg.data.source, cfg.train.steps) == ("rhm", "rhm", 7)
    assert config.load(TINY, under={"data.size": 16}).data.source == "rhm"  # keys the source lacks are dropped


def test_old_rhm_configs_are_upgraded():
    """Before data sources had sections of their own, the grammar was a top-level rhm: section."""
    old = config.resolve({"rhm": {"v": 4, "n": 2, "m": 2, "s": 2, "L": 2}, "data": {"n_train": 8, "n_test": 4}})
    assert old.model == "rhm" and old.data.source == "rhm" and (old.data.v, old.data.n_train) == (4, 8)


def test_train_evaluate_and_resume(tmp_path):
    cfg = config.load(TINY)
    run = tmp_path / "run"
    s = api.train(cfg, run, progress=False)
    assert s["steps"] == 6 and (run / "train.json").exists()
    ev = api.evaluate(run, progress=False)
    assert len(ev["validity"]["sequences"]) == 2 and 0 <= ev["memorisation"]["copies"] <= 1
    bp = api.evaluate(run, {"denoiser": "bp"}, progress=False)
    assert bp["validity"]["sequences"] == [1.0, 1.0]
    assert set(json.loads((run / "eval.json").read_text())["evaluations"]) == {"model_n16", "bp_n16"}
    more = api.train(config.with_overrides(cfg, {"train.steps": 9}), run, progress=False)
    assert more["resumed_from"] == 6 and more["steps"] == 9


def test_learning_study_smoke(tmp_path):
    from taxodiff.families.rhm.learning import STUDY, LearningPreset
    from taxodiff.studies import run_study

    preset = LearningPreset("tiny", "", sizes=(4, 8), marks=(3, 6), archs=("tree_unet",), n_samples=16)
    summary = run_study(STUDY, config.load(TINY), preset, tmp_path / "study", progress=False)
    assert len(summary["rows"]) == 4 and all(r["run_dir"] for r in summary["rows"])
    assert [r["epochs"] for r in summary["rows"]] == [3 * 4 / 4, 6 * 4 / 4, 3 * 4 / 8, 6 * 4 / 8]  # steps x batch / P
    md = (tmp_path / "study" / "report.md").read_text()
    assert "Findings" in md and (tmp_path / "study" / "figures" / "validity_and_copies.png").exists()
    again = run_study(STUDY, config.load(TINY), preset, tmp_path / "study", progress=False)  # resumes: no new rows
    assert len((tmp_path / "study" / "results.jsonl").read_text().splitlines()) == 4 and len(again["rows"]) == 4
    assert summary["rows_made"] == 4 and again["rows_made"] == 0


def test_phase_study_smoke(tmp_path):
    from taxodiff.families.rhm.phase import STUDY, PhasePreset
    from taxodiff.studies import run_study

    preset = PhasePreset("tiny", "", fractions=(0.2, 0.6, 1.0), n_sequences=4, depths=(2, 3), train_steps=3)
    summary = run_study(STUDY, config.load(TINY), preset, tmp_path / "phase", progress=False)
    again = run_study(STUDY, config.load(TINY), preset, tmp_path / "phase", progress=False)
    assert summary["rows_made"] == 9 and again["rows_made"] == 0 and again["rows"] == summary["rows"]  # rows resume
    bp = [r for r in summary["rows"] if r["denoiser"] == "bp"]
    assert all(r["valid"] == 1.0 for r in bp)  # exact denoising draws whole valid sequences, at any depth and time
    assert {r["L"] for r in summary["rows"]} == {2, 3}
    assert (tmp_path / "phase" / "figures" / "phase_transition.png").exists()


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "taxodiff.cli", *map(str, args)], capture_output=True, text=True)


def test_cli_rhm_train_evaluate_and_errors(tmp_path):
    run = tmp_path / "r"
    p = _cli("rhm", "train", "--config", TINY, "--run-dir", run, "--quiet", "--device", "cpu")
    assert p.returncode == 0, p.stderr
    p = _cli("rhm", "evaluate", "--run-dir", run, "--quiet", "--denoiser", "bp", "--n", "8")
    assert p.returncode == 0 and "valid l1 1.000" in p.stdout, p.stdout + p.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("rhm: {v: 3, n: 4, m: 3, s: 2, L: 2}\n")
    p = _cli("rhm", "train", "--config", bad, "--run-dir", tmp_path / "x")
    assert p.returncode == 2 and "n*m=12" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()
    p = _cli("evaluate", "--run-dir", run, "--quiet", "--n", "8")  # the plain verb takes every family's runs
    assert p.returncode == 0 and "valid l1" in p.stdout, p.stderr
    p = _cli("evaluate", "--run-dir", run, "--guidance", "2")  # an image setting given to an RHM run
    assert p.returncode == 2 and "sample.guidance is not a sampling setting of a 'rhm' run" in p.stderr
    p = _cli("train", "--config", ROOT / "configs" / "rhm_seed.yaml", "--dry-run")  # the plain verb trains it
    assert p.returncode == 0 and "model: rhm" in p.stdout and "source: rhm" in p.stdout


def test_run_directories_of_the_old_layout_keep_working(tmp_path):
    """A run written before data sources had sections (grammar in rhm:, train.prior_lr for every family)."""
    import yaml

    from taxodiff import runs

    run = tmp_path / "old"
    api.train(config.load(TINY), run, progress=False)

    def old(cfg: dict) -> dict:
        grammar = {k: cfg["data"].pop(k) for k in ("v", "n", "m", "s", "L", "seed_rules")}
        cfg["data"].pop("source")
        for key in ("model", "parent", "hierarchy", "cond_level", "embed_dim"):
            cfg.pop(key)
        cfg["train"]["prior_lr"] = 1e-3
        cfg["train"].pop("keep_checkpoints")
        return {"rhm": grammar, **cfg}

    (run / "config.yaml").write_text(yaml.safe_dump(old(yaml.safe_load((run / "config.yaml").read_text()))))
    ckpt = runs.resolve_checkpoint(run)
    state = json.loads((ckpt / "state.json").read_text())
    state["config"] = old(state["config"])
    (ckpt / "state.json").write_text(json.dumps(state))
    assert api.evaluate(run, {"denoiser": "bp"}, progress=False)["validity"]["sequences"] == [1.0, 1.0]
    assert api.train(config.load(TINY, {"train.steps": 8}), run, progress=False)["resumed_from"] == 6
