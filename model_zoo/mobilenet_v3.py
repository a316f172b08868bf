"""MobileNetV3-small ("Searching for MobileNetV3", Howard et al. 2019) in plain torch.

torchvision cannot be imported on this machine, so the network is written here. Module nesting,
parameter names and shapes follow torchvision's ``mobilenet_v3_small(num_classes=N)`` exactly, so a
checkpoint saved from torchvision loads here with ``load_state_dict(strict=True)`` and vice versa
(tests/unit/test_model_mobilenet_v3.py checks it against tests/data/mobilenet_v3_small_state_dict_keys.json).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

# torchvision's BatchNorm settings for MobileNetV3 (running statistics update slowly: see model_zoo/train.py).
BN_EPS = 0.001
BN_MOMENTUM = 0.01
LAST_CHANNEL = 1024

Activation = Literal["relu", "hardswish"]


@dataclass(frozen=True)
class Bottleneck:
    """One inverted-residual block of the architecture table."""

    in_channels: int
    kernel: int
    expanded_channels: int
    out_channels: int
    squeeze_excite: bool
    activation: Activation
    stride: int


# Table 2 of the paper, the "small" variant, at width multiplier 1.0.
SMALL_BOTTLENECKS: tuple[Bottleneck, ...] = (
    Bottleneck(16, 3, 16, 16, True, "relu", 2),
    Bottleneck(16, 3, 72, 24, False, "relu", 2),
    Bottleneck(24, 3, 88, 24, False, "relu", 1),
    Bottleneck(24, 5, 96, 40, True, "hardswish", 2),
    Bottleneck(40, 5, 240, 40, True, "hardswish", 1),
    Bottleneck(40, 5, 240, 40, True, "hardswish", 1),
    Bottleneck(40, 5, 120, 48, True, "hardswish", 1),
    Bottleneck(48, 5, 144, 48, True, "hardswish", 1),
    Bottleneck(48, 5, 288, 96, True, "hardswish", 2),
    Bottleneck(96, 5, 576, 96, True, "hardswish", 1),
    Bottleneck(96, 5, 576, 96, True, "hardswish", 1),
)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round ``value`` to the nearest multiple of ``divisor``, never dropping more than 10% below it."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def _activation(kind: Activation | None) -> nn.Module:
    if kind is None:
        return nn.Identity()
    return nn.ReLU(inplace=True) if kind == "relu" else nn.Hardswish(inplace=True)


def conv_bn_act(
    in_channels: int,
    out_channels: int,
    kernel: int,
    activation: Activation | None,
    stride: int = 1,
    groups: int = 1,
) -> nn.Sequential:
    """Conv (no bias, "same" padding) -> BatchNorm -> optional activation, indexed as in torchvision."""
    layers: list[nn.Module] = [
        nn.Conv2d(
            in_channels,
            out_channels,
            kernel,
            stride=stride,
            padding=(kernel - 1) // 2,
            groups=groups,
            bias=False,
        ),
        nn.BatchNorm2d(out_channels, eps=BN_EPS, momentum=BN_MOMENTUM),
    ]
    if activation is not None:
        layers.append(_activation(activation))
    return nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    """Channel attention: global mean -> 1x1 conv -> ReLU -> 1x1 conv -> hard sigmoid -> rescale the input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        squeezed = make_divisible(channels // 4, 8)
        self.fc1 = nn.Conv2d(channels, squeezed, 1)
        self.fc2 = nn.Conv2d(squeezed, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = torch.mean(x, dim=(2, 3), keepdim=True)
        scale = self.fc2(torch.relu(self.fc1(scale)))
        return x * nn.functional.hardsigmoid(scale)


class InvertedResidual(nn.Module):
    """Optional 1x1 expansion -> depthwise conv -> optional squeeze-excite -> 1x1 projection (+ skip)."""

    def __init__(self, spec: Bottleneck) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        if spec.expanded_channels != spec.in_channels:
            layers.append(conv_bn_act(spec.in_channels, spec.expanded_channels, 1, spec.activation))
        layers.append(
            conv_bn_act(
                spec.expanded_channels,
                spec.expanded_channels,
                spec.kernel,
                spec.activation,
                stride=spec.stride,
                groups=spec.expanded_channels,
            )
        )
        if spec.squeeze_excite:
            layers.append(SqueezeExcite(spec.expanded_channels))
        layers.append(conv_bn_act(spec.expanded_channels, spec.out_channels, 1, None))
        self.block = nn.Sequential(*layers)
        self.use_skip = spec.stride == 1 and spec.in_channels == spec.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return out + x if self.use_skip else out


class MobileNetV3(nn.Module):
    def __init__(
        self,
        bottlenecks: tuple[Bottleneck, ...],
        last_channel: int,
        num_classes: int,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        stem_channels = bottlenecks[0].in_channels
        tail_in = bottlenecks[-1].out_channels
        tail_out = 6 * tail_in
        self.features = nn.Sequential(
            conv_bn_act(3, stem_channels, 3, "hardswish", stride=2),
            *(InvertedResidual(spec) for spec in bottlenecks),
            conv_bn_act(tail_in, tail_out, 1, "hardswish"),
        )
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Linear(tail_out, last_channel),
            nn.Hardswish(inplace=True),
            nn.Dropout(p=dropout, inplace=True),
            nn.Linear(last_channel, num_classes),
        )
        self._init_weights()

    def _init_weights(self) -> None:
        # Same scheme as torchvision, so training from scratch behaves like it does there.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0.0, 0.01)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def mobilenet_v3_small(num_classes: int, dropout: float = 0.2) -> MobileNetV3:
    """MobileNetV3-small with ``num_classes`` logits; state_dict compatible with torchvision's."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be positive, got {num_classes}")
    return MobileNetV3(SMALL_BOTTLENECKS, make_divisible(LAST_CHANNEL), num_classes, dropout)
