"""CP-ResNet: the receptive-field-regularised ResNet used as a teacher.

Written from Koutini, Eghbal-zadeh & Widmer, "Receptive-Field-Regularized CNN Variants for
Acoustic Scene Classification" (DCASE 2019) and "Receptive Field Regularization Techniques for
Audio Classification and Tagging with Deep Convolutional Neural Networks" (IEEE/ACM TASLP 2021):
a ResNet of basic blocks whose kernel sizes are chosen by the hyper-parameter ``rho`` so that the
network's receptive field stays bounded — each 3×3 convolution beyond the budget becomes a 1×1.

Here it is the CPU-trainable teacher: ``width`` scales all channel counts. The default (32) gives
143,604 parameters and 126.7 M MACs for a (1, 1, 256, 65) input — 2.3× the student's parameters,
sized so that it trains on a 2-core CPU in minutes; raise ``width`` (e.g. 64–128) on a GPU.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from . import register_model


class BasicBlock(nn.Module):
    """Two ConvNormAct with kernel sizes (k1, k2) plus an identity / 1×1-projected shortcut.

    Shape: (batch, in_ch, H, W) → (batch, out_ch, H, W).
    """

    def __init__(self, in_ch: int, out_ch: int, k1: int, k2: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, k1, padding=k1 // 2, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, k2, padding=k2 // 2, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.shortcut = nn.Sequential()
        if in_ch != out_ch:
            self.shortcut = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch))
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + self.shortcut(x))


@dataclass
class CPResNetConfig:
    """CP-ResNet hyper-parameters (Koutini et al. 2019/2021)."""

    n_classes: int = 10
    in_channels: int = 1
    width: int = 32                      # channels of stage 1; stages 2/3 use 2× and 4×
    rho: int = 7                         # receptive-field budget: larger → more 3×3 kernels
    blocks_per_stage: tuple[int, ...] = (4, 1, 2)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["blocks_per_stage"] = list(self.blocks_per_stage)
        return d


class CPResNet(nn.Module):
    """CP-ResNet classifier.

    Input ``(batch, in_channels, n_mels, frames)``; output logits ``(batch, n_classes)``.

    Stem: 5×5 stride-2 conv + BN + ReLU. Stage 1 (``width`` channels) with 2×2 max pooling after
    its 1st and 2nd block (as in CP-ResNet), stages 2 and 3 at 2× and 4× width. The kernel size of
    the i-th 3×3-capable layer is 3 while i < ``rho``, else 1 — the receptive-field regularisation.
    Head: 1×1 conv to classes + BN + global average pooling.
    """

    def __init__(self, config: CPResNetConfig | None = None, **overrides):
        super().__init__()
        cfg = config or CPResNetConfig()
        if overrides:
            cfg = CPResNetConfig(**{**cfg.to_dict(), **overrides})
        cfg.blocks_per_stage = tuple(cfg.blocks_per_stage)
        self.config = cfg
        self.stem = nn.Sequential(
            nn.Conv2d(cfg.in_channels, cfg.width, 5, stride=2, padding=2, bias=False),
            nn.BatchNorm2d(cfg.width), nn.ReLU())
        layer = 0

        def k() -> int:
            nonlocal layer
            layer += 1
            return 3 if layer <= cfg.rho else 1

        stages = []
        in_ch = cfg.width
        for s, n in enumerate(cfg.blocks_per_stage):
            out_ch = cfg.width * 2 ** s
            mods: list[nn.Module] = []
            for b in range(n):
                mods.append(BasicBlock(in_ch, out_ch, k(), k()))
                in_ch = out_ch
                if s == 0 and b in (0, 1):
                    mods.append(nn.MaxPool2d(2))
            stages.append(nn.Sequential(*mods))
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.Conv2d(in_ch, cfg.n_classes, 1, bias=False),
                                  nn.BatchNorm2d(cfg.n_classes), nn.AdaptiveAvgPool2d((1, 1)))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x))).flatten(1)


register_model("cp-resnet", CPResNet, {}, role="teacher", source="CP-ResNet (Koutini et al., DCASE 2019 / TASLP 2021)")
