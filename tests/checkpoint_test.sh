#!/bin/sh
# checkpoint_test.sh DYNOPOOL CHECKPOINT SANITIZE — hostile checkpoints made from a
# real one (the engine.write_checkpoint fixture) by rewriting its metadata: each is
# refused with exit 1 and a message naming the file and the field, and, where the
# metadata describe a larger network than the file holds, within a memory limit
# (ulimit -v; not under AddressSanitizer, SANITIZE=1, which reserves terabytes).
set -u
dp=$1; ck=$2; sanitize=${3:-0}
T=$(mktemp -d /tmp/dp_ckpt_test.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail=0

# setmeta IN OUT STRIP [KEY VALUE]...: see setmeta.pl
setmeta() { perl "$(dirname "$0")/setmeta.pl" "$@" || { echo "FAIL setmeta $*"; fail=$((fail + 1)); }; }

. "$(dirname "$0")/expect.sh" # expect
# every command with at most 1 GB of address space (the tool itself needs ~450 MB
# for OpenBLAS and oneDNN; a model built from a lying width 16 needs 7 to 30 GB)
run_cmd() {
  (if [ "$sanitize" != 1 ]; then ulimit -v 1000000; fi
   OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 timeout 60 "$@")
}

# the fixture: mobilenetv2 dynopool, 3x16x16, 5 classes, width 0.25
expect good 0 "mobilenetv2 \\(dynopool\\), input 3x16x16, 5 classes, width 0.25" $dp info --checkpoint "$ck"

# a larger network than the file holds: refused from the tensors' names and shapes
setmeta "$ck" "$T/w16.safetensors" 0 width 16
expect width16_eval 1 "w16.safetensors: metadata model mobilenetv2, variant dynopool, in_ch 3, classes 5, width 16 imply tensor 'features.0.0.weight' F32\\[512, 3, 3, 3\\], the file holds F32\\[8, 3, 3, 3\\]" \
  $dp eval --checkpoint "$T/w16.safetensors"
expect width16_info 1 "w16.safetensors: metadata .*width 16 imply tensor 'features.0.0.weight'" \
  $dp info --checkpoint "$T/w16.safetensors"
setmeta "$ck" "$T/c1m.safetensors" 0 classes 1000000
expect classes_eval 1 "c1m.safetensors: metadata .*classes 1000000, width 0.25 imply tensor 'classifier.1.weight' F32\\[1000000, 1280\\], the file holds F32\\[5, 1280\\]" \
  $dp eval --checkpoint "$T/c1m.safetensors"
# a few hundred bytes of metadata and no tensors, for a VGG-16 of width 2.16 (544 MB)
setmeta "$ck" "$T/tiny.safetensors" 1 model vgg16 variant human width 2.16
size=$(wc -c < "$T/tiny.safetensors")
[ "$size" -lt 1024 ] || { echo "FAIL tiny: $size bytes"; fail=$((fail + 1)); }
expect tiny_eval 1 "tiny.safetensors: metadata model vgg16, variant human, in_ch 3, classes 5, width 2.16 imply tensor 'features.0.weight' F32\\[136, 3, 3, 3\\], the file has no such tensor" \
  $dp eval --checkpoint "$T/tiny.safetensors"

# fields out of range: the field and its range
setmeta "$ck" "$T/size.safetensors" 0 size 2147483647
expect size_eval 1 "size.safetensors: metadata 'size' = '2147483647', expected an integer in \\[2, 16384\\]" \
  $dp eval --checkpoint "$T/size.safetensors"
expect size_info 1 "size.safetensors: metadata 'size' = '2147483647', expected an integer in \\[2, 16384\\]" \
  $dp info --checkpoint "$T/size.safetensors"
setmeta "$ck" "$T/inch.safetensors" 0 in_ch -3
expect in_ch 1 "inch.safetensors: metadata 'in_ch' = '-3', expected an integer in \\[1, 4096\\]" \
  $dp eval --checkpoint "$T/inch.safetensors"
setmeta "$ck" "$T/wnan.safetensors" 0 width nan
expect width_nan 1 "wnan.safetensors: metadata 'width' = 'nan', expected a number in \\(0, 16\\]" \
  $dp eval --checkpoint "$T/wnan.safetensors"
setmeta "$ck" "$T/steps.safetensors" 0 steps 1e300
expect steps 1 "steps.safetensors: metadata 'steps' = '1e300', expected an integer in \\[0, 2\\^53\\]" \
  $dp eval --checkpoint "$T/steps.safetensors"

# written before MobileNetV2's classifier took torchvision's name (classifier.1.*, with
# its momentum buffers): the same network, so info prints the same and export writes the
# same bytes (dp_checkpoint_config, dp_model_load)
perl "$(dirname "$0")/renametensors.pl" "$ck" "$T/old.safetensors" classifier.1. classifier. \
  || { echo "FAIL renametensors"; fail=$((fail + 1)); }
if grep -aq '"classifier\.1\.' "$T/old.safetensors" || ! grep -aq '"optimizer\.momentum_buffer\.classifier\.weight"' "$T/old.safetensors"; then
  echo "FAIL old_names: the fixture still has classifier.1.* or lacks the old momentum buffer's name"; fail=$((fail + 1))
fi
new_info=$(run_cmd $dp info --checkpoint "$ck" 2>&1 | sed "s|$ck|CK|g")
old_info=$(run_cmd $dp info --checkpoint "$T/old.safetensors" 2>&1 | sed "s|$T/old.safetensors|CK|g")
[ -n "$new_info" ] && [ "$new_info" = "$old_info" ] || { echo "FAIL old_names_info: info differs"; fail=$((fail + 1)); }
expect old_names_export 0 "old.onnx: mobilenetv2" $dp export --checkpoint "$T/old.safetensors" --onnx "$T/old.onnx"
expect new_names_export 0 "new.onnx: mobilenetv2" $dp export --checkpoint "$ck" --onnx "$T/new.onnx"
cmp -s "$T/old.onnx" "$T/new.onnx" || { echo "FAIL old_names_export: the ONNX files differ"; fail=$((fail + 1)); }

[ $fail -eq 0 ] && echo "checkpoint_test: all passed" || echo "checkpoint_test: $fail failed"
exit $fail
