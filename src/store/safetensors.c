/*
 * safetensors.c — safetensors reader and writer (format in safetensors.h).
 *
 * st_load reads the file after its first 8 bytes into one allocation, placed so
 * that the data section starts 8-byte aligned; tensors stored at an offset
 * misaligned for their dtype are copied into a second allocation.  The parsed
 * cJSON tree is kept: tensor names and metadata strings point into it.
 */
#include "store/safetensors.h"

#include "dynopool/store.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ST_NDT 3
#define ST_MAX_DIM 9007199254740992.0   /* 2^53: largest integer a JSON double holds exactly */
static const char *const DT_NAME[ST_NDT] = {"F32", "I64", "I32"};
static const size_t DT_SIZE[ST_NDT] = {4, 8, 4};

struct st_file {
    char *buf;                /* the file after byte 8; data section 8-aligned */
    char *extra;              /* aligned copies of tensors at misaligned offsets */
    cJSON *json;              /* the header: owns names and metadata strings */
    const cJSON *meta;        /* "__metadata__", or NULL */
    int n;
    st_view *v;               /* file order */
    const st_view **by_name;  /* sorted by name, for st_find */
};

/* Where messages go: "<path>: <message>" into err[len]. */
typedef struct { const char *path; char *err; size_t len; } ectx;

#ifdef __GNUC__
__attribute__((format(printf, 3, 4)))
#endif
static int fail(const ectx *c, int code, const char *fmt, ...)
{
    if (c->err && c->len) {
        int k = snprintf(c->err, c->len, "%s: ", c->path ? c->path : "st");
        if (k >= 0 && (size_t)k < c->len) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(c->err + k, c->len - (size_t)k, fmt, ap);
            va_end(ap);
        }
    }
    return code;
}

static int host_is_le(void)
{
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

size_t st_elem_size(int d) { return d >= 0 && d < ST_NDT ? DT_SIZE[d] : 0; }

/* numel of v into *out: 0, -1 (ndim out of 0..8, or a dim < 0 or > 2^53), -2 (overflow). */
static int numel_of(const st_view *v, size_t *out)
{
    size_t n = 1;
    if (v->ndim < 0 || v->ndim > ST_MAX_DIMS) return -1;
    for (int i = 0; i < v->ndim; i++) {
        long long d = v->shape[i];
        if (d < 0 || (double)d > ST_MAX_DIM) return -1;
        if (d != 0 && n > SIZE_MAX / (size_t)d) return -2;
        n *= (size_t)d;
    }
    *out = n;
    return 0;
}

size_t st_numel(const st_view *v)
{
    size_t n;
    return v && numel_of(v, &n) == 0 ? n : 0;
}

static size_t nbytes(const st_view *v) { return st_numel(v) * st_elem_size((int)v->dtype); }

static int cmp_name(const void *a, const void *b)
{
    return strcmp((*(const st_view *const *)a)->name, (*(const st_view *const *)b)->name);
}

static int cmp_data(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)(*(const st_view *const *)a)->data;
    uintptr_t y = (uintptr_t)(*(const st_view *const *)b)->data;
    return (x > y) - (x < y);
}

/* Sorts p[n] by name; returns a name that occurs twice, or NULL. */
static const char *sort_find_dup(const st_view **p, int n)
{
    if (n > 1) qsort(p, (size_t)n, sizeof *p, cmp_name);
    for (int i = 1; i < n; i++)
        if (strcmp(p[i - 1]->name, p[i]->name) == 0) return p[i]->name;
    return NULL;
}

/* ---- reading ------------------------------------------------------------ */

/* What was found, for messages: the number itself, or the kind of value. */
static const char *jdesc(const cJSON *j, char buf[40])
{
    if (!j) return "missing";
    if (cJSON_IsNumber(j)) {
        snprintf(buf, 40, "%.17g", j->valuedouble);
        return buf;
    }
    if (cJSON_IsString(j)) return "a string";
    if (cJSON_IsArray(j)) return "an array";
    if (cJSON_IsObject(j)) return "an object";
    return cJSON_IsBool(j) ? "a boolean" : "null";
}

/* A JSON number that is an integer in [0, 2^53]. */
static int as_index(const cJSON *j, long long *out)
{
    double d = cJSON_IsNumber(j) ? j->valuedouble : -1;
    if (!(d >= 0 && d <= ST_MAX_DIM) || (double)(long long)d != d) return 0;
    *out = (long long)d;
    return 1;
}

/* One tensor entry e into v; its data lies in the data section data[dlen]. */
static int parse_entry(const ectx *c, const cJSON *e, char *data, size_t dlen, st_view *v)
{
#define BAD(fmt, ...) return fail(c, DP_ERR_FORMAT, "tensor '%s': " fmt, e->string, __VA_ARGS__)
    char b1[40], b2[40];
    int d = 0, i = 0;
    long long b, en;
    if (!cJSON_IsObject(e)) BAD("entry is %s, expected an object", jdesc(e, b1));
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *of = cJSON_GetObjectItemCaseSensitive(e, "data_offsets"), *x;
    if (!cJSON_IsString(dt)) BAD("'dtype' is %s, expected a string", jdesc(dt, b1));
    while (d < ST_NDT && strcmp(dt->valuestring, DT_NAME[d]) != 0) d++;
    if (d == ST_NDT) BAD("unsupported dtype '%s', expected F32, I64 or I32", dt->valuestring);
    if (!cJSON_IsArray(sh)) BAD("'shape' is %s, expected an array", jdesc(sh, b1));
    if ((v->ndim = cJSON_GetArraySize(sh)) > ST_MAX_DIMS)
        BAD("shape has %d dims, expected at most %d", v->ndim, ST_MAX_DIMS);
    cJSON_ArrayForEach(x, sh) {
        if (!as_index(x, &v->shape[i]))
            BAD("shape[%d] is %s, expected a non-negative integer", i, jdesc(x, b1));
        i++;
    }
    size_t numel, es = DT_SIZE[d];
    if (numel_of(v, &numel) != 0 || numel > SIZE_MAX / es)
        BAD("numel * %zu bytes overflows size_t", es);
    if (!cJSON_IsArray(of))
        BAD("'data_offsets' is %s, expected an array [begin, end]", jdesc(of, b1));
    if (cJSON_GetArraySize(of) != 2)
        BAD("'data_offsets' has %d entries, expected 2 [begin, end]", cJSON_GetArraySize(of));
    if (!as_index(of->child, &b) || !as_index(of->child->next, &en))
        BAD("data_offsets is [%s, %s], expected non-negative integers", jdesc(of->child, b1),
            jdesc(of->child->next, b2));
    if (en < b) BAD("data_offsets [%lld, %lld] has end < begin", b, en);
    if ((unsigned long long)en > dlen)
        BAD("data_offsets end %lld is beyond the data section (%zu bytes)", en, dlen);
    if ((unsigned long long)(en - b) != numel * es)
        BAD("data_offsets [%lld, %lld] hold %lld bytes, expected %zu (%zu elements of %zu bytes)",
            b, en, en - b, numel * es, numel, es);
#undef BAD
    v->name = e->string;
    v->dtype = (enum st_dtype)d;
    v->data = data + b;
    return DP_OK;
}

/* Parses the header hdr[hl] (NUL-terminated) of a file whose data section is data[dlen]. */
static int parse_header(const ectx *c, st_file *f, const char *hdr, size_t hl,
                        char *data, size_t dlen)
{
    const char *end = NULL;
    char b1[40];
    const cJSON *e, *m;
    int n = 0;
    if (!(f->json = cJSON_ParseWithLengthOpts(hdr, hl, &end, 0)))
        return fail(c, DP_ERR_FORMAT, "byte %zu: header is not valid JSON (header is bytes 8..%zu)",
                    8 + (size_t)(end ? end - hdr : 0), 8 + hl);
    for (; end < hdr + hl; end++)
        if (!*end || !strchr(" \t\r\n", *end))
            return fail(c, DP_ERR_FORMAT, "byte %zu: found 0x%02x after the JSON header, "
                        "expected only trailing spaces", 8 + (size_t)(end - hdr),
                        (unsigned char)*end);
    if (!cJSON_IsObject(f->json))
        return fail(c, DP_ERR_FORMAT, "byte 8: header is %s, expected a JSON object",
                    jdesc(f->json, b1));
    cJSON_ArrayForEach(e, f->json) n += strcmp(e->string, "__metadata__") != 0;
    f->v = calloc((size_t)n + 1, sizeof *f->v);
    f->by_name = calloc((size_t)n + 1, sizeof *f->by_name);
    const st_view **s = calloc((size_t)n + 1, sizeof *s);   /* sorted by offset */
    int rc = f->v && f->by_name && s ? DP_OK : fail(c, DP_ERR_NOMEM, "out of memory");
    cJSON_ArrayForEach(e, f->json) {
        if (rc) break;
        if (strcmp(e->string, "__metadata__") != 0) {
            rc = parse_entry(c, e, data, dlen, &f->v[f->n]);
            s[f->n] = f->by_name[f->n] = &f->v[f->n];
            f->n++;
        } else if (f->meta) {
            rc = fail(c, DP_ERR_FORMAT, "duplicate name '__metadata__'");
        } else if (!cJSON_IsObject(f->meta = e)) {
            rc = fail(c, DP_ERR_FORMAT, "'__metadata__' is %s, expected an object", jdesc(e, b1));
        } else {
            cJSON_ArrayForEach(m, e) {
                if (!rc && !cJSON_IsString(m))
                    rc = fail(c, DP_ERR_FORMAT, "__metadata__ value of '%s' is %s, expected a string",
                              m->string, jdesc(m, b1));
            }
        }
    }
    const char *dup = rc ? NULL : sort_find_dup(f->by_name, n);
    if (dup) rc = fail(c, DP_ERR_FORMAT, "duplicate tensor name '%s'", dup);
    /* Overlap: in offset order, each non-empty tensor must start after the previous end. */
    size_t prev_end = 0, extra = 0, off = 0;
    const st_view *prev = NULL;
    if (!rc && n > 1) qsort(s, (size_t)n, sizeof *s, cmp_data);
    for (int i = 0; !rc && i < n; i++) {
        size_t b = (size_t)((const char *)s[i]->data - data), nb = nbytes(s[i]);
        if (nb == 0) continue;
        if (prev && b < prev_end)
            rc = fail(c, DP_ERR_FORMAT, "tensors '%s' (data ends at %zu) and '%s' (starts at %zu) "
                      "overlap", prev->name, prev_end, s[i]->name, b);
        if ((uintptr_t)s[i]->data % DT_SIZE[s[i]->dtype]) extra += (nb + 7) / 8 * 8;
        prev = s[i];
        prev_end = b + nb;
    }
    free(s);
    /* Alignment: copy the tensors at misaligned offsets. */
    if (!rc && extra && !(f->extra = malloc(extra))) rc = fail(c, DP_ERR_NOMEM, "out of memory");
    for (int i = 0; !rc && extra && i < n; i++) {
        size_t nb = nbytes(&f->v[i]);
        if (nb == 0 || (uintptr_t)f->v[i].data % DT_SIZE[f->v[i].dtype] == 0) continue;
        f->v[i].data = memcpy(f->extra + off, f->v[i].data, nb);
        off += (nb + 7) / 8 * 8;
    }
    return rc;
}

int st_load(const char *path, st_file **out, char *err, size_t errlen)
{
    const ectx c = {path, err, errlen};
    if (!path || !out) return fail(&c, DP_ERR_NULL, "st_load: path and out must not be NULL");
    if (!host_is_le()) return fail(&c, DP_ERR_ARG, "safetensors needs a little-endian host");
    st_file *f = NULL;
    char *hdr = NULL;
    unsigned char lb[8];
    unsigned long long hl = 0, size = 0;
    long sz = -1;
    int rc = DP_OK;
    FILE *fp = fopen(path, "rb");
    if (!fp) return fail(&c, DP_ERR_IO, "cannot open: %s", strerror(errno));
    if (fseek(fp, 0, SEEK_END) == 0) sz = ftell(fp);
    if (sz < 0 || fseek(fp, 0, SEEK_SET) != 0) {
        rc = fail(&c, DP_ERR_IO, "cannot find the file size: %s", strerror(errno));
        goto done;
    }
    if ((size = (unsigned long long)sz) < 8) {
        rc = fail(&c, DP_ERR_FORMAT, "file is %llu bytes, expected at least 8 (the header length)",
                  size);
        goto done;
    }
    if (fread(lb, 1, 8, fp) != 8) {
        rc = fail(&c, DP_ERR_IO, "cannot read bytes 0..8");
        goto done;
    }
    for (int i = 7; i >= 0; i--) hl = hl << 8 | lb[i];
    if (hl > ST_MAX_HEADER || hl > size - 8) {
        int lim = hl > ST_MAX_HEADER;
        rc = fail(&c, DP_ERR_FORMAT, "byte 0: header length %llu is larger than %s (%llu bytes)",
                  hl, lim ? "the 100 MB limit" : "the rest of the file",
                  lim ? ST_MAX_HEADER : size - 8);
        goto done;
    }
    size_t rest = (size_t)(size - 8), pad = (8 - hl % 8) % 8;
    if ((f = calloc(1, sizeof *f)) != NULL) f->buf = malloc(rest + pad + 1);
    hdr = malloc(hl + 1);
    if (!f || !f->buf || !hdr) {
        rc = fail(&c, DP_ERR_NOMEM, "out of memory for %llu bytes", size);
        goto done;
    }
    if (fread(f->buf + pad, 1, rest, fp) != rest) {
        rc = fail(&c, DP_ERR_IO, "short read of %zu bytes after byte 8", rest);
        goto done;
    }
    memcpy(hdr, f->buf + pad, hl);
    hdr[hl] = '\0';
    rc = parse_header(&c, f, hdr, hl, f->buf + pad + hl, rest - hl);
done:
    fclose(fp);
    free(hdr);
    if (rc) st_free(f);
    else *out = f;
    return rc;
}

int st_count(const st_file *f) { return f ? f->n : 0; }

const st_view *st_get(const st_file *f, int i) { return f && i >= 0 && i < f->n ? &f->v[i] : NULL; }

const st_view *st_find(const st_file *f, const char *name)
{
    st_view key = {0};
    const st_view *kp = &key, *const *hit;
    if (!f || !name || f->n == 0) return NULL;
    key.name = name;
    hit = bsearch(&kp, f->by_name, (size_t)f->n, sizeof *f->by_name, cmp_name);
    return hit ? *hit : NULL;
}

const char *st_meta(const st_file *f, const char *key)
{
    const cJSON *v = f && f->meta && key ? cJSON_GetObjectItemCaseSensitive(f->meta, key) : NULL;
    return v ? v->valuestring : NULL;
}

void st_free(st_file *f)
{
    if (!f) return;
    cJSON_Delete(f->json);
    free(f->v);
    free(f->by_name);
    free(f->extra);
    free(f->buf);
    free(f);
}

/* ---- writing ------------------------------------------------------------ */

/* Checks t[i]; the status and message for the first problem, else DP_OK. */
static int check_view(const ectx *c, const st_view *v, int i, size_t off)
{
    size_t numel = 0, es = st_elem_size((int)v->dtype);
    int r = es ? numel_of(v, &numel) : 0;
    if (!v->name) return fail(c, DP_ERR_NULL, "tensor %d has a NULL name", i);
    if (strcmp(v->name, "__metadata__") == 0)
        return fail(c, DP_ERR_ARG, "'__metadata__' is reserved, not a tensor name");
    if (!es)
        return fail(c, DP_ERR_ARG, "tensor '%s': unknown dtype %d, expected ST_F32, ST_I64 or "
                    "ST_I32", v->name, (int)v->dtype);
    if (r == -1)
        return fail(c, DP_ERR_ARG, "tensor '%s': ndim %d or a dim out of range (ndim 0..8, dims "
                    "0..2^53)", v->name, v->ndim);
    if (r == -2 || numel > SIZE_MAX / es || numel * es > SIZE_MAX - off)
        return fail(c, DP_ERR_OVERFLOW, "tensor '%s': byte count overflows", v->name);
    if (numel && !v->data) return fail(c, DP_ERR_NULL, "tensor '%s' has NULL data", v->name);
    return DP_OK;
}

/* The header JSON (cJSON-allocated) for t[n] and the metadata, into *json. */
static int build_header(const ectx *c, const st_view *t, int n, const char *const *mk,
                        const char *const *mv, int nmeta, char **json)
{
    cJSON *root = cJSON_CreateObject(), *m = NULL, *o, *sh = NULL, *of = NULL;
    int ok = root != NULL, rc = DP_OK;
    size_t off = 0;
    if (ok && nmeta > 0) ok = (m = cJSON_AddObjectToObject(root, "__metadata__")) != NULL;
    for (int i = 0; ok && !rc && i < nmeta; i++) {
        if (!mk[i] || !mv[i])
            rc = fail(c, DP_ERR_NULL, "metadata pair %d has a NULL key or value", i);
        else ok = cJSON_AddStringToObject(m, mk[i], mv[i]) != NULL;
    }
    for (int i = 0; ok && !rc && i < n; i++) {
        if ((rc = check_view(c, &t[i], i, off)) != DP_OK) break;
        ok = (o = cJSON_AddObjectToObject(root, t[i].name)) &&
             cJSON_AddStringToObject(o, "dtype", DT_NAME[t[i].dtype]) &&
             (sh = cJSON_AddArrayToObject(o, "shape")) &&
             (of = cJSON_AddArrayToObject(o, "data_offsets"));
        for (int k = 0; ok && k < t[i].ndim; k++)
            ok = cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)t[i].shape[k]));
        ok = ok && cJSON_AddItemToArray(of, cJSON_CreateNumber((double)off));
        off += nbytes(&t[i]);
        ok = ok && cJSON_AddItemToArray(of, cJSON_CreateNumber((double)off));
    }
    *json = ok && !rc ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return rc ? rc : *json ? DP_OK : fail(c, DP_ERR_NOMEM, "out of memory for the header");
}

/* fsync the directory holding path (so the rename is durable). */
static int sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t len = slash ? (size_t)(slash - path) : 0;
    char *dir = malloc(len + 2);
    int fd = -1, r = -1;
    if (!dir) return -1;
    memcpy(dir, len ? path : slash ? "/" : ".", len ? len : 1);
    dir[len ? len : 1] = '\0';
    if ((fd = open(dir, O_RDONLY)) >= 0) {
        r = fsync(fd);
        close(fd);
    }
    free(dir);
    return r;
}

/* Creates a new file "<path>.tmp.XXXXXX" beside path (name in tmp, room for
 * strlen(path) + 32) for writing.  O_CREAT | O_EXCL | O_NOFOLLOW: a file or a
 * symbolic link already there (planted, or left by a crash) is never opened, so
 * the write cannot land anywhere else; another name is tried instead.  Returns
 * the descriptor or -1 with errno set. */
static int open_temp(const char *path, char *tmp)
{
    static unsigned counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t z = ((uint64_t)getpid() << 32) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ counter++;
    for (int tries = 0; tries < 100; tries++) {
        z += 0x9e3779b97f4a7c15ULL; /* splitmix64 */
        uint64_t r = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        r = (r ^ (r >> 27)) * 0x94d049bb133111ebULL;
        sprintf(tmp, "%s.tmp.%08llx", path, (unsigned long long)((r ^ (r >> 31)) & 0xffffffffULL));
        const int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
        if (fd >= 0 || errno != EEXIST) return fd;
    }
    return -1;
}

/* Writes the n parts buf[i] (len[i] bytes) to path atomically: a temporary
 * file beside it (its name in tmp, strlen(path) + 32 bytes), fsync, rename over
 * path, fsync of the folder.  0, or an errno value with *stage 1 (nothing
 * written to path; the temporary file removed) or 2 (renamed, but the folder's
 * sync failed). */
static int write_parts(const char *path, char *tmp, const void *const *buf, const size_t *len, int n, int *stage)
{
    const int fd = open_temp(path, tmp);
    FILE *fp = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (fd >= 0 && !fp) {
        const int e0 = errno;
        close(fd);
        errno = e0;
    }
    int ok = fp != NULL;
    for (int i = 0; ok && i < n; i++) ok = fwrite(buf[i], 1, len[i], fp) == len[i];
    ok = ok && fflush(fp) == 0 && fsync(fileno(fp)) == 0;
    int e = ok ? 0 : errno ? errno : EIO;
    if (fp && fclose(fp) != 0 && !e) e = errno ? errno : EIO;
    if (!e && rename(tmp, path) != 0) e = errno;
    if (e) {
        if (fd >= 0) remove(tmp); /* ours: never a name that open_temp found taken */
        *stage = 1;
        return e;
    }
    if (sync_dir(path) != 0) {
        *stage = 2;
        return errno ? errno : EIO;
    }
    return 0;
}

int dp_write_file_atomic(const char *path, const void *data, size_t n)
{
    if (!path || (n && !data)) {
        errno = EINVAL;
        return DP_ERR_NULL;
    }
    char *tmp = malloc(strlen(path) + 32);
    if (!tmp) {
        errno = ENOMEM;
        return DP_ERR_NOMEM;
    }
    const void *buf[1] = {n ? data : ""};
    int stage = 0;
    const int e = write_parts(path, tmp, buf, &n, 1, &stage);
    free(tmp);
    errno = e;
    return e ? DP_ERR_IO : DP_OK;
}

int st_save(const char *path, const st_view *t, int n,
            const char *const *meta_keys, const char *const *meta_vals, int nmeta,
            char *err, size_t errlen)
{
    const ectx c = {path, err, errlen};
    if (!path || (n > 0 && !t) || (nmeta > 0 && (!meta_keys || !meta_vals)))
        return fail(&c, DP_ERR_NULL, "st_save: path, tensors or metadata arrays are NULL");
    if (n < 0 || nmeta < 0) return fail(&c, DP_ERR_ARG, "negative tensor or metadata count");
    if (!host_is_le()) return fail(&c, DP_ERR_ARG, "safetensors needs a little-endian host");
    char *json = NULL, *tmp = NULL;
    const st_view **p = malloc(sizeof *p * ((size_t)n + 1));
    int rc = build_header(&c, t, n, meta_keys, meta_vals, nmeta, &json);
    const char *dup = NULL;
    for (int i = 0; !rc && p && i < n; i++) p[i] = &t[i];
    if (!rc && p && (dup = sort_find_dup(p, n)) != NULL)
        rc = fail(&c, DP_ERR_ARG, "duplicate tensor name '%s'", dup);
    if (!rc && (!p || !(tmp = malloc(strlen(path) + 32))))
        rc = fail(&c, DP_ERR_NOMEM, "out of memory");
    free(p);
    if (rc) {
        cJSON_free(json);
        return rc;
    }
    size_t hl = strlen(json), pad = (8 - hl % 8) % 8;
    unsigned char lb[8];
    for (int i = 0; i < 8; i++) lb[i] = (unsigned char)((unsigned long long)(hl + pad) >> (8 * i));
    const void **buf = malloc(sizeof *buf * ((size_t)n + 3));
    size_t *len = malloc(sizeof *len * ((size_t)n + 3));
    if (!buf || !len) {
        rc = fail(&c, DP_ERR_NOMEM, "out of memory");
    } else {
        buf[0] = lb, len[0] = 8, buf[1] = json, len[1] = hl, buf[2] = "        ", len[2] = pad;
        for (int i = 0; i < n; i++) buf[3 + i] = t[i].data ? t[i].data : "", len[3 + i] = nbytes(&t[i]);
        int stage = 0;
        const int e = write_parts(path, tmp, buf, len, n + 3, &stage);
        if (e && stage == 1) rc = fail(&c, DP_ERR_IO, "cannot write %s: %s", tmp, strerror(e));
        else if (e) rc = fail(&c, DP_ERR_IO, "written, but syncing its directory failed: %s", strerror(e));
    }
    free(buf);
    free(len);
    cJSON_free(json);
    free(tmp);
    return rc;
}
