/* model.h — the dp_model behind the public API (model.c); store/checkpoint.c
 * reads and fills it. */
#ifndef DP_MODEL_H
#define DP_MODEL_H

#include "engine/net.h"

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
};

/* The metadata of the last loaded checkpoint (dp_model_meta reads it): cleared,
 * and one pair appended (copied; DP_ERR_NOMEM). */
void dp_model_meta_clear(dp_model *m);
int dp_model_meta_add(dp_model *m, const char *key, const char *val);

#endif
