/* Tests for the fair shares of src/delivery/dispatcher.c (dispatch.h): how max_inflight is split
 * between apps and webhooks, and what claimed jobs take off the shares until the transfer thread
 * has counted them. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/err.h"
#include "delivery/dispatch.h"

struct share_case {
    size_t total, n, want;
};

static const struct share_case share_cases[] = {
    /* an eighth is kept for holders yet to come, the rest split evenly */
    {256, 0, 224}, {256, 1, 224}, {256, 2, 112},
    {256, 16, 14}, {256, 17, 13}, {256, 200, 2}, /* never below the floor */
    {16, 1, 14},   {1, 1, 2},     {0, 1, 2},
};

static void test_share(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(share_cases) / sizeof(share_cases[0]); i++) {
        const struct share_case *c = &share_cases[i];
        if (hl_share(c->total, c->n) != c->want)
            fail_msg("hl_share(%zu, %zu) = %zu, want %zu", c->total, c->n, hl_share(c->total, c->n),
                     c->want);
    }
}

static struct hl_job job(int64_t app, int64_t webhook)
{
    return (struct hl_job){.app_id = app, .webhook_id = webhook};
}

/* Jobs come off their app's and their webhook's rooms; one at zero joins its skip list, and
 * an app or a webhook not listed starts from room_new, wroom_new. */
static void test_spend(void **state)
{
    (void)state;
    struct hl_shares sh;
    assert_int_equal(hl_shares_init(&sh, 16), HL_OK);
    sh.room_apps[0] = 7;
    sh.rooms[0] = 2;
    sh.nrooms = 1;
    sh.skip_apps[0] = 9;
    sh.nskip_apps = 1;
    sh.room_webhooks[0] = 70;
    sh.wrooms[0] = 5;
    sh.nwrooms = 1;
    sh.room_new = 3;
    sh.wroom_new = 1;

    struct hl_job jobs[] = {job(7, 70), job(7, 71), job(9, 90), job(8, 80)};
    hl_shares_spend(&sh, jobs, 4);
    /* app 7: 2 - 2 = 0, skipped; app 9 was; app 8 (new): 3 - 1 */
    assert_int_equal(sh.nskip_apps, 2);
    assert_int_equal(sh.skip_apps[0], 9);
    assert_int_equal(sh.skip_apps[1], 7);
    assert_int_equal(sh.nrooms, 1);
    assert_int_equal(sh.room_apps[0], 8);
    assert_int_equal(sh.rooms[0], 2);
    /* webhook 70: 5 - 1; 71, 90 and 80 (new): 1 - 1 = 0, skipped */
    assert_int_equal(sh.nwrooms, 1);
    assert_int_equal(sh.room_webhooks[0], 70);
    assert_int_equal(sh.wrooms[0], 4);
    assert_int_equal(sh.nskip, 3);
    assert_int_equal(sh.skip[0], 71);
    assert_int_equal(sh.skip[1], 90);
    assert_int_equal(sh.skip[2], 80);

    /* a copy is the same */
    struct hl_shares cp;
    assert_int_equal(hl_shares_init(&cp, 16), HL_OK);
    hl_shares_copy(&cp, &sh);
    assert_int_equal(cp.nskip, 3);
    assert_int_equal(cp.skip[2], 80);
    assert_int_equal(cp.rooms[0], 2);
    assert_int_equal(cp.wroom_new, 1);
    hl_shares_free(&cp);

    /* without shares (room_new 0) nothing is taken */
    sh.room_new = 0;
    hl_shares_spend(&sh, jobs, 1);
    assert_int_equal(sh.wrooms[0], 4);
    hl_shares_free(&sh);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_share),
        cmocka_unit_test(test_spend),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
