"""Model C, TreeVAE (seed 003): a binary tree of latent variables grown without labels, and what reads it.

- ``family``: the treevae and vae families (training phases, sampling, evaluation);
- ``net``: the networks (encoder, ladder, node latents, routers, leaf decoders);
- ``tree``: the tree's shape (nodes with stable ids, split, prune, JSON);
- ``elbo``: the ELBO's terms (Gaussian and router KLs, the posterior combination, path probabilities);
- ``growth``: which leaf to split, which samples it holds, which leaves to prune;
- ``refiner``: the second stage, a DDPM on the leaf decodings; ``scoring``: clustering and sample scores;
- ``report``: the learned tree drawn; ``study``: the TreeVAE study against Ward's clustering.
"""
