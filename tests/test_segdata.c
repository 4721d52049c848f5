/* test_segdata.c — the PascalVOC-layout segmentation reader (src/io/segdata.c):
 *
 *   1. a hand-made set of two-colour images whose mask follows the colour: after any
 *      random scale, crop and flip, every pixel whose 3x3 neighbourhood has one label
 *      has mostly that label's colour (image and mask moved together; a mirrored or
 *      shifted mask puts whole columns on the other colour), padding is the mean
 *      (0) exactly where the mask is 255, and the test view of an image of the
 *      network's size is the mask itself;
 *   2. the errors name the file and the line, byte or pixel: a missing list, an id
 *      with a space, a missing image, a mask of another size, a class out of range,
 *      an RGB mask, a JPEG mask;
 *   3. with Fashion-MNIST present (argv[1]), a generated set of scenes reads back:
 *      its test view equals its masks, every label is a class, 255 or background.
 *
 * Planted in segdata.c on a scratch copy, each made check 1 fail: the mask read without
 * the flip (9481 pixels), the image sampled at 1.15 of the mask's horizontal scale (24).
 *
 *   4. with --masks-png (tests/seg_train_test.sh), `dynopool plot`'s masks-NAME.png of a run
 *      on a set whose images have the network's side S: 3 panels of the side P = z S
 *      (z the smallest whole factor with P >= 96) per row, 4 white pixels around and
 *      between them, so (n P + 4 (n + 1)) x (3 P + 16); the truth panel of row i is the
 *      i-th val image's mask in PascalVOC's colours, pixel for pixel (each cell z x z);
 *      the prediction panel holds only class colours; the gaps are white.
 *
 *   test_segdata [FASHION_MNIST_DIR]
 *   test_segdata --masks-png PNG SET_DIR N S CLASSES */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dynopool.h"
#include "io/image.h"
#include "testutil.h"

static char root[256];

static void put_list(const char *split, const char *text)
{
    char p[512];
    snprintf(p, sizeof p, "%s/ImageSets/Segmentation/%s.txt", root, split);
    FILE *f = fopen(p, "w");
    fputs(text, f);
    fclose(f);
}

/* An h x w image: left of column cut red (class 1), right blue (class 2); the mask
 * says so.  Colours far apart so that JPEG and bilinear blur stay on their side. */
static void put_pair(const char *id, int h, int w, int cut, int mask_h, int bad_class)
{
    unsigned char *img = malloc((size_t)h * w * 3), *m = malloc((size_t)mask_h * w);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            unsigned char *p = img + ((size_t)y * w + x) * 3;
            p[0] = x < cut ? 230 : 20, p[1] = 20, p[2] = x < cut ? 20 : 230;
        }
    for (int y = 0; y < mask_h; y++)
        for (int x = 0; x < w; x++) m[(size_t)y * w + x] = x < cut ? 1 : 2;
    if (bad_class) m[(size_t)1 * w + 3] = (unsigned char)bad_class;
    unsigned char pal[256][3] = {{0}};
    char p[512], err[512];
    snprintf(p, sizeof p, "%s/JPEGImages/%s.jpg", root, id);
    CHECK(dp_image_write_jpeg(p, img, h, w, 3, 100, err, sizeof err) == DP_OK, "%s", err);
    snprintf(p, sizeof p, "%s/SegmentationClass/%s.png", root, id);
    CHECK(dp_image_write_png_palette(p, m, mask_h, w, (const unsigned char(*)[3])pal, err, sizeof err) == DP_OK, "%s",
          err);
    free(img), free(m);
}

/* err contains every one of the n fragments */
static void expect_err(int rc, const char *err, int n, ...)
{
    CHECK(rc < 0, "an error was expected, got %d", rc);
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) {
        const char *frag = va_arg(ap, const char *);
        CHECK(strstr(err, frag) != NULL, "error '%s' lacks '%s'", err, frag);
    }
    va_end(ap);
}

static void check_views(void)
{
    enum { S = 24 };
    dp_segset *s;
    char err[1024] = "";
    int rc = dp_segset_open(root, "train", 3, &s, err, sizeof err);
    CHECK(rc == DP_OK, "open: %s", err);
    if (rc) return;
    CHECK(dp_segset_count(s) == 2 && !strcmp(dp_segset_id(s, 1), "b") && !dp_segset_id(s, 2), "list");
    float x[3 * S * S];
    int lab[S * S];
    long bad = 0, checked = 0, pads = 0, flips = 0, scales = 0;
    for (int train = 0; train <= 1; train++)
        for (long long pos = 0; pos < (train ? 60 : 2); pos++) {
            dp_seg_transform t = dp_seg_transform_defaults(train, S);
            const int i = (int)(pos % 2);
            CHECK(dp_segset_sample(s, i, &t, 7, pos, x, lab, err, sizeof err) == DP_OK, "sample: %s", err);
            int left_red = -1;
            for (int y = 0; y < S; y++)
                for (int xx = 0; xx < S; xx++) {
                    const int l = lab[y * S + xx];
                    const float r = x[y * S + xx] * t.std[0] + t.mean[0], b = x[2 * S * S + y * S + xx] * t.std[2] + t.mean[2];
                    if (l == 255) { /* padding: the mean in every channel */
                        pads++;
                        bad += x[y * S + xx] != 0.0f || x[S * S + y * S + xx] != 0.0f || x[2 * S * S + y * S + xx] != 0.0f;
                        continue;
                    }
                    bad += l != 1 && l != 2;
                    int uniform = 1;
                    for (int dy = -1; dy <= 1; dy++)
                        for (int dx = -1; dx <= 1; dx++) {
                            const int yy = y + dy, x2 = xx + dx;
                            if (yy >= 0 && yy < S && x2 >= 0 && x2 < S && lab[yy * S + x2] != l && lab[yy * S + x2] != 255)
                                uniform = 0;
                        }
                    if (!uniform) continue;
                    checked++;
                    /* bilinear image and nearest mask may blend a boundary pixel, but
                     * inside one label's 3x3 its own colour dominates */
                    const int wrong = l == 1 ? !(r > b + 0.1f) : !(b > r + 0.1f);
                    bad += wrong;
                    if (xx == 0) left_red = l == 1;
                }
            if (train && left_red == 0) flips++; /* the red half on the right: flipped */
            if (train && lab[S * S - 1] == 255) scales++;
            if (!train) { /* image 0 is S x S: the test view is the mask itself */
                if (i == 0)
                    for (int k = 0; k < S * S; k++) bad += lab[k] != ((k % S) < 10 ? 1 : 2);
            }
        }
    CHECK(bad == 0, "%ld pixels where image and mask disagree (of %ld checked, %ld padded)", bad, checked, pads);
    CHECK(flips > 5 && flips < 55, "%ld of 60 training views flipped", flips);
    CHECK(pads > 0 && scales > 0, "no padded view among 60 (scale 0.5 must pad)");
    printf("views: %ld pixels checked, %ld padded, %ld of 60 flipped, image and mask agree\n", checked, pads, flips);
    dp_segset_free(s);
}

static void check_errors(void)
{
    dp_segset *s;
    char err[1024] = "";
    expect_err(dp_segset_open(root, "nosuch", 3, &s, err, sizeof err), err, 2, "nosuch.txt", "cannot open");
    put_list("spaced", "a\nb c\n");
    expect_err(dp_segset_open(root, "spaced", 3, &s, err, sizeof err), err, 3, "spaced.txt", "line 2", "byte 3");
    put_list("missing", "a\nzz\n");
    expect_err(dp_segset_open(root, "missing", 3, &s, err, sizeof err), err, 3, "line 2", "JPEGImages/zz.jpg",
               "no such file");
    /* decoded on demand: mask of another size, class out of range, RGB, JPEG */
    put_pair("short", 20, 16, 8, 19, 0);
    put_pair("badclass", 20, 16, 8, 20, 7);
    put_list("bad", "short\nbadclass\nrgb\njpgmask\n");
    char p[512], q[512];
    unsigned char px[4 * 4 * 3] = {0};
    snprintf(p, sizeof p, "%s/JPEGImages/rgb.jpg", root);
    dp_image_write_jpeg(p, px, 4, 4, 3, 90, err, sizeof err);
    snprintf(p, sizeof p, "%s/JPEGImages/jpgmask.jpg", root);
    dp_image_write_jpeg(p, px, 4, 4, 3, 90, err, sizeof err);
    snprintf(q, sizeof q, "%s/SegmentationClass/jpgmask.png", root);
    dp_image_write_jpeg(q, px, 4, 4, 1, 90, err, sizeof err); /* a JPEG named .png */
    snprintf(q, sizeof q, "%s/SegmentationClass/rgb.png", root);
    FILE *f = fopen(q, "wb"); /* an RGB PNG: write through the palette writer, then patch the colour type */
    fclose(f);
    {
        unsigned char idx[16] = {0}, pal[256][3] = {{0}};
        dp_image_write_png_palette(q, idx, 4, 4, (const unsigned char(*)[3])pal, err, sizeof err);
        f = fopen(q, "r+b");
        fseek(f, 25, SEEK_SET); /* IHDR colour type byte: 3 (palette) -> 2 (RGB); the CRC then fails */
        fputc(2, f);
        fclose(f);
    }
    int rc = dp_segset_open(root, "bad", 3, &s, err, sizeof err);
    CHECK(rc == DP_OK, "open bad: %s", err);
    if (rc) return;
    float x[3 * 16 * 16];
    int lab[16 * 16];
    dp_seg_transform t = dp_seg_transform_defaults(0, 16);
    expect_err(dp_segset_sample(s, 0, &t, 1, 0, x, lab, err, sizeof err), err, 3, "SegmentationClass/short.png",
               "19x16", "20x16");
    expect_err(dp_segset_sample(s, 1, &t, 1, 0, x, lab, err, sizeof err), err, 4, "badclass.png", "row 1",
               "column 3", "class 7");
    expect_err(dp_segset_sample(s, 2, &t, 1, 0, x, lab, err, sizeof err), err, 1, "rgb.png");
    expect_err(dp_segset_sample(s, 3, &t, 1, 0, x, lab, err, sizeof err), err, 2, "jpgmask.png", "not a PNG");
    dp_segset_free(s);
    printf("errors: each names its file and where\n");
}

/* Fashion-MNIST scenes: generated, read back */
static void check_fashion(const char *src)
{
    char out[300], err[1024] = "";
    snprintf(out, sizeof out, "%s/scenes", root);
    int rc = dp_segset_make_fashion(src, out, 6, 3, 32, 5, err, sizeof err);
    CHECK(rc == DP_OK, "make: %s", err);
    if (rc) return;
    dp_segset *s;
    CHECK(dp_segset_open(out, "val", 11, &s, err, sizeof err) == DP_OK, "open scenes: %s", err);
    CHECK(dp_segset_count(s) == 3, "3 validation scenes");
    float x[3 * 32 * 32];
    int lab[32 * 32];
    long fg = 0, ign = 0, bad = 0;
    dp_seg_transform t = dp_seg_transform_defaults(0, 32);
    for (int i = 0; i < 3; i++) {
        CHECK(dp_segset_sample(s, i, &t, 1, i, x, lab, err, sizeof err) == DP_OK, "%s", err);
        char p[512];
        snprintf(p, sizeof p, "%s/SegmentationClass/%s.png", out, dp_segset_id(s, i));
        unsigned char *m;
        int h, w;
        CHECK(dp_image_load_mask(p, &m, &h, &w, err, sizeof err) == DP_OK && h == 32 && w == 32, "%s", err);
        for (int k = 0; k < 32 * 32; k++) {
            bad += lab[k] != m[k] || (lab[k] > 10 && lab[k] != 255);
            fg += lab[k] >= 1 && lab[k] <= 10, ign += lab[k] == 255;
        }
        free(m);
    }
    CHECK(bad == 0 && fg > 0 && ign > 0, "scenes: %ld bad labels, %ld item pixels, %ld ignored", bad, fg, ign);
    printf("fashion scenes: %ld item pixels, %ld ignored rim pixels of 3 scenes\n", fg, ign);
    dp_segset_free(s);
}

/* Check 4 (header comment). */
static int check_masks_png(const char *png, const char *set, int n, int S, int K)
{
    unsigned char *pix = NULL, pal[256][3];
    int h, w, rc;
    char err[1024] = "";
    dp_seg_palette(pal);
    rc = dp_image_load(png, 3, &pix, &h, &w, err, sizeof err);
    CHECK(rc == DP_OK, "%s: %s", png, err);
    if (rc) return tu_finish("test_segdata --masks-png");
    const int z = S >= 96 ? 1 : (96 + S - 1) / S, P = z * S, g = 4;
    CHECK(h == n * P + (n + 1) * g && w == 3 * P + 4 * g, "%s is %dx%d (HxW), expected %dx%d for %d rows of %d px",
          png, h, w, n * P + (n + 1) * g, 3 * P + 4 * g, n, P);
    dp_segset *s = NULL;
    CHECK(dp_segset_open(set, "val", K, &s, err, sizeof err) == DP_OK, "%s", err);
    long bad_truth = 0, bad_pred = 0, bad_gap = 0, cells = 0;
    for (int i = 0; s && h == n * P + (n + 1) * g && w == 3 * P + 4 * g && i < n; i++) {
        char mp[4200];
        unsigned char *lab = NULL;
        int mh, mw;
        snprintf(mp, sizeof mp, "%s/SegmentationClass/%s.png", set, dp_segset_id(s, i));
        CHECK(dp_image_load_mask(mp, &lab, &mh, &mw, err, sizeof err) == DP_OK && mh == S && mw == S,
              "%s: %s (expected %dx%d)", mp, err, S, S);
        for (int y = 0; lab && mh == S && mw == S && y < P; y++)
            for (int x = 0; x < P; x++) {
                const unsigned char *t = pix + ((size_t)(g + i * (P + g) + y) * w + 2 * g + P + x) * 3;
                const unsigned char *p = t + (size_t)(P + g) * 3;
                const unsigned char *c = pal[lab[(y / z) * S + x / z]];
                bad_truth += t[0] != c[0] || t[1] != c[1] || t[2] != c[2];
                int known = 0;
                for (int k = 0; k < K; k++) known |= p[0] == pal[k][0] && p[1] == pal[k][1] && p[2] == pal[k][2];
                bad_pred += !known;
                cells++;
            }
        free(lab);
    }
    for (int y = 0; h == n * P + (n + 1) * g && y < h; y++) /* the gaps: white */
        for (int x = 0; x < w; x++) {
            const int in_col = (x >= g && x < g + P) || (x >= 2 * g + P && x < 2 * g + 2 * P) ||
                               (x >= 3 * g + 2 * P && x < 3 * g + 3 * P);
            const int in_row = (y - g) % (P + g) < P && y >= g && y < h - g;
            if (in_col && in_row) continue;
            const unsigned char *q = pix + ((size_t)y * w + x) * 3;
            bad_gap += q[0] != 255 || q[1] != 255 || q[2] != 255;
        }
    CHECK(cells > 0 && bad_truth == 0, "%s: %ld of %ld truth pixels are not their mask's palette colour", png,
          bad_truth, cells);
    CHECK(bad_pred == 0, "%s: %ld prediction pixels are no class's colour", png, bad_pred);
    CHECK(bad_gap == 0, "%s: %ld gap pixels are not white", png, bad_gap);
    printf("%s: %dx%d, %ld truth pixels compared with their masks' colours\n", png, h, w, cells);
    dp_segset_free(s);
    free(pix);
    return tu_finish("test_segdata --masks-png");
}

int main(int argc, char **argv)
{
    if (argc == 7 && !strcmp(argv[1], "--masks-png"))
        return check_masks_png(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]), atoi(argv[6]));
    snprintf(root, sizeof root, "/tmp/dp_segdata_XXXXXX");
    CHECK(mkdtemp(root) != NULL, "mkdtemp");
    const char *sub[] = {"JPEGImages", "SegmentationClass", "ImageSets", "ImageSets/Segmentation"};
    for (int k = 0; k < 4; k++) {
        char p[512];
        snprintf(p, sizeof p, "%s/%s", root, sub[k]);
        mkdir(p, 0777);
    }
    put_pair("a", 24, 24, 10, 24, 0); /* the network's size: the test view is the file */
    put_pair("b", 30, 40, 17, 30, 0);
    put_list("train", "a\n\nb\n");
    check_views();
    check_errors();
    if (argc > 1) check_fashion(argv[1]);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    CHECK(system(cmd) == 0, "cleanup");
    return tu_finish("test_segdata");
}
