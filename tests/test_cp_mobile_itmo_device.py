"""ITMO 2024's CP-Mobile on its own frontend (16 kHz, 128 mels, 128-ms window, 10-ms hop: 128×101)
through export and the emulated STM32F405: the CMSIS-DSP log-mel at 16 kHz with a 2048-point FFT +
the generated model, device == host C frontend → tflite-micro on 3 real clips."""

from __future__ import annotations


def test_cp_mobile_itmo_exports_and_runs_bit_exact(shared_data, tmp_path):
    from conftest import export_and_bench

    _, b = export_and_bench("cp-mobile-itmo", shared_data, tmp_path, n_check=20)
    assert b["memory"]["ram_bytes"] <= 128 * 1024
