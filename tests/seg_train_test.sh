#!/bin/sh
# seg_train_test.sh DYNOPOOL FASHION_MNIST_DIR — segmentation end to end through the tool:
# segdata writes a small set of scenes, train --task seg trains a tiny HRNet (C = 2,
# dynopool, the complexity loss on) for 2 epochs, and eval --task seg on its checkpoint
# gives the mIoU and pixel accuracy of the last epoch's metrics.jsonl line exactly; a
# classifier with --task seg and a set without its list are refused, naming why.
bin=$1; src=$2
d=$(mktemp -d) || exit 1
trap 'rm -rf "$d"' EXIT
fail() { echo "seg_train_test: $*" >&2; exit 1; }
"$bin" segdata --from "$src" --out "$d/set" --train 32 --val 8 --size 32 || fail "segdata"
"$bin" train --task seg --data "$d/set" --out "$d/run" --width 2 --input 32 --epochs 2 --batch 8 \
    --pool dynopool --lambda 0.1 --threads 1 || fail "train --task seg"
[ "$(wc -l < "$d/run/metrics.jsonl")" -eq 2 ] || fail "metrics.jsonl has no line per epoch"
last=$(tail -1 "$d/run/metrics.jsonl")
ev=$("$bin" eval --task seg --checkpoint "$d/run" --data "$d/set" --json --threads 1) || fail "eval --task seg"
echo "train: $last"
echo "eval:  $ev"
for k in miou pixel_acc gmacs; do
  a=$(printf '%s' "$last" | sed -n "s/.*\"$k\":\([0-9.e+-]*\).*/\1/p")
  b=$(printf '%s' "$ev" | sed -n "s/.*\"$k\":\([0-9.e+-]*\).*/\1/p")
  [ -n "$a" ] && [ "$a" = "$b" ] || fail "$k: training's last epoch $a, eval $b"
done
out=$("$bin" train --task seg --model vgg16 --data "$d/set" --out "$d/x" 2>&1) && fail "vgg16 accepted"
printf '%s\n' "$out" | grep -q "vgg16 is not a segmentation network" || fail "vgg16: $out"
rm "$d/set/ImageSets/Segmentation/val.txt"
out=$("$bin" train --task seg --data "$d/set" --out "$d/y" --width 2 --input 32 2>&1) && fail "no val list accepted"
printf '%s\n' "$out" | grep -q "ImageSets/Segmentation/val.txt: cannot open" || fail "no val list: $out"
echo "seg_train_test: ok"
