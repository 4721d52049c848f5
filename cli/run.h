/*
 * run.h — the run folder of `dynopool train` (docs/guide.md, "The run folder"):
 * the only code that knows its files and what each holds, and that writes or
 * reads them (all with cJSON).
 *
 *   run.json             the run's settings (what --resume rebuilds from), and
 *                        the human design's sizes for comparison
 *   checkpoint.safetensors  weights, alphas, BN statistics, momentum buffers,
 *                        with metadata: "epoch", "dataset" (name, variant and
 *                        the normalisation), "run" (run.json's settings) and
 *                        "progress" (the position in the run)
 *   checkpoint-best.safetensors  the same after the best epoch
 *   metrics.jsonl        one JSON line per finished epoch
 *   summary.json         the Table 5.1 row (segmentation: Table 5.4's), once the
 *                        run has finished
 *   .lock                flock()ed by the one trainer working in the folder
 */
#ifndef DP_CLI_RUN_H
#define DP_CLI_RUN_H

#include "common.h"

#define RUN_CHECKPOINT "checkpoint.safetensors"
#define RUN_BEST "checkpoint-best.safetensors"

/* The ranges of the settings: of train's options, and of run.json and the
 * checkpoint metadata when they are read back. */
#define RUN_MAX_WIDTH 16.0   /* dp_model_create's limit */
#define RUN_MAX_SEG_WIDTH 64.0 /* HRNet's channel number C (docs/models.md, "HRNetV2") */
#define RUN_MAX_CLASSES 256  /* dp_dataset_open's limit for IDX sets */
#define RUN_MIN_INPUT 8
#define RUN_MAX_INPUT 1024
#define RUN_MIN_ALPHA 0.25   /* --alpha-init: the optimiser's alpha_min ... */
#define RUN_MAX_ALPHA 64.0   /* ... and a factor no map needs */
#define RUN_MAX_EPOCHS 1000000
#define RUN_MAX_BATCH 65536
#define RUN_MAX_LR 100.0
#define RUN_MAX_WD 1.0
#define RUN_MAX_LAMBDA 1000.0
#define RUN_MAX_SIDE (1 << 24)          /* DP_MAX_AXIS */
#define RUN_MAX_SEED 9007199254740992.0 /* 2^53: run.json holds the seed as a JSON number */
#define RUN_MAX_COUNT RUN_MAX_SEED      /* images and steps counted in a checkpoint's progress */

/* The settings of a run: what run.json holds. */
typedef struct run_cfg {
    dp_model_config cfg; /* the model; cfg.seed = seed */
    int seg;             /* 1: a segmentation run (train --task seg, seg_train.c); run.json "task" */
    char data[2048], out[2048];
    char init[2048];     /* --init FILE: the initial weights' file ("": the seed's) */
    int kind;            /* the --dataset given (DP_DATA_AUTO: detect) */
    int classes, input;  /* the --classes / --input given (0: not given) */
    int variant, limit, limit_test;
    double val_split;    /* the fraction of the training images held out; 0: none */
    int epochs, batch, nesterov;
    int resize;          /* --input-size: the images resampled to resize x resize; 0: not */
    int n_alpha_init;    /* --alpha-init: 0 (the model's), 1 (every DynOPool), or one per stage */
    float alpha_init[DP_MAX_STAGES];
    int max_side;        /* 0: no cap */
    double lr, alpha_lr, momentum, wd, lambda;
    double alpha_momentum; /* --alpha-momentum; below 0: not given (the weights' momentum) */
    int alpha_trace;       /* --alpha-trace N: the first N steps' alphas and gradients in alpha_trace.jsonl */
    unsigned long long seed;
    char command[4096];    /* the command line that started the run: in run.json ("command") only,
                            * not in the checkpoints (a resumed run's are the same bytes) */
    /* not in run.json: what the opened data say, saved in the checkpoints' "dataset" */
    int data_kind, data_base;      /* the kind found (enum dp_data_kind) and its base side */
    const dp_dataset *data_names;  /* image folders: their class names (dp_dataset_class_name) */
} run_cfg;

/* The memory guard's default: twice the input side (train and eval). */
int run_default_max_side(int input);

/* The position in a run, saved in every checkpoint (metadata "progress"). */
typedef struct run_progress {
    int epoch, batch;         /* the next step: epoch (0-based) and batch within it */
    double loss, task, gmacs; /* sums over the epoch so far (per-batch means x batch) */
    long long correct, seen, capped;
    double best_acc;
    int best_epoch;
    /* the alphas' gradients summed over the epoch's steps so far (dp_step_stats) */
    int n_ga;
    double ga_task[DP_MAX_STAGES][2], ga_cost[DP_MAX_STAGES][2];
} run_progress;

/* Adds a training step's statistics (st, over nb images) to the epoch's sums in p
 * and counts the step (p->batch++). */
void run_progress_add(run_progress *p, const dp_step_stats *st, int nb);

/* ---- the folder ---------------------------------------------------------------- */

/* Takes the run folder for this process: an exclusive flock() on DIR/.lock,
 * held until the process ends, with our PID in the file for the next one to
 * name.  A second trainer is refused: two writers would interleave their epochs
 * in metrics.jsonl and overwrite each other's checkpoints.  Returns the
 * descriptor, or -1 after saying why. */
int run_lock(const char *dir);
/* Removes the temporary files of the folder's own files ("<name>.tmp" from older
 * versions, "<name>.tmp.*") that a crash or a kill left behind.  Only with the
 * folder locked: then no live writer owns them. */
void run_remove_stale_temps(const char *dir);

/* ---- run.json ------------------------------------------------------------------ */

/* r->command := "PROG train ARGS..." (argv: train's arguments), each argument that
 * a shell would split or expand in single quotes; cut at the field's size. */
void run_set_command(run_cfg *r, int argc, char **argv);
/* Whether dir holds a run.json. */
int run_has_settings(const char *dir);
/* A new run in r->out: its run.json from r, and no metrics.jsonl (of an earlier
 * start that saved no checkpoint); 0, or -1 after saying why. */
int run_start(const run_cfg *r);
/* Fills r's settings from dir/run.json (r->out, the model's in_ch, size and
 * classes are left alone); 0, or -1 with "PATH: what is wrong" in msg. */
int run_read_settings(const char *dir, run_cfg *r, char *msg, size_t cap);
/* Records r->epochs in r->out/run.json (a run extended by --resume --epochs);
 * 0, or -1 after saying why. */
int run_write_epochs(const run_cfg *r);

/* A new run in r->out: the folder created and locked, a checkpoint already
 * there refused, its settings written (run_start); 0, or 1 or EXIT_USAGE after
 * saying why.  ck: the run's checkpoint file. */
int run_create(const run_cfg *r, const char *ck);

/* ---- checkpoints ---------------------------------------------------------------- */

/* Before --resume builds a network: the checkpoint's metadata must describe the
 * tensors it holds (dp_checkpoint_config) and the run being resumed (cfg, from
 * run.json and the data), so that no file makes it allocate more than it holds.
 * 0, or 1 after saying why. */
int run_check_resume(const char *ck, const dp_model_config *cfg);

/* Saves m as r->out/file with the run's metadata; mean and std: the images'
 * normalisation.  0, or a DP_ERR_* code after saying why. */
int run_save(const dp_model *m, const char *file, const run_cfg *r, const run_progress *p, const float *mean,
             const float *std);
/* The progress of a loaded checkpoint of the run r, whose epochs have `steps`
 * steps; 0, or -1 with the first bad field and its range in msg. */
int run_read_progress(const dp_model *m, const run_cfg *r, int steps, run_progress *p, char *msg, size_t cap);
/* What a loaded checkpoint says of its training: the normalisation and variant
 * (required), the data folder and the --classes / --input it was opened with
 * (when the metadata "run" has them; "" and 0 otherwise). */
typedef struct run_trained {
    float mean[3], std[3];
    char variant[32], data[2048];
    int classes_opt, input_opt;
    int resize;          /* the side the images were resampled to; 0: not */
    /* from checkpoints of this version on (older ones: "", DP_DATA_AUTO, 0, none) */
    char name[256];      /* the data's name ("fashion-mnist", a folder's name) */
    int kind, base;      /* the kind of data (enum dp_data_kind) and its base side */
    int n_class_names;   /* image folders: the classes' names, NUL-separated in class_names */
    char class_names[16384];
} run_trained;
/* 0; or -1 with the metadata key that is wrong in *key and what in msg. */
int run_read_trained(const dp_model *m, run_trained *t, const char **key, char *msg, size_t cap);
/* The same from the metadata values "dataset" and "run" (either may be NULL). */
int run_read_trained_meta(const char *dataset, const char *run, run_trained *t, const char **key, char *msg,
                          size_t cap);
/* The name of class k of a model trained as t says: the class folder's name it
 * recorded, the dataset's own name for the sets whose names are known
 * (cli_class_name), else "class k" (in buf). */
const char *run_class_name(const run_trained *t, int classes, int k, char *buf, size_t cap);

/* ---- metrics.jsonl ------------------------------------------------------------- */

typedef struct run_epoch { /* an epoch's line beside the run's progress */
    float lr, lr_alpha;
    double val_loss, val_acc, test_loss, test_acc; /* val_*: with a validation split only */
    const dp_model_info *info;
    double images_per_s, data_wait, seconds;
    double miou, pixel_acc; /* segmentation runs (r->seg): the validation split's, in %; no val_* or test_* then */
} run_epoch;
/* Appends the epoch p->epoch's line to r->out/metrics.jsonl (synced); 0, or 1
 * after saying why. */
int run_append_metrics(const run_cfg *r, const run_progress *p, const run_epoch *e);
/* Keeps the lines of dir/metrics.jsonl whose epoch is <= last (after a resume);
 * 0, or -1 with errno set. */
int run_trim_metrics(const char *dir, int last);

/* ---- alpha_trace.jsonl (--alpha-trace) ------------------------------------------ */

#define RUN_ALPHA_TRACE "alpha_trace.jsonl"
/* Appends step `step` (counted over the run, from 1) of epoch `epoch` (from 1) to
 * r->out/alpha_trace.jsonl: the learning rate of the alphas, their values before
 * the step and the step's gradient split into task and complexity terms; 0, or 1
 * after saying why.  Not synced: a crash loses at most what the resume drops. */
int run_append_trace(const run_cfg *r, long long step, int epoch, float lr_alpha, const dp_step_stats *st);
/* Keeps the lines of dir/alpha_trace.jsonl whose step is <= last; 0, or -1 with
 * errno set. */
int run_trim_trace(const char *dir, long long last);
/* The test accuracy of the last line of dir/metrics.jsonl and of the line of
 * epoch best_epoch (0 where there is none). */
void run_read_accuracies(const char *dir, int best_epoch, double *last, double *at_best);
/* The same for the number `key` of the lines ("miou", "pixel_acc"). */
void run_read_metric(const char *dir, const char *key, int best_epoch, double *last, double *at_best);

/* ---- summary.json -------------------------------------------------------------- */

/* r->out/summary.json: the Table 5.1 row of the finished run, with the human
 * design's (hi) beside it; 0, or 1 after saying why. */
int run_write_summary(const run_cfg *r, const run_progress *p, const dp_model_info *info, const dp_model_info *hi,
                      double last_acc, double best_test);
/* The same for a segmentation run (r->seg): the paper's Table 5.4 row, mIoU and
 * pixel accuracy (%) of the last epoch, the best epoch's mIoU, the GMACs and the
 * maps of the run and of the human design. */
int run_write_seg_summary(const run_cfg *r, const run_progress *p, const dp_model_info *info,
                          const dp_model_info *hi);
/* The human design of r's model: 0 with its info in hi, or a DP_ERR_* code with
 * hi all 0 when it cannot be built. */
int run_human_info(const run_cfg *r, dp_model_info *hi);

/* ---- a run as `dynopool plot` draws it ----------------------------------------- */

enum { RUN_MAX_STAGES = 32 };
enum { RUN_EPOCH, RUN_TRAIN_LOSS, RUN_TEST_LOSS, RUN_TRAIN_ACC, RUN_TEST_ACC, /* a metrics row */
       RUN_GMACS, RUN_MIOU, RUN_COLS };                                          /* miou: segmentation */
/* Values kept: finite and at most RUN_VMAX in size (so that no span overflows). */
#define RUN_VMAX 1e30

typedef struct run_view {
    char name[256], model[32], pool[32], variant[32], dataset[256];
    int in[2], finished, n_sizes, sizes[RUN_MAX_STAGES][2]; /* (h, w) of the input, each stage */
    double acc, gmacs;   /* test accuracy (%) and GMACs per image; NaN when unknown */
    int n_ep, cap_ep;
    double *ep;          /* n_ep rows of RUN_COLS: one per line of metrics.jsonl */
    int (*ep_sizes)[RUN_MAX_STAGES][2], *ep_n_sizes; /* each line's map sizes (h, w) */
    int seg;             /* a segmentation run (run.json "task": "seg") */
    char data[2048];     /* run.json's data folder ("" when unknown) */
    int n_bad, bad_line; /* values left out (NaN in ep), the first one's line */
    char bad_key[32];
} run_view;

/* Reads the run folder dir: run.json, then metrics.jsonl, then summary.json (a
 * later source overrides an earlier one; finished once summary.json is there).
 * Metrics that are null, infinite or beyond RUN_VMAX are left out with a
 * warning.  0, or 1 after naming the file and line of the problem.  Free with
 * run_view_free. */
int run_view_load(const char *dir, run_view *v);
void run_view_free(run_view *v);

#endif
