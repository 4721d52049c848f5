/* cli.h — shared pieces of the command-line tool. */
#ifndef DP_CLI_H
#define DP_CLI_H

#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "dynopool.h"

enum { EXIT_USAGE = 2 };

/* The program as the user typed it (argv[0], e.g. "build/dynopool"), for the
 * commands we suggest; "dynopool" when unknown. */
extern const char *cli_prog;
/* 1: the thread count follows the cores other processes leave idle (neither
 * --threads nor OMP_NUM_THREADS was given) */
extern int cli_threads_auto;

/* Prints "dynopool: <fmt with arg>" and the --help hint; returns EXIT_USAGE. */
int cli_usage_error(const char *fmt, const char *arg);
/* Whole-string numbers; 0 on success. */
int cli_parse_long(const char *s, long *v);
int cli_parse_double(const char *s, double *v);
/* A standard normal draw from a 64-bit LCG state. */
float cli_randn(uint64_t *s);

int cmd_info(int argc, char **argv);
int cmd_bench(int argc, char **argv);
/* Where Debian's dataset-fashion-mnist puts the files: the default data. */
#define CLI_FASHION_MNIST "/usr/share/datasets/fashion-mnist"
/* "fashion-mnist" for the default folder, else the folder's last component. */
const char *cli_data_name(const char *dir);
/* Opens a split, printing the error (and how to get the default data). */
int cli_open_split(const char *dir, int kind, int train, int classes, int input, dp_dataset **ds);
/* Top-1 accuracy (%) and mean cross-entropy on the images idx[0..n) of ds
 * (idx NULL: the first n), from the folder data (named in messages); prints
 * errors. */
int cli_evaluate(dp_model *m, const dp_dataset *ds, const char *data, const dp_transform *t,
                 const int *idx, int n, int batch, int workers, double *loss, double *acc);
/* "28x28 -> 14x14 -> ..." */
void cli_print_sizes(FILE *f, const dp_model_info *in, int input);
int cli_mkdirs(const char *path);
/* The whole file, NUL-terminated and malloc'ed; NULL with errno set on failure. */
char *cli_read_file(const char *path);
/* o[k] as a number / a string that fits in cap (o may be NULL); 0 or -1. */
int cli_json_num(const cJSON *o, const char *k, double *v);
int cli_json_str(const cJSON *o, const char *k, char *v, size_t cap);
/* o[k] as a number in [lo, hi] (CLI_OPEN: lo excluded; CLI_WHOLE: a whole number):
 * 0; or -1 with "field 'k' = V, expected ... in [lo, hi]" in msg[cap]. */
enum { CLI_WHOLE = 1, CLI_OPEN = 2 };
int cli_json_range(const cJSON *o, const char *k, double lo, double hi, int flags, double *v, char *msg,
                   size_t cap);

int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_plot(int argc, char **argv);

#endif
