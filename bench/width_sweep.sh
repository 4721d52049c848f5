#!/bin/sh
# Training speed across network widths: images/s of one training step must fall
# smoothly as the MACs grow, with no width falling off a cliff (oneDNN reference
# kernels once made --width 0.125 75-100x slower than 0.25; docs/engine.md,
# "Layouts without a JIT kernel").  Run it alone on the machine.
#   bench/width_sweep.sh [DYNOPOOL] [MODEL] [INPUT] [BATCH]
# Prints per width: GMACs per image, images/s, and GMAC/s (GMACs x images/s,
# forward only), which should rise with width and never drop by a large factor.
set -eu
bin=${1:-build/dynopool}
model=${2:-vgg16}
input=${3:-28}
batch=${4:-64}
steps=${STEPS:-20}
printf '%-8s %10s %12s %10s\n' width GMACs images/s GMAC/s
for w in 0.0625 0.125 0.1875 0.25 0.375 0.5 0.75 1; do
  g=$("$bin" info --model "$model" --width "$w" --input "$input" --in-ch 1 --classes 10 --json |
      sed 's/.*"gmacs": \([0-9.e+-]*\).*/\1/')
  ips=$("$bin" bench --model "$model" --width "$w" --input "$input" --in-ch 1 --classes 10 \
        --batch "$batch" --steps "$steps" --json 2>/dev/null | sed 's/.*"images_per_s": \([0-9.e+-]*\).*/\1/')
  awk -v w="$w" -v g="$g" -v i="$ips" 'BEGIN { printf "%-8s %10.4f %12.1f %10.2f\n", w, g, i, g * i }'
done
