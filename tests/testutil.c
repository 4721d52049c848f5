/* testutil.c — see testutil.h. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int tu_failures = 0;

int tu_finish(const char *test_name)
{
    if (tu_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", test_name, tu_failures);
        return 1;
    }
    printf("%s: all checks passed\n", test_name);
    return 0;
}

size_t tu_compare(const char *what, const float *got, const float *ref, size_t n,
                  double atol, double rtol)
{
    size_t bad = 0;
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)ref[i]);
        double tol = atol + rtol * fabs((double)ref[i]);
        if (!(d <= tol)) {
            if (bad < 5)
                fprintf(stderr, "  %s[%zu]: got %.9g, expected %.9g (|diff| %.3g > tol %.3g)\n",
                        what, i, got[i], ref[i], d, tol);
            bad++;
        }
        if (d > worst) worst = d;
    }
    if (bad) fprintf(stderr, "  %s: %zu of %zu elements out of tolerance (max |diff| %.3g)\n",
                     what, bad, n, worst);
    return bad;
}

uint64_t tu_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t tu_next(tu_rng *r) { return tu_mix(r->s += 0x9E3779B97F4A7C15ull); }

double tu_uniform(tu_rng *r) { return (double)(tu_next(r) >> 11) * 0x1.0p-53; }

int tu_int(tu_rng *r, int lo, int hi) { return lo + (int)(tu_uniform(r) * (hi - lo + 1)); }

float tu_normal(tu_rng *r)
{
    double u1 = tu_uniform(r), u2 = tu_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

void tu_fill_normal(tu_rng *r, float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] = tu_normal(r);
}

/* ---- golden file ---------------------------------------------------------- */

static int read_exact(FILE *f, void *dst, size_t bytes, const char *path, const char *what)
{
    long off = ftell(f);
    if (fread(dst, 1, bytes, f) != bytes) {
        fprintf(stderr, "%s: truncated at byte %ld: expected %zu bytes of %s\n", path, off,
                bytes, what);
        return -1;
    }
    return 0;
}

static float *read_floats(FILE *f, size_t count, const char *path, const char *what)
{
    float *p = malloc(sizeof(float) * (count ? count : 1));
    if (!p) return NULL;
    if (read_exact(f, p, sizeof(float) * count, path, what)) {
        free(p);
        return NULL;
    }
    return p; /* the tests run on little-endian hosts, as the file is */
}

void tu_golden_free(tu_golden *cases, int count)
{
    if (!cases) return;
    for (int i = 0; i < count; i++) {
        free(cases[i].x);
        free(cases[i].dy);
        free(cases[i].y);
        free(cases[i].dx);
    }
    free(cases);
}

int tu_golden_load(const char *path, tu_golden **out)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    char magic[8];
    uint32_t hdr[2];
    if (read_exact(f, magic, 8, path, "the magic") || read_exact(f, hdr, 8, path, "the header")) {
        fclose(f);
        return -1;
    }
    if (memcmp(magic, "DPGOLDEN", 8) != 0 || hdr[0] != 1 || hdr[1] == 0 || hdr[1] > 10000) {
        fprintf(stderr, "%s: byte 0: expected magic DPGOLDEN, version 1 and a case count\n", path);
        fclose(f);
        return -1;
    }
    int count = (int)hdr[1];
    tu_golden *cs = calloc((size_t)count, sizeof(tu_golden));
    if (!cs) {
        fclose(f);
        return -1;
    }
    for (int k = 0; k < count; k++) {
        tu_golden *g = &cs[k];
        int32_t dims[5], outs[2];
        float alphas[2];
        if (read_exact(f, g->name, 32, path, "a case name") ||
            read_exact(f, dims, sizeof dims, path, "n, c, h, w, agg") ||
            read_exact(f, alphas, sizeof alphas, path, "alpha_h, alpha_w") ||
            read_exact(f, outs, sizeof outs, path, "ho, wo"))
            goto fail;
        g->name[32] = 0;
        g->n = dims[0], g->c = dims[1], g->h = dims[2], g->w = dims[3], g->agg = dims[4];
        g->alpha_h = alphas[0], g->alpha_w = alphas[1];
        g->ho = outs[0], g->wo = outs[1];
        if (g->n <= 0 || g->c <= 0 || g->h <= 0 || g->w <= 0 || g->ho <= 0 || g->wo <= 0 ||
            (long)g->n * g->c * g->h * g->w > (1L << 26) ||
            (long)g->n * g->c * g->ho * g->wo > (1L << 26)) {
            fprintf(stderr, "%s: case %d (%s): implausible sizes\n", path, k, g->name);
            goto fail;
        }
        size_t ni = (size_t)g->n * g->c * g->h * g->w, no = (size_t)g->n * g->c * g->ho * g->wo;
        if (!(g->x = read_floats(f, ni, path, "x")) || !(g->dy = read_floats(f, no, path, "dy")) ||
            !(g->y = read_floats(f, no, path, "y")) || !(g->dx = read_floats(f, ni, path, "dx")) ||
            read_exact(f, g->dalpha, sizeof g->dalpha, path, "dalpha"))
            goto fail;
    }
    if (fgetc(f) != EOF) {
        fprintf(stderr, "%s: byte %ld: expected the end of the file\n", path, ftell(f) - 1);
        goto fail;
    }
    fclose(f);
    *out = cs;
    return count;
fail:
    tu_golden_free(cs, count);
    fclose(f);
    return -1;
}

/* ---- naive reference -------------------------------------------------------- */

static int naive_size(int in, float alpha)
{
    double s = (double)in / (double)alpha;
    return (int)floor((s < 1.5 ? 1.5 : s) + 0.5);
}

/* Query coordinate (docs/operator.md, "Query points"), in exact rational form. */
static double coord(int i, int a, int in, int out)
{
    return ((4.0 * i + 2 * a + 1) * in - 2.0 * out) / (4.0 * out);
}

typedef struct {
    int u0, u1;   /* u1 may equal `in` (weight 0, never read) */
    double t;
} axis_pos;

static axis_pos clamp_pos(double u, int in)
{
    double uc = u < 0 ? 0 : (u > in - 1 ? in - 1 : u);
    axis_pos p;
    p.u0 = (int)floor(uc);
    p.u1 = p.u0 + 1;
    p.t = uc - p.u0;
    return p;
}

static double px(const float *x, int w, int h, int r, int c)
{
    if (r >= h || c >= w) return 0.0; /* weight is 0 there */
    return x[(size_t)r * w + c];
}

/* B(x, u, v) and its partial derivatives (docs/operator.md, "Bilinear sample",
 * four-corner form). */
static double sample(const float *x, int h, int w, double u, double v, double *dbdu, double *dbdv)
{
    axis_pos pu = clamp_pos(u, h), pv = clamp_pos(v, w);
    double x00 = px(x, w, h, pu.u0, pv.u0), x01 = px(x, w, h, pu.u0, pv.u1);
    double x10 = px(x, w, h, pu.u1, pv.u0), x11 = px(x, w, h, pu.u1, pv.u1);
    double tu = pu.t, tv = pv.t;
    if (dbdu)
        *dbdu = (u <= 0 || u >= h - 1) ? 0.0 : (1 - tv) * (x10 - x00) + tv * (x11 - x01);
    if (dbdv)
        *dbdv = (v <= 0 || v >= w - 1) ? 0.0 : (1 - tu) * (x01 - x00) + tu * (x11 - x10);
    return (1 - tu) * (1 - tv) * x00 + (1 - tu) * tv * x01 + tu * (1 - tv) * x10 + tu * tv * x11;
}

void tu_naive_forward(const float *x, int n, int c, int h, int w, float ah, float aw, int agg,
                      double *y, int *sel, double *gap)
{
    int ho = naive_size(h, ah), wo = naive_size(w, aw);
    for (int p = 0; p < n * c; p++) {
        const float *xp = x + (size_t)p * h * w;
        for (int i = 0; i < ho; i++)
            for (int j = 0; j < wo; j++) {
                double q[4];
                for (int k = 0; k < 4; k++)
                    q[k] = sample(xp, h, w, coord(i, k >> 1, h, ho), coord(j, k & 1, w, wo), 0, 0);
                int best = 0;
                for (int k = 1; k < 4; k++)
                    if (q[k] > q[best]) best = k;
                double second = -INFINITY;
                for (int k = 0; k < 4; k++)
                    if (k != best && q[k] > second) second = q[k];
                size_t o = ((size_t)p * ho + i) * wo + j;
                y[o] = agg ? (q[0] + q[1] + q[2] + q[3]) / 4 : q[best];
                if (sel) sel[o] = best;
                if (gap) gap[o] = q[best] - second;
            }
    }
}

void tu_naive_dalpha(const float *x, const float *dy, int n, int c, int h, int w, float ah,
                     float aw, int agg, double dalpha[2])
{
    int ho = naive_size(h, ah), wo = naive_size(w, aw);
    double sh = 0, sw = 0;
    for (int p = 0; p < n * c; p++) {
        const float *xp = x + (size_t)p * h * w;
        for (int i = 0; i < ho; i++)
            for (int j = 0; j < wo; j++) {
                double q[4], du[4], dv[4];
                for (int k = 0; k < 4; k++)
                    q[k] = sample(xp, h, w, coord(i, k >> 1, h, ho), coord(j, k & 1, w, wo),
                                  &du[k], &dv[k]);
                double g = dy[((size_t)p * ho + i) * wo + j];
                int best = 0;
                for (int k = 1; k < 4; k++)
                    if (q[k] > q[best]) best = k;
                for (int k = 0; k < 4; k++) {
                    double wk = agg ? 0.25 : (k == best ? 1.0 : 0.0);
                    /* du/dH_out = -(i + (2a+1)/4) * H / H_out^2 */
                    sh += wk * g * du[k] * (-(i + (2 * (k >> 1) + 1) / 4.0) * h / ((double)ho * ho));
                    sw += wk * g * dv[k] * (-(j + (2 * (k & 1) + 1) / 4.0) * w / ((double)wo * wo));
                }
            }
    }
    /* dH_out/dalpha = -H / alpha^2 above the 1.5 floor */
    double gh = (double)h / ah > 1.5 ? -(double)h / ((double)ah * ah) : 0.0;
    double gw = (double)w / aw > 1.5 ? -(double)w / ((double)aw * aw) : 0.0;
    dalpha[0] = sh * gh;
    dalpha[1] = sw * gw;
}
