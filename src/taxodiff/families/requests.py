"""Requests of the class-level image families (branched, labelled): which class every sample is asked for.

- ``categories`` (the coarse request, as the flat and hierarchical families answer it): ``n_per_category``
  samples of every category; sample k of category c draws its class from p(class | c) with a stream of its
  own, ("leaf", c, k), so two families asked with one seed are asked for the same classes.
- ``classes``: ``n_per_class`` samples of every class of the tree, drawn class by class (a class's samples do
  not depend on which other classes exist: what continual learning compares).
- ``classes-cached`` (branched only): as ``classes``, the samples of all classes sharing their trajectories
  above each branch point.

Sample noise streams: ("sample", c, k) for the coarse request, ("class", name, k) for a class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from taxodiff.config.fields import choice, positive
from taxodiff.families import images

if TYPE_CHECKING:
    from torch import Tensor

    from taxodiff.families.sampling import Draw

REQUESTS = ("categories", "classes", "classes-cached")
FLAGS: dict[str, tuple[str, str]] = {
    "--request": ("sample.request", "categories (default), classes or classes-cached (classes sharing trajectories)"),
    "--n-per-class": ("sample.n_per_class", "samples per class (class requests)"),
    "--classes": ("sample.classes", "class requests: these classes only, e.g. 3,8"),
}
# the seed's VP SDE (beta 0.1 -> 20), for the branched family and its baseline alike: branch points spread over
# the time span; under the cosine schedule they crowd into t/T 0.7-0.8 and a tree's branches share little
# (digits: C / sum of branch lengths 1.27 against 2.01)
DEFAULTS: dict[str, Any] = {"diffusion.beta_schedule": "linear"}


@dataclass(frozen=True)
class LeafSample(images.ImageSample):
    request: str = choice("categories", REQUESTS)
    n_per_class: int = positive(64)  # with request classes / classes-cached
    classes: str = ""  # with request classes / classes-cached: these classes only, comma-separated ("" = all)


@dataclass
class Request:
    z2: Tensor  # (N,) category of every sample
    leaf: Tensor  # (N,) class (leaf index) asked of every sample
    keys: list[tuple[str | int, ...]]  # noise stream of every sample


def draw_class(h: Any, category: int, k: int, seed: int) -> int:
    """The class asked of the k-th sample of a category: inverse CDF of p(class | category) at a uniform draw
    from the stream (seed, "leaf", category, k)."""
    import torch

    from taxodiff import seeds

    u = float(torch.rand(1, generator=seeds.generator(seed, "leaf", category, k), dtype=torch.float64))
    acc = 0.0
    leaves, probs = h.leaves_of(category), h.conditional(category)
    for leaf, p in zip(leaves, probs, strict=True):
        acc += p
        if u < acc:
            return leaf
    return leaves[-1]


def request(h: Any, sc: Any, seed: int) -> Request:
    import torch

    if sc.request == "categories":
        z2, keys = images.requests(h.num_categories, sc.n_per_category)
        leaf = torch.tensor([draw_class(h, int(c), int(k[2]), seed) for c, k in zip(z2, keys, strict=True)])
        return Request(z2, leaf, keys)
    n, names = sc.n_per_class, asked_classes(h, sc)
    leaf = torch.tensor([h.leaf_names.index(name) for name in names]).repeat_interleave(n)
    z2 = torch.tensor(h.leaf_category())[leaf]
    keys: list[tuple[str | int, ...]] = [("class", name, k) for name in names for k in range(n)]
    return Request(z2, leaf, keys)


def asked_classes(h: Any, sc: Any) -> list[str]:
    """The classes a class request asks for, in the tree's order; one line naming the allowed ones if unknown."""
    from taxodiff.errors import TaxodiffError

    if not sc.classes:
        return list(h.leaf_names)
    asked = [c.strip() for c in sc.classes.split(",") if c.strip()]
    unknown = [c for c in asked if c not in h.leaf_names]
    if unknown or not asked:
        raise TaxodiffError(
            f"sample.classes = {sc.classes!r} is invalid: allowed are classes of the tree ({', '.join(h.leaf_names)}), "
            "comma-separated"
        )
    return [c for c in h.leaf_names if c in asked]


def draw_request(req: Request, batch_size: int, seed: int, draw: Draw, by_class: bool, progress: Any) -> dict:
    """``draw`` over the request in batches: batches of one class at a time if ``by_class``."""
    import torch

    from taxodiff.families.sampling import draw_in_batches

    if not by_class:
        return draw_in_batches(req.keys, batch_size, seed, draw, progress)
    parts = []
    for leaf in torch.unique(req.leaf).tolist():
        rows = torch.nonzero(req.leaf == leaf).flatten()
        lo = int(rows[0])

        def shifted(r: slice, noise: Any, lo: int = lo) -> dict:
            return draw(slice(r.start + lo, r.stop + lo), noise)

        parts.append(draw_in_batches(req.keys[lo : lo + len(rows)], batch_size, seed, shifted, progress))
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def tag(sc: Any, knobs: dict[str, str]) -> str:
    base = images.sample_tag(sc, knobs)
    if sc.request == "categories":
        return base
    only = "_" + "-".join(c.strip() for c in sc.classes.split(",") if c.strip()) if sc.classes else ""
    return f"{base}_{sc.request}{sc.n_per_class}{only}"


def count(h: Any, sc: Any) -> int:
    if sc.request == "categories":
        return sc.n_per_category * h.num_categories
    return sc.n_per_class * len(asked_classes(h, sc))


def figure(source: Any, samples: dict[str, Tensor], path: Any, title: str, tag: str) -> None:
    """A grid per category (the coarse request) or per class (class requests)."""
    if "_classes" not in tag:
        images.category_figure(source, samples, path, title)
        return
    import numpy as np

    from taxodiff.report import figures

    names = source.hierarchy.leaf_names
    asked = sorted(set(samples["leaf"].tolist()))  # panels for the classes asked only
    panel = np.searchsorted(asked, samples["leaf"].numpy())
    figures.category_grid(samples["images"].numpy(), panel, [names[i] for i in asked], path, title, per_category=16)


def added_leaf(family: Any) -> int:
    """Continual learning: the index in ``family``'s class tree of the one class it adds to its parent run's
    tree; refused in one line unless exactly one is added and none is dropped."""
    from taxodiff import runs
    from taxodiff.data import get_source
    from taxodiff.errors import TaxodiffError

    _, parent_cfg, _ = runs.stored_config(family.cfg.parent)
    old = get_source(parent_cfg.data.source)(parent_cfg).hierarchy.leaf_names
    names = family.hierarchy.leaf_names
    gone = [c for c in old if c not in names]
    added = [c for c in names if c not in old]
    if gone or len(added) != 1:
        raise TaxodiffError(
            f"extending a {family.name} run takes its class tree plus exactly one class: missing "
            f"{', '.join(gone) or 'none'}, added {', '.join(added) or 'none'}"
        )
    return names.index(added[0])
