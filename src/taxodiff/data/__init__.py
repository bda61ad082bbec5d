"""Data sources: one module each, one line each in ``SOURCES``.

A source (:class:`taxodiff.data.base.DataSource`) declares its ``data:`` and ``eval:`` config sections, its
data kind ("images" or "sequences"), the labels its class tree may use, and loads training, held-out and
reference data with ground truth.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from taxodiff.registry import Registry

if TYPE_CHECKING:
    from taxodiff.data.base import DataSource

# the first source a family accepts is its default
SOURCES: Registry[type[DataSource]] = Registry(
    "data source",
    "data.source",
    {
        "shapes": "taxodiff.data.shapes.source:Shapes",
        "rhm": "taxodiff.data.rhm.source:RHMSource",
        "digits": "taxodiff.data.real.digits:Digits",
        "mnist": "taxodiff.data.real.mnist:MNISTSubset",
        "idx": "taxodiff.data.real.idx:IdxFiles",
        "imagefolder": "taxodiff.data.real.folder:ImageFolder",
        "cifar10": "taxodiff.data.real.cifar:Cifar10",
        "cifar100": "taxodiff.data.real.cifar:Cifar100",
        "hf": "taxodiff.data.real.hf:HFDataset",
    },
)


def get_source(name: str) -> type[DataSource]:
    return SOURCES.get(name)
