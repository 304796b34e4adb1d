"""`asc-edge train` with each distillation scheme (issue 13) and teacher logits from a file: one short
run per scheme on the 4-clip synthetic set, the saved config, and the bad-setting errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from asc_edge.augment import AugmentConfig
from asc_edge.distill.logits_file import save_teacher_logits
from asc_edge.errors import ConfigError, DataError
from asc_edge.train import TrainConfig, train

FILES = ["audio/park-city0-0-0-0-a.wav", "audio/park-city1-1-0-0-a.wav",
         "audio/tram-city0-0-0-0-a.wav", "audio/tram-city1-1-0-0-a.wav"]


@pytest.fixture
def data_and_logits(tiny_dataset, tmp_path):
    root = tiny_dataset()
    logits = np.array([[2.0, -1.0], [1.5, 0.0], [-1.0, 2.5], [0.0, 1.0]], np.float32)
    # stored in another clip order and label order than the data set's: the loader re-orders both
    path = save_teacher_logits(tmp_path / "teacher.npz", FILES[::-1], logits[::-1, ::-1], ["tram", "park"])
    return root, path


def _cfg(root, tmp_path, **kw) -> TrainConfig:
    base = dict(data=str(root), split="100", model="cp-mobile", model_kwargs={"base_channels": 8}, epochs=2,
                batch_size=4, warmup_epochs=0.5, out=str(tmp_path / "runs"), cache_dir=str(tmp_path / "cache"),
                val_every=2, progress=False)
    base["augment"] = AugmentConfig(dir_p=0.0)
    return TrainConfig(**{**base, **kw})


@pytest.mark.parametrize("scheme,extra", [("hinton", {}), ("hinton", {"kd_convention": "sntl", "kd_lambda": 0.5}),
                                          ("focusnet", {}), ("mse", {"kd_lambda": 0.5}),
                                          ("rrs", {"rrs_relational_epochs": 1})])
def test_each_scheme_trains_from_a_logits_file(scheme, extra, data_and_logits, tmp_path):
    root, path = data_and_logits
    run = train(_cfg(root, tmp_path, teacher_logits=str(path), kd_scheme=scheme, **extra))
    cfg = json.loads((run / "report.json").read_text())["config"]
    assert cfg["kd_scheme"] == scheme and cfg["teacher_logits"] == str(path)
    assert run.name.startswith("cp-mobile_split100_kd")
    assert ("-" + scheme in run.name) == (scheme != "hinton")
    hist = json.loads((run / "history.json").read_text())
    assert all(np.isfinite(h["train_loss"]) for h in hist)


def test_scheme_losses_differ_on_the_same_batch(data_and_logits, tmp_path):
    """The module dispatches to the scheme's own loss (same batch, same weights: different values)."""
    from asc_edge.features import get_frontend
    from asc_edge.train.module import ASCModule

    root, _ = data_and_logits
    torch.manual_seed(0)
    z = torch.randn(4, 2)
    t = torch.tensor([[2.0, -1.0], [1.5, 0.0], [-1.0, 2.5], [0.0, 1.0]])
    y = torch.tensor([0, 0, 1, 1])
    perm, lam = torch.arange(4), torch.ones(4)
    values = {}
    for scheme in ("hinton", "focusnet", "mse", "rrs"):
        cfg = _cfg(root, tmp_path, kd_scheme=scheme, rrs_relational_epochs=1, epochs=2).to_dict()
        m = ASCModule("cp-mobile", {"base_channels": 8}, ["park", "tram"], get_frontend("dcase2024").to_dict(), cfg)
        values[scheme] = float(m._kd_loss(z, t, y, perm, lam))
    assert len({round(v, 6) for v in values.values()}) == 4, values


def test_kl_average_classes_is_the_cpjku_code_and_batch_is_c_times_the_teacher_term(data_and_logits, tmp_path):
    """``kd_kl_average``: ``classes`` (default) = CP-JKU's ``KLDivLoss(reduction="none").mean()`` (over
    examples and classes), ``batch`` = batchmean; with λ = 0 only the KL term is left, so the two differ
    by exactly the number of classes. Hand-computed for one example: teacher (2, −1), student (0, 0),
    τ = 1: p_t = (0.952574, 0.047426), KL = Σ p_t·log(p_t / 0.5) = 0.502282."""
    from asc_edge.features import get_frontend
    from asc_edge.train.module import ASCModule

    root, _ = data_and_logits
    z, t, y = torch.zeros(1, 2), torch.tensor([[2.0, -1.0]]), torch.tensor([0])
    values = {}
    for avg in ("classes", "batch"):
        cfg = _cfg(root, tmp_path, kd_lambda=0.0, kd_tau=1.0, kd_kl_average=avg).to_dict()
        m = ASCModule("cp-mobile", {"base_channels": 8}, ["park", "tram"], get_frontend("dcase2024").to_dict(), cfg)
        values[avg] = float(m._kd_loss(z, t, y, torch.arange(1), torch.ones(1)))
    assert values["batch"] == pytest.approx(0.502282, abs=1e-6)
    assert values["classes"] == pytest.approx(0.502282 / 2, abs=1e-6)
    assert TrainConfig(data="d").kd_kl_average == "classes"


@pytest.mark.parametrize("kw,needle", [({"kd_scheme": "dml"}, "unknown --kd-scheme"),
                                       ({"kd_convention": "x"}, "unknown --kd-convention"),
                                       ({"kd_kl_average": "sum"}, "unknown --kd-kl-average"),
                                       ({"teachers": ["a.ckpt"], "teacher_logits": "t.npz"}, "both --teacher"),
                                       ({"kd_scheme": "rrs", "rrs_relational_epochs": 9}, "outside [0, 2]")])
def test_bad_kd_settings(kw, needle, tmp_path):
    with pytest.raises(ConfigError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        train(_cfg(tmp_path / "none", tmp_path, **kw))


def test_logits_file_missing_clips_is_a_data_error(tiny_dataset, tmp_path):
    root = tiny_dataset()
    path = save_teacher_logits(tmp_path / "t.npz", FILES[:2], np.zeros((2, 2), np.float32), ["park", "tram"])
    with pytest.raises(DataError, match="tram-city0"):
        train(_cfg(root, tmp_path, teacher_logits=str(path)))


def test_online_kd_updates_teacher_and_student_alternately(tiny_dataset, tmp_path, monkeypatch):
    """KT 2024 online KD: both networks change every step; the teacher with lr × 0.01. Checked on the
    optimisers Lightning builds and on the teacher's weights after a 1-epoch run."""
    from asc_edge.train import module as module_mod

    root = tiny_dataset()
    teacher_run = train(_cfg(root, tmp_path, name="teacher", epochs=1))
    before = {k: v.clone() for k, v in torch.load(teacher_run / "model.ckpt", weights_only=False)["state_dict"].items()}
    seen = {}
    real_online = module_mod.ASCModule._online_step

    def spy(self, x, y, perm, lam):
        t = self.online_teacher[0]
        w_t = [p.detach().clone() for p in t.parameters()]
        w_s = [p.detach().clone() for p in self.model.parameters()]
        out = real_online(self, x, y, perm, lam)
        seen.setdefault("lrs", [o.param_groups[0]["lr"] for o in self.optimizers()])
        seen["teacher_moved"] = any(not torch.equal(a, b) for a, b in zip(w_t, t.parameters()))
        seen["student_moved"] = any(not torch.equal(a, b) for a, b in zip(w_s, self.model.parameters()))
        return out

    monkeypatch.setattr(module_mod.ASCModule, "_online_step", spy)
    run = train(_cfg(root, tmp_path, name="online", epochs=1, kd_scheme="online", teachers=[str(teacher_run)],
                     warmup_epochs=0.0))
    assert seen["teacher_moved"] and seen["student_moved"]
    lr_s, lr_t = seen["lrs"]
    assert lr_t == pytest.approx(0.01 * lr_s)
    saved = torch.load(run / "model.ckpt", weights_only=False)["state_dict"]
    assert all(k.startswith("model.") for k in saved)  # the teacher is not stored in the student's checkpoint
    assert set(saved) == set(before)


def test_one_vs_all_teacher_trains_with_its_binary_losses(tiny_dataset, tmp_path):
    """`sm1-ova` (AI4EDGE's one-vs-all teacher) trains through `asc-edge train` with the sum of its
    experts' binary losses; its batch mean equals Σ_c binary_loss."""
    from asc_edge.models import build_model
    from asc_edge.models.one_vs_all import binary_loss

    m = build_model("sm1-ova", n_classes=3)
    z = torch.tensor([[0.5, -1.0, 2.0], [1.0, 0.0, -0.5]])
    y = torch.tensor([2, 0])
    expected = sum(binary_loss(z[:, c], y, c, n_classes=3) for c in range(3))
    assert float(m.classification_loss(z, y).mean()) == pytest.approx(float(expected), rel=1e-6)
    root = tiny_dataset()
    run = train(_cfg(root, tmp_path, model="sm1-ova", model_kwargs={}, frontend="ai4edge-8k", epochs=1))
    assert json.loads((run / "report.json").read_text())["role"] == "teacher"


def test_mean_teacher_uses_unlabelled_audio_and_saves_the_ema_model(tiny_dataset, tmp_path, monkeypatch):
    """ITMO 2024 stage 1: consistency against the EMA copy on labelled + unlabelled clips; the run's
    checkpoint is the EMA (mean) teacher."""
    from asc_edge.train import module as module_mod

    root = tiny_dataset()
    unl = tmp_path / "unlabelled"
    rng = np.random.default_rng(3)
    for i in range(3):
        tiny_dataset.write_wav(unl / f"u{i}.wav", (0.05 * rng.standard_normal(44100)).astype(np.float32), 44100)
    seen = {}
    real = module_mod.ASCModule._consistency

    def spy(self, x):
        seen["n_unlabelled"] = len(self.unlabelled)
        seen.setdefault("weights", []).append(self.global_step)
        return real(self, x)

    ema_copy = {}
    real_end = module_mod.ASCModule.on_fit_end

    def end_spy(self):
        ema_copy.update({k: v.clone() for k, v in self.mean_teacher[0].state_dict().items()})
        real_end(self)

    real_ema = module_mod.ema_update

    def ema_spy(teacher, student, decay):
        seen.setdefault("decays", []).append(decay)
        real_ema(teacher, student, decay)

    monkeypatch.setattr(module_mod.ASCModule, "_consistency", spy)
    monkeypatch.setattr(module_mod.ASCModule, "on_fit_end", end_spy)
    monkeypatch.setattr(module_mod, "ema_update", ema_spy)
    run = train(_cfg(root, tmp_path, epochs=2, kd_scheme="mean-teacher", unlabelled=str(unl)))
    assert seen["n_unlabelled"] == 3 and seen["weights"] == [0, 1]
    assert seen["decays"] == [0.0, 0.5]  # the EMA decay's warm-up: step 0 copies, step 1 averages
    assert run.name == "cp-mobile_split100_mean-teacher_seed0"
    saved = torch.load(run / "model.ckpt", weights_only=False)["state_dict"]
    assert all(torch.equal(saved["model." + k], v) for k, v in ema_copy.items())


def test_mean_teacher_bad_settings(tmp_path):
    with pytest.raises(ConfigError, match="trains its own EMA teacher"):
        train(_cfg(tmp_path, tmp_path, kd_scheme="mean-teacher", teachers=["x.ckpt"]))
    with pytest.raises(DataError, match="unlabelled-audio folder not found"):
        from asc_edge.features import get_frontend
        from asc_edge.features.splits import load_folder_features

        load_folder_features(tmp_path / "nope", get_frontend("dcase2024"))


def test_offline_kd_takes_a_run_directory_as_teacher(tiny_dataset, tmp_path):
    root = tiny_dataset()
    teacher_run = train(_cfg(root, tmp_path, name="t", epochs=1))
    run = train(_cfg(root, tmp_path, name="s", epochs=1, teachers=[str(teacher_run)]))
    assert json.loads((run / "report.json").read_text())["config"]["teachers"] == [str(teacher_run)]
