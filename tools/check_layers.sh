#!/bin/sh
# check_layers.sh BUILD_DIR SRC_DIR — the library's rooms depend one way only.
#
#   op      (src/op)      -> nothing of ours
#   io      (src/io)      -> engine's public types, op
#   engine  (src/engine)  -> op
#   store   (src/store)   -> engine, op
#   deploy  (src/deploy)  -> store, engine, op    (ONNX export; its generated onnx/onnx.pb-c.h)
#   cli     (cli/)        -> the public headers; no command file uses another's code
#
# Two checks, so that neither a header nor a call can cross a wall unseen:
#  1. includes: every #include "..." of a room names a header of the room itself
#     or of a room it may depend on (the public headers in include/ are open to all);
#  2. symbols: every function or variable of ours that a room's object files use
#     but do not define is defined in a room it may depend on (nm), so that no
#     two rooms (like checkpoints and models once) call each other.
# Prints each violation; exit status 1 if there is one.
set -u
build=$1 src=$2
fail=0
T=$(mktemp -d "${TMPDIR:-/tmp}/dp_layers.XXXXXX")
trap 'rm -rf "$T"' EXIT

allowed() { # room -> the rooms it may use (itself first)
    case $1 in
    op) echo "op" ;;
    io) echo "io engine op" ;;
    engine) echo "engine op" ;;
    store) echo "store engine op" ;;
    deploy) echo "deploy store engine op" ;;
    esac
}

# ---- 1. includes ---------------------------------------------------------------
for room in op io engine store deploy; do
    ok=$(allowed $room)
    for f in $(find "$src/src/$room" -name '*.[ch]' | sort); do
        grep -n '^#include "' "$f" | while IFS= read -r line; do
            inc=$(printf '%s\n' "$line" | sed 's/.*#include "\([^"]*\)".*/\1/')
            case $inc in
            dynopool_op.h) continue ;; # the operator's API: open to every room
            dynopool/infer.h) r=engine ;; # inference: the engine's (its checkpoint reader is the store's)
            onnx/onnx.pb-c.h) r=deploy ;; # generated from onnx.proto into the build tree for deploy
            dynopool/*)
                r=${inc#dynopool/}; r=${r%.h} ;; # a room's public header
            dynopool.h) r=all ;;
            */*) r=${inc%%/*} ;;
            *) r=$room ;; # beside the file
            esac
            case " $ok " in
            *" $r "*) ;;
            *) echo "include: ${f#$src/}: $line (room $room may use: $ok)"; echo x >> "$T/bad" ;;
            esac
        done
    done
done
for f in "$src"/cli/*.[ch]; do
    grep -n '^#include "' "$f" | grep -v '"dynopool[._/]' | grep '/' |
        sed "s|^|include: ${f#$src/}: the CLI uses the public headers only: |" | tee -a "$T/bad"
done
grep -q '#include "dynopool.h"' "$src/include/dynopool_op.h" 2>/dev/null &&
    { echo "include: include/dynopool_op.h must stand alone"; echo x >> "$T/bad"; }

# ---- 2. symbols -------------------------------------------------------------------
objs() { find "$build/CMakeFiles/dp_$1_objects.dir" -name '*.o' 2>/dev/null | sort; }
for room in op io engine store deploy; do
    [ -n "$(objs $room)" ] || { echo "symbols: no object files of room $room under $build"; echo x >> "$T/bad"; continue; }
    nm -g --defined-only $(objs $room) | awk 'NF == 3 { print $3 }' | sort -u > "$T/def.$room"
    nm -u $(objs $room) | awk '{ print $NF }' | sort -u > "$T/use.$room"
done
for room in op io engine store deploy; do
    [ -f "$T/use.$room" ] || continue
    : > "$T/ok"
    for r in $(allowed $room); do cat "$T/def.$r" >> "$T/ok"; done
    sort -u "$T/ok" -o "$T/ok"
    cat "$T"/def.* | sort -u > "$T/ours"
    # used, ours, and not from an allowed room
    comm -12 "$T/use.$room" "$T/ours" | comm -23 - "$T/ok" | while read -r s; do
        from=$(grep -lx "$s" "$T"/def.* | sed 's|.*/def\.||' | tr '\n' ' ')
        echo "symbols: room $room uses $s, defined in room $from"
        echo x >> "$T/bad"
    done
done
# the CLI: a command file uses no other command file's code
cli=$(find "$build/CMakeFiles/dynopool_cli.dir" -name 'cmd_*.o' 2>/dev/null | sort)
for o in $cli; do
    nm -u "$o" | awk '{ print $NF }' | sort -u > "$T/u"
    for p in $cli; do
        [ "$p" = "$o" ] && continue
        nm -g --defined-only "$p" | awk 'NF == 3 { print $3 }' | sort -u | comm -12 "$T/u" - |
            sed "s|^|symbols: $(basename "$o" .c.o) uses |; s|\$| of $(basename "$p" .c.o)|" | tee -a "$T/bad"
    done
done

if [ -s "$T/bad" ]; then
    echo "FAIL: the rooms' dependencies are not one-way (see above)"
    exit 1
fi
echo "ok: op <- engine <- io, store <- deploy; no command file uses another's code"
