/* Tests for src/common/throttle.c: failed tries per client. Times are passed in, so nothing
 * here sleeps or depends on the machine's speed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "common/err.h"
#include "common/throttle.h"

static struct hl_client v4(const char *a)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    assert_int_equal(inet_pton(AF_INET, a, &sa.sin_addr), 1);
    return hl_client_of((struct sockaddr *)&sa);
}

static struct hl_client v6(const char *a)
{
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6};
    assert_int_equal(inet_pton(AF_INET6, a, &sa.sin6_addr), 1);
    return hl_client_of((struct sockaddr *)&sa);
}

/* burst failures pass, the next waits one interval; the budget refills one per interval. */
static void budget(void **state)
{
    (void)state;
    struct hl_throttle *t;
    assert_int_equal(hl_throttle_new(3, 1000, &t), HL_OK);
    struct hl_client c = v4("192.0.2.7"), d = v4("192.0.2.8");
    int64_t now = 5000;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(hl_throttle_wait(t, &c, now), 0);
        hl_throttle_fail(t, &c, now);
    }
    assert_int_equal(hl_throttle_wait(t, &c, now), 1000);
    assert_int_equal(hl_throttle_wait(t, &c, now + 400), 600);
    /* another client is not held back (unless it shares the slot, which this pair may not:
     * then it would be throttled too, never the other way) */
    assert_true(hl_throttle_wait(t, &d, now) == 0 || hl_throttle_wait(t, &d, now) == 1000);
    /* one interval later one more try; then again one interval */
    assert_int_equal(hl_throttle_wait(t, &c, now + 1000), 0);
    hl_throttle_fail(t, &c, now + 1000);
    assert_int_equal(hl_throttle_wait(t, &c, now + 1000), 1000);
    /* long after, the whole budget is back */
    now += 60000;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(hl_throttle_wait(t, &c, now), 0);
        hl_throttle_fail(t, &c, now);
    }
    assert_true(hl_throttle_wait(t, &c, now) > 0);
    hl_throttle_free(t);
}

/* An IPv6 /64 is one client; an IPv4-mapped address is its IPv4 one. */
static void clients(void **state)
{
    (void)state;
    struct hl_client a = v6("2001:db8:1:2::1"), b = v6("2001:db8:1:2:ffff::9"),
                     c = v6("2001:db8:1:3::1"), m = v6("::ffff:192.0.2.7"), p = v4("192.0.2.7");
    assert_memory_equal(&a, &b, sizeof(a));
    assert_memory_not_equal(&a, &c, sizeof(a));
    assert_memory_equal(&m, &p, sizeof(m));
    struct hl_client n = hl_client_of(NULL);
    assert_memory_not_equal(&n, &p, sizeof(n));

    struct hl_throttle *t;
    assert_int_equal(hl_throttle_new(1, 1000, &t), HL_OK);
    hl_throttle_fail(t, &a, 100);
    assert_int_equal(hl_throttle_wait(t, &b, 100), 1000);
    hl_throttle_fail(t, &m, 100);
    assert_int_equal(hl_throttle_wait(t, &p, 100), 1000);
    hl_throttle_free(t);
}

/* Many clients through a fixed table: none is ever let through with its budget spent. */
static void many_clients(void **state)
{
    (void)state;
    struct hl_throttle *t;
    assert_int_equal(hl_throttle_new(2, 10000, &t), HL_OK);
    for (int i = 0; i < 20000; i++) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x0a000000u + i)};
        struct hl_client c = hl_client_of((struct sockaddr *)&sa);
        hl_throttle_fail(t, &c, 1000);
        hl_throttle_fail(t, &c, 1000);
        assert_true(hl_throttle_wait(t, &c, 1000) > 0);
    }
    hl_throttle_free(t);
}

static void refuses(void **state)
{
    (void)state;
    struct hl_throttle *t = NULL;
    assert_int_equal(hl_throttle_new(0, 1000, &t), HL_EINVAL);
    assert_int_equal(hl_throttle_new(3, 0, &t), HL_EINVAL);
    assert_null(t);
    hl_throttle_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(budget),
        cmocka_unit_test(clients),
        cmocka_unit_test(many_clients),
        cmocka_unit_test(refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
