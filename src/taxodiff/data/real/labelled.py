"""What the real labelled image sources share: a fixed seeded train / held-out split, the class tree over the
data's labels, and resampling the training set to the tree's stated probabilities.

A class tree names the data's labels as its leaves and groups them into categories, e.g. for digits
``{round: ['0', '6', '8', '9'], straight: ['1', '4', '7'], ...}``. Stated probabilities (``{'0': 0.4, '6':
0.6}``) are honoured by resampling the training split (within each class, without replacement while it
lasts): that is how an imbalance regime is built on real data. Unstated ones are the data's own frequencies.
Classes the tree leaves out are not used.

The split is stratified by class and seeded by ``data.split_seed`` (not the run's seed), so every run of a
source holds out the same images: the domain classifier is trained on the training split and scored on
the held-out one, and the held-out images are the reference of the feature-space metrics.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from taxodiff import seeds
from taxodiff.config.fields import nonneg, positive, unit
from taxodiff.data.base import DataSource, ImageBatch
from taxodiff.errors import TaxodiffError
from taxodiff.evaluate.settings import ImageEval

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class RealEval(ImageEval):
    classifier_epochs: int = positive(30)  # passes over the training split (it is small)


@dataclass(frozen=True)
class Split:
    """Indices into the whole data set."""

    train: Any  # (n_train,) int64
    held_out: Any  # (n_held_out,) int64


class LabelledImages(DataSource):
    """Base of the real sources: subclasses give the class names and load the arrays."""

    kind: ClassVar[str] = "images"
    eval_section: ClassVar[type] = RealEval
    class_names: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def labels(cls, section: Any) -> tuple[str, ...]:
        return cls.class_names

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        """(images (N, C, H, W), uint8 or float32 in [0, 1], labels (N,) int64 indices into the class names)."""
        raise NotImplementedError

    def fixed_split(self) -> Split | None:
        """The data's own train / held-out split where it has one (CIFAR's test set); None: a seeded split."""
        return None

    def check(self) -> None:
        d = self.data
        if not 0 < d.held_out < 1:
            raise TaxodiffError(f"data.held_out = {d.held_out!r} is invalid: allowed is a fraction in (0, 1)")

    # -- the data ----------------------------------------------------------------------------------------
    @cached_property
    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return self.load()

    @cached_property
    def split(self) -> Split:
        """The data's own, or stratified by class and seeded by data.split_seed: the same split for every run."""
        import numpy as np

        fixed = self.fixed_split()
        if fixed is not None:
            return fixed

        _, labels = self.arrays
        rng = np.random.default_rng(seeds.derive(self.data.split_seed, "split") % 2**63)
        train, held = [], []
        for c in range(len(self.labels(self.data))):
            idx = np.flatnonzero(labels == c)
            rng.shuffle(idx)
            k = int(round(self.data.held_out * len(idx)))
            held.append(idx[:k])
            train.append(idx[k:])
        return Split(np.sort(np.concatenate(train)), np.sort(np.concatenate(held)))

    def image_shape(self) -> tuple[int, int, int]:
        images, _ = self.arrays
        return tuple(images.shape[1:])  # type: ignore[return-value]

    def describe(self) -> str:
        c, h, w = self.image_shape()
        n = len(self.training_indices())
        return f"{n:,} {self.name} training images of {h}x{w} ({'grey' if c == 1 else 'colour'})"

    # -- the class tree over the labels --------------------------------------------------------------------
    def label_weights(self) -> Mapping[str, float]:
        import numpy as np

        _, labels = self.arrays
        counts = np.bincount(labels[self.split.train], minlength=len(self.labels(self.data)))
        return {name: float(n) for name, n in zip(self.labels(self.data), counts, strict=True)}

    @cached_property
    def leaf_class(self) -> Any:
        """Class index (into the data's labels) of every leaf of the class tree."""
        import numpy as np

        names = list(self.labels(self.data))
        return np.array([names.index(label) for label in self.hierarchy.leaf_labels])

    def _leaf_of(self, idx: np.ndarray) -> np.ndarray:
        """Leaf index of data rows (-1 where the class is not in the tree)."""
        import numpy as np

        _, labels = self.arrays
        lookup = np.full(len(self.labels(self.data)), -1)
        lookup[self.leaf_class] = np.arange(len(self.leaf_class))
        return lookup[labels[idx]]

    def _stated(self) -> bool:
        return _has_probabilities(self.cfg.hierarchy or {})

    def training_indices(self) -> np.ndarray:
        """Rows of the training set: the training split's rows of the tree's classes, resampled to the tree's
        stated probabilities (or subsampled to data.n_train), seeded by the run's seed."""
        import numpy as np

        rows = self.split.train[self._leaf_of(self.split.train) >= 0]
        leaves = self._leaf_of(rows)
        empty = [label for i, label in enumerate(self.hierarchy.leaf_labels) if not (leaves == i).any()]
        if empty:
            raise TaxodiffError(
                f"class {empty[0]!r} of the hierarchy has no images in the training split: allowed are classes the "
                "data holds"
            )
        n = self.data.n_train or len(rows)
        rng = np.random.default_rng(seeds.derive(self.cfg.seed, "data") % 2**63)
        if not self._stated():
            if n > len(rows):
                raise TaxodiffError(
                    f"data.n_train = {n} is more than the {len(rows):,} training images of the tree's classes: "
                    "allowed is at most that many (or state probabilities, and the training set is resampled)"
                )
            return rows if n == len(rows) else np.sort(rng.choice(rows, size=n, replace=False))
        want = np.round(np.array(self.hierarchy.leaf_probs()) * n).astype(int)
        out = [_draw(rows[leaves == i], k, rng) for i, k in enumerate(want) if k > 0]
        return np.concatenate(out)

    def _batch(self, rows: np.ndarray) -> ImageBatch:
        import numpy as np
        import torch

        images, _ = self.arrays
        leaf = self._leaf_of(rows)
        z2 = np.asarray(self.hierarchy.leaf_category())[leaf] if len(rows) else leaf
        x = torch.as_tensor(images[rows])
        x = x if x.dtype == torch.uint8 else (x * 2 - 1).float()  # bytes stay bytes until a batch is read
        return ImageBatch(x, torch.as_tensor(z2, dtype=torch.long), torch.as_tensor(leaf, dtype=torch.long))

    def train_set(self) -> ImageBatch:
        return self._batch(self.training_indices())

    def held_out_indices(self) -> np.ndarray:
        return self.split.held_out[self._leaf_of(self.split.held_out) >= 0]

    def reference(self, counts: list[int]) -> ImageBatch:
        """Held-out images of each category, as many as asked where the held-out split allows it, in the
        tree's proportions p(z1 | z2), no image twice."""
        import numpy as np

        rows = self.held_out_indices()
        leaves = self._leaf_of(rows)
        rng = np.random.default_rng(seeds.derive(self.cfg.seed, "reference") % 2**63)
        h = self.hierarchy
        picked = []
        for c, n in enumerate(counts):
            if n <= 0:
                continue
            mine, probs = h.leaves_of(c), np.array(h.conditional(c))
            avail = np.array([(leaves == i).sum() for i in mine])
            m = int(min(n, np.floor((avail / np.maximum(probs, 1e-12)).min())))
            for i, k in zip(mine, np.round(probs * m).astype(int), strict=True):
                picked.append(rng.permutation(rows[leaves == i])[:k])
        return self._batch(np.sort(np.concatenate(picked)) if picked else np.zeros(0, dtype=np.int64))

    def classifier_sets(self) -> tuple[ImageBatch, ImageBatch, dict[str, Any]]:
        train = self._batch(self.split.train[self._leaf_of(self.split.train) >= 0])
        test = self._batch(self.held_out_indices())
        key = {
            "source": self.name,
            "data": self.identity(),
            "classes": list(self.hierarchy.leaf_labels),
            "held_out": self.data.held_out,
            "split_seed": self.data.split_seed,
            "epochs": self.cfg.eval.classifier_epochs,
        }
        return train, test, key

    def identity(self) -> Any:
        """What identifies the data itself in cache keys (a file's path and size, a package's version)."""
        return self.name

    def preview(self, n: int) -> ImageBatch:
        import numpy as np

        rows = self.training_indices()
        rng = np.random.default_rng(seeds.derive(self.cfg.seed, "preview") % 2**63)
        return self._batch(rng.permutation(rows)[: n * self.hierarchy.num_categories * 4])


@dataclass(frozen=True)
class RealData:
    """The ``data:`` section every real source has (subclasses add their own fields)."""

    source: str = ""
    n_train: int = nonneg(0)  # training images after resampling; 0 = the training split's size
    held_out: float = unit(0.2)  # share of every class held out (classifier test set, metrics' reference)
    split_seed: int = nonneg(0)  # which images are held out (the same for every run)


def _draw(rows: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k of ``rows``: without replacement while they last, then with."""
    import numpy as np

    full, rest = divmod(k, len(rows))
    parts = [rng.permutation(rows) for _ in range(full)] + [rng.choice(rows, size=rest, replace=False)]
    return np.concatenate(parts)


def _has_probabilities(spec: Any) -> bool:
    """Whether a class tree spec states any probability."""
    from taxodiff.hierarchy import LEAF_KEYS

    if isinstance(spec, bool) or spec is None or isinstance(spec, (str, list)):
        return False
    if isinstance(spec, (int, float)):
        return True
    if not isinstance(spec, Mapping):
        return False
    if spec.get("p") is not None:
        return True
    if any(k in spec for k in LEAF_KEYS):  # an explicit node: {label: ...} or {children: ...}
        return "children" in spec and _has_probabilities(spec["children"])
    return any(_has_probabilities(v) for v in spec.values())
