"""What every data source provides, and the datasets the trainer reads.

A source is bound to a run config (``source = Source(cfg)``). Class-level facts (its config sections, its
kind, the labels a class tree may name) are read without loading anything; loading happens in the methods.
Datasets follow the trainer's protocol: ``len(d)`` and ``d.batch(indices) -> {name: tensor}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from taxodiff.hierarchy import Hierarchy

if TYPE_CHECKING:
    from torch import Tensor

    from taxodiff.config.schema import RunConfig


@dataclass
class ImageBatch:
    """Images with their ground truth; all tensors share the first dimension.

    ``pixels`` are stored as the source gives them: float32 in [-1, 1], or uint8 in [0, 255] (real data sets:
    a quarter of the memory), converted per batch. ``images`` and :meth:`rows` always give float32 in [-1, 1].
    """

    pixels: Tensor  # (N, C, H, W) float32 in [-1, 1] or uint8
    z2: Tensor  # (N,) category index (the condition level of the class tree)
    z1: Tensor  # (N,) leaf index
    z0: Tensor | None = None  # (N, k) style factors, where the data has them (synthetic images)

    def __len__(self) -> int:
        return self.pixels.shape[0]

    @property
    def images(self) -> Tensor:
        """Every image, float32 in [-1, 1] (a converted copy where they are stored as bytes)."""
        return as_float(self.pixels)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of an image."""
        return tuple(self.pixels.shape[1:])  # type: ignore[return-value]

    def rows(self, idx: Any) -> Tensor:
        """The images at ``idx`` (indices or a slice), float32 in [-1, 1]."""
        return as_float(self.pixels[idx])

    def batch(self, idx: Tensor) -> dict[str, Tensor]:
        """What a model's loss reads (the trainer's dataset protocol)."""
        return {"images": self.rows(idx), "z2": self.z2[idx], "z1": self.z1[idx]}

    def subset(self, idx: Tensor) -> ImageBatch:
        return ImageBatch(self.pixels[idx], self.z2[idx], self.z1[idx], None if self.z0 is None else self.z0[idx])

    @staticmethod
    def cat(parts: list[ImageBatch]) -> ImageBatch:
        import torch

        z0 = None if any(p.z0 is None for p in parts) else torch.cat([p.z0 for p in parts])  # type: ignore[misc]
        same = len({p.pixels.dtype for p in parts}) == 1
        pixels = torch.cat([p.pixels if same else p.images for p in parts])
        return ImageBatch(pixels, *(torch.cat([getattr(p, f) for p in parts]) for f in ("z2", "z1")), z0)


def as_float(pixels: Tensor) -> Tensor:
    """Stored pixels as float32 in [-1, 1]: bytes map 0 -> -1 and 255 -> 1 (as samples are read back)."""
    import torch

    return pixels.float() / 127.5 - 1 if pixels.dtype == torch.uint8 else pixels


@dataclass
class TokenData:
    """Sequences for the trainer: ``batch(idx) -> {"tokens": (B, N)}``."""

    tokens: Tensor  # (N_seq, length) integer symbols

    def __len__(self) -> int:
        return len(self.tokens)

    def batch(self, idx: Tensor) -> dict[str, Tensor]:
        return {"tokens": self.tokens[idx]}


class DataSource:
    """Base of every data source. Subclasses set the class attributes and implement what their kind needs."""

    name: ClassVar[str]
    kind: ClassVar[str]  # "images" or "sequences"
    summary: ClassVar[str] = ""
    section: ClassVar[type]  # the ``data:`` section (a frozen dataclass whose first field is ``source``)
    eval_section: ClassVar[type]  # the ``eval:`` section
    label_word: ClassVar[str] = "class"  # what a leaf label is called in messages
    own_hierarchy: ClassVar[bool] = False  # True: the class tree comes from the data (a grammar), not the config

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg
        self.data = cfg.data

    @classmethod
    def upgrade(cls, raw: dict[str, Any]) -> dict[str, Any]:
        """A raw config (a nested mapping) written by an earlier version, in today's layout (default: as is)."""
        return raw

    # -- facts, read without loading data -----------------------------------------------------------------
    @classmethod
    def labels(cls, section: Any) -> tuple[str, ...] | None:
        """The leaf labels a class tree over this data may name (None: any)."""
        return None

    @classmethod
    def default_hierarchy(cls, section: Any) -> dict[str, Any] | None:
        """The class tree used when the config gives none."""
        labels = cls.labels(section)
        return None if labels is None else {"all": list(labels)}

    @classmethod
    def normalise(cls, section: Any) -> Any:
        """The section as the run records it (e.g. paths made absolute, so a run dir works from anywhere)."""
        return section

    def check(self) -> None:
        """Cross-field checks beyond each field's own rule (raise TaxodiffError)."""

    def describe(self) -> str:
        return self.summary

    # -- the class tree ----------------------------------------------------------------------------------
    def label_weights(self) -> Mapping[str, float] | None:
        """Frequency of every label in the training data, for unstated probabilities (None: uniform)."""
        return None

    @cached_property
    def hierarchy(self) -> Hierarchy:
        c = self.cfg
        return Hierarchy.from_spec(
            c.hierarchy or {},
            cond_level=c.cond_level,
            embed_dim=c.embed_dim,
            labels=self.labels(self.data),
            label_word=self.label_word,
            weights=self.label_weights(),
        )

    # -- loading -------------------------------------------------------------------------------------------
    def train_set(self) -> Any:
        """The training data, in the trainer's dataset protocol."""
        raise NotImplementedError

    def image_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of the images (image sources)."""
        raise NotImplementedError

    def reference(self, counts: list[int]) -> ImageBatch:
        """Ground-truth images never trained on: ``counts[c]`` of category c (feature-space metrics)."""
        raise NotImplementedError

    def classifier_sets(self) -> tuple[ImageBatch, ImageBatch, dict[str, Any]]:
        """(train, held-out, key) for the domain classifier; the key names everything that defines it."""
        raise NotImplementedError

    def preview(self, n: int) -> ImageBatch:
        """About ``n`` training images of every category, for a look at the data."""
        raise NotImplementedError
