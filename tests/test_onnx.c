/* test_onnx.c — the ONNX export (src/deploy/onnx.c, dynopool/deploy.h).
 *
 *   test_onnx
 *     1. The decomposition: DynOPool at a fixed alpha written as the exported
 *        graph computes it — Gather along the height with dp_dynopool_taps'
 *        indices, Mul by (1 - t) and t, Add; the same along the width; a 2x2
 *        stride-2 max — equals dp_dynopool_forward bit for bit, on random data
 *        and on small integers full of ties, for down- and up-sampling,
 *        non-square alphas, whole-pixel axes, the 1.5 floor and sides of 1 to 3.
 *        The taps themselves are checked against docs/operator.md's formulas
 *        ("Query points", "Bilinear sample") evaluated here in double.
 *     2. The file: every model (vgg16, resnet50, mobilenetv2, efficientnet-b0 x human,
 *        dynopool, shape-adaptor) exported and read back with protobuf-c: IR version,
 *        opset, input "input" [N, C, S, S] and output "logits" [N, K] with N
 *        symbolic, unique node and initializer names, every node input defined
 *        before it is read (a topological graph), the learned sizes and the
 *        caller's pairs in metadata_props, each DynOPool's initializers equal to
 *        its taps, each folded convolution's weights equal to the frozen
 *        network's; a duplicate metadata key and an unwritable path refused
 *        with a message naming them.
 *   test_onnx --logits ONNX CKPT DATA N OUT_DIR
 *     for tests/onnx_test.sh: the first N test images of DATA prepared from the
 *     ONNX model's own metadata_props (data_variant, input_resize, mean, std),
 *     and the checkpoint's logits for them through dp_infer_run: OUT_DIR/x.bin,
 *     OUT_DIR/logits.bin (float32, little-endian) and OUT_DIR/shape.txt
 *     ("N C S K"). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "dynopool.h"
#include "onnx/onnx.pb-c.h"
#include "testutil.h"

/* ---- 1. the decomposition ------------------------------------------------------------ */

/* y (n, c, ho, wo) as the exported graph computes it from x (n, c, h, w). */
static int decomposed(const float *x, int n, int c, int h, int w, float ah, float aw, float *y)
{
    const int ho = dp_dynopool_size(h, ah), wo = dp_dynopool_size(w, aw);
    if (ho < 0 || wo < 0) return -1;
    const int H = 2 * ho, W = 2 * wo;
    int *hi0 = malloc(sizeof(int) * H), *hi1 = malloc(sizeof(int) * H);
    int *wi0 = malloc(sizeof(int) * W), *wi1 = malloc(sizeof(int) * W);
    float *ht = malloc(sizeof(float) * H), *wt = malloc(sizeof(float) * W);
    float *r = malloc(sizeof(float) * (size_t)H * w), *s = malloc(sizeof(float) * (size_t)H * W);
    int rc = dp_dynopool_taps(h, ah, hi0, hi1, ht) == ho && dp_dynopool_taps(w, aw, wi0, wi1, wt) == wo ? 0 : -1;
    for (int p = 0; !rc && p < n * c; p++) {
        const float *xp = x + (size_t)p * h * w;
        for (int q = 0; q < H; q++) /* Gather axis 2 (i0, i1), Mul (1 - t, t), Add */
            for (int v = 0; v < w; v++) {
                const float m0 = xp[hi0[q] * w + v] * (1.0f - ht[q]), m1 = xp[hi1[q] * w + v] * ht[q];
                r[q * w + v] = m0 + m1;
            }
        for (int q = 0; q < H; q++) /* the same along axis 3 */
            for (int k = 0; k < W; k++) {
                const float m0 = r[q * w + wi0[k]] * (1.0f - wt[k]), m1 = r[q * w + wi1[k]] * wt[k];
                s[q * W + k] = m0 + m1;
            }
        float *yp = y + (size_t)p * ho * wo;
        for (int i = 0; i < ho; i++) /* MaxPool 2x2 stride 2 */
            for (int j = 0; j < wo; j++) {
                float m = s[2 * i * W + 2 * j];
                const float o[3] = {s[2 * i * W + 2 * j + 1], s[(2 * i + 1) * W + 2 * j], s[(2 * i + 1) * W + 2 * j + 1]};
                for (int k = 0; k < 3; k++) m = o[k] > m ? o[k] : m;
                yp[i * wo + j] = m;
            }
    }
    free(hi0), free(hi1), free(wi0), free(wi1), free(ht), free(wt), free(r), free(s);
    return rc;
}

/* The taps of one axis against docs/operator.md, in double. */
static void taps_formula(int in, float alpha)
{
    const int out = dp_dynopool_size(in, alpha);
    int *i0 = malloc(sizeof(int) * 2 * out), *i1 = malloc(sizeof(int) * 2 * out);
    float *t = malloc(sizeof(float) * 2 * out);
    CHECK(dp_dynopool_taps(in, alpha, i0, i1, t) == out, "taps(%d, %g): size", in, alpha);
    int bad = 0;
    for (int i = 0; i < out; i++)
        for (int a = 0; a < 2; a++) {
            const double u = ((4.0 * i + 2 * a + 1) * in - 2.0 * out) / (4.0 * out);
            const double uc = u < 0 ? 0 : u > in - 1 ? in - 1 : u, u0 = floor(uc);
            const int q = 2 * i + a, j1 = (int)u0 + 1 < in ? (int)u0 + 1 : in - 1;
            bad += i0[q] != (int)u0 || i1[q] != j1 || t[q] != (float)(uc - u0);
        }
    CHECK(bad == 0, "taps(%d, %g): %d of %d query coordinates differ from docs/operator.md", in, alpha, bad, 2 * out);
    free(i0), free(i1), free(t);
}

static void decomposition_tests(void)
{
    static const struct {
        int h, w;
        float ah, aw;
    } cases[] = {
        {32, 32, 2.0f, 2.0f},   {28, 28, 2.0f, 2.0f},  {32, 32, 1.7f, 2.6f}, {7, 7, 2.0f, 2.0f},
        {14, 13, 1.93f, 2.11f}, {8, 6, 0.6f, 0.75f},   {5, 9, 1.0f, 1.0f},   {3, 2, 2.0f, 2.0f},
        {2, 3, 4.0f, 0.5f},     {1, 4, 1.0f, 2.0f},    {4, 1, 0.4f, 3.0f},   {56, 56, 3.3f, 1.27f},
        {9, 9, 100.0f, 0.25f},  {16, 12, 1.5f, 1.5f},  {6, 10, 2.0f, 1.98f}, {11, 11, 0.9f, 1.1f},
    };
    tu_rng r = {2024};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const int n = 2, c = 3, h = cases[k].h, w = cases[k].w;
        const float ah = cases[k].ah, aw = cases[k].aw;
        taps_formula(h, ah), taps_formula(w, aw);
        const int ho = dp_dynopool_size(h, ah), wo = dp_dynopool_size(w, aw);
        const size_t nx = (size_t)n * c * h * w, ny = (size_t)n * c * ho * wo;
        float *x = malloc(sizeof(float) * nx), *y = malloc(sizeof(float) * ny), *z = malloc(sizeof(float) * ny);
        for (int ties = 0; ties < 2; ties++) {
            for (size_t i = 0; i < nx; i++) x[i] = ties ? (float)tu_int(&r, -2, 2) : tu_normal(&r);
            CHECK(dp_dynopool_forward(x, n, c, h, w, ah, aw, y) == DP_OK, "forward %dx%d", h, w);
            CHECK(decomposed(x, n, c, h, w, ah, aw, z) == 0, "decomposed %dx%d", h, w);
            size_t diff = 0;
            for (size_t i = 0; i < ny; i++) diff += y[i] != z[i];
            CHECK(diff == 0, "%dx%d alpha (%g, %g)%s: %zu of %zu outputs of Gather/Mul/Add/MaxPool differ from "
                  "dp_dynopool_forward", h, w, ah, aw, ties ? " (ties)" : "", diff, ny);
        }
        free(x), free(y), free(z);
    }
    int i0[4], i1[4];
    float t[4];
    CHECK(dp_dynopool_taps(4, 0.0f, i0, i1, t) == DP_ERR_ALPHA, "alpha 0 accepted");
    CHECK(dp_dynopool_taps(0, 2.0f, i0, i1, t) == DP_ERR_SIZE, "side 0 accepted");
    CHECK(dp_dynopool_taps(4, 2.0f, NULL, i1, t) == DP_ERR_NULL, "NULL accepted");
}

/* ---- 2. the file ------------------------------------------------------------------------ */

static unsigned char *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    const long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = len > 0 ? malloc((size_t)len) : NULL;
    if (b && fread(b, 1, (size_t)len, f) != (size_t)len) free(b), b = NULL;
    fclose(f);
    *n = b ? (size_t)len : 0;
    return b;
}

static Onnx__ModelProto *load_onnx(const char *path)
{
    size_t n;
    unsigned char *b = read_all(path, &n);
    Onnx__ModelProto *m = b ? onnx__model_proto__unpack(NULL, n, b) : NULL;
    free(b);
    return m;
}

static const char *meta(const Onnx__ModelProto *m, const char *key)
{
    for (size_t i = 0; i < m->n_metadata_props; i++)
        if (!strcmp(m->metadata_props[i]->key, key)) return m->metadata_props[i]->value;
    return NULL;
}

static const Onnx__TensorProto *initializer(const Onnx__GraphProto *g, const char *name)
{
    for (size_t i = 0; i < g->n_initializer; i++)
        if (!strcmp(g->initializer[i]->name, name)) return g->initializer[i];
    return NULL;
}

/* A graph input or output: name, float32, [N, dims...] with N a parameter. */
static void check_io(const char *what, const Onnx__ValueInfoProto *v, const char *name, int nd, const int64_t *dims)
{
    CHECK(!strcmp(v->name, name), "%s: %s named '%s'", what, name, v->name);
    const Onnx__TypeProto__Tensor *t = v->type && v->type->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE
                                           ? v->type->tensor_type : NULL;
    CHECK(t && t->elem_type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT && t->shape && (int)t->shape->n_dim == nd + 1,
          "%s: %s is no float32 tensor of rank %d", what, name, nd + 1);
    if (!t || !t->shape || (int)t->shape->n_dim != nd + 1) return;
    const Onnx__TensorShapeProto__Dimension *d0 = t->shape->dim[0];
    CHECK(d0->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM && !strcmp(d0->dim_param, "N"),
          "%s: %s's batch is not the symbol N", what, name);
    for (int k = 0; k < nd; k++)
        CHECK(t->shape->dim[k + 1]->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
                  t->shape->dim[k + 1]->dim_value == dims[k],
              "%s: %s dimension %d is not %lld", what, name, k + 1, (long long)dims[k]);
}

/* Node and initializer names unique; each node reads only the input, initializers,
 * "" (an omitted optional input) and outputs of nodes before it; "logits" made. */
static void check_graph(const char *what, const Onnx__GraphProto *g)
{
    size_t nv = 0, cap = g->n_initializer + g->n_node + 2;
    const char **defined = malloc(sizeof(char *) * cap);
    defined[nv++] = "input";
    for (size_t i = 0; i < g->n_initializer; i++) {
        for (size_t k = 0; k < nv; k++)
            CHECK(strcmp(defined[k], g->initializer[i]->name), "%s: initializer '%s' twice", what, g->initializer[i]->name);
        defined[nv++] = g->initializer[i]->name;
    }
    int bad = 0;
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *n = g->node[i];
        for (size_t k = 0; k < i; k++)
            if (!strcmp(g->node[k]->name, n->name)) bad++, fprintf(stderr, "%s: node name '%s' twice\n", what, n->name);
        for (size_t j = 0; j < n->n_input; j++) {
            int found = !n->input[j][0];
            for (size_t k = 0; k < nv && !found; k++) found = !strcmp(defined[k], n->input[j]);
            if (!found) bad++, fprintf(stderr, "%s: node %s reads '%s' before it is made\n", what, n->name, n->input[j]);
        }
        CHECK(n->n_output == 1, "%s: node %s has %zu outputs", what, n->name, n->n_output);
        for (size_t k = 0; k < nv; k++)
            if (!strcmp(defined[k], n->output[0])) bad++, fprintf(stderr, "%s: '%s' made twice\n", what, n->output[0]);
        defined[nv++] = n->output[0];
    }
    CHECK(bad == 0, "%s: %d problems in the graph (above)", what, bad);
    CHECK(g->n_node && !strcmp(g->node[g->n_node - 1]->output[0], "logits"), "%s: the last node does not make logits",
          what);
    free(defined);
}

static int tensor_equals(const Onnx__TensorProto *t, int type, const void *data, size_t bytes)
{
    return t && t->data_type == type && t->has_raw_data && t->raw_data.len == bytes &&
           !memcmp(t->raw_data.data, data, bytes);
}

/* Each DynOPool's index and weight initializers against its taps (only those an
 * axis needs: none for an identity axis, index0 alone for a whole-pixel one). */
static int check_dynopool(const char *what, const Onnx__GraphProto *g, const char *name, int h, int w,
                          const float al[2])
{
    int found = 0;
    for (int ax = 0; ax < 2; ax++) {
        const int in = ax ? w : h, out = dp_dynopool_size(in, al[ax]), m = 2 * out;
        int *i0 = malloc(sizeof(int) * m), *i1 = malloc(sizeof(int) * m);
        float *t = malloc(sizeof(float) * m), *w0 = malloc(sizeof(float) * m);
        int64_t *j0 = malloc(sizeof(int64_t) * m), *j1 = malloc(sizeof(int64_t) * m);
        dp_dynopool_taps(in, al[ax], i0, i1, t);
        int whole = 1;
        for (int q = 0; q < m; q++) j0[q] = i0[q], j1[q] = i1[q], w0[q] = 1.0f - t[q], whole &= t[q] == 0.0f;
        char nm[4][256];
        const char *axn = ax ? "w" : "h";
        snprintf(nm[0], 256, "%s.%s.index0", name, axn), snprintf(nm[1], 256, "%s.%s.index1", name, axn);
        snprintf(nm[2], 256, "%s.%s.weight0", name, axn), snprintf(nm[3], 256, "%s.%s.weight1", name, axn);
        const Onnx__TensorProto *t0 = initializer(g, nm[0]);
        if (t0) {
            found++;
            CHECK(tensor_equals(t0, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, j0, sizeof(int64_t) * m), "%s: %s", what, nm[0]);
            if (!whole) {
                CHECK(tensor_equals(initializer(g, nm[1]), ONNX__TENSOR_PROTO__DATA_TYPE__INT64, j1, sizeof(int64_t) * m),
                      "%s: %s", what, nm[1]);
                CHECK(tensor_equals(initializer(g, nm[2]), ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, w0, sizeof(float) * m),
                      "%s: %s", what, nm[2]);
                CHECK(tensor_equals(initializer(g, nm[3]), ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, t, sizeof(float) * m),
                      "%s: %s", what, nm[3]);
            }
        } else {
            int ident = m == in && whole;
            for (int q = 0; q < m && ident; q++) ident = i0[q] == q;
            CHECK(ident, "%s: %s axis %s: no %s, but its taps are no identity", what, name, axn, nm[0]);
        }
        free(i0), free(i1), free(t), free(w0), free(j0), free(j1);
    }
    return found;
}

static void file_tests(const char *dir)
{
    static const int archs[4] = {DP_VGG16, DP_RESNET50, DP_MOBILENETV2, DP_EFFICIENTNET_B0};
    static const int pools[3] = {DP_POOL_HUMAN, DP_POOL_DYNOPOOL, DP_POOL_SHAPE_ADAPTOR};
    char path[512], err[1024];
    for (int a = 0; a < 4; a++)
        for (int p = 0; p < 3; p++) {
            char what[64];
            snprintf(what, sizeof what, "%s %s", dp_arch_name(archs[a]), dp_pool_name(pools[p]));
            dp_model_config cfg = dp_model_defaults();
            cfg.arch = archs[a], cfg.pool = pools[p], cfg.in_ch = 1, cfg.size = 20, cfg.classes = 7;
            cfg.width = 0.125f;
            dp_model *m = NULL;
            dp_infer *h = NULL;
            CHECK(dp_model_create(&cfg, &m) == DP_OK, "%s: create", what);
            if (!m) continue;
            if (pools[p] == DP_POOL_DYNOPOOL) { /* learned-looking alphas: fractional taps, up-sampling */
                static const float al5[5] = {1.37f, 2.21f, 0.8f, 1.9f, 2.6f};
                float al[DP_MAX_STAGES];
                const int k = dp_model_init_alphas(m, NULL, 0);
                for (int i = 0; i < k && i < DP_MAX_STAGES; i++) al[i] = al5[i % 5];
                CHECK(k > 0 && k <= DP_MAX_STAGES && dp_model_init_alphas(m, al, k) >= 0, "%s: alphas", what);
            }
            CHECK(dp_infer_freeze(m, &h) == DP_OK, "%s: freeze", what);
            dp_model_free(m);
            if (!h) continue;
            dp_infer_info in;
            dp_infer_info_get(h, &in);
            snprintf(path, sizeof path, "%s/m.onnx", dir);
            const char *keys[2] = {"mean", "class_names"}, *vals[2] = {"[0.5]", "[\"a\", \"b\"]"};
            dp_onnx_opts o = {.keys = keys, .vals = vals, .n_meta = 2};
            int rc = dp_export_onnx(h, path, &o, err, sizeof err);
            CHECK(rc == DP_OK, "%s: export: %s (%s)", what, dp_strerror(rc), err);
            Onnx__ModelProto *mp = rc ? NULL : load_onnx(path);
            CHECK(rc || mp, "%s: the file does not parse as an ONNX ModelProto", what);
            if (mp) {
                const Onnx__GraphProto *g = mp->graph;
                CHECK(mp->ir_version == 8 && mp->n_opset_import == 1 && !mp->opset_import[0]->domain[0] &&
                          mp->opset_import[0]->version == 17,
                      "%s: IR %lld, opset %lld", what, (long long)mp->ir_version,
                      mp->n_opset_import ? (long long)mp->opset_import[0]->version : -1LL);
                CHECK(g && g->n_input == 1 && g->n_output == 1, "%s: inputs and outputs", what);
                if (!g || g->n_input != 1 || g->n_output != 1) {
                    onnx__model_proto__free_unpacked(mp, NULL);
                    dp_infer_free(h);
                    continue;
                }
                const int64_t xd[3] = {1, 20, 20}, yd[1] = {7};
                check_io(what, g->input[0], "input", 3, xd);
                check_io(what, g->output[0], "logits", 1, yd);
                check_graph(what, g);
                char sizes[512] = "[";
                for (int s = 0; s < in.model.n_stages; s++)
                    snprintf(sizes + strlen(sizes), sizeof sizes - strlen(sizes), "%s[%d, %d]", s ? ", " : "",
                             in.model.sizes[s][0], in.model.sizes[s][1]);
                strcat(sizes, "]");
                const char *v;
                CHECK((v = meta(mp, "sizes")) && !strcmp(v, sizes), "%s: sizes '%s', expected '%s'", what, v ? v : "-",
                      sizes);
                CHECK((v = meta(mp, "model")) && !strcmp(v, dp_arch_name(cfg.arch)), "%s: model", what);
                CHECK((v = meta(mp, "pool")) && !strcmp(v, dp_pool_name(cfg.pool)), "%s: pool", what);
                CHECK((v = meta(mp, "mean")) && !strcmp(v, "[0.5]"), "%s: the caller's mean", what);
                CHECK((v = meta(mp, "class_names")) && !strcmp(v, "[\"a\", \"b\"]"), "%s: class names", what);
                /* the graph's op types: DynOPool only as Gather/Mul/Add/MaxPool */
                int gathers = 0, resizes = 0, bns = 0;
                for (size_t i = 0; i < g->n_node; i++) {
                    gathers += !strcmp(g->node[i]->op_type, "Gather");
                    resizes += !strcmp(g->node[i]->op_type, "Resize");
                    bns += !strcmp(g->node[i]->op_type, "BatchNormalization");
                }
                CHECK(bns == 0, "%s: %d batch norms left unfolded", what, bns);
                CHECK((pools[p] == DP_POOL_SHAPE_ADAPTOR) == (resizes > 0), "%s: %d Resize nodes", what, resizes);
                CHECK((pools[p] == DP_POOL_DYNOPOOL) == (gathers > 0), "%s: %d Gather nodes", what, gathers);
                onnx__model_proto__free_unpacked(mp, NULL);
            }
            dp_infer_free(h);
        }
}

/* The initializers of one DynOPool network against the taps and the folded weights,
 * through a checkpoint: dp_infer_load's network, as `dynopool export` reads it. */
static void initializer_tests(const char *dir)
{
    dp_model_config cfg = dp_model_defaults();
    cfg.arch = DP_VGG16, cfg.pool = DP_POOL_DYNOPOOL, cfg.in_ch = 3, cfg.size = 24, cfg.classes = 4, cfg.width = 0.125f;
    dp_model *m = NULL;
    char ck[512], path[512], err[1024];
    CHECK(dp_model_create(&cfg, &m) == DP_OK, "create");
    if (!m) return;
    const float al[4] = {1.5f, 2.0f, 0.9f, 2.4f};
    dp_model_init_alphas(m, al, 4);
    snprintf(ck, sizeof ck, "%s/c.safetensors", dir);
    CHECK(dp_model_save(m, ck, NULL, NULL, 0, err, sizeof err) == DP_OK, "save: %s", err);
    dp_model_free(m);
    dp_infer *h = NULL;
    CHECK(dp_infer_load(ck, &h, err, sizeof err) == DP_OK, "load: %s", err);
    if (!h) return;
    snprintf(path, sizeof path, "%s/v.onnx", dir);
    CHECK(dp_export_onnx(h, path, NULL, err, sizeof err) == DP_OK, "export: %s", err);
    Onnx__ModelProto *mp = load_onnx(path);
    CHECK(mp && mp->graph, "the file does not parse");
    if (mp && mp->graph) {
        /* VGG-16's DynOPools in order: 24 -> 16 (fractional taps) -> 8 (alpha 2 on an even
         * side: both axes identities, a plain MaxPool) -> 9 (up-sampling) -> 4 */
        dp_infer_info in;
        dp_infer_info_get(h, &in);
        int side = 24, found = 0;
        for (int s = 0; s < 4; s++) {
            char name[64];
            const float a2[2] = {al[s], al[s]};
            static const int idx[4] = {6, 13, 23, 33}; /* its pooling modules */
            snprintf(name, sizeof name, "features.%d", idx[s]);
            found += check_dynopool(name, mp->graph, name, side, side, a2);
            CHECK(in.model.sizes[s][0] == dp_dynopool_size(side, al[s]), "stage %d size %d", s, in.model.sizes[s][0]);
            side = dp_dynopool_size(side, al[s]);
        }
        CHECK(found == 6, "%d DynOPool axes sampled, expected 6 (stage 2's two axes are identities)", found);
        const Onnx__TensorProto *w = initializer(mp->graph, "features.0.weight");
        CHECK(w && w->n_dims == 4 && w->dims[0] == 8 && w->dims[1] == 3 && w->dims[2] == 3 && w->dims[3] == 3,
              "features.0.weight: not (8, 3, 3, 3)");
        CHECK(initializer(mp->graph, "features.1.weight") == NULL, "the first batch norm was not folded");
        const char *v = meta(mp, "alphas");
        CHECK(v && !strcmp(v, "[[1.5, 1.5], [2, 2], [0.899999976, 0.899999976], [2.4000001, 2.4000001]]"),
              "alphas '%s'", v ? v : "-");
        onnx__model_proto__free_unpacked(mp, NULL);
    }
    /* refusals: a key of the library's own, an unwritable path */
    const char *k[1] = {"model"}, *vv[1] = {"x"};
    dp_onnx_opts o = {.keys = k, .vals = vv, .n_meta = 1};
    CHECK(dp_export_onnx(h, path, &o, err, sizeof err) == DP_ERR_ARG && strstr(err, "'model'"),
          "a duplicate key: '%s'", err);
    snprintf(path, sizeof path, "%s/no/such/dir/m.onnx", dir);
    CHECK(dp_export_onnx(h, path, NULL, err, sizeof err) == DP_ERR_IO && strstr(err, path), "unwritable: '%s'", err);
    CHECK(dp_export_onnx(NULL, path, NULL, err, sizeof err) == DP_ERR_NULL, "NULL handle");
    dp_infer_free(h);
}

/* ---- --logits: inputs and our logits for tests/onnx_test.sh -------------------------------- */

static int floats_of(const char *json, float *v, int n)
{
    cJSON *a = json ? cJSON_Parse(json) : NULL;
    int ok = cJSON_IsArray(a) && cJSON_GetArraySize(a) == n;
    for (int i = 0; ok && i < n; i++) v[i] = (float)cJSON_GetArrayItem(a, i)->valuedouble;
    cJSON_Delete(a);
    return ok ? 0 : -1;
}

static int write_floats(const char *dir, const char *name, const float *v, size_t n)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    const int ok = f && fwrite(v, sizeof(float), n, f) == n;
    const int closed = f ? fclose(f) : -1;
    return closed || !ok ? -1 : 0;
}

static int logits_mode(const char *onnx, const char *ckpt, const char *data, int n, const char *out)
{
    char err[1024];
    Onnx__ModelProto *mp = load_onnx(onnx);
    if (!mp) return fprintf(stderr, "%s: not an ONNX model\n", onnx), 1;
    dp_infer *h = NULL;
    if (dp_infer_load(ckpt, &h, err, sizeof err)) return fprintf(stderr, "%s\n", err), 1;
    dp_infer_info in;
    dp_infer_info_get(h, &in);
    const int c = in.cfg.in_ch, k = in.cfg.classes;
    dp_dataset *ds = NULL;
    if (dp_dataset_open(data, DP_DATA_AUTO, 0, 0, 0, &ds, err, sizeof err)) return fprintf(stderr, "%s\n", err), 1;
    dp_transform t = dp_transform_defaults(ds, 0, DP_VARIANT_NONE);
    const char *var = meta(mp, "data_variant"), *rs = meta(mp, "input_resize");
    t.variant = var ? dp_variant_parse(var) : -1;
    t.resize = rs ? atoi(rs) : 0;
    if (t.variant < 0 || floats_of(meta(mp, "mean"), t.mean, c) || floats_of(meta(mp, "std"), t.std, c))
        return fprintf(stderr, "%s: data_variant, mean or std missing from metadata_props\n", onnx), 1;
    dp_dataset_info di;
    dp_dataset_info_get(ds, &di);
    const int s = dp_transform_size(&t, di.size);
    if (s != in.cfg.size) return fprintf(stderr, "prepared side %d, the network takes %d\n", s, in.cfg.size), 1;
    int *idx = malloc(sizeof(int) * n);
    float *x = malloc(sizeof(float) * (size_t)n * c * s * s), *z = malloc(sizeof(float) * (size_t)n * k);
    for (int i = 0; i < n; i++) idx[i] = i;
    int rc = dp_dataset_batch(ds, &t, idx, n, 0, 0, x, NULL, err, sizeof err);
    if (!rc) rc = dp_infer_run(h, x, n, z);
    if (rc) return fprintf(stderr, "%s %s\n", dp_strerror(rc), err), 1;
    char p[1024];
    snprintf(p, sizeof p, "%s/shape.txt", out);
    FILE *f = fopen(p, "w");
    if (!f || fprintf(f, "%d %d %d %d\n", n, c, s, k) < 0 || fclose(f) ||
        write_floats(out, "x.bin", x, (size_t)n * c * s * s) || write_floats(out, "logits.bin", z, (size_t)n * k))
        return fprintf(stderr, "%s: cannot write: %s\n", out, strerror(errno)), 1;
    free(idx), free(x), free(z);
    dp_dataset_free(ds);
    dp_infer_free(h);
    onnx__model_proto__free_unpacked(mp, NULL);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 7 && !strcmp(argv[1], "--logits")) return logits_mode(argv[2], argv[3], argv[4], atoi(argv[5]), argv[6]);
    if (argc != 1) return fprintf(stderr, "usage: see tests/test_onnx.c\n"), 2;
    dp_set_threads(1);
    decomposition_tests();
    char dir[] = "/tmp/dp_onnx.XXXXXX";
    if (!mkdtemp(dir)) return fprintf(stderr, "mkdtemp\n"), 1;
    file_tests(dir);
    initializer_tests(dir);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", dir);
    return tu_finish("test_onnx");
}
