/* test_predict.c — one image file prepared as evaluation prepares a dataset's
 * test images (dp_image_prepare), and `dynopool predict` against the model.
 *
 *   test_predict
 *       dp_image_prepare on PNG and JPEG files written here equals, bit for bit,
 *       dp_dataset_batch's test view of the same pixels: an IDX set (grey, 12x12)
 *       under every variant and a resize, and an image folder (RGB, images of
 *       several sizes, shorter side to 8/7 of the crop); colour to grey and grey
 *       to RGB; class folder names; a bad file named in the error.
 *   test_predict --images IDX_DIR OUT_DIR N
 *       writes the first N test images of IDX_DIR as OUT_DIR/img<i>.png (image 1
 *       as an RGB PNG: grey repeated, whose 601 luma is the grey itself).
 *   test_predict --check CKPT IDX_DIR OUT_DIR N PREDICT_JSON
 *       the probabilities `dynopool predict --json` gave for those files against
 *       the model's own (dp_model_predict on dp_dataset_batch with the
 *       checkpoint's normalisation): every listed class and probability, the
 *       probabilities within 1e-5 (they come from logits that differ by the
 *       rounding of the folded batch norms, test_infer.c: below 1e-6 here). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <jpeglib.h>
#include <png.h>

#include "dynopool.h"
#include "testutil.h"

static int write_png(const char *path, const unsigned char *pix, int h, int w, int ch)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        return -1;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, ch == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < h; y++) png_write_row(png, (png_const_bytep)(pix + (size_t)y * w * ch));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return fclose(f);
}

static int write_jpeg(const char *path, const unsigned char *pix, int h, int w, int ch)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr je;
    ci.err = jpeg_std_error(&je);
    jpeg_create_compress(&ci);
    jpeg_stdio_dest(&ci, f);
    ci.image_width = (JDIMENSION)w, ci.image_height = (JDIMENSION)h, ci.input_components = ch;
    ci.in_color_space = ch == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, 95, TRUE);
    jpeg_start_compress(&ci, TRUE);
    while (ci.next_scanline < ci.image_height) {
        JSAMPROW row = (JSAMPROW)(pix + (size_t)ci.next_scanline * w * ch);
        jpeg_write_scanlines(&ci, &row, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    return fclose(f);
}

static void be32(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16), p[2] = (unsigned char)(v >> 8),
    p[3] = (unsigned char)v;
}

/* An IDX set in dir: n grey s x s images (train and test alike), labels i % 10. */
static void write_idx(const char *dir, const unsigned char *pix, int n, int s)
{
    static const char *const names[2][2] = {{"train-images-idx3-ubyte", "train-labels-idx1-ubyte"},
                                            {"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}};
    char p[512];
    for (int k = 0; k < 2; k++) {
        unsigned char hd[16];
        snprintf(p, sizeof p, "%s/%s", dir, names[k][0]);
        FILE *f = fopen(p, "wb");
        be32(hd, 0x803), be32(hd + 4, (unsigned)n), be32(hd + 8, (unsigned)s), be32(hd + 12, (unsigned)s);
        fwrite(hd, 1, 16, f);
        fwrite(pix, 1, (size_t)n * s * s, f);
        fclose(f);
        snprintf(p, sizeof p, "%s/%s", dir, names[k][1]);
        f = fopen(p, "wb");
        be32(hd, 0x801), be32(hd + 4, (unsigned)n);
        fwrite(hd, 1, 8, f);
        for (int i = 0; i < n; i++) fputc(i % 10, f);
        fclose(f);
    }
}

/* dp_image_prepare(file) against dp_dataset_batch(ds, test view, image i). */
static void same_view(const char *what, const dp_dataset *ds, int i, const char *file, int kind, int ch, int base,
                      dp_transform t, int want_native)
{
    t.train = 0;
    const int s = dp_transform_size(&t, base);
    const size_t n = (size_t)ch * s * s;
    float *a = malloc(sizeof(float) * n), *b = malloc(sizeof(float) * n);
    char err[512] = "";
    int native = -1;
    int rc = dp_dataset_batch(ds, &t, &i, 1, 0, 0, a, NULL, err, sizeof err);
    CHECK(rc == DP_OK, "%s: batch: %s", what, err);
    t.train = 1; /* ignored: always the test view */
    rc = dp_image_prepare(file, kind, ch, base, &t, b, &native, err, sizeof err);
    CHECK(rc == DP_OK, "%s: prepare: %s", what, err);
    CHECK(native == want_native, "%s: native channels %d, expected %d", what, native, want_native);
    size_t diff = 0;
    for (size_t k = 0; k < n; k++) diff += a[k] != b[k];
    CHECK(diff == 0, "%s: %zu of %zu values differ from the dataset's test view", what, diff, n);
    free(a), free(b);
}

static void prepare_tests(void)
{
    char dir[] = "/tmp/dp_predict.XXXXXX", p[512], q[512];
    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp");
        return;
    }
    tu_rng r = {42};
    /* an IDX set of 4 grey 12x12 images */
    enum { S = 12, NI = 4 };
    unsigned char pix[NI * S * S], rgb[S * S * 3];
    for (int i = 0; i < NI * S * S; i++) pix[i] = (unsigned char)tu_int(&r, 0, 255);
    write_idx(dir, pix, NI, S);
    char err[512] = "";
    dp_dataset *ds = NULL;
    CHECK(dp_dataset_open(dir, DP_DATA_IDX, 0, 0, 0, &ds, err, sizeof err) == DP_OK, "open idx: %s", err);
    if (!ds) return;
    CHECK(dp_dataset_class_name(ds, 0) == NULL, "IDX sets have no class names");
    snprintf(p, sizeof p, "%s/grey.png", dir);
    write_png(p, pix + S * S, S, S, 1);
    for (int k = 0; k < S * S; k++) rgb[3 * k] = rgb[3 * k + 1] = rgb[3 * k + 2] = pix[S * S + k];
    snprintf(q, sizeof q, "%s/rgb.png", dir);
    write_png(q, rgb, S, S, 3);
    static const int variants[4] = {DP_VARIANT_NONE, DP_VARIANT_STRETCH_V, DP_VARIANT_TILE, DP_VARIANT_LARGE};
    for (int v = 0; v < 4; v++)
        for (int rs = 0; rs <= 1; rs++) {
            dp_transform t = dp_transform_defaults(ds, 0, variants[v]);
            t.mean[0] = 0.3f, t.std[0] = 0.2f, t.resize = rs ? 20 : 0;
            char what[64];
            snprintf(what, sizeof what, "idx grey, %s%s", dp_variant_name(variants[v]), rs ? ", resize 20" : "");
            same_view(what, ds, 1, p, DP_DATA_IDX, 1, S, t, 1);
            snprintf(what, sizeof what, "idx RGB file, %s%s", dp_variant_name(variants[v]), rs ? ", resize 20" : "");
            same_view(what, ds, 1, q, DP_DATA_IDX, 1, S, t, 3); /* 601 luma of (g, g, g) is g */
        }
    /* another size: shorter side to the base, centre crop (a 24x36 image of 2x2 blocks: its 12x18 centre) */
    {
        unsigned char big[24 * 36];
        for (int y = 0; y < 24; y++)
            for (int x = 0; x < 36; x++) big[y * 36 + x] = pix[S * S + (y / 2) * S + (x / 2 + 3 < S ? x / 2 : S - 1)];
        snprintf(p, sizeof p, "%s/big.png", dir);
        write_png(p, big, 24, 36, 1);
        dp_transform t = dp_transform_defaults(ds, 0, DP_VARIANT_NONE);
        t.mean[0] = 0.f, t.std[0] = 1.f;
        float x[S * S];
        int native = 0;
        CHECK(dp_image_prepare(p, DP_DATA_IDX, 1, S, &t, x, &native, err, sizeof err) == DP_OK, "big: %s", err);
        double lo = 1, hi = 0;
        for (int k = 0; k < S * S; k++) lo = x[k] < lo ? x[k] : lo, hi = x[k] > hi ? x[k] : hi;
        CHECK(lo >= 0 && hi <= 1 && hi > lo, "big: values in [0, 1] (%g, %g)", lo, hi);
    }
    /* errors name the file */
    snprintf(p, sizeof p, "%s/bad.png", dir);
    FILE *f = fopen(p, "w");
    fputs("not an image", f);
    fclose(f);
    dp_transform t0 = dp_transform_defaults(ds, 0, 0);
    float x[3 * S * S];
    CHECK(dp_image_prepare(p, DP_DATA_IDX, 1, S, &t0, x, NULL, err, sizeof err) == DP_ERR_FORMAT &&
              strstr(err, "bad.png") && strstr(err, "not a JPEG or PNG"),
          "bad file: %s", err);
    CHECK(dp_image_prepare("/nonexistent.png", DP_DATA_IDX, 1, S, &t0, x, NULL, err, sizeof err) == DP_ERR_IO &&
              strstr(err, "/nonexistent.png"),
          "missing file: %s", err);
    CHECK(dp_image_prepare(q, DP_DATA_IDX, 2, S, &t0, x, NULL, err, sizeof err) == DP_ERR_ARG, "2 channels");
    dp_dataset_free(ds);

    /* an image folder: RGB images of several sizes in two classes */
    static const char *const cls[2] = {"cat", "dog"};
    static const int hw[4][2] = {{40, 30}, {30, 50}, {37, 37}, {64, 33}};
    for (int split = 0; split < 2; split++)
        for (int c = 0; c < 2; c++) {
            snprintf(p, sizeof p, "%s/f/%s", dir, split ? "test" : "train");
            mkdir(dir, 0700), snprintf(q, sizeof q, "%s/f", dir), mkdir(q, 0700), mkdir(p, 0700);
            snprintf(p + strlen(p), sizeof p - strlen(p), "/%s", cls[c]);
            mkdir(p, 0700);
            for (int i = 0; i < 2; i++) {
                const int h = hw[2 * c + i][0], w = hw[2 * c + i][1];
                unsigned char *im = malloc((size_t)h * w * 3);
                for (int k = 0; k < h * w * 3; k++) im[k] = (unsigned char)tu_int(&r, 0, 255);
                snprintf(q, sizeof q, "%s/%d.%s", p, i, i ? "jpg" : "png");
                if (i) write_jpeg(q, im, h, w, 3);
                else write_png(q, im, h, w, 3);
                free(im);
            }
        }
    snprintf(p, sizeof p, "%s/f", dir);
    CHECK(dp_dataset_open(p, DP_DATA_FOLDER, 0, 0, 16, &ds, err, sizeof err) == DP_OK, "open folder: %s", err);
    if (!ds) return;
    CHECK(dp_dataset_class_name(ds, 0) && !strcmp(dp_dataset_class_name(ds, 0), "cat") &&
              dp_dataset_class_name(ds, 1) && !strcmp(dp_dataset_class_name(ds, 1), "dog") &&
              !dp_dataset_class_name(ds, 2),
          "class folder names");
    for (int i = 0; i < 4; i++) {
        dp_transform t = dp_transform_defaults(ds, 0, DP_VARIANT_NONE);
        for (int c = 0; c < 3; c++) t.mean[c] = 0.4f + 0.05f * c, t.std[c] = 0.25f;
        snprintf(q, sizeof q, "%s/test/%s/%d.%s", p, cls[i / 2], i % 2, i % 2 ? "jpg" : "png");
        char what[64];
        snprintf(what, sizeof what, "folder image %d (%dx%d)", i, hw[i][0], hw[i][1]);
        same_view(what, ds, i, q, DP_DATA_FOLDER, 3, 16, t, 3);
    }
    dp_dataset_free(ds);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0, "cleanup");
}

/* --images: the first n test images of the IDX set as PNG files. */
static int write_images(const char *data, const char *out, int n)
{
    dp_dataset *ds;
    char err[512], p[600];
    if (dp_dataset_open(data, DP_DATA_IDX, 0, 0, 0, &ds, err, sizeof err)) return fprintf(stderr, "%s\n", err), 1;
    dp_dataset_info di;
    dp_dataset_info_get(ds, &di);
    const int s = di.size;
    const dp_transform t = {.std = {1, 1, 1}}; /* pixels / 255 */
    float *x = malloc(sizeof(float) * s * s);
    unsigned char *g = malloc((size_t)s * s), *rgb = malloc((size_t)s * s * 3);
    for (int i = 0; i < n; i++) {
        dp_dataset_batch(ds, &t, &i, 1, 0, 0, x, NULL, err, sizeof err);
        for (int k = 0; k < s * s; k++) {
            g[k] = (unsigned char)lrintf(x[k] * 255.0f);
            rgb[3 * k] = rgb[3 * k + 1] = rgb[3 * k + 2] = g[k];
        }
        snprintf(p, sizeof p, "%s/img%d.png", out, i);
        if (i == 1 ? write_png(p, rgb, s, s, 3) : write_png(p, g, s, s, 1)) return fprintf(stderr, "%s\n", p), 1;
    }
    free(x), free(g), free(rgb);
    dp_dataset_free(ds);
    return 0;
}

/* --check: predict's JSON against the model's own probabilities. */
static void check_predict(const char *ckpt, const char *data, const char *out, int n, const char *json)
{
    dp_model_config cfg;
    dp_model *m = NULL;
    char err[1024] = "";
    int rc = dp_checkpoint_config(ckpt, &cfg, err, sizeof err);
    if (!rc) rc = dp_model_create(&cfg, &m);
    if (!rc) rc = dp_model_load(m, ckpt, err, sizeof err);
    CHECK(rc == DP_OK, "load %s: %s", ckpt, err);
    if (rc) return;
    cJSON *dj = cJSON_Parse(dp_model_meta(m, "dataset"));
    dp_dataset *ds = NULL;
    CHECK(dp_dataset_open(data, DP_DATA_IDX, 0, 0, 0, &ds, err, sizeof err) == DP_OK, "%s", err);
    dp_transform t = dp_transform_defaults(ds, 0, DP_VARIANT_NONE);
    t.mean[0] = (float)cJSON_GetArrayItem(cJSON_GetObjectItem(dj, "mean"), 0)->valuedouble;
    t.std[0] = (float)cJSON_GetArrayItem(cJSON_GetObjectItem(dj, "std"), 0)->valuedouble;
    FILE *f = fopen(json, "r");
    char *txt = calloc(1, 1 << 20);
    CHECK(f && fread(txt, 1, (1 << 20) - 1, f) > 0, "read %s", json);
    if (f) fclose(f);
    cJSON *root = cJSON_Parse(txt), *imgs = cJSON_GetObjectItem(root, "images");
    CHECK(cJSON_IsArray(imgs), "predict's JSON has 'images': %.200s", txt);
    const int k = cfg.classes, s = cfg.size;
    float *x = malloc(sizeof(float) * s * s), *z = malloc(sizeof(float) * k);
    int seen = 0;
    for (int i = 0; i < n; i++) {
        char file[600];
        snprintf(file, sizeof file, "%s/img%d.png", out, i);
        dp_dataset_batch(ds, &t, &i, 1, 0, 0, x, NULL, err, sizeof err);
        dp_model_predict(m, x, 1, z);
        double mx = z[0], se = 0;
        for (int c = 1; c < k; c++) mx = z[c] > mx ? z[c] : mx;
        for (int c = 0; c < k; c++) se += exp((double)z[c] - mx);
        const cJSON *e = NULL;
        for (int j = 0; j < cJSON_GetArraySize(imgs) && !e; j++) {
            const cJSON *it = cJSON_GetArrayItem(imgs, j);
            if (!strcmp(cJSON_GetObjectItem(it, "file")->valuestring, file)) e = it;
        }
        CHECK(e != NULL, "%s is not in predict's output", file);
        if (!e) continue;
        seen++;
        const cJSON *conv = cJSON_GetObjectItem(e, "converted");
        CHECK(i == 1 ? conv && !strcmp(conv->valuestring, "colour converted to grey") : !conv,
              "%s: conversion noted: %s", file, conv ? conv->valuestring : "(none)");
        const cJSON *top = cJSON_GetObjectItem(e, "top");
        double prev = 2.0;
        for (int j = 0; j < cJSON_GetArraySize(top); j++) {
            const cJSON *c = cJSON_GetArrayItem(top, j);
            const int cl = cJSON_GetObjectItem(c, "class")->valueint;
            const double p = cJSON_GetObjectItem(c, "probability")->valuedouble;
            CHECK(cl >= 0 && cl < k, "class %d", cl);
            if (cl < 0 || cl >= k) continue;
            const double want = exp((double)z[cl] - mx) / se;
            CHECK(fabs(p - want) <= 1e-5, "%s: class %d probability %.8f, the model's %.8f", file, cl, p, want);
            CHECK(p <= prev, "%s: probabilities in decreasing order", file);
            prev = p;
        }
    }
    CHECK(seen == n, "%d of %d images checked", seen, n);
    printf("predict agrees with the model on %d images\n", seen);
    free(x), free(z), free(txt);
    cJSON_Delete(root);
    cJSON_Delete(dj);
    dp_dataset_free(ds);
    dp_model_free(m);
}

int main(int argc, char **argv)
{
    if (argc == 5 && !strcmp(argv[1], "--images")) return write_images(argv[2], argv[3], atoi(argv[4]));
    if (argc == 7 && !strcmp(argv[1], "--check")) {
        check_predict(argv[2], argv[3], argv[4], atoi(argv[5]), argv[6]);
        return tu_finish("test_predict --check");
    }
    if (argc != 1) return fprintf(stderr, "usage: see tests/test_predict.c\n"), 2;
    prepare_tests();
    return tu_finish("test_predict");
}
