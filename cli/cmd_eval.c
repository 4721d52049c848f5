/* cmd_eval.c — `dynopool eval`: a checkpoint's accuracy, loss, GMACs and sizes
 * on a dataset split, with the normalisation and variant it was trained with. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "commands.h"
#include "seg_train.h"
#include "common.h"
#include "evaluate.h"
#include "run.h"

static const char *const EVAL_USAGE =
    "Usage: dynopool eval --checkpoint F|RUN_DIR [--best] [--data DIR] [options] [--json]\n"
    "\n"
    "Top-1 accuracy and mean cross-entropy of a trained model on a dataset split, with\n"
    "its GMACs per image, parameters, the map size after every pooling stage and the\n"
    "alphas.  The images are normalised and transformed (--variant) as in training;\n"
    "both are read from the checkpoint.\n"
    "\n"
    "  --checkpoint F   a checkpoint written by dynopool train, or its run folder (then\n"
    "                   its last checkpoint, checkpoint.safetensors)\n"
    "  --best           with a run folder: its best epoch's checkpoint-best.safetensors\n"
    "                   (chosen on the validation split with train --val-split, else on\n"
    "                   the test split)\n"
    "  --data DIR       dataset folder (default: the one the model was trained on)\n"
    "  --dataset K      idx | cifar10 | cifar100 | folder (default: detect)\n"
    "  --split S        test | train                               (default test)\n"
    "  --limit N        the first N images only\n"
    "  --batch B        images per forward pass                    (default 256)\n"
    "  --workers N      loader threads                             (default 1)\n"
    "  --max-side N     refuse a checkpoint whose alphas make a map side above N\n"
    "                   (default: twice the input side, as train; 0: no limit)\n"
    "  --json           one JSON object\n"
    "A loss that is not finite (a diverged model) is reported and exits 1.\n"
    "Example:\n"
    "  dynopool eval --checkpoint runs/fmnist/checkpoint.safetensors --json\n";

typedef struct {
    const char *ckpt, *data;
    char path[4200]; /* a run folder's checkpoint */
    int kind, train, json, workers, best, limit, batch, max_side, max_side_set;
} eval_opts;

static int split_parse(const char *s) { return !strcmp(s, "test") ? 0 : !strcmp(s, "train") ? 1 : -1; }

/* The options; 0, or CLI_HELP, or EXIT_USAGE. */
static int parse(eval_opts *e, int argc, char **argv)
{
    *e = (eval_opts){.kind = DP_DATA_AUTO, .workers = 1, .batch = 256};
    cli_opt opts[] = {
        {"--checkpoint", CLI_TEXT, .dst = &e->ckpt},
        {"--best", CLI_FLAG, .dst = &e->best},
        {"--data", CLI_TEXT, .dst = &e->data},
        {"--dataset", CLI_NAME, &e->kind, .want = "idx, cifar10, cifar100 or folder", .to_enum = dp_data_kind_parse},
        {"--split", CLI_NAME, &e->train, .want = "test or train", .to_enum = split_parse},
        {"--limit", CLI_INT, &e->limit, .lo = 0, .hi = 2147483647.0},
        {"--batch", CLI_INT, &e->batch, .lo = 1, .hi = RUN_MAX_BATCH}, /* the train command's range */
        {"--workers", CLI_INT, &e->workers, .lo = 0, .hi = CLI_MAX_WORKERS},
        {"--max-side", CLI_INT, &e->max_side, 2, 1 << 20, CLI_OR_ZERO,
         .want = "0 (no limit) or a side in [2, 1048576]"},
        {"--json", CLI_FLAG, .dst = &e->json},
    };
    cli_cmd c = {"eval", EVAL_USAGE, 0, .opts = opts, .n_opts = sizeof opts / sizeof opts[0]};
    const int rc = cli_parse(&c, argc, argv);
    if (rc) return rc;
    e->max_side_set = opts[8].set;
    if (e->data && !strcmp(e->data, "fashion-mnist")) e->data = CLI_FASHION_MNIST;
    if (!e->ckpt) return cli_usage("eval", "%s", "eval needs --checkpoint FILE");
    struct stat st;
    if (stat(e->ckpt, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(e->path, sizeof e->path, "%s/%s", e->ckpt, e->best ? RUN_BEST : RUN_CHECKPOINT);
        e->ckpt = e->path;
    } else if (e->best) {
        return cli_usage("eval", "--best picks the best checkpoint of a run folder, and '%s' is no folder", e->ckpt);
    }
    return 0;
}

/* The model of the checkpoint, loaded; NULL after saying why. */
static dp_model *open_checkpoint(const char *ckpt, dp_model_config *cfg)
{
    char err[1024] = "";
    int rc = dp_checkpoint_config(ckpt, cfg, err, sizeof err);
    dp_model *m = NULL;
    if (!rc && ((rc = dp_model_create(cfg, &m)) || (rc = dp_model_set_precision(m, cli_precision)))) {
        cli_fail("%s: cannot build its %s (%s, width %g) for %dx%dx%d inputs: %s", ckpt, dp_arch_name(cfg->arch),
                 dp_pool_name(cfg->pool), (double)cfg->width, cfg->in_ch, cfg->size, cfg->size, dp_strerror(rc));
        dp_model_free(m);
        return NULL;
    }
    if (!rc) rc = dp_model_load(m, ckpt, err, sizeof err);
    if (rc) {
        cli_fail("%s%s%s", err[0] ? "" : ckpt, err[0] ? "" : ": ", err[0] ? err : dp_strerror(rc));
        dp_model_free(m);
        return NULL;
    }
    return m;
}

/* Alphas a checkpoint brings may make maps far larger than training allowed
 * (alpha 0.01: a 2800x2800 map from 28x28): refused before any memory goes.
 * info := the model's counts (evaluation leaves the alphas as loaded); 0, or 1
 * after saying why. */
static int check_sides(const eval_opts *e, dp_model *m, const dp_model_config *cfg, dp_model_info *info)
{
    const long cap = e->max_side_set ? e->max_side : run_default_max_side(cfg->size);
    const int rc = dp_model_info_get(m, info);
    if (rc)
        return cli_fail("%s: its alphas give no valid shapes for %dx%d inputs: %s", e->ckpt, cfg->size, cfg->size,
                        dp_strerror(rc));
    for (int s = 0; cap && s < info->n_stages; s++)
        if (info->sizes[s][0] > cap || info->sizes[s][1] > cap)
            return cli_fail("%s: its alphas make stage %d %dx%d from %dx%d inputs, above --max-side %ld (default: "
                            "twice the input side); pass --max-side 0 to evaluate it anyway",
                            e->ckpt, s + 1, info->sizes[s][0], info->sizes[s][1], cfg->size, cfg->size, cap);
    return 0;
}

/* The split the model is evaluated on, checked against the model; NULL after
 * saying why. */
static dp_dataset *open_data(const eval_opts *e, const dp_model_config *cfg, const run_trained *t)
{
    dp_dataset *ds = NULL;
    if (cli_open_split(e->data, e->kind, e->train, t->classes_opt, t->input_opt, &ds)) return NULL;
    dp_dataset_info di;
    dp_dataset_info_get(ds, &di);
    const int variant = dp_variant_parse(t->variant);
    const dp_transform tf = {.variant = variant, .resize = t->resize};
    const int side = dp_transform_size(&tf, di.size);
    if (di.channels != cfg->in_ch || side != cfg->size || di.classes != cfg->classes) {
        cli_fail("%s is a model for %dx%dx%d inputs and %d classes, but %s gives %dx%dx%d images%s%s and %d classes",
                 e->ckpt, cfg->in_ch, cfg->size, cfg->size, cfg->classes, e->data, di.channels, side, side,
                 variant ? " with variant " : "", variant ? t->variant : "", di.classes);
        dp_dataset_free(ds);
        return NULL;
    }
    return ds;
}

static void print_json(const eval_opts *e, const dp_model_config *cfg, const char *variant, int n, double acc,
                       double loss, const dp_model_info *info)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "checkpoint", e->ckpt);
    cJSON_AddStringToObject(o, "model", dp_arch_name(cfg->arch));
    cJSON_AddStringToObject(o, "pool", dp_pool_name(cfg->pool));
    cJSON_AddNumberToObject(o, "width", cfg->width);
    cJSON_AddStringToObject(o, "data", e->data);
    cJSON_AddStringToObject(o, "split", e->train ? "train" : "test");
    cJSON_AddStringToObject(o, "variant", variant);
    cJSON_AddNumberToObject(o, "images", n);
    cJSON_AddNumberToObject(o, "accuracy", acc);
    cJSON_AddNumberToObject(o, "loss", loss);
    cJSON_AddStringToObject(o, "precision", dp_precision_name(cli_precision));
    cJSON_AddNumberToObject(o, "gmacs", info->gmacs);
    cJSON_AddNumberToObject(o, "params", (double)info->params);
    cJSON *s = cJSON_AddArrayToObject(o, "sizes"), *al = cJSON_AddArrayToObject(o, "alphas");
    for (int i = 0; i < info->n_stages; i++) cJSON_AddItemToArray(s, cJSON_CreateIntArray(info->sizes[i], 2));
    for (int i = 0; i < info->n_alphas; i++) cJSON_AddItemToArray(al, cJSON_CreateFloatArray(info->alphas[i], 2));
    char *txt = cJSON_Print(o);
    if (txt) puts(txt);
    free(txt);
    cJSON_Delete(o);
}

static void print_text(const eval_opts *e, const dp_model_config *cfg, const char *variant, int n, double acc,
                       double loss, const dp_model_info *info)
{
    const int v = strcmp(variant, "none") != 0;
    printf("%s (%s, width %g) on %s, %s split, %d images%s%s\n", dp_arch_name(cfg->arch), dp_pool_name(cfg->pool),
           cfg->width, cli_data_name(e->data), e->train ? "train" : "test", n, v ? ", variant " : "",
           v ? variant : "");
    printf("  accuracy          %.2f%%\n  loss              %.4f\n  GMACs per image   %.4f\n"
           "  parameters        %lld\n  sizes             ", acc, loss, info->gmacs, info->params);
    cli_print_sizes(stdout, info, cfg->size);
    putchar('\n');
    if (info->n_alphas) {
        printf("  alphas           ");
        for (int i = 0; i < info->n_alphas; i++) printf(" (%.3f, %.3f)", info->alphas[i][0], info->alphas[i][1]);
        putchar('\n');
    }
}

int cmd_eval(int argc, char **argv)
{
    if (seg_task(argc, argv)) return seg_eval(argc, argv); /* segmentation: seg_train.c */
    eval_opts e;
    int rc = parse(&e, argc, argv);
    if (rc) return rc == CLI_HELP ? 0 : rc;
    dp_model_config cfg;
    dp_model *m = open_checkpoint(e.ckpt, &cfg);
    dp_model_info info;
    run_trained t; /* how the model was trained: normalisation and variant, data */
    const char *key;
    char msg[256] = "";
    if (!m || check_sides(&e, m, &cfg, &info)) goto fail_model;
    if (run_read_trained(m, &t, &key, msg, sizeof msg)) {
        cli_fail("%s: metadata '%s' %s", e.ckpt, key, msg);
        goto fail_model;
    }
    if (!e.data) e.data = t.data[0] ? t.data : CLI_FASHION_MNIST;
    dp_dataset *ds = open_data(&e, &cfg, &t);
    if (!ds) goto fail_model;
    dp_dataset_info di;
    dp_dataset_info_get(ds, &di);
    dp_transform tf = dp_transform_defaults(ds, 0, dp_variant_parse(t.variant));
    memcpy(tf.mean, t.mean, sizeof t.mean), memcpy(tf.std, t.std, sizeof t.std);
    tf.resize = t.resize;
    const int n = e.limit && e.limit < di.n ? e.limit : di.n;
    double loss, acc;
    rc = cli_evaluate(m, ds, e.data, &tf, NULL, n, e.batch, e.workers, &loss, &acc);
    if (!rc && e.json) print_json(&e, &cfg, t.variant, n, acc, loss, &info);
    else if (!rc) print_text(&e, &cfg, t.variant, n, acc, loss, &info);
    if (!rc && !isfinite(loss)) /* a diverged model: never a silent success */
        rc = cli_fail("%s: the loss on %d images of %s is %s: the model's outputs are not finite (did its training "
                      "diverge?)", e.ckpt, n, cli_data_name(e.data), isnan(loss) ? "NaN" : "infinite");
    dp_dataset_free(ds);
    dp_model_free(m);
    return rc ? 1 : 0;
fail_model:
    dp_model_free(m);
    return 1;
}
