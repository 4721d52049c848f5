/* bench_linear — chooses the classifier's backend by measurement.  For the
 * fully connected layer of src/engine/ops/linear.c, x (n, cin) row-major, W (cout, cin),
 * b (cout), on the shapes of the models' classifiers, times
 *
 *   fwd      y = x W^T + b
 *   fwd+bwd  the forward, then dx = dy W and dW = dy^T x (db, a loop common to
 *            all methods, is left out)
 *
 * with four methods, interleaved within each repetition (the starting method
 * rotates), so that a load that comes and goes touches all of them alike:
 *
 *   openblas     cblas_sgemm as linear.c called it before (bias copied into y,
 *                then beta = 1), OpenBLAS's OpenMP build
 *   dnnl-matmul  src/engine/dnn.h's dnn_linear_forward / dnn_linear_backward, exactly as
 *                the engine calls them: three oneDNN matmuls on the plain matrices
 *   dnnl-ip      oneDNN inner product (forward_training, backward_data,
 *                backward_weights) with the weights in plain "oi"
 *   dnnl-ip-any  the same with the weights' layout left to oneDNN ("any") and
 *                W reordered into it (and dW out of it) around each call, as the
 *                convolutions do
 *
 * The oneDNN inner products here use memory objects made once, as dnn.c's matmul
 * does, so that only the primitives differ.
 *
 * Correctness, every method against double-accumulating loops (those of the
 * reference backend): for each output element, err = |out - ref| divided by
 * its magnitude scale S = sum_k |a_k b_k| (plus |b_o| in the forward).  A dot
 * product of K terms summed in float in any order satisfies
 * err <= gamma_K * S, gamma_K = K u / (1 - K u), u = 2^-24 (Higham, Accuracy
 * and Stability, 3.1), with K = cin + 1 (forward), cout (dx), n (dW): a result
 * beyond that bound is a bug, not rounding, and fails the run.  Also printed:
 * maxrel = max|out - ref| / max|ref|, and the observed err/S in units of
 * sqrt(K) u, the size random rounding errors have.
 *
 *   bench_linear [--reps R (200)] [--threads T] [--batch N (128 and 32)] [--json FILE|-]
 *   threads: --threads T, else OMP_NUM_THREADS.  Exit status 1 when a check fails. */
#include <cblas.h>
#include <dnnl.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "engine/dnn.h"

enum { M_BLAS, M_MATMUL, M_IP, M_IPANY, NM };
static const char *const g_mname[NM] = {"openblas", "dnnl-matmul", "dnnl-ip", "dnnl-ip-any"};


static void *xalloc(size_t bytes)
{
    bytes = ((bytes ? bytes : 1) + 63) & ~(size_t)63;
    void *p = aligned_alloc(64, bytes);
    if (!p) {
        fprintf(stderr, "bench_linear: out of memory (%zu bytes)\n", bytes);
        exit(1);
    }
    memset(p, 0, bytes);
    return p;
}

static unsigned g_seed = 12345u;
static float urand(void) /* [0, 1) */
{
    g_seed = g_seed * 1103515245u + 12345u;
    return (float)(g_seed >> 8) / 16777216.0f;
}

/* ---- oneDNN inner product, the two weight layouts ---------------------------- */

static dnnl_engine_t g_eng;
static dnnl_stream_t g_strm;

#define CK(call)                                                                     \
    do {                                                                             \
        if ((call) != dnnl_success) {                                                \
            fprintf(stderr, "bench_linear: %s failed (line %d)\n", #call, __LINE__); \
            exit(1);                                                                 \
        }                                                                            \
    } while (0)

typedef struct {
    dnnl_primitive_desc_t pd[3];  /* forward, backward data, backward weights */
    dnnl_primitive_t prim[3];
    dnnl_primitive_t reo[3];      /* W oi -> fwd, W oi -> bwd data, dW -> oi (or NULL) */
    dnnl_memory_desc_t x, y, b, w, wp[3]; /* wp: the weights' layout of each pass */
    dnnl_memory_t m[3][4];        /* per pass, in argument order (below) */
    dnnl_memory_t rm[3][2];       /* reorders: from, to */
    float *wscr;                  /* weights in oneDNN's layout */
} ip_t;

static void mem(dnnl_memory_t *m, const dnnl_memory_desc_t *md)
{
    CK(dnnl_memory_create(m, md, g_eng, DNNL_MEMORY_NONE));
}

static void ip_make(ip_t *ip, int n, int ci, int co, int any)
{
    memset(ip, 0, sizeof *ip);
    const dnnl_dims_t xd = {n, ci}, wd = {co, ci}, bd = {co}, yd = {n, co};
    dnnl_memory_desc_t wq;
    CK(dnnl_memory_desc_init_by_tag(&ip->x, 2, xd, dnnl_f32, dnnl_nc));
    CK(dnnl_memory_desc_init_by_tag(&ip->w, 2, wd, dnnl_f32, dnnl_oi));
    CK(dnnl_memory_desc_init_by_tag(&wq, 2, wd, dnnl_f32, any ? dnnl_format_tag_any : dnnl_oi));
    CK(dnnl_memory_desc_init_by_tag(&ip->b, 1, bd, dnnl_f32, dnnl_x));
    CK(dnnl_memory_desc_init_by_tag(&ip->y, 2, yd, dnnl_f32, dnnl_nc));
    dnnl_inner_product_desc_t d;
    CK(dnnl_inner_product_forward_desc_init(&d, dnnl_forward_training, &ip->x, &wq, &ip->b, &ip->y));
    CK(dnnl_primitive_desc_create(&ip->pd[0], &d, NULL, g_eng, NULL));
    CK(dnnl_inner_product_backward_data_desc_init(&d, &ip->x, &wq, &ip->y));
    CK(dnnl_primitive_desc_create(&ip->pd[1], &d, NULL, g_eng, ip->pd[0]));
    CK(dnnl_inner_product_backward_weights_desc_init(&d, &ip->x, &wq, NULL, &ip->y));
    CK(dnnl_primitive_desc_create(&ip->pd[2], &d, NULL, g_eng, ip->pd[0]));
    size_t scr = 0;
    for (int p = 0; p < 3; p++) {
        CK(dnnl_primitive_create(&ip->prim[p], ip->pd[p]));
        ip->wp[p] = *dnnl_primitive_desc_query_md(
            ip->pd[p], p == 2 ? dnnl_query_diff_weights_md : dnnl_query_weights_md, 0);
        if (dnnl_memory_desc_equal(&ip->wp[p], &ip->w)) continue;
        const dnnl_memory_desc_t *from = p == 2 ? &ip->wp[p] : &ip->w, *to = p == 2 ? &ip->w : &ip->wp[p];
        dnnl_primitive_desc_t rpd;
        CK(dnnl_reorder_primitive_desc_create(&rpd, from, g_eng, to, g_eng, NULL));
        CK(dnnl_primitive_create(&ip->reo[p], rpd));
        dnnl_primitive_desc_destroy(rpd);
        mem(&ip->rm[p][0], from);
        mem(&ip->rm[p][1], to);
        const size_t s = dnnl_memory_desc_get_size(&ip->wp[p]);
        if (s > scr) scr = s;
    }
    if (scr) ip->wscr = xalloc(scr);
    mem(&ip->m[0][0], &ip->x), mem(&ip->m[0][1], &ip->wp[0]), mem(&ip->m[0][2], &ip->b), mem(&ip->m[0][3], &ip->y);
    mem(&ip->m[1][0], &ip->y), mem(&ip->m[1][1], &ip->wp[1]), mem(&ip->m[1][2], &ip->x);
    mem(&ip->m[2][0], &ip->x), mem(&ip->m[2][1], &ip->y), mem(&ip->m[2][2], &ip->wp[2]);
}

static const char *impl_of(dnnl_primitive_desc_t pd)
{
    const char *s = NULL;
    return dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &s) == dnnl_success && s ? s : "?";
}

static void ip_free(ip_t *ip)
{
    for (int p = 0; p < 3; p++) {
        dnnl_primitive_destroy(ip->prim[p]);
        dnnl_primitive_desc_destroy(ip->pd[p]);
        if (ip->reo[p]) dnnl_primitive_destroy(ip->reo[p]);
        for (int i = 0; i < 4; i++)
            if (ip->m[p][i]) dnnl_memory_destroy(ip->m[p][i]);
        for (int i = 0; i < 2; i++)
            if (ip->rm[p][i]) dnnl_memory_destroy(ip->rm[p][i]);
    }
    free(ip->wscr);
}

static void exec(dnnl_primitive_t prim, dnnl_memory_t *m, const int *argk, void *const *p, int n)
{
    dnnl_exec_arg_t a[4];
    for (int i = 0; i < n; i++) {
        CK(dnnl_memory_set_data_handle(m[i], p[i]));
        a[i].arg = argk[i];
        a[i].memory = m[i];
    }
    CK(dnnl_primitive_execute(prim, g_strm, n, a));
    CK(dnnl_stream_wait(g_strm));
}

static void reorder(ip_t *ip, int p, const float *from, float *to)
{
    static const int k[2] = {DNNL_ARG_FROM, DNNL_ARG_TO};
    void *const ptr[2] = {(void *)from, to};
    exec(ip->reo[p], ip->rm[p], k, ptr, 2);
}

static void ip_forward(ip_t *ip, const float *x, const float *w, const float *b, float *y)
{
    static const int k[4] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_BIAS, DNNL_ARG_DST};
    const float *wf = w;
    if (ip->reo[0]) reorder(ip, 0, w, ip->wscr), wf = ip->wscr;
    void *const p[4] = {(void *)x, (void *)wf, (void *)b, y};
    exec(ip->prim[0], ip->m[0], k, p, 4);
}

static void ip_backward(ip_t *ip, const float *x, const float *w, const float *dy, float *dx, float *dw)
{
    static const int kd[3] = {DNNL_ARG_DIFF_DST, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_SRC};
    static const int kw[3] = {DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_WEIGHTS};
    const float *wb = w;
    if (ip->reo[1]) reorder(ip, 1, w, ip->wscr), wb = ip->wscr;
    void *const pd[3] = {(void *)dy, (void *)wb, dx};
    exec(ip->prim[1], ip->m[1], kd, pd, 3);
    float *dwt = ip->reo[2] ? ip->wscr : dw;
    void *const pw[3] = {(void *)x, (void *)dy, dwt};
    exec(ip->prim[2], ip->m[2], kw, pw, 3);
    if (ip->reo[2]) reorder(ip, 2, dwt, dw);
}

/* ---- one shape -------------------------------------------------------------------- */

typedef struct {
    const char *model;
    int cin, cout;
} shape_t;

typedef struct {
    int n, cin, cout;
    const char *model;
    double fwd_min[NM], fwd_med[NM], all_min[NM], all_med[NM];
    double err[NM][3], maxrel[NM][3]; /* y, dx, dW: max err/S; max|d| / max|ref| */
    double bound[3], sqk[3];          /* gamma_K; sqrt(K) u */
} row_t;

/* max over elements of |out - ref| / S, and max|out - ref| / max|ref| */
static void check(const float *out, const double *ref, const double *s, size_t m, double *err, double *rel)
{
    double e = 0.0, d = 0.0, r = 0.0;
    for (size_t i = 0; i < m; i++) {
        const double di = fabs((double)out[i] - ref[i]);
        const double ei = s[i] > 0.0 ? di / s[i] : di;
        if (ei > e || ei != ei) e = ei;
        if (di > d || di != di) d = di;
        if (fabs(ref[i]) > r) r = fabs(ref[i]);
    }
    *err = e;
    *rel = d / (r > 0.0 ? r : 1.0);
}

static void run_shape(row_t *row, int n, const shape_t *sh, int reps)
{
    const int ci = sh->cin, co = sh->cout;
    row->n = n, row->cin = ci, row->cout = co, row->model = sh->model;
    const size_t nx = (size_t)n * ci, nw = (size_t)co * ci, ny = (size_t)n * co;
    float *x = xalloc(nx * 4), *w = xalloc(nw * 4), *b = xalloc((size_t)co * 4), *dy = xalloc(ny * 4);
    /* x: post-ReLU averages (>= 0); W, b: PyTorch's Linear init; dy: a softmax
     * cross-entropy gradient's size (1/n), either sign */
    const float a = 1.0f / sqrtf((float)ci);
    for (size_t i = 0; i < nx; i++) x[i] = urand();
    for (size_t i = 0; i < nw; i++) w[i] = a * (2.0f * urand() - 1.0f);
    for (int i = 0; i < co; i++) b[i] = a * (2.0f * urand() - 1.0f);
    for (size_t i = 0; i < ny; i++) dy[i] = (2.0f * urand() - 1.0f) / (float)n;
    float *y[NM], *dx[NM], *dw[NM];
    for (int m = 0; m < NM; m++) y[m] = xalloc(ny * 4), dx[m] = xalloc(nx * 4), dw[m] = xalloc(nw * 4);

    /* references and magnitude scales, double */
    double *yr = xalloc(ny * 8), *ys = xalloc(ny * 8), *dxr = xalloc(nx * 8), *dxs = xalloc(nx * 8),
           *dwr = xalloc(nw * 8), *dws = xalloc(nw * 8);
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++)
        for (int o = 0; o < co; o++) {
            double acc = b[o], s = fabs((double)b[o]);
            for (int k = 0; k < ci; k++) {
                const double t = (double)x[(size_t)i * ci + k] * w[(size_t)o * ci + k];
                acc += t, s += fabs(t);
            }
            yr[(size_t)i * co + o] = acc, ys[(size_t)i * co + o] = s;
        }
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++)
        for (int k = 0; k < ci; k++) {
            double acc = 0.0, s = 0.0;
            for (int o = 0; o < co; o++) {
                const double t = (double)dy[(size_t)i * co + o] * w[(size_t)o * ci + k];
                acc += t, s += fabs(t);
            }
            dxr[(size_t)i * ci + k] = acc, dxs[(size_t)i * ci + k] = s;
        }
#pragma omp parallel for schedule(static)
    for (int o = 0; o < co; o++)
        for (int k = 0; k < ci; k++) {
            double acc = 0.0, s = 0.0;
            for (int i = 0; i < n; i++) {
                const double t = (double)dy[(size_t)i * co + o] * x[(size_t)i * ci + k];
                acc += t, s += fabs(t);
            }
            dwr[(size_t)o * ci + k] = acc, dws[(size_t)o * ci + k] = s;
        }
    const double u = ldexp(1.0, -24);
    const int K[3] = {ci + 1, co, n};
    for (int p = 0; p < 3; p++) row->bound[p] = K[p] * u / (1.0 - K[p] * u), row->sqk[p] = sqrt(K[p]) * u;

    void *be = NULL;
    ip_t ip, ipa;
    ip_make(&ip, n, ci, co, 0);
    ip_make(&ipa, n, ci, co, 1);
    static int said;
    if (!said++)
        printf("# oneDNN inner product kernels (first shape): plain %s / %s / %s; any %s / %s / %s\n",
               impl_of(ip.pd[0]), impl_of(ip.pd[1]), impl_of(ip.pd[2]), impl_of(ipa.pd[0]),
               impl_of(ipa.pd[1]), impl_of(ipa.pd[2]));

    const int warm = 3;
    double *tf = xalloc(sizeof(double) * NM * (size_t)reps), *ta = xalloc(sizeof(double) * NM * (size_t)reps);
    for (int r = -warm; r < reps; r++)
        for (int j = 0; j < NM; j++) {
            const int m = (j + (r + warm)) % NM; /* rotate the starting method */
            double t0 = now_ms(), t1 = 0.0;
            switch (m) {
            case M_BLAS:
                for (int i = 0; i < n; i++) memcpy(y[m] + (size_t)i * co, b, sizeof(float) * co);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, co, ci, 1.0f, x, ci, w, ci, 1.0f, y[m], co);
                t1 = now_ms();
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, co, ci, n, 1.0f, dy, co, x, ci, 0.0f, dw[m], ci);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, ci, co, 1.0f, dy, co, w, ci, 0.0f, dx[m], ci);
                break;
            case M_MATMUL:
                if (dnn_linear_forward(&be, x, w, b, n, ci, co, 0, y[m])) goto fail;
                t1 = now_ms();
                if (dnn_linear_backward(&be, x, w, dy, n, ci, co, 0, dx[m], dw[m])) goto fail;
                break;
            default: {
                ip_t *q = m == M_IP ? &ip : &ipa;
                ip_forward(q, x, w, b, y[m]);
                t1 = now_ms();
                ip_backward(q, x, w, dy, dx[m], dw[m]);
            }
            }
            const double t2 = now_ms();
            if (r >= 0) tf[(size_t)m * reps + r] = t1 - t0, ta[(size_t)m * reps + r] = t2 - t0;
        }
    for (int m = 0; m < NM; m++) {
        row->fwd_med[m] = median_inplace(tf + (size_t)m * reps, reps), row->fwd_min[m] = tf[(size_t)m * reps];
        row->all_med[m] = median_inplace(ta + (size_t)m * reps, reps), row->all_min[m] = ta[(size_t)m * reps];
        check(y[m], yr, ys, ny, &row->err[m][0], &row->maxrel[m][0]);
        check(dx[m], dxr, dxs, nx, &row->err[m][1], &row->maxrel[m][1]);
        check(dw[m], dwr, dws, nw, &row->err[m][2], &row->maxrel[m][2]);
    }
    dnn_free(&be);
    ip_free(&ip);
    ip_free(&ipa);
    free(tf), free(ta);
    for (int m = 0; m < NM; m++) free(y[m]), free(dx[m]), free(dw[m]);
    free(x), free(w), free(b), free(dy), free(yr), free(ys), free(dxr), free(dxs), free(dwr), free(dws);
    return;
fail:
    fprintf(stderr, "bench_linear: dnn_linear_* failed at n %d, %d -> %d\n", n, ci, co);
    exit(1);
}

/* ---- main -------------------------------------------------------------------------- */

static void usage(const char *a0)
{
    fprintf(stderr, "usage: %s [--reps R (200)] [--threads T] [--batch N (128 and 32)] [--json FILE|-]\n", a0);
}

int main(int argc, char **argv)
{
    int reps = 200, threads = 0, batch = 0;
    const char *json = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--reps") && v) reps = atoi(v), i++;
        else if (!strcmp(a, "--threads") && v) threads = atoi(v), i++;
        else if (!strcmp(a, "--batch") && v) batch = atoi(v), i++;
        else if (!strcmp(a, "--json") && v) json = v, i++;
        else {
            usage(argv[0]);
            return 2;
        }
    }
    if (reps < 1 || reps > 100000 || threads < 0 || threads > 4096 || batch < 0 || batch > 65536) {
        usage(argv[0]);
        return 2;
    }
    if (threads) omp_set_num_threads(threads);
    if (!dnn_blk()) {
        fprintf(stderr, "bench_linear: oneDNN cannot start\n");
        return 1;
    }
    CK(dnnl_engine_create(&g_eng, dnnl_cpu, 0));
    CK(dnnl_stream_create(&g_strm, g_eng, dnnl_stream_default_flags));
    static const shape_t shapes[] = {
        {"VGG-16 x1, 10 classes", 512, 10},      {"VGG-16 x1, 100 classes", 512, 100},
        {"VGG-16 x0.25, 10 classes", 128, 10},   {"ResNet-50, 1000 classes", 2048, 1000},
        {"MobileNetV2, 1000 classes", 1280, 1000},
    };
    const int ns = (int)(sizeof shapes / sizeof shapes[0]);
    const int batches[2] = {batch ? batch : 128, 32}, nb = batch ? 1 : 2;
    const dnnl_version_t *v = dnnl_version();
    printf("# bench_linear: reps %d (min / median; methods interleaved), omp_get_max_threads() %d\n",
           reps, omp_get_max_threads());
    printf("# oneDNN %d.%d.%d (dnn_blk() %d); OpenBLAS %s\n", v->major, v->minor, v->patch, dnn_blk(),
           openblas_get_config());
    row_t *rows = xalloc(sizeof(row_t) * (size_t)(ns * nb));
    int nr = 0, bad = 0;
    for (int bi = 0; bi < nb; bi++)
        for (int s = 0; s < ns; s++) run_shape(&rows[nr++], batches[bi], &shapes[s], reps);

    printf("\n# time, ms: min / median; ratio = method / openblas (of the medians)\n");
    printf("%-5s %-11s %-12s %19s %19s %7s %19s %19s %7s\n", "n", "cin->cout", "method", "fwd min/med",
           "", "ratio", "fwd+bwd min/med", "", "ratio");
    for (int i = 0; i < nr; i++) {
        const row_t *r = &rows[i];
        char sh[32];
        snprintf(sh, sizeof sh, "%d->%d", r->cin, r->cout);
        for (int m = 0; m < NM; m++)
            printf("%-5d %-11s %-12s %9.4f / %9.4f %7.2f %9.4f / %9.4f %7.2f\n", r->n, sh, g_mname[m],
                   r->fwd_min[m], r->fwd_med[m], r->fwd_med[m] / r->fwd_med[M_BLAS],
                   r->all_min[m], r->all_med[m], r->all_med[m] / r->all_med[M_BLAS]);
    }
    printf("\n# error: max |out - ref| / S per element (S = sum |terms|), limit gamma_K;\n"
           "# [that in units of sqrt(K) u]; (maxrel = max |out - ref| / max |ref|)\n");
    printf("%-5s %-11s %-12s %32s %32s %32s\n", "n", "cin->cout", "method", "y (K = cin + 1)",
           "dx (K = cout)", "dW (K = n)");
    for (int i = 0; i < nr; i++) {
        const row_t *r = &rows[i];
        char sh[32];
        snprintf(sh, sizeof sh, "%d->%d", r->cin, r->cout);
        printf("%-5d %-11s %-12s", r->n, sh, "limit");
        for (int p = 0; p < 3; p++) printf(" %32.2e", r->bound[p]);
        printf("\n");
        for (int m = 0; m < NM; m++) {
            printf("%-5d %-11s %-12s", r->n, sh, g_mname[m]);
            for (int p = 0; p < 3; p++) {
                const int ok = r->err[m][p] <= r->bound[p];
                bad |= !ok;
                printf(" %9.2e%s [%5.2f] (%8.2e)", r->err[m][p], ok ? " " : "!", r->err[m][p] / r->sqk[p],
                       r->maxrel[m][p]);
            }
            printf("\n");
        }
    }
    if (json) {
        FILE *f = strcmp(json, "-") ? fopen(json, "w") : stdout;
        if (!f) {
            fprintf(stderr, "bench_linear: cannot write %s\n", json);
            return 1;
        }
        fprintf(f, "{\n  \"reps\": %d, \"threads\": %d, \"onednn\": \"%d.%d.%d\", \"openblas\": \"%s\",\n"
                   "  \"results\": [\n", reps, omp_get_max_threads(), v->major, v->minor, v->patch,
                openblas_get_config());
        for (int i = 0; i < nr; i++)
            for (int m = 0; m < NM; m++) {
                const row_t *r = &rows[i];
                fprintf(f, "    {\"n\": %d, \"cin\": %d, \"cout\": %d, \"model\": \"%s\", \"method\": \"%s\", "
                           "\"fwd_ms_min\": %.5f, \"fwd_ms_median\": %.5f, \"fwdbwd_ms_min\": %.5f, "
                           "\"fwdbwd_ms_median\": %.5f, \"err_y\": %.3e, \"err_dx\": %.3e, \"err_dw\": %.3e, "
                           "\"limit_y\": %.3e, \"limit_dx\": %.3e, \"limit_dw\": %.3e, \"maxrel_y\": %.3e, "
                           "\"maxrel_dx\": %.3e, \"maxrel_dw\": %.3e}%s\n",
                        r->n, r->cin, r->cout, r->model, g_mname[m], r->fwd_min[m], r->fwd_med[m],
                        r->all_min[m], r->all_med[m], r->err[m][0], r->err[m][1], r->err[m][2], r->bound[0],
                        r->bound[1], r->bound[2], r->maxrel[m][0], r->maxrel[m][1], r->maxrel[m][2],
                        i + 1 < nr || m + 1 < NM ? "," : "");
            }
        fprintf(f, "  ]\n}\n");
        if (f != stdout) fclose(f);
    }
    free(rows);
    dnnl_stream_destroy(g_strm);
    dnnl_engine_destroy(g_eng);
    if (bad) {
        printf("# some results exceed gamma_K (marked !): FAILED\n");
        return 1;
    }
    printf("# every result within gamma_K of the double reference\n");
    return 0;
}
