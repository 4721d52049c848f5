/* model.c — the public model API of dynopool.h over the engine (net.c). */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/dnn.h"
#include "engine/model.h"

dp_model_config dp_model_defaults(void)
{
    return (dp_model_config){.arch = DP_VGG16, .pool = DP_POOL_HUMAN, .in_ch = 3, .size = 32,
                             .classes = 100, .width = 1.0f, .seed = 1, .reference = 0};
}

dp_train_config dp_train_defaults(int arch)
{
    const int small = arch >= DP_MOBILENETV2 && arch != DP_HRNET; /* 4e-5: MobileNetV2, EfficientNet */
    return (dp_train_config){.momentum = 0.9f, .weight_decay = small ? 4e-5f : 5e-4f,
                             .nesterov = 1, .alpha_momentum = -1.0f, .lambda = 0.0f, .alpha_min = 0.25f, .max_side = 0};
}

double dp_recipe_alpha_lr(double lr) { return lr / 10; }

double dp_recipe_lr_factor(int epoch, int epochs)
{
    if (epochs <= 0) return 1.0;
    return 0.5 * (1.0 + cos(3.14159265358979323846 * epoch / epochs));
}

dp_recipe dp_recipe_defaults(int arch, int pool, int fine_grained)
{
    const double lr = fine_grained ? 0.01 : 0.1;
    return (dp_recipe){.epochs = pool == DP_POOL_HUMAN ? 200 : 250, .batch = 128, .lr = lr,
                       .alpha_lr = dp_recipe_alpha_lr(lr), .step = dp_train_defaults(arch)};
}

int dp_bf16_support(void) { return dnn_bf16_support(); }

int dp_precision_resolve(int precision)
{
    if (precision == DP_PRECISION_AUTO)
        return dp_bf16_support() == DP_BF16_NATIVE ? DP_PRECISION_BF16 : DP_PRECISION_FP32;
    return precision == DP_PRECISION_FP32 || precision == DP_PRECISION_BF16 ? precision : DP_ERR_ARG;
}

static const char *const precision_names[] = {"fp32", "bf16", "auto"};

int dp_precision_parse(const char *name)
{
    for (int i = 0; name && i < 3; i++)
        if (strcmp(name, precision_names[i]) == 0) return i;
    return DP_ERR_ARG;
}

const char *dp_precision_name(int p) { return p >= 0 && p < 3 ? precision_names[p] : "?"; }

int dp_model_set_precision(dp_model *m, int precision)
{
    if (!m) return DP_ERR_NULL;
    const int p = dp_precision_resolve(precision);
    if (p < 0) return p;
    if (p == DP_PRECISION_BF16) {
        if (m->net.backend != DP_BACKEND_DNNL) return DP_ERR_ARG;
        if (dp_bf16_support() == DP_BF16_NONE) return DP_ERR_BACKEND;
    }
    /* each node's oneDNN state is keyed by it (dnn.c): the next call rebuilds */
    m->net.bf16 = p == DP_PRECISION_BF16;
    m->cfg.precision = p;
    return DP_OK;
}

static const char *const arch_names[DP_ARCH_COUNT] = {"vgg16", "resnet50", "mobilenetv2",
                                                      "efficientnet-b0", "efficientnet-b1", "hrnet-w48"};
static const char *const pool_names[] = {"human", "dynopool", "shape-adaptor"};

int dp_arch_parse(const char *name)
{
    for (int i = 0; name && i < DP_ARCH_COUNT; i++)
        if (strcmp(name, arch_names[i]) == 0) return i;
    return DP_ERR_ARG;
}

int dp_pool_parse(const char *name)
{
    for (int i = 0; name && i < 3; i++)
        if (strcmp(name, pool_names[i]) == 0) return i;
    return DP_ERR_ARG;
}

int dp_arch_is_seg(int arch) { return arch == DP_HRNET; }

const char *dp_arch_name(int arch) { return arch >= 0 && arch < DP_ARCH_COUNT ? arch_names[arch] : "?"; }
const char *dp_pool_name(int pool) { return pool >= 0 && pool < 3 ? pool_names[pool] : "?"; }

/* A model for cfg: a training one (every buffer) or a frozen one (dp_infer: the
 * weights and statistics, no gradients). */
static int model_new(const dp_model_config *cfg, int frozen, dp_model **out)
{
    if (!cfg || !out) return DP_ERR_NULL;
    *out = NULL;
    if (dp_arch_name(cfg->arch)[0] == '?' || dp_pool_name(cfg->pool)[0] == '?')
        return DP_ERR_ARG;
    dp_model *m = calloc(1, sizeof(*m));
    if (!m) return DP_ERR_NOMEM;
    m->cfg = *cfg;
    m->frozen = frozen;
    const dp_arch_cfg ac = dp_arch_cfg_of(cfg);
    int rc = dp_net_init(&m->net, cfg->reference ? DP_BACKEND_REF : DP_BACKEND_DNNL);
    if (!rc) rc = frozen ? dp_build_layout(&m->net, &ac) : dp_build(&m->net, &ac);
    if (!rc && frozen) rc = dp_net_alloc_frozen(&m->net);
    if (!rc) rc = dp_model_set_precision(m, cfg->precision);
    if (rc) {
        dp_model_free(m);
        return rc;
    }
    *out = m;
    return DP_OK;
}

int dp_model_create(const dp_model_config *cfg, dp_model **out) { return model_new(cfg, 0, out); }

int dp_model_create_frozen(const dp_model_config *cfg, dp_model **out) { return model_new(cfg, 1, out); }

void dp_model_memory(const dp_model *m, dp_net_mem *mem)
{
    dp_net_memory(&m->net, mem);
    if (m->sgd.buf) mem->grads += sizeof(float) * (size_t)m->net.n_params;
    mem->work += sizeof(float) * m->dlogits_cap + (m->stats_before ? sizeof(float) * (size_t)m->net.n_stats : 0);
}

void dp_model_free(dp_model *m)
{
    if (!m) return;
    dp_net_free(&m->net);
    dp_sgd_free(&m->sgd);
    free(m->dlogits);
    free(m->stats_before);
    dp_model_meta_clear(m);
    free(m);
}

const dp_model_config *dp_model_config_of(const dp_model *m) { return m ? &m->cfg : NULL; }

static int count_correct(const float *logits, const int *labels, int n, int k)
{
    int hits = 0;
    for (int i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * k;
        int best = 0;
        for (int j = 1; j < k; j++)
            if (z[j] > z[best]) best = j;
        hits += best == labels[i];
    }
    return hits;
}

/* Segmentation: the pixels whose highest score is their (not ignored) label, in
 * the net's output after a forward. */
static int count_correct_pixels(dp_model *m, const int *labels, int *hits)
{
    const dp_act *y = &m->net.nodes[m->net.out].y;
    const size_t np = (size_t)y->n * y->h * y->w;
    int *pred = malloc(sizeof(int) * np);
    if (!pred) return DP_ERR_NOMEM;
    int rc = dp_seg_argmax(y, pred);
    long long c = 0;
    for (size_t i = 0; !rc && i < np; i++) c += labels[i] != DP_SEG_IGNORE && pred[i] == labels[i];
    free(pred);
    *hits = c > INT_MAX ? INT_MAX : (int)c;
    return rc;
}

/* The alphas' values and gradients into st (dp_step_stats): after the task's
 * backward pass (cost 0), then after the complexity loss added its term (cost 1:
 * that term is the total less the task's part). */
static void alpha_grads(const dp_net *net, dp_step_stats *st, int cost)
{
    int k = 0;
    for (int v = 0; v < net->n_pv && k < DP_MAX_STAGES; v++) {
        const dp_pview *pv = &net->pv[v];
        if (!pv->group) continue;
        for (int j = 0; j < 2; j++) {
            const long long e = pv->numel > 1 ? j : 0;
            const double g = net->grads[pv->off + e];
            if (cost) {
                st->galpha_cost[k][j] = g - st->galpha_task[k][j];
            } else {
                st->galpha_task[k][j] = g;
                st->alpha[k][j] = net->params[pv->off + e];
            }
        }
        k++;
    }
    st->n_galpha = k;
}

int dp_model_train_step(dp_model *m, const float *x, const int *labels, int n,
                        const dp_train_config *tc, float lr, float lr_alpha, dp_step_stats *st)
{
    if (!m || !x || !labels || !tc) return DP_ERR_NULL;
    if (n <= 0) return DP_ERR_SIZE;
    if (m->frozen) return DP_ERR_ARG; /* no gradients to train with */
    const int k = m->cfg.classes, seg = dp_arch_is_seg(m->cfg.arch);
    if (seg) { /* one label per pixel */
        const size_t np = (size_t)n * m->cfg.size * m->cfg.size;
        for (size_t i = 0; i < np; i++)
            if ((labels[i] < 0 || labels[i] >= k) && labels[i] != DP_SEG_IGNORE) return DP_ERR_ARG;
    } else {
        for (int i = 0; i < n; i++)
            if (labels[i] < 0 || labels[i] >= k) return DP_ERR_ARG;
    }
    dp_net *net = &m->net;
    if (!m->sgd.buf) {
        int rc = dp_sgd_init(&m->sgd, net);
        if (rc) return rc;
    }
    m->sgd.momentum = tc->momentum;
    m->sgd.alpha_momentum = tc->alpha_momentum < 0.0f ? tc->momentum : tc->alpha_momentum;
    m->sgd.weight_decay = tc->weight_decay;
    m->sgd.nesterov = tc->nesterov;
    if (!(tc->alpha_min > 0.0f)) return DP_ERR_ALPHA;
    m->sgd.alpha_min = tc->alpha_min;
    if (net->n_stats && !m->stats_before && !(m->stats_before = malloc(sizeof(float) * net->n_stats)))
        return DP_ERR_NOMEM;
    if (net->n_stats) memcpy(m->stats_before, net->stats, sizeof(float) * net->n_stats);
    /* dropout and stochastic depth draw from (seed, step, node): a resumed run
     * (same seed, the checkpoint's step count) repeats the first run's masks */
    net->seed = m->cfg.seed ^ 0xd809a7c0ULL, net->step = m->steps;
    double n_all = n; /* the global batch: the loss is its mean (docs/distributed.md) */
    int rc = dp_dist_sum(net, &n_all, 1, DP_COMM_F64);
    if (rc) return rc;
    rc = dp_net_forward(net, x, n, m->cfg.in_ch, m->cfg.size, m->cfg.size, 1, NULL);
    if (rc) return rc;
    const size_t nd = seg ? dp_act_numel(&net->nodes[net->out].y) : (size_t)n * k;
    if (nd > m->dlogits_cap) {
        float *q = realloc(m->dlogits, sizeof(float) * nd);
        if (!q) return DP_ERR_NOMEM;
        m->dlogits = q;
        m->dlogits_cap = nd;
    }
    const float *logits = net->nodes[net->out].y.data;
    dp_step_stats s = {0};
    if (seg) {
        if ((rc = dp_seg_ce(&net->nodes[net->out].y, labels, &s.loss_task, NULL, m->dlogits))) return rc;
        if ((rc = count_correct_pixels(m, labels, &s.correct))) return rc;
    } else {
        if ((rc = dp_softmax_ce_part(logits, labels, n, k, n_all, &s.loss_task, m->dlogits))) return rc;
        s.correct = count_correct(logits, labels, n, k);
    }
    s.n = (int)n_all;
    if ((rc = dp_net_backward(net, m->dlogits, NULL))) return rc;
    if (net->dist) { /* data-parallel: every rank now holds the global batch's gradients and loss */
        double part[2] = {s.loss_task, s.correct};
        if ((rc = dp_dist_finish(net)) || (rc = dp_dist_sum(net, part, 2, DP_COMM_F64))) return rc;
        s.loss_task = part[0], s.correct = (int)part[1];
    }
    alpha_grads(net, &s, 0);
    s.loss_gmacs = dp_net_gmacs_loss(net, tc->lambda, tc->lambda != 0.0f ? net->grads : NULL);
    alpha_grads(net, &s, 1);
    s.loss = s.loss_task + tc->lambda * s.loss_gmacs;
    if (!isfinite(s.loss)) { /* diverged: leave the model as it was before the step */
        if (net->n_stats) memcpy(net->stats, m->stats_before, sizeof(float) * net->n_stats);
        for (int i = 0; i < net->n_nodes; i++) {
            const dp_op *op = dp_op_of(net->nodes[i].type);
            if (op->rollback) op->rollback(net, &net->nodes[i]);
        }
        return DP_ERR_NONFINITE;
    }
    dp_sgd_step(&m->sgd, net, lr, lr_alpha);
    m->steps++;
    if (tc->max_side > 0) {
        if ((rc = dp_model_cap_sizes(m, tc->max_side)) < 0) return rc;
        s.capped = rc;
    }
    if (st) *st = s;
    return DP_OK;
}

int dp_model_cap_sizes(dp_model *m, int max_side)
{
    if (!m) return DP_ERR_NULL;
    if (max_side < 2) return DP_ERR_ARG;
    dp_net *net = &m->net;
    int raised = 0, stale = 1;
    /* node by node: raising one alpha shrinks every later map, so the shapes
     * are inferred again only after a raise */
    for (int i = 0; i < net->n_nodes; i++) {
        dp_node *nd = &net->nodes[i];
        const dp_op *op = dp_op_of(nd->type);
        if (!op->cap) continue;
        if (stale) {
            int rc = dp_net_shapes(net, 1, m->cfg.in_ch, m->cfg.size, m->cfg.size, 0, NULL);
            if (rc) return rc;
            stale = 0;
        }
        if (op->cap(net, nd, max_side)) raised++, stale = 1;
    }
    return raised;
}

int dp_model_predict(dp_model *m, const float *x, int n, float *logits)
{
    if (!m || !x || !logits) return DP_ERR_NULL;
    if (n <= 0) return DP_ERR_SIZE;
    dp_net *net = &m->net;
    int rc = dp_net_forward(net, x, n, m->cfg.in_ch, m->cfg.size, m->cfg.size, 0, NULL);
    if (rc) return rc;
    const dp_act *y = &net->nodes[net->out].y;
    if (!dp_arch_is_seg(m->cfg.arch)) {
        memcpy(logits, y->data, sizeof(float) * (size_t)n * m->cfg.classes);
        return DP_OK;
    }
    /* per-pixel scores from the blocked layout to NCHW */
    const size_t hw = (size_t)y->h * y->w;
    const int B = y->blk, cb = dp_cpad(y->c, B) / B;
    for (int in = 0; in < n; in++)
        for (int c = 0; c < y->c; c++)
            for (size_t p = 0; p < hw; p++)
                logits[((size_t)in * y->c + c) * hw + p] = y->data[(((size_t)in * cb + c / B) * hw + p) * B + c % B];
    return DP_OK;
}

int dp_model_predict_seg(dp_model *m, const float *x, int n, int *pred)
{
    if (!m || !x || !pred) return DP_ERR_NULL;
    if (n <= 0) return DP_ERR_SIZE;
    if (!dp_arch_is_seg(m->cfg.arch)) return DP_ERR_ARG;
    dp_net *net = &m->net;
    int rc = dp_net_forward(net, x, n, m->cfg.in_ch, m->cfg.size, m->cfg.size, 0, NULL);
    return rc ? rc : dp_seg_argmax(&net->nodes[net->out].y, pred);
}

int dp_model_info_get(dp_model *m, dp_model_info *info)
{
    if (!m || !info) return DP_ERR_NULL;
    dp_net *net = &m->net;
    memset(info, 0, sizeof(*info));
    int rc = dp_net_shapes(net, 1, m->cfg.in_ch, m->cfg.size, m->cfg.size, 0, NULL);
    if (rc) return rc;
    double dyn;
    info->gmacs = dp_net_macs(net, &dyn) * 1e-9;
    info->dynopool_gmacs = dyn * 1e-9;
    info->dynopool_share = dyn > 0.0 ? info->dynopool_gmacs / (info->gmacs + info->dynopool_gmacs) : 0.0;
    for (int i = 0; i < net->n_pv; i++) info->params += net->pv[i].numel;
    int idx[DP_MAX_STAGES];
    const int ns = dp_net_stages(net, idx, DP_MAX_STAGES);
    info->n_stages = ns < DP_MAX_STAGES ? ns : DP_MAX_STAGES;
    for (int s = 0; s < info->n_stages; s++) {
        const dp_node *nd = &net->nodes[idx[s]];
        info->sizes[s][0] = nd->y.h;
        info->sizes[s][1] = nd->y.w;
        const dp_op *op = dp_op_of(nd->type);
        if (op->alphas && op->alphas(net, nd, info->alphas[info->n_alphas])) info->n_alphas++;
    }
    return DP_OK;
}

int dp_model_info_of_config(const dp_model_config *cfg, dp_model_info *info)
{
    if (!cfg || !info) return DP_ERR_NULL;
    if (dp_arch_name(cfg->arch)[0] == '?' || dp_pool_name(cfg->pool)[0] == '?')
        return DP_ERR_ARG;
    dp_model m; /* on the stack, with a net that stores the alphas only */
    memset(&m, 0, sizeof m);
    m.cfg = *cfg;
    int rc = dp_net_init(&m.net, cfg->reference ? DP_BACKEND_REF : DP_BACKEND_DNNL);
    const dp_arch_cfg ac = dp_arch_cfg_of(cfg);
    if (!rc) rc = dp_build_shapes(&m.net, &ac);
    if (!rc) rc = dp_model_info_get(&m, info);
    dp_net_free(&m.net);
    return rc;
}

/* Every tensor a checkpoint holds: the parameters (alphas included), the BN
 * running statistics and, once training has started, the momentum buffers. */
int dp_model_init_alphas(dp_model *m, const float *alpha, int n)
{
    if (!m) return DP_ERR_NULL;
    const dp_net *net = &m->net;
    int k = 0; /* the learned resize factors: parameters kept positive, in forward order */
    for (int i = 0; i < net->n_pv; i++) k += net->pv[i].positive;
    if (!alpha && n == 0) return k;
    if (!alpha) return DP_ERR_NULL;
    if (k == 0 || (n != 1 && n != k)) return DP_ERR_ARG;
    for (int i = 0; i < n; i++)
        if (!(isfinite(alpha[i]) && alpha[i] > 0.0f)) return DP_ERR_ALPHA;
    for (int i = 0, s = 0; i < net->n_pv; i++) {
        if (!net->pv[i].positive) continue;
        float *a = net->params + net->pv[i].off;
        for (long long e = 0; e < net->pv[i].numel; e++) a[e] = alpha[n == 1 ? 0 : s];
        s++;
    }
    return DP_OK;
}

void dp_model_meta_clear(dp_model *m)
{
    for (int i = 0; i < m->n_meta; i++) free(m->meta_k[i]), free(m->meta_v[i]);
    free(m->meta_k);
    free(m->meta_v);
    m->meta_k = m->meta_v = NULL;
    m->n_meta = 0;
}

int dp_model_meta_add(dp_model *m, const char *key, const char *val)
{
    char **k = realloc(m->meta_k, sizeof(char *) * (size_t)(m->n_meta + 1));
    if (!k) return DP_ERR_NOMEM;
    m->meta_k = k;
    char **v = realloc(m->meta_v, sizeof(char *) * (size_t)(m->n_meta + 1));
    if (!v) return DP_ERR_NOMEM;
    m->meta_v = v;
    char *ks = strdup(key), *vs = strdup(val);
    if (!ks || !vs) {
        free(ks), free(vs);
        return DP_ERR_NOMEM;
    }
    m->meta_k[m->n_meta] = ks;
    m->meta_v[m->n_meta++] = vs;
    return DP_OK;
}

const char *dp_model_meta(const dp_model *m, const char *key)
{
    for (int i = 0; m && key && i < m->n_meta; i++)
        if (strcmp(m->meta_k[i], key) == 0) return m->meta_v[i];
    return NULL;
}

int dp_model_nonfinite(const dp_model *m, char *first, size_t cap)
{
    if (!m) return DP_ERR_NULL;
    const dp_net *net = &m->net;
    int bad = 0;
    if (first && cap) first[0] = 0;
    for (int pass = 0; pass < 3; pass++) {
        const float *base = pass == 0 ? net->params : pass == 1 ? net->stats : m->sgd.buf;
        const int n = pass == 1 ? net->n_sv : net->n_pv;
        for (int i = 0; base && i < n; i++) {
            const long long off = pass == 1 ? net->sv[i].off : net->pv[i].off;
            const long long numel = pass == 1 ? net->sv[i].numel : net->pv[i].numel;
            long long k = 0;
            while (k < numel && isfinite(base[off + k])) k++;
            if (k == numel) continue;
            if (!bad++ && first && cap)
                snprintf(first, cap, "%s%s", pass == 2 ? "optimizer.momentum_buffer." : "",
                         pass == 1 ? net->sv[i].name : net->pv[i].name);
        }
    }
    return bad;
}
