"""Networks for the non-convex experiment (MLP on MNIST-1D) and the paper-scale run
(ResNet-18 on CIFAR, built from `transformers`' ResNet with the usual CIFAR stem)."""

from __future__ import annotations

from torch import nn

from papers.fwa.config import TrainConfig


class MLP(nn.Module):
    def __init__(self, in_features: int, hidden: int, classes: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(in_features, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, classes),
        )

    def forward(self, x):
        return self.net(x)


class CifarResNet(nn.Module):
    """ResNet-18 (basic blocks 2-2-2-2) from `transformers`, with a 3×3 stride-1 stem and no
    max-pool, the standard change for 32×32 inputs (an ImageNet stem would cut to 8×8)."""

    def __init__(self, classes: int, width: int = 64) -> None:
        super().__init__()
        from transformers import ResNetConfig, ResNetForImageClassification
        from transformers.models.resnet.modeling_resnet import ResNetConvLayer

        config = ResNetConfig(num_channels=3, embedding_size=width, depths=[2, 2, 2, 2],
                              hidden_sizes=[width, 2 * width, 4 * width, 8 * width],
                              layer_type="basic", num_labels=classes)
        self.net = ResNetForImageClassification(config)
        self.net.resnet.embedder.embedder = ResNetConvLayer(3, width, kernel_size=3, stride=1)
        self.net.resnet.embedder.pooler = nn.Identity()

    def forward(self, x):
        return self.net(pixel_values=x).logits


def build_model(cfg: TrainConfig, input_shape: tuple[int, ...], classes: int) -> nn.Module:
    if cfg.model == "mlp":
        features = 1
        for size in input_shape:
            features *= size
        return MLP(features, cfg.hidden, classes)
    return CifarResNet(classes, cfg.resnet_width)
