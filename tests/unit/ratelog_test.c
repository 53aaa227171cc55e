/* Tests for src/receiver/ratelog.c: the first line of a kind at once, then one count per
 * interval. Lines go through hl_log (stderr); what is counted and summarised is checked here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "receiver/ratelog.h"

enum op { HIT, FLUSH, FORCE };

/* HIT: want 1 when written at once. FLUSH/FORCE: want is the number dropped that the summary of
 * `kind` reports (0: no summary). */
struct step {
    enum op op;
    int64_t now;
    unsigned kind;
    long long want;
};

struct ratelog_case {
    const char *name;
    struct step steps[16];
};

static const struct ratelog_case cases[] = {
    {"a flood: the first at once, then one count per interval",
     {{HIT, 1, 3, 1},
      {HIT, 2, 3, 0},
      {HIT, 3, 3, 0},
      {FLUSH, 500, 3, 0}, /* the interval is not over */
      {HIT, 900, 3, 0},
      {FLUSH, 1001, 3, 3},
      {HIT, 1100, 3, 0}, /* still flooding: counted for the next summary */
      {FLUSH, 1500, 3, 0},
      {FLUSH, 2001, 3, 1},
      {FLUSH, 5000, 3, 0},
      {HIT, 5000, 3, 1}}}, /* quiet for an interval: written again */
    {"kinds are counted apart",
     {{HIT, 1, 0, 1},
      {HIT, 2, 1, 1},
      {HIT, 3, 0, 0},
      {HIT, 4, 0, 0},
      {HIT, 5, 1, 0},
      {FLUSH, 1003, 0, 2},
      {HIT, 1004, 31, 1}}},
    {"the end writes what is counted",
     {{HIT, 1, 7, 1}, {HIT, 2, 7, 0}, {FORCE, 3, 7, 1}, {FORCE, 4, 7, 0}}},
    {"an unknown kind is always written", {{HIT, 1, 99, 1}, {HIT, 2, 99, 1}}},
};

struct seen {
    long long dropped[HL_RATELOG_KINDS];
    char line[HL_RATELOG_LINE_MAX];
};

static void collect(void *ud, enum hl_log_level level, const char *line, long long dropped,
                    int64_t interval_ms)
{
    struct seen *s = ud;
    assert_int_equal(level, HL_LOG_WARN);
    assert_int_equal(interval_ms, 1000);
    unsigned kind = (unsigned)(line[5] - '0') * 10 + (unsigned)(line[6] - '0');
    assert_true(kind < HL_RATELOG_KINDS);
    s->dropped[kind] += dropped;
    memcpy(s->line, line, sizeof(s->line));
}

static void run_case(const struct ratelog_case *c)
{
    struct hl_ratelog rl;
    hl_ratelog_init(&rl, 1000);
    for (size_t i = 0; i < sizeof(c->steps) / sizeof(c->steps[0]) && c->steps[i].now; i++) {
        const struct step *s = &c->steps[i];
        if (s->op == HIT) {
            int got =
                hl_ratelog(&rl, s->kind, HL_LOG_WARN, s->now, "kind %02u, line %zu", s->kind, i);
            if (got != s->want)
                fail_msg("%s, step %zu: written %d, want %lld", c->name, i, got, s->want);
            continue;
        }
        struct seen seen;
        memset(&seen, 0, sizeof(seen));
        hl_ratelog_flush(&rl, s->now, s->op == FORCE, collect, &seen);
        if (seen.dropped[s->kind] != s->want)
            fail_msg("%s, step %zu: summary of %lld, want %lld", c->name, i, seen.dropped[s->kind],
                     s->want);
    }
    hl_ratelog_destroy(&rl);
}

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run_case(&cases[i]);
}

/* A summary repeats the first line of its kind, cut to HL_RATELOG_LINE_MAX - 1 bytes. */
static void test_long_line(void **state)
{
    (void)state;
    struct hl_ratelog rl;
    hl_ratelog_init(&rl, 1000);
    char big[1000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(hl_ratelog(&rl, 12, HL_LOG_WARN, 1, "kind 12 %s", big), 1);
    assert_int_equal(hl_ratelog(&rl, 12, HL_LOG_WARN, 2, "kind 12 %s", big), 0);
    struct seen seen;
    memset(&seen, 0, sizeof(seen));
    hl_ratelog_flush(&rl, 2000, 0, collect, &seen);
    assert_int_equal(seen.dropped[12], 1);
    assert_int_equal(strlen(seen.line), HL_RATELOG_LINE_MAX - 1);
    assert_memory_equal(seen.line, "kind 12 xxx", 11);
    hl_ratelog_destroy(&rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_table),
                                       cmocka_unit_test(test_long_line)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
