#!/bin/sh
# No network width may fall off a cliff onto oneDNN's reference convolutions
# ("ref:any", 10-100x slower than its JIT kernels): for every model at narrow
# and full widths, one training step must run every convolution, and the
# classifier's matmuls, on a JIT kernel, whatever CPU (or ONEDNN_MAX_CPU_ISA)
# this runs on.  Where bf16 runs (native or emulated), the same in bf16
# (--precision bf16) at the narrowest and full widths.
#   no_ref_kernels.sh DYNOPOOL
set -u
bin=$1
fail=0
cases=""
for m in vgg16 resnet50 mobilenetv2 efficientnet-b0; do
  for w in 0.0625 0.125 0.1875 0.25 1; do cases="$cases $m:$w:fp32"; done
done
if "$bin" bench --model vgg16 --width 0.0625 --input 16 --in-ch 1 --classes 10 --batch 2 --steps 1 \
     --precision bf16 > /dev/null 2>&1; then
  for m in vgg16 resnet50 mobilenetv2 efficientnet-b0; do
    for w in 0.0625 1; do cases="$cases $m:$w:bf16"; done
  done
fi
for c in $cases; do
  m=${c%%:*}; p=${c##*:}; w=${c#*:}; w=${w%:*}
    # 16x16 inputs reach 1x1 and 2x2 maps, where some layouts have no JIT kernel
    out=$(ONEDNN_VERBOSE=1 "$bin" bench --model "$m" --width "$w" --input 16 --in-ch 1 --classes 10 \
          --batch 4 --steps 1 --precision "$p" 2>&1) || { echo "FAIL $m x$w $p: bench failed"; echo "$out" | tail -3; fail=1; continue; }
    echo "$out" | grep -q 'onednn_verbose,exec,cpu,convolution' ||
      { echo "FAIL $m x$w: no oneDNN convolution ran (is ONEDNN_VERBOSE honoured?)"; fail=1; continue; }
    echo "$out" | grep -q 'onednn_verbose,exec,cpu,matmul' ||
      { echo "FAIL $m x$w: no oneDNN matmul ran (the classifier)"; fail=1; continue; }
    refs=$(echo "$out" | grep -E 'onednn_verbose,exec,cpu,(convolution|matmul)' | grep -c ',ref:')
    if [ "$refs" -ne 0 ]; then
      echo "FAIL $m x$w: $refs convolution or matmul calls on reference kernels:"
      echo "$out" | grep -E 'onednn_verbose,exec,cpu,(convolution|matmul)' | grep ',ref:' | cut -d, -f4-6,10 | sort -u | head -5
      fail=1
    else
      echo "ok   $m x$w $p"
    fi
done
exit $fail
