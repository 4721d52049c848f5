/* bench_step — where the time of a training step goes: per op type (forward and
 * backward), oneDNN primitives built (descriptors, primitives, reorders, their
 * buffers) against oneDNN executions, and the rest (loss, shape inference,
 * complexity loss, SGD), with the map sizes step by step.  docs/engine.md,
 * "Where a step's time goes", has its figures.
 *
 *   bench_step [--model M] [--pool P] [--width W] [--input S] [--classes K]
 *              [--batch B (8)] [--steps N (10)] [--warmup W (2)]
 *              [--lr X (0.01)] [--alpha-lr X (lr / 10)] [--lambda X (0)]
 *              [--max-side N (0: none)] [--data DIR] [--trace] [--json]
 *
 * The step is dp_model_train_step with the recipe's settings (dp_train_defaults)
 * at a constant learning rate.  Data: synthetic (normal pixels, uniform labels;
 * per pixel for a segmentation net) unless --data names a segmentation set in
 * the VOC layout (`dynopool segdata` writes one), whose training images then
 * come in the order, and with the augmentation, of `dynopool train --task seg`
 * at the same seed (so the alphas move as in the first epoch of a real run).  --trace prints one line per
 * step: seconds, states built and their seconds, the stage sizes and the first
 * alphas with their task gradient.  Threads: OMP_NUM_THREADS.  Run it alone
 * (no other job on the cores): it measures wall time. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "dynopool.h"
#include "engine/dnn.h"
#include "engine/model.h"

static void die(const char *msg)
{
    fprintf(stderr, "bench_step: %s\n", msg);
    exit(2);
}

static double randn(unsigned long long *s)
{
    double u[2];
    for (int k = 0; k < 2; k++) {
        *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
        u[k] = ((double)(*s >> 11) + 0.5) * 0x1p-53;
    }
    return sqrt(-2.0 * log(u[0])) * cos(6.283185307179586 * u[1]);
}

/* cli/common.c's cli_splitmix64, which the trainer shuffles with */
static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

int main(int argc, char **argv)
{
    dp_model_config cfg = dp_model_defaults();
    cfg.arch = DP_HRNET, cfg.pool = DP_POOL_DYNOPOOL, cfg.width = 18, cfg.size = 64, cfg.classes = 11;
    int batch = 8, steps = 10, warmup = 2, trace = 0, json = 0;
    double lr = 0.01, alpha_lr = -1, lambda = 0;
    int max_side = 0;
    const char *data = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--trace")) { trace = 1; continue; }
        if (!strcmp(a, "--json")) { json = 1; continue; }
        if (!v) die("an option without its value (see the comment at the top of bench/bench_step.c)");
        i++;
        if (!strcmp(a, "--model")) { if ((cfg.arch = dp_arch_parse(v)) < 0) die("unknown --model"); }
        else if (!strcmp(a, "--pool")) { if ((cfg.pool = dp_pool_parse(v)) < 0) die("unknown --pool"); }
        else if (!strcmp(a, "--width")) cfg.width = (float)atof(v);
        else if (!strcmp(a, "--input")) cfg.size = atoi(v);
        else if (!strcmp(a, "--classes")) cfg.classes = atoi(v);
        else if (!strcmp(a, "--batch")) batch = atoi(v);
        else if (!strcmp(a, "--steps")) steps = atoi(v);
        else if (!strcmp(a, "--warmup")) warmup = atoi(v);
        else if (!strcmp(a, "--lr")) lr = atof(v);
        else if (!strcmp(a, "--alpha-lr")) alpha_lr = atof(v);
        else if (!strcmp(a, "--lambda")) lambda = atof(v);
        else if (!strcmp(a, "--max-side")) max_side = atoi(v);
        else if (!strcmp(a, "--data")) data = v;
        else die("unknown option (see the comment at the top of bench/bench_step.c)");
    }
    if (batch < 1 || steps < 1 || warmup < 0 || cfg.size < 8) die("--batch, --steps >= 1, --warmup >= 0, --input >= 8");
    if (alpha_lr < 0) alpha_lr = lr / 10;
    const int seg = dp_arch_is_seg(cfg.arch);
    char err[1024] = "";
    dp_segset *set = NULL;
    if (data) {
        if (!seg) die("--data: a segmentation set, for a segmentation network");
        if (dp_segset_open(data, "train", cfg.classes, &set, err, sizeof err)) die(err);
        if (dp_segset_count(set) < batch) die("--data: fewer training images than --batch");
    }
    dp_model *m = NULL;
    if (dp_model_create(&cfg, &m)) die("cannot build the model");
    const size_t per = (size_t)cfg.in_ch * cfg.size * cfg.size, nlab = seg ? (size_t)cfg.size * cfg.size : 1;
    float *x = malloc(sizeof(float) * per * batch);
    int *lab = malloc(sizeof(int) * nlab * batch), *order = set ? malloc(sizeof(int) * dp_segset_count(set)) : NULL;
    double prof[2 * DP_OP_COUNT] = {0}, *t = malloc(sizeof(double) * steps);
    if (!x || !lab || !t || (set && !order)) die("out of memory");
    unsigned long long s = 12345;
    if (!set) {
        for (size_t i = 0; i < per * batch; i++) x[i] = (float)randn(&s);
        for (size_t i = 0; i < nlab * batch; i++) lab[i] = (int)((s = s * 6364136223846793005ULL + 1) >> 33) % cfg.classes;
    }
    dp_train_config tc = dp_train_defaults(cfg.arch);
    tc.lambda = (float)lambda, tc.max_side = max_side;
    const dp_seg_transform tf = set ? dp_seg_transform_defaults(1, cfg.size) : (dp_seg_transform){0};
    dnn_stats d0, d1, dsum;
    memset(&dsum, 0, sizeof dsum);
    double build_s = 0, run_s = 0, total = 0;
    long long runs = 0;
    int size_changes = 0, prev[DP_MAX_STAGES][2], nprev = 0;
    for (int it = -warmup; it < steps; it++) {
        if (set) { /* `dynopool train --task seg`'s order: shuffled per epoch, the last partial batch dropped */
            const int n = dp_segset_count(set), per_epoch = n / batch, j = it + warmup;
            const int e = j / per_epoch, i = j % per_epoch * batch;
            if (i == 0) {
                for (int k = 0; k < n; k++) order[k] = k;
                uint64_t r = cfg.seed * 0x9E3779B97F4A7C15ULL + (uint64_t)e;
                for (int k = n - 1; k > 0; k--) {
                    const int q = (int)(splitmix64(&r) % (uint64_t)(k + 1)), o = order[k];
                    order[k] = order[q], order[q] = o;
                }
            }
            for (int k = 0; k < batch; k++)
                if (dp_segset_sample(set, order[i + k], &tf, cfg.seed, (long long)e * n + i + k, x + per * k,
                                     lab + nlab * k, err, sizeof err))
                    die(err);
        }
        m->net.prof = it >= 0 ? prof : NULL;
        dnn_stats_get(&d0);
        dp_step_stats st;
        const double t0 = now_ms();
        const int rc = dp_model_train_step(m, x, lab, batch, &tc, (float)lr, (float)alpha_lr, &st);
        const double dt = (now_ms() - t0) / 1e3;
        dnn_stats_get(&d1);
        if (rc) {
            fprintf(stderr, "bench_step: step %d: %s\n", it, dp_strerror(rc));
            return 1;
        }
        long long built = 0;
        for (int k = 0; k < DNN_KINDS; k++) built += d1.built[k] - d0.built[k];
        dp_model_info in;
        dp_model_info_get(m, &in);
        int changed = 0;
        for (int k = 0; k < in.n_stages; k++)
            changed |= k < nprev && (in.sizes[k][0] != prev[k][0] || in.sizes[k][1] != prev[k][1]);
        memcpy(prev, in.sizes, sizeof prev), nprev = in.n_stages;
        if (it >= 0) {
            t[it] = dt, total += dt;
            build_s += d1.build_s - d0.build_s, run_s += d1.run_s - d0.run_s, runs += d1.runs - d0.runs;
            for (int k = 0; k < DNN_KINDS; k++)
                dsum.built[k] += d1.built[k] - d0.built[k], dsum.reused[k] += d1.reused[k] - d0.reused[k];
            size_changes += changed;
        }
        if (trace) {
            printf("step %3d %8.4f s  built %4lld (%.4f s)  loss %.4f  %.4f GMACs  maps", it, dt, built,
                   d1.build_s - d0.build_s, st.loss, in.gmacs);
            for (int k = 0; k < in.n_stages; k++) printf(" %dx%d", in.sizes[k][0], in.sizes[k][1]);
            printf("  alpha/dLtask");
            for (int k = 0; k < st.n_galpha && k < 2; k++)
                printf(" (%.4f %+.3g, %.4f %+.3g)", st.alpha[k][0], st.galpha_task[k][0], st.alpha[k][1],
                       st.galpha_task[k][1]);
            printf("\n");
        }
    }
    m->net.prof = NULL;
    const double med = median_inplace(t, steps), mean = total / steps;
    double ops = 0;
    for (int k = 0; k < 2 * DP_OP_COUNT; k++) ops += prof[k];
    long long built = 0, reused = 0;
    for (int k = 0; k < DNN_KINDS; k++) built += dsum.built[k], reused += dsum.reused[k];
    if (json) {
        printf("{\"model\":\"%s\",\"pool\":\"%s\",\"width\":%g,\"input\":%d,\"batch\":%d,\"steps\":%d,\"threads\":%d,"
               "\"step_s_median\":%.5f,\"step_s_mean\":%.5f,\"build_s\":%.5f,\"built\":%.2f,\"reused\":%.2f,"
               "\"exec_s\":%.5f,\"execs\":%.1f,\"size_changes\":%d,\"ops\":{",
               dp_arch_name(cfg.arch), dp_pool_name(cfg.pool), cfg.width, cfg.size, batch, steps, dp_threads(), med,
               mean, build_s / steps, (double)built / steps, (double)reused / steps, run_s / steps, (double)runs / steps,
               size_changes);
        int first = 1;
        for (int k = 0; k < DP_OP_COUNT; k++) {
            if (prof[2 * k] + prof[2 * k + 1] == 0) continue;
            printf("%s\"%s\":[%.5f,%.5f]", first ? "" : ",", dp_op_of(k)->name, prof[2 * k] / steps,
                   prof[2 * k + 1] / steps);
            first = 0;
        }
        printf("}}\n");
    } else {
        printf("%s (%s) width %g, %dx%d, batch %d, %d threads, %s data: %d timed steps after %d\n",
               dp_arch_name(cfg.arch), dp_pool_name(cfg.pool), cfg.width, cfg.size, cfg.size, batch, dp_threads(),
               set ? data : "synthetic", steps, warmup);
        printf("  step            %8.4f s median, %.4f s mean; stage sizes changed in %d of %d steps\n", med, mean,
               size_changes, steps);
        printf("  per step (mean)   forward    backward   (seconds)\n");
        for (int k = 0; k < DP_OP_COUNT; k++)
            if (prof[2 * k] + prof[2 * k + 1] > 0)
                printf("  %-16s %9.4f  %9.4f%s\n", dp_op_of(k)->name, prof[2 * k] / steps, prof[2 * k + 1] / steps,
                       k == DP_OP_INPUT ? "  (shapes, output buffers, the input)" : "");
        printf("  %-16s %9.4f  (loss, complexity loss, SGD)\n", "rest of the step", mean - ops / steps);
        printf("  oneDNN: %.1f states built per step (%.1f conv, %.1f bn, %.1f pool, %.1f linear) in %.4f s;"
               " %.1f reused;\n          %.0f executions in %.4f s\n",
               (double)built / steps, (double)dsum.built[DNN_CONV] / steps, (double)dsum.built[DNN_BN] / steps,
               (double)dsum.built[DNN_POOL] / steps, (double)dsum.built[DNN_LINEAR] / steps, build_s / steps,
               (double)reused / steps, (double)runs / steps, run_s / steps);
    }
    free(x), free(lab), free(t), free(order);
    dp_model_free(m);
    dp_segset_free(set);
    return 0;
}
