#!/bin/sh
# Training speed while other processes keep cores busy.  On a machine with C
# cores, losing L of them to other processes should cost at most their share:
# images/s under the load >= (C - L) / C of images/s alone.  OpenMP's barriers
# make a step whose threads share cores with other work wait at every parallel
# region, so dynopool by default runs on the cores other processes leave idle
# (measured at its start; docs/engine.md, "Threads").  This compares that
# default with a fixed --threads C (all cores, the old default) and 1, under
# L = 0 .. C-1 busy loops.  Run it alone on the machine; the loads are shell
# loops ended after each case.
#   bench/contention.sh [DYNOPOOL]
set -eu
bin=${1:-build/dynopool}
args="--model vgg16 --width 0.25 --input 28 --in-ch 1 --classes 10 --batch 64 --steps ${STEPS:-40} --json"
cores=$(nproc)
unset OMP_NUM_THREADS
run() { # [--threads N]: "images/s threads" of one bench run
  "$bin" bench "$@" $args 2>/dev/null | sed 's/.*"images_per_s": \([0-9.e+-]*\).*"threads": \([0-9]*\).*/\1 \2/'
}
printf '%-16s %6s %8s %10s %7s %s\n' threads load used images/s ratio "floor (C-L)/C"
for how in auto "$cores" 1; do
  base=
  load=0
  while [ "$load" -lt "$cores" ]; do
    pids=
    i=0
    while [ "$i" -lt "$load" ]; do sh -c 'while :; do :; done' & pids="$pids $!"; i=$((i + 1)); done
    if [ "$how" = auto ]; then r=$(run); else r=$(run --threads "$how"); fi
    [ -n "$pids" ] && kill $pids && wait 2>/dev/null || true
    set -- $r
    [ -z "$base" ] && base=$1
    awk -v h="$how" -v L="$load" -v u="$2" -v i="$1" -v b="$base" -v c="$cores" 'BEGIN {
      r = i / b; f = (c - L) / c
      printf "%-16s %6d %8d %10.1f %7.2f %.2f%s\n", h, L, u, i, r, f, (r >= f ? "" : "  below") }'
    load=$((load + 1))
  done
done
