/*
 * cmd_train.c — `dynopool train`: SPEC 6's recipe on a real dataset, with live
 * progress, a checkpoint and a metrics line after every epoch, Ctrl-C that saves,
 * and --resume that continues to the same weights as an uninterrupted run.
 *
 * A run folder holds:
 *   run.json             the run's settings (what --resume rebuilds from)
 *   checkpoint.safetensors  weights, alphas, BN statistics, momentum buffers and
 *                        the position in the run (metadata "progress")
 *   checkpoint-best.safetensors  the same after the best epoch (by validation
 *                        accuracy with --val-split, else by test accuracy)
 *   metrics.jsonl        one JSON line per finished epoch
 *   summary.json         the Table 5.1 row, once the run has finished
 *   .lock                flock()ed by the one trainer working in the folder
 * (docs/guide.md, "The run folder").
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"

static const char *const TRAIN_USAGE =
    "Usage: dynopool train [options]\n"
    "       dynopool train --resume DIR\n"
    "\n"
    "Trains a network on a dataset with the paper's recipe (SPEC 6: SGD with Nesterov\n"
    "momentum, cosine learning rate per epoch, alphas in their own group at a tenth of\n"
    "the learning rate).  Shows progress, writes after every epoch a line to\n"
    "DIR/metrics.jsonl and a checkpoint DIR/checkpoint.safetensors (atomically), keeps\n"
    "the best epoch's in DIR/checkpoint-best.safetensors (by validation accuracy with\n"
    "--val-split, else by test accuracy), and ends with the paper's Table 5.1 row\n"
    "(accuracy, GMACs, learned sizes).  One trainer at a time may use a run folder.\n"
    "\n"
    "Model\n"
    "  --model M        vgg16 | resnet50 | mobilenetv2                (default vgg16)\n"
    "  --pool P         human | dynopool | shape-adaptor              (default dynopool)\n"
    "  --width W        channel multiplier, 1 = the paper's networks  (default 1)\n"
    "Data\n"
    "  --data DIR       dataset folder, detected from its files: IDX (*-idx3-ubyte[.gz]),\n"
    "                   CIFAR-10 (data_batch_*.bin), CIFAR-100 (train.bin, test.bin),\n"
    "                   image folder (train/<class>/*.jpg|png, test/<class>/...)\n"
    "                   (default: Fashion-MNIST in " CLI_FASHION_MNIST ")\n"
    "  --dataset K      idx | cifar10 | cifar100 | folder: skip the detection\n"
    "  --classes C      IDX sets: number of classes (default 10)\n"
    "  --input S        image folders: crop side (default 224; resized to 8/7 S first)\n"
    "  --variant V      none | stretch-v | tile | large: the paper's toy variants (3.1)\n"
    "  --limit N        train on the first N training images only (quick runs)\n"
    "  --limit-test N   evaluate on the first N test images only\n"
    "  --val-split F    hold out a fraction F (0 < F < 1) of the training images (of the\n"
    "                   first N with --limit), chosen from --seed, and pick the best\n"
    "                   epoch on them (default: none; the best epoch is then picked on\n"
    "                   the test split, an optimistic choice)\n"
    "  --workers N      loader threads preparing the next batches (default 1; 0 = none)\n"
    "Recipe\n"
    "  --epochs E       (default 200 human, 250 DynOPool / Shape Adaptor)\n"
    "  --batch B        (default 128)\n"
    "  --lr X           weights' base learning rate (default 0.1; 0.01 for image folders)\n"
    "  --alpha-lr X     alphas' base learning rate (default lr / 10)\n"
    "  --momentum X     (default 0.9, Nesterov; --no-nesterov for plain)\n"
    "  --wd X           weight decay (default 5e-4; 4e-5 for mobilenetv2)\n"
    "  --lambda X       weight of the complexity loss L_GMACs (default 0)\n"
    "  --max-side N     memory guard: no DynOPool map side above N (default 2x input)\n"
    "  --seed N         weights, data order and augmentation (default 1)\n"
    "Output\n"
    "  --out DIR        run folder (default runs/<model>-<pool>[-<variant>]-<data>)\n"
    "  --resume DIR     continue the run in DIR from its last checkpoint (its settings\n"
    "                   come from DIR/run.json; --epochs may extend it)\n"
    "  --log-every S    when not on a terminal: a progress line every S seconds (30)\n"
    "  --interrupt-after K  behave as if Ctrl-C came after K steps (for tests)\n"
    "  --poison-after K     an infinite learning rate from step K+1 on (for tests)\n"
    "\n"
    "Ctrl-C (or SIGTERM) finishes the current step, saves a checkpoint and exits with\n"
    "status 130 (143); `dynopool train --resume DIR` then gives the same weights,\n"
    "alphas and metrics as a run that was never interrupted.  A run that diverges (a NaN\n"
    "or infinite loss, test loss or weight) stops (exit 1) and leaves the last good\n"
    "checkpoint untouched.\n"
    "Example (README's main job: about 4 minutes of training on 2 cores):\n"
    "  dynopool train --width 0.25 --epochs 25 --out runs/fmnist-dynopool\n";

/* ---- the settings of a run ------------------------------------------------ */

/* The ranges of the settings: options (OPTS) and run.json (run_from_json). */
#define MAX_WIDTH 16.0    /* dp_model_create's limit */
#define MAX_CLASSES 256   /* dp_dataset_open's limit for IDX sets */
#define MIN_INPUT_SIDE 8
#define MAX_INPUT_SIDE 1024
#define MAX_WORKERS 16
#define MAX_EPOCHS 1000000
#define MAX_BATCH 65536
#define MAX_LR 100.0
#define MAX_WD 1.0
#define MAX_LAMBDA 1000.0
#define MAX_SIDE (1 << 24)          /* DP_MAX_AXIS */
#define MAX_SEED 9007199254740992.0 /* 2^53: run.json holds the seed as a JSON number */
#define MAX_COUNT MAX_SEED          /* images and steps counted in a checkpoint's progress */

typedef struct {
    dp_model_config cfg;
    char data[2048], out[2048];
    int kind, classes, input, variant, limit, limit_test;
    int epochs, batch, nesterov, max_side;
    double lr, alpha_lr, momentum, wd, lambda;
    unsigned long long seed;
    int lr_set;  /* --lr given (else 0.1; 0.01 for image folders, SPEC 6) */
    double val_split; /* the fraction of the training images held out; 0: none */
} run_cfg;

static cJSON *run_to_json(const run_cfg *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", dp_arch_name(r->cfg.arch));
    cJSON_AddStringToObject(o, "pool", dp_pool_name(r->cfg.pool));
    cJSON_AddNumberToObject(o, "width", r->cfg.width);
    cJSON_AddStringToObject(o, "data", r->data);
    cJSON_AddStringToObject(o, "dataset", cli_data_name(r->data));
    cJSON_AddStringToObject(o, "kind", r->kind >= 0 ? dp_data_kind_name(r->kind) : "auto");
    cJSON_AddNumberToObject(o, "classes_opt", r->classes);
    cJSON_AddNumberToObject(o, "input_opt", r->input);
    cJSON_AddStringToObject(o, "variant", dp_variant_name(r->variant));
    cJSON_AddNumberToObject(o, "limit", r->limit);
    cJSON_AddNumberToObject(o, "limit_test", r->limit_test);
    if (r->val_split > 0) cJSON_AddNumberToObject(o, "val_split", r->val_split); /* absent: none */
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

int cli_json_num(const cJSON *o, const char *k, double *v)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(it)) return -1;
    *v = it->valuedouble;
    return 0;
}

int cli_json_str(const cJSON *o, const char *k, char *v, size_t cap)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsString(it) || strlen(it->valuestring) >= cap) return -1;
    strcpy(v, it->valuestring);
    return 0;
}

int cli_json_range(const cJSON *o, const char *k, double lo, double hi, int flags, double *v, char *msg,
                   size_t cap)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    const double d = cJSON_IsNumber(it) ? it->valuedouble : NAN;
    const int whole = flags & CLI_WHOLE, open = flags & CLI_OPEN;
    if (d >= lo && d <= hi && !(open && d == lo) && !(whole && d != floor(d))) {
        *v = d;
        return 0;
    }
    char got[48];
    if (cJSON_IsNumber(it)) snprintf(got, sizeof got, "= %.17g", d);
    else snprintf(got, sizeof got, "%s", it ? "is not a number" : "is missing");
    snprintf(msg, cap, "field '%s' %s, expected %s in %c%.16g, %.16g]", k, got, whole ? "an integer" : "a number",
             open ? '(' : '[', lo, hi);
    return -1;
}

/* Fills r from run.json's object; 0, or -1 with the first bad field and what it
 * should be in msg.  The ranges are those of the options (OPTS); 0 in classes_opt
 * and input_opt means "not given". */
static int run_from_json(const cJSON *o, run_cfg *r, char *msg, size_t cap)
{
    char s[64];
    double v;
    const char *bad = NULL, *want = NULL;
    if (cli_json_str(o, "model", s, sizeof s) || (r->cfg.arch = dp_arch_parse(s)) < 0)
        bad = "model", want = "vgg16, resnet50 or mobilenetv2";
    else if (cli_json_str(o, "pool", s, sizeof s) || (r->cfg.pool = dp_pool_parse(s)) < 0)
        bad = "pool", want = "human, dynopool or shape-adaptor";
    else if (cli_json_str(o, "data", r->data, sizeof r->data))
        bad = "data", want = "a folder name shorter than 2048 bytes";
    else if (cli_json_str(o, "kind", s, sizeof s) ||
             (r->kind = strcmp(s, "auto") ? dp_data_kind_parse(s) : DP_DATA_AUTO) < DP_DATA_AUTO)
        bad = "kind", want = "auto, idx, cifar10, cifar100 or folder";
    else if (cli_json_str(o, "variant", s, sizeof s) || (r->variant = dp_variant_parse(s)) < 0)
        bad = "variant", want = "none, stretch-v, tile or large";
    else if (!cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(o, "nesterov")))
        bad = "nesterov", want = "true or false";
    if (bad) {
        snprintf(msg, cap, "field '%s' is missing or invalid, expected %s", bad, want);
        return -1;
    }
    r->nesterov = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "nesterov"));
#define GET(key, dst, lo, hi, flags)                                         \
    if (cli_json_range(o, key, lo, hi, flags, &v, msg, cap)) return -1; \
    dst = v;
    GET("width", r->cfg.width, 0, MAX_WIDTH, CLI_OPEN)
    GET("classes_opt", r->classes, 0, MAX_CLASSES, CLI_WHOLE)
    GET("input_opt", r->input, 0, MAX_INPUT_SIDE, CLI_WHOLE)
    GET("limit", r->limit, 0, INT_MAX, CLI_WHOLE)
    GET("limit_test", r->limit_test, 0, INT_MAX, CLI_WHOLE)
    GET("epochs", r->epochs, 1, MAX_EPOCHS, CLI_WHOLE)
    GET("batch", r->batch, 1, MAX_BATCH, CLI_WHOLE)
    GET("lr", r->lr, 0, MAX_LR, CLI_OPEN)
    GET("alpha_lr", r->alpha_lr, 0, MAX_LR, 0)
    GET("momentum", r->momentum, 0, 1, 0)
    GET("weight_decay", r->wd, 0, MAX_WD, 0)
    GET("lambda", r->lambda, 0, MAX_LAMBDA, 0)
    GET("max_side", r->max_side, 0, MAX_SIDE, CLI_WHOLE)
    GET("seed", r->seed, 0, MAX_SEED, CLI_WHOLE)
#undef GET
    const cJSON *vs = cJSON_GetObjectItemCaseSensitive(o, "val_split"); /* optional */
    if (vs && (!cJSON_IsNumber(vs) || !(vs->valuedouble > 0 && vs->valuedouble < 1))) {
        snprintf(msg, cap, "field 'val_split' is invalid, expected a number in (0, 1)");
        return -1;
    }
    r->val_split = vs ? vs->valuedouble : 0.0;
    if (r->input && r->input < MIN_INPUT_SIDE) {
        snprintf(msg, cap, "field 'input_opt' = %d, expected 0 (not given) or a side in [%d, %d]", r->input,
                 MIN_INPUT_SIDE, MAX_INPUT_SIDE);
        return -1;
    }
    if (r->max_side == 1) {
        snprintf(msg, cap, "field 'max_side' = 1, expected 0 (no cap) or a side in [2, %d]", MAX_SIDE);
        return -1;
    }
    return 0;
}

/* ---- small file helpers ------------------------------------------------------ */

/* path := text and a newline, atomically (dp_write_file_atomic); 0, or -1
 * with errno set. */
static int write_atomic(const char *path, const char *text)
{
    const size_t n = strlen(text);
    char *s = malloc(n + 2);
    if (!s) return -1;
    memcpy(s, text, n);
    s[n] = '\n', s[n + 1] = 0;
    const int rc = dp_write_file_atomic(path, s, n + 1);
    const int e = errno;
    free(s);
    errno = e;
    return rc ? -1 : 0;
}

/* Takes the run folder for this process: an exclusive flock() on DIR/.lock, held
 * until the process ends (the descriptor stays open), with our PID written in
 * the file for the next one to name.  A second trainer is refused: two writers
 * would interleave their epochs in metrics.jsonl and overwrite each other's
 * checkpoints.  Returns the descriptor, or -1 after saying why (exit 1). */
static int lock_run(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/.lock", dir);
    const int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0666);
    if (fd < 0) {
        fprintf(stderr, "dynopool: cannot lock the run folder %s: %s: %s\n", dir, path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB)) {
        const int e = errno;
        char pid[24] = "";
        const ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = 0;
        pid[strspn(pid, "0123456789")] = 0;
        if (e == EWOULDBLOCK)
            fprintf(stderr, "dynopool: %s is in use by another 'dynopool train'%s%s%s, which holds %s; one "
                            "trainer at a time per run folder: wait for it to finish or stop it\n",
                    dir, pid[0] ? " (PID " : "", pid, pid[0] ? ")" : "", path);
        else fprintf(stderr, "dynopool: cannot lock the run folder %s: %s: %s\n", dir, path, strerror(e));
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

/* Removes the temporary files of the run folder's own files ("<name>.tmp" from
 * older versions, "<name>.tmp.*") that a crash or a kill left behind.  Only with
 * the folder locked: then no live writer owns them. */
static void remove_stale_temps(const char *dir)
{
    static const char *const own[] = {"run.json", "summary.json", "metrics.jsonl", "checkpoint.safetensors",
                                       "checkpoint-best.safetensors"};
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

static int write_json(const char *dir, const char *name, cJSON *o)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *s = cJSON_Print(o);
    const int rc = s ? write_atomic(path, s) : -1;
    free(s);
    if (rc) fprintf(stderr, "dynopool: cannot write %s: %s\n", path, strerror(errno));
    return rc;
}

static cJSON *read_json(const char *path, char *err, size_t errlen)
{
    char *buf = cli_read_file(path);
    if (!buf) {
        if (snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno)) < 0) err[0] = 0;
        return NULL;
    }
    cJSON *o = cJSON_Parse(buf);
    if (!o && snprintf(err, errlen, "%s: byte %ld: not valid JSON", path,
                       cJSON_GetErrorPtr() ? (long)(cJSON_GetErrorPtr() - buf) : 0L) < 0)
        err[0] = 0;
    free(buf);
    return o;
}

/* Keeps the lines of metrics.jsonl whose epoch is <= last (after a resume). */
static int trim_metrics(const char *path, int last)
{
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
        if (o && !cli_json_num(o, "epoch", &e) && e <= last) {
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
    const int rc = len ? write_atomic(path, keep) : remove(path);
    free(keep);
    return rc;
}

/* ---- shared with eval -------------------------------------------------------- */

const char *cli_data_name(const char *dir)
{
    if (!strcmp(dir, CLI_FASHION_MNIST) || !strcmp(dir, CLI_FASHION_MNIST "/")) return "fashion-mnist";
    const char *s = dir + strlen(dir);
    while (s > dir && s[-1] == '/') s--;
    const char *b = s;
    while (b > dir && b[-1] != '/') b--;
    static _Thread_local char name[256];
    snprintf(name, sizeof name, "%.*s", (int)(s - b), b);
    return name[0] ? name : "data";
}

int cli_open_split(const char *dir, int kind, int train, int classes, int input, dp_dataset **ds)
{
    char err[1024] = "";
    const int rc = dp_dataset_open(dir, kind, train, classes, input, ds, err, sizeof err);
    if (rc) {
        fprintf(stderr, "dynopool: %s%s%s\n", err[0] ? "" : dir, err[0] ? "" : ": ", err[0] ? err : dp_strerror(rc));
        if (!strcmp(dir, CLI_FASHION_MNIST) && rc == DP_ERR_IO)
            fprintf(stderr, "dynopool: the default data come from Debian's package: "
                            "apt-get install dataset-fashion-mnist (or tools/deps.sh)\n");
    }
    return rc;
}

/* Top-1 accuracy (%) and mean cross-entropy of m on the images idx[0..n) of ds
 * (idx NULL: the first n). */
int cli_evaluate(dp_model *m, const dp_dataset *ds, const char *data, const dp_transform *t,
                 const int *idx, int n, int batch, int workers, double *loss, double *acc)
{
    const int k = dp_model_config_of(m)->classes;
    int *order = malloc(sizeof(int) * (size_t)n);
    float *logits = malloc(sizeof(float) * (size_t)batch * k);
    dp_loader *ld = NULL;
    char err[1024] = "";
    int rc = order && logits ? DP_OK : DP_ERR_NOMEM;
    for (int i = 0; !rc && i < n; i++) order[i] = idx ? idx[i] : i;
    if (!rc) rc = dp_loader_create(ds, t, batch, workers, &ld);
    if (!rc) rc = dp_loader_start(ld, order, n, 0, 0);
    double lsum = 0.0;
    long long hits = 0;
    const float *x;
    const int *lab;
    int nb;
    while (!rc && (rc = dp_loader_next(ld, &x, &lab, &nb, NULL, err, sizeof err)) == DP_OK) {
        if ((rc = dp_model_predict(m, x, nb, logits))) break;
        for (int i = 0; i < nb; i++) {
            const float *z = logits + (size_t)i * k;
            int best = 0;
            double mx = z[0], se = 0.0;
            for (int j = 1; j < k; j++) {
                if (z[j] > z[best]) best = j;
                if (z[j] > mx) mx = z[j];
            }
            for (int j = 0; j < k; j++) se += exp(z[j] - mx);
            lsum += log(se) + mx - z[lab[i]];
            hits += best == lab[i];
        }
    }
    if (rc == 1) rc = DP_OK;
    if (rc)
        fprintf(stderr, "dynopool: evaluation on %s (%d images, batch %d) failed: %s\n", data, n, batch,
                err[0] ? err : dp_strerror(rc));
    *loss = lsum / n;
    *acc = 100.0 * hits / n;
    dp_loader_free(ld);
    free(order);
    free(logits);
    return rc;
}

void cli_print_sizes(FILE *f, const dp_model_info *in, int input)
{
    fprintf(f, "%dx%d", input, input);
    for (int s = 0; s < in->n_stages; s++) fprintf(f, " -> %dx%d", in->sizes[s][0], in->sizes[s][1]);
}

/* ---- signals ---------------------------------------------------------------------- */

static volatile sig_atomic_t g_signal;

static void on_signal(int sig) { g_signal = sig; }

static void catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND; /* a second Ctrl-C kills at once */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* ---- the training loop ----------------------------------------------------------- */

/* Ends the live progress line (terminals only) so that a message starts on a
 * line of its own. */
static void end_live_line(int *live)
{
    if (*live) {
        putchar('\n');
        fflush(stdout);
    }
    *live = 0;
}

static int cmp_int(const void *a, const void *b)
{
    const int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Decodes the images idx[0..n) (idx NULL: the first n) of ds as an evaluation
 * will; prints the first error.  Only image folders decode on demand: the other
 * formats were read and checked whole when opened. */
static int check_images(const dp_dataset *ds, const dp_transform *t, const int *idx, int n, int workers)
{
    dp_dataset_info di;
    dp_dataset_info_get(ds, &di);
    if (di.kind != DP_DATA_FOLDER || n <= 0) return DP_OK;
    int *order = malloc(sizeof(int) * (size_t)n);
    dp_loader *ld = NULL;
    char err[1024] = "";
    int rc = order ? DP_OK : DP_ERR_NOMEM;
    for (int i = 0; !rc && i < n; i++) order[i] = idx ? idx[i] : i;
    if (!rc) rc = dp_loader_create(ds, t, 16, workers, &ld);
    if (!rc) rc = dp_loader_start(ld, order, n, 0, 0);
    const float *x;
    const int *lab;
    int nb;
    while (!rc && (rc = dp_loader_next(ld, &x, &lab, &nb, NULL, err, sizeof err)) == DP_OK) continue;
    if (rc == 1) rc = DP_OK;
    if (rc) fprintf(stderr, "dynopool: %s\n", err[0] ? err : dp_strerror(rc));
    dp_loader_free(ld);
    free(order);
    return rc;
}

typedef struct { /* position in the run, saved in every checkpoint */
    int epoch, batch;          /* the next step: epoch (0-based) and batch within it */
    double loss, task, gmacs;  /* sums over the epoch so far (per-batch means x batch) */
    long long correct, seen, capped;
    double best_acc;
    int best_epoch;
} progress;

static uint64_t mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void shuffle(int *order, int n, uint64_t seed)
{
    for (int i = 0; i < n; i++) order[i] = i;
    uint64_t s = seed;
    for (int i = n - 1; i > 0; i--) {
        s = mix(s);
        const int j = (int)((s >> 11) % (uint64_t)(i + 1));
        const int t = order[i];
        order[i] = order[j], order[j] = t;
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static void fmt_eta(char *b, size_t cap, double s)
{
    if (!(s >= 0) || s > 1e7) snprintf(b, cap, "--");
    else if (s >= 3600) snprintf(b, cap, "%d:%02d:%02d", (int)s / 3600, (int)s / 60 % 60, (int)s % 60);
    else snprintf(b, cap, "%d:%02d", (int)s / 60, (int)s % 60);
}

static void sizes_str(char *b, size_t cap, const dp_model_info *in)
{
    size_t o = 0;
    b[0] = 0;
    for (int s = 0; s < in->n_stages && o + 16 < cap; s++)
        o += (size_t)snprintf(b + o, cap - o, "%s%dx%d", s ? " " : "", in->sizes[s][0], in->sizes[s][1]);
}

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

/* o[k] = v as a JSON number that reads back as the same double: cJSON's own
 * printer may drop the last bit (and --resume must continue bit for bit). */
static void add_exact(cJSON *o, const char *k, double v)
{
    char b[32];
    snprintf(b, sizeof b, "%.17g", v);
    if (isfinite(v)) cJSON_AddRawToObject(o, k, b);
    else cJSON_AddNullToObject(o, k);
}

static char *progress_json(const progress *p)
{
    cJSON *o = cJSON_CreateObject();
    add_exact(o, "epoch", p->epoch);
    add_exact(o, "batch", p->batch);
    add_exact(o, "loss", p->loss);
    add_exact(o, "task", p->task);
    add_exact(o, "gmacs", p->gmacs);
    add_exact(o, "correct", (double)p->correct);
    add_exact(o, "seen", (double)p->seen);
    add_exact(o, "capped", (double)p->capped);
    add_exact(o, "best_acc", p->best_acc);
    add_exact(o, "best_epoch", p->best_epoch);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* Fills p from the checkpoint's "progress" metadata s; 0, or -1 with the first
 * bad field and its range in msg. */
static int progress_parse(const char *s, progress *p, char *msg, size_t cap)
{
    cJSON *o = s ? cJSON_Parse(s) : NULL;
    if (!cJSON_IsObject(o)) {
        snprintf(msg, cap, "%s, expected a JSON object (was it written by dynopool train?)",
                 s ? "is not valid JSON" : "is missing");
        cJSON_Delete(o);
        return -1;
    }
    static const struct { const char *k; double lo, hi; int flags; } F[10] = {
        {"epoch", 0, MAX_EPOCHS, CLI_WHOLE},      {"batch", 0, INT_MAX, CLI_WHOLE},
        {"loss", 0, DBL_MAX, 0},                  {"task", 0, DBL_MAX, 0},
        {"gmacs", 0, DBL_MAX, 0},                 {"correct", 0, MAX_COUNT, CLI_WHOLE},
        {"seen", 0, MAX_COUNT, CLI_WHOLE},        {"capped", 0, MAX_COUNT, CLI_WHOLE},
        {"best_acc", -1, 100, 0},                 {"best_epoch", 0, MAX_EPOCHS, CLI_WHOLE},
    };
    double v[10];
    int bad = 0;
    for (int i = 0; !bad && i < 10; i++) bad = cli_json_range(o, F[i].k, F[i].lo, F[i].hi, F[i].flags, &v[i], msg, cap);
    cJSON_Delete(o);
    if (bad) return -1;
    if (v[5] > v[6]) {
        snprintf(msg, cap, "field 'correct' = %.0f is more than 'seen' = %.0f", v[5], v[6]);
        return -1;
    }
    *p = (progress){(int)v[0], (int)v[1], v[2], v[3], v[4], (long long)v[5], (long long)v[6],
                    (long long)v[7], v[8], (int)v[9]};
    return 0;
}

static int save(dp_model *m, const char *dir, const char *file, const run_cfg *r, const progress *p,
                const float *mean, const float *std)
{
    char path[4200], err[1024] = "", epoch[32];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    snprintf(epoch, sizeof epoch, "%d", p->epoch);
    cJSON *dj = cJSON_CreateObject(), *rj = run_to_json(r);
    cJSON_AddStringToObject(dj, "name", cli_data_name(r->data));
    cJSON_AddStringToObject(dj, "variant", dp_variant_name(r->variant));
    cJSON_AddItemToObject(dj, "mean", cJSON_CreateFloatArray(mean, 3));
    cJSON_AddItemToObject(dj, "std", cJSON_CreateFloatArray(std, 3));
    char *ds = cJSON_PrintUnformatted(dj), *runs = cJSON_PrintUnformatted(rj), *prog = progress_json(p);
    cJSON_Delete(dj);
    cJSON_Delete(rj);
    const char *keys[] = {"epoch", "dataset", "run", "progress"};
    const char *vals[] = {epoch, ds, runs, prog};
    const int rc = ds && runs && prog ? dp_model_save(m, path, keys, vals, 4, err, sizeof err) : DP_ERR_NOMEM;
    if (rc)
        fprintf(stderr, "dynopool: cannot save the checkpoint: %s%s%s\n", err[0] ? "" : path, err[0] ? "" : ": ",
                err[0] ? err : dp_strerror(rc));
    free(ds);
    free(runs);
    free(prog);
    return rc;
}

/* The checkpoint of a run stopped mid-epoch, unless the model holds NaN or
 * infinite values: a diverged model never replaces the last good checkpoint. */
static int save_finite(dp_model *m, const run_cfg *r, const progress *p, const float *mean, const float *std)
{
    char first[128];
    const int bad = dp_model_nonfinite(m, first, sizeof first);
    if (bad > 0) {
        fprintf(stderr, "dynopool: the run diverged at epoch %d, step %d: %d tensors hold NaN or infinite values "
                        "(first: %s).\n  Nothing was saved after the last good checkpoint (%s/checkpoint.safetensors); "
                        "try a lower --lr, --wd or --lambda.\n", p->epoch + 1, p->batch, bad, first, r->out);
        return DP_ERR_NONFINITE;
    }
    return save(m, r->out, "checkpoint.safetensors", r, p, mean, std);
}

/* After an epoch: its line in metrics.jsonl (appended, synced) and on stdout. */
static int log_epoch(const run_cfg *r, const progress *p, const char *mpath, float lr, float lra, double vl,
                     double va, double tl, double ta, const dp_model_info *info, double ips, double wait,
                     double secs)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "epoch", p->epoch + 1);
    cJSON_AddNumberToObject(o, "epochs", r->epochs);
    cJSON_AddNumberToObject(o, "lr", lr);
    cJSON_AddNumberToObject(o, "lr_alpha", lra);
    cJSON_AddNumberToObject(o, "train_loss", p->loss / p->seen);
    cJSON_AddNumberToObject(o, "train_loss_task", p->task / p->seen);
    cJSON_AddNumberToObject(o, "train_loss_gmacs", p->gmacs / p->seen);
    cJSON_AddNumberToObject(o, "train_acc", 100.0 * p->correct / p->seen);
    if (r->val_split > 0) { /* only then: the lines of a run without one stay as they were */
        cJSON_AddNumberToObject(o, "val_loss", vl);
        cJSON_AddNumberToObject(o, "val_acc", va);
    }
    cJSON_AddNumberToObject(o, "test_loss", tl);
    cJSON_AddNumberToObject(o, "test_acc", ta);
    cJSON_AddNumberToObject(o, "gmacs", info->gmacs);
    cJSON_AddItemToObject(o, "sizes", pairs_json(info->sizes, NULL, info->n_stages));
    cJSON_AddItemToObject(o, "alphas", pairs_json(NULL, info->alphas, info->n_alphas));
    cJSON_AddNumberToObject(o, "capped", (double)p->capped);
    cJSON_AddNumberToObject(o, "images_per_s", ips);
    cJSON_AddNumberToObject(o, "data_wait", wait);
    cJSON_AddNumberToObject(o, "seconds", secs);
    char *line = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    /* O_NOFOLLOW: a link planted as metrics.jsonl does not make us append elsewhere */
    const int fd = open(mpath, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0666);
    FILE *f = fd >= 0 ? fdopen(fd, "a") : NULL;
    if (fd >= 0 && !f) close(fd);
    const int bad = !line || !f || fprintf(f, "%s\n", line) < 0 || fflush(f) || fsync(fileno(f));
    if (f) fclose(f);
    free(line);
    if (bad) {
        fprintf(stderr, "dynopool: cannot append to %s: %s\n", mpath, strerror(errno));
        return 1;
    }
    char sz[256];
    sizes_str(sz, sizeof sz, info);
    char val[64] = "";
    if (r->val_split > 0) snprintf(val, sizeof val, "val loss %.4f acc %.2f%%  ", vl, va);
    printf("epoch %d/%d  train loss %.4f acc %.2f%%  %stest loss %.4f acc %.2f%%  %.4f GMACs  sizes %s  "
           "%.0f img/s  data wait %.1f%%  %.0fs%s\n",
           p->epoch + 1, r->epochs, p->loss / p->seen, 100.0 * p->correct / p->seen, val, tl, ta, info->gmacs, sz,
           ips, 100.0 * wait, secs, p->capped ? "  (max side bound: alphas raised)" : "");
    fflush(stdout);
    return 0;
}

#define BEST_FILE "checkpoint-best.safetensors"

/* At the end: summary.json and the paper's Table 5.1 row, with the human design's
 * sizes beside the learned ones. */
static int report(dp_model *m, const run_cfg *r, const progress *p, const char *mpath, double session_s)
{
    dp_model_info info, hi = {0};
    dp_model_info_get(m, &info);
    double last_acc = 0, best_test = 0, e;
    FILE *f = fopen(mpath, "r");
    char line[1 << 16];
    while (f && fgets(line, sizeof line, f)) {
        cJSON *o = cJSON_Parse(line);
        cli_json_num(o, "test_acc", &last_acc);
        if (!cli_json_num(o, "epoch", &e) && (int)e == p->best_epoch) best_test = last_acc;
        cJSON_Delete(o);
    }
    if (f) fclose(f);
    dp_model *h = NULL;
    dp_model_config hc = r->cfg;
    hc.pool = DP_POOL_HUMAN;
    if (dp_model_create(&hc, &h) == DP_OK) dp_model_info_get(h, &hi);
    dp_model_free(h);
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
    cJSON_AddStringToObject(s, "best_checkpoint", BEST_FILE);
    cJSON_AddNumberToObject(s, "gmacs", info.gmacs);
    cJSON_AddNumberToObject(s, "human_gmacs", hi.gmacs);
    cJSON_AddNumberToObject(s, "params", (double)info.params);
    cJSON_AddItemToObject(s, "sizes", pairs_json(info.sizes, NULL, info.n_stages));
    cJSON_AddItemToObject(s, "alphas", pairs_json(NULL, info.alphas, info.n_alphas));
    cJSON_AddItemToObject(s, "human_sizes", pairs_json(hi.sizes, NULL, hi.n_stages));
    const int rc = write_json(r->out, "summary.json", s) ? 1 : 0;
    cJSON_Delete(s);
    char took[32], name[64], data[64], best[32];
    fmt_eta(took, sizeof took, session_s);
    printf("\nResult (the paper's Table 5.1 row; accuracy is top-1 on the test split, last epoch)\n");
    printf("  %-12s %-14s %-16s %9s %14s %9s %10s\n", "model", "pooling", "data", "accuracy", "best (epoch)",
           "GMACs", "params");
    snprintf(name, sizeof name, "%s x%g", dp_arch_name(r->cfg.arch), r->cfg.width);
    snprintf(data, sizeof data, "%s%s%s", cli_data_name(r->data), r->variant ? "/" : "",
             r->variant ? dp_variant_name(r->variant) : "");
    snprintf(best, sizeof best, "%.2f%% (%d)", best_test, p->best_epoch);
    printf("  %-12s %-14s %-16s %8.2f%% %14s %9.4f %10lld\n", name, dp_pool_name(r->cfg.pool), data, last_acc,
           best, info.gmacs, info.params);
    printf("  feature-map sizes, input -> each pooling stage:\n    human design  ");
    cli_print_sizes(stdout, &hi, r->cfg.size);
    printf("   (%.4f GMACs)\n    this run      ", hi.gmacs);
    cli_print_sizes(stdout, &info, r->cfg.size);
    printf("   (%.4f GMACs)\n", info.gmacs);
    if (info.n_alphas) {
        printf("    alphas       ");
        for (int i = 0; i < info.n_alphas; i++) printf(" (%.3f, %.3f)", info.alphas[i][0], info.alphas[i][1]);
        putchar('\n');
    }
    if (val)
        printf("  best epoch %d (%s): chosen on the validation split (%g%% of the\n"
               "    training images, held out); validation accuracy %.2f%%, test accuracy %.2f%%\n",
               p->best_epoch, BEST_FILE, 100.0 * r->val_split, p->best_acc, best_test);
    else
        printf("  best epoch %d (%s): chosen on the test split itself (no --val-split),\n"
               "    so its test accuracy %.2f%% is an optimistic estimate\n", p->best_epoch, BEST_FILE, best_test);
    printf("  run folder %s (checkpoint.safetensors, %s, metrics.jsonl, summary.json); this session %s\n",
           r->out, BEST_FILE, took);
    return rc;
}

/* The options of `train`: value type, range, and whether the option is a setting
 * of the run (then --resume, which takes them from run.json, refuses it).  The
 * ranges are those run.json is checked against on --resume (run_from_json). */
enum opt_id {
    O_MODEL, O_POOL, O_WIDTH, O_DATA, O_DATASET, O_CLASSES, O_INPUT, O_VARIANT, O_LIMIT, O_LIMIT_TEST,
    O_VAL_SPLIT, O_WORKERS, O_EPOCHS, O_BATCH, O_LR, O_ALPHA_LR, O_MOMENTUM, O_WD, O_LAMBDA, O_MAX_SIDE, O_SEED,
    O_OUT, O_RESUME, O_LOG_EVERY, O_INTERRUPT, O_POISON, O_COUNT
};
enum { V_TEXT, V_INT, V_NUM };
static const struct {
    const char *name;
    int type;
    double lo, hi; /* V_INT, V_NUM: the range [lo, hi] */
    int open;      /* V_NUM: lo itself excluded, (lo, hi] */
    int setting;   /* a setting of the run */
} OPTS[O_COUNT] = {
    [O_MODEL] = {"--model", V_TEXT, 0, 0, 0, 1},
    [O_POOL] = {"--pool", V_TEXT, 0, 0, 0, 1},
    [O_WIDTH] = {"--width", V_NUM, 0, MAX_WIDTH, 1, 1},
    [O_DATA] = {"--data", V_TEXT, 0, 0, 0, 1},
    [O_DATASET] = {"--dataset", V_TEXT, 0, 0, 0, 1},
    [O_CLASSES] = {"--classes", V_INT, 1, MAX_CLASSES, 0, 1},
    [O_INPUT] = {"--input", V_INT, MIN_INPUT_SIDE, MAX_INPUT_SIDE, 0, 1},
    [O_VARIANT] = {"--variant", V_TEXT, 0, 0, 0, 1},
    [O_LIMIT] = {"--limit", V_INT, 0, INT_MAX, 0, 1},
    [O_LIMIT_TEST] = {"--limit-test", V_INT, 0, INT_MAX, 0, 1},
    [O_VAL_SPLIT] = {"--val-split", V_NUM, 0, 1, 1, 1}, /* and < 1: checked where it is set */
    [O_WORKERS] = {"--workers", V_INT, 0, MAX_WORKERS, 0, 0},
    [O_EPOCHS] = {"--epochs", V_INT, 1, MAX_EPOCHS, 0, 0},
    [O_BATCH] = {"--batch", V_INT, 1, MAX_BATCH, 0, 1},
    [O_LR] = {"--lr", V_NUM, 0, MAX_LR, 1, 1},
    [O_ALPHA_LR] = {"--alpha-lr", V_NUM, 0, MAX_LR, 0, 1},
    [O_MOMENTUM] = {"--momentum", V_NUM, 0, 1, 0, 1},
    [O_WD] = {"--wd", V_NUM, 0, MAX_WD, 0, 1},
    [O_LAMBDA] = {"--lambda", V_NUM, 0, MAX_LAMBDA, 0, 1},
    [O_MAX_SIDE] = {"--max-side", V_INT, 0, MAX_SIDE, 0, 1},
    [O_SEED] = {"--seed", V_INT, 0, MAX_SEED, 0, 1},
    [O_OUT] = {"--out", V_TEXT, 0, 0, 0, 0},
    [O_RESUME] = {"--resume", V_TEXT, 0, 0, 0, 0},
    [O_LOG_EVERY] = {"--log-every", V_INT, 1, 86400, 0, 0},
    [O_INTERRUPT] = {"--interrupt-after", V_INT, 1, 1e18, 0, 0},
    [O_POISON] = {"--poison-after", V_INT, 1, 1e18, 0, 0},
};

typedef struct { /* what the command line asks beyond the run's settings */
    const char *resume;
    int log_every, workers;
    long interrupt_after, poison_after;
} train_opts;

static int copy_path(char *dst, size_t cap, const char *v, const char *opt)
{
    if (strlen(v) >= cap) return cli_usage_error(opt[2] == 'd' ? "--data: path too long: '%s'"
                                                                : "--out: path too long: '%s'", v);
    strcpy(dst, v);
    return 0;
}

static int parse_train(int argc, char **argv, run_cfg *r, train_opts *t)
{
    int set_epochs = 0, set_alr = 0, set_wd = 0, set_max = 0, changed = 0;
    char msg[160];
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(TRAIN_USAGE, stdout);
            return -1;
        }
        if (!strcmp(a, "--no-nesterov")) {
            r->nesterov = 0, changed = 1;
            continue;
        }
        if (a[0] != '-' || a[1] != '-') return cli_usage_error("unexpected argument '%s'", a);
        int k = 0;
        while (k < O_COUNT && strcmp(a, OPTS[k].name)) k++;
        if (k == O_COUNT) return cli_usage_error("unknown option '%s' (see dynopool train --help)", a);
        if (i + 1 >= argc) return cli_usage_error("option '%s' needs a value", a);
        const char *v = argv[++i];
        long n = 0;
        double d = 0;
        const double lo = OPTS[k].lo, hi = OPTS[k].hi;
        if (OPTS[k].type == V_INT && (cli_parse_long(v, &n) || n < (long)lo || n > (long)hi ||
                                      (k == O_MAX_SIDE && n == 1))) {
            if (k == O_MAX_SIDE)
                snprintf(msg, sizeof msg, "%s: expected 0 (no cap) or a side in [2, %d], got '%%s'", a, MAX_SIDE);
            else
                snprintf(msg, sizeof msg, "%s: expected an integer in [%.0f, %.0f], got '%%s'", a, lo, hi);
            return cli_usage_error(msg, v);
        }
        if (OPTS[k].type == V_NUM && (cli_parse_double(v, &d) || d < lo || d > hi || (OPTS[k].open && d == lo) ||
                                      (k == O_VAL_SPLIT && d >= 1))) {
            if (k == O_VAL_SPLIT)
                snprintf(msg, sizeof msg, "%s: expected a fraction in (0, 1), got '%%s'", a);
            else
                snprintf(msg, sizeof msg, "%s: expected a number in %c%g, %g], got '%%s'", a,
                         OPTS[k].open ? '(' : '[', lo, hi);
            return cli_usage_error(msg, v);
        }
        changed |= OPTS[k].setting;
        int rc = 0;
        switch ((enum opt_id)k) {
        case O_MODEL:
            if ((r->cfg.arch = dp_arch_parse(v)) < 0)
                rc = cli_usage_error("--model: expected vgg16, resnet50 or mobilenetv2, got '%s'", v);
            break;
        case O_POOL:
            if ((r->cfg.pool = dp_pool_parse(v)) < 0)
                rc = cli_usage_error("--pool: expected human, dynopool or shape-adaptor, got '%s'", v);
            break;
        case O_WIDTH: r->cfg.width = (float)d; break;
        case O_DATA: rc = copy_path(r->data, sizeof r->data, strcmp(v, "fashion-mnist") ? v : CLI_FASHION_MNIST, a); break;
        case O_DATASET:
            if ((r->kind = dp_data_kind_parse(v)) < 0)
                rc = cli_usage_error("--dataset: expected idx, cifar10, cifar100 or folder, got '%s'", v);
            break;
        case O_CLASSES: r->classes = (int)n; break;
        case O_INPUT: r->input = (int)n; break;
        case O_VARIANT:
            if ((r->variant = dp_variant_parse(v)) < 0)
                rc = cli_usage_error("--variant: expected none, stretch-v, tile or large, got '%s'", v);
            break;
        case O_LIMIT: r->limit = (int)n; break;
        case O_LIMIT_TEST: r->limit_test = (int)n; break;
        case O_VAL_SPLIT: r->val_split = d; break;
        case O_WORKERS: t->workers = (int)n; break;
        case O_EPOCHS: r->epochs = (int)n, set_epochs = 1; break;
        case O_BATCH: r->batch = (int)n; break;
        case O_LR: r->lr = d, r->lr_set = 1; break;
        case O_ALPHA_LR: r->alpha_lr = d, set_alr = 1; break;
        case O_MOMENTUM: r->momentum = d; break;
        case O_WD: r->wd = d, set_wd = 1; break;
        case O_LAMBDA: r->lambda = d; break;
        case O_MAX_SIDE: r->max_side = (int)n, set_max = 1; break;
        case O_SEED: r->seed = (unsigned long long)n, r->cfg.seed = r->seed; break;
        case O_OUT: rc = copy_path(r->out, sizeof r->out, v, a); break;
        case O_RESUME: t->resume = v; break;
        case O_LOG_EVERY: t->log_every = (int)n; break;
        case O_INTERRUPT: t->interrupt_after = n; break;
        case O_POISON: t->poison_after = n; break;
        case O_COUNT: break;
        }
        if (rc) return rc;
    }
    if (t->resume && changed)
        return cli_usage_error("%s: --resume takes the run's settings from its run.json; "
                               "only --epochs, --workers, --log-every and the test options may be given",
                               t->resume);
    if (t->resume && r->out[0]) return cli_usage_error("--out and --resume %s: give one of them", t->resume);
    if (!set_epochs) r->epochs = r->cfg.pool == DP_POOL_HUMAN ? 200 : 250;
    else if (t->resume) r->epochs = -r->epochs; /* marks "override" for the resume path */
    if (!set_alr) r->alpha_lr = -1; /* lr / 10, once lr is known */
    if (!set_wd) r->wd = r->cfg.arch == DP_MOBILENETV2 ? 4e-5 : 5e-4;
    if (!set_max) r->max_side = -1; /* 2x the input, once it is known */
    return 0;
}

/* Before --resume builds a network: the checkpoint's metadata must describe the
 * tensors it holds (dp_checkpoint_config) and the run being resumed (cfg, from
 * run.json and the data), so that no file makes it allocate more than it holds. */
static int check_resume(const char *ck, const dp_model_config *cfg)
{
    char err[1024] = "";
    dp_model_config c;
    const int rc = dp_checkpoint_config(ck, &c, err, sizeof err);
    if (rc) {
        fprintf(stderr, "dynopool: cannot resume: %s\n", err[0] ? err : dp_strerror(rc));
        return 1;
    }
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
        if (strcmp(v[0][k], v[1][k])) {
            fprintf(stderr, "dynopool: cannot resume: %s: checkpoint has %s = %s, this model has %s (from run.json "
                            "and the data)\n", ck, key[k], v[0][k], v[1][k]);
            return 1;
        }
    return 0;
}

int cmd_train(int argc, char **argv)
{
    run_cfg r;
    memset(&r, 0, sizeof r);
    r.cfg = dp_model_defaults();
    r.cfg.pool = DP_POOL_DYNOPOOL;
    r.kind = DP_DATA_AUTO, r.variant = DP_VARIANT_NONE, r.batch = 128, r.nesterov = 1;
    r.lr = 0.1, r.momentum = 0.9, r.seed = 1;
    strcpy(r.data, CLI_FASHION_MNIST);
    train_opts opt = {.log_every = 30, .workers = 1};
    int rc = parse_train(argc, argv, &r, &opt);
    if (rc) return rc < 0 ? 0 : rc;
    const char *resume = opt.resume;
    const int log_every = opt.log_every, workers = opt.workers;
    const long interrupt_after = opt.interrupt_after, poison_after = opt.poison_after;

    char err[1024] = "";
    cJSON *rj = NULL;
    if (resume) { /* settings from the run folder */
        char path[4200];
        snprintf(path, sizeof path, "%s/run.json", resume);
        const int ep = r.epochs;
        /* one trainer per folder, from before the first read to the end (a folder
         * without run.json is no run: the read below says so) */
        if (access(path, F_OK) == 0) {
            if (lock_run(resume) < 0) return 1;
            remove_stale_temps(resume);
        }
        if (!(rj = read_json(path, err, sizeof err))) {
            fprintf(stderr, "dynopool: cannot resume: %s\n", err);
            return 1;
        }
        char msg[256];
        if (run_from_json(rj, &r, msg, sizeof msg)) {
            fprintf(stderr, "dynopool: cannot resume: %s: %s\n", path, msg);
            cJSON_Delete(rj);
            return 1;
        }
        snprintf(r.out, sizeof r.out, "%s", resume);
        if (ep < 0 && -ep != r.epochs) { /* a new length: the schedule follows it from here on */
            r.epochs = -ep;
            cJSON_ReplaceItemInObjectCaseSensitive(rj, "epochs", cJSON_CreateNumber(r.epochs));
            if (write_json(r.out, "run.json", rj)) {
                cJSON_Delete(rj);
                return 1;
            }
        }
        cJSON_Delete(rj);
        r.cfg.seed = r.seed;
    }

    /* data */
    dp_dataset *tr = NULL, *te = NULL;
    if (cli_open_split(r.data, r.kind, 1, r.classes, r.input, &tr) ||
        cli_open_split(r.data, r.kind, 0, r.classes, r.input, &te)) {
        dp_dataset_free(tr);
        return 1;
    }
    dp_dataset_info di, ti;
    dp_dataset_info_get(tr, &di);
    dp_dataset_info_get(te, &ti);
    const int n_train = r.limit && r.limit < di.n ? r.limit : di.n;
    const int n_test = r.limit_test && r.limit_test < ti.n ? r.limit_test : ti.n;
    /* --val-split: n_val of the n_train images held out, chosen from the seed; the
     * network trains on the other n_fit (without it: all n_train, as always) */
    int *split = NULL, n_val = 0, n_fit = n_train;
    if (r.val_split > 0) {
        n_val = (int)floor(r.val_split * n_train + 0.5);
        if (n_val < 1 || n_val >= n_train) {
            fprintf(stderr, "dynopool: --val-split %g holds out %d of the %d training images: expected at least "
                            "one image on each side\n", r.val_split, n_val, n_train);
            rc = 1;
            goto fail_data;
        }
        if (!(split = malloc(sizeof(int) * (size_t)n_train))) {
            rc = DP_ERR_NOMEM;
            fprintf(stderr, "dynopool: %s\n", dp_strerror(rc));
            goto fail_data;
        }
        shuffle(split, n_train, mix(r.seed ^ 0x76616c73706c6974ULL)); /* split[0..n_val): validation */
        qsort(split, (size_t)n_val, sizeof(int), cmp_int);
        qsort(split + n_val, (size_t)(n_train - n_val), sizeof(int), cmp_int);
        n_fit = n_train - n_val;
    }
    float mean[3], sd[3];
    if ((rc = dp_dataset_stats(tr, mean, sd, err, sizeof err))) {
        fprintf(stderr, "dynopool: %s%s%s\n", err[0] ? "" : r.data, err[0] ? "" : ": pixel statistics: ",
                err[0] ? err : dp_strerror(rc));
        goto fail_data;
    }
    dp_transform ttr = dp_transform_defaults(tr, 1, r.variant), tte = dp_transform_defaults(te, 0, r.variant);
    dp_transform tval = dp_transform_defaults(tr, 0, r.variant); /* held-out images are seen as test images */
    memcpy(ttr.mean, mean, sizeof mean), memcpy(ttr.std, sd, sizeof sd);
    memcpy(tte.mean, mean, sizeof mean), memcpy(tte.std, sd, sizeof sd);
    memcpy(tval.mean, mean, sizeof mean), memcpy(tval.std, sd, sizeof sd);
    /* every image the epochs will evaluate, decoded once now: a bad one stops the
     * run before it trains, not after an epoch that would then be lost */
    if ((rc = check_images(te, &tte, NULL, n_test, workers)) ||
        (split && (rc = check_images(tr, &tval, split, n_val, workers))))
        goto fail_data;
    r.cfg.in_ch = di.channels;
    r.cfg.size = dp_variant_size(r.variant, di.size);
    r.cfg.classes = di.classes;
    if (r.max_side < 0) r.max_side = 2 * r.cfg.size;
    if (!resume && !r.lr_set && di.kind == DP_DATA_FOLDER) r.lr = 0.01; /* fine-grained 224-pixel sets */
    if (r.alpha_lr < 0) r.alpha_lr = r.lr / 10;
    if (!r.out[0])
        snprintf(r.out, sizeof r.out, "runs/%s-%s%s%s-%s", dp_arch_name(r.cfg.arch), dp_pool_name(r.cfg.pool),
                 r.variant ? "-" : "", r.variant ? dp_variant_name(r.variant) : "", cli_data_name(r.data));

    if (ttr.pad > di.size) { /* the random crop (docs/guide.md) needs images at least as wide as its padding */
        fprintf(stderr, "dynopool: %s: the images are %dx%d, smaller than the random crop's zero padding of %d "
                        "pixels; training needs images of at least %dx%d\n",
                r.data, di.size, di.size, ttr.pad, ttr.pad, ttr.pad);
        rc = 1;
        goto fail_data;
    }

    /* model and run folder */
    dp_model *m = NULL;
    char ck[4200], mpath[4200];
    snprintf(ck, sizeof ck, "%s/checkpoint.safetensors", r.out);
    snprintf(mpath, sizeof mpath, "%s/metrics.jsonl", r.out);
    if (resume && (rc = check_resume(ck, &r.cfg))) goto fail_data;
    if ((rc = dp_model_create(&r.cfg, &m))) {
        fprintf(stderr, "dynopool: cannot build %s (%s) for the %dx%dx%d inputs of %s: %s\n", dp_arch_name(r.cfg.arch),
                dp_pool_name(r.cfg.pool), r.cfg.in_ch, r.cfg.size, r.cfg.size, r.data,
                rc == DP_ERR_SIZE ? "the images are too small for its pooling stages (try --pool dynopool, whose "
                                    "maps keep 2 cells, or larger images)" : dp_strerror(rc));
        goto fail_data;
    }
    progress p = {0};
    p.best_acc = -1;
    if (resume) {
        if ((rc = dp_model_load(m, ck, err, sizeof err))) {
            if (err[0]) fprintf(stderr, "dynopool: cannot resume: %s\n", err);
            else fprintf(stderr, "dynopool: cannot resume from %s: %s\n", ck, dp_strerror(rc));
            goto fail_model;
        }
        char msg[256];
        const char *em = dp_model_meta(m, "epoch");
        const int steps = (n_train + r.batch - 1) / r.batch;
        if (progress_parse(dp_model_meta(m, "progress"), &p, msg, sizeof msg)) {
            fprintf(stderr, "dynopool: cannot resume: %s: metadata 'progress' %s\n", ck, msg);
            rc = 1;
            goto fail_model;
        }
        if (p.batch > steps || (em && strtol(em, NULL, 10) != p.epoch) || p.best_epoch > p.epoch) {
            if (p.batch > steps)
                snprintf(msg, sizeof msg, "field 'batch' = %d, expected at most the %d steps of an epoch of %s",
                         p.batch, steps, r.data);
            else if (p.best_epoch > p.epoch)
                snprintf(msg, sizeof msg, "field 'best_epoch' = %d is after 'epoch' = %d", p.best_epoch, p.epoch);
            else
                snprintf(msg, sizeof msg, "field 'epoch' = %d, but metadata 'epoch' = '%.20s'", p.epoch, em);
            fprintf(stderr, "dynopool: cannot resume: %s: metadata 'progress' %s\n", ck, msg);
            rc = 1;
            goto fail_model;
        }
        if (trim_metrics(mpath, p.epoch)) {
            fprintf(stderr, "dynopool: cannot rewrite %s: %s\n", mpath, strerror(errno));
            rc = 1;
            goto fail_model;
        }
        printf("resuming %s at epoch %d, step %d (from %s)\n", r.out, p.epoch + 1, p.batch + 1, ck);
    } else {
        if (cli_mkdirs(r.out)) {
            fprintf(stderr, "dynopool: cannot create %s: %s\n", r.out, strerror(errno));
            rc = 1;
            goto fail_model;
        }
        if (lock_run(r.out) < 0) { /* before the look: a run starting there now has no checkpoint yet */
            rc = 1;
            goto fail_model;
        }
        struct stat st;
        if (stat(ck, &st) == 0) {
            fprintf(stderr, "dynopool: %s already holds a run; continue it with "
                            "'%s train --resume %s', or choose another --out\n", r.out, cli_prog, r.out);
            rc = 2;
            goto fail_model;
        }
        remove_stale_temps(r.out);
        cJSON *o = run_to_json(&r);
        dp_model *h = NULL;
        dp_model_config hc = r.cfg;
        hc.pool = DP_POOL_HUMAN;
        dp_model_info hi;
        if (!dp_model_create(&hc, &h) && !dp_model_info_get(h, &hi))
            cJSON_AddItemToObject(o, "human_sizes", pairs_json(hi.sizes, NULL, hi.n_stages));
        dp_model_free(h);
        rc = write_json(r.out, "run.json", o);
        cJSON_Delete(o);
        remove(mpath);
        if (rc) goto fail_model;
    }
    if (p.epoch >= r.epochs) {
        printf("%s: all %d epochs are done already (use --epochs to extend)\n", r.out, r.epochs);
        rc = report(m, &r, &p, mpath, 0.0); /* (again): an interruption may have come before it */
        goto fail_model;
    }

    dp_train_config tc = dp_train_defaults(r.cfg.arch);
    tc.momentum = (float)r.momentum;
    tc.weight_decay = (float)r.wd, tc.nesterov = r.nesterov, tc.lambda = (float)r.lambda;
    tc.max_side = r.max_side;
    dp_loader *ld = NULL;
    int *order = malloc(sizeof(int) * (size_t)di.n);
    if (!order || (rc = dp_loader_create(tr, &ttr, r.batch, workers, &ld))) {
        fprintf(stderr, "dynopool: cannot start the data loader for %s (batch %d, %d workers): %s\n", r.data, r.batch,
                workers, dp_strerror(rc ? rc : DP_ERR_NOMEM));
        rc = 1;
        goto fail_loop;
    }
    dp_model_info info;
    dp_model_info_get(m, &info);
    const int tty = isatty(fileno(stdout));
    char nval[48] = "";
    if (split) snprintf(nval, sizeof nval, " / %d validation", n_val);
    printf("training %s (%s, width %g) on %s%s%s: %d train%s / %d test images of %dx%dx%d, %d classes\n",
           dp_arch_name(r.cfg.arch), dp_pool_name(r.cfg.pool), r.cfg.width, cli_data_name(r.data),
           r.variant ? ", variant " : "", r.variant ? dp_variant_name(r.variant) : "", n_fit, nval, n_test,
           r.cfg.in_ch, r.cfg.size, r.cfg.size, r.cfg.classes);
    printf("  %d epochs, batch %d, lr %g (alphas %g), cosine, momentum %g%s, wd %g, lambda %g, "
           "max side %d, seed %llu\n  %.4f GMACs per image, %lld parameters; run folder %s\n",
           r.epochs, r.batch, r.lr, r.alpha_lr, r.momentum, r.nesterov ? " Nesterov" : "", r.wd, r.lambda,
           r.max_side, r.seed, info.gmacs, info.params, r.out);
    fflush(stdout);
    catch_signals();
    const int steps_per_epoch = (n_fit + r.batch - 1) / r.batch;
    long steps_here = 0;
    const double t_run = now_s();
    dp_cpu_mark cpu_mark = {{0}, 0};
    if (cli_threads_auto) dp_threads_idle_since(&cpu_mark);
    int diverged = 0, step_failed = 0, live = 0; /* live: a progress line without its newline is on the terminal */
    for (; p.epoch < r.epochs && !g_signal && !diverged; p.epoch++, p.batch = 0) {
        const double cosf = 0.5 * (1.0 + cos(3.14159265358979323846 * p.epoch / r.epochs));
        const float lr = (float)(r.lr * cosf), lra = (float)(r.alpha_lr * cosf);
        if (!split) {
            shuffle(order, di.n, mix(r.seed * 1000003ULL + (uint64_t)p.epoch));
        } else { /* the same order, over the images not held out */
            shuffle(order, n_fit, mix(r.seed * 1000003ULL + (uint64_t)p.epoch));
            for (int i = 0; i < n_fit; i++) order[i] = split[n_val + order[i]];
        }
        if (p.batch == 0) p.loss = p.task = p.gmacs = 0, p.correct = p.seen = p.capped = 0;
        if ((rc = dp_loader_start(ld, order, n_fit, p.batch, mix(r.seed ^ 0xda7aULL) + (uint64_t)p.epoch))) {
            fprintf(stderr, "dynopool: cannot start epoch %d of %s at step %d: %s\n", p.epoch + 1, r.data, p.batch + 1,
                    dp_strerror(rc));
            break;
        }
        double wait_sum = 0.0, t_epoch = now_s(), t_log = t_epoch, t_ref = t_epoch;
        long imgs_here = 0, steps_epoch = 0;
        const float *x;
        const int *lab;
        int nb;
        double w;
        while (!g_signal && (rc = dp_loader_next(ld, &x, &lab, &nb, &w, err, sizeof err)) == DP_OK) {
            wait_sum += w;
            dp_step_stats st;
            rc = dp_model_train_step(m, x, lab, nb, &tc, poison_after && steps_here >= poison_after ? INFINITY : lr,
                                     lra, &st);
            if (rc == DP_ERR_NONFINITE) {
                end_live_line(&live);
                fprintf(stderr, "dynopool: the loss is not finite at epoch %d, step %d (lr %g): the run "
                                "diverged.\n  Nothing was saved after the last good checkpoint (%s); "
                                "try a lower --lr or --lambda.\n",
                        p.epoch + 1, p.batch + 1, (double)lr, access(ck, F_OK) == 0 ? ck : "none yet");
                diverged = 1;
                break;
            }
            if (rc) {
                end_live_line(&live);
                char first[128];
                const int bad = dp_model_nonfinite(m, first, sizeof first);
                if (bad > 0) { /* the step's update went to infinity (e.g. a huge --lr): a divergence */
                    fprintf(stderr, "dynopool: the training diverged at epoch %d, step %d (lr %g): after the "
                                    "update %d tensors hold NaN or infinite values (first: %s).\n  Nothing was "
                                    "saved after the last good checkpoint (%s); try a lower --lr.\n",
                            p.epoch + 1, p.batch + 1, (double)lr, bad, first, access(ck, F_OK) == 0 ? ck : "none yet");
                    diverged = 1;
                } else {
                    fprintf(stderr, "dynopool: training step %d of epoch %d on %s failed: %s\n", p.batch + 1,
                            p.epoch + 1, r.data, dp_strerror(rc));
                    step_failed = 1;
                }
                break;
            }
            p.loss += st.loss * nb, p.task += st.loss_task * nb, p.gmacs += st.loss_gmacs * nb;
            p.correct += st.correct, p.seen += nb, p.capped += st.capped;
            p.batch++, steps_here++, steps_epoch++, imgs_here += nb;
            if (interrupt_after && steps_here == interrupt_after) raise(SIGINT);
            const double t = now_s();
            if (tty ? t - t_ref >= 0.25 || p.batch == steps_per_epoch : t - t_log >= log_every) {
                dp_model_info_get(m, &info);
                char eta[32], sz[256];
                /* the current epoch's pace: maps that grow or shrink change the step time */
                const double per_step = (t - t_epoch) / steps_epoch;
                fmt_eta(eta, sizeof eta, per_step * ((double)(r.epochs - p.epoch) * steps_per_epoch - p.batch));
                sizes_str(sz, sizeof sz, &info);
                char line[512];
                snprintf(line, sizeof line,
                         "epoch %d/%d  step %d/%d  loss %.4f  acc %.2f%%  %.0f img/s  ETA %s  sizes %s  %.4f GMACs%s",
                         p.epoch + 1, r.epochs, p.batch, steps_per_epoch, p.loss / p.seen,
                         100.0 * p.correct / p.seen, imgs_here / (t - t_epoch), eta, sz, info.gmacs,
                         p.capped ? "  (max side bound)" : "");
                if (tty) { /* one live line, cut to the terminal's width so that \r can redraw it */
                    struct winsize ws;
                    const int cols = ioctl(fileno(stdout), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20 ? ws.ws_col : 200;
                    printf("\r\033[K%.*s", cols - 1, line);
                    live = 1;
                } else {
                    puts(line);
                }
                fflush(stdout);
                t_ref = t_log = t;
            }
        }
        if (rc == 1 && !g_signal) { /* the epoch's end: its summary line replaces the live one */
            if (live) printf("\r\033[K");
            live = 0;
        } else {
            end_live_line(&live); /* what follows (an interruption, an error) starts on a line of its own */
        }
        if (rc == 1) rc = DP_OK;
        if (rc && !diverged) {
            if (err[0]) { /* the data failed (an unreadable image): keep what was learned */
                fprintf(stderr, "dynopool: %s\n", err);
                if (p.seen && !save_finite(m, &r, &p, mean, sd))
                    fprintf(stderr, "dynopool: checkpoint saved at epoch %d step %d; fix or remove the file, "
                                    "then: %s train --resume %s\n", p.epoch + 1, p.batch, cli_prog, r.out);
            } else if (!step_failed) {
                fprintf(stderr, "dynopool: preparing step %d of epoch %d from %s failed: %s\n", p.batch + 1,
                        p.epoch + 1, r.data, dp_strerror(rc));
            }
            break;
        }
        if (diverged || g_signal) break;
        /* end of the epoch: validation, test, log, checkpoints */
        const double t_train = now_s() - t_epoch;
        double tl, ta, vl = 0, va = 0;
        if (split && (rc = cli_evaluate(m, tr, r.data, &tval, split, n_val, r.batch, workers, &vl, &va))) break;
        if ((rc = cli_evaluate(m, te, r.data, &tte, NULL, n_test, r.batch, workers, &tl, &ta))) break;
        /* a diverged model is never saved, even when every step's loss was finite
         * (a huge weight decay can blow the weights up between two losses) */
        char first[128], why[400];
        const int bad = dp_model_nonfinite(m, first, sizeof first);
        if (bad || !isfinite(tl) || (split && !isfinite(vl))) {
            size_t o = 0;
            why[0] = 0;
            if (split && !isfinite(vl))
                o += (size_t)snprintf(why + o, sizeof why - o, "the validation loss is %s",
                                      isnan(vl) ? "NaN" : "infinite");
            if (!isfinite(tl) && o < sizeof why)
                o += (size_t)snprintf(why + o, sizeof why - o, "%sthe test loss is %s", o ? ", " : "",
                                      isnan(tl) ? "NaN" : "infinite");
            if (bad > 0 && o < sizeof why)
                snprintf(why + o, sizeof why - o, "%s%d tensors hold NaN or infinite values (first: %s)",
                         o ? ", " : "", bad, first);
            fprintf(stderr, "dynopool: the run diverged in epoch %d: %s.\n  Nothing was saved after the last good "
                            "checkpoint (%s); try a lower --lr, --wd or --lambda.\n",
                    p.epoch + 1, why, access(ck, F_OK) == 0 ? ck : "none yet");
            diverged = 1;
            break;
        }
        dp_model_info_get(m, &info);
        const double chosen = split ? va : ta; /* the best epoch: on held-out training images if any */
        const int improved = chosen > p.best_acc;
        if (improved) p.best_acc = chosen, p.best_epoch = p.epoch + 1;
        if ((rc = log_epoch(&r, &p, mpath, lr, lra, vl, va, tl, ta, &info, imgs_here / t_train,
                            t_train > 0 ? wait_sum / t_train : 0.0, t_train)))
            break;
        if (cli_threads_auto) { /* the load changed during the epoch: follow it (docs/engine.md, "Threads") */
            const int want = dp_threads_idle_since(&cpu_mark), had = dp_threads();
            if (want != had) {
                dp_set_threads(want);
                printf("threads: %d -> %d (other processes keep %d of %d cores busy; --threads N fixes it)\n", had,
                       want, dp_threads_available() - want, dp_threads_available());
            }
        }
        progress next = p;
        next.epoch++, next.batch = 0;
        /* the best first: a crash between the two saves repeats this epoch, which
         * then writes both again */
        if (improved && (rc = save(m, r.out, BEST_FILE, &r, &next, mean, sd))) break;
        if ((rc = save(m, r.out, "checkpoint.safetensors", &r, &next, mean, sd))) break;
    }
    if (g_signal && !diverged && rc == DP_OK) {
        const int sig = g_signal;
        rc = save_finite(m, &r, &p, mean, sd);
        char where[64];
        if (p.batch) snprintf(where, sizeof where, "in epoch %d after step %d", p.epoch + 1, p.batch);
        else snprintf(where, sizeof where, "after epoch %d", p.epoch);
        fprintf(stderr, "dynopool: %s %s; %s\n  continue with: %s train --resume %s\n",
                sig == SIGTERM ? "terminated" : "interrupted", where,
                rc ? "the checkpoint could NOT be saved" : "checkpoint saved", cli_prog, r.out);
        rc = rc ? 1 : 128 + sig;
        goto fail_loop;
    }
    if (diverged || rc) {
        rc = 1;
        goto fail_loop;
    }
    rc = report(m, &r, &p, mpath, now_s() - t_run);
fail_loop:
    dp_loader_free(ld);
    free(order);
fail_model:
    dp_model_free(m);
fail_data:
    free(split);
    dp_dataset_free(tr);
    dp_dataset_free(te);
    return rc < 0 ? 1 : rc;
}

int cli_mkdirs(const char *path)
{
    char p[4096];
    snprintf(p, sizeof p, "%s", path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(p, 0777) && errno != EEXIST) return -1;
        *s = '/';
    }
    return mkdir(p, 0777) && errno != EEXIST ? -1 : 0;
}
