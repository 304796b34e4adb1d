"""Spectrogram / batch augmentations: shapes, determinism, semantics."""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F

from asc_edge.augment import (AugmentConfig, augment_batch, freq_mask, freq_mixstyle, mix_targets, mixup,
                              mixup_loss, time_roll)
from asc_edge.errors import ConfigError

B, M, T = 8, 32, 20


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def batch(seed: int = 0) -> torch.Tensor:
    return torch.randn(B, 1, M, T, generator=gen(seed)) * 2 + 1


def test_defaults_are_the_seed_recipe():
    cfg = AugmentConfig()
    assert (cfg.freq_mask, cfg.time_roll) == (48, 6)
    assert (cfg.mixstyle_p, cfg.mixstyle_alpha, cfg.dir_p) == (0.4, 0.3, 0.6)
    assert (cfg.mixup_alpha, cfg.mixup_p) == (1.0, 1.0)
    assert AugmentConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize("kwargs", [dict(freq_mask=-1), dict(time_roll=1.5), dict(mixstyle_p=1.2),
                                    dict(dir_p=-0.1), dict(mixup_alpha=-1.0), dict(mixstyle_alpha=0.0)])
def test_config_validation(kwargs):
    with pytest.raises(ConfigError) as exc:
        AugmentConfig(**kwargs)
    assert exc.value.hint


def test_from_dict_rejects_unknown_keys():
    with pytest.raises(ConfigError, match="freqm"):
        AugmentConfig.from_dict({"freqm": 48})


@pytest.mark.parametrize("fn", [
    lambda x, g: freq_mask(x, 8, g),
    lambda x, g: time_roll(x, 5, g),
    lambda x, g: freq_mixstyle(x, 0.3, 1.0, g),
    lambda x, g: mixup(x, torch.zeros(B, dtype=torch.long), 1.0, g)[0],
    lambda x, g: augment_batch(x, AugmentConfig(freq_mask=8, mixstyle_p=1.0), g),
])
def test_shape_preserved_and_deterministic(fn):
    x = batch()
    a, b = fn(x, gen(42)), fn(x, gen(42))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert torch.equal(a, b)
    assert not torch.equal(a, fn(x, gen(43)))
    assert torch.equal(x, batch())  # input not modified in place


def test_freq_mask_zeros_one_band_of_at_most_max_width():
    x = torch.ones(64, 2, M, T)
    max_width = 6
    out = freq_mask(x, max_width, gen())
    zero = out == 0
    widths = []
    for i in range(x.shape[0]):
        band = zero[i, 0, :, 0]
        # the same bins are masked in every frame and channel
        assert torch.equal(zero[i], band[None, :, None].expand(2, M, T))
        idx = band.nonzero().flatten()
        if len(idx):
            assert idx.max() - idx.min() + 1 == len(idx)  # contiguous
        widths.append(len(idx))
    assert max(widths) <= max_width - 1 and max(widths) > 0 and min(widths) == 0
    assert torch.equal(freq_mask(x, 0, gen()), x)
    assert freq_mask(x, 4, gen(), fill=-11.5).min() == -11.5
    with pytest.raises(ConfigError):
        freq_mask(x, M + 1, gen())


def test_time_roll_is_a_per_example_roll():
    x = batch()
    max_shift = 3
    out = time_roll(x, max_shift, gen())
    shifts = []
    for i in range(B):
        # same multiset of values
        assert torch.equal(out[i].flatten().sort().values, x[i].flatten().sort().values)
        match = [s for s in range(-max_shift, max_shift + 1) if torch.equal(out[i], torch.roll(x[i], s, dims=-1))]
        assert len(match) == 1
        shifts.append(match[0])
    assert len(set(shifts)) > 1  # iid per example
    assert torch.equal(time_roll(x, 0, gen()), x)


def test_mixstyle_p0_identity_p1_mixes_band_statistics():
    x = batch()
    assert freq_mixstyle(x, 0.3, 0.0, gen()) is x
    out = freq_mixstyle(x, 0.3, 1.0, gen())
    assert out.shape == x.shape
    assert not torch.allclose(out, x, atol=1e-3)
    mu, sig = x.mean(dim=(1, 3)), (x.var(dim=(1, 3)) + 1e-6).sqrt()      # (B, M)
    mu_o, sig_o = out.mean(dim=(1, 3)), out.var(dim=(1, 3)).sqrt()
    # every example's band stats are the convex mix (same lambda for all bands) of its own and one partner's
    for i in range(B):
        best = None
        for j in range(B):
            if j == i:
                lam = torch.tensor(1.0)
            else:
                d = mu[i] - mu[j]
                lam = ((mu_o[i] - mu[j]) * d).sum() / (d * d).sum()
            err = (mu_o[i] - (lam * mu[i] + (1 - lam) * mu[j])).abs().max() + \
                (sig_o[i] - (lam * sig[i] + (1 - lam) * sig[j])).abs().max()
            if best is None or err < best[0]:
                best = (err, lam)
        assert best[0] < 1e-3 and 0.0 <= best[1] <= 1.0 + 1e-4


def test_mixstyle_gradient_flows_through_normalised_input():
    x = batch().requires_grad_(True)
    freq_mixstyle(x, 0.3, 1.0, gen()).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_mixup_lambda_in_upper_half_and_mix_formula():
    x = batch()
    y = torch.arange(B)
    xm, perm, lam = mixup(x, y, 1.0, gen())
    assert lam.shape == (B,) and perm.shape == (B,)
    assert ((lam >= 0.5) & (lam <= 1.0)).all()
    assert sorted(perm.tolist()) == list(range(B))
    expected = lam[:, None, None, None] * x + (1 - lam[:, None, None, None]) * x[perm]
    assert torch.allclose(xm, expected)
    # disabled: alpha 0 or p 0 -> identity
    for kwargs in (dict(alpha=0.0), dict(alpha=1.0, p=0.0)):
        x2, perm2, lam2 = mixup(x, y, generator=gen(), **kwargs)
        assert x2 is x and torch.equal(perm2, torch.arange(B)) and torch.equal(lam2, torch.ones(B))
    with pytest.raises(ConfigError):
        mixup(x, torch.arange(B + 1), 1.0, gen())


def test_mixup_loss():
    g = gen(5)
    logits = torch.randn(B, 10, generator=g)
    y = torch.randint(0, 10, (B,), generator=g)
    perm = torch.randperm(B, generator=g)
    ce = functools.partial(F.cross_entropy, reduction="none")
    # lam = 1 -> the plain loss
    assert mixup_loss(ce, logits, y, perm, torch.ones(B)).item() == pytest.approx(F.cross_entropy(logits, y).item())
    # general lam: same as cross-entropy against the mixed soft targets
    lam = torch.rand(B, generator=g) * 0.5 + 0.5
    soft = mix_targets(y, perm, lam, num_classes=10)
    assert torch.allclose(soft.sum(1), torch.ones(B))
    assert mixup_loss(ce, logits, y, perm, lam).item() == pytest.approx(F.cross_entropy(logits, soft).item(), rel=1e-5)
    assert mixup_loss(ce, logits, y, perm, lam, reduction="none").shape == (B,)
    with pytest.raises(ConfigError, match="per-example"):
        mixup_loss(F.cross_entropy, logits, y, perm, lam)


def test_augment_batch_disabled_is_identity_and_needs_generator():
    x = batch()
    assert torch.equal(augment_batch(x, AugmentConfig.disabled(), gen()), x)
    with pytest.raises(ConfigError, match="Generator"):
        augment_batch(x, AugmentConfig(), None)
    with pytest.raises(ConfigError):
        augment_batch(x[:, 0], AugmentConfig(), gen())
