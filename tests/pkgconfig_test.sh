#!/bin/sh
# The installed pkg-config file: found from a relocated install tree (the
# prefix follows the .pc file), and enough for a static link of
# libdynopool.a (Libs.private, Requires.private).
#   pkgconfig_test.sh CMAKE BUILD_DIR CC SRC_DIR
set -u
cmake=$1 build=$2 cc=$3 src=$4
T=$(mktemp -d "${TMPDIR:-/tmp}/dp_pc.XXXXXX")
trap 'rm -rf "$T"' EXIT
command -v pkg-config > /dev/null || { echo "FAIL: pkg-config is not installed (tools/deps.sh installs it)"; exit 1; }
"$cmake" --install "$build" --prefix "$T/a" > /dev/null || { echo "FAIL: cmake --install"; exit 1; }
mv "$T/a" "$T/moved"            # relocated: nothing may point at $T/a any more
pc=$(dirname "$(find "$T/moved" -name dynopool.pc | head -1)")
[ -n "$pc" ] || { echo "FAIL: no dynopool.pc installed"; exit 1; }
find "$T/moved" -name 'libdynopool.so*' -exec rm {} +   # only the static archive is left
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
echo "ok: $out (linked with $flags)"
