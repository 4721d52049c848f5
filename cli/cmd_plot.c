/* cmd_plot.c — `dynopool plot`: the paper's Figure 5.1 (feature-map shapes) and
 * Figure 5.2 (accuracy against GMACs) and the training curves of runs written by
 * `dynopool train`, as SVG written by hand. */
#define _XOPEN_SOURCE 700 /* realpath */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "cli.h"

static const char *const PLOT_USAGE =
    "Usage: dynopool plot RUN [RUN...] [-o DIR] [--title T]\n"
    "\n"
    "Draws training runs (directories written by 'dynopool train') as three SVG\n"
    "files in DIR and prints their paths:\n"
    "  shapes.svg    the input and the feature map after every resizing stage, to\n"
    "                scale, one row per run (the paper's Figure 5.1)\n"
    "  tradeoff.svg  test accuracy against GMACs per image, one marker per run\n"
    "                (Figure 5.2); GMACs on a log scale when they span over 10x\n"
    "  curves.svg    train and test loss and accuracy against epoch; loss on a log\n"
    "                scale when it spans over 10x\n"
    "\n"
    "  -o DIR        output directory, created if missing  (default: .)\n"
    "  --title T     heading of the three figures\n"
    "\n"
    "A run's numbers come from its summary.json; a run without one (still training)\n"
    "is drawn from run.json and the last line of metrics.jsonl, marked unfinished.\n"
    "Values that are null, infinite or beyond 1e30 are left out, with a warning;\n"
    "runs of different datasets, input sizes or variants are drawn, with a warning.\n"
    "Example:\n"
    "  dynopool plot runs/human runs/dynopool runs/shape-adaptor -o figures\n";

enum { MAX_STAGES = 32 };
enum { M_EPOCH, M_TRAIN_LOSS, M_TEST_LOSS, M_TRAIN_ACC, M_TEST_ACC, M_N }; /* a metrics row */

typedef struct {
    char name[256], model[32], pool[32], variant[32], dataset[64];
    int in[2], finished, n_sizes, sizes[MAX_STAGES][2]; /* (h, w) of the input, each stage */
    double acc, gmacs;      /* test accuracy (%) and GMACs per image; NaN when unknown */
    int n_ep, cap_ep;
    double *ep;             /* n_ep rows of M_N: one per line of metrics.jsonl */
    int n_bad, bad_line;    /* metrics that cannot be drawn (NaN in ep), the first one's line */
    char bad_key[32];
} run_t;

/* Values drawn: finite and at most VMAX in size (so that no span overflows); a log
 * axis starts at VMIN or above (so that its decades stay few). */
#define VMAX 1e30
#define VMIN 1e-30
static int drawable(double v) { return isfinite(v) && fabs(v) <= VMAX; }

/* Okabe-Ito: run colours for the curves, and one colour and marker per pool. */
static const char *const PALETTE[] = {"#0072B2", "#D55E00", "#009E73", "#E69F00",
                                      "#CC79A7", "#56B4E9", "#000000"};
static const char *const POOL_COLOR[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7"};
static const char *const POOL_NAME[] = {"human", "DynOPool", "Shape Adaptor", "other"};
static const char *const FONT = "'DejaVu Sans', Helvetica, Arial, sans-serif";

static int pool_index(const char *p)
{
    return !strcmp(p, "human") ? 0 : !strcmp(p, "dynopool") ? 1 : !strcmp(p, "shape-adaptor") ? 2 : 3;
}

static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("dynopool: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

/* ---- reading runs ---------------------------------------------------------- */

/* The whole file, NUL-terminated; NULL with errno set on failure. */
char *cli_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    const long n = fseek(f, 0, SEEK_END) ? -1 : ftell(f);
    char *b = n >= 0 && !fseek(f, 0, SEEK_SET) ? malloc((size_t)n + 1) : NULL;
    if (b && fread(b, 1, (size_t)n, f) == (size_t)n) b[n] = '\0';
    else free(b), b = NULL, errno = EIO;
    fclose(f);
    return b;
}

/* One JSON object from S, the text of PATH from line LINE on; prints the file and
 * line of the problem and returns NULL when S is not one. */
static cJSON *parse_object(const char *path, const char *s, int line)
{
    cJSON *j = cJSON_ParseWithOpts(s, NULL, 1);
    if (cJSON_IsObject(j)) return j;
    const char *e = j ? NULL : cJSON_GetErrorPtr();
    for (const char *c = s; e && c < e && *c; c++) line += *c == '\n';
    fail("%s line %d: %s", path, line, j ? "not a JSON object" : "not valid JSON");
    cJSON_Delete(j);
    return NULL;
}

/* The finite number O[KEY], or DFLT. */
static double num(const cJSON *o, const char *key, double dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) && isfinite(v->valuedouble) ? v->valuedouble : dflt;
}

static void str(const cJSON *o, const char *key, char *dst, size_t n)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsString(v)) snprintf(dst, n, "%s", v->valuestring);
}

/* 0 when V is a side (a whole number in [1, 2^20]). */
static int side(const cJSON *v, int *out)
{
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 1 && v->valuedouble <= 1 << 20) ||
        v->valuedouble != floor(v->valuedouble))
        return -1;
    *out = (int)v->valuedouble;
    return 0;
}

static int pair(const cJSON *a, int *h, int *w)
{
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != 2) return -1;
    return side(a->child, h) || side(a->child->next, w) ? -1 : 0;
}

/* Takes what O (run.json, a metrics line or summary.json) says about the run;
 * later sources override earlier ones. */
static int take(run_t *r, const cJSON *o, const char *path, int line)
{
    char where[64] = "";
    if (line) snprintf(where, sizeof where, " line %d", line);
    str(o, "model", r->model, sizeof r->model);
    str(o, "pool", r->pool, sizeof r->pool);
    str(o, "variant", r->variant, sizeof r->variant);
    str(o, "dataset", r->dataset, sizeof r->dataset);
    r->acc = num(o, "test_acc", r->acc);
    r->gmacs = num(o, "gmacs", r->gmacs);
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(o, "input");
    if (in && (cJSON_IsNumber(in) ? side(in, &r->in[0]) : pair(in, &r->in[0], &r->in[1])))
        return fail("%s%s: \"input\" is not a side or an [h, w] pair", path, where);
    if (cJSON_IsNumber(in)) r->in[1] = r->in[0];
    const cJSON *sz = cJSON_GetObjectItemCaseSensitive(o, "sizes"), *e;
    if (!sz) return 0;
    if (!cJSON_IsArray(sz) || cJSON_GetArraySize(sz) > MAX_STAGES)
        return fail("%s%s: \"sizes\" is not a list of at most %d [h, w] pairs", path, where, MAX_STAGES);
    r->n_sizes = 0;
    cJSON_ArrayForEach(e, sz) {
        if (pair(e, &r->sizes[r->n_sizes][0], &r->sizes[r->n_sizes][1]))
            return fail("%s%s: \"sizes\" item %d is not an [h, w] pair of positive whole numbers",
                        path, where, r->n_sizes + 1);
        r->n_sizes++;
    }
    return 0;
}

/* Reads PATH into *OUT; a missing file leaves *OUT NULL and is no error. */
static int load_object(const char *path, cJSON **out)
{
    char *s = cli_read_file(path);
    *out = NULL;
    if (!s) return errno == ENOENT ? 0 : fail("cannot read %s: %s", path, strerror(errno));
    *out = parse_object(path, s, 1);
    free(s);
    return *out ? 0 : 1;
}

static int load_metrics(const char *dir, run_t *r)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    char *buf = cli_read_file(path), *s = buf;
    if (!buf) return errno == ENOENT ? 0 : fail("cannot read %s: %s", path, strerror(errno));
    int rc = 0;
    for (int line = 1; *s && !rc; line++) {
        char *end = strchr(s, '\n');
        if (end) *end = '\0';
        if (s[strspn(s, " \t\r")]) {
            cJSON *o = parse_object(path, s, line);
            rc = !o || take(r, o, path, line);
            if (!rc && r->n_ep == r->cap_ep) {
                double *p = realloc(r->ep, sizeof(double) * M_N * (r->cap_ep = 2 * r->cap_ep + 16));
                rc = p ? 0 : fail("out of memory reading %s", path);
                if (p) r->ep = p;
            }
            if (!rc) {
                double *row = r->ep + (size_t)M_N * r->n_ep++;
                row[M_EPOCH] = num(o, "epoch", r->n_ep); /* default: the row's number, from 1 */
                row[M_TRAIN_LOSS] = num(o, "train_loss", NAN), row[M_TEST_LOSS] = num(o, "test_loss", NAN);
                row[M_TRAIN_ACC] = num(o, "train_acc", NAN), row[M_TEST_ACC] = num(o, "test_acc", NAN);
                /* null (train writes NaN and infinity so), infinite or huge: not drawn */
                static const char *const keys[M_N] = {"epoch", "train_loss", "test_loss", "train_acc",
                                                      "test_acc"};
                for (int c = 0; c < M_N; c++) {
                    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, keys[c]);
                    if (!cJSON_IsNull(v) && !(cJSON_IsNumber(v) && !drawable(v->valuedouble))) continue;
                    if (!r->n_bad++) r->bad_line = line, snprintf(r->bad_key, sizeof r->bad_key, "%s", keys[c]);
                    row[c] = NAN;
                }
                if (!isfinite(row[M_EPOCH]))
                    for (int c = 0; c < M_N; c++) row[c] = NAN;
            }
            cJSON_Delete(o);
        }
        s = end ? end + 1 : s + strlen(s);
    }
    free(buf);
    if (!rc && r->n_bad)
        fprintf(stderr, "dynopool: warning: %s: %d value%s in %s %s null, infinite or beyond 1e30 "
                        "(the first: line %d, \"%s\"); not drawn\n", r->name, r->n_bad,
                r->n_bad > 1 ? "s" : "", path, r->n_bad > 1 ? "are" : "is", r->bad_line, r->bad_key);
    return rc;
}

/* The last component of DIR ("runs/a/" -> "a"), or of its real path for "." and "..". */
static void run_name(const char *dir, char *out, size_t n)
{
    size_t len = strlen(dir), b;
    while (len > 1 && dir[len - 1] == '/') len--;
    for (b = len; b > 0 && dir[b - 1] != '/'; b--) {}
    snprintf(out, n, "%.*s", (int)(len - b), dir + b);
    char *real = !strcmp(out, ".") || !strcmp(out, "..") ? realpath(dir, NULL) : NULL;
    if (real && strcmp(real, "/")) snprintf(out, n, "%s", strrchr(real, '/') + 1);
    free(real);
}

static int load_run(const char *dir, run_t *r)
{
    struct stat st;
    if (stat(dir, &st)) return fail("%s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return fail("%s: not a directory", dir);
    run_name(dir, r->name, sizeof r->name);
    r->acc = r->gmacs = NAN;
    char pc[4096], ps[4096];
    snprintf(pc, sizeof pc, "%s/run.json", dir);
    snprintf(ps, sizeof ps, "%s/summary.json", dir);
    cJSON *cfg = NULL, *sum = NULL;
    int rc = load_object(pc, &cfg) || load_object(ps, &sum);
    if (!rc && !cfg && !sum)
        rc = fail("%s: no run.json or summary.json: not a run directory of 'dynopool train'", dir);
    if (!rc && cfg) rc = take(r, cfg, pc, 0);
    if (!rc) rc = load_metrics(dir, r);
    if (!rc && sum) rc = take(r, sum, ps, 0), r->finished = 1;
    cJSON_Delete(cfg);
    cJSON_Delete(sum);
    return rc;
}

/* ---- SVG ------------------------------------------------------------------- */

static void esc(FILE *f, const char *s)
{
    static const char special[] = "&<>\"'";
    static const char *const entity[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
    for (const char *e; *s; s++)
        if ((e = strchr(special, *s))) fputs(entity[e - special], f);
        else if ((unsigned char)*s >= 0x20) fputc(*s, f); /* control characters are not XML */
}

/* <text> at (x, y) with attributes ATTR; the formatted string is escaped. */
static void text(FILE *f, double x, double y, const char *attr, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" %s>", x, y, attr);
    esc(f, buf);
    fputs("</text>\n", f);
}

/* Width of S in pixels at font SIZE, a little over DejaVu Sans's average. */
static double tw(const char *s, double size) { return 0.62 * size * (double)strlen(s); }

static void svg_begin(FILE *f, double w, double h, const char *title, const char *sub)
{
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
               "viewBox=\"0 0 %.0f %.0f\" font-family=\"%s\" font-size=\"13\" fill=\"#222\">\n",
            w, h, w, h, FONT);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    text(f, 28, 34, "font-size=\"19\" font-weight=\"bold\"", "%s", title);
    text(f, 28, 56, "fill=\"#555\"", "%s", sub);
}

typedef struct {
    double lo, hi, p0, p1, step; /* values lo..hi drawn at pixels p0..p1 */
    int log;
} axis;

static double px(const axis *a, double v)
{
    const double t = a->log ? log10(v / a->lo) / log10(a->hi / a->lo) : (v - a->lo) / (a->hi - a->lo);
    return a->p0 + t * (a->p1 - a->p0);
}

/* 1, 2 or 5 times a power of ten: the smallest >= v (up) or the largest <= v; v
 * itself where it has no such neighbour (not positive and finite, or so small that
 * its power of ten underflows). */
static double round125(double v, int up)
{
    static const double m[] = {1, 2, 5, 10};
    const double p = v > 0 && isfinite(v) ? pow(10, floor(log10(v))) : 0;
    if (!(p > 0) || !isfinite(p)) return v;
    int i = up ? 0 : 3;
    while (up ? i < 3 && m[i] * p < v * (1 - 1e-9) : i > 0 && m[i] * p > v * (1 + 1e-9)) i += up ? 1 : -1;
    return m[i] * p;
}

/* A linear axis over [lo, hi] padded by PAD of the span, ending on ticks about a
 * fifth of it apart; FROM0 keeps 0 in it, INTEGER keeps the ticks whole.  Values
 * are drawable(); a span under a billionth of them (or of 1) counts as none. */
static axis lin_axis(double lo, double hi, double p0, double p1, int from0, double pad, int integer)
{
    if (!(lo <= hi) || !drawable(lo) || !drawable(hi)) lo = 0, hi = 1;
    if (from0 && lo > 0) lo = 0;
    const int flat = hi - lo <= 1e-9 * fmax(1.0, fmax(fabs(lo), fabs(hi)));
    const double d = !flat ? pad * (hi - lo) : 0.05 * fabs(hi) + 0.5;
    if (!(from0 && lo == 0)) lo -= d;
    hi += d;
    axis a = {0, 0, p0, p1, round125((hi - lo) / 5, 1), 0};
    if (integer && a.step < 1) a.step = 1;
    a.lo = floor(lo / a.step + 1e-9) * a.step, a.hi = ceil(hi / a.step - 1e-9) * a.step;
    return a;
}

static int ticks(const axis *a, double *t, int max)
{
    int n = 0;
    if (!a->log) {
        for (double k = ceil(a->lo / a->step - 1e-9); n < max; k++) {
            const double v = k * a->step;
            if (v > a->hi + 1e-9 * a->step) break;
            t[n++] = v == 0 ? 0 : v; /* no "-0" */
        }
        return n;
    }
    const int decades_only = a->hi / a->lo > 1000;
    for (int e = (int)floor(log10(a->lo)); e <= (int)ceil(log10(a->hi)); e++)
        for (int m = 1; m <= 5; m += m == 1 ? 1 : 3) {
            const double v = m * pow(10, e);
            if ((m == 1 || !decades_only) && v >= a->lo * (1 - 1e-9) && v <= a->hi * (1 + 1e-9) && n < max)
                t[n++] = v;
        }
    return n;
}

static void tick_label(const axis *a, double v, char *buf, size_t n)
{
    const int dec = a->log || a->step >= 1 ? 0 : (int)ceil(-log10(a->step) - 1e-9);
    if (a->log) snprintf(buf, n, "%g", v);
    else snprintf(buf, n, "%.*f", dec, v);
}

/* Grid, tick labels, frame and axis titles of the plot area X by Y. */
static void frame(FILE *f, const axis *x, const axis *y, const char *xtitle, const char *ytitle)
{
    double t[64];
    char b[32];
    const int nx = ticks(x, t, 64);
    for (int i = 0; i < nx; i++) {
        fprintf(f, "<path d=\"M%.1f %.1fV%.1f\" stroke=\"#e4e4e4\"/>\n", px(x, t[i]), y->p0, y->p1);
        tick_label(x, t[i], b, sizeof b);
        text(f, px(x, t[i]), y->p0 + 19, "font-size=\"12\" fill=\"#555\" text-anchor=\"middle\"", "%s", b);
    }
    const int ny = ticks(y, t, 64);
    for (int i = 0; i < ny; i++) {
        fprintf(f, "<path d=\"M%.1f %.1fH%.1f\" stroke=\"#e4e4e4\"/>\n", x->p0, px(y, t[i]), x->p1);
        tick_label(y, t[i], b, sizeof b);
        text(f, x->p0 - 8, px(y, t[i]) + 4, "font-size=\"12\" fill=\"#555\" text-anchor=\"end\"", "%s", b);
    }
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#999\"/>\n",
            x->p0, y->p1, x->p1 - x->p0, y->p0 - y->p1);
    text(f, (x->p0 + x->p1) / 2, y->p0 + 42, "text-anchor=\"middle\"", "%s", xtitle);
    const double yc = (y->p0 + y->p1) / 2, xt = x->p0 - 52;
    char attr[96];
    snprintf(attr, sizeof attr, "text-anchor=\"middle\" transform=\"rotate(-90 %.1f %.1f)\"", xt, yc);
    text(f, xt, yc, attr, "%s", ytitle);
}

/* The marker of POOL at (x, y), a circle, triangle, square or diamond, with a tooltip. */
static void marker(FILE *f, int pool, double x, double y, const char *cls, const char *tip)
{
    static const char *const shape[] = {"<circle r=\"6\"", "<path d=\"M0 -7.5l7 12h-14z\"",
                                        "<rect x=\"-5.5\" y=\"-5.5\" width=\"11\" height=\"11\"",
                                        "<path d=\"M0 -7l7 7l-7 7l-7 -7z\""};
    fprintf(f, "<g class=\"%s\" transform=\"translate(%.2f %.2f)\"><title>", cls, x, y);
    esc(f, tip);
    fprintf(f, "</title>%s fill=\"%s\" stroke=\"white\"/></g>\n", shape[pool], POOL_COLOR[pool]);
}

static void caption(const run_t *r, char *buf, size_t n)
{
    char acc[32] = "?", gm[32] = "?";
    if (isfinite(r->acc)) snprintf(acc, sizeof acc, "%.1f", r->acc);
    if (isfinite(r->gmacs)) snprintf(gm, sizeof gm, "%.3g", r->gmacs);
    snprintf(buf, n, "%s / %s / %s: %s%%, %s GMACs%s", r->model[0] ? r->model : "?",
             r->pool[0] ? r->pool : "?", r->variant[0] ? r->variant : "none", acc, gm,
             r->finished ? "" : " (unfinished)");
}

/* Map C of run R, (h, w): c = 0 is the input, c = k the output of stage k. */
static const int *hw(const run_t *r, int c) { return c ? r->sizes[c - 1] : r->in; }

static int tallest(const run_t *r)
{
    int m = 1;
    for (int c = 0; c <= r->n_sizes; c++) m = hw(r, c)[0] > m ? hw(r, c)[0] : m;
    return m;
}

/* Figure 5.1: one row per run, every map a rectangle at the same pixels per cell. */
static void draw_shapes(FILE *f, const run_t *runs, int n, const char *title)
{
    int ncol = 1, maxdim = 1, same_data = 1;
    for (int i = 0; i < n; i++) {
        ncol = runs[i].n_sizes + 1 > ncol ? runs[i].n_sizes + 1 : ncol;
        for (int c = 0; c <= runs[i].n_sizes; c++)
            for (int k = 0; k < 2; k++) maxdim = hw(&runs[i], c)[k] > maxdim ? hw(&runs[i], c)[k] : maxdim;
        same_data &= !strcmp(runs[i].dataset, runs[0].dataset);
    }
    const double s = fmin(8, fmax(0.2, 168.0 / maxdim)), gap = 36, x0 = 28;
    double colw[MAX_STAGES + 1], cx[MAX_STAGES + 1], width = 0, height = 104;
    char b[512], lab[32];
    for (int c = 0; c < ncol; c++) {
        colw[c] = 52;
        for (int i = 0; i < n; i++)
            if (c <= runs[i].n_sizes) {
                snprintf(lab, sizeof lab, "%dx%d", hw(&runs[i], c)[0], hw(&runs[i], c)[1]);
                colw[c] = fmax(colw[c], fmax(hw(&runs[i], c)[1] * s, tw(lab, 12)));
            }
        cx[c] = c ? cx[c - 1] + colw[c - 1] + gap : x0;
    }
    width = cx[ncol - 1] + colw[ncol - 1] + x0;
    for (int i = 0; i < n; i++) {
        caption(&runs[i], b, sizeof b);
        width = fmax(width, 2 * x0 + tw(runs[i].name, 14) + 12 + tw(b, 13));
        height += 30 + tallest(&runs[i]) * s + 46;
    }
    snprintf(b, sizeof b, "Input and feature map after each resizing stage, to scale (%.3g px per cell)%s%s",
             s, same_data && runs[0].dataset[0] ? ", " : "", same_data ? runs[0].dataset : "");
    width = fmax(width, 2 * x0 + fmax(tw(b, 13), tw(title ? title : "", 19)));
    svg_begin(f, width, height, title ? title : "Feature-map shapes", b);
    for (int c = 0; c < ncol; c++) {
        snprintf(lab, sizeof lab, c ? "stage %d" : "input", c);
        text(f, cx[c] + colw[c] / 2, 88, "font-size=\"12\" fill=\"#777\" text-anchor=\"middle\"", "%s", lab);
    }
    double y = 104;
    for (int i = 0; i < n; i++) {
        const run_t *r = &runs[i];
        const char *col = POOL_COLOR[pool_index(r->pool)];
        caption(r, b, sizeof b);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\"><tspan font-weight=\"bold\" font-size=\"14\">", x0, y + 16);
        esc(f, r->name);
        fprintf(f, "</tspan><tspan fill=\"#555\" dx=\"12\">");
        esc(f, b);
        fprintf(f, "</tspan></text>\n");
        const double top = y + 30, band = tallest(r) * s, mid = top + band / 2;
        for (int c = 0; c <= r->n_sizes; c++) {
            const int h = hw(r, c)[0], w = hw(r, c)[1];
            snprintf(lab, sizeof lab, h ? "%dx%d" : "?", h, w);
            const double rw = w * s, rh = h * s, rx = cx[c] + (colw[c] - rw) / 2, ry = mid - rh / 2;
            if (h) {
                fprintf(f, "<rect id=\"r%d-s%d\" class=\"map\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" "
                           "height=\"%.2f\" fill=\"%s\" fill-opacity=\"0.2\" stroke=\"%s\" "
                           "stroke-width=\"1.2\"><title>%s</title></rect>\n", i, c, rx, ry, rw, rh, col, col, lab);
                if (s >= 3 && (h > 1 || w > 1)) { /* the cells, faintly */
                    fprintf(f, "<path stroke=\"%s\" stroke-opacity=\"0.3\" stroke-width=\"0.6\" d=\"", col);
                    for (int k = 1; k < h; k++) fprintf(f, "M%.2f %.2fh%.2f", rx, ry + k * s, rw);
                    for (int k = 1; k < w; k++) fprintf(f, "M%.2f %.2fv%.2f", rx + k * s, ry, rh);
                    fprintf(f, "\"/>\n");
                }
            }
            text(f, cx[c] + colw[c] / 2, top + band + 18, "font-size=\"12\" text-anchor=\"middle\"", "%s",
                 lab);
            if (c < r->n_sizes) /* an arrow to the next map */
                fprintf(f, "<path d=\"M%.1f %.1fh%.1fm0 -4l6 4l-6 4z\" stroke=\"#aaa\" fill=\"#aaa\"/>\n",
                        cx[c] + colw[c] + 8, mid, gap - 22);
        }
        y = top + band + 46;
    }
    fputs("</svg>\n", f);
}

static int plotted(const run_t *r) { return drawable(r->acc) && r->gmacs >= VMIN && r->gmacs <= VMAX; }

/* Figure 5.2: test accuracy against GMACs, one marker per run. */
static void draw_tradeoff(FILE *f, const run_t *runs, int n, const char *title)
{
    const double W = 760, H = 540, L = 84, R = W - 40, T = 108, B = H - 70;
    double glo = INFINITY, ghi = -INFINITY, alo = INFINITY, ahi = -INFINITY;
    int present[4] = {0};
    for (int i = 0; i < n; i++) {
        const run_t *r = &runs[i];
        if (!plotted(r)) {
            if (!isfinite(r->acc) || !(r->gmacs > 0))
                fprintf(stderr, "dynopool: warning: %s has no test accuracy or GMACs yet; not in tradeoff.svg\n",
                        r->name);
            else
                fprintf(stderr, "dynopool: warning: %s: %g GMACs at %g%% cannot be drawn (GMACs from 1e-30 "
                                "to 1e30, accuracy up to 1e30); not in tradeoff.svg\n", r->name, r->gmacs, r->acc);
            continue;
        }
        glo = fmin(glo, r->gmacs), ghi = fmax(ghi, r->gmacs);
        alo = fmin(alo, r->acc), ahi = fmax(ahi, r->acc);
        present[pool_index(r->pool)] = 1;
    }
    const int lg = ghi / glo > 10;
    axis ax = lin_axis(glo, ghi, L, R, 0, 0.1, 0), ay = lin_axis(alo, ahi, B, T, 0, 0.12, 0);
    if (lg) ax = (axis){round125(glo / 1.3, 0), round125(ghi * 1.3, 1), L, R, 0, 1};
    ax.lo = fmax(ax.lo, 0), ay.hi = fmin(ay.hi, 100); /* no negative cost, no accuracy over 100% */
    svg_begin(f, W, H, title ? title : "Accuracy against cost",
              "Test accuracy (last epoch) against GMACs per image, one marker per run");
    double lx = L;
    for (int p = 0; p < 4; p++)
        if (present[p]) {
            marker(f, p, lx + 7, 82, "key", POOL_NAME[p]);
            text(f, lx + 20, 86.5, "", "%s", POOL_NAME[p]);
            lx += 44 + tw(POOL_NAME[p], 13);
        }
    frame(f, &ax, &ay, lg ? "GMACs per image (log scale)" : "GMACs per image", "Test accuracy (%)");
    /* Labels: the first of eight places around the marker that stays in the plot and
     * overlaps no marker and no label placed before; boxes are x0, y0, x1, y1. */
    static const double at[][3] = {{10, 4, 0}, {-10, 4, 2}, {0, -12, 1}, {0, 22, 1},
                                   {10, -10, 0}, {10, 18, 0}, {-10, -10, 2}, {-10, 18, 2}};
    static const char *const anchor[] = {"start", "middle", "end"};
    double (*box)[4] = calloc((size_t)2 * n + 1, sizeof *box);
    int nb = 0;
    for (int i = 0; i < n && box; i++)
        if (plotted(&runs[i])) {
            const double x = px(&ax, runs[i].gmacs), y = px(&ay, runs[i].acc);
            box[nb][0] = x - 8, box[nb][1] = y - 8, box[nb][2] = x + 8, box[nb][3] = y + 8, nb++;
        }
    for (int i = 0; i < n; i++) {
        if (!plotted(&runs[i])) continue;
        const double x = px(&ax, runs[i].gmacs), y = px(&ay, runs[i].acc), w = tw(runs[i].name, 12);
        char b[512];
        caption(&runs[i], b, sizeof b);
        marker(f, pool_index(runs[i].pool), x, y, "marker", b);
        int k = 0, ok = 0;
        for (; box && k < 8 && !ok; k += !ok) {
            const double bx = x + at[k][0] - w * at[k][2] / 2, by = y + at[k][1];
            ok = bx >= L + 2 && bx + w <= R - 2 && by - 11 >= T + 2 && by + 3 <= B - 2;
            for (int j = 0; j < nb && ok; j++)
                ok = bx + w < box[j][0] || bx > box[j][2] || by + 3 < box[j][1] || by - 11 > box[j][3];
        }
        k = ok ? k : 0;
        const double bx = x + at[k][0] - w * at[k][2] / 2, by = y + at[k][1];
        if (box) box[nb][0] = bx, box[nb][1] = by - 11, box[nb][2] = bx + w, box[nb][3] = by + 3, nb++;
        snprintf(b, sizeof b, "font-size=\"12\" fill=\"#333\" text-anchor=\"%s\"", anchor[(int)at[k][2]]);
        text(f, x + at[k][0], y + at[k][1], b, "%s", runs[i].name);
    }
    free(box);
    fputs("</svg>\n", f);
}

/* One metrics column of R as a line (dashed for test), with dots when few epochs. */
static void series(FILE *f, const run_t *r, int col, const axis *ax, const axis *ay, const char *c, int test)
{
    if (!r->n_ep) return;
    fprintf(f, "<path class=\"curve\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s d=\"", c,
            test ? " stroke-dasharray=\"6 4\"" : "");
    for (int i = 0, pen = 0; i < r->n_ep; i++) {
        const double *row = r->ep + (size_t)M_N * i;
        if (!isfinite(row[col])) pen = 0;
        else fprintf(f, "%c%.1f %.1f", pen++ ? 'L' : 'M', px(ax, row[M_EPOCH]), px(ay, row[col]));
    }
    fputs("\"/>\n", f);
    for (int i = 0; i < r->n_ep && r->n_ep <= 20; i++) {
        const double *row = r->ep + (size_t)M_N * i;
        if (isfinite(row[col]))
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\" stroke=\"%s\"/>\n",
                    px(ax, row[M_EPOCH]), px(ay, row[col]), test ? "white" : c, c);
    }
}

/* Loss (left) and accuracy (right) against epoch, one colour per run. */
static void draw_curves(FILE *f, const run_t *runs, int n, const char *title)
{
    const double pw = 380, T = 92, B = T + 290, L1 = 84, L2 = L1 + pw + 96, LX = L2 + pw + 36;
    double emin = INFINITY, emax = -INFINITY, llo = INFINITY, lhi = -INFINITY, alo = INFINITY,
           ahi = -INFINITY, legw = 90;
    for (int i = 0; i < n; i++) {
        for (int e = 0; e < runs[i].n_ep; e++) {
            const double *row = runs[i].ep + (size_t)M_N * e;
            emin = fmin(emin, row[M_EPOCH]), emax = fmax(emax, row[M_EPOCH]);
            for (int c = M_TRAIN_LOSS; c <= M_TEST_ACC; c++)
                if (isfinite(row[c])) {
                    double *lo = c <= M_TEST_LOSS ? &llo : &alo, *hi = c <= M_TEST_LOSS ? &lhi : &ahi;
                    *lo = fmin(*lo, row[c]), *hi = fmax(*hi, row[c]);
                }
        }
        legw = fmax(legw, 34 + tw(runs[i].name, 13) + (runs[i].n_ep ? 0 : tw(" (no metrics)", 13)));
    }
    if (!isfinite(emax)) emin = 0, emax = 1; /* no metrics at all */
    else if (emax - emin <= 1e-9 * fabs(emax)) emin = emax - fmax(1.0, 1e-6 * fabs(emax)); /* one epoch */
    axis ex1 = lin_axis(emin, emax, L1, L1 + pw, 0, 0, 1), ex2 = ex1; /* from the first epoch */
    ex1.lo = ex2.lo = emin, ex1.hi = ex2.hi = emax, ex2.p0 = L2, ex2.p1 = L2 + pw;
    /* loss on a log scale once it spans over 10x: one diverged run then leaves the
     * others readable */
    const int loss_log = llo >= VMIN && lhi / llo > 10;
    const axis ly = loss_log ? (axis){round125(llo / 1.3, 0), round125(lhi * 1.3, 1), B, T, 0, 1}
                             : lin_axis(llo, lhi, B, T, 1, 0.05, 0);
    axis ay = lin_axis(alo, ahi, B, T, 0, 0.05, 0);
    if (ay.hi > 100) ay.hi = 100;
    const double W = LX + legw + 20, H = fmax(B + 64, T + 22.0 * (n + 3) + 20);
    svg_begin(f, W, H, title ? title : "Training curves",
              "Loss and accuracy per epoch; solid: train, dashed: test");
    frame(f, &ex1, &ly, "Epoch", loss_log ? "Loss (log scale)" : "Loss");
    frame(f, &ex2, &ay, "Epoch", "Accuracy (%)");
    for (int i = 0, k = 0; i < n; i++) {
        const char *c = runs[i].n_ep ? PALETTE[k++ % (int)(sizeof PALETTE / sizeof *PALETTE)] : "#ccc";
        series(f, &runs[i], M_TRAIN_LOSS, &ex1, &ly, c, 0);
        series(f, &runs[i], M_TEST_LOSS, &ex1, &ly, c, 1);
        series(f, &runs[i], M_TRAIN_ACC, &ex2, &ay, c, 0);
        series(f, &runs[i], M_TEST_ACC, &ex2, &ay, c, 1);
        const double y = T + 8 + 22.0 * i;
        fprintf(f, "<path d=\"M%.1f %.1fh24\" stroke=\"%s\" stroke-width=\"3\"/>\n", LX, y, c);
        text(f, LX + 32, y + 4.5, "", "%s%s", runs[i].name, runs[i].n_ep ? "" : " (no metrics)");
    }
    for (int k = 0; k < 2; k++) { /* the line styles */
        const double y = T + 22.0 * (n + k) + 22;
        fprintf(f, "<path d=\"M%.1f %.1fh24\" stroke=\"#555\" stroke-width=\"2\"%s/>\n", LX, y,
                k ? " stroke-dasharray=\"6 4\"" : "");
        text(f, LX + 32, y + 4.5, "fill=\"#555\"", k ? "test" : "train");
    }
    fputs("</svg>\n", f);
}

/* ---- the command ----------------------------------------------------------- */

/* Runs trained on different datasets, input sizes or variants are not comparable:
 * a warning lists every run with its own (what a run does not say is not compared). */
static void warn_mixed(const run_t *runs, int n)
{
    int mixed = 0;
    for (int i = 1; i < n; i++)
        for (int j = 0; j < i; j++) {
            const run_t *a = &runs[i], *b = &runs[j];
            mixed |= (a->dataset[0] && b->dataset[0] && strcmp(a->dataset, b->dataset)) ||
                     (a->in[0] && b->in[0] && (a->in[0] != b->in[0] || a->in[1] != b->in[1])) ||
                     strcmp(a->variant[0] ? a->variant : "none", b->variant[0] ? b->variant : "none");
        }
    if (!mixed) return;
    fputs("dynopool: warning: these runs differ in dataset, input size or variant, so their numbers "
          "are not comparable:\n", stderr);
    for (int i = 0; i < n; i++) {
        const run_t *r = &runs[i];
        char in[32] = "input ?";
        if (r->in[0]) snprintf(in, sizeof in, "input %dx%d", r->in[0], r->in[1]);
        fprintf(stderr, "  %s: %s, %s, variant %s\n", r->name, r->dataset[0] ? r->dataset : "dataset ?", in,
                r->variant[0] ? r->variant : "none");
    }
}

/* mkdir -p DIR */
static int mkdir_p(const char *dir)
{
    char p[4096];
    struct stat st;
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p) return fail("%s: path too long", dir);
    for (char *c = p + 1;; c++)
        if (*c == '/' || !*c) {
            const char keep = *c;
            *c = '\0';
            if (mkdir(p, 0777) && errno != EEXIST) return fail("cannot create %s: %s", p, strerror(errno));
            if (!(*c = keep)) break;
        }
    return stat(p, &st) || !S_ISDIR(st.st_mode) ? fail("%s: not a directory", p) : 0;
}

typedef void draw_fn(FILE *f, const run_t *runs, int n, const char *title);

static int write_svg(const char *dir, const char *file, draw_fn *draw, const run_t *runs, int n,
                     const char *title)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, file) >= (int)sizeof path)
        return fail("%s: path too long", dir);
    const char *shown = strcmp(dir, ".") ? path : file;
    FILE *f = fopen(path, "w");
    if (!f) return fail("cannot write %s: %s", shown, strerror(errno));
    draw(f, runs, n, title);
    const int bad = ferror(f) | (fclose(f) != 0);
    if (bad) return fail("cannot write %s: %s", shown, strerror(errno));
    printf("%s\n", shown);
    return 0;
}

int cmd_plot(int argc, char **argv)
{
    const char *out = ".", *title = NULL;
    const char **dirs = malloc(sizeof *dirs * ((size_t)argc + 1));
    int n = 0, rc = 0;
    if (!dirs) return fail("out of memory");
    for (int i = 0; i < argc && !rc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(PLOT_USAGE, stdout);
            rc = -1;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--title")) {
            if (i + 1 >= argc) rc = cli_usage_error("option '%s' needs a value", a);
            else if (a[1] == 'o') out = argv[++i];
            else title = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            rc = cli_usage_error("plot: unknown option '%s'", a);
        } else {
            dirs[n++] = a;
        }
    }
    if (!rc && !*out) rc = cli_usage_error("-o: %s", "expected a directory, got ''");
    if (!rc && !n) rc = cli_usage_error("plot: %s", "no RUN directory given");
    run_t *runs = rc ? NULL : calloc((size_t)n, sizeof *runs);
    if (!rc && !runs) rc = fail("out of memory");
    for (int i = 0; i < n && !rc; i++) rc = load_run(dirs[i], &runs[i]);
    if (!rc) warn_mixed(runs, n);
    if (!rc) rc = mkdir_p(out);
    if (!rc) rc = write_svg(out, "shapes.svg", draw_shapes, runs, n, title);
    if (!rc) rc = write_svg(out, "tradeoff.svg", draw_tradeoff, runs, n, title);
    if (!rc) rc = write_svg(out, "curves.svg", draw_curves, runs, n, title);
    for (int i = 0; runs && i < n; i++) free(runs[i].ep);
    free(runs);
    free(dirs);
    return rc < 0 ? 0 : rc;
}
