"""The Lightning module: one student (or teacher) network, its losses and its optimiser."""

from __future__ import annotations

import functools
import logging
import math

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from ..augment import (AugmentConfig, augment_batch, logmel_random_fmax, mixup, mixup_loss, pitch_shift,
                       time_stretch)
from ..data.dirs import convolve_dir
from ..distill.focusnet import focusnet_loss
from ..distill.kd import kd_loss
from ..distill.mean_teacher import consistency_loss, consistency_weight, ema_decay_at, ema_update, mse_kd_loss
from ..distill.relational import rkd_loss, rrs_stage
from ..errors import ConfigError
from ..features import FrontendConfig, LogMel
from ..models import build_model

log = logging.getLogger(__name__)


def _kl_over_classes(cfg: dict) -> bool:
    """``kd_kl_average == "classes"``: the KL term averaged over classes too, as the CP-JKU code does."""
    return cfg["kd_kl_average"] == "classes"


class ASCModule(pl.LightningModule):
    """Trains ``model_name`` on log-mel batches, with optional offline knowledge distillation.

    Batches are ``(features (B, 1, n_mels, frames), targets (B,), teacher_logits (B, C), index (B,))``;
    ``teacher_logits`` are cached teacher outputs (or empty (B, 0) without a teacher).

    With ``--features online`` the batches' first element is the waveforms ``(B, samples)`` and the
    log-mel is computed in the step, on the training device (:meth:`_online_features`), in float32
    whatever the precision.

    Training step, in order: waveform augmentations of the clips' *waveforms* with the features
    recomputed by the run's :class:`LogMel` (:meth:`_augment_waveforms`: pitch shift and time stretch,
    AI4EDGE 2023, then the device-impulse-response convolution of a fraction ``augment.dir_p`` of the
    batch, CP-JKU DCASE 2023; with ``augment.fmax_aug_range`` every clip is recomputed with its own
    random mel top edge, PaSST / SNTL-NTU 2024),
    time roll → frequency mask → time mask → Freq-MixStyle (:func:`augment_batch`), mixup, then cross-entropy or
    the ``kd_scheme`` loss (:data:`asc_edge.train.config.KD_SCHEMES`; default Hinton KD
    ``λ·CE + (1−λ)·τ²·KL``, KT report eq. 3) with mixup-mixed teacher logits.

    Optimiser: AdamW, learning rate warmed up linearly for ``warmup_epochs`` then cosine-decayed to 0,
    stepped per batch.

    The network lives in ``self.model`` so the checkpoint's ``state_dict`` uses the ``model.*`` keys
    of the CPJKU DCASE baselines.
    """

    def __init__(self, model_name: str, model_kwargs: dict, labels: list[str], frontend: dict,
                 train: dict):
        super().__init__()
        self.save_hyperparameters()
        self.model = build_model(model_name, n_classes=len(labels), **model_kwargs)
        # ``checkpoint`` (pretrained weights a transformer teacher starts from, ``--model-checkpoint``)
        # is not needed to rebuild the trained network, whose weights the run's own checkpoint holds:
        # left out of the saved hyper-parameters so that a run still loads when that file is gone.
        self.hparams["model_kwargs"] = {k: v for k, v in model_kwargs.items() if k != "checkpoint"}
        self.frontend = FrontendConfig.from_dict(frontend)
        self.augment = AugmentConfig.from_dict(train["augment"])
        self.augment.check_frontend(self.frontend)
        self.train_cfg = train
        self.mel = LogMel(self.frontend)
        # Set by the run driver, never saved: waveforms (N, samples) for the waveform augmentations
        # (DIR, pitch shift, time stretch, random mel top edge) and the DIRs.
        self.waveforms: np.ndarray | None = None
        self.dirs: list[np.ndarray] = []
        self._gen: torch.Generator | None = None
        self._val_logits: list[torch.Tensor] = []
        self._val_targets: list[torch.Tensor] = []
        # Per-epoch curves of this process (rank 0's are written to the run directory).
        self.history: dict[int, dict] = {}
        self._loss_sum = 0.0
        self._loss_n = 0
        # kd_scheme "online": the teacher network fine-tuned alongside (set by the run driver; kept in
        # a list so that it is not part of this module's state_dict / checkpoint).
        self.online_teacher: list[torch.nn.Module] = []
        self.automatic_optimization = train["kd_scheme"] != "online"
        # kd_scheme "mean-teacher": the EMA copy of self.model and the unlabelled features (N, 1, M, T)
        # (set by the run driver; the EMA copy replaces self.model's weights at the end of fit).
        self.mean_teacher: list[torch.nn.Module] = []
        self.unlabelled: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def on_fit_start(self) -> None:
        for t in self.online_teacher:
            t.to(self.device).train()
        for t in self.mean_teacher:
            t.to(self.device).train()  # BN in train mode like the student; its statistics are copied
        # One generator per process, seeded from the run seed and the rank: reproducible, and DDP
        # ranks draw different augmentations.
        self._gen = torch.Generator().manual_seed(int(self.train_cfg["seed"]) * 1000 + self.global_rank)
        online = self.train_cfg.get("features", "cache") == "online"  # waveforms come with the batches
        if self.augment.waveform_augmentation and self.waveforms is None and not online:
            raise ConfigError("pitch shift / time stretch / fmax_aug_range need the training waveforms, "
                              "which were not loaded",
                              hint="set module.waveforms (asc-edge train loads them itself), or turn these "
                                   "augmentations off")

    # --- augmentation -------------------------------------------------------------------------
    def _augment_waveforms(self, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Waveform augmentations of a training batch; the affected rows of ``x`` are replaced by
        features recomputed from the augmented waveforms (``index``: the clips' rows in
        ``self.waveforms``).

        Draws (:meth:`_draw_waveform_augmentations`), each only when its augmentation is on: DIR (rows
        with probability ``dir_p``, then one DIR per picked row — the same draws as before the other
        waveform augmentations existed, so runs without them are unchanged), pitch shift (rows with
        ``pitch_shift_p``, shifts ``U(−s, s)`` semitones), time stretch (rows with ``time_stretch_p``,
        rates ``U(1 − r, 1 + r)``), top mel edges ``U(f_max − range, f_max]`` for every row. Applied per
        clip in the order pitch shift → time stretch → DIR (the device colours the sound last, as in a
        recording); features with :class:`LogMel`, or :func:`logmel_random_fmax` with the drawn top
        edges (then every row is recomputed).
        """
        b = len(index)
        if self.waveforms is None or b == 0:
            return x
        rows, plan, f_max = self._draw_waveform_augmentations(b)
        if not rows:
            return x
        waves = [self._augmented_wave(self.waveforms[int(index[r])], r, plan) for r in rows]
        wave = torch.from_numpy(np.stack(waves)).to(x.device)
        x = x.clone()
        rows_t = torch.tensor(rows, dtype=torch.long, device=x.device)
        x[rows_t] = self._logmel(wave, None if f_max is None else f_max[rows]).to(x.dtype)
        return x

    def _online_features(self, wave: torch.Tensor) -> torch.Tensor:
        """``--features online``: the log-mel of a batch of waveforms ``(B, samples)``, computed here on
        the training device, after the same waveform augmentations with the same draws as
        :meth:`_augment_waveforms` (the augmented clips go through librosa / numpy on the CPU)."""
        if len(wave) == 0:
            return self._logmel(wave, None)
        rows, plan, f_max = self._draw_waveform_augmentations(len(wave))
        changed = [r for r in rows if any(r in d for d in plan)]
        if changed:
            cpu = wave[changed].detach().float().cpu().numpy()
            new = np.stack([self._augmented_wave(cpu[k], r, plan) for k, r in enumerate(changed)])
            wave = wave.clone()
            wave[torch.tensor(changed, dtype=torch.long, device=wave.device)] = \
                torch.from_numpy(new).to(device=wave.device, dtype=wave.dtype)
        return self._logmel(wave, f_max)

    def _logmel(self, wave: torch.Tensor, f_max: torch.Tensor | None) -> torch.Tensor:
        """Log-mel of waveforms ``(B, samples)`` in float32 whatever ``--precision`` says (autocast
        off: the features equal the cached ones); ``f_max``: per-row mel top edges or None."""
        with torch.autocast(device_type=wave.device.type, enabled=False):
            wave = wave.float()
            if f_max is None:
                return self.mel(wave)
            return logmel_random_fmax(self.mel, wave, f_max).float()

    def _draw_waveform_augmentations(self, b: int):
        """The random draws of the waveform augmentations for a batch of ``b`` clips (see
        :meth:`_augment_waveforms`): ``(rows to recompute, (dirs, shifts, rates) per-row dicts,
        top mel edges (b,) float64 or None)``."""
        aug, gen = self.augment, self._gen
        dirs: dict[int, int] = {}
        if aug.dir_p > 0 and self.dirs:
            pick = torch.rand(b, generator=gen) < aug.dir_p
            if pick.any():
                which = torch.randint(len(self.dirs), (int(pick.sum()),), generator=gen)
                dirs = {int(r): int(d) for r, d in zip(torch.nonzero(pick).flatten(), which)}
        shifts: dict[int, float] = {}
        if aug.pitch_shift_p > 0:
            pick = torch.rand(b, generator=gen) < aug.pitch_shift_p
            amount = (2 * torch.rand(b, generator=gen, dtype=torch.float64) - 1) * aug.pitch_shift_semitones
            shifts = {int(r): float(amount[r]) for r in torch.nonzero(pick).flatten()}
        rates: dict[int, float] = {}
        if aug.time_stretch_p > 0:
            pick = torch.rand(b, generator=gen) < aug.time_stretch_p
            rate = 1 + (2 * torch.rand(b, generator=gen, dtype=torch.float64) - 1) * aug.time_stretch_range
            rates = {int(r): float(rate[r]) for r in torch.nonzero(pick).flatten()}
        f_max = None
        if aug.fmax_aug_range > 0:
            f_max = self.frontend.f_max_hz - torch.rand(b, generator=gen, dtype=torch.float64) * aug.fmax_aug_range
            rows = list(range(b))
        else:
            rows = sorted(set(dirs) | set(shifts) | set(rates))
        return rows, (dirs, shifts, rates), f_max

    def _augmented_wave(self, w: np.ndarray, r: int, plan) -> np.ndarray:
        """Row ``r``'s waveform ``w`` after its drawn pitch shift → time stretch → DIR (those it has)."""
        dirs, shifts, rates = plan
        if r in shifts:
            w = pitch_shift(w, self.frontend.sample_rate, shifts[r])
        if r in rates:
            w = time_stretch(w, rates[r])
        if r in dirs:
            w = convolve_dir(w, self.dirs[dirs[r]])
        return np.asarray(w, dtype=np.float32)

    # --- steps --------------------------------------------------------------------------------
    def _label_loss(self):
        """Per-example label loss: the model's own ``classification_loss`` where it has one (e.g. the
        one-vs-all teacher's binary losses), else cross-entropy."""
        return getattr(self.model, "classification_loss", None) or functools.partial(F.cross_entropy,
                                                                                     reduction="none")

    def training_step(self, batch, batch_idx):
        x, y, teacher, index = batch
        if x.dim() == 2:  # --features online: a batch of waveforms, log-mel computed here
            x = self._online_features(x)
        else:
            x = self._augment_waveforms(x, index)
        x = augment_batch(x, self.augment, self._gen, mask_fill=math.log(self.frontend.log_offset))
        x, perm, lam = mixup(x, y, self.augment.mixup_alpha, self._gen, p=self.augment.mixup_p)
        if self.online_teacher:
            loss = self._online_step(x, y, perm, lam)
        else:
            logits = self.model(x)
            if teacher.shape[1]:
                lam_t = lam[:, None].to(teacher.dtype)
                teacher_mixed = lam_t * teacher + (1 - lam_t) * teacher[perm]
                loss = self._kd_loss(logits, teacher_mixed, y, perm, lam)
            else:
                loss = mixup_loss(self._label_loss(), logits, y, perm, lam)
            if self.mean_teacher:
                loss = loss + self._consistency(x)
        self.log("train_loss", loss, on_step=True, on_epoch=False, prog_bar=True, batch_size=len(y))
        self._loss_sum += float(loss.detach()) * len(y)
        self._loss_n += len(y)
        return loss

    def _consistency(self, x):
        """Mean teacher (ITMO 2024; Tarvainen & Valpola 2017): weight(step) × MSE between the softmax
        outputs of the model and of its EMA copy, on the labelled batch ``x`` plus as many unlabelled
        clips, each side with its own augmentation (time roll, frequency mask, Freq-MixStyle)."""
        batch = x
        if self.unlabelled is not None and len(self.unlabelled):
            pick = torch.randint(len(self.unlabelled), (len(x),), generator=self._gen)
            batch = torch.cat([x, self.unlabelled[pick].to(x.device)])
        fill = math.log(self.frontend.log_offset)
        x_s = augment_batch(batch, self.augment, self._gen, mask_fill=fill)
        with torch.no_grad():
            z_t = self.mean_teacher[0](augment_batch(batch, self.augment, self._gen, mask_fill=fill))
        total = max(1, int(self.trainer.estimated_stepping_batches))
        w = consistency_weight(min(int(self.global_step), total), total, self.train_cfg["consistency_max"])
        return w * consistency_loss(self.model(x_s), z_t)

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        for t in self.mean_teacher:  # global_step was already advanced by this batch's optimiser step
            ema_update(t, self.model, ema_decay_at(max(0, int(self.global_step) - 1), self.train_cfg["ema_decay"]))

    def on_fit_end(self) -> None:
        if self.mean_teacher:  # the run's model is the mean (EMA) teacher
            self.model.load_state_dict(self.mean_teacher[0].state_dict())

    def _online_step(self, x, y, perm, lam):
        """Online KD (KT 2024; deep mutual learning, Zhang et al. CVPR 2018): the teacher sees the same
        augmented batch; the student takes one step on the KD loss towards the teacher's logits, then
        the teacher one step (learning rate × ``online_teacher_lr_factor``) on the same loss towards the
        student's, each with the other's logits as constants. Returns the student's loss."""
        cfg = self.train_cfg
        teacher = self.online_teacher[0]
        opt_s, opt_t = self.optimizers()
        sch_s, sch_t = self.lr_schedulers()
        kd = functools.partial(kd_loss, lam=cfg["kd_lambda"], tau=cfg["kd_tau"], reduction="none",
                               convention=cfg["kd_convention"], kl_mean_over_classes=_kl_over_classes(cfg))
        z_t = teacher(x)
        z_s = self.model(x)
        loss_s = mixup_loss(lambda z, t: kd(z, z_t.detach(), targets=t), z_s, y, perm, lam)
        opt_s.zero_grad()
        self.manual_backward(loss_s)
        opt_s.step()
        loss_t = mixup_loss(lambda z, t: kd(z, z_s.detach(), targets=t), z_t, y, perm, lam)
        opt_t.zero_grad()
        self.manual_backward(loss_t)
        opt_t.step()
        sch_s.step()
        sch_t.step()
        return loss_s.detach()

    def _kd_loss(self, logits, teacher, y, perm, lam):
        """The ``kd_scheme`` loss of a mixup batch (targets ``y`` / ``y[perm]`` mixed by ``lam``;
        ``teacher``: the mixup-mixed teacher logits)."""
        cfg = self.train_cfg
        scheme, lam_kd, tau = cfg["kd_scheme"], cfg["kd_lambda"], cfg["kd_tau"]
        if scheme == "rrs":
            stage1 = cfg["rrs_relational_epochs"]
            stage1 = cfg["epochs"] // 2 if stage1 is None else stage1
            if rrs_stage(self.current_epoch, stage1) == "relational":
                # stage 1: labels + the relational potentials of the batch's logits (RKD distance + angle)
                ce = mixup_loss(self._label_loss(), logits, y, perm, lam)
                return ce + rkd_loss(logits, teacher) if len(y) >= 3 else ce
        if scheme == "focusnet":
            fn = functools.partial(focusnet_loss, teacher_logits=teacher, tau=tau, reduction="none")
        elif scheme == "mse":
            fn = functools.partial(mse_kd_loss, teacher_logits=teacher, lam=lam_kd, reduction="none")
        else:  # hinton, and rrs stage 2 (response-based)
            fn = functools.partial(kd_loss, teacher_logits=teacher, lam=lam_kd, tau=tau, reduction="none",
                                   convention=cfg["kd_convention"], kl_mean_over_classes=_kl_over_classes(cfg))
        return mixup_loss(lambda z, t: fn(z, targets=t), logits, y, perm, lam)

    def on_train_epoch_end(self) -> None:
        row = self.history.setdefault(self.current_epoch, {"epoch": self.current_epoch})
        row["train_loss"] = self._loss_sum / max(1, self._loss_n)
        row["lr"] = self.trainer.optimizers[0].param_groups[0]["lr"]
        self._loss_sum, self._loss_n = 0.0, 0
        # the same per-epoch values for the experiment logger (--logger; history.json is rank 0's too)
        self.log_dict({"train_loss_epoch": row["train_loss"], "lr": row["lr"]}, rank_zero_only=True)

    def validation_step(self, batch, batch_idx):
        x, y, _, _ = batch
        if x.dim() == 2:  # waveforms (--features online)
            x = self._logmel(x, None)
        logits = self.model(x)
        self._val_logits.append(logits.detach())
        self._val_targets.append(y)

    def on_validation_epoch_end(self) -> None:
        logits = self.all_gather(torch.cat(self._val_logits)).reshape(-1, len(self.hparams.labels))
        targets = self.all_gather(torch.cat(self._val_targets)).reshape(-1)
        self._val_logits.clear()
        self._val_targets.clear()
        pred = logits.argmax(1)
        per_class = [(pred[targets == c] == c).float().mean() for c in targets.unique()]
        macro = float(torch.stack(per_class).mean())
        loss = float(F.cross_entropy(logits.float(), targets))
        self.log("val_macro_accuracy", macro, prog_bar=True, rank_zero_only=True)
        self.log("val_loss", loss, rank_zero_only=True)
        if not self.trainer.sanity_checking:
            row = self.history.setdefault(self.current_epoch, {"epoch": self.current_epoch})
            row.update(val_loss=loss, val_macro_accuracy=macro)
            if self.global_rank == 0:
                on = "validation" if self.train_cfg.get("val_fraction") else "test"  # train --val-fraction
                log.info("epoch %d/%d: train loss %.4f, %s loss %.4f, %s macro accuracy %.4f",
                         self.current_epoch + 1, self.trainer.max_epochs,
                         self._loss_sum / max(1, self._loss_n), on, loss, on, macro)

    # --- optimiser ----------------------------------------------------------------------------
    def configure_optimizers(self):
        cfg = self.train_cfg
        opt = torch.optim.AdamW(self.model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = min(total - 1, int(round(cfg["warmup_epochs"] * total / max(1, cfg["epochs"]))))

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            progress = (step - warmup) / max(1, total - warmup)
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        if self.online_teacher:  # the teacher: same schedule, learning rate × online_teacher_lr_factor
            opt_t = torch.optim.AdamW(self.online_teacher[0].parameters(),
                                      lr=cfg["lr"] * cfg["online_teacher_lr_factor"],
                                      weight_decay=cfg["weight_decay"])
            return [opt, opt_t], [sched, torch.optim.lr_scheduler.LambdaLR(opt_t, factor)]
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
