import json
from dataclasses import replace

import pytest
import torch

from taxodiff import pipeline, runs
from taxodiff.errors import TaxodiffError
from taxodiff.sampling import generate, load_model
from taxodiff.train import batch_indices, lr_factor


def test_atomic_write_leaves_no_temp(tmp_path):
    runs.atomic_write(tmp_path / "a" / "x.json", "{}")
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["x.json"]


def test_batches_cover_an_epoch_and_split_across_ranks():
    a = torch.cat([batch_indices(100, s, 10, seed=0) for s in range(10)])
    assert sorted(a.tolist()) == list(range(100))
    full = batch_indices(100, 3, 10, seed=0)
    halves = torch.cat([batch_indices(100, 3, 10, 0, rank=0, world=2), batch_indices(100, 3, 10, 0, rank=1, world=2)])
    assert sorted(full.tolist()) == sorted(halves.tolist())


def test_lr_schedule(tiny_cfg):
    t = replace(tiny_cfg.train, steps=100, warmup=10)
    assert lr_factor(0, t) == pytest.approx(0.1) and lr_factor(9, t) == pytest.approx(1.0)
    assert lr_factor(99, t) == pytest.approx(0.1, abs=0.01)
    c = replace(t, lr_schedule="constant", warmup=0)
    assert [lr_factor(s, c) for s in (0, 50, 99, 500)] == [1.0] * 4


@pytest.mark.parametrize("family", ["flat", "hierarchical"])
def test_resume_equals_uninterrupted(tmp_path, tiny_cfg, family):
    cfg = replace(tiny_cfg, model=family, device="cpu")
    pipeline.train_run(cfg, tmp_path / "full", progress=False)
    half = replace(cfg, train=replace(cfg.train, steps=2))
    pipeline.train_run(half, tmp_path / "split", progress=False)
    out = pipeline.train_run(cfg, tmp_path / "split", progress=False)
    assert out["resumed_from"] == 2 and out["steps"] == 4
    a, _ = runs.load_checkpoint(runs.resolve_checkpoint(tmp_path / "full"), ("model", "ema"))
    b, _ = runs.load_checkpoint(runs.resolve_checkpoint(tmp_path / "split"), ("model", "ema"))
    for stem in ("model", "ema"):
        for k in a[stem]:
            assert torch.allclose(a[stem][k], b[stem][k], atol=1e-6), (stem, k)
    logged = [json.loads(x)["step"] for x in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert logged == [1, 2, 3, 4]


def test_save_load_gives_identical_samples(tmp_path, tiny_cfg):
    cfg = replace(tiny_cfg, device="cpu")
    pipeline.train_run(cfg, tmp_path / "run", progress=False)
    _, m1, _ = load_model(tmp_path / "run", torch.device("cpu"))
    _, m2, _ = load_model(tmp_path / "run", torch.device("cpu"))
    s1 = generate(m1, cfg, cfg.sample, seed=7, progress=False)
    s2 = generate(m2, cfg, cfg.sample, seed=7, progress=False)
    assert torch.equal(s1["images"], s2["images"]) and torch.equal(s1["z1"], s2["z1"])
    s3 = generate(m1, cfg, cfg.sample, seed=8, progress=False)
    assert not torch.equal(s1["images"], s3["images"])


def test_foreign_and_missing_checkpoints(tmp_path, tiny_cfg):
    with pytest.raises(TaxodiffError, match="does not exist"):
        runs.resolve_checkpoint(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(TaxodiffError, match="holds no taxodiff checkpoint"):
        runs.resolve_checkpoint(tmp_path / "empty")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "state.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(TaxodiffError, match="not a taxodiff checkpoint"):
        runs.load_checkpoint(bad)


def test_refuses_a_different_config_in_the_same_run_dir(tmp_path, tiny_cfg):
    cfg = replace(tiny_cfg, device="cpu")
    pipeline.train_run(cfg, tmp_path / "run", progress=False)
    with pytest.raises(TaxodiffError, match="different config"):
        pipeline.train_run(replace(cfg, seed=5), tmp_path / "run", progress=False)


def test_evaluate_resamples_after_more_training(tmp_path, tiny_cfg):
    cfg = replace(tiny_cfg, device="cpu", train=replace(tiny_cfg.train, steps=2))
    pipeline.train_run(cfg, tmp_path / "run", progress=False)
    assert pipeline.evaluate_run(tmp_path / "run", progress=False)["checkpoint_step"] == 2
    pipeline.train_run(replace(cfg, train=tiny_cfg.train), tmp_path / "run", progress=False)
    assert pipeline.evaluate_run(tmp_path / "run", progress=False)["checkpoint_step"] == 4
