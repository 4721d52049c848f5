/*
 * common.h — what every command of the tool shares: errors, option parsing,
 * time, signals, files, JSON, the random numbers and the names of things.
 * No command's own code: that stays in its cmd_*.c.
 */
#ifndef DP_CLI_COMMON_H
#define DP_CLI_COMMON_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "dynopool.h"

#if defined(__GNUC__)
#define CLI_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define CLI_PRINTF(f, a)
#endif

enum { EXIT_USAGE = 2 };

/* The program as the user typed it (argv[0], e.g. "build/dynopool"), for the
 * commands we suggest; "dynopool" when unknown. */
extern const char *cli_prog;
/* 1: the thread count follows the cores other processes leave idle (neither
 * --threads nor OMP_NUM_THREADS was given) */
extern int cli_threads_auto;
/* The precision train, eval, bench and predict compute in (enum dp_precision,
 * resolved: fp32 or bf16), from --precision (main.c); fp32 by default. */
extern int cli_precision;

/* ---- errors ------------------------------------------------------------------ */

/* "dynopool: <message>" on stderr; returns 1, the exit status of a failure. */
int cli_fail(const char *fmt, ...) CLI_PRINTF(1, 2);
/* "dynopool: <message>" and "Try '<prog> <cmd> --help'." on stderr (cmd NULL:
 * the tool's own help); returns EXIT_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...) CLI_PRINTF(2, 3);

/* ---- options: one table per command, one parser ---------------------------------- */

enum cli_kind {
    CLI_FLAG,  /* no value: *(int *)dst = 1 */
    CLI_INT,   /* an integer in [lo, hi]: *(int *)dst */
    CLI_LONG,  /* an integer in [lo, hi]: *(long long *)dst */
    CLI_NUM,   /* a finite number in [lo, hi] (CLI_OPEN_*: an end excluded): *(double *)dst */
    CLI_TEXT,  /* the value as given: *(const char **)dst */
    CLI_NAME,  /* a name that to_enum turns into a value >= 0: *(int *)dst */
    CLI_PARSE, /* parse(value, dst) returns 0 */
};
/* cli_opt.flags (CLI_OPEN_LO and CLI_WHOLE also for cli_json_range) */
enum {
    CLI_OPEN_LO = 1, /* lo itself excluded */
    CLI_OPEN_HI = 2, /* hi itself excluded */
    CLI_WHOLE = 4,   /* cli_json_range: a whole number */
    CLI_OR_ZERO = 8, /* CLI_INT: 0 too, beside [lo, hi] */
    CLI_MARK = 16,   /* the command's own mark (train: a setting of the run) */
};

typedef struct cli_opt {
    const char *name; /* "--batch", "-o" */
    int kind;         /* enum cli_kind */
    void *dst;
    double lo, hi;    /* CLI_INT, CLI_LONG, CLI_NUM: the range */
    int flags;
    const char *want; /* a bad value's message says "expected <want>" (default: the range) */
    int (*to_enum)(const char *v);            /* CLI_NAME, e.g. dp_arch_parse */
    int (*parse)(const char *v, void *dst);   /* CLI_PARSE: 0, or -1 for a bad value */
    int set;          /* out: 1 once the option was given */
} cli_opt;

typedef struct cli_cmd {
    const char *name;  /* "train": in the --help hint of usage errors */
    const char *usage; /* printed for -h / --help */
    int usage_prog;    /* usage is a printf format whose %s (at most two) are the program */
    cli_opt *opts;
    int n_opts;
    const char **args; /* room for argc positional arguments; NULL: none allowed */
    int n_args;        /* out: how many */
} cli_cmd;

enum { CLI_HELP = -1 };
/* Parses argv[0..argc) in order (an option's value is the next argument, even
 * when it starts with '-'): 0; CLI_HELP after printing the usage for -h or
 * --help; or EXIT_USAGE after saying what is wrong. */
int cli_parse(cli_cmd *c, int argc, char **argv);
/* Takes v as the value of o (o->set = 1): 0, or EXIT_USAGE after
 * "<name>: expected <what>, got '<v>'" (cmd as for cli_usage). */
int cli_take(const char *cmd, cli_opt *o, const char *v);

/* ---- time and signals ------------------------------------------------------------- */

/* Seconds on a monotonic clock. */
double cli_now_s(void);
/* A duration of s seconds as "m:ss" or "h:mm:ss" ("--" when unknown or huge)
 * into b[cap]: progress lines' ETA. */
void cli_fmt_eta(char *b, size_t cap, double s);
/* A progress line: on a terminal (tty) one live line, redrawn in place and cut to the
 * terminal's width (*live := 1: it has no newline yet), else a line of its own. */
void cli_progress_print(const char *line, int tty, int *live);
/* The signal that cli_catch_signal caught (0: none yet). */
extern volatile sig_atomic_t cli_signal;
/* From now on sig only sets cli_signal, once: a second one acts as it did before
 * (Ctrl-C twice kills).  old (may be NULL) receives the action it replaces. */
void cli_catch_signal(int sig, struct sigaction *old);

/* ---- files ----------------------------------------------------------------------- */

/* The whole file, NUL-terminated and malloc'ed; NULL with errno set on failure. */
char *cli_read_file(const char *path);
/* mkdir -p: 0, or -1 with errno set (ENOTDIR: path is there and no folder). */
int cli_mkdir_p(const char *path);
/* path := text and a newline, atomically (dp_write_file_atomic); 0, or -1 with
 * errno set. */
int cli_write_text(const char *path, const char *text);

/* ---- JSON -------------------------------------------------------------------------- */

/* o[k] as a number / a string that fits in cap (o may be NULL); 0 or -1. */
int cli_json_num(const cJSON *o, const char *k, double *v);
int cli_json_str(const cJSON *o, const char *k, char *v, size_t cap);
/* o[k] as a number in [lo, hi] (flags CLI_OPEN_LO: lo excluded; CLI_WHOLE: a whole
 * number): 0; or -1 with "field 'k' = V, expected ... in [lo, hi]" in msg[cap]. */
int cli_json_range(const cJSON *o, const char *k, double lo, double hi, int flags, double *v, char *msg,
                   size_t cap);
/* The number v written with the printf format fmt ("%.6f"; "%.17g" reads back as
 * the same double, which cJSON's own printer does not promise); null when v is
 * not finite.  cli_json_add_fixed: as o[k]. */
cJSON *cli_json_fixed(double v, const char *fmt);
void cli_json_add_fixed(cJSON *o, const char *k, double v, const char *fmt);
/* o on one line, "key": value and items separated by ", " (the layout of
 * info --json and bench --json); malloc'ed, NULL when out of memory. */
char *cli_json_line(const cJSON *o);

/* ---- random numbers: splitmix64 ---------------------------------------------------- */

/* The next number of the generator whose state is *s. */
uint64_t cli_splitmix64(uint64_t *s);
/* A hash: the number the generator gives from state z. */
uint64_t cli_mix64(uint64_t z);
/* A standard normal draw (Box-Muller on two numbers of the generator). */
float cli_randn(uint64_t *s);
/* order[n] := a permutation of 0..n-1 (Fisher-Yates driven by the generator from
 * state seed); the same seed gives the same permutation on every machine. */
void cli_shuffle(int *order, int n, uint64_t seed);
/* order[n] := the images' order in epoch `epoch` (0-based) of a run of seed `seed`: the one
 * rule of classification and segmentation, so that (seed, epoch) alone gives it. */
void cli_epoch_order(int *order, int n, uint64_t seed, int epoch);

/* ---- names ------------------------------------------------------------------------- */

/* Where Debian's dataset-fashion-mnist puts the files: the default data. */
#define CLI_FASHION_MNIST "/usr/share/datasets/fashion-mnist"
/* The last component of path ("runs/a/" -> "a"; "" for "/") into out[n]. */
void cli_base_name(const char *path, char *out, size_t n);
/* The name of class k of the data named `name` (cli_data_name) of the given kind
 * (enum dp_data_kind, DP_DATA_AUTO when unknown) with `classes` classes, for the
 * sets whose names are known: Fashion-MNIST, CIFAR-10; else NULL. */
const char *cli_class_name(const char *name, int kind, int classes, int k);
/* "fashion-mnist" for the default folder, else the folder's last component
 * ("data" when it has none); a thread-local buffer. */
const char *cli_data_name(const char *dir);
/* "28x28 -> 14x14 -> ...": the input side, then every stage's map. */
void cli_print_sizes(FILE *f, const dp_model_info *in, int input);
/* "14x14 7x7 ...": every stage's map, into b[cap]. */
void cli_sizes_str(char *b, size_t cap, const dp_model_info *in);
/* The double that a float default of the library was written as: the shortest
 * decimal that reads back as f (0.9f -> 0.9, not 0.89999997615814209), so that
 * a run records the recipe's numbers as people write them. */
double cli_decimal(float f);

#endif
