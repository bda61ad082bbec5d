"""What a TreeVAE (or its plain-VAE baseline) is scored on.

- The clustering, on labelled images never trained on: each image goes to its most probable leaf; accuracy
  (Hungarian), NMI, ARI, leaf purity and dendrogram purity against the true classes
  (:mod:`taxodiff.metrics.clustering`); for the plain VAE, Ward's dendrogram of its posterior means cut at the
  TreeVAE's leaf budget. Beside it, Ward on the pixels with as many clusters, and how well the root's split
  separates the true categories.
- The generations: the domain classifier's class histogram of every learned leaf's samples (are a leaf's
  generations as pure as its images?), the Fréchet distance of the samples to the held-out images in the
  classifier's features, and in pixels their patch Fréchet and patch sliced Wasserstein distances (beside the
  training images' own), which see the blur that the classifier's features forgive.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from taxodiff.families.treevae import growth
from taxodiff.metrics import clustering as cm


def clustering(family: Any, module: Any) -> dict[str, Any]:
    net, data = module.vae, family.held_out
    tree, labels = net.tree, data.z1.numpy()
    k = family.cfg.net.leaves
    if len(tree.nodes) == 1:  # the plain VAE: Ward on its latents
        latents = posterior_means(net, data)
        found, ward_tree, root = cm.ward(latents, k)
        own = cm.scores(labels, found, ward_tree, root)
    else:
        best = growth.assign(net, data).numpy()
        own = cm.scores(labels, best, tree.children_map(), tree.root)
    pixels, ward_tree, root = cm.ward(data.images.flatten(1).numpy(), max(2, int(own["clusters"])))
    out: dict[str, Any] = {
        "clustering": own,
        "ward_pixels": cm.scores(labels, pixels, ward_tree, root),
        "held_out": len(data),
    }
    if len(tree.nodes) > 1:
        out["tree"] = summary(net, data, family.hierarchy)
        out["top_split"] = top_split(net, data)
    return out


@torch.no_grad()
def posterior_means(net: Any, data: Any) -> np.ndarray:
    device = next(net.parameters()).device
    net.eval()
    parts = [
        net.run((data.rows(slice(i, i + growth.BATCH)).to(device) + 1) / 2, None).z[net.tree.root].float().cpu()
        for i in range(0, len(data), growth.BATCH)
    ]
    return torch.cat(parts).numpy()


def summary(net: Any, data: Any, hierarchy: Any) -> dict[str, Any]:
    """Leaves, depth, and per node: its share of the images (mean probability of reaching it) and the class
    histogram of the images whose most probable leaf lies under it."""
    tree = net.tree
    prob = growth.node_probs(net, data)
    best = growth.assign(net, data).numpy()
    hist = cm.class_histograms(data.z1.numpy(), best, tree.children_map(), tree.root, hierarchy.num_leaves)
    nodes = {
        str(i): {
            "parent": tree.nodes[i].parent,
            "children": tree.nodes[i].children,
            "share": round(float(prob[i].mean()), 4),
            "classes": hist[i].astype(int).tolist(),
        }
        for i in tree.order()
    }
    return {"leaves": len(tree.leaves()), "depth": tree.depth(), "class_names": hierarchy.leaf_labels, "nodes": nodes}


def top_split(net: Any, data: Any) -> dict[str, Any]:
    """How the root's children divide the true categories: the Hungarian accuracy of the root's children as
    a clustering of the categories, and each category's share on each side."""
    tree = net.tree
    kids = tree.nodes[tree.root].children
    best = growth.assign(net, data)
    side = np.zeros(len(best), dtype=np.int64)
    for j, kid in enumerate(kids):
        side[torch.isin(best, torch.tensor(tree.subtree_leaves(kid))).numpy()] = j
    z2 = data.z2.numpy()
    shares = [[round(float((side[z2 == c] == j).mean()), 4) for j in range(len(kids))] for c in np.unique(z2)]
    return {"accuracy": cm.hungarian_accuracy(z2, side), "category_shares": shares}


def generated(family: Any, module: Any, samples: dict[str, Any], progress: bool) -> dict[str, Any]:
    """The domain classifier's class histogram of every learned leaf's samples, the share of the leaf's
    majority class (generation purity), and three distances to the held-out images: Fréchet in the
    classifier's features (trained to read the class through blur and noise, so blind to both), and in
    pixels the patch Fréchet distance and the patch sliced Wasserstein distance (which see blur), each beside
    the training images' own value (as many images)."""
    from taxodiff.evaluate.classifier import domain_classifier, embed, predict
    from taxodiff.evaluate.images import to_unit
    from taxodiff.metrics.frechet import frechet_distance
    from taxodiff.metrics.swd import patch_frechet, swd

    net, _ = domain_classifier(family.source, module.device, progress)
    x = to_unit(samples["images"])
    pred = predict(net, x).numpy()
    leaf = samples["node_leaf"].numpy()
    n_classes = family.hierarchy.num_leaves
    hist = {str(i): np.bincount(pred[leaf == i], minlength=n_classes).tolist() for i in np.unique(leaf)}
    purity = sum(max(h) for h in hist.values()) / max(len(pred), 1)
    ref = family.held_out.images
    fd = frechet_distance(embed(net, ref).numpy(), embed(net, x).numpy())
    train = family.full_train_set.images
    data = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[: len(x)]]
    return {
        "leaf_classes": hist,
        "purity": round(float(purity), 4),
        "frechet": round(fd, 3),
        "patch_fd": round(float(patch_frechet(x, ref)["patch_fd"]), 4),
        "patch_fd_data": round(float(patch_frechet(data, ref)["patch_fd"]), 4),
        "pixel_swd": round(float(swd(x, ref)["swd"]), 2),
        "pixel_swd_data": round(float(swd(data, ref)["swd"]), 2),
        "n": len(pred),
    }
