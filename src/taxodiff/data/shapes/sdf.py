"""Subtype silhouettes as signed-distance functions, rendered in a batch.

Each shape is a union of primitives (discs, ellipses, convex polygons, capsules) written in local
coordinates: x to the right, y up, the figure inside roughly [-0.9, 0.9]^2. A per-sample ``detail`` in
[0, 1] changes a small part (ear length, tail angle, wheel size...): the finest style factor of z0.
Negative distance means inside. Add a shape: write one function and add it to ``SHAPES``.
Only tensor methods are used, so the names are known (to validate a config) without importing torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # shapes are plain tensor arithmetic: importing this module does not import torch
    from torch import Tensor

SDF = Callable[["Tensor", "Tensor", "Tensor"], "Tensor"]  # (x, y, detail) -> signed distance, all (B, H, W)


# -- primitives ---------------------------------------------------------------------------------------------
def disc(x: Tensor, y: Tensor, cx: float | Tensor, cy: float | Tensor, r: float | Tensor) -> Tensor:
    return ((x - cx) ** 2 + (y - cy) ** 2).sqrt() - r


def ellipse(x: Tensor, y: Tensor, cx: float, cy: float, rx: float, ry: float) -> Tensor:
    k = (((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2).sqrt()
    return (k - 1.0) * min(rx, ry)


def box(x: Tensor, y: Tensor, cx: float | Tensor, cy: float | Tensor, hx: float | Tensor, hy: float | Tensor) -> Tensor:
    return ((x - cx).abs() - hx).maximum((y - cy).abs() - hy)


def polygon(x: Tensor, y: Tensor, pts: list[tuple[float | Tensor, float | Tensor]]) -> Tensor:
    """Convex polygon (either orientation); distance is exact inside, a bound outside."""
    area2 = sum(_first(ax * by - bx * ay) for (ax, ay), (bx, by) in zip(pts, pts[1:] + pts[:1], strict=True))
    sign = 1.0 if area2 > 0 else -1.0
    d = None
    for (ax, ay), (bx, by) in zip(pts, pts[1:] + pts[:1], strict=True):
        ex, ey = bx - ax, by - ay
        norm = (ex * ex + ey * ey) ** 0.5
        side = sign * ((x - ax) * ey - (y - ay) * ex) / norm  # > 0: outside this edge
        d = side if d is None else d.maximum(side)
    assert d is not None
    return d


def capsule(x: Tensor, y: Tensor, ax: float, ay: float, bx: float | Tensor, by: float | Tensor, r: float) -> Tensor:
    px, py, ex, ey = x - ax, y - ay, bx - ax, by - ay
    h = ((px * ex + py * ey) / (ex * ex + ey * ey)).clamp(0.0, 1.0)
    return ((px - ex * h) ** 2 + (py - ey * h) ** 2).sqrt() - r


def _first(v: float | Tensor) -> float:
    return float(v.flatten()[0]) if hasattr(v, "flatten") else float(v)  # type: ignore[union-attr]


def union(*ds: Tensor) -> Tensor:
    out = ds[0]
    for d in ds[1:]:
        out = out.minimum(d)
    return out


def _d(detail: Tensor) -> Tensor:
    return detail[:, None, None]  # (B,) -> (B, 1, 1) to broadcast over the grid


# -- shapes -------------------------------------------------------------------------------------------------
def dog(x: Tensor, y: Tensor, detail: Tensor) -> Tensor:
    """Standing dog, side view: long body, four legs, head with a drooping ear, tail up."""
    d = _d(detail)
    legs = [box(x, y, lx, -0.4, 0.07, 0.22) for lx in (-0.42, -0.22, 0.22, 0.42)]
    return union(
        ellipse(x, y, 0.0, 0.0, 0.55, 0.22),
        disc(x, y, 0.58, 0.32, 0.2),
        box(x, y, 0.8, 0.26, 0.14, 0.08),
        box(x, y, 0.48, 0.34 - 0.1 * d, 0.06, 0.12 + 0.06 * d),
        capsule(x, y, -0.5, 0.08, -0.78, 0.2 + 0.3 * d, 0.06),
        *legs,
    )


def cat(x: Tensor, y: Tensor, detail: Tensor) -> Tensor:
    """Sitting cat, front view: round body, round head, two pointed ears, tail to the side."""
    d = _d(detail)
    ear = 0.22 + 0.12 * d
    return union(
        ellipse(x, y, 0.0, -0.35, 0.38, 0.42),
        disc(x, y, 0.0, 0.3, 0.27),
        polygon(x, y, [(-0.3, 0.38), (-0.05, 0.5), (-0.24, 0.5 + ear)]),
        polygon(x, y, [(0.05, 0.5), (0.3, 0.38), (0.24, 0.5 + ear)]),
        capsule(x, y, 0.3, -0.7, 0.68, -0.45 + 0.35 * d, 0.07),
    )


def car(x: Tensor, y: Tensor, detail: Tensor) -> Tensor:
    """Low car, side view: long body, cabin, two wheels."""
    r = 0.15 + 0.06 * _d(detail)
    return union(
        box(x, y, 0.0, -0.12, 0.8, 0.17),
        polygon(x, y, [(-0.45, 0.05), (0.35, 0.05), (0.2, 0.35), (-0.3, 0.35)]),
        disc(x, y, -0.48, -0.32, r),
        disc(x, y, 0.48, -0.32, r),
    )


def truck(x: Tensor, y: Tensor, detail: Tensor) -> Tensor:
    """Truck, side view: tall cargo box, cab in front, three wheels."""
    r = 0.13 + 0.05 * _d(detail)
    return union(
        box(x, y, -0.25, 0.12, 0.55, 0.38),
        box(x, y, 0.58, -0.04, 0.24, 0.26),
        box(x, y, 0.1, -0.32, 0.75, 0.06),
        disc(x, y, -0.6, -0.42, r),
        disc(x, y, -0.2, -0.42, r),
        disc(x, y, 0.55, -0.42, r),
    )


def bird(x: Tensor, y: Tensor, detail: Tensor) -> Tensor:
    """Bird: oval body, head, beak, raised wing."""
    d = _d(detail)
    return union(
        ellipse(x, y, -0.05, -0.1, 0.45, 0.25),
        disc(x, y, 0.42, 0.18, 0.17),
        polygon(x, y, [(0.55, 0.12), (0.85, 0.16), (0.55, 0.26)]),
        polygon(x, y, [(-0.3, 0.0), (0.15, 0.0), (-0.25 - 0.2 * d, 0.55 + 0.2 * d)]),
        polygon(x, y, [(-0.45, -0.15), (-0.45, 0.0), (-0.85, 0.1)]),
    )


def fish(x: Tensor, y: Tensor, detail: Tensor) -> Tensor:
    """Fish: lens body and a forked tail."""
    d = _d(detail)
    return union(
        ellipse(x, y, 0.15, 0.0, 0.55, 0.3),
        polygon(x, y, [(-0.35, 0.0), (-0.8, -0.3 - 0.15 * d), (-0.7, 0.0), (-0.8, 0.3 + 0.15 * d)]),
        polygon(x, y, [(0.0, 0.25), (0.3, 0.25), (0.05, 0.45 + 0.1 * d)]),
    )


def house(x: Tensor, y: Tensor, detail: Tensor) -> Tensor:
    """House: square walls, triangular roof, chimney."""
    d = _d(detail)
    return union(
        box(x, y, 0.0, -0.35, 0.55, 0.4),
        polygon(x, y, [(-0.72, 0.05), (0.72, 0.05), (0.0, 0.7)]),
        box(x, y, 0.38, 0.45 + 0.1 * d, 0.08, 0.2),
    )


def tree(x: Tensor, y: Tensor, detail: Tensor) -> Tensor:
    """Tree: trunk and a round crown."""
    d = _d(detail)
    return union(
        box(x, y, 0.0, -0.55, 0.1 + 0.04 * d, 0.35),
        disc(x, y, 0.0, 0.2, 0.5),
        disc(x, y, -0.35, 0.0, 0.28 + 0.1 * d),
        disc(x, y, 0.35, 0.0, 0.28 + 0.1 * d),
    )


def plane(x: Tensor, y: Tensor, detail: Tensor) -> Tensor:
    """Aeroplane, side view: fuselage, swept wing, tail fin."""
    d = _d(detail)
    return union(
        capsule(x, y, -0.75, 0.0, 0.75, 0.0, 0.12),
        polygon(x, y, [(-0.1, 0.0), (0.25, 0.0), (-0.25, -0.55 - 0.15 * d), (-0.4, -0.55 - 0.15 * d)]),
        polygon(x, y, [(-0.85, 0.0), (-0.55, 0.0), (-0.8, 0.45 + 0.15 * d)]),
    )


def boat(x: Tensor, y: Tensor, detail: Tensor) -> Tensor:
    """Sailing boat: hull, mast, triangular sail."""
    d = _d(detail)
    return union(
        polygon(x, y, [(-0.55, -0.65), (0.55, -0.65), (0.8, -0.35), (-0.8, -0.35)]),
        box(x, y, 0.0, 0.1, 0.04, 0.5),
        polygon(x, y, [(-0.65 - 0.1 * d, -0.25), (-0.04, -0.25), (-0.04, 0.65)]),
    )


def star(x: Tensor, y: Tensor, detail: Tensor) -> Tensor:
    """Five-pointed star (a radial bound, not an exact distance)."""
    d = _d(detail)
    theta = y.atan2(x) - math.pi / 2
    k = (5 * theta).cos()
    r_edge = 0.42 + (0.28 + 0.1 * d) * (0.5 + 0.5 * k) ** 2
    return ((x * x + y * y).sqrt() - r_edge) * 0.6


def flower(x: Tensor, y: Tensor, detail: Tensor) -> Tensor:
    """Flower: six petals round a centre, on a stem."""
    d = _d(detail)
    petals = [
        disc(x, y, 0.34 * math.cos(a), 0.2 + 0.34 * math.sin(a), 0.17 + 0.05 * d)
        for a in [i * math.pi / 3 for i in range(6)]
    ]
    return union(disc(x, y, 0.0, 0.2, 0.18), box(x, y, 0.0, -0.45, 0.05, 0.4), *petals)


SHAPES: dict[str, SDF] = {
    "dog": dog,
    "cat": cat,
    "car": car,
    "truck": truck,
    "bird": bird,
    "fish": fish,
    "house": house,
    "tree": tree,
    "plane": plane,
    "boat": boat,
    "star": star,
    "flower": flower,
}
SHAPE_NAMES: tuple[str, ...] = tuple(SHAPES)
