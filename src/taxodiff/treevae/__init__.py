"""TreeVAE (seed 003): a binary tree of latent variables grown without labels, and what reads it.

- :mod:`taxodiff.treevae.tree`: the tree's shape (nodes with stable ids, split, prune, JSON);
- :mod:`taxodiff.treevae.elbo`: the ELBO's terms (Gaussian and router KLs, the posterior combination, path
  probabilities), as functions of tensors;
- :mod:`taxodiff.treevae.growth`: which leaf to split, which samples it holds, which leaves to prune;
- :mod:`taxodiff.treevae.report`: the learned tree drawn.

The networks are in :mod:`taxodiff.nets.treevae`, the family (training phases, sampling, evaluation) in
:mod:`taxodiff.families.treevae`.
"""
