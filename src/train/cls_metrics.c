/* src/train/cls_metrics.c — classification metrics from gold and predicted
 * label indices: accuracy, per-class precision / recall / F1, macro averages,
 * the confusion matrix (gold x predicted), and the report `ctune classify`
 * prints (include/ctune/classify.h, docs/classify.md).
 *
 * Conventions (scikit-learn's defaults): a ratio whose denominator is 0 is 0
 * (precision of a class never predicted, recall of a class with no gold
 * example); the macro averages are over the classes that occur in gold or in
 * the predictions, as sklearn's average='macro' without an explicit labels=.
 *
 * Left out: micro/weighted averages (micro = accuracy for single-label data),
 * probabilities (ROC/AUC, calibration), multi-label metrics.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "ctune/classify.h"

void ct_cls_metrics_deinit(ct_cls_metrics *m) {
    if (!m) return;
    free(m->confusion);
    free(m->support);
    free(m->predicted);
    free(m->precision);
    memset(m, 0, sizeof *m);
}

static double ratio(size_t a, size_t b) { return b ? (double)a / (double)b : 0.0; }

ct_status ct_cls_metrics_compute(const int *gold, const int *pred, size_t n, int K, ct_cls_metrics *m) {
    if (!m) return ct__err(CT_ERR_ARG, "ct_cls_metrics_compute: m is NULL");
    memset(m, 0, sizeof *m);
    if (K < 1) return ct__err(CT_ERR_ARG, "ct_cls_metrics_compute: %d labels", K);
    if (n && (!gold || !pred)) return ct__err(CT_ERR_ARG, "ct_cls_metrics_compute: %s is NULL", gold ? "pred" : "gold");
    size_t k = (size_t)K, kk;
    if (ct__mul_ovf(k, k, &kk)) return ct__err(CT_ERR_RANGE, "ct_cls_metrics_compute: %d labels", K);
    m->n_labels = K;
    m->confusion = ct__calloc(kk, sizeof *m->confusion);
    m->support = ct__calloc(k, sizeof *m->support);
    m->predicted = ct__calloc(k, sizeof *m->predicted);
    m->precision = ct__calloc(3 * k, sizeof *m->precision); /* precision | recall | f1 in one block */
    if (!m->confusion || !m->support || !m->predicted || !m->precision) {
        ct_cls_metrics_deinit(m);
        return ct__err(CT_ERR_NOMEM, "classify metrics: out of memory (%d labels)", K);
    }
    m->recall = m->precision + k;
    m->f1 = m->precision + 2 * k;
    for (size_t i = 0; i < n; i++) {
        if (gold[i] < 0 || gold[i] >= K || pred[i] < 0 || pred[i] >= K) {
            int g = gold[i] < 0 || gold[i] >= K;
            ct_status st = ct__err(CT_ERR_RANGE, "classify metrics: example %zu: %s label %d is outside [0, %d)", i,
                                   g ? "gold" : "predicted", g ? gold[i] : pred[i], K);
            ct_cls_metrics_deinit(m);
            return st;
        }
        m->confusion[(size_t)gold[i] * k + (size_t)pred[i]]++;
        m->support[gold[i]]++;
        m->predicted[pred[i]]++;
        m->correct += gold[i] == pred[i];
    }
    m->n = n;
    m->accuracy = ratio(m->correct, n);
    double sp = 0, sr = 0, sf = 0;
    for (size_t c = 0; c < k; c++) {
        size_t tp = m->confusion[c * k + c];
        double p = ratio(tp, m->predicted[c]), r = ratio(tp, m->support[c]);
        m->precision[c] = p;
        m->recall[c] = r;
        m->f1[c] = p + r > 0 ? 2 * p * r / (p + r) : 0.0;
        if (m->support[c] || m->predicted[c]) {
            m->n_classes_averaged++;
            sp += p;
            sr += r;
            sf += m->f1[c];
        }
    }
    if (m->n_classes_averaged) {
        m->macro_precision = sp / m->n_classes_averaged;
        m->macro_recall = sr / m->n_classes_averaged;
        m->macro_f1 = sf / m->n_classes_averaged;
    }
    return CT_OK;
}

/* ---- the report -------------------------------------------------------------------------- */

typedef struct { char *buf; size_t cap, n; } out; /* n: the full length so far (may exceed cap) */

static void put(out *o, const char *fmt, ...) CT__PRINTF(2, 3);
static void put(out *o, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *dst = o->n < o->cap ? o->buf + o->n : NULL;
    int w = vsnprintf(dst, dst ? o->cap - o->n : 0, fmt, ap);
    va_end(ap);
    if (w > 0) o->n += (size_t)w;
}

enum { NAME_MAX_W = 24, COL_MAX_W = 12 };

static const char *name_of(const char *const *labels, int i, char *tmp, size_t cap) {
    if (labels && labels[i]) return labels[i];
    snprintf(tmp, cap, "%d", i);
    return tmp;
}

static int min_i(int a, int b) { return a < b ? a : b; }

size_t ct_cls_metrics_format(const ct_cls_metrics *m, const char *const *labels, char *buf, size_t cap) {
    out o = {buf, cap, 0};
    if (cap) buf[0] = 0;
    if (!m || !m->confusion) return 0;
    int K = m->n_labels;
    char tmp[32];
    int nw = 5, cw = 1; /* name column ("label"), matrix cell width */
    size_t maxc = 0;
    for (int i = 0; i < K; i++) {
        int l = (int)strlen(name_of(labels, i, tmp, sizeof tmp));
        if (l > nw) nw = min_i(NAME_MAX_W, l);
    }
    for (size_t i = 0; i < (size_t)K * (size_t)K; i++) if (m->confusion[i] > maxc) maxc = m->confusion[i];
    cw = snprintf(tmp, sizeof tmp, "%zu", maxc);
    for (int i = 0; i < K; i++) {
        int l = (int)strlen(name_of(labels, i, tmp, sizeof tmp));
        if (l > cw) cw = min_i(COL_MAX_W, l);
    }
    put(&o, "accuracy %.4f (%zu of %zu), macro-F1 %.4f, macro precision %.4f, macro recall %.4f (over %d classes)\n",
        m->accuracy, m->correct, m->n, m->macro_f1, m->macro_precision, m->macro_recall, m->n_classes_averaged);
    put(&o, "%-*s  precision  recall      f1  support  predicted\n", nw, "label");
    for (int c = 0; c < K; c++)
        put(&o, "%-*.*s  %9.4f  %6.4f  %6.4f  %7zu  %9zu\n", nw, nw, name_of(labels, c, tmp, sizeof tmp),
            m->precision[c], m->recall[c], m->f1[c], m->support[c], m->predicted[c]);
    put(&o, "confusion matrix (rows: gold, columns: predicted)\n%-*s", nw, "");
    for (int c = 0; c < K; c++) put(&o, "  %*.*s", cw, cw, name_of(labels, c, tmp, sizeof tmp));
    put(&o, "\n");
    for (int g = 0; g < K; g++) {
        put(&o, "%-*.*s", nw, nw, name_of(labels, g, tmp, sizeof tmp));
        for (int p = 0; p < K; p++) put(&o, "  %*zu", cw, m->confusion[(size_t)g * (size_t)K + (size_t)p]);
        put(&o, "\n");
    }
    return o.n;
}

ct_status ct_cls_metrics_print(const ct_cls_metrics *m, const char *const *labels, FILE *f) {
    if (!f) return ct__err(CT_ERR_ARG, "ct_cls_metrics_print: f is NULL");
    size_t n = ct_cls_metrics_format(m, labels, NULL, 0);
    char *buf = ct__malloc(n + 1);
    if (!buf) return ct__err(CT_ERR_NOMEM, "classify metrics: out of memory (%zu bytes)", n + 1);
    ct_cls_metrics_format(m, labels, buf, n + 1);
    size_t w = fwrite(buf, 1, n, f);
    free(buf);
    return w == n ? CT_OK : ct__err(CT_ERR_IO, "classify metrics: write error");
}
