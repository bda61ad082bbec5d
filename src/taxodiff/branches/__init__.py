"""Hierarchically branched diffusion (seed 004): branch points discovered from data (discovery.py)."""
