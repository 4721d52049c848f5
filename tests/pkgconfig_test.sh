#!/bin/sh
# The installed pkg-config file: found from a relocated install tree (the
# prefix follows the .pc file), and enough for a static link of
# libdynopool.a (Libs.private, Requires.private).
# Also: the C inference example of docs/guide.md ("Deploy"), compiled against the
# installed library and run on a checkpoint.
#   pkgconfig_test.sh CMAKE BUILD_DIR CC SRC_DIR CHECKPOINT
set -u
cmake=$1 build=$2 cc=$3 src=$4 ckpt=$5
T=$(mktemp -d "${TMPDIR:-/tmp}/dp_pc.XXXXXX")
trap 'rm -rf "$T"' EXIT
command -v pkg-config > /dev/null || { echo "FAIL: pkg-config is not installed (tools/deps.sh installs it)"; exit 1; }
"$cmake" --install "$build" --prefix "$T/a" > /dev/null || { echo "FAIL: cmake --install"; exit 1; }
mv "$T/a" "$T/moved"            # relocated: nothing may point at $T/a any more
pc=$(dirname "$(find "$T/moved" -name dynopool.pc | head -1)")
[ -n "$pc" ] || { echo "FAIL: no dynopool.pc installed"; exit 1; }
find "$T/moved" -name 'libdynopool*.so*' -exec rm {} +   # only the static archives are left
cat > "$T/t.c" <<'C'
#include <dynopool.h>
#include <stdio.h>
int main(void)
{
    dp_model_config c = dp_model_defaults();
    c.size = 16, c.classes = 5, c.width = 0.25f;
    dp_model *m = NULL;
    int rc = dp_model_create(&c, &m);
    printf("%s %s\n", dp_version(), dp_strerror(rc));
    dp_model_free(m);
    return rc != 0;
}
C
flags=$(PKG_CONFIG_PATH="$pc" pkg-config --static --cflags --libs dynopool) || { echo "FAIL: pkg-config dynopool"; exit 1; }
case "$flags" in *"$T/moved"*) ;; *) echo "FAIL: flags do not follow the moved tree: $flags"; exit 1 ;; esac
"$cc" "$T/t.c" -o "$T/t" $flags || { echo "FAIL: static link with: $flags"; exit 1; }
out=$("$T/t") || { echo "FAIL: the statically linked program failed: $out"; exit 1; }
# the operator alone: its own library, no oneDNN, cJSON, zlib, libjpeg or libpng
[ -f "$pc/dynopool_op.pc" ] || { echo "FAIL: no dynopool_op.pc installed"; exit 1; }
cat > "$T/op.c" <<'C'
#include <dynopool_op.h>
#include <stdio.h>
int main(void)
{
    float x[16], y[4], dx[16], dy[4] = {1, 1, 1, 1}, da[2];
    for (int i = 0; i < 16; i++) x[i] = (float)i;
    int rc = dp_dynopool_forward(x, 1, 1, 4, 4, 2.0f, 2.0f, y);
    if (!rc) rc = dp_dynopool_backward(x, dy, 1, 1, 4, 4, 2.0f, 2.0f, dx, da);
    printf("%g %g %g %g %s\n", y[0], y[1], y[2], y[3], dp_strerror(rc));
    return rc != 0 || y[0] != 5 || y[3] != 15;
}
C
opflags=$(PKG_CONFIG_PATH="$pc" pkg-config --static --cflags --libs dynopool_op) || { echo "FAIL: pkg-config dynopool_op"; exit 1; }
case "$opflags" in *dnnl* | *cjson* | *jpeg* | *png* | *" -lz"*) echo "FAIL: the operator's flags name the engine's dependencies: $opflags"; exit 1 ;; esac
"$cc" "$T/op.c" -o "$T/op" $opflags || { echo "FAIL: static link of the operator alone with: $opflags"; exit 1; }
opout=$("$T/op") || { echo "FAIL: the operator-only program failed: $opout"; exit 1; }
# docs/guide.md's inference example: the C block after its deploy-example marker
awk '/<!-- deploy-example/ { m = 1; next } m && /^```c$/ { c = 1; next } c && /^```$/ { exit } c' \
    "$src/docs/guide.md" > "$T/classify.c"
[ "$(wc -l < "$T/classify.c")" -ge 15 ] || { echo "FAIL: no C example after the deploy-example marker in docs/guide.md"; exit 1; }
"$cc" -std=c11 -Wall -Werror "$T/classify.c" -o "$T/classify" $flags ||
    { echo "FAIL: docs/guide.md's inference example does not compile with: $flags"; exit 1; }
dep=$("$T/classify" "$ckpt") || { echo "FAIL: the inference example failed: $dep"; exit 1; }
echo "$dep" | grep -q "^image 3: class [0-9]" && echo "$dep" | grep -q "^ok: [1-9][0-9]* batch norms folded, 0 bytes of gradients$" ||
    { echo "FAIL: the inference example printed: $dep"; exit 1; }
"$T/classify" /nonexistent.safetensors 2> "$T/err" && { echo "FAIL: the example accepted a missing file"; exit 1; }
grep -q "/nonexistent.safetensors" "$T/err" || { echo "FAIL: the example's error does not name the file"; exit 1; }
echo "ok: $out (linked with $flags); operator alone: $opout (linked with $opflags); inference example: $(echo "$dep" | tail -1)"
