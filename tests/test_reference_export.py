"""The committed reference export (``export/cp-mobile-ref/``) is what the firmware tests and
``asc-edge bench`` build from without training first. It must be exactly what its recorded inputs
produce: the checkpoint (``export/cp-mobile-ref.ckpt``, CP-Mobile baseline trained on
../shared/data split100), the calibration clips, and the code generators of this commit.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
REF = REPO / "export" / "cp-mobile-ref"
CKPT = REPO / "export" / "cp-mobile-ref.ckpt"


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_files_match_their_recorded_hashes():
    rep = json.loads((REF / "report.json").read_text())
    assert rep["checkpoint_sha256"] == _sha(CKPT)
    assert set(rep["hashes"]) >= {"model.onnx", "model_int8.tflite", "c/model.c", "c/model.h",
                                  "c/asc_frontend_config.h", "c/asc_frontend_tables.c", "graph.json"}
    for rel, h in rep["hashes"].items():
        assert _sha(REF / rel) == h, f"{rel} changed since the export was made: regenerate it"
    assert rep["complexity"]["params"] == 61_148 and rep["model"] == "cp-mobile"
    assert rep["c_model"]["host_check"]["n_equal"] == rep["c_model"]["host_check"]["n_clips"] >= 200


def test_generated_c_is_reproduced_by_this_commit(tmp_path):
    """model.c/model.h and the frontend tables regenerate byte for byte from the committed
    .tflite and the recorded frontend (a code-generator change must come with a re-export:
    `asc-edge export export/cp-mobile-ref.ckpt --out export/cp-mobile-ref --calibration minmax
    --no-adaptive-rounding`)."""
    from asc_edge.codegen.emit_c import emit_model
    from asc_edge.codegen.graph import build_graph
    from asc_edge.codegen.planner import plan_for_device
    from asc_edge.codegen.record import graph_record
    from asc_edge.device.frontend_c import emit_frontend_tables, work_bytes
    from asc_edge.features.config import FrontendConfig

    rep = json.loads((REF / "report.json").read_text())
    fe = FrontendConfig.from_dict(rep["frontend"])
    g = build_graph(REF / "model_int8.tflite")
    plan = plan_for_device(g, pre_scratch=work_bytes(fe))
    emit_model(g, plan, tmp_path)
    # graph.json (what `asc-edge bench` reads) is the record of this very graph and plan
    assert json.loads((REF / "graph.json").read_text()) == json.loads(json.dumps(graph_record(g, plan)))
    t = g.tensors[g.input]
    emit_frontend_tables(fe, t.scale, t.zero_point, tmp_path)
    for f in ("model.c", "model.h", "asc_frontend_config.h", "asc_frontend_tables.c"):
        assert (tmp_path / f).read_bytes() == (REF / "c" / f).read_bytes(), f


def test_calibration_inputs_are_the_recorded_ones(shared_data):
    """The calibration clips (200 evenly spread clips of split100) still exist with the same
    names and labels, so a re-export reproduces the same int8 model."""
    from asc_edge.data.tau import load_split, open_dataset

    rep = json.loads((REF / "report.json").read_text())
    assert rep["data"]["calibration_split"] == "100" and rep["data"]["n_calibration"] == 200
    clips = load_split(open_dataset(shared_data), "100")
    assert len(clips) == 911
    idx = np.unique(np.linspace(0, len(clips) - 1, 200).round().astype(int))
    assert len(idx) == 200 and all(clips[i].path.is_file() for i in idx)
