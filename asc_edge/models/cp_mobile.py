"""CP-Mobile: the DCASE 2024 Task 1 baseline student.

Written from the description in Schmid et al., "Efficient CNNs via Passt-based knowledge
distillation / CP-Mobile" (DCASE 2023 technical report) and the DCASE 2024 Task 1 baseline
description: a receptive-field-regularised CNN made of inverted-residual (MobileNetV2-style)
blocks — 1×1 expansion, 3×3 depthwise (the only spatial kernel), 1×1 projection — with an
average-pooled shortcut where a block with a shortcut is strided, and a 1×1 conv + BatchNorm +
global average pooling classifier.

Baseline configuration: base channels 32, channel multiplier 1.8, expansion rate 2.1,
blocks (3, 2, 1), strides b2=(1, 1), b3=(1, 2), b4=(2, 1). For input (1, 1, 256, 65) torchinfo
reports 61,148 parameters and 29,419,156 MACs (the baseline's published figures, asserted in
``tests/test_models.py``).

Module names follow the baseline's layout (``in_c.0.0.weight``, ``stages.s1.b1.block.0.0.weight``,
``feed_forward.0.weight``) so that checkpoints of the baseline family load strictly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from . import register_model


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round ``value`` to the nearest multiple of ``divisor``, never going below 90 % of it.

    The MobileNet channel-rounding rule (Sandler et al., MobileNetV2, 2018), used by the baseline
    for every channel count.
    """
    new_value = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:
        new_value += divisor
    return new_value


class ConvNormAct(nn.Sequential):
    """Conv2d (no bias) → BatchNorm2d → optional ReLU; 'same' padding ``(k - 1) // 2``.

    Shape: (batch, in_ch, H, W) → (batch, out_ch, ceil(H / stride_h), ceil(W / stride_w)).
    Children are named ``0`` (conv), ``1`` (norm), ``2`` (activation), as in the baseline.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3, stride=1, groups: int = 1,
                 activation: bool = True):
        layers: list[nn.Module] = [
            nn.Conv2d(in_ch, out_ch, kernel_size, stride=stride, padding=(kernel_size - 1) // 2,
                      groups=groups, bias=False),
            nn.BatchNorm2d(out_ch),
        ]
        if activation:
            layers.append(nn.ReLU(inplace=False))
        super().__init__(*layers)


class CPMobileBlock(nn.Module):
    """Inverted-residual block: 1×1 expand → ReLU → 3×3 depthwise (stride) → ReLU → 1×1 project,
    plus a shortcut when ``in_ch == out_ch`` (identity, or 3×3 average pooling with padding 1 and
    the block's stride when strided), then ReLU after the sum.

    Shape: (batch, in_ch, H, W) → (batch, out_ch, ceil(H / s_h), ceil(W / s_w)).
    """

    def __init__(self, in_ch: int, out_ch: int, expansion_rate: float, stride=(1, 1)):
        super().__init__()
        stride = tuple(stride) if isinstance(stride, (tuple, list)) else (stride, stride)
        exp_ch = make_divisible(in_ch * expansion_rate, 8)
        self.block = nn.Sequential(
            ConvNormAct(in_ch, exp_ch, kernel_size=1),
            ConvNormAct(exp_ch, exp_ch, kernel_size=3, stride=stride, groups=exp_ch),
            ConvNormAct(exp_ch, out_ch, kernel_size=1, activation=False),
        )
        self.use_shortcut = in_ch == out_ch
        if self.use_shortcut and stride != (1, 1):
            self.shortcut = nn.Sequential(nn.AvgPool2d(kernel_size=3, stride=stride, padding=1))
        else:
            self.shortcut = nn.Sequential()
        self.after_block_activation = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        if self.use_shortcut:
            y = y + self.shortcut(x)
        return self.after_block_activation(y)


@dataclass
class CPMobileConfig:
    """Hyper-parameters of CP-Mobile; defaults are the DCASE 2024 Task 1 baseline."""

    n_classes: int = 10
    in_channels: int = 1
    base_channels: int = 32          # DCASE 2024 baseline
    channels_multiplier: float = 1.8  # DCASE 2024 baseline
    expansion_rate: float = 2.1       # DCASE 2024 baseline
    n_blocks: tuple[int, ...] = (3, 2, 1)
    strides: dict[str, tuple[int, int]] = field(
        default_factory=lambda: {"b2": (1, 1), "b3": (1, 2), "b4": (2, 1)})

    def channels_per_stage(self) -> list[int]:
        """[stem output, stage 1 output, stage 2 output, ...] after ``make_divisible``."""
        base = make_divisible(self.base_channels, 8)
        return [base] + [make_divisible(base * self.channels_multiplier ** s, 8)
                         for s in range(len(self.n_blocks))]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["n_blocks"] = list(self.n_blocks)
        d["strides"] = {k: list(v) for k, v in self.strides.items()}
        return d


class CPMobile(nn.Module):
    """CP-Mobile classifier.

    Input: log-mel ``(batch, in_channels, n_mels, frames)``, e.g. (B, 1, 256, 65).
    Output: logits ``(batch, n_classes)``.

    Stem: two 3×3 stride-2 ConvNormAct (in → base/4 → base). Stages of ``CPMobileBlock``; blocks are
    numbered b1, b2, … across stages and take their stride from ``config.strides``. Head: 1×1 conv
    to ``n_classes`` (no bias) → BatchNorm → global average pooling.
    """

    def __init__(self, config: CPMobileConfig | None = None, **overrides):
        super().__init__()
        cfg = config or CPMobileConfig()
        if overrides:
            cfg = CPMobileConfig(**{**cfg.to_dict(), **overrides})
        cfg.n_blocks = tuple(cfg.n_blocks)
        cfg.strides = {k: tuple(v) for k, v in cfg.strides.items()}
        self.config = cfg
        ch = cfg.channels_per_stage()
        self.in_c = nn.Sequential(
            ConvNormAct(cfg.in_channels, ch[0] // 4, kernel_size=3, stride=2),
            ConvNormAct(ch[0] // 4, ch[0], kernel_size=3, stride=2),
        )
        self.stages = nn.Sequential()
        block_id = 0
        for stage_id, n in enumerate(cfg.n_blocks):
            stage = nn.Sequential()
            in_ch = ch[stage_id]
            for _ in range(n):
                block_id += 1
                name = f"b{block_id}"
                stage.add_module(name, CPMobileBlock(in_ch, ch[stage_id + 1], cfg.expansion_rate,
                                                     cfg.strides.get(name, (1, 1))))
                in_ch = ch[stage_id + 1]
            self.stages.add_module(f"s{stage_id + 1}", stage)
        self.feed_forward = nn.Sequential(
            nn.Conv2d(ch[-1], cfg.n_classes, kernel_size=1, bias=False),
            nn.BatchNorm2d(cfg.n_classes),
            nn.AdaptiveAvgPool2d((1, 1)),
        )
        self.apply(_init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.in_c(x))
        return self.feed_forward(x).flatten(1)


def _init_weights(m: nn.Module) -> None:
    """Kaiming-normal (fan_out) convs, unit BatchNorm, small normal linear — the baseline's init."""
    if isinstance(m, nn.Conv2d):
        nn.init.kaiming_normal_(m.weight, mode="fan_out")
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Linear):
        nn.init.normal_(m.weight, 0, 0.01)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


register_model("cp-mobile", CPMobile, {}, source="DCASE 2024 Task 1 baseline (Schmid et al.): 32 base ch., ×1.8, expansion 2.1")
register_model("cp-mobile-24", CPMobile, {"base_channels": 24}, frontend="44k-256",
               source="24-base-channel CP-Mobile (SNTL-NTU DCASE 2024 '24-BCBL', 44.1 kHz input)")
register_model("cp-mobile-itmo", CPMobile, {}, frontend="itmo-16k",
               source="ITMO DCASE 2024: the baseline CP-Mobile on 16 kHz, 128 mels, 128-ms window, 10-ms hop (128×101)")
register_model("cp-mobile-wide", CPMobile, {"base_channels": 64, "channels_multiplier": 2.0, "expansion_rate": 3.0},
               role="teacher", source="wider CP-Mobile teacher (CP-JKU DCASE 2023 used widths up to 128)")
