#!/bin/sh
# bench_test.sh DYNOPOOL — Ctrl-C (SIGINT) stops `dynopool bench` after the current
# step: exit status 130, a message saying how far it got, and the median of the
# steps timed so far on stdout.
bin=$1
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
# a background job of sh ignores SIGINT: give it back its default first
env --default-signal=INT "$bin" bench --model mobilenetv2 --width 0.25 --input 16 --classes 10 \
    --batch 4 --steps 100000 >"$tmp/out" 2>"$tmp/err" &
pid=$!
i=0
while ! grep -q 'timed step 3/' "$tmp/err" && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
kill -INT $pid
wait $pid
rc=$?
cat "$tmp/out" "$tmp/err" | tail -n 3
fails=0
[ "$rc" -eq 130 ] || { echo "bench_test: exit status $rc, expected 130" >&2; fails=1; }
grep -Eq '^dynopool: bench interrupted after [0-9]+ of 100000 timed steps$' "$tmp/err" ||
    { echo "bench_test: no 'interrupted after N of 100000 timed steps' line" >&2; fails=1; }
grep -Eq 'images/s \(median of [0-9]+ steps' "$tmp/out" ||
    { echo "bench_test: no result line for the steps timed" >&2; fails=1; }
exit $fails
