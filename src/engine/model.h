/* model.h — the dp_model behind the public API (model.c, checkpoint.c). */
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

void dp_model_meta_clear(dp_model *m);

#endif
