/* cmd_predict.c — `dynopool predict`: the most probable classes of image files
 * for a trained network, through the frozen inference API (dynopool/infer.h),
 * each image prepared as the run prepared its test images (dp_image_prepare). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "commands.h"
#include "common.h"
#include "run.h"

static const char *const PREDICT_USAGE =
    "Usage: dynopool predict --checkpoint F|RUN_DIR [--best] [--top K] [--json] IMAGE...\n"
    "\n"
    "The K most probable classes of each image (PNG or JPEG, any size) for a trained\n"
    "network, with their probabilities (the softmax of its logits), most probable\n"
    "first.  Each image is prepared as the run evaluated its test images: an image\n"
    "of the size the network was trained on (28x28 for Fashion-MNIST) is used as it\n"
    "is; another has its shorter side resized to that size and its centre cropped\n"
    "(networks trained on image folders: the shorter side to 8/7 of the crop, then\n"
    "the central crop, as in training); then the run's variant, resolution and\n"
    "normalisation, all read from the checkpoint.  Batch norm is folded into the\n"
    "convolutions and nothing for training is allocated (docs/guide.md, \"Deploy\").\n"
    "\n"
    "Colours: a network trained on grey images (Fashion-MNIST) takes a colour image\n"
    "as its grey (ITU-R 601 luma: 0.299 R + 0.587 G + 0.114 B); a network trained on\n"
    "colour images takes a grey image as R = G = B.  Either conversion is noted\n"
    "beside the image.\n"
    "\n"
    "  --checkpoint F   a checkpoint written by dynopool train, or its run folder (then\n"
    "                   its last checkpoint, checkpoint.safetensors)\n"
    "  --best           with a run folder: its best epoch's checkpoint-best.safetensors\n"
    "  --top K          the K most probable classes (default 5; at most the number of\n"
    "                   classes)\n"
    "  --batch B        images per forward pass                    (default 16)\n"
    "  --json           one JSON object\n"
    "Class names: Fashion-MNIST's and CIFAR-10's own; an image folder's class folder\n"
    "names (recorded in checkpoints since this version); else \"class N\".\n"
    "An image that cannot be read or decoded is reported with its file and what is\n"
    "wrong; the other images are still predicted, and the exit status is then 1.\n"
    "Example:\n"
    "  dynopool predict --checkpoint runs/fmnist shoe.png shirt.jpg\n";

typedef struct {
    const char *ckpt;
    char path[4200];
    const char **images;
    int n_images, top, batch, json, best;
} predict_opts;

/* The options; 0, or CLI_HELP, or EXIT_USAGE. */
static int parse(predict_opts *o, int argc, char **argv)
{
    *o = (predict_opts){.top = 5, .batch = 16};
    o->images = calloc((size_t)argc + 1, sizeof(char *));
    if (!o->images) return cli_fail("out of memory");
    cli_opt opts[] = {
        {"--checkpoint", CLI_TEXT, .dst = &o->ckpt},
        {"--best", CLI_FLAG, .dst = &o->best},
        {"--top", CLI_INT, &o->top, .lo = 1, .hi = 1000000},
        {"--batch", CLI_INT, &o->batch, .lo = 1, .hi = 4096},
        {"--json", CLI_FLAG, .dst = &o->json},
    };
    cli_cmd c = {"predict", PREDICT_USAGE, 0, .opts = opts, .n_opts = sizeof opts / sizeof opts[0],
                 .args = o->images};
    const int rc = cli_parse(&c, argc, argv);
    if (rc) return rc;
    o->n_images = c.n_args;
    if (!o->ckpt) return cli_usage("predict", "%s", "predict needs --checkpoint FILE");
    if (!o->n_images) return cli_usage("predict", "%s", "predict needs at least one IMAGE (PNG or JPEG)");
    struct stat st;
    if (stat(o->ckpt, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(o->path, sizeof o->path, "%s/%s", o->ckpt, o->best ? RUN_BEST : RUN_CHECKPOINT);
        o->ckpt = o->path;
    } else if (o->best) {
        return cli_usage("predict", "--best picks the best checkpoint of a run folder, and '%s' is no folder", o->ckpt);
    }
    return 0;
}

/* How the images are prepared for the network h: the data's kind and base side
 * and the transform; 0, or 1 after saying why. */
static int preparation(const predict_opts *o, const dp_infer_info *in, const run_trained *t, int *kind, int *base,
                       dp_transform *tf)
{
    *tf = (dp_transform){.variant = dp_variant_parse(t->variant), .resize = t->resize};
    memcpy(tf->mean, t->mean, sizeof t->mean), memcpy(tf->std, t->std, sizeof t->std);
    *kind = t->kind >= 0 ? t->kind : DP_DATA_IDX; /* older checkpoints: as an in-memory set */
    *base = t->base;
    if (!*base && !t->resize) /* older checkpoints: the base side from the variant's */
        *base = tf->variant == DP_VARIANT_TILE || tf->variant == DP_VARIANT_LARGE ? in->cfg.size / 2 : in->cfg.size;
    if (!*base)
        return cli_fail("%s: its metadata do not record the side of the training images before --input-size %d "
                        "(checkpoints of older versions); cannot prepare images as in training",
                        o->ckpt, t->resize);
    if (in->cfg.in_ch != 1 && in->cfg.in_ch != 3)
        return cli_fail("%s: the network takes %d channels; images give 1 (grey) or 3 (RGB)", o->ckpt, in->cfg.in_ch);
    if (dp_transform_size(tf, *base) != in->cfg.size)
        return cli_fail("%s: images of side %d with variant %s and resize %d give %dx%d, but the network takes %dx%d",
                        o->ckpt, *base, t->variant, t->resize, dp_transform_size(tf, *base),
                        dp_transform_size(tf, *base), in->cfg.size, in->cfg.size);
    return 0;
}

/* The k largest of p[0..n) (ties: the lower class first) into idx[0..k). */
static void top_k(const double *p, int n, int k, int *idx)
{
    for (int j = 0; j < k; j++) {
        int best = -1;
        for (int c = 0; c < n; c++) {
            int taken = 0;
            for (int i = 0; i < j && !taken; i++) taken = idx[i] == c;
            if (!taken && (best < 0 || p[c] > p[best])) best = c;
        }
        idx[j] = best;
    }
}

static const char *conversion(int native, int want)
{
    return native == want ? NULL : want == 1 ? "colour converted to grey" : "grey converted to RGB";
}

/* One image's result, printed (text) or added to arr (JSON). */
static void report(const predict_opts *o, const run_trained *t, int classes, const char *file, const float *z,
                   const char *conv, cJSON *arr)
{
    double *p = malloc(sizeof(double) * (size_t)classes), mx = z[0], se = 0.0;
    int *idx = malloc(sizeof(int) * (size_t)o->top);
    if (!p || !idx) {
        free(p), free(idx);
        cli_fail("%s: out of memory", file);
        return;
    }
    for (int c = 1; c < classes; c++) mx = z[c] > mx ? z[c] : mx;
    for (int c = 0; c < classes; c++) se += (p[c] = exp((double)z[c] - mx));
    for (int c = 0; c < classes; c++) p[c] /= se;
    const int k = o->top < classes ? o->top : classes;
    top_k(p, classes, k, idx);
    char buf[32];
    if (arr) {
        cJSON *img = cJSON_CreateObject(), *top = cJSON_CreateArray();
        cJSON_AddStringToObject(img, "file", file);
        if (conv) cJSON_AddStringToObject(img, "converted", conv);
        for (int j = 0; j < k; j++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "class", idx[j]);
            cJSON_AddStringToObject(e, "name", run_class_name(t, classes, idx[j], buf, sizeof buf));
            cJSON_AddNumberToObject(e, "probability", p[idx[j]]);
            cJSON_AddItemToArray(top, e);
        }
        cJSON_AddItemToObject(img, "top", top);
        cJSON_AddItemToArray(arr, img);
    } else {
        printf("%s%s%s%s\n", file, conv ? " (" : "", conv ? conv : "", conv ? ")" : "");
        for (int j = 0; j < k; j++)
            printf("  %7.2f%%  %s (%d)\n", 100.0 * p[idx[j]], run_class_name(t, classes, idx[j], buf, sizeof buf),
                   idx[j]);
    }
    free(p);
    free(idx);
}

/* Predicts every image, a batch at a time; the number of images that failed. */
static int predict_all(const predict_opts *o, dp_infer *h, const dp_infer_info *in, const run_trained *t, int kind,
                       int base, const dp_transform *tf, cJSON *arr)
{
    const int c = in->cfg.in_ch, s = in->cfg.size, k = in->cfg.classes, B = o->batch;
    const size_t img = (size_t)c * s * s;
    float *x = malloc(sizeof(float) * img * (size_t)B), *z = malloc(sizeof(float) * (size_t)k * B);
    int *which = malloc(sizeof(int) * (size_t)B), *native = malloc(sizeof(int) * (size_t)B), bad = 0;
    if (!x || !z || !which || !native) {
        free(x), free(z), free(which), free(native);
        cli_fail("out of memory for a batch of %d images of %dx%dx%d", B, c, s, s);
        return o->n_images;
    }
    char err[1024];
    for (int i0 = 0; i0 < o->n_images; i0 += B) {
        int nb = 0;
        for (int i = i0; i < o->n_images && i < i0 + B; i++) {
            const int rc = dp_image_prepare(o->images[i], kind, c, base, tf, x + img * nb, &native[nb], err, sizeof err);
            if (rc) {
                cli_fail("%s", err[0] ? err : dp_strerror(rc));
                if (arr) {
                    cJSON *e = cJSON_CreateObject();
                    cJSON_AddStringToObject(e, "file", o->images[i]);
                    cJSON_AddStringToObject(e, "error", err[0] ? err : dp_strerror(rc));
                    cJSON_AddItemToArray(arr, e);
                }
                bad++;
                continue;
            }
            which[nb++] = i;
        }
        if (!nb) continue;
        const int rc = dp_infer_run(h, x, nb, z);
        if (rc) {
            cli_fail("%s: the network failed on %d images: %s", o->ckpt, nb, dp_strerror(rc));
            bad += nb;
            continue;
        }
        for (int j = 0; j < nb; j++)
            report(o, t, k, o->images[which[j]], z + (size_t)j * k, conversion(native[j], c), arr);
    }
    free(x), free(z), free(which), free(native);
    return bad;
}

int cmd_predict(int argc, char **argv)
{
    predict_opts o;
    int rc = parse(&o, argc, argv);
    if (rc) {
        free(o.images);
        return rc == CLI_HELP ? 0 : rc;
    }
    dp_infer *h = NULL;
    char err[1024] = "", msg[256] = "";
    const char *key;
    dp_infer_info in;
    run_trained *t = malloc(sizeof *t); /* how the network was trained: the images' preparation, class names */
    int kind = DP_DATA_IDX, base = 0;
    dp_transform tf;
    if (!t) rc = cli_fail("out of memory");
    else if ((rc = dp_infer_load(o.ckpt, &h, err, sizeof err)))
        rc = cli_fail("%s", err[0] ? err : dp_strerror(rc));
    else if ((rc = dp_infer_set_precision(h, cli_precision)))
        rc = cli_fail("%s: %s", o.ckpt, dp_strerror(rc));
    else if (dp_infer_info_get(h, &in), run_read_trained_meta(dp_infer_meta(h, "dataset"), dp_infer_meta(h, "run"),
                                                              t, &key, msg, sizeof msg))
        rc = cli_fail("%s: metadata '%s' %s", o.ckpt, key, msg);
    else
        rc = preparation(&o, &in, t, &kind, &base, &tf);
    /* alphas a checkpoint brings may make maps far larger than training allowed (eval's guard) */
    const int cap = rc ? 0 : run_default_max_side(in.cfg.size);
    for (int s = 0; !rc && s < in.model.n_stages; s++)
        if (in.model.sizes[s][0] > cap || in.model.sizes[s][1] > cap)
            rc = cli_fail("%s: its alphas make stage %d %dx%d from %dx%d inputs, above twice the input side",
                          o.ckpt, s + 1, in.model.sizes[s][0], in.model.sizes[s][1], in.cfg.size, in.cfg.size);
    if (!rc) {
        cJSON *root = o.json ? cJSON_CreateObject() : NULL, *arr = NULL;
        if (root) {
            cJSON_AddStringToObject(root, "checkpoint", o.ckpt);
            cJSON_AddStringToObject(root, "model", dp_arch_name(in.cfg.arch));
            cJSON_AddStringToObject(root, "pool", dp_pool_name(in.cfg.pool));
            cJSON_AddNumberToObject(root, "classes", in.cfg.classes);
            cJSON_AddNumberToObject(root, "input", in.cfg.size);
            cJSON_AddNumberToObject(root, "in_ch", in.cfg.in_ch);
            arr = cJSON_AddArrayToObject(root, "images");
        }
        const int bad = predict_all(&o, h, &in, t, kind, base, &tf, arr);
        if (root) {
            char *txt = cJSON_Print(root);
            if (txt) puts(txt);
            free(txt);
            cJSON_Delete(root);
        }
        if (bad) rc = cli_fail("%d of %d images could not be predicted (see above)", bad, o.n_images);
    }
    dp_infer_free(h);
    free(t);
    free(o.images);
    return rc ? 1 : 0;
}
