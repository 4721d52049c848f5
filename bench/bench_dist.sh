#!/bin/sh
# bench_dist.sh — one machine, the same global batch: 1 rank x T threads against
# T ranks x 1 thread (mpirun), with the gradient sums overlapped with the backward
# pass and after it (docs/distributed.md, "Scale").  Trains one epoch of
# Fashion-MNIST (--limit images) per configuration and prints, per configuration,
# the training images per second of the epoch line and rank 0's time waiting for
# the gradient sums as a share of its training steps; --json FILE writes them.
#
#   bench/bench_dist.sh [--dynopool PATH] [--threads T] [--json FILE] [-- TRAIN OPTIONS]
#
# Default train options: --model vgg16 --pool human --width 0.5 --batch 128
# --limit 2048 --limit-test 128 --epochs 1.  Run it alone on the machine: the
# configurations compete for the same cores.  A smoke test:
#   bench/bench_dist.sh -- --width 0.25 --batch 32 --limit 128 --limit-test 32 --epochs 1
set -eu
dp=build/dynopool threads=2 json=
while [ $# -gt 0 ]; do
  case $1 in
  --dynopool) dp=$2; shift 2 ;;
  --threads) threads=$2; shift 2 ;;
  --json) json=$2; shift 2 ;;
  --) shift; break ;;
  *) echo "usage: $0 [--dynopool PATH] [--threads T] [--json FILE] [-- TRAIN OPTIONS]" >&2; exit 2 ;;
  esac
done
opts=${*:-"--model vgg16 --pool human --width 0.5 --batch 128 --limit 2048 --limit-test 128 --epochs 1"}
T=$(mktemp -d /tmp/dp_bench_dist.XXXXXX)
trap 'rm -rf "$T"' EXIT
[ "$(id -u)" -eq 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# run NAME RANKS THREADS EXTRA...: prints "NAME img/s wait%" and keeps a JSON row
rows=
run() {
  name=$1 ranks=$2 thr=$3; shift 3
  if [ "$ranks" -eq 1 ]; then
    OMP_NUM_THREADS=$thr "$dp" train $opts --threads "$thr" --workers 1 --out "$T/$name" "$@" > "$T/$name.log" 2>&1
  else
    OMP_NUM_THREADS=$thr mpirun --oversubscribe --bind-to none -np "$ranks" "$dp" train $opts --threads "$thr" \
      --workers 1 --out "$T/$name" "$@" > "$T/$name.log" 2>&1
  fi
  ips=$(grep -o '[0-9.]* img/s  data wait' "$T/$name.log" | tail -1 | cut -d' ' -f1)
  share=$(sed -n 's/.*s (\([0-9.]*\)%) of them waiting.*/\1/p' "$T/$name.log")
  printf '%-28s %8s img/s   waiting for the gradient sums: %s%%\n' "$name" "$ips" "${share:-0}"
  rows="$rows${rows:+, }{\"config\": \"$name\", \"ranks\": $ranks, \"threads\": $thr, \"images_per_s\": $ips, \"allreduce_share\": ${share:-0}}"
}
echo "dynopool train $opts"
run "1 rank x $threads threads" 1 "$threads"
run "$threads ranks x 1 thread, overlap" "$threads" 1
run "$threads ranks x 1 thread, after" "$threads" 1 --no-overlap
[ -n "$json" ] && printf '{"train_options": "%s", "runs": [%s]}\n' "$opts" "$rows" > "$json"
exit 0
