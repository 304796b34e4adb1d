#!/usr/bin/env bash
# Idempotent set-up on a fresh Debian machine: apt packages, a Python 3.11 venv in .venv,
# and the project installed editable with its test extras. Safe to run again: it only does
# work when pyproject.toml (or this script) changed since the last successful run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv"
STAMP="$VENV/.asc-edge-setup.sha256"

# libsndfile1: soundfile; gcc-arm-none-eabi + newlib: the Cortex-M4 cross-compiler;
# qemu-user: runs the kernels' Cortex-M4 DSP build in tests; qemu-system-arm: the emulated
# STM32F405 board (netduinoplus2) that `asc-edge bench` runs the firmware on;
# libstdc++-arm-none-eabi-newlib: the C++ runtime of the TFLM + CMSIS-NN peer (asc_edge/device/tflm_peer.py);
# chromium: headless rendering of `asc-edge report`'s page in tests/test_report_html.py.
APT_PACKAGES=(libsndfile1 gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib qemu-user qemu-system-arm
              chromium)

want=$(cat pyproject.toml scripts/setup.sh scripts/requirements-export.txt | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  bash scripts/setup_renode.sh  # quick when Renode is already in place
  exit 0
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "[setup] apt-get install ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

PY=""
for cand in python3.11 python3; do
  if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    PY=$(command -v "$cand"); break
  fi
done
if [ -z "$PY" ]; then
  echo "[setup] error: Python 3.11 not found. Fix: apt-get install python3.11 python3.11-venv" >&2
  exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating venv with $PY"
  "$PY" -m venv "$VENV" || { echo "[setup] error: venv failed. Fix: apt-get install python3.11-venv" >&2; exit 1; }
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
# torch first and pinned, so nothing later resolves a CUDA build.
"$VENV/bin/python" -m pip install -q "torch==2.13.0"
"$VENV/bin/python" -m pip install -q -e ".[test,teachers]"
# PaSST teacher model code without its declared deps (timm -> torchvision, torchaudio: no builds for
# the pinned CPU torch; they break `import pytorch_lightning`). See the teachers extra in pyproject.toml.
"$VENV/bin/python" -m pip install -q --no-deps "hear21passt==0.0.26"
# Export chain (ONNX → int8 TFLite → tflite-micro oracle); see the comments in the file for why
# onnx2tf goes in with --no-deps.
"$VENV/bin/python" -m pip install -q -r scripts/requirements-export.txt
grep '^#no-deps ' scripts/requirements-export.txt | cut -d' ' -f2- | xargs "$VENV/bin/python" -m pip install -q --no-deps
# CMSIS-DSP sources for the firmware (pinned sdist from PyPI, unpacked into ~/.cache/asc-edge/cmsis-dsp/).
"$VENV/bin/python" -c "from asc_edge.device.cmsis_dsp import ensure_cmsis_dsp; print('[setup] CMSIS-DSP:', ensure_cmsis_dsp())"
echo "$want" > "$STAMP"
# Renode (the second emulator backend, `bench --renode`), where a copy is at hand.
bash scripts/setup_renode.sh
echo "[setup] done: $VENV"
