/* test_torchvision.c — the C half of tests/python/test_torchvision.py (ctest
 * py.torchvision): writes checkpoints of the human networks at torchvision's
 * sizes, which the Python test loads into torchvision.models.
 *
 *   test_torchvision MODEL SIZE CLASSES INIT STEPS LR OUT [WIDTH IN_CH]
 *       a new MODEL (human, IN_CH x SIZE x SIZE (3), CLASSES classes, WIDTH (1), seed 1),
 *       its weights from the file INIT ("-": the seed's) through
 *       dp_model_load_weights (a torchvision state_dict as safetensors, what
 *       `dynopool train --init` reads), then STEPS SGD steps at learning rate LR
 *       (alphas LR / 10) on one random batch of 2 (which move every BN's running
 *       statistics and counter), saved to OUT by dp_model_save.
 *
 * Exit status 0, or 1 after printing the library's message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dynopool.h"
#include "testutil.h"

int main(int argc, char **argv)
{
    if (argc != 8 && argc != 10) {
        fprintf(stderr, "usage: %s MODEL SIZE CLASSES INIT|- STEPS LR OUT [WIDTH IN_CH]\n", argv[0]);
        return 2;
    }
    dp_model_config c = dp_model_defaults();
    c.arch = dp_arch_parse(argv[1]), c.pool = DP_POOL_HUMAN;
    c.in_ch = argc == 10 ? atoi(argv[9]) : 3, c.size = atoi(argv[2]), c.classes = atoi(argv[3]);
    c.width = argc == 10 ? strtof(argv[8], NULL) : 1.0f, c.seed = 1;
    if (c.arch < 0) return fprintf(stderr, "unknown model %s\n", argv[1]), 2;
    dp_model *m = NULL;
    char err[1024] = "";
    int rc = dp_model_create(&c, &m);
    const char *what = "dp_model_create";
    if (!rc && strcmp(argv[4], "-") != 0) rc = dp_model_load_weights(m, argv[4], err, sizeof err), what = "dp_model_load_weights";
    const int n = 2, steps = atoi(argv[5]);
    const size_t len = (size_t)n * c.in_ch * c.size * c.size;
    float *x = malloc(sizeof *x * len);
    if (!rc && !x) rc = DP_ERR_NOMEM;
    int labels[2] = {3 % c.classes, 7 % c.classes};
    tu_rng r = {12345};
    for (size_t i = 0; x && i < len; i++) x[i] = tu_normal(&r);
    const dp_train_config tc = dp_train_defaults(c.arch);
    const float lr = strtof(argv[6], NULL);
    dp_step_stats st;
    for (int k = 0; !rc && k < steps; k++) rc = dp_model_train_step(m, x, labels, n, &tc, lr, lr / 10, &st), what = "dp_model_train_step";
    if (!rc) rc = dp_model_save(m, argv[7], NULL, NULL, 0, err, sizeof err), what = "dp_model_save";
    if (rc) fprintf(stderr, "%s: %s\n", what, err[0] ? err : dp_strerror(rc));
    free(x);
    dp_model_free(m);
    return rc != 0;
}
