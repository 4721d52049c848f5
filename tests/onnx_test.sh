#!/bin/sh
# ONNX Runtime against dynopool: tiny Fashion-MNIST runs trained here (vgg16, resnet50,
# mobilenetv2, efficientnet-b0 with human, DynOPool and Shape Adaptor pooling; the paper's three toy
# variants with DynOPool), each exported by `dynopool export`.  The DynOPool runs
# start from alphas other than 2 (--alpha-init), so that their maps are sampled
# between pixels (ratios of sides that are no whole numbers, and up-sampling)
# rather than read whole as max pooling would; the first 64 test
# images are prepared from the ONNX model's own metadata (test_onnx --logits) and
# the logits ONNX Runtime gives (tests/onnx_check.js, the npm package
# onnxruntime-node) must equal ours (dp_infer_run) within 1e-4 relative.
# Skipped (exit 77) only where Node.js is not installed; tools/deps.sh installs it
# and onnxruntime-node, so CI runs it.
#   onnx_test.sh DYNOPOOL TEST_ONNX FASHION_MNIST_DIR CHECK_JS ORT_DIR
set -u
dp=$1 to=$2 data=$3 js=$4 ort=$5
command -v node > /dev/null ||
    { echo "SKIP: node (Node.js) is not installed: tools/deps.sh installs nodejs and onnxruntime-node"; exit 77; }
[ -f "$ort/node_modules/onnxruntime-node/package.json" ] ||
    { echo "FAIL: onnxruntime-node is not installed in $ort (tools/deps.sh installs it)"; exit 1; }
T=$(mktemp -d "${TMPDIR:-/tmp}/dp_onnx.XXXXXX")
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
n=0
for cfg in vgg16:human vgg16:dynopool resnet50:human resnet50:dynopool mobilenetv2:human mobilenetv2:dynopool \
           vgg16:shape-adaptor resnet50:shape-adaptor mobilenetv2:shape-adaptor \
           efficientnet-b0:human efficientnet-b0:dynopool efficientnet-b0:shape-adaptor \
           vgg16:dynopool:stretch-v vgg16:dynopool:tile vgg16:dynopool:large; do
    model=${cfg%%:*} rest=${cfg#*:} pool=${rest%%:*} variant=none
    [ "$rest" != "$pool" ] && variant=${rest#*:}
    run="$T/$model-$pool-$variant"
    case $model:$pool in
    vgg16:dynopool) init="--alpha-init 1.7,2.3,0.9,1.6" ;;
    resnet50:dynopool) init="--alpha-init 1.3" ;;
    mobilenetv2:dynopool | efficientnet-b0:dynopool) init="--alpha-init 1.6,0.8,2.5" ;;
    *) init= ;;
    esac
    # shellcheck disable=SC2086 # $init: an option and its value, or nothing
    "$dp" train --data "$data" --model "$model" --pool "$pool" --variant "$variant" $init --width 0.0625 --epochs 1 \
        --limit 256 --limit-test 64 --threads 1 --out "$run" > "$run.log" 2>&1 || { cat "$run.log"; fail "train $cfg"; }
    "$dp" export --checkpoint "$run" --onnx "$run/model.onnx" > "$run.export" 2>&1 ||
        { cat "$run.export"; fail "export $cfg"; }
    mkdir -p "$run/io"
    "$to" --logits "$run/model.onnx" "$run/checkpoint.safetensors" "$data" 64 "$run/io" || fail "our logits for $cfg"
    DP_ORT_DIR="$ort" node "$js" "$run/model.onnx" "$run/io" || fail "ONNX Runtime differs from dynopool on $cfg"
    n=$((n + 1))
done
# docs/guide.md's Node.js example: the js block after its onnx-example marker, on a model
# of 28x28 grey images
src=$(dirname "$js")/..
awk '/<!-- onnx-example/ { m = 1; next } m && /^```js$/ { c = 1; next } c && /^```$/ { exit } c' \
    "$src/docs/guide.md" > "$T/classify.js"
[ "$(wc -l < "$T/classify.js")" -ge 4 ] || fail "no js example after the onnx-example marker in docs/guide.md"
out=$(NODE_PATH="$ort/node_modules" node "$T/classify.js" "$T/vgg16-dynopool-none/model.onnx" 2>&1) ||
    { echo "$out"; fail "docs/guide.md's Node.js example failed"; }
echo "$out" | grep -Eq "^class [0-9] of 10$" || { echo "$out"; fail "docs/guide.md's example printed no class"; }
echo "ok: ONNX Runtime's logits equal dynopool's within 1e-4 relative on $n exported models; the guide's example runs"
