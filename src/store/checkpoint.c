/* checkpoint.c — a model as a safetensors file: every state_dict entry under its
 * PyTorch name (float32; num_batches_tracked int64, shape []), the SGD momentum
 * buffers as "optimizer.momentum_buffer.<name>" when training has started, and a
 * metadata block: format, model, variant, in_ch, size, classes, width, alphas and
 * sizes (JSON), optimizer (JSON), plus the caller's pairs (epoch, ...). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "dynopool/infer.h"
#include "dynopool/store.h"
#include "engine/model.h"
#include "store/safetensors.h"

#define FORMAT_TAG "dynopool-checkpoint-1"

static void errf(char *err, size_t n, const char *path, const char *what, const char *name)
{
    if (err && n) snprintf(err, n, "%s: %s%s%s%s", path, what, name ? " '" : "", name ? name : "",
                           name ? "'" : "");
}

/* The tensors of a model, in node order; names point into the net or into
 * names (one 128-byte slot per tensor). */
typedef struct {
    st_view *v;
    char *names;
    long long *nbt;
    int n;
} tensor_list;

static int list_tensors(const dp_model *m, int with_opt, tensor_list *tl)
{
    const dp_net *net = &m->net;
    const int cap = 2 * net->n_pv + 2 * net->n_sv + 1;
    tl->v = calloc((size_t)cap, sizeof(st_view));
    tl->names = calloc((size_t)cap, 128);
    tl->nbt = calloc((size_t)net->n_nodes + 1, sizeof(long long));
    tl->n = 0;
    if (!tl->v || !tl->names || !tl->nbt) return DP_ERR_NOMEM;
    for (int i = 0; i < net->n_pv; i++) {
        const dp_pview *p = &net->pv[i];
        st_view *v = &tl->v[tl->n++];
        v->name = p->name, v->dtype = ST_F32, v->ndim = p->ndim, v->data = net->params + p->off;
        for (int d = 0; d < p->ndim; d++) v->shape[d] = p->shape[d];
    }
    for (int i = 0; i < net->n_sv; i++) {
        const dp_sview *s = &net->sv[i];
        st_view *v = &tl->v[tl->n++];
        v->name = s->name, v->dtype = ST_F32, v->ndim = 1, v->shape[0] = s->numel;
        v->data = net->stats + s->off;
        if (s->kind == 1) { /* after running_var: the BN's counter */
            char *nm = tl->names + 128 * (size_t)tl->n;
            const dp_node *nd = &net->nodes[s->node];
            snprintf(nm, 128, "%s.num_batches_tracked", nd->name);
            tl->nbt[s->node] = nd->nbt;
            v = &tl->v[tl->n++];
            v->name = nm, v->dtype = ST_I64, v->ndim = 0, v->data = &tl->nbt[s->node];
        }
    }
    if (with_opt && m->sgd.buf)
        for (int i = 0; i < net->n_pv; i++) {
            const dp_pview *p = &net->pv[i];
            char *nm = tl->names + 128 * (size_t)tl->n;
            snprintf(nm, 128, "optimizer.momentum_buffer.%s", p->name);
            st_view *v = &tl->v[tl->n++];
            v->name = nm, v->dtype = ST_F32, v->ndim = p->ndim, v->data = m->sgd.buf + p->off;
            for (int d = 0; d < p->ndim; d++) v->shape[d] = p->shape[d];
        }
    return DP_OK;
}

static void list_free(tensor_list *tl)
{
    free(tl->v);
    free(tl->names);
    free(tl->nbt);
}

static char *json_of(cJSON *j)
{
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

int dp_model_save(const dp_model *m, const char *path, const char *const *keys,
                  const char *const *vals, int n, char *err, size_t errlen)
{
    if (!m || !path || (n > 0 && (!keys || !vals))) return DP_ERR_NULL;
    dp_model_info info;
    int rc = dp_model_info_get((dp_model *)m, &info);
    if (rc) return rc;
    tensor_list tl;
    if ((rc = list_tensors(m, 1, &tl))) {
        list_free(&tl);
        return rc;
    }
    char num[5][32];
    snprintf(num[0], 32, "%d", m->cfg.in_ch);
    snprintf(num[1], 32, "%d", m->cfg.size);
    snprintf(num[2], 32, "%d", m->cfg.classes);
    snprintf(num[3], 32, "%.9g", (double)m->cfg.width);
    snprintf(num[4], 32, "%lld", m->steps);
    cJSON *al = cJSON_CreateArray(), *sz = cJSON_CreateArray(), *op = cJSON_CreateObject();
    for (int i = 0; i < info.n_alphas; i++) {
        const double a[2] = {info.alphas[i][0], info.alphas[i][1]};
        cJSON_AddItemToArray(al, cJSON_CreateDoubleArray(a, 2));
    }
    for (int i = 0; i < info.n_stages; i++)
        cJSON_AddItemToArray(sz, cJSON_CreateIntArray(info.sizes[i], 2));
    cJSON_AddStringToObject(op, "type", "sgd");
    cJSON_AddNumberToObject(op, "momentum", m->sgd.momentum);
    cJSON_AddNumberToObject(op, "weight_decay", m->sgd.weight_decay);
    cJSON_AddBoolToObject(op, "nesterov", m->sgd.nesterov);
    cJSON_AddBoolToObject(op, "has_momentum_buffers", m->sgd.buf != NULL);
    char *js[3] = {json_of(al), json_of(sz), json_of(op)};
    const int own = 11;
    const char **k = calloc((size_t)(own + (n > 0 ? n : 0)), sizeof(char *));
    const char **v = calloc((size_t)(own + (n > 0 ? n : 0)), sizeof(char *));
    if (!k || !v || !js[0] || !js[1] || !js[2]) {
        rc = DP_ERR_NOMEM;
        goto out;
    }
    const char *ok[] = {"format", "model", "variant", "in_ch", "size", "classes", "width",
                        "alphas", "sizes", "optimizer", "steps"};
    const char *ov[] = {FORMAT_TAG, dp_arch_name(m->cfg.arch), dp_pool_name(m->cfg.pool),
                        num[0], num[1], num[2], num[3], js[0], js[1], js[2], num[4]};
    int nm = 0;
    for (int i = 0; i < own; i++) k[nm] = ok[i], v[nm++] = ov[i];
    for (int i = 0; i < n; i++) {
        int dup = 0;
        for (int j = 0; j < own; j++) dup |= strcmp(keys[i], ok[j]) == 0;
        if (dup) {
            errf(err, errlen, path, "metadata key is reserved:", keys[i]);
            rc = DP_ERR_ARG;
            goto out;
        }
        k[nm] = keys[i], v[nm++] = vals[i];
    }
    rc = st_save(path, tl.v, tl.n, k, v, nm, err, errlen);
out:
    free(k);
    free(v);
    for (int i = 0; i < 3; i++) cJSON_free(js[i]);
    list_free(&tl);
    return rc;
}

static int same_shape(const st_view *a, const st_view *b)
{
    if (a->dtype != b->dtype || a->ndim != b->ndim) return 0;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d]) return 0;
    return 1;
}

static void shape_str(const st_view *v, char *out, size_t n)
{
    size_t k = (size_t)snprintf(out, n, "%s[", v->dtype == ST_F32 ? "F32" : v->dtype == ST_I64 ? "I64" : "I32");
    for (int d = 0; d < v->ndim && k < n; d++)
        k += (size_t)snprintf(out + k, n - k, "%s%lld", d ? ", " : "", v->shape[d]);
    if (k < n) snprintf(out + k, n - k, "]");
}

/* ---- names ----------------------------------------------------------------------- */

/* The name an older version gave a tensor (docs/models.md, "Names against
 * torchvision"): MobileNetV2's classifier was "classifier" until it took
 * torchvision's "classifier.1" (its classifier is Dropout + Linear).  The old
 * name of name, also under "optimizer.momentum_buffer.", in buf; NULL if none. */
static const char *legacy_name(int arch, const char *name, char *buf, size_t n)
{
    static const char *const pre[2] = {"", "optimizer.momentum_buffer."};
    if (arch != DP_MOBILENETV2) return NULL;
    for (int i = 0; i < 2; i++) {
        const size_t l = strlen(pre[i]);
        if (strncmp(name, pre[i], l) == 0 && strncmp(name + l, "classifier.1.", 13) == 0) {
            snprintf(buf, n, "%sclassifier.%s", pre[i], name + l + 13);
            return buf;
        }
    }
    return NULL;
}

/* The tensor of a model of arch called name in f: under its name, else under
 * the name an older version gave it. */
static const st_view *find_tensor(const st_file *f, int arch, const char *name)
{
    const st_view *t = st_find(f, name);
    char old[160];
    const char *o = t ? NULL : legacy_name(arch, name, old, sizeof old);
    return o ? st_find(f, o) : t;
}

/* Whether the file's tensor name is one of the n model tensors v (by its name,
 * or by the older name of one that the file does not hold under its own). */
static int known_tensor(const st_file *f, int arch, const char *name, const st_view *v, int n)
{
    char old[160];
    for (int j = 0; j < n; j++) {
        if (strcmp(v[j].name, name) == 0) return 1;
        const char *o = legacy_name(arch, v[j].name, old, sizeof old);
        if (o && strcmp(o, name) == 0 && !st_find(f, v[j].name)) return 1;
    }
    return 0;
}

/* ---- reading the metadata ---------------------------------------------------- */

/* The ranges a checkpoint's metadata must lie in (docs/guide.md): what the
 * library builds and the CLI can train (IDX sides up to 4096, doubled by the
 * "large" variant), with room to spare, and nothing near int overflow. */
#define META_MAX_IN_CH 4096
#define META_MAX_SIZE 16384
#define META_MAX_CLASSES 1000000
#define META_MAX_COUNT 9007199254740992LL /* 2^53: a count a JSON number holds exactly */

/* s as a whole-string decimal integer in [lo, hi]; 0, or -1. */
static int meta_int(const char *s, long long lo, long long hi, long long *v)
{
    if (!s || !(isdigit((unsigned char)s[0]) || (s[0] == '-' && isdigit((unsigned char)s[1]))))
        return -1;
    char *end;
    errno = 0;
    const long long a = strtoll(s, &end, 10);
    if (*end || errno || a < lo || a > hi) return -1;
    *v = a;
    return 0;
}

/* "path: metadata 'key' is missing|= 'value', expected what" (a value cut to 40 bytes). */
static int meta_bad(char *err, size_t n, const char *path, const char *key, const char *got,
                    const char *what)
{
    if (err && n) {
        if (got)
            snprintf(err, n, "%s: metadata '%s' = '%.40s%s', expected %s", path, key, got,
                     strlen(got) > 40 ? "..." : "", what);
        else
            snprintf(err, n, "%s: metadata '%s' is missing, expected %s", path, key, what);
    }
    return DP_ERR_FORMAT;
}

static int steps_meta(const char *steps, long long *v, const char *path, char *err, size_t errlen)
{
    *v = 0;
    if (!steps) return DP_OK; /* files written by other tools */
    if (meta_int(steps, 0, META_MAX_COUNT, v))
        return meta_bad(err, errlen, path, "steps", steps, "an integer in [0, 2^53]");
    return DP_OK;
}

static int check_meta(const st_file *f, const char *key, const char *want, const char *path,
                      char *err, size_t errlen)
{
    const char *got = st_meta(f, key);
    if (got && strcmp(got, want) == 0) return DP_OK;
    if (err && errlen)
        snprintf(err, errlen, "%s: checkpoint has %s = %s, this model has %s", path, key,
                 got ? got : "(none)", want);
    return DP_ERR_FORMAT;
}

int dp_model_load(dp_model *m, const char *path, char *err, size_t errlen)
{
    if (!m || !path) return DP_ERR_NULL;
    st_file *f;
    int rc = st_load(path, &f, err, errlen);
    if (rc) return rc;
    char num[3][32];
    snprintf(num[0], 32, "%d", m->cfg.in_ch);
    snprintf(num[1], 32, "%d", m->cfg.classes);
    snprintf(num[2], 32, "%.9g", (double)m->cfg.width);
    /* width compared as a float, as dp_checkpoint_config reads it: another writer's
     * "2.16" is the float that %.9g prints as 2.16000009 */
    const char *fw = st_meta(f, "width");
    char *end = NULL;
    if (fw && (float)strtod(fw, &end) == m->cfg.width && end != fw && !*end && strlen(fw) < 32)
        snprintf(num[2], 32, "%s", fw);
    if ((rc = check_meta(f, "model", dp_arch_name(m->cfg.arch), path, err, errlen)) ||
        (rc = check_meta(f, "variant", dp_pool_name(m->cfg.pool), path, err, errlen)) ||
        (rc = check_meta(f, "in_ch", num[0], path, err, errlen)) ||
        (rc = check_meta(f, "classes", num[1], path, err, errlen)) ||
        (rc = check_meta(f, "width", num[2], path, err, errlen))) {
        st_free(f);
        return rc;
    }
    tensor_list tl;
    char first[128] = "";
    if (m->net.n_pv > 0)
        snprintf(first, sizeof first, "optimizer.momentum_buffer.%s", m->net.pv[0].name);
    /* a frozen model (dp_infer_load) has no momentum buffers: the file's are skipped */
    const int in_file = m->net.n_pv > 0 && st_find(f, first) != NULL, has_opt = in_file && !m->frozen;
    if (has_opt && !m->sgd.buf && (rc = dp_sgd_init(&m->sgd, &m->net))) {
        st_free(f);
        return rc;
    }
    if ((rc = list_tensors(m, has_opt, &tl))) goto out;
    /* every tensor present with the right shape, nothing unknown */
    for (int i = 0; i < tl.n; i++) {
        const st_view *t = find_tensor(f, m->cfg.arch, tl.v[i].name);
        char want[96], got[96];
        shape_str(&tl.v[i], want, sizeof want);
        if (!t) {
            if (err && errlen)
                snprintf(err, errlen, "%s: missing tensor '%s' (expected %s)", path, tl.v[i].name, want);
            rc = DP_ERR_FORMAT;
            goto out;
        }
        if (!same_shape(t, &tl.v[i])) {
            shape_str(t, got, sizeof got);
            if (err && errlen)
                snprintf(err, errlen, "%s: tensor '%s' is %s, expected %s", path, tl.v[i].name, got, want);
            rc = DP_ERR_FORMAT;
            goto out;
        }
    }
    if (st_count(f) != tl.n) {
        for (int i = 0; i < st_count(f); i++) {
            const char *name = st_get(f, i)->name;
            int known = known_tensor(f, m->cfg.arch, name, tl.v, tl.n);
            if (in_file && m->frozen) /* each checked as it is read by a model that trains */
                known |= strncmp(name, "optimizer.momentum_buffer.", 26) == 0;
            if (!known) {
                errf(err, errlen, path, "unexpected tensor", name);
                rc = DP_ERR_FORMAT;
                goto out;
            }
        }
    }
    /* the values: finite, and every DynOPool alpha > 0 (an output side is
     * in / alpha, docs/operator.md) */
    for (int i = 0; i < tl.n; i++) {
        const st_view *t = find_tensor(f, m->cfg.arch, tl.v[i].name);
        const float *x = t->data;
        const int alpha = i < m->net.n_pv && m->net.pv[i].positive;
        const size_t nel = tl.v[i].dtype == ST_F32 ? st_numel(t) : 0;
        for (size_t k = 0; k < nel; k++)
            if (!isfinite(x[k]) || (alpha && !(x[k] > 0.0f))) {
                if (err && errlen)
                    snprintf(err, errlen, "%s: tensor '%s' element %zu is %g, expected %s", path,
                             tl.v[i].name, k, (double)x[k], alpha ? "a finite alpha > 0" : "a finite number");
                rc = DP_ERR_FORMAT;
                goto out;
            }
    }
    /* all checked: copy */
    for (int i = 0; i < tl.n; i++) {
        const st_view *t = find_tensor(f, m->cfg.arch, tl.v[i].name);
        const size_t bytes = st_numel(t) * st_elem_size(t->dtype);
        memcpy((void *)tl.v[i].data, t->data, bytes);
    }
    for (int i = 0; i < m->net.n_sv; i++) /* the counters of the nodes with buffers (BN) */
        m->net.nodes[m->net.sv[i].node].nbt = tl.nbt[m->net.sv[i].node];
    if (has_opt) m->sgd.started = 1;
    long long steps;
    if ((rc = steps_meta(st_meta(f, "steps"), &steps, path, err, errlen))) goto out;
    m->steps = steps;
    /* keep the metadata for dp_model_meta */
    dp_model_meta_clear(m);
    {
        static const char *const keys[] = {"format", "model", "variant", "in_ch", "size",
                                           "classes", "width", "alphas", "sizes", "optimizer",
                                           "steps", "epoch", "config", "history", "dataset",
                                           "run", "progress"};
        for (size_t i = 0; !rc && i < sizeof keys / sizeof *keys; i++) {
            const char *val = st_meta(f, keys[i]);
            if (val) rc = dp_model_meta_add(m, keys[i], val);
        }
    }
out:
    list_free(&tl);
    st_free(f);
    return rc;
}

/* ---- initial weights (--init) ------------------------------------------------------- */

int dp_model_load_weights(dp_model *m, const char *path, char *err, size_t errlen)
{
    if (!m || !path) return DP_ERR_NULL;
    if (err && errlen) err[0] = '\0';
    st_file *f;
    int rc = st_load(path, &f, err, errlen);
    if (rc) return rc;
    const dp_net *net = &m->net;
    const int arch = m->cfg.arch;
    tensor_list tl;
    if ((rc = list_tensors(m, 0, &tl))) goto out;
    /* tl: the parameters (net->pv order), then per BN running_mean, running_var,
     * num_batches_tracked; the alphas (group 1) are not taken from the file, a
     * BN's counter may be absent */
    for (int i = 0; i < tl.n; i++) {
        const int alpha = i < net->n_pv && net->pv[i].group != 0, nbt = tl.v[i].dtype == ST_I64;
        const st_view *t = find_tensor(f, arch, tl.v[i].name);
        char want[96], got[96];
        shape_str(&tl.v[i], want, sizeof want);
        if (alpha) {
            if (t) {
                if (err && errlen)
                    snprintf(err, errlen, "%s: tensor '%s' is a learned resizing factor of %s (%s): initial weights "
                             "set weights and batch-norm statistics only, the factors start at their initial values",
                             path, tl.v[i].name, dp_arch_name(arch), dp_pool_name(m->cfg.pool));
                rc = DP_ERR_FORMAT;
                goto out;
            }
            continue;
        }
        if (!t && nbt) continue;
        if (!t || !same_shape(t, &tl.v[i])) {
            if (t) shape_str(t, got, sizeof got);
            if (err && errlen) {
                if (t)
                    snprintf(err, errlen, "%s: tensor '%s' is %s, %s (%s) needs %s", path, tl.v[i].name, got,
                             dp_arch_name(arch), dp_pool_name(m->cfg.pool), want);
                else
                    snprintf(err, errlen, "%s: missing tensor '%s' (%s (%s) needs %s)", path, tl.v[i].name,
                             dp_arch_name(arch), dp_pool_name(m->cfg.pool), want);
            }
            rc = DP_ERR_FORMAT;
            goto out;
        }
        const float *x = t->data;
        const size_t nel = tl.v[i].dtype == ST_F32 ? st_numel(t) : 0;
        for (size_t k = 0; k < nel; k++)
            if (!isfinite(x[k])) {
                if (err && errlen)
                    snprintf(err, errlen, "%s: tensor '%s' element %zu is %g, expected a finite number", path,
                             tl.v[i].name, k, (double)x[k]);
                rc = DP_ERR_FORMAT;
                goto out;
            }
    }
    for (int i = 0; i < st_count(f); i++) {
        const char *name = st_get(f, i)->name;
        if (!known_tensor(f, arch, name, tl.v, tl.n)) {
            if (err && errlen)
                snprintf(err, errlen, "%s: unexpected tensor '%s': %s (%s) has no such weight or buffer", path, name,
                         dp_arch_name(arch), dp_pool_name(m->cfg.pool));
            rc = DP_ERR_FORMAT;
            goto out;
        }
    }
    /* all checked: copy (a BN's counter only when the file has it) */
    for (int i = 0; i < tl.n; i++) {
        const st_view *t = find_tensor(f, arch, tl.v[i].name);
        if (t && !(i < net->n_pv && net->pv[i].group != 0))
            memcpy((void *)tl.v[i].data, t->data, st_numel(t) * st_elem_size(t->dtype));
    }
    for (int i = 0; i < net->n_sv; i++)
        if (net->sv[i].kind == 1) m->net.nodes[net->sv[i].node].nbt = tl.nbt[net->sv[i].node];
out:
    list_free(&tl);
    st_free(f);
    return rc;
}

/* The tensors a checkpoint of c must hold (names, dtypes, shapes, from the
 * network's layout: nothing of its size is allocated) against those of f, so
 * that metadata which describe a larger network than the file holds are refused
 * before anything is built for them. */
static int check_layout(const st_file *f, const dp_model_config *c, const char *path, char *err,
                        size_t errlen)
{
    dp_net net;
    const dp_arch_cfg ac = dp_arch_cfg_of(c);
    int rc = dp_net_init(&net, DP_BACKEND_REF);
    if (!rc) rc = dp_build_layout(&net, &ac);
    char cfgs[160];
    snprintf(cfgs, sizeof cfgs, "metadata model %s, variant %s, in_ch %d, classes %d, width %.7g",
             dp_arch_name(c->arch), dp_pool_name(c->pool), c->in_ch, c->classes, (double)c->width);
    if (rc && err && errlen) snprintf(err, errlen, "%s: %s: no network: %s", path, cfgs, dp_strerror(rc));
    for (int i = 0; !rc && i < net.n_pv + net.n_sv; i++) {
        st_view w = {0};
        if (i < net.n_pv) {
            const dp_pview *p = &net.pv[i];
            w.name = p->name, w.dtype = ST_F32, w.ndim = p->ndim;
            for (int d = 0; d < p->ndim; d++) w.shape[d] = p->shape[d];
        } else {
            const dp_sview *sv = &net.sv[i - net.n_pv];
            w.name = sv->name, w.dtype = ST_F32, w.ndim = 1, w.shape[0] = sv->numel;
        }
        const st_view *t = find_tensor(f, c->arch, w.name);
        if (t && same_shape(t, &w)) continue;
        char want[96], got[96] = "";
        shape_str(&w, want, sizeof want);
        if (t) shape_str(t, got, sizeof got);
        if (err && errlen)
            snprintf(err, errlen, "%s: %s imply tensor '%s' %s, the file %s%s", path, cfgs, w.name, want,
                     t ? "holds " : "has no such tensor", got);
        rc = DP_ERR_FORMAT;
    }
    dp_net_free(&net);
    return rc;
}

int dp_checkpoint_config(const char *path, dp_model_config *cfg, char *err, size_t errlen)
{
    if (!path || !cfg) return DP_ERR_NULL;
    st_file *f;
    int rc = st_load(path, &f, err, errlen);
    if (rc) return rc;
    dp_model_config c = dp_model_defaults();
    const char *fmt = st_meta(f, "format"), *mo = st_meta(f, "model"), *va = st_meta(f, "variant");
    const char *ic = st_meta(f, "in_ch"), *sz = st_meta(f, "size"), *cl = st_meta(f, "classes");
    const char *wd = st_meta(f, "width");
    long long v;
    char *end = NULL;
    const double w = wd ? strtod(wd, &end) : 0.0;
    if (!fmt || strcmp(fmt, FORMAT_TAG) != 0)
        rc = meta_bad(err, errlen, path, "format", fmt, "'" FORMAT_TAG "' (not a dynopool checkpoint)");
    else if (!mo || (c.arch = dp_arch_parse(mo)) < 0)
        rc = meta_bad(err, errlen, path, "model", mo,
                      "vgg16, resnet50, mobilenetv2, efficientnet-b0, efficientnet-b1 or hrnet-w48");
    else if (!va || (c.pool = dp_pool_parse(va)) < 0)
        rc = meta_bad(err, errlen, path, "variant", va, "human, dynopool or shape-adaptor");
    else if (meta_int(ic, 1, META_MAX_IN_CH, &v) || (c.in_ch = (int)v, 0))
        rc = meta_bad(err, errlen, path, "in_ch", ic, "an integer in [1, 4096]");
    else if (meta_int(sz, 2, META_MAX_SIZE, &v) || (c.size = (int)v, 0))
        rc = meta_bad(err, errlen, path, "size", sz, "an integer in [2, 16384]");
    else if (meta_int(cl, 1, META_MAX_CLASSES, &v) || (c.classes = (int)v, 0))
        rc = meta_bad(err, errlen, path, "classes", cl, "an integer in [1, 1000000]");
    else if (!wd || end == wd || *end || !(w > 0.0 && w <= 64.0) /* in float's range before the cast */ ||
             !dp_arch_width_ok(c.arch, (float)w))
        rc = meta_bad(err, errlen, path, "width", wd,
                      c.arch == DP_HRNET ? "1 (W48) or HRNet's channel number, an integer in [2, 64]"
                                         : "a number in (0, 16]");
    else if (!(rc = check_layout(f, (c.width = (float)w, &c), path, err, errlen)))
        rc = steps_meta(st_meta(f, "steps"), &v, path, err, errlen);
    if (!rc) *cfg = c;
    st_free(f);
    return rc;
}

/* ---- inference (dynopool/infer.h) ------------------------------------------- */

int dp_infer_load(const char *path, dp_infer **out, char *err, size_t errlen)
{
    if (!path || !out) return DP_ERR_NULL;
    *out = NULL;
    if (err && errlen) err[0] = '\0';
    dp_model_config cfg;
    dp_model *m = NULL;
    int rc = dp_checkpoint_config(path, &cfg, err, errlen);
    if (!rc && (rc = dp_model_create_frozen(&cfg, &m)) && err && errlen)
        snprintf(err, errlen, "%s: cannot build its %s (%s, width %g) for %dx%dx%d inputs: %s", path,
                 dp_arch_name(cfg.arch), dp_pool_name(cfg.pool), (double)cfg.width, cfg.in_ch, cfg.size, cfg.size,
                 dp_strerror(rc));
    if (!rc) rc = dp_model_load(m, path, err, errlen);
    if (rc) {
        dp_model_free(m);
        return rc;
    }
    if ((rc = dp_infer_adopt(m, out)) && err && errlen)
        snprintf(err, errlen, "%s: its alphas give no valid map sizes for %dx%d inputs: %s", path, cfg.size,
                 cfg.size, dp_strerror(rc));
    return rc;
}
