import torch

from taxodiff.data.shapes.render import StyleConfig, make_images, render
from taxodiff.data.shapes.sdf import SHAPE_NAMES
from taxodiff.hierarchy import Hierarchy

H = Hierarchy.from_spec({"animal": {"dog": 0.5, "cat": 0.5}, "vehicle": {"car": 0.7, "truck": 0.3}})


def test_deterministic_per_seed_and_ground_truth():
    a, b, c = make_images(H, 200, 32, 0), make_images(H, 200, 32, 0), make_images(H, 200, 32, 1)
    assert torch.equal(a.images, b.images) and torch.equal(a.z1, b.z1)
    assert not torch.equal(a.images, c.images)
    assert a.images.shape == (200, 3, 32, 32) and a.images.min() >= -1 and a.images.max() <= 1
    assert torch.equal(a.z2, torch.tensor(H.leaf_category())[a.z1])


def test_proportions_follow_hierarchy():
    b = make_images(H, 20_000, 8, 3)
    share = torch.bincount(b.z1, minlength=4).float() / 20_000
    assert torch.allclose(share, torch.tensor([0.25, 0.25, 0.35, 0.15]), atol=0.015)  # 4.5 sigma at n=20k


def _one(shape_idx: int, **style) -> torch.Tensor:
    z0 = torch.tensor([[0.0, 0.0, 0.9, 0.0, 0.8, 0.5]])
    for k, v in style.items():
        z0[0, ["dx", "dy", "scale", "hue", "brightness", "detail"].index(k)] = v
    return render(list(SHAPE_NAMES), torch.tensor([shape_idx]), z0, 32, StyleConfig())[0]


def test_every_style_factor_changes_pixels():
    base = _one(0)
    for factor, value in [
        ("dx", 0.1),
        ("dy", -0.1),
        ("scale", 0.75),
        ("hue", 0.5),
        ("brightness", 0.4),
        ("detail", 1.0),
    ]:
        assert (base - _one(0, **{factor: value})).abs().sum() > 1.0, factor


def test_colour_is_not_black_and_white():
    img = _one(0, hue=0.33)
    fg = img[:, img.mean(0) < 0.9]
    assert (fg.max(0).values - fg.min(0).values).mean() > 0.2  # saturated colour


def test_at_least_eight_distinct_shapes():
    assert len(SHAPE_NAMES) >= 8
    masks = [(_one(i) < 0.99).any(0).float() for i in range(len(SHAPE_NAMES))]
    for i in range(len(masks)):
        assert masks[i].mean() > 0.05
        for j in range(i):
            iou = (masks[i] * masks[j]).sum() / ((masks[i] + masks[j]) > 0).sum()
            assert iou < 0.8, (SHAPE_NAMES[i], SHAPE_NAMES[j])


def test_64px():
    assert make_images(H, 4, 64, 0).images.shape == (4, 3, 64, 64)
