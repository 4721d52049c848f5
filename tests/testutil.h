/* testutil.h — shared helpers of the C tests: checks that count failures,
 * tolerance comparison that prints the first mismatches, a seeded RNG, the
 * golden-file reader, and a naive double-precision DynOPool written straight
 * from the formulas of docs/operator.md ("The size rule" to "Aggregation"; no
 * tables, no separable trick) to test against. */
#ifndef DP_TESTUTIL_H
#define DP_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

extern int tu_failures;

/* Records a failure with file and line; the test's exit code counts them. */
#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            tu_failures++;                                                     \
            fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
        }                                                                      \
    } while (0)

/* Exit status for main(): prints a summary line. */
int tu_finish(const char *test_name);

/* Counts elements with |got - ref| > atol + rtol * |ref| (NaN counts), prints the
 * first 5 with their index, and returns the count. */
size_t tu_compare(const char *what, const float *got, const float *ref, size_t n,
                  double atol, double rtol);

/* Deterministic RNG (splitmix64 / Box-Muller). */
typedef struct { uint64_t s; } tu_rng;
uint64_t tu_next(tu_rng *r);
uint64_t tu_mix(uint64_t z);               /* splitmix64's output function: a hash of z */
double tu_uniform(tu_rng *r);              /* [0, 1) */
int tu_int(tu_rng *r, int lo, int hi);     /* [lo, hi] */
float tu_normal(tu_rng *r);
void tu_fill_normal(tu_rng *r, float *x, size_t n);

/* One case of tests/data/dynopool_golden.bin (see ref/dynopool_ref.py). */
typedef struct {
    char name[33];
    int n, c, h, w, agg, ho, wo;
    float alpha_h, alpha_w;
    float *x, *dy, *y, *dx;   /* x, dx: n*c*h*w; dy, y: n*c*ho*wo */
    float dalpha[2];
} tu_golden;

/* Reads every case; returns the count, or -1 after printing why (file, offset,
 * what was expected). *cases is malloc'ed; free with tu_golden_free. */
int tu_golden_load(const char *path, tu_golden **cases);
void tu_golden_free(tu_golden *cases, int count);

/* Naive reference of the operator (docs/operator.md), in double.  Fills y
 * (n*c*ho*wo), the selected query index per output in sel (0..3, may be NULL)
 * and, per output, the gap between the best and the second-best candidate in
 * gap (may be NULL). */
void tu_naive_forward(const float *x, int n, int c, int h, int w, float ah, float aw,
                      int agg, double *y, int *sel, double *gap);

/* dL/dalpha for L = sum(dy * y), from the chain of docs/operator.md,
 * "Aggregation", directly. */
void tu_naive_dalpha(const float *x, const float *dy, int n, int c, int h, int w, float ah,
                     float aw, int agg, double dalpha[2]);

#endif
