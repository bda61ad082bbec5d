"""One root seed, split into named streams (data, init, train, sample, eval...).

``derive(seed, "data")`` is a stable 63-bit integer; generators are built from it and passed explicitly.
Seed 0 is a seed like any other.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def derive(seed: int, *names: str | int) -> int:
    key = ":".join([str(seed), *map(str, names)]).encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "little") & (2**63 - 1)


def generator(seed: int, *names: str | int) -> torch.Generator:
    import torch

    return torch.Generator().manual_seed(derive(seed, *names))
