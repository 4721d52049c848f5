/* test_engine.c — model-level facts that need no golden file:
 *  - the human-designed GMACs and stage sizes of paper Table 5.1 (docs/models.md,
 *    "The paper's numbers");
 *  - DynOPool variants at their initial alphas: same stage sizes as human, and
 *    DynOPool's own cost under 1% for VGG-16 and ResNet-50 (Table 5.5);
 *  - checkpoints: a save/load round trip restores weights, statistics, alphas and
 *    optimizer state exactly (the next step matches bit for bit), leaves no
 *    temporary file, and a mismatched model is refused with a message that names it;
 *  - hostile checkpoints: metadata out of range or describing a larger network
 *    than the file holds, non-finite weights, alphas <= 0 are refused by file and
 *    field, and shape inference reports int overflow instead of wrapping;
 *  - the cosine schedule;
 *  - oneDNN primitives: a step at an unchanged shape builds none, and a shape
 *    that comes back finds its own still built (docs/engine.md, "Shapes that
 *    change"). */
#include <float.h>
#include <limits.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dynopool.h"
#include "engine/dnn.h"
#include "testutil.h"
#include "engine/model.h"
#include "store/safetensors.h"

static dp_model *make(int arch, int pool, int size, int classes, float width)
{
    dp_model_config c = dp_model_defaults();
    c.arch = arch, c.pool = pool, c.size = size, c.classes = classes, c.width = width;
    dp_model *m = NULL;
    int rc = dp_model_create(&c, &m);
    CHECK(rc == DP_OK, "create %s %s %d: %s", dp_arch_name(arch), dp_pool_name(pool), size,
          dp_strerror(rc));
    return m;
}

static void paper_table(void)
{
    /* paper Table 5.1: GMACs (two decimals) and the stage sizes (docs/models.md,
     * "The paper's numbers") */
    static const struct {
        int arch, size, classes;
        double gmacs;
        int n, sizes[5];
    } rows[] = {
        {DP_VGG16, 32, 100, 0.31, 4, {16, 8, 4, 2}},
        {DP_VGG16, 224, 1000, 15.39, 5, {112, 56, 28, 14, 7}},
        {DP_RESNET50, 32, 100, 1.31, 3, {16, 8, 4}},
        {DP_RESNET50, 224, 1000, 4.11, 4, {56, 28, 14, 7}},
        {DP_MOBILENETV2, 32, 100, 0.09, 3, {16, 8, 4}},
        {DP_MOBILENETV2, 224, 1000, 0.31, 5, {112, 56, 28, 14, 7}},
    };
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        for (int pool = DP_POOL_HUMAN; pool <= DP_POOL_DYNOPOOL; pool++) {
            dp_model *m = make(rows[r].arch, pool, rows[r].size, rows[r].classes, 1.0f);
            if (!m) continue;
            dp_model_info in;
            CHECK(dp_model_info_get(m, &in) == DP_OK, "info");
            const char *nm = dp_arch_name(rows[r].arch);
            if (pool == DP_POOL_HUMAN) {
                CHECK(fabs(in.gmacs - rows[r].gmacs) <= 0.01, "%s %d: %.4f GMACs, paper %.2f", nm,
                      rows[r].size, in.gmacs, rows[r].gmacs);
                CHECK(in.n_alphas == 0 && in.dynopool_share == 0.0, "%s human has alphas", nm);
            } else {
                CHECK(in.n_alphas == rows[r].n,
                      "%s dynopool: %d alphas", nm, in.n_alphas);
                if (rows[r].arch != DP_MOBILENETV2)
                    CHECK(in.dynopool_share > 0.0 && in.dynopool_share < 0.01,
                          "%s %d: DynOPool's share %.4f, paper: < 1%%", nm, rows[r].size,
                          in.dynopool_share);
            }
            CHECK(in.n_stages == rows[r].n, "%s %s %d: %d stages", nm, dp_pool_name(pool),
                  rows[r].size, in.n_stages);
            for (int s = 0; s < in.n_stages && s < rows[r].n; s++)
                CHECK(in.sizes[s][0] == rows[r].sizes[s] && in.sizes[s][1] == rows[r].sizes[s],
                      "%s %s %d stage %d: %dx%d, paper %d", nm, dp_pool_name(pool), rows[r].size,
                      s, in.sizes[s][0], in.sizes[s][1], rows[r].sizes[s]);
            dp_model_free(m);
        }
    }
    /* the four-decimal figures of our counting (docs/operator.md, "How MACs are
     * counted"; docs/models.md, "The paper's numbers") */
    dp_model *v = make(DP_VGG16, DP_POOL_HUMAN, 32, 100, 1.0f), *r = make(DP_RESNET50, DP_POOL_HUMAN, 32, 100, 1.0f);
    dp_model_info a, b;
    if (v && r && !dp_model_info_get(v, &a) && !dp_model_info_get(r, &b)) {
        CHECK(fabs(a.gmacs - 0.3141) < 5e-5, "VGG-16 32x32/100: %.5f, expected 0.3141", a.gmacs);
        CHECK(fabs(b.gmacs - 1.3049) < 5e-5, "ResNet-50 32x32/100: %.5f, expected 1.3049", b.gmacs);
        CHECK(a.params == 14774436, "VGG-16 params %lld", a.params);
    }
    dp_model_free(v);
    dp_model_free(r);
}

static void fill(float *x, size_t n, unsigned s)
{
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)((s >> 8) & 0xffff) / 32768.0f - 1.0f;
    }
}

/* EfficientNet-B0 and B1 (docs/models.md, "EfficientNet"): torchvision's parameter
 * counts, our GMACs (four decimals; the paper prints 0.42 and 0.75, counted with
 * more than the convolutions, BN and the classifier) and the stage sizes, human and
 * at the initial alphas, for ImageNet-sized and CIFAR-sized inputs. */
static void efficientnet_figures(void)
{
    static const struct {
        int arch, size, classes;
        double gmacs;
        long long params;
        int n, sizes[5];
    } rows[] = {
        {DP_EFFICIENTNET_B0, 224, 1000, 0.3993, 5288548, 5, {112, 56, 28, 14, 7}},
        {DP_EFFICIENTNET_B1, 240, 1000, 0.7086, 7794184, 5, {120, 60, 30, 15, 8}},
        {DP_EFFICIENTNET_B0, 32, 100, 0.1196, 4135648, 3, {16, 8, 4}},
    };
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++)
        for (int pool = DP_POOL_HUMAN; pool <= DP_POOL_SHAPE_ADAPTOR; pool++) {
            dp_model *m = make(rows[r].arch, pool, rows[r].size, rows[r].classes, 1.0f);
            dp_model_info in;
            if (!m || dp_model_info_get(m, &in) != DP_OK) {
                CHECK(0, "info");
                dp_model_free(m);
                continue;
            }
            const char *nm = dp_arch_name(rows[r].arch), *pn = dp_pool_name(pool);
            /* the learned resizers add their alphas (2 each; a shape adaptor 1) */
            const long long extra = pool == DP_POOL_DYNOPOOL ? 2LL * in.n_alphas
                                    : pool == DP_POOL_SHAPE_ADAPTOR ? in.n_alphas : 0;
            CHECK(in.params == rows[r].params + extra, "%s %s %d: %lld parameters, torchvision %lld (+%lld)",
                  nm, pn, rows[r].size, in.params, rows[r].params, extra);
            if (pool == DP_POOL_HUMAN)
                CHECK(fabs(in.gmacs - rows[r].gmacs) < 5e-5, "%s %d: %.5f GMACs, expected %.4f", nm,
                      rows[r].size, in.gmacs, rows[r].gmacs);
            else
                CHECK(in.gmacs > rows[r].gmacs, "%s %s %d: %.4f GMACs, not above the human %.4f", nm, pn,
                      rows[r].size, in.gmacs, rows[r].gmacs);
            if (pool == DP_POOL_DYNOPOOL) CHECK(in.n_alphas == rows[r].n, "%s dynopool: %d alphas", nm, in.n_alphas);
            if (pool != DP_POOL_SHAPE_ADAPTOR) { /* the adaptors start at one common scale instead */
                CHECK(in.n_stages == rows[r].n, "%s %s %d: %d stages", nm, pn, rows[r].size, in.n_stages);
                for (int s = 0; s < in.n_stages && s < rows[r].n; s++)
                    CHECK(in.sizes[s][0] == rows[r].sizes[s] && in.sizes[s][1] == rows[r].sizes[s],
                          "%s %s %d stage %d: %dx%d, expected %d", nm, pn, rows[r].size, s, in.sizes[s][0],
                          in.sizes[s][1], rows[r].sizes[s]);
            }
            dp_model_free(m);
        }
}

/* HRNetV2 for segmentation (docs/models.md, "HRNetV2") at the paper's Table 5.4 input (480 px,
 * 21 PascalVOC classes): GMACs and parameters of W18, W32, W48 (the parameter counts are those
 * of python/dynopool/models.py's twin of the official code; W48 within 1.5% of the paper's
 * 82.55 GMACs), the five map sizes, the dynopool variant's five alphas (one per level) at the
 * same count, and the widths it refuses.  Counted without allocating (dp_model_info_of_config). */
static void hrnet_figures(void)
{
    static const struct {
        float width;
        double gmacs;
        long long params;
    } rows[] = {{18, 16.3420, 9641661}, {32, 39.9012, 29547477}, {48, 82.4172, 65860821}, {1, 82.4172, 65860821}};
    static const int sizes[5] = {240, 120, 60, 30, 15};
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++)
        for (int pool = DP_POOL_HUMAN; pool <= DP_POOL_DYNOPOOL; pool++) {
            dp_model_config c = dp_model_defaults();
            c.arch = DP_HRNET, c.pool = pool, c.size = 480, c.classes = 21, c.width = rows[r].width;
            dp_model_info in;
            int rc = dp_model_info_of_config(&c, &in);
            CHECK(rc == DP_OK, "hrnet width %g %s: %s", (double)c.width, dp_pool_name(pool), dp_strerror(rc));
            if (rc) continue;
            const long long extra = pool == DP_POOL_DYNOPOOL ? 10 : 0;
            CHECK(fabs(in.gmacs - rows[r].gmacs) < 5e-5, "hrnet width %g %s: %.5f GMACs, expected %.4f",
                  (double)c.width, dp_pool_name(pool), in.gmacs, rows[r].gmacs);
            CHECK(in.params == rows[r].params + extra, "hrnet width %g %s: %lld parameters, expected %lld",
                  (double)c.width, dp_pool_name(pool), in.params, rows[r].params + extra);
            CHECK(in.n_stages == 5 && in.n_alphas == (pool == DP_POOL_DYNOPOOL ? 5 : 0),
                  "hrnet %s: %d stages, %d alphas", dp_pool_name(pool), in.n_stages, in.n_alphas);
            for (int s = 0; s < in.n_stages && s < 5; s++)
                CHECK(in.sizes[s][0] == sizes[s] && in.sizes[s][1] == sizes[s], "hrnet %s stage %d: %dx%d",
                      dp_pool_name(pool), s, in.sizes[s][0], in.sizes[s][1]);
            if (c.width == 48)
                CHECK(fabs(in.gmacs / 82.55 - 1) < 0.015, "hrnet-w48: %.4f GMACs, paper 82.55", in.gmacs);
        }
    static const float bad[] = {0.5f, 17.5f, 65.0f};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dp_model_config c = dp_model_defaults();
        c.arch = DP_HRNET, c.size = 480, c.classes = 21, c.width = bad[i];
        dp_model_info in;
        CHECK(dp_model_info_of_config(&c, &in) == DP_ERR_ARG, "hrnet width %g accepted", (double)bad[i]);
    }
    dp_model_config c = dp_model_defaults();
    c.arch = DP_HRNET, c.pool = DP_POOL_SHAPE_ADAPTOR, c.size = 64, c.classes = 3, c.width = 2;
    dp_model_info in;
    CHECK(dp_model_info_of_config(&c, &in) == DP_ERR_ARG, "hrnet shape-adaptor accepted");
    CHECK(dp_arch_is_seg(DP_HRNET) && !dp_arch_is_seg(DP_VGG16), "dp_arch_is_seg");
}

/* Segmentation metrics on a case worked by hand, and a tiny HRNet's per-pixel
 * predictions against the argmax of its scores. */
static void seg_metrics(void)
{
    /* 3 classes; class 2 never true nor predicted: IoU 0, still in the mean (the
     * official code's mean over all classes) */
    const int lab[10] = {0, 0, 0, 1, 1, 1, 1, DP_SEG_IGNORE, 0, 1};
    const int prd[10] = {0, 0, 1, 1, 1, 0, 1, 2, 0, 1};
    long long conf[9] = {0};
    CHECK(dp_seg_confusion_add(conf, 3, lab, prd, 10) == DP_OK, "confusion");
    /* truth 0: predicted 0 three times, 1 once; truth 1: 0 once, 1 four times; the 255 skipped */
    const long long want[9] = {3, 1, 0, 1, 4, 0, 0, 0, 0};
    CHECK(!memcmp(conf, want, sizeof want), "confusion %lld %lld / %lld %lld", conf[0], conf[1], conf[3], conf[4]);
    double acc, miou, iou[3];
    dp_seg_scores(conf, 3, &acc, &miou, iou);
    /* IoU_0 = 3 / (4 + 4 - 3) = 0.6, IoU_1 = 4 / (5 + 5 - 4) = 2/3, IoU_2 = 0 / max(1, 0) = 0 */
    CHECK(fabs(acc - 7.0 / 9.0) < 1e-15 && fabs(iou[0] - 0.6) < 1e-15 && fabs(iou[1] - 2.0 / 3.0) < 1e-15 &&
              iou[2] == 0.0 && fabs(miou - (0.6 + 2.0 / 3.0) / 3.0) < 1e-15,
          "pixel accuracy %.6f, IoU %.6f %.6f %.6f, mIoU %.6f", acc, iou[0], iou[1], iou[2], miou);
    const int out_of_range[1] = {3};
    CHECK(dp_seg_confusion_add(conf, 3, out_of_range, prd, 1) == DP_ERR_ARG, "label 3 of 3 classes");
    CHECK(!memcmp(conf, want, sizeof want), "nothing added on an error");

    dp_model_config c = dp_model_defaults();
    c.arch = DP_HRNET, c.pool = DP_POOL_DYNOPOOL, c.size = 32, c.classes = 4, c.width = 2;
    dp_model *m;
    CHECK(dp_model_create(&c, &m) == DP_OK, "hrnet w2");
    if (!m) return;
    enum { N = 2, P = 32 * 32 };
    static float x[N * 3 * P], sc[N * 4 * P];
    static int pred[N * P];
    fill(x, sizeof x / sizeof x[0], 5);
    CHECK(dp_model_predict(m, x, N, sc) == DP_OK && dp_model_predict_seg(m, x, N, pred) == DP_OK, "predict");
    int wrong = 0;
    for (int n = 0; n < N; n++)
        for (int p = 0; p < P; p++) {
            int best = 0;
            for (int k = 1; k < 4; k++)
                if (sc[((size_t)n * 4 + k) * P + p] > sc[((size_t)n * 4 + best) * P + p]) best = k;
            wrong += pred[n * P + p] != best;
        }
    CHECK(wrong == 0, "dp_model_predict_seg: %d of %d pixels not the argmax of dp_model_predict's scores", wrong, N * P);
    dp_model_free(m);
}

/* Dropout and stochastic depth in training: a run resumed from a checkpoint
 * (same seed) takes the same steps bit for bit as the run that went on; the
 * same checkpoint resumed under another seed draws other masks and parts. */
static void efficientnet_resume(void)
{
    enum { N = 4, S = 16, K = 5, STEPS = 3 };
    float x[N * 3 * S * S];
    int lab[N] = {0, 3, 1, 4};
    fill(x, sizeof x / sizeof x[0], 11);
    char dir[] = "/tmp/dp_effnet_XXXXXX", path[256], err[512] = "";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    for (int pool = DP_POOL_HUMAN; pool <= DP_POOL_DYNOPOOL; pool++) {
        dp_model_config c = dp_model_defaults();
        c.arch = DP_EFFICIENTNET_B0, c.pool = pool, c.size = S, c.classes = K, c.width = 0.25f, c.seed = 5;
        dp_model *a = NULL, *b = NULL, *o = NULL;
        CHECK(dp_model_create(&c, &a) == DP_OK && dp_model_create(&c, &b) == DP_OK, "create");
        c.seed = 6;
        CHECK(dp_model_create(&c, &o) == DP_OK, "create");
        if (!a || !b || !o) return;
        dp_train_config tc = dp_train_defaults(c.arch);
        tc.lambda = 0.3f;
        const float lr = 0.05f;
        dp_step_stats st;
        int rc = DP_OK;
        for (int s = 0; s < STEPS && !rc; s++) rc = dp_model_train_step(a, x, lab, N, &tc, lr, lr * 0.1f, &st);
        CHECK(rc == DP_OK && isfinite(st.loss), "%s: %d steps: %s", dp_pool_name(pool), STEPS, dp_strerror(rc));
        rc = dp_model_train_step(b, x, lab, N, &tc, lr, lr * 0.1f, &st);
        if (!rc) rc = dp_model_save(b, path, NULL, NULL, 0, err, sizeof err);
        CHECK(rc == DP_OK, "step and save: %s %s", dp_strerror(rc), err);
        dp_model_free(b);
        c.seed = 5;
        CHECK(dp_model_create(&c, &b) == DP_OK, "create");
        CHECK(dp_model_load(b, path, err, sizeof err) == DP_OK, "load: %s", err);
        CHECK(dp_model_load(o, path, err, sizeof err) == DP_OK, "load: %s", err);
        for (int s = 1; s < STEPS; s++) {
            dp_model_train_step(b, x, lab, N, &tc, lr, lr * 0.1f, &st);
            dp_model_train_step(o, x, lab, N, &tc, lr, lr * 0.1f, &st);
        }
        const size_t bytes = sizeof(float) * (size_t)a->net.n_params;
        CHECK(memcmp(a->net.params, b->net.params, bytes) == 0 &&
                  memcmp(a->net.stats, b->net.stats, sizeof(float) * (size_t)a->net.n_stats) == 0,
              "%s: resumed after 1 of %d steps, the weights differ from the run that went on",
              dp_pool_name(pool), STEPS);
        CHECK(memcmp(a->net.params, o->net.params, bytes) != 0,
              "%s: another seed drew the same masks: dropout and stochastic depth did nothing",
              dp_pool_name(pool));
        dp_model_free(a), dp_model_free(b), dp_model_free(o);
    }
    unlink(path);
    rmdir(dir);
}

static void checkpoints(void)
{
    char dir[] = "/tmp/dp_ckpt_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char path[256];
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    const int n = 4, S = 16, K = 5;
    float x[4 * 3 * 16 * 16];
    int lab[4] = {0, 3, 1, 4};
    fill(x, sizeof x / sizeof x[0], 7);
    for (int pool = 0; pool < 3; pool++) {
        dp_model_config c = dp_model_defaults();
        c.arch = DP_MOBILENETV2, c.pool = pool, c.size = S, c.classes = K, c.width = 0.25f;
        dp_model *a, *b;
        CHECK(dp_model_create(&c, &a) == DP_OK, "create");
        c.seed = 99; /* different weights: the load must overwrite all of them */
        CHECK(dp_model_create(&c, &b) == DP_OK, "create");
        dp_train_config tc = dp_train_defaults(c.arch);
        const float lr = 0.05f;
        tc.lambda = 0.5f;
        dp_step_stats st;
        for (int s = 0; s < 2; s++)
            CHECK(dp_model_train_step(a, x, lab, n, &tc, lr, lr * 0.1f, &st) == DP_OK, "step");
        const char *k[] = {"epoch"}, *v[] = {"2"};
        char err[512] = "";
        int rc = dp_model_save(a, path, k, v, 1, err, sizeof err);
        CHECK(rc == DP_OK, "save: %s", err);
        /* the folder holds the checkpoint and nothing else: no temporary file,
         * whatever name the writer chose for it */
        int entries = 0;
        DIR *dd = opendir(dir);
        for (struct dirent *e; dd && (e = readdir(dd));)
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                entries++;
                CHECK(strcmp(e->d_name, "m.safetensors") == 0, "left behind in the folder: %s", e->d_name);
            }
        if (dd) closedir(dd);
        CHECK(entries == 1, "%d entries in the checkpoint's folder, expected 1", entries);
        rc = dp_model_load(b, path, err, sizeof err);
        CHECK(rc == DP_OK, "load: %s", err);
        CHECK(b->net.n_params == a->net.n_params, "sizes");
        CHECK(memcmp(a->net.params, b->net.params, sizeof(float) * a->net.n_params) == 0,
              "parameters differ after a round trip (%s)", dp_pool_name(pool));
        CHECK(memcmp(a->net.stats, b->net.stats, sizeof(float) * a->net.n_stats) == 0, "statistics");
        CHECK(memcmp(a->sgd.buf, b->sgd.buf, sizeof(float) * a->net.n_params) == 0, "momentum");
        CHECK(dp_model_meta(b, "epoch") && strcmp(dp_model_meta(b, "epoch"), "2") == 0, "epoch");
        dp_step_stats sa, sb;
        dp_model_train_step(a, x, lab, n, &tc, lr, lr * 0.1f, &sa);
        dp_model_train_step(b, x, lab, n, &tc, lr, lr * 0.1f, &sb);
        CHECK(sa.loss == sb.loss, "next step: %.9g vs %.9g", sa.loss, sb.loss);
        CHECK(memcmp(a->net.params, b->net.params, sizeof(float) * a->net.n_params) == 0,
              "parameters after the next step");
        dp_model_config cc;
        CHECK(dp_checkpoint_config(path, &cc, err, sizeof err) == DP_OK && cc.arch == c.arch &&
                  cc.pool == pool && cc.size == S && cc.classes == K && cc.width == 0.25f,
              "checkpoint config: %s", err);
        dp_model_free(a);
        dp_model_free(b);
    }
    /* a checkpoint of another model is refused, by name */
    dp_model_config c = dp_model_defaults();
    c.arch = DP_VGG16, c.size = S, c.classes = K, c.width = 0.25f;
    dp_model *w;
    CHECK(dp_model_create(&c, &w) == DP_OK, "create");
    char err[512] = "";
    CHECK(dp_model_load(w, path, err, sizeof err) == DP_ERR_FORMAT, "wrong model accepted");
    CHECK(strstr(err, "model = mobilenetv2") && strstr(err, "vgg16"), "message: %s", err);
    c.classes = K + 1;
    dp_model_free(w);
    CHECK(dp_model_create(&c, &w) == DP_OK, "create");
    err[0] = 0;
    CHECK(dp_model_load(w, "/nonexistent/x.safetensors", err, sizeof err) == DP_ERR_IO, "missing file");
    CHECK(strstr(err, "/nonexistent/x.safetensors") != NULL, "message: %s", err);
    dp_model_free(w);
    unlink(path);
    rmdir(dir);
}

/* An alpha step that would cross zero stops at alpha_min, and training goes on. */
static void alpha_floor(void)
{
    dp_model *m = make(DP_VGG16, DP_POOL_DYNOPOOL, 16, 5, 0.125f);
    if (!m) return;
    float x[2 * 3 * 16 * 16];
    int lab[2] = {1, 4};
    fill(x, sizeof x / sizeof x[0], 5);
    dp_train_config tc = dp_train_defaults(DP_VGG16);
    CHECK(dp_model_train_step(m, x, lab, 2, &tc, 0.0f, 0.0f, NULL) == DP_OK, "step");
    /* a gradient that drives the first alpha far below zero (all four there
     * would make the last map 16 * 4^4 cells wide) */
    dp_net *net = &m->net;
    int first = 1;
    for (int i = 0; i < net->n_pv; i++)
        for (long long k = 0; k < net->pv[i].numel; k++)
            net->grads[net->pv[i].off + k] = net->pv[i].group && first ? 1e6f : 0.0f;
    for (int i = 0; i < net->n_pv; i++)
        if (net->pv[i].group) { /* only the first alpha moves */
            for (int j = i + 1; j < net->n_pv; j++)
                for (long long k = 0; k < net->pv[j].numel; k++) net->grads[net->pv[j].off + k] = 0.0f;
            break;
        }
    (void)first;
    m->sgd.alpha_min = 0.25f;
    memset(m->sgd.buf, 0, sizeof(float) * (size_t)net->n_params); /* no momentum from step 1 */
    dp_sgd_step(&m->sgd, net, 0.0f, 1.0f);
    dp_model_info in;
    dp_model_info_get(m, &in);
    CHECK(in.n_alphas == 4, "alphas");
    CHECK(in.alphas[0][0] == 0.25f && in.alphas[0][1] == 0.25f,
          "alpha 0 = (%g, %g), expected the 0.25 floor", (double)in.alphas[0][0], (double)in.alphas[0][1]);
    for (int i = 1; i < in.n_alphas; i++)
        CHECK(in.alphas[i][0] == 2.0f && in.alphas[i][1] == 2.0f, "alpha %d moved", i);
    CHECK(dp_model_train_step(m, x, lab, 2, &tc, 0.0f, 0.0f, NULL) == DP_OK, "a step at alpha_min");
    dp_model_info_get(m, &in);
    CHECK(in.sizes[0][0] == 64, "16 / 0.25 = %d", in.sizes[0][0]);
    tc.alpha_min = 0.0f;
    CHECK(dp_model_train_step(m, x, lab, 2, &tc, 0.0f, 0.0f, NULL) == DP_ERR_ALPHA, "alpha_min 0 accepted");
    dp_model_free(m);
}

/* Shapes that change between steps: a model whose alphas cross rounding
 * boundaries (maps grow, shrink, come back) must compute exactly what a model
 * built fresh at those alphas computes — buffers kept at their high-water mark
 * and primitives rebuilt for the new shapes, nothing stale. */
static void changing_shapes(void)
{
    static const float alphas[][2] = {{2.0f, 2.0f}, {1.3f, 1.7f}, {2.6f, 0.9f}, {2.0f, 2.0f}, {1.3f, 1.7f}};
    for (int pool = DP_POOL_DYNOPOOL; pool <= DP_POOL_DYNOPOOL; pool++)
        for (int arch = 0; arch < 3; arch++) {
            dp_model_config c = dp_model_defaults();
            c.arch = arch, c.pool = pool, c.size = 20, c.classes = 7, c.width = 0.125f;
            dp_model *a;
            CHECK(dp_model_create(&c, &a) == DP_OK, "create");
            const int n = 3;
            float x[3 * 3 * 20 * 20];
            int lab[3] = {0, 6, 2};
            fill(x, sizeof x / sizeof x[0], 11);
            float *dl = malloc(sizeof(float) * n * c.classes);
            for (size_t k = 0; k < sizeof alphas / sizeof alphas[0]; k++) {
                dp_net *na = &a->net;
                for (int i = 0; i < na->n_pv; i++)
                    if (na->pv[i].positive) {
                        na->params[na->pv[i].off] = alphas[k][0];
                        na->params[na->pv[i].off + 1] = alphas[k][1];
                    }
                dp_model *b;
                CHECK(dp_model_create(&c, &b) == DP_OK, "create");
                memcpy(b->net.params, na->params, sizeof(float) * na->n_params);
                memcpy(b->net.stats, na->stats, sizeof(float) * na->n_stats);
                dp_model *m[2] = {a, b};
                double loss[2];
                for (int j = 0; j < 2; j++) {
                    dp_net *t = &m[j]->net;
                    CHECK(dp_net_forward(t, x, n, 3, 20, 20, 1, NULL) == DP_OK, "forward");
                    dp_softmax_ce(t->nodes[t->out].y.data, lab, n, c.classes, &loss[j], dl);
                    CHECK(dp_net_backward(t, dl, NULL) == DP_OK, "backward");
                }
                CHECK(loss[0] == loss[1], "%s alphas (%g, %g): loss %.9g reused vs %.9g fresh",
                      dp_arch_name(arch), (double)alphas[k][0], (double)alphas[k][1], loss[0], loss[1]);
                CHECK(memcmp(a->net.grads, b->net.grads, sizeof(float) * na->n_params) == 0,
                      "%s alphas (%g, %g): gradients of the reused model differ from a fresh one",
                      dp_arch_name(arch), (double)alphas[k][0], (double)alphas[k][1]);
                memcpy(na->stats, b->net.stats, sizeof(float) * na->n_stats);
                dp_model_free(b);
            }
            free(dl);
            dp_model_free(a);
        }
}

static void schedule(void)
{
    CHECK(dp_recipe_lr_factor(0, 200) == 1.0, "epoch 0");
    CHECK(fabs(dp_recipe_lr_factor(100, 200) - 0.5) < 1e-15, "half way");
    CHECK(fabs(dp_recipe_lr_factor(200, 200)) < 1e-15, "end");
}

/* test_engine --write-checkpoint PATH: a trained-for-two-steps MobileNetV2
 * dynopool checkpoint for the CLI tests (ctest fixture). */
static int write_checkpoint(const char *path)
{
    dp_model_config c = dp_model_defaults();
    c.arch = DP_MOBILENETV2, c.pool = DP_POOL_DYNOPOOL, c.size = 16, c.classes = 5, c.width = 0.25f;
    dp_model *m;
    if (dp_model_create(&c, &m)) return 1;
    float x[2 * 3 * 16 * 16];
    int lab[2] = {1, 4};
    fill(x, sizeof x / sizeof x[0], 3);
    dp_train_config tc = dp_train_defaults(c.arch);
    tc.lambda = 0.5f;
    int rc = 0;
    for (int s = 0; s < 2 && !rc; s++) rc = dp_model_train_step(m, x, lab, 2, &tc, 0.05f, 0.005f, NULL);
    /* Two steps on two images move the alphas by amounts that depend on the
     * CPU's rounding (batch norm over 2 images is ill-conditioned): the CLI
     * tests read known alphas, set here, 1.875 and 1.75 at the first stage. */
    const float known[3][2] = {{1.875f, 1.75f}, {2.125f, 1.5f}, {2.0f, 2.25f}};
    for (int i = 0, k = 0; i < m->net.n_pv && k < 3; i++)
        if (m->net.pv[i].group == 1) {
            float *a = m->net.params + m->net.pv[i].off;
            a[0] = known[k][0], a[1] = known[k][1], k++;
        }
    char err[256] = "";
    const char *k[] = {"epoch"}, *v[] = {"2"};
    if (!rc) rc = dp_model_save(m, path, k, v, 1, err, sizeof err);
    if (rc) fprintf(stderr, "write_checkpoint: %s %s\n", dp_strerror(rc), err);
    dp_model_free(m);
    return rc != 0;
}

/* The memory guard: an alpha that would make a map wider than max_side is
 * raised to the smallest value that keeps it, stage by stage. */
static void size_cap(void)
{
    dp_model *m = make(DP_VGG16, DP_POOL_DYNOPOOL, 16, 5, 0.25f);
    if (!m) return;
    dp_net *net = &m->net;
    float *a[4];
    int k = 0;
    for (int i = 0; i < net->n_pv && k < 4; i++)
        if (net->pv[i].group) a[k++] = net->params + net->pv[i].off;
    a[0][0] = 0.5f, a[0][1] = 0.7f; /* 16 -> 32 x 23 */
    a[1][0] = 2.0f, a[1][1] = 0.3f; /* then w: 23 -> 77 */
    CHECK(dp_model_cap_sizes(m, 24) == 2, "two alphas raised");
    dp_model_info in;
    dp_model_info_get(m, &in);
    CHECK(in.sizes[0][0] == 24 && in.sizes[0][1] == 23, "stage 1 %dx%d, expected 24x23", in.sizes[0][0], in.sizes[0][1]);
    CHECK(in.sizes[1][0] == 12 && in.sizes[1][1] == 24, "stage 2 %dx%d, expected 12x24", in.sizes[1][0], in.sizes[1][1]);
    CHECK(a[0][1] == 0.7f, "an alpha within the cap moved");
    CHECK(dp_dynopool_size(16, nextafterf(a[0][0], 0.0f)) > 24 && dp_dynopool_size(23, nextafterf(a[1][1], 0.0f)) > 24,
          "the raised alphas are not the smallest that keep the cap");
    CHECK(dp_model_cap_sizes(m, 24) == 0, "a second pass raised again");
    CHECK(dp_model_cap_sizes(m, 1) == DP_ERR_ARG, "cap 1 accepted");
    /* through a training step */
    a[2][0] = 0.2f; /* 12 -> 60 */
    float x[2 * 3 * 16 * 16];
    int lab[2] = {1, 4};
    fill(x, sizeof x / sizeof x[0], 9);
    dp_train_config tc = dp_train_defaults(DP_VGG16);
    tc.max_side = 24;
    dp_step_stats st;
    CHECK(dp_model_train_step(m, x, lab, 2, &tc, 0.0f, 0.0f, &st) == DP_OK && st.capped == 1, "capped %d", st.capped);
    dp_model_info_get(m, &in);
    CHECK(in.sizes[2][0] == 24, "stage 3 height %d after the step, expected 24", in.sizes[2][0]);
    dp_model_free(m);
}

/* ResNet's shortcut DynOPools share their block's alpha and hold none: the guard
 * caps the owner and touches nothing else.  (It once read a sharer's "alpha" at
 * offset -1: the word before the parameters and the first weight, which it
 * "raised" when that weight was small and positive.) */
static void size_cap_shared(void)
{
    dp_model *m = make(DP_RESNET50, DP_POOL_DYNOPOOL, 16, 5, 0.25f);
    if (!m) return;
    dp_net *net = &m->net;
    CHECK(net->pv[0].off == 0 && net->pv[0].group == 0, "the first tensor is not a weight at offset 0");
    net->params[0] = 1e-3f; /* as an alpha: 16 / 1e-3 cells, far above any cap */
    const int r = dp_model_cap_sizes(m, 24);
    CHECK(r == 0, "%d alphas raised, expected none (every map is within 24)", r);
    CHECK(net->params[0] == 1e-3f, "the first weight became %g", (double)net->params[0]);
    dp_model_free(m);
}

/* --alpha-init's library call: one alpha for all stages or one per stage. */
static void alpha_init(void)
{
    dp_model *m = make(DP_VGG16, DP_POOL_DYNOPOOL, 16, 5, 0.25f), *h = make(DP_VGG16, DP_POOL_HUMAN, 16, 5, 0.25f);
    if (!m || !h) return;
    const float one = 1.0f, two[2] = {1.0f, 2.0f}, four[4] = {1.0f, 2.0f, 3.0f, 0.5f}, zero = 0.0f;
    CHECK(dp_model_init_alphas(m, NULL, 0) == 4, "stages %d, expected 4", dp_model_init_alphas(m, NULL, 0));
    CHECK(dp_model_init_alphas(m, two, 2) == DP_ERR_ARG, "2 alphas for 4 stages accepted");
    CHECK(dp_model_init_alphas(m, &zero, 1) == DP_ERR_ALPHA, "alpha 0 accepted");
    CHECK(dp_model_init_alphas(h, &one, 1) == DP_ERR_ARG, "a human model took alphas");
    dp_model_info in;
    CHECK(dp_model_init_alphas(m, &one, 1) == DP_OK && dp_model_info_get(m, &in) == DP_OK &&
              in.sizes[3][0] == 16 && in.alphas[2][1] == 1.0f, "one alpha for all: last map %d", in.sizes[3][0]);
    CHECK(dp_model_init_alphas(m, four, 4) == DP_OK && dp_model_info_get(m, &in) == DP_OK &&
              in.alphas[0][0] == 1.0f && in.alphas[3][1] == 0.5f && in.sizes[3][0] == 6,
          "one per stage: alphas (%g, %g), last map %d, expected 16 -> 16 -> 8 -> 3 -> 6",
          (double)in.alphas[0][0], (double)in.alphas[3][1], in.sizes[3][0]);
    dp_model_free(m);
    dp_model_free(h);
}

/* The alphas' gradient of a step split into its task and complexity terms
 * (dp_step_stats): the task term does not depend on lambda, the complexity term
 * is lambda dL_GMACs/dalpha (dp_net_gmacs_loss on its own), and the alphas move by
 * their sum; --alpha-momentum 0 takes the momentum off the alphas only. */
static void alpha_grad_split(void)
{
    enum { N = 2, S = 16 };
    const float lam = 3.0f, lra = 0.01f, lr = 0.05f;
    dp_model *m[4];
    for (int k = 0; k < 4; k++)
        if (!(m[k] = make(DP_VGG16, DP_POOL_DYNOPOOL, S, 5, 0.25f))) return;
    float x[N * 3 * S * S];
    int lab[N] = {1, 4};
    fill(x, sizeof x / sizeof x[0], 23);
    /* m[3] (untouched) gives the complexity gradient on its own */
    dp_net *n3 = &m[3]->net;
    float *g = calloc((size_t)n3->n_params, sizeof(float));
    if (!g) return;
    dp_net_gmacs_loss(n3, lam, g);
    dp_train_config tc[3] = {dp_train_defaults(DP_VGG16), dp_train_defaults(DP_VGG16), dp_train_defaults(DP_VGG16)};
    tc[1].lambda = lam;
    tc[2].lambda = lam, tc[2].alpha_momentum = 0.0f;
    dp_step_stats st[3];
    for (int k = 0; k < 3; k++)
        CHECK(dp_model_train_step(m[k], x, lab, N, &tc[k], lr, lra, &st[k]) == DP_OK, "step %d", k);
    CHECK(st[0].n_galpha == 4 && st[1].n_galpha == 4, "alpha tensors %d, %d, expected 4", st[0].n_galpha,
          st[1].n_galpha);
    int a = 0;
    for (int v = 0; v < n3->n_pv; v++) {
        const dp_pview *pv = &n3->pv[v];
        if (!pv->group) continue;
        for (int j = 0; j < 2 && a < st[1].n_galpha; j++) {
            const double task = st[1].galpha_task[a][j], cost = st[1].galpha_cost[a][j], want = g[pv->off + j];
            /* the total is a float: the split is exact to its rounding */
            const double tol = 4 * FLT_EPSILON * (fabs(task) + fabs(cost)) + 1e-30;
            CHECK(st[0].galpha_task[a][j] == task && st[0].galpha_cost[a][j] == 0.0,
                  "alpha %d.%d: lambda changed the task term (%g, %g) or lambda 0 has a cost term %g", a, j,
                  st[0].galpha_task[a][j], task, st[0].galpha_cost[a][j]);
            CHECK(fabs(cost - want) <= tol, "alpha %d.%d: complexity term %.9g, dp_net_gmacs_loss gives %.9g", a, j,
                  cost, want);
            CHECK(st[1].alpha[a][j] == 2.0f, "alpha %d.%d before the step: %g", a, j, (double)st[1].alpha[a][j]);
            /* first step, Nesterov: p -= lra (1 + momentum) g; without momentum p -= lra g */
            const double moved[2] = {st[1].alpha[a][j] - m[1]->net.params[pv->off + j],
                                     st[2].alpha[a][j] - m[2]->net.params[pv->off + j]};
            const double step = (double)lra * (task + cost), ftol = 8 * FLT_EPSILON * 2.0 + tol * lra * 2;
            CHECK(fabs(moved[0] - 1.9 * step) <= ftol && fabs(moved[1] - step) <= ftol,
                  "alpha %d.%d moved %.9g (momentum 0.9) and %.9g (none); expected %.9g and %.9g", a, j, moved[0],
                  moved[1], 1.9 * step, step);
        }
        a++;
    }
    /* the weights keep their momentum */
    int same = 1;
    for (int v = 0; v < n3->n_pv; v++)
        if (!n3->pv[v].group)
            same &= !memcmp(m[1]->net.params + n3->pv[v].off, m[2]->net.params + n3->pv[v].off,
                            sizeof(float) * (size_t)n3->pv[v].numel);
    CHECK(same, "alpha_momentum 0 changed the weights' step");
    free(g);
    for (int k = 0; k < 4; k++) dp_model_free(m[k]);
}

/* A step whose loss is not finite changes nothing: weights, alphas, momentum,
 * BN running statistics and their counters. */
static void nonfinite(void)
{
    dp_model *m = make(DP_VGG16, DP_POOL_DYNOPOOL, 16, 5, 0.25f);
    if (!m) return;
    float x[2 * 3 * 16 * 16];
    int lab[2] = {1, 4};
    fill(x, sizeof x / sizeof x[0], 11);
    dp_train_config tc = dp_train_defaults(DP_VGG16);
    char first[128] = "?";
    CHECK(dp_model_nonfinite(m, first, sizeof first) == 0 && !first[0], "a new model is not finite: %s", first);
    CHECK(dp_model_train_step(m, x, lab, 2, &tc, INFINITY, 0.0f, NULL) == DP_OK, "an infinite step");
    /* the step's loss was finite, but the weights it left are not: found, by name */
    const int bad = dp_model_nonfinite(m, first, sizeof first);
    CHECK(bad > 0 && strstr(first, "weight"), "after an infinite step: %d non-finite tensors, first '%s'", bad, first);
    dp_net *net = &m->net;
    const size_t np = sizeof(float) * (size_t)net->n_params, ns = sizeof(float) * (size_t)net->n_stats;
    float *p = malloc(np), *b = malloc(np), *s = malloc(ns);
    memcpy(p, net->params, np), memcpy(b, m->sgd.buf, np), memcpy(s, net->stats, ns);
    long long nbt = 0;
    for (int i = 0; i < net->n_nodes; i++) nbt += net->nodes[i].type == DP_OP_BN ? net->nodes[i].nbt : 0;
    dp_step_stats st;
    CHECK(dp_model_train_step(m, x, lab, 2, &tc, 0.1f, 0.01f, &st) == DP_ERR_NONFINITE, "NaN weights gave a finite loss");
    CHECK(memcmp(p, net->params, np) == 0 && memcmp(b, m->sgd.buf, np) == 0, "weights or momentum changed");
    CHECK(memcmp(s, net->stats, ns) == 0, "BN running statistics changed");
    for (int i = 0; i < net->n_nodes; i++) nbt -= net->nodes[i].type == DP_OP_BN ? net->nodes[i].nbt : 0;
    CHECK(nbt == 0, "num_batches_tracked changed");
    free(p), free(b), free(s);
    dp_model_free(m);
}

/* A NaN inside the network reaches the logits, as in PyTorch (ReLU, max
 * pooling and DynOPool propagate it), instead of being hidden by a ReLU that
 * maps it to 0: one NaN pixel of image 0, batch norm on running statistics
 * (eval), every model and pooling on both backends. */
static void nan_propagates(void)
{
    static const int archs[3] = {DP_VGG16, DP_RESNET50, DP_MOBILENETV2};
    static const int pools[3] = {DP_POOL_HUMAN, DP_POOL_DYNOPOOL, DP_POOL_SHAPE_ADAPTOR};
    for (int a = 0; a < 3; a++)
        for (int p = 0; p < 3; p++)
            for (int ref = 0; ref < 2; ref++) {
                dp_model_config c = dp_model_defaults();
                c.arch = archs[a], c.pool = pools[p], c.size = 16, c.classes = 5, c.width = 0.25f;
                c.reference = ref;
                dp_model *m = NULL;
                if (dp_model_create(&c, &m)) {
                    CHECK(0, "create %s %s", dp_arch_name(c.arch), dp_pool_name(c.pool));
                    continue;
                }
                float x[2 * 3 * 16 * 16];
                fill(x, sizeof x / sizeof x[0], 5);
                x[3 * 16 + 7] = NAN; /* image 0, channel 0, row 3 */
                int rc = dp_net_forward(&m->net, x, 2, 3, 16, 16, 0, NULL);
                CHECK(rc == DP_OK, "forward: %s", dp_strerror(rc));
                const float *lg = m->net.nodes[m->net.out].y.data;
                int nan0 = 0, fin1 = 0;
                for (int k = 0; !rc && k < 5; k++) nan0 += isnan(lg[k]) != 0, fin1 += isfinite(lg[5 + k]) != 0;
                CHECK(rc || (nan0 == 5 && fin1 == 5), "%s %s [%s]: a NaN pixel gave %d NaN logits of 5 in its image, %d finite of 5 in the other",
                      dp_arch_name(c.arch), dp_pool_name(c.pool), ref ? "reference" : "oneDNN", nan0, fin1);
                dp_model_free(m);
            }
}

/* dst = src with metadata key set to val (key NULL: none changed) and, when
 * tensor is given, its element 0 set to x; 0 or -1. */
static int rewrite(const char *src, const char *dst, const char *key, const char *val, const char *tensor, float x)
{
    static const char *const keys[] = {"format", "model", "variant", "in_ch", "size", "classes",
                                       "width", "alphas", "sizes", "optimizer", "steps", "epoch"};
    enum { NK = sizeof keys / sizeof keys[0] };
    st_file *f;
    char err[512];
    if (st_load(src, &f, err, sizeof err)) return -1;
    const int n = st_count(f);
    st_view *v = malloc(sizeof *v * (size_t)n);
    float *copy = NULL;
    const char *k[NK], *mv[NK];
    int nk = 0;
    for (int i = 0; i < n; i++) {
        v[i] = *st_get(f, i);
        if (tensor && strcmp(v[i].name, tensor) == 0) {
            const size_t bytes = st_numel(&v[i]) * sizeof(float);
            copy = malloc(bytes);
            memcpy(copy, v[i].data, bytes);
            copy[0] = x;
            v[i].data = copy;
        }
    }
    for (int i = 0; i < NK; i++) {
        const char *val0 = key && strcmp(keys[i], key) == 0 ? val : st_meta(f, keys[i]);
        if (val0) k[nk] = keys[i], mv[nk++] = val0;
    }
    const int rc = st_save(dst, v, n, k, mv, nk, err, sizeof err);
    free(copy);
    free(v);
    st_free(f);
    return rc ? -1 : 0;
}

/* Checkpoints that lie: each is refused with a message naming the file and the
 * field (and, for metadata that describe more than the file holds, before any
 * network is built for them). */
static void hostile_checkpoints(void)
{
    char dir[] = "/tmp/dp_hostile_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char good[256], bad[256], err[1024];
    snprintf(good, sizeof good, "%s/good.safetensors", dir);
    snprintf(bad, sizeof bad, "%s/bad.safetensors", dir);
    CHECK(write_checkpoint(good) == 0, "write the checkpoint");
    dp_model_config c = dp_model_defaults(), cc;
    c.arch = DP_MOBILENETV2, c.pool = DP_POOL_DYNOPOOL, c.size = 16, c.classes = 5, c.width = 0.25f;
    static const struct { const char *key, *val, *msg; } meta[] = {
        {"size", "2147483647", "metadata 'size' = '2147483647', expected an integer in [2, 16384]"},
        {"size", "16x", "metadata 'size' = '16x', expected an integer in [2, 16384]"},
        {"in_ch", "99999999999", "metadata 'in_ch' = '99999999999', expected an integer in [1, 4096]"},
        {"classes", "-5", "metadata 'classes' = '-5', expected an integer in [1, 1000000]"},
        {"width", "nan", "metadata 'width' = 'nan', expected a number in (0, 16]"},
        {"model", "vgg19", "metadata 'model' = 'vgg19', expected vgg16, resnet50, mobilenetv2, efficientnet-b0, efficientnet-b1 or hrnet-w48"},
        {"width", "18", "metadata 'width' = '18', expected a number in (0, 16]"},
        {"steps", "1e300", "metadata 'steps' = '1e300', expected an integer in [0, 2^53]"},
        /* a larger network than the file holds: refused from the layout alone */
        {"width", "16", "metadata model mobilenetv2, variant dynopool, in_ch 3, classes 5, width 16 imply "
                        "tensor 'features.0.0.weight' F32[512, 3, 3, 3], the file holds F32[8, 3, 3, 3]"},
        {"classes", "100000", "classes 100000, width 0.25 imply tensor 'classifier.1.weight' F32[100000, 1280], "
                              "the file holds F32[5, 1280]"},
    };
    for (size_t i = 0; i < sizeof meta / sizeof meta[0]; i++) {
        CHECK(rewrite(good, bad, meta[i].key, meta[i].val, NULL, 0) == 0, "rewrite");
        err[0] = 0;
        const int rc = dp_checkpoint_config(bad, &cc, err, sizeof err);
        CHECK(rc == DP_ERR_FORMAT && strstr(err, bad) && strstr(err, meta[i].msg),
              "%s = %s: rc %d, message '%s', expected '%s'", meta[i].key, meta[i].val, rc, err, meta[i].msg);
    }
    /* dp_model_load (resume) checks 'steps' too */
    dp_model *m = NULL;
    CHECK(dp_model_create(&c, &m) == DP_OK, "create");
    CHECK(rewrite(good, bad, "steps", "-1", NULL, 0) == 0, "rewrite");
    err[0] = 0;
    CHECK(dp_model_load(m, bad, err, sizeof err) == DP_ERR_FORMAT && strstr(err, "metadata 'steps' = '-1'"),
          "steps -1: %s", err);
    /* values: an alpha <= 0 and a NaN weight */
    static const struct { const char *tensor; float x; const char *msg; } val[] = {
        {"features.4.conv.1.3.alpha", 0.0f, "tensor 'features.4.conv.1.3.alpha' element 0 is 0, expected a finite alpha > 0"},
        {"features.4.conv.1.3.alpha", -1.0f, "element 0 is -1, expected a finite alpha > 0"},
        {"features.0.0.weight", NAN, "tensor 'features.0.0.weight' element 0 is nan, expected a finite number"},
    };
    for (size_t i = 0; i < sizeof val / sizeof val[0]; i++) {
        CHECK(rewrite(good, bad, NULL, NULL, val[i].tensor, val[i].x) == 0, "rewrite");
        err[0] = 0;
        const int rc = dp_model_load(m, bad, err, sizeof err);
        CHECK(rc == DP_ERR_FORMAT && strstr(err, bad) && strstr(err, val[i].msg), "%s = %g: rc %d, '%s'",
              val[i].tensor, (double)val[i].x, rc, err);
    }
    err[0] = 0;
    CHECK(dp_model_load(m, good, err, sizeof err) == DP_OK, "the good checkpoint: %s", err);
    dp_model_free(m);
    /* a width written by another tool ("0.3", not %.9g's "0.300000012") loads */
    c.width = 0.3f;
    CHECK(dp_model_create(&c, &m) == DP_OK, "create");
    CHECK(dp_model_save(m, good, NULL, NULL, 0, err, sizeof err) == DP_OK, "save: %s", err);
    CHECK(rewrite(good, bad, "width", "0.3", NULL, 0) == 0, "rewrite");
    err[0] = 0;
    CHECK(dp_checkpoint_config(bad, &cc, err, sizeof err) == DP_OK && cc.width == 0.3f, "width 0.3: %s", err);
    CHECK(dp_model_load(m, bad, err, sizeof err) == DP_OK, "width 0.3: %s", err);
    dp_model_free(m);
    /* HRNet's width is its channel number C: W18's checkpoint loads (eval, plot and
     * --resume of a segmentation run read it so), a C that is no integer does not */
    dp_model_config h = dp_model_defaults();
    h.arch = DP_HRNET, h.pool = DP_POOL_DYNOPOOL, h.size = 32, h.classes = 3, h.width = 18.0f;
    CHECK(dp_model_create(&h, &m) == DP_OK, "create hrnet C=18");
    CHECK(dp_model_save(m, good, NULL, NULL, 0, err, sizeof err) == DP_OK, "save: %s", err);
    err[0] = 0;
    CHECK(dp_checkpoint_config(good, &cc, err, sizeof err) == DP_OK && cc.arch == DP_HRNET && cc.width == 18.0f,
          "hrnet C=18: %s", err);
    CHECK(dp_model_load(m, good, err, sizeof err) == DP_OK, "hrnet C=18: %s", err);
    for (int i = 0; i < 2; i++) {
        const char *w = i ? "65" : "18.5";
        CHECK(rewrite(good, bad, "width", w, NULL, 0) == 0, "rewrite");
        err[0] = 0;
        CHECK(dp_checkpoint_config(bad, &cc, err, sizeof err) == DP_ERR_FORMAT &&
                  strstr(err, "expected 1 (W48) or HRNet's channel number, an integer in [2, 64]"),
              "hrnet width %s: %s", w, err);
    }
    dp_model_free(m);
    unlink(good);
    unlink(bad);
    rmdir(dir);
}

/* Shape inference in 64 bits: sides near INT_MAX give DP_ERR_OVERFLOW, not a
 * wrapped (negative or tiny) size. */
static void huge_sizes(void)
{
    static const int sides[] = {INT_MAX, INT_MAX - 1, 1 << 30};
    for (int arch = 0; arch < 3; arch++)
        for (size_t i = 0; i < sizeof sides / sizeof sides[0]; i++) {
            dp_model_config c = dp_model_defaults();
            c.arch = arch, c.size = sides[i], c.width = 0.125f, c.classes = 3;
            dp_model *m = NULL;
            const int rc = dp_model_create(&c, &m);
            CHECK(rc == DP_ERR_OVERFLOW && !m, "%s at %d: %s, expected DP_ERR_OVERFLOW", dp_arch_name(arch), sides[i],
                  dp_strerror(rc));
            dp_model_free(m);
        }
}


/* States built (and reused) by dnn.c during one training step of m at lr 0. */
static long long step_builds(dp_model *m, const float *x, const int *lab, int n, long long *reused)
{
    dp_train_config tc = dp_train_defaults(m->cfg.arch);
    dnn_stats a, b;
    dnn_stats_get(&a);
    CHECK(dp_model_train_step(m, x, lab, n, &tc, 0.0f, 0.0f, NULL) == DP_OK, "step");
    dnn_stats_get(&b);
    long long built = 0;
    *reused = 0;
    for (int k = 0; k < DNN_KINDS; k++) built += b.built[k] - a.built[k], *reused += b.reused[k] - a.reused[k];
    return built;
}

/* The DynOPool HRNet (every op kind of a segmentation step) and VGG-16 (max
 * pooling, the classifier): a second step at the same shapes builds nothing;
 * new alphas (new sizes) build; the first alphas again find theirs built. */
static void primitive_reuse(void)
{
    static const int archs[2] = {DP_VGG16, DP_HRNET};
    for (int ai = 0; ai < 2; ai++) {
        const int arch = archs[ai];
        dp_model_config c = dp_model_defaults();
        c.arch = arch, c.pool = arch == DP_HRNET ? DP_POOL_DYNOPOOL : DP_POOL_HUMAN, c.size = 32, c.classes = 4;
        c.width = arch == DP_HRNET ? 2 : 0.125f;
        dp_model *m;
        CHECK(dp_model_create(&c, &m) == DP_OK, "create %s", dp_arch_name(arch));
        if (!m) continue;
        enum { N = 2, P = 32 * 32 };
        static float x[N * 3 * P];
        static int lab[N * P];
        fill(x, sizeof x / sizeof x[0], 9);
        for (int i = 0; i < N * P; i++) lab[i] = i % 4;
        long long reused, b0 = step_builds(m, x, lab, N, &reused);
        CHECK(b0 > 0, "%s: the first step built no oneDNN state", dp_arch_name(arch));
        long long b1 = step_builds(m, x, lab, N, &reused);
        CHECK(b1 == 0 && reused >= b0, "%s: a step at unchanged shapes built %lld oneDNN states (%lld reused, %lld "
              "in the first step)", dp_arch_name(arch), b1, reused, b0);
        if (arch != DP_HRNET) {
            dp_model_free(m);
            continue;
        }
        dp_net *net = &m->net;
        float first[DP_MAX_STAGES][2];
        int k = 0;
        for (int i = 0; i < net->n_pv; i++)
            if (net->pv[i].positive) {
                float *a = net->params + net->pv[i].off;
                first[k][0] = a[0], first[k][1] = a[1], k++;
                a[0] = 1.5f, a[1] = 2.5f; /* 32 -> 21 x 13 at the stem, and on */
            }
        CHECK(k == 5, "hrnet: %d alphas", k);
        const long long b2 = step_builds(m, x, lab, N, &reused);
        CHECK(b2 > 0, "hrnet: new sizes built no oneDNN state");
        k = 0;
        for (int i = 0; i < net->n_pv; i++)
            if (net->pv[i].positive) net->params[net->pv[i].off] = first[k][0], net->params[net->pv[i].off + 1] = first[k][1], k++;
        const long long b3 = step_builds(m, x, lab, N, &reused);
        CHECK(b3 == 0, "hrnet: sizes that came back built %lld oneDNN states again (%lld reused)", b3, reused);
        dp_model_free(m);
    }
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--write-checkpoint") == 0) return write_checkpoint(argv[2]);
    paper_table();
    efficientnet_figures();
    hrnet_figures();
    seg_metrics();
    efficientnet_resume();
    checkpoints();
    alpha_floor();
    size_cap();
    size_cap_shared();
    alpha_init();
    alpha_grad_split();
    nonfinite();
    nan_propagates();
    changing_shapes();
    primitive_reuse();
    schedule();
    hostile_checkpoints();
    huge_sizes();
    return tu_finish("test_engine");
}
