/* run.c — the run folder: its files, written and read with cJSON (run.h). */
#define _XOPEN_SOURCE 700 /* realpath */
#include "run.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int run_default_max_side(int input) { return 2 * input; }

/* dir/file into b[cap]. */
static void join(char *b, size_t cap, const char *dir, const char *file) { snprintf(b, cap, "%s/%s", dir, file); }

/* [[a, b], ...] of n pairs of ints (v) or floats (f). */
static cJSON *pairs_json(const int (*v)[2], const float (*f)[2], int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) {
        cJSON *p = cJSON_CreateArray();
        cJSON_AddItemToArray(p, cJSON_CreateNumber(v ? v[i][0] : f[i][0]));
        cJSON_AddItemToArray(p, cJSON_CreateNumber(v ? v[i][1] : f[i][1]));
        cJSON_AddItemToArray(a, p);
    }
    return a;
}

/* x to `digits` significant digits (0: as it is), so that JSON prints it short. */
static double sig(double x, int digits)
{
    char b[40];
    if (!digits || !isfinite(x)) return x;
    snprintf(b, sizeof b, "%.*g", digits, x);
    return strtod(b, NULL);
}

/* [[d[0][0]*scale, d[0][1]*scale], ...]: n pairs of doubles, to `digits`
 * significant digits (0: all, printed to round trip). */
static cJSON *dpairs_json(const double (*d)[2], int n, double scale, int digits)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) {
        const double v[2] = {sig(d[i][0] * scale, digits), sig(d[i][1] * scale, digits)};
        if (digits) {
            cJSON_AddItemToArray(a, cJSON_CreateDoubleArray(v, 2));
            continue;
        }
        /* cJSON's own printer may drop the last bit (it compares with a tolerance):
         * a resumed run must read back the very sums it saved */
        cJSON *p = cJSON_CreateArray();
        cJSON_AddItemToArray(p, cli_json_fixed(v[0], "%.17g"));
        cJSON_AddItemToArray(p, cli_json_fixed(v[1], "%.17g"));
        cJSON_AddItemToArray(a, p);
    }
    return a;
}

/* o[key], when present, a list of n pairs of numbers into d; 0 (also when absent:
 * d is left as it was), or -1 with what it should be in msg. */
static int dpairs_from_json(const cJSON *o, const char *key, double (*d)[2], int *n, char *msg, size_t cap)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!a) return 0;
    const int k = cJSON_GetArraySize(a);
    if (!cJSON_IsArray(a) || k > DP_MAX_STAGES || (*n >= 0 && k != *n)) goto bad;
    for (int i = 0; i < k; i++) {
        const cJSON *p = cJSON_GetArrayItem(a, i);
        if (!cJSON_IsArray(p) || cJSON_GetArraySize(p) != 2) goto bad;
        for (int j = 0; j < 2; j++) {
            const cJSON *e = cJSON_GetArrayItem(p, j);
            if (!cJSON_IsNumber(e) || !isfinite(e->valuedouble)) goto bad;
            d[i][j] = e->valuedouble;
        }
    }
    *n = k;
    return 0;
bad:
    snprintf(msg, cap, "field '%s' is invalid, expected a list of at most %d pairs of finite numbers%s", key,
             DP_MAX_STAGES, *n >= 0 ? ", as many as the other alpha field" : "");
    return -1;
}

/* dir/name := o, formatted, atomically; 0, or -1 after saying why. */
static int write_json(const char *dir, const char *name, const cJSON *o)
{
    char path[4200];
    join(path, sizeof path, dir, name);
    char *s = cJSON_Print(o);
    const int rc = s ? cli_write_text(path, s) : -1;
    free(s);
    if (rc) cli_fail("cannot write %s: %s", path, strerror(errno));
    return rc;
}

void run_progress_add(run_progress *p, const dp_step_stats *st, int nb)
{
    p->n_ga = st->n_galpha;
    for (int i = 0; i < st->n_galpha; i++)
        for (int j = 0; j < 2; j++) p->ga_task[i][j] += st->galpha_task[i][j], p->ga_cost[i][j] += st->galpha_cost[i][j];
    p->loss += st->loss * nb, p->task += st->loss_task * nb, p->gmacs += st->loss_gmacs * nb;
    p->correct += st->correct, p->seen += nb, p->capped += st->capped;
    p->batch++;
}

/* ---- the folder ---------------------------------------------------------------- */

int run_lock(const char *dir)
{
    char path[4200];
    join(path, sizeof path, dir, ".lock");
    const int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0666);
    if (fd < 0) return cli_fail("cannot lock the run folder %s: %s: %s", dir, path, strerror(errno)), -1;
    if (flock(fd, LOCK_EX | LOCK_NB)) {
        const int e = errno;
        char pid[24] = "";
        const ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = 0;
        pid[strspn(pid, "0123456789")] = 0;
        if (e == EWOULDBLOCK)
            cli_fail("%s is in use by another 'dynopool train'%s%s%s, which holds %s; one trainer at a time per "
                     "run folder: wait for it to finish or stop it",
                     dir, pid[0] ? " (PID " : "", pid, pid[0] ? ")" : "", path);
        else cli_fail("cannot lock the run folder %s: %s: %s", dir, path, strerror(e));
        close(fd);
        return -1;
    }
    struct stat st; /* the PID is information only: never written into a file linked elsewhere */
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1 && ftruncate(fd, 0) == 0) {
        char b[24];
        const int n = snprintf(b, sizeof b, "%ld\n", (long)getpid());
        if (pwrite(fd, b, (size_t)n, 0) != n) (void)0;
    }
    return fd;
}

void run_remove_stale_temps(const char *dir)
{
    static const char *const own[] = {"run.json", "summary.json", "metrics.jsonl", RUN_CHECKPOINT, RUN_BEST};
    DIR *d = opendir(dir);
    const struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        for (size_t k = 0; k < sizeof own / sizeof own[0]; k++) {
            const size_t l = strlen(own[k]);
            if (!strncmp(e->d_name, own[k], l) &&
                (!strcmp(e->d_name + l, ".tmp") || !strncmp(e->d_name + l, ".tmp.", 5))) {
                unlinkat(dirfd(d), e->d_name, 0);
                break;
            }
        }
    if (d) closedir(d);
}

/* ---- run.json ------------------------------------------------------------------ */

static cJSON *settings_json(const run_cfg *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", dp_arch_name(r->cfg.arch));
    cJSON_AddStringToObject(o, "pool", dp_pool_name(r->cfg.pool));
    cJSON_AddNumberToObject(o, "width", r->cfg.width);
    if (r->seg) cJSON_AddStringToObject(o, "task", "seg"); /* absent: classification */
    cJSON_AddStringToObject(o, "data", r->data);
    cJSON_AddStringToObject(o, "dataset", cli_data_name(r->data));
    cJSON_AddStringToObject(o, "kind", r->kind >= 0 ? dp_data_kind_name(r->kind) : "auto");
    cJSON_AddNumberToObject(o, "classes_opt", r->classes);
    cJSON_AddNumberToObject(o, "input_opt", r->input);
    cJSON_AddStringToObject(o, "variant", dp_variant_name(r->variant));
    cJSON_AddNumberToObject(o, "limit", r->limit);
    cJSON_AddNumberToObject(o, "limit_test", r->limit_test);
    if (r->val_split > 0) cJSON_AddNumberToObject(o, "val_split", r->val_split); /* absent: none */
    if (r->resize) cJSON_AddNumberToObject(o, "resize", r->resize);                /* absent: none */
    if (r->init[0]) cJSON_AddStringToObject(o, "init", r->init);                            /* absent: none */
    if (r->n_alpha_init) cJSON_AddItemToObject(o, "alpha_init", cJSON_CreateFloatArray(r->alpha_init, r->n_alpha_init));
    if (r->alpha_momentum >= 0) cJSON_AddNumberToObject(o, "alpha_momentum", r->alpha_momentum); /* absent: momentum's */
    if (r->alpha_trace) cJSON_AddNumberToObject(o, "alpha_trace", r->alpha_trace);           /* absent: none */
    cJSON_AddNumberToObject(o, "input", r->cfg.size);
    cJSON_AddNumberToObject(o, "in_ch", r->cfg.in_ch);
    cJSON_AddNumberToObject(o, "classes", r->cfg.classes);
    cJSON_AddNumberToObject(o, "epochs", r->epochs);
    cJSON_AddNumberToObject(o, "batch", r->batch);
    cJSON_AddNumberToObject(o, "lr", r->lr);
    cJSON_AddNumberToObject(o, "alpha_lr", r->alpha_lr);
    cJSON_AddNumberToObject(o, "momentum", r->momentum);
    cJSON_AddBoolToObject(o, "nesterov", r->nesterov);
    cJSON_AddNumberToObject(o, "weight_decay", r->wd);
    cJSON_AddNumberToObject(o, "lambda", r->lambda);
    cJSON_AddNumberToObject(o, "max_side", r->max_side);
    cJSON_AddNumberToObject(o, "seed", (double)r->seed);
    return o;
}

int run_human_info(const run_cfg *r, dp_model_info *hi)
{
    dp_model *h = NULL;
    dp_model_config hc = r->cfg;
    hc.pool = DP_POOL_HUMAN;
    memset(hi, 0, sizeof *hi);
    int rc = dp_model_create(&hc, &h);
    if (!rc) rc = dp_model_info_get(h, hi);
    dp_model_free(h);
    return rc;
}

void run_set_command(run_cfg *r, int argc, char **argv)
{
    size_t k = (size_t)snprintf(r->command, sizeof r->command, "%s train", cli_prog);
    for (int i = 0; i < argc && k < sizeof r->command; i++) {
        const char *a = argv[i];
        if (a[0] && !a[strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_./=,:+@%")]) {
            k += (size_t)snprintf(r->command + k, sizeof r->command - k, " %s", a);
            continue;
        }
        k += (size_t)snprintf(r->command + k, sizeof r->command - k, " '");
        for (; *a && k < sizeof r->command; a++) /* ' as '\'' */
            k += (size_t)snprintf(r->command + k, sizeof r->command - k, *a == '\'' ? "'\\''" : "%c", *a);
        if (k < sizeof r->command) k += (size_t)snprintf(r->command + k, sizeof r->command - k, "'");
    }
}

int run_has_settings(const char *dir)
{
    char path[4200];
    join(path, sizeof path, dir, "run.json");
    return access(path, F_OK) == 0;
}

int run_start(const run_cfg *r)
{
    char metrics[4200];
    cJSON *o = settings_json(r);
    dp_model_info hi;
    if (!run_human_info(r, &hi)) cJSON_AddItemToObject(o, "human_sizes", pairs_json(hi.sizes, NULL, hi.n_stages));
    if (r->command[0]) cJSON_AddStringToObject(o, "command", r->command);
    const int rc = write_json(r->out, "run.json", o);
    cJSON_Delete(o);
    join(metrics, sizeof metrics, r->out, "metrics.jsonl");
    remove(metrics);
    return rc;
}

int run_create(const run_cfg *r, const char *ck)
{
    struct stat st;
    if (cli_mkdir_p(r->out)) return cli_fail("cannot create %s: %s", r->out, strerror(errno));
    if (run_lock(r->out) < 0) return 1; /* before the look: a run starting there now has no checkpoint yet */
    if (stat(ck, &st) == 0) {
        cli_fail("%s already holds a run; continue it with '%s train --resume %s', or choose another --out", r->out,
                 cli_prog, r->out);
        return EXIT_USAGE;
    }
    run_remove_stale_temps(r->out);
    return run_start(r) ? 1 : 0;
}

/* The text of the JSON file path parsed, or NULL with "PATH: what" in msg. */
static cJSON *read_json(const char *path, char *msg, size_t cap)
{
    char *buf = cli_read_file(path);
    if (!buf) {
        if (snprintf(msg, cap, "%s: cannot open: %s", path, strerror(errno)) < 0) msg[0] = 0;
        return NULL;
    }
    cJSON *o = cJSON_Parse(buf);
    if (!o && snprintf(msg, cap, "%s: byte %ld: not valid JSON", path,
                       cJSON_GetErrorPtr() ? (long)(cJSON_GetErrorPtr() - buf) : 0L) < 0)
        msg[0] = 0;
    free(buf);
    return o;
}

/* run.json's names: model, pool, data, kind, variant, nesterov; NULL, or the
 * first bad field with what it should be in *want. */
static const char *settings_names(const cJSON *o, run_cfg *r, const char **want)
{
    char s[64];
    if (cli_json_str(o, "model", s, sizeof s) || (r->cfg.arch = dp_arch_parse(s)) < 0)
        return *want = "vgg16, resnet50, mobilenetv2, efficientnet-b0 or efficientnet-b1", "model";
    if (cli_json_str(o, "pool", s, sizeof s) || (r->cfg.pool = dp_pool_parse(s)) < 0)
        return *want = "human, dynopool or shape-adaptor", "pool";
    if (cli_json_str(o, "data", r->data, sizeof r->data))
        return *want = "a folder name shorter than 2048 bytes", "data";
    if (cli_json_str(o, "kind", s, sizeof s) ||
        (r->kind = strcmp(s, "auto") ? dp_data_kind_parse(s) : DP_DATA_AUTO) < DP_DATA_AUTO)
        return *want = "auto, idx, cifar10, cifar100 or folder", "kind";
    if (cli_json_str(o, "variant", s, sizeof s) || (r->variant = dp_variant_parse(s)) < 0)
        return *want = "none, stretch-v, tile or large", "variant";
    if (!cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(o, "nesterov"))) return *want = "true or false", "nesterov";
    r->seg = 0;
    if (cJSON_GetObjectItemCaseSensitive(o, "task")) { /* optional: absent means classification */
        if (cli_json_str(o, "task", s, sizeof s) || (strcmp(s, "seg") && strcmp(s, "classify")))
            return *want = "seg or classify", "task";
        r->seg = !strcmp(s, "seg");
    }
    r->nesterov = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "nesterov"));
    return NULL;
}

/* Fills r from run.json's object o; 0, or -1 with the first bad field and what
 * it should be in msg.  The ranges are those of train's options; 0 in
 * classes_opt and input_opt means "not given". */
static int settings_from_json(const cJSON *o, run_cfg *r, char *msg, size_t cap)
{
    const char *want, *bad = settings_names(o, r, &want);
    if (bad) {
        snprintf(msg, cap, "field '%s' is missing or invalid, expected %s", bad, want);
        return -1;
    }
    double v;
#define GET(key, dst, lo, hi, flags)                                    \
    if (cli_json_range(o, key, lo, hi, flags, &v, msg, cap)) return -1; \
    dst = v;
    GET("width", r->cfg.width, 0, r->seg ? RUN_MAX_SEG_WIDTH : RUN_MAX_WIDTH, CLI_OPEN_LO)
    GET("classes_opt", r->classes, 0, RUN_MAX_CLASSES, CLI_WHOLE)
    GET("input_opt", r->input, 0, RUN_MAX_INPUT, CLI_WHOLE)
    GET("limit", r->limit, 0, INT_MAX, CLI_WHOLE)
    GET("limit_test", r->limit_test, 0, INT_MAX, CLI_WHOLE)
    GET("epochs", r->epochs, 1, RUN_MAX_EPOCHS, CLI_WHOLE)
    GET("batch", r->batch, 1, RUN_MAX_BATCH, CLI_WHOLE)
    GET("lr", r->lr, 0, RUN_MAX_LR, CLI_OPEN_LO)
    GET("alpha_lr", r->alpha_lr, 0, RUN_MAX_LR, 0)
    GET("momentum", r->momentum, 0, 1, 0)
    GET("weight_decay", r->wd, 0, RUN_MAX_WD, 0)
    GET("lambda", r->lambda, 0, RUN_MAX_LAMBDA, 0)
    GET("max_side", r->max_side, 0, RUN_MAX_SIDE, CLI_WHOLE)
    GET("seed", r->seed, 0, RUN_MAX_SEED, CLI_WHOLE)
#undef GET
    const cJSON *vs = cJSON_GetObjectItemCaseSensitive(o, "val_split"); /* optional */
    if (vs && (!cJSON_IsNumber(vs) || !(vs->valuedouble > 0 && vs->valuedouble < 1))) {
        snprintf(msg, cap, "field 'val_split' is invalid, expected a number in (0, 1)");
        return -1;
    }
    r->val_split = vs ? vs->valuedouble : 0.0;
    r->resize = 0;
    if (cJSON_GetObjectItemCaseSensitive(o, "resize")) { /* optional */
        if (cli_json_range(o, "resize", RUN_MIN_INPUT, RUN_MAX_INPUT, CLI_WHOLE, &v, msg, cap)) return -1;
        r->resize = (int)v;
    }
    r->alpha_momentum = -1;
    if (cJSON_GetObjectItemCaseSensitive(o, "alpha_momentum")) { /* optional */
        if (cli_json_range(o, "alpha_momentum", 0, 1, 0, &v, msg, cap)) return -1;
        r->alpha_momentum = v;
    }
    r->alpha_trace = 0;
    if (cJSON_GetObjectItemCaseSensitive(o, "alpha_trace")) { /* optional */
        if (cli_json_range(o, "alpha_trace", 0, INT_MAX, CLI_WHOLE, &v, msg, cap)) return -1;
        r->alpha_trace = (int)v;
    }
    r->init[0] = 0;
    if (cJSON_GetObjectItemCaseSensitive(o, "init") && /* optional: recorded; the checkpoint has the weights */
        cli_json_str(o, "init", r->init, sizeof r->init)) {
        snprintf(msg, cap, "field 'init' is invalid, expected a path shorter than 2048 bytes");
        return -1;
    }
    const cJSON *ai = cJSON_GetObjectItemCaseSensitive(o, "alpha_init"); /* optional */
    r->n_alpha_init = 0;
    if (ai) {
        const int n = cJSON_GetArraySize(ai);
        if (!cJSON_IsArray(ai) || n < 1 || n > DP_MAX_STAGES) {
            snprintf(msg, cap, "field 'alpha_init' is invalid, expected a list of 1 to %d alphas", DP_MAX_STAGES);
            return -1;
        }
        for (int k = 0; k < n; k++) {
            const cJSON *e = cJSON_GetArrayItem(ai, k);
            if (!cJSON_IsNumber(e) || !(e->valuedouble >= RUN_MIN_ALPHA && e->valuedouble <= RUN_MAX_ALPHA)) {
                snprintf(msg, cap, "field 'alpha_init' item %d is invalid, expected a number in [%g, %g]", k,
                         RUN_MIN_ALPHA, RUN_MAX_ALPHA);
                return -1;
            }
            r->alpha_init[k] = (float)e->valuedouble;
        }
        r->n_alpha_init = n;
    }
    if (r->input && r->input < RUN_MIN_INPUT) {
        snprintf(msg, cap, "field 'input_opt' = %d, expected 0 (not given) or a side in [%d, %d]", r->input,
                 RUN_MIN_INPUT, RUN_MAX_INPUT);
        return -1;
    }
    if (r->max_side == 1) {
        snprintf(msg, cap, "field 'max_side' = 1, expected 0 (no cap) or a side in [2, %d]", RUN_MAX_SIDE);
        return -1;
    }
    return 0;
}

int run_read_settings(const char *dir, run_cfg *r, char *msg, size_t cap)
{
    char path[4200], why[256];
    join(path, sizeof path, dir, "run.json");
    cJSON *o = read_json(path, msg, cap);
    if (!o) return -1;
    const int rc = settings_from_json(o, r, why, sizeof why);
    if (rc) snprintf(msg, cap, "%s: %s", path, why);
    cJSON_Delete(o);
    if (!rc) r->cfg.seed = r->seed;
    return rc;
}

int run_write_epochs(const run_cfg *r)
{
    char path[4200], msg[1024];
    join(path, sizeof path, r->out, "run.json");
    cJSON *o = read_json(path, msg, sizeof msg);
    if (!o) return cli_fail("cannot write %s: %s", path, msg), -1;
    cJSON_ReplaceItemInObjectCaseSensitive(o, "epochs", cJSON_CreateNumber(r->epochs));
    const int rc = write_json(r->out, "run.json", o);
    cJSON_Delete(o);
    return rc;
}

/* ---- checkpoints ---------------------------------------------------------------- */

static char *progress_json(const run_progress *p)
{
    cJSON *o = cJSON_CreateObject();
    cli_json_add_fixed(o, "epoch", p->epoch, "%.17g");
    cli_json_add_fixed(o, "batch", p->batch, "%.17g");
    cli_json_add_fixed(o, "loss", p->loss, "%.17g");
    cli_json_add_fixed(o, "task", p->task, "%.17g");
    cli_json_add_fixed(o, "gmacs", p->gmacs, "%.17g");
    cli_json_add_fixed(o, "correct", (double)p->correct, "%.17g");
    cli_json_add_fixed(o, "seen", (double)p->seen, "%.17g");
    cli_json_add_fixed(o, "capped", (double)p->capped, "%.17g");
    cli_json_add_fixed(o, "best_acc", p->best_acc, "%.17g");
    cli_json_add_fixed(o, "best_epoch", p->best_epoch, "%.17g");
    if (p->n_ga) { /* the epoch's alpha-gradient sums so far (absent: no alphas) */
        cJSON_AddItemToObject(o, "alpha_grad_task", dpairs_json(p->ga_task, p->n_ga, 1.0, 0));
        cJSON_AddItemToObject(o, "alpha_grad_cost", dpairs_json(p->ga_cost, p->n_ga, 1.0, 0));
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

int run_save(const dp_model *m, const char *file, const run_cfg *r, const run_progress *p, const float *mean,
             const float *std)
{
    char path[4200], err[1024] = "", epoch[32];
    join(path, sizeof path, r->out, file);
    snprintf(epoch, sizeof epoch, "%d", p->epoch);
    cJSON *dj = cJSON_CreateObject(), *rj = settings_json(r);
    cJSON_AddStringToObject(dj, "name", cli_data_name(r->data));
    cJSON_AddStringToObject(dj, "variant", dp_variant_name(r->variant));
    if (r->resize) cJSON_AddNumberToObject(dj, "resize", r->resize); /* absent: none */
    cJSON_AddItemToObject(dj, "mean", cJSON_CreateFloatArray(mean, 3));
    cJSON_AddItemToObject(dj, "std", cJSON_CreateFloatArray(std, 3));
    if (r->data_base > 0) { /* what predict needs to prepare an image as the test images were */
        cJSON_AddStringToObject(dj, "kind", dp_data_kind_name(r->data_kind));
        cJSON_AddNumberToObject(dj, "base", r->data_base);
    }
    if (r->data_names && dp_dataset_class_name(r->data_names, 0)) {
        cJSON *cn = cJSON_AddArrayToObject(dj, "class_names");
        for (int k = 0; dp_dataset_class_name(r->data_names, k); k++)
            cJSON_AddItemToArray(cn, cJSON_CreateString(dp_dataset_class_name(r->data_names, k)));
    }
    char *ds = cJSON_PrintUnformatted(dj), *runs = cJSON_PrintUnformatted(rj), *prog = progress_json(p);
    cJSON_Delete(dj);
    cJSON_Delete(rj);
    const char *keys[] = {"epoch", "dataset", "run", "progress"};
    const char *vals[] = {epoch, ds, runs, prog};
    const int rc = ds && runs && prog ? dp_model_save(m, path, keys, vals, 4, err, sizeof err) : DP_ERR_NOMEM;
    if (rc)
        cli_fail("cannot save the checkpoint: %s%s%s", err[0] ? "" : path, err[0] ? "" : ": ",
                 err[0] ? err : dp_strerror(rc));
    free(ds);
    free(runs);
    free(prog);
    return rc;
}

int run_check_resume(const char *ck, const dp_model_config *cfg)
{
    char err[1024] = "";
    dp_model_config c;
    const int rc = dp_checkpoint_config(ck, &c, err, sizeof err);
    if (rc) return cli_fail("cannot resume: %s", err[0] ? err : dp_strerror(rc));
    static const char *const key[5] = {"model", "variant", "in_ch", "classes", "width"};
    char v[2][5][32];
    const dp_model_config *x[2] = {&c, cfg};
    for (int i = 0; i < 2; i++) {
        snprintf(v[i][0], 32, "%s", dp_arch_name(x[i]->arch));
        snprintf(v[i][1], 32, "%s", dp_pool_name(x[i]->pool));
        snprintf(v[i][2], 32, "%d", x[i]->in_ch);
        snprintf(v[i][3], 32, "%d", x[i]->classes);
        snprintf(v[i][4], 32, "%.9g", (double)x[i]->width);
    }
    for (int k = 0; k < 5; k++)
        if (strcmp(v[0][k], v[1][k]))
            return cli_fail("cannot resume: %s: checkpoint has %s = %s, this model has %s (from run.json and the "
                            "data)", ck, key[k], v[0][k], v[1][k]);
    return 0;
}

/* The metadata "progress" alone. */
static int progress_from_json(const char *s, run_progress *p, char *msg, size_t cap)
{
    cJSON *o = s ? cJSON_Parse(s) : NULL;
    if (!cJSON_IsObject(o)) {
        snprintf(msg, cap, "%s, expected a JSON object (was it written by dynopool train?)",
                 s ? "is not valid JSON" : "is missing");
        cJSON_Delete(o);
        return -1;
    }
    static const struct { const char *k; double lo, hi; int flags; } F[10] = {
        {"epoch", 0, RUN_MAX_EPOCHS, CLI_WHOLE},  {"batch", 0, INT_MAX, CLI_WHOLE},
        {"loss", 0, DBL_MAX, 0},                  {"task", 0, DBL_MAX, 0},
        {"gmacs", 0, DBL_MAX, 0},                 {"correct", 0, RUN_MAX_COUNT, CLI_WHOLE},
        {"seen", 0, RUN_MAX_COUNT, CLI_WHOLE},    {"capped", 0, RUN_MAX_COUNT, CLI_WHOLE},
        {"best_acc", -1, 100, 0},                 {"best_epoch", 0, RUN_MAX_EPOCHS, CLI_WHOLE},
    };
    double v[10];
    int bad = 0;
    for (int i = 0; !bad && i < 10; i++) bad = cli_json_range(o, F[i].k, F[i].lo, F[i].hi, F[i].flags, &v[i], msg, cap);
    int n_ga = -1;
    double ga[2][DP_MAX_STAGES][2];
    if (!bad && (bad = dpairs_from_json(o, "alpha_grad_task", ga[0], &n_ga, msg, cap)) == 0 && n_ga < 0)
        n_ga = 0;
    if (!bad && !(bad = dpairs_from_json(o, "alpha_grad_cost", ga[1], &n_ga, msg, cap)) &&
        !!cJSON_GetObjectItemCaseSensitive(o, "alpha_grad_task") != !!cJSON_GetObjectItemCaseSensitive(o, "alpha_grad_cost")) {
        snprintf(msg, cap, "fields 'alpha_grad_task' and 'alpha_grad_cost' come together, but one is missing");
        bad = -1;
    }
    cJSON_Delete(o);
    if (bad) return -1;
    if (v[5] > v[6]) {
        snprintf(msg, cap, "field 'correct' = %.0f is more than 'seen' = %.0f", v[5], v[6]);
        return -1;
    }
    *p = (run_progress){.epoch = (int)v[0], .batch = (int)v[1], .loss = v[2], .task = v[3], .gmacs = v[4],
                        .correct = (long long)v[5], .seen = (long long)v[6], .capped = (long long)v[7],
                        .best_acc = v[8], .best_epoch = (int)v[9]};
    p->n_ga = n_ga > 0 ? n_ga : 0;
    if (p->n_ga) memcpy(p->ga_task, ga[0], sizeof ga[0]), memcpy(p->ga_cost, ga[1], sizeof ga[1]);
    return 0;
}

int run_read_progress(const dp_model *m, const run_cfg *r, int steps, run_progress *p, char *msg, size_t cap)
{
    const char *em = dp_model_meta(m, "epoch");
    if (progress_from_json(dp_model_meta(m, "progress"), p, msg, cap)) return -1;
    if (p->batch > steps)
        snprintf(msg, cap, "field 'batch' = %d, expected at most the %d steps of an epoch of %s", p->batch, steps,
                 r->data);
    else if (p->best_epoch > p->epoch)
        snprintf(msg, cap, "field 'best_epoch' = %d is after 'epoch' = %d", p->best_epoch, p->epoch);
    else if (em && strtol(em, NULL, 10) != p->epoch)
        snprintf(msg, cap, "field 'epoch' = %d, but metadata 'epoch' = '%.20s'", p->epoch, em);
    else
        return 0;
    return -1;
}

/* o[key]: an array of n numbers in [lo, hi] ((lo, hi] when open) into v; 0, or -1
 * with what is wrong in msg. */
static int json_floats(const cJSON *o, const char *key, float *v, int n, double lo, double hi, int open,
                       char *msg, size_t cap)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != n) {
        snprintf(msg, cap, "field '%s' is missing or not a list of %d numbers", key, n);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        const cJSON *e = cJSON_GetArrayItem(a, i);
        const double d = cJSON_IsNumber(e) ? e->valuedouble : NAN;
        if (!(d >= lo && d <= hi) || (open && d == lo)) {
            snprintf(msg, cap, "field '%s' item %d is %.9g, expected a number in %c%g, %g]", key, i, d,
                     open ? '(' : '[', lo, hi);
            return -1;
        }
        v[i] = (float)d;
    }
    return 0;
}

/* The metadata "dataset" (normalisation, variant: required); 0 or -1 as
 * run_read_trained. */
static int trained_dataset(const char *s, run_trained *t, char *msg, size_t cap)
{
    cJSON *dj = s ? cJSON_Parse(s) : NULL;
    int rc = -1;
    if (!dj)
        snprintf(msg, cap, "%s (normalisation, variant): was it written by dynopool train?",
                 s ? "is not valid JSON" : "is missing");
    else if (cli_json_str(dj, "variant", t->variant, sizeof t->variant) || dp_variant_parse(t->variant) < 0)
        snprintf(msg, cap, "field 'variant' is missing or invalid, expected none, stretch-v, tile or large");
    else if (!json_floats(dj, "mean", t->mean, 3, 0, 1, 0, msg, cap) && /* of pixels in [0, 1] */
             !json_floats(dj, "std", t->std, 3, 0, 1, 1, msg, cap)) {
        double rs = 0, base = 0;
        rc = cJSON_GetObjectItemCaseSensitive(dj, "resize") &&
                     cli_json_range(dj, "resize", RUN_MIN_INPUT, RUN_MAX_INPUT, CLI_WHOLE, &rs, msg, cap)
                 ? -1
                 : 0;
        t->resize = (int)rs;
        if (!rc && cJSON_GetObjectItemCaseSensitive(dj, "base") &&
            cli_json_range(dj, "base", 2, 4096, CLI_WHOLE, &base, msg, cap)) /* dp_dataset_open's sides */
            rc = -1;
        t->base = (int)base;
        char kind[32];
        if (!rc && !cli_json_str(dj, "kind", kind, sizeof kind) && (t->kind = dp_data_kind_parse(kind)) < 0) {
            snprintf(msg, cap, "field 'kind' = '%s', expected idx, cifar10, cifar100 or folder", kind);
            rc = -1;
        }
        if (cli_json_str(dj, "name", t->name, sizeof t->name)) t->name[0] = 0;
        const cJSON *cn = cJSON_GetObjectItemCaseSensitive(dj, "class_names");
        size_t used = 0;
        for (int k = 0; !rc && cJSON_IsArray(cn) && k < cJSON_GetArraySize(cn); k++) {
            const cJSON *e = cJSON_GetArrayItem(cn, k);
            const size_t len = cJSON_IsString(e) ? strlen(e->valuestring) : 0;
            if (!len || used + len + 1 > sizeof t->class_names) { /* kept only whole: "class k" otherwise */
                t->n_class_names = 0;
                break;
            }
            memcpy(t->class_names + used, e->valuestring, len + 1);
            used += len + 1;
            t->n_class_names++;
        }
    }
    cJSON_Delete(dj);
    return rc;
}

/* The metadata "run", when valid JSON: the options the data were opened with. */
static int trained_run(const char *s, run_trained *t, char *msg, size_t cap)
{
    cJSON *rj = s ? cJSON_Parse(s) : NULL;
    double classes = 0, input = 0;
    int rc = -1;
    if (cJSON_GetObjectItemCaseSensitive(rj, "data") && cli_json_str(rj, "data", t->data, sizeof t->data))
        snprintf(msg, cap, "field 'data' is not a folder name shorter than 2048 bytes");
    else if (!(cJSON_GetObjectItemCaseSensitive(rj, "classes_opt") &&
               cli_json_range(rj, "classes_opt", 0, RUN_MAX_CLASSES, CLI_WHOLE, &classes, msg, cap)) &&
             !(cJSON_GetObjectItemCaseSensitive(rj, "input_opt") &&
               cli_json_range(rj, "input_opt", 0, RUN_MAX_INPUT, CLI_WHOLE, &input, msg, cap)))
        rc = 0;
    t->classes_opt = (int)classes, t->input_opt = (int)input;
    cJSON_Delete(rj);
    return rc;
}

int run_read_trained_meta(const char *dataset, const char *run, run_trained *t, const char **key, char *msg,
                          size_t cap)
{
    memset(t, 0, sizeof *t);
    strcpy(t->variant, "none");
    t->kind = DP_DATA_AUTO;
    if (trained_dataset(dataset, t, msg, cap)) return *key = "dataset", -1;
    if (trained_run(run, t, msg, cap)) return *key = "run", -1;
    return 0;
}

int run_read_trained(const dp_model *m, run_trained *t, const char **key, char *msg, size_t cap)
{
    return run_read_trained_meta(dp_model_meta(m, "dataset"), dp_model_meta(m, "run"), t, key, msg, cap);
}

const char *run_class_name(const run_trained *t, int classes, int k, char *buf, size_t cap)
{
    if (t->n_class_names == classes) {
        const char *p = t->class_names;
        for (int i = 0; i < k; i++) p += strlen(p) + 1;
        return p;
    }
    const char *known = cli_class_name(t->name, t->kind, classes, k);
    if (known) return known;
    snprintf(buf, cap, "class %d", k);
    return buf;
}

/* ---- metrics.jsonl ------------------------------------------------------------- */

static cJSON *epoch_json(const run_cfg *r, const run_progress *p, const run_epoch *e)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "epoch", p->epoch + 1);
    cJSON_AddNumberToObject(o, "epochs", r->epochs);
    cJSON_AddNumberToObject(o, "lr", e->lr);
    cJSON_AddNumberToObject(o, "lr_alpha", e->lr_alpha);
    cJSON_AddNumberToObject(o, "train_loss", p->loss / p->seen);
    cJSON_AddNumberToObject(o, "train_loss_task", p->task / p->seen);
    cJSON_AddNumberToObject(o, "train_loss_gmacs", p->gmacs / p->seen);
    if (r->seg) { /* the validation split's mean IoU and pixel accuracy (docs/guide.md, "Segmentation data") */
        cJSON_AddNumberToObject(o, "miou", e->miou);
        cJSON_AddNumberToObject(o, "pixel_acc", e->pixel_acc);
    } else {
        cJSON_AddNumberToObject(o, "train_acc", 100.0 * p->correct / p->seen);
        if (r->val_split > 0) { /* only then: the lines of a run without one stay as they were */
            cJSON_AddNumberToObject(o, "val_loss", e->val_loss);
            cJSON_AddNumberToObject(o, "val_acc", e->val_acc);
        }
        cJSON_AddNumberToObject(o, "test_loss", e->test_loss);
        cJSON_AddNumberToObject(o, "test_acc", e->test_acc);
    }
    cJSON_AddNumberToObject(o, "gmacs", e->info->gmacs);
    cJSON_AddItemToObject(o, "sizes", pairs_json(e->info->sizes, NULL, e->info->n_stages));
    cJSON_AddItemToObject(o, "alphas", pairs_json(NULL, e->info->alphas, e->info->n_alphas));
    if (p->n_ga && p->batch) { /* the mean over the epoch's steps (docs/reproduction.md, "Why the maps shrink") */
        cJSON_AddItemToObject(o, "alpha_grad_task", dpairs_json(p->ga_task, p->n_ga, 1.0 / p->batch, 7));
        cJSON_AddItemToObject(o, "alpha_grad_cost", dpairs_json(p->ga_cost, p->n_ga, 1.0 / p->batch, 7));
    }
    cJSON_AddNumberToObject(o, "capped", (double)p->capped);
    cJSON_AddNumberToObject(o, "images_per_s", e->images_per_s);
    cJSON_AddNumberToObject(o, "data_wait", e->data_wait);
    cJSON_AddNumberToObject(o, "seconds", e->seconds);
    return o;
}

int run_append_metrics(const run_cfg *r, const run_progress *p, const run_epoch *e)
{
    char path[4200];
    join(path, sizeof path, r->out, "metrics.jsonl");
    cJSON *o = epoch_json(r, p, e);
    char *line = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    /* O_NOFOLLOW: a link planted as metrics.jsonl does not make us append elsewhere */
    const int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0666);
    FILE *f = fd >= 0 ? fdopen(fd, "a") : NULL;
    if (fd >= 0 && !f) close(fd);
    const int bad = !line || !f || fprintf(f, "%s\n", line) < 0 || fflush(f) || fsync(fileno(f));
    if (f) fclose(f);
    free(line);
    if (bad) return cli_fail("cannot append to %s: %s", path, strerror(errno));
    return 0;
}

/* Keeps the lines of dir/name whose number `key` is <= last. */
static int trim_jsonl(const char *dir, const char *name, const char *key, double last)
{
    char path[4200];
    join(path, sizeof path, dir, name);
    FILE *f = fopen(path, "r");
    if (!f) return errno == ENOENT ? 0 : -1;
    size_t cap = 1 << 16, len = 0;
    char *keep = malloc(cap), line[1 << 16];
    if (!keep) {
        fclose(f);
        return -1;
    }
    keep[0] = 0;
    while (fgets(line, sizeof line, f)) {
        cJSON *o = cJSON_Parse(line);
        double e;
        if (o && !cli_json_num(o, key, &e) && e <= last) {
            const size_t l = strlen(line);
            if (len + l + 1 > cap) {
                char *q = realloc(keep, cap = 2 * (len + l + 1));
                if (!q) break;
                keep = q;
            }
            memcpy(keep + len, line, l + 1);
            len += l;
        }
        cJSON_Delete(o);
    }
    fclose(f);
    if (len && keep[len - 1] == '\n') keep[--len] = 0;
    const int rc = len ? cli_write_text(path, keep) : remove(path);
    free(keep);
    return rc;
}

int run_append_trace(const run_cfg *r, long long step, int epoch, float lr_alpha, const dp_step_stats *st)
{
    char path[4200];
    join(path, sizeof path, r->out, RUN_ALPHA_TRACE);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "step", (double)step);
    cJSON_AddNumberToObject(o, "epoch", epoch);
    cJSON_AddNumberToObject(o, "lr_alpha", sig(lr_alpha, 7));
    double al[DP_MAX_STAGES][2];
    for (int i = 0; i < st->n_galpha; i++) al[i][0] = st->alpha[i][0], al[i][1] = st->alpha[i][1];
    cJSON_AddItemToObject(o, "alphas", dpairs_json(al, st->n_galpha, 1.0, 7));
    cJSON_AddItemToObject(o, "grad_task", dpairs_json(st->galpha_task, st->n_galpha, 1.0, 5));
    cJSON_AddItemToObject(o, "grad_cost", dpairs_json(st->galpha_cost, st->n_galpha, 1.0, 5));
    cJSON_AddNumberToObject(o, "loss_task", sig(st->loss_task, 6));
    char *line = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    const int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0666);
    FILE *f = fd >= 0 ? fdopen(fd, "a") : NULL;
    if (fd >= 0 && !f) close(fd);
    const int bad = !line || !f || fprintf(f, "%s\n", line) < 0 || fflush(f);
    if (f) fclose(f);
    free(line);
    if (bad) return cli_fail("cannot append to %s: %s", path, strerror(errno));
    return 0;
}

int run_trim_metrics(const char *dir, int last) { return trim_jsonl(dir, "metrics.jsonl", "epoch", last); }

int run_trim_trace(const char *dir, long long last) { return trim_jsonl(dir, RUN_ALPHA_TRACE, "step", (double)last); }

void run_read_accuracies(const char *dir, int best_epoch, double *last, double *at_best)
{
    run_read_metric(dir, "test_acc", best_epoch, last, at_best);
}

void run_read_metric(const char *dir, const char *key, int best_epoch, double *last, double *at_best)
{
    char path[4200], line[1 << 16];
    double e;
    join(path, sizeof path, dir, "metrics.jsonl");
    *last = *at_best = 0;
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f)) {
        cJSON *o = cJSON_Parse(line);
        cli_json_num(o, key, last);
        if (!cli_json_num(o, "epoch", &e) && (int)e == best_epoch) *at_best = *last;
        cJSON_Delete(o);
    }
    if (f) fclose(f);
}

/* ---- summary.json -------------------------------------------------------------- */

/* summary.json := s with the cost and the maps of the run (info) and of the human
 * design (hi) at its end; s deleted.  0, or 1 after saying why. */
static int write_summary(const run_cfg *r, cJSON *s, const dp_model_info *info, const dp_model_info *hi)
{
    cJSON_AddNumberToObject(s, "gmacs", info->gmacs);
    cJSON_AddNumberToObject(s, "human_gmacs", hi->gmacs);
    cJSON_AddNumberToObject(s, "params", (double)info->params);
    cJSON_AddItemToObject(s, "sizes", pairs_json(info->sizes, NULL, info->n_stages));
    cJSON_AddItemToObject(s, "alphas", pairs_json(NULL, info->alphas, info->n_alphas));
    cJSON_AddItemToObject(s, "human_sizes", pairs_json(hi->sizes, NULL, hi->n_stages));
    const int rc = write_json(r->out, "summary.json", s) ? 1 : 0;
    cJSON_Delete(s);
    return rc;
}

int run_write_summary(const run_cfg *r, const run_progress *p, const dp_model_info *info, const dp_model_info *hi,
                      double last_acc, double best_test)
{
    cJSON *s = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "model", dp_arch_name(r->cfg.arch));
    cJSON_AddStringToObject(s, "pool", dp_pool_name(r->cfg.pool));
    cJSON_AddStringToObject(s, "variant", dp_variant_name(r->variant));
    cJSON_AddStringToObject(s, "dataset", cli_data_name(r->data));
    cJSON_AddNumberToObject(s, "width", r->cfg.width);
    cJSON_AddNumberToObject(s, "input", r->cfg.size);
    cJSON_AddNumberToObject(s, "epochs", r->epochs);
    const int val = r->val_split > 0;
    cJSON_AddNumberToObject(s, "test_acc", last_acc);
    /* the best epoch and what it was chosen on: the held-out part of the training
     * split (--val-split), else the test split itself (an optimistic choice) */
    cJSON_AddNumberToObject(s, val ? "best_val_acc" : "best_test_acc", p->best_acc);
    cJSON_AddNumberToObject(s, "best_epoch", p->best_epoch);
    cJSON_AddStringToObject(s, "best_chosen_on", val ? "validation" : "test");
    if (val) cJSON_AddNumberToObject(s, "val_split", r->val_split);
    cJSON_AddNumberToObject(s, "test_acc_at_best", best_test);
    cJSON_AddStringToObject(s, "best_checkpoint", RUN_BEST);
    return write_summary(r, s, info, hi);
}

int run_write_seg_summary(const run_cfg *r, const run_progress *p, const dp_model_info *info,
                          const dp_model_info *hi)
{
    double miou, pixel_acc, best_miou;
    run_read_metric(r->out, "miou", p->best_epoch, &miou, &best_miou);
    run_read_metric(r->out, "pixel_acc", p->best_epoch, &pixel_acc, &(double){0});
    cJSON *s = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "task", "seg");
    cJSON_AddStringToObject(s, "model", dp_arch_name(r->cfg.arch));
    cJSON_AddStringToObject(s, "pool", dp_pool_name(r->cfg.pool));
    cJSON_AddStringToObject(s, "dataset", cli_data_name(r->data));
    cJSON_AddNumberToObject(s, "width", r->cfg.width);
    cJSON_AddNumberToObject(s, "input", r->cfg.size);
    cJSON_AddNumberToObject(s, "classes", r->cfg.classes);
    cJSON_AddNumberToObject(s, "epochs", r->epochs);
    /* Table 5.4's row: the validation split's mIoU (last epoch), the GMACs, the maps */
    cJSON_AddNumberToObject(s, "miou", miou);
    cJSON_AddNumberToObject(s, "pixel_acc", pixel_acc);
    cJSON_AddNumberToObject(s, "best_miou", best_miou);
    cJSON_AddNumberToObject(s, "best_epoch", p->best_epoch);
    cJSON_AddStringToObject(s, "best_chosen_on", "val");
    cJSON_AddStringToObject(s, "best_checkpoint", RUN_BEST);
    return write_summary(r, s, info, hi);
}

/* ---- a run as plot draws it ------------------------------------------------------ */

/* One JSON object from s, the text of path from line `line` on; says the file
 * and line of the problem and returns NULL when s is not one. */
static cJSON *parse_object(const char *path, const char *s, int line)
{
    cJSON *j = cJSON_ParseWithOpts(s, NULL, 1);
    if (cJSON_IsObject(j)) return j;
    const char *e = j ? NULL : cJSON_GetErrorPtr();
    for (const char *c = s; e && c < e && *c; c++) line += *c == '\n';
    cli_fail("%s line %d: %s", path, line, j ? "not a JSON object" : "not valid JSON");
    cJSON_Delete(j);
    return NULL;
}

/* The finite number o[key], or dflt. */
static double finite_or(const cJSON *o, const char *key, double dflt)
{
    double v;
    return !cli_json_num(o, key, &v) && isfinite(v) ? v : dflt;
}

/* 0 when v is a side (a whole number in [1, 2^20]). */
static int side(const cJSON *v, int *out)
{
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 1 && v->valuedouble <= 1 << 20) ||
        v->valuedouble != floor(v->valuedouble))
        return -1;
    *out = (int)v->valuedouble;
    return 0;
}

static int pair(const cJSON *a, int *h, int *w)
{
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != 2) return -1;
    return side(a->child, h) || side(a->child->next, w) ? -1 : 0;
}

/* Takes what o (run.json, a metrics line or summary.json) says about the run;
 * later sources override earlier ones. */
static int take(run_view *r, const cJSON *o, const char *path, int line)
{
    char where[64] = "";
    if (line) snprintf(where, sizeof where, " line %d", line);
    cli_json_str(o, "model", r->model, sizeof r->model);
    cli_json_str(o, "pool", r->pool, sizeof r->pool);
    cli_json_str(o, "variant", r->variant, sizeof r->variant);
    cli_json_str(o, "dataset", r->dataset, sizeof r->dataset);
    cli_json_str(o, "data", r->data, sizeof r->data);
    char task[16];
    if (!cli_json_str(o, "task", task, sizeof task)) r->seg = !strcmp(task, "seg");
    r->acc = finite_or(o, "test_acc", r->acc);
    r->acc = finite_or(o, "miou", r->acc); /* a segmentation run's */
    r->gmacs = finite_or(o, "gmacs", r->gmacs);
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(o, "input");
    if (in && (cJSON_IsNumber(in) ? side(in, &r->in[0]) : pair(in, &r->in[0], &r->in[1])))
        return cli_fail("%s%s: \"input\" is not a side or an [h, w] pair", path, where);
    if (cJSON_IsNumber(in)) r->in[1] = r->in[0];
    const cJSON *sz = cJSON_GetObjectItemCaseSensitive(o, "sizes"), *e;
    if (!sz) return 0;
    if (!cJSON_IsArray(sz) || cJSON_GetArraySize(sz) > RUN_MAX_STAGES)
        return cli_fail("%s%s: \"sizes\" is not a list of at most %d [h, w] pairs", path, where, RUN_MAX_STAGES);
    r->n_sizes = 0;
    cJSON_ArrayForEach(e, sz) {
        if (pair(e, &r->sizes[r->n_sizes][0], &r->sizes[r->n_sizes][1]))
            return cli_fail("%s%s: \"sizes\" item %d is not an [h, w] pair of positive whole numbers", path, where,
                            r->n_sizes + 1);
        r->n_sizes++;
    }
    return 0;
}

/* Reads path into *out; a missing file leaves *out NULL and is no error. */
static int load_object(const char *path, cJSON **out)
{
    char *s = cli_read_file(path);
    *out = NULL;
    if (!s) return errno == ENOENT ? 0 : cli_fail("cannot read %s: %s", path, strerror(errno));
    *out = parse_object(path, s, 1);
    free(s);
    return *out ? 0 : 1;
}

/* The metrics row of line `line` (object o) appended to r->ep; 0, or 1 after
 * saying why. */
static int add_row(run_view *r, const cJSON *o, const char *path, int line)
{
    if (r->n_ep == r->cap_ep) {
        const int cap = 2 * r->cap_ep + 16;
        double *p = realloc(r->ep, sizeof(double) * RUN_COLS * cap);
        if (p) r->ep = p;
        int(*sz)[RUN_MAX_STAGES][2] = p ? realloc(r->ep_sizes, sizeof *sz * cap) : NULL;
        if (sz) r->ep_sizes = sz;
        int *nsz = sz ? realloc(r->ep_n_sizes, sizeof *nsz * cap) : NULL;
        if (!nsz) return cli_fail("out of memory reading %s", path);
        r->ep_n_sizes = nsz, r->cap_ep = cap;
    }
    /* take() read this line's sizes into r->sizes just before */
    memcpy(r->ep_sizes[r->n_ep], r->sizes, sizeof r->sizes);
    r->ep_n_sizes[r->n_ep] = cJSON_GetObjectItemCaseSensitive(o, "sizes") ? r->n_sizes : 0;
    static const char *const keys[RUN_COLS] = {"epoch", "train_loss", "test_loss", "train_acc", "test_acc", "gmacs",
                                               "miou"};
    double *row = r->ep + (size_t)RUN_COLS * r->n_ep++;
    for (int c = 0; c < RUN_COLS; c++) row[c] = finite_or(o, keys[c], c == RUN_EPOCH ? r->n_ep : NAN);
    /* the epoch defaults to the row's number, from 1; null (train writes NaN and
     * infinity so), infinite or huge: left out */
    for (int c = 0; c < RUN_COLS; c++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, keys[c]);
        if (!cJSON_IsNull(v) && !(cJSON_IsNumber(v) && !(isfinite(v->valuedouble) && fabs(v->valuedouble) <= RUN_VMAX)))
            continue;
        if (!r->n_bad++) r->bad_line = line, snprintf(r->bad_key, sizeof r->bad_key, "%s", keys[c]);
        row[c] = NAN;
    }
    if (!isfinite(row[RUN_EPOCH]))
        for (int c = 0; c < RUN_COLS; c++) row[c] = NAN;
    return 0;
}

static int load_metrics(const char *dir, run_view *r)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    char *buf = cli_read_file(path), *s = buf;
    if (!buf) return errno == ENOENT ? 0 : cli_fail("cannot read %s: %s", path, strerror(errno));
    int rc = 0;
    for (int line = 1; *s && !rc; line++) {
        char *end = strchr(s, '\n');
        if (end) *end = '\0';
        if (s[strspn(s, " \t\r")]) {
            cJSON *o = parse_object(path, s, line);
            rc = !o || take(r, o, path, line);
            if (!rc) rc = add_row(r, o, path, line);
            cJSON_Delete(o);
        }
        s = end ? end + 1 : s + strlen(s);
    }
    free(buf);
    if (!rc && r->n_bad)
        fprintf(stderr, "dynopool: warning: %s: %d value%s in %s %s null, infinite or beyond 1e30 "
                        "(the first: line %d, \"%s\"); not drawn\n", r->name, r->n_bad,
                r->n_bad > 1 ? "s" : "", path, r->n_bad > 1 ? "are" : "is", r->bad_line, r->bad_key);
    return rc;
}

/* The last component of dir ("runs/a/" -> "a"), or of its real path for "." and "..". */
static void view_name(const char *dir, char *out, size_t n)
{
    cli_base_name(dir, out, n);
    char *real = !strcmp(out, ".") || !strcmp(out, "..") ? realpath(dir, NULL) : NULL;
    if (real && strcmp(real, "/")) snprintf(out, n, "%s", strrchr(real, '/') + 1);
    free(real);
}

void run_view_free(run_view *r)
{
    free(r->ep), free(r->ep_sizes), free(r->ep_n_sizes);
    r->ep = NULL, r->ep_sizes = NULL, r->ep_n_sizes = NULL, r->n_ep = r->cap_ep = 0;
}

int run_view_load(const char *dir, run_view *r)
{
    struct stat st;
    if (stat(dir, &st)) return cli_fail("%s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return cli_fail("%s: not a directory", dir);
    view_name(dir, r->name, sizeof r->name);
    r->acc = r->gmacs = NAN;
    char pc[4096], ps[4096];
    snprintf(pc, sizeof pc, "%s/run.json", dir);
    snprintf(ps, sizeof ps, "%s/summary.json", dir);
    cJSON *cfg = NULL, *sum = NULL;
    int rc = load_object(pc, &cfg) || load_object(ps, &sum);
    if (!rc && !cfg && !sum)
        rc = cli_fail("%s: no run.json or summary.json: not a run directory of 'dynopool train'", dir);
    if (!rc && cfg) rc = take(r, cfg, pc, 0);
    if (!rc) rc = load_metrics(dir, r);
    if (!rc && sum) rc = take(r, sum, ps, 0), r->finished = 1;
    cJSON_Delete(cfg);
    cJSON_Delete(sum);
    return rc;
}
