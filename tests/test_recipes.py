"""Recipes (``recipes/*.yaml``, ``asc-edge train --config``) and ``asc-edge train-teachers`` (issue 13).

* every shipped recipe loads, names its report and builds a TrainConfig that passes ``check()``;
* an unknown key, bad YAML or a wrongly typed value is one ConfigError naming the key and the file;
* flags override the recipe only when typed (click's parameter source, not a comparison with defaults);
* train-teachers on a 4-clip synthetic set (2 members, 1 epoch) writes the json and the run directories;
* bad input to both commands → one ``error:`` line, exit status 2.

Training runs are tiny (4 clips, CP-Mobile with 8 base channels, 1 epoch, plots not rendered); the
override tests capture the TrainConfig instead of training.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from asc_edge.errors import ConfigError
from asc_edge.train import TrainConfig
from asc_edge.train.recipes import RECIPES_DIR, load_recipe, merge_config, recipe_names
from asc_edge.train.teachers import ENSEMBLES, member_configs
from test_train_cli import assert_ok, assert_one_error_line, cli  # the CLI helpers of the train tests

RECIPES = sorted(RECIPES_DIR.glob("*.yaml"))
TINY = ("--batch-size", "4", "--val-every", "1", "--no-progress")
TINY_MEMBER = {"model": "cp-mobile", "model_kwargs": {"base_channels": 8}, "augment": {"dir_p": 0.0}}


@pytest.fixture(autouse=True)
def one_torch_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def no_plots(monkeypatch):
    """Empty PNG files instead of matplotlib rendering (as tests/test_train_cli.py)."""
    import asc_edge.train.run as run_mod

    monkeypatch.setattr(run_mod, "plot_confusion_matrix", lambda cm, labels, path, **kw: Path(path).write_bytes(b""))
    monkeypatch.setattr(run_mod, "plot_training_curves", lambda history, path, **kw: Path(path).write_bytes(b""))


@pytest.fixture
def captured(monkeypatch):
    """Replace training by recording the TrainConfig the CLI built (returns None: nothing printed)."""
    import asc_edge.train as train_pkg

    seen: list[TrainConfig] = []

    def fake_train(cfg):
        cfg.check()
        seen.append(cfg)
        return None

    monkeypatch.setattr(train_pkg, "train", fake_train)
    return seen


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------------------ shipped recipes
def test_the_five_seed_recipes_are_shipped():
    assert recipe_names() == ["ai4edge2023", "itmo2024", "kt2024", "sntl2024", "tencent2023"]


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipe_loads_and_builds_a_valid_config(path, tmp_path):
    from asc_edge.features import get_frontend
    from asc_edge.models import get_spec

    recipe = load_recipe(path)
    assert "DCASE 20" in recipe["report"] and "technical report" in recipe["report"], recipe["report"]
    assert recipe["notes"].strip()
    flags = {"data": str(tmp_path / "data")}
    if recipe.get("teachers_recipe") or recipe.get("kd_scheme") == "online":
        flags["teachers"] = [str(tmp_path / "teacher.ckpt")]  # recipes that distil are run with --teacher
    cfg = merge_config(recipe, flags, set(flags))
    cfg.check()
    assert get_spec(cfg.model).role == "student"
    assert cfg.frontend == get_spec(cfg.model).frontend
    get_frontend(cfg.frontend)
    for key, value in recipe.items():  # every setting of the file reached the config
        if key == "augment":
            assert all(getattr(cfg.augment, k) == v for k, v in value.items())
        elif key not in ("report", "notes", "teachers_recipe"):
            assert getattr(cfg, key) == value, key
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg  # what report.json stores
    if "teachers_recipe" in recipe:
        tr = recipe["teachers_recipe"]
        for _, member in member_configs(tr["ensemble"], tmp_path / "data", "25", frontend=tr.get("frontend")):
            member.check()
            get_spec(member.model)


def test_recipes_use_the_seed_settings():
    r = {p.stem: load_recipe(p) for p in RECIPES}
    assert r["kt2024"]["model"] == "ghost-bcres2net-snake-small" and r["kt2024"]["kd_scheme"] == "online"
    kt = r["kt2024"]
    assert (kt["kd_lambda"], kt["kd_tau"], kt["online_teacher_lr_factor"], kt["kd_convention"]) == \
        (0.02, 2.0, 0.01, "cpjku")
    assert r["kt2024"]["teachers_recipe"]["frontend"] == "kt-288"  # online teacher shares the student's input
    assert (r["ai4edge2023"]["model"], r["ai4edge2023"]["kd_scheme"]) == ("sm2", "rrs")
    assert r["ai4edge2023"]["rrs_relational_epochs"] is None  # half of the epochs
    assert r["ai4edge2023"]["teachers_recipe"]["ensemble"] == "ai4edge-ova"
    assert (r["sntl2024"]["model"], r["sntl2024"]["kd_scheme"], r["sntl2024"]["kd_convention"]) == \
        ("cp-mobile-24", "focusnet", "sntl")
    assert r["sntl2024"]["teachers_recipe"]["ensemble"] == "sntl"
    assert (r["itmo2024"]["model"], r["itmo2024"]["kd_scheme"]) == ("cp-mobile-itmo", "mean-teacher")
    assert (r["itmo2024"]["ema_decay"], r["itmo2024"]["consistency_max"]) == (0.999, 1.0)
    assert (r["tencent2023"]["model"], r["tencent2023"]["kd_tau"]) == ("cp-resnet-s1", 3.0)


def test_teacher_ensembles():
    assert set(ENSEMBLES) == {"sntl", "cpjku", "ai4edge-ova"}
    sntl = member_configs("sntl", "d", "5")
    assert [m for m, _ in sntl] == ["mixstyle", "dir", "mixstyle-dir"]
    for _, c in sntl:
        assert (c.model, c.model_kwargs, c.frontend) == ("cp-mobile", {"base_channels": 32}, "44k-256")
    assert [(c.augment.mixstyle_p > 0, c.augment.dir_p > 0) for _, c in sntl] == \
        [(True, False), (False, True), (True, True)]
    assert [c.model for _, c in member_configs("cpjku", "d", "5")] == ["cp-resnet", "cp-mobile-wide"]
    assert [c.model for _, c in member_configs("ai4edge-ova", "d", "5")] == ["sm1-ova"]
    kt = member_configs("cpjku", "d", "split25", frontend="kt-288", epochs=3, seed=1, batch_size=8)
    assert [(c.frontend, c.split, c.epochs, c.seed, c.batch_size) for _, c in kt] == [("kt-288", "25", 3, 1, 8)] * 2
    assert kt[0][1].name == "cpjku-kt-288_split25_cp-resnet_seed1"


# ------------------------------------------------------------------------------- bad recipe files
@pytest.mark.parametrize("text, needles", [
    ("model: cp-mobile\nepochz: 3\n", ["unknown key 'epochz'", "epochs", "kd_scheme", "report"]),
    ("augment:\n  mixstyle_q: 0.1\n", ["unknown key 'augment.mixstyle_q'", "mixstyle_p"]),
    ("model: cp-mobile\n  epochs: [3\n", ["not valid YAML", "line"]),
    ("epochs: ten\n", ["epochs", "'ten'", "int"]),
    ("- model\n- cp-mobile\n", ["not a mapping"]),
    ("", ["empty"]),
    ("augment:\n  dir_p: 2.0\n", ["dir_p"]),
    ("teachers_recipe:\n  ensemble: passt\n", ["teachers_recipe.ensemble 'passt'", "sntl"]),
], ids=["unknown-key", "unknown-augment-key", "bad-yaml", "bad-type", "list", "empty", "bad-augment-value",
        "unknown-ensemble"])
def test_bad_recipe_is_one_config_error(text, needles, tmp_path):
    path = write(tmp_path / "my recipe.yaml", text)
    with pytest.raises(ConfigError) as e:
        load_recipe(path)
    msg = str(e.value)
    assert str(path) in msg, msg
    for n in needles:
        assert n in msg, (n, msg)


def test_recipe_values_are_typed(tmp_path):
    r = load_recipe(write(tmp_path / "r.yaml", "split: 5\nlr: 1\nteacher_logits: null\naugment: {freq_mask: 0}\n"))
    assert r == {"split": "5", "lr": 1.0, "teacher_logits": None, "augment": {"freq_mask": 0}}
    assert isinstance(r["lr"], float)


# ------------------------------------------------------------------------- flags override recipes
RECIPE = """\
report: test recipe (DCASE 2024 Task 1 technical report)
model: cp-mobile
model_kwargs: {base_channels: 8}
epochs: 7
lr: 0.001
seed: 3
kd_tau: 3.0
augment:
  mixstyle_p: 0.1
  dir_p: 0.0
  mixup_p: 0.5
"""


def test_typed_flags_beat_the_recipe_untyped_flags_keep_it(captured, tmp_path):
    rec = write(tmp_path / "r.yaml", RECIPE)
    r = cli("train", "--config", rec, "--data", tmp_path / "d", "--epochs", "1",
            "--mixstyle-p", "0.4",  # == the flag's default, but typed: must still win over the recipe's 0.1
            "--seed", "0")          # likewise
    assert_ok(r)
    (cfg,) = captured
    assert (cfg.epochs, cfg.augment.mixstyle_p, cfg.seed) == (1, 0.4, 0)          # typed flags
    assert (cfg.lr, cfg.kd_tau, cfg.model) == (0.001, 3.0, "cp-mobile")          # recipe, flags left alone
    assert (cfg.augment.dir_p, cfg.augment.mixup_p) == (0.0, 0.5)                 # recipe (mixup_p has no flag)
    assert cfg.model_kwargs == {"base_channels": 8}
    assert cfg.augment.freq_mask == 48 and cfg.batch_size == 64                   # neither: defaults
    assert cfg.data == str(tmp_path / "d") and cfg.frontend == "dcase2024"


def test_flag_merges_into_recipe_model_kwargs_and_model_sets_frontend(captured, tmp_path):
    rec = write(tmp_path / "r.yaml", "model: cp-mobile\nmodel_kwargs: {base_channels: 8, expansion_rate: 2.0}\n")
    assert_ok(cli("train", "--config", rec, "--data", tmp_path / "d", "--base-channels", "16"))
    assert captured[-1].model_kwargs == {"base_channels": 16, "expansion_rate": 2.0}
    assert_ok(cli("train", "--config", rec, "--data", tmp_path / "d", "--model", "cp-mobile-itmo"))
    assert (captured[-1].model, captured[-1].frontend) == ("cp-mobile-itmo", "itmo-16k")


def test_recipe_by_name_new_flags_and_data_from_recipe(captured, tmp_path):
    assert_ok(cli("train", "--config", "itmo2024", "--data", tmp_path / "d", "--ema-decay", "0.99",
                  "--consistency-max", "2", "--unlabelled", tmp_path / "u"))
    cfg = captured[-1]
    assert (cfg.kd_scheme, cfg.ema_decay, cfg.consistency_max, cfg.unlabelled) == \
        ("mean-teacher", 0.99, 2.0, str(tmp_path / "u"))
    assert_ok(cli("train", "--config", "kt2024", "--data", tmp_path / "d", "--teacher", tmp_path / "t.ckpt",
                  "--online-teacher-lr-factor", "0.1"))
    assert (captured[-1].online_teacher_lr_factor, captured[-1].teachers) == (0.1, [str(tmp_path / "t.ckpt")])
    rec = write(tmp_path / "r.yaml", f"data: {tmp_path / 'from-recipe'}\n")
    assert_ok(cli("train", "--config", rec))
    assert captured[-1].data == str(tmp_path / "from-recipe")


def test_without_config_the_flags_build_the_same_config_as_before(captured, tmp_path):
    assert_ok(cli("train", "--data", tmp_path / "d", "--model", "sm1", "--teacher", tmp_path / "t.ckpt"))
    cfg = captured[-1]
    assert cfg == TrainConfig(data=str(tmp_path / "d"), model="sm1", frontend="ai4edge-8k",
                              teachers=[str(tmp_path / "t.ckpt")])


def test_train_with_recipe_end_to_end(tiny_dataset, tmp_path, no_plots):
    root = tiny_dataset()
    rec = write(tmp_path / "r.yaml", RECIPE)
    r = cli("train", "--config", rec, "--data", root, "--epochs", "1", *TINY, "--cache-dir", tmp_path / "cache",
            "--out", tmp_path / "runs", "--name", "rec")
    assert_ok(r)
    run = tmp_path / "runs" / "rec"
    config = json.loads((run / "report.json").read_text())["config"]
    assert (config["epochs"], config["lr"], config["kd_tau"], config["seed"]) == (1, 0.001, 3.0, 3)
    assert config["augment"]["mixstyle_p"] == 0.1 and config["batch_size"] == 4
    assert (run / "recipe.yaml").read_text() == RECIPE


# ------------------------------------------------------------------------------------ train-teachers
def test_train_teachers_two_members(tiny_dataset, tmp_path, monkeypatch, no_plots):
    import asc_edge.train as train_pkg
    import asc_edge.train.teachers as teachers_mod

    monkeypatch.setitem(teachers_mod.ENSEMBLES, "tiny", [{"member": "a", **TINY_MEMBER},
                                                         {"member": "b", **TINY_MEMBER, "lr": 0.01}])
    root = tiny_dataset()
    out = tmp_path / "teachers"
    args = ("train-teachers", "--data", root, "--split", "100", "--ensemble", "tiny", "--epochs", "1", *TINY,
            "--cache-dir", tmp_path / "cache", "--out", out, "--seed", "2")
    r = cli(*args)
    assert_ok(r)
    js = out / "tiny_split100_teachers.json"
    result = json.loads(js.read_text())
    runs = [out / "tiny_split100_a_seed2", out / "tiny_split100_b_seed2"]
    assert [m["run_dir"] for m in result["members"]] == [str(p) for p in runs]
    for m, run in zip(result["members"], runs):
        assert (run / "model.ckpt").is_file() and m["checkpoint"] == str(run / "model.ckpt")
        assert m["test_macro_accuracy"] == json.loads((run / "metrics.json").read_text())["macro_accuracy"]
        assert json.loads((run / "report.json").read_text())["config"]["epochs"] == 1
    assert json.loads((runs[1] / "report.json").read_text())["config"]["lr"] == 0.01
    assert 0.0 <= result["ensemble_test_macro_accuracy"] <= 1.0
    assert result["teacher_flags"] == f"--teacher {runs[0] / 'model.ckpt'} --teacher {runs[1] / 'model.ckpt'}"
    assert result["teacher_flags"] in r.output and str(js) in r.output

    # --reuse: members trained with the identical config are not trained again
    monkeypatch.setattr(train_pkg.run, "train", lambda cfg: pytest.fail("retrained"))
    r = cli(*args, "--reuse")
    assert_ok(r)
    assert r.output.count("reusing") == 2


def test_ai4edge_recipe_from_train_teachers_output(tiny_dataset, tmp_path, no_plots):
    """The shipped chain: train-teachers --ensemble ai4edge-ova, then the recipe with the printed flags."""
    import numpy as np

    root = tiny_dataset()
    ir = np.zeros(400, np.float32)
    ir[0], ir[50] = 1.0, 0.3
    tiny_dataset.write_wav(root / "dirs" / "ir.wav", ir, 44100)  # the recipes keep DIR augmentation on
    common = ("--epochs", "1", *TINY, "--cache-dir", tmp_path / "cache")
    r = cli("train-teachers", "--data", root, "--split", "100", "--ensemble", "ai4edge-ova", *common,
            "--out", tmp_path / "teachers")
    assert_ok(r)
    flags = json.loads((tmp_path / "teachers" / "ai4edge-ova_split100_teachers.json").read_text())["teacher_flags"]
    r = cli("train", "--config", "ai4edge2023", "--data", root, *common, "--out", tmp_path / "runs", *flags.split())
    assert_ok(r)
    run = tmp_path / "runs" / "sm2_split100_kd-rrs_seed0"
    config = json.loads((run / "report.json").read_text())["config"]
    assert (config["model"], config["kd_scheme"], config["frontend"]) == ("sm2", "rrs", "ai4edge-8k")
    assert config["teachers"] == [str(tmp_path / "teachers" / "ai4edge-ova_split100_sm1-ova_seed0" / "model.ckpt")]
    assert (run / "recipe.yaml").read_text() == (RECIPES_DIR / "ai4edge2023.yaml").read_text()


# ------------------------------------------------------------------------------- bad CLI input
def test_train_bad_recipe_one_error_line(tmp_path):
    rec = write(tmp_path / "r.yaml", "model: cp-mobile\nepochz: 3\n")
    assert_one_error_line(cli("train", "--config", rec, "--data", tmp_path), "unknown key 'epochz'", rec, "epochs")
    bad = write(tmp_path / "bad.yaml", "model: [cp-mobile\n")
    assert_one_error_line(cli("train", "--config", bad, "--data", tmp_path), bad, "not valid YAML")
    assert_one_error_line(cli("train", "--config", tmp_path / "none.yaml", "--data", tmp_path),
                          "recipe file not found", "none.yaml", "kt2024")
    assert_one_error_line(cli("train", "--epochs", "1"), "no dataset given", "--data")


def test_train_distilling_recipe_without_teacher_one_error_line(captured, tmp_path):
    assert_one_error_line(cli("train", "--config", "kt2024", "--data", tmp_path),
                          "kt2024.yaml", "no --teacher", "train-teachers --ensemble cpjku --frontend kt-288")
    assert_one_error_line(cli("train", "--config", "tencent2023", "--data", tmp_path, "--teacher-logits",
                              tmp_path / "a.npz", "--teacher", tmp_path / "t.ckpt"), "both --teacher")
    assert captured == []


@pytest.mark.parametrize("extra, needles", [
    (["--ensemble", "passt"], ["unknown teacher ensemble 'passt'", "sntl, cpjku, ai4edge-ova"]),
    (["--ensemble", "cpjku", "--frontend", "96k"], ["unknown frontend '96k'"]),
    (["--ensemble", "tiny", "--epochs", "1", "--split", "7"], ["unknown split '7'"]),
    (["--ensemble", "sntl", "--epochs", "1"], ["device impulse response folder not found"]),
], ids=["ensemble", "frontend", "split", "dirs-missing"])
def test_train_teachers_bad_input_one_error_line(extra, needles, tiny_dataset, tmp_path, monkeypatch):
    import asc_edge.train.teachers as teachers_mod

    monkeypatch.setitem(teachers_mod.ENSEMBLES, "tiny", [{"member": "a", **TINY_MEMBER}])
    root = tiny_dataset()
    args = ["--split", "100", *extra] if "--split" not in extra else extra
    r = cli("train-teachers", "--data", root, *args, "--no-progress", "--cache-dir", tmp_path / "c",
            "--out", tmp_path / "t")
    assert_one_error_line(r, *needles)
    assert not list((tmp_path / "t").glob("*.json")) if (tmp_path / "t").exists() else True


def test_train_teachers_missing_data_one_error_line(tmp_path):
    r = cli("train-teachers", "--data", tmp_path / "nowhere", "--split", "5", "--ensemble", "cpjku",
            "--epochs", "1", "--no-progress", "--out", tmp_path / "t")
    assert_one_error_line(r, tmp_path / "nowhere")
