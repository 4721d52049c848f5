#!/bin/sh
# mpi_test.sh DYNOPOOL TEST_DATA MPI(ON|OFF) — data-parallel `dynopool train`
# under mpirun --oversubscribe (docs/distributed.md): N = 2 and 3 ranks with
# --sync-bn against one process, the ranks' lock-step, --resume exact with the
# same N and working with another, a killed rank, a stop with a save (SIGUSR1).  Exit 77 (skipped)
# when dynopool was built without MPI or mpirun is missing.
dp=$1 fixtures=$2 mpi=$3
here=$(cd "$(dirname "$0")" && pwd)
case $mpi in ON | on | 1 | TRUE | true) ;; *) echo "built without MPI (-DDYNOPOOL_MPI=OFF): skipped"; exit 77 ;; esac
command -v mpirun > /dev/null || { echo "no mpirun (openmpi-bin): skipped"; exit 77; }
T=$(mktemp -d /tmp/dp_mpi_test.XXXXXX)
trap '[ -n "$KEEP" ] || rm -rf "$T"' EXIT
fail=0
# one thread per rank: two ranks share this machine's two cores; as root (CI) Open
# MPI must be told that this is wanted
export OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# no shared-memory transport hunting for /dev/shm space, no warnings about the
# network interfaces of a container
export OMPI_MCA_btl=self,tcp OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_oob_tcp_if_include=lo
# a rank waiting in a collective yields its core (the ranks share the two cores)
export OMPI_MCA_mpi_yield_when_idle=1
mpi() { n=$1; shift; mpirun --oversubscribe -np "$n" "$@"; }
. "$here/expect.sh"
cmp_ck() { /usr/bin/python3 "$here/st_compare.py" "$@"; }
untimed() { sed -E 's/,"images_per_s":[^,]*,"data_wait":[^,]*,"seconds":[^,}]*//' "$1"; }

"$fixtures" --write-fixtures "$T/fx" > /dev/null || { echo "cannot write fixtures"; exit 1; }
# 128 images in 2 global batches of 64 (ranks get 32/32 or 21/21/22), 16x16 pixels
small="--data $T/fx/good --width 0.25 --batch 64 --limit 128 --limit-test 64 --workers 0 --threads 1 --lr 0.001"

# 1. N = 1, 2, 3 with --sync-bn: the same weights, momentum, BN statistics and loss
# (one process with --sync-bn runs the same batch-norm loops as the ranks).
# The runs differ only in the order of float32 sums over the batch (each rank's
# oneDNN reduction over its shard, then the sum over the ranks; the BN statistics are
# double sums): a gradient entry is a sum of m <= 64 x 16 x 16 = 16384 products,
# which oneDNN adds in blocks, with a rounding bound of about (block + m / block) u
# ~ 300 x 6e-8 = 2e-5 of the sum of the products' magnitudes; allowing those to be 5x
# the sum (cancellation) gives 1e-4 of (1 + max |tensor|).  Four steps at lr 0.001:
# the later steps' gradients are then taken at nearly the first step's weights.  At
# lr 0.1 a batch norm over a channel of tiny variance (1 / sqrt(var + eps) up to 316)
# amplifies the first step's rounding differences in the second (docs/distributed.md,
# "How close N ranks are to one process").  Per-rank BN statistics (no --sync-bn)
# must differ by far more: the test can fail.
expect n1 0 "Result" $dp train $small --epochs 2 --sync-bn --out "$T/n1"
expect n2 0 "2 ranks x 1 threads in lock-step" mpi 2 $dp train $small --epochs 2 --sync-bn --out "$T/n2"
expect n3 0 "3 ranks x 1 threads in lock-step \\(weights, alphas and momentum identical, compared every 1 steps" \
  mpi 3 $dp train $small --epochs 2 --sync-bn --lockstep-every 1 --no-overlap --bucket-mb 0.25 --out "$T/n3"
for n in 2 3; do
  expect "n$n.weights" 0 "0 over the tolerance" cmp_ck "$T/n1/checkpoint.safetensors" "$T/n$n/checkpoint.safetensors" --tol 1e-4
  l1=$(grep -o '"train_loss":[^,]*' "$T/n1/metrics.jsonl" | tail -1 | cut -d: -f2)
  ln=$(grep -o '"train_loss":[^,]*' "$T/n$n/metrics.jsonl" | tail -1 | cut -d: -f2)
  expect "n$n.loss" 0 "same" awk -v a="$l1" -v b="$ln" \
    'BEGIN { d = a - b; if (d < 0) d = -d; if (d <= 1e-5 * a) print "same"; else print "differ", a, b }'
done
expect n2.per_rank_bn 0 "Result" mpi 2 $dp train $small --epochs 1 --out "$T/n2b"
expect n2.per_rank_bn_differs 1 "over the tolerance" cmp_ck "$T/n1/checkpoint.safetensors" "$T/n2b/checkpoint.safetensors" --tol 1e-4

# 2. --resume: an N = 2 run interrupted (Ctrl-C on every rank after step 3: each
# finishes it, rank 0 saves) and resumed with N = 2 ends with the bytes of the
# uninterrupted run; resumed with N = 3 instead, it ends as close as above.
full=$T/n2
expect interrupt 130 "continue with: .* train --resume $T/int" \
  mpi 2 $dp train $small --epochs 2 --sync-bn --out "$T/int" --interrupt-after 3
cp -r "$T/int" "$T/int3"
expect resume2 0 "resuming $T/int at epoch 2, step 2" mpi 2 $dp train --resume "$T/int" --sync-bn
expect resume2.bytes 0 "0 over the tolerance" cmp_ck --exact "$full/checkpoint.safetensors" "$T/int/checkpoint.safetensors"
if [ "$(untimed "$full/metrics.jsonl")" != "$(untimed "$T/int/metrics.jsonl")" ]; then
  echo "FAIL resume2.metrics: the resumed run's metrics differ"; fail=$((fail + 1))
else echo "ok   resume2.metrics"; fi
expect resume3 0 "3 ranks x 1 threads in lock-step" mpi 3 $dp train --resume "$T/int3" --sync-bn
expect resume3.weights 0 "0 over the tolerance" cmp_ck "$full/checkpoint.safetensors" "$T/int3/checkpoint.safetensors" --tol 1e-4

# 3. a rank killed mid-epoch: the job ends within seconds with mpirun's message on
# rank 1's death, the last checkpoint (written atomically by rank 0) stays intact
# and the run resumes (with one process).
mpirun --oversubscribe -np 2 $dp train --data "$T/fx/good" --width 0.25 --batch 16 --limit 64 --limit-test 16 --workers 0 --threads 1 --epochs 400 \
  --out "$T/k" > "$T/k.log" 2>&1 &
job=$!
i=0
while [ $i -lt 600 ] && ! [ -f "$T/k/checkpoint.safetensors" ]; do sleep 0.05; i=$((i + 1)); done
sleep 0.2 # into the next epoch
victim=
for p in $(pgrep -P $job); do
  tr '\0' '\n' < /proc/$p/environ 2> /dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1' && victim=$p
done
if [ -z "$victim" ]; then
  echo "FAIL kill: rank 1 not found (checkpoint: $(ls "$T/k" 2>&1))"; fail=$((fail + 1)); kill $job
else
  kill -9 "$victim"
  start=$(date +%s)
  wait $job; rc=$?
  took=$(($(date +%s) - start))
  if [ $rc -eq 0 ] || [ $took -gt 10 ]; then
    echo "FAIL kill: mpirun exited $rc after $took s"; fail=$((fail + 1))
  elif ! grep -Eq "rank 1 .*(signal 9|Killed)|exited on signal 9" "$T/k.log"; then
    echo "FAIL kill: no message on rank 1's death"; tail -5 "$T/k.log"; fail=$((fail + 1))
  else echo "ok   kill (exit $rc after $took s)"; fi
  expect kill.checkpoint 0 "0 over the tolerance" cmp_ck --exact "$T/k/checkpoint.safetensors" "$T/k/checkpoint.safetensors"
  expect kill.resume 0 "resuming $T/k at epoch" $dp train --resume "$T/k" --epochs 2
fi

# 4. SIGUSR1 to mpirun (which forwards it to every rank; Ctrl-C would make mpirun end
# the job): every rank stops after the same step, rank 0 saves, exit 128 + 10
mpirun --oversubscribe -np 2 $dp train --data "$T/fx/good" --width 0.25 --batch 16 --limit 64 --limit-test 16 --workers 0 \
  --threads 1 --epochs 400 --out "$T/u" > "$T/u.log" 2>&1 &
job=$!
i=0
while [ $i -lt 600 ] && ! [ -f "$T/u/checkpoint.safetensors" ]; do sleep 0.05; i=$((i + 1)); done
kill -USR1 $job
wait $job; rc=$?
if [ $rc -ne 138 ] || ! grep -q "continue with: .* train --resume $T/u" "$T/u.log"; then
  echo "FAIL usr1: exit $rc"; tail -5 "$T/u.log"; fail=$((fail + 1))
else echo "ok   usr1"; fi

[ $fail -eq 0 ] && echo "all mpi tests passed" || echo "$fail mpi tests FAILED"
[ $fail -eq 0 ]
