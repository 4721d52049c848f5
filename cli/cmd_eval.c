/* cmd_eval.c — `dynopool eval`: a checkpoint's accuracy, loss, GMACs and sizes
 * on a dataset split, with the normalisation and variant it was trained with. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "cli.h"

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
            snprintf(msg, cap, "field '%s' item %d is %.9g, expected a number in %c%g, %g]", key, i, d, open ? '(' : '[',
                     lo, hi);
            return -1;
        }
        v[i] = (float)d;
    }
    return 0;
}

int cmd_eval(int argc, char **argv)
{
    const char *ckpt = NULL, *data = NULL;
    int kind = DP_DATA_AUTO, train = 0, json = 0, workers = 1, best = 0;
    long limit = 0, batch = 256, max_side = -1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(EVAL_USAGE, stdout);
            return 0;
        }
        if (!strcmp(a, "--json")) {
            json = 1;
            continue;
        }
        if (!strcmp(a, "--best")) {
            best = 1;
            continue;
        }
        if (a[0] != '-') return cli_usage_error("unexpected argument '%s'", a);
        const int known = !strcmp(a, "--checkpoint") || !strcmp(a, "--data") || !strcmp(a, "--dataset") ||
                          !strcmp(a, "--split") || !strcmp(a, "--limit") || !strcmp(a, "--batch") ||
                          !strcmp(a, "--workers") || !strcmp(a, "--max-side");
        if (!known) return cli_usage_error("unknown option '%s' (see dynopool eval --help)", a);
        if (i + 1 >= argc) return cli_usage_error("option '%s' needs a value", a);
        const char *v = argv[++i];
        long n;
        if (!strcmp(a, "--checkpoint")) ckpt = v;
        else if (!strcmp(a, "--data")) data = strcmp(v, "fashion-mnist") ? v : CLI_FASHION_MNIST;
        else if (!strcmp(a, "--dataset")) {
            if ((kind = dp_data_kind_parse(v)) < 0)
                return cli_usage_error("--dataset: expected idx, cifar10, cifar100 or folder, got '%s'", v);
        } else if (!strcmp(a, "--split")) {
            if (strcmp(v, "test") && strcmp(v, "train"))
                return cli_usage_error("--split: expected test or train, got '%s'", v);
            train = !strcmp(v, "train");
        } else if (!strcmp(a, "--max-side")) {
            if (cli_parse_long(v, &n) || n < 0 || n == 1 || n > 1 << 20)
                return cli_usage_error("--max-side: expected 0 (no limit) or a side in [2, 1048576], got '%s'", v);
            max_side = n;
        } else {
            /* --limit, --batch (the train command's range), --workers */
            const long lo = !strcmp(a, "--batch"), hi = !strcmp(a, "--limit") ? INT_MAX : lo ? 65536 : 16;
            if (cli_parse_long(v, &n) || n < lo || n > hi) {
                char msg[96];
                snprintf(msg, sizeof msg, "%s: expected an integer in [%ld, %ld], got '%%s'", a, lo, hi);
                return cli_usage_error(msg, v);
            }
            if (!strcmp(a, "--limit")) limit = n;
            else if (lo) batch = n;
            else workers = (int)n;
        }
    }
    if (!ckpt) return cli_usage_error("%s", "eval needs --checkpoint FILE");
    char path[4200], err[1024] = "";
    struct stat st;
    if (stat(ckpt, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(path, sizeof path, "%s/%s", ckpt, best ? "checkpoint-best.safetensors" : "checkpoint.safetensors");
        ckpt = path;
    } else if (best) {
        return cli_usage_error("--best picks the best checkpoint of a run folder, and '%s' is no folder", ckpt);
    }
    dp_model_config cfg;
    int rc = dp_checkpoint_config(ckpt, &cfg, err, sizeof err);
    dp_model *m = NULL;
    if (!rc && (rc = dp_model_create(&cfg, &m))) {
        fprintf(stderr, "dynopool: %s: cannot build its %s (%s, width %g) for %dx%dx%d inputs: %s\n", ckpt,
                dp_arch_name(cfg.arch), dp_pool_name(cfg.pool), (double)cfg.width, cfg.in_ch, cfg.size, cfg.size,
                dp_strerror(rc));
        return 1;
    }
    if (!rc) rc = dp_model_load(m, ckpt, err, sizeof err);
    if (rc) {
        fprintf(stderr, "dynopool: %s%s%s\n", err[0] ? "" : ckpt, err[0] ? "" : ": ", err[0] ? err : dp_strerror(rc));
        dp_model_free(m);
        return 1;
    }
    /* alphas a checkpoint brings may make maps far larger than training allowed
     * (alpha 0.01: a 2800x2800 map from 28x28): refused before any memory goes */
    dp_model_info info; /* evaluation leaves the alphas as loaded */
    const long cap = max_side >= 0 ? max_side : 2L * cfg.size;
    if ((rc = dp_model_info_get(m, &info))) {
        fprintf(stderr, "dynopool: %s: its alphas give no valid shapes for %dx%d inputs: %s\n", ckpt, cfg.size,
                cfg.size, dp_strerror(rc));
        dp_model_free(m);
        return 1;
    }
    for (int s = 0; cap && s < info.n_stages; s++)
        if (info.sizes[s][0] > cap || info.sizes[s][1] > cap) {
            fprintf(stderr, "dynopool: %s: its alphas make stage %d %dx%d from %dx%d inputs, above --max-side %ld "
                            "(default: twice the input side); pass --max-side 0 to evaluate it anyway\n",
                    ckpt, s + 1, info.sizes[s][0], info.sizes[s][1], cfg.size, cfg.size, cap);
            dp_model_free(m);
            return 1;
        }
    /* how the model was trained: normalisation and variant (required), data (optional) */
    const char *dsm = dp_model_meta(m, "dataset"), *runm = dp_model_meta(m, "run");
    cJSON *dj = dsm ? cJSON_Parse(dsm) : NULL, *rj = runm ? cJSON_Parse(runm) : NULL;
    float mean[3], sd[3];
    char vname[32] = "none", trained_on[2048] = "", msg[256] = "";
    double classes_opt = 0, input_opt = 0;
    const char *bad = NULL;
    if (!dj) {
        bad = "dataset";
        snprintf(msg, sizeof msg, "%s (normalisation, variant): was it written by dynopool train?",
                 dsm ? "is not valid JSON" : "is missing");
    } else if (cli_json_str(dj, "variant", vname, sizeof vname) || dp_variant_parse(vname) < 0) {
        bad = "dataset";
        snprintf(msg, sizeof msg, "field 'variant' is missing or invalid, expected none, stretch-v, tile or large");
    } else if (json_floats(dj, "mean", mean, 3, 0, 1, 0, msg, sizeof msg) || /* of pixels in [0, 1] */
               json_floats(dj, "std", sd, 3, 0, 1, 1, msg, sizeof msg)) {
        bad = "dataset";
    }
    if (!bad && rj) { /* the options the data were opened with (0: not given) */
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(rj, "data");
        if (d && cli_json_str(rj, "data", trained_on, sizeof trained_on)) {
            bad = "run";
            snprintf(msg, sizeof msg, "field 'data' is not a folder name shorter than 2048 bytes");
        } else if (cJSON_GetObjectItemCaseSensitive(rj, "classes_opt") &&
                 cli_json_range(rj, "classes_opt", 0, 256, CLI_WHOLE, &classes_opt, msg, sizeof msg))
            bad = "run";
        else if (cJSON_GetObjectItemCaseSensitive(rj, "input_opt") &&
                 cli_json_range(rj, "input_opt", 0, 1024, CLI_WHOLE, &input_opt, msg, sizeof msg))
            bad = "run";
    }
    cJSON_Delete(dj);
    cJSON_Delete(rj);
    if (bad) {
        fprintf(stderr, "dynopool: %s: metadata '%s' %s\n", ckpt, bad, msg);
        dp_model_free(m);
        return 1;
    }
    if (!data) data = trained_on[0] ? trained_on : CLI_FASHION_MNIST;
    dp_dataset *ds = NULL;
    if (cli_open_split(data, kind, train, (int)classes_opt, (int)input_opt, &ds)) {
        dp_model_free(m);
        return 1;
    }
    dp_dataset_info di;
    dp_dataset_info_get(ds, &di);
    const int variant = dp_variant_parse(vname), side = dp_variant_size(variant, di.size);
    if (di.channels != cfg.in_ch || side != cfg.size || di.classes != cfg.classes) {
        fprintf(stderr, "dynopool: %s is a model for %dx%dx%d inputs and %d classes, but %s gives %dx%dx%d "
                        "images%s%s and %d classes\n", ckpt, cfg.in_ch, cfg.size, cfg.size, cfg.classes, data,
                di.channels, side, side, variant ? " with variant " : "", variant ? vname : "", di.classes);
        dp_dataset_free(ds);
        dp_model_free(m);
        return 1;
    }
    dp_transform t = dp_transform_defaults(ds, 0, variant);
    memcpy(t.mean, mean, sizeof mean), memcpy(t.std, sd, sizeof sd);
    const int n = limit && limit < di.n ? (int)limit : di.n;
    double loss, acc;
    rc = cli_evaluate(m, ds, data, &t, NULL, n, (int)batch, workers, &loss, &acc);
    if (!rc && json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "checkpoint", ckpt);
        cJSON_AddStringToObject(o, "model", dp_arch_name(cfg.arch));
        cJSON_AddStringToObject(o, "pool", dp_pool_name(cfg.pool));
        cJSON_AddNumberToObject(o, "width", cfg.width);
        cJSON_AddStringToObject(o, "data", data);
        cJSON_AddStringToObject(o, "split", train ? "train" : "test");
        cJSON_AddStringToObject(o, "variant", vname);
        cJSON_AddNumberToObject(o, "images", n);
        cJSON_AddNumberToObject(o, "accuracy", acc);
        cJSON_AddNumberToObject(o, "loss", loss);
        cJSON_AddNumberToObject(o, "gmacs", info.gmacs);
        cJSON_AddNumberToObject(o, "params", (double)info.params);
        cJSON *s = cJSON_AddArrayToObject(o, "sizes"), *al = cJSON_AddArrayToObject(o, "alphas");
        for (int i = 0; i < info.n_stages; i++) {
            const int hw[2] = {info.sizes[i][0], info.sizes[i][1]};
            cJSON_AddItemToArray(s, cJSON_CreateIntArray(hw, 2));
        }
        for (int i = 0; i < info.n_alphas; i++) {
            const float a[2] = {info.alphas[i][0], info.alphas[i][1]};
            cJSON_AddItemToArray(al, cJSON_CreateFloatArray(a, 2));
        }
        char *txt = cJSON_Print(o);
        if (txt) puts(txt);
        free(txt);
        cJSON_Delete(o);
    } else if (!rc) {
        printf("%s (%s, width %g) on %s, %s split, %d images%s%s\n", dp_arch_name(cfg.arch), dp_pool_name(cfg.pool),
               cfg.width, cli_data_name(data), train ? "train" : "test", n, variant ? ", variant " : "",
               variant ? vname : "");
        printf("  accuracy          %.2f%%\n  loss              %.4f\n  GMACs per image   %.4f\n"
               "  parameters        %lld\n  sizes             ", acc, loss, info.gmacs, info.params);
        cli_print_sizes(stdout, &info, cfg.size);
        putchar('\n');
        if (info.n_alphas) {
            printf("  alphas           ");
            for (int i = 0; i < info.n_alphas; i++) printf(" (%.3f, %.3f)", info.alphas[i][0], info.alphas[i][1]);
            putchar('\n');
        }
    }
    if (!rc && !isfinite(loss)) { /* a diverged model: never a silent success */
        fprintf(stderr, "dynopool: %s: the loss on %d images of %s is %s: the model's outputs are not finite "
                        "(did its training diverge?)\n",
                ckpt, n, cli_data_name(data), isnan(loss) ? "NaN" : "infinite");
        rc = 1;
    }
    dp_dataset_free(ds);
    dp_model_free(m);
    return rc ? 1 : 0;
}
