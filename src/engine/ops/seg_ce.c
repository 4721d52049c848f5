/* seg_ce.c — per-pixel softmax cross-entropy with an ignore label, the loss of
 * semantic segmentation, its argmax and the split's metrics (confusion matrix,
 * pixel accuracy, mean IoU; below): PyTorch's CrossEntropyLoss(ignore_index=255) on
 * (n, k, h, w) scores, as the official HRNet code's criterion uses it.
 *
 *   logits (n, k, h, w) in any layout (dp_act), labels (n, h, w) in [0, k) or
 *   DP_SEG_IGNORE (255).  V = the pixels whose label is not ignored.
 *   loss    = (1/|V|) sum over p in V of [ logsumexp(logits_p) - logits_p[label_p] ]
 *   dlogits = (softmax(logits_p) - onehot(label_p)) / |V| on V, 0 on ignored pixels
 *             and padded lanes; dlogits has logits' layout
 *   |V| = 0 (every pixel ignored): loss 0 and dlogits 0 (PyTorch returns NaN).
 * No parameters, no MACs.  Each pixel in double; the sum over pixels is a
 * double sum in a fixed order of pixel chunks (the same on any thread count). */
#include <math.h>
#include <stdlib.h>

#include "engine/engine.h"

#define CHUNK 4096 /* pixels per partial sum */

int dp_seg_ce(const dp_act *logits, const int *labels, double *loss, long long *valid, float *dlogits)
{
    if (!logits || !logits->data || !labels || !loss) return DP_ERR_NULL;
    const int n = logits->n, k = logits->c, B = logits->blk;
    if (n <= 0 || k <= 0 || logits->h <= 0 || logits->w <= 0) return DP_ERR_SIZE;
    const size_t hw = (size_t)logits->h * logits->w, np = (size_t)n * hw;
    long long nv = 0;
    for (size_t p = 0; p < np; p++) {
        if (labels[p] == DP_SEG_IGNORE) continue;
        if (labels[p] < 0 || labels[p] >= k) return DP_ERR_ARG;
        nv++;
    }
    const int cb = dp_cpad(k, B) / B;
    const size_t nchunks = (np + CHUNK - 1) / CHUNK;
    double *part = malloc(sizeof(double) * (nchunks ? nchunks : 1));
    if (!part) return DP_ERR_NOMEM;
    const double inv = nv ? 1.0 / (double)nv : 0.0;
#pragma omp parallel for schedule(static)
    for (size_t ch = 0; ch < nchunks; ch++) {
        double acc = 0.0;
        const size_t end = (ch + 1) * CHUNK < np ? (ch + 1) * CHUNK : np;
        for (size_t p = ch * CHUNK; p < end; p++) {
            const size_t in = p / hw, q = p % hw;
            /* channel j of pixel p: z[(j / B) * hw * B + j % B] */
            const float *z = logits->data + in * cb * hw * B + q * B;
            float *d = dlogits ? dlogits + in * cb * hw * B + q * B : NULL;
            const int lab = labels[p];
            if (lab == DP_SEG_IGNORE) {
                if (d)
                    for (int j = 0; j < cb * B; j++) d[(size_t)(j / B) * hw * B + j % B] = 0.0f;
                continue;
            }
            double m = z[0];
            for (int j = 1; j < k; j++) {
                const double v = z[(size_t)(j / B) * hw * B + j % B];
                m = v > m ? v : m;
            }
            double s = 0.0;
            for (int j = 0; j < k; j++) s += exp(z[(size_t)(j / B) * hw * B + j % B] - m);
            const double lse = m + log(s);
            acc += lse - z[(size_t)(lab / B) * hw * B + lab % B];
            if (d)
                for (int j = 0; j < cb * B; j++) {
                    const size_t o = (size_t)(j / B) * hw * B + j % B;
                    d[o] = j < k ? (float)((exp(z[o] - lse) - (j == lab)) * inv) : 0.0f;
                }
        }
        part[ch] = acc;
    }
    double total = 0.0;
    for (size_t ch = 0; ch < nchunks; ch++) total += part[ch];
    free(part);
    *loss = total * inv;
    if (valid) *valid = nv;
    return DP_OK;
}

int dp_seg_argmax(const dp_act *logits, int *pred)
{
    if (!logits || !logits->data || !pred) return DP_ERR_NULL;
    const int k = logits->c, B = logits->blk, cb = dp_cpad(k, B) / B;
    const size_t hw = (size_t)logits->h * logits->w, np = (size_t)logits->n * hw;
#pragma omp parallel for schedule(static)
    for (size_t p = 0; p < np; p++) {
        const float *z = logits->data + (p / hw) * cb * hw * B + (p % hw) * B;
        int best = 0;
        for (int j = 1; j < k; j++)
            if (z[(size_t)(j / B) * hw * B + j % B] > z[(size_t)(best / B) * hw * B + best % B]) best = j;
        pred[p] = best;
    }
    return DP_OK;
}

/* ---- the metrics over a split (the official HRNet code's get_confusion_matrix and
 * validate): conf[t * classes + p] counts the pixels of true class t predicted p,
 * ignored pixels skipped; pixel accuracy = trace / total; IoU_k = tp_k / max(1,
 * row_k + col_k - tp_k), and the mean over every class (one absent from both the
 * truth and the predictions counts 0, as there). ---- */

int dp_seg_confusion_add(long long *conf, int classes, const int *labels, const int *pred, size_t n)
{
    if (!conf || !labels || !pred) return DP_ERR_NULL;
    if (classes <= 0) return DP_ERR_SIZE;
    for (size_t i = 0; i < n; i++) {
        if (labels[i] == DP_SEG_IGNORE) continue;
        if (labels[i] < 0 || labels[i] >= classes || pred[i] < 0 || pred[i] >= classes) return DP_ERR_ARG;
    }
    for (size_t i = 0; i < n; i++)
        if (labels[i] != DP_SEG_IGNORE) conf[(size_t)labels[i] * classes + pred[i]]++;
    return DP_OK;
}

int dp_seg_scores(const long long *conf, int classes, double *pixel_acc, double *miou, double *iou)
{
    if (!conf) return DP_ERR_NULL;
    if (classes <= 0) return DP_ERR_SIZE;
    long long tp_all = 0, total = 0;
    double sum = 0.0;
    for (int k = 0; k < classes; k++) {
        long long row = 0, col = 0;
        for (int j = 0; j < classes; j++) row += conf[(size_t)k * classes + j], col += conf[(size_t)j * classes + k];
        const long long tp = conf[(size_t)k * classes + k], uni = row + col - tp;
        const double v = (double)tp / (double)(uni > 1 ? uni : 1);
        if (iou) iou[k] = v;
        sum += v;
        tp_all += tp, total += row;
    }
    if (pixel_acc) *pixel_acc = total ? (double)tp_all / (double)total : 0.0;
    if (miou) *miou = sum / classes;
    return DP_OK;
}
