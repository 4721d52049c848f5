/* test_safetensors.c — st_save/st_load round trips, the exact bytes of a small
 * file, atomic replacement, and one hand-written corrupt file per validation
 * rule (status code and message checked). */
#include "store/safetensors.h"

#include "dynopool.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHECK(cond)                                                               \
    do {                                                                          \
        if (!(cond)) {                                                            \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
            return 1;                                                             \
        }                                                                         \
    } while (0)

static char g_dir[64];

static const char *tpath(const char *name)
{
    static char buf[4][400];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
    return buf[k];
}

/* Number of directory entries whose name contains ".tmp.". */
static int count_tmp(void)
{
    DIR *d = opendir(g_dir);
    struct dirent *e;
    int n = 0;
    if (!d) return -1;
    while ((e = readdir(d)) != NULL) n += strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

/* Writes an 8-byte length (hlen, or strlen(hdr) when hlen < 0), hdr, then the dlen
 * data bytes 0, 1, 2, ... */
static int write_raw(const char *path, long long hlen, const char *hdr, size_t dlen)
{
    unsigned long long n = hlen < 0 ? strlen(hdr) : (unsigned long long)hlen;
    unsigned char lb[8];
    for (int i = 0; i < 8; i++) lb[i] = (unsigned char)(n >> (8 * i));
    FILE *fp = fopen(path, "wb");
    if (!fp) return -1;
    int ok = fwrite(lb, 1, 8, fp) == 8 && fwrite(hdr, 1, strlen(hdr), fp) == strlen(hdr);
    for (size_t i = 0; ok && i < dlen; i++) ok = fputc((int)(i & 255), fp) != EOF;
    return fclose(fp) == 0 && ok ? 0 : -1;
}

/* Loads path and expects code, with an err naming the file and containing want. */
static int expect_fail(const char *path, int code, const char *want, int line)
{
    char err[512] = "";
    st_file *f = (st_file *)&g_dir;   /* sentinel: must stay unwritten */
    int rc = st_load(path, &f, err, sizeof err);
    if (rc != code || !strstr(err, want) || !strstr(err, path) || f != (st_file *)&g_dir) {
        fprintf(stderr, "line %d: got %d (want %d), err \"%s\" (want \"%s\")\n", line, rc, code,
                err, want);
        return 1;
    }
    return 0;
}

static int bad(const char *name, long long hlen, const char *hdr, size_t dlen, const char *want,
               int line)
{
    const char *p = tpath(name);
    if (write_raw(p, hlen, hdr, dlen) != 0) return 1;
    return expect_fail(p, DP_ERR_FORMAT, want, line);
}
#define BAD(hdr, dlen, want) CHECK(bad("bad.st", -1, hdr, dlen, want, __LINE__) == 0)
#define A(entry) "{\"a\":" entry "}"
#define T(dt, shape, offs) "{\"dtype\":\"" dt "\",\"shape\":" shape ",\"data_offsets\":" offs "}"

static int test_roundtrip(void)
{
    float s = 3.5f, vec[5] = {1, -2, 0.25f, 1e30f, -0.0f}, t4[12], empty_dummy = 0;
    long long i64 = -1234567890123LL;
    int32_t i32[3] = {7, -8, 2147483647};
    for (int i = 0; i < 12; i++) t4[i] = (float)i * 0.5f - 3;
    /* The I64 scalar sits at offset 4: misaligned in the file, so st_load copies it. */
    st_view t[6] = {
        {"scalar", ST_F32, 0, {0}, &s},
        {"step", ST_I64, 0, {0}, &i64},
        {"vec", ST_F32, 1, {5}, vec},
        {"conv.w", ST_F32, 4, {2, 3, 1, 2}, t4},
        {"idx", ST_I32, 1, {3}, i32},
        {"empty", ST_F32, 2, {0, 4}, &empty_dummy},
    };
    const char *mk[] = {"quote", "unicode", "empty"};
    const char *mv[] = {"say \"hi\" \\ back\\slash\n",
                        "h\xc3\xa9llo \xe2\x80\x94 \xe6\x97\xa5\xe6\x9c\xac", ""};
    char err[256] = "";
    const char *p = tpath("rt.safetensors");
    CHECK(st_save(p, t, 6, mk, mv, 3, err, sizeof err) == DP_OK);
    CHECK(count_tmp() == 0);
    st_file *f = NULL;
    CHECK(st_load(p, &f, err, sizeof err) == DP_OK);
    CHECK(st_count(f) == 6);
    const size_t numel[6] = {1, 1, 5, 12, 3, 0};
    for (int i = 0; i < 6; i++) {
        const st_view *v = st_get(f, i);
        CHECK(v != NULL && strcmp(v->name, t[i].name) == 0);
        CHECK(v->dtype == t[i].dtype && v->ndim == t[i].ndim);
        for (int k = 0; k < v->ndim; k++) CHECK(v->shape[k] == t[i].shape[k]);
        CHECK(st_numel(v) == numel[i]);
        size_t es = st_elem_size((int)v->dtype);
        CHECK((uintptr_t)v->data % es == 0);
        CHECK(memcmp(v->data, t[i].data, numel[i] * es) == 0);
        CHECK(st_find(f, t[i].name) == v);
    }
    CHECK(*(const long long *)st_find(f, "step")->data == -1234567890123LL);
    CHECK(st_get(f, 6) == NULL && st_get(f, -1) == NULL);
    CHECK(st_find(f, "nope") == NULL && st_find(f, "") == NULL);
    for (int i = 0; i < 3; i++) CHECK(st_meta(f, mk[i]) && strcmp(st_meta(f, mk[i]), mv[i]) == 0);
    CHECK(st_meta(f, "nope") == NULL && st_meta(f, "scalar") == NULL);
    st_free(f);

    /* No tensors, no metadata. */
    CHECK(st_save(p, NULL, 0, NULL, NULL, 0, err, sizeof err) == DP_OK);
    CHECK(st_load(p, &f, err, sizeof err) == DP_OK);
    CHECK(st_count(f) == 0 && st_find(f, "scalar") == NULL && st_meta(f, "quote") == NULL);
    st_free(f);
    return 0;
}

/* The whole file of one F32 [2] tensor, byte for byte. */
static int test_exact_bytes(void)
{
    const float x[2] = {1.0f, -2.0f};
    st_view v = {"x", ST_F32, 1, {2}, x};
    char err[256];
    const char *p = tpath("exact.safetensors");
    CHECK(st_save(p, &v, 1, NULL, NULL, 0, err, sizeof err) == DP_OK);
    static const char hdr[] = "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}  ";
    unsigned char want[8 + 56 + 8] = {56, 0, 0, 0, 0, 0, 0, 0};
    CHECK(sizeof hdr - 1 == 56);
    memcpy(want + 8, hdr, 56);
    memcpy(want + 64, x, 8);
    unsigned char got[100];
    FILE *fp = fopen(p, "rb");
    CHECK(fp != NULL);
    size_t n = fread(got, 1, sizeof got, fp);
    fclose(fp);
    CHECK(n == sizeof want);
    CHECK(memcmp(got, want, sizeof want) == 0);
    return 0;
}

static int test_replace(void)
{
    float a[3] = {1, 2, 3}, b[2] = {9, 8};
    st_view va = {"a", ST_F32, 1, {3}, a};
    st_view vb[2] = {{"b", ST_F32, 1, {2}, b}, {"b", ST_F32, 1, {2}, b}};
    char err[256] = "";
    const char *p = tpath("rep.safetensors");
    st_file *f;
    CHECK(st_save(p, &va, 1, NULL, NULL, 0, err, sizeof err) == DP_OK);
    CHECK(st_save(p, vb, 1, NULL, NULL, 0, err, sizeof err) == DP_OK);
    CHECK(count_tmp() == 0);
    CHECK(st_load(p, &f, err, sizeof err) == DP_OK);
    CHECK(st_count(f) == 1 && st_find(f, "a") == NULL);
    CHECK(memcmp(st_find(f, "b")->data, b, sizeof b) == 0);
    st_free(f);

    /* Failed saves leave the file as it was and no temp file behind. */
    st_view bad_dt = {"c", (enum st_dtype)7, 1, {2}, b}, neg = {"c", ST_F32, 1, {-2}, b};
    st_view nine = {"c", ST_F32, 9, {1}, b};
    st_view huge = {"c", ST_F32, 3, {1LL << 40, 1LL << 40, 1LL << 40}, b};
    const char *mk[] = {"k"}, *mv[] = {NULL};
    CHECK(st_save(p, &bad_dt, 1, NULL, NULL, 0, err, sizeof err) == DP_ERR_ARG);
    CHECK(strstr(err, "unknown dtype 7") && strstr(err, p));
    CHECK(st_save(p, &neg, 1, NULL, NULL, 0, err, sizeof err) == DP_ERR_ARG);
    CHECK(st_save(p, &nine, 1, NULL, NULL, 0, err, sizeof err) == DP_ERR_ARG);
    CHECK(st_save(p, &huge, 1, NULL, NULL, 0, err, sizeof err) == DP_ERR_OVERFLOW);
    CHECK(st_save(p, vb, 2, NULL, NULL, 0, err, sizeof err) == DP_ERR_ARG);
    CHECK(strstr(err, "duplicate tensor name 'b'"));
    CHECK(st_save(p, vb, 1, mk, mv, 1, err, sizeof err) == DP_ERR_NULL);
    CHECK(st_save(NULL, vb, 1, NULL, NULL, 0, err, sizeof err) == DP_ERR_NULL);
    CHECK(st_save(p, vb, -1, NULL, NULL, 0, err, sizeof err) == DP_ERR_ARG);
    CHECK(st_save(tpath("no/such/dir.st"), vb, 1, NULL, NULL, 0, err, sizeof err) == DP_ERR_IO);
    CHECK(strstr(err, "cannot write") && strstr(err, "no/such/dir.st.tmp."));
    /* The temp file is written but the rename fails (the target is a directory). */
    CHECK(mkdir(tpath("adir"), 0700) == 0);
    CHECK(st_save(tpath("adir"), vb, 1, NULL, NULL, 0, err, sizeof err) == DP_ERR_IO);
    CHECK(strstr(err, "cannot write") && strstr(err, "adir.tmp."));
    CHECK(count_tmp() == 0);
    CHECK(st_load(p, &f, err, sizeof err) == DP_OK);
    CHECK(st_count(f) == 1 && memcmp(st_find(f, "b")->data, b, sizeof b) == 0);
    st_free(f);

    /* A link planted where a temp file could go (here the name this writer once
     * used) is neither followed nor moved into place: the file it points to keeps
     * its bytes and p becomes a regular file. */
    const char *victim = tpath("victim"), *q = tpath("link.st");
    char planted[500];
    snprintf(planted, sizeof planted, "%s.tmp.%ld", q, (long)getpid());
    FILE *vf = fopen(victim, "w");
    CHECK(vf && fputs("precious", vf) >= 0 && fclose(vf) == 0);
    CHECK(symlink(victim, planted) == 0);
    CHECK(st_save(q, vb, 1, NULL, NULL, 0, err, sizeof err) == DP_OK);
    char got[32] = "";
    vf = fopen(victim, "r");
    CHECK(vf && fgets(got, sizeof got, vf) && fclose(vf) == 0);
    CHECK(strcmp(got, "precious") == 0);
    struct stat ls;
    CHECK(lstat(q, &ls) == 0 && S_ISREG(ls.st_mode));
    CHECK(lstat(planted, &ls) == 0 && S_ISLNK(ls.st_mode) && unlink(planted) == 0);
    CHECK(count_tmp() == 0);
    return 0;
}

static int test_malformed(void)
{
    char err[256];
    st_file *f = NULL;
    const char *p = tpath("short.st");
    FILE *fp = fopen(p, "wb");
    CHECK(fp && fwrite("\x02\0\0\0\0", 1, 5, fp) == 5 && fclose(fp) == 0);
    CHECK(expect_fail(p, DP_ERR_FORMAT, "file is 5 bytes, expected at least 8", __LINE__) == 0);
    CHECK(expect_fail(tpath("missing.st"), DP_ERR_IO, "cannot open", __LINE__) == 0);
    CHECK(st_load(NULL, &f, err, sizeof err) == DP_ERR_NULL);
    CHECK(st_load(p, NULL, err, sizeof err) == DP_ERR_NULL);
    CHECK(bad("big.st", 200000000, "{}", 0,
              "header length 200000000 is larger than the 100 MB limit", __LINE__) == 0);
    p = tpath("huge.st");   /* sparse: 8 + 100000001 bytes, the header all zeros */
    CHECK(write_raw(p, 100000001, "", 0) == 0 && truncate(p, 8 + 100000001) == 0);
    CHECK(expect_fail(p, DP_ERR_FORMAT, "header length 100000001 is larger than the 100 MB limit",
                      __LINE__) == 0);
    CHECK(remove(p) == 0);
    CHECK(bad("long.st", 1000, "{}", 16,
              "header length 1000 is larger than the rest of the file (18 bytes)", __LINE__) == 0);

    BAD("{\"a\":", 0, "byte 12: header is not valid JSON (header is bytes 8..13)");
    BAD("{\"a\": nope}", 0, "byte 14: header is not valid JSON");
    BAD("[1, 2]", 0, "byte 8: header is an array, expected a JSON object");
    BAD("{}  x", 0, "byte 12: found 0x78 after the JSON header, expected only trailing spaces");
    BAD(A("3"), 0, "tensor 'a': entry is 3, expected an object");
    BAD(A("{\"shape\":[2],\"data_offsets\":[0,8]}"), 8,
        "tensor 'a': 'dtype' is missing, expected a string");
    BAD(A("{\"dtype\":\"F32\",\"data_offsets\":[0,8]}"), 8,
        "tensor 'a': 'shape' is missing, expected an array");
    BAD(A("{\"dtype\":\"F32\",\"shape\":[2]}"), 8,
        "tensor 'a': 'data_offsets' is missing, expected an array [begin, end]");
    BAD(A("{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]}"), 8,
        "tensor 'a': 'dtype' is 4, expected a string");
    BAD(A(T("F32", "\"2\"", "[0,8]")), 8, "'shape' is a string, expected an array");
    BAD(A(T("F32", "[2]", "{}")), 8, "'data_offsets' is an object, expected an array [begin, end]");
    BAD(A(T("F32", "[2]", "[0]")), 8, "'data_offsets' has 1 entries, expected 2");
    BAD(A(T("F32", "[2]", "[\"0\",8]")), 8,
        "data_offsets is [a string, 8], expected non-negative integers");
    BAD(A(T("F16", "[2]", "[0,4]")), 8,
        "tensor 'a': unsupported dtype 'F16', expected F32, I64 or I32");
    BAD(A(T("F32", "[-1]", "[0,0]")), 8,
        "tensor 'a': shape[0] is -1, expected a non-negative integer");
    BAD(A(T("F32", "[2,2.5]", "[0,8]")), 8, "shape[1] is 2.5, expected a non-negative integer");
    BAD(A(T("F32", "[2,null]", "[0,8]")), 8, "shape[1] is null, expected a non-negative integer");
    BAD(A(T("F32", "[1,1,1,1,1,1,1,1,1]", "[0,4]")), 8, "shape has 9 dims, expected at most 8");
    BAD(A(T("I64", "[4294967296,4294967296,4294967296]", "[0,8]")), 8,
        "tensor 'a': numel * 8 bytes overflows");
    BAD(A(T("I64", "[2147483648,2147483648,2]", "[0,8]")), 8,
        "tensor 'a': numel * 8 bytes overflows");
    BAD(A(T("F32", "[2]", "[8,0]")), 8, "tensor 'a': data_offsets [8, 0] has end < begin");
    BAD(A(T("F32", "[6]", "[0,24]")), 16,
        "tensor 'a': data_offsets end 24 is beyond the data section (16 bytes)");
    BAD(A(T("F32", "[3]", "[0,8]")), 16,
        "tensor 'a': data_offsets [0, 8] hold 8 bytes, expected 12 (3 elements of 4 bytes)");
    BAD(A(T("I64", "[1]", "[0,16]")), 16,
        "tensor 'a': data_offsets [0, 16] hold 16 bytes, expected 8 (1 elements of 8 bytes)");
    BAD(A(T("F32", "[2]", "[0,8]") ",\"b\":" T("I32", "[2]", "[4,12]")), 16,
        "tensors 'a' (data ends at 8) and 'b' (starts at 4) overlap");
    BAD(A(T("F32", "[2]", "[0,8]") ",\"a\":" T("F32", "[2]", "[8,16]")), 16,
        "duplicate tensor name 'a'");
    BAD("{\"__metadata__\":{},\"__metadata__\":{}}", 0, "duplicate name '__metadata__'");
    BAD("{\"__metadata__\":{\"k\":\"v\",\"n\":1}}", 0,
        "__metadata__ value of 'n' is 1, expected a string");
    BAD("{\"__metadata__\":\"x\"}", 0, "'__metadata__' is a string, expected an object");

    /* Accepted: a header padded with spaces; an empty tensor inside another's bytes. */
    p = tpath("pad.st");
    CHECK(write_raw(p, -1, A(T("I32", "[2]", "[0,8]") ",\"e\":" T("F32", "[0]", "[4,4]")
                             ",\"__metadata__\":{\"k\":\"v\"}") "     ", 8) == 0);
    CHECK(st_load(p, &f, err, sizeof err) == DP_OK);
    CHECK(st_count(f) == 2 && st_get(f, 1) == st_find(f, "e") && st_numel(st_find(f, "e")) == 0);
    const int32_t *a = st_find(f, "a")->data;
    CHECK(a[0] == 0x03020100 && a[1] == 0x07060504);
    CHECK(strcmp(st_meta(f, "k"), "v") == 0 && st_meta(f, "v") == NULL);
    st_free(f);
    return 0;
}

int main(void)
{
    strcpy(g_dir, "/tmp/dp_st_XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    int fails = test_roundtrip() + test_exact_bytes() + test_replace() + test_malformed();
    DIR *d = opendir(g_dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) remove(tpath(e->d_name));
    if (d) closedir(d);
    rmdir(g_dir);
    printf("test_safetensors: %s (%d failing groups)\n", fails ? "FAILED" : "ok", fails);
    return fails != 0;
}
