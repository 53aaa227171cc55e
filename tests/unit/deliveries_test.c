/* Tests for the delivery id rule of src/api/deliveries.c (hl_delivery_id_parse): "dlv_" and a
 * canonical positive decimal, nothing else. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "api/deliveries.h"
#include "common/err.h"

struct idcase {
    const char *text;
    size_t len; /* 0: strlen(text) */
    int ok;
    int64_t id;
};

static const struct idcase CASES[] = {
    {"dlv_1", 0, 1, 1},
    {"dlv_42", 0, 1, 42},
    {"dlv_10", 0, 1, 10},
    {"dlv_9223372036854775807", 0, 1, INT64_MAX},
    {"dlv_1000000000000000000", 0, 1, 1000000000000000000},
    {"dlv_9223372036854775808", 0, 0, 0},  /* INT64_MAX + 1 */
    {"dlv_10000000000000000000", 0, 0, 0}, /* 20 digits */
    {"dlv_99999999999999999999999", 0, 0, 0},
    {"dlv_0", 0, 0, 0},
    {"dlv_01", 0, 0, 0},
    {"dlv_007", 0, 0, 0},
    {"dlv_+1", 0, 0, 0},
    {"dlv_-1", 0, 0, 0},
    {"dlv_ 1", 0, 0, 0},
    {"dlv_\t1", 0, 0, 0},
    {"dlv_1 ", 0, 0, 0},
    {"dlv_1x", 0, 0, 0},
    {"dlv_1.0", 0, 0, 0},
    {"dlv_0x1", 0, 0, 0},
    {"dlv_1e3", 0, 0, 0},
    {"dlv_", 0, 0, 0},
    {"dlv", 0, 0, 0},
    {"", 0, 0, 0},
    {"DLV_1", 0, 0, 0},
    {"dlv-1", 0, 0, 0},
    {"1", 0, 0, 0},
    {"dlv_1\0"
     "2",
     7, 0, 0},           /* a NUL inside */
    {"dlv_12", 5, 1, 1}, /* only len bytes count */
};

static void id_rule(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(CASES) / sizeof(CASES[0]); i++) {
        const struct idcase *c = &CASES[i];
        size_t len = c->len ? c->len : strlen(c->text);
        int64_t id = -7;
        int rc = hl_delivery_id_parse(c->text, len, &id);
        if (c->ok != (rc == HL_OK))
            fail_msg("case %zu \"%s\": want %s", i, c->text, c->ok ? "accepted" : "refused");
        assert_int_equal(id, c->ok ? c->id : -7);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(id_rule)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
