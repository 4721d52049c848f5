/* evaluate.c — opening splits, evaluating a model, checking images (evaluate.h). */
#include "evaluate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int cli_open_split(const char *dir, int kind, int train, int classes, int input, dp_dataset **ds)
{
    char err[1024] = "";
    const int rc = dp_dataset_open(dir, kind, train, classes, input, ds, err, sizeof err);
    if (rc) {
        cli_fail("%s%s%s", err[0] ? "" : dir, err[0] ? "" : ": ", err[0] ? err : dp_strerror(rc));
        if (!strcmp(dir, CLI_FASHION_MNIST) && rc == DP_ERR_IO)
            cli_fail("the default data come from Debian's package: apt-get install dataset-fashion-mnist (or "
                     "tools/deps.sh)");
    }
    return rc;
}

/* A loader of t's images idx[0..n) (idx NULL: the first n) of ds, in batches,
 * started; *order: its index list, to free with it.  0 or a DP_ERR_* code. */
static int start_loader(const dp_dataset *ds, const dp_transform *t, const int *idx, int n, int batch,
                        int workers, dp_loader **ld, int **order)
{
    *ld = NULL;
    *order = malloc(sizeof(int) * (size_t)n);
    int rc = *order ? DP_OK : DP_ERR_NOMEM;
    for (int i = 0; !rc && i < n; i++) (*order)[i] = idx ? idx[i] : i;
    if (!rc) rc = dp_loader_create(ds, t, batch, workers, ld);
    if (!rc) rc = dp_loader_start(*ld, *order, n, 0, 0);
    return rc;
}

int cli_evaluate(dp_model *m, const dp_dataset *ds, const char *data, const dp_transform *t,
                 const int *idx, int n, int batch, int workers, double *loss, double *acc)
{
    const int k = dp_model_config_of(m)->classes;
    float *logits = malloc(sizeof(float) * (size_t)batch * k);
    dp_loader *ld = NULL;
    int *order = NULL;
    char err[1024] = "";
    int rc = logits ? DP_OK : DP_ERR_NOMEM;
    if (!rc) rc = start_loader(ds, t, idx, n, batch, workers, &ld, &order);
    double lsum = 0.0;
    long long hits = 0;
    const float *x;
    const int *lab;
    int nb;
    while (!rc && (rc = dp_loader_next(ld, &x, &lab, &nb, NULL, err, sizeof err)) == DP_OK) {
        if ((rc = dp_model_predict(m, x, nb, logits))) break;
        for (int i = 0; i < nb; i++) {
            const float *z = logits + (size_t)i * k;
            int best = 0;
            double mx = z[0], se = 0.0;
            for (int j = 1; j < k; j++) {
                if (z[j] > z[best]) best = j;
                if (z[j] > mx) mx = z[j];
            }
            for (int j = 0; j < k; j++) se += exp(z[j] - mx);
            lsum += log(se) + mx - z[lab[i]];
            hits += best == lab[i];
        }
    }
    if (rc == 1) rc = DP_OK;
    if (rc)
        cli_fail("evaluation on %s (%d images, batch %d) failed: %s", data, n, batch, err[0] ? err : dp_strerror(rc));
    *loss = lsum / n;
    *acc = 100.0 * hits / n;
    dp_loader_free(ld);
    free(order);
    free(logits);
    return rc;
}

int cli_check_images(const dp_dataset *ds, const dp_transform *t, const int *idx, int n, int workers)
{
    dp_dataset_info di;
    dp_dataset_info_get(ds, &di);
    if (di.kind != DP_DATA_FOLDER || n <= 0) return DP_OK;
    dp_loader *ld;
    int *order;
    char err[1024] = "";
    int rc = start_loader(ds, t, idx, n, 16, workers, &ld, &order);
    const float *x;
    const int *lab;
    int nb;
    while (!rc && (rc = dp_loader_next(ld, &x, &lab, &nb, NULL, err, sizeof err)) == DP_OK) continue;
    if (rc == 1) rc = DP_OK;
    if (rc) cli_fail("%s", err[0] ? err : dp_strerror(rc));
    dp_loader_free(ld);
    free(order);
    return rc;
}
