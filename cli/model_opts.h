/* model_opts.h — the model options that info and bench share (--model, --pool,
 * --input, --classes, --width, --in-ch, --checkpoint, --task) and the model they give. */
#ifndef DP_CLI_MODEL_OPTS_H
#define DP_CLI_MODEL_OPTS_H

#include "common.h"

enum { MO_MODEL, MO_POOL, MO_INPUT, MO_CLASSES, MO_WIDTH, MO_IN_CH, MO_CHECKPOINT, MO_TASK, MODEL_N_OPTS };

typedef struct model_opts {
    dp_model_config cfg;  /* dp_model_defaults(), then the options */
    const char *checkpoint;
    char ckpt_path[4200]; /* a run folder's checkpoint.safetensors */
    double width;         /* --width, into cfg.width */
    int task;             /* --task: 0 classify, 1 seg (must match the model: dp_arch_is_seg) */
    cli_opt *opts;        /* the command's table: these options first */
    int have_ckpt_cfg;
} model_opts;

/* The defaults, and the model options as the first MODEL_N_OPTS entries of the
 * command's option table t. */
void model_opts_init(model_opts *o, cli_opt *t);
/* After parsing: --width into cfg, and a run folder given as --checkpoint names
 * its checkpoint. */
void model_opts_resolve(model_opts *o);
/* The checkpoint's configuration where options are unset (once); 0, or 1 after
 * saying why. */
int model_opts_from_checkpoint(model_opts *o);
/* 0 when --task (if given) is the model's task, else 1 after saying why. */
int model_opts_task(const model_opts *o);
/* Builds the model (from the checkpoint's configuration where options are unset)
 * and loads the checkpoint; NULL after saying why. */
dp_model *model_opts_open(model_opts *o);

#endif
