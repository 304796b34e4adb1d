"""Tencent (DCASE 2023 Task 1) CP-ResNet students ``cp-resnet-s1`` … ``cp-resnet-s4``.

Source: the Tencent DCASE 2023 Task 1 technical report as summarised in issue 11 — a
receptive-field-regularised CP-ResNet (Koutini et al., DCASE 2019 / TASLP 2021), width 32, stage
channels 32/64/92, input (1, 256, 44) (32 kHz, 256 mels, 2048-sample window); s2/s3 with the first
stage-3 convolution 1×1, s4 also the first stage-2 convolution 1×1. Report figures (int8 bytes =
parameters; MACs): s1 127.6 K / 28.8 M, s2 and s3 79.9 K / 21.4 M, s4 63.5 K / 19.5 M.

Choices where the report is open (each fitted to the report's counts, torchinfo, input 256×44):

* Blocks per stage (2, 1, 2), built from the teacher's :class:`~.cp_resnet.BasicBlock` (two conv
  + BN, identity or 1×1 conv + BN shortcut, ReLU after the sum). CP-ResNet's (4, 1, 2) depth with
  the 3×3 / 1×1 pattern below gives s1 = 128,852 parameters, over the 128,000-byte Task 1 limit the
  report's 127.6 K respects, so stage 1 keeps two blocks; stage 3 keeps CP-ResNet's two.
* Kernel sizes: the receptive-field budget is spent on the *first* convolution of each stage
  (3×3); every other block convolution is 1×1 (as CP-ResNet's ``k2s[0] = 1`` and its small-ρ
  schedules do). This is the reading under which "first stage-3 conv 1×1" (s2) and "also the first
  stage-2 conv 1×1" (s4) are the only differences: the report's parameter gaps (s1 − s2 = 47.7 K ≈
  8·64·92 = 47,104; s2 − s4 = 16.4 K = 8·32·64 = 16,384) are exactly those two 3×3 → 1×1 changes.
* Stem: 7×7 stride-2 conv (padding 3) + BN + ReLU + 2×2 max pooling — the ResNet stem — and one
  more 2×2 max pooling after the first stage-1 block. Without early pooling a single 32-channel 3×3
  conv at the stem's 128×22 resolution already costs 26 M MACs, so the report's 19.5–28.8 M force
  it; the 7×7 kernel (CP-ResNet uses 5×5) is what brings all four MAC counts within 3 % (with 5×5 no
  (stage-1 depth, pooling) choice keeps s1 under 128,000 parameters and all counts within 3 %).
  Resolutions: stem 128×22 → 64×11 (stage-1 block 1) → 32×5 (stage-1 block 2, stages 2 and 3).
* Head: CP-ResNet's 1×1 conv to the classes + BN + global average pooling (no linear layer).
* s3 has the architecture of s2: the report lists the same bytes and MACs, so it differs only in
  training (we take it to be the knowledge-distilled twin of s2, teacher ensemble → student KD);
  here it is a separate registry name with identical structure.

Reached (torchinfo, (1, 1, 256, 44)) vs report: s1 125,268 params / 29.52 M MACs (−1.8 % / +2.5 %),
s2 = s3 78,164 / 21.98 M (−2.2 % / +2.7 %), s4 61,780 / 19.36 M (−2.7 % / −0.7 %). The report's
own MAC gaps are not mutually consistent (its s2 − s4 gap of 1.9 M implies ~116 positions for the
stage-2 conv, its s1 − s2 gap of 7.4 M ~157 for the stage-3 conv, yet stage 3 cannot run at a higher
resolution than stage 2; here both run at 32×5 = 160), so the fit splits the difference.

Input ``(batch, 1, 256, 44)`` log-mel (preset ``tencent-32k``); output logits ``(batch, n_classes)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from . import register_model
from .cp_resnet import BasicBlock


@dataclass
class TencentCPResNetConfig:
    """Hyper-parameters of the Tencent CP-ResNet students.

    channels: output channels of stages 1, 2, 3.
    blocks_per_stage: BasicBlocks per stage.
    stage_first_kernels: kernel size (3 or 1) of the first convolution of each stage; all other
        block convolutions are 1×1. s1 (3, 3, 3), s2/s3 (3, 3, 1), s4 (3, 1, 1).
    pool_after: (stage, block) indices after which a 2×2 max pooling follows (besides the stem's).
    """

    n_classes: int = 10
    in_channels: int = 1
    channels: tuple[int, ...] = (32, 64, 92)
    blocks_per_stage: tuple[int, ...] = (2, 1, 2)
    stage_first_kernels: tuple[int, ...] = (3, 3, 3)
    stem_kernel: int = 7
    pool_after: tuple[tuple[int, int], ...] = ((0, 0),)

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("channels", "blocks_per_stage", "stage_first_kernels"):
            d[k] = list(d[k])
        d["pool_after"] = [list(p) for p in self.pool_after]
        return d


class TencentCPResNet(nn.Module):
    """CP-ResNet student of the Tencent DCASE 2023 submission (see the module docstring).

    Input ``(batch, in_channels, n_mels, frames)``, e.g. (B, 1, 256, 44); output ``(batch, n_classes)``.
    """

    def __init__(self, config: TencentCPResNetConfig | None = None, **overrides):
        super().__init__()
        cfg = config or TencentCPResNetConfig()
        if overrides:
            cfg = TencentCPResNetConfig(**{**cfg.to_dict(), **overrides})
        cfg.channels = tuple(cfg.channels)
        cfg.blocks_per_stage = tuple(cfg.blocks_per_stage)
        cfg.stage_first_kernels = tuple(cfg.stage_first_kernels)
        cfg.pool_after = tuple(tuple(p) for p in cfg.pool_after)
        if not (len(cfg.channels) == len(cfg.blocks_per_stage) == len(cfg.stage_first_kernels)):
            raise ValueError("channels, blocks_per_stage and stage_first_kernels need one entry per stage")
        self.config = cfg
        c0 = cfg.channels[0]
        self.stem = nn.Sequential(
            nn.Conv2d(cfg.in_channels, c0, cfg.stem_kernel, stride=2, padding=cfg.stem_kernel // 2, bias=False),
            nn.BatchNorm2d(c0), nn.ReLU(), nn.MaxPool2d(2))
        stages = []
        in_ch = c0
        for s, (out_ch, n, k_first) in enumerate(zip(cfg.channels, cfg.blocks_per_stage, cfg.stage_first_kernels)):
            mods: list[nn.Module] = []
            for b in range(n):
                mods.append(BasicBlock(in_ch, out_ch, k_first if b == 0 else 1, 1))
                in_ch = out_ch
                if (s, b) in cfg.pool_after:
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


_SRC = "Tencent DCASE 2023 Task 1: receptive-field-regularised CP-ResNet student"
register_model("cp-resnet-s1", TencentCPResNet, {"stage_first_kernels": (3, 3, 3)}, frontend="tencent-32k",
               source=_SRC + " s1 (127.6 K params, 28.8 M MACs)")
register_model("cp-resnet-s2", TencentCPResNet, {"stage_first_kernels": (3, 3, 1)}, frontend="tencent-32k",
               source=_SRC + " s2: first stage-3 conv 1x1 (79.9 K, 21.4 M)")
register_model("cp-resnet-s3", TencentCPResNet, {"stage_first_kernels": (3, 3, 1)}, frontend="tencent-32k",
               source=_SRC + " s3: architecture of s2, differs in training (KD) (79.9 K, 21.4 M)")
register_model("cp-resnet-s4", TencentCPResNet, {"stage_first_kernels": (3, 1, 1)}, frontend="tencent-32k",
               source=_SRC + " s4: first stage-2 and stage-3 convs 1x1 (63.5 K, 19.5 M)")
