"""The one error type users see: a bad value, named, with what is allowed. The CLI prints it and exits 2."""

from __future__ import annotations


class TaxodiffError(ValueError):
    """Invalid user input (config, hierarchy, flag, checkpoint). The message is one line."""
