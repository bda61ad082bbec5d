"""Model families: one module each, one line each in ``FAMILIES``.

A family (:class:`taxodiff.families.base.Family`) declares its config sections, the data kinds it accepts,
how it builds its networks, its training loss and stages, how it samples and what it adds to the evaluation.
Everything else (the trainer, run directories, the CLI, studies, reports) reads this registry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from taxodiff.registry import Registry

if TYPE_CHECKING:
    from taxodiff.families.base import Family

# the first family that accepts a data source's kind is the default for it
FAMILIES: Registry[type[Family]] = Registry(
    "model family",
    "model",
    {
        "hierarchical": "taxodiff.families.two_stage:TwoStage",
        "flat": "taxodiff.families.flat:Flat",
        "rhm": "taxodiff.families.rhm:RHMDiffusion",
        "branched": "taxodiff.families.branched:Branched",
        "labelled": "taxodiff.families.labelled:Labelled",
        "treevae": "taxodiff.families.treevae:TreeVAE",
        "vae": "taxodiff.families.treevae:VAE",
    },
)


def get_family(name: str) -> type[Family]:
    return FAMILIES.get(name)


def families_for(kind: str) -> list[type[Family]]:
    """The registered families that accept data of ``kind``, in registry order."""
    return [f for f in FAMILIES.all() if kind in f.data_kinds]


def compared(kind: str) -> list[type[Family]]:
    """Families that take part in comparisons (demo, studies) on data of ``kind``: baselines first."""
    fams = [f for f in families_for(kind) if f.compare]
    return sorted(fams, key=lambda f: f.baseline is not None)
