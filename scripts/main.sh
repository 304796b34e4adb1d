#!/usr/bin/env bash
# README command 1: set up (idempotent), then the main job on the bundled real audio
# (../shared/data): train a CP-ResNet teacher, distil the CP-Mobile student from it, evaluate,
# export it (ONNX → int8 TFLite → C model checked against tflite-micro on the host), and run it on
# the emulated STM32F405 (QEMU): device logits == host C frontend → tflite-micro on every test clip.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
DATA=${ASC_EDGE_DATA:-../shared/data}
RUNS=${ASC_EDGE_RUNS:-runs}
SPLIT=${ASC_EDGE_SPLIT:-100}
# Short by default (about 25 min on 2 cores); the full-length recipe (40 / 100 epochs) is benchmarks/kd_splits.py.
TEACHER_EPOCHS=${ASC_EDGE_TEACHER_EPOCHS:-10}
STUDENT_EPOCHS=${ASC_EDGE_STUDENT_EPOCHS:-30}
if [ ! -f "$DATA/meta.csv" ]; then
  echo "error: no dataset at $DATA (fix: set ASC_EDGE_DATA to a TAU 2022 Mobile-layout folder)" >&2
  exit 2
fi
AE=.venv/bin/asc-edge
$AE complexity cp-mobile
echo "== 1/5 teacher: CP-ResNet on split$SPLIT, $TEACHER_EPOCHS epochs"
$AE train --data "$DATA" --split "$SPLIT" --model cp-resnet --epochs "$TEACHER_EPOCHS" --out "$RUNS" --name teacher_cp-resnet_split$SPLIT
echo "== 2/5 student: CP-Mobile distilled from the teacher (KD, tau 2, lambda 0.02), $STUDENT_EPOCHS epochs"
$AE train --data "$DATA" --split "$SPLIT" --model cp-mobile --epochs "$STUDENT_EPOCHS" --out "$RUNS" \
    --teacher "$RUNS/teacher_cp-resnet_split$SPLIT/model.ckpt" --name student_cp-mobile_split${SPLIT}_kd
echo "== 3/5 evaluate the student on the test split"
$AE evaluate "$RUNS/student_cp-mobile_split${SPLIT}_kd" --data "$DATA" --split test
echo "== 4/5 export: ONNX, int8 TFLite, generated C model; host C vs tflite-micro"
$AE export "$RUNS/student_cp-mobile_split${SPLIT}_kd" --target cmsis-nn --data "$DATA"
echo "== 5/5 bench on the emulated STM32F405 (QEMU): every test clip, bit for bit"
$AE bench "export/student_cp-mobile_split${SPLIT}_kd" --data "$DATA" --split test
