/* Tests for src/common/metric.c: which bucket an observation lands in (bounds are inclusive, as
 * Prometheus' le says), the cumulative text of a histogram, and the attempt counters (a success
 * counts its lag, a failure does not). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "common/metric.h"

static const int64_t LE[] = {1000, 5000, 1000000};
static const struct hl_histo_bounds B = {LE, 3};

struct bucket_case {
    int64_t us;
    size_t bucket; /* the non-cumulative bucket it counts in; 3: above the last bound */
};

static const struct bucket_case bucket_cases[] = {
    {-5, 0},   {0, 0},    {999, 0},     {1000, 0},    {1001, 1},
    {5000, 1}, {5001, 2}, {1000000, 2}, {1000001, 3}, {INT64_C(1) << 40, 3},
};

static void test_buckets(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bucket_cases) / sizeof(bucket_cases[0]); i++) {
        struct hl_histo h;
        memset(&h, 0, sizeof(h));
        hl_histo_observe(&h, &B, bucket_cases[i].us);
        for (size_t k = 0; k <= B.n; k++)
            assert_int_equal(atomic_load(&h.bucket[k]), k == bucket_cases[i].bucket);
        assert_int_equal(hl_histo_count(&h, &B), 1);
        assert_int_equal(atomic_load(&h.sum_us),
                         bucket_cases[i].us < 0 ? 0 : (uint64_t)bucket_cases[i].us);
    }
}

static void test_histo_text(void **state)
{
    (void)state;
    struct hl_histo h;
    memset(&h, 0, sizeof(h));
    hl_histo_observe(&h, &B, 500);     /* 0.0005 s */
    hl_histo_observe(&h, &B, 4000);    /* 0.004 s */
    hl_histo_observe(&h, &B, 2000000); /* 2 s */
    struct hl_buf b;
    hl_buf_init(&b, 4096);
    assert_int_equal(hl_metric_histo(&b, "x_seconds", "route=\"/a\"", &h, &B), 0);
    assert_string_equal(b.p, "x_seconds_bucket{route=\"/a\",le=\"0.001\"} 1\n"
                             "x_seconds_bucket{route=\"/a\",le=\"0.005\"} 2\n"
                             "x_seconds_bucket{route=\"/a\",le=\"1\"} 2\n"
                             "x_seconds_bucket{route=\"/a\",le=\"+Inf\"} 3\n"
                             "x_seconds_sum{route=\"/a\"} 2.004500\n"
                             "x_seconds_count{route=\"/a\"} 3\n");
    hl_buf_reset(&b);
    assert_int_equal(hl_metric_histo(&b, "y", "", &h, &B), 0);
    assert_non_null(strstr(b.p, "y_bucket{le=\"+Inf\"} 3\ny_sum 2.004500\ny_count 3\n"));
    hl_buf_free(&b);
}

static void test_attempt_counts(void **state)
{
    (void)state;
    struct hl_attempt_metrics m;
    memset(&m, 0, sizeof(m));
    hl_attempt_metrics_count(&m, HL_AC_SUCCESS, 2000, 30000);
    hl_attempt_metrics_count(&m, HL_AC_HTTP_5XX, 1000, 50000);
    hl_attempt_metrics_count(&m, HL_AC_TIMEOUT, 5000000, 0);
    hl_attempt_metrics_count(&m, (enum hl_attempt_class)99, 1, 0); /* out of range: error */
    assert_int_equal(atomic_load(&m.by_class[HL_AC_SUCCESS]), 1);
    assert_int_equal(atomic_load(&m.by_class[HL_AC_HTTP_5XX]), 1);
    assert_int_equal(atomic_load(&m.by_class[HL_AC_TIMEOUT]), 1);
    assert_int_equal(atomic_load(&m.by_class[HL_AC_ERROR]), 1);
    assert_int_equal(hl_histo_count(&m.duration, &hl_attempt_duration_bounds), 4);
    assert_int_equal(hl_histo_count(&m.lag, &hl_delivery_lag_bounds), 1);
    assert_int_equal(atomic_load(&m.lag.sum_us), 30000);
    for (int i = 0; i < HL_AC_COUNT; i++)
        assert_non_null(hl_attempt_class_names[i]);
    assert_string_equal(hl_attempt_class_names[HL_AC_HTTP_4XX], "http_4xx");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets),
        cmocka_unit_test(test_histo_text),
        cmocka_unit_test(test_attempt_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
