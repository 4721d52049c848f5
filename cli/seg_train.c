/* seg_train.c — `dynopool train --task seg` and `dynopool eval --task seg`: HRNet on a
 * segmentation set in the PascalVOC layout (docs/guide.md, "Segmentation data"), with
 * mean IoU and pixel accuracy over the validation split (the paper's Table 5.4).
 * A first, plain version: no resuming, no background loader, one checkpoint per epoch. */
#include "seg_train.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common.h"

static const char *const SEG_TRAIN_USAGE =
    "Usage: dynopool train --task seg --data DIR --out DIR [--model hrnet-w48] [--pool P]\n"
    "                      [--width C] [--input S] [--classes K] [--epochs E] [--batch B]\n"
    "                      [--lr LR] [--lambda L] [--seed K]\n"
    "\n"
    "Trains a segmentation network on a PascalVOC-layout set (dynopool segdata writes\n"
    "one) with per-pixel cross-entropy (255 ignored), SGD with Nesterov momentum 0.9,\n"
    "weight decay 5e-4, a cosine schedule, the alphas at a tenth of the learning rate;\n"
    "after every epoch the validation split's mean IoU and pixel accuracy, the GMACs and\n"
    "the five map sizes go to the progress line and DIR/metrics.jsonl, the model to\n"
    "DIR/checkpoint.safetensors.  At the end, the Table 5.4 row.\n"
    "\n"
    "  --data DIR     the set (ImageSets/Segmentation/{train,val}.txt, JPEGImages, SegmentationClass)\n"
    "  --out DIR      the run folder (created)\n"
    "  --width C      HRNet's channel number (18, 32, 48; default 18)\n"
    "  --input S      the crop side the network sees          (default 64)\n"
    "  --classes K    pixel classes (default: the lines of DIR/class_names.txt, else 21)\n"
    "  --epochs E (default 10)  --batch B (default 16)  --lr LR (default 0.01)\n"
    "  --lambda L     weight of the complexity loss            (default 0)\n";

static const char *const SEG_EVAL_USAGE =
    "Usage: dynopool eval --task seg --checkpoint F|RUN_DIR --data DIR [--split S] [--json]\n"
    "\n"
    "Mean IoU (over all classes, as the official HRNet code), pixel accuracy, GMACs and\n"
    "map sizes of a trained segmentation network on a split (default val) of a\n"
    "PascalVOC-layout set, the centre crop of the network's side at scale 1.\n";

static int count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int n = 0, c, last = '\n';
    while ((c = fgetc(f)) != EOF) {
        if (c == '\n' && last != '\n') n++;
        last = c;
    }
    if (last != '\n') n++;
    fclose(f);
    return n;
}

/* mIoU and pixel accuracy of m on every sample of s (evaluation view). */
static int seg_score(dp_model *m, const dp_segset *s, int size, int classes, double *miou, double *acc)
{
    const int n = dp_segset_count(s), B = 8;
    const size_t per = (size_t)size * size;
    float *x = malloc(sizeof(float) * 3 * per * B);
    int *lab = malloc(sizeof(int) * per * B), *pred = malloc(sizeof(int) * per * B);
    long long *conf = calloc((size_t)classes * classes, sizeof(long long));
    dp_seg_transform t = dp_seg_transform_defaults(0, size);
    char err[1024] = "";
    int rc = x && lab && pred && conf ? DP_OK : DP_ERR_NOMEM;
    for (int i = 0; !rc && i < n; i += B) {
        const int nb = n - i < B ? n - i : B;
        for (int k = 0; !rc && k < nb; k++)
            rc = dp_segset_sample(s, i + k, &t, 0, i + k, x + 3 * per * k, lab + per * k, err, sizeof err);
        if (!rc) rc = dp_model_predict_seg(m, x, nb, pred);
        if (!rc) rc = dp_seg_confusion_add(conf, classes, lab, pred, per * nb);
    }
    if (!rc) rc = dp_seg_scores(conf, classes, acc, miou, NULL);
    if (rc) cli_fail("evaluation: %s", err[0] ? err : dp_strerror(rc));
    free(x), free(lab), free(pred), free(conf);
    return rc;
}

static void sizes_text(const dp_model_info *in, char *buf, size_t cap)
{
    size_t k = 0;
    buf[0] = 0;
    for (int s = 0; s < in->n_stages && k < cap; s++)
        k += (size_t)snprintf(buf + k, cap - k, "%s[%d,%d]", s ? " " : "", in->sizes[s][0], in->sizes[s][1]);
}

int seg_train(int argc, char **argv)
{
    const char *data = NULL, *out = NULL, *task = NULL;
    dp_model_config cfg = dp_model_defaults();
    cfg.arch = DP_HRNET, cfg.size = 64, cfg.classes = 0;
    double width = 18, lr = 0.01, lambda = 0;
    int epochs = 10, batch = 16;
    long long seed = 1;
    cli_opt opts[] = {
        {"--task", CLI_TEXT, .dst = &task},
        {"--data", CLI_TEXT, .dst = &data},
        {"--out", CLI_TEXT, .dst = &out},
        {"--model", CLI_NAME, &cfg.arch, .want = "hrnet-w48", .to_enum = dp_arch_parse},
        {"--pool", CLI_NAME, &cfg.pool, .want = "human or dynopool", .to_enum = dp_pool_parse},
        {"--width", CLI_NUM, &width, .lo = 1, .hi = 64},
        {"--input", CLI_INT, &cfg.size, .lo = 8, .hi = 4096},
        {"--classes", CLI_INT, &cfg.classes, .lo = 1, .hi = 255},
        {"--epochs", CLI_INT, &epochs, .lo = 1, .hi = 100000},
        {"--batch", CLI_INT, &batch, .lo = 1, .hi = 4096},
        {"--lr", CLI_NUM, &lr, .lo = 0, .hi = 100},
        {"--lambda", CLI_NUM, &lambda, .lo = 0, .hi = 1e6},
        {"--seed", CLI_LONG, &seed, .lo = 0, .hi = 9.2e18},
    };
    cli_cmd c = {"train", SEG_TRAIN_USAGE, 0, .opts = opts, .n_opts = sizeof opts / sizeof opts[0]};
    int rc = cli_parse(&c, argc, argv);
    if (rc) return rc == CLI_HELP ? 0 : rc;
    if (!data || !out) return cli_usage("train", "%s", "train --task seg needs --data DIR and --out DIR");
    if (!dp_arch_is_seg(cfg.arch)) return cli_usage("train", "--task seg: %s is not a segmentation network", dp_arch_name(cfg.arch));
    cfg.width = (float)width;
    char path[4200], err[1024] = "";
    if (!cfg.classes) {
        snprintf(path, sizeof path, "%s/class_names.txt", data);
        cfg.classes = count_lines(path);
        if (!cfg.classes) cfg.classes = 21;
    }
    cfg.seed = (unsigned long long)seed;
    dp_segset *tr = NULL, *va = NULL;
    if ((rc = dp_segset_open(data, "train", cfg.classes, &tr, err, sizeof err)) ||
        (rc = dp_segset_open(data, "val", cfg.classes, &va, err, sizeof err))) {
        dp_segset_free(tr);
        return cli_fail("%s", err);
    }
    dp_model *m = NULL;
    if ((rc = dp_model_create(&cfg, &m))) {
        dp_segset_free(tr), dp_segset_free(va);
        return cli_fail("cannot build %s (%s), width %g, for %dx%d input: %s", dp_arch_name(cfg.arch),
                        dp_pool_name(cfg.pool), width, cfg.size, cfg.size, dp_strerror(rc));
    }
    if (cli_mkdir_p(out)) {
        rc = cli_fail("%s: cannot create the run folder", out);
        goto done;
    }
    const int n = dp_segset_count(tr);
    const size_t per = (size_t)cfg.size * cfg.size;
    float *x = malloc(sizeof(float) * 3 * per * batch);
    int *lab = malloc(sizeof(int) * per * batch), *order = malloc(sizeof(int) * n);
    dp_train_config tc = dp_train_defaults(cfg.arch);
    tc.lambda = (float)lambda;
    dp_seg_transform t = dp_seg_transform_defaults(1, cfg.size);
    snprintf(path, sizeof path, "%s/metrics.jsonl", out);
    FILE *mj = fopen(path, "w");
    if (!x || !lab || !order || !mj) {
        rc = cli_fail("%s", !mj ? "cannot write metrics.jsonl" : "out of memory");
        goto free_bufs;
    }
    double miou = 0, acc = 0;
    dp_model_info in;
    printf("%s (%s) C=%g on %s: %d training, %d validation images of %dx%d, %d classes\n", dp_arch_name(cfg.arch),
           dp_pool_name(cfg.pool), width, data, n, dp_segset_count(va), cfg.size, cfg.size, cfg.classes);
    for (int e = 0; e < epochs && !rc; e++) {
        const clock_t c0 = clock();
        const time_t w0 = time(NULL);
        for (int i = 0; i < n; i++) order[i] = i;
        uint64_t r = cfg.seed * 0x9E3779B97F4A7C15ULL + (uint64_t)e;
        for (int i = n - 1; i > 0; i--) { /* Fisher-Yates from (seed, epoch) */
            const int j = (int)(cli_splitmix64(&r) % (unsigned long long)(i + 1)), k = order[i];
            order[i] = order[j], order[j] = k;
        }
        const double f = dp_recipe_lr_factor(e, epochs);
        double loss = 0;
        int steps = 0;
        for (int i = 0; i + batch <= n && !rc; i += batch) { /* the last partial batch is dropped */
            for (int k = 0; !rc && k < batch; k++)
                rc = dp_segset_sample(tr, order[i + k], &t, cfg.seed, (long long)e * n + i + k, x + 3 * per * k,
                                      lab + per * k, err, sizeof err);
            if (rc) {
                cli_fail("%s", err);
                break;
            }
            dp_step_stats st;
            if ((rc = dp_model_train_step(m, x, lab, batch, &tc, (float)(lr * f), (float)(dp_recipe_alpha_lr(lr) * f), &st))) {
                cli_fail("epoch %d, step %d: %s", e + 1, steps + 1, dp_strerror(rc));
                break;
            }
            loss += st.loss, steps++;
            if (cli_signal) rc = 130;
        }
        if (rc) break;
        if ((rc = seg_score(m, va, cfg.size, cfg.classes, &miou, &acc))) break;
        dp_model_info_get(m, &in);
        char sz[256];
        sizes_text(&in, sz, sizeof sz);
        printf("epoch %d/%d  loss %.4f  val mIoU %.2f%%  pixel acc %.2f%%  %.4f GMACs  maps %s  (%.0f s, %.0f s CPU)\n",
               e + 1, epochs, steps ? loss / steps : 0.0, 100 * miou, 100 * acc, in.gmacs, sz, difftime(time(NULL), w0),
               (double)(clock() - c0) / CLOCKS_PER_SEC);
        fflush(stdout);
        fprintf(mj, "{\"epoch\":%d,\"loss\":%.6f,\"miou\":%.6f,\"pixel_acc\":%.6f,\"gmacs\":%.6f,\"sizes\":[", e + 1,
                steps ? loss / steps : 0.0, miou, acc, in.gmacs);
        for (int s = 0; s < in.n_stages; s++) fprintf(mj, "%s[%d,%d]", s ? "," : "", in.sizes[s][0], in.sizes[s][1]);
        fprintf(mj, "],\"alphas\":[");
        for (int s = 0; s < in.n_alphas; s++) fprintf(mj, "%s[%.6g,%.6g]", s ? "," : "", in.alphas[s][0], in.alphas[s][1]);
        fprintf(mj, "]}\n");
        fflush(mj);
        const char *keys[2] = {"task", "data"}, *vals[2] = {"seg", data};
        snprintf(path, sizeof path, "%s/checkpoint.safetensors", out);
        if ((rc = dp_model_save(m, path, keys, vals, 2, err, sizeof err))) cli_fail("%s", err);
    }
    if (!rc) {
        char sz[256];
        sizes_text(&in, sz, sizeof sz);
        printf("\n| model | variant | mIoU (%%) | pixel acc. (%%) | GMACs | maps |\n|---|---|---|---|---|---|\n"
               "| %s C=%g | %s | %.2f | %.2f | %.4f | %s |\n",
               dp_arch_name(cfg.arch), width, dp_pool_name(cfg.pool), 100 * miou, 100 * acc, in.gmacs, sz);
    }
free_bufs:
    if (mj) fclose(mj);
    free(x), free(lab), free(order);
done:
    dp_model_free(m);
    dp_segset_free(tr), dp_segset_free(va);
    return rc ? (rc == 130 ? 130 : 1) : 0;
}

int seg_eval(int argc, char **argv)
{
    const char *task = NULL, *ckpt = NULL, *data = NULL, *split = "val";
    int json = 0;
    cli_opt opts[] = {
        {"--task", CLI_TEXT, .dst = &task},
        {"--checkpoint", CLI_TEXT, .dst = &ckpt},
        {"--data", CLI_TEXT, .dst = &data},
        {"--split", CLI_TEXT, .dst = &split},
        {"--json", CLI_FLAG, .dst = &json},
    };
    cli_cmd c = {"eval", SEG_EVAL_USAGE, 0, .opts = opts, .n_opts = sizeof opts / sizeof opts[0]};
    int rc = cli_parse(&c, argc, argv);
    if (rc) return rc == CLI_HELP ? 0 : rc;
    if (!ckpt || !data) return cli_usage("eval", "%s", "eval --task seg needs --checkpoint F and --data DIR");
    char path[4200], err[1024] = "";
    struct stat st;
    if (stat(ckpt, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(path, sizeof path, "%s/checkpoint.safetensors", ckpt);
        ckpt = path;
    }
    dp_model_config cfg;
    if ((rc = dp_checkpoint_config(ckpt, &cfg, err, sizeof err))) return cli_fail("%s", err);
    if (!dp_arch_is_seg(cfg.arch)) return cli_fail("%s: %s is not a segmentation network", ckpt, dp_arch_name(cfg.arch));
    dp_model *m;
    if ((rc = dp_model_create(&cfg, &m))) return cli_fail("cannot build the checkpoint's network: %s", dp_strerror(rc));
    if ((rc = dp_model_load(m, ckpt, err, sizeof err))) {
        dp_model_free(m);
        return cli_fail("%s", err);
    }
    dp_segset *s;
    if ((rc = dp_segset_open(data, split, cfg.classes, &s, err, sizeof err))) {
        dp_model_free(m);
        return cli_fail("%s", err);
    }
    double miou, acc;
    dp_model_info in;
    rc = seg_score(m, s, cfg.size, cfg.classes, &miou, &acc);
    if (!rc) dp_model_info_get(m, &in);
    if (!rc) {
        char sz[256];
        sizes_text(&in, sz, sizeof sz);
        if (json)
            printf("{\"miou\":%.6f,\"pixel_acc\":%.6f,\"gmacs\":%.6f,\"images\":%d}\n", miou, acc, in.gmacs,
                   dp_segset_count(s));
        else
            printf("%s: %s split, %d images: mIoU %.2f%%, pixel accuracy %.2f%%, %.4f GMACs, maps %s\n", ckpt, split,
                   dp_segset_count(s), 100 * miou, 100 * acc, in.gmacs, sz);
    }
    dp_segset_free(s);
    dp_model_free(m);
    return rc ? 1 : 0;
}

int seg_task(int argc, char **argv)
{
    for (int i = 0; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--task") && !strcmp(argv[i + 1], "seg")) return 1;
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--task=seg")) return 1;
    return 0;
}
