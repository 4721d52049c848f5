/* cmd_info.c — `dynopool info`: a model's cost and size (the paper's Table 5.1
 * row), from its configuration or a checkpoint. */
#include <stdlib.h>

#include "commands.h"
#include "common.h"
#include "model_opts.h"

/* A printf format whose every %s is the program's name. */
static const char *const INFO_USAGE =
    "Usage: %s info [--model M] [--pool P] [--input S] [--classes C] [--width W]\n"
    "                     [--in-ch N] [--checkpoint FILE] [--task T] [--json]\n"
    "\n"
    "The row of the paper's Table 5.1 for one network: GMACs per image (counted as\n"
    "in docs/operator.md: conv, linear, batch norm), parameters, the feature-map size\n"
    "after every resizing stage, the alphas, and DynOPool's own share of the cost\n"
    "(Table 5.5).\n"
    "\n"
    "  --model M        vgg16 | resnet50 | mobilenetv2 |\n"
    "                   efficientnet-b0 | efficientnet-b1 |\n"
    "                   hrnet-w48 (segmentation)                (default vgg16)\n"
    "  --pool P         human | dynopool | shape-adaptor         (default human)\n"
    "  --input S        input side in pixels                      (default 32)\n"
    "  --classes C      number of classes                         (default 100)\n"
    "  --width W        channel multiplier                        (default 1);\n"
    "                   hrnet-w48: its channel number C, 18, 32 or 48 (1: 48)\n"
    "  --in-ch N        input channels                            (default 3)\n"
    "  --checkpoint F   a trained model (safetensors, or the run folder that holds it):\n"
    "                   its learned alphas and sizes;\n"
    "                   model options default to the checkpoint's own\n"
    "  --task T         classify | seg: checks that the model does that task\n"
    "  --json           one JSON object: gmacs, params, sizes, alphas, dynopool_share, ...\n"
    "\n"
    "Shape adaptors report alpha = 1 / scale.  Example:\n"
    "  %s info --model resnet50 --input 224 --classes 1000\n"
    "  (segmentation: --model hrnet-w48 --task seg --input 480 --classes 21)\n";

/* One line of JSON: the configuration and in's counts. */
static void print_json(const dp_model_config *c, const dp_model_info *in)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", dp_arch_name(c->arch));
    cJSON_AddStringToObject(o, "pool", dp_pool_name(c->pool));
    const int input[3] = {c->in_ch, c->size, c->size};
    cJSON_AddItemToObject(o, "input", cJSON_CreateIntArray(input, 3));
    cJSON_AddNumberToObject(o, "classes", c->classes);
    cli_json_add_fixed(o, "width", c->width, "%g");
    cli_json_add_fixed(o, "gmacs", in->gmacs, "%.6f");
    cli_json_add_fixed(o, "params", (double)in->params, "%.0f");
    cJSON *sizes = cJSON_AddArrayToObject(o, "sizes"), *alphas = cJSON_AddArrayToObject(o, "alphas");
    for (int s = 0; s < in->n_stages; s++) cJSON_AddItemToArray(sizes, cJSON_CreateIntArray(in->sizes[s], 2));
    for (int s = 0; s < in->n_alphas; s++) {
        cJSON *a = cJSON_CreateArray();
        cJSON_AddItemToArray(a, cli_json_fixed(in->alphas[s][0], "%.6g"));
        cJSON_AddItemToArray(a, cli_json_fixed(in->alphas[s][1], "%.6g"));
        cJSON_AddItemToArray(alphas, a);
    }
    cli_json_add_fixed(o, "dynopool_gmacs", in->dynopool_gmacs, "%.6f");
    cli_json_add_fixed(o, "dynopool_share", in->dynopool_share, "%.6f");
    char *line = cli_json_line(o);
    if (line) puts(line);
    free(line);
    cJSON_Delete(o);
}

static void print_text(const dp_model_config *c, const dp_model_info *in, const char *checkpoint)
{
    printf("%s (%s), input %dx%dx%d, %d classes, width %g%s%s\n", dp_arch_name(c->arch), dp_pool_name(c->pool),
           c->in_ch, c->size, c->size, c->classes, (double)c->width, checkpoint ? ", checkpoint " : "",
           checkpoint ? checkpoint : "");
    printf("  GMACs per image   %.4f\n", in->gmacs);
    printf("  parameters        %lld\n", in->params);
    printf("  stage sizes      ");
    for (int s = 0; s < in->n_stages; s++) printf(" %dx%d", in->sizes[s][0], in->sizes[s][1]);
    printf("%s\n", in->n_stages ? "" : " (none)");
    printf("  alphas           ");
    for (int s = 0; s < in->n_alphas; s++) printf(" (%.3g, %.3g)", (double)in->alphas[s][0], (double)in->alphas[s][1]);
    printf("%s\n", in->n_alphas ? "" : " (none: fixed pooling)");
    if (c->pool == DP_POOL_DYNOPOOL)
        printf("  DynOPool's own    %.4f GMACs, %.2f%% of the total\n", in->dynopool_gmacs, 100.0 * in->dynopool_share);
}

int cmd_info(int argc, char **argv)
{
    model_opts o;
    int json = 0;
    cli_opt opts[MODEL_N_OPTS + 1];
    model_opts_init(&o, opts);
    opts[MODEL_N_OPTS] = (cli_opt){"--json", CLI_FLAG, .dst = &json};
    cli_cmd c = {"info", INFO_USAGE, 1, .opts = opts, .n_opts = MODEL_N_OPTS + 1};
    int rc = cli_parse(&c, argc, argv);
    if (rc) return rc == CLI_HELP ? 0 : rc;
    model_opts_resolve(&o);
    /* without a checkpoint the counts need no weights: nothing is allocated */
    dp_model *m = o.checkpoint ? model_opts_open(&o) : NULL;
    if (o.checkpoint && !m) return 1;
    if (model_opts_task(&o)) {
        dp_model_free(m);
        return 1;
    }
    dp_model_info in;
    if ((rc = m ? dp_model_info_get(m, &in) : dp_model_info_of_config(&o.cfg, &in))) {
        dp_model_free(m);
        return cli_fail("cannot count %s (%s) for %dx%d input: %s", dp_arch_name(o.cfg.arch),
                        dp_pool_name(o.cfg.pool), o.cfg.size, o.cfg.size, dp_strerror(rc));
    }
    if (json) print_json(&o.cfg, &in);
    else print_text(&o.cfg, &in, o.checkpoint);
    dp_model_free(m);
    return 0;
}
