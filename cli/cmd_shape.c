/* cmd_shape.c — `dynopool shape`: the output size of K DynOPool layers in a row. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "commands.h"
#include "common.h"

static const char *const SHAPE_USAGE =
    "Usage: dynopool shape --input HxW --alpha AH[,AW] [--stages K]\n"
    "Prints the output size of K DynOPool layers in a row (default 1)\n"
    "with the given alphas, e.g. dynopool shape --input 32x32 --alpha 2 --stages 4\n";

/* "32x28" or "32" (square) into int[2]. */
static int parse_hw(const char *s, void *dst)
{
    int *hw = dst;
    char *end;
    errno = 0;
    long a = strtol(s, &end, 10), b = a;
    if (end == s || errno) return -1;
    if (*end == 'x' || *end == 'X') {
        const char *t = end + 1;
        b = strtol(t, &end, 10);
        if (end == t || errno) return -1;
    }
    if (*end != 0 || a <= 0 || b <= 0 || a > DP_MAX_AXIS || b > DP_MAX_AXIS) return -1;
    hw[0] = (int)a, hw[1] = (int)b;
    return 0;
}

/* "1.7,2.6" or "2" (both axes) into float[2]: finite values > 0 only. */
static int parse_alpha(const char *s, void *dst)
{
    float *al = dst;
    char *end;
    errno = 0;
    float a = strtof(s, &end), b = a;
    if (end == s || errno) return -1;
    if (*end == ',') {
        const char *t = end + 1;
        b = strtof(t, &end);
        if (end == t || errno) return -1;
    }
    if (*end != 0 || !(isfinite(a) && a > 0) || !(isfinite(b) && b > 0)) return -1;
    al[0] = a, al[1] = b;
    return 0;
}

int cmd_shape(int argc, char **argv)
{
    int hw[2] = {0, 0}, stages = 1;
    float al[2] = {0, 0};
    cli_opt opts[] = {
        {"--input", CLI_PARSE, hw, .want = "HxW such as 32x32", .parse = parse_hw},
        {"--alpha", CLI_PARSE, al, .want = "AH[,AW], finite and > 0", .parse = parse_alpha},
        {"--stages", CLI_INT, &stages, 1, 64, .want = "an integer from 1 to 64"},
    };
    cli_cmd c = {"shape", SHAPE_USAGE, 0, .opts = opts, .n_opts = 3};
    const int rc = cli_parse(&c, argc, argv);
    if (rc) return rc == CLI_HELP ? 0 : rc;
    if (!opts[0].set || !opts[1].set) return cli_usage("shape", "%s", "--input and --alpha are required");
    int h = hw[0], w = hw[1];
    printf("%dx%d", h, w);
    for (int s = 0; s < stages; s++) {
        const int ho = dp_dynopool_size(h, al[0]), wo = dp_dynopool_size(w, al[1]);
        if (ho < 0 || wo < 0) {
            fputc('\n', stderr);
            return cli_fail("stage %d: --input %dx%d with --alpha %g,%g: %s (at most %d cells a side)", s + 1, h, w,
                            (double)al[0], (double)al[1], dp_strerror(ho < 0 ? ho : wo), DP_MAX_AXIS);
        }
        printf(" -> %dx%d", ho, wo);
        h = ho, w = wo;
    }
    printf("\n");
    return 0;
}
