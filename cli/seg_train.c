/* seg_train.c — `dynopool train --task seg` and `dynopool eval --task seg`: HRNet on a
 * segmentation set in the PascalVOC layout (docs/guide.md, "Segmentation data"), with
 * mean IoU and pixel accuracy over the validation split (the paper's Table 5.4).
 *
 * A run is a run folder as classification's (run.h, written by run.c): run.json with
 * the settings ("task": "seg"), a checkpoint after every epoch with the position in
 * the run, checkpoint-best.safetensors (the best validation mIoU), metrics.jsonl (an
 * epoch's loss, mIoU, pixel accuracy, GMACs, map sizes, seconds), summary.json (the
 * Table 5.4 row) at the end.  Ctrl-C or SIGTERM saves after the current step; --resume
 * continues to the same bytes as a run never interrupted (at the same --threads):
 * the order of the images and every augmentation draw come from (seed, epoch,
 * position) alone.  One process, no background loader. */
#include "seg_train.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "run.h"

static const char *const SEG_TRAIN_USAGE =
    "Usage: dynopool train --task seg --data DIR --out DIR [--model hrnet-w48] [--pool P]\n"
    "                      [--width C] [--input S] [--classes K] [--epochs E] [--batch B]\n"
    "                      [--lr LR] [--alpha-lr LR] [--lambda L] [--seed K]\n"
    "       dynopool train --resume DIR [--epochs E]\n"
    "\n"
    "Trains a segmentation network on a PascalVOC-layout set (dynopool segdata writes\n"
    "one) with per-pixel cross-entropy (255 ignored), SGD with Nesterov momentum 0.9,\n"
    "weight decay 5e-4, a cosine schedule, the alphas at a hundredth of the learning rate.\n"
    "After every epoch the validation split's mean IoU and pixel accuracy, the GMACs and\n"
    "the five map sizes go to the progress line and DIR/metrics.jsonl, the model to\n"
    "DIR/checkpoint.safetensors (and DIR/checkpoint-best.safetensors when its mIoU is the\n"
    "best so far).  At the end, the Table 5.4 row, also in DIR/summary.json.\n"
    "\n"
    "  --data DIR     the set (ImageSets/Segmentation/{train,val}.txt, JPEGImages, SegmentationClass)\n"
    "  --out DIR      the run folder (created; default runs/hrnet-w48-<pool>-<data>)\n"
    "  --width C      HRNet's channel number (18, 32, 48; default 18)\n"
    "  --input S      the crop side the network sees          (default 64)\n"
    "  --classes K    pixel classes (default: the lines of DIR/class_names.txt, else 21)\n"
    "  --epochs E (default 10)  --batch B (default 16)  --lr LR (default 0.01)\n"
    "  --alpha-lr LR  the alphas' base learning rate          (default lr / 100)\n"
    "  --lambda L     weight of the complexity loss            (default 0)\n"
    "  --seed K       weights, data order and augmentation    (default 1)\n"
    "  --resume DIR   continue the run in DIR from its last checkpoint (settings from\n"
    "                 DIR/run.json; --epochs may extend it)\n"
    "  --log-every S  when not on a terminal: a progress line every S seconds (30)\n"
    "  --interrupt-after K  behave as if Ctrl-C came after K steps (for tests)\n"
    "\n"
    "Ctrl-C (or SIGTERM) finishes the current step, saves a checkpoint and exits with\n"
    "status 130 (143); `dynopool train --resume DIR` then gives the same weights, alphas\n"
    "and metrics as a run that was never interrupted.\n";

static const char *const SEG_EVAL_USAGE =
    "Usage: dynopool eval --task seg --checkpoint F|RUN_DIR --data DIR [--split S] [--best] [--json]\n"
    "\n"
    "Mean IoU (over all classes, as the official HRNet code), pixel accuracy, GMACs and\n"
    "map sizes of a trained segmentation network on a split (default val) of a\n"
    "PascalVOC-layout set, the centre crop of the network's side at scale 1, normalised\n"
    "as the checkpoint says.  --json: one line with these and the confusion matrix\n"
    "(row: true class, column: predicted).  --best: a run folder's best checkpoint.\n";

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

/* The confusion matrix (classes x classes, zeroed by the caller) of m on every sample
 * of s seen as t (the evaluation view), and its mIoU and pixel accuracy. */
static int seg_score(dp_model *m, const dp_segset *s, const dp_seg_transform *t, int classes, long long *conf,
                     double *miou, double *acc)
{
    const int n = dp_segset_count(s), B = 8, size = t->size;
    const size_t per = (size_t)size * size;
    float *x = malloc(sizeof(float) * 3 * per * B);
    int *lab = malloc(sizeof(int) * per * B), *pred = malloc(sizeof(int) * per * B);
    char err[1024] = "";
    int rc = x && lab && pred ? DP_OK : DP_ERR_NOMEM;
    for (int i = 0; !rc && i < n; i += B) {
        const int nb = n - i < B ? n - i : B;
        for (int k = 0; !rc && k < nb; k++)
            rc = dp_segset_sample(s, i + k, t, 0, i + k, x + 3 * per * k, lab + per * k, err, sizeof err);
        if (!rc) rc = dp_model_predict_seg(m, x, nb, pred);
        if (!rc) rc = dp_seg_confusion_add(conf, classes, lab, pred, per * nb);
    }
    if (!rc) rc = dp_seg_scores(conf, classes, acc, miou, NULL);
    if (rc) cli_fail("evaluation: %s", err[0] ? err : dp_strerror(rc));
    free(x), free(lab), free(pred);
    return rc;
}

/* ---- training --------------------------------------------------------------------- */

enum { S_TASK, S_DATA, S_OUT, S_MODEL, S_POOL, S_WIDTH, S_INPUT, S_CLASSES, S_EPOCHS, S_BATCH, S_LR, S_ALPHA_LR,
       S_LAMBDA, S_SEED, S_RESUME, S_LOG_EVERY, S_INTERRUPT, S_COUNT };

typedef struct {
    run_cfg r;
    cli_opt opt[S_COUNT];
    const char *task, *resume, *data, *out;
    int epochs, log_every;
    double width;
    long long seed, interrupt_after;
    dp_segset *tr, *va;
    int n_train, steps_per_epoch;
    dp_seg_transform ttr, tva;
    dp_model *m;
    dp_model_info info;
    run_progress p;
    dp_train_config tc;
    int *order, *lab;
    float *x;
    char ck[4200];
    int tty, live;
    long long steps_here, steps_epoch;
    double t_epoch, t_log, t_run, t_data; /* t_data: the epoch's seconds preparing samples */
    float lr, lra;
} seg_trainer;

static void seg_options(seg_trainer *t)
{
    run_cfg *r = &t->r;
    const int S = CLI_MARK;
    const cli_opt o[S_COUNT] = {
        [S_TASK] = {"--task", CLI_TEXT, .dst = &t->task},
        [S_DATA] = {"--data", CLI_TEXT, .dst = &t->data, .flags = S},
        [S_OUT] = {"--out", CLI_TEXT, .dst = &t->out},
        [S_MODEL] = {"--model", CLI_NAME, &r->cfg.arch, .flags = S, .want = "hrnet-w48", .to_enum = dp_arch_parse},
        [S_POOL] = {"--pool", CLI_NAME, &r->cfg.pool, .flags = S, .want = "human or dynopool", .to_enum = dp_pool_parse},
        [S_WIDTH] = {"--width", CLI_NUM, &t->width, 1, RUN_MAX_SEG_WIDTH, S},
        [S_INPUT] = {"--input", CLI_INT, &r->input, RUN_MIN_INPUT, RUN_MAX_INPUT, S},
        [S_CLASSES] = {"--classes", CLI_INT, &r->classes, 1, 255, S},
        [S_EPOCHS] = {"--epochs", CLI_INT, &t->epochs, 1, RUN_MAX_EPOCHS},
        [S_BATCH] = {"--batch", CLI_INT, &r->batch, 1, RUN_MAX_BATCH, S},
        [S_LR] = {"--lr", CLI_NUM, &r->lr, 0, RUN_MAX_LR, S | CLI_OPEN_LO},
        [S_ALPHA_LR] = {"--alpha-lr", CLI_NUM, &r->alpha_lr, 0, RUN_MAX_LR, S},
        [S_LAMBDA] = {"--lambda", CLI_NUM, &r->lambda, 0, RUN_MAX_LAMBDA, S},
        [S_SEED] = {"--seed", CLI_LONG, &t->seed, 0, RUN_MAX_SEED, S},
        [S_RESUME] = {"--resume", CLI_TEXT, .dst = &t->resume},
        [S_LOG_EVERY] = {"--log-every", CLI_INT, &t->log_every, 1, 86400},
        [S_INTERRUPT] = {"--interrupt-after", CLI_LONG, &t->interrupt_after, 1, 1e18},
    };
    memcpy(t->opt, o, sizeof o);
}

/* The run's settings: from the options (a new run) or DIR/run.json (--resume, the
 * folder locked first); 0, CLI_HELP, or the exit status after saying why. */
static int seg_settings(seg_trainer *t, int argc, char **argv)
{
    run_cfg *r = &t->r;
    r->cfg = dp_model_defaults();
    r->cfg.arch = DP_HRNET, r->cfg.pool = DP_POOL_DYNOPOOL, r->cfg.in_ch = 3;
    r->seg = 1, r->kind = DP_DATA_AUTO, r->variant = DP_VARIANT_NONE, r->alpha_momentum = -1;
    r->input = 64, r->batch = 16, r->lr = 0.01, r->alpha_lr = -1;
    t->width = 18, t->seed = 1, t->epochs = 10, t->log_every = 30;
    seg_options(t);
    run_set_command(r, argc, argv);
    cli_cmd c = {"train", SEG_TRAIN_USAGE, 0, .opts = t->opt, .n_opts = S_COUNT};
    int rc = cli_parse(&c, argc, argv), setting = 0;
    if (rc) return rc;
    for (int k = 0; k < S_COUNT; k++) setting |= t->opt[k].set && (t->opt[k].flags & CLI_MARK);
    if (t->resume) {
        char msg[1024];
        if (setting || t->out)
            return cli_usage("train", "%s: --resume takes the run's settings from its run.json; only --epochs, "
                             "--log-every and --interrupt-after may be given", t->resume);
        if (run_has_settings(t->resume)) {
            if (run_lock(t->resume) < 0) return 1;
            run_remove_stale_temps(t->resume);
        }
        if (run_read_settings(t->resume, r, msg, sizeof msg)) return cli_fail("cannot resume: %s", msg);
        if (!r->seg) return cli_fail("cannot resume %s with --task seg: its run.json is a classification run's", t->resume);
        snprintf(r->out, sizeof r->out, "%s", t->resume);
        r->cfg.in_ch = 3, r->cfg.size = r->input, r->cfg.classes = r->classes;
        if (t->opt[S_EPOCHS].set && t->epochs != r->epochs) { /* a new length: the schedule follows it */
            r->epochs = t->epochs;
            if (run_write_epochs(r)) return 1;
        }
        return 0;
    }
    if (!t->data) return cli_usage("train", "%s", "train --task seg needs --data DIR");
    if (!dp_arch_is_seg(r->cfg.arch))
        return cli_usage("train", "--task seg: %s is not a segmentation network", dp_arch_name(r->cfg.arch));
    if (strlen(t->data) >= sizeof r->data || (t->out && strlen(t->out) >= sizeof r->out))
        return cli_usage("train", "%s", "--data and --out: paths shorter than 2048 bytes");
    strcpy(r->data, t->data);
    if (t->out) strcpy(r->out, t->out);
    else snprintf(r->out, sizeof r->out, "runs/%s-%s-%s", dp_arch_name(r->cfg.arch), dp_pool_name(r->cfg.pool),
                  cli_data_name(r->data));
    if (!r->classes) {
        char path[4200];
        snprintf(path, sizeof path, "%s/class_names.txt", r->data);
        r->classes = count_lines(path);
        if (!r->classes) r->classes = 21;
    }
    /* the recipe (run.json records it all; --resume reads it back) */
    const dp_train_config tc = dp_train_defaults(r->cfg.arch);
    r->cfg.width = (float)t->width, r->cfg.size = r->input, r->cfg.classes = r->classes;
    r->seed = r->cfg.seed = (unsigned long long)t->seed;
    r->epochs = t->epochs;
    /* A hundredth, not classification's tenth: one HRNet alpha serves every stream of its
     * level and their fusions, so its gradient sums over many maps, and at lr / 10 the
     * first updates throw the maps far from the design (docs/guide.md, "Segmentation data"). */
    if (r->alpha_lr < 0) r->alpha_lr = r->lr / 100;
    r->momentum = cli_decimal(tc.momentum), r->wd = cli_decimal(tc.weight_decay), r->nesterov = tc.nesterov;
    r->max_side = run_default_max_side(r->cfg.size);
    return 0;
}

/* The data, the model (new, or from the run's checkpoint), the run folder; 0, or the
 * exit status after saying why. */
static int seg_open(seg_trainer *t)
{
    run_cfg *r = &t->r;
    char err[1024] = "", msg[256];
    int rc;
    if ((rc = dp_segset_open(r->data, "train", r->cfg.classes, &t->tr, err, sizeof err)) ||
        (rc = dp_segset_open(r->data, "val", r->cfg.classes, &t->va, err, sizeof err)))
        return cli_fail("%s", err);
    t->n_train = dp_segset_count(t->tr);
    t->steps_per_epoch = t->n_train / r->batch; /* the last partial batch is dropped */
    if (t->steps_per_epoch < 1)
        return cli_fail("%s: %d training images, fewer than one batch of %d: give a smaller --batch", r->data,
                        t->n_train, r->batch);
    t->ttr = dp_seg_transform_defaults(1, r->cfg.size), t->tva = dp_seg_transform_defaults(0, r->cfg.size);
    snprintf(t->ck, sizeof t->ck, "%s/%s", r->out, RUN_CHECKPOINT);
    if (t->resume && run_check_resume(t->ck, &r->cfg)) return 1;
    rc = dp_model_create(&r->cfg, &t->m);
    if (!rc) rc = dp_model_set_precision(t->m, cli_precision);
    if (rc)
        return cli_fail("cannot build %s (%s), width %g, for %dx%d input: %s", dp_arch_name(r->cfg.arch),
                        dp_pool_name(r->cfg.pool), (double)r->cfg.width, r->cfg.size, r->cfg.size, dp_strerror(rc));
    t->p = (run_progress){0};
    t->p.best_acc = -1;
    if (!t->resume) return run_create(r, t->ck);
    if ((rc = dp_model_load(t->m, t->ck, err, sizeof err)))
        return cli_fail("cannot resume: %s", err[0] ? err : dp_strerror(rc));
    if (run_read_progress(t->m, r, t->steps_per_epoch, &t->p, msg, sizeof msg))
        return cli_fail("cannot resume: %s: metadata 'progress' %s", t->ck, msg);
    if (run_trim_metrics(r->out, t->p.epoch))
        return cli_fail("cannot rewrite %s/metrics.jsonl: %s", r->out, strerror(errno));
    printf("resuming %s at epoch %d, step %d (from %s)\n", r->out, t->p.epoch + 1, t->p.batch + 1, t->ck);
    return 0;
}

static void end_live_line(seg_trainer *t)
{
    if (t->live) putchar('\n');
    t->live = 0;
    fflush(stdout);
}

/* The progress line: one live line on a terminal, else one every --log-every s. */
static void progress_line(seg_trainer *t, double now)
{
    const run_progress *p = &t->p;
    char eta[32], sz[256], line[512];
    dp_model_info_get(t->m, &t->info);
    const double per_step = (now - t->t_epoch) / (double)t->steps_epoch;
    /* the steps left, and the evaluations left at about a step's time per batch of images */
    const double left = (double)(t->r.epochs - p->epoch) * t->steps_per_epoch - p->batch;
    cli_fmt_eta(eta, sizeof eta, per_step * left);
    cli_sizes_str(sz, sizeof sz, &t->info);
    snprintf(line, sizeof line, "epoch %d/%d  step %d/%d  loss %.4f  %.1f img/s  ETA %s  maps %s  %.4f GMACs",
             p->epoch + 1, t->r.epochs, p->batch, t->steps_per_epoch, p->loss / (double)p->seen,
             (double)t->steps_epoch * t->r.batch / (now - t->t_epoch), eta, sz, t->info.gmacs);
    cli_progress_print(line, t->tty, &t->live);
    t->t_log = now;
}

/* The epoch's steps from t->p.batch on: 0 at its end or after a signal, else 1
 * after saying why. */
static int seg_steps(seg_trainer *t)
{
    const run_cfg *r = &t->r;
    run_progress *p = &t->p;
    const int e = p->epoch, B = r->batch;
    const size_t per = (size_t)r->cfg.size * r->cfg.size;
    const double f = dp_recipe_lr_factor(e, r->epochs);
    t->lr = (float)(r->lr * f), t->lra = (float)(r->alpha_lr * f);
    cli_epoch_order(t->order, t->n_train, r->seed, e);
    if (p->batch == 0) {
        p->loss = p->task = p->gmacs = 0, p->correct = p->seen = p->capped = 0;
        p->n_ga = 0, memset(p->ga_task, 0, sizeof p->ga_task), memset(p->ga_cost, 0, sizeof p->ga_cost);
    }
    t->t_epoch = t->t_log = cli_now_s(), t->steps_epoch = 0, t->t_data = 0;
    char err[1024] = "";
    while (p->batch < t->steps_per_epoch && !cli_signal) {
        const int i = p->batch * B;
        const double t0 = cli_now_s();
        for (int k = 0; k < B; k++)
            if (dp_segset_sample(t->tr, t->order[i + k], &t->ttr, r->seed, (long long)e * t->n_train + i + k,
                                 t->x + 3 * per * k, t->lab + per * k, err, sizeof err)) {
                end_live_line(t);
                return cli_fail("%s", err);
            }
        t->t_data += cli_now_s() - t0;
        dp_step_stats st;
        const int rc = dp_model_train_step(t->m, t->x, t->lab, B, &t->tc, t->lr, t->lra, &st);
        if (rc) {
            end_live_line(t);
            return cli_fail("epoch %d, step %d: %s%s", e + 1, p->batch + 1, dp_strerror(rc),
                            rc == DP_ERR_NONFINITE ? ": the run diverged; nothing was saved after the last good "
                                                     "checkpoint (try a lower --lr or --lambda)" : "");
        }
        st.correct = 0; /* pixels, not images: the progress counts images (seg's accuracy is the validation's) */
        run_progress_add(p, &st, B);
        t->steps_here++, t->steps_epoch++;
        if (t->interrupt_after && t->steps_here == t->interrupt_after) raise(SIGINT);
        const double now = cli_now_s();
        if (t->tty ? now - t->t_log >= 0.25 || p->batch == t->steps_per_epoch : now - t->t_log >= t->log_every)
            progress_line(t, now);
    }
    if (t->live && !cli_signal) printf("\r\033[K"), t->live = 0; /* the epoch's line replaces the live one */
    end_live_line(t);
    return 0;
}

/* The end of an epoch: validation, metrics.jsonl, the epoch's line, the best
 * checkpoint when it is, the checkpoint; 0, or 1 after saying why. */
static int seg_epoch_end(seg_trainer *t)
{
    const run_cfg *r = &t->r;
    run_progress *p = &t->p;
    const double t_train = cli_now_s() - t->t_epoch;
    const int K = r->cfg.classes;
    long long *conf = calloc((size_t)K * K, sizeof *conf);
    double miou, acc;
    char first[128], sz[256];
    int rc = conf ? seg_score(t->m, t->va, &t->tva, K, conf, &miou, &acc) : cli_fail("out of memory");
    free(conf);
    if (rc) return 1;
    const int bad = dp_model_nonfinite(t->m, first, sizeof first);
    if (bad > 0)
        return cli_fail("the run diverged in epoch %d: %d tensors hold NaN or infinite values (first: %s); nothing "
                        "was saved after the last good checkpoint", p->epoch + 1, bad, first);
    dp_model_info_get(t->m, &t->info);
    run_epoch e = {t->lr, t->lra, 0, 0, 0, 0, &t->info, t_train > 0 ? t->steps_epoch * r->batch / t_train : 0,
                   t_train > 0 ? t->t_data / t_train : 0, t_train, 100 * miou, 100 * acc};
    const int improved = e.miou > p->best_acc;
    if (improved) p->best_acc = e.miou, p->best_epoch = p->epoch + 1;
    if (run_append_metrics(r, p, &e)) return 1;
    cli_sizes_str(sz, sizeof sz, &t->info);
    printf("epoch %d/%d  loss %.4f  val mIoU %.2f%%  pixel acc %.2f%%  %.4f GMACs  maps %s  %.0fs\n", p->epoch + 1,
           r->epochs, p->loss / (double)p->seen, e.miou, e.pixel_acc, t->info.gmacs, sz, t_train);
    fflush(stdout);
    run_progress next = *p;
    next.epoch++, next.batch = 0;
    const float mean[3] = {t->tva.mean[0], t->tva.mean[1], t->tva.mean[2]},
                sd[3] = {t->tva.std[0], t->tva.std[1], t->tva.std[2]};
    if (improved && run_save(t->m, RUN_BEST, r, &next, mean, sd)) return 1;
    return run_save(t->m, RUN_CHECKPOINT, r, &next, mean, sd) ? 1 : 0;
}

/* The Table 5.4 row: summary.json and on stdout; 0, or 1 when summary.json could not
 * be written. */
static int seg_report(seg_trainer *t)
{
    const run_cfg *r = &t->r;
    dp_model_info hi;
    double miou, acc, best;
    dp_model_info_get(t->m, &t->info);
    run_human_info(r, &hi);
    const int rc = run_write_seg_summary(r, &t->p, &t->info, &hi);
    run_read_metric(r->out, "miou", t->p.best_epoch, &miou, &best);
    run_read_metric(r->out, "pixel_acc", t->p.best_epoch, &acc, &(double){0});
    printf("\nResult (the paper's Table 5.4 row; the validation split, last epoch)\n"
           "| model | pooling | mIoU (%%) | pixel acc. (%%) | GMACs | maps |\n|---|---|---|---|---|---|\n"
           "| %s C=%g | %s | %.2f | %.2f | %.4f | ", dp_arch_name(r->cfg.arch), (double)r->cfg.width,
           dp_pool_name(r->cfg.pool), miou, acc, t->info.gmacs);
    for (int s = 0; s < t->info.n_stages; s++)
        printf("%s[%d,%d]", s ? " " : "", t->info.sizes[s][0], t->info.sizes[s][1]);
    printf(" |\n  human design: %.4f GMACs, maps", hi.gmacs);
    for (int s = 0; s < hi.n_stages; s++) printf(" [%d,%d]", hi.sizes[s][0], hi.sizes[s][1]);
    printf("\n  best epoch %d (%s): mIoU %.2f%%, chosen on the validation split itself\n"
           "  run folder %s (%s, metrics.jsonl, summary.json)\n", t->p.best_epoch, RUN_BEST, best, r->out,
           RUN_CHECKPOINT);
    return rc;
}

static int seg_run(seg_trainer *t)
{
    run_cfg *r = &t->r;
    const size_t per = (size_t)r->cfg.size * r->cfg.size;
    t->tc = dp_train_defaults(r->cfg.arch);
    t->tc.momentum = (float)r->momentum, t->tc.weight_decay = (float)r->wd, t->tc.nesterov = r->nesterov;
    t->tc.lambda = (float)r->lambda, t->tc.max_side = r->max_side;
    t->order = malloc(sizeof(int) * (size_t)t->n_train);
    t->x = malloc(sizeof(float) * 3 * per * (size_t)r->batch);
    t->lab = malloc(sizeof(int) * per * (size_t)r->batch);
    if (!t->order || !t->x || !t->lab) return cli_fail("out of memory for batches of %d", r->batch);
    dp_model_info_get(t->m, &t->info);
    printf("training %s (%s, C=%g) on %s: %d training, %d validation images, %dx%d crops, %d classes\n"
           "  %d epochs, batch %d, lr %g (alphas %g), cosine, momentum %g%s, wd %g, lambda %g, seed %llu\n"
           "  %.4f GMACs per image, %lld parameters; run folder %s\n",
           dp_arch_name(r->cfg.arch), dp_pool_name(r->cfg.pool), (double)r->cfg.width, r->data, t->n_train,
           dp_segset_count(t->va), r->cfg.size, r->cfg.size, r->cfg.classes, r->epochs, r->batch, r->lr, r->alpha_lr,
           r->momentum, r->nesterov ? " Nesterov" : "", r->wd, r->lambda, r->seed, t->info.gmacs, t->info.params,
           r->out);
    fflush(stdout);
    t->tty = isatty(fileno(stdout));
    t->t_run = cli_now_s();
    cli_catch_signal(SIGINT, NULL);
    cli_catch_signal(SIGTERM, NULL);
    int rc = 0;
    for (; t->p.epoch < r->epochs && !cli_signal && !rc; t->p.epoch++, t->p.batch = 0) {
        if ((rc = seg_steps(t)) || cli_signal) break;
        rc = seg_epoch_end(t);
    }
    if (rc) return 1;
    if (cli_signal) {
        const int sig = cli_signal;
        char first[128], where[64];
        const int bad = dp_model_nonfinite(t->m, first, sizeof first);
        const float mean[3] = {t->tva.mean[0], t->tva.mean[1], t->tva.mean[2]},
                    sd[3] = {t->tva.std[0], t->tva.std[1], t->tva.std[2]};
        rc = bad ? 1 : run_save(t->m, RUN_CHECKPOINT, r, &t->p, mean, sd);
        if (t->p.batch) snprintf(where, sizeof where, "in epoch %d after step %d", t->p.epoch + 1, t->p.batch);
        else snprintf(where, sizeof where, "after epoch %d", t->p.epoch);
        cli_fail("%s %s; %s\n  continue with: %s train --resume %s", sig == SIGTERM ? "terminated" : "interrupted",
                 where, rc ? "the checkpoint could NOT be saved" : "checkpoint saved", cli_prog, r->out);
        return rc ? 1 : 128 + sig;
    }
    return seg_report(t);
}

int seg_train(int argc, char **argv)
{
    seg_trainer t;
    memset(&t, 0, sizeof t);
    int rc = seg_settings(&t, argc, argv);
    if (rc) return rc == CLI_HELP ? 0 : rc;
    if (!(rc = seg_open(&t))) {
        if (t.p.epoch < t.r.epochs) {
            rc = seg_run(&t);
        } else {
            printf("%s: all %d epochs are done already (use --epochs to extend)\n", t.r.out, t.r.epochs);
            rc = seg_report(&t);
        }
    }
    free(t.order), free(t.x), free(t.lab);
    dp_model_free(t.m);
    dp_segset_free(t.tr), dp_segset_free(t.va);
    return rc;
}

/* ---- evaluation --------------------------------------------------------------------- */

/* The network of checkpoint file ckpt and its evaluation view t (the side it was trained
 * at, the normalisation it records; older checkpoints: none recorded, the loader's
 * default); 0, or 1 after saying why. */
static int seg_load(const char *ckpt, dp_model **out, dp_seg_transform *t)
{
    char err[1024] = "", msg[512];
    dp_model_config cfg;
    int rc;
    *out = NULL;
    if ((rc = dp_checkpoint_config(ckpt, &cfg, err, sizeof err))) return cli_fail("%s", err[0] ? err : dp_strerror(rc));
    if (!dp_arch_is_seg(cfg.arch)) return cli_fail("%s: %s is not a segmentation network", ckpt, dp_arch_name(cfg.arch));
    dp_model *m;
    if ((rc = dp_model_create(&cfg, &m))) return cli_fail("cannot build the checkpoint's network: %s", dp_strerror(rc));
    if (!rc) rc = dp_model_set_precision(m, cli_precision);
    if (rc || (rc = dp_model_load(m, ckpt, err, sizeof err))) {
        dp_model_free(m);
        return cli_fail("%s", err[0] ? err : dp_strerror(rc));
    }
    *t = dp_seg_transform_defaults(0, cfg.size);
    run_trained tr;
    const char *key;
    if (dp_model_meta(m, "dataset")) {
        if (run_read_trained(m, &tr, &key, msg, sizeof msg)) {
            dp_model_free(m);
            return cli_fail("%s: metadata '%s' %s", ckpt, key, msg);
        }
        memcpy(t->mean, tr.mean, sizeof t->mean), memcpy(t->std, tr.std, sizeof t->std);
    }
    *out = m;
    return 0;
}

int seg_masks_png(const char *ckpt, const char *data, int n, const char *path, char *ids, size_t cap)
{
    dp_model *m;
    dp_seg_transform t;
    dp_segset *s = NULL;
    char err[1024] = "";
    if (seg_load(ckpt, &m, &t)) return 1;
    const int K = dp_model_config_of(m)->classes, S = t.size;
    int rc = dp_segset_open(data, "val", K, &s, err, sizeof err);
    if (rc) {
        dp_model_free(m);
        return cli_fail("%s", err);
    }
    if (n > dp_segset_count(s)) n = dp_segset_count(s);
    const int z = S >= 96 ? 1 : (96 + S - 1) / S, P = S * z, g = SEG_MASKS_GAP;
    const int W = 3 * P + 4 * g, H = n * P + (n + 1) * g;
    const size_t per = (size_t)S * S;
    unsigned char *img = malloc((size_t)W * H * 3), pal[256][3];
    float *x = malloc(sizeof(float) * 3 * per);
    int *lab = malloc(sizeof(int) * per), *pred = malloc(sizeof(int) * per);
    if (!img || !x || !lab || !pred) rc = DP_ERR_NOMEM;
    else memset(img, 255, (size_t)W * H * 3);
    dp_seg_palette(pal);
    size_t used = 0;
    if (cap) ids[0] = 0;
    for (int i = 0; !rc && i < n; i++) {
        if ((rc = dp_segset_sample(s, i, &t, 0, i, x, lab, err, sizeof err)) || (rc = dp_model_predict_seg(m, x, 1, pred)))
            break;
        if (used < cap) used += (size_t)snprintf(ids + used, cap - used, "%s%s", i ? " " : "", dp_segset_id(s, i));
        for (int yy = 0; yy < P; yy++)
            for (int xx = 0; xx < P; xx++) {
                const size_t o = (size_t)(yy / z) * S + (size_t)(xx / z);
                unsigned char *row = img + ((size_t)(g + i * (P + g) + yy) * W) * 3;
                for (int c = 0; c < 3; c++) { /* the input, back to pixels */
                    const double v = 255.0 * (x[(size_t)c * per + o] * t.std[c] + t.mean[c]);
                    row[(size_t)(g + xx) * 3 + c] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : floor(v + 0.5));
                    row[(size_t)(2 * g + P + xx) * 3 + c] = pal[lab[o] & 255][c];
                    row[(size_t)(3 * g + 2 * P + xx) * 3 + c] = pal[pred[o] & 255][c];
                }
            }
    }
    if (!rc) rc = dp_image_write_png(path, img, H, W, 3, err, sizeof err);
    if (rc) cli_fail("%s: %s", path, err[0] ? err : dp_strerror(rc));
    free(img), free(x), free(lab), free(pred);
    dp_segset_free(s);
    dp_model_free(m);
    return rc ? 1 : 0;
}

int seg_eval(int argc, char **argv)
{
    const char *task = NULL, *ckpt = NULL, *data = NULL, *split = "val";
    int json = 0, best = 0;
    cli_opt opts[] = {
        {"--task", CLI_TEXT, .dst = &task},
        {"--checkpoint", CLI_TEXT, .dst = &ckpt},
        {"--data", CLI_TEXT, .dst = &data},
        {"--split", CLI_TEXT, .dst = &split},
        {"--best", CLI_FLAG, .dst = &best},
        {"--json", CLI_FLAG, .dst = &json},
    };
    cli_cmd c = {"eval", SEG_EVAL_USAGE, 0, .opts = opts, .n_opts = sizeof opts / sizeof opts[0]};
    int rc = cli_parse(&c, argc, argv);
    if (rc) return rc == CLI_HELP ? 0 : rc;
    if (!ckpt || !data) return cli_usage("eval", "%s", "eval --task seg needs --checkpoint F and --data DIR");
    char path[4200], err[1024] = "";
    struct stat st;
    if (stat(ckpt, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(path, sizeof path, "%s/%s", ckpt, best ? RUN_BEST : RUN_CHECKPOINT);
        ckpt = path;
    } else if (best) {
        return cli_usage("eval", "--best: %s is not a run folder", ckpt);
    }
    dp_model *m;
    dp_seg_transform t;
    if (seg_load(ckpt, &m, &t)) return 1;
    const dp_model_config cfg = *dp_model_config_of(m);
    dp_segset *s;
    if ((rc = dp_segset_open(data, split, cfg.classes, &s, err, sizeof err))) {
        dp_model_free(m);
        return cli_fail("%s", err);
    }
    const int K = cfg.classes;
    long long *conf = calloc((size_t)K * K, sizeof *conf);
    double miou, acc;
    dp_model_info in;
    rc = conf ? seg_score(m, s, &t, K, conf, &miou, &acc) : cli_fail("out of memory");
    if (!rc) dp_model_info_get(m, &in);
    if (!rc && json) { /* the numbers as metrics.jsonl prints them (cJSON, the same doubles) */
        cJSON *o = cJSON_CreateObject(), *cm = cJSON_CreateArray();
        cJSON_AddNumberToObject(o, "miou", 100 * miou);
        cJSON_AddNumberToObject(o, "pixel_acc", 100 * acc);
        cJSON_AddNumberToObject(o, "gmacs", in.gmacs);
        cJSON_AddNumberToObject(o, "images", dp_segset_count(s));
        cJSON *sz = cJSON_AddArrayToObject(o, "sizes");
        for (int k = 0; k < in.n_stages; k++) cJSON_AddItemToArray(sz, cJSON_CreateIntArray(in.sizes[k], 2));
        for (int a = 0; a < K; a++) {
            cJSON *row = cJSON_CreateArray();
            for (int b = 0; b < K; b++) cJSON_AddItemToArray(row, cJSON_CreateNumber((double)conf[(size_t)a * K + b]));
            cJSON_AddItemToArray(cm, row);
        }
        cJSON_AddItemToObject(o, "confusion", cm);
        char *line = cJSON_PrintUnformatted(o);
        if (line) puts(line);
        free(line);
        cJSON_Delete(o);
    } else if (!rc) {
        char sz[256];
        cli_sizes_str(sz, sizeof sz, &in);
        printf("%s: %s split, %d images: mIoU %.2f%%, pixel accuracy %.2f%%, %.4f GMACs, maps %s\n", ckpt, split,
               dp_segset_count(s), 100 * miou, 100 * acc, in.gmacs, sz);
    }
    free(conf);
    dp_segset_free(s);
    dp_model_free(m);
    return rc ? 1 : 0;
}

/* --task seg among the arguments, or --resume DIR of a run whose run.json says
 * "task": "seg". */
int seg_task(int argc, char **argv)
{
    for (int i = 0; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--task") && !strcmp(argv[i + 1], "seg")) return 1;
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--task=seg")) return 1;
    for (int i = 0; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--resume")) {
            run_cfg r;
            char msg[1024];
            memset(&r, 0, sizeof r);
            return run_read_settings(argv[i + 1], &r, msg, sizeof msg) == 0 && r.seg;
        }
    return 0;
}
