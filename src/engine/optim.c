/* optim.c — SGD with (Nesterov) momentum and weight decay, PyTorch's rule:
 *     d = g + wd p;  b = m b + d  (b = d on the first step);  d = d + m b (Nesterov) or b;
 *     p = p - lr d
 * Two groups (docs/guide.md, "The training recipe"): weights, biases and BN
 * affine (lr, wd, momentum) and the alphas (lr_alpha, no decay, alpha_momentum).  DynOPool alphas are then
 * clamped to >= alpha_min (alpha 0.25 already enlarges a map 4x).  The learning
 * rates come with each step (the caller's schedule: dp_recipe_lr_factor). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/net.h"

int dp_sgd_init(dp_sgd *o, const dp_net *net)
{
    o->buf = calloc((size_t)(net->n_params ? net->n_params : 1), sizeof(float));
    o->started = 0;
    return o->buf ? DP_OK : DP_ERR_NOMEM;
}

void dp_sgd_free(dp_sgd *o)
{
    free(o->buf);
    o->buf = NULL;
}

void dp_sgd_step(dp_sgd *o, dp_net *net, float lr, float lr_alpha)
{
    const int first = !o->started;
    for (int v = 0; v < net->n_pv; v++) {
        const dp_pview *pv = &net->pv[v];
        const float m = pv->group ? o->alpha_momentum : o->momentum;
        const float rate = pv->group ? lr_alpha : lr, wd = pv->group ? 0.0f : o->weight_decay;
        float *p = net->params + pv->off, *g = net->grads + pv->off, *b = o->buf + pv->off;
        const long long n = pv->numel;
#pragma omp parallel for simd schedule(static) if (n > 65536)
        for (long long i = 0; i < n; i++) {
            float d = g[i] + wd * p[i];
            if (m != 0.0f) {
                b[i] = first ? d : m * b[i] + d;
                d = o->nesterov ? d + m * b[i] : b[i];
            }
            p[i] -= rate * d;
        }
        if (pv->positive) /* alpha <= 0 has no meaning; small alpha = a huge map */
            for (long long i = 0; i < n; i++)
                if (!(p[i] >= o->alpha_min)) p[i] = o->alpha_min;
    }
    o->started = 1;
}
