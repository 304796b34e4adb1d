"""Structured L1-norm filter pruning (``asc_edge.prune``, ``asc-edge prune``; issue 14 item 1).

* the L1 ranking keeps the largest-norm filters (hand-made weights), BN / consumers follow;
* the rebuild is exact: with the removed filters' outputs exactly zero, the pruned model computes
  what the original computes (kept feature maps and logits);
* the AI4EDGE case, SM3 28/28/28/28 → 22/22/24/24 (counts below, and why they sit above the report's);
* ``target_params`` meets the target; unsupported families / bad counts are one ConfigError;
* a pruned checkpoint round-trips through ``load_checkpoint``; ``TrainConfig.init_checkpoint``;
* the CLI on a tiny sm1 run (1 epoch) writes ``<run>_pruned``; bad input is one ``error:`` line;
* one device test: the pruned (BN-calibrated) SM3 exported and benched bit-exact on 3 clips.
"""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from asc_edge.checkpoint import load_checkpoint
from asc_edge.cli import app
from asc_edge.complexity import MAX_MACS, measure
from asc_edge.errors import CheckpointError, ConfigError
from asc_edge.models import build_model
from asc_edge.prune import l1_filter_norms, parse_filters, prune_model

SM3_AI4EDGE = [20, 22, 22, 24, 24, 16]   # the report prunes the four middle convs 28/28/28/28 → 22/22/24/24
TINY = ("--epochs", "1", "--batch-size", "4", "--val-every", "1", "--no-progress", "--dir-p", "0")


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One intra-op thread (the CPU is shared; OpenMP spin-waiting slows these tiny models down)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def convs_of(model):
    return [m for m in model.features if isinstance(m, torch.nn.Conv2d)]


def bns_of(model):
    return [m for m in model.features if isinstance(m, torch.nn.BatchNorm2d)]


def randomise_bn(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    for bn in bns_of(model):
        n = bn.num_features
        bn.weight.data = torch.rand(n, generator=g) + 0.5
        bn.bias.data = torch.randn(n, generator=g) * 0.1
        bn.running_mean = torch.randn(n, generator=g) * 0.1
        bn.running_var = torch.rand(n, generator=g) + 0.5
    return model


def assert_one_error_line(result, *needles):
    out = result.output
    assert result.exit_code == 2, f"exit {result.exit_code}: {out}\n{result.exception!r}"
    assert "Traceback" not in out
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "(fix: " in lines[0], out
    for n in needles:
        assert str(n) in lines[0], (n, lines[0])


# ----------------------------------------------------------------------------------- ranking, rebuild
def test_l1_ranking_keeps_the_largest_norm_filters():
    """conv2 of SM1 (28 filters) gets hand-made filters of known L1 norm (signs mixed: |w| counts);
    keeping 5 keeps the 5 largest, in their original order, with their BN channels and the next
    conv's matching input slices."""
    torch.manual_seed(0)
    model = randomise_bn(build_model("sm1")).eval()
    conv2, conv3 = convs_of(model)[1], convs_of(model)[2]
    norms = torch.tensor([float((5 * j) % 28 + 1) for j in range(28)])     # a permutation of 1 … 28
    with torch.no_grad():
        for j in range(28):
            w = torch.full_like(conv2.weight[j], norms[j] / conv2.weight[j].numel())
            w.view(-1)[::2] *= -1                                           # L1 ignores the sign
            conv2.weight[j] = w
    assert torch.allclose(l1_filter_norms(conv2), norms)
    want = sorted(torch.argsort(norms, descending=True)[:5].tolist())

    pruned, kwargs, report = prune_model(model, "sm1", {}, filters=[20, 5, 28, 16])
    lay = report["layers"][1]
    assert (lay["layer"], lay["module"], lay["before"], lay["after"]) == ("conv2", "features.3", 28, 5)
    assert lay["kept"] == want and sorted(lay["kept"] + lay["removed"]) == list(range(28))
    assert min(lay["l1_kept"]) > max(lay["l1_removed"])
    assert all(not report["layers"][i]["removed"] for i in (0, 2, 3))
    assert kwargs["convs"][1] == [5, 7, 3] and kwargs["convs"][0] == [20, 7, 5]
    p2, p3 = convs_of(pruned)[1], convs_of(pruned)[2]
    assert torch.equal(p2.weight, conv2.weight[want]) and torch.equal(p2.bias, conv2.bias[want])
    bn, pbn = bns_of(model)[1], bns_of(pruned)[1]
    for name in ("weight", "bias", "running_mean", "running_var"):
        assert torch.equal(getattr(pbn, name), getattr(bn, name)[want]), name
    assert torch.equal(p3.weight, conv3.weight[:, want]) and torch.equal(p3.bias, conv3.bias)
    assert not pruned.training and model.features[3].out_channels == 28   # the original is untouched


@pytest.mark.parametrize("name,keep", [("sm3", SM3_AI4EDGE), ("sm1", [12, 17, 9, 6])])
def test_rebuild_is_exact_when_the_removed_filters_are_zero(name, keep):
    """Zero the removed filters' conv weights, bias and BN affine (their activations are exactly 0, and
    their L1 norm the smallest): the pruned model's kept feature maps and logits equal the original's.
    Covers conv → conv (through pools) and the last conv → flatten → Linear."""
    torch.manual_seed(1)
    model = randomise_bn(build_model(name), seed=1).eval()
    g = torch.Generator().manual_seed(2)
    removed_by_layer = []
    with torch.no_grad():
        for conv, bn, k in zip(convs_of(model), bns_of(model), keep):
            removed = sorted(torch.randperm(conv.out_channels, generator=g)[: conv.out_channels - k].tolist())
            removed_by_layer.append(removed)
            for t in (conv.weight, conv.bias, bn.weight, bn.bias):
                t[removed] = 0
    pruned, kwargs, report = prune_model(model, name, {}, filters=keep)
    assert [lay["removed"] for lay in report["layers"]] == removed_by_layer
    assert [c[0] for c in kwargs["convs"]] == keep
    x = torch.randn(4, 1, 140, 8)
    with torch.no_grad():
        kept_last = report["layers"][-1]["kept"]
        torch.testing.assert_close(pruned.features(x), model.features(x)[:, kept_last])
        torch.testing.assert_close(pruned(x), model(x))


# ----------------------------------------------------------------------------------- the AI4EDGE case
def test_sm3_pruned_as_ai4edge_counts():
    """AI4EDGE prunes SM3's four middle convs (our conv2 … conv5, ``features.3/8/11/16``) from 28/28/28/28
    to 22/22/24/24 filters and reports 86.1 K → ~61.2 K parameters, 37 M → ~25.7 M MACs.

    Our SM3 meets the unpruned figures (85,486 params, 36.87 M MACs: -0.7 % / -0.4 %, see
    tests/test_models_ai4edge.py), but the pruned one gives 64,622 params and 26.59 M MACs: +5.6 % /
    +3.5 % over the report, outside ±3 %. No definition consistent with the unpruned counts reaches
    them: removing those filters saves conv weights 20·6·21 + (28²−22²)·21 + (28²−22·24)·21 +
    (28²−24²)·21 + 4·16·35 ≈ 20.9 K parameters, and at the layer areas the three unpruned MAC figures fix
    (140×8, 70×8, 17×8 positions) 10.3 M MACs; the report's differences are 24.9 K and 11.3 M. The
    report's counting convention (4 BN values per channel) changes the pruned count by < 0.4 K, and no
    other order of 22/22/24/24 over the four layers does better (22/24/22/24: 64.5 K, 26.9 M). The
    report's pruned figures therefore come from a network or count we cannot reconstruct; asserted here
    are our exact torchinfo counts, the gap to the report, and the point of the exercise: within the
    30 M MAC budget after pruning, over it before."""
    torch.manual_seed(0)
    model = build_model("sm3").eval()
    pruned, kwargs, report = prune_model(model, "sm3", {}, filters=SM3_AI4EDGE)
    assert [lay["before"] for lay in report["layers"]] == [20, 28, 28, 28, 28, 16]
    assert [(lay["module"], lay["after"]) for lay in report["layers"][1:5]] == \
        [("features.3", 22), ("features.8", 22), ("features.11", 24), ("features.16", 24)]
    assert kwargs == {"convs": [[20, 7, 5], [22, 7, 3], [22, 7, 3], [24, 3, 7], [24, 3, 7], [16, 7, 5]]}
    b, a = report["before"], report["after"]
    assert b["input_shape"] == a["input_shape"] == [1, 1, 140, 8]          # the ai4edge-8k preset
    assert abs(b["params"] / 86_116 - 1) <= 0.03 and abs(b["macs"] / 37_000_000 - 1) <= 0.03
    assert (a["params"], a["macs"]) == (64_622, 26_592_822)
    assert a == measure(build_model("sm3", **kwargs), 140, 8).to_dict()
    assert 0.05 < a["params"] / 61_200 - 1 < 0.06 and 0.03 < a["macs"] / 25_700_000 - 1 < 0.04
    assert b["macs"] > MAX_MACS >= a["macs"] and a["params"] <= 128_000


def test_target_params_meets_the_target():
    torch.manual_seed(0)
    model = build_model("sm3").eval()
    for target in (61_200, 30_000):
        pruned, kwargs, report = prune_model(model, "sm3", {}, target_params=target)
        params = measure(pruned, 140, 8).params
        assert params == report["after"]["params"] <= target
        assert params >= 0.97 * target                                # the rounding slack is filled
        counts = report["filters_after"]
        assert [c[0] for c in kwargs["convs"]] == counts and report["mode"] == "target_params"
        ratios = [n / c for n, c in zip(counts, report["filters_before"])]
        assert max(ratios) - min(ratios) < 0.15, ratios               # near-uniform
    with pytest.raises(ConfigError, match="no uniform filter ratio"):
        prune_model(model, "sm3", {}, target_params=500)
    same, kw, rep = prune_model(model, "sm3", {}, target_params=10**6)   # already fits: nothing removed
    assert rep["filters_after"] == rep["filters_before"] and not any(lay["removed"] for lay in rep["layers"])


def test_refusals_are_one_config_error():
    sm3 = build_model("sm3")
    with pytest.raises(ConfigError) as e:
        prune_model(build_model("cp-mobile"), "cp-mobile", {}, filters=[1])
    assert "sm1, sm2, sm3" in e.value.hint
    with pytest.raises(ConfigError, match="exactly one"):
        prune_model(sm3, "sm3", {})
    with pytest.raises(ConfigError, match="exactly one"):
        prune_model(sm3, "sm3", {}, filters=SM3_AI4EDGE, target_params=60_000)
    with pytest.raises(ConfigError, match="do not fit"):
        prune_model(sm3, "sm3", {}, filters=[20, 22, 22, 24])
    with pytest.raises(ConfigError, match="do not fit"):
        prune_model(sm3, "sm3", {}, filters=[20, 29, 22, 24, 24, 16])
    with pytest.raises(ConfigError, match="do not rebuild"):
        prune_model(sm3, "sm1", {}, filters=[20, 22, 22, 16])
    assert parse_filters("20, 22,22") == [20, 22, 22]
    for bad in ("", "a,b", "20,0"):
        with pytest.raises(ConfigError, match="--filters"):
            parse_filters(bad)


def test_pruned_checkpoint_round_trips(tmp_path):
    torch.manual_seed(0)
    model = randomise_bn(build_model("sm3")).eval()
    pruned, kwargs, _ = prune_model(model, "sm3", {}, filters=SM3_AI4EDGE)
    labels = [f"c{i}" for i in range(10)]
    from asc_edge.features import get_frontend

    torch.save({"hyper_parameters": {"model_name": "sm3", "model_kwargs": json.loads(json.dumps(kwargs)),
                                     "labels": labels, "frontend": get_frontend("ai4edge-8k").to_dict()},
                "state_dict": {"model." + k: v for k, v in pruned.state_dict().items()}}, tmp_path / "model.ckpt")
    loaded = load_checkpoint(tmp_path)
    assert [c.out_channels for c in convs_of(loaded.model)] == SM3_AI4EDGE
    x = torch.randn(3, 1, 140, 8)
    with torch.no_grad():
        assert torch.equal(loaded.model(x), pruned(x))


# ----------------------------------------------------------------------------------- CLI, training
def test_cli_bad_input_is_one_error_line(tmp_path):
    r = CliRunner()
    assert_one_error_line(r.invoke(app, ["prune", str(tmp_path)]), "exactly one of --target-params and --filters")
    assert_one_error_line(r.invoke(app, ["prune", str(tmp_path), "--filters", "1,2", "--target-params", "9"]),
                          "exactly one")
    assert_one_error_line(r.invoke(app, ["prune", str(tmp_path), "--filters", "20,x"]), "--filters")
    assert_one_error_line(r.invoke(app, ["prune", str(tmp_path / "nope"), "--target-params", "1000"]),
                          "not a run directory")


def test_cli_prunes_and_fine_tunes_a_tiny_sm1_run(tiny_dataset, tmp_path):
    """sm1 trained 1 epoch at lr 0 on 4 synthetic clips; ``asc-edge prune --filters`` writes
    ``<run>_pruned`` with the pruned widths, and (the run's recipe has lr 0) its weights are exactly the
    pruned init weights: fine-tuning started from them. A mismatched ``init_checkpoint`` is a
    CheckpointError naming the file."""
    from asc_edge.train import train
    from asc_edge.train.config import TrainConfig

    data = tiny_dataset()
    runs, cache = tmp_path / "runs", tmp_path / "cache"
    r = CliRunner().invoke(app, ["train", "--data", str(data), "--model", "sm1", *TINY, "--lr", "0",
                                 "--cache-dir", str(cache), "--out", str(runs), "--name", "tiny"])
    assert r.exit_code == 0, r.output
    out = tmp_path / "pruned"
    r = CliRunner().invoke(app, ["prune", str(runs / "tiny"), "--filters", "10,14,14,8", "--epochs", "1",
                                 "--out", str(out), "--no-progress"])
    assert r.exit_code == 0, f"{r.output}\n{r.exception!r}"
    new = out / "tiny_pruned"
    assert f"run: {new}" in r.output and "params " in r.output and "MACs " in r.output
    assert "conv2: 28 -> 14 filters" in r.output
    rep = json.loads((new / "report.json").read_text())
    cfg = rep["config"]
    assert cfg["model"] == "sm1" and cfg["epochs"] == 1 and cfg["lr"] == 0 and cfg["name"] == "tiny_pruned"
    assert [c[0] for c in cfg["model_kwargs"]["convs"]] == [10, 14, 14, 8]
    assert cfg["init_checkpoint"] == str(new / "pruned_init.ckpt")
    assert rep["prune"]["filters_after"] == [10, 14, 14, 8] and rep["prune"]["source_run"] == str(runs / "tiny")
    assert rep["complexity"]["params"] == rep["prune"]["after"]["params"] < rep["prune"]["before"]["params"]
    tuned, init = load_checkpoint(new), load_checkpoint(new / "pruned_init.ckpt")
    assert [c.out_channels for c in convs_of(tuned.model)] == [10, 14, 14, 8]
    t_sd, i_sd = tuned.model.state_dict(), init.model.state_dict()
    for k in i_sd:
        if "running_" not in k and "num_batches" not in k:   # BN statistics move in training, weights at lr 0 not
            assert torch.equal(t_sd[k], i_sd[k]), k
    # init_checkpoint that does not fit the model: one CheckpointError naming the file
    src = str(runs / "tiny" / "model.ckpt")
    bad = TrainConfig(data=str(data), model="sm1", frontend="ai4edge-8k", model_kwargs=cfg["model_kwargs"],
                      epochs=1, batch_size=4, cache_dir=str(cache), out=str(tmp_path / "bad"), progress=False,
                      augment=TrainConfig.from_dict(cfg).augment, init_checkpoint=src)
    with pytest.raises(CheckpointError, match="init weights do not match") as e:
        train(bad)
    assert src in str(e.value) and not (tmp_path / "bad").exists()


# ----------------------------------------------------------------------------------- device
def test_pruned_sm3_exports_and_runs_bit_exact(shared_data, tmp_path):
    """A BN-calibrated random SM3 pruned to 22/22/24/24 (its own weights, through ``tweak``) → export
    (cmsis-nn) → bench on 3 test clips on the emulated STM32F405: bit-exact, RAM ≤ 128 KiB."""
    from conftest import bn_calibrated, export_and_bench

    from asc_edge.features import get_frontend, load_split_data

    feats = load_split_data(shared_data, "25", get_frontend("ai4edge-8k"), progress=False).features[:96]
    full = bn_calibrated("sm3", feats)
    pruned, kwargs, report = prune_model(full, "sm3", {}, filters=SM3_AI4EDGE)
    state = pruned.state_dict()
    rep, b = export_and_bench("sm3", shared_data, tmp_path, model_kwargs=kwargs,
                              tweak=lambda m: m.load_state_dict(state, strict=True))
    assert b["memory"]["ram_bytes"] <= 128 * 1024, b["memory"]
