/* Tests for src/delivery/retry.c: schedules, jittered waits, Retry-After. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "delivery/retry.h"

#define S 1000LL
#define M (60 * S)
#define H (60 * M)
#define D (24 * H)

static void test_default(void **state)
{
    (void)state;
    struct hl_retry r, p;
    hl_retry_default(&r);
    static const int64_t want[] = {0, 5 * S, 5 * M, 30 * M, 2 * H, 5 * H, 10 * H, 10 * H};
    assert_int_equal(r.n, 8);
    assert_int_equal(r.jitter_pct, 20);
    assert_memory_equal(r.delays_ms, want, sizeof(want));
    /* the spec string in the header says the same */
    assert_int_equal(hl_retry_parse(HL_RETRY_DEFAULT_SPEC, &p), HL_OK);
    assert_int_equal(p.n, r.n);
    assert_int_equal(p.jitter_pct, r.jitter_pct);
    assert_memory_equal(p.delays_ms, r.delays_ms, sizeof(want));
}

struct parse_case {
    const char *spec;
    int n;             /* -1: HL_EINVAL */
    int64_t delays[4]; /* the first few */
};

static const struct parse_case parse_cases[] = {
    {"0", 1, {0}},
    {"5", 1, {5 * S}},
    {"0,50ms,100ms", 3, {0, 50, 100}},
    {"1ms,2s,3m,4h", 4, {1, 2 * S, 3 * M, 4 * H}},
    {"1d", 1, {D}},
    {"7d", 1, {7 * D}},
    {"168h", 1, {7 * D}},
    {"10080m", 1, {7 * D}},
    {"604800", 1, {7 * D}},
    {"604800s", 1, {7 * D}},
    {"604800000ms", 1, {7 * D}},
    {" 0 , 5s ,\t5m\t", 3, {0, 5 * S, 5 * M}},
    {"000010s", 1, {10 * S}},
    {"0ms", 1, {0}},
    {"", -1, {0}},
    {" ", -1, {0}},
    {",", -1, {0}},
    {"0,", -1, {0}},
    {",0", -1, {0}},
    {"0,,5s", -1, {0}},
    {"8d", -1, {0}},
    {"169h", -1, {0}},
    {"604801", -1, {0}},
    {"604800001ms", -1, {0}},
    {"99999999999999999999999999", -1, {0}},
    {"9223372036854775807ms", -1, {0}},
    {"-5s", -1, {0}},
    {"+5s", -1, {0}},
    {"1.5h", -1, {0}},
    {"5 s", -1, {0}},
    {"5S", -1, {0}},
    {"5sec", -1, {0}},
    {"5us", -1, {0}},
    {"5w", -1, {0}},
    {"h", -1, {0}},
    {"0x10", -1, {0}},
    {"5s;5s", -1, {0}},
};

static void test_parse(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
        const struct parse_case *c = &parse_cases[i];
        struct hl_retry r;
        memset(&r, 0x5a, sizeof(r));
        int rc = hl_retry_parse(c->spec, &r);
        if ((rc == HL_OK) != (c->n >= 0))
            print_error("case %zu '%s': rc %d\n", i, c->spec, rc);
        if (c->n < 0) {
            assert_int_equal(rc, HL_EINVAL);
            assert_int_equal(r.n, 0x5a5a5a5a); /* untouched */
            continue;
        }
        assert_int_equal(rc, HL_OK);
        assert_int_equal(r.n, c->n);
        assert_int_equal(r.jitter_pct, HL_RETRY_JITTER_PCT);
        for (int k = 0; k < c->n && k < 4; k++)
            assert_int_equal(r.delays_ms[k], c->delays[k]);
    }
    assert_int_equal(hl_retry_parse(NULL, &(struct hl_retry){0}), HL_EINVAL);
}

static void test_parse_count(void **state)
{
    (void)state;
    char spec[256] = "";
    size_t len = 0;
    for (int i = 0; i < HL_RETRY_MAX; i++)
        len += (size_t)snprintf(spec + len, sizeof(spec) - len, "%s%ds", i ? "," : "", i);
    struct hl_retry r;
    assert_int_equal(hl_retry_parse(spec, &r), HL_OK);
    assert_int_equal(r.n, HL_RETRY_MAX);
    assert_int_equal(r.delays_ms[HL_RETRY_MAX - 1], (HL_RETRY_MAX - 1) * S);
    snprintf(spec + len, sizeof(spec) - len, ",1s");
    assert_int_equal(hl_retry_parse(spec, &r), HL_EINVAL);
}

static void test_delay(void **state)
{
    (void)state;
    struct hl_retry r;
    hl_retry_default(&r);
    static const int64_t base[] = {0, 5 * S, 5 * M, 30 * M, 2 * H, 5 * H, 10 * H, 10 * H};
    for (int i = 0; i < 8; i++) {
        int64_t lo = base[i] - base[i] / 5, hi = base[i] + base[i] / 5;
        assert_int_equal(hl_retry_delay(&r, i, 0), lo);
        assert_int_equal(hl_retry_delay(&r, i, UINT32_MAX), hi);
        int64_t mid = hl_retry_delay(&r, i, UINT32_MAX / 2);
        assert_true(mid >= base[i] - 1 && mid <= base[i]);
        for (uint32_t rnd = 1; rnd != 0 && rnd < UINT32_MAX / 2; rnd *= 3) {
            int64_t d = hl_retry_delay(&r, i, rnd);
            assert_true(d >= lo && d <= hi);
        }
    }
    assert_int_equal(hl_retry_delay(&r, 1, 0), 4000);
    assert_int_equal(hl_retry_delay(&r, 1, UINT32_MAX), 6000);
    /* exhausted after the last attempt */
    assert_int_equal(hl_retry_delay(&r, 8, 0), -1);
    assert_int_equal(hl_retry_delay(&r, 9, UINT32_MAX), -1);
    assert_int_equal(hl_retry_delay(&r, 1000000, 0), -1);
    /* a negative count is the first attempt */
    assert_int_equal(hl_retry_delay(&r, -1, UINT32_MAX), 0);

    /* no jitter, full jitter, nonsense jitter */
    assert_int_equal(hl_retry_parse("0,50ms,7d", &r), HL_OK);
    r.jitter_pct = 0;
    assert_int_equal(hl_retry_delay(&r, 1, 0), 50);
    assert_int_equal(hl_retry_delay(&r, 1, UINT32_MAX), 50);
    r.jitter_pct = 100;
    assert_int_equal(hl_retry_delay(&r, 1, 0), 0);
    assert_int_equal(hl_retry_delay(&r, 1, UINT32_MAX), 100);
    assert_int_equal(hl_retry_delay(&r, 2, UINT32_MAX), 14 * D);
    r.jitter_pct = 1000;
    assert_int_equal(hl_retry_delay(&r, 2, UINT32_MAX), 14 * D);
    r.jitter_pct = -5;
    assert_int_equal(hl_retry_delay(&r, 2, 0), 7 * D);
    assert_int_equal(hl_retry_delay(&r, 3, 0), -1);
}

struct after_case {
    const char *value;
    int64_t now_ms;
    int rc;
    int64_t delay_ms;
};

/* 1994-11-06T08:49:37Z */
#define T94 784111777000LL

static const struct after_case after_cases[] = {
    {"120", 0, HL_OK, 120 * S},
    {"0", 0, HL_OK, 0},
    {" 5 ", 0, HL_OK, 5 * S},
    {"\t5", 0, HL_OK, 5 * S},
    {"0005", 0, HL_OK, 5 * S},
    {"2147483647", 0, HL_OK, 2147483647LL * S},
    {"99999999999999999999999999999", 0, HL_OK, 2147483647LL * S},
    {"Sun, 06 Nov 1994 08:49:37 GMT", T94, HL_OK, 0},
    {"Sun, 06 Nov 1994 08:49:37 GMT", T94 - 30 * S, HL_OK, 30 * S},
    {"Sun, 06 Nov 1994 08:49:37 GMT", T94 + 30 * S, HL_OK, 0},
    {"Sun, 06 Nov 1994 08:50:37 GMT", T94, HL_OK, 60 * S},
    {"Mon, 07 Nov 1994 08:49:37 GMT", T94, HL_OK, D},
    {"Thu, 01 Jan 1970 00:00:00 GMT", 0, HL_OK, 0},
    {"Thu, 01 Jan 1970 00:00:10 GMT", 0, HL_OK, 10 * S},
    {"Tue, 29 Feb 2028 00:00:00 GMT", 0, HL_OK, 1835395200LL * S},
    {"Fri, 31 Dec 9999 23:59:59 GMT", 0, HL_OK, 253402300799LL * S},
    {"Sunday, 06-Nov-94 08:50:37 GMT", T94, HL_OK, 60 * S},
    {"Sun Nov  6 08:50:37 1994", T94, HL_OK, 60 * S},
    {"Sun Nov 16 08:49:37 1994", T94, HL_OK, 10 * D},
    {"  Sun, 06 Nov 1994 08:49:47 GMT  ", T94, HL_OK, 10 * S},
    {"", 0, HL_EINVAL, 0},
    {"   ", 0, HL_EINVAL, 0},
    {"-5", 0, HL_EINVAL, 0},
    {"+5", 0, HL_EINVAL, 0},
    {"5s", 0, HL_EINVAL, 0},
    {"1.5", 0, HL_EINVAL, 0},
    {"5 5", 0, HL_EINVAL, 0},
    {"soon", 0, HL_EINVAL, 0},
    {"Sun, 06 Nov 1994 08:49:37", 0, HL_EINVAL, 0},
    {"Sun, 06 Nov 1994 08:49:37 UTC", 0, HL_EINVAL, 0},
    {"Sun, 06 Nov 1994 08:49:37 GMTx", 0, HL_EINVAL, 0},
    {"sun, 06 nov 1994 08:49:37 gmt", 0, HL_EINVAL, 0},
    {"Sun, 6 Nov 1994 08:49:37 GMT", 0, HL_EINVAL, 0},
    {"Sun, 06 Nov 94 08:49:37 GMT", 0, HL_EINVAL, 0},
    {"Sun, 06 Foo 1994 08:49:37 GMT", 0, HL_EINVAL, 0},
    {"Sun, 32 Jan 1994 08:49:37 GMT", 0, HL_EINVAL, 0},
    {"Sun, 00 Jan 1994 08:49:37 GMT", 0, HL_EINVAL, 0},
    {"Sun, 30 Feb 1994 08:49:37 GMT", 0, HL_EINVAL, 0},
    {"Sun, 29 Feb 1900 08:49:37 GMT", 0, HL_EINVAL, 0},
    {"Sun, 31 Apr 1994 08:49:37 GMT", 0, HL_EINVAL, 0},
    {"Sun, 06 Nov 1994 24:00:00 GMT", 0, HL_EINVAL, 0},
    {"Sun, 06 Nov 1994 08:60:00 GMT", 0, HL_EINVAL, 0},
    {"Sun, 06 Nov 1994 08:49:61 GMT", 0, HL_EINVAL, 0},
    {"Sun, 06 Nov 1994 8:49:37 GMT", 0, HL_EINVAL, 0},
    {"Xyz, 06 Nov 1994 08:49:37 GMT", 0, HL_EINVAL, 0},
    {"Sun,06 Nov 1994 08:49:37 GMT", 0, HL_EINVAL, 0},
    {"Sunday, 06-Nov-1994 08:49:37 GMT", 0, HL_EINVAL, 0},
    {"Sun Nov 6 08:49:37 1994", 0, HL_EINVAL, 0},
    {"Sun Nov  6 08:49:37 94", 0, HL_EINVAL, 0},
    {"2025-01-20T14:35:22Z", 0, HL_EINVAL, 0},
};

static void test_retry_after(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(after_cases) / sizeof(after_cases[0]); i++) {
        const struct after_case *c = &after_cases[i];
        int64_t d = -12345;
        int rc = hl_retry_after(c->value, strlen(c->value), c->now_ms, &d);
        if (rc != c->rc || (rc == HL_OK && d != c->delay_ms))
            print_error("case %zu '%s': rc %d delay %lld\n", i, c->value, rc, (long long)d);
        assert_int_equal(rc, c->rc);
        if (rc == HL_OK)
            assert_int_equal(d, c->delay_ms);
        else
            assert_int_equal(d, -12345);
    }
    /* the length bounds the value: no NUL needed, bytes after it are ignored */
    int64_t d;
    assert_int_equal(hl_retry_after("12junk", 2, 0, &d), HL_OK);
    assert_int_equal(d, 12 * S);
    assert_int_equal(hl_retry_after(NULL, 0, 0, &d), HL_EINVAL);
    /* extreme clocks do not overflow */
    assert_int_equal(hl_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 29, INT64_MIN, &d), HL_OK);
    assert_true(d > 0);
    assert_int_equal(hl_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 29, INT64_MAX, &d), HL_OK);
    assert_int_equal(d, 0);
}

static void test_clamp(void **state)
{
    (void)state;
    assert_int_equal(hl_retry_clamp_after(-1), HL_RETRY_AFTER_MIN_MS);
    assert_int_equal(hl_retry_clamp_after(0), 1000);
    assert_int_equal(hl_retry_clamp_after(999), 1000);
    assert_int_equal(hl_retry_clamp_after(1000), 1000);
    assert_int_equal(hl_retry_clamp_after(120 * S), 120 * S);
    assert_int_equal(hl_retry_clamp_after(H), H);
    assert_int_equal(hl_retry_clamp_after(H + 1), HL_RETRY_AFTER_MAX_MS);
    assert_int_equal(hl_retry_clamp_after(INT64_MAX), H);
}

/* ---- the outcome of an attempt ---- */

/* 2026-01-01T00:00:00Z, for Retry-After dates. */
#define NOW 1767225600000LL

struct outcome_case {
    const char *name;
    int status;
    const char *retry_after;
    int attempts;          /* made, this one included */
    int64_t disable_after; /* ms; 0: never */
    enum hl_outcome outcome;
    int64_t wait;       /* next_attempt_at - NOW when retried (rnd 0: the low end) */
    const char *reason; /* disable_reason */
};

/* The default schedule with jitter 0..20% (rnd 0 takes 20% off): after attempt 1 the wait is
 * 5 s -> 4 s, after attempt 3 30 min -> 24 min; attempt 8 is the last. */
static const struct outcome_case outcome_cases[] = {
    {"200", 200, NULL, 1, 0, HL_OUT_SUCCESS, 0, ""},
    {"204 after failures", 204, NULL, 5, 5 * D, HL_OUT_SUCCESS, 0, ""},
    {"299", 299, NULL, 8, 5 * D, HL_OUT_SUCCESS, 0, ""},
    {"199", 199, NULL, 1, 0, HL_OUT_RETRY, 4 * S, ""},
    {"300: redirects are failures", 300, NULL, 1, 0, HL_OUT_RETRY, 4 * S, ""},
    {"no answer", 0, NULL, 1, 0, HL_OUT_RETRY, 4 * S, ""},
    {"500", 500, NULL, 3, 0, HL_OUT_RETRY, 24 * M, ""},
    {"500, last attempt", 500, NULL, 8, 0, HL_OUT_FAILED, 0, ""},
    {"410", 410, NULL, 1, 0, HL_OUT_GONE, 0, "endpoint answered 410 Gone"},
    {"410 with a limit", 410, NULL, 8, 5 * D, HL_OUT_GONE, 0, "endpoint answered 410 Gone"},
    {"404 is no 410", 404, NULL, 1, 0, HL_OUT_RETRY, 4 * S, ""},
    /* Retry-After on 429 and 503: honoured when longer than the schedule, within 1 s .. 1 h */
    {"429 asks for 2 min", 429, "120", 1, 0, HL_OUT_RETRY, 2 * M, ""},
    {"503 asks for 2 min", 503, " 120 ", 1, 0, HL_OUT_RETRY, 2 * M, ""},
    {"429 asks for less than the schedule", 429, "1", 1, 0, HL_OUT_RETRY, 4 * S, ""},
    {"429 asks for 0", 429, "0", 1, 0, HL_OUT_RETRY, 4 * S, ""},
    {"429 asks for a day", 429, "86400", 1, 0, HL_OUT_RETRY, H, ""},
    {"429 asks for 2 min, schedule says 24", 429, "120", 3, 0, HL_OUT_RETRY, 24 * M, ""},
    {"503 with a date", 503, "Thu, 01 Jan 2026 00:10:00 GMT", 1, 0, HL_OUT_RETRY, 10 * M, ""},
    {"503 with a past date", 503, "Wed, 31 Dec 2025 23:00:00 GMT", 1, 0, HL_OUT_RETRY, 4 * S, ""},
    {"429 with garbage", 429, "soon", 1, 0, HL_OUT_RETRY, 4 * S, ""},
    {"429 with an empty value", 429, "", 1, 0, HL_OUT_RETRY, 4 * S, ""},
    {"500 with Retry-After", 500, "120", 1, 0, HL_OUT_RETRY, 4 * S, ""},
    {"502 with Retry-After", 502, "120", 1, 0, HL_OUT_RETRY, 4 * S, ""},
    {"429 cannot extend the schedule", 429, "120", 8, 0, HL_OUT_FAILED, 0, ""},
    /* auto-disable: every failure carries the rule, when there is a limit */
    {"retry, 5 days", 500, NULL, 1, 5 * D, HL_OUT_RETRY, 4 * S,
     "failing continuously for 432000 s"},
    {"failed, 5 days", 0, NULL, 8, 5 * D, HL_OUT_FAILED, 0, "failing continuously for 432000 s"},
    {"429, 90 s", 429, "120", 1, 90 * S, HL_OUT_RETRY, 2 * M, "failing continuously for 90 s"},
    {"retry, 1.5 s", 500, NULL, 1, 1500, HL_OUT_RETRY, 4 * S, "failing continuously for 1 s"},
};

static void test_outcome(void **state)
{
    (void)state;
    struct hl_retry r;
    hl_retry_default(&r);
    for (size_t i = 0; i < sizeof(outcome_cases) / sizeof(outcome_cases[0]); i++) {
        const struct outcome_case *c = &outcome_cases[i];
        print_message("outcome: %s\n", c->name);
        struct hl_attempt a;
        memset(&a, 0x5a, sizeof(a));
        a.status_code = c->status;
        a.delivery_id = 7;
        hl_retry_outcome(&r, c->disable_after, c->attempts, c->retry_after, NOW, 0, &a);
        assert_int_equal(a.outcome, c->outcome);
        assert_int_equal(a.next_attempt_at, c->outcome == HL_OUT_RETRY ? NOW + c->wait : 0);
        assert_string_equal(a.disable_reason, c->reason);
        int fails = c->outcome == HL_OUT_RETRY || c->outcome == HL_OUT_FAILED;
        assert_int_equal(a.disable_failing_since,
                         fails && c->disable_after ? NOW - c->disable_after : 0);
        /* what it reads and writes, nothing else */
        assert_int_equal(a.status_code, c->status);
        assert_int_equal(a.delivery_id, 7);
    }
}

/* The jitter comes from rnd: the low end at 0, the high end at UINT32_MAX; a Retry-After longer
 * than both wins whatever rnd says. */
static void test_outcome_jitter(void **state)
{
    (void)state;
    struct hl_retry r;
    hl_retry_default(&r);
    struct hl_attempt a = {.status_code = 503};
    hl_retry_outcome(&r, 0, 1, NULL, NOW, UINT32_MAX, &a);
    assert_int_equal(a.next_attempt_at, NOW + 6 * S);
    hl_retry_outcome(&r, 0, 1, "5", NOW, 0, &a);
    assert_int_equal(a.next_attempt_at, NOW + 5 * S);
    hl_retry_outcome(&r, 0, 1, "5", NOW, UINT32_MAX, &a);
    assert_int_equal(a.next_attempt_at, NOW + 6 * S);
    /* a schedule of one attempt: the first failure is final */
    assert_int_equal(hl_retry_parse("0", &r), HL_OK);
    hl_retry_outcome(&r, 0, 1, "5", NOW, 0, &a);
    assert_int_equal(a.outcome, HL_OUT_FAILED);
    assert_int_equal(a.next_attempt_at, 0);
}

/* The breaker's word: with the default schedule (rnd 0 takes 20% off), the attempt that may
 * open it sets the first probe 4 s on (the schedule's second wait), failed probe k sets the
 * next after wait k + 2, the last wait repeating; a success sets none. */
struct breaker_case {
    const char *name;
    int status;
    int64_t opened_at; /* the job's webhook's breaker as of the claim */
    int probes;
    int probe;    /* expected breaker_probe */
    int64_t next; /* expected breaker_probe_at - NOW */
};

static const struct breaker_case breaker_cases[] = {
    {"a success", 200, 0, 0, 0, -NOW},
    {"a successful probe", 200, NOW - H, 3, 1, -NOW},
    {"a failure while closed", 500, 0, 0, 0, 4 * S},
    {"a failure that a later claim took while closed", 0, 0, 5, 0, 4 * S},
    {"the first probe fails", 500, NOW - M, 0, 1, 4 * M},
    {"the second probe fails", 0, NOW - M, 1, 1, 24 * M},
    {"the sixth probe fails", 500, NOW - D, 5, 1, 8 * H},
    {"the hundredth probe fails", 503, NOW - D, 99, 1, 8 * H},
    {"a probe answered 410", 410, NOW - D, 1, 1, 24 * M},
};

static void test_breaker(void **state)
{
    (void)state;
    struct hl_retry r;
    hl_retry_default(&r);
    for (size_t i = 0; i < sizeof(breaker_cases) / sizeof(breaker_cases[0]); i++) {
        const struct breaker_case *c = &breaker_cases[i];
        print_message("breaker: %s\n", c->name);
        struct hl_job j = {.breaker_opened_at = c->opened_at, .breaker_probes = c->probes};
        struct hl_attempt a = {.status_code = c->status};
        hl_retry_outcome(&r, 0, 2, NULL, NOW, 0, &a);
        hl_breaker_outcome(&r, 7, &j, NOW, 0, &a);
        assert_int_equal(a.breaker_after, 7);
        assert_int_equal(a.breaker_probe, c->probe);
        assert_int_equal(a.breaker_probe_at, NOW + c->next);
    }
    /* a schedule of one wait probes at that wait */
    assert_int_equal(hl_retry_parse("2s", &r), HL_OK);
    struct hl_job j = {.breaker_opened_at = NOW - M, .breaker_probes = 4};
    struct hl_attempt a = {.status_code = 500};
    hl_retry_outcome(&r, 0, 1, NULL, NOW, UINT32_MAX, &a);
    hl_breaker_outcome(&r, 7, &j, NOW, UINT32_MAX, &a);
    assert_int_equal(a.breaker_probe_at, NOW + 2400);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default),     cmocka_unit_test(test_parse),
        cmocka_unit_test(test_parse_count), cmocka_unit_test(test_delay),
        cmocka_unit_test(test_retry_after), cmocka_unit_test(test_clamp),
        cmocka_unit_test(test_outcome),     cmocka_unit_test(test_outcome_jitter),
        cmocka_unit_test(test_breaker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
