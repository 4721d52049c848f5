#!/bin/sh
# effnet_resume.sh DYNOPOOL TEST_DATA — EfficientNet's dropout and stochastic depth
# draw their masks from (seed, step, node) (docs/engine.md, "Random masks without
# generator state"): a dynopool EfficientNet-B0 run interrupted mid-epoch and resumed
# ends with the same checkpoint bytes as the run that was not interrupted (that the
# masks act at all is engine.facts' efficientnet_resume: another seed, other weights).
set -u
dp=$1; fixtures=$2
T=$(mktemp -d /tmp/dp_effnet_resume.XXXXXX)
trap 'rm -rf "$T"' EXIT
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
"$fixtures" --write-fixtures "$T/fx" >/dev/null || { echo "cannot write fixtures"; exit 1; }
a="--data $T/fx/good --model efficientnet-b0 --pool dynopool --width 0.25 --batch 16 --limit 64 --limit-test 32 --epochs 2"
fail=0
"$dp" train $a --out "$T/a" > "$T/a.log" 2>&1 || { echo "FAIL: the run failed"; tail -3 "$T/a.log"; exit 1; }
"$dp" train $a --out "$T/b" --interrupt-after 3 > "$T/b.log" 2>&1
[ $? -eq 130 ] || { echo "FAIL: --interrupt-after 3 did not stop the run with 130"; fail=1; }
"$dp" train --resume "$T/b" > "$T/b2.log" 2>&1 || { echo "FAIL: the resume failed"; tail -3 "$T/b2.log"; fail=1; }
if cmp -s "$T/a/checkpoint.safetensors" "$T/b/checkpoint.safetensors"; then
  echo "ok   interrupted after 3 steps and resumed: the same checkpoint bytes"
else
  echo "FAIL the resumed run's checkpoint differs from the uninterrupted run's"; fail=1
fi
exit $fail
