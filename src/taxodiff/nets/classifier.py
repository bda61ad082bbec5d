"""A small CNN that tells the leaf class of an image: the domain classifier used to score generations."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn


@dataclass(frozen=True)
class ClassifierConfig:
    in_channels: int = 3
    num_classes: int = 4
    width: int = 32
    feature_dim: int = 128  # size of the penultimate features (used by feature-space metrics)
    style_dim: int = 0  # > 0: a second head regresses the style z0 from the same features


class ConvClassifier(nn.Module):
    def __init__(self, cfg: ClassifierConfig) -> None:
        super().__init__()
        self.cfg = cfg
        w = cfg.width

        def block(c_in: int, c_out: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(c_in, c_out, 3, padding=1),
                nn.GroupNorm(8, c_out),
                nn.SiLU(),
                nn.Conv2d(c_out, c_out, 3, padding=1),
                nn.GroupNorm(8, c_out),
                nn.SiLU(),
                nn.MaxPool2d(2),
            )

        self.body = nn.Sequential(block(cfg.in_channels, w), block(w, 2 * w), block(2 * w, 2 * w))
        self.features = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * w, cfg.feature_dim), nn.SiLU()
        )
        self.head = nn.Linear(cfg.feature_dim, cfg.num_classes)
        self.style_head = nn.Linear(cfg.feature_dim, cfg.style_dim) if cfg.style_dim > 0 else None

    def embed(self, x: Tensor) -> Tensor:
        """(B, C, H, W) in [-1, 1] -> (B, feature_dim)."""
        return self.features(self.body(x))

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> logits (B, num_classes)."""
        return self.head(self.embed(x))

    def style(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> predicted style targets (B, style_dim)."""
        if self.style_head is None:
            raise ValueError("this classifier has no style head (style_dim = 0)")
        return self.style_head(self.embed(x))
