/* test_size.c — dp_dynopool_size (docs/operator.md, "The size rule"): the floor
 * of 1.5, round half up, and its errors; dp_dynopool_macs. */
#include "dynopool_op.h"
#include "testutil.h"

#include <math.h>

int main(void)
{
    static const struct { int in; float alpha; int want; } t[] = {
        {32, 2.0f, 16}, {224, 2.0f, 112}, {7, 2.0f, 4},   /* 3.5 -> 4: half up */
        {5, 2.0f, 3},   /* 2.5 -> 3 */  {3, 2.0f, 2},      /* 1.5 -> 2 */
        {2, 2.0f, 2},   /* 1.0 -> floor 1.5 -> 2 */        {1, 2.0f, 2},
        {1, 1.0f, 2},   /* even 1 -> 1 is lifted to 2 cells */
        {100, 1000.0f, 2}, {32, 1.7f, 19}, {32, 2.6f, 12}, {5, 0.6f, 8},   /* 8.33 */
        {7, 0.8f, 9},   /* 8.75 */      {9, 2.0f, 5},      /* 4.5 -> 5 */
        {15, 2.0f, 8},  {16, 4.0f, 4},  {8, 0.5f, 16},     {224, 4.0f, 56},
        {10, 4.0f, 3},  /* 2.5 -> 3 */  {6, 4.0f, 2},      /* 1.5 -> 2 */
        {11, 4.0f, 3},  /* 2.75 */      {13, 1.0f, 13},
    };
    for (size_t k = 0; k < sizeof t / sizeof t[0]; k++) {
        int got = dp_dynopool_size(t[k].in, t[k].alpha);
        CHECK(got == t[k].want, "size(%d, %g) = %d, expected %d", t[k].in, t[k].alpha, got,
              t[k].want);
    }
    CHECK(dp_dynopool_size(0, 2.0f) == DP_ERR_SIZE, "in = 0");
    CHECK(dp_dynopool_size(-3, 2.0f) == DP_ERR_SIZE, "in < 0");
    CHECK(dp_dynopool_size(8, 0.0f) == DP_ERR_ALPHA, "alpha = 0");
    CHECK(dp_dynopool_size(8, -0.0f) == DP_ERR_ALPHA, "alpha = -0");
    CHECK(dp_dynopool_size(8, -1.0f) == DP_ERR_ALPHA, "alpha < 0");
    CHECK(dp_dynopool_size(8, NAN) == DP_ERR_ALPHA, "alpha NaN");
    CHECK(dp_dynopool_size(8, INFINITY) == DP_ERR_ALPHA, "alpha inf");
    CHECK(dp_dynopool_size(8, 1e-30f) == DP_ERR_OVERFLOW, "tiny alpha");
    CHECK(dp_dynopool_size(8, 1e-45f) == DP_ERR_OVERFLOW, "subnormal alpha");
    CHECK(dp_dynopool_size(DP_MAX_AXIS, 1.0f) == DP_MAX_AXIS, "largest axis");
    CHECK(dp_dynopool_size(DP_MAX_AXIS, 0.99f) == DP_ERR_OVERFLOW, "just over the largest axis");

    CHECK(dp_dynopool_macs(1, 64, 32, 32, 2.0f, 2.0f) == 16LL * 64 * 16 * 16, "macs");
    CHECK(dp_dynopool_macs(2, 3, 13, 11, 1.7f, 2.6f) == 16LL * 6 * 8 * 4, "macs nonsquare");
    CHECK(dp_dynopool_macs(1, 1, 8, 8, 0.0f, 2.0f) == DP_ERR_ALPHA, "macs bad alpha");

    CHECK(dp_strerror(DP_ERR_ALPHA)[0] != 0, "strerror");
    CHECK(dp_strerror(12345)[0] != 0, "strerror unknown");
    return tu_finish("test_size");
}
