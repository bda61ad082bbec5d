"""The mode-collapse study: its grid, its regimes, its aggregation and findings, and a CLI run on a tiny config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from taxodiff import config
from taxodiff.data import get_source
from taxodiff.families import get_family
from taxodiff.studies.mode_collapse import PRESETS
from taxodiff.studies.regimes import cell_config, imbalanced_spec
from taxodiff.studies.seeds import group_rows, shown, verdict
from tests.conftest import TINY
from tests.test_cli import run

KEYS = ("cell", "model", "guidance_method", "guidance", "prior_guidance", "steps")


def _tree(cfg):  # type: ignore[no-untyped-def]
    return get_source(cfg.data.source)(cfg).hierarchy


def test_imbalance_reweights_the_subtypes_of_every_category():
    cfg = config.load(
        None, {"hierarchy": {"a": {"dog": 0.5, "cat": 0.5}, "b": {"car": 0.2, "truck": 0.3, "boat": 0.5}}}
    )
    h = _tree(config.resolve({"hierarchy": imbalanced_spec(cfg, 0.9)}))
    assert h.conditional(0) == pytest.approx([0.9, 0.1])
    assert h.conditional(1) == pytest.approx([0.9, 0.05, 0.05])
    assert h.category_probs() == pytest.approx(_tree(cfg).category_probs())


def test_cells_change_only_what_they_name():
    cfg = config.load(None, {"train.steps": 400})
    cells = {c.name: c for c in PRESETS["quick"].cells(cfg)}
    ref = cell_config(cfg, cells["reference"], 3)
    assert ref.seed == 3 and ref.hierarchy == cfg.hierarchy and ref.train == cfg.train
    assert cell_config(cfg, cells["short_training"], 0).train.steps == 100
    assert cell_config(cfg, cells["small_data"], 0).data.n_train == 500


def test_sampling_grid_has_no_duplicates_and_separate_prior_knob():
    p = PRESETS["quick"]
    flat, two_stage = get_family("flat"), get_family("hierarchical")
    for fam in (flat, two_stage):
        settings = p.settings("reference", fam.roles.guidance, fam.roles.baseline, 25)
        assert len(set(settings)) == len(settings)
    hier = p.settings("reference", two_stage.roles.guidance, False, 25)
    assert {(s.guidance, s.knob_scale) for s in hier} >= {(7.0, 0.0), (0.0, 7.0)}
    assert {s.knob for s in hier} == {None, "prior_guidance"}
    assert all(s.steps != 25 for s in p.settings("reference", flat.roles.guidance, True, 25))  # no repeats
    assert {s.method for s in p.settings("reference", flat.roles.guidance, True, 25)} == {"cfg", "interval", "cads"}


def _row(seed, props, kl, ci):  # type: ignore[no-untyped-def]
    return {
        "cell": "reference",
        "model": "flat",
        "guidance_method": "cfg",
        "guidance": 3.0,
        "prior_guidance": None,
        "steps": 25,
        "seed": seed,
        "run_dir": f"r{seed}",
        "tag": "t",
        "entropy_data": 0.69,
        "coverage_rel": 0.25,
        "kl": kl,
        "kl_ci": ci,
        "categories": {"animal": {"subtypes": ["dog", "cat"], "p_data": [0.5, 0.5], "proportions": props}},
    }


def test_group_rows_mean_and_seed_spread_and_verdicts():
    g = group_rows([_row(0, [0.5, 0.5], 0.01, [0.0, 0.03]), _row(1, [0.9, 0.1], 0.30, [0.2, 0.4])], KEYS)[0]
    assert g["kl"] == pytest.approx(0.155) and g["kl_ci"] == [0.01, 0.30]  # min-max over seeds
    assert g["kl_sd"] == pytest.approx(0.29 / 2**0.5) and g["kl_boot"] == pytest.approx([0.1, 0.215])
    assert shown(g, "kl") == "0.155 ± 0.205 [0.100, 0.215]"  # mean ± sd over seeds [bootstrap, averaged]
    assert g["categories"]["animal"]["proportions"] == pytest.approx([0.7, 0.3])
    assert verdict(g).startswith("lost modes (cat in animal; in 1 of 2 seeds)")  # 0.1 < 0.25 * 0.5
    one = group_rows([_row(0, [0.7, 0.3], 0.09, [0.05, 0.13])], KEYS)[0]
    assert one["kl_ci"] == [0.05, 0.13]  # one seed: its bootstrap interval
    assert verdict(one).startswith("kept every mode but mis-weighted")
    fine = group_rows([_row(0, [0.5, 0.5], 0.001, [0.0, 0.01])], KEYS)[0]
    assert verdict(fine).startswith("kept every mode with proportions consistent with the data")
    unresolved = group_rows([_row(0, [0.6, 0.4], 0.03, [0.01, 0.08])], KEYS)[0]
    assert "does not exclude" in verdict(unresolved)
    failing = group_rows(
        [{**_row(0, [0.5, 0.5], 0.001, [0.0, 0.01]), "off_category": 0.2, "off_category_ci": [0.1, 0.3]}], KEYS
    )
    assert verdict(failing[0]).endswith("; images failed: off-category 0.200 [0.100, 0.300]")


def test_study_cli_on_a_tiny_config(tmp_path):
    out = tmp_path / "study"
    p = run("study", "mode-collapse", "--config", TINY, "--out", out, "--quiet", "--device", "cpu")
    assert p.returncode == 0, p.stderr[-3000:]
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    cells = {r["cell"] for r in rows}
    assert cells == {"reference", "imbalanced", "small_data", "short_training"}
    assert {r["guidance_method"] for r in rows if r["model"] == "flat"} == {"cfg", "interval", "cads"}
    assert any(r["model"] == "hierarchical" and r["prior_guidance"] == 7.0 for r in rows)
    for r in rows:  # one layout: <out>/<cell>/seed<k>/<family>, each run evaluated there
        assert Path(r["run_dir"]) == out / r["cell"] / f"seed{r['seed']}" / r["model"]
        assert r["tag"] in json.loads((Path(r["run_dir"]) / "eval.json").read_text())["evaluations"]
    md = (out / "report.md").read_text()
    assert "## Findings" in md and "Reference (the config as given), guidance 0" in md
    assert "10 sampling steps, guidance 0" in md and "50 sampling steps, guidance 3" in md
    assert "mean ± sd over 3 training seeds" in md  # the quick preset's default seeds
    for fig in ("regimes", "guidance_curves", "precision_recall", "proportions"):
        assert (out / "figures" / f"{fig}.png").stat().st_size > 1000
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["train"]["steps"] == 4  # the user's config wins over the preset's values
    # running again reuses every training run and evaluation
    p = run("study", "mode-collapse", "--config", TINY, "--out", out, "--quiet", "--device", "cpu")
    assert p.returncode == 0
    assert [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()] == rows
    assert json.loads((out / "summary.json").read_text())["seconds"] >= summary["seconds"]  # calls summed


def test_study_refuses_a_bad_preset():
    p = run("study", "mode-collapse", "--preset", "huge")
    assert p.returncode == 2 and "invalid choice: 'huge'" in p.stderr


def _path(points):  # type: ignore[no-untyped-def]
    return [{"x": x, "kl": kl, "pixel_swd": swd} for x, kl, swd in points]


def test_guidance_rules_are_ranked_at_equal_image_quality():
    from taxodiff.studies.mode_collapse_guiders import kl_at_quality, ranking

    cfg = _path([(0, 0.01, 30), (1, 0.05, 40), (3, 0.10, 60), (7, 0.20, 100)])
    weaker = _path([(0, 0.01, 30), (1, 0.03, 35), (3, 0.05, 40), (7, 0.10, 60)])  # on CFG's curve, guides less
    better = _path([(0, 0.01, 30), (1, 0.02, 40), (3, 0.04, 60), (7, 0.10, 100)])  # below it at equal quality
    worse = _path([(0, 0.01, 30), (1, 0.06, 80), (3, 0.30, 120), (7, 0.50, 200)])  # above it, beyond its end
    assert kl_at_quality(cfg, 40) == (pytest.approx(0.05), True)
    assert kl_at_quality(cfg, 50) == (pytest.approx(0.075), True)  # halfway from 40 to 60
    assert kl_at_quality(cfg, 120) == (pytest.approx(0.20), False)  # beyond CFG's worst: its worst, flagged
    ranked = {r["rule"]: r for r in ranking({"cfg": cfg, "weaker": weaker, "better": better, "worse": worse})}
    order = list(ranked)
    assert order[0] == "better" and set(order[1:3]) == {"cfg", "weaker"} and order[3] == "worse"  # a tie in between
    assert ranked["cfg"]["score"] == pytest.approx(0.0, abs=1e-6)
    assert ranked["weaker"]["score"] == pytest.approx(0.0, abs=1e-6)  # guiding less does not win
    assert ranked["better"]["gaps"] == pytest.approx([-0.03, -0.06, -0.10])
    assert ranked["worse"]["gaps"] == pytest.approx([0.06 - 0.15, 0.10, 0.30]) and not ranked["worse"]["reached"]
    # a non-monotone path is read along its running maximum of pixel SWD
    bumpy = _path([(0, 0.01, 30), (1, 0.05, 50), (3, 0.07, 45), (7, 0.2, 90)])
    assert kl_at_quality(bumpy, 70) == (pytest.approx(0.135), True)


def test_a_ranking_within_the_seeds_spread_is_called_noise():
    from taxodiff.studies.mode_collapse_guiders import ranking, verdict

    cfg = [{**g, "kl_sd": 0.01} for g in _path([(0, 0.01, 30), (1, 0.012, 40), (3, 0.013, 60)])]
    close = _path([(0, 0.01, 30), (1, 0.011, 40), (3, 0.012, 60)])
    ranked = ranking({"cfg": cfg, "close": close})
    assert "beyond the spread over seeds" in verdict(ranked, cfg)
    far = _path([(0, 0.01, 30), (1, 0.001, 40), (3, 0.0, 60)])
    cfg_far = [{**g, "kl_sd": 0.001} for g in cfg]
    text = verdict(ranking({"cfg": cfg_far, "far": far}), cfg_far)
    assert text.startswith("Best at equal image quality: far; plain CFG ranks 2 of 2")


def test_the_guiders_preset_sweeps_every_rule_for_every_network():
    p = PRESETS["guiders"]
    assert [c.name for c in p.cells(config.load(TINY))] == ["reference"] and p.seeds >= 3
    flat, two_stage = get_family("flat"), get_family("hierarchical")
    hier = p.settings("reference", two_stage.roles.guidance, False, 25)
    assert len(set(hier)) == len(hier)
    decoder = {s.method for s in hier if s.knob is None}
    prior = {s.method for s in hier if s.knob == "prior_guidance"}
    assert decoder == {"cfg", *p.methods}
    assert prior == decoder - {"fdg", "cads"}  # FDG needs images; CADS would anneal the decoder's condition too
    assert {s.method for s in p.settings("reference", flat.roles.guidance, True, 25)} == decoder
