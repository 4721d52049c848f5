#!/bin/sh
# seg_train_test.sh DYNOPOOL FASHION_MNIST_DIR TEST_SEGDATA — segmentation end to end through the tool:
# segdata writes a small set of scenes, train --task seg trains a tiny HRNet (C = 2,
# dynopool, the complexity loss on) for 2 epochs of 4 steps, and eval --task seg on its
# checkpoint gives the mIoU and pixel accuracy of the last epoch's metrics.jsonl line
# exactly; summary.json holds the Table 5.4 row.  The same run interrupted (in epoch 2,
# and at the end of epoch 1 before its evaluation) and resumed ends with the same
# checkpoints, byte for byte, and the same metrics but for the timings; a real SIGTERM
# saves, exits 143 and resumes.  A classifier
# with --task seg and a set without its list are refused, naming why.  `dynopool plot` of the
# run draws its map sizes by epoch and masks-run.png, whose size and truth panels
# test_segdata --masks-png checks against the masks (pixel for pixel, VOC's colours).
bin=$1; src=$2; check=$3
d=$(mktemp -d) || exit 1
trap 'rm -rf "$d"' EXIT
fail() { echo "seg_train_test: $*" >&2; exit 1; }
untimed() { sed -E 's/,"images_per_s":[^,]*,"data_wait":[^,]*,"seconds":[^,}]*//' "$1"; }
"$bin" segdata --from "$src" --out "$d/set" --train 32 --val 8 --size 32 || fail "segdata"
"$bin" segdata --from "$src" --out "$d/new/parents/set" --train 2 --val 1 --size 32 >/dev/null &&
  [ -f "$d/new/parents/set/ImageSets/Segmentation/val.txt" ] || fail "segdata into folders that do not exist yet"
run="--task seg --data $d/set --width 2 --input 32 --epochs 2 --batch 8 --pool dynopool --lambda 0.1 --threads 1"
"$bin" train $run --out "$d/run" || fail "train --task seg"
[ "$(wc -l < "$d/run/metrics.jsonl")" -eq 2 ] || fail "metrics.jsonl has no line per epoch"
last=$(tail -1 "$d/run/metrics.jsonl")
ev=$("$bin" eval --task seg --checkpoint "$d/run" --data "$d/set" --json --threads 1) || fail "eval --task seg"
echo "train: $last"
echo "eval:  $ev"
num() { printf '%s' "$2" | sed -n "s/.*\"$1\":[[:space:]]*\([0-9.e+-]*\).*/\1/p"; }
for k in miou pixel_acc gmacs; do
  a=$(num $k "$last"); b=$(num $k "$ev")
  [ -n "$a" ] && [ "$a" = "$b" ] || fail "$k: training's last epoch $a, eval $b"
done
grep -q '"task":[[:space:]]*"seg"' "$d/run/run.json" || fail "run.json does not say task seg"
grep -q "\"command\":[[:space:]]*\".* train ${run% --threads 1} --out $d/run\"" "$d/run/run.json" || fail "run.json has not the command (--threads, global, aside)"
# summary.json: Table 5.4's row, the last epoch's mIoU, five map sizes and the human design's
s=$(tr -d '\n\t ' < "$d/run/summary.json")
[ "$(num miou "$s")" = "$(num miou "$last")" ] || fail "summary.json's miou is not the last epoch's: $s"
[ -n "$(num gmacs "$s")" ] && [ -n "$(num human_gmacs "$s")" ] && [ -n "$(num best_epoch "$s")" ] || fail "summary.json: $s"
pairs5='\[\[[0-9]*,[0-9]*\],\[[0-9]*,[0-9]*\],\[[0-9]*,[0-9]*\],\[[0-9]*,[0-9]*\],\[[0-9]*,[0-9]*\]\]'
printf '%s' "$s" | grep -q "\"sizes\":$pairs5" || fail "summary.json has no five map sizes: $s"
printf '%s' "$s" | grep -q '"human_sizes":\[\[16,16\],\[8,8\],\[4,4\],\[2,2\],\[1,1\]\]' || fail "human sizes: $s"
[ -f "$d/run/checkpoint-best.safetensors" ] || fail "no checkpoint-best.safetensors"
"$bin" eval --task seg --checkpoint "$d/run" --best --data "$d/set" --threads 1 >/dev/null || fail "eval --best"
# interrupted and resumed: the same bytes (b: in epoch 2 after its first step; c: after
# epoch 1's last step, before its evaluation)
for x in b:5 c:4; do
  r=${x%:*}; k=${x#*:}
  out=$("$bin" train $run --out "$d/$r" --interrupt-after "$k" 2>&1); rc=$?
  [ $rc -eq 130 ] || fail "interrupted after $k steps: exit $rc, expected 130: $out"
  printf '%s\n' "$out" | grep -q "continue with: .* train --resume $d/$r" || fail "interrupt message: $out"
  out=$("$bin" train --resume "$d/$r" --threads 1 2>&1) || fail "resume $r: $out"
  printf '%s\n' "$out" | grep -q "Table 5.4" || fail "resume $r: no Table 5.4 row: $out"
  for f in checkpoint.safetensors checkpoint-best.safetensors; do
    cmp -s "$d/run/$f" "$d/$r/$f" || fail "resumed after $k steps: $f differs from the uninterrupted run's"
  done
  untimed "$d/run/metrics.jsonl" > "$d/m1"; untimed "$d/$r/metrics.jsonl" > "$d/m2"
  cmp -s "$d/m1" "$d/m2" || { diff "$d/m1" "$d/m2" | head -4; fail "resumed after $k steps: metrics differ"; }
done
out=$("$bin" plot "$d/run" -o "$d/plot" 2>&1) || fail "plot: $out"
for f in shapes.svg curves.svg sizes-run.svg masks-run.png; do [ -s "$d/plot/$f" ] || fail "plot wrote no $f: $out"; done
[ "$(grep -c '<text[^>]*><tspan font-weight="bold" font-size="14">epoch [12]</tspan>' "$d/plot/sizes-run.svg")" -eq 2 ] \
  || fail "sizes-run.svg has no row for each of the 2 epochs"
grep -q "mIoU $(num miou "$last" | awk '{printf "%.1f", $1}')%" "$d/plot/sizes-run.svg" || fail "sizes-run.svg: no last mIoU"
"$check" --masks-png "$d/plot/masks-run.png" "$d/set" 4 32 11 || fail "masks-run.png"
# a real SIGTERM while training: the step finishes, the checkpoint is saved, exit 143, and
# --resume goes on from it
"$bin" train $run --epochs 400 --out "$d/t" > "$d/t.log" 2>&1 &
pid=$!
i=0
while [ $i -lt 300 ] && ! grep -q "^epoch 1/400 " "$d/t.log" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
kill -TERM $pid; wait $pid; rc=$?
[ $rc -eq 143 ] && grep -Eq "terminated (in|after) epoch [0-9]+.*checkpoint saved" "$d/t.log" ||
  fail "SIGTERM: exit $rc, expected 143 and a saved checkpoint: $(tail -3 "$d/t.log")"
out=$("$bin" train --resume "$d/t" --threads 1 --interrupt-after 1 2>&1); rc=$?
[ $rc -eq 130 ] && printf '%s\n' "$out" | grep -q "resuming $d/t" || fail "resume after SIGTERM: exit $rc: $out"
out=$("$bin" train --resume "$d/run" --threads 1 2>&1) || fail "resume of a finished run: $out"
printf '%s\n' "$out" | grep -q "all 2 epochs are done" || fail "resume of a finished run: $out"
out=$("$bin" train --resume "$d/run" --lr 1 2>&1) && fail "--resume with --lr accepted"
printf '%s\n' "$out" | grep -q "takes the run's settings from its run.json" || fail "--resume --lr: $out"
out=$("$bin" train --task seg --data "$d/set" --out "$d/run" --width 2 --input 32 2>&1) && fail "a second run in a run folder accepted"
printf '%s\n' "$out" | grep -q "already holds a run" || fail "second run: $out"
out=$("$bin" train --task seg --model vgg16 --data "$d/set" --out "$d/x" 2>&1) && fail "vgg16 accepted"
printf '%s\n' "$out" | grep -q "vgg16 is not a segmentation network" || fail "vgg16: $out"
rm "$d/set/ImageSets/Segmentation/val.txt"
out=$("$bin" train --task seg --data "$d/set" --out "$d/y" --width 2 --input 32 2>&1) && fail "no val list accepted"
printf '%s\n' "$out" | grep -q "ImageSets/Segmentation/val.txt: cannot open" || fail "no val list: $out"
echo "seg_train_test: ok"
