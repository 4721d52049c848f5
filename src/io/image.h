/* image.h — decoding JPEG and PNG files for image-folder datasets, segmentation masks,
 * and writing the generated segmentation sets (internal). */
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

/* A segmentation mask: the class index of every pixel (h, w), from a palette PNG's
 * indices (PascalVOC: SegmentationClass, one PNG per image) or a greyscale PNG's values.  Colour,
 * alpha and 16-bit PNGs and every JPEG are refused (DP_ERR_FORMAT, err naming the file). */
int dp_image_load_mask(const char *path, unsigned char **lab, int *h, int *w, char *err, size_t errlen);
/* Writers for the generated sets: a JPEG of (h, w, ch) pixels, ch 1 or 3, at quality
 * 1..100, and an 8-bit palette PNG of indices (h, w) with the 256-colour palette. */
int dp_image_write_jpeg(const char *path, const unsigned char *pix, int h, int w, int ch, int quality,
                        char *err, size_t errlen);
int dp_image_write_png_palette(const char *path, const unsigned char *idx, int h, int w,
                               const unsigned char palette[256][3], char *err, size_t errlen);

#endif
