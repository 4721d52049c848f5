/* test_maxpool.c — docs/operator.md, "Properties the tests check": alpha = (2, 2)
 * on even sizes is 2x2/2 max pooling (sizes >= 4: an axis of 2 would pool to
 * 1 cell, and the 1.5 floor keeps 2), forward and dx bit for bit; and every
 * result is independent of the number of OpenMP threads (bit for bit, dalpha
 * included). */
#include "dynopool_op.h"
#include "testutil.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* 2x2 stride-2 max pooling, ties to the first in row-major window order (as
 * PyTorch's max_pool2d).  x: (P, h, w) -> y: (P, h/2, w/2); arg: flat index into x. */
static void maxpool2(const float *x, int planes, int h, int w, float *y, size_t *arg)
{
    int ho = h / 2, wo = w / 2;
    for (int p = 0; p < planes; p++)
        for (int i = 0; i < ho; i++)
            for (int j = 0; j < wo; j++) {
                size_t best = ((size_t)p * h + 2 * i) * w + 2 * j;
                for (int di = 0; di < 2; di++)
                    for (int dj = 0; dj < 2; dj++) {
                        size_t k = ((size_t)p * h + 2 * i + di) * w + 2 * j + dj;
                        if (x[k] > x[best]) best = k;
                    }
                size_t o = ((size_t)p * ho + i) * wo + j;
                y[o] = x[best];
                arg[o] = best;
            }
}

static void identity_case(tu_rng *r, int n, int c, int h, int w, int integer_data)
{
    size_t in = (size_t)n * c * h * w, out = in / 4;
    CHECK(dp_dynopool_size(h, 2.0f) == h / 2 && dp_dynopool_size(w, 2.0f) == w / 2,
          "(%d,%d) is not a pooling shape", h, w);
    float *x = malloc(in * sizeof(float)), *dy = malloc(out * sizeof(float));
    float *y = malloc(out * sizeof(float)), *ym = malloc(out * sizeof(float));
    float *dx = malloc(in * sizeof(float)), *dxm = calloc(in, sizeof(float));
    size_t *arg = malloc(out * sizeof(size_t));
    for (size_t k = 0; k < in; k++) x[k] = integer_data ? (float)tu_int(r, 0, 2) : tu_normal(r);
    tu_fill_normal(r, dy, out);
    maxpool2(x, n * c, h, w, ym, arg);
    for (size_t o = 0; o < out; o++) dxm[arg[o]] += dy[o];
    float dalpha[2];
    CHECK(dp_dynopool_forward(x, n, c, h, w, 2.0f, 2.0f, y) == 0, "forward");
    CHECK(dp_dynopool_backward(x, dy, n, c, h, w, 2.0f, 2.0f, dx, dalpha) == 0, "backward");
    CHECK(memcmp(y, ym, out * sizeof(float)) == 0, "(%d,%d,%d,%d)%s: y is not max pooling's",
          n, c, h, w, integer_data ? " ties" : "");
    CHECK(memcmp(dx, dxm, in * sizeof(float)) == 0, "(%d,%d,%d,%d)%s: dx is not max pooling's",
          n, c, h, w, integer_data ? " ties" : "");
    if (memcmp(y, ym, out * sizeof(float)) || memcmp(dx, dxm, in * sizeof(float))) {
        tu_compare("y", y, ym, out, 0, 0);
        tu_compare("dx", dx, dxm, in, 0, 0);
    }
    free(x), free(dy), free(y), free(ym), free(dx), free(dxm), free(arg);
}

/* Forward and backward with 1 thread and with 3: identical bits. */
static void threads_case(tu_rng *r, int n, int c, int h, int w, float ah, float aw, int agg)
{
    int ho = dp_dynopool_size(h, ah), wo = dp_dynopool_size(w, aw);
    size_t in = (size_t)n * c * h * w, out = (size_t)n * c * ho * wo;
    float *x = malloc(in * sizeof(float)), *dy = malloc(out * sizeof(float));
    float *y[2], *dx[2], da[2][2];
    tu_fill_normal(r, x, in);
    tu_fill_normal(r, dy, out);
    for (int t = 0; t < 2; t++) {
        omp_set_num_threads(t ? 3 : 1);
        y[t] = malloc(out * sizeof(float));
        dx[t] = malloc(in * sizeof(float));
        CHECK(dp_dynopool_forward_agg(x, n, c, h, w, ah, aw, agg, y[t]) == 0, "forward");
        CHECK(dp_dynopool_backward_agg(x, dy, n, c, h, w, ah, aw, agg, dx[t], da[t]) == 0,
              "backward");
    }
    CHECK(memcmp(y[0], y[1], out * sizeof(float)) == 0, "y depends on the thread count");
    CHECK(memcmp(dx[0], dx[1], in * sizeof(float)) == 0, "dx depends on the thread count");
    CHECK(memcmp(da[0], da[1], sizeof da[0]) == 0,
          "dalpha depends on the thread count: %.9g %.9g vs %.9g %.9g", da[0][0], da[0][1],
          da[1][0], da[1][1]);
    free(x), free(dy), free(y[0]), free(y[1]), free(dx[0]), free(dx[1]);
}

/* A NaN wins its window, as in max_pool2d; the other windows are untouched. */
static void nan_case(void)
{
    float x[16], y[4], dy[4] = {1, 2, 3, 4}, dx[16], da[2];
    for (int k = 0; k < 16; k++) x[k] = (float)k;
    x[5] = NAN; /* window (0, 0): rows 0-1, columns 0-1 */
    CHECK(dp_dynopool_forward(x, 1, 1, 4, 4, 2.0f, 2.0f, y) == 0, "forward");
    CHECK(isnan(y[0]), "NaN did not win: y[0] = %g", y[0]);
    CHECK(y[1] == 7.0f && y[2] == 13.0f && y[3] == 15.0f, "y = %g %g %g", y[1], y[2], y[3]);
    CHECK(dp_dynopool_backward(x, dy, 1, 1, 4, 4, 2.0f, 2.0f, dx, da) == 0, "backward");
    CHECK(dx[5] == 1.0f && dx[7] == 2.0f && dx[13] == 3.0f && dx[15] == 4.0f,
          "dx goes to the winners: %g %g %g %g", dx[5], dx[7], dx[13], dx[15]);
}

int main(void)
{
    nan_case();
    tu_rng r = {42};
    static const int shapes[][4] = {
        {1, 1, 4, 4}, {1, 1, 4, 8}, {2, 3, 4, 6}, {4, 16, 32, 32}, {3, 5, 14, 10}, {1, 7, 56, 4},
    };
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++)
        for (int ties = 0; ties < 2; ties++)
            identity_case(&r, shapes[k][0], shapes[k][1], shapes[k][2], shapes[k][3], ties);

    threads_case(&r, 3, 7, 17, 13, 1.7f, 2.6f, DP_AGG_MAX);
    threads_case(&r, 5, 3, 9, 11, 0.6f, 0.8f, DP_AGG_MAX);
    threads_case(&r, 4, 4, 12, 12, 1.3f, 1.9f, DP_AGG_AVG);
    return tu_finish("test_maxpool");
}
