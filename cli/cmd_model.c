/* cmd_model.c — `dynopool info` and `dynopool bench`: a model's cost and size,
 * and the speed of its training step on synthetic data. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

/* Usage texts: printf formats whose every %s is the program's name. */
static const char *const INFO_USAGE =
    "Usage: %s info [--model M] [--pool P] [--input S] [--classes C] [--width W]\n"
    "                     [--in-ch N] [--checkpoint FILE] [--json]\n"
    "\n"
    "The row of the paper's Table 5.1 for one network: GMACs per image (SPEC 2\n"
    "counting: conv, linear, batch norm), parameters, the feature-map size after every\n"
    "resizing stage, the alphas, and DynOPool's own share of the cost (Table 5.5).\n"
    "\n"
    "  --model M        vgg16 | resnet50 | mobilenetv2           (default vgg16)\n"
    "  --pool P         human | dynopool | shape-adaptor         (default human)\n"
    "  --input S        input side in pixels                      (default 32)\n"
    "  --classes C      number of classes                         (default 100)\n"
    "  --width W        channel multiplier                        (default 1)\n"
    "  --in-ch N        input channels                            (default 3)\n"
    "  --checkpoint F   a trained model (safetensors, or the run folder that holds it):\n"
    "                   its learned alphas and sizes;\n"
    "                   model options default to the checkpoint's own\n"
    "  --json           one JSON object: gmacs, params, sizes, alphas, dynopool_share, ...\n"
    "\n"
    "Shape adaptors report alpha = 1 / scale.  Example:\n"
    "  %s info --model resnet50 --input 224 --classes 1000\n";

static const char *const BENCH_USAGE =
    "Usage: %s bench [model options of '%s info'] [--batch B] [--steps K] [--json]\n"
    "\n"
    "Times training steps (forward, backward, SGD update) on synthetic data after two\n"
    "warm-up steps and prints the median images per second and the peak resident\n"
    "memory of the process.  --batch default 128, --steps default 10.  The step is the\n"
    "real one: SGD with Nesterov momentum (lr 0.01 here, so that weights stay finite)\n"
    "and, for --pool dynopool, the complexity loss with lambda 0.1.  Ctrl-C stops it\n"
    "after the current step.\n"
    "Threads: OMP_NUM_THREADS.  bench/bench_models.py compares with PyTorch.\n";

typedef struct {
    dp_model_config cfg;
    const char *checkpoint;
    char ckpt_path[4200]; /* a run folder's checkpoint.safetensors */
    int json, batch, steps;
    int set_model, set_pool, set_input, set_classes, set_width, set_inch, have_ckpt_cfg;
} model_opts;

/* "dynopool: <fmt with arg>" and where to read more; returns EXIT_USAGE. */
static int usage_error(int bench, const char *fmt, const char *arg)
{
    fputs("dynopool: ", stderr);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry '%s %s --help'.\n", cli_prog, bench ? "bench" : "info");
    return EXIT_USAGE;
}

/* Parses the options shared by info and bench; returns 0, or an exit code. */
static int parse(int argc, char **argv, model_opts *o, int bench, const char *usage)
{
    o->cfg = dp_model_defaults();
    o->batch = 128, o->steps = 10;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf(usage, cli_prog, cli_prog);
            return -1;
        }
        if (!strcmp(a, "--json")) {
            o->json = 1;
            continue;
        }
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (a[0] != '-') return usage_error(bench, "unexpected argument '%s'", a);
        int known = !strcmp(a, "--model") || !strcmp(a, "--pool") || !strcmp(a, "--input") ||
                    !strcmp(a, "--classes") || !strcmp(a, "--width") || !strcmp(a, "--in-ch") ||
                    !strcmp(a, "--checkpoint") ||
                    (bench && (!strcmp(a, "--batch") || !strcmp(a, "--steps")));
        if (!known) return usage_error(bench, "unknown option '%s'", a);
        if (!v) return usage_error(bench, "option '%s' needs a value", a);
        i++;
        if (!strcmp(a, "--model")) {
            if ((o->cfg.arch = dp_arch_parse(v)) < 0)
                return usage_error(bench, "--model: expected vgg16, resnet50 or mobilenetv2, got '%s'", v);
            o->set_model = 1;
        } else if (!strcmp(a, "--pool")) {
            if ((o->cfg.pool = dp_pool_parse(v)) < 0)
                return usage_error(bench, "--pool: expected human, dynopool or shape-adaptor, got '%s'", v);
            o->set_pool = 1;
        } else if (!strcmp(a, "--checkpoint")) {
            struct stat st; /* a run folder of 'train' (as eval takes it) */
            o->checkpoint = v;
            if (stat(v, &st) == 0 && S_ISDIR(st.st_mode)) {
                snprintf(o->ckpt_path, sizeof o->ckpt_path, "%s/checkpoint.safetensors", v);
                o->checkpoint = o->ckpt_path;
            }
        } else if (!strcmp(a, "--width")) {
            double w;
            if (cli_parse_double(v, &w) || !(w > 0.0 && w <= 16.0))
                return usage_error(bench, "--width: expected a number in (0, 16], got '%s'", v);
            o->cfg.width = (float)w;
            o->set_width = 1;
        } else {
            long n;
            const long hi = !strcmp(a, "--input") ? 4096 : !strcmp(a, "--classes") ? 1000000 : 1 << 20;
            if (cli_parse_long(v, &n) || n < (!strcmp(a, "--input") ? 2 : 1) || n > hi)
                return usage_error(bench, !strcmp(a, "--input") ? "--input: expected a side in [2, 4096], got '%s'"
                                                             : "expected a positive integer, got '%s'", v);
            if (!strcmp(a, "--input")) o->cfg.size = (int)n, o->set_input = 1;
            else if (!strcmp(a, "--classes")) o->cfg.classes = (int)n, o->set_classes = 1;
            else if (!strcmp(a, "--in-ch")) o->cfg.in_ch = (int)n, o->set_inch = 1;
            else if (!strcmp(a, "--batch")) o->batch = (int)n;
            else o->steps = (int)n;
        }
    }
    return 0;
}

/* The checkpoint's configuration where options are unset (once); 0, or 1 after
 * printing the error. */
static int checkpoint_defaults(model_opts *o)
{
    char err[512] = "";
    dp_model_config c;
    int rc;
    if (!o->checkpoint || o->have_ckpt_cfg) return 0;
    if ((rc = dp_checkpoint_config(o->checkpoint, &c, err, sizeof err))) {
        fprintf(stderr, "dynopool: %s\n", err[0] ? err : dp_strerror(rc));
        return 1;
    }
    if (!o->set_model) o->cfg.arch = c.arch;
    if (!o->set_pool) o->cfg.pool = c.pool;
    if (!o->set_input) o->cfg.size = c.size;
    if (!o->set_classes) o->cfg.classes = c.classes;
    if (!o->set_width) o->cfg.width = c.width;
    if (!o->set_inch) o->cfg.in_ch = c.in_ch;
    o->have_ckpt_cfg = 1;
    return 0;
}

/* Builds the model (from the checkpoint's configuration where options are unset)
 * and loads the checkpoint; prints the error and returns NULL on failure. */
static dp_model *open_model(model_opts *o)
{
    char err[512] = "";
    int rc;
    if (checkpoint_defaults(o)) return NULL;
    dp_model *m;
    if ((rc = dp_model_create(&o->cfg, &m))) {
        fprintf(stderr, "dynopool: cannot build %s (%s) for %dx%d input: %s\n",
                dp_arch_name(o->cfg.arch), dp_pool_name(o->cfg.pool), o->cfg.size, o->cfg.size,
                dp_strerror(rc));
        return NULL;
    }
    if (o->checkpoint && (rc = dp_model_load(m, o->checkpoint, err, sizeof err))) {
        fprintf(stderr, "dynopool: %s\n", err[0] ? err : dp_strerror(rc));
        dp_model_free(m);
        return NULL;
    }
    return m;
}

int cmd_info(int argc, char **argv)
{
    model_opts o = {0};
    int rc = parse(argc, argv, &o, 0, INFO_USAGE);
    if (rc) return rc < 0 ? 0 : rc;
    /* without a checkpoint the counts need no weights: nothing is allocated */
    dp_model *m = o.checkpoint ? open_model(&o) : NULL;
    if (o.checkpoint && !m) return 1;
    dp_model_info in;
    if ((rc = m ? dp_model_info_get(m, &in) : dp_model_info_of_config(&o.cfg, &in))) {
        fprintf(stderr, "dynopool: cannot count %s (%s) for %dx%d input: %s\n", dp_arch_name(o.cfg.arch),
                dp_pool_name(o.cfg.pool), o.cfg.size, o.cfg.size, dp_strerror(rc));
        dp_model_free(m);
        return 1;
    }
    const dp_model_config *c = &o.cfg;
    if (o.json) {
        printf("{\"model\": \"%s\", \"pool\": \"%s\", \"input\": [%d, %d, %d], \"classes\": %d, "
               "\"width\": %g, \"gmacs\": %.6f, \"params\": %lld, \"sizes\": [",
               dp_arch_name(c->arch), dp_pool_name(c->pool), c->in_ch, c->size, c->size,
               c->classes, (double)c->width, in.gmacs, in.params);
        for (int s = 0; s < in.n_stages; s++)
            printf("%s[%d, %d]", s ? ", " : "", in.sizes[s][0], in.sizes[s][1]);
        printf("], \"alphas\": [");
        for (int s = 0; s < in.n_alphas; s++)
            printf("%s[%.6g, %.6g]", s ? ", " : "", (double)in.alphas[s][0], (double)in.alphas[s][1]);
        printf("], \"dynopool_gmacs\": %.6f, \"dynopool_share\": %.6f}\n", in.dynopool_gmacs,
               in.dynopool_share);
    } else {
        printf("%s (%s), input %dx%dx%d, %d classes, width %g%s%s\n", dp_arch_name(c->arch),
               dp_pool_name(c->pool), c->in_ch, c->size, c->size, c->classes, (double)c->width,
               o.checkpoint ? ", checkpoint " : "", o.checkpoint ? o.checkpoint : "");
        printf("  GMACs per image   %.4f\n", in.gmacs);
        printf("  parameters        %lld\n", in.params);
        printf("  stage sizes      ");
        for (int s = 0; s < in.n_stages; s++) printf(" %dx%d", in.sizes[s][0], in.sizes[s][1]);
        printf("%s\n", in.n_stages ? "" : " (none)");
        printf("  alphas           ");
        for (int s = 0; s < in.n_alphas; s++)
            printf(" (%.3g, %.3g)", (double)in.alphas[s][0], (double)in.alphas[s][1]);
        printf("%s\n", in.n_alphas ? "" : " (none: fixed pooling)");
        if (c->pool == DP_POOL_DYNOPOOL)
            printf("  DynOPool's own    %.4f GMACs, %.2f%% of the total\n", in.dynopool_gmacs,
                   100.0 * in.dynopool_share);
    }
    dp_model_free(m);
    return 0;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static volatile sig_atomic_t g_interrupted;

static void on_interrupt(int sig) { g_interrupted = sig; }

int cmd_bench(int argc, char **argv)
{
    model_opts o = {0};
    int rc = parse(argc, argv, &o, 1, BENCH_USAGE);
    if (rc) return rc < 0 ? 0 : rc;
    if (checkpoint_defaults(&o)) return 1;
    const int n = o.batch, k = o.cfg.classes;
    /* the synthetic batch, sized in 64 bits before the model is built: in_ch, side^2
     * and batch reach 2^20, 2^24 and 2^20, whose product overflows a size_t */
    const uint64_t per = (uint64_t)o.cfg.in_ch * (uint64_t)o.cfg.size * (uint64_t)o.cfg.size;
    if (per > (uint64_t)PTRDIFF_MAX / sizeof(float) / (uint64_t)n) {
        fprintf(stderr, "dynopool: bench: a batch of %d images of %dx%dx%d is %.3g GB of floats, "
                        "more than can be allocated; lower --batch, --input or --in-ch\n",
                n, o.cfg.in_ch, o.cfg.size, o.cfg.size, 4e-9 * (double)per * n);
        return 1;
    }
    dp_model *m = open_model(&o);
    if (!m) return 1;
    float *x = malloc(sizeof(float) * (size_t)per * (size_t)n);
    int *lab = malloc(sizeof(int) * (size_t)n);
    double *t = malloc(sizeof(double) * (size_t)o.steps);
    if (!x || !lab || !t) {
        fprintf(stderr, "dynopool: bench: out of memory for a batch of %d images of %dx%dx%d (%.3g GB)\n",
                n, o.cfg.in_ch, o.cfg.size, o.cfg.size, 4e-9 * (double)per * n);
        free(x), free(lab), free(t), dp_model_free(m);
        return 1;
    }
    uint64_t s = 12345;
    for (size_t i = 0; i < per * n; i++) x[i] = cli_randn(&s);
    for (int i = 0; i < n; i++) lab[i] = (int)((s = s * 6364136223846793005ULL + 1) >> 33) % k;
    dp_train_config tc = dp_train_defaults(o.cfg.arch);
    const double lr = 0.01; /* small: timing only, the weights must stay finite */
    tc.lambda = o.cfg.pool == DP_POOL_DYNOPOOL ? 0.1f : 0.0f;
    dp_step_stats st;
    /* progress on one line rewritten in place on a terminal, whole lines otherwise */
    const int tty = isatty(fileno(stderr));
    struct sigaction sa, old_int;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt;
    sa.sa_flags = SA_RESETHAND; /* a second Ctrl-C kills at once */
    sigemptyset(&sa.sa_mask);
    g_interrupted = 0;
    sigaction(SIGINT, &sa, &old_int);
    int done = 0; /* timed steps */
    for (int i = -2; i < o.steps && !rc && !g_interrupted; i++) {
        const double t0 = now_s();
        rc = dp_model_train_step(m, x, lab, n, &tc, (float)lr, (float)dp_recipe_alpha_lr(lr), &st);
        if (i >= 0) t[i] = now_s() - t0, done = i + 1;
        if (!o.json)
            fprintf(stderr, "%s%s step %d/%d%s", tty ? "\r" : "", i < 0 ? "warm-up" : "timed",
                    i < 0 ? i + 3 : i + 1, i < 0 ? 2 : o.steps, tty ? "" : "\n");
    }
    sigaction(SIGINT, &old_int, NULL);
    if (!o.json && tty) fprintf(stderr, "\n");
    const int stopped = !rc && g_interrupted;
    if (stopped) { /* report the steps timed so far, if any */
        fprintf(stderr, "dynopool: bench interrupted after %d of %d timed steps\n", done, o.steps);
        o.steps = done;
    }
    if (rc) {
        fprintf(stderr, "dynopool: training step failed: %s\n", dp_strerror(rc));
    } else if (o.steps) {
        qsort(t, (size_t)o.steps, sizeof(double), cmp_double);
        const double med = o.steps % 2 ? t[o.steps / 2] : 0.5 * (t[o.steps / 2 - 1] + t[o.steps / 2]);
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        const double mb = (double)ru.ru_maxrss / 1024.0;
        if (o.json)
            printf("{\"model\": \"%s\", \"pool\": \"%s\", \"input\": %d, \"batch\": %d, \"steps\": %d, "
                   "\"images_per_s\": %.2f, \"step_s\": %.5f, \"peak_rss_mb\": %.1f, \"threads\": %d}\n",
                   dp_arch_name(o.cfg.arch), dp_pool_name(o.cfg.pool), o.cfg.size, n, o.steps,
                   n / med, med, mb, dp_threads());
        else
            printf("%s (%s) %dx%d batch %d: %.1f images/s (median of %d steps, %.3f s/step), "
                   "peak RSS %.0f MB, %d threads\n", dp_arch_name(o.cfg.arch), dp_pool_name(o.cfg.pool),
                   o.cfg.size, o.cfg.size, n, n / med, o.steps, med, mb, dp_threads());
    }
    free(x), free(lab), free(t);
    dp_model_free(m);
    return rc ? 1 : stopped ? 130 : 0;
}
