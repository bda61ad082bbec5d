"""diffusers' ``UNet2DModel`` behind taxodiff's image-network interface: eps(x_t, t, cond, drop).

The condition vector (a one-hot category or a z1 embedding) goes through the same condition embedding as
taxodiff's U-Net (with its learned null condition for classifier-free guidance) and enters diffusers' network
as a class embedding of type "identity", summed with its time embedding. The layout follows the config: one
resolution per width, ``blocks_per_level`` layers, no attention, at full resolution (diffusers' network has
no patching). Any image size works: the input is padded to a multiple of 2**(levels - 1), the output cropped.
Used as ``net.arch: diffusers`` to compare networks at equal training time (benchmarks/bench_networks.py).
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F

from taxodiff.nets.embedding import CondEmbedding
from taxodiff.nets.unet import UNetConfig


class DiffusersUNet(nn.Module):
    def __init__(self, cfg: UNetConfig) -> None:
        from diffusers import UNet2DModel

        super().__init__()
        self.cfg = cfg
        levels = len(cfg.channels)
        time_dim = cfg.channels[0] * 4  # diffusers' time-embedding width
        self.embed = CondEmbedding(cfg.cond_dim, time_dim, time=False)
        self.multiple = 2 ** (levels - 1)
        self.net = UNet2DModel(
            in_channels=cfg.in_channels,
            out_channels=cfg.out_channels or cfg.in_channels,
            block_out_channels=tuple(cfg.channels),
            layers_per_block=cfg.blocks_per_level,
            down_block_types=("DownBlock2D",) * levels,
            up_block_types=("UpBlock2D",) * levels,
            norm_num_groups=cfg.groups,
            class_embed_type="identity",
        )

    def forward(self, x: Tensor, t: Tensor, cond: Tensor, drop: Tensor | None = None) -> Tensor:
        height, width = x.shape[-2:]
        pad_h, pad_w = -height % self.multiple, -width % self.multiple
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        c = self.embed.condition(cond, drop).to(x.dtype)
        out = self.net(x, t, class_labels=c).sample
        return out[..., :height, :width]
