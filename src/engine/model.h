/* model.h — the dp_model behind the public API (model.c); store/checkpoint.c
 * reads and fills it. */
#ifndef DP_MODEL_H
#define DP_MODEL_H

#include "engine/net.h"
#include "dynopool/infer.h"

struct dp_model {
    dp_model_config cfg;
    dp_net net;
    dp_sgd sgd;           /* buf == NULL until the first step or a loaded state */
    long long steps;
    float *dlogits;
    size_t dlogits_cap;
    float *stats_before;  /* BN running statistics before the step (restored if it diverges) */
    char **meta_k, **meta_v; /* metadata of the last loaded checkpoint */
    int n_meta;
    int frozen;           /* dp_model_create_frozen: for dp_infer only (no gradients; a
                             checkpoint's momentum buffers are not read) */
};

/* A model of cfg for inference: the graph, its parameters and BN statistics
 * (zeroed, to be loaded), no gradients; it cannot train. */
/* The network's build settings from a model's configuration. */
static inline dp_arch_cfg dp_arch_cfg_of(const dp_model_config *c)
{
    return (dp_arch_cfg){c->arch, c->pool, c->in_ch, c->size, c->classes, c->width, c->seed, c->no_drop};
}
int dp_model_create_frozen(const dp_model_config *cfg, dp_model **out);
/* Bytes the model holds (the net's, dp_net_memory; momentum buffers count as gradients). */
void dp_model_memory(const dp_model *m, dp_net_mem *mem);
/* Wraps the frozen model m (taken over, freed on failure too) as an inference
 * handle: shapes fixed for its input size, batch norms folded. */
int dp_infer_adopt(dp_model *m, dp_infer **out);
/* The frozen, folded model behind an inference handle (the ONNX exporter,
 * src/deploy/onnx.c, walks its graph); NULL for NULL. */
const dp_model *dp_infer_model(const dp_infer *h);

/* The metadata of the last loaded checkpoint (dp_model_meta reads it): cleared,
 * and one pair appended (copied; DP_ERR_NOMEM). */
void dp_model_meta_clear(dp_model *m);
int dp_model_meta_add(dp_model *m, const char *key, const char *val);

#endif
