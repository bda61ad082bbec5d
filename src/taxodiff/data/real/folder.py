"""A folder of labelled images on disk: one sub-folder per class, nested folders a class tree.

    data: {source: imagefolder, root: ~/data/pets, size: 32}

    pets/cat/0001.png ...            classes cat and dog; the default tree is {all: [cat, dog]}
    zoo/animal/dog/0001.jpg ...      category animal, class dog: the folders are the class tree

The convention of torchvision's ``ImageFolder`` and of Hugging Face's ``imagefolder``, one level deeper where
the data has categories. Every class folder sits at the same depth and holds only images (PNG, JPEG, BMP, GIF,
WebP, TIFF; hidden files are skipped); a class is named by its folder, so no two class folders share a name.
A written ``hierarchy:`` overrides the folders' tree (its leaves name class folders). The held-out split is
seeded (``data.held_out``, ``data.split_seed``) as for the other real sources.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from taxodiff.config.fields import choice
from taxodiff.data.real import pixels
from taxodiff.errors import TaxodiffError

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class FolderData(pixels.PixelData):
    source: str = choice("imagefolder", ("imagefolder",))


@dataclass(frozen=True)
class Listing:
    """What the folders say: the class tree, and every image file with its class index."""

    tree: dict[str, Any]  # nested categories, lists of class names at the bottom
    classes: tuple[str, ...]  # class names, in the order of the walk (sorted folders)
    files: tuple[tuple[Path, int], ...]  # (file, class index)


@lru_cache(maxsize=4)
def listing(root: str) -> Listing:
    """The class tree and the files under ``root`` (one line naming what breaks the layout)."""
    top = Path(root).expanduser()
    if not top.is_dir():
        raise TaxodiffError(f"data.root {root!r} does not exist or is not a folder")
    classes: list[str] = []
    where: dict[str, Path] = {}
    files: list[tuple[Path, int]] = []
    depths: set[int] = set()

    def walk(folder: Path, depth: int) -> Any:
        found, subs = pixels.image_files(folder)
        if found and subs:
            raise TaxodiffError(
                f"folder {str(folder)!r} holds images beside sub-folders: a folder is a class (images only) or a "
                "category (folders only)"
            )
        if subs:
            return {d.name: walk(d, depth + 1) for d in subs}
        if depth == 0:
            raise TaxodiffError(f"data.root {root!r} holds no class folders: put each class's images in a folder")
        if not found:
            raise TaxodiffError(f"class folder {str(folder)!r} holds no images")
        if folder.name in where:
            splits = {"train", "test", "val", "valid", "validation"} & {d.name for d in top.iterdir()}
            hint = f" (data.root holds the splits {', '.join(sorted(splits))}: point it at one)" if splits else ""
            raise TaxodiffError(
                f"class folders {str(where[folder.name])!r} and {str(folder)!r} share the name {folder.name!r}: "
                f"a class is named by its folder, so the names must differ{hint}"
            )
        where[folder.name] = folder
        depths.add(depth)
        files.extend((f, len(classes)) for f in found)
        classes.append(folder.name)
        return None  # a leaf

    tree = walk(top, 0)
    if len(depths) > 1:
        raise TaxodiffError(
            f"data.root {root!r} has class folders at depths {sorted(depths)}: allowed is one depth for every class"
        )
    return Listing(_leaves_as_lists(tree), tuple(classes), tuple(files))


def _leaves_as_lists(tree: dict[str, Any]) -> dict[str, Any]:
    """{cat: {dog: None, cat: None}} -> {cat: [dog, cat]} (a class tree spec); one level: {all: [...]}."""
    if all(v is None for v in tree.values()):
        return {"all": list(tree)}

    def node(v: dict[str, Any]) -> Any:
        return list(v) if all(x is None for x in v.values()) else {k: node(x) for k, x in v.items()}

    return {k: node(v) for k, v in tree.items()}


@lru_cache(maxsize=2)
def _load(root: str, size: int, channels: int, resample: str) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np

    found = listing(root)
    section = pixels.PixelData(root=root, size=size, channels=channels, resample=resample)
    paths = [f for f, _ in found.files]

    def decode() -> np.ndarray:
        return pixels.to_arrays(((pixels.open_image(f, repr(str(f))), repr(str(f))) for f in paths), section)

    identity = {"root": root, "names": [str(f.relative_to(root)) for f in paths], **pixels.newest(paths)}
    images = pixels.cached(identity | {"size": size, "channels": channels, "resample": resample}, decode)
    return images, np.array([c for _, c in found.files], dtype=np.int64)


class ImageFolder(pixels.OnDisk):
    name: ClassVar[str] = "imagefolder"
    summary: ClassVar[str] = "a folder of images on disk (one folder per class; nested folders: a tree)"
    section: ClassVar[type] = FolderData

    @classmethod
    def labels(cls, section: Any) -> tuple[str, ...]:
        pixels.check_section(section)
        return listing(str(pixels.root_of(section))).classes

    @classmethod
    def default_hierarchy(cls, section: Any) -> dict[str, Any]:
        pixels.check_section(section)
        return listing(str(pixels.root_of(section))).tree

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        d = self.data
        return _load(str(pixels.root_of(d)), d.size, d.channels, d.resample)

    def identity(self) -> Any:
        found = listing(str(pixels.root_of(self.data)))
        d = self.data
        return {
            "root": d.root,
            **pixels.newest(f for f, _ in found.files),
            "size": d.size,
            "channels": d.channels,
            "resample": d.resample,
        }
