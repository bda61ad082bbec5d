"""The synthetic shapes source: z2 (category) -> z1 (subtype, a silhouette) -> z0 (style) -> image.

Every leaf of the class tree names a shape; images are rendered on the fly from the run's seed, so the data
is unlimited and its ground truth exact at every level. The domain classifier learns from fresh renders with
uniform leaf probabilities (no prior favouring frequent subtypes) and also regresses the style z0, so its
features see colour, size and position as well as shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from taxodiff import seeds
from taxodiff.config.fields import choice, positive, unit
from taxodiff.data.base import DataSource, ImageBatch
from taxodiff.data.shapes.sdf import SHAPE_NAMES
from taxodiff.errors import TaxodiffError
from taxodiff.evaluate.settings import ImageEval

if TYPE_CHECKING:
    from taxodiff.data.shapes.render import StyleConfig

DEFAULT_HIERARCHY: dict[str, Any] = {"animal": {"dog": 0.5, "cat": 0.5}, "vehicle": {"car": 0.5, "truck": 0.5}}


@dataclass(frozen=True)
class ShapesData:
    source: str = choice("shapes", ("shapes",))
    size: int = positive(32)  # image side in pixels
    n_train: int = positive(10_000)  # training images, rendered once per run from the data seed
    max_offset: float = 0.12  # style: largest shift of the figure, in half-frames
    scale_min: float = positive(0.72)  # style: figure scale range
    scale_max: float = positive(0.95)
    brightness_min: float = unit(0.35)  # style: HSV value range of the figure's colour
    brightness_max: float = unit(0.85)
    saturation: float = unit(0.8)  # style: HSV saturation of the figure's colour (0: grey figures, hue unseen)
    background: float = unit(1.0)  # grey level of the background in [0, 1]


@dataclass(frozen=True)
class ShapesEval(ImageEval):
    classifier_train: int = positive(8000)  # fresh renders the domain classifier learns from
    classifier_test: int = positive(2000)  # and is scored on


class Shapes(DataSource):
    name: ClassVar[str] = "shapes"
    kind: ClassVar[str] = "images"
    summary: ClassVar[str] = "synthetic silhouettes with style (position, scale, colour, detail), rendered"
    section: ClassVar[type] = ShapesData
    eval_section: ClassVar[type] = ShapesEval
    label_word: ClassVar[str] = "shape"

    @classmethod
    def labels(cls, section: Any) -> tuple[str, ...]:
        return SHAPE_NAMES

    @classmethod
    def default_hierarchy(cls, section: Any) -> dict[str, Any]:
        return {k: dict(v) for k, v in DEFAULT_HIERARCHY.items()}

    def check(self) -> None:
        d = self.data
        if d.max_offset < 0:
            raise TaxodiffError(f"data.max_offset = {d.max_offset!r} is invalid: allowed is a number >= 0")
        if d.scale_min > d.scale_max or d.brightness_min > d.brightness_max:
            raise TaxodiffError("data: scale_min/brightness_min must not exceed scale_max/brightness_max")

    def describe(self) -> str:
        d = self.data
        return f"{d.n_train:,} synthetic images of {d.size}x{d.size}"

    def style(self) -> StyleConfig:
        from taxodiff.data.shapes.render import StyleConfig

        d = self.data
        return StyleConfig(
            max_offset=d.max_offset,
            scale=(d.scale_min, d.scale_max),
            brightness=(d.brightness_min, d.brightness_max),
            saturation=d.saturation,
            background=d.background,
        )

    def image_shape(self) -> tuple[int, int, int]:
        return (3, self.data.size, self.data.size)

    def render(self, n: int, seed: int, category: int | None = None, uniform: bool = False) -> ImageBatch:
        from taxodiff.data.shapes.render import make_images
        from taxodiff.hierarchy import Hierarchy

        h = self.hierarchy
        if uniform:  # every leaf equally likely, one category: what the classifier learns from
            h = Hierarchy.from_spec({"all": {f"c{i}": {"label": s} for i, s in enumerate(h.leaf_labels)}})
        return make_images(h, n, self.data.size, seed, self.style(), category=category)

    def train_set(self) -> ImageBatch:
        return self.render(self.data.n_train, seeds.derive(self.cfg.seed, "data"))

    def reference(self, counts: list[int]) -> ImageBatch:
        parts = [
            self.render(int(n), seeds.derive(self.cfg.seed, "reference", c), category=c)
            for c, n in enumerate(counts)
            if n > 0
        ]
        return ImageBatch.cat(parts)

    def preview(self, n: int) -> ImageBatch:
        return self.render(n * self.hierarchy.num_categories * 4, seeds.derive(self.cfg.seed, "preview"))

    def classifier_sets(self) -> tuple[ImageBatch, ImageBatch, dict[str, Any]]:
        from dataclasses import asdict

        e = self.cfg.eval
        seed = 0  # the classifier does not depend on the run's seed: one classifier scores every run
        train = self.render(e.classifier_train, seeds.derive(seed, "classifier", "train"), uniform=True)
        test = self.render(e.classifier_test, seeds.derive(seed, "classifier", "test"), uniform=True)
        key = {
            "source": self.name,
            "classes": list(self.hierarchy.leaf_labels),
            "size": self.data.size,
            "style": asdict(self.style()),
            "n_train": e.classifier_train,
            "n_test": e.classifier_test,
            "epochs": e.classifier_epochs,
        }
        return train, test, key

    def style_targets(self, batch: ImageBatch) -> Any:
        """z0 (N, 6) -> (N, 7) regression targets in about [-1, 1], for the classifier's style head."""
        from taxodiff.data.shapes.render import style_targets

        return style_targets(batch.z0, self.style())
