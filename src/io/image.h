/* image.h — decoding JPEG and PNG files for image-folder datasets (internal). */
#ifndef DP_IMAGE_H
#define DP_IMAGE_H
#include <stddef.h>
#include "dynopool/io.h"

/* Decodes the JPEG or PNG file at path (recognised by its first bytes, not its
 * name) into 8-bit interleaved pixels (h, w, channels), channels 1 (grey) or 3
 * (RGB), converting as needed.  *pix is malloc'ed; the caller frees it.
 * Returns DP_OK, DP_ERR_IO (cannot open or read), DP_ERR_FORMAT (not JPEG/PNG,
 * corrupt or truncated, too large), DP_ERR_NOMEM or DP_ERR_ARG; err then names
 * the file and what was wrong.  Never prints; safe to call from several threads. */
int dp_image_load(const char *path, int channels, unsigned char **pix, int *h, int *w,
                  char *err, size_t errlen);
/* The same, and *native (may be NULL) := the file's own channels before the
 * conversion: 1 (grey) or 3 (colour: RGB, YCbCr, palette). */
int dp_image_load_native(const char *path, int channels, unsigned char **pix, int *h, int *w,
                         int *native, char *err, size_t errlen);

#endif
