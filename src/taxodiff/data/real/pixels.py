"""Image files and encoded images to uint8 arrays: what the image folder, CIFAR and Hugging Face sources share.

Images are decoded with Pillow. Transparent ones are laid on white. With a target ``size`` every image is
cropped to its centred square and resized to ``size`` x ``size`` with the stated filter (Pillow's filters
antialias when they shrink); without one, every image must have the same size. Grey or colour follows the data
(colour as soon as one image is colour) unless ``channels`` says 1 or 3. The result is (N, C, H, W) uint8:
a quarter of float32's memory, converted to [-1, 1] per batch (:class:`taxodiff.data.base.ImageBatch`).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taxodiff.config.fields import choice, nonneg
from taxodiff.data.real.labelled import LabelledImages, RealData
from taxodiff.errors import TaxodiffError

if TYPE_CHECKING:
    import numpy as np
    from PIL.Image import Image

RESAMPLE = ("bicubic", "bilinear", "lanczos", "box", "nearest")
EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
GREY = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")
DECODER = 2  # the decoding's version, part of every cache key: a change to decoding invalidates old caches


@dataclass(frozen=True)
class PixelData(RealData):
    """The ``data:`` fields of the sources that decode images: where they are, and the size and channels."""

    root: str = ""  # the folder (or file) holding the data
    size: int = nonneg(0)  # side in pixels after a centred square crop and a resize; 0 = the images' own size
    channels: int = nonneg(0)  # 1 grey, 3 colour; 0 = from the data (colour if any image is)
    resample: str = choice("bicubic", RESAMPLE)  # Pillow's filter for the resize


class OnDisk(LabelledImages):
    """A source that reads ``data.root``: the run records the root as an absolute path, so the run directory
    works from anywhere."""

    @classmethod
    def normalise(cls, section: Any) -> Any:
        from dataclasses import replace

        return replace(section, root=str(Path(section.root).expanduser().resolve())) if section.root else section


def check_section(section: Any) -> None:
    """The rules of a PixelData section beyond each field's own."""
    if section.channels not in (0, 1, 3):
        raise TaxodiffError(f"data.channels = {section.channels!r} is invalid: allowed are 0 (from the data), 1, 3")
    if not section.root:
        raise TaxodiffError("data.root is missing: give the folder that holds the data")


def root_of(section: Any) -> Path:
    """data.root as a path that exists; one line naming it if it does not."""
    root = Path(section.root).expanduser()
    if not root.exists():
        raise TaxodiffError(f"data.root {section.root!r} does not exist")
    return root


def open_image(source: Path | bytes, name: str) -> Image:
    """A decoded image; one line naming ``name`` if it is not a readable image."""
    from PIL import Image, UnidentifiedImageError

    try:
        img = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
        img.load()
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError) as e:
        raise TaxodiffError(f"{name} is not a readable image ({e})") from None
    return img


def eight_bit(img: Image) -> Image:
    """Any image as L (grey) or RGB with 8 bits a channel: transparency laid on white, palettes expanded, 16-bit
    and float grey scaled (not clipped) to 0..255."""
    import numpy as np
    from PIL import Image

    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(img, dtype=np.float64)
        top = 1.0 if img.mode == "F" and a.max(initial=0) <= 1 else (65535.0 if a.max(initial=0) > 255 else 255.0)
        return Image.fromarray(np.clip(np.round(a / top * 255), 0, 255).astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA"):
        grey = img.mode == "LA"
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, img.convert("RGBA")).convert("L" if grey else "RGB")
    return img if img.mode in ("L", "RGB") else img.convert("L" if img.mode in GREY else "RGB")


def _square(img: Image, size: int, resample: str) -> Image:
    from PIL import Image

    w, h = img.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    img = img.crop((left, top, left + side, top + side)) if w != h else img
    return img.resize((size, size), Image.Resampling[resample.upper()]) if side != size else img


def as_array(img: Image, channels: int) -> np.ndarray:
    """An 8-bit image as (C, H, W) uint8 with ``channels`` channels (1 or 3)."""
    import numpy as np

    arr = np.asarray(img.convert("L" if channels == 1 else "RGB"), dtype=np.uint8)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def to_arrays(images: Iterable[tuple[Image, str]], section: Any) -> np.ndarray:
    """(image, its name) pairs -> (N, C, H, W) uint8 under the section's size, channels and filter; one image at a
    time, so only the resized images are ever held."""
    import numpy as np

    out, grey = [], True
    first: tuple[tuple[int, int], str] | None = None
    for raw, name in images:
        img = eight_bit(raw)
        grey = grey and img.mode == "L"
        first = first or (img.size, name)
        if section.size:
            img = _square(img, section.size, section.resample)
        elif img.size != first[0]:
            (w, h), (w0, h0) = img.size, first[0]
            raise TaxodiffError(
                f"{name} is {w}x{h} but {first[1]} is {w0}x{h0}: images of mixed sizes need data.size (each is "
                "then cropped to its centred square and resized)"
            )
        out.append(as_array(img, section.channels or 3))
    if not out:
        raise TaxodiffError(f"data.root {section.root!r} holds no images")
    stacked = np.stack(out)
    return stacked[:, :1].copy() if section.channels == 0 and grey else stacked


def cached(identity: dict[str, Any], make: Callable[[], np.ndarray]) -> np.ndarray:
    """A decoded image set, kept in the cache folder (``.npy``, read without pickle) under a digest of what
    identifies it (the files' count, bytes and newest time, the size and channels): decoding tens of thousands
    of files happens once, not in every command."""
    import hashlib
    import json

    import numpy as np

    from taxodiff import runs

    key = hashlib.sha256(json.dumps({**identity, "decoder": DECODER}, sort_keys=True).encode()).hexdigest()[:24]
    path = runs.cache_dir() / "decoded" / f"{key}.npy"
    if path.is_file():
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            pass  # a damaged cache file is made again
    images = make()
    buf = io.BytesIO()
    np.save(buf, images, allow_pickle=False)
    with contextlib.suppress(OSError):  # the cache is a convenience: unwritable, it only means decoding again
        runs.atomic_write(path, buf.getvalue())
    return images


def newest(paths: Iterable[Path]) -> dict[str, int]:
    """The count, bytes and newest modification time of files: what changes when the data do."""
    stats = [p.stat() for p in paths]
    return {
        "files": len(stats),
        "bytes": sum(s.st_size for s in stats),
        "newest": max((s.st_mtime_ns for s in stats), default=0),
    }


def resize_array(images: np.ndarray, section: Any) -> np.ndarray:
    """(N, C, H, W) uint8 data (CIFAR) to the section's size and channels."""
    from PIL import Image

    c, h, w = images.shape[1:]
    want_c = section.channels or c
    if (not section.size or section.size == h == w) and want_c == c:
        return images

    def one(a: np.ndarray) -> Image:  # a CIFAR image as Pillow's
        return Image.fromarray(a[0] if c == 1 else a.transpose(1, 2, 0))

    return to_arrays(((one(a), "") for a in images), section)


def image_files(folder: Path) -> tuple[list[Path], list[Path]]:
    """(image files, sub-folders) of a folder, hidden entries left out; one line naming a file that is not an
    image by its extension."""
    files, dirs = [], []
    for p in sorted(folder.iterdir()):
        if p.name.startswith("."):
            continue
        if p.is_dir():
            dirs.append(p)
        elif p.suffix.lower() in EXTENSIONS:
            files.append(p)
        else:
            raise TaxodiffError(
                f"{str(p)!r} is not an image file: allowed are {', '.join(EXTENSIONS)} (move other files out of "
                "the data folder)"
            )
    return files, dirs
