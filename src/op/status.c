/* status.c — status codes as text, and the version string. */
#include "dynopool_op.h"

#define DP_STR2(x) #x
#define DP_STR(x) DP_STR2(x)

const char *dp_strerror(int status)
{
    switch (status) {
    case DP_OK: return "ok";
    case DP_ERR_NULL: return "a required pointer argument is NULL";
    case DP_ERR_SIZE: return "a size (n, c, h or w) is not positive";
    case DP_ERR_ALPHA: return "alpha must be a finite number > 0";
    case DP_ERR_OVERFLOW: return "output size or element count too large";
    case DP_ERR_NOMEM: return "out of memory";
    case DP_ERR_ARG: return "argument out of range";
    case DP_ERR_IO: return "file input/output failed";
    case DP_ERR_FORMAT: return "file contents are malformed";
    case DP_ERR_BACKEND: return "the compute backend (oneDNN) failed";
    case DP_ERR_NONFINITE: return "the loss is not finite (training diverged)";
    default: return "unknown status code";
    }
}

const char *dp_version(void)
{
    return DP_STR(DP_VERSION_MAJOR) "." DP_STR(DP_VERSION_MINOR) "." DP_STR(DP_VERSION_PATCH);
}
