/*
 * dynopool — the command-line tool: main() only dispatches to the commands
 * (commands.h, one file each).  The tool is the only place that prints for
 * people and chooses exit codes: 0 success, 1 a failure while working, 2 a
 * usage error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "common.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    int computes;         /* follows the idle CPUs unless told a thread count */
    const char *synopsis; /* for the tool's --help: the command and its main options */
    const char *help;     /* what it does, in lines of the help's right column */
} COMMANDS[] = {
    {"demo", cmd_demo, 1, "demo",
     "Show what the operator does: output shapes for a few\n"
     "alphas, the alpha = 2 / max-pooling identity, the\n"
     "gradients it gives alpha, and its speed here."},
    {"shape", cmd_shape, 0, "shape --input HxW --alpha AH[,AW] [--stages K]",
     "Output size of one DynOPool (or K in a row, as in a\n"
     "network with K pooling stages)."},
    {"info", cmd_info, 0, "info [--model M --pool P --input S --classes C --width W --checkpoint F --json]",
     "GMACs, parameters, stage sizes and alphas of a network\n"
     "(the paper's Table 5.1 row)."},
    {"bench", cmd_bench, 1, "bench [model options] [--batch B] [--steps K] [--json]",
     "Images per second of a training step, peak memory."},
    {"train", cmd_train, 1, "train [--model M --pool P --width W --data DIR --epochs E ...] [--out DIR]",
     "Train on a dataset (default: Fashion-MNIST) with the\n"
     "paper's recipe; --resume DIR continues a run."},
    {"eval", cmd_eval, 1, "eval --checkpoint F [--data DIR] [--json]",
     "Test accuracy, loss, GMACs and sizes of a trained model."},
    {"predict", cmd_predict, 1, "predict --checkpoint F [--top K] [--json] IMAGE...",
     "The most probable classes of PNG or JPEG images for a\n"
     "trained network, with their probabilities."},
    {"export", cmd_export, 0, "export --checkpoint F --onnx FILE",
     "The trained network as an ONNX model (ONNX Runtime):\n"
     "learned sizes fixed, batch norm folded, DynOPool as\n"
     "Gather/Mul/Add and MaxPool."},
    {"segdata", cmd_segdata, 0, "segdata --out DIR [--train N --val N --size S]",
     "A real segmentation set in the PascalVOC layout from\n"
     "Fashion-MNIST scenes (images and palette masks)."},
    {"plot", cmd_plot, 0, "plot RUN [RUN...] [-o DIR]",
     "SVG figures of runs: map shapes per stage (Figure 5.1),\n"
     "accuracy against GMACs (Figure 5.2), training curves."},
};
enum { N_COMMANDS = sizeof COMMANDS / sizeof COMMANDS[0] };

static const char *const USAGE_HEAD =
    "Usage: dynopool <command> [options]\n"
    "       dynopool --help | --version\n"
    "\n"
    "DynOPool: pooling layers that learn their output size and shape (Jang et al.,\n"
    "CVPR 2022): the operator, VGG-16 / ResNet-50 / MobileNetV2 in human, DynOPool\n"
    "and Shape Adaptor form: their cost, their speed, and training them on real data.\n"
    "\n"
    "Commands:\n";
static const char *const USAGE_TAIL =
    "\n"
    "Options:\n"
    "  -h, --help               This text (also: dynopool <command> --help).\n"
    "  -V, --version            Version of the tool and the library.\n"
    "\n"
    "The output size of one axis is floor(max(in / alpha, 1.5) + 0.5): alpha = 2 halves\n"
    "a map, alpha < 1 enlarges it, and every map keeps at least 2 cells.\n"
    "Threads: --threads N with any command; else OMP_NUM_THREADS; else train, eval,\n"
    "predict, bench and demo use the CPUs that other processes leave idle (measured\n"
    "for 0.25 s at the start).  Results repeat bit for bit for a given thread count.\n"
    "Precision: --precision fp32|bf16|auto with train, eval, bench and predict: bf16\n"
    "convolutions and classifier (float32 weights, statistics and losses); auto picks\n"
    "bf16 where the CPU has it natively (AVX512-BF16, AMX) and says which.  fp32 if not\n"
    "given.  Checkpoints are float32 either way: a run may resume in either.\n"
    "Exit status: 0 success, 1 failure, 2 bad command line.\n";

/* The tool's help: every command's synopsis, its help in a column beside it (or
 * below, when the synopsis is wider than the gap). */
static void usage(FILE *f)
{
    enum { COL = 25 };
    fputs(USAGE_HEAD, f);
    for (int k = 0; k < N_COMMANDS; k++) {
        const char *s = COMMANDS[k].help;
        if (strlen(COMMANDS[k].synopsis) < COL) fprintf(f, "  %-*s", COL, COMMANDS[k].synopsis);
        else fprintf(f, "  %s\n%*s", COMMANDS[k].synopsis, COL + 2, "");
        for (const char *e; (e = strchr(s, '\n')); s = e + 1) fprintf(f, "%.*s\n%*s", (int)(e - s), s, COL + 2, "");
        fprintf(f, "%s\n", s);
    }
    fputs(USAGE_TAIL, f);
}

/* Takes "--threads N" out of argv, before or after the command, and applies
 * it.  Without it: OMP_NUM_THREADS when set, else for the commands that
 * compute the CPUs that other processes leave idle (250 ms of measurement),
 * since threads that share cores with other work make every OpenMP barrier
 * wait (docs/engine.md, "Threads").  0, or 2 after printing a usage error. */
static int take_threads(int *argc, char **argv)
{
    int n = 0;
    cli_opt threads = {"--threads", CLI_INT, &n, .lo = 1, .hi = 4096};
    for (int i = 1; i < *argc; i++) {
        if (strcmp(argv[i], "--threads")) continue;
        if (i + 1 >= *argc) return cli_usage(NULL, "option '%s' needs a value", "--threads");
        if (cli_take(NULL, &threads, argv[i + 1])) return EXIT_USAGE;
        for (int j = i; j + 2 <= *argc; j++) argv[j] = argv[j + 2]; /* argv[argc] (NULL) moves too */
        *argc -= 2;
        i--;
    }
    if (threads.set) {
        dp_set_threads(n);
    } else if (!getenv("OMP_NUM_THREADS") && *argc > 1) {
        for (int k = 0; k < N_COMMANDS; k++)
            if (COMMANDS[k].computes && !strcmp(argv[1], COMMANDS[k].name))
                dp_set_threads(dp_threads_idle(250)), cli_threads_auto = 1;
    }
    return 0;
}

/* Takes "--precision P" out of argv (before or after the command), for the
 * commands that run a network, and resolves it (cli_precision): auto says
 * which it chose, bf16 without native support warns that oneDNN emulates it,
 * and where oneDNN has no bf16 at all it fails.  0, 1 after a failure, or 2
 * after a usage error (docs/guide.md, "Mixed precision"). */
static int take_precision(int *argc, char **argv)
{
    static const char *const takes[] = {"train", "eval", "bench", "predict"};
    int p = -1;
    for (int i = 1; i < *argc; i++) {
        if (strcmp(argv[i], "--precision")) continue;
        if (i + 1 >= *argc) return cli_usage(NULL, "option '%s' needs a value", "--precision");
        if ((p = dp_precision_parse(argv[i + 1])) < 0)
            return cli_usage(NULL, "--precision: expected fp32, bf16 or auto, got '%s'", argv[i + 1]);
        for (int j = i; j + 2 <= *argc; j++) argv[j] = argv[j + 2];
        *argc -= 2;
        i--;
    }
    if (p < 0) return 0;
    int ok = 0;
    for (size_t k = 0; *argc > 1 && k < sizeof takes / sizeof takes[0]; k++) ok |= !strcmp(argv[1], takes[k]);
    if (!ok) return cli_usage(NULL, "--precision applies to train, eval, bench and predict");
    const int sup = dp_bf16_support();
    cli_precision = dp_precision_resolve(p);
    if (p == DP_PRECISION_AUTO)
        fprintf(stderr, "precision: %s (auto: %s)\n", dp_precision_name(cli_precision),
                sup == DP_BF16_NATIVE ? "oneDNN runs bf16 natively on this CPU (AVX512-BF16 or AMX)"
                                      : "no native bf16 on this CPU as oneDNN sees it (AVX512-BF16 or AMX)");
    else if (p == DP_PRECISION_BF16 && sup == DP_BF16_NONE)
        return cli_fail("--precision bf16: oneDNN has no bf16 implementation for this CPU (it needs at least "
                        "AVX-512%s); use --precision fp32 or auto",
                        getenv("ONEDNN_MAX_CPU_ISA") ? ", and ONEDNN_MAX_CPU_ISA is set" : "");
    else if (p == DP_PRECISION_BF16 && sup == DP_BF16_EMULATED)
        fprintf(stderr, "dynopool: warning: --precision bf16: this CPU has no native bf16 (AVX512-BF16 or AMX) "
                        "as oneDNN sees it; oneDNN emulates it, slower than fp32\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 0 && argv[0] && argv[0][0]) cli_prog = argv[0];
    if (take_threads(&argc, argv)) return EXIT_USAGE;
    int rc = take_precision(&argc, argv);
    if (rc) return rc;
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "-V") || !strcmp(cmd, "--version")) {
        printf("dynopool %s (library %s)\n", dp_version(), dp_version());
        return 0;
    }
    for (int k = 0; k < N_COMMANDS; k++)
        if (!strcmp(cmd, COMMANDS[k].name)) return COMMANDS[k].run(argc - 2, argv + 2);
    return cli_usage(NULL, cmd[0] == '-' ? "unknown option '%s'" : "unknown command '%s'", cmd);
}
