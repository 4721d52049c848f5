/*
 * test_data.c — datasets, augmentation, variants and the background loader.
 *
 *   test_data GOLDEN                 the checks below (GOLDEN: variants_golden.bin)
 *   test_data --write-fixtures DIR   small datasets for the CLI tests (train_test.sh):
 *       DIR/good       IDX, 16x16, 10 classes, 512 train / 128 test, learnable
 *       DIR/truncated  the training images cut short
 *       DIR/corrupt    gzip data with damaged bytes
 *       DIR/badlabel   a training label 12
 *       DIR/badmagic   an images file that is not IDX
 *       DIR/cifar      CIFAR-10 binary with a truncated test_batch.bin
 *       DIR/folder     an image folder (PNG), 2 classes
 */
#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "dynopool.h"
#include "testutil.h"

static char g_tmp[256];

static void mkdir_p(const char *p) { mkdir(p, 0777); }

/* IDX files prefix-{images-idx3,labels-idx1}-ubyte.gz with n images of s x s:
 * class k is a brightness level (20 k + 30) plus noise: learnable whatever the
 * crops and flips do. */
static void write_idx(const char *dir, const char *prefix, int n, int s, unsigned seed, int bad_label)
{
    char p[512];
    unsigned char *img = malloc((size_t)n * s * s), *lab = malloc((size_t)n);
    tu_rng r = {seed};
    for (int i = 0; i < n; i++) {
        const int k = i % 10;
        lab[i] = (unsigned char)k;
        for (int y = 0; y < s; y++)
            for (int x = 0; x < s; x++) {
                img[((size_t)i * s + y) * s + x] = (unsigned char)(20 * k + 30 + tu_int(&r, 0, 24) + (x + y) % 3);
            }
    }
    if (bad_label) lab[n / 2] = 12;
    unsigned char h[16] = {0, 0, 8, 3};
    const unsigned dims[3] = {(unsigned)n, (unsigned)s, (unsigned)s};
    for (int d = 0; d < 3; d++)
        for (int b = 0; b < 4; b++) h[4 + 4 * d + b] = (unsigned char)(dims[d] >> (24 - 8 * b));
    snprintf(p, sizeof p, "%s/%s-images-idx3-ubyte.gz", dir, prefix);
    gzFile f = gzopen(p, "wb");
    gzwrite(f, h, 16);
    gzwrite(f, img, (unsigned)(n * s * s));
    gzclose(f);
    h[3] = 1;
    snprintf(p, sizeof p, "%s/%s-labels-idx1-ubyte.gz", dir, prefix);
    f = gzopen(p, "wb");
    gzwrite(f, h, 8);
    gzwrite(f, lab, (unsigned)n);
    gzclose(f);
    free(img);
    free(lab);
}

static long file_size(const char *p)
{
    struct stat st;
    return stat(p, &st) ? -1 : (long)st.st_size;
}

static void cut_file(const char *p, long keep) { CHECK(truncate(p, keep) == 0, "truncate %s", p); }

static void poke(const char *p, long off, int len)
{
    FILE *f = fopen(p, "r+b");
    fseek(f, off, SEEK_SET);
    for (int i = 0; i < len; i++) fputc(0x5a ^ i, f);
    fclose(f);
}

static void write_cifar10(const char *dir, int per_file, int truncate_test)
{
    char p[512];
    unsigned char rec[3073];
    for (int b = 0; b <= 5; b++) {
        if (b) snprintf(p, sizeof p, "%s/data_batch_%d.bin", dir, b);
        else snprintf(p, sizeof p, "%s/test_batch.bin", dir);
        FILE *f = fopen(p, "wb");
        for (int i = 0; i < per_file; i++) {
            rec[0] = (unsigned char)((b + i) % 10);
            for (int k = 1; k < 3073; k++) rec[k] = (unsigned char)(k * 7 + i + b);
            fwrite(rec, 1, sizeof rec, f);
        }
        fclose(f);
        if (!b && truncate_test) cut_file(p, 3073L * per_file - 100);
    }
}

static void write_png(const char *path, int h, int w, unsigned char v)
{
    FILE *f = fopen(path, "wb");
    png_structp pw = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop pi = png_create_info_struct(pw);
    png_init_io(pw, f);
    png_set_IHDR(pw, pi, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(pw, pi);
    unsigned char *row = malloc((size_t)w * 3);
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) row[3 * x] = v, row[3 * x + 1] = (unsigned char)(x * 255 / w), row[3 * x + 2] = (unsigned char)(y * 255 / h);
        png_write_row(pw, row);
    }
    png_write_end(pw, pi);
    png_destroy_write_struct(&pw, &pi);
    free(row);
    fclose(f);
}

static void write_folder(const char *dir)
{
    char p[512];
    const char *sub[] = {"train", "train/cat", "train/dog", "test", "test/cat", "test/dog"};
    for (int i = 0; i < 6; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, sub[i]);
        mkdir_p(p);
    }
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/train/cat/%d.png", dir, i);
        write_png(p, 40, 60, 20);
        snprintf(p, sizeof p, "%s/train/dog/%d.PNG", dir, i);
        write_png(p, 50, 30, 230);
    }
    snprintf(p, sizeof p, "%s/train/dog/notes.txt", dir);
    FILE *f = fopen(p, "w");
    fputs("not an image\n", f);
    fclose(f);
    snprintf(p, sizeof p, "%s/test/cat/0.png", dir);
    write_png(p, 30, 30, 20);
    snprintf(p, sizeof p, "%s/test/dog/0.png", dir);
    write_png(p, 30, 30, 230);
}

static void write_fixtures(const char *root)
{
    char d[512], p[600];
    mkdir_p(root);
    const char *names[] = {"good", "truncated", "corrupt", "badlabel", "badmagic"};
    for (int i = 0; i < 5; i++) {
        snprintf(d, sizeof d, "%s/%s", root, names[i]);
        mkdir_p(d);
        write_idx(d, "train", 512, 16, 1, i == 3);
        write_idx(d, "t10k", 128, 16, 2, 0);
    }
    snprintf(p, sizeof p, "%s/truncated/train-images-idx3-ubyte.gz", root);
    cut_file(p, file_size(p) / 2);
    snprintf(p, sizeof p, "%s/corrupt/train-images-idx3-ubyte.gz", root);
    poke(p, file_size(p) / 2, 16);
    snprintf(p, sizeof p, "%s/badmagic/train-images-idx3-ubyte.gz", root);
    gzFile f = gzopen(p, "wb");
    gzputs(f, "this is not an IDX file at all");
    gzclose(f);
    snprintf(d, sizeof d, "%s/cifar", root);
    mkdir_p(d);
    write_cifar10(d, 8, 1);
    snprintf(d, sizeof d, "%s/folder", root);
    mkdir_p(d);
    write_folder(d);
}

/* ---- checks ---------------------------------------------------------------- */

static void expect_error(const char *dir, int kind, int train, int want_rc, const char *const *words)
{
    dp_dataset *ds = NULL;
    char err[1024] = "";
    const int rc = dp_dataset_open(dir, kind, train, 0, 0, &ds, err, sizeof err);
    CHECK(rc == want_rc, "%s: rc %d, expected %d (%s)", dir, rc, want_rc, err);
    CHECK(ds == NULL, "%s: a dataset came back with an error", dir);
    for (int i = 0; words[i]; i++) CHECK(strstr(err, words[i]) != NULL, "%s: message '%s' lacks '%s'", dir, err, words[i]);
    dp_dataset_free(ds);
}

static void check_idx(const char *root)
{
    char d[512];
    snprintf(d, sizeof d, "%s/good", root);
    dp_dataset *tr = NULL, *te = NULL;
    char err[1024] = "";
    CHECK(dp_dataset_open(d, DP_DATA_AUTO, 1, 0, 0, &tr, err, sizeof err) == DP_OK, "open: %s", err);
    CHECK(dp_dataset_open(d, DP_DATA_IDX, 0, 0, 0, &te, err, sizeof err) == DP_OK, "open: %s", err);
    if (!tr || !te) return;
    dp_dataset_info in;
    dp_dataset_info_get(tr, &in);
    CHECK(in.kind == DP_DATA_IDX && in.n == 512 && in.channels == 1 && in.size == 16 && in.classes == 10,
          "info %d %d %d %d %d", in.kind, in.n, in.channels, in.size, in.classes);
    CHECK(dp_dataset_label(tr, 13) == 3 && dp_dataset_label(tr, 512) == DP_ERR_ARG, "labels");
    /* stats against a direct computation from the same generator */
    float mean[3], sd[3];
    CHECK(dp_dataset_stats(tr, mean, sd, err, sizeof err) == DP_OK, "stats");
    const dp_transform id = {.train = 0, .variant = 0, .pad = 4, .flip = 1, .mean = {0, 0, 0}, .std = {1, 1, 1}};
    float *x = malloc(sizeof(float) * 512 * 256);
    int *lab = malloc(sizeof(int) * 512), *idx = malloc(sizeof(int) * 512);
    for (int i = 0; i < 512; i++) idx[i] = i;
    CHECK(dp_dataset_batch(tr, &id, idx, 512, 7, 0, x, lab, err, sizeof err) == DP_OK, "batch: %s", err);
    double s = 0, q = 0;
    for (int i = 0; i < 512 * 256; i++) s += x[i], q += (double)x[i] * x[i];
    const double mu = s / (512 * 256), sg = sqrt(q / (512 * 256) - mu * mu);
    CHECK(fabs(mean[0] - mu) < 1e-5 && fabs(sd[0] - sg) < 1e-5, "stats %g %g vs %g %g", mean[0], sd[0], mu, sg);
    CHECK(lab[27] == 7, "batch labels");
    /* augmentation: a shifted copy (zero padding) or its mirror, same for the same (seed, pos) */
    dp_transform aug = id;
    aug.train = 1;
    float *a = malloc(sizeof(float) * 256 * 64), *b = malloc(sizeof(float) * 256 * 64);
    CHECK(dp_dataset_batch(tr, &aug, idx, 64, 99, 1000, a, NULL, err, sizeof err) == DP_OK, "aug");
    CHECK(dp_dataset_batch(tr, &aug, idx, 64, 99, 1000, b, NULL, err, sizeof err) == DP_OK, "aug");
    CHECK(memcmp(a, b, sizeof(float) * 256 * 64) == 0, "augmentation is not a function of (seed, position)");
    CHECK(dp_dataset_batch(tr, &aug, idx, 64, 99, 1001, b, NULL, err, sizeof err) == DP_OK, "aug");
    CHECK(memcmp(a, b, sizeof(float) * 256 * 64) != 0, "a different position gave the same crops");
    int shifted = 0, flipped = 0, explained = 0;
    for (int i = 0; i < 64; i++) {
        const float *o = x + (size_t)i * 256, *g = a + (size_t)i * 256;
        int found = 0;
        for (int f = 0; f < 2 && !found; f++)
            for (int dy = -4; dy <= 4 && !found; dy++)
                for (int dx = -4; dx <= 4 && !found; dx++) {
                    int ok = 1;
                    for (int y = 0; y < 16 && ok; y++)
                        for (int xx = 0; xx < 16 && ok; xx++) {
                            const int sx0 = f ? 15 - xx : xx, sy = y + dy, sx = sx0 + dx;
                            const float want = sy >= 0 && sy < 16 && sx >= 0 && sx < 16 ? o[sy * 16 + sx] : 0.0f;
                            ok = g[y * 16 + xx] == want;
                        }
                    if (ok) found = 1, shifted += dx || dy, flipped += f;
                }
        explained += found;
    }
    CHECK(explained == 64, "%d of 64 augmented images are a padded shift (or mirror) of the original", explained);
    CHECK(shifted > 40 && flipped > 16 && flipped < 48, "crops/flips not random enough: %d shifted, %d flipped",
          shifted, flipped);
    /* the loader hands out exactly what dp_dataset_batch makes, whatever the threads */
    for (int workers = 0; workers <= 3; workers++) {
        dp_loader *ld;
        CHECK(dp_loader_create(tr, &aug, 100, workers, &ld) == DP_OK, "loader");
        for (int first = 0; first <= 2; first += 2) {
            CHECK(dp_loader_start(ld, idx, 512, first, 5) == DP_OK, "start");
            const float *bx;
            const int *bl;
            int nb, k = first, rc;
            float *want = malloc(sizeof(float) * 256 * 100);
            while ((rc = dp_loader_next(ld, &bx, &bl, &nb, NULL, err, sizeof err)) == DP_OK) {
                const int n = 512 - k * 100 < 100 ? 512 - k * 100 : 100;
                CHECK(nb == n, "batch %d has %d images, expected %d", k, nb, n);
                dp_dataset_batch(tr, &aug, idx + k * 100, n, 5, k * 100, want, NULL, err, sizeof err);
                CHECK(memcmp(bx, want, sizeof(float) * 256 * n) == 0, "workers %d batch %d differs", workers, k);
                CHECK(bl[0] == (k * 100) % 10, "labels of batch %d", k);
                k++;
            }
            CHECK(rc == 1 && k == 6, "workers %d: %d batches, rc %d", workers, k, rc);
            free(want);
        }
        dp_loader_free(ld);
    }
    free(a), free(b), free(x), free(lab), free(idx);
    dp_dataset_free(tr);
    dp_dataset_free(te);
}

static void check_errors(const char *root)
{
    char d[512];
    snprintf(d, sizeof d, "%s/truncated", root);
    expect_error(d, DP_DATA_AUTO, 1, DP_ERR_FORMAT,
                 (const char *[]){"train-images-idx3-ubyte.gz", "truncated", "at byte", "512 images of 16x16", NULL});
    snprintf(d, sizeof d, "%s/corrupt", root);
    expect_error(d, DP_DATA_AUTO, 1, DP_ERR_FORMAT, (const char *[]){"train-images-idx3-ubyte.gz", "corrupt", NULL});
    snprintf(d, sizeof d, "%s/badlabel", root);
    expect_error(d, DP_DATA_AUTO, 1, DP_ERR_FORMAT,
                 (const char *[]){"train-labels-idx1-ubyte.gz", "byte 264", "label 12", "[0, 10)", NULL});
    snprintf(d, sizeof d, "%s/badmagic", root);
    expect_error(d, DP_DATA_AUTO, 1, DP_ERR_FORMAT, (const char *[]){"byte 0", "IDX magic 00 00 08 03", NULL});
    expect_error("/nonexistent/dir", DP_DATA_AUTO, 1, DP_ERR_IO, (const char *[]){"/nonexistent/dir", NULL});
    snprintf(d, sizeof d, "%s/cifar", root);
    expect_error(d, DP_DATA_AUTO, 0, DP_ERR_FORMAT,
                 (const char *[]){"test_batch.bin", "truncated", "3073-byte records", "byte 21511", NULL});
    snprintf(d, sizeof d, "%s/good", root);
    expect_error(d, DP_DATA_CIFAR10, 1, DP_ERR_IO, (const char *[]){"data_batch_1.bin", NULL});
    expect_error(root, DP_DATA_AUTO, 1, DP_ERR_FORMAT, (const char *[]){"no dataset found", NULL});
}

/* Headers and file sizes that declare more images than memory can index: refused
 * with the file named, before anything is allocated. */
static void check_sizes(const char *root)
{
    char d[512], p[600];
    /* CIFAR-10 with 2^32 + 1 records (a sparse file: no disk used) */
    snprintf(d, sizeof d, "%s/cifar_huge", root);
    mkdir_p(d);
    snprintf(p, sizeof p, "%s/test_batch.bin", d);
    FILE *f = fopen(p, "wb");
    if (f) fclose(f);
    CHECK(truncate(p, 3073LL * ((1LL << 32) + 1)) == 0, "truncate %s: %s", p, strerror(errno));
    expect_error(d, DP_DATA_AUTO, 0, DP_ERR_FORMAT,
                 (const char *[]){"test_batch.bin", "4294967297 records", "at most 2147483647", NULL});
    /* plain IDX whose header declares 1e8 images of 4096x4096 in 16 bytes */
    snprintf(d, sizeof d, "%s/idx_huge", root);
    mkdir_p(d);
    unsigned char h[16] = {0, 0, 8, 3, 0x05, 0xf5, 0xe1, 0x00, 0, 0, 0x10, 0, 0, 0, 0x10, 0};
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte", d);
    f = fopen(p, "wb");
    if (f) fwrite(h, 1, 16, f), fclose(f);
    h[3] = 1;
    snprintf(p, sizeof p, "%s/train-labels-idx1-ubyte", d);
    f = fopen(p, "wb");
    if (f) fwrite(h, 1, 8, f), fclose(f);
    expect_error(d, DP_DATA_AUTO, 1, DP_ERR_FORMAT,
                 (const char *[]){"train-images-idx3-ubyte", "100000000 images of 4096x4096",
                                  "1677721600000000 bytes", "file is only 16 bytes", NULL});
    /* gzip: more than deflate's 1032:1 can expand to */
    snprintf(d, sizeof d, "%s/gz_huge", root);
    mkdir_p(d);
    snprintf(p, sizeof p, "%s/train-labels-idx1-ubyte.gz", d);
    gzFile g = gzopen(p, "wb");
    gzwrite(g, h, 8);
    gzclose(g);
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte.gz", d);
    g = gzopen(p, "wb");
    h[3] = 3;
    gzwrite(g, h, 16);
    gzclose(g);
    expect_error(d, DP_DATA_AUTO, 1, DP_ERR_FORMAT,
                 (const char *[]){"train-images-idx3-ubyte.gz", "100000000 images of 4096x4096",
                                  "more than a gzip file of", NULL});
}

/* A thin image in a folder: resizing its shorter side to 8/7 of the crop would
 * blow its longer side up (1x16384 -> 37x606208 for 32: 90 MB; 4.3 GB for 224). */
static void check_thin_image(const char *root)
{
    char d[512], p[600], err[1024] = "";
    const char *sub[] = {"thin", "thin/train", "thin/train/a", "thin/train/b"};
    for (int i = 0; i < 4; i++) {
        snprintf(d, sizeof d, "%s/%s", root, sub[i]);
        mkdir_p(d);
    }
    snprintf(p, sizeof p, "%s/thin/train/a/0.png", root);
    write_png(p, 1, 16384, 7);
    snprintf(p, sizeof p, "%s/thin/train/b/0.png", root);
    write_png(p, 20, 30, 7);
    snprintf(d, sizeof d, "%s/thin", root);
    dp_dataset *ds = NULL;
    CHECK(dp_dataset_open(d, DP_DATA_AUTO, 1, 0, 32, &ds, err, sizeof err) == DP_OK, "thin: %s", err);
    if (!ds) return;
    const dp_transform t = dp_transform_defaults(ds, 0, DP_VARIANT_NONE);
    float x[3 * 32 * 32];
    int i = 0;
    err[0] = '\0';
    const int rc = dp_dataset_batch(ds, &t, &i, 1, 0, 0, x, NULL, err, sizeof err);
    CHECK(rc == DP_ERR_FORMAT && strstr(err, "thin/train/a/0.png") &&
              strstr(err, "image is 1x16384 (HxW)") && strstr(err, "would make it 37x606208") &&
              strstr(err, "at most 16384"),
          "thin image: rc %d, err '%s'", rc, err);
    i = 1;
    CHECK(dp_dataset_batch(ds, &t, &i, 1, 0, 0, x, NULL, err, sizeof err) == DP_OK, "20x30 image: %s", err);
    dp_dataset_free(ds);
}

static void check_cifar_and_folder(const char *root)
{
    char d[512], err[1024] = "";
    snprintf(d, sizeof d, "%s/cifar", root);
    dp_dataset *ds = NULL;
    CHECK(dp_dataset_open(d, DP_DATA_AUTO, 1, 0, 0, &ds, err, sizeof err) == DP_OK, "cifar: %s", err);
    if (ds) {
        dp_dataset_info in;
        dp_dataset_info_get(ds, &in);
        CHECK(in.kind == DP_DATA_CIFAR10 && in.n == 40 && in.channels == 3 && in.size == 32 && in.classes == 10,
              "cifar info");
        CHECK(dp_dataset_label(ds, 9) == (2 + 1) % 10, "cifar label of record 1 of data_batch_2");
        const dp_transform id = {.std = {1, 1, 1}};
        float x[3 * 32 * 32];
        const int i = 9;
        dp_dataset_batch(ds, &id, &i, 1, 0, 0, x, NULL, err, sizeof err);
        /* record 1 of data_batch_2, byte k (1-based) = k*7 + 1 + 2: channel 1 (green), row 2, col 5 */
        const int k = 1 + 1024 + 2 * 32 + 5;
        CHECK(fabsf(x[1024 + 69] - (unsigned char)(k * 7 + 1 + 2) / 255.0f) < 1e-7, "cifar pixel");
        dp_dataset_free(ds);
    }
    snprintf(d, sizeof d, "%s/folder", root);
    ds = NULL;
    CHECK(dp_dataset_open(d, DP_DATA_AUTO, 1, 0, 24, &ds, err, sizeof err) == DP_OK, "folder: %s", err);
    if (ds) {
        dp_dataset_info in;
        dp_dataset_info_get(ds, &in);
        CHECK(in.kind == DP_DATA_FOLDER && in.n == 6 && in.channels == 3 && in.size == 24 && in.classes == 2,
              "folder info n %d classes %d", in.n, in.classes);
        CHECK(dp_dataset_label(ds, 0) == 0 && dp_dataset_label(ds, 5) == 1, "folder labels");
        const dp_transform id = {.std = {1, 1, 1}};
        float x[3 * 24 * 24];
        const int i = 4; /* a dog: red channel 230 everywhere, resizing keeps a constant */
        CHECK(dp_dataset_batch(ds, &id, &i, 1, 0, 0, x, NULL, err, sizeof err) == DP_OK, "folder batch: %s", err);
        CHECK(fabsf(x[0] - 230 / 255.0f) < 1e-5 && fabsf(x[24 * 24 - 1] - 230 / 255.0f) < 1e-5, "folder red %g", x[0]);
        /* green is a left-to-right ramp: it must still increase along a row */
        CHECK(x[576 + 20] > x[576 + 3], "folder green ramp %g %g", x[576 + 3], x[576 + 20]);
        dp_dataset_free(ds);
    }
}

static void check_variants(const char *golden)
{
    FILE *f = fopen(golden, "rb");
    float g[640];
    CHECK(f && fread(g, sizeof(float), 640, f) == 640, "cannot read %s", golden);
    if (f) fclose(f);
    char d[512], err[1024] = "";
    snprintf(d, sizeof d, "%s/v", g_tmp);
    mkdir_p(d);
    /* an 8x8 IDX set whose image 0 is the golden pattern */
    unsigned char h[16] = {0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 8, 0, 0, 0, 8}, pix[64], lab = 0;
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 8; j++) pix[i * 8 + j] = (unsigned char)((37 * i + 91 * j) % 256);
    const char *pre[] = {"train", "t10k"};
    for (int s = 0; s < 2; s++) {
        char p[600];
        snprintf(p, sizeof p, "%s/%s-images-idx3-ubyte", d, pre[s]); /* plain, not gzip */
        FILE *o = fopen(p, "wb");
        fwrite(h, 1, 16, o), fwrite(pix, 1, 64, o), fclose(o);
        snprintf(p, sizeof p, "%s/%s-labels-idx1-ubyte", d, pre[s]);
        o = fopen(p, "wb");
        h[3] = 1;
        fwrite(h, 1, 8, o), fwrite(&lab, 1, 1, o), fclose(o);
        h[3] = 3;
    }
    dp_dataset *ds = NULL;
    CHECK(dp_dataset_open(d, DP_DATA_AUTO, 0, 0, 0, &ds, err, sizeof err) == DP_OK, "open: %s", err);
    if (!ds) return;
    float x[256];
    const int i0 = 0;
    const int sizes[4] = {8, 8, 16, 16};
    const float *want[4] = {g, g + 64, g + 128, g + 384};
    const char *names[4] = {"none", "stretch-v", "tile", "large"};
    for (int v = 0; v < 4; v++) {
        CHECK(dp_variant_size(v, 8) == sizes[v], "variant size");
        const dp_transform t = {.train = 0, .variant = v, .std = {1, 1, 1}};
        CHECK(dp_dataset_batch(ds, &t, &i0, 1, 0, 0, x, NULL, err, sizeof err) == DP_OK, "variant %d", v);
        CHECK(tu_compare(names[v], x, want[v], (size_t)sizes[v] * sizes[v], 2e-6, 1e-5) == 0,
              "variant %s differs from PyTorch (ref/make_variant_golden.py)", names[v]);
    }
    /* stretch-v in training crops a random window of the stretched image */
    const dp_transform t = {.train = 1, .variant = DP_VARIANT_STRETCH_V, .pad = 0, .flip = 0, .std = {1, 1, 1}};
    CHECK(dp_dataset_batch(ds, &t, &i0, 1, 3, 0, x, NULL, err, sizeof err) == DP_OK, "stretch train");
    CHECK(dp_variant_parse("tile") == DP_VARIANT_TILE && dp_variant_parse("x") == DP_ERR_ARG, "parse");
    dp_dataset_free(ds);
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--write-fixtures")) {
        write_fixtures(argv[2]);
        return 0;
    }
    if (argc != 2) {
        fprintf(stderr, "usage: test_data GOLDEN | test_data --write-fixtures DIR\n");
        return 2;
    }
    snprintf(g_tmp, sizeof g_tmp, "/tmp/dp_test_data.XXXXXX");
    if (!mkdtemp(g_tmp)) return 1;
    char root[300];
    snprintf(root, sizeof root, "%s/fx", g_tmp);
    write_fixtures(root);
    check_idx(root);
    check_errors(root);
    check_cifar_and_folder(root);
    check_sizes(root);
    check_thin_image(root);
    check_variants(argv[1]);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_tmp);
    return tu_finish("data");
}
