"""Run configuration: frozen dataclasses, every default in one place, loaded from YAML with strict checks.

    cfg = config.load("configs/digits.yaml", {"train.steps": 300})
    cfg.model, cfg.data.source, cfg.train.steps

See :mod:`taxodiff.config.schema` for the layout. Importing this package imports neither torch nor numpy.
"""

from taxodiff.config.loader import dump_yaml, flatten, read_text, read_yaml, to_dict
from taxodiff.config.resolve import changed, check, for_family, load, resolve, with_overrides
from taxodiff.config.schema import RunConfig, TrainConfig

__all__ = [
    "RunConfig",
    "TrainConfig",
    "changed",
    "check",
    "dump_yaml",
    "flatten",
    "for_family",
    "load",
    "read_text",
    "read_yaml",
    "resolve",
    "to_dict",
    "with_overrides",
]
