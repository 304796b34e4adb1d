"""Distillation losses of DCASE Task 1 reports, each against a small hand-computed example.

Every expected number below is derived in the comments (closed forms in ln 2, ln 3, e, fractions)
and re-derived in plain Python / numpy loops in the ``*_formulas`` tests, independently of the
torch implementations.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from asc_edge.distill.focusnet import focusnet_loss
from asc_edge.distill.kd import kd_loss
from asc_edge.distill.mean_teacher import (consistency_loss, consistency_weight, ema_decay_at, ema_update,
                                           mse_kd_loss)
from asc_edge.distill.relational import rkd_angle_loss, rkd_distance_loss, rkd_loss, rrs_stage
from asc_edge.errors import ConfigError

LN2, LN3 = math.log(2.0), math.log(3.0)
f64 = torch.float64


def _t(x):
    return torch.tensor(x, dtype=f64)


# ====================================================================== kd_loss conventions
# Same 2 x 3 case as tests/test_kd.py (tau = 2): z_s = [[2,0,0],[0,0,0]], z_t = [[0,0,0],[0,2,0]], y = [0,1]
#   CE = [ln(e^2+2) - 2, ln 3],  KL = [ln(e+2) - ln 3 - 1/3, e/(e+2) - ln(e+2) + ln 3]
# SNTL-NTU convention, lam = 0.3:  L_i = 0.7 * CE_i + 0.3 * 2^2 * KL_i
KD_ZS, KD_ZT, KD_Y = [[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]], [[0.0, 0.0, 0.0], [0.0, 2.0, 0.0]], [0, 1]
KD_CE = [0.23954476622188414, 1.0986122886681098]
KD_KL = [0.11949909193060776, 0.12328445950188804]
SNTL_03 = [0.3110802466720482, 0.9169699534699424]


def test_kd_hand_numbers_formulas():
    e = math.e
    assert KD_CE == pytest.approx([math.log(e**2 + 2) - 2, LN3], rel=1e-12)
    assert KD_KL == pytest.approx([math.log(e + 2) - LN3 - 1 / 3, e / (e + 2) - math.log(e + 2) + LN3], rel=1e-12)
    assert SNTL_03 == pytest.approx([0.7 * c + 0.3 * 4 * k for c, k in zip(KD_CE, KD_KL)], rel=1e-12)


def test_kd_sntl_convention_hand_case():
    zs, zt, y = _t(KD_ZS), _t(KD_ZT), torch.tensor(KD_Y)
    per = kd_loss(zs, zt, y, lam=0.3, tau=2.0, reduction="none", convention="sntl")
    assert per.tolist() == pytest.approx(SNTL_03, rel=1e-12)
    # cpjku with the same lam weighs the other way round: 0.3 * CE + 0.7 * 4 * KL
    cp = kd_loss(zs, zt, y, lam=0.3, tau=2.0, reduction="none", convention="cpjku")
    assert cp.tolist() == pytest.approx([0.3 * c + 0.7 * 4 * k for c, k in zip(KD_CE, KD_KL)], rel=1e-12)
    # the two conventions are the same family with lam <-> 1 - lam
    assert per.tolist() == pytest.approx(kd_loss(zs, zt, y, lam=0.7, tau=2.0, reduction="none").tolist(), rel=1e-12)
    # sntl lam = 0: plain cross-entropy; lam = 1: pure tau^2 * KL
    assert kd_loss(zs, zt, y, lam=0.0, reduction="none", convention="sntl").tolist() == pytest.approx(KD_CE, rel=1e-12)
    assert kd_loss(zs, zt, y, lam=1.0, reduction="none", convention="sntl").tolist() == \
        pytest.approx([4 * k for k in KD_KL], rel=1e-12)
    # default is unchanged (cpjku)
    assert kd_loss(zs, zt, y).item() == kd_loss(zs, zt, y, convention="cpjku").item()


def test_kd_convention_errors():
    zs, zt, y = _t(KD_ZS), _t(KD_ZT), torch.tensor(KD_Y)
    with pytest.raises(ConfigError) as exc:
        kd_loss(zs, zt, y, convention="tencent")
    assert exc.value.hint
    with pytest.raises(ConfigError):
        kd_loss(zs, zt, y, lam=1.2, convention="sntl")


# ====================================================================== relational KD
# Student: unit equilateral triangle (2-D); teacher: 3-4-5 right triangle embedded in 3-D.
#   distances: student 1,1,1 (mean 1) -> potentials 1,1,1;  teacher 3,4,5 (mean 4) -> 0.75, 1, 1.25
#   Huber (all |diff| <= 1): ½·0.25², 0, ½·0.25² -> mean over 3 pairs = 0.0625/3 = 1/48
#   angles: student 60° everywhere, cos = 0.5. Teacher: 90° (cos 0) at (0,0,0), cos 3/5 at (3,0,0),
#   cos 4/5 at (0,4,0). Each vertex is the middle of 2 ordered triplets ->
#   mean Huber = (½·0.5² + ½·0.1² + ½·0.3²)/3 = (0.125 + 0.005 + 0.045)/3 = 7/120
#   rkd_loss = 25/48 + 50·7/120 = 3.4375
TRI_S = [[0.0, 0.0], [1.0, 0.0], [0.5, math.sqrt(3.0) / 2]]
TRI_T = [[0.0, 0.0, 0.0], [3.0, 0.0, 0.0], [0.0, 4.0, 0.0]]
TRI_D, TRI_A, TRI_RKD = 1 / 48, 7 / 120, 3.4375

# 1-D, four points, one pair in the linear branch of the Huber loss:
#   teacher [0,1,2,3]: distances (01,02,03,12,13,23) = 1,2,3,1,2,1, mean 5/3 -> 3/5·d
#   student [0,1,3,0.5]: distances 1,3,0.5,2,0.5,2.5, mean 19/12 -> 12/19·d
#   diffs s − t = 3/95, 66/95, −141/95, 63/95, −84/95, 93/95; |−141/95| > 1 -> 141/95 − ½
#   loss = (½(3² + 66² + 63² + 84² + 93²)/95² + 141/95 − ½) / 6
LIN_S, LIN_T = [[0.0], [1.0], [3.0], [0.5]], [[0.0], [1.0], [2.0], [3.0]]
LIN_D = 0.3860018467220683


def _np_rkd(s, t):
    """Plain numpy/loop reference: (distance loss, angle loss) with means over i≠j / distinct triplets."""
    s, t = np.asarray(s, float), np.asarray(t, float)
    n = len(s)

    def huber(x):
        return 0.5 * x * x if abs(x) <= 1 else abs(x) - 0.5

    pairs = [(i, j) for i in range(n) for j in range(n) if i != j]
    ds = {p: np.linalg.norm(s[p[0]] - s[p[1]]) for p in pairs}
    dt = {p: np.linalg.norm(t[p[0]] - t[p[1]]) for p in pairs}
    ms, mt = np.mean(list(ds.values())), np.mean(list(dt.values()))
    dist = np.mean([huber(ds[p] / ms - dt[p] / mt) for p in pairs])

    def cos(x, i, j, k):
        a, b = x[i] - x[j], x[k] - x[j]
        return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))

    trip = list(itertools.permutations(range(n), 3))
    ang = np.mean([huber(cos(s, *p) - cos(t, *p)) for p in trip]) if n >= 3 else float("nan")
    return dist, ang


def test_rkd_hand_numbers_formulas():
    d, a = _np_rkd(TRI_S, TRI_T)
    assert d == pytest.approx(TRI_D, rel=1e-12) and a == pytest.approx(TRI_A, rel=1e-12)
    assert 25 * TRI_D + 50 * TRI_A == pytest.approx(TRI_RKD, rel=1e-12)
    sq = 3**2 + 66**2 + 63**2 + 84**2 + 93**2
    assert LIN_D == pytest.approx((0.5 * sq / 95**2 + 141 / 95 - 0.5) / 6, rel=1e-12)
    assert _np_rkd(LIN_S, LIN_T)[0] == pytest.approx(LIN_D, rel=1e-12)


def test_rkd_hand_case():
    s, t = _t(TRI_S), _t(TRI_T)
    assert rkd_distance_loss(s, t).item() == pytest.approx(TRI_D, rel=1e-12)
    assert rkd_angle_loss(s, t).item() == pytest.approx(TRI_A, rel=1e-12)
    assert rkd_loss(s, t).item() == pytest.approx(TRI_RKD, rel=1e-12)  # paper weights 25 / 50
    assert rkd_loss(s, t, w_distance=1.0, w_angle=0.0).item() == pytest.approx(TRI_D, rel=1e-12)
    assert rkd_distance_loss(_t(LIN_S), _t(LIN_T)).item() == pytest.approx(LIN_D, rel=1e-12)  # Huber linear branch
    assert rkd_loss(s.float(), t.float()).item() == pytest.approx(TRI_RKD, rel=1e-5)


def test_rkd_matches_loop_reference_on_random_batch():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(5, 4, generator=g, dtype=f64), torch.randn(5, 9, generator=g, dtype=f64)
    d, a = _np_rkd(s.numpy(), t.numpy())
    assert rkd_distance_loss(s, t).item() == pytest.approx(d, rel=1e-10)
    assert rkd_angle_loss(s, t).item() == pytest.approx(a, rel=1e-10)


def test_rkd_invariant_to_scale_and_dimension():
    g = torch.Generator().manual_seed(1)
    s, t = torch.randn(6, 4, generator=g, dtype=f64), torch.randn(6, 16, generator=g, dtype=f64)
    d0, a0 = rkd_distance_loss(s, t).item(), rkd_angle_loss(s, t).item()
    # uniform scaling of either side (and a translation) changes nothing
    assert rkd_distance_loss(3.7 * s + 1.0, 0.01 * t).item() == pytest.approx(d0, rel=1e-10)
    assert rkd_angle_loss(3.7 * s, 0.01 * t - 2.0).item() == pytest.approx(a0, rel=1e-10)
    # embedding dimension: pad the teacher to 40 dims with zeros and rotate it -> same geometry
    q, _ = torch.linalg.qr(torch.randn(40, 40, generator=g, dtype=f64))
    t40 = torch.cat([t, torch.zeros(6, 24, dtype=f64)], dim=1) @ q
    assert rkd_distance_loss(s, t40).item() == pytest.approx(d0, rel=1e-10)
    assert rkd_angle_loss(s, t40).item() == pytest.approx(a0, rel=1e-10)
    # identical geometry -> zero loss, whatever the dims
    assert rkd_loss(t, t40).item() == pytest.approx(0.0, abs=1e-12)


def test_rkd_gradients_reach_student_only_and_stay_finite():
    g = torch.Generator().manual_seed(2)
    s = torch.randn(5, 3, generator=g, requires_grad=True)
    t = torch.randn(5, 8, generator=g, requires_grad=True)
    rkd_loss(s, t).backward()
    assert s.grad is not None and torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0
    assert t.grad is None
    # two identical student embeddings: the degenerate angles are left out, gradients stay finite
    s2 = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], requires_grad=True)
    loss = rkd_loss(s2, torch.randn(4, 6, generator=g))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(s2.grad).all() and s2.grad.abs().max() < 1e3


def test_rkd_errors():
    with pytest.raises(ConfigError):
        rkd_distance_loss(torch.zeros(4, 3), torch.zeros(5, 3))  # batch mismatch
    with pytest.raises(ConfigError):
        rkd_distance_loss(torch.zeros(4), torch.zeros(4, 3))  # not 2-D
    with pytest.raises(ConfigError):
        rkd_distance_loss(torch.zeros(1, 3), torch.zeros(1, 3))  # no pair
    with pytest.raises(ConfigError):
        rkd_angle_loss(torch.randn(2, 3), torch.randn(2, 3))  # no triplet
    with pytest.raises(ConfigError) as exc:
        rkd_loss(torch.randn(4, 3), torch.randn(4, 3), w_angle=-1.0)
    assert exc.value.hint


def test_rrs_stage():
    assert [rrs_stage(e, 2) for e in range(4)] == ["relational", "relational", "response", "response"]
    assert rrs_stage(0, 0) == "response"
    for bad in [(-1, 2), (0, -1), (1.5, 2), (0, True)]:
        with pytest.raises(ConfigError):
            rrs_stage(*bad)


# ====================================================================== FocusNet (SNTL-NTU 2024)
# 2 examples x 3 classes, tau = 1:
#   ex 1: z_s = [0,0,0] (p_s = 1/3 each), z_t = [ln2,0,0] (p_t = [1/2,1/4,1/4]), y = 0
#     d = [−1/6, 1/12, 1/12];  z_s + d = [−1/6, 1/12, 1/12]
#     L_cls = ln(e^(−1/6) + 2e^(1/12)) + 1/6;  L_att = −Σ w ln(1/3) = ln 3;  H = ln 3
#   ex 2: z_s = [ln2,0,0] (p_s = [1/2,1/4,1/4]), z_t = [0,0,0] (p_t uniform), y = 1
#     d = [1/6, −1/12, −1/12];  z_s + d = [ln2 + 1/6, −1/12, −1/12]
#     L_cls = ln(2e^(1/6) + 2e^(−1/12)) + 1/12;  L_att = −⅓(ln½ + 2 ln¼) = 5/3 ln2;  H = 3/2 ln2
#   L = L_cls + α L_att − β H
FN_ZS = [[0.0, 0.0, 0.0], [LN2, 0.0, 0.0]]
FN_ZT = [[LN2, 0.0, 0.0], [0.0, 0.0, 0.0]]
FN_Y = [0, 1]
FN_CLS = [1.2720194616385518, 1.5190866004387886]
FN_L_11 = [1.2720194616385518, 1.634611130532113]    # alpha = beta = 1
FN_L_205 = [2.9199378946407166, 3.309716816885314]   # alpha = 2, beta = 0.5


def test_focusnet_hand_numbers_formulas():
    e = math.exp
    assert FN_CLS == pytest.approx([math.log(e(-1 / 6) + 2 * e(1 / 12)) + 1 / 6,
                                    math.log(2 * e(1 / 6) + 2 * e(-1 / 12)) + 1 / 12], rel=1e-12)
    att, ent = [LN3, 5 / 3 * LN2], [LN3, 1.5 * LN2]
    # plain-python check of L_att and H from their definitions
    for zs, zt, a, h in zip(FN_ZS, FN_ZT, att, ent):
        ps = [math.exp(v) / sum(math.exp(u) for u in zs) for v in zs]
        pt = [math.exp(v) / sum(math.exp(u) for u in zt) for v in zt]
        assert -sum(w * math.log(p) for w, p in zip(pt, ps)) == pytest.approx(a, rel=1e-12)
        assert -sum(p * math.log(p) for p in ps) == pytest.approx(h, rel=1e-12)
    assert FN_L_11 == pytest.approx([c + a - h for c, a, h in zip(FN_CLS, att, ent)], rel=1e-12)
    assert FN_L_205 == pytest.approx([c + 2 * a - 0.5 * h for c, a, h in zip(FN_CLS, att, ent)], rel=1e-12)


def test_focusnet_hand_case():
    zs, zt, y = _t(FN_ZS), _t(FN_ZT), torch.tensor(FN_Y)
    per = focusnet_loss(zs, zt, y, reduction="none")
    assert per.shape == (2,) and per.tolist() == pytest.approx(FN_L_11, rel=1e-12)
    assert focusnet_loss(zs, zt, y).item() == pytest.approx(sum(FN_L_11) / 2, rel=1e-12)
    assert focusnet_loss(zs, zt, y, reduction="sum").item() == pytest.approx(sum(FN_L_11), rel=1e-12)
    per_205 = focusnet_loss(zs, zt, y, alpha=2.0, beta=0.5, reduction="none")
    assert per_205.tolist() == pytest.approx(FN_L_205, rel=1e-12)
    assert focusnet_loss(zs, zt, y, alpha=0.0, beta=0.0, reduction="none").tolist() == pytest.approx(FN_CLS, rel=1e-12)
    # soft (one-hot) targets give the same numbers; float32 agrees to float32 precision
    onehot = F.one_hot(y, 3).to(f64)
    assert focusnet_loss(zs, zt, onehot, reduction="none").tolist() == pytest.approx(FN_L_11, rel=1e-12)
    assert focusnet_loss(zs.float(), zt.float(), y).item() == pytest.approx(sum(FN_L_11) / 2, rel=1e-6)


# Warm labels, one example, y = 0:
#   z_s = [ln2, 0, 0] (p_s = [1/2, 1/4, 1/4]), z_t = [ln3, ln3, 0] (p_t = [3/7, 3/7, 1/7])
#   soft (tau = 1): L_att = −(3/7 ln½ + 3/7 ln¼ + 1/7 ln¼) = 11/7 ln2
#   multi_hot: classes with p_t > 1/3 = {0, 1}, ∪ {y=0} -> w = [½, ½, 0]: L_att = −(½ ln½ + ½ ln¼) = 3/2 ln2
#   soft, tau = 2: w = softmax([ln3/2, ln3/2, 0]) = [√3, √3, 1]/(2√3 + 1): L_att = w_0 ln2 + 2 w_1 ln2 + 2 w_2 ln2
def test_focusnet_warm_labels():
    zs, zt, y = _t([[LN2, 0.0, 0.0]]), _t([[LN3, LN3, 0.0]]), torch.tensor([0])

    def att(**kw):  # L(alpha=1) − L(alpha=0) isolates L_att
        return (focusnet_loss(zs, zt, y, alpha=1.0, **kw) - focusnet_loss(zs, zt, y, alpha=0.0, **kw)).item()

    assert att() == pytest.approx(11 / 7 * LN2, rel=1e-12)
    assert att(warm_labels="multi_hot") == pytest.approx(1.5 * LN2, rel=1e-12)
    r3 = math.sqrt(3.0)
    w = [r3 / (2 * r3 + 1), r3 / (2 * r3 + 1), 1 / (2 * r3 + 1)]
    assert att(tau=2.0) == pytest.approx(w[0] * LN2 + w[1] * 2 * LN2 + w[2] * 2 * LN2, rel=1e-12)
    # multi_hot adds the labelled class even when the teacher does not point at it: y = 2 -> w = 1/3 each
    y2 = torch.tensor([2])
    a2 = (focusnet_loss(zs, zt, y2, warm_labels="multi_hot") -
          focusnet_loss(zs, zt, y2, alpha=0.0, warm_labels="multi_hot")).item()
    assert a2 == pytest.approx(5 / 3 * LN2, rel=1e-12)


def test_focusnet_gradient_student_only_and_errors():
    g = torch.Generator().manual_seed(4)
    zs = torch.randn(4, 10, generator=g, requires_grad=True)
    zt = torch.randn(4, 10, generator=g, requires_grad=True)
    focusnet_loss(zs, zt, torch.randint(0, 10, (4,), generator=g)).backward()
    assert zs.grad is not None and torch.isfinite(zs.grad).all() and zs.grad.abs().sum() > 0
    assert zt.grad is None
    z, y = torch.zeros(2, 3), torch.tensor([0, 1])
    for kw in [dict(alpha=-1.0), dict(beta=-0.1), dict(tau=0.0), dict(reduction="avg"), dict(warm_labels="hard")]:
        with pytest.raises(ConfigError) as exc:
            focusnet_loss(z, z, y, **kw)
        assert exc.value.hint
    with pytest.raises(ConfigError):
        focusnet_loss(z, torch.zeros(2, 4), y)
    with pytest.raises(ConfigError):
        focusnet_loss(z, z, torch.tensor([0, 3]))


# ====================================================================== mean teacher (ITMO 2024)

def test_ema_update_linear_and_buffers():
    student = nn.Sequential(nn.Linear(2, 1), nn.BatchNorm1d(1))
    teacher = nn.Sequential(nn.Linear(2, 1), nn.BatchNorm1d(1))
    with torch.no_grad():
        teacher[0].weight.copy_(torch.tensor([[1.0, 2.0]]))
        teacher[0].bias.copy_(torch.tensor([3.0]))
        student[0].weight.copy_(torch.tensor([[5.0, -2.0]]))
        student[0].bias.copy_(torch.tensor([0.0]))
        student[1].running_mean.fill_(0.25)
        student[1].running_var.fill_(4.0)
        student[1].num_batches_tracked.fill_(7)
    ema_update(teacher, student, decay=0.9)
    # 0.9·t + 0.1·s: [0.9 + 0.5, 1.8 − 0.2], 2.7 + 0
    assert teacher[0].weight[0].tolist() == pytest.approx([1.4, 1.6], rel=1e-6)
    assert teacher[0].bias.tolist() == pytest.approx([2.7], rel=1e-6)
    # BN affine params are parameters (EMA of equal values = same), running stats are copied
    assert teacher[1].running_mean.item() == 0.25 and teacher[1].running_var.item() == 4.0
    assert teacher[1].num_batches_tracked.item() == 7
    assert student[0].weight.tolist() == [[5.0, -2.0]]  # student untouched
    ema_update(teacher, student, decay=0.0)  # decay 0 copies the student
    assert teacher[0].weight.tolist() == [[5.0, -2.0]]


def test_ema_update_default_decay_one_step():
    g = torch.Generator().manual_seed(6)
    student, teacher = nn.Linear(4, 3), nn.Linear(4, 3)
    with torch.no_grad():
        for m in (student, teacher):
            for p in m.parameters():
                p.copy_(torch.randn(p.shape, generator=g))
    t0 = {n: p.detach().clone() for n, p in teacher.named_parameters()}
    ema_update(teacher, student)  # decay = 0.999
    for n, p in teacher.named_parameters():
        expect = 0.999 * t0[n] + 0.001 * dict(student.named_parameters())[n].detach()
        assert torch.allclose(p, expect, rtol=1e-6, atol=1e-7)
        assert p.grad is None


def test_ema_update_errors():
    with pytest.raises(ConfigError):
        ema_update(nn.Linear(2, 1), nn.Linear(2, 1), decay=1.5)
    with pytest.raises(ConfigError):
        ema_update(nn.Linear(2, 1), nn.Linear(3, 1))
    with pytest.raises(ConfigError):
        ema_update(nn.Linear(2, 1), nn.Sequential(nn.Linear(2, 1)))


def test_consistency_weight_schedule():
    total, w = 1000, 2.0
    assert consistency_weight(0, total, w) == pytest.approx(2 * math.exp(-5.0), rel=1e-12)  # 0.013475893998170934
    assert consistency_weight(50, total, w) == pytest.approx(2 * math.exp(-1.25), rel=1e-12)  # half-way up
    assert consistency_weight(100, total, w) == 2.0   # end of ramp-up (10 %)
    assert consistency_weight(150, total, w) == 2.0   # constant phase
    assert consistency_weight(199, total, w) == 2.0
    assert consistency_weight(200, total, w) == 2.0   # decay starts at 20 %
    assert consistency_weight(600, total, w) == pytest.approx(1.0, rel=1e-12)  # half way through the decay
    assert consistency_weight(1000, total, w) == 0.0  # end
    assert consistency_weight(5000, total, w) == 0.0
    vals = [consistency_weight(s, total) for s in range(0, 101)]
    assert all(a < b for a, b in zip(vals, vals[1:]))  # monotone ramp-up, default max 1
    for bad in [(-1, 10), (0, 0), (1.5, 10)]:
        with pytest.raises(ConfigError):
            consistency_weight(*bad)
    with pytest.raises(ConfigError):
        consistency_weight(0, 10, max_weight=-1.0)


# z_s = [[0,0,0],[ln2,0,0]] -> p_s = [1/3,1/3,1/3], [1/2,1/4,1/4]
# z_t = [[ln2,0,0],[0,ln2,0]] -> p_t = [1/2,1/4,1/4], [1/4,1/2,1/4]
#   squared diffs: ex 1 [1/36, 1/144, 1/144] -> mean 1/72;  ex 2 [1/16, 1/16, 0] -> mean 1/24
#   consistency = (1/72 + 1/24)/2 = 1/36
#   CE (y = [0, 1]): ln 3, −ln ¼ = 2 ln2
MT_ZS, MT_ZT, MT_Y = [[0.0, 0.0, 0.0], [LN2, 0.0, 0.0]], [[LN2, 0.0, 0.0], [0.0, LN2, 0.0]], [0, 1]


def test_consistency_and_mse_kd_hand_case():
    zs, zt, y = _t(MT_ZS), _t(MT_ZT), torch.tensor(MT_Y)
    assert consistency_loss(zs, zt).item() == pytest.approx(1 / 36, rel=1e-12)
    assert consistency_loss(zs, zt, reduction="none").tolist() == pytest.approx([1 / 72, 1 / 24], rel=1e-12)
    assert consistency_loss(zs, zt).item() == pytest.approx(
        F.mse_loss(F.softmax(zs, -1), F.softmax(zt, -1)).item(), rel=1e-12)
    per = mse_kd_loss(zs, zt, y, reduction="none")  # lam = 0.5
    assert per.tolist() == pytest.approx([0.5 * LN3 + 0.5 / 72, 0.5 * 2 * LN2 + 0.5 / 24], rel=1e-12)
    assert per.tolist() == pytest.approx([0.5562505887784993, 0.7139805138932787], rel=1e-12)
    per2 = mse_kd_loss(zs, zt, y, lam=0.2, reduction="none")
    assert per2.tolist() == pytest.approx([0.23083356884473308, 0.31059220555731143], rel=1e-12)
    assert mse_kd_loss(zs, zt, y, lam=0.2).item() == pytest.approx(sum(per2.tolist()) / 2, rel=1e-12)
    assert mse_kd_loss(zs, zt, y, lam=1.0).item() == pytest.approx((LN3 + 2 * LN2) / 2, rel=1e-12)


def test_mean_teacher_losses_gradient_student_only_and_errors():
    g = torch.Generator().manual_seed(5)
    for fn in (lambda a, b: consistency_loss(a, b), lambda a, b: mse_kd_loss(a, b, torch.tensor([1, 2, 3]))):
        zs = torch.randn(3, 10, generator=g, requires_grad=True)
        zt = torch.randn(3, 10, generator=g, requires_grad=True)
        fn(zs, zt).backward()
        assert zs.grad is not None and zs.grad.abs().sum() > 0 and zt.grad is None
    z = torch.zeros(2, 3)
    with pytest.raises(ConfigError):
        consistency_loss(z, torch.zeros(2, 4))
    with pytest.raises(ConfigError):
        consistency_loss(z, z, reduction="avg")
    with pytest.raises(ConfigError) as exc:
        mse_kd_loss(z, z, torch.tensor([0, 1]), lam=2.0)
    assert exc.value.hint


def test_ema_decay_warm_up_of_the_reference_code():
    """min(1 − 1/(step + 1), decay): 0, 1/2, 2/3, ... 0.9 at step 9, capped at the decay from step 999."""
    assert [ema_decay_at(s) for s in (0, 1, 2, 9)] == [0.0, 0.5, pytest.approx(2 / 3), pytest.approx(0.9)]
    assert ema_decay_at(998) == pytest.approx(0.998999, abs=1e-6)
    assert ema_decay_at(999) == ema_decay_at(10**6) == 0.999
    assert ema_decay_at(50, decay=0.9) == 0.9
    for bad in (-1, 1.5, True):
        with pytest.raises(ConfigError, match="step"):
            ema_decay_at(bad)
    with pytest.raises(ConfigError, match="decay"):
        ema_decay_at(3, decay=1.2)
