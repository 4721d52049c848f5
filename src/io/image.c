/* image.c — JPEG (libjpeg) and PNG (libpng16) decoding into 8-bit HWC pixels.
 *
 * The file is read whole into memory, recognised by its first bytes and handed
 * to the matching decoder.  Neither library may print or exit: libjpeg gets an
 * error manager that longjmps back here (warnings about data ending early are
 * errors too: the file is truncated), libpng gets error and warning functions
 * of our own.  There are no globals and no static buffers (state lives in the
 * call's frame), so several loader threads may decode at once.  On an error every buffer is freed and no output
 * is written; the decoders describe the problem in `why`, and dp_image_load
 * prefixes it with the path. */
#include "io/image.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

/* Decoded sizes are capped before anything is allocated, so that a small hostile
 * file cannot claim gigabytes: a side of at most MAX_SIDE, at most MAX_PIXELS in
 * all (64 Mpixel: 192 MB as RGB). */
#define MAX_SIDE 16384
#define MAX_PIXELS (64L << 20)
#define WHY_LEN 320

static void say(char *why, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, WHY_LEN, fmt, ap);
    va_end(ap);
}

static int check_dims(long h, long w, char *why)
{
    if (h >= 1 && h <= MAX_SIDE && w >= 1 && w <= MAX_SIDE && h * w <= MAX_PIXELS) return DP_OK;
    say(why, "image is %ldx%ld (HxW); each side must be 1..%d, and the image at most %ld pixels",
        h, w, MAX_SIDE, MAX_PIXELS);
    return DP_ERR_FORMAT;
}

/* (npix, 3) RGB -> (npix) grey in place: ITU-R 601 luma, rounded half up. */
static void rgb_to_grey(unsigned char *p, size_t npix)
{
    for (size_t i = 0; i < npix; i++) {
        const unsigned char *s = p + 3 * i;
        p[i] = (unsigned char)((299 * s[0] + 587 * s[1] + 114 * s[2] + 500) / 1000);
    }
}

/* ---- JPEG ------------------------------------------------------------------ */

typedef struct {
    struct jpeg_error_mgr pub;   /* first: libjpeg sees a jpeg_error_mgr */
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
} jpeg_err;

static void jpeg_on_error(j_common_ptr c)
{
    jpeg_err *e = (jpeg_err *)c->err;
    c->err->format_message(c, e->msg);
    longjmp(e->jb, 1);
}

static void jpeg_on_output(j_common_ptr c)   /* store, never print */
{
    c->err->format_message(c, ((jpeg_err *)c->err)->msg);
}

/* Warnings (level -1) that mean the data ended early are errors; others (such as
 * "extraneous bytes before marker", common in camera files) are ignored. */
static void jpeg_on_emit(j_common_ptr c, int level)
{
    if (level >= 0) return;
    c->err->num_warnings++;
    if (c->err->msg_code == JWRN_JPEG_EOF || c->err->msg_code == JWRN_HIT_MARKER)
        jpeg_on_error(c);
}

/* Decodes buf[0..n) into *out, (h, w, ch).  libjpeg converts the colour space:
 * grey from a YCbCr file is its Y channel (the encoder's 601 luma). */
static int decode_jpeg(const unsigned char *buf, size_t n, int ch, unsigned char **out,
                       int *h, int *w, int *native, char *why)
{
    struct jpeg_decompress_struct ci;
    jpeg_err je;
    ci.err = jpeg_std_error(&je.pub);
    je.pub.error_exit = jpeg_on_error;
    je.pub.output_message = jpeg_on_output;
    je.pub.emit_message = jpeg_on_emit;
    je.msg[0] = '\0';
    if (setjmp(je.jb)) {   /* *out, if allocated, is freed by the caller */
        int nomem = je.pub.msg_code == JERR_OUT_OF_MEMORY;
        jpeg_destroy_decompress(&ci);
        say(why, "%s JPEG: %s", nomem ? "out of memory decoding the" : "truncated or corrupt",
            je.msg);
        return nomem ? DP_ERR_NOMEM : DP_ERR_FORMAT;
    }
    jpeg_create_decompress(&ci);
    jpeg_mem_src(&ci, buf, (unsigned long)n);
    jpeg_read_header(&ci, TRUE);
    *native = ci.jpeg_color_space == JCS_GRAYSCALE ? 1 : 3;
    int rc = check_dims((long)ci.image_height, (long)ci.image_width, why);
    if (rc == DP_OK && (ci.jpeg_color_space == JCS_CMYK || ci.jpeg_color_space == JCS_YCCK)) {
        say(why, "CMYK JPEG is not supported (convert it to RGB or greyscale)");
        rc = DP_ERR_FORMAT;
    }
    if (rc == DP_OK) {
        ci.out_color_space = ch == 1 ? JCS_GRAYSCALE : JCS_RGB;   /* else libjpeg errors */
        jpeg_start_decompress(&ci);
        size_t stride = (size_t)ci.output_width * (size_t)ch;
        if (!(*out = malloc(stride * ci.output_height))) {
            say(why, "out of memory (%ux%u image)", ci.output_height, ci.output_width);
            rc = DP_ERR_NOMEM;
        }
        while (rc == DP_OK && ci.output_scanline < ci.output_height) {
            JSAMPROW row = *out + stride * ci.output_scanline;
            jpeg_read_scanlines(&ci, &row, 1);
        }
        if (rc == DP_OK) {
            jpeg_finish_decompress(&ci);
            *h = (int)ci.output_height;
            *w = (int)ci.output_width;
        }
    }
    jpeg_destroy_decompress(&ci);
    return rc;
}

/* ---- PNG ------------------------------------------------------------------- */

typedef struct {
    const unsigned char *p;
    size_t n, off;
    char msg[WHY_LEN];
} png_src;

static const unsigned char png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

static void png_on_error(png_structp png, png_const_charp m)
{
    png_src *s = png_get_error_ptr(png);
    snprintf(s->msg, sizeof s->msg, "%s", m);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp m)   /* never print */
{
    (void)png, (void)m;
}

static void png_on_read(png_structp png, png_bytep dst, size_t len)
{
    png_src *s = png_get_io_ptr(png);
    if (len > s->n - s->off) png_error(png, "unexpected end of file");
    memcpy(dst, s->p + s->off, len);
    s->off += len;
}

/* Decodes buf[0..n) into *out (h, w, *file_ch = the file's own channels).
 * ch 1 or 3, an image: palette and low bit depths expanded, 16 bits scaled to 8
 * (rounded), alpha and tRNS dropped, grey replicated to RGB by libpng, RGB reduced
 * to grey here (rgb_to_grey).
 * ch 0, a mask of class indices: a palette PNG's indices (PascalVOC's
 * SegmentationClass) or a greyscale PNG's values, 8 bits each; colour, 16-bit and
 * alpha PNGs are refused (their values are not class indices). */
static int decode_png(const unsigned char *buf, size_t n, int ch, unsigned char **out,
                      int *h, int *w, int *file_ch, char *why)
{
    png_src src = {buf, n, 0, ""};
    png_bytep *volatile rows = NULL;
    png_infop info = NULL;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_on_error,
                                             png_on_warning);
    if (png) info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        say(why, "out of memory (libpng)");
        return DP_ERR_NOMEM;
    }
    if (setjmp(png_jmpbuf(png))) {   /* *out, if allocated, is freed by the caller */
        png_destroy_read_struct(&png, &info, NULL);
        free(rows);
        say(why, "truncated or corrupt PNG: %s", src.msg);
        return DP_ERR_FORMAT;
    }
    png_set_read_fn(png, &src, png_on_read);
    png_read_info(png, info);
    const png_uint_32 ph = png_get_image_height(png, info), pw = png_get_image_width(png, info);
    const int type = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
    int rc = check_dims((long)ph, (long)pw, why);
    /* The rows, a filter byte each, come from zlib data in the file, which deflate
     * expands at most 1032:1: a header that claims more is not worth decoding. */
    const unsigned long long raw = (unsigned long long)ph * (png_get_rowbytes(png, info) + 1);
    if (rc == DP_OK && raw > 1032ULL * n + 1024) {
        say(why, "image is %lux%lu (HxW), %llu bytes of rows, more than a PNG file of %zu bytes can hold",
            (unsigned long)ph, (unsigned long)pw, raw, n);
        rc = DP_ERR_FORMAT;
    }
    int native = (type & PNG_COLOR_MASK_COLOR) ? 3 : 1;
    *file_ch = native;
    if (rc == DP_OK && ch == 0) {
        if (type != PNG_COLOR_TYPE_PALETTE && type != PNG_COLOR_TYPE_GRAY) {
            say(why, "a mask must be a palette or greyscale PNG of class indices (colour type %d%s)", type,
                type == PNG_COLOR_TYPE_RGB ? ", RGB" : type & PNG_COLOR_MASK_ALPHA ? ", with alpha" : "");
            rc = DP_ERR_FORMAT;
        } else if (depth > 8) {
            say(why, "a mask must have at most 8 bits per pixel (this one has %d)", depth);
            rc = DP_ERR_FORMAT;
        } else if (depth < 8) {
            png_set_packing(png);   /* one byte per index, values kept */
        }
    } else if (rc == DP_OK) {
        png_set_expand(png);        /* palette -> RGB, 1/2/4-bit grey -> 8, tRNS -> alpha, */
        png_set_strip_alpha(png);   /* and every alpha dropped */
        png_set_scale_16(png);
        if (native == 1 && ch == 3) png_set_gray_to_rgb(png);
    }
    if (rc == DP_OK) {
        png_set_interlace_handling(png);
        png_read_update_info(png, info);
        native = png_get_channels(png, info);
        const size_t stride = (size_t)pw * (size_t)native;
        if ((native != 1 && native != 3) || (ch == 0 && native != 1) || png_get_bit_depth(png, info) != 8) {
            say(why, "libpng did not convert the image to 8-bit %s", ch == 0 ? "indices" : "grey or RGB");
            rc = DP_ERR_FORMAT;
        } else if (!(*out = malloc(stride * ph)) || !(rows = malloc(sizeof *rows * ph))) {
            say(why, "out of memory (%ux%u image)", (unsigned)ph, (unsigned)pw);
            rc = DP_ERR_NOMEM;
        }
        for (png_uint_32 y = 0; rc == DP_OK && y < ph; y++) rows[y] = *out + stride * y;
        if (rc == DP_OK) {
            png_read_image(png, rows);
            png_read_end(png, NULL);
        }
    }
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    if (rc == DP_OK && native == 3 && ch == 1) {
        rgb_to_grey(*out, (size_t)ph * pw);
        unsigned char *small = realloc(*out, (size_t)ph * pw);
        if (small) *out = small;
    }
    if (rc == DP_OK) {
        *h = (int)ph;
        *w = (int)pw;
    }
    return rc;
}

/* ---- the file -------------------------------------------------------------- */

static int read_file(const char *path, unsigned char **buf, size_t *n, char *why)
{
    FILE *fp = fopen(path, "rb");
    struct stat st;
    if (!fp) {
        say(why, "cannot open: %s", strerror(errno));
        return DP_ERR_IO;
    }
    const char *bad = fstat(fileno(fp), &st) != 0 ? strerror(errno)
                      : S_ISDIR(st.st_mode)        ? "is a directory"
                      : !S_ISREG(st.st_mode)       ? "not a regular file"
                                                   : NULL;
    if (bad) {
        say(why, "cannot read: %s", bad);
        fclose(fp);
        return DP_ERR_IO;
    }
    *n = (size_t)st.st_size;
    *buf = malloc(*n ? *n : 1);
    if (!*buf) {
        fclose(fp);
        say(why, "out of memory (file of %zu bytes)", *n);
        return DP_ERR_NOMEM;
    }
    errno = 0;
    if (fread(*buf, 1, *n, fp) != *n) {
        say(why, "cannot read: %s", errno ? strerror(errno) : "file shorter than its size");
        fclose(fp);
        free(*buf);
        return DP_ERR_IO;
    }
    fclose(fp);
    return DP_OK;
}

int dp_image_load(const char *path, int channels, unsigned char **pix, int *h, int *w,
                  char *err, size_t errlen)
{
    return dp_image_load_native(path, channels, pix, h, w, NULL, err, errlen);
}

int dp_image_load_native(const char *path, int channels, unsigned char **pix, int *h, int *w,
                         int *native, char *err, size_t errlen)
{
    char why[WHY_LEN] = "";
    unsigned char *buf = NULL, *out = NULL;
    size_t n = 0;
    int hh = 0, ww = 0, nat = 0, rc;
    if (!path || !pix || !h || !w) {
        if (err && errlen) snprintf(err, errlen, "dp_image_load: NULL argument");
        return DP_ERR_NULL;
    }
    if (channels != 1 && channels != 3) {
        say(why, "channels must be 1 (grey) or 3 (RGB), got %d", channels);
        rc = DP_ERR_ARG;
    } else if ((rc = read_file(path, &buf, &n, why)) != DP_OK) {
        /* why is set */
    } else if (n >= 3 && buf[0] == 0xff && buf[1] == 0xd8 && buf[2] == 0xff) {
        rc = decode_jpeg(buf, n, channels, &out, &hh, &ww, &nat, why);
    } else if (n >= 8 && memcmp(buf, png_magic, 8) == 0) {
        rc = decode_png(buf, n, channels, &out, &hh, &ww, &nat, why);
    } else {
        int k = snprintf(why, WHY_LEN, "not a JPEG or PNG file (%s", n ? "first bytes" : "empty");
        for (size_t i = 0; i < n && i < 4; i++)
            k += snprintf(why + k, WHY_LEN - k, " %02X", buf[i]);
        snprintf(why + k, WHY_LEN - k, ")");
        rc = DP_ERR_FORMAT;
    }
    free(buf);
    if (rc != DP_OK) {
        free(out);
        if (err && errlen) snprintf(err, errlen, "%s: %s", path, why);
        return rc;
    }
    *pix = out;
    *h = hh;
    *w = ww;
    if (native) *native = nat;
    return DP_OK;
}

/* ---- segmentation masks: class indices from a palette or greyscale PNG ------ */

int dp_image_load_mask(const char *path, unsigned char **lab, int *h, int *w, char *err, size_t errlen)
{
    char why[WHY_LEN] = "";
    unsigned char *buf = NULL, *out = NULL;
    size_t n = 0;
    int hh = 0, ww = 0, file_ch = 0, rc;
    if (!path || !lab || !h || !w) return DP_ERR_NULL;
    if ((rc = read_file(path, &buf, &n, why)) != DP_OK) {
        /* why is set */
    } else if (n >= 8 && memcmp(buf, png_magic, 8) == 0) {
        rc = decode_png(buf, n, 0, &out, &hh, &ww, &file_ch, why);
    } else {
        say(why, "not a PNG file (a mask must be a lossless palette or greyscale PNG)");
        rc = DP_ERR_FORMAT;
    }
    free(buf);
    if (rc != DP_OK) {
        free(out);
        if (err && errlen) snprintf(err, errlen, "%s: %s", path, why);
        return rc;
    }
    *lab = out, *h = hh, *w = ww;
    return DP_OK;
}

/* ---- writing (the generated segmentation sets) ----------------------------- */

int dp_image_write_jpeg(const char *path, const unsigned char *pix, int h, int w, int ch, int quality,
                        char *err, size_t errlen)
{
    struct jpeg_compress_struct co;
    jpeg_err je;
    FILE *volatile fp = fopen(path, "wb");
    if (!fp) {
        if (err && errlen) snprintf(err, errlen, "%s: cannot create: %s", path, strerror(errno));
        return DP_ERR_IO;
    }
    co.err = jpeg_std_error(&je.pub);
    je.pub.error_exit = jpeg_on_error;
    je.pub.output_message = jpeg_on_output;
    je.msg[0] = '\0';
    if (setjmp(je.jb)) {
        jpeg_destroy_compress(&co);
        fclose(fp);
        if (err && errlen) snprintf(err, errlen, "%s: cannot write JPEG: %s", path, je.msg);
        return DP_ERR_IO;
    }
    jpeg_create_compress(&co);
    jpeg_stdio_dest(&co, fp);
    co.image_width = (JDIMENSION)w, co.image_height = (JDIMENSION)h;
    co.input_components = ch;
    co.in_color_space = ch == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&co);
    jpeg_set_quality(&co, quality, TRUE);
    jpeg_start_compress(&co, TRUE);
    while (co.next_scanline < co.image_height) {
        JSAMPROW row = (JSAMPROW)(pix + (size_t)co.next_scanline * w * ch);
        jpeg_write_scanlines(&co, &row, 1);
    }
    jpeg_finish_compress(&co);
    jpeg_destroy_compress(&co);
    if (fclose(fp) != 0) {
        if (err && errlen) snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
        return DP_ERR_IO;
    }
    return DP_OK;
}

/* An 8-bit PNG of h rows of w pixels: `ch` interleaved channels (1 grey, 3 RGB) or, with a
 * palette, indices into it. */
static int write_png(const char *path, const unsigned char *pix, int h, int w, int ch,
                     const unsigned char palette[256][3], char *err, size_t errlen)
{
    FILE *volatile fp = fopen(path, "wb");
    if (!fp) {
        if (err && errlen) snprintf(err, errlen, "%s: cannot create: %s", path, strerror(errno));
        return DP_ERR_IO;
    }
    png_src msg = {NULL, 0, 0, ""};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &msg, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        fclose(fp);
        return DP_ERR_NOMEM;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(fp);
        if (err && errlen) snprintf(err, errlen, "%s: cannot write PNG: %s", path, msg.msg);
        return DP_ERR_IO;
    }
    png_init_io(png, fp);
    const int type = palette ? PNG_COLOR_TYPE_PALETTE : ch == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY;
    const int n = palette ? 1 : ch; /* bytes per pixel (not ch itself: setjmp may clobber a changed argument) */
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, type, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (palette) {
        png_color pal[256];
        for (int i = 0; i < 256; i++) pal[i].red = palette[i][0], pal[i].green = palette[i][1], pal[i].blue = palette[i][2];
        png_set_PLTE(png, info, pal, 256);
    }
    png_write_info(png, info);
    for (int y = 0; y < h; y++) png_write_row(png, (png_const_bytep)(pix + (size_t)y * w * n));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    if (fclose(fp) != 0) {
        if (err && errlen) snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
        return DP_ERR_IO;
    }
    return DP_OK;
}

int dp_image_write_png_palette(const char *path, const unsigned char *idx, int h, int w,
                               const unsigned char palette[256][3], char *err, size_t errlen)
{
    return write_png(path, idx, h, w, 1, palette, err, errlen);
}

int dp_image_write_png(const char *path, const unsigned char *pix, int h, int w, int ch, char *err, size_t errlen)
{
    if (!path || !pix) return DP_ERR_NULL;
    if (h < 1 || w < 1 || (ch != 1 && ch != 3)) {
        if (err && errlen) snprintf(err, errlen, "%s: cannot write a PNG of %dx%d pixels with %d channels", path, h, w, ch);
        return DP_ERR_ARG;
    }
    return write_png(path, pix, h, w, ch, NULL, err, errlen);
}
