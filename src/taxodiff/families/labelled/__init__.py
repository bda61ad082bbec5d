"""A label-conditioned image denoiser, class by class: the equal-size baseline of branched diffusion
(:mod:`taxodiff.families.labelled.family`)."""
