/* Tests for src/api/limits.c: the per-app request buckets (--api-rate, --api-burst), driven with
 * explicit times. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "api/limits.h"
#include "common/err.h"

/* One take: of app's bucket at ms; want the wait it answers (0: admitted). */
struct take {
    int64_t app, ms, wait;
};

struct bucket_case {
    const char *name;
    int64_t rate, burst;
    struct take takes[8];
    int n;
};

static const struct bucket_case cases[] = {
    {"the burst, then one per 1/rate",
     2,
     3,
     {{1, 0, 0}, {1, 0, 0}, {1, 0, 0}, {1, 0, 500}, {1, 499, 1}, {1, 500, 0}, {1, 500, 500}},
     7},
    {"each app its own bucket", 1, 1, {{1, 0, 0}, {1, 0, 1000}, {2, 0, 0}, {2, 1, 999}}, 4},
    {"a bucket refills up to the burst only",
     1000,
     2,
     {{1, 0, 0}, {1, 0, 0}, {1, 0, 1}, {1, 60000, 0}, {1, 60000, 0}, {1, 60000, 1}},
     6},
    {"rate 0: no limit", 0, 1, {{1, 0, 0}, {1, 0, 0}, {1, 0, 0}, {1, 0, 0}}, 4},
};

static void test_buckets(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct bucket_case *c = &cases[i];
        struct hl_api_config cfg = {.api_rate = c->rate, .api_burst = c->burst};
        struct hl_limits *l = NULL;
        assert_int_equal(hl_limits_new(&cfg, &l), HL_OK);
        for (int k = 0; k < c->n; k++) {
            int64_t got = hl_limits_take(l, c->takes[k].app, c->takes[k].ms);
            if (got != c->takes[k].wait)
                fail_msg("%s: take %d: wait %lld, want %lld", c->name, k, (long long)got,
                         (long long)c->takes[k].wait);
        }
        hl_limits_free(l);
    }
}

/* The buckets are bounded: once three quarters of HL_RATE_APPS_MAX apps are mid-bucket, a new
 * app goes unlimited; buckets that have refilled are dropped to make room again. */
static void test_bounded(void **state)
{
    (void)state;
    struct hl_api_config cfg = {.api_rate = 1, .api_burst = 1};
    struct hl_limits *l = NULL;
    assert_int_equal(hl_limits_new(&cfg, &l), HL_OK);
    int64_t app = 1;
    for (; app <= HL_RATE_APPS_MAX; app++) /* each app's one token: all mid-bucket */
        assert_int_equal(hl_limits_take(l, app, 0), 0);
    /* the table is full: app 1 was kept (refused now), the last ones were not (admitted) */
    assert_true(hl_limits_take(l, 1, 0) > 0);
    assert_int_equal(hl_limits_take(l, app - 1, 0), 0);
    assert_int_equal(hl_limits_take(l, app - 1, 0), 0);
    /* a minute on every bucket is full again: a new app is kept once more */
    assert_int_equal(hl_limits_take(l, app, 60000), 0);
    assert_true(hl_limits_take(l, app, 60000) > 0);
    hl_limits_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets),
        cmocka_unit_test(test_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
