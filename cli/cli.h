/* cli.h — shared pieces of the command-line tool. */
#ifndef DP_CLI_H
#define DP_CLI_H

#include <stdint.h>

#include "dynopool.h"

enum { EXIT_USAGE = 2 };

/* Prints "dynopool: <fmt with arg>" and the --help hint; returns EXIT_USAGE. */
int cli_usage_error(const char *fmt, const char *arg);
/* Whole-string numbers; 0 on success. */
int cli_parse_long(const char *s, long *v);
int cli_parse_double(const char *s, double *v);
/* A standard normal draw from a 64-bit LCG state. */
float cli_randn(uint64_t *s);

int cmd_info(int argc, char **argv);
int cmd_bench(int argc, char **argv);

#endif
