/*
 * safetensors.h — read and write the safetensors format (internal to the library).
 *
 * File layout: an 8-byte little-endian u64 N, then N bytes of UTF-8 JSON, then the
 * data section.  The JSON maps each tensor name to
 *     {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}
 * (offsets relative to the first byte after the header) and may hold one
 * "__metadata__" object of string -> string.  The header may end in spaces.
 *
 * Example:
 *
 *     float w[6] = {...};
 *     st_view v = { "fc.weight", ST_F32, 2, {2, 3}, w };
 *     const char *k[] = {"epoch"}, *val[] = {"12"};
 *     char err[256];
 *     int rc = st_save("ckpt.safetensors", &v, 1, k, val, 1, err, sizeof err);
 *     st_file *f;
 *     rc = st_load("ckpt.safetensors", &f, err, sizeof err);
 *     const st_view *w2 = st_find(f, "fc.weight");   // data valid until st_free
 *     st_free(f);
 *
 * Every int-returning call returns DP_OK or a negative DP_ERR_* code and, on an
 * error, writes a one-line message (file, byte offset or tensor name, expected vs
 * found) into err[errlen] when err is not NULL.  A little-endian host is assumed;
 * on any other st_save and st_load return DP_ERR_ARG.
 */
#ifndef DP_SAFETENSORS_H
#define DP_SAFETENSORS_H

#include <stddef.h>

/* Supported element types; a file with any other dtype is rejected. */
enum st_dtype { ST_F32 = 0, ST_I64 = 1, ST_I32 = 2 };

#define ST_MAX_DIMS 8
#define ST_MAX_HEADER (100u * 1000u * 1000u)   /* bytes of JSON st_load accepts */

/* One tensor.  For st_save the caller owns name and data; views returned by
 * st_get/st_find point into the st_file and live until st_free. */
typedef struct st_view {
    const char *name;
    enum st_dtype dtype;
    int ndim;                     /* 0..8; 0 is a scalar (numel 1) */
    long long shape[ST_MAX_DIMS];
    const void *data;             /* little-endian elements, numel * elem size bytes,
                                     aligned for the dtype in loaded files */
} st_view;

/* Product of the shape (1 for a scalar); 0 if a dim is negative or it overflows. */
size_t st_numel(const st_view *v);

/* Bytes of one element of dtype d (4 or 8), or 0 for an unknown dtype. */
size_t st_elem_size(int d);

/* Writes n tensors in the given order, plus nmeta metadata pairs (n, nmeta may be
 * 0), atomically: "<path>.tmp.<pid>" is written, flushed and fsync'ed, renamed
 * over path, then the directory is fsync'ed.  On failure the temp file is removed
 * and an existing path is left untouched.  Tensors are stored back to back and
 * the header is padded with spaces so the data section starts 8-byte aligned.
 * Errors: DP_ERR_NULL, DP_ERR_ARG (bad dtype/ndim/dim, duplicate or reserved
 * name), DP_ERR_OVERFLOW, DP_ERR_NOMEM, DP_ERR_IO. */
int st_save(const char *path, const st_view *t, int n,
            const char *const *meta_keys, const char *const *meta_vals, int nmeta,
            char *err, size_t errlen);

/* A loaded file: the whole file in memory plus its parsed header. */
typedef struct st_file st_file;

/* Reads and validates path; on success *out owns everything (free with
 * st_free), on an error *out is not written.  Errors: DP_ERR_NULL, DP_ERR_IO
 * (open/read), DP_ERR_NOMEM, DP_ERR_FORMAT (any malformed content). */
int st_load(const char *path, st_file **out, char *err, size_t errlen);

int st_count(const st_file *f);                              /* tensors in the file */
const st_view *st_get(const st_file *f, int i);              /* file order; NULL if out of range */
const st_view *st_find(const st_file *f, const char *name);  /* NULL if absent */
const char *st_meta(const st_file *f, const char *key);      /* NULL if absent */
void st_free(st_file *f);                                    /* NULL is fine */

#endif /* DP_SAFETENSORS_H */
