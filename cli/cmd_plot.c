/* cmd_plot.c — `dynopool plot`: the paper's Figure 5.1 (feature-map shapes) and
 * Figure 5.2 (accuracy against GMACs) and the training curves of runs written by
 * `dynopool train`, as SVG written by hand. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "common.h"
#include "run.h"
#include "seg_train.h"

static const char *const PLOT_USAGE =
    "Usage: dynopool plot RUN [RUN...] [-o DIR] [--title T]\n"
    "\n"
    "Draws training runs (directories written by 'dynopool train') as three SVG\n"
    "files in DIR and prints their paths:\n"
    "  shapes.svg    the input and the feature map after every resizing stage, to\n"
    "                scale, one row per run (the paper's Figure 5.1)\n"
    "  tradeoff.svg  test accuracy (segmentation: validation mIoU) against GMACs per image,\n"
    "                one marker per run (Figure 5.2); GMACs on a log scale when they span over 10x\n"
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

/* Values drawn: finite and at most VMAX in size (so that no span overflows; what
 * run.c keeps of the metrics); a log axis starts at VMIN or above (so that its
 * decades stay few). */
#define VMAX RUN_VMAX
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

static void caption(const run_view *r, char *buf, size_t n)
{
    char acc[32] = "?", gm[32] = "?";
    if (isfinite(r->acc)) snprintf(acc, sizeof acc, "%.1f", r->acc);
    if (isfinite(r->gmacs)) snprintf(gm, sizeof gm, "%.3g", r->gmacs);
    snprintf(buf, n, "%s / %s / %s: %s%s%%, %s GMACs%s", r->model[0] ? r->model : "?",
             r->pool[0] ? r->pool : "?", r->variant[0] ? r->variant : "none", r->seg ? "mIoU " : "", acc, gm,
             r->finished ? "" : " (unfinished)");
}

/* Map C of run R, (h, w): c = 0 is the input, c = k the output of stage k. */
static const int *hw(const run_view *r, int c) { return c ? r->sizes[c - 1] : r->in; }

static int tallest(const run_view *r)
{
    int m = 1;
    for (int c = 0; c <= r->n_sizes; c++) m = hw(r, c)[0] > m ? hw(r, c)[0] : m;
    return m;
}

#define SHAPES_X0 28.0 /* shapes.svg's left margin */

/* Row i of shapes.svg, run r, from y on: its caption, then its maps in the
 * columns at cx (widths colw, gap apart) at s pixels per cell; returns the next
 * row's y. */
static double shape_row(FILE *f, const run_view *r, int i, const double *cx, const double *colw, double s,
                        double gap, double y)
{
    char b[512], lab[32];
    const char *col = POOL_COLOR[pool_index(r->pool)];
    caption(r, b, sizeof b);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\"><tspan font-weight=\"bold\" font-size=\"14\">", SHAPES_X0, y + 16);
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
    return top + band + 46;
}

/* Figure 5.1: one row per run, every map a rectangle at the same pixels per cell. */
static void draw_shapes(FILE *f, const run_view *runs, int n, const char *title)
{
    int ncol = 1, maxdim = 1, same_data = 1;
    for (int i = 0; i < n; i++) {
        ncol = runs[i].n_sizes + 1 > ncol ? runs[i].n_sizes + 1 : ncol;
        for (int c = 0; c <= runs[i].n_sizes; c++)
            for (int k = 0; k < 2; k++) maxdim = hw(&runs[i], c)[k] > maxdim ? hw(&runs[i], c)[k] : maxdim;
        same_data &= !strcmp(runs[i].dataset, runs[0].dataset);
    }
    const double s = fmin(8, fmax(0.2, 168.0 / maxdim)), gap = 36, x0 = SHAPES_X0;
    double colw[RUN_MAX_STAGES + 1], cx[RUN_MAX_STAGES + 1], width = 0, height = 104;
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
    for (int i = 0; i < n; i++) y = shape_row(f, &runs[i], i, cx, colw, s, gap, y);
    fputs("</svg>\n", f);
}

static int plotted(const run_view *r) { return drawable(r->acc) && r->gmacs >= VMIN && r->gmacs <= VMAX; }

/* The markers of the plotted runs on axes ax, ay, each with its run's name beside
 * it.  Labels: the first of eight places around the marker that stays in the plot
 * and overlaps no marker and no label placed before; boxes are x0, y0, x1, y1. */
static void markers(FILE *f, const run_view *runs, int n, const axis *ax, const axis *ay)
{
    const double L = ax->p0, R = ax->p1, T = ay->p1, B = ay->p0;
    static const double at[][3] = {{10, 4, 0}, {-10, 4, 2}, {0, -12, 1}, {0, 22, 1},
                                   {10, -10, 0}, {10, 18, 0}, {-10, -10, 2}, {-10, 18, 2}};
    static const char *const anchor[] = {"start", "middle", "end"};
    double (*box)[4] = calloc((size_t)2 * n + 1, sizeof *box);
    int nb = 0;
    for (int i = 0; i < n && box; i++)
        if (plotted(&runs[i])) {
            const double x = px(ax, runs[i].gmacs), y = px(ay, runs[i].acc);
            box[nb][0] = x - 8, box[nb][1] = y - 8, box[nb][2] = x + 8, box[nb][3] = y + 8, nb++;
        }
    for (int i = 0; i < n; i++) {
        if (!plotted(&runs[i])) continue;
        const double x = px(ax, runs[i].gmacs), y = px(ay, runs[i].acc), w = tw(runs[i].name, 12);
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
}

/* Figure 5.2: test accuracy against GMACs, one marker per run. */
static void draw_tradeoff(FILE *f, const run_view *runs, int n, const char *title)
{
    const double W = 760, H = 540, L = 84, R = W - 40, T = 108, B = H - 70;
    double glo = INFINITY, ghi = -INFINITY, alo = INFINITY, ahi = -INFINITY;
    int present[4] = {0}, n_seg = 0, n_cls = 0;
    for (int i = 0; i < n; i++) {
        const run_view *r = &runs[i];
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
        r->seg ? n_seg++ : n_cls++;
    }
    /* a segmentation run's marker is its validation mIoU */
    const char *what = n_seg && n_cls ? "Test accuracy or mIoU" : n_seg ? "Validation mIoU" : "Test accuracy";
    const int lg = ghi / glo > 10;
    axis ax = lin_axis(glo, ghi, L, R, 0, 0.1, 0), ay = lin_axis(alo, ahi, B, T, 0, 0.12, 0);
    if (lg) ax = (axis){round125(glo / 1.3, 0), round125(ghi * 1.3, 1), L, R, 0, 1};
    ax.lo = fmax(ax.lo, 0), ay.hi = fmin(ay.hi, 100); /* no negative cost, no accuracy over 100% */
    char sub[96], ylab[48];
    snprintf(sub, sizeof sub, "%s (last epoch) against GMACs per image, one marker per run", what);
    snprintf(ylab, sizeof ylab, "%s (%%)", n_seg && !n_cls ? "mIoU" : n_seg ? "Accuracy or mIoU" : "Test accuracy");
    svg_begin(f, W, H, title ? title : "Accuracy against cost", sub);
    double lx = L;
    for (int p = 0; p < 4; p++)
        if (present[p]) {
            marker(f, p, lx + 7, 82, "key", POOL_NAME[p]);
            text(f, lx + 20, 86.5, "", "%s", POOL_NAME[p]);
            lx += 44 + tw(POOL_NAME[p], 13);
        }
    frame(f, &ax, &ay, lg ? "GMACs per image (log scale)" : "GMACs per image", ylab);
    markers(f, runs, n, &ax, &ay);
    fputs("</svg>\n", f);
}

/* One metrics column of R as a line (dashed for test), with dots when few epochs. */
static void series(FILE *f, const run_view *r, int col, const axis *ax, const axis *ay, const char *c, int test)
{
    if (!r->n_ep) return;
    fprintf(f, "<path class=\"curve\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s d=\"", c,
            test ? " stroke-dasharray=\"6 4\"" : "");
    for (int i = 0, pen = 0; i < r->n_ep; i++) {
        const double *row = r->ep + (size_t)RUN_COLS * i;
        if (!isfinite(row[col])) pen = 0;
        else fprintf(f, "%c%.1f %.1f", pen++ ? 'L' : 'M', px(ax, row[RUN_EPOCH]), px(ay, row[col]));
    }
    fputs("\"/>\n", f);
    for (int i = 0; i < r->n_ep && r->n_ep <= 20; i++) {
        const double *row = r->ep + (size_t)RUN_COLS * i;
        if (isfinite(row[col]))
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\" stroke=\"%s\"/>\n",
                    px(ax, row[RUN_EPOCH]), px(ay, row[col]), test ? "white" : c, c);
    }
}

/* Loss (left) and accuracy (right) against epoch, one colour per run. */
static void draw_curves(FILE *f, const run_view *runs, int n, const char *title)
{
    const double pw = 380, T = 92, B = T + 290, L1 = 84, L2 = L1 + pw + 96, LX = L2 + pw + 36;
    double emin = INFINITY, emax = -INFINITY, llo = INFINITY, lhi = -INFINITY, alo = INFINITY,
           ahi = -INFINITY, legw = 90;
    for (int i = 0; i < n; i++) {
        for (int e = 0; e < runs[i].n_ep; e++) {
            const double *row = runs[i].ep + (size_t)RUN_COLS * e;
            emin = fmin(emin, row[RUN_EPOCH]), emax = fmax(emax, row[RUN_EPOCH]);
            for (int c = RUN_TRAIN_LOSS; c <= RUN_TEST_ACC; c++)
                if (isfinite(row[c])) {
                    double *lo = c <= RUN_TEST_LOSS ? &llo : &alo, *hi = c <= RUN_TEST_LOSS ? &lhi : &ahi;
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
        series(f, &runs[i], RUN_TRAIN_LOSS, &ex1, &ly, c, 0);
        series(f, &runs[i], RUN_TEST_LOSS, &ex1, &ly, c, 1);
        series(f, &runs[i], RUN_TRAIN_ACC, &ex2, &ay, c, 0);
        series(f, &runs[i], RUN_TEST_ACC, &ex2, &ay, c, 1);
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
static void warn_mixed(const run_view *runs, int n)
{
    int mixed = 0;
    for (int i = 1; i < n; i++)
        for (int j = 0; j < i; j++) {
            const run_view *a = &runs[i], *b = &runs[j];
            mixed |= (a->dataset[0] && b->dataset[0] && strcmp(a->dataset, b->dataset)) ||
                     (a->in[0] && b->in[0] && (a->in[0] != b->in[0] || a->in[1] != b->in[1])) ||
                     strcmp(a->variant[0] ? a->variant : "none", b->variant[0] ? b->variant : "none");
        }
    if (!mixed) return;
    fputs("dynopool: warning: these runs differ in dataset, input size or variant, so their numbers "
          "are not comparable:\n", stderr);
    for (int i = 0; i < n; i++) {
        const run_view *r = &runs[i];
        char in[32] = "input ?";
        if (r->in[0]) snprintf(in, sizeof in, "input %dx%d", r->in[0], r->in[1]);
        fprintf(stderr, "  %s: %s, %s, variant %s\n", r->name, r->dataset[0] ? r->dataset : "dataset ?", in,
                r->variant[0] ? r->variant : "none");
    }
}

typedef void draw_fn(FILE *f, const run_view *runs, int n, const char *title);

static int write_svg(const char *dir, const char *file, draw_fn *draw, const run_view *runs, int n,
                     const char *title)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, file) >= (int)sizeof path)
        return cli_fail("%s: path too long", dir);
    const char *shown = strcmp(dir, ".") ? path : file;
    FILE *f = fopen(path, "w");
    if (!f) return cli_fail("cannot write %s: %s", shown, strerror(errno));
    draw(f, runs, n, title);
    const int bad = ferror(f) | (fclose(f) != 0);
    if (bad) return cli_fail("cannot write %s: %s", shown, strerror(errno));
    printf("%s\n", shown);
    return 0;
}

/* A segmentation run's own pictures (PLOT_USAGE): sizes-NAME.svg, masks-NAME.png;
 * 0, or 1 after saying why. */
static int plot_seg(const char *out, const char *dir, const run_view *r, const char *title)
{
    enum { ROWS = 12, SAMPLES = 4 };
    run_view rows[ROWS];
    char file[512], path[4400], ck[4200], ids[1024], head[400];
    const int m = r->n_ep < ROWS ? r->n_ep : ROWS;
    for (int k = 0; k < m; k++) { /* the first and the last epoch, evenly between */
        const int e = m > 1 ? (int)floor((double)k * (r->n_ep - 1) / (m - 1) + 0.5) : 0;
        const double *row = r->ep + (size_t)RUN_COLS * e;
        run_view *v = &rows[k];
        memset(v, 0, sizeof *v);
        snprintf(v->name, sizeof v->name, "epoch %.0f", row[RUN_EPOCH]);
        memcpy(v->model, r->model, sizeof v->model), memcpy(v->pool, r->pool, sizeof v->pool);
        memcpy(v->variant, r->variant, sizeof v->variant), memcpy(v->dataset, r->dataset, sizeof v->dataset);
        memcpy(v->in, r->in, sizeof v->in);
        v->n_sizes = r->ep_n_sizes[e];
        memcpy(v->sizes, r->ep_sizes[e], sizeof v->sizes);
        v->acc = row[RUN_MIOU], v->gmacs = row[RUN_GMACS], v->finished = 1, v->seg = 1;
    }
    snprintf(head, sizeof head, "%s: feature maps by epoch", r->name);
    snprintf(file, sizeof file, "sizes-%s.svg", r->name);
    if (m && write_svg(out, file, draw_shapes, rows, m, title ? title : head)) return 1;
    snprintf(ck, sizeof ck, "%s/%s", dir, RUN_BEST);
    if (access(ck, F_OK)) snprintf(ck, sizeof ck, "%s/%s", dir, RUN_CHECKPOINT);
    if (access(ck, F_OK)) {
        fprintf(stderr, "dynopool: warning: %s: no checkpoint yet, no masks-%s.png\n", dir, r->name);
        return 0;
    }
    if (!r->data[0]) return cli_fail("%s/run.json names no data folder: cannot draw masks-%s.png", dir, r->name);
    snprintf(file, sizeof file, "masks-%s.png", r->name);
    snprintf(path, sizeof path, "%s/%s", out, file);
    if (seg_masks_png(ck, r->data, SAMPLES, path, ids, sizeof ids)) return 1;
    printf("%s  (input | truth | prediction: val images %s of %s, %s)\n", strcmp(out, ".") ? path : file, ids,
           r->data, ck);
    return 0;
}

/* -o: a folder's name, not "". */
static int parse_dir(const char *v, void *dst)
{
    if (!*v) return -1;
    *(const char **)dst = v;
    return 0;
}

int cmd_plot(int argc, char **argv)
{
    const char *out = ".", *title = NULL;
    const char **dirs = malloc(sizeof *dirs * ((size_t)argc + 1));
    if (!dirs) return cli_fail("out of memory");
    cli_opt opts[] = {
        {"-o", CLI_PARSE, &out, .want = "a directory", .parse = parse_dir},
        {"--title", CLI_TEXT, .dst = &title},
    };
    cli_cmd c = {"plot", PLOT_USAGE, 0, .opts = opts, .n_opts = 2, .args = dirs};
    int rc = cli_parse(&c, argc, argv), n = c.n_args;
    if (!rc && !n) rc = cli_usage("plot", "%s", "no RUN directory given");
    run_view *runs = rc ? NULL : calloc((size_t)n, sizeof *runs);
    if (!rc && !runs) rc = cli_fail("out of memory");
    for (int i = 0; i < n && !rc; i++) rc = run_view_load(dirs[i], &runs[i]);
    if (!rc) warn_mixed(runs, n);
    if (!rc && cli_mkdir_p(out)) rc = cli_fail("cannot create %s: %s", out, strerror(errno));
    if (!rc) rc = write_svg(out, "shapes.svg", draw_shapes, runs, n, title);
    if (!rc) rc = write_svg(out, "tradeoff.svg", draw_tradeoff, runs, n, title);
    if (!rc) rc = write_svg(out, "curves.svg", draw_curves, runs, n, title);
    for (int i = 0; !rc && i < n; i++)
        if (runs[i].seg) rc = plot_seg(out, dirs[i], &runs[i], title);
    for (int i = 0; runs && i < n; i++) run_view_free(&runs[i]);
    free(runs);
    free(dirs);
    return rc == CLI_HELP ? 0 : rc;
}
