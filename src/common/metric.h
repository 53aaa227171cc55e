/* In-memory metrics in the Prometheus text format: histograms with fixed buckets, and the
 * attempt counters the dispatcher keeps and /metrics shows.
 *
 * Every count is an atomic that writers add to with relaxed order: a hot path (the transfer
 * thread, an HTTP thread) pays one uncontended atomic add per figure and never takes a lock. A
 * scrape reads them while they move, so a histogram's buckets, sum and count may be a few
 * observations apart; each one only grows, which is all Prometheus asks of a counter.
 */
#ifndef HL_METRIC_H
#define HL_METRIC_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* Most bucket bounds a histogram has (+Inf is implied). */
#define HL_HISTO_MAX 16

/* The upper bounds of a histogram's buckets, in microseconds, ascending (at most HL_HISTO_MAX). */
struct hl_histo_bounds {
    const int64_t *le_us;
    size_t n;
};

/* A histogram's counts. Zeroed memory is an empty histogram. */
struct hl_histo {
    _Atomic uint64_t bucket[HL_HISTO_MAX + 1]; /* per bucket, not cumulative; [n]: above the last */
    _Atomic uint64_t sum_us;
};

/* Counts one observation of us microseconds (negative counts as 0). */
void hl_histo_observe(struct hl_histo *h, const struct hl_histo_bounds *b, int64_t us);
/* The observations counted so far. */
uint64_t hl_histo_count(const struct hl_histo *h, const struct hl_histo_bounds *b);

/* Writes the # HELP and # TYPE lines of metric name (type: "counter", "gauge", "histogram").
 * Returns 0 or the error of hl_buf_printf. */
int hl_metric_head(struct hl_buf *out, const char *name, const char *type, const char *help);
/* Writes the samples of histogram h in seconds: name_bucket (cumulative, le="+Inf" last),
 * name_sum and name_count, each with labels (`k="v",...` without braces, or "" for none). */
int hl_metric_histo(struct hl_buf *out, const char *name, const char *labels,
                    const struct hl_histo *h, const struct hl_histo_bounds *b);

/* How an attempt ended, as hookline_attempts_total{outcome} counts it: a bounded set. */
enum hl_attempt_class {
    HL_AC_SUCCESS,    /* a 2xx in time */
    HL_AC_HTTP_4XX,   /* the receiver answered 4xx (410 included) */
    HL_AC_HTTP_5XX,   /* the receiver answered 5xx */
    HL_AC_HTTP_OTHER, /* any other answer: 1xx, a 3xx (redirects are not followed) */
    HL_AC_TIMEOUT,    /* no complete answer within the timeout */
    HL_AC_CONNECT,    /* the connection was refused or could not be made */
    HL_AC_DNS,        /* the host name did not resolve */
    HL_AC_TLS,        /* the TLS handshake or the certificate failed */
    HL_AC_BLOCKED,    /* the address guard refused the address (production mode) */
    HL_AC_ERROR,      /* anything else: a broken connection, signing, starting the transfer */
    HL_AC_COUNT
};

/* The outcome label of each class ("success", "http_4xx", ...). */
extern const char *const hl_attempt_class_names[HL_AC_COUNT];

/* What a dispatcher counts of its attempts. Zeroed memory is a fresh set. */
struct hl_attempt_metrics {
    _Atomic uint64_t by_class[HL_AC_COUNT];
    struct hl_histo duration; /* every attempt: connect to the end of the answer */
    struct hl_histo lag;      /* successes: the delivery's creation to its success */
};

/* The bounds of hl_attempt_metrics' duration and lag histograms. */
extern const struct hl_histo_bounds hl_attempt_duration_bounds, hl_delivery_lag_bounds;

/* Counts one attempt of class c that took duration_us; a success also counts its lag_us (from
 * the delivery's creation). */
void hl_attempt_metrics_count(struct hl_attempt_metrics *m, enum hl_attempt_class c,
                              int64_t duration_us, int64_t lag_us);

#endif
