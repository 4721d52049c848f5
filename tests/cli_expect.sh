#!/bin/sh
# cli_expect.sh CODE REGEX CMD [ARGS...]
# Runs CMD, then passes only if it exited with CODE and its output (stdout and
# stderr together) matches the extended regular expression REGEX.
code=$1; regex=$2; shift 2
out=$("$@" 2>&1); rc=$?
printf '%s\n' "$out"
if [ "$rc" -ne "$code" ]; then
  echo "cli_expect: exit status $rc, expected $code" >&2; exit 1
fi
if ! printf '%s\n' "$out" | grep -Eq -- "$regex"; then
  echo "cli_expect: output does not match /$regex/" >&2; exit 1
fi
