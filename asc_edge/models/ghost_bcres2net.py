"""Ghost-BC-Res2Net with Snake: the KT student of DCASE 2024 Task 1 (report Table 1).

Written from the issue's description of the KT report plus the reference architectures it combines
(no code copied):

* **BC-ResNet** (Kim et al., "Broadcasted residual learning", Interspeech 2021; its ASC variant in
  the QTI DCASE 2021 report): stem conv, stages of broadcast-residual blocks — a frequency-wise
  depthwise conv ``f2`` on the 2-D map, the frequency average of ``f2`` → temporal depthwise 1-D
  conv → BN → Swish → 1×1 conv → dropout (``f1``, one value per channel and frame), output
  ``ReLU(x + f2 + f1)`` with ``f1`` broadcast over frequency; a *transition* block (first of a
  stage, channels change) first maps ``in → out`` with a 1×1 conv + BN + ReLU and has no identity.
  The ASC variant: max-pool between stages, ResNorm after stage 3, global average pooling.
* **Res2Net** (Gao et al., TPAMI 2019): the block's channels are split into ``scale`` groups, the
  first passes unchanged, group ``i ≥ 2`` gets ``K_i(x_i + y_{i-1})`` — here ``K_i`` is the
  frequency-wise depthwise conv, which is what makes BC-ResNet a *BC-Res2Net*.
* **GhostNetV2** (Tang et al., NeurIPS 2022): every 1×1 conv of the block is a Ghost module — a
  1×1 *primary* conv to ``ceil(out / ratio)`` channels + BN (+ ReLU) and a *cheap* depthwise conv
  on those + BN (+ ReLU), concatenated. The first block of each stage gates its Ghost module with
  DFC attention: average-pool ×2 → 1×1 conv + BN → horizontal (1×k) depthwise + BN → vertical
  (k×1) depthwise + BN → sigmoid → nearest up-sampling to the gated map's size → multiply.
* **Snake** (Ziyin et al., NeurIPS 2020): ``x + sin²(αx)/β`` with learnable per-channel α, β, where
  BC-ResNet uses Swish (after the temporal depthwise conv); ``ghost-bcres2net`` keeps Swish (the
  report's ablation row).

Open details and the choices made. The counts constrain them (LARGE 85,824 params / 28.56 M MACs,
SMALL 63,992 / 26.48 M, torchinfo at 1×1×288×65); the search that fixed them is listed after:

* ``base_channels C = 32`` (stages 32/48/64/80 LARGE, 32/48/64/64 SMALL): with the structure below
  C = 32 hits the MACs of both sizes; C = 40 is 29–44 % over in MACs, C = 36 (scale 3) 9–22 % over.
* Blocks per stage (2, 2, 2, 3) LARGE / (2, 2, 2, 2) SMALL: BC-ResNet-ASC (QTI 2021) uses two
  blocks in stages 1–3 and the report gives 3 (LARGE) / 2 (SMALL) for stage 4.
* Stem: 5×5 conv, stride 2, ``2C`` channels, BN, ReLU (BC-ResNet's 5×5 stem; the report: stride 2):
  288×65 → 144×33.
* Max-pool 2×2 after stages 1 and 2 (as in BC-ResNet-ASC, which pools twice): 144×33 → 72×16 →
  36×8, stages 3 and 4 at 36×8. The report's LARGE − SMALL difference (2.08 M MACs for 21.8 K
  params, ≈ 95 MACs per parameter) puts stage 4 at ≥ 288 positions; a third pool (stage 4 at
  18×4) gives only 0.2–0.6 M MACs of difference.
* Every block opens with a Ghost module ``in → out`` on the 2-D map (GhostNetV2: every bottleneck
  starts with one; it replaces BC-ResNet's transition 1×1 conv and is the block's only full-map
  pointwise conv); DFC attention gates it on the first block of each stage only (report).
  Without it in the non-transition blocks the MACs of LARGE fall to −10 %.
* Ghost ``ratio = 2`` and cheap 3×3 depthwise (GhostNet's defaults).
* Res2Net ``scale = 4`` (Res2Net's default; divides every width), the first split the identity as
  in Res2Net, so ``scale - 1`` frequency-wise depthwise convs (3×1, BC-ResNet) per block. Plain
  BatchNorm after them instead of SubSpectralNorm: 144 / 72 / 36 bins are not all divisible by
  BC-ResNet's 5 sub-bands and SSN's reshape would not fold into the int8 graph.
* Temporal branch as BC-ResNet: depthwise 1×3 + BN → Snake / Swish → 1×1 conv + BN (a full conv:
  on the 1×T map it costs ≈ T·C² MACs, so a Ghost module there saves almost no MACs; with a Ghost
  module there both sizes fall to −25 % params) → dropout 0.1.
* Squeeze-excitation on ``f2`` with reduction 8 (GhostNetV2's bottleneck has an SE module; GhostNet
  uses ratio 4): the counts need ≈ 0.23·C'² more parameters per block that cost almost no MACs
  (without SE: −8.9 % / −8.3 % params at +0.2 % / +1.3 % MACs; ratio 4: +11.7 % / +10.6 %;
  ratio 8: +1.7 % / +1.5 %). The report's text may name it differently; its cost is an SE's.
* DFC attention: down-sampling ×2 by average pooling, kernel 5 (GhostNetV2's defaults), computed
  from the block input, gating the first Ghost module's output (GhostNetV2 bottleneck).
* BN after every conv (GhostNetV2 / BC-ResNet); block output ``ReLU([x +] f2 + f1)``.
* Export: the Ghost module and the DFC gate are built per Res2Net group (the same weights,
  parameters and MACs as one module split by output channel), so the graph never slices channels:
  onnx2tf put a channel ``Slice`` of the Ghost output (N, 32, 144, 33) on the wrong axis (strided
  slice output (1, 8, 33, 32) instead of (1, 144, 33, 8); the next depthwise conv then failed with
  "Eager execution of tf.constant with unsupported shape"), and ``torch.split`` is a Flex SplitV.
  The DFC up-sampling uses constant scale factors (``size=`` exports a Shape → Concat → Resize
  whose output shape onnx2tf cannot infer).
* Head: global average pooling + linear (bias), as in the report.

Counts reached (``tests/test_models_kt.py``): LARGE 87,280 params (+1.7 %) / 28,639,156 MACs
(+0.3 %), SMALL 64,934 (+1.5 %) / 26,840,622 (+1.4 %); ablation (Swish) 86,224 / 28,639,156.

Search (torchinfo; L = LARGE, S = SMALL, params / MACs vs the report):
  Ghost only in transitions, Ghost temporal pointwise, 3 pools: C=32 L −42 % / −30 %, C=40 L −15 % /
  −2 %, S −7 % / +5 %; 2 pools, C=40: L −15 % / +4 %, S −7 % / +10 %.
  Ghost in every block, Ghost temporal pointwise: 3 pools C=32 L −28 % / −10 %; 2 pools C=32 L −28 %
  / −0.4 %, S −25 % / +1 %; C=40 2 pools +7 % / +43 %.
  + temporal 1×1 as a full conv, 2 pools, C=32: L −8.9 % / +0.2 %, S −8.3 % / +1.3 %.
  + SE ratio 8 on f2: L +1.7 % / +0.3 %, S +1.5 % / +1.4 % (chosen).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import register_model


@dataclass
class GhostBCRes2NetConfig:
    """Settings of :class:`GhostBCRes2Net`; defaults = LARGE (``ghost-bcres2net-snake-large``)."""

    n_classes: int = 10
    in_channels: int = 1
    base_channels: int = 32                          # C: chosen from the report's counts (module docstring)
    stem_kernel: int = 5                             # BC-ResNet stem 5×5
    stem_stride: int = 2                             # KT report: stem 2C, stride 2
    widths: tuple = (1.0, 1.5, 2.0, 2.5)             # KT report: stages C, 1.5C, 2C, 2.5C (SMALL: 2C last)
    n_blocks: tuple = (2, 2, 2, 3)                   # BC-ResNet-ASC 2/2/2; KT report: 3 (LARGE) / 2 (SMALL) in stage 4
    pool_after: tuple = (1, 2)                       # max-pool 2×2 after stages 1, 2 (BC-ResNet-ASC; counts)
    resnorm_after: int = 3                           # KT report: ResNorm after stage 3
    res2_scale: int = 4                              # Res2Net default scale
    freq_kernel: int = 3                             # BC-ResNet frequency-wise depthwise 3×1
    time_kernel: int = 3                             # BC-ResNet temporal depthwise 1×3
    ghost_ratio: int = 2                             # GhostNet default
    ghost_cheap_kernel: int = 3                      # GhostNet cheap 3×3 depthwise
    dfc_kernel: int = 5                              # GhostNetV2 DFC kernel
    dfc_down: int = 2                                # GhostNetV2 DFC down-sampling
    activation: str = "snake"                        # "snake" (KT) or "swish" (BC-ResNet; ablation)
    dropout: float = 0.1                             # BC-ResNet
    ghost_every_block: bool = True                   # GhostNetV2: every block opens with a Ghost module
    se_reduction: int = 8                            # squeeze-excitation on f2 (GhostNetV2 bottleneck's SE); 0 = none
    temporal_pointwise: str = "conv"                 # 1×1 after the temporal conv: "conv" (BC-ResNet) or "ghost"

    def to_dict(self) -> dict:
        return asdict(self)

    def channels(self) -> list[int]:
        """Output channels of the stem and of each stage."""
        c = self.base_channels
        return [2 * c] + [int(round(w * c)) for w in self.widths]


class Snake(nn.Module):
    """``x + sin²(αx) / β`` with learnable per-channel α, β (Ziyin et al. 2020; KT report)."""

    def __init__(self, channels: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.beta = nn.Parameter(torch.ones(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.sin(self.alpha * x) ** 2 / self.beta


class ResNorm(nn.Module):
    """Residual normalisation ``λ·x + InstanceNorm_freq(x)`` (Kim et al., QTI DCASE 2021): mean and
    variance over frequency, per channel and frame; λ per channel."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.lam = nn.Parameter(torch.full((1, channels, 1, 1), 0.1))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = x.mean(dim=2, keepdim=True)
        v = ((x - m) ** 2).mean(dim=2, keepdim=True)
        return self.lam * x + (x - m) / torch.sqrt(v + self.eps)


def _conv_bn(in_c: int, out_c: int, kernel, groups: int = 1, stride=1) -> nn.Sequential:
    kernel = (kernel, kernel) if isinstance(kernel, int) else tuple(kernel)
    pad = (kernel[0] // 2, kernel[1] // 2)
    return nn.Sequential(nn.Conv2d(in_c, out_c, kernel, stride=stride, padding=pad, groups=groups, bias=False),
                         nn.BatchNorm2d(out_c))


def _nearest_scales(in_hw, out_hw) -> tuple:
    """Nearest-neighbour scale factors taking ``in_hw`` to exactly ``out_hw`` (Python floats).

    Constant scales, not ``size=``: torch exports ``size=`` as Shape → Concat → Resize, whose output
    shape onnx2tf cannot infer. 16 → 33 frames (stage 1) is the scale 33/16 = 2.0625, for which
    PyTorch, ONNX (asymmetric, floor) and TFLite all take source index ``floor(i · 16/33)``."""
    scales = []
    for n_in, n_out in zip(in_hw, out_hw):
        n_in, n_out = int(n_in), int(n_out)
        s = n_out / n_in
        while math.floor(n_in * s) < n_out:
            s = math.nextafter(s, math.inf)
        scales.append(s)
    return tuple(scales)


class GhostModule(nn.Module):
    """GhostNet module: 1×1 primary conv ``in → out/ratio`` + BN (+ReLU), cheap depthwise conv on those
    (``(ratio-1)·`` channels) + BN (+ReLU), concatenated ``[primary, cheap]``.

    ``n_groups`` > 1 builds the same module as ``n_groups / ratio`` primary convs of ``out /
    n_groups`` channels each, with one cheap depthwise conv per primary group — the same weights
    (a 1×1 conv split by output channels, a depthwise conv split by channels), parameters and
    MACs — so that :meth:`groups` returns the Res2Net channel groups ``[p_1, …, c_1, …]`` without
    slicing a tensor: onnx2tf lays out a channel ``Slice`` of this model's maps along the wrong
    axis (the int8 conversion then fails in the next conv), and ``torch.split`` becomes a Flex
    SplitV. ``forward`` concatenates the groups: ``(N, in, H, W) → (N, out, H, W)``."""

    def __init__(self, in_c: int, out_c: int, ratio: int = 2, cheap_kernel=3, relu: bool = True,
                 n_groups: int = 1):
        super().__init__()
        if out_c % ratio or (n_groups > 1 and (out_c % n_groups or n_groups % ratio)):
            raise ValueError(f"Ghost module: {out_c} channels, ratio {ratio}, {n_groups} groups do not divide")
        n_primary = max(1, n_groups // ratio)
        w = out_c // ratio // n_primary
        self.primary = nn.ModuleList(_conv_bn(in_c, w, 1) for _ in range(n_primary))
        self.cheap = nn.ModuleList(_conv_bn(w, w * (ratio - 1), cheap_kernel, groups=w) for _ in range(n_primary))
        self.ratio, self.relu = ratio, relu

    def groups(self, x: torch.Tensor) -> list[torch.Tensor]:
        act = F.relu if self.relu else (lambda t: t)
        a = [act(conv(x)) for conv in self.primary]
        b = [act(conv(t)) for conv, t in zip(self.cheap, a)]
        if self.ratio > 2 and len(b) > 1:  # keep the channel order of the unsplit module
            raise NotImplementedError("grouped Ghost module with ratio > 2")
        return a + b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = self.groups(x)
        return g[0] if len(g) == 1 else torch.cat(g, dim=1)


class DFCAttention(nn.Module):
    """GhostNetV2's decoupled fully-connected attention: average-pool ``down``× → 1×1 conv + BN →
    (1×k) depthwise + BN → (k×1) depthwise + BN → sigmoid → nearest up-sampling to ``size``.

    Built per channel group like :class:`GhostModule` (``n_groups`` 1×1 convs of ``out / n_groups``
    channels, depthwise convs per group: the same parameters and MACs as one module), so that
    :meth:`groups` returns one gate per Res2Net group without slicing.
    Shape: (N, in, H, W) → ``n_groups`` × (N, out / n_groups, *size)."""

    def __init__(self, in_c: int, out_c: int, kernel: int = 5, down: int = 2, n_groups: int = 1):
        super().__init__()
        self.down = down
        w = out_c // n_groups
        self.proj = nn.ModuleList(_conv_bn(in_c, w, 1) for _ in range(n_groups))
        self.horizontal = nn.ModuleList(_conv_bn(w, w, (1, kernel), groups=w) for _ in range(n_groups))
        self.vertical = nn.ModuleList(_conv_bn(w, w, (kernel, 1), groups=w) for _ in range(n_groups))

    def groups(self, x: torch.Tensor, size) -> list[torch.Tensor]:
        p = F.avg_pool2d(x, self.down, self.down)
        gates = [torch.sigmoid(v(h(c(p)))) for c, h, v in zip(self.proj, self.horizontal, self.vertical)]
        scales = _nearest_scales(gates[0].shape[-2:], size)
        return [F.interpolate(g, scale_factor=scales, mode="nearest") for g in gates]

    def forward(self, x: torch.Tensor, size) -> torch.Tensor:
        g = self.groups(x, size)
        return g[0] if len(g) == 1 else torch.cat(g, dim=1)


class BCRes2Block(nn.Module):
    """Broadcast-residual Res2Net block built from Ghost modules (module docstring).

    ``transition`` (first block of a stage): Ghost ``in → out`` (+ReLU), gated by DFC attention,
    and no identity path. Frequency part ``f2``: Res2Net groups with frequency-wise depthwise
    convs (3×1) + BN; temporal part ``f1``: mean over frequency → depthwise (1×3) + BN → Snake or
    Swish → Ghost ``out → out`` → dropout. Output ``ReLU([x +] f2 + f1)``, ``f1`` broadcast over
    frequency. The Res2Net groups come straight from the grouped Ghost module and DFC gates
    (:class:`GhostModule`), so the int8 graph has no channel slice and no Flex SplitV.

    Shape: (N, in, F, T) → (N, out, F, T)."""

    def __init__(self, in_c: int, out_c: int, cfg: GhostBCRes2NetConfig, transition: bool):
        super().__init__()
        self.transition = transition
        self.has_ghost_in = transition or cfg.ghost_every_block
        if self.has_ghost_in:
            self.ghost_in = GhostModule(in_c, out_c, cfg.ghost_ratio, cfg.ghost_cheap_kernel, relu=True,
                                        n_groups=cfg.res2_scale)
        if transition:
            self.dfc = DFCAttention(in_c, out_c, cfg.dfc_kernel, cfg.dfc_down, n_groups=cfg.res2_scale)
        s = cfg.res2_scale
        if out_c % s:
            raise ValueError(f"channels {out_c} not divisible by res2_scale {s}")
        self.width = out_c // s
        self.freq = nn.ModuleList(_conv_bn(self.width, self.width, (cfg.freq_kernel, 1), groups=self.width)
                                  for _ in range(s - 1))
        r = cfg.se_reduction
        self.se = nn.Sequential(nn.Conv2d(out_c, out_c // r, 1), nn.ReLU(), nn.Conv2d(out_c // r, out_c, 1),
                                nn.Sigmoid()) if r else None
        self.temporal = _conv_bn(out_c, out_c, (1, cfg.time_kernel), groups=out_c)
        self.act = Snake(out_c) if cfg.activation == "snake" else nn.SiLU()
        if cfg.temporal_pointwise == "ghost":
            self.ghost_out = GhostModule(out_c, out_c, cfg.ghost_ratio, (1, cfg.ghost_cheap_kernel), relu=False)
        else:
            self.ghost_out = _conv_bn(out_c, out_c, 1)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.width
        if self.has_ghost_in:
            hs = self.ghost_in.groups(x)                      # the Res2Net groups, no channel slices
            if self.transition:
                hs = [h * g for h, g in zip(hs, self.dfc.groups(x, hs[0].shape[-2:]))]
        else:
            hs = [x[:, i * w:(i + 1) * w] for i in range(len(self.freq) + 1)]
        ys = [hs[0]]
        for i, conv in enumerate(self.freq, start=1):
            ys.append(conv(hs[i] if i == 1 else hs[i] + ys[-1]))
        f2 = torch.cat(ys, dim=1)
        if self.se is not None:
            f2 = f2 * self.se(f2.mean(dim=(2, 3), keepdim=True))
        f1 = self.drop(self.ghost_out(self.act(self.temporal(f2.mean(dim=2, keepdim=True)))))
        y = f2 + f1 if self.transition else x + f2 + f1
        return F.relu(y)


class GhostBCRes2Net(nn.Module):
    """Input ``(batch, 1, 288, 65)`` log-mel (``kt-288``) → ``(batch, n_classes)`` logits."""

    def __init__(self, config: GhostBCRes2NetConfig | None = None, **overrides):
        super().__init__()
        cfg = config or GhostBCRes2NetConfig()
        if overrides:
            cfg = GhostBCRes2NetConfig(**{**cfg.to_dict(), **overrides})
        cfg.widths, cfg.n_blocks, cfg.pool_after = tuple(cfg.widths), tuple(cfg.n_blocks), tuple(cfg.pool_after)
        if cfg.activation not in ("snake", "swish"):
            raise ValueError(f"activation must be 'snake' or 'swish', not {cfg.activation!r}")
        self.config = cfg
        ch = cfg.channels()
        self.stem = nn.Sequential(*_conv_bn(cfg.in_channels, ch[0], cfg.stem_kernel, stride=cfg.stem_stride),
                                  nn.ReLU())
        self.stages = nn.ModuleList()
        for i, n in enumerate(cfg.n_blocks):
            blocks = [BCRes2Block(ch[i] if j == 0 else ch[i + 1], ch[i + 1], cfg, transition=j == 0)
                      for j in range(n)]
            self.stages.append(nn.Sequential(*blocks))
        self.resnorm = ResNorm(ch[cfg.resnorm_after]) if cfg.resnorm_after else None
        self.head = nn.Linear(ch[-1], cfg.n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for i, stage in enumerate(self.stages, start=1):
            x = stage(x)
            if i == self.config.resnorm_after:
                x = self.resnorm(x)
            if i in self.config.pool_after:
                x = F.max_pool2d(x, 2)
        return self.head(x.mean(dim=(2, 3)))


_SOURCE = ("KT, DCASE 2024 Task 1 (report Table 1): Ghost-BC-Res2Net with Snake, 288 mels; "
           "choices for open details in asc_edge/models/ghost_bcres2net.py")
register_model("ghost-bcres2net-snake-large", GhostBCRes2Net, {}, frontend="kt-288",
               source=_SOURCE + " — LARGE: stages C/1.5C/2C/2.5C, 3 blocks in stage 4")
register_model("ghost-bcres2net-snake-small", GhostBCRes2Net,
               {"widths": (1.0, 1.5, 2.0, 2.0), "n_blocks": (2, 2, 2, 2)}, frontend="kt-288",
               source=_SOURCE + " — SMALL: stage 4 at 2C with 2 blocks")
register_model("ghost-bcres2net", GhostBCRes2Net, {"activation": "swish"}, frontend="kt-288",
               source=_SOURCE + " — ablation: Swish instead of Snake (LARGE layout)")
