"""CIFAR-10 and CIFAR-100 from their official *binary* versions on disk (nothing is downloaded, nothing unpickled).

    data: {source: cifar100, root: ~/data/cifar-100-binary}

The binary layout (https://www.cs.toronto.edu/~kriz/cifar.html): every record is its label byte(s) then 3,072
bytes of pixels, the red, green and blue planes of 32x32 in row order.

- CIFAR-10 (``cifar-10-batches-bin/``): ``data_batch_1.bin`` .. ``data_batch_5.bin`` and ``test_batch.bin``,
  records of 1 + 3,072 bytes; class names in ``batches.meta.txt``. Default class tree: animal (bird, cat, deer,
  dog, frog, horse) and vehicle (airplane, automobile, ship, truck).
- CIFAR-100 (``cifar-100-binary/``): ``train.bin`` and ``test.bin``, records of 2 + 3,072 bytes (coarse label,
  fine label); names in ``coarse_label_names.txt`` and ``fine_label_names.txt``. Default class tree: the 20
  superclasses of 5 classes each, read from the data's coarse labels.

The official test set is the held-out split (the domain classifier's test set and the metrics' reference).
``data.root`` is the folder holding the files or the folder above it. The Python versions of these data sets
are pickles, which taxodiff never loads: the error names the binary version to download instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from taxodiff.config.fields import choice
from taxodiff.data.real import pixels
from taxodiff.data.real.labelled import Split
from taxodiff.errors import TaxodiffError

if TYPE_CHECKING:
    import numpy as np

PIXELS = 3 * 32 * 32
CIFAR10_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_TREE = {
    "animal": ["bird", "cat", "deer", "dog", "frog", "horse"],
    "vehicle": ["airplane", "automobile", "ship", "truck"],
}


@dataclass(frozen=True)
class Layout:
    """One CIFAR's files: its folder name, training and test files, label bytes per record, name files."""

    folder: str
    train: tuple[str, ...]
    test: tuple[str, ...]
    label_bytes: int  # 1 (CIFAR-10) or 2 (CIFAR-100: coarse, fine)
    names: tuple[str, ...]  # files of class names, one per label byte (fine last)
    classes: tuple[int, ...]  # how many values each label byte takes
    download: str  # the archive of the binary version

    @property
    def record(self) -> int:
        return self.label_bytes + PIXELS


CIFAR10 = Layout(
    "cifar-10-batches-bin",
    tuple(f"data_batch_{k}.bin" for k in range(1, 6)),
    ("test_batch.bin",),
    1,
    ("batches.meta.txt",),
    (10,),
    "cifar-10-binary.tar.gz",
)
CIFAR100 = Layout(
    "cifar-100-binary",
    ("train.bin",),
    ("test.bin",),
    2,
    ("coarse_label_names.txt", "fine_label_names.txt"),
    (20, 100),
    "cifar-100-binary.tar.gz",
)


def folder(root: str, layout: Layout) -> Path:
    """The folder holding the files: data.root or its sub-folder of the official name."""
    top = Path(root).expanduser()
    if not top.is_dir():
        raise TaxodiffError(f"data.root {root!r} does not exist or is not a folder")
    inner = top / layout.folder
    here = inner if inner.is_dir() else top
    missing = [f for f in layout.train + layout.test if not (here / f).is_file()]
    if missing:
        pickled = [p.name for p in here.iterdir() if p.is_file() and _first_byte(p) == b"\x80"]
        hint = (
            f" ({', '.join(sorted(pickled)[:3])} {'is a pickle' if len(pickled) == 1 else 'are pickles'}: the Python "
            f"version, which taxodiff never loads)"
            if pickled
            else ""
        )
        raise TaxodiffError(
            f"data.root {root!r} lacks {missing[0]}{hint}: allowed is the binary version of the data set "
            f"({layout.download}, unpacked)"
        )
    return here


def _first_byte(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            return f.read(1)
    except OSError:
        return b""


def _names(here: Path, name: str, count: int) -> tuple[str, ...]:
    path = here / name
    if not path.is_file():
        if count == len(CIFAR10_NAMES):
            return CIFAR10_NAMES
        raise TaxodiffError(f"{str(path)!r} does not exist: it ships with the binary version of the data set")
    names = tuple(line.strip() for line in path.read_text().splitlines() if line.strip())
    if len(names) != count:
        raise TaxodiffError(f"{str(path)!r} names {len(names)} classes: allowed is one name per line, {count} names")
    return names


def read_records(path: Path, layout: Layout) -> np.ndarray:
    """(N, record) uint8 of one file; one line naming it where it is truncated or not of this layout."""
    import numpy as np

    raw = np.fromfile(path, dtype=np.uint8)
    if len(raw) == 0 or len(raw) % layout.record:
        raise TaxodiffError(
            f"{str(path)!r} holds {len(raw):,} bytes: allowed is a whole number of {layout.record:,}-byte records "
            "(the file is truncated or not the binary version)"
        )
    records = raw.reshape(-1, layout.record)
    for k, count in enumerate(layout.classes):
        top = int(records[:, k].max())
        if top >= count:
            what = "a pickle (the Python version)" if raw[0] == 0x80 else "not the binary version"
            raise TaxodiffError(
                f"{str(path)!r} holds the label {top} where allowed are 0..{count - 1}: it is {what}; allowed is "
                f"the binary version ({layout.download})"
            )
    return records


@lru_cache(maxsize=2)
def _load(here: str, layout: Layout) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(images (N, 3, 32, 32) uint8, labels (N, label_bytes), training rows count) over train then test."""
    import numpy as np

    parts = [read_records(Path(here) / f, layout) for f in layout.train + layout.test]
    n_train = sum(len(p) for p in parts[: len(layout.train)])
    records = np.concatenate(parts)
    images = records[:, layout.label_bytes :].reshape(-1, 3, 32, 32)
    return images, records[:, : layout.label_bytes].astype(np.int64), np.arange(len(records)), n_train


@lru_cache(maxsize=2)
def _resized(here: str, layout: Layout, size: int, channels: int, resample: str) -> np.ndarray:
    """The images at another size or channel count: resized once, then read from the cache folder."""
    images = _load(here, layout)[0]
    if (not size or size == 32) and channels in (0, 3):
        return images
    section = pixels.PixelData(root=here, size=size, channels=channels, resample=resample)
    files = [Path(here) / f for f in layout.train + layout.test]
    identity = {"cifar": str(here), **pixels.newest(files), "size": size, "channels": channels, "resample": resample}
    return pixels.cached(identity, lambda: pixels.resize_array(images, section))


class Cifar(pixels.OnDisk):
    """The two CIFARs: a layout each."""

    layout: ClassVar[Layout]

    @classmethod
    def labels(cls, section: Any) -> tuple[str, ...]:
        pixels.check_section(section)
        here = folder(section.root, cls.layout)
        return _names(here, cls.layout.names[-1], cls.layout.classes[-1])

    def _here(self) -> str:
        return str(folder(self.data.root, self.layout))

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        _, labels, _, _ = _load(self._here(), self.layout)
        d = self.data
        return _resized(self._here(), self.layout, d.size, d.channels, d.resample), labels[:, -1]

    def fixed_split(self) -> Split:
        import numpy as np

        _, _, rows, n_train = _load(self._here(), self.layout)
        return Split(rows[:n_train], rows[n_train:].astype(np.int64))

    def identity(self) -> Any:
        here = Path(self._here())
        files = [here / f for f in self.layout.train + self.layout.test]
        d = self.data
        return {
            "folder": str(here),
            "bytes": [f.stat().st_size for f in files],
            "size": d.size,
            "channels": d.channels,
            "resample": d.resample,
        }

    def describe(self) -> str:
        return super().describe() + f", the official {len(self.split.held_out):,} test images held out"


@dataclass(frozen=True)
class Cifar10Data(pixels.PixelData):
    source: str = choice("cifar10", ("cifar10",))


@dataclass(frozen=True)
class Cifar100Data(pixels.PixelData):
    source: str = choice("cifar100", ("cifar100",))


class Cifar10(Cifar):
    name: ClassVar[str] = "cifar10"
    summary: ClassVar[str] = "CIFAR-10's binary version on disk: 60,000 colour images of 32x32, 10 classes"
    section: ClassVar[type] = Cifar10Data
    layout: ClassVar[Layout] = CIFAR10

    @classmethod
    def default_hierarchy(cls, section: Any) -> dict[str, Any]:
        names = cls.labels(section)
        if set(names) != set(CIFAR10_NAMES):
            return {"all": list(names)}
        return {k: list(v) for k, v in CIFAR10_TREE.items()}


class Cifar100(Cifar):
    name: ClassVar[str] = "cifar100"
    summary: ClassVar[str] = "CIFAR-100's binary version on disk: 60,000 colour images of 32x32, 20 x 5 classes"
    section: ClassVar[type] = Cifar100Data
    layout: ClassVar[Layout] = CIFAR100

    @classmethod
    def default_hierarchy(cls, section: Any) -> dict[str, Any]:
        """The superclasses over the classes, as the training file's coarse labels give them."""
        import numpy as np

        here = folder(section.root, cls.layout)
        fine_names = cls.labels(section)
        coarse_names = _names(here, cls.layout.names[0], cls.layout.classes[0])
        _, labels, _, _ = _load(str(here), cls.layout)
        tree: dict[str, list[str]] = {}
        for c, name in enumerate(coarse_names):
            fine = np.unique(labels[labels[:, 0] == c, 1])
            if len(fine):
                tree[name] = [fine_names[f] for f in fine]
        return tree
