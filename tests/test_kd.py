"""Knowledge distillation loss (hand-computed case) and the teacher-logit cache."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from asc_edge.distill import TeacherLogitCache, ce_term, ensemble_logits, kd_loss, kl_term
from asc_edge.distill.teacher_cache import cache_key, clip_list_digest, file_sha256
from asc_edge.errors import CheckpointError, ConfigError

# ---------------------------------------------------------------- hand-computed case
# 2 examples x 3 classes, tau = 2, lam = 0.02.
#   ex 1: z_s = [2, 0, 0], z_t = [0, 0, 0], y = 0
#   ex 2: z_s = [0, 0, 0], z_t = [0, 2, 0], y = 1
# CE_1 = -ln(e^2 / (e^2 + 2)) = ln(e^2 + 2) - 2                          = 0.23954476622188414
# CE_2 = -ln(1/3) = ln 3                                                 = 1.0986122886681098
# z/tau: ex 1 student [1,0,0] -> p_s = [e, 1, 1]/(e+2), teacher uniform 1/3
#   KL_1 = sum_c 1/3 (ln 1/3 - ln p_s,c) = ln(e+2) - ln 3 - 1/3          = 0.11949909193060776
# ex 2 teacher [0,1,0] -> p_t = [1, e, 1]/(e+2), student uniform
#   KL_2 = sum_c p_t,c (ln p_t,c - ln 1/3) = e/(e+2) - ln(e+2) + ln 3    = 0.12328445950188804
# L_i = 0.02 * CE_i + 0.98 * 2^2 * KL_i
#   L_1 = 0.4732273356924201, L_2 = 0.5052473270207634, mean = 0.48923733135659175
CE = [0.23954476622188414, 1.0986122886681098]
KL = [0.11949909193060776, 0.12328445950188804]
L = [0.4732273356924201, 0.5052473270207634]

Z_S = [[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
Z_T = [[0.0, 0.0, 0.0], [0.0, 2.0, 0.0]]
Y = [0, 1]


def test_hand_numbers_are_consistent_with_their_formulas():
    e = math.e
    assert math.isclose(CE[0], math.log(e**2 + 2) - 2, rel_tol=1e-12)
    assert math.isclose(CE[1], math.log(3), rel_tol=1e-12)
    # KL from its definition, in plain Python
    def softmax(v):
        ex = [math.exp(a) for a in v]
        return [a / sum(ex) for a in ex]
    for i in range(2):
        ps = softmax([a / 2 for a in Z_S[i]])
        pt = softmax([a / 2 for a in Z_T[i]])
        kl = sum(t * (math.log(t) - math.log(s)) for t, s in zip(pt, ps))
        assert math.isclose(kl, KL[i], rel_tol=1e-12)
        assert math.isclose(0.02 * CE[i] + 0.98 * 4 * KL[i], L[i], rel_tol=1e-12)


def test_kd_loss_matches_hand_computed_case():
    zs, zt, y = torch.tensor(Z_S, dtype=torch.float64), torch.tensor(Z_T, dtype=torch.float64), torch.tensor(Y)
    per = kd_loss(zs, zt, y, lam=0.02, tau=2.0, reduction="none")
    assert per.shape == (2,)
    assert per.tolist() == pytest.approx(L, rel=1e-12)
    assert kd_loss(zs, zt, y).item() == pytest.approx(sum(L) / 2, rel=1e-12)  # defaults lam=0.02, tau=2
    assert kd_loss(zs, zt, y, reduction="sum").item() == pytest.approx(sum(L), rel=1e-12)
    assert ce_term(zs, y).tolist() == pytest.approx(CE, rel=1e-12)
    assert kl_term(zs, zt, tau=2.0).tolist() == pytest.approx(KL, rel=1e-12)
    # float32 path agrees to float32 precision
    assert kd_loss(zs.float(), zt.float(), y).item() == pytest.approx(sum(L) / 2, rel=1e-6)


def test_kl_is_batchmean_and_optional_class_mean():
    g = torch.Generator().manual_seed(0)
    zs, zt = torch.randn(5, 10, generator=g), torch.randn(5, 10, generator=g)
    ref = F.kl_div(F.log_softmax(zs / 2, -1), F.softmax(zt / 2, -1), reduction="batchmean")
    assert kl_term(zs, zt, 2.0, reduction="mean").item() == pytest.approx(ref.item(), rel=1e-5)
    per = kl_term(zs, zt, 2.0)
    assert kl_term(zs, zt, 2.0, kl_mean_over_classes=True).tolist() == pytest.approx((per / 10).tolist(), rel=1e-6)


def test_lam_one_is_plain_cross_entropy():
    g = torch.Generator().manual_seed(1)
    zs, zt = torch.randn(6, 10, generator=g), torch.randn(6, 10, generator=g)
    y = torch.randint(0, 10, (6,), generator=g)
    assert kd_loss(zs, zt, y, lam=1.0).item() == pytest.approx(F.cross_entropy(zs, y).item(), rel=1e-6)


def test_identical_student_and_teacher_gives_zero_kl():
    g = torch.Generator().manual_seed(2)
    z = torch.randn(4, 10, generator=g) * 5
    y = torch.randint(0, 10, (4,), generator=g)
    assert kl_term(z, z.clone(), 2.0).abs().max().item() < 1e-6
    assert kd_loss(z, z.clone(), y, lam=0.3).item() == pytest.approx(0.3 * F.cross_entropy(z, y).item(), rel=1e-5)


def test_gradient_reaches_student_only():
    g = torch.Generator().manual_seed(3)
    zs = torch.randn(4, 10, generator=g, requires_grad=True)
    zt = torch.randn(4, 10, generator=g, requires_grad=True)
    y = torch.randint(0, 10, (4,), generator=g)
    kd_loss(zs, zt, y).backward()
    assert zs.grad is not None and torch.isfinite(zs.grad).all() and zs.grad.abs().sum() > 0
    assert zt.grad is None


def test_soft_targets_path():
    zs, zt, y = torch.tensor(Z_S), torch.tensor(Z_T), torch.tensor(Y)
    onehot = F.one_hot(y, 3).float()
    assert kd_loss(zs, zt, onehot, reduction="none").tolist() == pytest.approx(L, rel=1e-6)
    # a 50/50 soft target averages the two hard-label losses (CE is linear in the target)
    soft = torch.tensor([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]])
    mixed = 0.5 * kd_loss(zs, zt, torch.tensor([0, 0]), reduction="none") + \
        0.5 * kd_loss(zs, zt, torch.tensor([1, 1]), reduction="none")
    assert kd_loss(zs, zt, soft, reduction="none").tolist() == pytest.approx(mixed.tolist(), rel=1e-6)


@pytest.mark.parametrize("kwargs", [dict(lam=1.5), dict(lam=-0.1), dict(tau=0.0), dict(reduction="avg")])
def test_bad_settings_raise_config_error(kwargs):
    zs, zt, y = torch.tensor(Z_S), torch.tensor(Z_T), torch.tensor(Y)
    with pytest.raises(ConfigError) as exc:
        kd_loss(zs, zt, y, **kwargs)
    assert exc.value.hint


def test_shape_mismatch_raises():
    with pytest.raises(ConfigError):
        kd_loss(torch.zeros(2, 3), torch.zeros(2, 4), torch.tensor([0, 1]))
    with pytest.raises(ConfigError):
        kd_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.tensor([0, 3]))
    with pytest.raises(ConfigError):
        kd_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 4))


# ---------------------------------------------------------------- teacher ensemble + cache

def test_ensemble_logits_is_mean_of_logits():
    a = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    b = torch.tensor([[3.0, 0.0], [-1.0, 0.0]])
    out = ensemble_logits([a, b])
    assert out.shape == (2, 2)
    assert out.tolist() == [[2.0, 1.0], [1.0, 2.0]]
    with pytest.raises(ConfigError):
        ensemble_logits([])
    with pytest.raises(ConfigError):
        ensemble_logits([a, torch.zeros(3, 2)])


def test_teacher_cache_computes_once(tmp_path):
    cache = TeacherLogitCache(tmp_path / "cache")
    calls = []
    data = np.arange(12, dtype=np.float64).reshape(4, 3)

    def compute():
        calls.append(1)
        return data

    key = {"teachers": ["abc", "def"], "frontend": "mel256", "clips": clip_list_digest(["x.wav", "y.wav"])}
    first = cache.get_or_compute(key, compute)
    second = cache.get_or_compute(dict(reversed(list(key.items()))), compute)  # key order irrelevant
    assert len(calls) == 1
    assert first.dtype == np.float32 and first.shape == (4, 3)
    np.testing.assert_array_equal(first, data.astype(np.float32))
    np.testing.assert_array_equal(second, first)
    npy, meta_path = cache.paths(key)
    assert npy.is_file() and meta_path.is_file()
    meta = json.loads(meta_path.read_text())
    assert meta["key_parts"] == key and meta["shape"] == [4, 3] and meta["key"] == cache_key(key)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted([npy.name, meta_path.name])

    # a different key (e.g. another teacher checkpoint) is a different entry
    cache.get_or_compute({**key, "teachers": ["abc"]}, compute)
    assert len(calls) == 2


def test_teacher_cache_recomputes_when_corrupted_or_incomplete(tmp_path):
    cache = TeacherLogitCache(tmp_path)
    key = {"teachers": ["t"], "clips": "c"}
    calls = []

    def compute():
        calls.append(1)
        return torch.ones(2, 10)

    cache.get_or_compute(key, compute)
    npy, meta = cache.paths(key)
    arr = np.load(npy)
    arr[0, 0] = 5.0
    np.save(npy, arr)  # contents no longer match the recorded checksum
    out = cache.get_or_compute(key, compute)
    assert len(calls) == 2 and out[0, 0] == 1.0
    meta.unlink()  # JSON is the commit marker: without it the entry does not count
    cache.get_or_compute(key, compute)
    assert len(calls) == 3


def test_teacher_cache_rejects_bad_logits_and_keys(tmp_path):
    cache = TeacherLogitCache(tmp_path)
    with pytest.raises(CheckpointError):
        cache.get_or_compute({"k": 1}, lambda: np.array([[np.nan, 0.0]]))
    with pytest.raises(ConfigError):
        cache.get_or_compute({"k": 1}, lambda: np.zeros(5))
    with pytest.raises(ConfigError):
        cache.get_or_compute({"k": object()}, lambda: np.zeros((1, 2)))
    assert not any(tmp_path.iterdir())


def test_file_sha256(tmp_path):
    p = tmp_path / "teacher.ckpt"
    p.write_bytes(b"abc")
    assert file_sha256(p) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    with pytest.raises(CheckpointError):
        file_sha256(tmp_path / "missing.ckpt")
