/* test_dist.c — the engine's data-parallel step (dp_model_set_comm;
 * docs/distributed.md) without MPI: N ranks are N threads of this process, each
 * with its own model, and the communicator sums through shared memory (in rank
 * order, float sums in float, double sums in double).  On both backends, with
 * the complexity loss on:
 *   - N = 3 ranks on shards of 4 images, --sync-bn, equal one model on the batch
 *     of 12 after two steps: loss, correct count, the alphas' two gradient terms
 *     (the complexity term added once, not N times), weights and momentum to
 *     float32 summation noise (1e-4 of 1 + max|tensor|: tests/mpi_test.sh says why);
 *   - every rank holds the same bytes (dp_model_hash) after each step, with the
 *     gradient buckets started during the backward pass (istart: oneDNN) or summed
 *     after it (reference; cli.mpi runs both with MPI);
 *   - per-rank batch norm (no sync) stays in lock-step and differs from one model
 *     by much more (so the comparison can fail). */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "dynopool.h"
#include "engine/model.h"
#include "testutil.h"

enum { R = 3, B = 12, STEPS = 2 };

typedef struct {
    pthread_barrier_t bar;
    void *bufs[R];
    void *sum;
} world;

typedef struct {
    world *w;
    int rank;
} rctx;

static int fk_allreduce(void *ctx, void *buf, long long n, int type)
{
    rctx *c = ctx;
    world *w = c->w;
    const size_t es = type == DP_COMM_F64 ? sizeof(double) : sizeof(float);
    w->bufs[c->rank] = buf;
    pthread_barrier_wait(&w->bar);
    if (c->rank == 0) {
        w->sum = malloc(es * (size_t)n);
        for (long long i = 0; i < n; i++) {
            if (type == DP_COMM_F64) {
                double s = 0.0;
                for (int r = 0; r < R; r++) s += ((double *)w->bufs[r])[i];
                ((double *)w->sum)[i] = s;
            } else {
                float s = 0.0f;
                for (int r = 0; r < R; r++) s += ((float *)w->bufs[r])[i];
                ((float *)w->sum)[i] = s;
            }
        }
    }
    pthread_barrier_wait(&w->bar);
    memcpy(buf, w->sum, es * (size_t)n);
    pthread_barrier_wait(&w->bar);
    if (c->rank == 0) free(w->sum);
    return 0;
}

/* "non-blocking": summed at once (the order of the buckets is what is tested) */
static int fk_istart(void *ctx, float *buf, long long n) { return fk_allreduce(ctx, buf, n, DP_COMM_F32) ? -1 : 0; }
static int fk_wait(void *ctx, int h) { (void)ctx; return h != 0; }

typedef struct {
    dp_model *m;
    rctx c;
    int sync, overlap;
    const float *x;
    const int *lab;
    dp_train_config tc;
    dp_step_stats st[STEPS];
    unsigned long long hash[STEPS];
    int rc;
} rank_job;

static void *run_rank(void *arg)
{
    rank_job *j = arg;
    dp_comm c = {.rank = j->c.rank, .size = R, .ctx = &j->c, .allreduce = fk_allreduce};
    if (j->overlap) c.istart = fk_istart, c.wait = fk_wait;
    j->rc = dp_model_set_comm(j->m, &c, j->sync, 1000); /* small buckets: many of them */
    const int lo = B * j->c.rank / R, hi = B * (j->c.rank + 1) / R;
    const size_t per = (size_t)dp_model_config_of(j->m)->in_ch * 16 * 16;
    for (int s = 0; s < STEPS && !j->rc; s++) {
        j->rc = dp_model_train_step(j->m, j->x + per * lo, j->lab + lo, hi - lo, &j->tc, 0.01f, 0.001f, &j->st[s]);
        j->hash[s] = dp_model_hash(j->m);
    }
    return NULL;
}

/* largest |a - b| / (1 + max|a|) over n floats */
static double rel_diff(const float *a, const float *b, long long n)
{
    double d = 0.0, mx = 0.0;
    for (long long i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        mx = fmax(mx, fabs((double)a[i]));
    }
    return d / (1.0 + mx);
}

static void case_run(int reference, int sync, int overlap)
{
    dp_model_config cfg = dp_model_defaults();
    cfg.arch = DP_VGG16, cfg.pool = DP_POOL_DYNOPOOL, cfg.in_ch = 1, cfg.size = 16, cfg.classes = 10;
    cfg.width = 0.25f, cfg.reference = reference;
    dp_train_config tc = dp_train_defaults(cfg.arch);
    tc.lambda = 0.1f;
    tu_rng rng = {7};
    float *x = malloc(sizeof(float) * B * 16 * 16);
    int lab[B];
    tu_fill_normal(&rng, x, B * 16 * 16);
    for (int i = 0; i < B; i++) lab[i] = tu_int(&rng, 0, 9);
    char what[96];
    snprintf(what, sizeof what, "%s, %s BN, buckets %s", reference ? "reference" : "oneDNN",
             sync ? "synchronised" : "per-rank", overlap ? "during the backward" : "after it");

    dp_model *one;
    CHECK(dp_model_create(&cfg, &one) == DP_OK, "%s: create", what);
    /* oneDNN: the one model normalises with the same loops over a one-rank
     * communicator (oneDNN's own AVX2 batch norm differs from the exact two-pass
     * statistics by more than the summation tolerance; docs/distributed.md); the
     * reference backend's own batch norm checks those loops */
    const dp_comm solo = {.rank = 0, .size = 1, .allreduce = fk_allreduce};
    if (!reference && sync) CHECK(dp_model_set_comm(one, &solo, 1, 0) == DP_OK, "%s: one-rank comm", what);
    dp_step_stats st1[STEPS];
    for (int s = 0; s < STEPS; s++)
        CHECK(dp_model_train_step(one, x, lab, B, &tc, 0.01f, 0.001f, &st1[s]) == DP_OK, "%s: step", what);

    world w;
    pthread_barrier_init(&w.bar, NULL, R);
    rank_job j[R];
    pthread_t th[R];
    for (int r = 0; r < R; r++) {
        memset(&j[r], 0, sizeof j[r]);
        j[r].c = (rctx){&w, r}, j[r].sync = sync, j[r].overlap = overlap, j[r].x = x, j[r].lab = lab, j[r].tc = tc;
        CHECK(dp_model_create(&cfg, &j[r].m) == DP_OK, "%s: create rank %d", what, r);
        pthread_create(&th[r], NULL, run_rank, &j[r]);
    }
    for (int r = 0; r < R; r++) pthread_join(th[r], NULL);
    pthread_barrier_destroy(&w.bar);

    for (int r = 0; r < R; r++) CHECK(j[r].rc == DP_OK, "%s: rank %d: %s", what, r, dp_strerror(j[r].rc));
    for (int s = 0; s < STEPS; s++)
        for (int r = 1; r < R; r++) {
            CHECK(j[r].hash[s] == j[0].hash[s], "%s: step %d: rank %d's bytes differ from rank 0's", what, s + 1, r);
            CHECK(j[r].st[s].loss == j[0].st[s].loss, "%s: step %d: rank %d's loss differs", what, s + 1, r);
        }
    const dp_net *a = &one->net, *b = &j[0].m->net;
    const double dw = rel_diff(a->params, b->params, a->n_params);
    const double dm = rel_diff(one->sgd.buf, j[0].m->sgd.buf, a->n_params);
    if (sync) {
        for (int s = 0; s < STEPS; s++) {
            const dp_step_stats *p = &st1[s], *q = &j[0].st[s];
            CHECK(q->n == B && q->correct == p->correct, "%s: step %d: %d images, %d correct; one model %d", what,
                  s + 1, q->n, q->correct, p->correct);
            CHECK(fabs(q->loss - p->loss) <= 1e-5 * p->loss, "%s: step %d: loss %.9g, one model %.9g", what, s + 1,
                  q->loss, p->loss);
            CHECK(q->n_galpha == p->n_galpha && q->n_galpha > 0, "%s: alphas", what);
            for (int k = 0; k < q->n_galpha; k++)
                for (int e = 0; e < 2; e++) {
                    const double ct = q->galpha_cost[k][e], c1 = p->galpha_cost[k][e];
                    const double gt = q->galpha_task[k][e], g1 = p->galpha_task[k][e];
                    CHECK(fabs(ct - c1) <= 1e-4 * (1e-3 + fabs(c1)) && fabs(gt - g1) <= 1e-4 * (1 + fabs(g1)),
                          "%s: step %d: alpha %d.%d: task %.6g cost %.6g; one model %.6g %.6g", what, s + 1, k, e, gt,
                          ct, g1, c1);
                }
        }
        CHECK(dw <= 1e-4 && dm <= 1e-4, "%s: weights differ by %.3g, momentum by %.3g of 1 + max", what, dw, dm);
    } else {
        CHECK(dm > 1e-3, "%s: per-rank statistics should change the gradients (momentum %.3g)", what, dm);
    }
    printf("%-50s weights %.2g, momentum %.2g of 1 + max from one model\n", what, dw, dm);
    for (int r = 0; r < R; r++) dp_model_free(j[r].m);
    dp_model_free(one);
    free(x);
}

int main(void)
{
    dp_set_threads(1); /* each rank one thread */
    case_run(1, 1, 0);
    case_run(0, 1, 1);
    case_run(0, 0, 1);
    return tu_finish("engine.dist");
}
