/* test_args.c — every bad argument returns its negative status and writes
 * nothing (outputs are pre-filled with a sentinel and checked afterwards). */
#include "dynopool_op.h"
#include "testutil.h"

#include <math.h>
#include <string.h>

#define N 2
#define C 3
#define H 8
#define W 6
static float x[N * C * H * W], dy[N * C * 64 * 64], y[N * C * 64 * 64], dx[N * C * H * W];
static float dalpha[2];
static const float SENTINEL = 12345.0f;

static void fill(void)
{
    for (size_t i = 0; i < sizeof y / sizeof y[0]; i++) y[i] = SENTINEL;
    for (size_t i = 0; i < sizeof dx / sizeof dx[0]; i++) dx[i] = SENTINEL;
    dalpha[0] = dalpha[1] = SENTINEL;
}

static int untouched(void)
{
    for (size_t i = 0; i < sizeof y / sizeof y[0]; i++)
        if (y[i] != SENTINEL) return 0;
    for (size_t i = 0; i < sizeof dx / sizeof dx[0]; i++)
        if (dx[i] != SENTINEL) return 0;
    return dalpha[0] == SENTINEL && dalpha[1] == SENTINEL;
}

typedef struct {
    const char *what;
    int xnull, dynull, ynull, dxnull, danull;
    int n, c, h, w;
    float ah, aw;
    int agg;
    int want;
} bad_case;

int main(void)
{
    tu_rng r = {3};
    tu_fill_normal(&r, x, sizeof x / sizeof x[0]);
    tu_fill_normal(&r, dy, sizeof dy / sizeof dy[0]);
    const float inf = INFINITY, nan = NAN;
    const bad_case cases[] = {
        {"x NULL", 1, 0, 0, 0, 0, N, C, H, W, 2, 2, 0, DP_ERR_NULL},
        {"dy NULL", 0, 1, 0, 0, 0, N, C, H, W, 2, 2, 0, DP_ERR_NULL},
        {"y/dx NULL", 0, 0, 1, 1, 0, N, C, H, W, 2, 2, 0, DP_ERR_NULL},
        {"dalpha NULL", 0, 0, 0, 0, 1, N, C, H, W, 2, 2, 0, DP_ERR_NULL},
        {"n = 0", 0, 0, 0, 0, 0, 0, C, H, W, 2, 2, 0, DP_ERR_SIZE},
        {"c < 0", 0, 0, 0, 0, 0, N, -1, H, W, 2, 2, 0, DP_ERR_SIZE},
        {"h = 0", 0, 0, 0, 0, 0, N, C, 0, W, 2, 2, 0, DP_ERR_SIZE},
        {"w < 0", 0, 0, 0, 0, 0, N, C, H, -6, 2, 2, 0, DP_ERR_SIZE},
        {"alpha_h = 0", 0, 0, 0, 0, 0, N, C, H, W, 0, 2, 0, DP_ERR_ALPHA},
        {"alpha_w < 0", 0, 0, 0, 0, 0, N, C, H, W, 2, -2, 0, DP_ERR_ALPHA},
        {"alpha_h NaN", 0, 0, 0, 0, 0, N, C, H, W, nan, 2, 0, DP_ERR_ALPHA},
        {"alpha_w inf", 0, 0, 0, 0, 0, N, C, H, W, 2, inf, 0, DP_ERR_ALPHA},
        {"alpha_h -inf", 0, 0, 0, 0, 0, N, C, H, W, -inf, 2, 0, DP_ERR_ALPHA},
        {"output axis overflows", 0, 0, 0, 0, 0, N, C, H, W, 1e-30f, 2, 0, DP_ERR_OVERFLOW},
        {"output count overflows", 0, 0, 0, 0, 0, 1 << 30, 1 << 30, H, W, 2, 2, 0,
         DP_ERR_OVERFLOW},
        {"input count overflows", 0, 0, 0, 0, 0, 1 << 20, 1 << 20, 1 << 20, 1 << 20, 1e6f, 1e6f,
         0, DP_ERR_OVERFLOW},
        {"query rows of a plane overflow", 0, 0, 0, 0, 0, 1, 1, 1, 1 << 22, 1e-3f, 1e6f, 0,
         DP_ERR_OVERFLOW},
        {"unknown aggregation", 0, 0, 0, 0, 0, N, C, H, W, 2, 2, 7, DP_ERR_ARG},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const bad_case *b = &cases[k];
        const float *px = b->xnull ? NULL : x, *pdy = b->dynull ? NULL : dy;
        float *py = b->ynull ? NULL : y, *pdx = b->dxnull ? NULL : dx;
        float *pda = b->danull ? NULL : dalpha;
        fill();
        int rc = dp_dynopool_forward_agg(px, b->n, b->c, b->h, b->w, b->ah, b->aw, b->agg, py);
        if (!b->dynull && !b->danull) /* forward takes neither */
            CHECK(rc == b->want, "forward, %s: returned %d (%s), expected %d", b->what, rc,
                  dp_strerror(rc), b->want);
        else
            CHECK(rc == 0, "forward, %s: returned %d, expected success", b->what, rc);
        if (rc == b->want) CHECK(untouched(), "forward, %s: wrote an output", b->what);
        fill();
        rc = dp_dynopool_backward_agg(px, pdy, b->n, b->c, b->h, b->w, b->ah, b->aw, b->agg,
                                      pdx, pda);
        CHECK(rc == b->want, "backward, %s: returned %d (%s), expected %d", b->what, rc,
              dp_strerror(rc), b->want);
        CHECK(untouched(), "backward, %s: wrote an output", b->what);
    }
    /* The plain entry points reject the same things. */
    fill();
    CHECK(dp_dynopool_forward(NULL, N, C, H, W, 2, 2, y) == DP_ERR_NULL, "forward NULL");
    CHECK(dp_dynopool_backward(x, dy, N, C, H, W, 2, NAN, dx, dalpha) == DP_ERR_ALPHA,
          "backward NaN");
    CHECK(untouched(), "plain entry points wrote an output");
    /* And a good call after all of that works. */
    CHECK(dp_dynopool_backward(x, dy, N, C, H, W, 2, 2, dx, dalpha) == 0, "good call");
    return tu_finish("test_args");
}
