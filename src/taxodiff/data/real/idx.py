"""MNIST-format idx files a user has on disk: MNIST, Fashion-MNIST, KMNIST and the like, gzipped or not.

    data: {source: idx, images: ~/data/train-images-idx3-ubyte.gz, labels: ~/data/train-labels-idx1-ubyte.gz,
           class_names: [t-shirt, trouser, pullover, dress, coat, sandal, shirt, sneaker, bag, boot]}

The idx format (LeCun's): two zero bytes, a type code (0x08 unsigned byte ... 0x0E double), the number of
dimensions, each dimension as a big-endian 32-bit integer, then the values, big-endian. Images are (N, H, W)
(grey) or (N, H, W, C); labels (N,) integers. Without ``class_names`` a class is named by its label value.
Nothing is downloaded: the files are read where they are.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from taxodiff.config.fields import choice
from taxodiff.data.real.labelled import LabelledImages, RealData
from taxodiff.errors import TaxodiffError

if TYPE_CHECKING:
    import numpy as np

TYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass(frozen=True)
class IdxData(RealData):
    source: str = choice("idx", ("idx",))
    images: str = ""  # path of the images file (idx3, .gz or not)
    labels: str = ""  # path of the labels file (idx1, .gz or not)
    class_names: tuple[str, ...] = ()  # name of label value 0, 1, ... (default: the values themselves)


def read_idx(path: str | Path, what: str = "idx file") -> np.ndarray:
    """The array in an idx file (gzip-compressed or not); one line naming the file if it is not one."""
    import numpy as np

    p = Path(path).expanduser()
    if not p.is_file():
        raise TaxodiffError(f"{what} {str(path)!r} does not exist")
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise TaxodiffError(f"{what} {str(path)!r} cannot be read ({e.strerror})") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise TaxodiffError(f"{what} {str(path)!r} is a corrupt gzip file ({e})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in TYPES or raw[3] == 0:
        raise TaxodiffError(f"{what} {str(path)!r} is not an idx file (it must start with 0, 0, a type code, a rank)")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise TaxodiffError(f"{what} {str(path)!r} is truncated: its header is incomplete")
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    dtype = np.dtype(TYPES[raw[2]])
    body = raw[4 + 4 * ndim :]
    need = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(body) != need:
        raise TaxodiffError(
            f"{what} {str(path)!r} is corrupt: its header announces {need:,} bytes of data for shape "
            f"{tuple(dims)}, it holds {len(body):,}"
        )
    return np.frombuffer(body, dtype=dtype).reshape(dims)


def _key(path: str) -> tuple[str, int, int]:
    p = Path(path).expanduser()
    st = p.stat() if p.is_file() else None
    return str(p), st.st_size if st else -1, st.st_mtime_ns if st else -1


@lru_cache(maxsize=4)
def _labels(key: tuple[str, int, int]) -> np.ndarray:
    """The label values of a labels file: (N,) integers >= 0 (a class is its value)."""
    import numpy as np

    y = read_idx(key[0], "data.labels")
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise TaxodiffError(f"data.labels {key[0]!r} holds an array of shape {y.shape}: allowed are (N,) integers")
    if len(y) and int(y.min()) < 0:
        raise TaxodiffError(f"data.labels {key[0]!r} holds the label {int(y.min())}: allowed are values >= 0")
    return y.astype(np.int64)


@lru_cache(maxsize=2)
def _images(key: tuple[str, int, int]) -> np.ndarray:
    import numpy as np

    x = read_idx(key[0], "data.images")
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[-1] in (1, 3):
        x = x.transpose(0, 3, 1, 2)
    else:
        raise TaxodiffError(
            f"data.images {key[0]!r} holds an array of shape {x.shape}: allowed are (N, H, W) or (N, H, W, C)"
        )
    return _unit(x).astype(np.float32)


def _unit(x: np.ndarray) -> np.ndarray:
    """Values to [0, 1]: bytes / 255, other integers and out-of-range floats by their range."""
    import numpy as np

    if x.dtype == np.uint8:
        return x / 255.0
    lo, hi = float(x.min()), float(x.max())
    if x.dtype.kind == "f" and lo >= 0 and hi <= 1:
        return x
    return (x - lo) / max(hi - lo, 1e-12)


class IdxFiles(LabelledImages):
    name: ClassVar[str] = "idx"
    summary: ClassVar[str] = "MNIST-format idx files on disk (MNIST, Fashion-MNIST, KMNIST...)"
    section: ClassVar[type] = IdxData

    @classmethod
    def labels(cls, section: Any) -> tuple[str, ...]:
        for field in ("images", "labels"):
            if not getattr(section, field):
                raise TaxodiffError(f"data.{field} is missing: give the path of an idx file of {field}")
        labels = _labels(_key(section.labels))
        count = int(labels.max()) + 1 if len(labels) else 0
        names = section.class_names
        if names and (len(names) != count or len(set(names)) != len(names)):
            raise TaxodiffError(
                f"data.class_names has {len(names)} names: allowed is one distinct name for each label value "
                f"0..{count - 1} of data.labels, {count} names"
            )
        return tuple(names) if names else tuple(str(v) for v in range(count))

    @classmethod
    def normalise(cls, section: Any) -> Any:
        from dataclasses import replace

        absolute = {f: str(Path(getattr(section, f)).expanduser().resolve()) for f in ("images", "labels")}
        return replace(section, **{f: p for f, p in absolute.items() if getattr(section, f)})

    @classmethod
    def default_hierarchy(cls, section: Any) -> dict[str, Any]:
        return {"all": list(cls.labels(section))}

    def check(self) -> None:
        super().check()
        labels = _labels(_key(self.data.labels))
        images = _images(_key(self.data.images))
        if len(images) != len(labels):
            raise TaxodiffError(
                f"data.images holds {len(images):,} images but data.labels {len(labels):,} labels: they must match"
            )

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        return _images(_key(self.data.images)), _labels(_key(self.data.labels))

    def identity(self) -> Any:
        return [list(_key(self.data.images)), list(_key(self.data.labels)), os.path.basename(self.data.images)]
