/* model_opts.c — the model options of info and bench (model_opts.h). */
#include "model_opts.h"

#include <string.h>
#include <sys/stat.h>

#include "run.h"

static int task_parse(const char *v)
{
    return !strcmp(v, "classify") ? 0 : !strcmp(v, "seg") ? 1 : DP_ERR_ARG;
}

void model_opts_init(model_opts *o, cli_opt *t)
{
    memset(o, 0, sizeof *o);
    o->cfg = dp_model_defaults();
    const cli_opt mine[MODEL_N_OPTS] = {
        [MO_MODEL] = {"--model", CLI_NAME, &o->cfg.arch, .want = "vgg16, resnet50, mobilenetv2, efficientnet-b0 or efficientnet-b1",
                      .to_enum = dp_arch_parse},
        [MO_POOL] = {"--pool", CLI_NAME, &o->cfg.pool, .want = "human, dynopool or shape-adaptor",
                     .to_enum = dp_pool_parse},
        [MO_INPUT] = {"--input", CLI_INT, &o->cfg.size, 2, 4096, .want = "a side in [2, 4096]"},
        [MO_CLASSES] = {"--classes", CLI_INT, &o->cfg.classes, 1, 1000000},
        [MO_WIDTH] = {"--width", CLI_NUM, &o->width, 0, 64, CLI_OPEN_LO,
                      .want = "a number in (0, 16], or hrnet-w48's channel number C up to 64"},
        [MO_IN_CH] = {"--in-ch", CLI_INT, &o->cfg.in_ch, 1, 1 << 20},
        [MO_CHECKPOINT] = {"--checkpoint", CLI_TEXT, &o->checkpoint},
        [MO_TASK] = {"--task", CLI_NAME, &o->task, .want = "classify or seg", .to_enum = task_parse},
    };
    memcpy(t, mine, sizeof mine);
    o->opts = t;
}

void model_opts_resolve(model_opts *o)
{
    struct stat st; /* a run folder of 'train' (as eval takes it) */
    if (o->opts[MO_WIDTH].set) o->cfg.width = (float)o->width;
    if (o->checkpoint && stat(o->checkpoint, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(o->ckpt_path, sizeof o->ckpt_path, "%s/%s", o->checkpoint, RUN_CHECKPOINT);
        o->checkpoint = o->ckpt_path;
    }
}

int model_opts_from_checkpoint(model_opts *o)
{
    char err[512] = "";
    dp_model_config c;
    int rc;
    if (!o->checkpoint || o->have_ckpt_cfg) return 0;
    if ((rc = dp_checkpoint_config(o->checkpoint, &c, err, sizeof err)))
        return cli_fail("%s", err[0] ? err : dp_strerror(rc));
    if (!o->opts[MO_MODEL].set) o->cfg.arch = c.arch;
    if (!o->opts[MO_POOL].set) o->cfg.pool = c.pool;
    if (!o->opts[MO_INPUT].set) o->cfg.size = c.size;
    if (!o->opts[MO_CLASSES].set) o->cfg.classes = c.classes;
    if (!o->opts[MO_WIDTH].set) o->cfg.width = c.width;
    if (!o->opts[MO_IN_CH].set) o->cfg.in_ch = c.in_ch;
    o->have_ckpt_cfg = 1;
    return 0;
}

int model_opts_task(const model_opts *o)
{
    const int seg = dp_arch_is_seg(o->cfg.arch);
    if (o->opts[MO_TASK].set && o->task != seg)
        return cli_fail("--task %s: %s is a %s network", o->task ? "seg" : "classify", dp_arch_name(o->cfg.arch),
                        seg ? "segmentation (--task seg)" : "classification (--task classify)");
    return 0;
}

dp_model *model_opts_open(model_opts *o)
{
    char err[512] = "";
    int rc;
    if (model_opts_from_checkpoint(o)) return NULL;
    dp_model *m = NULL;
    if ((rc = dp_model_create(&o->cfg, &m)) || (rc = dp_model_set_precision(m, cli_precision))) {
        cli_fail("cannot build %s (%s) for %dx%d input: %s", dp_arch_name(o->cfg.arch), dp_pool_name(o->cfg.pool),
                 o->cfg.size, o->cfg.size, dp_strerror(rc));
        dp_model_free(m);
        return NULL;
    }
    if (o->checkpoint && (rc = dp_model_load(m, o->checkpoint, err, sizeof err))) {
        cli_fail("%s", err[0] ? err : dp_strerror(rc));
        dp_model_free(m);
        return NULL;
    }
    return m;
}
