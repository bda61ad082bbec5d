"""A Hugging Face image data set on disk: a ``save_to_disk`` folder or parquet files, with an image and a label column.

    data: {source: hf, root: ~/data/cifar100-hf, label_column: fine_label, category_column: coarse_label}

- ``root`` is what ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk`` wrote (read with
  ``datasets.load_from_disk``: ``pip install 'taxodiff[hf]'``), or a parquet file, or a folder of them as the
  Hub shares them (``data/train-00000-of-00002.parquet``: the split is the name before the first '-'; read
  with pyarrow).
- The image column holds encoded images (the ``Image`` feature: bytes, or a path relative to ``root``); the label
  column integers (names from its ``ClassLabel`` feature) or strings. A ``category_column`` (CIFAR-100's
  ``coarse_label``) gives the default class tree, categories over classes; without one it is ``{all: [...]}``.
- The ``test_split`` (default ``test``), where the data set has it, is the held-out split; otherwise a seeded
  split of ``train_split`` (``data.held_out``, ``data.split_seed``).
"""

from __future__ import annotations

import json
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
    import pyarrow as pa


@dataclass(frozen=True)
class HFData(pixels.PixelData):
    source: str = choice("hf", ("hf",))
    image_column: str = "image"
    label_column: str = "label"
    category_column: str = ""  # a coarse label column: the default class tree (categories over classes)
    train_split: str = "train"
    test_split: str = "test"  # held out where the data set has it; otherwise a seeded split of train_split


@dataclass(frozen=True)
class Part:
    """One split: its table and its features (the ``datasets`` feature dict, {} where none is recorded)."""

    table: pa.Table
    features: dict[str, Any]


@lru_cache(maxsize=2)
def splits(root: str) -> dict[str, Part]:
    """Every split of the data set at ``root``."""
    top = Path(root).expanduser()
    if not top.exists():
        raise TaxodiffError(f"data.root {root!r} does not exist")
    if top.is_dir() and ((top / "dataset_dict.json").is_file() or (top / "state.json").is_file()):
        return _from_disk(top)
    files = [top] if top.is_file() else sorted(top.rglob("*.parquet"))
    if not files or any(f.suffix != ".parquet" for f in files):
        raise TaxodiffError(
            f"data.root {root!r} is neither a save_to_disk folder (state.json, dataset_dict.json) nor parquet files"
        )
    by_split: dict[str, list[Path]] = {}
    for f in files:
        by_split.setdefault(_split_of(f, top), []).append(f)
    return {name: _parquet(group) for name, group in by_split.items()}


def _split_of(file: Path, top: Path) -> str:
    """A parquet file's split: the Hub's ``train-00000-of-00002.parquet`` names it, else its folder
    (``train/0000.parquet``), else it is the training split (one file given)."""
    if file == top:
        return "train"
    head = file.stem.split("-")[0]
    if not head.isdigit():
        return head
    return file.parent.name if file.parent != top else "train"


def _from_disk(top: Path) -> dict[str, Part]:
    try:
        from datasets import DatasetDict, load_from_disk
    except ImportError:
        raise TaxodiffError(
            f"data.root {str(top)!r} is a save_to_disk folder, read with the datasets package: "
            "pip install 'taxodiff[hf]'"
        ) from None
    try:
        loaded = load_from_disk(str(top))
    except (FileNotFoundError, ValueError, OSError) as e:
        raise TaxodiffError(f"data.root {str(top)!r} cannot be read as a saved data set ({e})") from None
    parts = loaded if isinstance(loaded, DatasetDict) else {"train": loaded}
    return {name: Part(ds.data.table, ds.features.to_dict()) for name, ds in parts.items()}


def _parquet(files: list[Path]) -> Part:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise TaxodiffError(
            f"{str(files[0])!r} is a parquet file, read with pyarrow: pip install 'taxodiff[hf]'"
        ) from None
    tables = []
    for f in files:
        try:
            tables.append(pq.read_table(f))
        except (pa.ArrowException, OSError) as e:
            raise TaxodiffError(f"{str(f)!r} is not a readable parquet file ({e})") from None
    try:
        table = pa.concat_tables(tables)
    except pa.ArrowException as e:
        raise TaxodiffError(f"the parquet files of {str(files[0].parent)!r} hold different columns ({e})") from None
    meta = (tables[0].schema.metadata or {}).get(b"huggingface")
    features = json.loads(meta).get("info", {}).get("features", {}) if meta else {}
    return Part(table, features)


def column(part: Part, name: str, key: str) -> list[Any]:
    if name not in part.table.column_names:
        raise TaxodiffError(f"{key} = {name!r} is not a column: allowed are {', '.join(part.table.column_names)}")
    return part.table.column(name).to_pylist()


def names_of(parts: list[Part], name: str, key: str) -> tuple[str, ...]:
    """The names of a label column's values: its ClassLabel names, or the strings or numbers it holds."""
    names = parts[0].features.get(name, {}).get("names")
    if names:
        return tuple(str(n) for n in names)
    values = {v for p in parts for v in column(p, name, key)}
    if None in values:
        raise TaxodiffError(f"{key} = {name!r} has empty labels: every row needs one")
    return tuple(str(v) for v in sorted(values, key=lambda v: (isinstance(v, str), v)))


def indices(part: Part, name: str, key: str, names: tuple[str, ...]) -> np.ndarray:
    """A label column as indices into ``names`` (an integer column is its ClassLabel index where it has names)."""
    import numpy as np

    values = column(part, name, key)
    if bool(part.features.get(name, {}).get("names")):  # ClassLabel indices; -1 is the Hub's "no label"
        bad = [v for v in values if not isinstance(v, int) or not 0 <= v < len(names)]
        if bad:
            raise TaxodiffError(
                f"{key} = {name!r} holds the label {bad[0]!r}: allowed are 0..{len(names) - 1} (a split without "
                "labels cannot be trained on or held out)"
            )
        return np.array(values, dtype=np.int64)
    lookup = {n: i for i, n in enumerate(names)}
    if any(v is None or str(v) not in lookup for v in values):
        raise TaxodiffError(f"{key} = {name!r} has empty labels: every row needs one")
    return np.array([lookup[str(v)] for v in values], dtype=np.int64)


class HFDataset(pixels.OnDisk):
    name: ClassVar[str] = "hf"
    summary: ClassVar[str] = "a Hugging Face image data set on disk (save_to_disk folder or parquet files)"
    section: ClassVar[type] = HFData

    @classmethod
    def _parts(cls, section: Any) -> tuple[Part, Part | None]:
        pixels.check_section(section)
        found = splits(str(pixels.root_of(section)))
        for key, split in (("train_split", section.train_split), ("test_split", section.test_split)):
            if split not in found and (key == "train_split" or split != "test"):  # only the default may be absent
                raise TaxodiffError(
                    f"data.{key} = {split!r} is not a split of data.root: allowed are {', '.join(found)}"
                )
        return found[section.train_split], found.get(section.test_split)

    @classmethod
    def labels(cls, section: Any) -> tuple[str, ...]:
        return _class_names(section)

    @classmethod
    def default_hierarchy(cls, section: Any) -> dict[str, Any]:
        classes = cls.labels(section)
        if not section.category_column:
            return {"all": list(classes)}
        train, _ = cls._parts(section)
        key = "data.category_column"
        categories = names_of([train], section.category_column, key)
        fine = indices(train, section.label_column, "data.label_column", classes)
        coarse = indices(train, section.category_column, key, categories)
        tree: dict[str, list[str]] = {}
        owner: dict[int, int] = {}
        for f, c in sorted(set(zip(fine.tolist(), coarse.tolist(), strict=True))):
            if owner.setdefault(f, c) != c:
                raise TaxodiffError(
                    f"class {classes[f]!r} lies under categories {categories[owner[f]]!r} and {categories[c]!r} in "
                    f"{key} = {section.category_column!r}: allowed is one category per class"
                )
            tree.setdefault(categories[c], []).append(classes[f])
        return {c: tree[c] for c in categories if c in tree}

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        import numpy as np

        return _load(self.data), np.concatenate([self._labels(p) for p in self._present()])

    def _present(self) -> list[Part]:
        train, test = self._parts(self.data)
        return [train] if test is None else [train, test]

    def _labels(self, part: Part) -> np.ndarray:
        return indices(part, self.data.label_column, "data.label_column", self.labels(self.data))

    def fixed_split(self) -> Split | None:
        import numpy as np

        parts = self._present()
        if len(parts) == 1:
            return None
        n = len(parts[0].table)
        return Split(np.arange(n), np.arange(n, n + len(parts[1].table)))

    def identity(self) -> Any:
        d = self.data
        root = Path(d.root)
        files = [f for f in root.rglob("*") if f.is_file()] if root.is_dir() else [root]
        return {
            "root": d.root,
            **pixels.newest(files),
            "rows": [len(p.table) for p in self._present()],
            "columns": [d.image_column, d.label_column],
            "size": d.size,
            "channels": d.channels,
            "resample": d.resample,
        }


@lru_cache(maxsize=8)
def _class_names(section: Any) -> tuple[str, ...]:
    train, test = HFDataset._parts(section)
    return names_of([p for p in (train, test) if p is not None], section.label_column, "data.label_column")


@lru_cache(maxsize=2)
def _load(section: Any) -> np.ndarray:
    """The images of the train (and test) split, decoded."""
    train, test = HFDataset._parts(section)
    root = Path(section.root).expanduser()

    def decoded() -> Any:
        for split, part in ((section.train_split, train), (section.test_split, test)):
            if part is None:
                continue
            for i, value in enumerate(column(part, section.image_column, "data.image_column")):
                name = f"row {i} of split {split!r}"
                yield pixels.open_image(_encoded(value, root, name), name), name

    files = [f for f in Path(root).rglob("*") if f.is_file()] if root.is_dir() else [root]
    identity = {"root": str(root), "splits": [section.train_split, section.test_split], **pixels.newest(files)}
    identity |= {"column": section.image_column, "size": section.size, "channels": section.channels}
    return pixels.cached(identity | {"resample": section.resample}, lambda: pixels.to_arrays(decoded(), section))


def _encoded(value: Any, root: Path, name: str) -> Path | bytes:
    """An image cell (the Image feature's {bytes, path}, or raw bytes) as bytes or a file."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, dict) and value.get("bytes"):
        return value["bytes"]
    if isinstance(value, dict) and value.get("path"):
        path = Path(value["path"])
        return path if path.is_absolute() else root / path
    raise TaxodiffError(f"{name} holds no image (allowed: the Image feature's bytes or path, or raw bytes)")
