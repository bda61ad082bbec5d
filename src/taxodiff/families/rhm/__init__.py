"""Model family B on the Random Hierarchy Model (seed 002; Favero, Sclocchi et al., ICML 2025).

- ``family``: discrete or Gaussian diffusion on RHM sequences, belief propagation as the exact reference;
- ``adapters``: the two processes (tokens, one-hot vectors), chosen once;
- ``tree_unet``: the tree-shaped U-Net (the seed's bpUnet); ``transformer``: its equal-size baseline;
- ``learning``, ``phase``: the rhm-learning and rhm-phase-transition studies.
The grammar and belief propagation are the data source's (:mod:`taxodiff.data.rhm`).
"""
