"""Small data sets in the formats users have on disk, written inside the tests: an image folder, the CIFAR
binaries byte for byte, a Hugging Face data set. Class k of n is a bright bar at column k * (size // n) of a dark
noisy image, so a classifier learns it in a few steps."""

from __future__ import annotations

from pathlib import Path

import numpy as np

CIFAR10 = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def pattern(cls: int, classes: int, size: int, rng: np.random.Generator, channels: int = 3) -> np.ndarray:
    """(size, size, channels) uint8 of class ``cls``."""
    img = rng.integers(0, 50, size=(size, size, channels)).astype(np.uint8)
    w = max(1, size // classes)
    img[:, cls * w : (cls + 1) * w] = 230
    return img


def image_folder(root: Path, tree: dict, n: int = 20, size: int = 8, grey: bool = False) -> Path:
    """``tree``: {category: [class, ...]} (nested folders) or [class, ...] (one level); n PNG files per class."""
    from PIL import Image

    rng = np.random.default_rng(0)
    leaves = (
        [(Path(c) / k, k) for c, ks in tree.items() for k in ks]
        if isinstance(tree, dict)
        else [(Path(k), k) for k in tree]
    )
    for i, (folder, _) in enumerate(leaves):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for j in range(n):
            img = pattern(i, len(leaves), size, rng, 1 if grey else 3)
            Image.fromarray(img[..., 0] if grey else img).save(root / folder / f"{j:03d}.png")
    return root


def cifar_record(labels: tuple[int, ...], img: np.ndarray) -> bytes:
    """One record of the binary layout: the label bytes, then the red, green and blue planes of 32x32."""
    return bytes(labels) + img.transpose(2, 0, 1).tobytes()


def cifar10(root: Path, n_train: int = 6, n_test: int = 4) -> Path:
    """cifar-10-batches-bin/ with five training batches of ``n_train`` records per class... spread over them."""
    rng = np.random.default_rng(0)
    here = root / "cifar-10-batches-bin"
    here.mkdir(parents=True)
    (here / "batches.meta.txt").write_text("\n".join(CIFAR10) + "\n\n")
    train = [cifar_record((c,), pattern(c, 10, 32, rng)) for _ in range(n_train) for c in range(10)]
    for k in range(5):
        (here / f"data_batch_{k + 1}.bin").write_bytes(b"".join(train[k::5]))
    test = [cifar_record((c,), pattern(c, 10, 32, rng)) for _ in range(n_test) for c in range(10)]
    (here / "test_batch.bin").write_bytes(b"".join(test))
    return here


def cifar100(root: Path, n_train: int = 4, n_test: int = 2, coarse: int = 4, fine_per: int = 2) -> Path:
    """cifar-100-binary/ with ``coarse`` superclasses of ``fine_per`` classes (names for all 20 and 100, as the
    real files have; fine class f lies under superclass f // fine_per)."""
    rng = np.random.default_rng(1)
    here = root / "cifar-100-binary"
    here.mkdir(parents=True)
    (here / "coarse_label_names.txt").write_text("\n".join(f"super{c}" for c in range(20)) + "\n")
    (here / "fine_label_names.txt").write_text("\n".join(f"class{f}" for f in range(100)) + "\n")
    fine = coarse * fine_per

    def records(n: int) -> bytes:
        rows = [cifar_record((f // fine_per, f), pattern(f, fine, 32, rng)) for _ in range(n) for f in range(fine)]
        return b"".join(rows)

    (here / "train.bin").write_bytes(records(n_train))
    (here / "test.bin").write_bytes(records(n_test))
    return here


def hf_dataset(root: Path, n_train: int = 16, n_test: int = 6, size: int = 8) -> Path:
    """A DatasetDict (train, test) saved to disk: an Image column, a ClassLabel 'label' (4 classes) and a
    ClassLabel 'coarse' (2 categories: label // 2)."""
    import io

    from datasets import ClassLabel, Dataset, DatasetDict, Features, Image
    from PIL import Image as PILImage

    rng = np.random.default_rng(2)
    feats = Features(
        {
            "image": Image(),
            "label": ClassLabel(names=["ant", "bee", "car", "van"]),
            "coarse": ClassLabel(names=["bug", "auto"]),
        }
    )

    def split(n: int) -> Dataset:
        labels = [c for _ in range(n) for c in range(4)]
        images = []
        for c in labels:
            buf = io.BytesIO()
            PILImage.fromarray(pattern(c, 4, size, rng)).save(buf, format="PNG")
            images.append({"bytes": buf.getvalue(), "path": None})
        return Dataset.from_dict({"image": images, "label": labels, "coarse": [c // 2 for c in labels]}, features=feats)

    DatasetDict({"train": split(n_train), "test": split(n_test)}).save_to_disk(str(root))
    return root
