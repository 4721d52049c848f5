#!/bin/sh
# bf16_test.sh DYNOPOOL TEST_DATA — mixed precision from the command line
# (docs/guide.md, "Mixed precision"):
#  1. --precision auto under ONEDNN_MAX_CPU_ISA settings without bf16 (AVX2: none;
#     AVX512_CORE: emulated) picks fp32 and says so; explicit bf16 is refused where
#     oneDNN has none and warned about where it is emulated; with the CPU's own ISA,
#     auto picks bf16 exactly when /proc/cpuinfo lists avx512_bf16 or amx_bf16.
#     Each case sets ONEDNN_MAX_CPU_ISA itself, so every CI run (native, AVX2,
#     AVX512_CORE) runs both branches of auto.
#  2. where bf16 runs (native or emulated, as the inherited ONEDNN_MAX_CPU_ISA
#     allows): an interrupted bf16 run resumed in bf16 ends with the same bytes as
#     the uninterrupted one; a run started in fp32 resumes in bf16 and the other
#     way; eval and bench take either precision on the checkpoints.
set -u
dp=$1; fixtures=$2
here=$(dirname "$0")
T=$(mktemp -d /tmp/dp_bf16_test.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail=0
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
. "$here/expect.sh"

bench="bench --model vgg16 --width 0.0625 --input 16 --in-ch 1 --classes 10 --batch 4 --steps 1"
has() { grep -qw "$1" /proc/cpuinfo 2>/dev/null; }

# 1. auto and explicit bf16 by oneDNN's ISA
expect auto_avx2 0 "^precision: fp32 \\(auto: no native bf16" env ONEDNN_MAX_CPU_ISA=AVX2 $dp $bench --precision auto
expect bf16_avx2 1 "precision bf16: oneDNN has no bf16 implementation for this CPU" \
  env ONEDNN_MAX_CPU_ISA=AVX2 $dp $bench --precision bf16
expect bad_precision 2 "--precision: expected fp32, bf16 or auto, got 'fp16'" $dp $bench --precision fp16
expect precision_info 2 "--precision applies to train, eval, bench and predict" $dp info --precision bf16
if has avx512f && has avx512bw && has avx512vl && has avx512dq; then
  expect auto_avx512 0 "^precision: fp32 \\(auto: no native bf16" \
    env ONEDNN_MAX_CPU_ISA=AVX512_CORE $dp $bench --precision auto
  expect bf16_emulated 0 "warning: --precision bf16: this CPU has no native bf16 .*emulates it" \
    env ONEDNN_MAX_CPU_ISA=AVX512_CORE $dp $bench --precision bf16
fi
if has avx512_bf16 || has amx_bf16; then
  expect auto_native 0 "^precision: bf16 \\(auto: oneDNN runs bf16 natively" env -u ONEDNN_MAX_CPU_ISA $dp $bench --precision auto
else
  expect auto_native 0 "^precision: fp32 \\(auto: no native bf16" env -u ONEDNN_MAX_CPU_ISA $dp $bench --precision auto
fi

# 2. runs, resumes and checkpoints, where bf16 runs under the inherited ISA
if $dp $bench --precision bf16 > "$T/probe" 2>&1; then
  "$fixtures" --write-fixtures "$T/fx" || { echo "cannot write fixtures"; exit 1; }
  small="--data $T/fx/good --width 0.125 --batch 32 --limit 256 --limit-test 64 --pool dynopool --epochs 2"
  expect run_bf16 0 "Result" $dp train $small --precision bf16 --out "$T/a"
  expect interrupt_bf16 130 "continue with" $dp train $small --precision bf16 --out "$T/b" --interrupt-after 3
  expect resume_bf16 0 "Result" $dp train --resume "$T/b" --precision bf16
  cmp -s "$T/a/checkpoint.safetensors" "$T/b/checkpoint.safetensors" \
    || { echo "FAIL resume_bf16: the checkpoint differs from the uninterrupted bf16 run's"; fail=$((fail + 1)); }
  # across precisions: fp32 -> bf16 and bf16 -> fp32
  expect interrupt_fp32 130 "continue with" $dp train $small --out "$T/c" --interrupt-after 3
  expect resume_fp32_in_bf16 0 "Result" $dp train --resume "$T/c" --precision bf16
  # its first 3 steps in fp32 make it another run than the bf16 one (were --precision
  # ignored, both would be the same fp32 run)
  cmp -s "$T/a/checkpoint.safetensors" "$T/c/checkpoint.safetensors" \
    && { echo "FAIL run_bf16: its checkpoint is, byte for byte, that of a run whose first steps were fp32"; fail=$((fail + 1)); }
  expect interrupt_bf16_2 130 "continue with" $dp train $small --precision bf16 --out "$T/d" --interrupt-after 3
  expect resume_bf16_in_fp32 0 "Result" $dp train --resume "$T/d"
  for p in fp32 bf16; do
    expect eval_$p 0 "\"precision\":[[:space:]]*\"$p\"" $dp eval --checkpoint "$T/a/checkpoint.safetensors" --data "$T/fx/good" --precision $p --json
    expect bench_ckpt_$p 0 "images/s" $dp bench --checkpoint "$T/c/checkpoint.safetensors" --batch 8 --steps 1 --precision $p
  done
else
  echo "skip 2: bf16 does not run under ONEDNN_MAX_CPU_ISA=${ONEDNN_MAX_CPU_ISA:-unset}: $(tail -1 "$T/probe")"
fi
[ "$fail" -eq 0 ] && echo "bf16_test: all passed" || echo "bf16_test: $fail failed"
exit "$fail"
