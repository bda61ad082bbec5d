"""Model D, hierarchically branched diffusion (seed 004; Tseng et al., TMLR 2024).

- ``family``: the family (a U-Net trunk and a head per branch; training, sampling, continual learning);
- ``net``: the branched U-Net; ``tree``: the branched tree on process times; ``discovery``: branch points found
  in the data; ``sampler``: sampling down the tree, per path or with cached branch points; ``transmute``: a
  class's images turned into another's down the tree;
- ``discovery_runs``: discovery repeated over seeds (``taxodiff branches``); ``commands``: the family's own
  command-line verbs; ``study``, ``study_report``: the branched study against the labelled baseline.
"""
