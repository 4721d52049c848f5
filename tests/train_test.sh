#!/bin/sh
# train_test.sh DYNOPOOL TEST_DATA [SANITIZE] — `dynopool train` and `eval` end
# to end on small generated datasets (test_data --write-fixtures): a run, an
# interrupted run resumed to the same bytes, SIGTERM, a NaN stop that keeps the
# last checkpoint, divergence that saves nothing, one trainer per run folder,
# links planted in a run folder, the best checkpoint and --val-split, and a
# clear error with a non-zero exit for every kind of bad input.  SANITIZE=1 (an
# AddressSanitizer build) skips the memory limits.
set -u
dp=$1; fixtures=$2; sanitize=${3:-0}
here=$(dirname "$0")
T=$(mktemp -d /tmp/dp_train_test.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail=0
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

. "$here/expect.sh" # expect, poke
# metrics without the timing fields, which differ between runs
untimed() { sed -E 's/,"images_per_s":[^,]*,"data_wait":[^,]*,"seconds":[^,}]*//' "$1"; }

"$fixtures" --write-fixtures "$T/fx" || { echo "cannot write fixtures"; exit 1; }
D=$T/fx/good
small="--data $D --width 0.25 --batch 64 --limit-test 128"

# 1. a run finishes with the Table 5.1 row, a summary and one metrics line per epoch
# (with the alphas' own momentum and a trace of the first 12 steps, which the resumed run
# below must repeat: both come back from run.json)
trace="--alpha-momentum 0.5 --alpha-trace 12"
expect run 0 "Result \\(the paper's Table 5.1 row" $dp train $small --epochs 6 $trace --out "$T/a"
[ -f "$T/a/summary.json" ] || { echo "FAIL run: no summary.json"; fail=$((fail + 1)); }
[ "$(wc -l < "$T/a/metrics.jsonl")" -eq 6 ] || { echo "FAIL run: metrics.jsonl lines"; fail=$((fail + 1)); }
acc=$(sed -n '$s/.*"test_acc":\([0-9.]*\).*/\1/p' "$T/a/metrics.jsonl")
awk -v a="$acc" 'BEGIN { exit !(a >= 50) }' || { echo "FAIL run: test accuracy $acc% < 50% on a learnable set"; fail=$((fail + 1)); }
# without --val-split the best epoch is the best test accuracy, and the summary says so
best=$(sed 's/.*"epoch":\([0-9]*\),.*"test_acc":\([0-9.]*\),.*/\2 \1/' "$T/a/metrics.jsonl" | sort -s -k1,1nr | head -1)
grep -q "\"best_chosen_on\":[[:space:]]*\"test\"" "$T/a/summary.json" \
  && grep -q "\"best_epoch\":[[:space:]]*${best#* }," "$T/a/summary.json" && [ -f "$T/a/checkpoint-best.safetensors" ] \
  || { echo "FAIL run: summary.json does not name best epoch ${best#* } chosen on the test split"; fail=$((fail + 1)); }

# 2. interrupted twice (mid-epoch, then in the next epoch), resumed: the same bytes
expect interrupt 130 "continue with: $dp train --resume $T/b" \
  $dp train $small --epochs 6 $trace --out "$T/b" --interrupt-after 3
expect interrupt_again 130 "resuming $T/b at epoch 1, step 4" $dp train --resume "$T/b" --interrupt-after 9
expect resume 0 "Result" $dp train --resume "$T/b"
cmp -s "$T/a/checkpoint.safetensors" "$T/b/checkpoint.safetensors" \
  || { echo "FAIL resume: the checkpoint differs from the uninterrupted run's"; fail=$((fail + 1)); }
untimed "$T/a/metrics.jsonl" > "$T/ma"; untimed "$T/b/metrics.jsonl" > "$T/mb"
cmp -s "$T/ma" "$T/mb" || { echo "FAIL resume: metrics differ"; diff "$T/ma" "$T/mb" | head -4; fail=$((fail + 1)); }
# the trace: 12 steps, the same after two interruptions; each epoch's mean gradient in metrics
{ [ "$(wc -l < "$T/a/alpha_trace.jsonl")" -eq 12 ] && cmp -s "$T/a/alpha_trace.jsonl" "$T/b/alpha_trace.jsonl" &&
  grep -q '"step":12,' "$T/b/alpha_trace.jsonl" && [ "$(grep -c '"alpha_grad_task":\[\[' "$T/a/metrics.jsonl")" -eq 6 ]; } \
  || { echo "FAIL resume: alpha_trace.jsonl (12 steps, the same after a resume) or alpha_grad_task in metrics"; fail=$((fail + 1)); }
expect resume_done 0 "all 6 epochs are done" $dp train --resume "$T/b"
# a run folder cannot redirect a write: links planted at temporary names are not
# followed (the file they point to keeps its bytes), and are cleared away
printf precious > "$T/victim"
for f in summary.json metrics.jsonl run.json; do ln -s "$T/victim" "$T/b/$f.tmp"; done
expect resume_links 0 "all 6 epochs are done" $dp train --resume "$T/b"
[ "$(cat "$T/victim")" = precious ] || { echo "FAIL resume_links: a planted link was written through"; fail=$((fail + 1)); }
for f in summary.json metrics.jsonl run.json; do
  { [ -f "$T/b/$f" ] && [ ! -L "$T/b/$f" ] && [ ! -L "$T/b/$f.tmp" ]; } \
    || { echo "FAIL resume_links: $f is a link or its planted link is still there"; fail=$((fail + 1)); }
done
expect resume_done_row 0 "vgg16 x0.25 +dynopool +good +$(printf %.2f "$acc")%" $dp train --resume "$T/b"
expect extend 0 "epoch 7/7" $dp train --resume "$T/b" --epochs 7
expect extended 0 "all 7 epochs are done" $dp train --resume "$T/b"

# 3. a real SIGTERM while training: saved, exit 143, resumable
$dp train $small --epochs 400 --out "$T/s" > "$T/s.log" 2>&1 &
pid=$!
i=0
while [ $i -lt 300 ] && ! grep -q "^epoch 1/400" "$T/s.log"; do sleep 0.1; i=$((i + 1)); done
kill -TERM $pid; wait $pid; rc=$?
if [ $rc -ne 143 ] || ! grep -Eq "terminated (in|after) epoch" "$T/s.log"; then
  echo "FAIL sigterm: exit $rc"; tail -3 "$T/s.log"; fail=$((fail + 1))
else
  echo "ok   sigterm"
fi
expect sigterm_resume 130 "resuming $T/s" $dp train --resume "$T/s" --interrupt-after 1

# 3b. one trainer per run folder: a second start and a --resume while it runs are
# refused, naming the folder and the PID; the epochs are written once each
$dp train $small --epochs 3 --out "$T/l" > "$T/l.log" 2>&1 &
pid=$!
i=0
while [ $i -lt 300 ] && ! grep -q "^training " "$T/l.log"; do sleep 0.1; i=$((i + 1)); done
expect lock_second 1 "$T/l is in use by another 'dynopool train' \\(PID $pid\\)" $dp train $small --epochs 3 --out "$T/l"
expect lock_resume 1 "$T/l is in use by another 'dynopool train' \\(PID $pid\\)" $dp train --resume "$T/l"
wait $pid; rc=$?
epochs=$(sed 's/^{"epoch":\([0-9]*\),.*/\1/' "$T/l/metrics.jsonl" | tr '\n' ' ')
[ $rc -eq 0 ] && [ "$epochs" = "1 2 3 " ] \
  || { echo "FAIL lock: the first trainer exited $rc; epochs in metrics.jsonl: $epochs"; fail=$((fail + 1)); }

# 3c. Ctrl-C on a terminal: the message starts on a line of its own, not glued to
# the live progress line (script(1) gives the run a terminal)
if command -v script > /dev/null 2>&1; then
  script -qec "$dp train $small --epochs 2 --out $T/u --interrupt-after 8" /dev/null > "$T/u.log" 2>&1
  if tr -d '\r' < "$T/u.log" | grep -a "interrupted" | grep -q "^dynopool: interrupted in epoch 1"; then
    echo "ok   tty_interrupt"
  else
    echo "FAIL tty_interrupt: the message does not start a line"; tr -d '\r' < "$T/u.log" | tail -3; fail=$((fail + 1))
  fi
else
  echo "skip tty_interrupt: no script(1)"
fi

# 4. a NaN loss stops the run and leaves the last checkpoint untouched
expect nan_setup 130 "checkpoint saved" $dp train $small --epochs 3 --out "$T/n" --interrupt-after 10
cp "$T/n/checkpoint.safetensors" "$T/n.before"
expect nan 1 "loss is not finite at epoch 2, step 5 \\(lr" $dp train --resume "$T/n" --poison-after 1
expect nan_message 1 "Nothing was saved after the last good checkpoint \\($T/n/checkpoint.safetensors\\)" \
  $dp train --resume "$T/n" --poison-after 1
cmp -s "$T/n.before" "$T/n/checkpoint.safetensors" \
  || { echo "FAIL nan: the checkpoint changed"; fail=$((fail + 1)); }
# a finite training loss with weights gone to infinity (the largest learning
# rate and weight decay): the test loss says it; nothing saved, nothing logged
expect diverge_wd 1 "the run diverged in epoch 1: the test loss is NaN" \
  $dp train $small --limit 64 --epochs 2 --lr 100 --wd 1 --out "$T/wd"
{ [ ! -e "$T/wd/checkpoint.safetensors" ] && [ ! -e "$T/wd/checkpoint-best.safetensors" ] && [ ! -s "$T/wd/metrics.jsonl" ]; } \
  || { echo "FAIL diverge_wd: a diverged epoch was saved or logged"; ls "$T/wd"; fail=$((fail + 1)); }
# a learning rate too large: said to diverge, with where and a hint (at a step whose loss is not
# finite or, when every step's loss stayed finite, at the epoch's test: which one depends on the
# thread count and the CPU's kernels, both correct)
expect diverge_lr 1 "(the loss is not finite at epoch 1, step [0-9]+ \\(lr 100\\): the run diverged|the run diverged in epoch 1: (the test loss is (NaN|infinite)|[0-9]+ tensors hold NaN))" \
  $dp train $small --epochs 1 --lr 100 --out "$T/lr"
expect diverge_lr_hint 1 "Nothing was saved after the last good checkpoint \\(none yet\\); try a lower --lr" \
  $dp train $small --epochs 1 --lr 100 --out "$T/lr2"
# beyond the options' ranges: refused before anything runs
expect lr_range 2 "--lr: expected a number in \\(0, 100\\], got '1e308'" $dp train $small --lr 1e308 --out "$T/lr3"

# 5. eval: the accuracy the run logged, JSON, and mismatches
expect eval 0 "accuracy +$(printf %.2f "$acc")%" $dp eval --checkpoint "$T/a" --data "$D" --limit 128
expect eval_json 0 "\"accuracy\":[[:space:]]*$acc" $dp eval --checkpoint "$T/a/checkpoint.safetensors" --limit 128 --json
expect eval_other_data 1 "model for 1x16x16 inputs and 10 classes, but .*/cifar gives 3x32x32" \
  $dp eval --checkpoint "$T/a" --data "$T/fx/cifar" --split train
expect eval_not_checkpoint 1 "metrics.jsonl" $dp eval --checkpoint "$T/a/metrics.jsonl"
expect eval_no_checkpoint 2 "needs --checkpoint" $dp eval --data "$D"
# a model with a NaN weight: refused with the tensor named, exit 1
cp "$T/a/checkpoint.safetensors" "$T/nanw.safetensors"
poke "$T/nanw.safetensors" 'classifier\.weight' '\000\000\300\177' \
  || { echo "FAIL eval_nan: no classifier.weight in the checkpoint's header"; fail=$((fail + 1)); }
expect eval_nan 1 "nanw.safetensors: tensor 'classifier.weight' element 0 is nan, expected a finite number" \
  $dp eval --checkpoint "$T/nanw.safetensors" --data "$D" --limit 128
# alphas that make a map far larger than training allowed: refused, unless --max-side 0
cp "$T/a/checkpoint.safetensors" "$T/tiny_alpha.safetensors"
poke "$T/tiny_alpha.safetensors" '[a-z0-9.]*\.alpha' '\315\314\114\075' \
  || { echo "FAIL eval_max_side: no alpha in the checkpoint's header"; fail=$((fail + 1)); }
expect eval_max_side 1 "tiny_alpha.safetensors: its alphas make stage 1 [0-9]+x[0-9]+ from 16x16 inputs, above --max-side 32" \
  $dp eval --checkpoint "$T/tiny_alpha.safetensors" --data "$D" --limit 16
expect eval_max_side_off 0 "accuracy" $dp eval --checkpoint "$T/tiny_alpha.safetensors" --data "$D" --limit 16 --max-side 0

# 6. other data: an image folder, CIFAR-10, a toy variant
expect folder 0 "lr 0.01 \\(alphas 0.001\\)" $dp train --data "$T/fx/folder" --input 16 --width 0.25 --batch 4 --epochs 1 --out "$T/f"
expect variant 0 "1x32x32" $dp train $small --variant tile --limit 64 --epochs 1 --out "$T/v"
# a checkpoint of another model: refused with the reason
cp -r "$T/a" "$T/a2" && cp "$T/f/checkpoint.safetensors" "$T/a2/checkpoint.safetensors"
expect resume_other_model 1 "cannot resume: $T/a2/checkpoint.safetensors: checkpoint has in_ch = 3, this model has 1" \
  $dp train --resume "$T/a2"
expect eval_other_model 1 "is a model for 3x16x16 inputs and 2 classes, but .*/good gives 1x16x16 images" \
  $dp eval --checkpoint "$T/f" --data "$D"
expect cifar_truncated 1 "test_batch.bin: truncated: .*3073-byte records" \
  $dp train --data "$T/fx/cifar" --epochs 1 --out "$T/c"
# an unreadable test image stops the run before it trains, not after an epoch
cp -r "$T/fx/folder" "$T/badtest" && printf 'not a png' > "$T/badtest/test/cat/0.png"
expect bad_test_image 1 "badtest/test/cat/0.png: not a JPEG or PNG file" \
  $dp train --data "$T/badtest" --input 16 --width 0.25 --batch 4 --epochs 1 --out "$T/bt"
[ ! -e "$T/bt/run.json" ] || { echo "FAIL bad_test_image: the run started"; fail=$((fail + 1)); }

# 6b. --val-split: the best epoch chosen on held-out training images, recorded,
# resumable to the same bytes; eval --best uses it
expect val_split 0 "384 train / 128 validation / 128 test images" \
  $dp train $small --epochs 3 --val-split 0.25 --out "$T/vs"
grep -q '"val_split":[[:space:]]*0.25' "$T/vs/run.json" || { echo "FAIL val_split: not in run.json"; fail=$((fail + 1)); }
[ "$(grep -c '"val_loss":.*"val_acc":' "$T/vs/metrics.jsonl")" -eq 3 ] || { echo "FAIL val_split: metrics lines without val_acc"; fail=$((fail + 1)); }
vbest=$(sed 's/.*"epoch":\([0-9]*\),.*"val_acc":\([0-9.]*\),.*/\2 \1/' "$T/vs/metrics.jsonl" | sort -s -k1,1nr | head -1)
vtest=$(sed -n "s/^{\"epoch\":${vbest#* },.*\"test_acc\":\([0-9.]*\),.*/\1/p" "$T/vs/metrics.jsonl")
{ grep -q '"best_chosen_on":[[:space:]]*"validation"' "$T/vs/summary.json" \
  && grep -q "\"best_epoch\":[[:space:]]*${vbest#* }," "$T/vs/summary.json"; } \
  || { echo "FAIL val_split: summary.json does not name best epoch ${vbest#* } chosen on validation"; fail=$((fail + 1)); }
expect val_split_interrupt 130 "checkpoint saved" $dp train $small --epochs 3 --val-split 0.25 --out "$T/vs2" --interrupt-after 8
expect val_split_resume 0 "chosen on the validation split \\(25% of the" $dp train --resume "$T/vs2"
for f in checkpoint.safetensors checkpoint-best.safetensors; do
  cmp -s "$T/vs/$f" "$T/vs2/$f" || { echo "FAIL val_split_resume: $f differs"; fail=$((fail + 1)); }
done
untimed "$T/vs/metrics.jsonl" > "$T/mv"; untimed "$T/vs2/metrics.jsonl" > "$T/mv2"
cmp -s "$T/mv" "$T/mv2" || { echo "FAIL val_split_resume: metrics differ"; fail=$((fail + 1)); }
expect eval_best 0 "accuracy +$(printf %.2f "$vtest")%" $dp eval --checkpoint "$T/vs" --best --limit 128
expect eval_best_file 2 "--best picks the best checkpoint of a run folder" \
  $dp eval --checkpoint "$T/vs/checkpoint.safetensors" --best
expect val_split_bad 2 "--val-split: expected a fraction in \\(0, 1\\), got '1'" $dp train --val-split 1
expect val_split_resume_opt 2 "only --epochs" $dp train --resume "$T/vs" --val-split 0.5

# the memory guard binds and says so
expect max_side 0 "sizes 7x7 .*\\(max side bound: alphas raised\\)" $dp train $small --epochs 1 --max-side 7 --out "$T/cap"
grep -q '"capped":[1-9]' "$T/cap/metrics.jsonl" || { echo "FAIL max_side: metrics do not count it"; fail=$((fail + 1)); }

# 7. bad data files: the file, the offset, what was expected
expect truncated 1 "train-images-idx3-ubyte.gz: truncated: the data ends at byte [0-9]+, expected 512 images of 16x16" \
  $dp train --data "$T/fx/truncated" --out "$T/x1"
expect corrupt 1 "train-images-idx3-ubyte.gz: corrupt gzip data" $dp train --data "$T/fx/corrupt" --out "$T/x2"
expect badlabel 1 "train-labels-idx1-ubyte.gz: byte 264: label 12 is out of range \\[0, 10\\)" \
  $dp train --data "$T/fx/badlabel" --out "$T/x3"
expect badmagic 1 "byte 0: expected the IDX magic 00 00 08 03" $dp train --data "$T/fx/badmagic" --out "$T/x4"
expect nodata 1 "$T/none: not a folder" $dp train --data "$T/none" --out "$T/x5"
expect notdataset 1 "no dataset found" $dp train --data "$T/fx" --out "$T/x6"

# 8. bad command lines: exit 2 with the reason
expect unknown 2 "unknown option '--epoch'" $dp train --epoch 3
expect epochs0 2 "--epochs: expected an integer in \\[1, 1000000\\], got '0'" $dp train --epochs 0
expect width 2 "--width: expected a number in \\(0, 16\\], got '-1'" $dp train --width -1
expect variant_bad 2 "--variant: expected none, stretch-v, tile or large, got 'wide'" $dp train --variant wide
expect lr_bad 2 "--lr: expected a number in \\(0, 100\\], got 'abc'" $dp train --lr abc
expect resume_model 2 "only --epochs" $dp train --resume "$T/a" --model resnet50
expect out_exists 2 "already holds a run; continue it with '$dp train --resume $T/a'" \
  $dp train $small --epochs 1 --out "$T/a"
expect resume_missing 1 "$T/zz/run.json: cannot open" $dp train --resume "$T/zz"
expect help 0 "--resume DIR" $dp train --help

# 9. names and numbers read back from files
# a data folder whose name holds JSON's quote and backslash, and one that would
# inject keys into a hand-built JSON: the checkpoint records the path exactly
i=0
for name in 'q"b\s x","width":"16' 'x","mean":[9,9,9],"std":[1,1,1],"variant":"tile","n":"'; do
  i=$((i + 1)); Q="$T/$name"
  cp -r "$D" "$Q"
  expect name$i 0 "Result" $dp train --data "$Q" --width 0.25 --batch 64 --limit 64 --limit-test 64 --epochs 1 --out "$T/q$i"
  qacc=$(sed -n '$s/.*"test_acc":\([0-9.]*\).*/\1/p' "$T/q$i/metrics.jsonl")
  qloss=$(sed -n '$s/.*"test_loss":\([0-9.e+-]*\).*/\1/p' "$T/q$i/metrics.jsonl")
  expect name${i}_eval 0 "\"variant\":[[:space:]]*\"none\",.*\"accuracy\":[[:space:]]*$qacc,[[:space:]]*\"loss\":[[:space:]]*$qloss," \
    sh -c "$dp eval --checkpoint '$T/q$i' --limit 64 --json | tr -d '\n'"
  esc=$(printf '%s' "$Q" | sed 's/\\/\\\\/g; s/"/\\"/g')
  $dp eval --checkpoint "$T/q$i" --limit 64 --json 2>&1 | grep -qF "\"data\":	\"$esc\"," \
    || { echo "FAIL name${i}_data: eval --json does not give the data path $Q"; fail=$((fail + 1)); }
  expect name${i}_resume 0 "epoch 2/2" $dp train --resume "$T/q$i" --epochs 2
done

# checkpoint metadata and run.json out of range: the file, the field, the range
setmeta() { perl "$here/setmeta.pl" "$@" || { echo "FAIL setmeta $*"; fail=$((fail + 1)); }; }
prog='"batch":0,"loss":0,"task":0,"gmacs":0,"correct":0,"seen":0,"capped":0,"best_acc":-1,"best_epoch":0}'
cp -r "$T/a" "$T/p1"
setmeta "$T/a/checkpoint.safetensors" "$T/p1/checkpoint.safetensors" 0 progress "{\"epoch\":1e300,$prog"
expect progress_epoch 1 "cannot resume: $T/p1/checkpoint.safetensors: metadata 'progress' field 'epoch' = 1.0000000000000001e\\+300, expected an integer in \\[0, 1000000\\]" \
  timeout 60 $dp train --resume "$T/p1"
cp -r "$T/a" "$T/p2"
setmeta "$T/a/checkpoint.safetensors" "$T/p2/checkpoint.safetensors" 0 epoch 2 progress "{\"epoch\":2,$prog" 
setmeta "$T/p2/checkpoint.safetensors" "$T/p2/checkpoint.safetensors" 0 progress "{\"epoch\":2,\"batch\":999,$(printf '%s' "$prog" | sed 's/"batch":0,//')"
expect progress_batch 1 "metadata 'progress' field 'batch' = 999, expected at most the 8 steps of an epoch of $D" \
  timeout 60 $dp train --resume "$T/p2"
cp -r "$T/a" "$T/r1"
sed 's/"batch":[[:space:]]*64/"batch": -5/' "$T/a/run.json" > "$T/r1/run.json"
expect runjson_batch 1 "cannot resume: $T/r1/run.json: field 'batch' = -5, expected an integer in \\[1, 65536\\]" \
  $dp train --resume "$T/r1"
# run.json's width against the checkpoint's, before a width-16 VGG-16 (30 GB) is built
cp -r "$T/a" "$T/r2"
sed 's/"width":[[:space:]]*0.25/"width": 16/' "$T/a/run.json" > "$T/r2/run.json"
out=$( (if [ "$sanitize" != 1 ]; then ulimit -v 1000000; fi
        OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 timeout 60 $dp train --resume "$T/r2") 2>&1); rc=$?
if [ $rc -ne 1 ] || ! printf '%s\n' "$out" | grep -q "cannot resume: $T/r2/checkpoint.safetensors: checkpoint has width = 0.25, this model has 16"; then
  echo "FAIL runjson_width: exit $rc"; printf '%s\n' "$out" | tail -3; fail=$((fail + 1))
else
  echo "ok   runjson_width"
fi

# images smaller than the random crop's padding: said, with the dataset's name
for side in 2 3; do
  mkdir -p "$T/tiny$side"
  for p in train t10k; do
    { printf "\000\000\010\003\000\000\000\010\000\000\000\\$(printf %03o $side)\000\000\000\\$(printf %03o $side)"
      head -c $((8 * side * side)) /dev/zero | tr '\0' '\200'; } > "$T/tiny$side/$p-images-idx3-ubyte"
    printf '\000\000\010\001\000\000\000\010\000\001\002\003\004\005\006\007' > "$T/tiny$side/$p-labels-idx1-ubyte"
  done
  expect tiny$side 1 "$T/tiny$side: the images are ${side}x$side, smaller than the random crop's zero padding of 4 pixels" \
    $dp train --data "$T/tiny$side" --width 0.25 --epochs 1 --out "$T/t$side"
done

[ $fail -eq 0 ] && echo "train_test: all passed" || echo "train_test: $fail failed"
exit $fail
