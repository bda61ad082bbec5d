import json
import multiprocessing
import sys
import time
from pathlib import Path

import pytest
import torch

from taxodiff import api, config, runs
from taxodiff.errors import TaxodiffError
from taxodiff.train.schedule import batch_indices, lr_factor


def test_atomic_write_leaves_no_temp(tmp_path):
    runs.atomic_write(tmp_path / "a" / "x.json", "{}")
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["x.json"]


def test_batches_cover_an_epoch_and_split_across_ranks():
    a = torch.cat([batch_indices(100, s, 10, seed=0) for s in range(10)])
    assert sorted(a.tolist()) == list(range(100))
    full = batch_indices(100, 3, 10, seed=0)
    halves = torch.cat([batch_indices(100, 3, 10, 0, rank=0, world=2), batch_indices(100, 3, 10, 0, rank=1, world=2)])
    assert sorted(full.tolist()) == sorted(halves.tolist())


def test_lr_schedule():
    assert lr_factor(0, 100, 10, "cosine") == pytest.approx(0.1) and lr_factor(9, 100, 10, "cosine") == pytest.approx(
        1.0
    )
    assert lr_factor(99, 100, 10, "cosine") == pytest.approx(0.1, abs=0.01)
    assert [lr_factor(s, 100, 0, "constant") for s in (0, 50, 99, 500)] == [1.0] * 4


@pytest.mark.parametrize("family", ["flat", "hierarchical"])
def test_resume_equals_uninterrupted(tmp_path, tiny_cfg, family):
    cfg = config.with_overrides(tiny_cfg, {"model": family, "device": "cpu"})
    api.train(cfg, tmp_path / "full", progress=False)
    half = config.with_overrides(cfg, {"train.steps": 2})
    api.train(half, tmp_path / "split", progress=False)
    out = api.train(cfg, tmp_path / "split", progress=False)
    assert out["resumed_from"] == 2 and out["steps"] == 4
    a, _ = runs.load_checkpoint(runs.resolve_checkpoint(tmp_path / "full"), ("model", "ema"))
    b, _ = runs.load_checkpoint(runs.resolve_checkpoint(tmp_path / "split"), ("model", "ema"))
    for stem in ("model", "ema"):
        for k in a[stem]:
            assert torch.allclose(a[stem][k], b[stem][k], atol=1e-6), (stem, k)
    logged = [json.loads(x)["step"] for x in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert logged == [1, 2, 3, 4]


def test_save_load_gives_identical_samples(tmp_path, tiny_cfg):
    cfg = config.with_overrides(tiny_cfg, {"device": "cpu"})
    api.train(cfg, tmp_path / "run", progress=False)
    r1, r2 = api.load(tmp_path / "run"), api.load(tmp_path / "run")
    s1 = r1.family.generate(r1.module, cfg.sample, seed=7, progress=False)
    s2 = r2.family.generate(r2.module, cfg.sample, seed=7, progress=False)
    assert torch.equal(s1["images"], s2["images"]) and torch.equal(s1["z1"], s2["z1"])
    s3 = r1.family.generate(r1.module, cfg.sample, seed=8, progress=False)
    assert not torch.equal(s1["images"], s3["images"])


@pytest.mark.parametrize("family", ["flat", "hierarchical"])
def test_samples_depend_on_the_seed_not_the_batch_size(tmp_path, tiny_cfg, family):
    """Every sample has its own random stream (EDM's per-sample seeds): cutting the request into batches of 16
    or of 256 gives the same samples; asking for more samples keeps the first ones."""
    cfg = config.with_overrides(tiny_cfg, {"model": family, "device": "cpu", "sample.n_per_category": 20})
    api.train(cfg, tmp_path / "run", progress=False)
    _, small = api.sample(tmp_path / "run", {"batch_size": 16}, progress=False)
    _, large = api.sample(tmp_path / "run", {"batch_size": 256}, progress=False)
    assert torch.equal(small["images"], large["images"]) and torch.equal(small["z2"], large["z2"])
    _, more = api.sample(tmp_path / "run", {"batch_size": 256, "n_per_category": 24}, progress=False)
    first = torch.cat([torch.arange(20), 24 + torch.arange(20)])  # the first 20 of each category
    assert torch.equal(more["images"][first], large["images"])


def test_seed_flag_changes_samples_and_is_recorded(tmp_path, tiny_cfg):
    cfg = config.with_overrides(tiny_cfg, {"model": "flat", "device": "cpu"})
    api.train(cfg, tmp_path / "run", progress=False)
    own_path, own = api.sample(tmp_path / "run", progress=False)
    other_path, other = api.sample(tmp_path / "run", seed=3, progress=False)
    assert own_path != other_path and other_path.name.endswith("_seed3.safetensors")
    assert not torch.equal(own["images"], other["images"])


def test_initialisation_follows_the_run_seed(tiny_cfg):
    def weights(seed: int) -> torch.Tensor:
        run = config.with_overrides(tiny_cfg, {"seed": seed})
        from taxodiff.families import get_family

        return torch.cat([p.flatten() for p in api.build(get_family(run.model)(run)).parameters()])

    state = torch.random.get_rng_state()
    assert torch.equal(weights(0), weights(0)) and not torch.equal(weights(0), weights(1))
    assert torch.equal(torch.random.get_rng_state(), state)  # the global generator is left alone


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
    cfg = config.with_overrides(tiny_cfg, {"device": "cpu"})
    api.train(cfg, tmp_path / "run", progress=False)
    with pytest.raises(TaxodiffError, match="different config"):
        api.train(config.with_overrides(cfg, {"seed": 5}), tmp_path / "run", progress=False)


def test_evaluate_resamples_after_more_training(tmp_path, tiny_cfg):
    cfg = config.with_overrides(tiny_cfg, {"device": "cpu", "train.steps": 2})
    api.train(cfg, tmp_path / "run", progress=False)
    assert api.evaluate(tmp_path / "run", progress=False)["checkpoint_step"] == 2
    api.train(config.with_overrides(cfg, {"train.steps": 4}), tmp_path / "run", progress=False)
    assert api.evaluate(tmp_path / "run", progress=False)["checkpoint_step"] == 4


def test_a_killed_calls_training_time_counts_up_to_its_last_checkpoint(tmp_path, tiny_cfg, monkeypatch):
    """A call killed after its step-2 checkpoint wrote no train.json; the call that resumes it reports the
    killed call's time up to that checkpoint (kept in the checkpoint) plus its own. The first call is made slow
    (0.5 s a step), so that its time cannot pass for the second's."""
    import shutil
    import time

    from taxodiff.train.trainer import Trainer

    run = tmp_path / "run"
    step = Trainer.train_step
    with monkeypatch.context() as m:
        m.setattr(Trainer, "train_step", lambda self: (time.sleep(0.5), step(self))[1])
        api.train(tiny_cfg, run, progress=False)  # 4 steps, checkpoints at 2 and 4
    at_two = json.loads((run / "checkpoints" / "step-000002" / "state.json").read_text())["seconds"]
    assert at_two >= 1.0
    shutil.rmtree(run / "checkpoints" / "step-000004")  # as if killed between the checkpoints
    (run / "train.json").unlink()
    (run / "checkpoints" / "latest").write_text("step-000002")
    t0 = time.perf_counter()
    summary = api.train(tiny_cfg, run, progress=False)
    assert summary["resumed_from"] == 2
    assert at_two + 0.0 < summary["seconds"] <= at_two + time.perf_counter() - t0 + 0.1


def test_taxodiff_bf16_0_makes_auto_precision_float32(monkeypatch):
    import torch

    from taxodiff.train.distributed import bf16_supported, mixed_precision

    monkeypatch.setenv("TAXODIFF_BF16", "0")
    assert not bf16_supported(torch.device("cpu"))
    assert mixed_precision(torch.device("cpu"), "auto") == "no"
    assert mixed_precision(torch.device("cpu"), "bf16") == "bf16"  # asked for by name: still given


def _bump(lock: str, counter: str) -> None:
    with runs.locked(lock):
        n = int(Path(counter).read_text())
        time.sleep(0.3)  # long enough for the other processes to read the same count, were they not waiting
        Path(counter).write_text(str(n + 1))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork with torch loaded: Linux only")
def test_locked_blocks_of_several_processes_take_turns(tmp_path: Path) -> None:
    counter = tmp_path / "count"
    counter.write_text("0")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_bump, args=(str(tmp_path / "x.lock"), str(counter))) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert counter.read_text() == "3"  # unlocked, their reads overlap and the count comes out short
