#!/usr/bin/env bash
# README command 1: set up (idempotent), then the main job on the bundled real audio
# (../shared/data): train a teacher ensemble (SNTL-NTU's three 32-BCBL CP-Mobiles), train the
# CP-Mobile student twice — without a teacher (cross-entropy) and distilled from the ensemble — and
# print both, then export the distilled student (ONNX → int8 TFLite → C model checked against
# tflite-micro on the host) and run it on the emulated STM32F405 (QEMU): device logits == host C
# frontend → tflite-micro on every test clip.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
DATA=${ASC_EDGE_DATA:-../shared/data}
RUNS=${ASC_EDGE_RUNS:-runs}
SPLIT=${ASC_EDGE_SPLIT:-100}
# The split100 set-up of benchmarks/kd_methods.py (teachers 400 optimiser steps = 27 epochs, students
# 200 = 14 epochs, tau 1):
# under an hour on 2 cores. Longer runs: ASC_EDGE_TEACHER_EPOCHS / ASC_EDGE_STUDENT_EPOCHS.
TEACHER_EPOCHS=${ASC_EDGE_TEACHER_EPOCHS:-27}
STUDENT_EPOCHS=${ASC_EDGE_STUDENT_EPOCHS:-14}
if [ ! -f "$DATA/meta.csv" ]; then
  echo "error: no dataset at $DATA (fix: set ASC_EDGE_DATA to a TAU 2022 Mobile-layout folder)" >&2
  exit 2
fi
AE=.venv/bin/asc-edge
ENS="sntl-dcase2024_split${SPLIT}"
TEACHERS=""
for member in mixstyle dir mixstyle-dir; do
  TEACHERS="$TEACHERS --teacher $RUNS/teachers/${ENS}_${member}_seed0/model.ckpt"
done
# Every clip of the bundled pack is from device a: the students skip the simulated-device (DIR)
# augmentation, which only costs time there (the teachers keep the ensemble's own recipe).
STUDENT="--data $DATA --split $SPLIT --model cp-mobile --epochs $STUDENT_EPOCHS --dir-p 0 --out $RUNS"
$AE complexity cp-mobile
echo "== 1/6 teachers: three 32-BCBL CP-Mobiles (Freq-MixStyle / DIR / both) on split$SPLIT, $TEACHER_EPOCHS epochs"
$AE train-teachers --ensemble sntl --frontend dcase2024 --data "$DATA" --split "$SPLIT" --epochs "$TEACHER_EPOCHS" \
    --out "$RUNS/teachers" --reuse
echo "== 2/6 student without a teacher (cross-entropy), $STUDENT_EPOCHS epochs"
$AE train $STUDENT --name student_cp-mobile_split${SPLIT}_ce
echo "== 3/6 student distilled from the ensemble (SNTL-NTU teacher-focused student, tau 1), $STUDENT_EPOCHS epochs"
$AE train $STUDENT $TEACHERS --kd-scheme focusnet --kd-tau 1 --name student_cp-mobile_split${SPLIT}_kd
echo "== 4/6 both students on the test split"
echo "-- cross-entropy student:"
$AE evaluate "$RUNS/student_cp-mobile_split${SPLIT}_ce" --data "$DATA" --split test --no-progress
echo "-- distilled student:"
$AE evaluate "$RUNS/student_cp-mobile_split${SPLIT}_kd" --data "$DATA" --split test --no-progress
echo "== 5/6 export the distilled student: ONNX, int8 TFLite, generated C model; host C vs tflite-micro"
$AE export "$RUNS/student_cp-mobile_split${SPLIT}_kd" --target cmsis-nn --data "$DATA"
echo "== 6/6 bench on the emulated STM32F405 (QEMU): every test clip, bit for bit"
$AE bench "export/student_cp-mobile_split${SPLIT}_kd" --data "$DATA" --split test
