/* bench_allreduce.c — MPI_Allreduce (float sum, in place) of the gradient sizes
 * of the paper's networks, as `dynopool train` sums them (docs/distributed.md,
 * "Scale"): the parameters of VGG-16, ResNet-50, MobileNetV2 and EfficientNet-B0
 * for ImageNet (224 px, 1000 classes; dp_model_info_of_config, no weights
 * allocated), in buckets of --bucket-mb (default 16) and as one buffer.
 *
 *   mpirun -np N bench_allreduce [--reps K] [--bucket-mb X] [--scale F] [--json FILE]
 *
 * Prints per model the median over K repetitions (default 10, after 2 warm-up
 * ones) of the time of rank 0, and the "bus bandwidth" 2 (N - 1) / N * bytes / time
 * (what a ring allreduce moves per rank), and the time of a one-float sum (the
 * latency), which docs/distributed.md's model takes as its inputs.  --scale F (0 < F <= 1) sums F times each size: a smoke test. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dynopool.h"

static int cmp_d(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median time of reps allreduces of n floats in buckets of `bucket` floats (0: one). */
static double time_sum(float *buf, long long n, long long bucket, int reps)
{
    double *t = malloc(sizeof(double) * (size_t)reps);
    for (int r = -2; r < reps; r++) {
        MPI_Barrier(MPI_COMM_WORLD);
        const double t0 = MPI_Wtime();
        for (long long o = 0; o < n;) {
            const long long k = bucket && n - o > bucket ? bucket : n - o;
            MPI_Allreduce(MPI_IN_PLACE, buf + o, (int)k, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            o += k;
        }
        double dt = MPI_Wtime() - t0;
        MPI_Allreduce(MPI_IN_PLACE, &dt, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD); /* the slowest rank */
        if (r >= 0) t[r] = dt;
    }
    qsort(t, (size_t)reps, sizeof(double), cmp_d);
    const double med = t[reps / 2];
    free(t);
    return med;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size, reps = 10;
    double bucket_mb = 16, scale = 1;
    const char *json = NULL;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--bucket-mb") && i + 1 < argc) bucket_mb = atof(argv[++i]);
        else if (!strcmp(argv[i], "--scale") && i + 1 < argc) scale = atof(argv[++i]);
        else if (!strcmp(argv[i], "--json") && i + 1 < argc) json = argv[++i];
        else {
            if (!rank) fprintf(stderr, "usage: mpirun -np N %s [--reps K] [--bucket-mb X] [--scale F] [--json FILE]\n", argv[0]);
            MPI_Finalize();
            return 2;
        }
    }
    if (reps < 1 || !(bucket_mb > 0) || !(scale > 0 && scale <= 1)) {
        if (!rank) fprintf(stderr, "bench_allreduce: --reps >= 1, --bucket-mb > 0, 0 < --scale <= 1\n");
        MPI_Finalize();
        return 2;
    }
    static const int arch[4] = {DP_VGG16, DP_RESNET50, DP_MOBILENETV2, DP_EFFICIENTNET_B0};
    FILE *out = NULL;
    if (!rank && json && !(out = fopen(json, "w"))) {
        fprintf(stderr, "bench_allreduce: cannot write %s\n", json);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    if (out) fprintf(out, "{\"ranks\": %d, \"bucket_mb\": %g, \"reps\": %d, \"scale\": %g, \"models\": [", size, bucket_mb, reps, scale);
    if (!rank)
        printf("%d ranks, buckets of %g MB, median of %d\n%-16s %12s %12s %10s %12s %10s\n", size, bucket_mb, reps, "model",
               "params", "bucketed ms", "bus GB/s", "one-buffer ms", "bus GB/s");
    for (int k = 0; k < 4; k++) {
        dp_model_config cfg = dp_model_defaults();
        cfg.arch = arch[k], cfg.size = 224, cfg.classes = 1000;
        dp_model_info info;
        if (dp_model_info_of_config(&cfg, &info)) MPI_Abort(MPI_COMM_WORLD, 1);
        const long long n = (long long)(info.params * scale);
        float *buf = malloc(sizeof(float) * (size_t)n);
        if (!buf) MPI_Abort(MPI_COMM_WORLD, 1);
        for (long long i = 0; i < n; i++) buf[i] = 1e-6f * (float)(i % 1000);
        const long long bucket = (long long)(bucket_mb * (1 << 20) / sizeof(float));
        const double tb = time_sum(buf, n, bucket, reps), t1 = time_sum(buf, n, 0, reps);
        const double bytes = 4.0 * n * 2.0 * (size - 1) / size;
        if (!rank) {
            printf("%-16s %12lld %12.3f %10.2f %12.3f %10.2f\n", dp_arch_name(arch[k]), n, 1e3 * tb, bytes / tb * 1e-9,
                   1e3 * t1, bytes / t1 * 1e-9);
            if (out)
                fprintf(out, "%s{\"model\": \"%s\", \"params\": %lld, \"bucketed_s\": %.6g, \"one_buffer_s\": %.6g}",
                        k ? ", " : "", dp_arch_name(arch[k]), n, tb, t1);
        }
        free(buf);
    }
    float one = 1.0f; /* a latency-bound sum: one float */
    const double lat = time_sum(&one, 1, 0, reps > 100 ? reps : 100);
    if (!rank) printf("one float: %.2f us (latency; at 2 ranks one exchange)\n", 1e6 * lat);
    if (out) fprintf(out, "], \"one_float_s\": %.6g}\n", lat), fclose(out);
    MPI_Finalize();
    return 0;
}
