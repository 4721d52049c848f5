/*
 * cmd_train.c — `dynopool train`: the paper's recipe (docs/guide.md, "The
 * training recipe") on a real dataset, with live progress, a checkpoint and a
 * metrics line after every epoch, Ctrl-C that saves, and --resume that continues
 * to the same weights as an uninterrupted run.  The run folder it writes is
 * run.c's (run.h).
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "seg_train.h"
#include "common.h"
#include "dist.h"
#include "evaluate.h"
#include "run.h"

static const char *const TRAIN_USAGE =
    "Usage: dynopool train [options]\n"
    "       dynopool train --resume DIR\n"
    "\n"
    "Trains a network on a dataset with the paper's recipe (docs/guide.md: SGD with\n"
    "Nesterov momentum, cosine learning rate per epoch, alphas in their own group at\n"
    "a tenth of the learning rate).  Shows progress, writes after every epoch a line to\n"
    "DIR/metrics.jsonl and a checkpoint DIR/checkpoint.safetensors (atomically), keeps\n"
    "the best epoch's in DIR/checkpoint-best.safetensors (by validation accuracy with\n"
    "--val-split, else by test accuracy), and ends with the paper's Table 5.1 row\n"
    "(accuracy, GMACs, learned sizes).  One trainer at a time may use a run folder.\n"
    "\n"
    "Model\n"
    "  --model M        vgg16 | resnet50 | mobilenetv2 |\n"
    "                   efficientnet-b0 | efficientnet-b1             (default vgg16)\n"
    "  --pool P         human | dynopool | shape-adaptor              (default dynopool)\n"
    "  --width W        channel multiplier, 1 = the paper's networks  (default 1)\n"
    "  --init FILE      initial weights: a PyTorch state_dict saved as safetensors under\n"
    "                   the names of docs/models.md (torchvision's), every weight and BN\n"
    "                   statistic by name and shape; the alphas keep their initial values\n"
    "Data\n"
    "  --data DIR       dataset folder, detected from its files: IDX (*-idx3-ubyte[.gz]),\n"
    "                   CIFAR-10 (data_batch_*.bin), CIFAR-100 (train.bin, test.bin),\n"
    "                   image folder (train/<class>/*.jpg|png, test/<class>/...)\n"
    "                   (default: Fashion-MNIST in " CLI_FASHION_MNIST ")\n"
    "  --dataset K      idx | cifar10 | cifar100 | folder: skip the detection\n"
    "  --classes C      IDX sets: number of classes (default 10)\n"
    "  --input S        image folders: crop side (default 224; resized to 8/7 S first)\n"
    "  --input-size S   resample every image to S x S (after the variant): the network\n"
    "                   runs at another input resolution, as the paper's human baseline\n"
    "                   of Figure 5.2 (default: the data's own side)\n"
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
    "  --alpha-momentum X  the alphas' own momentum (default: --momentum's)\n"
    "  --wd X           weight decay (default 5e-4; 4e-5 for mobilenetv2, efficientnet-*)\n"
    "  --lambda X       weight of the complexity loss L_GMACs (default 0)\n"
    "  --alpha-init A   every DynOPool's initial alpha (both axes), or A1,A2,... one per\n"
    "                   stage in forward order (default 2; ResNet-50's stem 4).  Below 2 a\n"
    "                   stage starts with larger maps (the paper's DynOPool-B for ResNet-50)\n"
    "  --max-side N     memory guard: no DynOPool map side above N (default 2x input)\n"
    "  --seed N         weights, data order and augmentation (default 1)\n"
    "Output\n"
    "  --out DIR        run folder (default runs/<model>-<pool>[-<variant>]-<data>)\n"
    "  --resume DIR     continue the run in DIR from its last checkpoint (its settings\n"
    "                   come from DIR/run.json; --epochs may extend it)\n"
    "  --log-every S    when not on a terminal: a progress line every S seconds (30)\n"
    "  --alpha-trace N  the first N steps' alphas and their gradients, split into the\n"
    "                   task's and the complexity loss's terms, in DIR/alpha_trace.jsonl\n"
    "                   (default 0: none; metrics.jsonl always has each epoch's mean)\n"
    "Processes (mpirun -np N dynopool train ...; docs/distributed.md)\n"
    "  --sync-bn        batch norm with the statistics of the global batch (default: each\n"
    "                   rank's own shard, as PyTorch's DistributedDataParallel); not kept\n"
    "                   in run.json: give it again with --resume.  One process: the same\n"
    "                   batch-norm loops as the ranks (slower than oneDNN's)\n"
    "  --bucket-mb X    gradients summed in buckets of X MB (default 16)\n"
    "  --no-overlap     sum the buckets after the backward pass, not during it\n"
    "  --lockstep-every K  compare the ranks' weights every K steps (default: every epoch)\n"
    "  --interrupt-after K  behave as if Ctrl-C came after K steps (for tests)\n"
    "  --poison-after K     an infinite learning rate from step K+1 on (for tests)\n"
    "\n"
    "Ctrl-C (or SIGTERM) finishes the current step, saves a checkpoint and exits with\n"
    "status 130 (143); under mpirun send SIGUSR1 to mpirun instead (status 138), since\n"
    "mpirun itself ends the job on Ctrl-C; `dynopool train --resume DIR` then gives the same weights,\n"
    "alphas and metrics as a run that was never interrupted.  A run that diverges (a NaN\n"
    "or infinite loss, test loss or weight) stops (exit 1) and leaves the last good\n"
    "checkpoint untouched.\n"
    "Example (README's main job: about 4 minutes of training on 2 cores):\n"
    "  dynopool train --width 0.25 --epochs 25 --out runs/fmnist-dynopool\n";


/* ---- the state of a training session ------------------------------------------------ */

/* The options of `train`.  CLI_MARK: a setting of the run, refused with --resume
 * (which takes them from run.json). */
enum opt_id {
    O_MODEL, O_POOL, O_WIDTH, O_INIT, O_DATA, O_DATASET, O_CLASSES, O_INPUT, O_INPUT_SIZE, O_VARIANT, O_LIMIT,
    O_LIMIT_TEST, O_ALPHA_INIT, O_VAL_SPLIT, O_WORKERS, O_EPOCHS, O_BATCH, O_LR, O_ALPHA_LR, O_MOMENTUM, O_ALPHA_MOMENTUM, O_WD, O_NO_NESTEROV, O_LAMBDA,
    O_MAX_SIDE, O_SEED, O_OUT, O_RESUME, O_LOG_EVERY, O_ALPHA_TRACE, O_INTERRUPT, O_POISON,
    O_SYNC_BN, O_BUCKET_MB, O_NO_OVERLAP, O_LOCKSTEP, O_COUNT
};

typedef struct {
    run_cfg r;            /* the run's settings, as run.json holds them */
    cli_opt opt[O_COUNT]; /* the options, and which were given */
    /* what the command line asks beyond the settings (or before they are known) */
    const char *resume;
    int epochs, workers, log_every, no_nesterov;
    double width;
    long long seed, interrupt_after, poison_after;
    /* data-parallel ranks (dist.h): settings, and the time in steps and in the allreduce */
    int sync_bn, no_overlap;
    long long lockstep_every;
    double bucket_mb, t_steps;
    int consistent; /* every rank knows of the failure being returned (no MPI_Abort needed) */
    /* the data */
    dp_dataset *tr, *te;
    dp_dataset_info di;
    int n_train, n_test, n_val, n_fit; /* n_fit = n_train - n_val images train */
    int *split;                        /* --val-split: split[0..n_val) held out, then the n_fit others */
    float mean[3], sd[3];              /* the normalisation, from the training split */
    dp_transform ttr, tte, tval;       /* train, test, validation */
    /* the model and the position in the run */
    dp_model *m;
    run_progress p;
    char ck[4200]; /* the run's checkpoint */
    /* the loop */
    dp_train_config tc;
    dp_loader *ld;
    int *order;
    dp_model_info info;
    int tty, steps_per_epoch, diverged, step_failed;
    int live; /* a progress line without its newline is on the terminal */
    long steps_here;
    double t_run;
    dp_cpu_mark cpu_mark;
    char err[1024]; /* the loader's error */
    /* the epoch */
    float lr, lra; /* the cosine schedule's learning rates */
    double wait_sum, t_epoch, t_log, t_ref;
    long imgs_here, steps_epoch;
} trainer;

/* ---- settings: the options, or run.json with --resume ------------------------------ */

/* --data (a folder; "fashion-mnist": the default one) and --out, into char[2048]. */
static int parse_path(const char *v, void *dst)
{
    char (*path)[sizeof((run_cfg *)0)->data] = dst;
    if (strlen(v) >= sizeof *path) return -1;
    strcpy(*path, v);
    return 0;
}

static int parse_data(const char *v, void *dst)
{
    return parse_path(strcmp(v, "fashion-mnist") ? v : CLI_FASHION_MNIST, dst);
}

/* --alpha-init A or A1,A2,...: into the run_cfg at dst; 0, or -1 for a bad value. */
static int parse_alpha_init(const char *v, void *dst)
{
    run_cfg *r = dst;
    int n = 0;
    for (const char *p = v;; p++) {
        char *end;
        const double a = strtod(p, &end);
        if (end == p || n == DP_MAX_STAGES || !(a >= RUN_MIN_ALPHA && a <= RUN_MAX_ALPHA)) return -1;
        r->alpha_init[n++] = (float)a;
        if (*end == 0) break;
        if (*end != ',') return -1;
        p = end;
    }
    r->n_alpha_init = n;
    return 0;
}

static void options(trainer *t)
{
    run_cfg *r = &t->r;
    const int S = CLI_MARK;
    const cli_opt o[O_COUNT] = {
        [O_MODEL] = {"--model", CLI_NAME, &r->cfg.arch, .flags = S, .want = "vgg16, resnet50, mobilenetv2, efficientnet-b0 or efficientnet-b1",
                     .to_enum = dp_arch_parse},
        [O_POOL] = {"--pool", CLI_NAME, &r->cfg.pool, .flags = S, .want = "human, dynopool or shape-adaptor",
                    .to_enum = dp_pool_parse},
        [O_WIDTH] = {"--width", CLI_NUM, &t->width, 0, RUN_MAX_WIDTH, S | CLI_OPEN_LO},
        [O_INIT] = {"--init", CLI_PARSE, r->init, .flags = S, .want = "a path shorter than 2048 bytes",
                    .parse = parse_path},
        [O_DATA] = {"--data", CLI_PARSE, r->data, .flags = S, .want = "a path shorter than 2048 bytes",
                    .parse = parse_data},
        [O_DATASET] = {"--dataset", CLI_NAME, &r->kind, .flags = S, .want = "idx, cifar10, cifar100 or folder",
                       .to_enum = dp_data_kind_parse},
        [O_CLASSES] = {"--classes", CLI_INT, &r->classes, 1, RUN_MAX_CLASSES, S},
        [O_INPUT] = {"--input", CLI_INT, &r->input, RUN_MIN_INPUT, RUN_MAX_INPUT, S},
        [O_INPUT_SIZE] = {"--input-size", CLI_INT, &r->resize, RUN_MIN_INPUT, RUN_MAX_INPUT, S},
        [O_ALPHA_INIT] = {"--alpha-init", CLI_PARSE, r, .flags = S, .parse = parse_alpha_init,
                          .want = "an alpha or a comma-separated list of alphas, each in [0.25, 64]"},
        [O_VARIANT] = {"--variant", CLI_NAME, &r->variant, .flags = S, .want = "none, stretch-v, tile or large",
                       .to_enum = dp_variant_parse},
        [O_LIMIT] = {"--limit", CLI_INT, &r->limit, 0, INT_MAX, S},
        [O_LIMIT_TEST] = {"--limit-test", CLI_INT, &r->limit_test, 0, INT_MAX, S},
        [O_VAL_SPLIT] = {"--val-split", CLI_NUM, &r->val_split, 0, 1, S | CLI_OPEN_LO | CLI_OPEN_HI,
                         "a fraction in (0, 1)"},
        [O_WORKERS] = {"--workers", CLI_INT, &t->workers, 0, CLI_MAX_WORKERS},
        [O_EPOCHS] = {"--epochs", CLI_INT, &t->epochs, 1, RUN_MAX_EPOCHS},
        [O_BATCH] = {"--batch", CLI_INT, &r->batch, 1, RUN_MAX_BATCH, S},
        [O_LR] = {"--lr", CLI_NUM, &r->lr, 0, RUN_MAX_LR, S | CLI_OPEN_LO},
        [O_ALPHA_LR] = {"--alpha-lr", CLI_NUM, &r->alpha_lr, 0, RUN_MAX_LR, S},
        [O_MOMENTUM] = {"--momentum", CLI_NUM, &r->momentum, 0, 1, S},
        [O_ALPHA_MOMENTUM] = {"--alpha-momentum", CLI_NUM, &r->alpha_momentum, 0, 1, S},
        [O_WD] = {"--wd", CLI_NUM, &r->wd, 0, RUN_MAX_WD, S},
        [O_NO_NESTEROV] = {"--no-nesterov", CLI_FLAG, &t->no_nesterov, .flags = S},
        [O_LAMBDA] = {"--lambda", CLI_NUM, &r->lambda, 0, RUN_MAX_LAMBDA, S},
        [O_MAX_SIDE] = {"--max-side", CLI_INT, &r->max_side, 2, RUN_MAX_SIDE, S | CLI_OR_ZERO,
                        "0 (no cap) or a side in [2, 16777216]"}, /* RUN_MAX_SIDE */
        [O_SEED] = {"--seed", CLI_LONG, &t->seed, 0, RUN_MAX_SEED, S},
        [O_OUT] = {"--out", CLI_PARSE, r->out, .want = "a path shorter than 2048 bytes", .parse = parse_path},
        [O_RESUME] = {"--resume", CLI_TEXT, &t->resume},
        [O_LOG_EVERY] = {"--log-every", CLI_INT, &t->log_every, 1, 86400},
        [O_ALPHA_TRACE] = {"--alpha-trace", CLI_INT, &r->alpha_trace, 0, INT_MAX, S},
        [O_INTERRUPT] = {"--interrupt-after", CLI_LONG, &t->interrupt_after, 1, 1e18},
        [O_POISON] = {"--poison-after", CLI_LONG, &t->poison_after, 1, 1e18},
        [O_SYNC_BN] = {"--sync-bn", CLI_FLAG, &t->sync_bn},
        [O_BUCKET_MB] = {"--bucket-mb", CLI_NUM, &t->bucket_mb, 0, 4096, CLI_OPEN_LO},
        [O_NO_OVERLAP] = {"--no-overlap", CLI_FLAG, &t->no_overlap},
        [O_LOCKSTEP] = {"--lockstep-every", CLI_LONG, &t->lockstep_every, 1, 1e18},
    };
    memcpy(t->opt, o, sizeof o);
}

/* The options into t; 0, or CLI_HELP, or EXIT_USAGE. */
static int parse(trainer *t, int argc, char **argv)
{
    options(t);
    cli_cmd c = {"train", TRAIN_USAGE, 0, .opts = t->opt, .n_opts = O_COUNT};
    int rc = cli_parse(&c, argc, argv), setting = 0;
    if (rc) return rc;
    for (int k = 0; k < O_COUNT; k++) setting |= t->opt[k].set && (t->opt[k].flags & CLI_MARK);
    if (t->resume && setting)
        return cli_usage("train", "%s: --resume takes the run's settings from its run.json; only --epochs, "
                         "--workers, --log-every and the test options may be given", t->resume);
    if (t->resume && t->opt[O_OUT].set)
        return cli_usage("train", "--out and --resume %s: give one of them", t->resume);
    if (t->opt[O_WIDTH].set) t->r.cfg.width = (float)t->width;
    if (t->opt[O_SEED].set) t->r.seed = t->r.cfg.seed = (unsigned long long)t->seed;
    return 0;
}

/* The recipe's defaults where the options are unset: a new run's settings, once
 * the data (their kind, the input side) are known.  (--resume has all from
 * run.json.) */
static void recipe_defaults(trainer *t)
{
    run_cfg *r = &t->r;
    const dp_recipe rec = dp_recipe_defaults(r->cfg.arch, r->cfg.pool, t->di.kind == DP_DATA_FOLDER);
    r->epochs = t->opt[O_EPOCHS].set ? t->epochs : rec.epochs;
    if (!t->opt[O_BATCH].set) r->batch = rec.batch;
    if (!t->opt[O_LR].set) r->lr = rec.lr;
    if (!t->opt[O_ALPHA_LR].set) r->alpha_lr = dp_recipe_alpha_lr(r->lr);
    if (!t->opt[O_MOMENTUM].set) r->momentum = cli_decimal(rec.step.momentum);
    if (!t->opt[O_WD].set) r->wd = cli_decimal(rec.step.weight_decay);
    if (!t->opt[O_LAMBDA].set) r->lambda = cli_decimal(rec.step.lambda);
    if (!t->opt[O_MAX_SIDE].set) r->max_side = run_default_max_side(r->cfg.size);
    r->nesterov = t->no_nesterov ? 0 : rec.step.nesterov;
}

/* --resume: the settings from the run folder, which this process locks first
 * (one trainer per folder, from before the first read to the end; a folder
 * without run.json is no run: the read says so).  0, or 1 after saying why. */
static int resume_settings(trainer *t)
{
    char msg[1024];
    if (run_has_settings(t->resume) && dist_rank() == 0) { /* rank 0 alone writes the run folder */
        if (run_lock(t->resume) < 0) return 1;
        run_remove_stale_temps(t->resume);
    }
    if (run_read_settings(t->resume, &t->r, msg, sizeof msg)) return cli_fail("cannot resume: %s", msg);
    snprintf(t->r.out, sizeof t->r.out, "%s", t->resume);
    if (t->opt[O_EPOCHS].set && t->epochs != t->r.epochs) { /* a new length: the schedule follows it from here on */
        t->r.epochs = t->epochs;
        if (dist_rank() == 0 && run_write_epochs(&t->r)) return 1;
    }
    return 0;
}

/* 0, or CLI_HELP, or the exit status after saying why. */
static int train_settings(trainer *t, int argc, char **argv)
{
    memset(t, 0, sizeof *t);
    run_cfg *r = &t->r;
    r->cfg = dp_model_defaults();
    r->cfg.pool = DP_POOL_DYNOPOOL;
    r->kind = DP_DATA_AUTO, r->variant = DP_VARIANT_NONE, r->seed = r->cfg.seed;
    r->alpha_momentum = -1;
    strcpy(r->data, CLI_FASHION_MNIST);
    t->log_every = 30, t->workers = 1;
    const int rc = parse(t, argc, argv);
    run_set_command(r, argc, argv);
    return rc ? rc : t->resume ? resume_settings(t) : 0;
}

/* ---- data ------------------------------------------------------------------------------ */

static int cmp_int(const void *a, const void *b)
{
    const int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* --val-split: n_val of the n_train images held out, chosen from the seed; the
 * network trains on the other n_fit (without it: all n_train, as always).  0, or
 * 1 after saying why. */
static int hold_out(trainer *t)
{
    const run_cfg *r = &t->r;
    t->n_val = 0, t->n_fit = t->n_train;
    if (!(r->val_split > 0)) return 0;
    t->n_val = (int)floor(r->val_split * t->n_train + 0.5);
    if (t->n_val < 1 || t->n_val >= t->n_train)
        return cli_fail("--val-split %g holds out %d of the %d training images: expected at least one image on "
                        "each side", r->val_split, t->n_val, t->n_train);
    if (!(t->split = malloc(sizeof(int) * (size_t)t->n_train))) return cli_fail("%s", dp_strerror(DP_ERR_NOMEM));
    cli_shuffle(t->split, t->n_train, cli_mix64(r->seed ^ 0x76616c73706c6974ULL)); /* split[0..n_val): validation */
    qsort(t->split, (size_t)t->n_val, sizeof(int), cmp_int);
    qsort(t->split + t->n_val, (size_t)(t->n_train - t->n_val), sizeof(int), cmp_int);
    t->n_fit = t->n_train - t->n_val;
    return 0;
}

/* The normalisation from the training split, the three transforms, and every
 * image the epochs will evaluate decoded once now: a bad one stops the run
 * before it trains, not after an epoch that would then be lost.  0, or 1 after
 * saying why. */
static int transforms(trainer *t)
{
    const run_cfg *r = &t->r;
    char err[1024] = "";
    const int rc = dp_dataset_stats(t->tr, t->mean, t->sd, err, sizeof err);
    if (rc)
        return cli_fail("%s%s%s", err[0] ? "" : r->data, err[0] ? "" : ": pixel statistics: ",
                        err[0] ? err : dp_strerror(rc));
    t->ttr = dp_transform_defaults(t->tr, 1, r->variant), t->tte = dp_transform_defaults(t->te, 0, r->variant);
    t->tval = dp_transform_defaults(t->tr, 0, r->variant); /* held-out images are seen as test images */
    dp_transform *all[3] = {&t->ttr, &t->tte, &t->tval};
    for (int k = 0; k < 3; k++) {
        memcpy(all[k]->mean, t->mean, sizeof t->mean), memcpy(all[k]->std, t->sd, sizeof t->sd);
        all[k]->resize = r->resize;
    }
    return cli_check_images(t->te, &t->tte, NULL, t->n_test, t->workers) ||
           (t->split && cli_check_images(t->tr, &t->tval, t->split, t->n_val, t->workers));
}

/* Opens the data and completes the settings from them; 0, or 1 after saying why. */
static int train_data(trainer *t)
{
    run_cfg *r = &t->r;
    if (cli_open_split(r->data, r->kind, 1, r->classes, r->input, &t->tr) ||
        cli_open_split(r->data, r->kind, 0, r->classes, r->input, &t->te))
        return 1;
    dp_dataset_info ti;
    dp_dataset_info_get(t->tr, &t->di);
    dp_dataset_info_get(t->te, &ti);
    t->n_train = r->limit && r->limit < t->di.n ? r->limit : t->di.n;
    t->n_test = r->limit_test && r->limit_test < ti.n ? r->limit_test : ti.n;
    if (hold_out(t) || transforms(t)) return 1;
    r->cfg.in_ch = t->di.channels;
    r->cfg.size = dp_transform_size(&t->ttr, t->di.size);
    r->cfg.classes = t->di.classes;
    r->data_kind = t->di.kind, r->data_base = t->di.size, r->data_names = t->tr;
    if (!t->resume) recipe_defaults(t);
    if (!r->out[0])
        snprintf(r->out, sizeof r->out, "runs/%s-%s%s%s-%s", dp_arch_name(r->cfg.arch), dp_pool_name(r->cfg.pool),
                 r->variant ? "-" : "", r->variant ? dp_variant_name(r->variant) : "", cli_data_name(r->data));
    if (t->ttr.pad > t->di.size) /* the random crop (docs/guide.md) needs images at least as wide as its padding */
        return cli_fail("%s: the images are %dx%d, smaller than the random crop's zero padding of %d pixels; "
                        "training needs images of at least %dx%d", r->data, t->di.size, t->di.size, t->ttr.pad,
                        t->ttr.pad, t->ttr.pad);
    return 0;
}

/* ---- the model and the run folder ------------------------------------------------------- */

/* --resume: the checkpoint into the model, the position in the run, and the
 * metrics of the epochs after it dropped; 0, or 1 after saying why. */
static int open_resumed(trainer *t)
{
    const run_cfg *r = &t->r;
    char msg[256];
    int rc = dp_model_load(t->m, t->ck, t->err, sizeof t->err);
    if (rc && t->err[0]) return cli_fail("cannot resume: %s", t->err);
    if (rc) return cli_fail("cannot resume from %s: %s", t->ck, dp_strerror(rc));
    if (run_read_progress(t->m, r, (t->n_train + r->batch - 1) / r->batch, &t->p, msg, sizeof msg))
        return cli_fail("cannot resume: %s: metadata 'progress' %s", t->ck, msg);
    if (dist_rank() > 0) return 0; /* rank 0 alone writes the run folder */
    if (run_trim_metrics(r->out, t->p.epoch))
        return cli_fail("cannot rewrite %s/metrics.jsonl: %s", r->out, strerror(errno));
    const long long done = (long long)t->p.epoch * ((t->n_fit + r->batch - 1) / r->batch) + t->p.batch;
    if (r->alpha_trace && run_trim_trace(r->out, done))
        return cli_fail("cannot rewrite %s/%s: %s", r->out, RUN_ALPHA_TRACE, strerror(errno));
    printf("resuming %s at epoch %d, step %d (from %s)\n", r->out, t->p.epoch + 1, t->p.batch + 1, t->ck);
    return 0;
}

/* The model, new or from the run's checkpoint; 0, or the exit status after
 * saying why. */
static int train_open(trainer *t)
{
    const run_cfg *r = &t->r;
    snprintf(t->ck, sizeof t->ck, "%s/%s", r->out, RUN_CHECKPOINT);
    if (t->resume && run_check_resume(t->ck, &r->cfg)) return 1;
    int rc = dp_model_create(&r->cfg, &t->m);
    if (!rc) rc = dp_model_set_precision(t->m, cli_precision); /* not a setting of the run: either resumes */
    if (!rc && !t->resume && r->n_alpha_init &&
        (rc = dp_model_init_alphas(t->m, r->alpha_init, r->n_alpha_init)) == DP_ERR_ARG)
        return cli_fail("--alpha-init gives %d alphas, but %s (%s) has %d DynOPool stages: give one for all "
                        "or one per stage", r->n_alpha_init, dp_arch_name(r->cfg.arch), dp_pool_name(r->cfg.pool),
                        dp_model_init_alphas(t->m, NULL, 0));
    if (rc)
        return cli_fail("cannot build %s (%s) for the %dx%dx%d inputs of %s: %s", dp_arch_name(r->cfg.arch),
                        dp_pool_name(r->cfg.pool), r->cfg.in_ch, r->cfg.size, r->cfg.size, r->data,
                        rc == DP_ERR_SIZE ? "the images are too small for its pooling stages (try --pool dynopool, "
                                            "whose maps keep 2 cells, or larger images)" : dp_strerror(rc));
    /* --init: before the run folder exists, so a file that does not fit leaves none */
    if (!t->resume && r->init[0] && (rc = dp_model_load_weights(t->m, r->init, t->err, sizeof t->err)))
        return cli_fail("--init: %s", t->err[0] ? t->err : dp_strerror(rc));
    t->p = (run_progress){0};
    t->p.best_acc = -1;
    return t->resume ? open_resumed(t) : dist_rank() > 0 ? 0 : run_create(r, t->ck); /* rank 0 alone writes the run folder */
}

/* ---- saving and the result -------------------------------------------------------------- */

/* The checkpoint of a run stopped mid-epoch, unless the model holds NaN or
 * infinite values: a diverged model never replaces the last good checkpoint. */
static int save_finite(const trainer *t)
{
    char first[128];
    const int bad = dp_model_nonfinite(t->m, first, sizeof first);
    if (bad > 0) {
        cli_fail("the run diverged at epoch %d, step %d: %d tensors hold NaN or infinite values (first: %s).\n  "
                 "Nothing was saved after the last good checkpoint (%s); try a lower --lr, --wd or --lambda.",
                 t->p.epoch + 1, t->p.batch, bad, first, t->ck);
        return DP_ERR_NONFINITE;
    }
    return run_save(t->m, RUN_CHECKPOINT, &t->r, &t->p, t->mean, t->sd);
}

/* The paper's Table 5.1 row, with the human design's sizes beside the learned ones. */
static void print_result(const trainer *t, const dp_model_info *info, const dp_model_info *hi, double last_acc,
                         double best_test, double session_s)
{
    const run_cfg *r = &t->r;
    const run_progress *p = &t->p;
    char took[32], name[64], data[64], best[32];
    cli_fmt_eta(took, sizeof took, session_s);
    printf("\nResult (the paper's Table 5.1 row; accuracy is top-1 on the test split, last epoch)\n");
    printf("  %-12s %-14s %-16s %9s %14s %9s %10s\n", "model", "pooling", "data", "accuracy", "best (epoch)",
           "GMACs", "params");
    snprintf(name, sizeof name, "%s x%g", dp_arch_name(r->cfg.arch), r->cfg.width);
    snprintf(data, sizeof data, "%s%s%s", cli_data_name(r->data), r->variant ? "/" : "",
             r->variant ? dp_variant_name(r->variant) : "");
    snprintf(best, sizeof best, "%.2f%% (%d)", best_test, p->best_epoch);
    printf("  %-12s %-14s %-16s %8.2f%% %14s %9.4f %10lld\n", name, dp_pool_name(r->cfg.pool), data, last_acc,
           best, info->gmacs, info->params);
    printf("  feature-map sizes, input -> each pooling stage:\n    human design  ");
    cli_print_sizes(stdout, hi, r->cfg.size);
    printf("   (%.4f GMACs)\n    this run      ", hi->gmacs);
    cli_print_sizes(stdout, info, r->cfg.size);
    printf("   (%.4f GMACs)\n", info->gmacs);
    if (info->n_alphas) {
        printf("    alphas       ");
        for (int i = 0; i < info->n_alphas; i++) printf(" (%.3f, %.3f)", info->alphas[i][0], info->alphas[i][1]);
        putchar('\n');
    }
    if (r->val_split > 0)
        printf("  best epoch %d (%s): chosen on the validation split (%g%% of the\n"
               "    training images, held out); validation accuracy %.2f%%, test accuracy %.2f%%\n",
               p->best_epoch, RUN_BEST, 100.0 * r->val_split, p->best_acc, best_test);
    else
        printf("  best epoch %d (%s): chosen on the test split itself (no --val-split),\n"
               "    so its test accuracy %.2f%% is an optimistic estimate\n", p->best_epoch, RUN_BEST, best_test);
    printf("  run folder %s (%s, %s, metrics.jsonl, summary.json); this session %s\n", r->out, RUN_CHECKPOINT,
           RUN_BEST, took);
}

/* At the end: summary.json and the result; 0, or 1 when summary.json could not
 * be written. */
static int report(const trainer *t, double session_s)
{
    dp_model_info info, hi;
    double last_acc, best_test;
    dp_model_info_get(t->m, &info);
    run_read_accuracies(t->r.out, t->p.best_epoch, &last_acc, &best_test);
    run_human_info(&t->r, &hi);
    const int rc = run_write_summary(&t->r, &t->p, &info, &hi, last_acc, best_test);
    print_result(t, &info, &hi, last_acc, best_test, session_s);
    return rc;
}

/* ---- the training loop ------------------------------------------------------------------ */

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

/* The sum over one rank: nothing to do. */
static int one_rank_sum(void *ctx, void *buf, long long n, int type)
{
    (void)ctx, (void)buf, (void)n, (void)type;
    return 0;
}

/* Several ranks (mpirun; docs/distributed.md): each loads its shard of every
 * batch and the model sums the gradients over them.  0, or 1 after saying why
 * (every rank says the same). */
static int train_ranks(trainer *t)
{
    const run_cfg *r = &t->r;
    const int R = dist_size(), last = t->n_fit % r->batch ? t->n_fit % r->batch : r->batch;
    if (R == 1) { /* one process: --sync-bn runs the synchronised batch norm's loops over a one-rank
                   * communicator, the same code as N ranks (docs/distributed.md) */
        static const dp_comm one = {.rank = 0, .size = 1, .allreduce = one_rank_sum};
        const int rc = t->sync_bn ? dp_model_set_comm(t->m, &one, 1, 0) : 0;
        return rc ? cli_fail("cannot set up --sync-bn: %s", dp_strerror(rc)) : 0;
    }
    if (r->batch < R || last < R)
        return cli_fail("%d ranks need at least one image each in every batch, but %s: choose a --batch (or "
                        "--limit) that gives every batch at least %d images", R,
                        r->batch < R ? "--batch is smaller" : "the last batch of each epoch is smaller", R);
    const dp_comm *c = dist_comm(!t->no_overlap);
    const long long bucket = t->bucket_mb > 0 ? (long long)(t->bucket_mb * (1 << 20) / sizeof(float)) : 0;
    int rc = dp_loader_shard(t->ld, dist_rank(), R);
    if (!rc) rc = dp_model_set_comm(t->m, c, t->sync_bn, t->bucket_mb > 0 ? (bucket > 0 ? bucket : 1) : 0);
    if (rc) return cli_fail("cannot set up rank %d of %d: %s", dist_rank(), R, dp_strerror(rc));
    printf("%d ranks (mpirun), each on its shard of every batch of %d; %s batch norm; gradients summed in "
           "buckets of %g MB %s the backward pass\n", R, r->batch, t->sync_bn ? "synchronised" : "per-rank",
           t->bucket_mb > 0 ? t->bucket_mb : 16.0, t->no_overlap ? "after" : "during");
    return 0;
}

/* The loader, the step's settings, the opening lines, signals; 0, or 1 after
 * saying why. */
static int train_start(trainer *t)
{
    const run_cfg *r = &t->r;
    t->tc = dp_train_defaults(r->cfg.arch);
    t->tc.momentum = (float)r->momentum, t->tc.weight_decay = (float)r->wd, t->tc.nesterov = r->nesterov;
    t->tc.lambda = (float)r->lambda, t->tc.max_side = r->max_side;
    t->tc.alpha_momentum = (float)r->alpha_momentum;
    t->order = malloc(sizeof(int) * (size_t)t->di.n);
    int rc = t->order ? dp_loader_create(t->tr, &t->ttr, r->batch, t->workers, &t->ld) : DP_ERR_NOMEM;
    if (rc)
        return cli_fail("cannot start the data loader for %s (batch %d, %d workers): %s", r->data, r->batch,
                        t->workers, dp_strerror(rc));
    if ((rc = train_ranks(t))) return rc;
    dp_model_info_get(t->m, &t->info);
    t->tty = isatty(fileno(stdout));
    char nval[48] = "";
    if (t->split) snprintf(nval, sizeof nval, " / %d validation", t->n_val);
    printf("training %s (%s, width %g) on %s%s%s: %d train%s / %d test images of %dx%dx%d, %d classes\n",
           dp_arch_name(r->cfg.arch), dp_pool_name(r->cfg.pool), r->cfg.width, cli_data_name(r->data),
           r->variant ? ", variant " : "", r->variant ? dp_variant_name(r->variant) : "", t->n_fit, nval, t->n_test,
           r->cfg.in_ch, r->cfg.size, r->cfg.size, r->cfg.classes);
    char am[48] = "";
    if (r->alpha_momentum >= 0) snprintf(am, sizeof am, " (alphas %g)", r->alpha_momentum);
    printf("  %d epochs, batch %d, lr %g (alphas %g), cosine, momentum %g%s%s, wd %g, lambda %g, "
           "max side %d, seed %llu\n  %.4f GMACs per image, %lld parameters; run folder %s\n",
           r->epochs, r->batch, r->lr, r->alpha_lr, r->momentum, am, r->nesterov ? " Nesterov" : "", r->wd,
           r->lambda, r->max_side, r->seed, t->info.gmacs, t->info.params, r->out);
    fflush(stdout);
    cli_catch_signal(SIGINT, NULL);
    cli_catch_signal(SIGTERM, NULL);
    /* mpirun forwards SIGUSR1 to every rank (it ends the job on SIGINT and SIGTERM):
     * the way to stop several ranks with a save (docs/distributed.md) */
    if (dist_size() > 1) cli_catch_signal(SIGUSR1, NULL);
    t->steps_per_epoch = (t->n_fit + r->batch - 1) / r->batch;
    t->t_run = cli_now_s();
    if (cli_threads_auto) dp_threads_idle_since(&t->cpu_mark);
    return 0;
}

/* The progress line: one live line on a terminal, else a line every
 * --log-every seconds. */
static void progress_line(trainer *t, double now)
{
    const run_progress *p = &t->p;
    char eta[32], sz[256], line[512];
    dp_model_info_get(t->m, &t->info);
    /* the current epoch's pace: maps that grow or shrink change the step time */
    const double per_step = (now - t->t_epoch) / t->steps_epoch;
    cli_fmt_eta(eta, sizeof eta, per_step * ((double)(t->r.epochs - p->epoch) * t->steps_per_epoch - p->batch));
    cli_sizes_str(sz, sizeof sz, &t->info);
    snprintf(line, sizeof line,
             "epoch %d/%d  step %d/%d  loss %.4f  acc %.2f%%  %.0f img/s  ETA %s  sizes %s  %.4f GMACs%s",
             p->epoch + 1, t->r.epochs, p->batch, t->steps_per_epoch, p->loss / p->seen, 100.0 * p->correct / p->seen,
             t->imgs_here / (now - t->t_epoch), eta, sz, t->info.gmacs, p->capped ? "  (max side bound)" : "");
    cli_progress_print(line, t->tty, &t->live);
    t->t_ref = t->t_log = now;
}

/* A step that failed with rc: a divergence (said, t->diverged) or another error
 * (said, t->step_failed); returns rc. */
static int step_failed(trainer *t, int rc)
{
    const run_progress *p = &t->p;
    const char *ck = access(t->ck, F_OK) == 0 ? t->ck : "none yet";
    char first[128];
    end_live_line(&t->live);
    if (rc == DP_ERR_NONFINITE) {
        cli_fail("the loss is not finite at epoch %d, step %d (lr %g): the run diverged.\n  Nothing was saved after "
                 "the last good checkpoint (%s); try a lower --lr or --lambda.", p->epoch + 1, p->batch + 1,
                 (double)t->lr, ck);
        t->diverged = 1;
        return rc;
    }
    const int bad = dp_model_nonfinite(t->m, first, sizeof first);
    if (bad > 0) { /* the step's update went to infinity (e.g. a huge --lr): a divergence */
        cli_fail("the training diverged at epoch %d, step %d (lr %g): after the update %d tensors hold NaN or "
                 "infinite values (first: %s).\n  Nothing was saved after the last good checkpoint (%s); try a "
                 "lower --lr.", p->epoch + 1, p->batch + 1, (double)t->lr, bad, first, ck);
        t->diverged = 1;
    } else {
        cli_fail("training step %d of epoch %d on %s failed: %s", p->batch + 1, p->epoch + 1, t->r.data,
                 dp_strerror(rc));
        t->step_failed = 1;
    }
    return rc;
}

/* Collective: every rank holds the same weights, alphas and momentum (their
 * bytes' hash); 0, or 1 after saying which step broke the lock-step. */
static int lockstep(trainer *t)
{
    if (dist_same(dp_model_hash(t->m))) return 0;
    end_live_line(&t->live);
    return cli_fail("the %d ranks' weights differ after epoch %d, step %d (lock-step lost: a bug; docs/distributed.md)",
                    dist_size(), t->p.epoch + 1, t->p.batch);
}

/* Collective, before each step: a signal that reached any rank stops every rank
 * after the same step (each sets cli_signal).  1 to stop. */
static int stop_agreed(void)
{
    const int sig = dist_max((int)cli_signal);
    if (sig && !cli_signal) cli_signal = sig;
    return sig != 0;
}

/* One step on a batch; 0, or its error (said). */
static int train_step(trainer *t, const float *x, const int *lab, int nb)
{
    run_progress *p = &t->p;
    dp_step_stats st;
    const float lr = t->poison_after && t->steps_here >= t->poison_after ? INFINITY : t->lr;
    const double t0 = cli_now_s();
    const int rc = dp_model_train_step(t->m, x, lab, nb, &t->tc, lr, t->lra, &st);
    t->t_steps += cli_now_s() - t0;
    if (rc) return step_failed(t, rc);
    nb = st.n; /* the global batch (several ranks: this rank had its shard of it) */
    if (dist_rank() == 0 && (long long)p->epoch * t->steps_per_epoch + p->batch < t->r.alpha_trace &&
        run_append_trace(&t->r, (long long)p->epoch * t->steps_per_epoch + p->batch + 1, p->epoch + 1, t->lra, &st))
        return t->step_failed = 1, DP_ERR_IO;
    run_progress_add(p, &st, nb);
    t->steps_here++, t->steps_epoch++, t->imgs_here += nb;
    if (t->interrupt_after && t->steps_here == t->interrupt_after) raise(SIGINT);
    if (t->lockstep_every && t->steps_here % t->lockstep_every == 0 && lockstep(t)) return t->step_failed = 1, DP_ERR_ARG;
    const double now = cli_now_s();
    if (t->tty ? now - t->t_ref >= 0.25 || p->batch == t->steps_per_epoch : now - t->t_log >= t->log_every)
        progress_line(t, now);
    return 0;
}

/* The epoch's learning rates and order of the images. */
static void epoch_schedule(trainer *t)
{
    const run_cfg *r = &t->r;
    const int e = t->p.epoch;
    const double cosf = dp_recipe_lr_factor(e, r->epochs);
    t->lr = (float)(r->lr * cosf), t->lra = (float)(r->alpha_lr * cosf);
    if (!t->split) {
        cli_epoch_order(t->order, t->di.n, r->seed, e);
    } else { /* the same order, over the images not held out */
        cli_epoch_order(t->order, t->n_fit, r->seed, e);
        for (int i = 0; i < t->n_fit; i++) t->order[i] = t->split[t->n_val + t->order[i]];
    }
}

/* The epoch's steps from t->p.batch on: DP_OK at its end or after a signal, else
 * an error (said; t->diverged after a divergence). */
static int train_steps(trainer *t)
{
    const run_cfg *r = &t->r;
    run_progress *p = &t->p;
    epoch_schedule(t);
    if (p->batch == 0) {
        p->loss = p->task = p->gmacs = 0, p->correct = p->seen = p->capped = 0;
        p->n_ga = 0, memset(p->ga_task, 0, sizeof p->ga_task), memset(p->ga_cost, 0, sizeof p->ga_cost);
    }
    int rc = dp_loader_start(t->ld, t->order, t->n_fit, p->batch, cli_mix64(r->seed ^ 0xda7aULL) + (uint64_t)p->epoch);
    if (rc)
        return cli_fail("cannot start epoch %d of %s at step %d: %s", p->epoch + 1, r->data, p->batch + 1,
                        dp_strerror(rc));
    t->wait_sum = 0.0, t->t_epoch = t->t_log = t->t_ref = cli_now_s();
    t->imgs_here = t->steps_epoch = 0;
    const float *x;
    const int *lab;
    int nb;
    double w;
    while (!stop_agreed() && (rc = dp_loader_next(t->ld, &x, &lab, &nb, &w, t->err, sizeof t->err)) == DP_OK) {
        t->wait_sum += w;
        if ((rc = train_step(t, x, lab, nb))) break;
    }
    if (rc == 1 && !cli_signal) { /* the epoch's end: its summary line replaces the live one */
        if (t->live) printf("\r\033[K");
        t->live = 0;
    } else {
        end_live_line(&t->live); /* what follows (an interruption, an error) starts on a line of its own */
    }
    if (rc == 1) rc = DP_OK;
    if (rc && !t->diverged && t->err[0]) { /* the data failed (an unreadable image): keep what was learned */
        cli_fail("%s", t->err);
        if (p->seen && !save_finite(t))
            cli_fail("checkpoint saved at epoch %d step %d; fix or remove the file, then: %s train --resume %s",
                     p->epoch + 1, p->batch, cli_prog, r->out);
    } else if (rc && !t->diverged && !t->step_failed) {
        cli_fail("preparing step %d of epoch %d from %s failed: %s", p->batch + 1, p->epoch + 1, r->data,
                 dp_strerror(rc));
    }
    return rc;
}

/* A diverged model is never saved, even when every step's loss was finite (a
 * huge weight decay can blow the weights up between two losses): 1 after saying
 * why it counts as diverged, else 0. */
static int diverged(const trainer *t, const run_epoch *e)
{
    char first[128], why[400];
    const int bad = dp_model_nonfinite(t->m, first, sizeof first), val = t->split != NULL;
    if (!bad && isfinite(e->test_loss) && !(val && !isfinite(e->val_loss))) return 0;
    size_t o = 0;
    why[0] = 0;
    if (val && !isfinite(e->val_loss))
        o += (size_t)snprintf(why + o, sizeof why - o, "the validation loss is %s",
                              isnan(e->val_loss) ? "NaN" : "infinite");
    if (!isfinite(e->test_loss) && o < sizeof why)
        o += (size_t)snprintf(why + o, sizeof why - o, "%sthe test loss is %s", o ? ", " : "",
                              isnan(e->test_loss) ? "NaN" : "infinite");
    if (bad > 0 && o < sizeof why)
        snprintf(why + o, sizeof why - o, "%s%d tensors hold NaN or infinite values (first: %s)", o ? ", " : "", bad,
                 first);
    cli_fail("the run diverged in epoch %d: %s.\n  Nothing was saved after the last good checkpoint (%s); try a "
             "lower --lr, --wd or --lambda.", t->p.epoch + 1, why, access(t->ck, F_OK) == 0 ? t->ck : "none yet");
    return 1;
}

/* After an epoch: its line in metrics.jsonl and on stdout; 0, or 1 after saying why. */
static int log_epoch(const trainer *t, const run_epoch *e)
{
    const run_cfg *r = &t->r;
    const run_progress *p = &t->p;
    if (run_append_metrics(r, p, e)) return 1;
    char sz[256], val[64] = "";
    cli_sizes_str(sz, sizeof sz, e->info);
    if (r->val_split > 0) snprintf(val, sizeof val, "val loss %.4f acc %.2f%%  ", e->val_loss, e->val_acc);
    printf("epoch %d/%d  train loss %.4f acc %.2f%%  %stest loss %.4f acc %.2f%%  %.4f GMACs  sizes %s  "
           "%.0f img/s  data wait %.1f%%  %.0fs%s\n",
           p->epoch + 1, r->epochs, p->loss / p->seen, 100.0 * p->correct / p->seen, val, e->test_loss, e->test_acc,
           e->info->gmacs, sz, e->images_per_s, 100.0 * e->data_wait, e->seconds,
           p->capped ? "  (max side bound: alphas raised)" : "");
    fflush(stdout);
    return 0;
}

/* The load changed during the epoch: follow it (docs/engine.md, "Threads"). */
static void follow_load(trainer *t)
{
    if (!cli_threads_auto) return;
    const int want = dp_threads_idle_since(&t->cpu_mark), had = dp_threads();
    if (want == had) return;
    dp_set_threads(want);
    printf("threads: %d -> %d (other processes keep %d of %d cores busy; --threads N fixes it)\n", had, want,
           dp_threads_available() - want, dp_threads_available());
}

/* The end of an epoch: validation, test, log, checkpoints (the best first: a
 * crash between the two saves repeats this epoch, which then writes both
 * again).  0, or an error (said; t->diverged after a divergence). */
static int epoch_end_rank0(trainer *t);
static int train_epoch_end(trainer *t)
{
    int rc = dist_rank() == 0 ? epoch_end_rank0(t) : 0;
    if (dist_size() == 1) return rc;
    /* rank 0 evaluated and saved: every rank learns how that went */
    const int v = dist_bcast(rc ? (t->diverged ? 2 : 1) : 0);
    t->consistent = 1;
    if (v && dist_rank() > 0) rc = 1, t->diverged = v == 2;
    return rc ? rc : lockstep(t);
}

/* Rank 0's part of train_epoch_end. */
static int epoch_end_rank0(trainer *t)
{
    const run_cfg *r = &t->r;
    run_progress *p = &t->p;
    const double t_train = cli_now_s() - t->t_epoch;
    run_epoch e = {t->lr, t->lra, 0, 0, 0, 0, &t->info, t->imgs_here / t_train,
                   t_train > 0 ? t->wait_sum / t_train : 0.0, t_train, 0, 0};
    int rc;
    if (t->split && (rc = cli_evaluate(t->m, t->tr, r->data, &t->tval, t->split, t->n_val, r->batch, t->workers,
                                       &e.val_loss, &e.val_acc)))
        return rc;
    if ((rc = cli_evaluate(t->m, t->te, r->data, &t->tte, NULL, t->n_test, r->batch, t->workers, &e.test_loss,
                           &e.test_acc)))
        return rc;
    if (diverged(t, &e)) return t->diverged = 1;
    dp_model_info_get(t->m, &t->info);
    const double chosen = t->split ? e.val_acc : e.test_acc; /* the best epoch: on held-out images if any */
    const int improved = chosen > p->best_acc;
    if (improved) p->best_acc = chosen, p->best_epoch = p->epoch + 1;
    if ((rc = log_epoch(t, &e))) return rc;
    follow_load(t);
    run_progress next = *p;
    next.epoch++, next.batch = 0;
    if (improved && (rc = run_save(t->m, RUN_BEST, r, &next, t->mean, t->sd))) return rc;
    return run_save(t->m, RUN_CHECKPOINT, r, &next, t->mean, t->sd);
}

/* After the loop (rc: its last error): a signal saves and exits 128 + its
 * number; a divergence or an error exits 1; a finished run reports. */
static int train_finish(trainer *t, int rc)
{
    if (dist_size() > 1 && rc == DP_OK && !t->diverged) stop_agreed(); /* a late signal: every rank knows */
    if (cli_signal && !t->diverged && rc == DP_OK) {
        const int sig = cli_signal;
        if (dist_rank() == 0) rc = save_finite(t);
        /* the others wait for rank 0's save: mpirun ends the job when a rank exits non-zero */
        rc = dist_bcast(rc);
        if (dist_rank() > 0) return rc ? 1 : 128 + sig;
        char where[64];
        if (t->p.batch) snprintf(where, sizeof where, "in epoch %d after step %d", t->p.epoch + 1, t->p.batch);
        else snprintf(where, sizeof where, "after epoch %d", t->p.epoch);
        cli_fail("%s %s; %s\n  continue with: %s train --resume %s", sig == SIGTERM ? "terminated" : "interrupted",
                 where, rc ? "the checkpoint could NOT be saved" : "checkpoint saved", cli_prog, t->r.out);
        return rc ? 1 : 128 + sig;
    }
    if (t->diverged || rc) return 1;
    if (dist_size() > 1) { /* the last comparison (collective), and what the sums cost */
        if (lockstep(t)) return 1;
        printf("%d ranks x %d threads in lock-step (weights, alphas and momentum identical, compared every %lld "
               "steps and at the end); %.2f s in training steps, %.2f s (%.1f%%) of them waiting for the "
               "gradient sums (rank 0)\n", dist_size(), dp_threads(),
               t->lockstep_every ? t->lockstep_every : (long long)t->steps_per_epoch, t->t_steps,
               dist_comm_seconds(), t->t_steps > 0 ? 100.0 * dist_comm_seconds() / t->t_steps : 0.0);
    }
    if (dist_rank() > 0) return 0;
    return report(t, cli_now_s() - t->t_run);
}

static int train_run(trainer *t)
{
    int rc = train_start(t);
    if (rc) return rc;
    /* stop_agreed: with several ranks, all stop after the same step */
    for (; t->p.epoch < t->r.epochs && !t->diverged && !stop_agreed(); t->p.epoch++, t->p.batch = 0)
        if ((rc = train_steps(t)) || t->diverged || stop_agreed() || (rc = train_epoch_end(t))) break;
    return train_finish(t, rc);
}

static void train_free(trainer *t)
{
    dp_loader_free(t->ld);
    free(t->order);
    dp_model_free(t->m);
    free(t->split);
    dp_dataset_free(t->tr);
    dp_dataset_free(t->te);
}

int cmd_train(int argc, char **argv)
{
    if (dist_init(&argc, &argv)) return 1;
    if (seg_task(argc, argv)) { /* segmentation: seg_train.c, one process */
        int src = 2;
        if (dist_size() > 1) {
            if (dist_rank() == 0)
                cli_fail("--task seg trains in one process: segmentation is not data-parallel yet "
                         "(docs/distributed.md); run it without mpirun");
        } else {
            src = seg_train(argc, argv);
        }
        dist_finalize(1);
        return src;
    }
    trainer t;
    int rc = train_settings(&t, argc, argv);
    /* several ranks: each sets up alone (rank 0 writes the run folder); all go on
     * only if all succeeded */
    if (rc != CLI_HELP && !rc) rc = train_data(&t);
    if (rc != CLI_HELP && !rc) rc = train_open(&t);
    if (rc != CLI_HELP) rc = dist_max(rc);
    if (rc) {
        if (rc != CLI_HELP) train_free(&t);
        dist_finalize(1);
        return rc == CLI_HELP ? 0 : rc;
    }
    if (t.p.epoch < t.r.epochs) {
        rc = train_run(&t);
    } else if (dist_rank() == 0) {
        printf("%s: all %d epochs are done already (use --epochs to extend)\n", t.r.out, t.r.epochs);
        rc = report(&t, 0.0); /* (again): an interruption may have come before it */
    }
    train_free(&t);
    /* a failure the other ranks do not know of (an unreadable image in this
     * rank's shard) would leave them waiting in a collective: end the job */
    dist_finalize(rc == 0 || rc >= 128 || t.consistent || t.diverged);
    return rc;
}
