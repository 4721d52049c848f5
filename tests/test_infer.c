/* test_infer.c — the frozen inference API (dynopool/infer.h) against the model
 * it came from: VGG-16, ResNet-50, MobileNetV2 and EfficientNet-B0, human and DynOPool, at a
 * small width and size.
 *
 * Each model gets batch-norm parameters and running statistics that make the
 * fold matter (gamma in [0.5, 1.5], beta in [-0.5, 0.5], the statistics of a
 * real batch: some channels' variance near 0, where eps counts), non-square
 * alphas (1.6, 2.3), and one training step at learning rate 0 so that its
 * checkpoint holds momentum buffers, which the inference loader must skip.
 * Then the logits of dp_infer_run (from the checkpoint file, dp_infer_load,
 * and from memory, dp_infer_freeze) are compared with dp_model_predict's
 * (evaluation mode) on the same images.
 *
 * The tolerance, derived: both compute the same real function; they differ
 * only in rounding.  A float dot product of K terms is within
 * gamma_K = K u / (1 - K u) (u = 2^-24) of its exact value relative to the sum
 * of |terms|; a convolution followed by batch norm (or the folded convolution)
 * adds about 3 roundings: K + 3.  An error made in layer l travels to the
 * logits through later layers that (batch-normalised) keep magnitudes of
 * order one, so it arrives relative to the logits' own magnitude scale
 *   S = |b_j| + sum_k |W_jk| |f_k|      (f: the pooled features, W, b: the classifier)
 * Each of the two computations is then within G = sum over convolutions of
 * gamma_{K+3} of the exact logit, relative to S, and
 *   |infer - model| <= 2 G S.
 * (gamma_K is the worst case, linear in K; typical errors grow like sqrt(K) u,
 * which leaves room for a layer's sum of |terms| exceeding its result.)  The
 * test prints the worst |difference| / tolerance of each case.  A fold that is
 * wrong by a channel, a sign, the eps or the bias is off by O(1) of S, several
 * hundred times the tolerance. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dynopool.h"
#include "engine/model.h"
#include "testutil.h"

enum { N = 3, SIZE = 24, CLASSES = 7 };

static double gamma_k(double k)
{
    const double u = 0x1p-24;
    return k * u / (1.0 - k * u);
}

/* G of the header over the model's convolutions, and its BN count. */
static double conv_gammas(const dp_net *net, int *n_bn)
{
    double g = 0.0;
    *n_bn = 0;
    for (int i = 0; i < net->n_nodes; i++) {
        const dp_node *nd = &net->nodes[i];
        if (nd->type == DP_OP_BN) ++*n_bn;
        if (nd->type != DP_OP_CONV) continue;
        const int cin = net->nodes[nd->in[0]].y.c;
        g += gamma_k((double)cin / nd->groups * nd->k * nd->k + 3);
    }
    return g;
}

/* S (n, classes) of the header, from the features the last predict left in the net. */
static void logit_scale(const dp_net *net, int n, double *s)
{
    const dp_node *fc = &net->nodes[net->out];
    const dp_node *f = &net->nodes[fc->in[0]];
    const int cin = f->y.c;
    const float *w = net->params + fc->w_off, *b = net->params + fc->b_off;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < fc->cout; j++) {
            double a = fabs(b[j]);
            for (int k = 0; k < cin; k++) a += fabs((double)w[(size_t)j * cin + k] * f->y.data[(size_t)i * cin + k]);
            s[(size_t)i * fc->cout + j] = a;
        }
}

/* Counts the logits outside 2 G S; *worst: the largest |d| / (2 G S). */
static int compare(const char *what, const float *got, const float *ref, const double *s, double g, int n,
                   double *worst)
{
    int bad = 0;
    *worst = 0.0;
    for (int i = 0; i < n * CLASSES; i++) {
        const double tol = 2.0 * g * s[i], d = fabs((double)got[i] - ref[i]);
        if (!(d <= tol)) {
            if (bad++ < 5)
                fprintf(stderr, "  %s: logit %d (image %d, class %d) %.9g, model %.9g: |d| %.3g > %.3g\n", what, i,
                        i / CLASSES, i % CLASSES, got[i], ref[i], d, tol);
        }
        if (d / tol > *worst || isnan(d)) *worst = isnan(d) ? INFINITY : d / tol;
    }
    return bad;
}

/* Gives every BN the parameters of the header and the statistics of batch x. */
static int make_foldable(dp_model *m, const float *x, int n, tu_rng *r)
{
    dp_net *net = &m->net;
    for (int v = 0; v < net->n_pv; v++) { /* gamma, beta: the BN weights and biases; the alphas */
        const dp_pview *p = &net->pv[v];
        for (int i = 0; i < net->n_nodes; i++) {
            const dp_node *nd = &net->nodes[i];
            if (nd->type != DP_OP_BN || (p->off != nd->w_off && p->off != nd->b_off)) continue;
            for (long long k = 0; k < p->numel; k++)
                net->params[p->off + k] = p->off == nd->w_off ? (float)(0.5 + tu_uniform(r))
                                                              : (float)(tu_uniform(r) - 0.5);
        }
        if (p->positive && p->numel == 2) net->params[p->off] = 1.6f, net->params[p->off + 1] = 2.3f;
    }
    /* one step at learning rate 0 with BN momentum 1: running statistics := this
     * batch's, the weights unchanged, momentum buffers created */
    int labels[16];
    for (int i = 0; i < n; i++) labels[i] = i % CLASSES;
    dp_train_config tc = dp_train_defaults(m->cfg.arch);
    net->bn_momentum = 1.0f;
    const int rc = dp_model_train_step(m, x, labels, n, &tc, 0.0f, 0.0f, NULL);
    net->bn_momentum = 0.1f;
    return rc;
}

static void one_case(int arch, int pool, const char *dir)
{
    char name[64], path[512], err[1024] = "";
    snprintf(name, sizeof name, "%s/%s", dp_arch_name(arch), dp_pool_name(pool));
    dp_model_config cfg = dp_model_defaults();
    cfg.arch = arch, cfg.pool = pool, cfg.size = SIZE, cfg.classes = CLASSES, cfg.width = 0.25f, cfg.seed = 7;
    dp_model *m = NULL;
    int rc = dp_model_create(&cfg, &m);
    CHECK(rc == DP_OK, "%s: create: %s", name, dp_strerror(rc));
    if (rc) return;
    tu_rng r = {0x1234u + (uint64_t)arch * 16 + (uint64_t)pool};
    const size_t img = (size_t)cfg.in_ch * SIZE * SIZE;
    float *cal = malloc(sizeof(float) * 8 * img), *x = malloc(sizeof(float) * N * img);
    float *ref = malloc(sizeof(float) * N * CLASSES), *got = malloc(sizeof(float) * N * CLASSES);
    float *one = malloc(sizeof(float) * CLASSES);
    double *s = malloc(sizeof(double) * N * CLASSES);
    tu_fill_normal(&r, cal, 8 * img);
    tu_fill_normal(&r, x, N * img);
    CHECK((rc = make_foldable(m, cal, 8, &r)) == DP_OK, "%s: calibration step: %s", name, dp_strerror(rc));
    snprintf(path, sizeof path, "%s/%s_%s.safetensors", dir, dp_arch_name(arch), dp_pool_name(pool));
    CHECK((rc = dp_model_save(m, path, NULL, NULL, 0, err, sizeof err)) == DP_OK, "%s: save: %s", name, err);
    CHECK((rc = dp_model_predict(m, x, N, ref)) == DP_OK, "%s: predict: %s", name, dp_strerror(rc));
    int n_bn;
    const double g = conv_gammas(&m->net, &n_bn);
    logit_scale(&m->net, N, s);
    dp_net_mem mm;
    dp_model_memory(m, &mm);
    CHECK(mm.grads > 0, "%s: the training model's gradient bytes are counted (%zu)", name, mm.grads);

    for (int from_file = 1; from_file >= 0; from_file--) {
        dp_infer *h = NULL;
        err[0] = 0;
        rc = from_file ? dp_infer_load(path, &h, err, sizeof err) : dp_infer_freeze(m, &h);
        CHECK(rc == DP_OK && h, "%s: %s: %s %s", name, from_file ? "dp_infer_load" : "dp_infer_freeze",
              dp_strerror(rc), err);
        if (rc) continue;
        const char *how = from_file ? "from the file" : "from memory";
        dp_infer_info in;
        CHECK(dp_infer_info_get(h, &in) == DP_OK, "info");
        CHECK(in.cfg.arch == arch && in.cfg.pool == pool && in.cfg.size == SIZE && in.cfg.classes == CLASSES &&
                  in.cfg.in_ch == 3,
              "%s: info cfg", name);
        CHECK(in.folded == n_bn, "%s %s: %d batch norms folded, the model has %d", name, how, in.folded, n_bn);
        CHECK((rc = dp_infer_run(h, x, N, got)) == DP_OK, "%s: run: %s", name, dp_strerror(rc));
        double worst = 0.0, worst1 = 0.0;
        const int bad = compare(how, got, ref, s, g, N, &worst);
        CHECK(bad == 0, "%s %s: %d of %d logits beyond 2 G S (G = %.3g)", name, how, bad, N * CLASSES, g);
        /* batch 1: the second image alone */
        CHECK((rc = dp_infer_run(h, x + img, 1, one)) == DP_OK, "%s: run 1: %s", name, dp_strerror(rc));
        int bad1 = 0;
        for (int j = 0; j < CLASSES; j++) {
            const double d = fabs((double)one[j] - ref[CLASSES + j]), tol = 2.0 * g * s[CLASSES + j];
            bad1 += !(d <= tol);
            if (d / tol > worst1) worst1 = d / tol;
        }
        CHECK(bad1 == 0, "%s %s: batch 1: %d logits beyond 2 G S", name, how, bad1);
        CHECK(dp_infer_info_get(h, &in) == DP_OK, "info");
        CHECK(in.grad_bytes == 0, "%s %s: %zu bytes of gradients", name, how, in.grad_bytes);
        CHECK(in.weight_bytes == mm.weights, "%s %s: %zu bytes of weights, the model holds %zu", name, how,
              in.weight_bytes, mm.weights);
        CHECK(in.act_bytes > 0 && in.act_bytes <= mm.acts, "%s %s: activations %zu bytes, the model's %zu", name,
              how, in.act_bytes, mm.acts);
        CHECK(dp_infer_run(h, x, 0, got) == DP_ERR_SIZE, "n = 0");
        CHECK(dp_infer_run(h, NULL, 1, got) == DP_ERR_NULL, "x NULL");
        { /* a NaN or infinity in the last image: refused, logits untouched */
            const size_t last = (size_t)N * in.cfg.in_ch * SIZE * SIZE - 1;
            const float keep = x[last], mark = got[0];
            x[last] = NAN;
            CHECK(dp_infer_run(h, x, N, got) == DP_ERR_NONFINITE && got[0] == mark, "%s %s: NaN input", name, how);
            x[last] = -INFINITY;
            CHECK(dp_infer_run(h, x, N, got) == DP_ERR_NONFINITE, "%s %s: infinite input", name, how);
            x[last] = keep;
        }
        printf("%-24s %-12s %2d BN folded  G %.2e  worst |d| / 2GS %.2e (batch 1: %.2e)  weights %zu B, "
               "activations %zu B (model %zu B), gradients %zu B (model %zu B)\n",
               name, how, in.folded, g, worst, worst1, in.weight_bytes, in.act_bytes, mm.acts, in.grad_bytes,
               mm.grads);
        if (from_file) {
            CHECK(dp_infer_meta(h, "format") && !strcmp(dp_infer_meta(h, "format"), "dynopool-checkpoint-1"),
                  "metadata kept");
            if (pool == DP_POOL_HUMAN) CHECK(in.model.n_alphas == 0, "%s: alphas", name);
            if (pool == DP_POOL_DYNOPOOL)
                CHECK(in.model.n_alphas > 0 && in.model.alphas[0][0] == 1.6f && in.model.alphas[0][1] == 2.3f,
                      "%s: the checkpoint's alphas (%g, %g)", name, in.model.alphas[0][0], in.model.alphas[0][1]);
        }
        dp_infer_free(h);
    }
    remove(path);
    dp_model_free(m);
    free(cal), free(x), free(ref), free(got), free(one), free(s);
}

int main(void)
{
    char dir[] = "/tmp/dp_infer.XXXXXX";
    if (!mkdtemp(dir)) return perror("mkdtemp"), 1;
    for (int a = DP_VGG16; a <= DP_EFFICIENTNET_B0; a++) /* B1 is B0 with more blocks */
        for (int p = DP_POOL_HUMAN; p <= DP_POOL_DYNOPOOL; p++) one_case(a, p, dir);
    /* errors: a missing file named, NULL arguments */
    dp_infer *h = (dp_infer *)1;
    char err[512] = "";
    CHECK(dp_infer_load("/nonexistent/x.safetensors", &h, err, sizeof err) == DP_ERR_IO && h == NULL &&
              strstr(err, "/nonexistent/x.safetensors"),
          "missing file: %s", err);
    CHECK(dp_infer_load(NULL, &h, err, sizeof err) == DP_ERR_NULL, "NULL path");
    CHECK(dp_infer_freeze(NULL, &h) == DP_ERR_NULL, "NULL model");
    CHECK(dp_infer_run(NULL, NULL, 1, NULL) == DP_ERR_NULL, "NULL handle");
    dp_infer_free(NULL);
    rmdir(dir);
    return tu_finish("test_infer");
}
