/* test_golden.c — the C operator against the PyTorch reference's golden tensors
 * (ref/dynopool_ref.py -> tests/data/dynopool_golden.bin): y, dx and dalpha for
 * every case, within atol + rtol * |ref|. */
#include "dynopool_op.h"
#include "testutil.h"

#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s tests/data/dynopool_golden.bin\n", argv[0]);
        return 2;
    }
    tu_golden *cs;
    int count = tu_golden_load(argv[1], &cs);
    if (count < 0) return 1;
    CHECK(count >= 20, "expected at least 20 cases, found %d", count);
    for (int k = 0; k < count; k++) {
        const tu_golden *g = &cs[k];
        size_t in = (size_t)g->n * g->c * g->h * g->w, out = (size_t)g->n * g->c * g->ho * g->wo;
        int ho = dp_dynopool_size(g->h, g->alpha_h), wo = dp_dynopool_size(g->w, g->alpha_w);
        CHECK(ho == g->ho && wo == g->wo, "%s: size (%d,%d), reference (%d,%d)", g->name, ho, wo,
              g->ho, g->wo);
        if (ho != g->ho || wo != g->wo) continue;
        float *y = malloc(sizeof(float) * out), *dx = malloc(sizeof(float) * in);
        float dalpha[2];
        int rc = dp_dynopool_forward_agg(g->x, g->n, g->c, g->h, g->w, g->alpha_h, g->alpha_w,
                                         g->agg, y);
        CHECK(rc == 0, "%s: forward returned %d", g->name, rc);
        rc = dp_dynopool_backward_agg(g->x, g->dy, g->n, g->c, g->h, g->w, g->alpha_h,
                                      g->alpha_w, g->agg, dx, dalpha);
        CHECK(rc == 0, "%s: backward returned %d", g->name, rc);
        size_t bad_y = tu_compare("y", y, g->y, out, 1e-6, 1e-5);
        size_t bad_dx = tu_compare("dx", dx, g->dx, in, 1e-6, 1e-5);
        size_t bad_da = tu_compare("dalpha", dalpha, g->dalpha, 2, 1e-5, 1e-5);
        CHECK(bad_y == 0 && bad_dx == 0 && bad_da == 0, "%s: y %zu, dx %zu, dalpha %zu mismatches",
              g->name, bad_y, bad_dx, bad_da);
        if (g->agg == DP_AGG_MAX) { /* the default entry points give the same numbers */
            float *y2 = malloc(sizeof(float) * out);
            CHECK(dp_dynopool_forward(g->x, g->n, g->c, g->h, g->w, g->alpha_h, g->alpha_w, y2) == 0,
                  "%s: dp_dynopool_forward failed", g->name);
            CHECK(tu_compare("y(default)", y2, y, out, 0, 0) == 0, "%s", g->name);
            free(y2);
        }
        printf("%-18s (%d,%d,%d,%d) alpha (%g,%g) -> (%d,%d)  dalpha (%+.5f,%+.5f) ref (%+.5f,%+.5f)\n",
               g->name, g->n, g->c, g->h, g->w, g->alpha_h, g->alpha_w, ho, wo, dalpha[0],
               dalpha[1], g->dalpha[0], g->dalpha[1]);
        free(y);
        free(dx);
    }
    tu_golden_free(cs, count);
    return tu_finish("test_golden");
}
