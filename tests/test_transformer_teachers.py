"""Transformer teachers (issue 13 item 2): PaSST (hear21passt) and AST (transformers) from local weights.

Only small random-initialised networks (no pretrained weights are reachable here): build, forward at
the preset's shape, one fine-tuning step, save / reload through ``checkpoint=`` (file, folder,
save_pretrained folder), head replacement for another class count, clear errors, no network use, and
the asc-edge checkpoint + teacher-logit cache path.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from asc_edge.errors import CheckpointError, ConfigError
from asc_edge.features import get_frontend
from asc_edge.models import build_model, get_spec

SMALL = {"embed_dim": 32, "depth": 2, "num_heads": 2, "mlp_ratio": 2.0}
NAMES = ("passt", "ast")
LABELS = ["airport", "bus", "metro", "metro_station", "park", "public_square", "shopping_mall",
          "street_pedestrian", "street_traffic", "tram"]


def _x(name: str, n: int = 2, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, *get_frontend(get_spec(name).frontend).shape, generator=g) * 3 - 4


def _build(name: str, seed: int = 0, **kw):
    torch.manual_seed(seed)
    return build_model(name, **{"n_classes": 10, **SMALL, **kw}).eval()


def _out(model, x):
    with torch.no_grad():
        return model.eval()(x)


@pytest.mark.parametrize("name", NAMES)
def test_registered_as_teacher_and_runs_at_its_preset(name):
    spec = get_spec(name)
    fe = get_frontend(spec.frontend)
    assert spec.role == "teacher" and spec.frontend == {"passt": "passt-32k", "ast": "ast-16k"}[name]
    assert fe.shape == (1, 128, 101) and fe.n_mels == 128
    y = _out(_build(name), _x(name))
    assert y.shape == (2, 10) and torch.isfinite(y).all()


def test_presets_match_the_original_frontends_where_expressible():
    p, a = get_frontend("passt-32k"), get_frontend("ast-16k")
    assert (p.sample_rate, p.n_fft, p.win_length, p.hop_length, p.n_mels, p.f_min, p.f_max_hz) == \
        (32000, 1024, 800, 320, 128, 0.0, 15000.0)
    assert (a.sample_rate, a.win_length, a.hop_length, a.n_mels, a.f_max_hz) == (16000, 400, 160, 128, 8000.0)


@pytest.mark.parametrize("name", NAMES)
def test_one_optimisation_step_changes_the_weights(name):
    model = _build(name).train()
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss = torch.nn.functional.cross_entropy(model(_x(name)), torch.tensor([1, 7]))
    assert torch.isfinite(loss)
    loss.backward()
    opt.step()
    changed = [k for k, v in model.named_parameters() if not torch.equal(v, before[k])]
    assert len(changed) >= 0.9 * len(before)  # every tensor on the logit path (PaSST's unused head_dist stays)
    assert any("patch_embed" in k or "patch_embeddings" in k for k in changed)
    assert any(k.startswith(("net.head.1.", "net.classifier.")) for k in changed)


@pytest.mark.parametrize("name", NAMES)
def test_reload_from_file_and_folder_gives_identical_outputs(name, tmp_path):
    src = _build(name, seed=1)
    x = _x(name)
    ref = _out(src, x)
    torch.save(src.state_dict(), tmp_path / "teacher.pt")                    # wrapper keys: net.*
    folder = tmp_path / "folder"
    folder.mkdir()
    if name == "passt":
        torch.save({"state_dict": src.net.state_dict(), "epoch": 3}, folder / "passt.ckpt")  # bare PaSST keys
    else:
        from safetensors.torch import save_file
        save_file(src.net.state_dict(), str(folder / "model.safetensors"))    # bare transformers keys
    for ckpt in (tmp_path / "teacher.pt", folder):
        m = _build(name, seed=2, checkpoint=str(ckpt))
        assert not m.head_replaced and m.checkpoint_path == str(ckpt)
        assert torch.equal(_out(m, x), ref)
    if name == "ast":  # save_pretrained folder: config.json + model.safetensors, from_pretrained offline
        src.net.save_pretrained(tmp_path / "hf")
        m = build_model("ast", n_classes=10, checkpoint=tmp_path / "hf")
        assert torch.equal(_out(m, x), ref)


@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_with_other_class_count_gets_a_new_head(name, tmp_path):
    """AudioSet's 527 classes → 10 scenes (5 here): the body is loaded, the head is fresh."""
    src = _build(name, seed=1, n_classes=5)
    torch.save(src.net.state_dict(), tmp_path / "audioset.pt")
    m = _build(name, seed=2, checkpoint=tmp_path / "audioset.pt")
    assert m.head_replaced
    theirs = src.state_dict()
    for k, v in m.state_dict().items():
        if k.startswith(("net.head.1.", "net.head_dist.", "net.classifier.dense.")):
            assert v.shape[0] == 10
        else:
            assert torch.equal(v, theirs[k]), k
    assert _out(m, _x(name)).shape == (2, 10)


def test_ast_position_grid_is_centre_cropped_to_shorter_inputs(tmp_path):
    """As the original AST for a shorter t_dim: a 301-frame checkpoint (29 time patches) → 101 frames (9)."""
    src = _build("ast", seed=1, max_frames=301)
    torch.save(src.state_dict(), tmp_path / "long.pt")
    m = _build("ast", seed=2, checkpoint=tmp_path / "long.pt")
    key = "net.audio_spectrogram_transformer.embeddings.position_embeddings"
    old, new = src.state_dict()[key], m.state_dict()[key]
    assert old.shape == (1, 2 + 12 * 29, 32) and new.shape == (1, 2 + 12 * 9, 32)
    assert torch.equal(new[:, :2], old[:, :2])
    grid = old[0, 2:].reshape(12, 29, 32)
    assert torch.equal(new[0, 2:].reshape(12, 9, 32), grid[:, 10:19])  # 29 // 2 - 9 // 2 = 10
    assert torch.isfinite(_out(m, _x("ast"))).all()


def test_passt_takes_shorter_inputs_and_refuses_wrong_shapes():
    m = _build("passt")
    assert _out(m, torch.randn(1, 1, 128, 300)).shape == (1, 10)
    with pytest.raises(ConfigError, match=r"\(batch, 1, 128, frames\)"):
        _out(m, torch.randn(1, 1, 256, 65))
    with pytest.raises(ConfigError, match="998 frames"):
        _out(m, torch.randn(1, 1, 128, 1200))


@pytest.mark.parametrize("name", NAMES)
def test_bad_checkpoints_are_one_checkpoint_error_naming_the_path(name, tmp_path):
    missing = tmp_path / "nope.pt"
    with pytest.raises(CheckpointError, match="nope.pt: checkpoint not found"):
        _build(name, checkpoint=missing)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(CheckpointError, match="corrupt.pt: cannot read weights"):
        _build(name, checkpoint=corrupt)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CheckpointError, match="exactly one weights file.*found none"):
        _build(name, checkpoint=empty)
    torch.save(build_model("cp-mobile").state_dict(), tmp_path / "student.pt")
    with pytest.raises(CheckpointError, match=f"student.pt: weights do not fit the {name} network"):
        _build(name, checkpoint=tmp_path / "student.pt")
    torch.save(_build(name, embed_dim=48).state_dict(), tmp_path / "wide.pt")
    with pytest.raises(CheckpointError, match="wide.pt: .* has shape"):
        _build(name, checkpoint=tmp_path / "wide.pt")


def test_broken_save_pretrained_folder_is_a_checkpoint_error(tmp_path):
    _build("ast").net.save_pretrained(tmp_path / "hf")
    (tmp_path / "hf" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="hf: cannot load the AST folder"):
        build_model("ast", checkpoint=tmp_path / "hf")


@pytest.mark.parametrize("name, package", [("passt", "hear21passt"), ("ast", "transformers")])
def test_missing_package_is_one_config_error_with_the_install_hint(name, package, monkeypatch):
    for mod in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, package, None)  # `import package` raises ImportError
    with pytest.raises(ConfigError, match=f"needs the {package} package") as err:
        build_model(name, **SMALL)
    assert ".[teachers]" in err.value.hint


def test_registry_imports_without_the_optional_packages():
    code = ("import sys; sys.modules['hear21passt'] = None; sys.modules['transformers'] = None\n"
            "from asc_edge.models import MODELS\n"
            "assert MODELS['passt'].role == MODELS['ast'].role == 'teacher'\n"
            "assert not any(m.startswith(('hear21passt.', 'transformers.', 'timm')) for m in sys.modules)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       cwd=Path(__file__).resolve().parents[1])
    assert r.returncode == 0, r.stderr[-2000:]


def test_nothing_touches_the_network(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[1:] if args else kwargs}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for name in NAMES:
        m = _build(name)
        torch.save(m.state_dict(), tmp_path / f"{name}.pt")
        assert torch.equal(_out(_build(name, seed=3, checkpoint=tmp_path / f"{name}.pt"), _x(name)),
                           _out(m, _x(name)))
    m.net.save_pretrained(tmp_path / "hf")
    build_model("ast", n_classes=10, checkpoint=tmp_path / "hf")
    assert "HF_HUB_OFFLINE" not in os.environ  # set only during from_pretrained
    # hear21passt's only download helper (timm's download_cached_file) is a stand-in that refuses
    from hear21passt.models.helpers import vit_helpers
    if getattr(vit_helpers.download_cached_file, "__module__", "") == "asc_edge.models.transformer_teachers":
        with pytest.raises(CheckpointError, match="never downloads"):
            vit_helpers.download_cached_file("https://example.invalid/passt.pt")


def test_asc_edge_checkpoint_of_passt_feeds_the_teacher_logit_cache(tmp_path, monkeypatch):
    """A fine-tuned passt saved as an asc-edge checkpoint: load_checkpoint rebuilds it, and the
    offline-KD path (teacher_logits_for) computes its logits once and then reads them from the cache."""
    from asc_edge.checkpoint import load_checkpoint
    from asc_edge.features import SplitData
    from asc_edge.train import run

    fe = get_frontend("passt-32k")
    model = _build("passt", seed=4)
    ckpt = tmp_path / "run" / "model.ckpt"
    ckpt.parent.mkdir()
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
                "hyper_parameters": {"model_name": "passt", "model_kwargs": dict(SMALL), "labels": LABELS,
                                     "frontend": fe.to_dict()}}, ckpt)
    loaded = load_checkpoint(ckpt)
    x = _x("passt", n=3)
    ref = _out(model, x)
    assert loaded.frontend == fe and torch.equal(_out(loaded.model, x), ref)
    # the asc-edge checkpoint also works as checkpoint= (prefix model.net. stripped)
    assert torch.equal(_out(_build("passt", seed=5, checkpoint=ckpt), x), ref)

    split = SplitData(clips=[SimpleNamespace(filename=f"audio/c{i}.wav") for i in range(3)], features=x.numpy(),
                      targets=np.array([0, 1, 2]), devices=["a"] * 3, labels=tuple(LABELS), frontend=fe)
    first = run.teacher_logits_for([str(ckpt)], split, str(tmp_path), "split100", None, tmp_path / "cache", False)
    np.testing.assert_allclose(first, ref.numpy(), rtol=0, atol=1e-5)
    assert len(list((tmp_path / "cache" / "teacher_logits").glob("*.npy"))) == 1
    monkeypatch.setattr(run, "predict_logits", lambda *a, **k: pytest.fail("cache miss: teacher run again"))
    again = run.teacher_logits_for([str(ckpt)], split, str(tmp_path), "split100", None, tmp_path / "cache", False)
    np.testing.assert_array_equal(again, first)


def test_train_cli_model_checkpoint_starts_from_local_weights_and_the_run_loads_without_them(
        tiny_dataset, tmp_path):
    """``asc-edge train --model passt --model-checkpoint FILE``: the network starts from FILE (learning
    rate 0 keeps the weights, so the run's checkpoint equals it), the run records the path, and the
    run loads after FILE is gone (the pretrained path is not needed to rebuild the trained network)."""
    from asc_edge.checkpoint import load_checkpoint
    from test_train_cli import assert_ok, assert_one_error_line, cli

    pretrained = tmp_path / "passt-small.pt"
    torch.save(_build("passt", seed=6).state_dict(), pretrained)
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model: passt\nmodel_kwargs: {embed_dim: 32, depth: 2, num_heads: 2, mlp_ratio: 2.0}\n"
                      "augment: {dir_p: 0.0}\n", encoding="utf-8")
    root = tiny_dataset(labels=tuple(LABELS[:2]))
    r = cli("train", "--config", recipe, "--data", root, "--model-checkpoint", pretrained, "--epochs", "1",
            "--lr", "0", "--batch-size", "4", "--val-every", "1", "--no-progress", "--out", tmp_path / "runs",
            "--name", "ft", "--cache-dir", tmp_path / "cache")
    assert_ok(r)
    run = tmp_path / "runs" / "ft"
    assert json.loads((run / "report.json").read_text())["config"]["model_kwargs"]["checkpoint"] == str(pretrained)
    x = _x("passt", n=2)
    start = build_model("passt", n_classes=2, **SMALL, checkpoint=pretrained).eval()  # new 2-class head
    pretrained.unlink()
    loaded = load_checkpoint(run / "model.ckpt").model.eval()
    body = {k: v for k, v in start.state_dict().items() if "head" not in k}
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in body.items())
    assert_one_error_line(cli("train", "--data", root, "--model", "cp-mobile", "--model-checkpoint", tmp_path / "x.pt",
                              "--out", tmp_path / "runs"), "does not start from pretrained weights")
