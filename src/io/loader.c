/*
 * loader.c — a background batch loader: worker threads fill a ring of batch
 * slots ahead of the consumer.  Batch b of an epoch always lands in slot
 * b % depth and is made from (seed, its sample positions) alone, so what the
 * consumer receives does not depend on the number of workers or on timing.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dynopool/io.h"

enum { EMPTY, FILLING, READY };

typedef struct {
    float *x;
    int *labels;
    int n, batch_no, state, rc;
    char err[512];
} slot;

struct dp_loader {
    const dp_dataset *ds;
    dp_transform t;
    int batch, workers, depth;
    size_t sample_floats;
    slot *slots;
    pthread_t *th;
    int n_threads;
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_done;
    int *order, n, n_batches;
    int rank, ranks; /* dp_loader_shard: this process's part of every batch */
    unsigned long long seed;
    int next_claim, consumer, held, busy, stop;
};

static void fill(dp_loader *ld, slot *sl, int b)
{
    int first = b * ld->batch;
    int n = ld->n - first < ld->batch ? ld->n - first : ld->batch;
    if (ld->ranks > 1) { /* samples [n r / R, n (r + 1) / R) of the batch, at their own positions */
        const int lo = (int)((long long)n * ld->rank / ld->ranks), hi = (int)((long long)n * (ld->rank + 1) / ld->ranks);
        first += lo, n = hi - lo;
    }
    sl->n = n;
    sl->err[0] = 0;
    sl->rc = dp_dataset_batch(ld->ds, &ld->t, ld->order + first, n, ld->seed, first, sl->x,
                              sl->labels, sl->err, sizeof sl->err);
}

static void *worker(void *arg)
{
    dp_loader *ld = arg;
    pthread_mutex_lock(&ld->mu);
    for (;;) {
        while (!ld->stop && !(ld->next_claim < ld->n_batches && ld->next_claim < ld->consumer + ld->depth))
            pthread_cond_wait(&ld->cv_work, &ld->mu);
        if (ld->stop) break;
        const int b = ld->next_claim++;
        slot *sl = &ld->slots[b % ld->depth];
        sl->state = FILLING, sl->batch_no = b;
        ld->busy++;
        pthread_mutex_unlock(&ld->mu);
        fill(ld, sl, b);
        pthread_mutex_lock(&ld->mu);
        sl->state = READY;
        ld->busy--;
        pthread_cond_broadcast(&ld->cv_done);
    }
    pthread_mutex_unlock(&ld->mu);
    return NULL;
}

int dp_loader_create(const dp_dataset *ds, const dp_transform *t, int batch, int workers, dp_loader **out)
{
    if (!ds || !t || !out) return DP_ERR_NULL;
    if (batch <= 0 || workers < 0 || workers > 64) return DP_ERR_ARG;
    dp_dataset_info di;
    dp_dataset_info_get(ds, &di);
    const int vs = dp_transform_size(t, di.size);
    if (vs < 0) return vs;
    dp_loader *ld = calloc(1, sizeof(*ld));
    if (!ld) return DP_ERR_NOMEM;
    ld->ds = ds, ld->t = *t, ld->batch = batch, ld->workers = workers;
    ld->depth = workers ? 2 * workers + 1 : 1;
    ld->sample_floats = (size_t)di.channels * vs * vs;
    ld->slots = calloc((size_t)ld->depth, sizeof(slot));
    int rc = ld->slots ? DP_OK : DP_ERR_NOMEM;
    for (int i = 0; !rc && i < ld->depth; i++) {
        ld->slots[i].x = malloc(sizeof(float) * ld->sample_floats * batch);
        ld->slots[i].labels = malloc(sizeof(int) * (size_t)batch);
        if (!ld->slots[i].x || !ld->slots[i].labels) rc = DP_ERR_NOMEM;
    }
    pthread_mutex_init(&ld->mu, NULL);
    pthread_cond_init(&ld->cv_work, NULL);
    pthread_cond_init(&ld->cv_done, NULL);
    ld->held = -1;
    if (!rc && workers && !(ld->th = calloc((size_t)workers, sizeof(pthread_t)))) rc = DP_ERR_NOMEM;
    for (int i = 0; !rc && i < workers; i++) {
        if (pthread_create(&ld->th[i], NULL, worker, ld)) rc = DP_ERR_NOMEM;
        else ld->n_threads++;
    }
    if (rc) {
        dp_loader_free(ld);
        return rc;
    }
    *out = ld;
    return DP_OK;
}

void dp_loader_free(dp_loader *ld)
{
    if (!ld) return;
    pthread_mutex_lock(&ld->mu);
    ld->stop = 1;
    pthread_cond_broadcast(&ld->cv_work);
    pthread_mutex_unlock(&ld->mu);
    for (int i = 0; i < ld->n_threads; i++) pthread_join(ld->th[i], NULL);
    for (int i = 0; ld->slots && i < ld->depth; i++) free(ld->slots[i].x), free(ld->slots[i].labels);
    free(ld->slots);
    free(ld->th);
    free(ld->order);
    pthread_mutex_destroy(&ld->mu);
    pthread_cond_destroy(&ld->cv_work);
    pthread_cond_destroy(&ld->cv_done);
    free(ld);
}

int dp_loader_shard(dp_loader *ld, int rank, int ranks)
{
    if (!ld) return DP_ERR_NULL;
    if (ranks < 1 || rank < 0 || rank >= ranks) return DP_ERR_ARG;
    pthread_mutex_lock(&ld->mu);
    const int idle = ld->n_batches == 0 && ld->busy == 0;
    if (idle) ld->rank = rank, ld->ranks = ranks;
    pthread_mutex_unlock(&ld->mu);
    return idle ? DP_OK : DP_ERR_ARG;
}

int dp_loader_start(dp_loader *ld, const int *order, int n, int first_batch, unsigned long long seed)
{
    if (!ld || !order) return DP_ERR_NULL;
    if (n <= 0 || first_batch < 0) return DP_ERR_ARG;
    int *o = malloc(sizeof(int) * (size_t)n);
    if (!o) return DP_ERR_NOMEM;
    memcpy(o, order, sizeof(int) * (size_t)n);
    pthread_mutex_lock(&ld->mu);
    ld->next_claim = ld->n_batches = 0; /* no new claims while in-flight fills finish */
    while (ld->busy) pthread_cond_wait(&ld->cv_done, &ld->mu);
    free(ld->order);
    ld->order = o, ld->n = n, ld->seed = seed;
    ld->n_batches = (n + ld->batch - 1) / ld->batch;
    ld->next_claim = ld->consumer = first_batch;
    ld->held = -1;
    for (int i = 0; i < ld->depth; i++) ld->slots[i].state = EMPTY;
    pthread_cond_broadcast(&ld->cv_work);
    pthread_mutex_unlock(&ld->mu);
    return DP_OK;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

int dp_loader_next(dp_loader *ld, const float **x, const int **labels, int *n, double *wait,
                   char *err, size_t errlen)
{
    if (!ld || !x || !labels || !n) return DP_ERR_NULL;
    if (wait) *wait = 0.0;
    pthread_mutex_lock(&ld->mu);
    if (!ld->order) {
        pthread_mutex_unlock(&ld->mu);
        return DP_ERR_ARG; /* no epoch started */
    }
    if (ld->held >= 0) { /* the caller is done with the previous batch */
        ld->slots[ld->held % ld->depth].state = EMPTY;
        ld->consumer = ld->held + 1;
        ld->held = -1;
        pthread_cond_broadcast(&ld->cv_work);
    }
    const int b = ld->consumer;
    if (b >= ld->n_batches) {
        pthread_mutex_unlock(&ld->mu);
        return 1;
    }
    slot *sl = &ld->slots[b % ld->depth];
    const double t0 = now();
    if (!ld->workers) { /* synchronous: fill here */
        pthread_mutex_unlock(&ld->mu);
        fill(ld, sl, b);
        pthread_mutex_lock(&ld->mu);
        sl->state = READY, sl->batch_no = b;
    }
    while (!(sl->state == READY && sl->batch_no == b)) pthread_cond_wait(&ld->cv_done, &ld->mu);
    if (wait) *wait = now() - t0;
    ld->held = b;
    pthread_mutex_unlock(&ld->mu);
    if (sl->rc < 0) {
        if (err && errlen) {
            strncpy(err, sl->err, errlen - 1);
            err[errlen - 1] = 0;
        }
        return sl->rc;
    }
    *x = sl->x, *labels = sl->labels, *n = sl->n;
    return DP_OK;
}
