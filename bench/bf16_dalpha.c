/* bf16_dalpha.c — how far bf16 moves the alphas' gradient on a trained network
 * (docs/engine.md, "Mixed precision").
 *
 *   bf16_dalpha CHECKPOINT DATA_DIR [BATCHES [BATCH]]
 *
 * Loads the checkpoint twice, one copy in float32 and one in bf16, and runs the
 * same training batches (the training split's test view: no augmentation) through
 * both, with learning rates 0 so neither changes.  For every DynOPool alpha it
 * prints, over the batches, the float32 dL_task/dalpha (mean and standard
 * deviation: the minibatch noise SGD already lives with), the mean and largest
 * |bf16 - float32|, and their ratio to that standard deviation.  DynOPool itself
 * runs in float32 in both (it reads float32 maps); what differs is everything
 * the bf16 convolutions feed it.  Public API only. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "dynopool.h"

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s CHECKPOINT DATA_DIR [BATCHES [BATCH]]\n", argv[0]);
        return 2;
    }
    const int nb = argc > 3 ? atoi(argv[3]) : 20, bs = argc > 4 ? atoi(argv[4]) : 128;
    char err[1024] = "";
    dp_model_config cfg;
    dp_model *m[2] = {NULL, NULL};
    dp_dataset *ds = NULL;
    int rc = dp_checkpoint_config(argv[1], &cfg, err, sizeof err);
    for (int p = 0; !rc && p < 2; p++) {
        cfg.precision = p ? DP_PRECISION_BF16 : DP_PRECISION_FP32;
        if (!(rc = dp_model_create(&cfg, &m[p]))) rc = dp_model_load(m[p], argv[1], err, sizeof err);
    }
    if (!rc) rc = dp_dataset_open(argv[2], DP_DATA_AUTO, 1, cfg.classes, 0, &ds, err, sizeof err);
    dp_transform t;
    if (!rc) {
        t = dp_transform_defaults(ds, 0, DP_VARIANT_NONE);
        rc = dp_dataset_stats(ds, t.mean, t.std, err, sizeof err);
    }
    if (rc) {
        fprintf(stderr, "bf16_dalpha: %s\n", err[0] ? err : dp_strerror(rc));
        return 1;
    }
    dp_dataset_info di;
    dp_dataset_info_get(ds, &di);
    const int s = dp_transform_size(&t, di.size);
    float *x = malloc(sizeof(float) * (size_t)bs * di.channels * s * s);
    int *labels = malloc(sizeof(int) * bs), *idx = malloc(sizeof(int) * bs);
    dp_train_config tc = dp_train_defaults(cfg.arch); /* lambda 0: dL_task/dalpha alone */
    enum { MAXA = DP_MAX_STAGES * 2 };
    static double g[2][4096][MAXA];
    int na = 0;
    double loss[2] = {0, 0};
    const int nbat = nb < 4096 ? nb : 4096;
    for (int b = 0; b < nbat; b++) {
        for (int i = 0; i < bs; i++) idx[i] = (int)(((long long)b * bs + i) * 7919 % di.n); /* spread */
        if ((rc = dp_dataset_batch(ds, &t, idx, bs, 1, 0, x, labels, err, sizeof err))) break;
        for (int p = 0; p < 2; p++) {
            dp_step_stats st;
            if ((rc = dp_model_train_step(m[p], x, labels, bs, &tc, 0.0f, 0.0f, &st))) break;
            na = st.n_galpha * 2;
            loss[p] += st.loss_task / nbat;
            for (int a = 0; a < st.n_galpha; a++)
                for (int j = 0; j < 2; j++) g[p][b][2 * a + j] = st.galpha_task[a][j];
        }
        if (rc) break;
    }
    if (rc) {
        fprintf(stderr, "bf16_dalpha: %s\n", err[0] ? err : dp_strerror(rc));
        return 1;
    }
    dp_model_info info;
    dp_model_info_get(m[0], &info);
    printf("%s (%s) x%g, %d batches of %d, mean task loss fp32 %.6f bf16 %.6f\n", dp_arch_name(cfg.arch),
           dp_pool_name(cfg.pool), (double)cfg.width, nbat, bs, loss[0], loss[1]);
    printf("%-10s %8s %12s %12s %12s %12s %10s %10s\n", "alpha", "value", "fp32 mean", "fp32 std", "mean|diff|",
           "max|diff|", "mean/std", "max/std");
    for (int k = 0; k < na; k++) {
        double mu = 0, sd = 0, md = 0, mx = 0;
        for (int b = 0; b < nbat; b++) mu += g[0][b][k] / nbat;
        for (int b = 0; b < nbat; b++) {
            const double d = fabs(g[1][b][k] - g[0][b][k]);
            sd += (g[0][b][k] - mu) * (g[0][b][k] - mu) / (nbat > 1 ? nbat - 1 : 1);
            md += d / nbat;
            mx = d > mx ? d : mx;
        }
        sd = sqrt(sd);
        printf("%d.%c        %8.4f %12.5g %12.5g %12.5g %12.5g %10.3f %10.3f\n", k / 2, k % 2 ? 'w' : 'h',
               (double)info.alphas[k / 2][k % 2], mu, sd, md, mx, sd > 0 ? md / sd : 0, sd > 0 ? mx / sd : 0);
    }
    free(x), free(labels), free(idx);
    dp_dataset_free(ds);
    dp_model_free(m[0]), dp_model_free(m[1]);
    return 0;
}
