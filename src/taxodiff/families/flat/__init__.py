"""Model A, flat (seeds 000, 001): one image denoiser conditioned on the coarse category only; the baseline of
the comparisons (:mod:`taxodiff.families.flat.family`)."""
