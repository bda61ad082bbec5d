"""The Random Hierarchy Model: its grammar (spec.py, grammar.py), exact belief propagation on its tree (bp.py),
and the data source (source.py)."""
