/* cmd_bench.c — `dynopool bench`: the speed of a model's training step on
 * synthetic data, and the memory it takes. */
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "commands.h"
#include "common.h"
#include "model_opts.h"

/* A printf format whose every %s is the program's name. */
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
    model_opts mo;
    cli_opt opts[MODEL_N_OPTS + 3]; /* the model's, then bench's own */
    int json, batch, steps;
} bench_opts;

/* The options; 0, or CLI_HELP, or EXIT_USAGE. */
static int parse(bench_opts *b, int argc, char **argv)
{
    model_opts_init(&b->mo, b->opts);
    b->json = 0, b->batch = 128, b->steps = 10;
    b->opts[MODEL_N_OPTS] = (cli_opt){"--batch", CLI_INT, &b->batch, .lo = 1, .hi = 1 << 20};
    b->opts[MODEL_N_OPTS + 1] = (cli_opt){"--steps", CLI_INT, &b->steps, .lo = 1, .hi = 1 << 20};
    b->opts[MODEL_N_OPTS + 2] = (cli_opt){"--json", CLI_FLAG, .dst = &b->json};
    cli_cmd c = {"bench", BENCH_USAGE, 1, .opts = b->opts, .n_opts = MODEL_N_OPTS + 3};
    const int rc = cli_parse(&c, argc, argv);
    model_opts_resolve(&b->mo);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Two warm-up steps, then b->steps timed ones (their seconds in t) until Ctrl-C;
 * *done: how many were timed.  0 or a DP_ERR_* code. */
static int time_steps(const bench_opts *b, dp_model *m, const float *x, const int *lab, double *t, int *done)
{
    dp_train_config tc = dp_train_defaults(b->mo.cfg.arch);
    const double lr = 0.01; /* small: timing only, the weights must stay finite */
    tc.lambda = b->mo.cfg.pool == DP_POOL_DYNOPOOL ? 0.1f : 0.0f;
    dp_step_stats st;
    /* progress on one line rewritten in place on a terminal, whole lines otherwise */
    const int tty = isatty(fileno(stderr));
    struct sigaction old_int;
    cli_signal = 0;
    cli_catch_signal(SIGINT, &old_int);
    int rc = 0;
    *done = 0;
    for (int i = -2; i < b->steps && !rc && !cli_signal; i++) {
        const double t0 = cli_now_s();
        rc = dp_model_train_step(m, x, lab, b->batch, &tc, (float)lr, (float)dp_recipe_alpha_lr(lr), &st);
        if (i >= 0) t[i] = cli_now_s() - t0, *done = i + 1;
        if (!b->json)
            fprintf(stderr, "%s%s step %d/%d%s", tty ? "\r" : "", i < 0 ? "warm-up" : "timed", i < 0 ? i + 3 : i + 1,
                    i < 0 ? 2 : b->steps, tty ? "" : "\n");
    }
    sigaction(SIGINT, &old_int, NULL);
    if (!b->json && tty) fprintf(stderr, "\n");
    return rc;
}

/* The median of the n step times t (sorted here), as images per second. */
static void report(const bench_opts *b, double *t, int n)
{
    const dp_model_config *c = &b->mo.cfg;
    qsort(t, (size_t)n, sizeof(double), cmp_double);
    const double med = n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    const double mb = (double)ru.ru_maxrss / 1024.0;
    if (!b->json) {
        printf("%s (%s) %dx%d batch %d: %.1f images/s (median of %d steps, %.3f s/step), peak RSS %.0f MB, "
               "%d threads%s\n", dp_arch_name(c->arch), dp_pool_name(c->pool), c->size, c->size, b->batch,
               b->batch / med, n, med, mb, dp_threads(), cli_precision == DP_PRECISION_BF16 ? ", bf16" : "");
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", dp_arch_name(c->arch));
    cJSON_AddStringToObject(o, "pool", dp_pool_name(c->pool));
    cJSON_AddNumberToObject(o, "input", c->size);
    cJSON_AddNumberToObject(o, "batch", b->batch);
    cJSON_AddNumberToObject(o, "steps", n);
    cli_json_add_fixed(o, "images_per_s", b->batch / med, "%.2f");
    cli_json_add_fixed(o, "step_s", med, "%.5f");
    cli_json_add_fixed(o, "peak_rss_mb", mb, "%.1f");
    cJSON_AddStringToObject(o, "precision", dp_precision_name(cli_precision));
    cJSON_AddNumberToObject(o, "threads", dp_threads());
    char *line = cli_json_line(o);
    if (line) puts(line);
    free(line);
    cJSON_Delete(o);
}

int cmd_bench(int argc, char **argv)
{
    bench_opts b;
    int rc = parse(&b, argc, argv);
    if (rc) return rc == CLI_HELP ? 0 : rc;
    if (model_opts_from_checkpoint(&b.mo) || model_opts_task(&b.mo)) return 1;
    const dp_model_config *c = &b.mo.cfg;
    const size_t nlab = dp_arch_is_seg(c->arch) ? (size_t)c->size * c->size : 1; /* labels per image */
    const int n = b.batch;
    /* the synthetic batch, sized in 64 bits before the model is built: in_ch, side^2
     * and batch reach 2^20, 2^24 and 2^20, whose product overflows a size_t */
    const uint64_t per = (uint64_t)c->in_ch * (uint64_t)c->size * (uint64_t)c->size;
    if (per > (uint64_t)PTRDIFF_MAX / sizeof(float) / (uint64_t)n)
        return cli_fail("bench: a batch of %d images of %dx%dx%d is %.3g GB of floats, more than can be allocated; "
                        "lower --batch, --input or --in-ch", n, c->in_ch, c->size, c->size, 4e-9 * (double)per * n);
    dp_model *m = model_opts_open(&b.mo);
    if (!m) return 1;
    float *x = malloc(sizeof(float) * (size_t)per * (size_t)n);
    int *lab = malloc(sizeof(int) * (size_t)n * nlab);
    double *t = malloc(sizeof(double) * (size_t)b.steps);
    int done = 0;
    if (!x || !lab || !t) {
        rc = cli_fail("bench: out of memory for a batch of %d images of %dx%dx%d (%.3g GB)", n, c->in_ch, c->size,
                      c->size, 4e-9 * (double)per * n);
        goto done;
    }
    uint64_t s = 12345;
    for (size_t i = 0; i < per * n; i++) x[i] = cli_randn(&s);
    for (size_t i = 0; i < (size_t)n * nlab; i++) lab[i] = (int)(cli_splitmix64(&s) % (uint64_t)c->classes);
    rc = time_steps(&b, m, x, lab, t, &done);
    const int stopped = !rc && cli_signal;
    if (stopped) /* report the steps timed so far, if any */
        fprintf(stderr, "dynopool: bench interrupted after %d of %d timed steps\n", done, b.steps);
    if (rc) cli_fail("training step failed: %s", dp_strerror(rc));
    else if (done) report(&b, t, done);
    rc = rc ? 1 : stopped ? 130 : 0;
done:
    free(x), free(lab), free(t);
    dp_model_free(m);
    return rc;
}
