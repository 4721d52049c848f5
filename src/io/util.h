/* util.h — helpers that the io room's readers share (data.c defines them). */
#ifndef DP_IO_UTIL_H
#define DP_IO_UTIL_H

#include <stddef.h>

/* Writes the message into err[errlen] (when err is given) and returns rc: every
 * reader's error path, `return dp_io_fail(err, errlen, DP_ERR_IO, "%s: ...", path)`. */
int dp_io_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
/* 1 when p names a regular file (following links). */
int dp_io_is_file(const char *p);

#endif
