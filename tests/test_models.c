/* test_models.c — every model variant against a PyTorch golden file made by
 * ref/make_model_golden.py (llm.c style): the same weights in, then logits,
 * losses, every parameter's gradient, the complexity loss's alpha gradients,
 * the stage sizes, and the state after a few SGD steps must come out the same.
 * Runs each file on both backends (plain-C reference and oneDNN).
 *
 *   test_models FILE.safetensors...
 *
 * The reference ran in float64; we run float32, so tensors are compared by
 * max |ours - ref| / max |ref| (per tensor) against a tolerance. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "safetensors.h"

static int failures;

#define FAIL(...)                                              \
    do {                                                       \
        fprintf(stderr, "  FAIL %s:%d: ", __FILE__, __LINE__); \
        fprintf(stderr, __VA_ARGS__);                          \
        fprintf(stderr, "\n");                                 \
        failures++;                                            \
    } while (0)

static const char *meta(const st_file *f, const char *k)
{
    const char *v = st_meta(f, k);
    if (!v) {
        FAIL("golden lacks metadata '%s'", k);
        return "0";
    }
    return v;
}

static const st_view *tensor(const st_file *f, const char *prefix, const char *name)
{
    char key[160];
    snprintf(key, sizeof key, "%s%s", prefix, name);
    const st_view *v = st_find(f, key);
    if (!v) FAIL("golden lacks tensor '%s'", key);
    return v;
}

/* max |a - b| / max(max |b|, floor) over n floats */
static double rel_err(const float *a, const float *b, size_t n, double floor_)
{
    double e = 0.0, m = floor_;
    for (size_t i = 0; i < n; i++) {
        const double d = fabs((double)a[i] - b[i]);
        if (!(d <= e)) e = d; /* NaN propagates */
        if (fabs(b[i]) > m) m = fabs(b[i]);
    }
    return e / m;
}

/* Gradients that are 0 in exact arithmetic (a conv bias before BN) come out
 * ~1e-17 in the float64 reference and at float32 rounding here: such tensors
 * are measured against this scale (1e-3 of the model's largest gradient). */
static double g_floor = 1e-12;

static void compare(const char *what, const char *name, const float *ours, const st_view *ref,
                    size_t n, double tol, double *worst)
{
    if (!ref) return;
    if (st_numel(ref) != n || ref->dtype != ST_F32) {
        FAIL("%s %s: golden has %zu elements, we have %zu", what, name, st_numel(ref), n);
        return;
    }
    const double e = rel_err(ours, ref->data, n, g_floor);
    if (getenv("DP_TEST_VERBOSE")) printf("    %s %s %.3g\n", what, name, e);
    if (!(e <= tol)) FAIL("%s %s: relative error %.3g > %.3g", what, name, e, tol);
    if (e > *worst) *worst = e;
}

/* Copies every parameter and buffer from prefix.<name> into the model. */
static int load_state(dp_model *m, const st_file *f, const char *prefix)
{
    dp_net *net = &m->net;
    for (int i = 0; i < net->n_pv; i++) {
        const st_view *v = tensor(f, prefix, net->pv[i].name);
        if (!v || st_numel(v) != (size_t)net->pv[i].numel) {
            if (v) FAIL("%s%s: %zu elements, model has %lld", prefix, net->pv[i].name, st_numel(v),
                        net->pv[i].numel);
            return -1;
        }
        memcpy(net->params + net->pv[i].off, v->data, sizeof(float) * (size_t)net->pv[i].numel);
    }
    for (int i = 0; i < net->n_sv; i++) {
        const st_view *v = tensor(f, prefix, net->sv[i].name);
        if (!v || st_numel(v) != (size_t)net->sv[i].numel) return -1;
        memcpy(net->stats + net->sv[i].off, v->data, sizeof(float) * (size_t)net->sv[i].numel);
    }
    return 0;
}

static void run_file(const char *path, int reference)
{
    char err[512];
    st_file *f;
    if (st_load(path, &f, err, sizeof err)) {
        FAIL("%s", err);
        return;
    }
    dp_model_config cfg = dp_model_defaults();
    cfg.arch = dp_arch_parse(meta(f, "model"));
    cfg.pool = dp_pool_parse(meta(f, "variant"));
    cfg.in_ch = atoi(meta(f, "in_ch"));
    cfg.size = atoi(meta(f, "size"));
    cfg.classes = atoi(meta(f, "classes"));
    cfg.width = strtof(meta(f, "width"), NULL);
    cfg.reference = reference;
    const int n = atoi(meta(f, "batch")), steps = atoi(meta(f, "steps"));
    dp_train_config tc = dp_train_defaults(cfg.arch);
    tc.lambda = strtof(meta(f, "lambda"), NULL);
    tc.lr = strtof(meta(f, "lr"), NULL);
    const float lr_alpha = strtof(meta(f, "lr_alpha"), NULL);
    tc.momentum = strtof(meta(f, "momentum"), NULL);
    tc.weight_decay = strtof(meta(f, "weight_decay"), NULL);
    tc.nesterov = 1;
    /* Float32 against float64.  VGG-16 has few ReLU inputs near the kink and
     * matches to ~3e-4.  ResNet-50 and MobileNetV2 have ReLU inputs within
     * 3e-6 of 0 (ref/relu_ties.py), under float32's rounding drift through
     * 50 layers: one element that lands on the other side of a kink changes
     * its channel's BN statistics gradient, so tensors upstream of it move by
     * ~1e-2 (the tensors downstream still match to ~1e-5; which backend hits a
     * tie varies by file).  The exactness of each op is held by ops.fd. */
    const int deep = cfg.arch != DP_VGG16;
    const double tol = deep ? 6e-2 : 2e-3, tol_step = deep ? 5e-2 : 5e-3;
    printf("%s [%s]: %s %s, %d images %dx%dx%d, width %g\n", path, reference ? "reference" : "oneDNN",
           dp_arch_name(cfg.arch), dp_pool_name(cfg.pool), n, cfg.in_ch, cfg.size, cfg.size,
           (double)cfg.width);

    dp_model *m = NULL;
    int rc = dp_model_create(&cfg, &m);
    if (rc) {
        FAIL("dp_model_create: %s", dp_strerror(rc));
        st_free(f);
        return;
    }
    const st_view *xin = tensor(f, "", "input"), *tg = tensor(f, "", "target");
    if (!xin || !tg || load_state(m, f, "param.")) goto out;
    int *labels = malloc(sizeof(int) * (size_t)n);
    for (int i = 0; i < n; i++) labels[i] = (int)((const long long *)tg->data)[i];

    dp_net *net = &m->net;
    double worst = 0.0;
    if ((rc = dp_net_forward(net, xin->data, n, cfg.in_ch, cfg.size, cfg.size, 1, NULL))) {
        FAIL("forward: %s", dp_strerror(rc));
        free(labels);
        goto out;
    }
    const float *logits = net->nodes[net->out].y.data;
    compare("logits", "", logits, tensor(f, "", "logits"), (size_t)n * cfg.classes, tol, &worst);
    float *dl = malloc(sizeof(float) * (size_t)n * cfg.classes);
    double lt;
    dp_softmax_ce(logits, labels, n, cfg.classes, &lt, dl);
    const float ltf = (float)lt;
    compare("loss_task", "", &ltf, tensor(f, "", "loss_task"), 1, 1e-4, &worst);
    if ((rc = dp_net_backward(net, dl, NULL))) FAIL("backward: %s", dp_strerror(rc));
    const float lg = (float)dp_net_gmacs_loss(net, tc.lambda, net->grads);
    compare("loss_gmacs", "", &lg, tensor(f, "", "loss_gmacs"), 1, 1e-5, &worst);
    g_floor = 0.0;
    for (int i = 0; i < net->n_pv; i++) {
        char key[160];
        snprintf(key, sizeof key, "grad.%s", net->pv[i].name);
        const st_view *r = st_find(f, key);
        for (size_t k = 0; r && k < st_numel(r); k++)
            if (1e-3 * fabs(((const float *)r->data)[k]) > g_floor) g_floor = 1e-3 * fabs(((const float *)r->data)[k]);
    }
    for (int i = 0; i < net->n_pv; i++) {
        const dp_pview *p = &net->pv[i];
        compare("grad", p->name, net->grads + p->off, tensor(f, "grad.", p->name), (size_t)p->numel,
                tol, &worst);
    }
    /* the complexity loss alone, against an independent PyTorch computation */
    float *g2 = calloc((size_t)net->n_params, sizeof(float));
    dp_net_gmacs_loss(net, 1.0f, g2);
    int n_alpha = 0;
    for (int i = 0; i < net->n_pv; i++)
        if (net->pv[i].group == 1 && cfg.pool == DP_POOL_DYNOPOOL) {
            compare("gmacs_grad", net->pv[i].name, g2 + net->pv[i].off,
                    tensor(f, "gmacs_grad.", net->pv[i].name), 2, 1e-5, &worst);
            n_alpha++;
        }
    if (cfg.pool == DP_POOL_DYNOPOOL && n_alpha == 0) FAIL("no alphas in a dynopool model");
    free(g2);
    /* stage sizes at the initial alphas */
    dp_model_info info;
    dp_model_info_get(m, &info);
    const st_view *sz = tensor(f, "", "sizes");
    if (sz && (int)(st_numel(sz) / 2) != info.n_stages)
        FAIL("%d stages, golden has %zu", info.n_stages, st_numel(sz) / 2);
    for (int s = 0; sz && s < info.n_stages && s < (int)(st_numel(sz) / 2); s++) {
        const float *z = sz->data;
        if (z[2 * s] != info.sizes[s][0] || z[2 * s + 1] != info.sizes[s][1])
            FAIL("stage %d is %dx%d, golden %gx%g", s, info.sizes[s][0], info.sizes[s][1],
                 (double)z[2 * s], (double)z[2 * s + 1]);
    }
    const double worst_fb = worst;
    g_floor = 1e-12;
    /* SGD steps from the initial state */
    load_state(m, f, "param.");
    for (int i = 0; i < net->n_nodes; i++) net->nodes[i].nbt = 0;
    float losses[16];
    for (int s = 0; s < steps && s < 16; s++) {
        dp_step_stats st;
        if ((rc = dp_model_train_step(m, xin->data, labels, n, &tc, tc.lr, lr_alpha, &st))) {
            FAIL("step %d: %s", s, dp_strerror(rc));
            break;
        }
        losses[s] = (float)st.loss;
    }
    worst = 0.0;
    compare("step_loss", "", losses, tensor(f, "", "step_loss"), (size_t)steps, deep ? 1e-2 : 1e-3, &worst);
    for (int i = 0; i < net->n_pv; i++)
        compare("step", net->pv[i].name, net->params + net->pv[i].off,
                tensor(f, "step.", net->pv[i].name), (size_t)net->pv[i].numel, tol_step, &worst);
    for (int i = 0; i < net->n_sv; i++)
        compare("step", net->sv[i].name, net->stats + net->sv[i].off,
                tensor(f, "step.", net->sv[i].name), (size_t)net->sv[i].numel, tol_step, &worst);
    printf("  worst relative error: forward/backward %.2g, after %d steps %.2g\n", worst_fb, steps,
           worst);
    free(dl);
    free(labels);
out:
    dp_model_free(m);
    st_free(f);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_models FILE.safetensors...\n");
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        run_file(argv[i], 1);
        run_file(argv[i], 0);
    }
    if (failures) fprintf(stderr, "%d failures\n", failures);
    else printf("ok\n");
    return failures != 0;
}
