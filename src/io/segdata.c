/* segdata.c — semantic segmentation sets in the PascalVOC layout: the reader,
 * its augmentation, and a generator of real sets from Fashion-MNIST scenes
 * (docs/guide.md, "Segmentation data").
 *
 *   root/ImageSets/Segmentation/<split>.txt   one image id per line
 *   root/JPEGImages/<id>.jpg                  the image (any size; grey becomes RGB)
 *   root/SegmentationClass/<id>.png           its mask: palette indices (or grey values),
 *                                             class k in [0, classes), 255 = ignore
 *
 * Opening reads the list and checks that every file is there; images and masks
 * are decoded when a sample is asked for.  Errors name the file and the line,
 * byte or pixel that is wrong. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dynopool/io.h"
#include "io/image.h"
#include "io/util.h"

#define SEG_IGNORE 255 /* the ignore label (the engine's DP_SEG_IGNORE) */

struct dp_segset {
    char *root;
    int n, classes;
    char **ids;
};

void dp_segset_free(dp_segset *s)
{
    if (!s) return;
    for (int i = 0; i < s->n; i++) free(s->ids[i]);
    free(s->ids);
    free(s->root);
    free(s);
}

int dp_segset_open(const char *root, const char *split, int classes, dp_segset **out, char *err,
                   size_t errlen)
{
    if (!root || !split || !out) return dp_io_fail(err, errlen, DP_ERR_NULL, "dp_segset_open: NULL argument");
    *out = NULL;
    if (classes < 1 || classes > 255)
        return dp_io_fail(err, errlen, DP_ERR_ARG, "classes must be 1..255 (255 is the ignore label), got %d", classes);
    char path[4096];
    snprintf(path, sizeof path, "%s/ImageSets/Segmentation/%s.txt", root, split);
    FILE *f = fopen(path, "rb");
    if (!f) return dp_io_fail(err, errlen, DP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    dp_segset *s = calloc(1, sizeof *s);
    int cap = 0, rc = DP_OK, line = 0;
    long long off = 0;
    char buf[1024];
    if (!s || !(s->root = strdup(root))) rc = dp_io_fail(err, errlen, DP_ERR_NOMEM, "out of memory");
    while (!rc && fgets(buf, sizeof buf, f)) {
        const long long at = off;
        size_t len = strlen(buf);
        off += (long long)len;
        line++;
        if (len == sizeof buf - 1 && buf[len - 1] != '\n') {
            rc = dp_io_fail(err, errlen, DP_ERR_FORMAT, "%s: line %d (byte %lld): longer than %zu bytes", path, line, at,
                      sizeof buf - 2);
            break;
        }
        while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' ')) buf[--len] = 0;
        if (!len) continue; /* blank lines are allowed */
        for (size_t k = 0; k < len; k++)
            if (buf[k] == '/' || buf[k] == ' ' || buf[k] == '\t' || (unsigned char)buf[k] < 32) {
                rc = dp_io_fail(err, errlen, DP_ERR_FORMAT,
                          "%s: line %d (byte %lld): expected one image id (no spaces or slashes), got '%s'", path, line,
                          at + (long long)k, buf);
                break;
            }
        if (rc) break;
        char img[4200], msk[4200];
        snprintf(img, sizeof img, "%s/JPEGImages/%s.jpg", root, buf);
        snprintf(msk, sizeof msk, "%s/SegmentationClass/%s.png", root, buf);
        if (!dp_io_is_file(img) || !dp_io_is_file(msk)) {
            rc = dp_io_fail(err, errlen, DP_ERR_IO, "%s: line %d: %s: %s", path, line, dp_io_is_file(img) ? msk : img,
                      "no such file");
            break;
        }
        if (s->n == cap) {
            cap = cap ? 2 * cap : 256;
            char **q = realloc(s->ids, sizeof(char *) * (size_t)cap);
            if (!q) {
                rc = dp_io_fail(err, errlen, DP_ERR_NOMEM, "out of memory");
                break;
            }
            s->ids = q;
        }
        if (!(s->ids[s->n] = strdup(buf))) rc = dp_io_fail(err, errlen, DP_ERR_NOMEM, "out of memory");
        else s->n++;
    }
    if (!rc && ferror(f)) rc = dp_io_fail(err, errlen, DP_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
    fclose(f);
    if (!rc && s->n == 0) rc = dp_io_fail(err, errlen, DP_ERR_FORMAT, "%s: lists no image", path);
    if (rc) {
        dp_segset_free(s);
        return rc;
    }
    s->classes = classes;
    *out = s;
    return DP_OK;
}

int dp_segset_count(const dp_segset *s) { return s ? s->n : DP_ERR_NULL; }

const char *dp_segset_id(const dp_segset *s, int i) { return s && i >= 0 && i < s->n ? s->ids[i] : NULL; }

dp_seg_transform dp_seg_transform_defaults(int train, int size)
{
    /* HRNet's PascalVOC/Context recipe: random scale 0.5-2, crop, flip; ImageNet statistics */
    return (dp_seg_transform){.train = train, .size = size, .scale_min = 0.5f, .scale_max = 2.0f,
                              .flip = 1, .mean = {0.485f, 0.456f, 0.406f}, .std = {0.229f, 0.224f, 0.225f}};
}

/* A draw in [0, 1) from (seed, pos, k) alone. */
static double u01(uint64_t seed, long long pos, int k)
{
    uint64_t z = seed ^ (0x9e3779b97f4a7c15ULL * (uint64_t)(pos + 1)) ^ ((uint64_t)k << 56);
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1p-53;
}

int dp_segset_sample(const dp_segset *s, int i, const dp_seg_transform *t, unsigned long long seed, long long pos,
                     float *x, int *labels, char *err, size_t errlen)
{
    if (!s || !t || !x || !labels) return dp_io_fail(err, errlen, DP_ERR_NULL, "dp_segset_sample: NULL argument");
    if (i < 0 || i >= s->n) return dp_io_fail(err, errlen, DP_ERR_ARG, "sample %d of %d", i, s->n);
    const int S = t->size;
    if (S < 1 || !(t->scale_min > 0.0f && t->scale_min <= t->scale_max))
        return dp_io_fail(err, errlen, DP_ERR_ARG, "bad transform: size %d, scales [%g, %g]", S, (double)t->scale_min,
                    (double)t->scale_max);
    char img[4200], msk[4200];
    snprintf(img, sizeof img, "%s/JPEGImages/%s.jpg", s->root, s->ids[i]);
    snprintf(msk, sizeof msk, "%s/SegmentationClass/%s.png", s->root, s->ids[i]);
    unsigned char *pix = NULL, *lab = NULL;
    int h, w, mh, mw, rc;
    if ((rc = dp_image_load(img, 3, &pix, &h, &w, err, errlen))) return rc;
    if ((rc = dp_image_load_mask(msk, &lab, &mh, &mw, err, errlen))) {
        free(pix);
        return rc;
    }
    if (mh != h || mw != w) {
        rc = dp_io_fail(err, errlen, DP_ERR_FORMAT, "%s: mask is %dx%d (HxW), its image %s is %dx%d", msk, mh, mw, img, h, w);
    } else {
        for (size_t p = 0; p < (size_t)h * w; p++)
            if (lab[p] >= s->classes && lab[p] != SEG_IGNORE) {
                rc = dp_io_fail(err, errlen, DP_ERR_FORMAT, "%s: pixel (row %zu, column %zu): class %d, expected 0..%d or 255",
                          msk, p / (size_t)w, p % (size_t)w, lab[p], s->classes - 1);
                break;
            }
    }
    if (rc) {
        free(pix), free(lab);
        return rc;
    }
    /* the view: scale (sh, sw), crop at (oy, ox) of the scaled image (beyond it: padding,
     * image at the mean, mask ignored, as HRNet pads bottom and right), flip */
    double sc = 1.0;
    if (t->train) sc = t->scale_min + (t->scale_max - t->scale_min) * u01(seed, pos, 0);
    const int sh = (int)floor(h * sc + 0.5) > 0 ? (int)floor(h * sc + 0.5) : 1;
    const int sw = (int)floor(w * sc + 0.5) > 0 ? (int)floor(w * sc + 0.5) : 1;
    int oy, ox;
    if (t->train) {
        oy = sh > S ? (int)(u01(seed, pos, 1) * (sh - S + 1)) : 0;
        ox = sw > S ? (int)(u01(seed, pos, 2) * (sw - S + 1)) : 0;
    } else { /* the centre */
        oy = sh > S ? (sh - S) / 2 : 0;
        ox = sw > S ? (sw - S) / 2 : 0;
    }
    const int flip = t->train && t->flip && u01(seed, pos, 3) < 0.5;
    const double ry = (double)h / sh, rx = (double)w / sw;
    for (int yy = 0; yy < S; yy++)
        for (int xx = 0; xx < S; xx++) {
            const int cy = yy + oy, cx = (flip ? S - 1 - xx : xx) + ox;
            const size_t o = (size_t)yy * S + xx;
            if (cy >= sh || cx >= sw) {
                for (int c = 0; c < 3; c++) x[(size_t)c * S * S + o] = 0.0f; /* the mean, normalised */
                labels[o] = SEG_IGNORE;
                continue;
            }
            /* image: bilinear (align_corners=False); mask: nearest, as cv2's INTER_NEAREST */
            double fy = (cy + 0.5) * ry - 0.5, fx = (cx + 0.5) * rx - 0.5;
            fy = fy < 0 ? 0 : fy, fx = fx < 0 ? 0 : fx;
            int y0 = (int)fy, x0 = (int)fx;
            y0 = y0 > h - 1 ? h - 1 : y0, x0 = x0 > w - 1 ? w - 1 : x0;
            const int y1 = y0 + 1 < h ? y0 + 1 : h - 1, x1 = x0 + 1 < w ? x0 + 1 : w - 1;
            const double ty = fy - y0, tx = fx - x0;
            for (int c = 0; c < 3; c++) {
                const double v = (1 - ty) * ((1 - tx) * pix[((size_t)y0 * w + x0) * 3 + c] + tx * pix[((size_t)y0 * w + x1) * 3 + c]) +
                                 ty * ((1 - tx) * pix[((size_t)y1 * w + x0) * 3 + c] + tx * pix[((size_t)y1 * w + x1) * 3 + c]);
                x[(size_t)c * S * S + o] = (float)((v / 255.0 - t->mean[c]) / t->std[c]);
            }
            int ny = (int)(cy * ry), nx = (int)(cx * rx);
            ny = ny > h - 1 ? h - 1 : ny, nx = nx > w - 1 ? w - 1 : nx;
            labels[o] = lab[(size_t)ny * w + nx];
        }
    free(pix), free(lab);
    return DP_OK;
}

/* ---- a real segmentation set from Fashion-MNIST scenes --------------------------- */

/* PascalVOC's colour map: class k's colour from its bits, spread over the three channels. */
void dp_seg_palette(unsigned char pal[256][3])
{
    for (int k = 0; k < 256; k++) {
        int r = 0, g = 0, b = 0, c = k;
        for (int j = 0; j < 8; j++, c >>= 3) {
            r |= ((c >> 0) & 1) << (7 - j);
            g |= ((c >> 1) & 1) << (7 - j);
            b |= ((c >> 2) & 1) << (7 - j);
        }
        pal[k][0] = (unsigned char)r, pal[k][1] = (unsigned char)g, pal[k][2] = (unsigned char)b;
    }
}

static int make_dir(const char *p, char *err, size_t errlen)
{
    if (mkdir(p, 0777) == 0 || errno == EEXIST) return DP_OK;
    return dp_io_fail(err, errlen, DP_ERR_IO, "%s: cannot create directory: %s", p, strerror(errno));
}

/* Fashion-MNIST's ten classes, background first: the set's class names. */
static const char *const FASHION_NAMES[11] = {"background", "t-shirt/top", "trouser", "pullover", "dress", "coat",
                                              "sandal", "shirt", "sneaker", "bag", "ankle-boot"};

/* One split: n scenes from the items of split `train` of the IDX set at src. */
static int make_split(const char *src, const char *out, const char *split, int train, int n, int size,
                      unsigned long long seed, char *err, size_t errlen)
{
    dp_dataset *ds;
    int rc = dp_dataset_open(src, DP_DATA_IDX, train, 10, 0, &ds, err, errlen);
    if (rc) return rc;
    dp_dataset_info in;
    dp_dataset_info_get(ds, &in);
    dp_transform t = dp_transform_defaults(ds, 0, DP_VARIANT_NONE);
    for (int c = 0; c < 3; c++) t.mean[c] = 0.0f, t.std[c] = 1.0f; /* pixels in [0, 1] */
    const int B = in.size, nb = in.size * in.size;
    unsigned char pal[256][3];
    dp_seg_palette(pal);
    unsigned char *img = malloc((size_t)size * size * 3), *msk = malloc((size_t)size * size);
    float *item = malloc(sizeof(float) * (size_t)nb * in.channels);
    char path[4200];
    snprintf(path, sizeof path, "%s/ImageSets/Segmentation/%s.txt", out, split);
    FILE *list = fopen(path, "w");
    if (!img || !msk || !item) rc = dp_io_fail(err, errlen, DP_ERR_NOMEM, "out of memory");
    else if (!list) rc = dp_io_fail(err, errlen, DP_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    for (int s = 0; !rc && s < n; s++) {
        const long long pos = (long long)s * 64;
        memset(img, 0, (size_t)size * size * 3);
        memset(msk, 0, (size_t)size * size);
        const int items = 1 + (int)(u01(seed, pos, 0) * 3); /* 1 to 3, later ones on top */
        for (int k = 0; k < items && !rc; k++) {
            const int idx = (int)(u01(seed, pos, 8 * k + 1) * in.n);
            int label;
            if ((rc = dp_dataset_batch(ds, &t, &idx, 1, seed, pos, item, &label, err, errlen))) break;
            /* side a quarter to 0.55 of the canvas (16 to 35 pixels on 64), anywhere it fits,
             * tinted with a random colour */
            int side = (int)floor(size * (0.25 + 0.3 * u01(seed, pos, 8 * k + 2)) + 0.5);
            side = side < 4 ? 4 : side > size ? size : side;
            const int y0 = (int)(u01(seed, pos, 8 * k + 3) * (size - side + 1));
            const int x0 = (int)(u01(seed, pos, 8 * k + 4) * (size - side + 1));
            double tint[3];
            for (int c = 0; c < 3; c++) tint[c] = 0.45 + 0.55 * u01(seed, pos, 8 * k + 5 + c);
            for (int yy = 0; yy < side; yy++)
                for (int xx = 0; xx < side; xx++) { /* bilinear from the 28 x 28 item */
                    double fy = (yy + 0.5) * B / side - 0.5, fx = (xx + 0.5) * B / side - 0.5;
                    fy = fy < 0 ? 0 : fy, fx = fx < 0 ? 0 : fx;
                    const int a = (int)fy < B - 1 ? (int)fy : B - 1, b = (int)fx < B - 1 ? (int)fx : B - 1;
                    const int a1 = a + 1 < B ? a + 1 : B - 1, b1 = b + 1 < B ? b + 1 : B - 1;
                    const double ty = fy - a, tx = fx - b;
                    const double v = (1 - ty) * ((1 - tx) * item[a * B + b] + tx * item[a * B + b1]) +
                                     ty * ((1 - tx) * item[a1 * B + b] + tx * item[a1 * B + b1]);
                    if (v <= 0.05) continue; /* the item's own background: the scene's shows */
                    const size_t o = (size_t)(y0 + yy) * size + (x0 + xx);
                    for (int c = 0; c < 3; c++) img[o * 3 + c] = (unsigned char)floor(255.0 * v * tint[c] + 0.5);
                    /* the item's class where it is clearly drawn; its faint rim ignored, as
                     * PascalVOC marks object boundaries 255 */
                    msk[o] = v > 0.15 ? (unsigned char)(label + 1) : SEG_IGNORE;
                }
        }
        if (rc) break;
        char id[64];
        snprintf(id, sizeof id, "%s_%06d", split, s + 1);
        snprintf(path, sizeof path, "%s/JPEGImages/%s.jpg", out, id);
        if ((rc = dp_image_write_jpeg(path, img, size, size, 3, 95, err, errlen))) break;
        snprintf(path, sizeof path, "%s/SegmentationClass/%s.png", out, id);
        if ((rc = dp_image_write_png_palette(path, msk, size, size, (const unsigned char(*)[3])pal, err, errlen))) break;
        if (fprintf(list, "%s\n", id) < 0) rc = dp_io_fail(err, errlen, DP_ERR_IO, "cannot write the list of %s", split);
    }
    if (list && fclose(list) != 0 && !rc) rc = dp_io_fail(err, errlen, DP_ERR_IO, "cannot write the list of %s", split);
    free(img), free(msk), free(item);
    dp_dataset_free(ds);
    return rc;
}

int dp_segset_make_fashion(const char *src, const char *out, int n_train, int n_val, int size,
                           unsigned long long seed, char *err, size_t errlen)
{
    if (!src || !out) return dp_io_fail(err, errlen, DP_ERR_NULL, "dp_segset_make_fashion: NULL argument");
    if (n_train < 1 || n_val < 1 || size < 16 || size > 4096)
        return dp_io_fail(err, errlen, DP_ERR_ARG, "need >= 1 training and validation scenes and a side in [16, 4096]");
    char p[4200];
    int rc = make_dir(out, err, errlen);
    const char *sub[] = {"JPEGImages", "SegmentationClass", "ImageSets", "ImageSets/Segmentation"};
    for (int k = 0; !rc && k < 4; k++) {
        snprintf(p, sizeof p, "%s/%s", out, sub[k]);
        rc = make_dir(p, err, errlen);
    }
    if (!rc) rc = make_split(src, out, "train", 1, n_train, size, seed, err, errlen);
    if (!rc) rc = make_split(src, out, "val", 0, n_val, size, seed ^ 0x5a5a5a5aULL, err, errlen);
    if (!rc) {
        snprintf(p, sizeof p, "%s/class_names.txt", out);
        FILE *f = fopen(p, "w");
        if (!f) return dp_io_fail(err, errlen, DP_ERR_IO, "%s: cannot create: %s", p, strerror(errno));
        for (int k = 0; k < 11; k++) fprintf(f, "%s\n", FASHION_NAMES[k]);
        if (fclose(f) != 0) rc = dp_io_fail(err, errlen, DP_ERR_IO, "%s: cannot write", p);
    }
    return rc;
}
