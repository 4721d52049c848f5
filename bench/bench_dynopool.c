/* bench_dynopool — times the C operator: forward, backward and both, on one
 * shape, after a warm-up; prints one JSON object with median milliseconds.
 * Run by bench/bench_dynopool.py, which times PyTorch in the same run.
 *
 *   bench_dynopool N C H W ALPHA_H ALPHA_W [REPS]   (threads: OMP_NUM_THREADS) */
#include "bench_util.h"
#include "dynopool.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>


int main(int argc, char **argv)
{
    if (argc < 7) {
        fprintf(stderr, "usage: %s N C H W ALPHA_H ALPHA_W [REPS]\n", argv[0]);
        return 2;
    }
    int n = atoi(argv[1]), c = atoi(argv[2]), h = atoi(argv[3]), w = atoi(argv[4]);
    float ah = strtof(argv[5], NULL), aw = strtof(argv[6], NULL);
    int reps = argc > 7 ? atoi(argv[7]) : 20;
    int ho = dp_dynopool_size(h, ah), wo = dp_dynopool_size(w, aw);
    if (n <= 0 || c <= 0 || ho < 0 || wo < 0 || reps < 1 || reps > 10000) {
        fprintf(stderr, "bench_dynopool: bad arguments\n");
        return 2;
    }
    size_t in = (size_t)n * c * h * w, out = (size_t)n * c * ho * wo;
    float *x = malloc(in * sizeof(float)), *dx = malloc(in * sizeof(float));
    float *y = malloc(out * sizeof(float)), *dy = malloc(out * sizeof(float));
    double *tf = malloc(sizeof(double) * reps), *tb = malloc(sizeof(double) * reps);
    double *tt = malloc(sizeof(double) * reps);
    if (!x || !dx || !y || !dy || !tf || !tb || !tt) return 1;
    unsigned s = 1;
    for (size_t i = 0; i < in; i++) x[i] = (float)((s = s * 1103515245u + 12345u) >> 8) / 16777216.0f;
    for (size_t i = 0; i < out; i++) dy[i] = (float)((s = s * 1103515245u + 12345u) >> 8) / 16777216.0f - 0.5f;
    float da[2];
    for (int k = 0; k < 3; k++) { /* warm-up: page in, spin up the thread pool */
        dp_dynopool_forward(x, n, c, h, w, ah, aw, y);
        dp_dynopool_backward(x, dy, n, c, h, w, ah, aw, dx, da);
    }
    for (int k = 0; k < reps; k++) {
        double t0 = now_ms();
        int rc = dp_dynopool_forward(x, n, c, h, w, ah, aw, y);
        double t1 = now_ms();
        rc |= dp_dynopool_backward(x, dy, n, c, h, w, ah, aw, dx, da);
        double t2 = now_ms();
        if (rc) {
            fprintf(stderr, "bench_dynopool: %s\n", dp_strerror(rc));
            return 1;
        }
        tf[k] = t1 - t0;
        tb[k] = t2 - t1;
        tt[k] = t2 - t0;
    }
    printf("{\"n\": %d, \"c\": %d, \"h\": %d, \"w\": %d, \"alpha\": [%g, %g], \"out\": [%d, %d], "
           "\"threads\": %d, \"reps\": %d, \"forward_ms\": %.4f, \"backward_ms\": %.4f, "
           "\"total_ms\": %.4f}\n",
           n, c, h, w, ah, aw, ho, wo, omp_get_max_threads(), reps, median_inplace(tf, reps),
           median_inplace(tb, reps), median_inplace(tt, reps));
    free(x), free(dx), free(y), free(dy), free(tf), free(tb), free(tt);
    return 0;
}
