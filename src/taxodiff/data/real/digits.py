"""scikit-learn's handwritten digits: 1,797 grey images of 8x8, ten classes '0'..'9' (about 180 each), shipped
inside scikit-learn (no download)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, ClassVar

from taxodiff.config.fields import choice
from taxodiff.data.real.labelled import LabelledImages, RealData

if TYPE_CHECKING:
    import numpy as np

DIGITS = tuple(str(d) for d in range(10))


@dataclass(frozen=True)
class DigitsData(RealData):
    source: str = choice("digits", ("digits",))


@lru_cache(maxsize=1)
def _load() -> tuple[np.ndarray, np.ndarray]:
    import numpy as np
    from sklearn.datasets import load_digits

    d = load_digits()
    images = (d.images / 16.0).astype(np.float32)[:, None]  # (N, 1, 8, 8) in [0, 1]
    return images, d.target.astype(np.int64)


class Digits(LabelledImages):
    name: ClassVar[str] = "digits"
    summary: ClassVar[str] = "scikit-learn's handwritten digits: 1,797 grey images of 8x8, classes 0-9"
    section: ClassVar[type] = DigitsData
    class_names: ClassVar[tuple[str, ...]] = DIGITS

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        return _load()

    def identity(self) -> Any:
        import sklearn

        return f"sklearn-digits-{sklearn.__version__}"
