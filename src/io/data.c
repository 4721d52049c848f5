/*
 * data.c — datasets (IDX, CIFAR binary, image folders), augmentation, the paper's
 * toy variants, and per-channel normalisation (docs/guide.md, "Data").
 *
 * In-memory sets keep their pixels as uint8 (n, c, s, s); image folders keep a
 * list of files and decode on demand (dp_dataset_batch runs in loader threads,
 * so everything here is read-only after dp_dataset_open).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "dynopool/io.h"
#include "io/image.h"
#include "io/util.h"

#define MAX_RESIZED_SIDE 16384 /* an image folder's image after resizing (base_view) */

struct dp_dataset {
    int kind, n, c, size, classes;
    unsigned char *pix;   /* in-memory: (n, c, size, size) */
    int *labels;          /* (n) */
    char **files;         /* folders: (n) paths */
    char **class_names;   /* folders: (classes) their class folders' names, in label order */
};

int dp_io_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

int dp_io_is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* ---- IDX (gzip or plain, through zlib) ------------------------------------ */

/* dir/base.gz if present, else dir/base; 0 when neither exists. */
static int idx_path(const char *dir, const char *base, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s.gz", dir, base);
    if (dp_io_is_file(out)) return 1;
    snprintf(out, cap, "%s/%s", dir, base);
    return dp_io_is_file(out);
}

/* Reads exactly len bytes at uncompressed offset off; an error names the offset. */
static int gz_read(gzFile f, const char *path, void *buf, size_t len, long long off,
                   const char *what, char *err, size_t errlen)
{
    size_t got = 0;
    while (got < len) {
        const unsigned chunk = len - got > (1u << 16) ? 1u << 16 : (unsigned)(len - got);
        const int r = gzread(f, (char *)buf + got, chunk);
        if (r < 0) {
            int zerr;
            const char *msg = gzerror(f, &zerr), *own = strstr(msg, path);
            if (own == msg && msg[strlen(path)] == ':') msg += strlen(path) + 1 + (msg[strlen(path) + 1] == ' ');
            return dp_io_fail(err, errlen, DP_ERR_FORMAT,
                        "%s: corrupt gzip data before uncompressed byte %lld (%s) while reading %s",
                        path, off + (long long)got, msg, what);
        }
        if (r == 0)
            return dp_io_fail(err, errlen, DP_ERR_FORMAT,
                        "%s: truncated: the data ends at byte %lld, expected %s up to byte %lld",
                        path, off + (long long)got, what, off + (long long)len);
        got += (size_t)r;
    }
    return DP_OK;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Opens an IDX file and checks its header: dims 3 (images) or 1 (labels).
 * shape receives n (and rows, cols). */
static int idx_open(const char *path, int dims, gzFile *out, uint32_t shape[3], char *err, size_t errlen)
{
    gzFile f = gzopen(path, "rb");
    if (!f) return dp_io_fail(err, errlen, DP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    unsigned char h[16];
    int rc = gz_read(f, path, h, 4 + 4 * (size_t)dims, 0, "the IDX header", err, errlen);
    if (!rc && (h[0] || h[1] || h[2] != 0x08 || h[3] != dims))
        rc = dp_io_fail(err, errlen, DP_ERR_FORMAT,
                  "%s: byte 0: expected the IDX magic 00 00 08 %02x (unsigned bytes, %d dimension%s), "
                  "found %02x %02x %02x %02x", path, dims, dims, dims > 1 ? "s" : "", h[0], h[1], h[2], h[3]);
    uint64_t bytes = 1; /* the payload the header declares: at most 1e8 * 4096 * 4096 < 2^51 */
    for (int d = 0; !rc && d < dims; d++) {
        shape[d] = be32(h + 4 + 4 * d);
        if (shape[d] == 0 || shape[d] > (d ? 4096u : 100000000u))
            rc = dp_io_fail(err, errlen, DP_ERR_FORMAT, "%s: byte %d: dimension %d is %u, expected 1..%u",
                      path, 4 + 4 * d, d, shape[d], d ? 4096u : 100000000u);
        bytes *= shape[d];
    }
    /* Before allocating it, the payload must be addressable and fit in the file: a
     * plain file holds it byte for byte, a gzip file at most 1032 bytes per byte of
     * deflate data (its best ratio). */
    struct stat st;
    if (!rc && stat(path, &st) == 0) {
        const int hdr = 4 + 4 * dims, plain = gzdirect(f);
        const uint64_t room = plain ? (uint64_t)(st.st_size > hdr ? st.st_size - hdr : 0)
                                    : 1032 * (uint64_t)st.st_size + 1024;
        char what[96];
        if (dims == 3) snprintf(what, sizeof what, "%u images of %ux%u", shape[0], shape[1], shape[2]);
        else snprintf(what, sizeof what, "%u labels", shape[0]);
        if (bytes > SIZE_MAX || bytes > room)
            rc = dp_io_fail(err, errlen, DP_ERR_FORMAT,
                      plain ? "%s: truncated: the header declares %s (%llu bytes from byte %d), "
                              "but the file is only %lld bytes"
                            : "%s: the header declares %s (%llu bytes from byte %d), more than a "
                              "gzip file of %lld bytes can hold",
                      path, what, (unsigned long long)bytes, hdr, (long long)st.st_size);
    }
    if (rc) {
        gzclose(f);
        return rc;
    }
    *out = f;
    return DP_OK;
}

/* After the payload: the file must end here (this also makes zlib check the CRC). */
static int gz_end(gzFile f, const char *path, long long off, char *err, size_t errlen)
{
    unsigned char extra;
    const int r = gzread(f, &extra, 1);
    if (r < 0) {
        int zerr;
        const char *msg = gzerror(f, &zerr);
        if (strstr(msg, path) == msg && msg[strlen(path)] == ':') msg += strlen(path) + 1 + (msg[strlen(path) + 1] == ' ');
        return dp_io_fail(err, errlen, DP_ERR_FORMAT, "%s: corrupt gzip data at the end of the file (%s)", path, msg);
    }
    if (r > 0)
        return dp_io_fail(err, errlen, DP_ERR_FORMAT,
                    "%s: byte %lld: expected the end of the file after the last item, found more data",
                    path, off);
    return DP_OK;
}

static int load_idx(dp_dataset *ds, const char *dir, int train, char *err, size_t errlen)
{
    const char *pre = train ? "train" : "t10k";
    char ip[4096], lp[4096], base[64];
    snprintf(base, sizeof base, "%s-images-idx3-ubyte", pre);
    if (!idx_path(dir, base, ip, sizeof ip))
        return dp_io_fail(err, errlen, DP_ERR_IO, "%s/%s.gz: no such file (nor without .gz)", dir, base);
    snprintf(base, sizeof base, "%s-labels-idx1-ubyte", pre);
    if (!idx_path(dir, base, lp, sizeof lp))
        return dp_io_fail(err, errlen, DP_ERR_IO, "%s/%s.gz: no such file (nor without .gz)", dir, base);
    gzFile fi = NULL, fl = NULL;
    uint32_t si[3], sl[3];
    int rc = idx_open(ip, 3, &fi, si, err, errlen);
    if (!rc) rc = idx_open(lp, 1, &fl, sl, err, errlen);
    if (!rc && si[1] != si[2])
        rc = dp_io_fail(err, errlen, DP_ERR_FORMAT, "%s: bytes 8-15: images are %ux%u, expected square images",
                  ip, si[1], si[2]);
    if (!rc && si[0] != sl[0])
        rc = dp_io_fail(err, errlen, DP_ERR_FORMAT, "%s holds %u labels but %s holds %u images", lp, sl[0], ip, si[0]);
    if (!rc) {
        ds->n = (int)si[0], ds->c = 1, ds->size = (int)si[1];
        const size_t img = (size_t)ds->size * ds->size;
        ds->pix = malloc(img * ds->n);
        unsigned char *lab = malloc((size_t)ds->n);
        ds->labels = malloc(sizeof(int) * (size_t)ds->n);
        if (!ds->pix || !lab || !ds->labels)
            rc = dp_io_fail(err, errlen, DP_ERR_NOMEM, "%s: out of memory for %d images of %dx%d (%zu bytes)",
                      ip, ds->n, ds->size, ds->size, img * ds->n);
        char what[96];
        snprintf(what, sizeof what, "%d images of %dx%d", ds->n, ds->size, ds->size);
        if (!rc) rc = gz_read(fi, ip, ds->pix, img * ds->n, 16, what, err, errlen);
        if (!rc) rc = gz_end(fi, ip, 16 + (long long)(img * ds->n), err, errlen);
        snprintf(what, sizeof what, "%d labels", ds->n);
        if (!rc) rc = gz_read(fl, lp, lab, (size_t)ds->n, 8, what, err, errlen);
        if (!rc) rc = gz_end(fl, lp, 8 + (long long)ds->n, err, errlen);
        for (int i = 0; !rc && i < ds->n; i++) {
            if (lab[i] >= ds->classes)
                rc = dp_io_fail(err, errlen, DP_ERR_FORMAT, "%s: byte %lld: label %d is out of range [0, %d)%s",
                          lp, 8LL + i, lab[i], ds->classes,
                          ds->classes == 10 ? " (more classes? --classes)" : "");
            else
                ds->labels[i] = lab[i];
        }
        free(lab);
    }
    if (fi) gzclose(fi);
    if (fl) gzclose(fl);
    return rc;
}

/* ---- CIFAR-10 / CIFAR-100 binary ------------------------------------------ */

static int load_cifar(dp_dataset *ds, const char *dir, int train, char *err, size_t errlen)
{
    const int c100 = ds->kind == DP_DATA_CIFAR100, rec = c100 ? 3074 : 3073;
    char paths[5][4096];
    int nf = 0;
    if (c100) {
        snprintf(paths[nf++], 4096, "%s/%s.bin", dir, train ? "train" : "test");
    } else if (train) {
        for (int i = 1; i <= 5; i++) snprintf(paths[nf++], 4096, "%s/data_batch_%d.bin", dir, i);
    } else {
        snprintf(paths[nf++], 4096, "%s/test_batch.bin", dir);
    }
    long long sizes[5], total = 0;
    for (int i = 0; i < nf; i++) {
        struct stat st;
        if (stat(paths[i], &st) != 0)
            return dp_io_fail(err, errlen, DP_ERR_IO, "%s: cannot open: %s", paths[i], strerror(errno));
        sizes[i] = st.st_size;
        if (sizes[i] == 0 || sizes[i] % rec)
            return dp_io_fail(err, errlen, DP_ERR_FORMAT,
                        "%s: truncated: %lld bytes is not a whole number of %d-byte records "
                        "(the incomplete record starts at byte %lld)", paths[i], sizes[i], rec,
                        sizes[i] / rec * rec);
        total += sizes[i] / rec;
        if (total > INT_MAX) /* images are counted in an int */
            return dp_io_fail(err, errlen, DP_ERR_FORMAT,
                        "%s: %lld bytes hold %lld records, %lld images in all; at most %d are supported",
                        paths[i], sizes[i], sizes[i] / rec, total, INT_MAX);
    }
    ds->n = (int)total, ds->c = 3, ds->size = 32;
    ds->pix = malloc((size_t)3072 * ds->n);
    ds->labels = malloc(sizeof(int) * (size_t)ds->n);
    unsigned char *buf = malloc((size_t)rec);
    int rc = ds->pix && ds->labels && buf ? DP_OK : DP_ERR_NOMEM;
    if (rc)
        dp_io_fail(err, errlen, rc, "%s: out of memory for %d images of 3x32x32 (%lld bytes)", paths[nf - 1],
             ds->n, 3072 * total);
    int k = 0;
    for (int i = 0; !rc && i < nf; i++) {
        FILE *f = fopen(paths[i], "rb");
        if (!f) {
            rc = dp_io_fail(err, errlen, DP_ERR_IO, "%s: cannot open: %s", paths[i], strerror(errno));
            break;
        }
        for (long long r = 0; !rc && r < sizes[i] / rec; r++, k++) {
            if (fread(buf, 1, (size_t)rec, f) != (size_t)rec) {
                rc = dp_io_fail(err, errlen, DP_ERR_IO, "%s: read failed at byte %lld", paths[i], r * rec);
                break;
            }
            const int lab = buf[c100], lim = c100 ? 100 : 10;
            if (c100 && buf[0] >= 20)
                rc = dp_io_fail(err, errlen, DP_ERR_FORMAT, "%s: byte %lld: coarse label %d is out of range [0, 20)",
                          paths[i], r * rec, buf[0]);
            else if (lab >= lim)
                rc = dp_io_fail(err, errlen, DP_ERR_FORMAT, "%s: byte %lld: label %d is out of range [0, %d)",
                          paths[i], r * rec + c100, lab, lim);
            ds->labels[k] = lab;
            memcpy(ds->pix + (size_t)3072 * k, buf + 1 + c100, 3072);
        }
        fclose(f);
    }
    free(buf);
    return rc;
}

/* ---- image folders ------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted entries of dir that are directories (want_dir) or image files. */
static int list_dir(const char *dir, int want_dir, char ***out, int *n, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) return dp_io_fail(err, errlen, DP_ERR_IO, "%s: cannot open the folder: %s", dir, strerror(errno));
    char **v = NULL;
    int cnt = 0, cap = 0, rc = DP_OK;
    struct dirent *e;
    char p[4096];
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (snprintf(p, sizeof p, "%s/%s", dir, e->d_name) >= (int)sizeof p) continue; /* too long */
        if (want_dir) {
            if (!is_dir(p)) continue;
        } else {
            const char *dot = strrchr(e->d_name, '.');
            char ext[8] = "";
            for (int i = 0; dot && dot[i + 1] && i < 7; i++) ext[i] = (char)tolower((unsigned char)dot[i + 1]), ext[i + 1] = 0;
            if (strcmp(ext, "jpg") && strcmp(ext, "jpeg") && strcmp(ext, "png")) continue;
            if (!dp_io_is_file(p)) continue;
        }
        if (cnt == cap) {
            cap = cap ? 2 * cap : 64;
            char **q = realloc(v, sizeof(char *) * (size_t)cap);
            if (!q) { rc = DP_ERR_NOMEM; break; }
            v = q;
        }
        if (!(v[cnt] = strdup(want_dir ? e->d_name : p))) { rc = DP_ERR_NOMEM; break; }
        cnt++;
    }
    closedir(d);
    if (v) qsort(v, (size_t)cnt, sizeof(char *), cmp_str);
    *out = v, *n = cnt;
    return rc;
}

static void free_list(char **v, int n)
{
    for (int i = 0; v && i < n; i++) free(v[i]);
    free(v);
}

static int load_folder(dp_dataset *ds, const char *dir, int train, char *err, size_t errlen)
{
    char root[4096], cdir[4096];
    snprintf(root, sizeof root, "%s/train", dir);
    char **classes = NULL;
    int nc = 0, rc = list_dir(root, 1, &classes, &nc, err, errlen);
    if (!rc && nc == 0)
        rc = dp_io_fail(err, errlen, DP_ERR_FORMAT, "%s: expected one folder per class, found none", root);
    snprintf(root, sizeof root, "%s/%s", dir, train ? "train" : "test");
    if (!rc && !train) { /* test classes must be training classes */
        char **tc = NULL;
        int ntc = 0;
        rc = list_dir(root, 1, &tc, &ntc, err, errlen);
        for (int i = 0; !rc && i < ntc; i++)
            if (!bsearch(&tc[i], classes, (size_t)nc, sizeof(char *), cmp_str))
                rc = dp_io_fail(err, errlen, DP_ERR_FORMAT, "%s/%s: class '%s' is not among the training classes",
                          root, tc[i], tc[i]);
        free_list(tc, ntc);
    }
    int cap = 0;
    for (int k = 0; !rc && k < nc; k++) {
        if (snprintf(cdir, sizeof cdir, "%s/%s", root, classes[k]) >= (int)sizeof cdir || !is_dir(cdir)) continue;
        char **f = NULL;
        int nf = 0;
        rc = list_dir(cdir, 0, &f, &nf, err, errlen);
        if (!rc && (long long)ds->n + nf > INT_MAX / 2) /* images are counted in an int */
            rc = dp_io_fail(err, errlen, DP_ERR_FORMAT, "%s: %d more images make over %d in all", cdir, nf,
                      INT_MAX / 2);
        if (!rc && ds->n + nf > cap) {
            cap = 2 * (ds->n + nf);
            char **q = realloc(ds->files, sizeof(char *) * (size_t)cap);
            int *l = realloc(ds->labels, sizeof(int) * (size_t)cap);
            if (q) ds->files = q;
            if (l) ds->labels = l;
            if (!q || !l) rc = DP_ERR_NOMEM;
        }
        for (int i = 0; i < nf; i++) {
            if (rc) { free(f[i]); continue; }
            ds->files[ds->n] = f[i];
            ds->labels[ds->n++] = k;
        }
        free(f);
    }
    if (!rc && ds->n == 0)
        rc = dp_io_fail(err, errlen, DP_ERR_FORMAT, "%s: no .jpg, .jpeg or .png images under <class>/ folders", root);
    ds->classes = nc, ds->c = 3;
    ds->class_names = classes; /* freed with the dataset */
    return rc;
}

/* ---- open / info ------------------------------------------------------------ */

static const char *const kind_names[] = {"idx", "cifar10", "cifar100", "folder"};
static const char *const variant_names[] = {"none", "stretch-v", "tile", "large"};

const char *dp_data_kind_name(int k) { return k >= 0 && k < 4 ? kind_names[k] : "?"; }
const char *dp_variant_name(int v) { return v >= 0 && v < 4 ? variant_names[v] : "?"; }

int dp_data_kind_parse(const char *s)
{
    for (int i = 0; s && i < 4; i++)
        if (!strcmp(s, kind_names[i])) return i;
    return DP_ERR_ARG;
}

int dp_variant_parse(const char *s)
{
    for (int i = 0; s && i < 4; i++)
        if (!strcmp(s, variant_names[i])) return i;
    return DP_ERR_ARG;
}

int dp_variant_size(int variant, int base)
{
    if (base < 2) return DP_ERR_SIZE;
    switch (variant) {
    case DP_VARIANT_NONE:
    case DP_VARIANT_STRETCH_V: return base;
    case DP_VARIANT_TILE:
    case DP_VARIANT_LARGE: return 4 * (base / 2);
    default: return DP_ERR_ARG;
    }
}

static int detect(const char *dir)
{
    char p[4096];
    if (idx_path(dir, "train-images-idx3-ubyte", p, sizeof p) || idx_path(dir, "t10k-images-idx3-ubyte", p, sizeof p))
        return DP_DATA_IDX;
    snprintf(p, sizeof p, "%s/data_batch_1.bin", dir);
    if (dp_io_is_file(p)) return DP_DATA_CIFAR10;
    snprintf(p, sizeof p, "%s/test_batch.bin", dir);
    if (dp_io_is_file(p)) return DP_DATA_CIFAR10;
    snprintf(p, sizeof p, "%s/train.bin", dir);
    if (dp_io_is_file(p)) return DP_DATA_CIFAR100;
    snprintf(p, sizeof p, "%s/train", dir);
    if (is_dir(p)) return DP_DATA_FOLDER;
    return DP_ERR_ARG;
}

void dp_dataset_free(dp_dataset *ds)
{
    if (!ds) return;
    free(ds->pix);
    free(ds->labels);
    free_list(ds->files, ds->files ? ds->n : 0);
    free_list(ds->class_names, ds->class_names ? ds->classes : 0);
    free(ds);
}

int dp_dataset_open(const char *dir, int kind, int train, int classes, int size, dp_dataset **out,
                    char *err, size_t errlen)
{
    if (!dir || !out) return DP_ERR_NULL;
    *out = NULL;
    if (err && errlen) err[0] = '\0';
    if (!is_dir(dir))
        return dp_io_fail(err, errlen, DP_ERR_IO, "%s: not a folder (%s)", dir,
                    errno == ENOENT ? "no such folder" : strerror(errno));
    if (kind == DP_DATA_AUTO && (kind = detect(dir)) < 0)
        return dp_io_fail(err, errlen, DP_ERR_FORMAT,
                    "%s: no dataset found: expected IDX files (train-images-idx3-ubyte.gz, ...), "
                    "CIFAR-10 (data_batch_1.bin ...), CIFAR-100 (train.bin, test.bin) or an image "
                    "folder (train/<class>/*.jpg)", dir);
    if (kind < 0 || kind > 3 || classes < 0 || classes > 256 || size < 0 || size > 4096)
        return DP_ERR_ARG;
    dp_dataset *ds = calloc(1, sizeof(*ds));
    if (!ds) return DP_ERR_NOMEM;
    ds->kind = kind;
    ds->classes = kind == DP_DATA_CIFAR100 ? 100 : kind == DP_DATA_CIFAR10 ? 10 : classes ? classes : 10;
    int rc;
    if (kind == DP_DATA_IDX) rc = load_idx(ds, dir, train, err, errlen);
    else if (kind == DP_DATA_FOLDER) rc = load_folder(ds, dir, train, err, errlen), ds->size = size ? size : 224;
    else rc = load_cifar(ds, dir, train, err, errlen);
    if (rc) {
        if (rc == DP_ERR_NOMEM && !(err && errlen && err[0]))
            dp_io_fail(err, errlen, rc, "%s: out of memory while loading", dir);
        dp_dataset_free(ds);
        return rc;
    }
    *out = ds;
    return DP_OK;
}

int dp_dataset_info_get(const dp_dataset *ds, dp_dataset_info *info)
{
    if (!ds || !info) return DP_ERR_NULL;
    *info = (dp_dataset_info){ds->kind, ds->n, ds->c, ds->size, ds->classes};
    return DP_OK;
}

const char *dp_dataset_class_name(const dp_dataset *ds, int k)
{
    return ds && ds->class_names && k >= 0 && k < ds->classes ? ds->class_names[k] : NULL;
}

int dp_dataset_label(const dp_dataset *ds, int i)
{
    return ds && i >= 0 && i < ds->n ? ds->labels[i] : DP_ERR_ARG;
}

int dp_transform_size(const dp_transform *t, int base)
{
    if (!t) return DP_ERR_NULL;
    if (t->resize < 0 || t->resize > 16384) return DP_ERR_ARG;
    const int vs = dp_variant_size(t->variant, base);
    return vs < 0 || !t->resize ? vs : t->resize;
}

dp_transform dp_transform_defaults(const dp_dataset *ds, int train, int variant)
{
    dp_transform t = {.train = train, .variant = variant, .pad = 4, .flip = 1,
                      .mean = {0.5f, 0.5f, 0.5f}, .std = {0.25f, 0.25f, 0.25f}};
    if (ds && ds->kind == DP_DATA_FOLDER) t.pad = 0;
    return t;
}

/* ---- resampling and the per-sample pipeline --------------------------------- */

/* Resizes one plane (h, w) -> (oh, ow) with a triangle filter whose support grows
 * with the reduction (antialiased like PIL's bilinear; for enlargement exactly
 * PyTorch's bilinear with align_corners=False). */
static int resample(const float *src, int h, int w, float *dst, int oh, int ow)
{
    float *tmp = malloc(sizeof(float) * (size_t)h * ow);
    if (!tmp) return DP_ERR_NOMEM;
    for (int pass = 0; pass < 2; pass++) {
        const int in = pass ? h : w, out = pass ? oh : ow, lines = pass ? ow : h;
        const double scale = (double)in / out, sup = scale > 1.0 ? scale : 1.0;
        for (int o = 0; o < out; o++) {
            const double ctr = (o + 0.5) * scale;
            int lo = (int)floor(ctr - sup), hi = (int)ceil(ctr + sup);
            if (lo < 0) lo = 0;
            if (hi > in) hi = in;
            double wsum = 0.0, wt[64 + 4096];
            int nt = 0;
            for (int i = lo; i < hi && nt < 64 + 4096; i++, nt++) {
                const double d = fabs((i + 0.5 - ctr) / sup);
                wt[nt] = d < 1.0 ? 1.0 - d : 0.0;
                wsum += wt[nt];
            }
            for (int l = 0; l < lines; l++) {
                double acc = 0.0;
                for (int t = 0; t < nt; t++)
                    acc += wt[t] * (pass ? tmp[(size_t)(lo + t) * ow + l] : src[(size_t)l * w + lo + t]);
                const float v = (float)(wsum > 0.0 ? acc / wsum : 0.0);
                if (pass) dst[(size_t)o * ow + l] = v;
                else tmp[(size_t)l * ow + o] = v;
            }
        }
    }
    free(tmp);
    return DP_OK;
}

static uint64_t mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int draw(uint64_t *s, int n) /* uniform in [0, n) */
{
    *s = mix64(*s);
    return n > 1 ? (int)((*s >> 33) % (uint64_t)n) : 0;
}

/* An image file's base view: a (c, s, s) float image in [0, 1] in out.  Image
 * folders (folder = 1): the shorter side resized to 8/7 of s (256 for 224),
 * then an s x s crop, random (train) or central (docs/guide.md, "Data");
 * otherwise the shorter side resized to s and the central s x s (an s x s
 * image passes unchanged: the triangle filter at scale 1 is the identity).
 * *native (may be NULL): the file's own channels. */
static int file_view(const char *path, int folder, int c, int s, int train, uint64_t *rng, float *out,
                     int *native, char *err, size_t errlen)
{
    unsigned char *px;
    int h, w;
    int rc = dp_image_load_native(path, c, &px, &h, &w, native, err, errlen);
    if (rc) return rc;
    /* the longer side grows by the aspect ratio, so it is capped like a decoded
     * image's side (a 1x16384 image would become 37x606208) */
    const int r = folder ? (s * 8 + 3) / 7 : s;
    const long long lh = h <= w ? r : (long long)h * r / w, lw = h <= w ? (long long)w * r / h : r;
    if (lh > MAX_RESIZED_SIDE || lw > MAX_RESIZED_SIDE) {
        free(px);
        return dp_io_fail(err, errlen, DP_ERR_FORMAT,
                    "%s: image is %dx%d (HxW): resizing its shorter side to %d (%s the %dx%d crop) "
                    "would make it %lldx%lld; the longer side may be at most %d (crop the image to a "
                    "less extreme aspect ratio)", path, h, w, r, folder ? "8/7 of" : "the side of", s, s, lh,
                    lw, MAX_RESIZED_SIDE);
    }
    const int rh = (int)lh, rw = (int)lw;
    float *plane = malloc(sizeof(float) * (size_t)h * w), *big = malloc(sizeof(float) * (size_t)rh * rw);
    rc = plane && big ? DP_OK : DP_ERR_NOMEM;
    const int oy = train ? draw(rng, rh - s + 1) : (rh - s) / 2;
    const int ox = train ? draw(rng, rw - s + 1) : (rw - s) / 2;
    for (int ch = 0; !rc && ch < c; ch++) {
        for (size_t k = 0; k < (size_t)h * w; k++) plane[k] = px[k * c + ch] / 255.0f;
        if ((rc = resample(plane, h, w, big, rh, rw))) break;
        for (int y = 0; y < s; y++)
            memcpy(out + ((size_t)ch * s + y) * s, big + (size_t)(y + oy) * rw + ox, sizeof(float) * s);
    }
    free(px);
    free(plane);
    free(big);
    return rc;
}

/* One sample, base view: a (c, size, size) float image in [0, 1] in out. */
static int base_view(const dp_dataset *ds, const dp_transform *t, int i, uint64_t *rng, float *out,
                     char *err, size_t errlen)
{
    const int s = ds->size, c = ds->c;
    if (ds->kind != DP_DATA_FOLDER) {
        const unsigned char *p = ds->pix + (size_t)i * c * s * s;
        const int pad = t->train ? t->pad : 0;
        const int dy = draw(rng, 2 * pad + 1) - pad, dx = draw(rng, 2 * pad + 1) - pad;
        for (int ch = 0; ch < c; ch++)
            for (int y = 0; y < s; y++)
                for (int x = 0; x < s; x++) {
                    const int sy = y + dy, sx = x + dx;
                    out[((size_t)ch * s + y) * s + x] =
                        sy >= 0 && sy < s && sx >= 0 && sx < s ? p[((size_t)ch * s + sy) * s + sx] / 255.0f : 0.0f;
                }
        return DP_OK;
    }
    return file_view(ds->files[i], 1, c, s, t->train, rng, out, NULL, err, errlen);
}

/* The toy variant (paper, sections 3.1-3.2; docs/guide.md, "Data") on a (c, s, s)
 * image; out is (c, vs, vs). */
static int variant_view(const dp_transform *t, const float *in, int c, int s, uint64_t *rng, float *out)
{
    const int vs = dp_variant_size(t->variant, s), half = s / 2;
    float *tmp = malloc(sizeof(float) * (size_t)2 * s * s);
    if (!tmp) return DP_ERR_NOMEM;
    int rc = DP_OK;
    const int oy = t->train ? draw(rng, s + 1) : s / 2; /* stretch-V crop row */
    for (int ch = 0; !rc && ch < c; ch++) {
        const float *p = in + (size_t)ch * s * s;
        float *q = out + (size_t)ch * vs * vs;
        switch (t->variant) {
        case DP_VARIANT_STRETCH_V:
            if (!(rc = resample(p, s, s, tmp, 2 * s, s)))
                memcpy(q, tmp + (size_t)oy * s, sizeof(float) * (size_t)s * s);
            break;
        case DP_VARIANT_TILE:
            if (!(rc = resample(p, s, s, tmp, half, half)))
                for (int y = 0; y < vs; y++)
                    for (int x = 0; x < vs; x++) q[(size_t)y * vs + x] = tmp[(size_t)(y % half) * half + x % half];
            break;
        case DP_VARIANT_LARGE:
            if (!(rc = resample(p, s, s, tmp, half, half))) rc = resample(tmp, half, half, q, vs, vs);
            break;
        default: memcpy(q, p, sizeof(float) * (size_t)s * s);
        }
    }
    free(tmp);
    return rc;
}

/* The rest of a sample's pipeline after its base view a (c, s, s): the flip
 * (training), the variant, the resampling to t->resize, the normalisation;
 * into o (c, os, os), os = dp_transform_size(t, s).  b (c, vs, vs) and rs
 * (c, os, os; NULL when os is the variant's side vs) are scratch. */
static int finish_view(const dp_transform *t, float *a, int c, int s, uint64_t *rng, float *b, float *rs, float *o)
{
    const int vs = dp_variant_size(t->variant, s), os = dp_transform_size(t, s);
    if (t->train && t->flip && draw(rng, 2))
        for (int r = 0; r < c * s; r++)
            for (int l = 0, h = s - 1; l < h; l++, h--) {
                const float tv = a[(size_t)r * s + l];
                a[(size_t)r * s + l] = a[(size_t)r * s + h];
                a[(size_t)r * s + h] = tv;
            }
    int rc = variant_view(t, a, c, s, rng, b);
    const float *v = b;
    if (!rc && rs) { /* another input resolution */
        for (int ch = 0; !rc && ch < c; ch++)
            rc = resample(b + (size_t)ch * vs * vs, vs, vs, rs + (size_t)ch * os * os, os, os);
        v = rs;
    }
    if (rc) return rc;
    for (int ch = 0; ch < c; ch++) {
        const float m = t->mean[ch], inv = 1.0f / t->std[ch];
        for (size_t k = 0; k < (size_t)os * os; k++)
            o[(size_t)ch * os * os + k] = (v[(size_t)ch * os * os + k] - m) * inv;
    }
    return DP_OK;
}

/* The checks of a transform for base side s and c channels: DP_OK or DP_ERR_*. */
static int check_transform(const dp_transform *t, int c, int s)
{
    const int vs = dp_variant_size(t->variant, s), os = dp_transform_size(t, s);
    if (vs < 0) return vs;
    if (os < 0) return os;
    if (t->pad < 0 || t->pad > s) return DP_ERR_ARG;
    for (int ch = 0; ch < c; ch++)
        if (!(t->std[ch] > 0.0f)) return DP_ERR_ARG;
    return DP_OK;
}

int dp_dataset_batch(const dp_dataset *ds, const dp_transform *t, const int *idx, int n,
                     unsigned long long seed, long long pos0, float *x, int *labels, char *err,
                     size_t errlen)
{
    if (!ds || !t || !idx || !x) return DP_ERR_NULL;
    const int s = ds->size, c = ds->c;
    int rc = check_transform(t, c, s);
    if (rc) return rc;
    const int vs = dp_variant_size(t->variant, s), os = dp_transform_size(t, s); /* os: the side written */
    float *a = malloc(sizeof(float) * (size_t)c * s * s), *b = malloc(sizeof(float) * (size_t)c * vs * vs);
    float *rs = os != vs ? malloc(sizeof(float) * (size_t)c * os * os) : NULL;
    rc = a && b && (rs || os == vs) ? DP_OK : DP_ERR_NOMEM;
    for (int j = 0; !rc && j < n; j++) {
        const int i = idx[j];
        if (i < 0 || i >= ds->n) {
            rc = dp_io_fail(err, errlen, DP_ERR_ARG, "sample index %d out of range [0, %d)", i, ds->n);
            break;
        }
        uint64_t rng = mix64(seed ^ mix64((uint64_t)(pos0 + j)));
        if ((rc = base_view(ds, t, i, &rng, a, err, errlen))) break;
        if ((rc = finish_view(t, a, c, s, &rng, b, rs, x + (size_t)j * c * os * os))) break;
        if (labels) labels[j] = ds->labels[i];
    }
    free(a);
    free(b);
    free(rs);
    if (rc == DP_ERR_NOMEM) dp_io_fail(err, errlen, rc, "out of memory while preparing a batch");
    return rc;
}

int dp_image_prepare(const char *path, int kind, int channels, int base, const dp_transform *t, float *x,
                     int *native, char *err, size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    if (!path || !t || !x) return DP_ERR_NULL;
    if (kind < DP_DATA_IDX || kind > DP_DATA_FOLDER || (channels != 1 && channels != 3) || base < 2 ||
        base > 4096)
        return dp_io_fail(err, errlen, DP_ERR_ARG, "%s: cannot prepare it as a %s image of %d channels, side %d", path,
                    dp_data_kind_name(kind), channels, base);
    dp_transform tt = *t;
    tt.train = 0; /* the evaluation view: no random crop, flip or variant offset */
    int rc = check_transform(&tt, channels, base);
    if (rc) return dp_io_fail(err, errlen, rc, "%s: invalid transform (variant, resize or std)", path);
    const int c = channels, s = base, vs = dp_variant_size(tt.variant, s), os = dp_transform_size(&tt, s);
    float *a = malloc(sizeof(float) * (size_t)c * s * s), *b = malloc(sizeof(float) * (size_t)c * vs * vs);
    float *rs = os != vs ? malloc(sizeof(float) * (size_t)c * os * os) : NULL;
    uint64_t rng = 0;
    rc = a && b && (rs || os == vs) ? DP_OK : DP_ERR_NOMEM;
    if (!rc) rc = file_view(path, kind == DP_DATA_FOLDER, c, s, 0, &rng, a, native, err, errlen);
    if (!rc) rc = finish_view(&tt, a, c, s, &rng, b, rs, x);
    free(a);
    free(b);
    free(rs);
    if (rc == DP_ERR_NOMEM && !(err && errlen && err[0])) dp_io_fail(err, errlen, rc, "%s: out of memory", path);
    return rc;
}

int dp_dataset_stats(const dp_dataset *ds, float mean[3], float std[3], char *err, size_t errlen)
{
    if (!ds || !mean || !std) return DP_ERR_NULL;
    const int c = ds->c, s = ds->size;
    double sum[3] = {0}, sq[3] = {0}, cnt = 0;
    if (ds->kind != DP_DATA_FOLDER) {
        const size_t plane = (size_t)s * s;
        for (int i = 0; i < ds->n; i++)
            for (int ch = 0; ch < c; ch++) {
                const unsigned char *p = ds->pix + ((size_t)i * c + ch) * plane;
                long long a = 0, b = 0;
                for (size_t k = 0; k < plane; k++) a += p[k], b += p[k] * p[k];
                sum[ch] += a / 255.0, sq[ch] += b / (255.0 * 255.0);
            }
        cnt = (double)ds->n * plane;
    } else {
        const dp_transform t = {.train = 0, .variant = DP_VARIANT_NONE, .std = {1, 1, 1}};
        const int m = ds->n < 256 ? ds->n : 256;
        float *x = malloc(sizeof(float) * (size_t)c * s * s);
        if (!x) return DP_ERR_NOMEM;
        for (int k = 0; k < m; k++) {
            const int i = (int)((long long)k * ds->n / m);
            int rc = dp_dataset_batch(ds, &t, &i, 1, 0, 0, x, NULL, err, errlen);
            if (rc) {
                free(x);
                return rc;
            }
            for (int ch = 0; ch < c; ch++)
                for (size_t q = 0; q < (size_t)s * s; q++) {
                    const double v = x[(size_t)ch * s * s + q];
                    sum[ch] += v, sq[ch] += v * v;
                }
        }
        free(x);
        cnt = (double)m * s * s;
    }
    for (int ch = 0; ch < 3; ch++) {
        const int k = ch < c ? ch : 0;
        const double mu = sum[k] / cnt, var = sq[k] / cnt - mu * mu;
        mean[ch] = (float)mu;
        std[ch] = (float)(var > 1e-12 ? sqrt(var) : 1.0);
    }
    return DP_OK;
}
