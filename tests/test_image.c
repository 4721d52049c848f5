/* test_image.c — dp_image_load (src/io/image.c) on tiny files written here with
 * libpng's and libjpeg's own encoders into a fresh /tmp directory: PNG grey,
 * RGB, RGBA, 4-bit palette with tRNS, 16-bit and interlaced, pixel for pixel;
 * JPEG RGB and grey of flat 8x8 blocks within 3; both channel conversions; odd
 * sizes; then every error case (status code, message, outputs left unwritten)
 * and several threads decoding at once. */
#include "io/image.h"
#include "testutil.h"

#include <dirent.h>
#include <jpeglib.h>
#include <png.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

enum { PH = 7, PW = 13, JH = 13, JW = 21 };   /* PNG and JPEG sizes (h, w), all odd */

static char g_dir[] = "/tmp/dp_image_XXXXXX";

static const char *tpath(const char *name)   /* ring of buffers: a few live at once */
{
    static char buf[4][300];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
    return buf[k];
}

static int luma(const unsigned char *p)   /* ITU-R 601, rounded */
{
    return (299 * p[0] + 587 * p[1] + 114 * p[2] + 500) / 1000;
}

static void to_grey(const unsigned char *rgb, unsigned char *g, int n)
{
    for (int i = 0; i < n; i++) g[i] = (unsigned char)luma(rgb + 3 * i);
}

/* px: h rows of w pixels, packed as the PNG stores them (16-bit big-endian), except
 * depths below 8, one byte per pixel (png_set_packing packs them). */
static int write_png(const char *path, int h, int w, int type, int depth, int interlace,
                     const unsigned char *px, const png_color *pal, int npal,
                     const unsigned char *trns, int ntrns)
{
    FILE *fp = fopen(path, "wb");
    if (!fp) return -1;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    png_bytep rows[64];
    if (!info || h > 64) {
        png_destroy_write_struct(&png, &info);
        fclose(fp);
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(fp);
        return -1;
    }
    png_init_io(png, fp);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, type, interlace,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (pal) png_set_PLTE(png, info, pal, npal);
    if (trns) png_set_tRNS(png, info, trns, ntrns, NULL);
    png_write_info(png, info);
    if (depth < 8) png_set_packing(png);
    int ch = type == PNG_COLOR_TYPE_RGB ? 3 : type == PNG_COLOR_TYPE_RGB_ALPHA ? 4 : 1;
    size_t stride = (size_t)w * (size_t)ch * (depth == 16 ? 2 : 1);
    for (int y = 0; y < h; y++) rows[y] = (png_bytep)px + stride * (size_t)y;
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return fclose(fp) == 0 ? 0 : -1;
}

/* px: (h, w, comps).  4:4:4 sampling, so flat 8x8 blocks decode flat. */
static int write_jpeg(const char *path, int h, int w, int comps, J_COLOR_SPACE cs,
                      const unsigned char *px)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    FILE *fp = fopen(path, "wb");
    if (!fp) return -1;
    c.err = jpeg_std_error(&e);   /* the encoder may exit the test on an error */
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, fp);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = comps;
    c.in_color_space = cs;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 95, TRUE);
    for (int i = 0; i < c.num_components; i++)
        c.comp_info[i].h_samp_factor = c.comp_info[i].v_samp_factor = 1;
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)px + (size_t)c.next_scanline * (size_t)(w * comps);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    return fclose(fp) == 0 ? 0 : -1;
}

static int write_bytes(const char *path, const void *p, size_t n)
{
    FILE *fp = fopen(path, "wb");
    if (!fp) return -1;
    int ok = fwrite(p, 1, n, fp) == n;
    return fclose(fp) == 0 && ok ? 0 : -1;
}

/* Copies the first num/den of file src into dst; with flip >= 0, also inverts the
 * byte at offset flip. */
static int copy_part(const char *src, const char *dst, int num, int den, long flip)
{
    static unsigned char b[1 << 16];
    FILE *fp = fopen(src, "rb");
    if (!fp) return -1;
    size_t n = fread(b, 1, sizeof b, fp);
    fclose(fp);
    if (flip >= 0 && (size_t)flip < n) b[flip] ^= 0xff;
    return write_bytes(dst, b, n * (size_t)num / (size_t)den);
}

/* Copies src to dst with its declared size replaced by h x w: the IHDR fields of a
 * PNG (and their CRC) or the SOF0 fields of a JPEG.  Only the header changes. */
static int resize_header(const char *src, const char *dst, int png, unsigned h, unsigned w)
{
    static unsigned char b[1 << 16];
    FILE *fp = fopen(src, "rb");
    if (!fp) return -1;
    size_t n = fread(b, 1, sizeof b, fp), at = 0;
    fclose(fp);
    if (png) {   /* IHDR: length at 8, type at 12, width at 16, height at 20, CRC at 29 */
        for (int k = 0; k < 4; k++) b[16 + k] = (unsigned char)(w >> (24 - 8 * k));
        for (int k = 0; k < 4; k++) b[20 + k] = (unsigned char)(h >> (24 - 8 * k));
        const unsigned long crc = crc32(crc32(0L, Z_NULL, 0), b + 12, 17);
        for (int k = 0; k < 4; k++) b[29 + k] = (unsigned char)(crc >> (24 - 8 * k));
    } else {     /* SOF0: FF C0, length, precision, height, width */
        for (at = 2; at + 9 < n && !(b[at] == 0xff && b[at + 1] == 0xc0); at++) {}
        if (at + 9 >= n) return -1;
        b[at + 5] = (unsigned char)(h >> 8), b[at + 6] = (unsigned char)h;
        b[at + 7] = (unsigned char)(w >> 8), b[at + 8] = (unsigned char)w;
    }
    return write_bytes(dst, b, n);
}

/* Loads name with ch channels: DP_OK, size (h, w) and every value within tol of ref. */
static void expect_pixels(const char *name, int ch, const unsigned char *ref, int h, int w,
                          int tol)
{
    unsigned char *pix = NULL;
    int gh = -1, gw = -1;
    char err[512] = "";
    int rc = dp_image_load(tpath(name), ch, &pix, &gh, &gw, err, sizeof err);
    CHECK(rc == DP_OK, "%s, %d channel(s): status %d (%s)", name, ch, rc, err);
    if (rc != DP_OK) return;
    CHECK(gh == h && gw == w, "%s: size %dx%d, expected %dx%d", name, gh, gw, h, w);
    int bad = 0, worst = 0;
    for (int i = 0; gh == h && gw == w && i < h * w * ch; i++) {
        int d = abs((int)pix[i] - (int)ref[i]);
        if (d > worst) worst = d;
        if (d > tol && bad++ < 5)
            fprintf(stderr, "  %s ch=%d (y %d, x %d, c %d): got %d, expected %d\n", name, ch,
                    i / ch / w, i / ch % w, i % ch, pix[i], ref[i]);
    }
    CHECK(bad == 0, "%s, %d channel(s): %d values off by more than %d (max %d)", name, ch, bad,
          tol, worst);
    free(pix);
}

/* Loads name and expects status code with err naming the file and containing want;
 * the outputs must stay unwritten. */
static void expect_fail(const char *name, int ch, int code, const char *want)
{
    const char *path = tpath(name);
    unsigned char sentinel, *pix = &sentinel;
    int h = -7, w = -7;
    char err[512] = "";
    int rc = dp_image_load(path, ch, &pix, &h, &w, err, sizeof err);
    CHECK(rc == code && strstr(err, path) && strstr(err, want),
          "%s: status %d (expected %d), err \"%s\" (expected the path and \"%s\")", name, rc,
          code, err, want);
    CHECK(pix == &sentinel && h == -7 && w == -7, "%s: outputs written on an error", name);
    if (rc == DP_OK && pix != &sentinel) free(pix);
}

/* Several threads decode the same files; each compares with main's result. */
typedef struct {
    const char *jpg, *png, *half;   /* paths, made before the threads start */
    const unsigned char *ref;
    size_t n;
    int mismatches;
} job;

static void *hammer(void *arg)
{
    job *j = arg;
    char err[256];
    for (int it = 0; it < 20; it++) {
        unsigned char *a = NULL, *b = NULL, *c = NULL;
        int h, w;
        if (dp_image_load(j->jpg, 3, &a, &h, &w, err, sizeof err) != DP_OK ||
            (size_t)h * (size_t)w * 3 != j->n || memcmp(a, j->ref, j->n) != 0)
            j->mismatches++;
        if (dp_image_load(j->png, 1, &b, &h, &w, err, sizeof err) != DP_OK) j->mismatches++;
        if (dp_image_load(j->half, 3, &c, &h, &w, err, sizeof err) != DP_ERR_FORMAT || c)
            j->mismatches++;
        free(a), free(b), free(c);
    }
    return NULL;
}

static void cleanup(void)
{
    DIR *d = opendir(g_dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 && !strchr(e->d_name, '/'))
            remove(tpath(e->d_name));
    if (d) closedir(d);
    rmdir(g_dir);
}

int main(void)
{
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    tu_rng rng = {2022};
    enum { N = PH * PW };
    unsigned char grey[N], grey3[3 * N], rgb[3 * N], rgbg[N], rgba[4 * N], idx[N];
    unsigned char pal3[3 * N], palg[N], rgb16[6 * N], exp16[3 * N], exp16g[N];
    for (int i = 0; i < N; i++) {
        grey[i] = (unsigned char)tu_int(&rng, 0, 255);
        for (int c = 0; c < 3; c++) grey3[3 * i + c] = grey[i];
        for (int c = 0; c < 3; c++)
            rgba[4 * i + c] = rgb[3 * i + c] = (unsigned char)tu_int(&rng, 0, 255);
        rgba[4 * i + 3] = (unsigned char)(i % 3 == 0 ? 0 : tu_int(&rng, 0, 255));
        for (int c = 0; c < 3; c++) {
            int v = i < 3 && c == 1 ? 128 + i : tu_int(&rng, 0, 65535);   /* 128 -> 0, 129 -> 1 */
            rgb16[6 * i + 2 * c] = (unsigned char)(v >> 8);
            rgb16[6 * i + 2 * c + 1] = (unsigned char)(v & 255);
            exp16[3 * i + c] = (unsigned char)((v * 255 + 32767) / 65535);
        }
    }
    const unsigned char corners[4][3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 255, 255}};
    memcpy(rgb, corners, sizeof corners);   /* luma 76, 150, 29, 255 */
    for (int i = 0; i < 4; i++) memcpy(rgba + 4 * i, corners[i], 3);
    to_grey(rgb, rgbg, N);
    to_grey(exp16, exp16g, N);
    CHECK(rgbg[0] == 76 && rgbg[1] == 150 && rgbg[2] == 29 && rgbg[3] == 255,
          "luma of the primaries: %d %d %d %d", rgbg[0], rgbg[1], rgbg[2], rgbg[3]);
    png_color pal[16];
    unsigned char trns[5] = {0, 0, 0, 0, 0};   /* tRNS must be ignored */
    for (int k = 0; k < 16; k++) {
        pal[k].red = (png_byte)tu_int(&rng, 0, 255);
        pal[k].green = (png_byte)tu_int(&rng, 0, 255);
        pal[k].blue = (png_byte)tu_int(&rng, 0, 255);
    }
    for (int i = 0; i < N; i++) {
        idx[i] = (unsigned char)tu_int(&rng, 0, 15);
        pal3[3 * i] = pal[idx[i]].red, pal3[3 * i + 1] = pal[idx[i]].green;
        pal3[3 * i + 2] = pal[idx[i]].blue;
    }
    to_grey(pal3, palg, N);

    /* JPEG: flat 8x8 blocks of 6 colours (RGB) and 6 grey levels. */
    const unsigned char cols[6][3] = {{250, 10, 10},  {10, 240, 20}, {20, 30, 230},
                                      {255, 255, 255}, {0, 0, 0},     {200, 120, 40}};
    const unsigned char levels[6] = {0, 60, 128, 200, 255, 17};
    static unsigned char jrgb[3 * JH * JW], jrgbg[JH * JW], jg[JH * JW], jg3[3 * JH * JW];
    for (int y = 0; y < JH; y++)
        for (int x = 0; x < JW; x++) {
            int b = (y / 8) * 3 + x / 8, i = y * JW + x;
            memcpy(jrgb + 3 * i, cols[b], 3);
            jg[i] = levels[b];
            memset(jg3 + 3 * i, levels[b], 3);
        }
    to_grey(jrgb, jrgbg, JH * JW);

    int wr = 0;
    wr |= write_png(tpath("grey.png"), PH, PW, PNG_COLOR_TYPE_GRAY, 8, 0, grey, NULL, 0, NULL, 0);
    wr |= write_png(tpath("rgb.png"), PH, PW, PNG_COLOR_TYPE_RGB, 8, 0, rgb, NULL, 0, NULL, 0);
    wr |= write_png(tpath("rgba.png"), PH, PW, PNG_COLOR_TYPE_RGB_ALPHA, 8, 0, rgba, NULL, 0,
                    NULL, 0);
    wr |= write_png(tpath("pal.png"), PH, PW, PNG_COLOR_TYPE_PALETTE, 4, 0, idx, pal, 16, trns, 5);
    wr |= write_png(tpath("rgb16.png"), PH, PW, PNG_COLOR_TYPE_RGB, 16, 0, rgb16, NULL, 0, NULL, 0);
    wr |= write_png(tpath("adam7.png"), PH, PW, PNG_COLOR_TYPE_RGB, 8, PNG_INTERLACE_ADAM7, rgb,
                    NULL, 0, NULL, 0);
    static unsigned char wide[20000];
    wr |= write_png(tpath("wide.png"), 1, 20000, PNG_COLOR_TYPE_GRAY, 8, 0, wide, NULL, 0, NULL, 0);
    wr |= write_jpeg(tpath("rgb.jpg"), JH, JW, 3, JCS_RGB, jrgb);
    wr |= write_jpeg(tpath("grey.jpg"), JH, JW, 1, JCS_GRAYSCALE, jg);
    static unsigned char noise[3 * 48 * 64];   /* scan data much larger than the headers */
    for (size_t i = 0; i < sizeof noise; i++) noise[i] = (unsigned char)tu_int(&rng, 0, 255);
    wr |= write_jpeg(tpath("noise.jpg"), 48, 64, 3, JCS_RGB, noise);
    unsigned char cmyk[4 * 8 * 8];
    memset(cmyk, 90, sizeof cmyk);
    wr |= write_jpeg(tpath("cmyk.jpg"), 8, 8, 4, JCS_CMYK, cmyk);
    wr |= write_bytes(tpath("notes.txt"), "hello, world\n", 13);
    wr |= write_bytes(tpath("anim.gif"), "GIF89a\1\0\1\0", 10);
    wr |= write_bytes(tpath("empty.png"), "", 0);
    wr |= copy_part(tpath("rgb.png"), tpath("half.png"), 1, 2, -1);
    wr |= copy_part(tpath("noise.jpg"), tpath("half.jpg"), 1, 2, -1);   /* cut in the scan */
    wr |= copy_part(tpath("rgb.jpg"), tpath("head.jpg"), 1, 2, -1);     /* cut in the tables */
    wr |= copy_part(tpath("rgb.png"), tpath("flipped.png"), 1, 1, 60);   /* inside IDAT */
    wr |= copy_part(tpath("rgb.png"), tpath("noiend.png"), 1, 1, -1);
    /* small files whose headers claim huge images */
    wr |= resize_header(tpath("grey.png"), tpath("huge.png"), 1, 8192, 16384);
    wr |= resize_header(tpath("grey.jpg"), tpath("huge.jpg"), 0, 16384, 8192);
    wr |= resize_header(tpath("grey.png"), tpath("claims.png"), 1, 6000, 10000);
    wr |= mkdir(tpath("dir.png"), 0700);
    CHECK(wr == 0, "writing the test files into %s", g_dir);

    /* PNG: exact, both ways. */
    expect_pixels("grey.png", 1, grey, PH, PW, 0);
    expect_pixels("grey.png", 3, grey3, PH, PW, 0);
    expect_pixels("rgb.png", 3, rgb, PH, PW, 0);
    expect_pixels("rgb.png", 1, rgbg, PH, PW, 0);
    expect_pixels("rgba.png", 3, rgb, PH, PW, 0);
    expect_pixels("rgba.png", 1, rgbg, PH, PW, 0);
    expect_pixels("pal.png", 3, pal3, PH, PW, 0);
    expect_pixels("pal.png", 1, palg, PH, PW, 0);
    expect_pixels("rgb16.png", 3, exp16, PH, PW, 0);
    expect_pixels("rgb16.png", 1, exp16g, PH, PW, 0);
    expect_pixels("adam7.png", 3, rgb, PH, PW, 0);
    /* JPEG: within 3 (grey from RGB is the file's Y, the encoder's luma). */
    expect_pixels("rgb.jpg", 3, jrgb, JH, JW, 3);
    expect_pixels("rgb.jpg", 1, jrgbg, JH, JW, 3);
    expect_pixels("grey.jpg", 1, jg, JH, JW, 3);
    expect_pixels("grey.jpg", 3, jg3, JH, JW, 3);
    {   /* grey -> RGB replicates exactly */
        unsigned char *p = NULL;
        int h = 0, w = 0, same = 1;
        CHECK(dp_image_load(tpath("grey.jpg"), 3, &p, &h, &w, NULL, 0) == DP_OK, "grey.jpg");
        for (int i = 0; p && i < h * w; i++)
            same &= p[3 * i] == p[3 * i + 1] && p[3 * i] == p[3 * i + 2];
        CHECK(same, "grey.jpg as RGB: channels differ");
        free(p);
    }

    /* Errors. */
    expect_fail("missing.png", 3, DP_ERR_IO, "cannot open");
    expect_fail("dir.png", 3, DP_ERR_IO, "directory");
    expect_fail("notes.txt", 3, DP_ERR_FORMAT, "not a JPEG or PNG file (first bytes 68 65 6C 6C)");
    expect_fail("anim.gif", 1, DP_ERR_FORMAT, "(first bytes 47 49 46 38)");
    expect_fail("empty.png", 3, DP_ERR_FORMAT, "not a JPEG or PNG file (empty)");
    expect_fail("half.png", 3, DP_ERR_FORMAT, "truncated or corrupt PNG: ");
    expect_fail("half.png", 1, DP_ERR_FORMAT, "truncated or corrupt PNG: ");
    expect_fail("half.jpg", 3, DP_ERR_FORMAT, "truncated or corrupt JPEG: ");
    expect_fail("half.jpg", 1, DP_ERR_FORMAT, "truncated or corrupt JPEG: Premature end");
    expect_fail("head.jpg", 3, DP_ERR_FORMAT, "truncated or corrupt JPEG: ");
    expect_fail("flipped.png", 3, DP_ERR_FORMAT, "truncated or corrupt PNG: ");
    expect_fail("wide.png", 1, DP_ERR_FORMAT, "image is 1x20000 (HxW); each side must be 1..16384");
    /* 128 Mpixel, each side allowed: refused from the header, before decoding */
    expect_fail("huge.png", 3, DP_ERR_FORMAT,
                "image is 8192x16384 (HxW); each side must be 1..16384, and the image at most 67108864 pixels");
    expect_fail("huge.jpg", 1, DP_ERR_FORMAT,
                "image is 16384x8192 (HxW); each side must be 1..16384, and the image at most 67108864 pixels");
    /* 60 Mpixel (allowed) in a file of a hundred bytes */
    expect_fail("claims.png", 3, DP_ERR_FORMAT,
                "image is 6000x10000 (HxW), 60006000 bytes of rows, more than a PNG file of");
    expect_fail("cmyk.jpg", 3, DP_ERR_FORMAT, "CMYK");
    expect_fail("rgb.png", 2, DP_ERR_ARG, "channels must be 1 (grey) or 3 (RGB), got 2");
    expect_fail("rgb.jpg", 0, DP_ERR_ARG, "got 0");
    {
        struct stat st;
        CHECK(stat(tpath("rgb.png"), &st) == 0 &&
              truncate(tpath("noiend.png"), st.st_size - 12) == 0, "cutting IEND");
        expect_fail("noiend.png", 3, DP_ERR_FORMAT, "truncated or corrupt PNG: ");
    }
    unsigned char *p = NULL;
    int h, w;
    char err[64] = "";
    CHECK(dp_image_load(tpath("rgb.png"), 3, NULL, &h, &w, err, sizeof err) == DP_ERR_NULL &&
          strstr(err, "NULL"), "NULL pix: \"%s\"", err);
    CHECK(dp_image_load(NULL, 3, &p, &h, &w, NULL, 0) == DP_ERR_NULL && !p, "NULL path");
    err[0] = '\0';   /* a short err buffer is cut, still terminated */
    CHECK(dp_image_load(tpath("notes.txt"), 3, &p, &h, &w, err, 8) == DP_ERR_FORMAT &&
          strlen(err) == 7, "err of 8 bytes: \"%s\"", err);
    CHECK(dp_image_load(tpath("half.jpg"), 3, &p, &h, &w, NULL, 0) == DP_ERR_FORMAT && !p,
          "errlen 0");

    /* Threads. */
    unsigned char *ref = NULL;
    CHECK(dp_image_load(tpath("rgb.jpg"), 3, &ref, &h, &w, NULL, 0) == DP_OK, "rgb.jpg");
    if (ref) {
        char jpg[300], png[300], half[300];
        snprintf(jpg, sizeof jpg, "%s", tpath("rgb.jpg"));
        snprintf(png, sizeof png, "%s", tpath("pal.png"));
        snprintf(half, sizeof half, "%s", tpath("half.jpg"));
        pthread_t t[4];
        job jobs[4];
        int started[4];
        for (int k = 0; k < 4; k++) {
            jobs[k] = (job){jpg, png, half, ref, (size_t)h * (size_t)w * 3, 0};
            started[k] = pthread_create(&t[k], NULL, hammer, &jobs[k]) == 0;
            CHECK(started[k], "pthread_create");
        }
        for (int k = 0; k < 4; k++) {
            if (started[k]) pthread_join(t[k], NULL);
            CHECK(jobs[k].mismatches == 0, "thread %d: %d mismatches", k, jobs[k].mismatches);
        }
        free(ref);
    }
    cleanup();
    return tu_finish("test_image");
}
