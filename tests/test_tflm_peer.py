"""The TFLM + CMSIS-NN peer (asc_edge.device.tflm_peer) on QEMU, for export/cp-mobile-ref.

Needs the offline bundle ../shared/tools/tflm/tflm-cmsisnn-bundle.tar.gz (skipped when absent),
arm-none-eabi-gcc / g++ with newlib and libstdc++-arm-none-eabi-newlib, make and qemu-system-arm
(a missing tool fails the test with the DeviceError naming the apt package). The build trees are
kept under <build_root>/tflm/: the first run compiles the bundle once (CP-Mobile's arena does not fit
the STM32F405, so the probe image is the result; minutes on 2 cores), later runs only relink and run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from asc_edge.device.tflm_peer import bundle_path, pattern_input, run_tflm_peer
from asc_edge.errors import DeviceError

MODEL = Path(__file__).resolve().parents[1] / "export" / "cp-mobile-ref" / "model_int8.tflite"


def test_missing_tflite_is_a_device_error_with_hint(tmp_path):
    with pytest.raises(DeviceError) as ei:
        run_tflm_peer(tmp_path / "absent" / "model_int8.tflite")
    assert "not found" in ei.value.message and ei.value.hint


def test_non_tflite_file_is_a_device_error_with_hint(tmp_path):
    bad = tmp_path / "model_int8.tflite"
    bad.write_bytes(b"\0" * 64)
    with pytest.raises(DeviceError) as ei:
        run_tflm_peer(bad)
    assert "TFL3" in ei.value.message and ei.value.hint


def test_pattern_matches_the_bundle_readme():
    # byte 0 is the top byte of x(1) = 12345 * 1664525 + 1013904223 mod 2^32 (bundle README)
    x1 = (12345 * 1664525 + 1013904223) % 2**32
    assert pattern_input(3)[0] == x1 >> 24 and len(pattern_input(16640)) == 16640


@pytest.fixture(scope="module")
def peer():
    if not bundle_path().is_file():
        pytest.skip(f"TFLM bundle {bundle_path()} not present (set ASC_EDGE_TFLM_BUNDLE)")
    return run_tflm_peer(MODEL, macs=29_416_448)


def test_cp_mobile_output_equals_oracle(peer):
    from asc_edge.export.oracle import TflmOracle

    assert peer["output_type"] == "int8" and len(peer["output"]) == 10
    oracle = TflmOracle(MODEL)
    q = np.frombuffer(pattern_input(int(np.prod(oracle.input_shape))), np.int8).reshape(oracle.input_shape)
    assert peer["output"] == oracle.invoke(q).tolist() == peer["oracle_output"]
    assert peer["output_equals_oracle"] is True and peer["output_repeat_equal"] is True


def test_cp_mobile_instructions_and_memory(peer):
    n = peer["invoke_instructions"]
    assert n > peer["macs"] > 0                        # CMSIS-NN needs > 1 instruction per MAC
    assert peer["invoke_instructions_2"] == n          # second Invoke, same input
    # no second build: the probe (1 MiB arena) on mps2-an386 is the result
    assert not peer["final_image_built"] and peer["probe"]["arena_used_bytes"] == peer["arena_used_bytes"]
    assert peer["instructions_per_mac"] == n / 29_416_448
    assert peer["arena_size_bytes"] == -(-peer["arena_used_bytes"] // 16) * 16
    # CP-Mobile's arena (~228 KB) does not fit the STM32F405's 128 KiB SRAM
    assert peer["board"] == "mps2-an386" and "exceeds" in peer["board_reason"]
    assert peer["ram_bytes"] == peer["data_bytes"] + peer["bss_bytes"] + peer["stack_bytes"] \
        + peer["handler_stack_bytes"]
    assert peer["bss_bytes"] >= peer["arena_size_bytes"]
    assert peer["flash_bytes"] > MODEL.stat().st_size   # the model is embedded in flash
