"""Branch discovery on a Gaussian mixture whose class tree is known: topology and merge order exact."""

from __future__ import annotations

import pytest
import torch

from taxodiff.families.branched.discovery import DiscoverySettings, alpha_bar, discover, single_linkage


def _mixture(seed: int) -> list[torch.Tensor]:
    """Four classes in 256-D: {0, 1} differ by 2 x 0.5, {2, 3} by 2 x 1.5, the two pairs by 2 x 3. At 200 pairs in
    256-D a mean cosine has a standard error of about 1/sqrt(256 x 200) = 0.004, under the rule's eps = 0.005."""
    g = torch.Generator().manual_seed(seed)
    e = torch.eye(256)
    means = [3 * e[0] + 0.5 * e[1], 3 * e[0] - 0.5 * e[1], -3 * e[0] + 1.5 * e[2], -3 * e[0] - 1.5 * e[2]]
    return [m + 0.3 * torch.randn(200, 256, generator=g) for m in means]


@pytest.mark.parametrize("seed", range(5))
def test_discovery_recovers_the_tree_and_the_merge_order(seed: int) -> None:
    tree = discover(_mixture(seed), DiscoverySettings(times=200, seed=seed))
    assert [(a, b) for a, b, _ in tree.merges] == [((0,), (1,)), ((2,), (3,)), ((0, 1), (2, 3))]
    times = [t for _, _, t in tree.merges]
    assert 0 < times[0] < times[1] < times[2] < 1
    assert len(tree.branches) == 2 * 4 - 1
    ends = {b.classes: b for b in tree.branches}
    for child, parent in (((0,), (0, 1)), ((1,), (0, 1)), ((2,), (2, 3)), ((3,), (2, 3)), ((0, 1), (0, 1, 2, 3))):
        assert ends[child].t_end == ends[parent].t_start  # branches tile [0, 1] along every path
    assert ends[(0, 1, 2, 3)].t_end == 1.0 and ends[(0,)].t_start == 0.0
    from taxodiff.families.branched.discovery_runs import never_crossed

    assert never_crossed(tree, list("abcd"), 0.005) == []  # every pair of the mixture crosses before t = 1


def test_scale_moves_every_branch_point_toward_noise_and_keeps_the_tree() -> None:
    """scale s maps each branch point t to 1 - s (1 - t): the same merges in the same order, leaves still at 0."""
    data = _mixture(0)
    plain = discover(data, DiscoverySettings(times=200, seed=0))
    moved = discover(data, DiscoverySettings(times=200, seed=0, scale=0.5))
    assert [(a, b) for a, b, _ in moved.merges] == [(a, b) for a, b, _ in plain.merges]
    for (_, _, t), (_, _, u) in zip(plain.merges, moved.merges, strict=True):
        assert u == pytest.approx(1 - 0.5 * (1 - t))
    starts = {b.classes: b.t_start for b in moved.branches}
    assert all(starts[(c,)] == 0.0 for c in range(4))
    with pytest.raises(ValueError, match="scale = 1.5 is invalid"):
        discover(data, DiscoverySettings(scale=1.5))


def test_single_linkage_by_hand() -> None:
    crossing = torch.tensor([[0, 0.2, 0.9, 0.9], [0.2, 0, 0.7, 0.8], [0.9, 0.7, 0, 0.5], [0.9, 0.8, 0.5, 0]]).numpy()
    merges, branches = single_linkage(crossing)
    assert merges == [((0,), (1,), pytest.approx(0.2)), ((2,), (3,), 0.5), ((0, 1), (2, 3), pytest.approx(0.7))]
    assert len(branches) == 7


def test_vp_schedule_and_bad_input() -> None:
    s = DiscoverySettings()
    import numpy as np

    assert alpha_bar(np.array(0.0), s) == 1.0
    assert alpha_bar(np.array(1.0), s) == pytest.approx(np.exp(-(0.1 + 19.9 / 2)))
    with pytest.raises(ValueError, match="at least 2 classes"):
        discover([torch.zeros(5, 3)])


def test_cli_writes_the_tree_and_the_figure(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    import json

    from taxodiff.cli import main
    from tests.conftest import TINY

    out = tmp_path / "br"
    args = ["branches", "--config", str(TINY), "--times", "40", "--per-class", "8", "--seeds", "2", "--out", str(out)]
    assert main(args) == 0
    r = json.loads((out / "tree.json").read_text())
    assert len(r["tree"]["branches"]) == 2 * 4 - 1 and len(r["true_tree_recovered"]) == 2
    assert sorted(r["tree"]["classes"]) == ["car", "cat", "dog", "truck"]
    assert isinstance(r["never_crossed"], list)
    assert (out / "figures" / "branches.png").stat().st_size > 0
    assert main(["branches", "--times", "1", "--out", str(tmp_path / "x")]) == 2
    assert "--times 1 is invalid" in capsys.readouterr().err and not (tmp_path / "x").exists()
    assert main(["branches", "--scale", "1.5", "--out", str(tmp_path / "y")]) == 2
    assert "--scale 1.5 is invalid" in capsys.readouterr().err and not (tmp_path / "y").exists()
