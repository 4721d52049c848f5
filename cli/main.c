/*
 * dynopool — the command-line tool.  The only place that prints for people and
 * chooses exit codes: 0 success, 1 a failure while working, 2 a usage error.
 */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


static const char *USAGE =
    "Usage: dynopool <command> [options]\n"
    "       dynopool --help | --version\n"
    "\n"
    "DynOPool: pooling layers that learn their output size and shape (Jang et al.,\n"
    "CVPR 2022): the operator, VGG-16 / ResNet-50 / MobileNetV2 in human, DynOPool\n"
    "and Shape Adaptor form: their cost, their speed, and training them on real data.\n"
    "\n"
    "Commands:\n"
    "  demo                     Show what the operator does: output shapes for a few\n"
    "                           alphas, the alpha = 2 / max-pooling identity, the\n"
    "                           gradients it gives alpha, and its speed here.\n"
    "  shape --input HxW --alpha AH[,AW] [--stages K]\n"
    "                           Output size of one DynOPool (or K in a row, as in a\n"
    "                           network with K pooling stages).\n"
    "  info [--model M --pool P --input S --classes C --width W --checkpoint F --json]\n"
    "                           GMACs, parameters, stage sizes and alphas of a network\n"
    "                           (the paper's Table 5.1 row).\n"
    "  bench [model options] [--batch B] [--steps K] [--json]\n"
    "                           Images per second of a training step, peak memory.\n"
    "  train [--model M --pool P --width W --data DIR --epochs E ...] [--out DIR]\n"
    "                           Train on a dataset (default: Fashion-MNIST) with the\n"
    "                           paper's recipe; --resume DIR continues a run.\n"
    "  eval --checkpoint F [--data DIR] [--json]\n"
    "                           Test accuracy, loss, GMACs and sizes of a trained model.\n"
    "  plot RUN [RUN...] [-o DIR]\n"
    "                           SVG figures of runs: map shapes per stage (Figure 5.1),\n"
    "                           accuracy against GMACs (Figure 5.2), training curves.\n"
    "\n"
    "Options:\n"
    "  -h, --help               This text (also: dynopool <command> --help).\n"
    "  -V, --version            Version of the tool and the library.\n"
    "\n"
    "The output size of one axis is floor(max(in / alpha, 1.5) + 0.5): alpha = 2 halves\n"
    "a map, alpha < 1 enlarges it, and every map keeps at least 2 cells.\n"
    "Threads: --threads N with any command; else OMP_NUM_THREADS; else train, eval,\n"
    "bench and demo use the CPUs that other processes leave idle (measured for\n"
    "0.25 s at the start).  Results repeat bit for bit for a given thread count.\n"
    "Exit status: 0 success, 1 failure, 2 bad command line.\n";

int cli_parse_long(const char *s, long *v)
{
    char *end;
    errno = 0;
    long a = strtol(s, &end, 10);
    if (end == s || *end || errno) return -1;
    *v = a;
    return 0;
}

int cli_parse_double(const char *s, double *v)
{
    char *end;
    errno = 0;
    double a = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(a)) return -1;
    *v = a;
    return 0;
}

int cli_usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "dynopool: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'dynopool --help'.\n");
    return EXIT_USAGE;
}

/* "32x28" or "32" (square). */
static int parse_hw(const char *s, int *h, int *w)
{
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
    *h = (int)a;
    *w = (int)b;
    return 0;
}

/* "1.7,2.6" or "2" (both axes). Accepts only finite values > 0. */
static int parse_alpha(const char *s, float *ah, float *aw)
{
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
    *ah = a;
    *aw = b;
    return 0;
}

static int cmd_shape(int argc, char **argv)
{
    int h = 0, w = 0, stages = 1, have_in = 0, have_alpha = 0;
    float ah = 0, aw = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("Usage: dynopool shape --input HxW --alpha AH[,AW] [--stages K]\n"
                   "Prints the output size of K DynOPool layers in a row (default 1)\n"
                   "with the given alphas, e.g. dynopool shape --input 32x32 --alpha 2 --stages 4\n");
            return 0;
        }
        if (i + 1 >= argc) return cli_usage_error("option '%s' needs a value", a);
        const char *v = argv[++i];
        if (!strcmp(a, "--input")) {
            if (parse_hw(v, &h, &w)) return cli_usage_error("--input: expected HxW such as 32x32, got '%s'", v);
            have_in = 1;
        } else if (!strcmp(a, "--alpha")) {
            if (parse_alpha(v, &ah, &aw))
                return cli_usage_error("--alpha: expected AH[,AW], finite and > 0, got '%s'", v);
            have_alpha = 1;
        } else if (!strcmp(a, "--stages")) {
            char *end;
            long k = strtol(v, &end, 10);
            if (*end || end == v || k < 1 || k > 64)
                return cli_usage_error("--stages: expected an integer from 1 to 64, got '%s'", v);
            stages = (int)k;
        } else {
            return cli_usage_error("shape: unknown option '%s'", a);
        }
    }
    if (!have_in || !have_alpha) return cli_usage_error("shape: %s", "--input and --alpha are required");
    printf("%dx%d", h, w);
    for (int s = 0; s < stages; s++) {
        int ho = dp_dynopool_size(h, ah), wo = dp_dynopool_size(w, aw);
        if (ho < 0 || wo < 0) {
            fprintf(stderr, "\ndynopool: stage %d: --input %dx%d with --alpha %g,%g: %s (at most %d cells a side)\n",
                    s + 1, h, w, (double)ah, (double)aw, dp_strerror(ho < 0 ? ho : wo), DP_MAX_AXIS);
            return 1;
        }
        printf(" -> %dx%d", ho, wo);
        h = ho;
        w = wo;
    }
    printf("\n");
    return 0;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Deterministic standard normals (splitmix64 + Box-Muller). */
float cli_randn(uint64_t *s)
{
    uint64_t z[2];
    for (int k = 0; k < 2; k++) {
        uint64_t v = (*s += 0x9E3779B97F4A7C15ull);
        v = (v ^ (v >> 30)) * 0xBF58476D1CE4E5B9ull;
        v = (v ^ (v >> 27)) * 0x94D049BB133111EBull;
        z[k] = (v ^ (v >> 31)) >> 11;
    }
    double u1 = ((double)z[0] + 1.0) * 0x1.0p-53, u2 = (double)z[1] * 0x1.0p-53;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

static int cmd_demo(int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("Usage: dynopool demo\n"
                   "Runs DynOPool forward and backward on a random 16x64x32x32 batch for a\n"
                   "few alphas and prints shapes, gradients and timings.\n");
            return 0;
        }
        return cli_usage_error("demo: unknown option '%s'", argv[i]);
    }
    enum { N = 16, C = 64, H = 32, W = 32 };
    static const struct { float ah, aw; const char *what; } cases[] = {
        {2.0f, 2.0f, "a 2x2/2 max-pool (the human design)"},
        {1.7f, 2.6f, "non-square: keeps more rows than columns"},
        {1.3f, 1.3f, "gentler down-sampling"},
        {0.6f, 0.8f, "alpha < 1 up-samples"},
        {4.0f, 4.0f, "a stem's conv/2 + pool/2 in one"},
        {40.0f, 3.0f, "the 1.5 floor: never fewer than 2 cells"},
    };
    const size_t in = (size_t)N * C * H * W;
    float *x = malloc(in * sizeof(float)), *dx = malloc(in * sizeof(float));
    float *y = malloc(in * 4 * sizeof(float)), *dy = malloc(in * 4 * sizeof(float));
    if (!x || !dx || !y || !dy) {
        fprintf(stderr, "dynopool: out of memory\n");
        free(x), free(dx), free(y), free(dy);
        return 1;
    }
    uint64_t seed = 2022;
    for (size_t k = 0; k < in; k++) x[k] = cli_randn(&seed);
    for (size_t k = 0; k < in * 4; k++) dy[k] = cli_randn(&seed);

    printf("dynopool %s: DynOPool on a random batch x of shape %dx%dx%dx%d (NCHW),\n"
           "loss L = sum(y * dy) with a random dy.\n\n", dp_version(), N, C, H, W);
    printf("%-12s %-10s %-22s %-12s %-9s %s\n", "alpha (h,w)", "output", "dL/dalpha (h, w)",
           "fwd+bwd ms", "MACs", "note");
    /* one untimed call first: it starts the thread pool and faults in the pages */
    int rc = dp_dynopool_forward(x, N, C, H, W, 2.0f, 2.0f, y);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0] && !rc; k++) {
        float ah = cases[k].ah, aw = cases[k].aw, da[2];
        int ho = dp_dynopool_size(H, ah), wo = dp_dynopool_size(W, aw);
        double t0 = now_s();
        rc = dp_dynopool_forward(x, N, C, H, W, ah, aw, y);
        if (!rc) rc = dp_dynopool_backward(x, dy, N, C, H, W, ah, aw, dx, da);
        double ms = 1e3 * (now_s() - t0);
        if (rc) break;
        char alpha[32], shape[32], grad[48];
        snprintf(alpha, sizeof alpha, "(%g, %g)", ah, aw);
        snprintf(shape, sizeof shape, "%dx%d", ho, wo);
        snprintf(grad, sizeof grad, "(%+.4g, %+.4g)", da[0], da[1]);
        printf("%-12s %-10s %-22s %-12.2f %-9.3g %s\n", alpha, shape, grad, ms,
               (double)dp_dynopool_macs(1, C, H, W, ah, aw), cases[k].what);
    }
    if (rc) {
        fprintf(stderr, "dynopool: demo: DynOPool on %dx%dx%dx%d: %s\n", N, C, H, W, dp_strerror(rc));
        free(x), free(dx), free(y), free(dy);
        return 1;
    }

    /* alpha = 2 on an even map is exactly 2x2 max pooling. */
    rc = dp_dynopool_forward(x, N, C, H, W, 2.0f, 2.0f, y);
    size_t diff = 0;
    for (size_t p = 0; p < (size_t)N * C && !rc; p++)
        for (int i = 0; i < H / 2; i++)
            for (int j = 0; j < W / 2; j++) {
                const float *xp = x + p * H * W + (size_t)2 * i * W + 2 * j;
                float m = xp[0];
                if (xp[1] > m) m = xp[1];
                if (xp[W] > m) m = xp[W];
                if (xp[W + 1] > m) m = xp[W + 1];
                diff += memcmp(&m, &y[(p * (H / 2) + i) * (W / 2) + j], sizeof m) != 0;
            }
    printf("\nalpha = (2, 2) on the 32x32 maps equals 2x2 max pooling: %s (%zu of %d outputs differ)\n",
           diff == 0 && !rc ? "yes" : "NO", diff, N * C * (H / 2) * (W / 2));
    printf("MACs: DynOPool's own cost per image (16 per output element), as in the paper's Table 5.5.\n"
           "A negative dL/dalpha means gradient descent raises alpha (a smaller map).\n");
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
    free(x), free(dx), free(y), free(dy);
    return diff == 0 ? 0 : 1;
}

const char *cli_prog = "dynopool";
int cli_threads_auto;

/* Takes "--threads N" out of argv, before or after the command, and applies
 * it.  Without it: OMP_NUM_THREADS when set, else for the commands that
 * compute (train, eval, bench, demo) the CPUs that other processes leave idle
 * (250 ms of measurement), since threads that share cores with other work
 * make every OpenMP barrier wait (docs/engine.md, "Threads").  0, or 2 after
 * printing a usage error. */
static int take_threads(int *argc, char **argv)
{
    long n = 0;
    int given = 0;
    for (int i = 1; i < *argc; i++) {
        if (strcmp(argv[i], "--threads")) continue;
        if (i + 1 >= *argc) return cli_usage_error("option '%s' needs a value", "--threads");
        if (cli_parse_long(argv[i + 1], &n) || n < 1 || n > 4096)
            return cli_usage_error("--threads: expected an integer in [1, 4096], got '%s'", argv[i + 1]);
        given = 1;
        for (int j = i; j + 2 <= *argc; j++) argv[j] = argv[j + 2]; /* argv[argc] (NULL) moves too */
        *argc -= 2;
        i--;
    }
    if (given) {
        dp_set_threads((int)n);
    } else if (!getenv("OMP_NUM_THREADS") && *argc > 1) {
        static const char *const computing[] = {"train", "eval", "bench", "demo"};
        for (int i = 0; i < 4; i++)
            if (!strcmp(argv[1], computing[i])) dp_set_threads(dp_threads_idle(250)), cli_threads_auto = 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 0 && argv[0] && argv[0][0]) cli_prog = argv[0];
    if (take_threads(&argc, argv)) return EXIT_USAGE;
    if (argc < 2) {
        fputs(USAGE, stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        fputs(USAGE, stdout);
        return 0;
    }
    if (!strcmp(cmd, "-V") || !strcmp(cmd, "--version")) {
        printf("dynopool %s (library %s)\n", dp_version(), dp_version());
        return 0;
    }
    if (!strcmp(cmd, "demo")) return cmd_demo(argc - 2, argv + 2);
    if (!strcmp(cmd, "shape")) return cmd_shape(argc - 2, argv + 2);
    if (!strcmp(cmd, "info")) return cmd_info(argc - 2, argv + 2);
    if (!strcmp(cmd, "bench")) return cmd_bench(argc - 2, argv + 2);
    if (!strcmp(cmd, "train")) return cmd_train(argc - 2, argv + 2);
    if (!strcmp(cmd, "eval")) return cmd_eval(argc - 2, argv + 2);
    if (!strcmp(cmd, "plot")) return cmd_plot(argc - 2, argv + 2);
    if (cmd[0] == '-') return cli_usage_error("unknown option '%s'", cmd);
    return cli_usage_error("unknown command '%s'", cmd);
}
