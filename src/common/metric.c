/* Histograms and attempt counters in memory; their Prometheus text (metric.h). */
#include "common/metric.h"

#include <inttypes.h>

#include "common/err.h"

void hl_histo_observe(struct hl_histo *h, const struct hl_histo_bounds *b, int64_t us)
{
    if (us < 0)
        us = 0;
    size_t i = 0;
    while (i < b->n && us > b->le_us[i])
        i++;
    atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, (uint64_t)us, memory_order_relaxed);
}

uint64_t hl_histo_count(const struct hl_histo *h, const struct hl_histo_bounds *b)
{
    uint64_t n = 0;
    for (size_t i = 0; i <= b->n; i++)
        n += atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
    return n;
}

int hl_metric_head(struct hl_buf *out, const char *name, const char *type, const char *help)
{
    return hl_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

int hl_metric_histo(struct hl_buf *out, const char *name, const char *labels,
                    const struct hl_histo *h, const struct hl_histo_bounds *b)
{
    const char *sep = labels[0] ? "," : "";
    /* The sum is read first: the buckets, read after, hold at least the observations it has. */
    uint64_t sum_us = atomic_load_explicit(&h->sum_us, memory_order_relaxed);
    uint64_t cum = 0;
    int rc = HL_OK;
    for (size_t i = 0; i <= b->n && rc == HL_OK; i++) {
        cum += atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
        if (i < b->n)
            rc = hl_buf_printf(out, "%s_bucket{%s%sle=\"%g\"} %" PRIu64 "\n", name, labels, sep,
                               (double)b->le_us[i] / 1e6, cum);
        else
            rc = hl_buf_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", name, labels, sep,
                               cum);
    }
    const char *open = labels[0] ? "{" : "", *close = labels[0] ? "}" : "";
    if (rc == HL_OK)
        rc = hl_buf_printf(out, "%s_sum%s%s%s %.6f\n%s_count%s%s%s %" PRIu64 "\n", name, open,
                           labels, close, (double)sum_us / 1e6, name, open, labels, close, cum);
    return rc;
}

const char *const hl_attempt_class_names[HL_AC_COUNT] = {
    [HL_AC_SUCCESS] = "success",   [HL_AC_HTTP_4XX] = "http_4xx",
    [HL_AC_HTTP_5XX] = "http_5xx", [HL_AC_HTTP_OTHER] = "http_other",
    [HL_AC_TIMEOUT] = "timeout",   [HL_AC_CONNECT] = "connect",
    [HL_AC_DNS] = "dns",           [HL_AC_TLS] = "tls",
    [HL_AC_BLOCKED] = "blocked",   [HL_AC_ERROR] = "error",
};

/* An attempt takes up to --timeout (5 s by default, at most a minute). */
static const int64_t DURATION_LE[] = {1000,    5000,     10000,    25000,   50000,
                                      100000,  250000,   500000,   1000000, 2500000,
                                      5000000, 10000000, 30000000, 60000000};
const struct hl_histo_bounds hl_attempt_duration_bounds = {DURATION_LE, sizeof(DURATION_LE) /
                                                                            sizeof(DURATION_LE[0])};

/* A first attempt lands in milliseconds; a retried one after the retry schedule's seconds to
 * hours. */
static const int64_t LAG_LE[] = {1000,      5000,       10000,      25000,      50000,    100000,
                                 250000,    500000,     1000000,    2500000,    10000000, 60000000,
                                 300000000, 1800000000, 7200000000, 36000000000};
const struct hl_histo_bounds hl_delivery_lag_bounds = {LAG_LE, sizeof(LAG_LE) / sizeof(LAG_LE[0])};

void hl_attempt_metrics_count(struct hl_attempt_metrics *m, enum hl_attempt_class c,
                              int64_t duration_us, int64_t lag_us)
{
    if ((unsigned)c >= HL_AC_COUNT)
        c = HL_AC_ERROR;
    atomic_fetch_add_explicit(&m->by_class[c], 1, memory_order_relaxed);
    hl_histo_observe(&m->duration, &hl_attempt_duration_bounds, duration_us);
    if (c == HL_AC_SUCCESS)
        hl_histo_observe(&m->lag, &hl_delivery_lag_bounds, lag_us);
}
