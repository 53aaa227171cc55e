/* Tests for src/receiver/alert.c: when `hookline listen --alert-after` announces a silence and
 * its end. Times are monotonic milliseconds; the timer starts at 1000. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "receiver/alert.h"

enum op { SEEN, CHECK };

/* SEEN: want is what hl_alert_seen returns. CHECK: want is the kind announced, with silence,
 * last and next as hl_alert_check reports them. */
struct step {
    enum op op;
    int64_t now;
    int want;
    int64_t silence, last, next;
};

struct alert_case {
    const char *name;
    int64_t after;
    struct step steps[12];
};

#define NEVER INT64_MAX
#define NONE HL_ALERT_NONE
#define SILENT HL_ALERT_SILENT
#define RECOVERED HL_ALERT_RECOVERED

static const struct alert_case cases[] = {
    {"silent from the start, once; recovered once; then timed from that event",
     5000,
     {{CHECK, 1000, NONE, 0, 0, 6000},
      {CHECK, 5999, NONE, 0, 0, 6000},
      {CHECK, 6000, SILENT, 5000, -1, NEVER},
      {CHECK, 9000, NONE, 0, 0, NEVER},
      {CHECK, 60000, NONE, 0, 0, NEVER},
      {SEEN, 61000, 1, 0, 0, 0},
      {SEEN, 61500, 0, 0, 0, 0}, /* the silence ended at the first one */
      {CHECK, 62000, RECOVERED, 60000, -1, 66500},
      {CHECK, 66499, NONE, 0, 0, 66500},
      {CHECK, 66500, SILENT, 5000, 61500, NEVER}}},
    {"events in time keep it quiet",
     5000,
     {{SEEN, 3000, 0, 0, 0, 0},
      {CHECK, 6999, NONE, 0, 0, 8000},
      {SEEN, 7000, 0, 0, 0, 0},
      {CHECK, 8000, NONE, 0, 0, 12000},
      {CHECK, 12500, SILENT, 5500, 7000, NEVER},
      {SEEN, 20000, 1, 0, 0, 0},
      {CHECK, 20001, RECOVERED, 13000, 7000, 25000}}},
    {"a late check announces the silence late, with its real length",
     1000,
     {{CHECK, 30000, SILENT, 29000, -1, NEVER}, {CHECK, 30001, NONE, 0, 0, NEVER}}},
};

static void run_case(const struct alert_case *c)
{
    struct hl_alert a;
    hl_alert_init(&a, c->after, 1000);
    for (size_t i = 0; i < sizeof(c->steps) / sizeof(c->steps[0]) && c->steps[i].now; i++) {
        const struct step *s = &c->steps[i];
        if (s->op == SEEN) {
            int got = hl_alert_seen(&a, s->now);
            if (got != s->want)
                fail_msg("%s, step %zu: seen %d, want %d", c->name, i, got, s->want);
            continue;
        }
        struct hl_alert_report r;
        int64_t next = 0;
        hl_alert_check(&a, s->now, &r, &next);
        if ((int)r.kind != s->want || next != s->next ||
            (s->want != NONE && (r.silence_ms != s->silence || r.last_ms != s->last)))
            fail_msg("%s, step %zu: kind %d silence %lld last %lld next %lld; want %d %lld %lld "
                     "%lld",
                     c->name, i, r.kind, (long long)r.silence_ms, (long long)r.last_ms,
                     (long long)next, s->want, (long long)s->silence, (long long)s->last,
                     (long long)s->next);
    }
    hl_alert_destroy(&a);
}

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run_case(&cases[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_table)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
