/* test_shared.c — the shared library exports the op-level API (docs/operator.md,
 * "The C API"): dlopen the library given (libdynopool_op.so, or libdynopool.so,
 * which links it), look the three symbols up, call them, and check that they
 * agree with the static library linked into this test. */
#include "dynopool_op.h"
#include "testutil.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

typedef int (*size_fn)(int, float);
typedef int (*fwd_fn)(const float *, int, int, int, int, float, float, float *);
typedef int (*bwd_fn)(const float *, const float *, int, int, int, int, float, float, float *,
                      float *);

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s path/to/libdynopool.so\n", argv[0]);
        return 2;
    }
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    size_fn sz;
    fwd_fn fwd;
    bwd_fn bwd;
    *(void **)&sz = dlsym(lib, "dp_dynopool_size");
    *(void **)&fwd = dlsym(lib, "dp_dynopool_forward");
    *(void **)&bwd = dlsym(lib, "dp_dynopool_backward");
    CHECK(sz && fwd && bwd, "missing exports: size %p forward %p backward %p", (void *)sz,
          (void *)fwd, (void *)bwd);
    /* internal helpers must stay hidden */
    CHECK(dlsym(lib, "build_taps") == NULL, "internal symbol exported");
    if (sz && fwd && bwd) {
        enum { n = 2, c = 3, h = 9, w = 7 };
        float x[n * c * h * w], dy[n * c * h * w], y1[n * c * 64], y2[n * c * 64];
        float dx1[n * c * h * w], dx2[n * c * h * w], da1[2], da2[2];
        tu_rng r = {11};
        tu_fill_normal(&r, x, n * c * h * w);
        tu_fill_normal(&r, dy, n * c * h * w);
        CHECK(sz(h, 1.7f) == dp_dynopool_size(h, 1.7f) && sz(h, 1.7f) == 5, "size");
        int ho = sz(h, 1.7f), wo = sz(w, 2.6f);
        CHECK(fwd(x, n, c, h, w, 1.7f, 2.6f, y1) == 0, "shared forward");
        CHECK(dp_dynopool_forward(x, n, c, h, w, 1.7f, 2.6f, y2) == 0, "static forward");
        CHECK(memcmp(y1, y2, sizeof(float) * n * c * ho * wo) == 0, "forward differs");
        CHECK(bwd(x, dy, n, c, h, w, 1.7f, 2.6f, dx1, da1) == 0, "shared backward");
        CHECK(dp_dynopool_backward(x, dy, n, c, h, w, 1.7f, 2.6f, dx2, da2) == 0, "static backward");
        CHECK(memcmp(dx1, dx2, sizeof dx1) == 0 && memcmp(da1, da2, sizeof da1) == 0,
              "backward differs");
    }
    dlclose(lib);
    return tu_finish("test_shared");
}
