"""A TreeVAE or plain-VAE evaluation: its clustering of the held-out images (against Ward's on the pixels), the
learned tree, the samples' purity and distances, and, for the coarse request, the image mode metrics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from taxodiff.evaluate.results import ImageEvaluation


@dataclass(frozen=True)
class ClusteringEvaluation:
    data: dict[str, Any]

    def to_row(self) -> dict[str, Any]:
        r = self.data
        row: dict[str, Any] = {
            "decoder": "diffusion" if r.get("refined") else "vae",
            "own": r["clustering"],
            "ward_pixels": r["ward_pixels"],
            "generated": r.get("generated"),
        }
        if "tree" in r:
            row["leaves"], row["depth"] = r["tree"]["leaves"], r["tree"]["depth"]
            row["tree_nodes"], row["class_names"] = r["tree"]["nodes"], r["tree"]["class_names"]
            row["top_split"] = r["top_split"]["accuracy"]
        if "images" in r:  # the coarse request
            row |= ImageEvaluation(r).to_row()
            row["category_nodes"] = r["category_nodes"]
        return row

    def describe(self) -> str:
        r = self.data
        c, w = r["clustering"], r["ward_pixels"]
        head = f"{r['model']}: "
        if "tree" in r:
            head += f"{r['tree']['leaves']} leaves, depth {r['tree']['depth']}; "
        line = (
            f"{head}held-out accuracy {c['accuracy']:.3f}, NMI {c['nmi']:.3f}, leaf purity {c['leaf_purity']:.3f}, "
            f"dendrogram purity {c['dendrogram_purity']:.3f} (Ward on pixels {w['accuracy']:.3f} / {w['nmi']:.3f} / "
            f"{w['leaf_purity']:.3f} / {w['dendrogram_purity']:.3f})"
        )
        g = r.get("generated")
        if g:
            line += (
                f"; samples: leaf purity {g['purity']:.3f}, Fréchet {g['frechet']:.2f}, patch Fréchet "
                f"{g['patch_fd']:.3f} (data {g['patch_fd_data']:.3f}), pixel SWD {g['pixel_swd']:.1f} "
                f"(data {g['pixel_swd_data']:.1f})"
            )
        return line
