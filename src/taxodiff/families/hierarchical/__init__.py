"""Model B, hierarchical (seeds 000, 001): a diffusion prior over subtype embeddings, then an image decoder
(:mod:`taxodiff.families.hierarchical.family`)."""
