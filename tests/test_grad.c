/* test_grad.c — gradients against checks that do not use the golden files:
 *  - dx against central finite differences of L = sum(dy * y), computed with the
 *    library's own forward, skipping elements where a perturbation would flip a
 *    max (a kink; y is piecewise linear in x, exact between kinks);
 *  - dalpha against the formula of docs/operator.md, "Aggregation", evaluated by
 *    a naive double-precision implementation inside the test (four-corner
 *    bilinear form, no tables);
 *  - y against the same naive implementation. */
#include "dynopool_op.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>

static double loss(const float *y, const float *dy, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)y[i] * dy[i];
    return s;
}

static void grad_case(tu_rng *r, int n, int c, int h, int w, float ah, float aw, int agg)
{
    int ho = dp_dynopool_size(h, ah), wo = dp_dynopool_size(w, aw);
    size_t in = (size_t)n * c * h * w, out = (size_t)n * c * ho * wo;
    float *x = malloc(in * sizeof(float)), *dy = malloc(out * sizeof(float));
    float *y = malloc(out * sizeof(float)), *dx = malloc(in * sizeof(float));
    double *yn = malloc(out * sizeof(double)), *gap = malloc(out * sizeof(double));
    int *sel = malloc(out * sizeof(int)), *sel2 = malloc(out * sizeof(int));
    tu_fill_normal(r, x, in);
    tu_fill_normal(r, dy, out);
    float da[2];
    CHECK(dp_dynopool_forward_agg(x, n, c, h, w, ah, aw, agg, y) == 0, "forward");
    CHECK(dp_dynopool_backward_agg(x, dy, n, c, h, w, ah, aw, agg, dx, da) == 0, "backward");

    /* y against the naive implementation (away from near-ties) */
    tu_naive_forward(x, n, c, h, w, ah, aw, agg, yn, sel, gap);
    size_t bad = 0;
    for (size_t o = 0; o < out; o++)
        if ((agg || gap[o] > 1e-5) && !(fabs(y[o] - yn[o]) <= 1e-6 + 1e-5 * fabs(yn[o]))) {
            if (bad++ < 5) fprintf(stderr, "  y[%zu] = %.9g, naive %.9g\n", o, y[o], yn[o]);
        }
    CHECK(bad == 0, "(%d,%d,%d,%d) alpha (%g,%g): %zu outputs differ from the naive forward",
          n, c, h, w, ah, aw, bad);

    /* dx against central differences */
    const float eps = 1e-2f;
    size_t checked = 0, skipped = 0, fd_bad = 0;
    float *yp = malloc(out * sizeof(float));
    for (size_t k = 0; k < in; k++) {
        float x0 = x[k];
        double lp, lm;
        int kink = 0;
        x[k] = x0 + eps;
        dp_dynopool_forward_agg(x, n, c, h, w, ah, aw, agg, yp);
        lp = loss(yp, dy, out);
        if (!agg) {
            tu_naive_forward(x, n, c, h, w, ah, aw, agg, yn, sel2, NULL);
            for (size_t o = 0; o < out && !kink; o++) kink = sel2[o] != sel[o];
        }
        x[k] = x0 - eps;
        dp_dynopool_forward_agg(x, n, c, h, w, ah, aw, agg, yp);
        lm = loss(yp, dy, out);
        if (!agg) {
            tu_naive_forward(x, n, c, h, w, ah, aw, agg, yn, sel2, NULL);
            for (size_t o = 0; o < out && !kink; o++) kink = sel2[o] != sel[o];
        }
        x[k] = x0;
        if (kink) {
            skipped++;
            continue;
        }
        double fd = (lp - lm) / (2.0 * eps);
        checked++;
        if (!(fabs(fd - dx[k]) <= 2e-4 + 2e-3 * fabs(fd))) {
            if (fd_bad++ < 5)
                fprintf(stderr, "  dx[%zu] = %.7g, finite difference %.7g\n", k, dx[k], fd);
        }
    }
    CHECK(fd_bad == 0, "(%d,%d,%d,%d) alpha (%g,%g) agg %d: %zu of %zu dx entries differ from "
          "finite differences", n, c, h, w, ah, aw, agg, fd_bad, checked);
    CHECK(checked > in / 2, "(%d,%d,%d,%d): only %zu of %zu entries checked (%zu at kinks)", n, c,
          h, w, checked, in, skipped);

    /* dalpha against the formula */
    double dan[2];
    tu_naive_dalpha(x, dy, n, c, h, w, ah, aw, agg, dan);
    for (int a = 0; a < 2; a++)
        CHECK(fabs(da[a] - dan[a]) <= 1e-4 + 1e-4 * fabs(dan[a]),
              "(%d,%d,%d,%d) alpha (%g,%g) agg %d: dalpha[%d] = %.7g, formula %.7g", n, c, h, w,
              ah, aw, agg, a, da[a], dan[a]);
    printf("(%d,%d,%d,%d) alpha (%g,%g) %s: dx %zu checked, %zu at kinks; dalpha (%+.5f,%+.5f) "
           "formula (%+.5f,%+.5f)\n", n, c, h, w, ah, aw, agg ? "avg" : "max", checked, skipped,
           da[0], da[1], dan[0], dan[1]);
    free(x), free(dy), free(y), free(dx), free(yn), free(gap), free(sel), free(sel2), free(yp);
}

int main(void)
{
    tu_rng r = {7};
    grad_case(&r, 2, 2, 9, 7, 1.7f, 2.6f, DP_AGG_MAX);
    grad_case(&r, 1, 3, 5, 7, 0.6f, 0.8f, DP_AGG_MAX);    /* up-sampling */
    grad_case(&r, 2, 1, 8, 8, 2.0f, 2.0f, DP_AGG_MAX);    /* whole pixels, border taps */
    grad_case(&r, 1, 2, 1, 6, 2.0f, 1.3f, DP_AGG_MAX);    /* h = 1 */
    grad_case(&r, 1, 2, 3, 2, 1.1f, 0.9f, DP_AGG_MAX);
    grad_case(&r, 1, 2, 5, 12, 4.0f, 1.9f, DP_AGG_MAX);   /* 1.5 floor on one axis */
    grad_case(&r, 1, 1, 16, 16, 3.3f, 5.1f, DP_AGG_MAX);
    grad_case(&r, 2, 2, 9, 7, 1.7f, 2.6f, DP_AGG_AVG);
    grad_case(&r, 1, 2, 5, 7, 0.6f, 0.8f, DP_AGG_AVG);
    return tu_finish("test_grad");
}
