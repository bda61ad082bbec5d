"""Data users have on disk: an image folder (nested folders a class tree), CIFAR-10/100's binary files, a Hugging
Face data set (save_to_disk, parquet); images kept as bytes until a batch is read; and the errors."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from taxodiff import config
from taxodiff.data import get_source
from taxodiff.errors import TaxodiffError
from tests import disk_data
from tests.test_cli import light_run, run

TINY = {
    "model": "flat",
    "net.channels": [8, 16],
    "net.emb_dim": 16,
    "train.steps": 2,
    "train.batch_size": 8,
    "train.warmup": 1,
    "train.checkpoint_every": 2,
    "sample.steps": 2,
    "sample.n_per_category": 4,
    "eval.bootstrap": 20,
    "eval.classifier_epochs": 1,
}


def source(**data):  # type: ignore[no-untyped-def]
    hierarchy = data.pop("hierarchy", None)
    overrides = {f"data.{k}": str(v) if k == "root" else v for k, v in data.items()}
    cfg = config.load(None, overrides | ({"hierarchy": hierarchy} if hierarchy else {}))
    return get_source(cfg.data.source)(cfg)


# -- image folders --------------------------------------------------------------------------------------------
def test_nested_folders_are_the_class_tree_and_images_stay_bytes(tmp_path):
    root = disk_data.image_folder(tmp_path / "zoo", {"animal": ["cat", "dog"], "vehicle": ["car"]}, n=20)
    src = source(source="imagefolder", root=root)
    h = src.hierarchy
    assert h.category_names == ["animal", "vehicle"] and h.leaf_labels == ["cat", "dog", "car"]
    assert src.image_shape() == (3, 8, 8)
    train = src.train_set()
    assert train.pixels.dtype == torch.uint8 and len(train) == 48  # 20 per class, 4 of each held out
    assert len(src.held_out_indices()) == 12
    batch = train.batch(torch.arange(3))["images"]
    assert batch.dtype == torch.float32 and batch.min() >= -1 and batch.max() <= 1
    # a car's bar (class 2 of 3: columns 4-5) is bright in the float images, read back exactly from the bytes
    car = int(torch.nonzero(train.z1 == 2)[0])
    assert torch.allclose(train.rows(torch.tensor([car]))[0, :, :, 4:6], torch.tensor(230 / 127.5 - 1))


def test_one_level_folders_grey_resized_and_a_written_tree(tmp_path):
    root = disk_data.image_folder(tmp_path / "d", ["a", "b", "c"], n=10, size=12, grey=True)
    src = source(source="imagefolder", root=root, size=8)
    assert src.image_shape() == (1, 8, 8) and src.hierarchy.category_names == ["all"]
    written = source(source="imagefolder", root=root, size=8, hierarchy={"x": ["a", "c"], "y": ["b"]})
    assert written.hierarchy.category_names == ["x", "y"] and written.hierarchy.leaf_labels == ["a", "c", "b"]
    assert source(source="imagefolder", root=root, size=8, channels=3).image_shape() == (3, 8, 8)


def _break(root, how):  # type: ignore[no-untyped-def]
    from PIL import Image

    if how == "empty":
        (root / "animal" / "cow").mkdir()
    elif how == "corrupt":
        (root / "animal" / "cat" / "007.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    elif how == "not-an-image":
        (root / "animal" / "cat" / "notes.txt").write_text("hello")
    elif how == "mixed-sizes":
        Image.new("RGB", (9, 9)).save(root / "animal" / "cat" / "big.png")
    elif how == "same-name":
        (root / "vehicle" / "cat").mkdir()
        Image.new("RGB", (8, 8)).save(root / "vehicle" / "cat" / "x.png")
    elif how == "images-beside-folders":
        Image.new("RGB", (8, 8)).save(root / "animal" / "stray.png")


@pytest.mark.parametrize(
    ("how", "needle"),
    [
        ("missing", "does not exist"),
        ("empty", "holds no images"),
        ("corrupt", "is not a readable image"),
        ("not-an-image", "is not an image file"),
        ("mixed-sizes", "images of mixed sizes need data.size"),
        ("same-name", "share the name 'cat'"),
        ("images-beside-folders", "holds images beside sub-folders"),
    ],
)
def test_bad_image_folders_get_one_line(tmp_path, how, needle):
    root = disk_data.image_folder(tmp_path / "zoo", {"animal": ["cat", "dog"], "vehicle": ["car"]}, n=8)
    if how == "missing":
        root = tmp_path / "nowhere"
    else:
        _break(root, how)
    f = tmp_path / "c.yaml"
    f.write_text(f"data: {{source: imagefolder, root: {root}}}\n")
    rc, err, _ = light_run(["train", "--config", f, "--run-dir", tmp_path / "r", "--quiet", "--train-steps", "1"])
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "r").exists()


# -- CIFAR ----------------------------------------------------------------------------------------------------
def test_cifar10_binary_layout_split_and_default_tree(tmp_path):
    here = disk_data.cifar10(tmp_path)
    src = source(source="cifar10", root=tmp_path)  # the folder above cifar-10-batches-bin works too
    assert src.hierarchy.category_names == ["animal", "vehicle"] and len(src.hierarchy.leaf_labels) == 10
    assert len(src.split.train) == 60 and len(src.split.held_out) == 40  # the official test set is held out
    images, labels = src.arrays
    first = np.frombuffer((here / "data_batch_1.bin").read_bytes()[: 1 + 3072], dtype=np.uint8)
    assert labels[0] == first[0] and (images[0] == first[1:].reshape(3, 32, 32)).all()
    assert src.train_set().pixels.dtype == torch.uint8
    small = source(source="cifar10", root=here, size=16)
    assert small.image_shape() == (3, 16, 16)


def test_cifar100_default_tree_is_the_superclasses(tmp_path):
    disk_data.cifar100(tmp_path)
    src = source(source="cifar100", root=tmp_path / "cifar-100-binary")
    h = src.hierarchy
    assert h.category_names == ["super0", "super1", "super2", "super3"]
    assert [h.leaf_labels[i] for i in h.leaves_of(1)] == ["class2", "class3"]
    assert len(src.split.held_out) == 16 and len(src.split.train) == 32
    written = source(source="cifar100", root=tmp_path, hierarchy={"mixed": ["class0", "class7"]})
    assert written.hierarchy.leaf_labels == ["class0", "class7"] and len(written.train_set()) == 8


@pytest.mark.parametrize(
    ("how", "needle"),
    [
        ("truncated", "allowed is a whole number of 3,073-byte records"),
        ("pickle", "it is a pickle (the Python version)"),
        ("python-version", "is a pickle: the Python version, which taxodiff never loads"),
        ("missing-file", "lacks test_batch.bin"),
    ],
)
def test_bad_cifar_files_get_one_line(tmp_path, how, needle):
    here = disk_data.cifar10(tmp_path)
    if how == "truncated":
        path = here / "data_batch_2.bin"
        path.write_bytes(path.read_bytes()[:-100])
    elif how == "pickle":
        (here / "data_batch_3.bin").write_bytes(b"\x80\x04" + bytes(3071) + bytes(3073))
    elif how == "python-version":
        for f in here.glob("*.bin"):
            f.unlink()
        (here / "data_batch_1").write_bytes(b"\x80\x02}q\x00.")
    else:
        (here / "test_batch.bin").unlink()
    f = tmp_path / "c.yaml"
    f.write_text(f"data: {{source: cifar10, root: {here}}}\n")
    rc, err, _ = light_run(["train", "--config", f, "--run-dir", tmp_path / "r", "--quiet", "--train-steps", "1"])
    assert rc == 2 and needle in err, err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "r").exists()


# -- Hugging Face ---------------------------------------------------------------------------------------------
def test_hf_saved_to_disk_and_parquet(tmp_path):
    pytest.importorskip("datasets")
    root = disk_data.hf_dataset(tmp_path / "hf")
    src = source(source="hf", root=root, category_column="coarse")
    h = src.hierarchy
    assert h.category_names == ["bug", "auto"] and h.leaf_labels == ["ant", "bee", "car", "van"]
    assert len(src.split.train) == 64 and len(src.split.held_out) == 24
    assert src.image_shape() == (3, 8, 8) and src.train_set().pixels.dtype == torch.uint8
    from datasets import load_from_disk

    saved = load_from_disk(str(root))
    pq = tmp_path / "pq" / "data"
    pq.mkdir(parents=True)
    for split in ("train", "test"):
        saved[split].to_parquet(str(pq / f"{split}-00000-of-00001.parquet"))
    other = source(source="hf", root=pq.parent, category_column="coarse")
    assert other.hierarchy.leaf_labels == h.leaf_labels and (other.arrays[0] == src.arrays[0]).all()
    assert (other.arrays[1] == src.arrays[1]).all()
    flat = source(source="hf", root=root)
    assert flat.hierarchy.category_names == ["all"]
    with pytest.raises(TaxodiffError, match=re.escape("data.label_column = 'fine' is not a column")):
        source(source="hf", root=root, label_column="fine")


# -- through train, sample and evaluate -----------------------------------------------------------------------
def _config_file(tmp_path, data: str, hierarchy: str = ""):  # type: ignore[no-untyped-def]
    lines = [f"data: {data}"] + ([f"hierarchy: {hierarchy}"] if hierarchy else [])
    lines += [f"{k}: {v}" for k, v in _nested(TINY).items()]
    f = tmp_path / "c.yaml"
    f.write_text("\n".join(lines) + "\n")
    return f


def _nested(flat: dict) -> dict:
    out: dict = {}
    for k, v in flat.items():
        if "." in k:
            head, tail = k.split(".", 1)
            out.setdefault(head, {})[tail] = v
        else:
            out[k] = v
    return {k: (str(v).replace("'", "") if isinstance(v, dict) else v) for k, v in out.items()}


WRITTEN = {
    "imagefolder-written": "{pets: [dog, cat], other: [car]}",
    "cifar100-written": "{odd: [class1, class3], even: [class0, class2, class4]}",
    "hf-written": "{small: [ant, car], large: [bee, van]}",
}


@pytest.mark.parametrize("kind", ["imagefolder", "cifar10", "cifar100", "hf", *WRITTEN])
def test_train_sample_evaluate_through_every_disk_source(tmp_path, kind):
    written = WRITTEN.get(kind, "")
    kind = kind.removesuffix("-written")
    if kind == "hf":
        pytest.importorskip("datasets")
        data = f"{{source: hf, root: {disk_data.hf_dataset(tmp_path / 'hf')}, category_column: coarse}}"
    elif kind.startswith("imagefolder"):
        root = disk_data.image_folder(tmp_path / "zoo", {"animal": ["cat", "dog"], "vehicle": ["car"]}, n=12)
        data = f"{{source: imagefolder, root: {root}}}"
    else:
        maker = disk_data.cifar10 if kind == "cifar10" else disk_data.cifar100
        data = f"{{source: {kind}, root: {maker(tmp_path)}, size: 16}}"
    f = _config_file(tmp_path, data, written)
    p = run("train", "--config", f, "--run-dir", tmp_path / "r", "--quiet", "--device", "cpu")
    assert p.returncode == 0, p.stderr
    p = run("evaluate", "--run-dir", tmp_path / "r", "--quiet")
    assert p.returncode == 0 and "coverage" in p.stdout, p.stderr
    import json

    result = json.loads((tmp_path / "r" / "eval.json").read_text())["evaluations"]
    (only,) = result.values()
    names = list(only["images"]["categories"])
    assert only["images"]["overall"]["n"] > 0
    if written:
        assert names == [c.split(":")[0].strip(" {") for c in written.split("],")]


def test_sixteen_bit_and_transparent_images_are_scaled_not_clipped(tmp_path):
    from PIL import Image

    from taxodiff.data.real import pixels

    deep = Image.fromarray(np.full((4, 4), 32768, dtype=np.uint16))  # mid-grey in 16 bits
    clear = Image.new("RGBA", (4, 4), (0, 0, 0, 0))  # transparent: white
    section = pixels.PixelData(root="x")
    out = pixels.to_arrays([(deep, "a"), (clear.convert("LA"), "b")], section)
    assert out.shape == (2, 1, 4, 4) and out[0].max() == 128 and out[1].min() == 255
    both = pixels.to_arrays([(deep, "a"), (clear, "b")], section)
    assert both.shape == (2, 3, 4, 4)  # one colour image: every image in colour


def test_hf_labels_outside_the_names_are_refused(tmp_path):
    pytest.importorskip("datasets")
    import io

    from datasets import ClassLabel, Dataset, Features, Value
    from PIL import Image as PILImage

    rng = np.random.default_rng(0)

    def png() -> bytes:
        buf = io.BytesIO()
        PILImage.fromarray(disk_data.pattern(0, 2, 8, rng)).save(buf, format="PNG")
        return buf.getvalue()

    feats = Features(
        {"image": {"bytes": Value("binary"), "path": Value("string")}, "label": ClassLabel(names=["a", "b"])}
    )
    rows = {"image": [{"bytes": png(), "path": None} for _ in range(4)], "label": [0, 1, -1, 1]}
    Dataset.from_dict(rows, features=feats).save_to_disk(str(tmp_path / "hf"))
    with pytest.raises(TaxodiffError, match=re.escape("holds the label -1: allowed are 0..1")):
        source(source="hf", root=tmp_path / "hf").train_set()
