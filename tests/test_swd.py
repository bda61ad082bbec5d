"""The pixel-quality metric: Laplacian pyramid, sliced Wasserstein distance, and its response to corrupted data."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from taxodiff import config
from taxodiff.data import get_source
from taxodiff.metrics.swd import SWDSettings, laplacian_pyramid, patch_frechet, patches, sliced_wasserstein, swd


def test_pyramid_levels_sum_back_to_the_image() -> None:
    x = torch.rand(3, 2, 32, 24, generator=torch.Generator().manual_seed(0)) * 2 - 1
    levels = laplacian_pyramid(x, min_size=4)
    assert [tuple(lv.shape[-2:]) for lv in levels] == [(32, 24), (16, 12), (8, 6)]  # 6 // 2 < 4: stop
    g = levels[-1]
    for lv in reversed(levels[:-1]):
        g = lv + F.interpolate(g, size=lv.shape[-2:], mode="bilinear", align_corners=False)
    torch.testing.assert_close(g, x, atol=1e-5, rtol=0)
    assert len(laplacian_pyramid(torch.zeros(1, 1, 8, 8))) == 1  # 8x8 digits: one level


def test_patches_are_the_pixels_at_their_positions() -> None:
    x = torch.arange(2 * 3 * 5 * 6, dtype=torch.float32).reshape(2, 3, 5, 6)
    gen = torch.Generator().manual_seed(0)
    p = patches(x, 3, 4, gen)
    assert p.shape == (2 * 4, 3 * 9)
    gen = torch.Generator().manual_seed(0)
    ys = torch.randint(0, 3, (2, 4), generator=gen)
    xs = torch.randint(0, 4, (2, 4), generator=gen)
    for i in range(2):
        for k in range(4):
            want = x[i, :, ys[i, k] : ys[i, k] + 3, xs[i, k] : xs[i, k] + 3].reshape(-1)
            torch.testing.assert_close(p[i * 4 + k], want)


def test_sliced_wasserstein_of_a_shift_is_its_closed_form() -> None:
    # W1 between a set and the set shifted by v, projected on a unit direction d, is |d.v|; over uniform
    # directions in D dimensions E|d.v| = |v| Gamma(D/2) / (sqrt(pi) Gamma((D+1)/2)).
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(500, 6, generator=gen, dtype=torch.float64)
    v = torch.tensor([3.0, -1.0, 0.5, 0.0, 2.0, 1.0], dtype=torch.float64)
    got = sliced_wasserstein(a, a + v, directions=128, repeats=50, gen=gen)
    want = float(v.norm()) * math.gamma(3) / (math.sqrt(math.pi) * math.gamma(3.5))
    assert got == pytest.approx(want, rel=0.03)  # Monte Carlo error of 6,400 directions: about 0.6%
    assert sliced_wasserstein(a, a, 16, 1, gen) == 0.0


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="one shape"):
        swd(torch.zeros(4, 3, 16, 16), torch.zeros(4, 1, 16, 16))
    with pytest.raises(ValueError, match="one shape"):
        sliced_wasserstein(torch.zeros(3, 2), torch.zeros(4, 2), 4, 1, torch.Generator())


def _quantise(x: torch.Tensor, levels: int) -> torch.Tensor:
    return ((x + 1) / 2 * (levels - 1)).round() / (levels - 1) * 2 - 1


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    k = torch.exp(-(torch.arange(-3, 4.0) ** 2) / (2 * sigma**2))
    k = torch.outer(k / k.sum(), k / k.sum())[None, None].expand(x.shape[1], 1, 7, 7)
    return F.conv2d(F.pad(x, (3, 3, 3, 3), mode="replicate"), k, groups=x.shape[1])


def _ladders(score, data: torch.Tensor, gen: torch.Generator) -> dict[str, list[float]]:  # type: ignore[no-untyped-def]
    """Scores of the data under a milder and a stronger pixel noise, colour quantisation and blur."""
    return {
        "noise": [score((data + sd * torch.randn(data.shape, generator=gen)).clamp(-1, 1)) for sd in (0.1, 0.2)],
        "quantised": [score(_quantise(data, n)) for n in (4, 3)],
        "blurred": [score(_blur(data, sd)) for sd in (1.0, 2.0)],
    }


def test_corrupted_data_scores_worse_in_order_of_severity() -> None:
    """Data against data scores best; pixel noise, colour quantisation and blur each score clearly worse,
    and worse the stronger they are. Measured on 16x16 shapes, 200 images against 200 (metric seeds 0-3):
    data 40.0-43.1; noise sigma 0.1 / 0.2: 48.9-52.9 / 82.4-90.5; 4 / 3 colour levels: 75.0-77.2 /
    117.8-120.2; blur sigma 1 / 2: 254-257 / 385-392. The margins asserted are a third of the smallest gap."""
    cfg = config.load(None, {"data.size": 16, "data.n_train": 400})
    source = get_source("shapes")(cfg)
    data = source.train_set().images[:200]
    ref = source.reference([100, 100]).images
    gen = torch.Generator().manual_seed(1)
    s = SWDSettings(seed=0)

    def score(x: torch.Tensor) -> float:
        return float(swd(x, ref, s)["swd"])  # type: ignore[arg-type]

    own = score(data)
    for name, (mild, strong) in _ladders(score, data, gen).items():
        assert mild > 1.05 * own, f"{name}: {mild:.1f} not clearly above the data's {own:.1f}"
        assert strong > 1.2 * mild, f"{name}: stronger corruption {strong:.1f} not above the milder {mild:.1f}"


def test_patch_frechet_distance_rises_with_every_corruption() -> None:
    """The patch Fréchet distance on the same ladders. Measured (metric seeds 0-3): data 1.16-1.24; noise 0.1 /
    0.2: 2.23-2.31 / 7.57-7.64; 4 / 3 colour levels: 3.71-3.78 / 9.00-9.10; blur 1 / 2: 32.0-32.2 / 59.6-59.8.
    The asserted margins are well inside those gaps."""
    cfg = config.load(None, {"data.size": 16, "data.n_train": 400})
    source = get_source("shapes")(cfg)
    data = source.train_set().images[:200]
    ref = source.reference([100, 100]).images
    gen = torch.Generator().manual_seed(1)

    def score(x: torch.Tensor) -> float:
        return float(patch_frechet(x, ref, SWDSettings(seed=0))["patch_fd"])

    own = score(data)
    for name, (mild, strong) in _ladders(score, data, gen).items():
        assert mild > 1.5 * own, f"{name}: {mild:.2f} not clearly above the data's {own:.2f}"
        assert strong > 1.5 * mild, f"{name}: stronger corruption {strong:.2f} not above the milder {mild:.2f}"
    assert patch_frechet(ref, ref)["patch_fd"] < 0.5 * own  # the same images (other patch positions)


def test_the_evaluation_reports_pixel_quality_beside_the_data() -> None:
    from taxodiff.evaluate.images import pixel_quality

    cfg = config.load(None, {"data.size": 16, "data.n_train": 400})
    source = get_source("shapes")(cfg)
    train = source.train_set()
    ref = source.reference([60, 60])
    z2 = torch.tensor([0] * 60 + [1] * 60).numpy()
    noisy = (ref.images + 0.2 * torch.randn(ref.images.shape, generator=torch.Generator().manual_seed(0))).clamp(-1, 1)
    out = pixel_quality(noisy, z2, ref, train)
    assert out["n_images"] == 120 and out["sizes"] == [16, 8]
    assert out["swd"] > 1.5 * out["swd_data"]
