"""Figures written as PNG: sample grids per category and subtype proportions against the data."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from taxodiff import runs

DPI = 110


def pyplot():  # type: ignore[no-untyped-def]
    """matplotlib's pyplot on the Agg backend (no screen needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: Path) -> Path:  # type: ignore[no-untyped-def]
    """Write a figure as PNG, atomically, and close it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    pyplot().close(fig)
    runs.atomic_write(path, buf.getvalue())
    return path


def mosaic(images: np.ndarray, cols: int) -> np.ndarray:
    """(N, H, W, C) uint8, C = 1 or 3 -> one (rows*H, cols*W, 3) image with 1-pixel white gutters."""
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    n, h, w, c = images.shape
    rows = max(1, -(-n // cols))
    out = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1, c), 255, dtype=np.uint8)
    for i, im in enumerate(images):
        r, k = divmod(i, cols)
        out[r * (h + 1) : r * (h + 1) + h, k * (w + 1) : k * (w + 1) + w] = im
    return out


def category_grid(
    images: np.ndarray,
    z2: np.ndarray,
    names: Sequence[str],
    path: Path,
    title: str = "",
    per_category: int = 32,
    cols: int = 8,
    labels: Sequence[str] | None = None,
    panels_per_row: int = 5,
) -> Path:
    """One panel per category with its first ``per_category`` samples (at most ``panels_per_row`` panels side by
    side). images: (N, C, H, W) uint8."""
    plt = pyplot()
    k = len(names)
    across, down = min(k, panels_per_row), -(-k // panels_per_row)
    h, w = images.shape[-2:]
    scale = max(1, round(64 / w)) / DPI  # inches per image pixel: every image shown about 64 pixels wide
    rows = -(-per_category // cols)
    panel = (cols * (w + 1) * scale + 0.3, rows * (h + 1) * scale + 0.35)
    size = (across * panel[0], down * panel[1] + 0.35)
    fig, axes = plt.subplots(down, across, figsize=size, squeeze=False)
    fig.subplots_adjust(
        left=0.01,
        right=0.99,
        bottom=0.01,
        top=1 - 0.65 / size[1],
        wspace=0.3 / size[0] * across,
        hspace=0.35 / panel[1],
    )
    for ax in axes.flat[k:]:
        ax.axis("off")
    for c, (ax, name) in enumerate(zip(axes.flat[:k], names, strict=True)):
        sel = np.nonzero(z2 == c)[0][:per_category]
        ax.imshow(mosaic(images[sel].transpose(0, 2, 3, 1), cols), interpolation="nearest")
        ax.set_title(labels[c] if labels else name, fontsize=10)
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=11)
    return save(fig, path)


def proportions_chart(
    categories: dict[str, dict], series: dict[str, dict[str, list[float]]], path: Path, title: str = ""
) -> Path:
    """Grouped bars of subtype shares per category: the data's p(z1 | z2) and each model's.

    categories: name -> {"subtypes": [...], "p_data": [...]}; series: label -> {category: proportions}.
    """
    plt = pyplot()
    k = len(categories)
    fig, axes = plt.subplots(1, k, figsize=(3.6 * k, 3.0), squeeze=False)
    labels = ["data", *series]
    width = 0.8 / len(labels)
    for ax, (cat, info) in zip(axes[0], categories.items(), strict=True):
        x = np.arange(len(info["subtypes"]))
        for i, label in enumerate(labels):
            vals = info["p_data"] if label == "data" else series[label].get(cat, [np.nan] * len(x))
            ax.bar(
                x + (i - (len(labels) - 1) / 2) * width,
                vals,
                width,
                label=label,
                color="0.6" if label == "data" else None,
            )
        ax.set_xticks(x, info["subtypes"])
        ax.set_ylim(0, 1)
        ax.set_title(cat, fontsize=10)
        ax.set_ylabel("share of samples")
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=len(labels), fontsize=8, bbox_to_anchor=(0.5, -0.08))
    if title:
        fig.suptitle(title, fontsize=11)
    return save(fig, path)
