/* softmax_ce.c — softmax cross-entropy, mean over the batch.
 *
 *   logits (n, k), labels (n) in [0, k)
 *   loss    = (1/n) sum_i [ logsumexp(logits_i) - logits_i[label_i] ]
 *   dlogits = (softmax(logits_i) - onehot(label_i)) / n
 * (dp_softmax_ce_part: / denom, a data-parallel shard's part of the global mean)
 * No parameters, no MACs.  Computed in double. */
#include <math.h>

#include "engine/engine.h"

int dp_softmax_ce(const float *logits, const int *labels, int n, int k, double *loss,
                  float *dlogits)
{
    return dp_softmax_ce_part(logits, labels, n, k, n, loss, dlogits);
}

int dp_softmax_ce_part(const float *logits, const int *labels, int n, int k, double denom,
                       double *loss, float *dlogits)
{
    if (!logits || !labels || !loss) return DP_ERR_NULL;
    if (n <= 0 || k <= 0 || !(denom > 0)) return DP_ERR_SIZE;
    for (int i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= k) return DP_ERR_ARG;
    double total = 0.0;
    for (int i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * k;
        double m = z[0];
        for (int j = 1; j < k; j++) m = z[j] > m ? z[j] : m;
        double s = 0.0;
        for (int j = 0; j < k; j++) s += exp(z[j] - m);
        const double lse = m + log(s);
        total += lse - z[labels[i]];
        if (dlogits)
            for (int j = 0; j < k; j++)
                dlogits[(size_t)i * k + j] = (float)((exp(z[j] - lse) - (j == labels[i])) / denom);
    }
    *loss = total / denom;
    return DP_OK;
}
