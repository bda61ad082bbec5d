"""Model families: one folder each, one line each in ``FAMILIES``.

A family (:class:`taxodiff.families.base.Family`) declares its config sections, the data kinds it accepts,
how it builds its networks, its training loss and stages, how it samples and what it adds to the evaluation;
beside it, what the command line (``commands``) and the studies (``roles``) read of it. Everything else (the
trainer, run directories, the CLI, studies, reports) reads this registry. The modules here are what the image
families share: their config sections and pieces (``images``), the label-conditioned base (``conditional``),
class-level requests (``requests``), the trainable module (``module``) and batched sampling (``sampling``).
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
        "hierarchical": "taxodiff.families.hierarchical.family:TwoStage",
        "flat": "taxodiff.families.flat.family:Flat",
        "rhm": "taxodiff.families.rhm.family:RHMDiffusion",
        "branched": "taxodiff.families.branched.family:Branched",
        "labelled": "taxodiff.families.labelled.family:Labelled",
        "treevae": "taxodiff.families.treevae.family:TreeVAE",
        "vae": "taxodiff.families.treevae.family:VAE",
    },
)


def get_family(name: str) -> type[Family]:
    return FAMILIES.get(name)


def families_for(kind: str) -> list[type[Family]]:
    """The registered families that accept data of ``kind``, in registry order."""
    return [f for f in FAMILIES.all() if kind in f.data_kinds]


def compared(kind: str) -> list[type[Family]]:
    """Families the comparisons (the demo, the mode-collapse study) take on data of ``kind``: the baseline first."""
    fams = [f for f in families_for(kind) if f.roles.compared]
    return sorted(fams, key=lambda f: not f.roles.baseline)


def extending() -> list[type[Family]]:
    """Families whose runs can be extended by one class (``taxodiff add-class``)."""
    return [f for f in FAMILIES.all() if f.extends_parent]
