import pytest
import torch

from taxodiff.nets.classifier import ClassifierConfig, ConvClassifier
from taxodiff.nets.mlp import MLPConfig, MLPDenoiser
from taxodiff.nets.unet import UNet, UNetConfig


@pytest.mark.parametrize("patch, size", [(1, 16), (2, 32), (2, 64)])
def test_unet_shapes(patch, size):
    net = UNet(UNetConfig(channels=(8, 16, 16), emb_dim=16, cond_dim=3, patch=patch))
    x = torch.randn(2, 3, size, size)
    out = net(x, torch.tensor([0, 999]), torch.randn(2, 3))
    assert out.shape == x.shape


@pytest.mark.parametrize("size", [8, 28, 30])
def test_unet_takes_any_size_and_separate_output_channels(size):
    """28x28 does not divide by patch * 2**(levels-1) = 8: the input is padded and the output cropped."""
    net = UNet(UNetConfig(in_channels=2, out_channels=1, channels=(8, 16, 16), emb_dim=16, cond_dim=3, patch=2))
    out = net(torch.randn(2, 2, size, size), torch.tensor([0, 999]), torch.randn(2, 3))
    assert out.shape == (2, 1, size, size)


@pytest.mark.parametrize("size", [16, 28])
def test_diffusers_unet_behind_the_same_interface(size):
    from taxodiff.nets.diffusers_unet import DiffusersUNet

    torch.manual_seed(0)
    net = DiffusersUNet(UNetConfig(in_channels=1, channels=(8, 16), cond_dim=3, patch=1))
    for p in net.parameters():  # diffusers zero-initialises nothing, but make the condition's effect visible
        torch.nn.init.normal_(p, std=0.1)
    x, t = torch.randn(2, 1, size, size), torch.tensor([3, 500])
    a = net(x, t, torch.eye(3)[:2])
    assert a.shape == x.shape
    assert not torch.allclose(a, net(x, t, torch.eye(3)[1:]))
    drop = torch.tensor([True, True])
    assert torch.allclose(net(x, t, torch.randn(2, 3), drop), net(x, t, torch.randn(2, 3), drop))


def test_condition_matters_and_null_is_learned():
    torch.manual_seed(0)
    net = UNet(UNetConfig(channels=(8, 16), emb_dim=16, cond_dim=2, patch=1))
    for p in net.parameters():  # zero-initialised output layers would hide the condition at init
        torch.nn.init.normal_(p, std=0.1)
    x, t = torch.randn(2, 3, 8, 8), torch.tensor([10, 10])
    a = net(x, t, torch.tensor([[1.0, 0.0], [1.0, 0.0]]))
    b = net(x, t, torch.tensor([[0.0, 1.0], [0.0, 1.0]]))
    assert not torch.allclose(a, b)
    drop = torch.tensor([True, True])
    assert torch.allclose(net(x, t, torch.randn(2, 2), drop), net(x, t, torch.randn(2, 2), drop))


def test_mlp_and_classifier_shapes():
    assert MLPDenoiser(MLPConfig(dim=4, cond_dim=3))(torch.randn(5, 4), torch.arange(5), torch.randn(5, 3)).shape == (
        5,
        4,
    )
    clf = ConvClassifier(ClassifierConfig(num_classes=7, width=8, feature_dim=12))
    x = torch.randn(3, 3, 32, 32)
    assert clf(x).shape == (3, 7) and clf.embed(x).shape == (3, 12)


def test_diffusers_network_trains_and_refuses_patching(tmp_path):
    from taxodiff import api, config
    from taxodiff.errors import TaxodiffError
    from tests.conftest import TINY

    with pytest.raises(TaxodiffError, match="net.patch = 2 .* allowed is patch 1"):
        config.load(TINY, {"net.arch": "diffusers", "net.patch": 2})
    cfg = config.load(TINY, {"net.arch": "diffusers", "model": "flat", "device": "cpu"})
    api.train(cfg, tmp_path / "run", progress=False)
    path, samples = api.sample(tmp_path / "run", progress=False)
    assert samples["images"].shape[1:] == (3, 16, 16) and path.exists()
