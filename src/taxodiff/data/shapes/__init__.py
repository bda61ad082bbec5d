"""Synthetic hierarchical images: silhouettes (sdf.py) rendered with style (render.py); the source (source.py)."""
