/* cmd_demo.c — `dynopool demo`: what the operator does, on a random batch. */
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "common.h"

static const char *const DEMO_USAGE =
    "Usage: dynopool demo\n"
    "Runs DynOPool forward and backward on a random 16x64x32x32 batch for a\n"
    "few alphas and prints shapes, gradients and timings.\n";

enum { N = 16, C = 64, H = 32, W = 32 };

/* One row per alpha: output, dL/dalpha, time and MACs.  0 or a DP_ERR_* code. */
static int alpha_table(const float *x, const float *dy, float *y, float *dx)
{
    static const struct { float ah, aw; const char *what; } cases[] = {
        {2.0f, 2.0f, "a 2x2/2 max-pool (the human design)"},
        {1.7f, 2.6f, "non-square: keeps more rows than columns"},
        {1.3f, 1.3f, "gentler down-sampling"},
        {0.6f, 0.8f, "alpha < 1 up-samples"},
        {4.0f, 4.0f, "a stem's conv/2 + pool/2 in one"},
        {40.0f, 3.0f, "the 1.5 floor: never fewer than 2 cells"},
    };
    printf("%-12s %-10s %-22s %-12s %-9s %s\n", "alpha (h,w)", "output", "dL/dalpha (h, w)", "fwd+bwd ms", "MACs",
           "note");
    /* one untimed call first: it starts the thread pool and faults in the pages */
    int rc = dp_dynopool_forward(x, N, C, H, W, 2.0f, 2.0f, y);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0] && !rc; k++) {
        float ah = cases[k].ah, aw = cases[k].aw, da[2];
        int ho = dp_dynopool_size(H, ah), wo = dp_dynopool_size(W, aw);
        double t0 = cli_now_s();
        rc = dp_dynopool_forward(x, N, C, H, W, ah, aw, y);
        if (!rc) rc = dp_dynopool_backward(x, dy, N, C, H, W, ah, aw, dx, da);
        double ms = 1e3 * (cli_now_s() - t0);
        if (rc) break;
        char alpha[32], shape[32], grad[48];
        snprintf(alpha, sizeof alpha, "(%g, %g)", ah, aw);
        snprintf(shape, sizeof shape, "%dx%d", ho, wo);
        snprintf(grad, sizeof grad, "(%+.4g, %+.4g)", da[0], da[1]);
        printf("%-12s %-10s %-22s %-12.2f %-9.3g %s\n", alpha, shape, grad, ms,
               (double)dp_dynopool_macs(1, C, H, W, ah, aw), cases[k].what);
    }
    return rc;
}

/* alpha = 2 on an even map is exactly 2x2 max pooling: how many outputs differ. */
static size_t maxpool_diff(const float *x, const float *y)
{
    size_t diff = 0;
    for (size_t p = 0; p < (size_t)N * C; p++)
        for (int i = 0; i < H / 2; i++)
            for (int j = 0; j < W / 2; j++) {
                const float *xp = x + p * H * W + (size_t)2 * i * W + 2 * j;
                float m = xp[0];
                if (xp[1] > m) m = xp[1];
                if (xp[W] > m) m = xp[W];
                if (xp[W + 1] > m) m = xp[W + 1];
                diff += memcmp(&m, &y[(p * (H / 2) + i) * (W / 2) + j], sizeof m) != 0;
            }
    return diff;
}

static void chains(void)
{
    printf("\nShapes through four pooling stages of a 32x32 CIFAR network (VGG-16 has four):\n");
    static const float chain[][2] = {{2.0f, 2.0f}, {1.5f, 2.5f}, {1.2f, 1.2f}};
    for (size_t k = 0; k < sizeof chain / sizeof chain[0]; k++) {
        int h = H, w = W;
        printf("  alpha (%g, %g): %dx%d", chain[k][0], chain[k][1], h, w);
        for (int s = 0; s < 4; s++) {
            h = dp_dynopool_size(h, chain[k][0]);
            w = dp_dynopool_size(w, chain[k][1]);
            printf(" -> %dx%d", h, w);
        }
        printf("\n");
    }
}

int cmd_demo(int argc, char **argv)
{
    cli_cmd c = {.name = "demo", .usage = DEMO_USAGE};
    int rc = cli_parse(&c, argc, argv);
    if (rc) return rc == CLI_HELP ? 0 : rc;
    const size_t in = (size_t)N * C * H * W;
    float *x = malloc(in * sizeof(float)), *dx = malloc(in * sizeof(float));
    float *y = malloc(in * 4 * sizeof(float)), *dy = malloc(in * 4 * sizeof(float));
    if (!x || !dx || !y || !dy) {
        rc = cli_fail("out of memory");
        goto done;
    }
    uint64_t seed = 2022;
    for (size_t k = 0; k < in; k++) x[k] = cli_randn(&seed);
    for (size_t k = 0; k < in * 4; k++) dy[k] = cli_randn(&seed);
    printf("dynopool %s: DynOPool on a random batch x of shape %dx%dx%dx%d (NCHW),\n"
           "loss L = sum(y * dy) with a random dy.\n\n", dp_version(), N, C, H, W);
    if ((rc = alpha_table(x, dy, y, dx))) {
        rc = cli_fail("demo: DynOPool on %dx%dx%dx%d: %s", N, C, H, W, dp_strerror(rc));
        goto done;
    }
    rc = dp_dynopool_forward(x, N, C, H, W, 2.0f, 2.0f, y);
    const size_t diff = rc ? 0 : maxpool_diff(x, y);
    printf("\nalpha = (2, 2) on the 32x32 maps equals 2x2 max pooling: %s (%zu of %d outputs differ)\n",
           diff == 0 && !rc ? "yes" : "NO", diff, N * C * (H / 2) * (W / 2));
    printf("MACs: DynOPool's own cost per image (16 per output element), as in the paper's Table 5.5.\n"
           "A negative dL/dalpha means gradient descent raises alpha (a smaller map).\n");
    chains();
    rc = diff == 0 ? 0 : 1;
done:
    free(x), free(dx), free(y), free(dy);
    return rc;
}
