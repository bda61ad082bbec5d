"""taxodiff: hierarchical diffusion models on data whose hierarchy is known.

Importing the package is cheap: heavy modules (torch, diffusers) load where they are used.
"""

__version__ = "0.1.0"
