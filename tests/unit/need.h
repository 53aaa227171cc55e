/* Skips in the unit tests, with the same convention as the e2e harness.
 *
 * A case that cannot run because a tool or service is missing calls hl_test_need(); main() ends
 * with `return hl_test_exit(failed);`, which gives 77 (registered with ctest as
 * SKIP_RETURN_CODE) when nothing failed but something did not run, so that a suite is never
 * reported as passed for cases it skipped. Under HL_REQUIRE_ALL=1 (make test, whose set-up
 * installs every tool and service) a missing piece fails the case instead. Include after
 * <cmocka.h>. */
#ifndef HL_TEST_NEED_H
#define HL_TEST_NEED_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Cases of this run that skipped for something missing. */
static unsigned hl_test_missing;

/* Whether HL_REQUIRE_ALL=1 turns a missing tool or service into a failure. */
static inline int hl_test_require_all(void)
{
    const char *v = getenv("HL_REQUIRE_ALL");
    return v && strcmp(v, "1") == 0;
}

/* Returns when ok; otherwise skips the running case (fails it under HL_REQUIRE_ALL), what
 * naming the missing tool or service. */
static inline void hl_test_need(int ok, const char *what)
{
    if (ok)
        return;
    if (hl_test_require_all())
        fail_msg("missing: %s (HL_REQUIRE_ALL=1 requires it)", what);
    hl_test_missing++;
    print_message("missing: %s: skipped\n", what);
    skip();
}

/* The process's exit status from the number of failed cases: 1, 77 or 0. */
static inline int hl_test_exit(int failed)
{
    if (failed)
        return 1;
    if (hl_test_missing) {
        fprintf(stderr, "%u case(s) skipped for something missing: exit 77 (skipped)\n",
                hl_test_missing);
        return 77;
    }
    return 0;
}

#endif
