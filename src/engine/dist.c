/* dist.c — data-parallel training across processes (docs/distributed.md): the
 * communicator the caller gives (dp_comm, function pointers: the library links
 * no MPI), the gradient buckets summed as the backward pass finishes them, and
 * the lock-step hash.  The step itself is model.c's, the synchronised batch
 * norm batchnorm.c's. */
#include <stdlib.h>
#include <string.h>

#include "engine/model.h"

int dp_dist_sum(const dp_net *net, void *buf, long long n, int type)
{
    const dp_dist *d = net->dist;
    if (!d || d->c.size <= 1 || n <= 0) return DP_OK;
    return d->c.allreduce(d->c.ctx, buf, n, type) ? DP_ERR_IO : DP_OK;
}

void dp_dist_free(dp_net *net)
{
    dp_dist *d = net->dist;
    if (!d) return;
    free(d->handle), free(d->ready), free(d->lo), free(d->hi);
    free(d);
    net->dist = NULL;
}

/* The last node (lowest index) of the backward pass that writes each parameter
 * view's gradient: its own node, or a node sharing it (nd->owner); 0 when no
 * node names it (then it is final only at the end). */
static int *last_writers(const dp_net *net)
{
    int *w = malloc(sizeof(int) * (size_t)(net->n_pv ? net->n_pv : 1));
    if (!w) return NULL;
    for (int v = 0; v < net->n_pv; v++) {
        w[v] = 0;
        int best = -1;
        for (int i = 1; i < net->n_nodes; i++) {
            const dp_node *nd = &net->nodes[i];
            const long long offs[5] = {nd->w_off, nd->b_off, nd->w2_off, nd->b2_off,
                                       net->nodes[nd->owner].w_off};
            for (int k = 0; k < 5; k++)
                if (offs[k] == net->pv[v].off && (best < 0 || i < best)) best = i;
        }
        if (best > 0) w[v] = best;
    }
    return w;
}

/* Buckets of at least d->bucket floats, cut at parameter views from the end of
 * the buffer down (the backward pass finishes the last layers first). */
static int plan_buckets(dp_net *net, dp_dist *d)
{
    int *w = last_writers(net);
    const int cap = net->n_pv + 1;
    d->handle = malloc(sizeof(int) * (size_t)cap), d->ready = malloc(sizeof(int) * (size_t)cap);
    d->lo = malloc(sizeof(long long) * (size_t)cap), d->hi = malloc(sizeof(long long) * (size_t)cap);
    if (!w || !d->handle || !d->ready || !d->lo || !d->hi) {
        free(w);
        return DP_ERR_NOMEM;
    }
    /* views in decreasing offset */
    long long hi = net->n_params;
    int ready = net->n_nodes, nb = 0;
    for (int v = net->n_pv - 1; v >= 0; v--) {
        const dp_pview *pv = &net->pv[v];
        if (pv->off < 0) continue;
        if (w[v] < ready) ready = w[v];
        if (hi - pv->off >= d->bucket || v == 0) {
            d->lo[nb] = v == 0 ? 0 : pv->off, d->hi[nb] = hi, d->ready[nb] = ready;
            nb++;
            hi = pv->off, ready = net->n_nodes;
        }
    }
    if (hi > 0 && (nb == 0 || d->lo[nb - 1] > 0)) d->lo[nb] = 0, d->hi[nb] = hi, d->ready[nb++] = 0;
    d->n_buckets = nb;
    free(w);
    return DP_OK;
}

int dp_dist_node_done(dp_net *net, int i)
{
    dp_dist *d = net->dist;
    if (!d || d->c.size <= 1 || !d->c.istart) return DP_OK;
    if (d->next > 0 && d->c.progress) d->c.progress(d->c.ctx);
    while (d->next < d->n_buckets && d->ready[d->next] >= i) {
        const int h = d->c.istart(d->c.ctx, net->grads + d->lo[d->next], d->hi[d->next] - d->lo[d->next]);
        if (h < 0) return DP_ERR_IO;
        d->handle[d->next++] = h;
    }
    return DP_OK;
}

int dp_dist_finish(dp_net *net)
{
    dp_dist *d = net->dist;
    if (!d || d->c.size <= 1) return DP_OK;
    int rc = DP_OK;
    if (!d->c.istart) {
        for (int b = 0; b < d->n_buckets && !rc; b++)
            rc = dp_dist_sum(net, net->grads + d->lo[b], d->hi[b] - d->lo[b], DP_COMM_F32);
        return rc;
    }
    if ((rc = dp_dist_node_done(net, 0))) return rc;
    for (int b = 0; b < d->n_buckets; b++)
        if (d->c.wait(d->c.ctx, d->handle[b]) && !rc) rc = DP_ERR_IO;
    d->next = 0;
    return rc;
}

int dp_model_set_comm(dp_model *m, const dp_comm *c, int sync_bn, long long bucket_floats)
{
    if (!m) return DP_ERR_NULL;
    if (m->frozen) return DP_ERR_ARG;
    dp_dist_free(&m->net);
    if (!c) return DP_OK;
    if (c->size < 1 || c->rank < 0 || c->rank >= c->size || !c->allreduce || !c->istart != !c->wait ||
        bucket_floats < 0)
        return DP_ERR_ARG;
    dp_dist *d = calloc(1, sizeof *d);
    if (!d) return DP_ERR_NOMEM;
    d->c = *c, d->sync_bn = sync_bn != 0, d->bucket = bucket_floats ? bucket_floats : 4LL << 20;
    int rc = plan_buckets(&m->net, d);
    m->net.dist = d;
    if (rc) dp_dist_free(&m->net);
    return rc;
}

unsigned long long dp_model_hash(const dp_model *m)
{
    unsigned long long h = 0xcbf29ce484222325ULL;
    if (!m) return h;
    const float *bufs[2] = {m->net.params, m->sgd.buf};
    for (int k = 0; k < 2; k++) {
        if (!bufs[k]) continue;
        const unsigned char *p = (const unsigned char *)bufs[k];
        const size_t n = sizeof(float) * (size_t)m->net.n_params;
        for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    }
    return h;
}
