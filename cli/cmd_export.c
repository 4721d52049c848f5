/* cmd_export.c — `dynopool export`: a trained network as an ONNX model
 * (dp_export_onnx, dynopool/deploy.h), with the data's preparation and class
 * names from the checkpoint's metadata added to the model's metadata_props. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "commands.h"
#include "common.h"
#include "run.h"

static const char *const EXPORT_USAGE =
    "Usage: dynopool export --checkpoint F|RUN_DIR [--best] --onnx FILE\n"
    "\n"
    "Writes a trained network as an ONNX model (IR 8, opset 17) for ONNX Runtime and\n"
    "other ONNX tools: input \"input\" (float32, N x C x S x S, the batch N free),\n"
    "output \"logits\" (N x classes).  The network is frozen: batch norm folded into\n"
    "the convolutions, and the learned sizes are constants.  Each DynOPool becomes\n"
    "fixed bilinear sampling (Gather, Mul, Add on precomputed indices and weights)\n"
    "and a 2x2 MaxPool, its values those of the operator (docs/guide.md, \"ONNX\n"
    "export\"); a Shape Adaptor becomes two Resize and a weighted sum.\n"
    "\n"
    "The model's metadata_props hold the model, pooling, learned sizes and alphas,\n"
    "and how to prepare an image: the data's variant, resize, per-channel mean and\n"
    "std (x = (pixel / 255 - mean) / std), and the class names when known.\n"
    "\n"
    "  --checkpoint F   a checkpoint written by dynopool train, or its run folder (then\n"
    "                   its last checkpoint, checkpoint.safetensors)\n"
    "  --best           with a run folder: its best epoch's checkpoint-best.safetensors\n"
    "  --onnx FILE      the model to write (replaced atomically)\n"
    "Example:\n"
    "  dynopool export --checkpoint runs/fmnist --onnx fmnist.onnx\n";

typedef struct {
    const char *ckpt, *onnx;
    char path[4200];
    int best;
} export_opts;

static int parse(export_opts *o, int argc, char **argv)
{
    *o = (export_opts){0};
    cli_opt opts[] = {
        {"--checkpoint", CLI_TEXT, .dst = &o->ckpt},
        {"--best", CLI_FLAG, .dst = &o->best},
        {"--onnx", CLI_TEXT, .dst = &o->onnx},
    };
    cli_cmd c = {"export", EXPORT_USAGE, 0, .opts = opts, .n_opts = sizeof opts / sizeof opts[0]};
    const int rc = cli_parse(&c, argc, argv);
    if (rc) return rc;
    if (!o->ckpt) return cli_usage("export", "%s", "export needs --checkpoint FILE");
    if (!o->onnx) return cli_usage("export", "%s", "export needs --onnx FILE (the model to write)");
    struct stat st;
    if (stat(o->ckpt, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(o->path, sizeof o->path, "%s/%s", o->ckpt, o->best ? RUN_BEST : RUN_CHECKPOINT);
        o->ckpt = o->path;
    } else if (o->best) {
        return cli_usage("export", "--best picks the best checkpoint of a run folder, and '%s' is no folder", o->ckpt);
    }
    return 0;
}

/* "[a, b, c]" of the first n values, each as the shortest decimal that reads back as it. */
static void floats_json(char *b, size_t cap, const float *v, int n)
{
    size_t len = (size_t)snprintf(b, cap, "[");
    for (int k = 0; k < n && len < cap; k++)
        len += (size_t)snprintf(b + len, cap - len, "%s%.9g", k ? ", " : "", cli_decimal(v[k]));
    if (len < cap) snprintf(b + len, cap - len, "]");
}

/* The data's metadata as key/value pairs for the model (vals point into the
 * buffers or t); how many. */
static int data_meta(const run_trained *t, const dp_infer_info *in, const char **keys, const char **vals,
                     char (*buf)[64], cJSON **names_json)
{
    int n = 0;
    if (t->name[0]) keys[n] = "dataset", vals[n++] = t->name;
    keys[n] = "data_variant", vals[n++] = t->variant;
    snprintf(buf[0], 64, "%d", t->resize);
    keys[n] = "input_resize", vals[n++] = buf[0];
    floats_json(buf[1], 64, t->mean, in->cfg.in_ch);
    floats_json(buf[2], 64, t->std, in->cfg.in_ch);
    keys[n] = "mean", vals[n++] = buf[1];
    keys[n] = "std", vals[n++] = buf[2];
    keys[n] = "preprocessing",
    vals[n++] = "x[c] = (pixel[c] / 255 - mean[c]) / std[c], float32 NCHW, each image prepared as the run "
                "prepared its test images (dynopool predict does it; docs/guide.md, \"Deploy\")";
    /* class names when known: the run's class folders, Fashion-MNIST's or CIFAR-10's */
    cJSON *arr = cJSON_CreateArray();
    char b[32];
    int known = arr != NULL;
    for (int k = 0; known && k < in->cfg.classes; k++) {
        const char *s = run_class_name(t, in->cfg.classes, k, b, sizeof b);
        known = s != b;
        if (known) cJSON_AddItemToArray(arr, cJSON_CreateString(s));
    }
    char *txt = known ? cJSON_PrintUnformatted(arr) : NULL;
    cJSON_Delete(arr);
    if (txt) {
        *names_json = cJSON_CreateString(txt); /* owns the text until the caller deletes it */
        free(txt);
        if (*names_json) keys[n] = "class_names", vals[n++] = (*names_json)->valuestring;
    }
    return n;
}

int cmd_export(int argc, char **argv)
{
    export_opts o;
    int rc = parse(&o, argc, argv);
    if (rc) return rc == CLI_HELP ? 0 : rc;
    dp_infer *h = NULL;
    char err[1024] = "", msg[256] = "";
    const char *key;
    run_trained *t = malloc(sizeof *t);
    dp_infer_info in;
    if (!t) return cli_fail("out of memory");
    /* without the data's metadata (a checkpoint that dp_model_save wrote outside
     * `dynopool train`) the network is still exported, with a note */
    int data = 0;
    if ((rc = dp_infer_load(o.ckpt, &h, err, sizeof err))) {
        rc = cli_fail("%s", err[0] ? err : dp_strerror(rc));
    } else if (dp_infer_info_get(h, &in), (data = dp_infer_meta(h, "dataset") != NULL) &&
               run_read_trained_meta(dp_infer_meta(h, "dataset"), dp_infer_meta(h, "run"), t, &key, msg, sizeof msg)) {
        rc = cli_fail("%s: metadata '%s' %s", o.ckpt, key, msg);
    } else {
        const char *keys[8], *vals[8];
        char buf[3][64];
        cJSON *names = NULL;
        const int n = data ? data_meta(t, &in, keys, vals, buf, &names) : 0;
        if (!data)
            fprintf(stderr, "dynopool: note: %s records no training data (metadata 'dataset'): the model's "
                            "metadata_props will not say how to prepare its input\n", o.ckpt);
        dp_onnx_opts eo = {.keys = keys, .vals = vals, .n_meta = n};
        if ((rc = dp_export_onnx(h, o.onnx, &eo, err, sizeof err))) {
            rc = cli_fail("%s", err[0] ? err : dp_strerror(rc));
        } else {
            struct stat st;
            char sizes[512];
            cli_sizes_str(sizes, sizeof sizes, &in.model);
            printf("%s: %s (%s), input N x %d x %d x %d -> logits N x %d; stages %s; %lld bytes\n", o.onnx,
                   dp_arch_name(in.cfg.arch), dp_pool_name(in.cfg.pool), in.cfg.in_ch, in.cfg.size, in.cfg.size,
                   in.cfg.classes, sizes, stat(o.onnx, &st) ? -1LL : (long long)st.st_size);
        }
        cJSON_Delete(names);
    }
    dp_infer_free(h);
    free(t);
    return rc ? 1 : 0;
}
