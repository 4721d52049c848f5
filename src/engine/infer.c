/* infer.c — a trained network frozen for inference (dynopool/infer.h).
 *
 * A frozen model is the model's graph with its parameters and BN statistics
 * and nothing else: no gradients, no gradient pool, no momentum buffers, no
 * backward primitives (dp_net_alloc_frozen, net->frozen).  Its alphas never
 * change, so the sizes the checkpoint implies are fixed; each batch norm is
 * folded into the convolution before it (the op's own fold, batchnorm.c), and
 * the ReLU that followed the batch norm runs after the convolution.  The
 * checkpoint reader (dp_infer_load) lives with the other readers in
 * src/store/checkpoint.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model.h"

struct dp_infer {
    dp_model *m;        /* frozen (m->frozen), folded */
    dp_infer_info info; /* without the memory figures, which dp_infer_info_get adds */
};

int dp_infer_adopt(dp_model *m, dp_infer **out)
{
    if (!m || !out) {
        dp_model_free(m);
        return DP_ERR_NULL;
    }
    *out = NULL;
    dp_infer *h = calloc(1, sizeof *h);
    if (!h) {
        dp_model_free(m);
        return DP_ERR_NOMEM;
    }
    h->m = m;
    h->info.cfg = m->cfg;
    /* the info of the network as trained; it also infers every node's shape,
     * which the folds read (a convolution's input channels) */
    int rc = dp_model_info_get(m, &h->info.model);
    if (!rc && (rc = dp_net_fold(&m->net)) >= 0) h->info.folded = rc, rc = DP_OK;
    if (rc) {
        dp_infer_free(h);
        return rc;
    }
    *out = h;
    return DP_OK;
}

int dp_infer_freeze(const dp_model *src, dp_infer **out)
{
    if (!src || !out) return DP_ERR_NULL;
    *out = NULL;
    dp_model *m;
    int rc = dp_model_create_frozen(&src->cfg, &m);
    if (rc) return rc;
    const dp_net *a = &src->net;
    dp_net *b = &m->net;
    if (a->n_params != b->n_params || a->n_stats != b->n_stats || a->n_nodes != b->n_nodes) {
        dp_model_free(m); /* the same configuration builds the same layout: never here */
        return DP_ERR_ARG;
    }
    memcpy(b->params, a->params, sizeof(float) * (size_t)a->n_params);
    memcpy(b->stats, a->stats, sizeof(float) * (size_t)a->n_stats);
    for (int i = 0; i < a->n_nodes; i++) b->nodes[i].nbt = a->nodes[i].nbt;
    m->steps = src->steps;
    for (int i = 0; !rc && i < src->n_meta; i++) rc = dp_model_meta_add(m, src->meta_k[i], src->meta_v[i]);
    if (rc) {
        dp_model_free(m);
        return rc;
    }
    return dp_infer_adopt(m, out);
}

void dp_infer_free(dp_infer *h)
{
    if (!h) return;
    dp_model_free(h->m);
    free(h);
}

/* The fused activations (dnn.h) map NaN to 0 where PyTorch passes it on, so a
 * non-finite input is refused rather than given finite logits. */
int dp_infer_run(dp_infer *h, const float *x, int n, float *logits)
{
    if (!h || !x || !logits) return DP_ERR_NULL;
    if (n <= 0) return DP_ERR_SIZE;
    const size_t len = (size_t)n * (size_t)h->m->cfg.in_ch * (size_t)h->m->cfg.size * (size_t)h->m->cfg.size;
    int bad = 0;
    for (size_t i = 0; i < len; i++) bad |= !isfinite(x[i]);
    if (bad) return DP_ERR_NONFINITE;
    return dp_model_predict(h->m, x, n, logits);
}

int dp_infer_info_get(const dp_infer *h, dp_infer_info *info)
{
    if (!h || !info) return DP_ERR_NULL;
    *info = h->info;
    dp_net_mem mem;
    dp_model_memory(h->m, &mem);
    info->weight_bytes = mem.weights;
    info->act_bytes = mem.acts;
    info->work_bytes = mem.work;
    info->grad_bytes = mem.grads;
    return DP_OK;
}

const dp_model *dp_infer_model(const dp_infer *h)
{
    return h ? h->m : NULL;
}

const char *dp_infer_meta(const dp_infer *h, const char *key)
{
    return h ? dp_model_meta(h->m, key) : NULL;
}

int dp_infer_set_precision(dp_infer *h, int precision)
{
    if (!h) return DP_ERR_NULL;
    const int rc = dp_model_set_precision(h->m, precision);
    if (!rc) h->info.cfg.precision = h->m->cfg.precision;
    return rc;
}
