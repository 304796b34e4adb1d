"""`asc-edge bench --renode --external-ram`: a model whose activation arena exceeds the STM32F405's
128 KiB SRAM runs with the arena in external SRAM on the FSMC (4 MiB at 0x64000000, section
.ext_ram of firmware/board/stm32f4/stm32f405.ld; Renode maps it, QEMU's netduinoplus2 does not).

The model is the KT ``ghost-bcres2net-snake-small`` layout at base width 8 (stem 16, stages 8/16/16/16
channels): every construct of the report's model, including the max-pool (whose DSP path must be
right on Renode, see firmware/nn/asc_max_pool_s8.c), with a 142,560-byte arena. The QEMU bench
refuses it in one line that names the external-RAM option; the Renode bench with the arena
outside the SRAM is bit-exact on 3 test clips, and the ELF puts the arena (and only the arena)
there.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from asc_edge.cli import app
from asc_edge.device.harness import bench
from asc_edge.errors import DeviceError

WIDE_KWARGS = {"base_channels": 8, "widths": (1.0, 2.0, 2.0, 2.0), "se_reduction": 4}


def test_external_ram_needs_renode(tmp_path):
    with pytest.raises(DeviceError, match="needs the Renode backend") as e:
        bench(tmp_path / "no-export", external_ram=True)
    assert e.value.hint == "add --renode"
    r = CliRunner().invoke(app, ["bench", str(tmp_path), "--external-ram"])
    assert r.exit_code == 2
    assert "--external-ram needs --renode" in r.output and "Traceback" not in r.output


def test_over_sram_model_runs_with_the_arena_in_external_sram(renode, shared_data, tmp_path):
    from conftest import export_and_bench

    def smaller_logits(model):  # as tests/test_models_kt.py: BN-folding noise under the ONNX parity bound
        model.head.weight.mul_(0.1)
        model.head.bias.mul_(0.1)

    rep, b = export_and_bench("ghost-bcres2net-snake-small", shared_data, tmp_path, WIDE_KWARGS, smaller_logits,
                              n_check=10, bench_kwargs={"backend": "renode", "external_ram": True})
    arena = rep["c_model"]["arena"]["arena_bytes"]
    assert arena > 128 * 1024
    m = b["memory"]
    assert m["arena_location"].startswith("external SRAM") and m["ext_ram_bytes"] >= arena
    assert m["ram_bytes"] <= 128 * 1024 and m["arena_bytes"] == arena
    assert b["backend"] == "renode"
    # the same export on QEMU: one line that says why and names the way out
    with pytest.raises(DeviceError, match="does not fit in the 128 KiB SRAM") as e:
        bench(tmp_path / "export", data=shared_data, limit=1, out_dir=tmp_path / "q", log=lambda *a: None)
    assert "--renode --external-ram" in e.value.hint and f"{arena:,}-byte arena" in e.value.hint
