/* bench_infer — the frozen inference API (include/dynopool/infer.h) on one
 * checkpoint: latency at batch 1 and time per batch of B (throughput), each the
 * median of REPS runs after WARM warm-up runs, on THREADS threads.
 * bench/bench_infer.py runs it beside PyTorch and ONNX Runtime on the same
 * model and input and prints the table (docs/guide.md, "Deploy").
 *
 *   bench_infer CHECKPOINT [--threads 2] [--batch 64] [--reps 20] [--warm 3]
 *               [--input X.bin] [--logits OUT.bin] [--json]
 *
 * --input: B images (B x in_ch x size x size float32, little-endian) instead of
 * seeded normal values; the batch-1 runs take its first image.  --logits: the
 * logits of the last batch-B run (B x classes float32), for the caller to hold
 * against the other runtimes'.  --json: one JSON object on stdout.  Exit
 * status 0, or 1 after saying why. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "dynopool.h"

static int usage(void)
{
    fprintf(stderr, "usage: bench_infer CHECKPOINT [--threads N] [--batch B] [--reps R] [--warm W] "
                    "[--input X.bin] [--logits OUT.bin] [--json]\n");
    return 2;
}

/* Median ms of reps runs of n images (after warm runs). */
static int time_runs(dp_infer *h, const float *x, int n, float *z, int reps, int warm, double *ms)
{
    double *t = malloc(sizeof *t * (size_t)reps);
    if (!t) return DP_ERR_NOMEM;
    int rc = DP_OK;
    for (int i = 0; !rc && i < warm; i++) rc = dp_infer_run(h, x, n, z);
    for (int i = 0; !rc && i < reps; i++) {
        const double t0 = now_ms();
        rc = dp_infer_run(h, x, n, z);
        t[i] = now_ms() - t0;
    }
    if (!rc) *ms = median_inplace(t, reps);
    free(t);
    return rc;
}

int main(int argc, char **argv)
{
    const char *ck = NULL, *in = NULL, *out = NULL;
    int threads = 2, batch = 64, reps = 20, warm = 3, json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--threads") && v) threads = atoi(v), i++;
        else if (!strcmp(a, "--batch") && v) batch = atoi(v), i++;
        else if (!strcmp(a, "--reps") && v) reps = atoi(v), i++;
        else if (!strcmp(a, "--warm") && v) warm = atoi(v), i++;
        else if (!strcmp(a, "--input") && v) in = v, i++;
        else if (!strcmp(a, "--logits") && v) out = v, i++;
        else if (a[0] != '-' && !ck) ck = a;
        else return usage();
    }
    if (!ck || threads < 1 || batch < 1 || reps < 1 || warm < 0) return usage();
    int rc = dp_set_threads(threads);
    char err[1024] = "";
    dp_infer *h = NULL;
    if (!rc) rc = dp_infer_load(ck, &h, err, sizeof err);
    if (rc) {
        fprintf(stderr, "bench_infer: %s\n", err[0] ? err : dp_strerror(rc));
        return 1;
    }
    dp_infer_info info;
    dp_infer_info_get(h, &info);
    const size_t img = (size_t)info.cfg.in_ch * info.cfg.size * info.cfg.size, k = (size_t)info.cfg.classes;
    float *x = malloc(sizeof *x * img * (size_t)batch), *z = malloc(sizeof *z * k * (size_t)batch);
    if (!x || !z) {
        fprintf(stderr, "bench_infer: %s\n", dp_strerror(DP_ERR_NOMEM));
        return 1;
    }
    if (in) {
        FILE *f = fopen(in, "rb");
        const size_t got = f ? fread(x, sizeof *x, img * (size_t)batch, f) : 0;
        if (f) fclose(f);
        if (got != img * (size_t)batch) {
            fprintf(stderr, "bench_infer: %s: expected %zu floats (%d images of %dx%dx%d)\n", in,
                    img * (size_t)batch, batch, info.cfg.in_ch, info.cfg.size, info.cfg.size);
            return 1;
        }
    } else {
        unsigned long long s = 1;
        for (size_t i = 0; i < img * (size_t)batch; i++) { /* uniform in [-1, 1): an image normalised */
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            x[i] = (float)((double)(s >> 11) * 0x1p-52 - 1.0);
        }
    }
    double ms1 = 0, msb = 0;
    rc = time_runs(h, x, 1, z, reps, warm, &ms1);
    if (!rc) rc = time_runs(h, x, batch, z, reps, warm, &msb);
    if (rc) {
        fprintf(stderr, "bench_infer: dp_infer_run: %s\n", dp_strerror(rc));
        return 1;
    }
    if (out) {
        FILE *f = fopen(out, "wb");
        const size_t put = f ? fwrite(z, sizeof *z, k * (size_t)batch, f) : 0;
        if (!f || fclose(f) || put != k * (size_t)batch) {
            fprintf(stderr, "bench_infer: %s: cannot write\n", out);
            return 1;
        }
    }
    if (json)
        printf("{\"impl\": \"dynopool\", \"model\": \"%s\", \"pool\": \"%s\", \"input\": [%d, %d, %d], "
               "\"classes\": %d, \"threads\": %d, \"reps\": %d, \"batch\": %d, \"batch1_ms\": %.6f, "
               "\"batch_ms\": %.6f, \"images_per_s\": %.3f, \"folded\": %d}\n",
               dp_arch_name(info.cfg.arch), dp_pool_name(info.cfg.pool), info.cfg.in_ch, info.cfg.size,
               info.cfg.size, info.cfg.classes, threads, reps, batch, ms1, msb, 1e3 * batch / msb, info.folded);
    else
        printf("%s (%s) %dx%dx%d, %d threads, median of %d: batch 1 %.3f ms, batch %d %.3f ms (%.1f images/s)\n",
               dp_arch_name(info.cfg.arch), dp_pool_name(info.cfg.pool), info.cfg.in_ch, info.cfg.size,
               info.cfg.size, threads, reps, ms1, batch, msb, 1e3 * batch / msb);
    free(x);
    free(z);
    dp_infer_free(h);
    return 0;
}
