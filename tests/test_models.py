"""Model registry and the exact DCASE 2024 baseline CP-Mobile counts."""

import pytest
import torch

from asc_edge.complexity import MAX_MACS, MAX_PARAM_BYTES, Complexity, check_budget, measure
from asc_edge.errors import BudgetError, ConfigError
from asc_edge.models import LogitEnsemble, build_model, model_names
from asc_edge.models.cp_mobile import make_divisible


def test_cp_mobile_matches_dcase2024_baseline_counts():
    c = measure(build_model("cp-mobile"), n_mels=256, frames=65)
    assert c.params == 61_148
    assert c.macs == 29_419_156
    assert c.param_bytes == {"int8": 61_148, "fp16": 122_296, "fp32": 244_592}
    assert c.within_budget("int8") and c.within_budget("fp16") and not c.within_budget("fp32")


def test_cp_mobile_24_matches_sntl_ntu_student():
    # 24-BCBL of SNTL-NTU (DCASE 2024): 35,062 parameters (shared/models README); 44.1 kHz input 256 x 89.
    assert measure(build_model("cp-mobile-24"), n_mels=256, frames=89).params == 35_062


def test_cp_mobile_channel_plan_and_state_dict_layout():
    m = build_model("cp-mobile")
    assert m.config.channels_per_stage() == [32, 32, 56, 104]
    assert [make_divisible(c * 2.1) for c in (32, 56, 104)] == [64, 120, 216]
    keys = set(m.state_dict())
    # the CPJKU baseline layout, so their checkpoints load strictly
    for k in ("in_c.0.0.weight", "in_c.1.1.running_mean", "stages.s1.b3.block.1.0.weight",
              "stages.s3.b6.block.2.1.bias", "feed_forward.0.weight", "feed_forward.1.weight"):
        assert k in keys
    out = m.eval()(torch.randn(2, 1, 256, 65))
    assert out.shape == (2, 10)


@pytest.mark.parametrize("name", model_names())
def test_every_model_builds_and_runs(name):
    """At the input shape of the model's own log-mel preset."""
    from asc_edge.features import get_frontend
    from asc_edge.models import get_spec

    m = build_model(name, n_classes=7).eval()
    assert m(torch.randn(1, *get_frontend(get_spec(name).frontend).shape)).shape == (1, 7)


def test_n_bcbl_and_itmo_cp_mobile():
    """SNTL-NTU N-BCBL = CP-Mobile with N base channels (24: the shared 24-BCBL students' 35,062
    params); ITMO 2024's CP-Mobile on its own 16 kHz preset (issue 11: 61,148 params, 21.9 M MACs
    at 128×101)."""
    from asc_edge.features import get_frontend

    assert measure(build_model("cp-mobile", base_channels=24), n_mels=256, frames=89).params == 35_062
    fe = get_frontend("itmo-16k")
    assert fe.shape == (1, 128, 101)
    c = measure(build_model("cp-mobile-itmo"), n_mels=fe.n_mels, frames=fe.n_frames)
    assert c.params == 61_148 and abs(c.macs - 21.9e6) <= 0.03 * 21.9e6


def test_teachers_are_larger_than_the_student():
    student = measure(build_model("cp-mobile")).params
    for name in ("cp-resnet", "cp-mobile-wide"):
        assert measure(build_model(name)).params > 2 * student


def test_unknown_model_and_bad_kwargs_are_clear_errors():
    with pytest.raises(ConfigError, match="cp-mobile"):
        build_model("resnet-9000")
    with pytest.raises(ConfigError, match="bad settings"):
        build_model("cp-mobile", no_such_setting=3)


def test_logit_ensemble_is_the_mean_of_member_logits():
    torch.manual_seed(0)
    a, b = build_model("cp-mobile").eval(), build_model("cp-mobile").eval()
    x = torch.randn(3, 1, 256, 65)
    with torch.no_grad():
        assert torch.allclose(LogitEnsemble([a, b])(x), (a(x) + b(x)) / 2, atol=1e-6)


def test_budget_check_refuses_or_warns(caplog):
    over = Complexity(params=200_000, macs=40_000_000, input_shape=(1, 1, 256, 65))
    assert len(over.budget_problems("int8")) == 2
    with pytest.raises(BudgetError, match="--allow-over-budget"):
        check_budget(over)
    with caplog.at_level("WARNING", logger="asc_edge"):
        check_budget(over, allow_over_budget=True)
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("warning: ") and "over the DCASE Task 1 budget" in line and "\n" not in line
    ok = Complexity(params=MAX_PARAM_BYTES, macs=MAX_MACS, input_shape=(1, 1, 256, 65))
    check_budget(ok)  # exactly at the limit is allowed


@pytest.mark.parametrize("name,params,macs", [
    ("ghost-bcres2net-snake-large", 87_280, 28_639_156), ("ghost-bcres2net-snake-small", 64_934, 26_840_622),
    ("ghost-bcres2net", 86_224, 28_639_156),
    ("sm1", 52_390, 25_386_830), ("sm2", 68_414, 29_183_390), ("sm3", 85_486, 36_865_374),
    ("cp-resnet-s1", 125_268, 29_516_652), ("cp-resnet-s2", 78_164, 21_980_012),
    ("cp-resnet-s3", 78_164, 21_980_012), ("cp-resnet-s4", 61_780, 19_358_572),
    ("cp-mobile-itmo", 61_148, 21_896_340)])
def test_registered_student_counts_at_their_presets(name, params, macs):
    """The exact counts the README's model table states (each family's own test compares them
    with its report within ±3 %)."""
    from asc_edge.features import get_frontend
    from asc_edge.models import get_spec

    fe = get_frontend(get_spec(name).frontend)
    c = measure(build_model(name), n_mels=fe.n_mels, frames=fe.n_frames)
    assert (c.params, c.macs) == (params, macs)
