"""Teacher logits from a file (.npz / .pt) and AI4EDGE's one-vs-all teacher."""

from __future__ import annotations

import math
import zipfile

import numpy as np
import pytest
import torch
from torch import nn

from asc_edge.distill.logits_file import load_teacher_logits, save_teacher_logits
from asc_edge.models.one_vs_all import (OneVsAllTeacher, binary_loss, binary_targets, build_one_vs_all,
                                         to_binary_logit)
from asc_edge.errors import ConfigError, DataError

FILES = [f"audio/clip-{i}.wav" for i in range(6)]
LABELS = ["airport", "bus", "park"]
# row i = [10 i + 0, 10 i + 1, 10 i + 2]: value tells clip and class apart
LOGITS = np.array([[10 * i + j for j in range(3)] for i in range(6)], dtype=np.float32)


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.fixture
def saved(tmp_path):
    return save_teacher_logits(tmp_path / "teacher.npz", FILES, LOGITS, LABELS)


# ---------------------------------------------------------------- round trip

def test_round_trip_reorders_rows_and_columns(saved):
    files = ["audio/clip-4.wav", "audio/clip-0.wav", "audio/clip-5.wav"]   # subset, other order
    labels = ["park", "airport", "bus"]
    z = load_teacher_logits(saved, files, labels)
    assert z.dtype == np.float32 and z.shape == (3, 3)
    np.testing.assert_array_equal(z, [[42, 40, 41], [2, 0, 1], [52, 50, 51]])
    np.testing.assert_array_equal(load_teacher_logits(saved, FILES, LABELS), LOGITS)


def test_saved_file_is_plain_npz_and_atomic(saved):
    with np.load(saved, allow_pickle=False) as z:
        assert set(z.files) == {"filenames", "logits", "labels"}
        assert z["filenames"].dtype.kind == "U" and z["logits"].dtype == np.float32
        assert z["labels"].tolist() == LABELS
    assert [p.name for p in saved.parent.iterdir()] == ["teacher.npz"]   # no temp file left behind


def test_third_party_npz_with_extra_keys_and_float64(tmp_path):
    path = _npz(tmp_path / "ens.npz", filenames=np.array(FILES[::-1]), logits=LOGITS[::-1].astype(np.float64),
                labels=np.array(LABELS), teachers=np.array(["passt", "cpresnet"]))
    z = load_teacher_logits(path, FILES[:2], ["bus", "airport", "park"])
    np.testing.assert_array_equal(z, [[1, 0, 2], [11, 10, 12]])
    assert z.dtype == np.float32


def test_pt_variant(tmp_path):
    path = tmp_path / "ens.pt"
    torch.save({"filenames": FILES[::-1], "logits": torch.from_numpy(LOGITS[::-1].copy()), "labels": LABELS}, path)
    np.testing.assert_array_equal(load_teacher_logits(path, ["audio/clip-1.wav"], ["park", "bus", "airport"]),
                                  [[12, 11, 10]])
    # save_teacher_logits writes .pt for a .pt path; recognised by content even under another suffix
    out = save_teacher_logits(tmp_path / "mine.pt", FILES, torch.from_numpy(LOGITS), LABELS)
    np.testing.assert_array_equal(load_teacher_logits(out, FILES, LABELS), LOGITS)
    renamed = out.rename(tmp_path / "mine.bin")
    np.testing.assert_array_equal(load_teacher_logits(renamed, FILES, LABELS), LOGITS)


# ---------------------------------------------------------------- errors

def _err(path, files=FILES, labels=LABELS) -> str:
    with pytest.raises(DataError) as info:
        load_teacher_logits(path, files, labels)
    text = str(info.value)
    assert "\n" not in text and str(path) in text and "(fix: " in text
    return text


def test_missing_file(tmp_path):
    assert "teacher logits file not found" in _err(tmp_path / "nope.npz")


def test_not_npz_or_pt(tmp_path):
    (tmp_path / "x.npz").write_text("filename\tlogit\n")
    assert "not an .npz or .pt file" in _err(tmp_path / "x.npz")
    np.save(tmp_path / "a.npy", LOGITS)
    assert "not an .npz or .pt file" in _err(tmp_path / "a.npy")
    (tmp_path / "junk.pt").write_bytes(b"\x00garbage")
    assert "not a readable .pt file" in _err(tmp_path / "junk.pt")
    (tmp_path / "dir.npz").mkdir()
    assert "not a regular file" in _err(tmp_path / "dir.npz")


def test_unreadable_npz_member(tmp_path):
    path = tmp_path / "broken.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("filenames.npy", b"not an npy")
        zf.writestr("logits.npy", b"nope")
        zf.writestr("labels.npy", b"nope")
    assert "cannot read the .npz arrays" in _err(path)


def test_object_arrays_and_pickles_are_refused(tmp_path):
    path = _npz(tmp_path / "obj.npz", filenames=np.array(FILES, dtype=object), logits=LOGITS,
                labels=np.array(LABELS, dtype=object))
    assert "not object arrays" in _err(path)
    pt = tmp_path / "np.pt"
    torch.save({"filenames": np.array(FILES), "logits": LOGITS, "labels": LABELS}, pt)
    assert "weights_only=True" in _err(pt)
    torch.save([1, 2], tmp_path / "list.pt")
    assert "holds a list, not a dict" in _err(tmp_path / "list.pt")


def test_missing_keys(tmp_path):
    text = _err(_npz(tmp_path / "k.npz", names=np.array(FILES), logits=LOGITS))
    assert "missing key(s) 'filenames', 'labels'" in text and "found: 'logits', 'names'" in text


def test_shape_mismatch(tmp_path):
    text = _err(_npz(tmp_path / "s.npz", filenames=np.array(FILES), logits=LOGITS[:, :2], labels=np.array(LABELS)))
    assert "'logits' has shape (6, 2)" in text and "expected (6, 3)" in text
    text = _err(_npz(tmp_path / "s1.npz", filenames=np.array(FILES), logits=LOGITS[:, 0], labels=np.array(LABELS)))
    assert "'logits' has shape (6,)" in text
    text = _err(_npz(tmp_path / "s2.npz", filenames=np.array([FILES]), logits=LOGITS, labels=np.array(LABELS)))
    assert "'filenames' must be a 1-D array of strings" in text


def test_duplicate_filenames(tmp_path):
    files = FILES[:4] + [FILES[0], FILES[1]]
    text = _err(_npz(tmp_path / "d.npz", filenames=np.array(files), logits=LOGITS, labels=np.array(LABELS)))
    assert "2 filename(s) appear more than once, e.g. 'audio/clip-0.wav', 'audio/clip-1.wav'" in text
    text = _err(_npz(tmp_path / "dl.npz", filenames=np.array(FILES), logits=LOGITS,
                     labels=np.array(["bus", "bus", "park"])))
    assert "label(s) appear more than once: 'bus'" in text


def test_non_finite(tmp_path):
    bad = LOGITS.copy()
    bad[2, 1] = np.nan
    bad[5, 0] = np.inf
    text = _err(_npz(tmp_path / "n.npz", filenames=np.array(FILES), logits=bad, labels=np.array(LABELS)))
    assert "2 clip(s) have NaN/inf logits, e.g. 'audio/clip-2.wav', 'audio/clip-5.wav'" in text
    with pytest.raises(DataError, match="NaN/inf"):
        save_teacher_logits(tmp_path / "never.npz", FILES, bad, LABELS)
    assert not (tmp_path / "never.npz").exists()


def test_label_set_differs(saved):
    text = _err(saved, labels=["airport", "bus", "tram"])
    assert "class labels differ" in text and "missing ['tram']" in text and "extra ['park']" in text
    text = _err(saved, labels=["airport", "bus"])
    assert "missing" not in text.split("(fix:")[0] and "extra ['park']" in text


def test_missing_clips_lists_first_few(saved):
    want = FILES + [f"audio/new-{i}.wav" for i in range(5)]
    text = _err(saved, files=want)
    assert "5 of 11 requested clips have no teacher logits" in text
    assert "e.g. 'audio/new-0.wav', 'audio/new-1.wav', 'audio/new-2.wav', ..." in text
    assert "new-3" not in text


def test_missing_clips_hints_at_path_prefix(tmp_path):
    path = _npz(tmp_path / "b.npz", filenames=np.array([f.split("/")[1] for f in FILES]), logits=LOGITS,
                labels=np.array(LABELS))
    text = _err(path)
    assert "6 of 6 requested clips" in text and "e.g. 'clip-0.wav'" in text.split("(fix:")[1]


def test_save_checks_shape(tmp_path):
    with pytest.raises(DataError, match=r"shape \(6, 3\) but there are 5 filenames"):
        save_teacher_logits(tmp_path / "x.npz", FILES[:5], LOGITS, LABELS)


# ---------------------------------------------------------------- one-vs-all teacher

class Fixed(nn.Module):
    """A stand-in binary expert returning fixed logits whatever the input."""

    def __init__(self, rows):
        super().__init__()
        self.register_buffer("out", torch.tensor(rows, dtype=torch.float32))

    def forward(self, x):
        return self.out[: x.shape[0]]


def test_one_vs_all_assembly_single_logit_experts():
    teacher = OneVsAllTeacher([Fixed([[0.5], [-1.0]]), Fixed([[2.0], [3.0]]), Fixed([[-4.0], [0.25]])])
    z = teacher(torch.zeros(2, 1, 4, 4))
    torch.testing.assert_close(z, torch.tensor([[0.5, 2.0, -4.0], [-1.0, 3.0, 0.25]]), rtol=0, atol=0)
    assert teacher.n_classes == 3
    torch.testing.assert_close(teacher.expert_logit(torch.zeros(2, 1, 4, 4), 1), torch.tensor([2.0, 3.0]))


def test_one_vs_all_assembly_two_logit_experts():
    # [rest, class] logits: log-odds = out[:, 1] - out[:, 0]
    teacher = OneVsAllTeacher([Fixed([[1.0, 3.0], [0.0, -2.0]]), Fixed([[0.5, 0.5], [4.0, 1.0]]),
                               Fixed([[2.0], [1.0]])])                   # experts may mix 1 and 2 outputs
    z = teacher(torch.zeros(2, 1, 4, 4))
    torch.testing.assert_close(z, torch.tensor([[2.0, 0.0, 2.0], [-2.0, -3.0, 1.0]]), rtol=0, atol=0)
    with pytest.raises(ConfigError, match="shape \\(2, 3\\)"):
        to_binary_logit(torch.zeros(2, 3))


def test_binary_targets():
    y = torch.tensor([0, 2, 1, 2])
    torch.testing.assert_close(binary_targets(y, 2), torch.tensor([0.0, 1.0, 0.0, 1.0]))
    torch.testing.assert_close(binary_targets(y, 0), torch.tensor([1.0, 0.0, 0.0, 0.0]))
    soft = torch.tensor([[0.7, 0.3, 0.0], [0.0, 0.4, 0.6]])             # mixup targets: column c
    torch.testing.assert_close(binary_targets(soft, 1), torch.tensor([0.3, 0.4]))
    assert binary_targets(y, 1).dtype == torch.float32


def test_binary_loss_hand_computed():
    # z = [0, ln 3], y = [1, 0] (class c = 1 for labels [1, 0]), pos_weight = C - 1 = 2
    # ex 1: -2 · ln σ(0) = 2 ln 2;  ex 2: -ln(1 - σ(ln 3)) = -ln(1/4) = ln 4 = 2 ln 2  → mean 2 ln 2
    z = torch.tensor([0.0, math.log(3.0)])
    y = torch.tensor([1, 0])
    loss = binary_loss(z, y, 1, n_classes=3)
    assert loss.item() == pytest.approx(2 * math.log(2), rel=1e-6)
    # plain BCE: (ln 2 + 2 ln 2) / 2
    assert binary_loss(z, y, 1, pos_weight=1.0).item() == pytest.approx(1.5 * math.log(2), rel=1e-6)
    # (batch, 1) output accepted; default C = 10 → pos_weight 9: (9 ln 2 + 2 ln 2) / 2
    assert binary_loss(z[:, None], y, 1).item() == pytest.approx(5.5 * math.log(2), rel=1e-6)


def test_build_one_vs_all_sm1_shape():
    torch.manual_seed(0)
    teacher = build_one_vs_all(model_name="sm1").eval()
    assert teacher.n_classes == 10 and len({id(e) for e in teacher.experts}) == 10
    with torch.no_grad():
        z = teacher(torch.randn(2, 1, 140, 8))
    assert z.shape == (2, 10) and torch.isfinite(z).all()
    with pytest.raises(ConfigError):
        build_one_vs_all(1, model_name="sm1")
