#!/bin/sh
# dynopool predict end to end on a tiny Fashion-MNIST run trained here: its
# probabilities equal the model's own (test_predict --check), an RGB image is
# converted and says so, class names are Fashion-MNIST's, --top is capped at
# the class count, and bad or missing images are named while the others are
# still predicted, with exit status 1.
#   predict_test.sh DYNOPOOL TEST_PREDICT FASHION_MNIST_DIR
set -u
dp=$1 tp=$2 data=$3
T=$(mktemp -d "${TMPDIR:-/tmp}/dp_predict.XXXXXX")
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
"$dp" train --data "$data" --width 0.0625 --epochs 1 --limit 256 --limit-test 64 --threads 1 --out "$T/run" \
    > "$T/train.log" 2>&1 || { cat "$T/train.log"; fail "train"; }
"$tp" --images "$data" "$T" 4 || fail "writing the test images"
printf 'not an image' > "$T/bad.png"
"$dp" predict --threads 1 --checkpoint "$T/run" --json --top 3 "$T/img0.png" "$T/bad.png" "$T/img1.png" \
    "$T/missing.png" "$T/img2.png" "$T/img3.png" > "$T/out.json" 2> "$T/err"
rc=$?
[ $rc -eq 1 ] || { cat "$T/err"; fail "exit status $rc with two bad images, expected 1"; }
grep -q "bad.png: not a JPEG or PNG file" "$T/err" || { cat "$T/err"; fail "the bad image is not named"; }
grep -q "missing.png: cannot open" "$T/err" || { cat "$T/err"; fail "the missing image is not named"; }
grep -q "2 of 6 images could not be predicted" "$T/err" || { cat "$T/err"; fail "no summary of the failures"; }
"$tp" --check "$T/run/checkpoint.safetensors" "$data" "$T" 4 "$T/out.json" || fail "predict differs from the model"
# text: Fashion-MNIST's names; --top above the class count lists the ten classes
"$dp" predict --threads 1 --checkpoint "$T/run/checkpoint.safetensors" --top 50 "$T/img1.png" > "$T/text" 2>&1 ||
    { cat "$T/text"; fail "predict on one good image"; }
head -1 "$T/text" | grep -q "img1.png (colour converted to grey)" || { cat "$T/text"; fail "the conversion is not noted"; }
[ "$(grep -c '%' "$T/text")" -eq 10 ] || { cat "$T/text"; fail "--top 50 did not list exactly the 10 classes"; }
for name in "T-shirt/top" Trouser Pullover Dress Coat Sandal Shirt Sneaker Bag "Ankle boot"; do
    grep -q "%  $name (" "$T/text" || { cat "$T/text"; fail "class name '$name' missing"; }
done
"$dp" predict --checkpoint "$T/run" > "$T/usage" 2>&1
[ $? -eq 2 ] && grep -q "at least one IMAGE" "$T/usage" || { cat "$T/usage"; fail "no images: not a usage error"; }
echo "ok: predict matches the model, names classes, reports bad images"
