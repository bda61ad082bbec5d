"""Samples of any generator, in and out of a folder of PNG files: what ``taxodiff audit`` scores and
``taxodiff export`` writes.

The layout: one folder per requested category, named as the class tree names it, holding that request's
images; a folder per class inside it where the class was asked for too (class accuracy and per-class Fréchet
distances are then scored)::

    samples/animal/000000.png ...            asked for "an animal"
    samples/animal/dog/000512.png ...        asked for "a dog" (its category folder above it)

Or one safetensors file: ``images`` (N, C, H, W) or (N, H, W, C) uint8, ``z2`` (or ``category``) the asked
category's index in the class tree, optionally ``leaf`` the asked class's index. A taxodiff samples file is one.

Files whose names are numbers are read in the order of those numbers (an export keeps the run's order, so its
audit repeats the run's bootstrap exactly); others by name within their folder.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taxodiff.errors import TaxodiffError
from taxodiff.hierarchy import Hierarchy

if TYPE_CHECKING:
    import numpy as np
    import torch


def read_samples(path: Path, h: Hierarchy, shape: tuple[int, int, int]) -> dict[str, torch.Tensor]:
    """{"images": uint8 (N, C, H, W), "z2": asked categories, and "leaf" where classes were asked} from a folder
    or a safetensors file; one line naming what does not fit the class tree or the data's image shape."""
    if not path.exists():
        raise TaxodiffError(f"--samples {str(path)!r} does not exist")
    samples = _from_file(path, h) if path.is_file() else _from_folder(path, h, shape)
    if len(samples["images"]) == 0:
        raise TaxodiffError(f"--samples {str(path)!r} holds no images")
    got = tuple(samples["images"].shape[1:])
    if got != tuple(shape):
        raise TaxodiffError(
            f"--samples {str(path)!r} holds images of {_shape(got)}, the data's are {_shape(shape)}: allowed are "
            "images of the data's shape (resize them, or set data.size)"
        )
    return samples


def _shape(s: tuple[int, ...]) -> str:
    return f"{s[1]}x{s[2]} with {s[0]} channel{'s' if s[0] != 1 else ''}"


def _from_folder(root: Path, h: Hierarchy, shape: tuple[int, int, int]) -> dict[str, torch.Tensor]:
    import numpy as np
    import torch

    from taxodiff.data.real import pixels

    files, _ = pixels.image_files(root)
    if files:
        raise TaxodiffError(f"--samples {str(root)!r} holds images at its top: put each in its category's folder")
    entries: list[tuple[Path, int, int]] = []  # (file, category, class or -1)
    for folder in pixels.image_files(root)[1]:
        c = _index(h.category_names, folder.name, "category", root)
        found, subs = pixels.image_files(folder)
        entries += [(f, c, -1) for f in found]
        for sub in subs:
            leaf = _index(h.leaf_names, sub.name, "class", root)
            if leaf not in h.leaves_of(c):
                raise TaxodiffError(f"--samples folder {str(sub)!r}: class {sub.name!r} is not under {folder.name!r}")
            entries += [(f, c, leaf) for f in pixels.image_files(sub)[0]]
    if not entries:
        raise TaxodiffError(f"--samples {str(root)!r} holds no images: allowed is one folder of PNG files per category")
    if any(leaf >= 0 for _, _, leaf in entries) and any(leaf < 0 for _, _, leaf in entries):
        raise TaxodiffError(
            f"--samples {str(root)!r} mixes images asked by category with images asked by class: allowed is one kind"
        )
    if all(f.stem.isdigit() for f, _, _ in entries):
        entries.sort(key=lambda e: int(e[0].stem))
    images = np.stack([_pixels(f, shape) for f, _, _ in entries])
    out = {"images": torch.from_numpy(images), "z2": torch.tensor([c for _, c, _ in entries])}
    if entries[0][2] >= 0:
        out["leaf"] = torch.tensor([leaf for _, _, leaf in entries])
    return out


def _index(names: list[str], name: str, what: str, root: Path) -> int:
    if name not in names:
        raise TaxodiffError(
            f"--samples {str(root)!r} names the {what} {name!r}, which the class tree does not have: allowed are "
            f"{', '.join(names)}"
        )
    return names.index(name)


def _pixels(path: Path, shape: tuple[int, int, int]) -> np.ndarray:
    """One file as (C, H, W) uint8 with the data's channels, decoded as the data are (transparency on white);
    no resize: samples are scored as they were made, and one of another size is refused naming it."""
    from taxodiff.data.real.pixels import as_array, eight_bit, open_image

    img = eight_bit(open_image(path, repr(str(path))))
    if img.size != (shape[2], shape[1]):
        raise TaxodiffError(
            f"--samples file {str(path)!r} is {img.size[0]}x{img.size[1]}, the data's images are {shape[2]}x{shape[1]}:"
            " allowed are images of the data's size (resize them, or set data.size)"
        )
    return as_array(img, shape[0])


def _from_file(path: Path, h: Hierarchy) -> dict[str, torch.Tensor]:
    import torch

    from taxodiff import runs

    raw = runs.load_samples(path)
    z2 = raw.get("z2", raw.get("category"))
    if "images" not in raw or z2 is None:
        raise TaxodiffError(f"--samples {str(path)!r} needs the tensors 'images' and 'z2' (or 'category')")
    images = raw["images"]
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise TaxodiffError(f"--samples {str(path)!r}: 'images' must be uint8 of (N, C, H, W) or (N, H, W, C)")
    if images.shape[1] not in (1, 3) and images.shape[-1] in (1, 3):
        images = images.permute(0, 3, 1, 2).contiguous()
    z2 = z2.long().flatten()
    if len(z2) != len(images) or (len(z2) and not 0 <= int(z2.min()) <= int(z2.max()) < h.num_categories):
        raise TaxodiffError(
            f"--samples {str(path)!r}: 'z2' must give every image a category index in 0..{h.num_categories - 1}"
        )
    out = {"images": images, "z2": z2}
    if "leaf" in raw:
        leaf = raw["leaf"].long().flatten()
        under = torch.tensor(h.leaf_category())
        if len(leaf) != len(z2) or (len(leaf) and not 0 <= int(leaf.min()) <= int(leaf.max()) < h.num_leaves):
            raise TaxodiffError(
                f"--samples {str(path)!r}: 'leaf' must give every image a class in 0..{h.num_leaves - 1}"
            )
        if not torch.equal(under[leaf], z2):
            raise TaxodiffError(f"--samples {str(path)!r}: 'leaf' names classes outside the category 'z2' asked for")
        out["leaf"] = leaf
    return out


def export_samples(samples: dict[str, torch.Tensor], h: Hierarchy, out: Path) -> int:
    """Write samples as the folder layout (numbered in their order), all or nothing: into a new folder ``out``."""
    import os
    import shutil

    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise TaxodiffError(f"--out {str(out)!r} exists and is not an empty folder: choose another or remove it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        _write_pngs(samples, h, tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        out.rmdir()
    os.replace(tmp, out)
    return len(samples["images"])


def _write_pngs(samples: dict[str, torch.Tensor], h: Hierarchy, folder: Path) -> None:
    from PIL import Image

    images = samples["images"].permute(0, 2, 3, 1).numpy()
    leaf = samples.get("leaf")
    width = max(6, len(str(len(images) - 1)))
    for i, (img, c) in enumerate(zip(images, samples["z2"].tolist(), strict=True)):
        where = folder / h.category_names[c]
        if leaf is not None:
            where = where / h.leaf_names[int(leaf[i])]
        where.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).save(where / f"{i:0{width}d}.png")


def report(result: dict[str, Any], h: Hierarchy, samples: str, grid: str, data: str) -> list[tuple[str, Any]]:
    """The audit's report blocks: what was scored, the mode metrics per category, the feature metrics, a grid."""
    o = result["images"]["overall"]
    ci = o["ci"]
    blocks: list[tuple[str, Any]] = [
        ("h1", "taxodiff audit"),
        ("p", f"Samples `{samples}` ({o['n']:,} images) scored against {data}."),
        (
            "p",
            f"Overall: coverage {o['coverage']:.2f} [{ci['coverage'][0]:.2f}, {ci['coverage'][1]:.2f}], "
            f"KL {o['kl']:.4f} [{ci['kl'][0]:.4f}, {ci['kl'][1]:.4f}], off-category {o['off_category']:.3f} "
            f"(95% bootstrap intervals over samples; domain classifier held-out accuracy "
            f"{result['classifier']['accuracy']:.3f}).",
        ),
    ]
    head = ["category", "n", "classes: generated share (data's)", "coverage", "KL", "off-category"]
    rows = []
    for name, c in result["images"]["categories"].items():
        shares = ", ".join(
            f"{s} {p:.2f} ({q:.2f})" for s, p, q in zip(c["subtypes"], c["proportions"], c["p_data"], strict=True)
        )
        rows.append([name, str(c["n"]), shares, f"{c['coverage']:.2f}", f"{c['kl']:.4f}", f"{c['off_category']:.3f}"])
    blocks += [("h2", "Modes per category"), ("table", (head, rows))]
    f = result.get("features")
    if f:
        fo, px = f["overall"], f.get("pixels", {})
        line = (
            f"Precision {fo.get('precision', float('nan')):.3f}, recall {fo.get('recall', float('nan')):.3f}, "
            f"Fréchet distance {fo.get('frechet', float('nan')):.2f} (classifier features), pixel SWD "
            f"{px.get('swd', float('nan')):.1f} beside the data's own {px.get('swd_data', float('nan')):.1f}, "
            f"copies of training images {f['memorisation']['rate']:.3f}."
        )
        blocks += [("h2", "Image quality"), ("p", line)]
    return blocks + [("h2", "Samples"), ("img", (grid, "the first samples of every category"))]
