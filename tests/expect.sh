# expect.sh — sourced by the shell tests (train_test.sh, checkpoint_test.sh).
#
# expect NAME CODE REGEX CMD...: CMD, run through run_cmd (a test may redefine
#   it, e.g. to add a memory limit), must exit with CODE and print something
#   matching REGEX (stdout and stderr together); counts failures in $fail.
# poke FILE TENSOR_REGEX BYTES: overwrites the first 4 bytes of the first
#   tensor of the safetensors FILE whose name matches TENSOR_REGEX with BYTES
#   (a printf format such as '\000\000\300\177', a float32 NaN); 1 if the
#   header names no such tensor.
fail=${fail:-0}

run_cmd() { "$@"; }

expect() {
  name=$1; code=$2; regex=$3; shift 3
  out=$(run_cmd "$@" 2>&1); rc=$?
  if [ "$rc" -ne "$code" ]; then
    echo "FAIL $name: exit $rc, expected $code"; printf '%s\n' "$out" | tail -5; fail=$((fail + 1))
  elif ! printf '%s\n' "$out" | grep -Eq -- "$regex"; then
    echo "FAIL $name: output does not match /$regex/"; printf '%s\n' "$out" | tail -5; fail=$((fail + 1))
  else
    echo "ok   $name"
  fi
}

poke() {
  hl=$(od -An -tu8 -N8 "$1" | tr -d ' ')
  off=$(head -c $((8 + hl)) "$1" | tail -c "$hl" | grep -ao "\"$2\":{[^}]*}" | head -1 \
    | sed 's/.*"data_offsets":\[\([0-9]*\),.*/\1/')
  [ -n "$off" ] || return 1
  printf "$3" | dd of="$1" bs=1 seek=$((8 + hl + off)) conv=notrunc 2> /dev/null
}
