"""Transformer teachers built from LOCAL weights: PaSST (``hear21passt``) and AST (``transformers``).

>>> teacher = build_model("passt", n_classes=10, checkpoint="teachers/passt-s-kd-ap.486.pt")
>>> teacher = build_model("ast", n_classes=10, checkpoint="teachers/ast-finetuned-audioset/")  # save_pretrained dir

Nothing is ever downloaded: the model code comes from the installed packages (``pip install .[teachers]``
plus ``pip install --no-deps hear21passt==0.0.26``, as scripts/setup.sh does; imported only when a
teacher is built, so this module imports without them) and the weights from ``checkpoint``, a local path:

- a FILE: a state dict as ``.pt`` / ``.pth`` / ``.ckpt`` / ``.bin`` (torch) or ``.safetensors``. The
  tensors may sit under ``state_dict`` (Lightning) or ``model`` (DeiT-style) and carry any key prefix
  (``net.``, ``model.net.`` of an asc-edge checkpoint, ``module.`` …): the prefix that makes the most
  keys match the network is stripped.
- a DIRECTORY: for ``ast`` a ``save_pretrained`` folder (``config.json`` + weights), read with
  ``ASTForAudioClassification.from_pretrained(dir, local_files_only=True)`` and ``HF_HUB_OFFLINE=1``;
  otherwise (both models) a folder holding exactly one weights file, read as above.
- ``None``: random initialisation (what the tests use, with small sizes).

A checkpoint whose classification head has another number of classes (AudioSet's 527) gets a fresh
head of ``n_classes`` outputs (``model.head_replaced`` is then True); fine-tuning it on the scenes is
the normal ``asc-edge train --model passt`` run. Everything else must match: a missing file, an
unreadable one or one whose tensors do not fit the network is one :class:`CheckpointError` naming the
path. Missing packages are one :class:`ConfigError` with the install hint.

Both wrappers take asc-edge's input ``(batch, 1, n_mels, frames)`` log-mel and return ``(batch,
n_classes)`` logits. They first scale the features as the original frontends do,
``(x - input_mean) / input_std``: PaSST ``(x + 4.5) / 5`` (hear21passt ``AugmentMelSTFT``), AST
``(x + 4.2677393) / (2 * 4.5689974)`` (AudioSet statistics of transformers' ``ASTFeatureExtractor``).
The log-mel itself comes from the presets ``passt-32k`` / ``ast-16k`` (asc_edge.features.config), which
say where they differ from the originals (pre-emphasis, window, Kaldi filterbank; AST's Kaldi fbank).

Size keywords (same names for both): ``embed_dim``, ``depth``, ``num_heads``, ``mlp_ratio``,
``patch_size``, ``fstride``, ``tstride``, ``n_mels`` (mel bins the network takes) and ``max_frames``
(PaSST: ``input_tdim``, the longest input, time position embeddings are cut to shorter inputs; AST:
``max_length``, inputs are zero-padded/cropped to it, as its feature extractor does). Defaults are the
published base models (768 / 12 / 12, patch 16, stride 10): PaSST-S (``passt_s_*``, distilled, 998
frames) and AST (``MIT/ast-finetuned-audioset-10-10-0.4593`` minus its 1024-frame length: 101 frames,
one 1-s clip of ``ast-16k``; an AudioSet checkpoint's 12 x 101 position grid is centre-cropped to the
12 x 9 of 101 frames, as the original AST code does for shorter inputs, or interpolated when longer).
For an AST directory its ``config.json`` fixes the architecture; only ``max_frames`` and ``n_classes``
are taken from the keywords.
"""

from __future__ import annotations

import contextlib
import os
import sys
import types
import warnings
from collections import Counter
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from asc_edge.errors import CheckpointError, ConfigError

from . import register_model

__all__ = ["PaSSTTeacher", "ASTTeacher", "build_passt", "build_ast", "read_state_dict"]

INSTALL_HINT = ("pip install .[teachers] && pip install --no-deps hear21passt==0.0.26  (what scripts/setup.sh "
                "does; hear21passt without its declared timm/torchaudio, see pyproject.toml)")
WEIGHT_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".safetensors")
_CKPT_HINT = ("pass a local state-dict file (.pt/.pth/.ckpt/.bin/.safetensors) or a folder holding one "
              "(for ast also a save_pretrained folder); nothing is downloaded")

# hear21passt AugmentMelSTFT: melspec = (log(mel + 1e-5) + 4.5) / 5
PASST_INPUT_MEAN, PASST_INPUT_STD = -4.5, 5.0
# transformers ASTFeatureExtractor (AudioSet): (fbank - mean) / (2 * std)
AST_INPUT_MEAN, AST_INPUT_STD = -4.2677393, 2 * 4.5689974


# --------------------------------------------------------------------------- optional packages

@contextlib.contextmanager
def _offline_env():
    """HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE = 1 for the duration (restored afterwards)."""
    names = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    old = {n: os.environ.get(n) for n in names}
    os.environ.update({n: "1" for n in names})
    try:
        yield
    finally:
        for n, v in old.items():
            if v is None:
                os.environ.pop(n, None)
            else:
                os.environ[n] = v


def _no_download(*args, **kwargs):
    raise CheckpointError("hear21passt tried to download pretrained weights; asc-edge never downloads",
                          hint="pass checkpoint=<local weights file> to build_model('passt', ...)")


@contextlib.contextmanager
def _timm_stub():
    """hear21passt's ``vit_helpers`` imports timm only for ``download_cached_file`` (pretrained
    downloads). timm itself imports torchvision, which this project does not install (no CPU build
    matches the pinned torch), so while hear21passt is imported a stand-in ``timm`` whose
    ``download_cached_file`` raises is put in ``sys.modules`` and taken out again afterwards."""
    if "timm" in sys.modules:  # a real timm is already loaded: use it
        yield
        return
    names = ("timm", "timm.models", "timm.models._hub", "timm.models.hub")
    stubs = {n: types.ModuleType(n) for n in names}
    for n in ("timm.models._hub", "timm.models.hub"):
        stubs[n].download_cached_file = _no_download
    stubs["timm"].models = stubs["timm.models"]
    sys.modules.update(stubs)
    try:
        yield
    finally:
        for n, m in stubs.items():
            if sys.modules.get(n) is m:
                del sys.modules[n]


def _import_passt():
    """The ``hear21passt.models.passt`` module (ConfigError when hear21passt is not installed)."""
    mod = sys.modules.get("hear21passt.models.passt")
    if mod is None:
        try:
            with _timm_stub():
                import hear21passt.models.passt as mod
        except ImportError as exc:
            raise ConfigError(f"model 'passt' needs the hear21passt package ({exc})", hint=INSTALL_HINT) from None
    mod.first_RUN = False  # else its forward prints every shape on the first call
    return mod


def _import_transformers():
    """(ASTConfig, ASTForAudioClassification) (ConfigError when transformers is not installed)."""
    try:
        from transformers import ASTConfig, ASTForAudioClassification
    except ImportError as exc:
        raise ConfigError(f"model 'ast' needs the transformers package ({exc})", hint=INSTALL_HINT) from None
    return ASTConfig, ASTForAudioClassification


# --------------------------------------------------------------------------- reading weights

def _weights_file(path: Path) -> Path:
    """``path`` itself, or the one weights file in the folder ``path``."""
    if path.is_file():
        return path
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.name.lower().endswith(WEIGHT_SUFFIXES))
        if len(files) == 1:
            return files[0]
        found = ", ".join(p.name for p in files) or "none"
        raise CheckpointError(f"{path}: expected exactly one weights file ({'/'.join(WEIGHT_SUFFIXES)}) in the "
                              f"folder, found {found}", hint=_CKPT_HINT)
    raise CheckpointError(f"{path}: checkpoint not found", hint=_CKPT_HINT)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a local weights file (or of the single weights file in a folder), on the CPU.

    Unwraps ``state_dict`` (Lightning), ``model`` or ``module`` entries; keeps the tensors only.

    Raises:
        CheckpointError: missing path, not exactly one weights file in a folder, unreadable file, no tensors.
    """
    file = _weights_file(Path(path))
    try:
        if file.name.lower().endswith(".safetensors"):
            try:
                from safetensors.torch import load_file
            except ImportError:
                raise ConfigError(f"{file}: reading .safetensors needs the safetensors package",
                                  hint=INSTALL_HINT) from None
            obj = load_file(str(file), device="cpu")
        else:
            try:
                obj = torch.load(file, map_location="cpu", weights_only=True)
            except Exception:  # e.g. a Lightning checkpoint holding pickled hyper-parameters
                obj = torch.load(file, map_location="cpu", weights_only=False)
    except ConfigError:
        raise
    except Exception as exc:  # torch / safetensors raise many types for a truncated or foreign file
        raise CheckpointError(f"{file}: cannot read weights ({type(exc).__name__}: {exc})",
                              hint="the file is truncated or not a PyTorch / safetensors state dict") from None
    for _ in range(3):
        if isinstance(obj, dict):
            inner = next((obj[k] for k in ("state_dict", "model", "module") if isinstance(obj.get(k), dict)), None)
            if inner is not None:
                obj = inner
                continue
        break
    if not isinstance(obj, dict):
        raise CheckpointError(f"{file}: holds a {type(obj).__name__}, not a state dict", hint=_CKPT_HINT)
    sd = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    if not sd:
        raise CheckpointError(f"{file}: no tensors in the state dict", hint=_CKPT_HINT)
    return sd


def _strip_prefix(sd: dict[str, torch.Tensor], target: set[str]) -> dict[str, torch.Tensor]:
    """``sd`` with the key prefix removed that makes the most keys equal to keys of ``target``."""
    votes: Counter[str] = Counter()
    for k in sd:
        if k in target:
            votes[""] += 1
        parts = k.split(".")
        for i in range(1, len(parts)):
            if ".".join(parts[i:]) in target:
                votes[".".join(parts[:i]) + "."] += 1
    if not votes:
        return sd
    prefix = max(votes, key=lambda p: (votes[p], -len(p)))
    return {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}


def _load_weights(net: nn.Module, sd: dict[str, torch.Tensor], path: Path, head_keys: tuple[str, ...],
                  what: str) -> bool:
    """Load ``sd`` into ``net``: head tensors of another shape are dropped (a fresh head stays), everything
    else must match exactly. Returns True when the head was replaced."""
    own = net.state_dict()
    sd = _strip_prefix(sd, set(own))
    dropped = [k for k in head_keys if k in sd and k in own and sd[k].shape != own[k].shape]
    for k in dropped:
        del sd[k]
    for k, v in sd.items():
        if k in own and v.shape != own[k].shape:
            raise CheckpointError(f"{path}: {k!r} has shape {tuple(v.shape)}, the {what} network expects "
                                  f"{tuple(own[k].shape)}",
                                  hint="build the teacher with the checkpoint's sizes (embed_dim, depth, num_heads, "
                                       "patch_size, fstride/tstride, n_mels, max_frames)")
    missing = [k for k in own if k not in sd and k not in dropped]
    unexpected = [k for k in sd if k not in own]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (first {missing[0]!r})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (first {unexpected[0]!r})")
        raise CheckpointError(f"{path}: weights do not fit the {what} network: {', '.join(parts)}",
                              hint=f"pass a {what} state dict of the same architecture")
    net.load_state_dict(sd, strict=False)
    return bool(dropped)


def _check_input(x: torch.Tensor, n_mels: int, name: str) -> None:
    if x.ndim != 4 or x.shape[1] != 1 or x.shape[2] != n_mels:
        raise ConfigError(f"{name}: expected input (batch, 1, {n_mels}, frames), got {tuple(x.shape)}",
                          hint=f"use the {name}'s log-mel preset ({'passt-32k' if name == 'passt' else 'ast-16k'})")


# --------------------------------------------------------------------------- PaSST

class PaSSTTeacher(nn.Module):
    """hear21passt's ``PaSST`` behind asc-edge's interface: ``(batch, 1, n_mels, frames)`` log-mel →
    ``(batch, n_classes)`` logits (the first output of PaSST's forward; its embedding is dropped).

    ``net`` is the hear21passt model, so a state dict of this wrapper is PaSST's own under ``net.``.
    """

    def __init__(self, net: nn.Module, n_mels: int, max_frames: int, patch_size: int,
                 input_mean: float = PASST_INPUT_MEAN, input_std: float = PASST_INPUT_STD):
        super().__init__()
        self.net = net
        self.n_mels, self.max_frames, self.patch_size = n_mels, max_frames, patch_size
        self.input_mean, self.input_std = float(input_mean), float(input_std)
        self.head_replaced = False
        self.checkpoint_path: str | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.n_mels, "passt")
        if not self.patch_size <= x.shape[-1] <= self.max_frames:
            raise ConfigError(f"passt: {x.shape[-1]} frames; this PaSST takes {self.patch_size} to "
                              f"{self.max_frames} frames", hint="build it with a larger max_frames or crop the input")
        x = (x - self.input_mean) / self.input_std
        with warnings.catch_warnings():  # PatchEmbed warns on every input shorter than input_tdim
            warnings.filterwarnings("ignore", message="Input image size", category=UserWarning)
            out = self.net(x)
        return out[0] if isinstance(out, tuple) else out


def build_passt(n_classes: int = 10, checkpoint: str | Path | None = None, *, embed_dim: int = 768, depth: int = 12,
                num_heads: int = 12, mlp_ratio: float = 4.0, patch_size: int = 16, fstride: int = 10,
                tstride: int = 10, n_mels: int = 128, max_frames: int = 998, distilled: bool = True,
                s_patchout_t: int = 0, s_patchout_f: int = 0, u_patchout: int = 0, drop_rate: float = 0.0,
                drop_path_rate: float = 0.0, input_mean: float = PASST_INPUT_MEAN,
                input_std: float = PASST_INPUT_STD) -> PaSSTTeacher:
    """PaSST (Koutini et al., Interspeech 2022) from hear21passt's model code, built directly (not
    through ``get_model``, which prints the model and, with ``pretrained=True``, downloads).

    ``checkpoint``: local weights (see the module docstring) or None for a random initialisation.
    Patchout (``s_patchout_t/f``, ``u_patchout``) acts in training mode only.

    Raises:
        ConfigError: hear21passt not installed. CheckpointError: missing / unreadable / mismatching weights.
    """
    passt = _import_passt()
    net = passt.PaSST(u_patchout=u_patchout, s_patchout_t=s_patchout_t, s_patchout_f=s_patchout_f,
                      img_size=(n_mels, max_frames), patch_size=patch_size, stride=(fstride, tstride), in_chans=1,
                      num_classes=n_classes, embed_dim=embed_dim, depth=depth, num_heads=num_heads,
                      mlp_ratio=mlp_ratio, distilled=distilled, drop_rate=drop_rate, drop_path_rate=drop_path_rate)
    model = PaSSTTeacher(net, n_mels, max_frames, patch_size, input_mean, input_std)
    if checkpoint is not None:
        path = Path(checkpoint)
        sd = read_state_dict(path)
        sd = _strip_prefix(sd, set(net.state_dict()))
        t = sd.get("time_new_pos_embed")
        want = net.time_new_pos_embed.shape[-1]
        if t is not None and t.ndim == 4 and t.shape[-1] > want:  # trained on longer inputs: keep the first
            sd["time_new_pos_embed"] = t[..., :want].contiguous()   # positions, as PaSST's forward does
        model.head_replaced = _load_weights(net, sd, path, ("head.1.weight", "head.1.bias", "head_dist.weight",
                                                            "head_dist.bias"), "passt")
        model.checkpoint_path = str(path)
    return model


# --------------------------------------------------------------------------- AST

def _resize_grid(pe: torch.Tensor, old: tuple[int, int], new: tuple[int, int]) -> torch.Tensor:
    """AST position embeddings ``(1, 2 + f*t, D)`` from an ``old`` (f, t) patch grid to ``new``: each axis
    centre-cropped when shorter, bilinearly interpolated when longer (the original AST's adaptation)."""
    tokens, grid = pe[:, :2], pe[:, 2:]
    d = grid.shape[-1]
    g = grid.reshape(1, old[0], old[1], d).permute(0, 3, 1, 2)  # (1, D, f, t)
    for axis, (o, n) in enumerate(zip(old, new)):
        if n < o:
            start = o // 2 - n // 2
            g = g.narrow(2 + axis, start, n)
        elif n > o:
            size = list(g.shape[2:])
            size[axis] = n
            g = F.interpolate(g, size=tuple(size), mode="bilinear", align_corners=False)
    g = g.permute(0, 2, 3, 1).reshape(1, new[0] * new[1], d)
    return torch.cat([tokens, g], dim=1).contiguous()


def _ast_grid(cfg) -> tuple[int, int]:
    return ((cfg.num_mel_bins - cfg.patch_size) // cfg.frequency_stride + 1,
            (cfg.max_length - cfg.patch_size) // cfg.time_stride + 1)


class ASTTeacher(nn.Module):
    """transformers' ``ASTForAudioClassification`` behind asc-edge's interface: ``(batch, 1, n_mels,
    frames)`` log-mel → ``(batch, n_classes)`` logits. Frames are zero-padded (before the scaling, as the
    feature extractor pads its fbank) or cropped to ``max_frames``; AST itself takes ``(batch, frames,
    mel bins)``."""

    def __init__(self, net: nn.Module, input_mean: float = AST_INPUT_MEAN, input_std: float = AST_INPUT_STD):
        super().__init__()
        self.net = net
        self.n_mels, self.max_frames = net.config.num_mel_bins, net.config.max_length
        self.input_mean, self.input_std = float(input_mean), float(input_std)
        self.head_replaced = False
        self.checkpoint_path: str | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.n_mels, "ast")
        t = x.shape[-1]
        if t < self.max_frames:
            x = F.pad(x, (0, self.max_frames - t))
        elif t > self.max_frames:
            x = x[..., :self.max_frames]
        x = (x - self.input_mean) / self.input_std
        return self.net(input_values=x[:, 0].transpose(1, 2)).logits


def build_ast(n_classes: int = 10, checkpoint: str | Path | None = None, *, embed_dim: int = 768, depth: int = 12,
              num_heads: int = 12, mlp_ratio: float = 4.0, patch_size: int = 16, fstride: int = 10,
              tstride: int = 10, n_mels: int = 128, max_frames: int = 101, dropout: float = 0.0,
              input_mean: float = AST_INPUT_MEAN, input_std: float = AST_INPUT_STD) -> ASTTeacher:
    """AST (Gong et al., Interspeech 2021) from transformers' model code.

    ``checkpoint``: local weights (see the module docstring) or None for a random initialisation. A
    ``save_pretrained`` folder is read with ``from_pretrained(dir, local_files_only=True)`` under
    ``HF_HUB_OFFLINE=1``; its config.json sets the architecture.

    Raises:
        ConfigError: transformers not installed. CheckpointError: missing / unreadable / mismatching weights.
    """
    ASTConfig, ASTForAudioClassification = _import_transformers()
    arch = dict(hidden_size=embed_dim, num_hidden_layers=depth, num_attention_heads=num_heads,
                intermediate_size=int(embed_dim * mlp_ratio), patch_size=patch_size, frequency_stride=fstride,
                time_stride=tstride, num_mel_bins=n_mels, hidden_dropout_prob=dropout,
                attention_probs_dropout_prob=dropout)
    path = Path(checkpoint) if checkpoint is not None else None
    sd = None
    if path is not None and path.is_dir() and (path / "config.json").is_file():
        try:
            with _offline_env():
                pre = ASTForAudioClassification.from_pretrained(str(path), local_files_only=True)
        except Exception as exc:  # OSError / ValueError / safetensors errors for a broken folder
            raise CheckpointError(f"{path}: cannot load the AST folder ({type(exc).__name__}: {exc})",
                                  hint="pass a folder written by ASTForAudioClassification.save_pretrained "
                                       "(config.json + model.safetensors)") from None
        pc = pre.config
        arch = {k: getattr(pc, k) for k in arch}
        sd, old_grid = pre.state_dict(), _ast_grid(pc)
        del pre
    elif path is not None:
        sd, old_grid = read_state_dict(path), None
    cfg = ASTConfig(**arch, max_length=max_frames, num_labels=n_classes)
    net = ASTForAudioClassification(cfg)
    model = ASTTeacher(net, input_mean, input_std)
    if sd is not None:
        sd = _strip_prefix(sd, set(net.state_dict()))
        key = "audio_spectrogram_transformer.embeddings.position_embeddings"
        pe, own = sd.get(key), net.state_dict()[key]
        if pe is not None and pe.ndim == 3 and pe.shape[-1] == own.shape[-1] and pe.shape[1] != own.shape[1]:
            new_grid = _ast_grid(cfg)
            if old_grid is None:  # a bare state dict: same mel patches, time length from the tensor
                f = new_grid[0]
                t, rem = divmod(pe.shape[1] - 2, f)
                old_grid = (f, t) if rem == 0 and t > 0 else None
            if old_grid is not None and old_grid[0] * old_grid[1] + 2 == pe.shape[1]:
                sd[key] = _resize_grid(pe, old_grid, new_grid)
        model.head_replaced = _load_weights(net, sd, path, ("classifier.dense.weight", "classifier.dense.bias"),
                                            "ast")
        model.checkpoint_path = str(path)
    return model


_PASST_DEFAULTS = dict(checkpoint=None, embed_dim=768, depth=12, num_heads=12, mlp_ratio=4.0, patch_size=16,
                       fstride=10, tstride=10, n_mels=128, max_frames=998, distilled=True, s_patchout_t=0,
                       s_patchout_f=0, u_patchout=0, drop_rate=0.0, drop_path_rate=0.0,
                       input_mean=PASST_INPUT_MEAN, input_std=PASST_INPUT_STD)
_AST_DEFAULTS = dict(checkpoint=None, embed_dim=768, depth=12, num_heads=12, mlp_ratio=4.0, patch_size=16,
                     fstride=10, tstride=10, n_mels=128, max_frames=101, dropout=0.0,
                     input_mean=AST_INPUT_MEAN, input_std=AST_INPUT_STD)

register_model("passt", build_passt, _PASST_DEFAULTS, role="teacher", frontend="passt-32k",
               source="PaSST-S (Koutini et al., Interspeech 2022) via hear21passt; local weights only")
register_model("ast", build_ast, _AST_DEFAULTS, role="teacher", frontend="ast-16k",
               source="AST (Gong et al., Interspeech 2021) via transformers; local weights only")
