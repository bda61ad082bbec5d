"""Scoring generated samples: images (a domain classifier assigns each to a leaf, then mode and feature-space
metrics) and RHM sequences (validity per level, copies, rule usage). Families call these."""
