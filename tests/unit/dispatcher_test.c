/* Tests for the fair shares of src/delivery/dispatcher.c (dispatch.h): how max_inflight is split
 * between apps and webhooks, and what claimed jobs take off the shares until the transfer thread
 * has counted them; and for the transfer thread after a 410, on a real loopback receiver with
 * the test in the bookkeeper's place. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/clock.h"
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

/* An app holding none, before its first claims are counted: its share less an eighth. */
static void test_share_first(void **state)
{
    (void)state;
    static const struct share_case cases[] = {
        {256, 0, 196}, {255, 0, 196}, {256, 1, 98},
        {256, 2, 65},  {8, 0, 7},     {1, 5, 2}}; /* 7: an eighth of 7 is 0 */
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct share_case *c = &cases[i];
        if (hl_share_first(c->total, c->n) != c->want)
            fail_msg("hl_share_first(%zu, %zu) = %zu, want %zu", c->total, c->n,
                     hl_share_first(c->total, c->n), c->want);
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

/* Two claims that may run with copies of the same shares (the bookkeeper's and a commit's) each
 * take half of every room, one rounding down and one up: together never more than the whole; a
 * newcomers' room stays at least 1, and 0 (no shares) stays 0. */
static void test_halve(void **state)
{
    (void)state;
    struct hl_shares down, up;
    assert_int_equal(hl_shares_init(&down, 4), HL_OK);
    assert_int_equal(hl_shares_init(&up, 4), HL_OK);
    int64_t rooms[] = {0, 1, 5, 32};
    for (size_t i = 0; i < 4; i++) {
        down.room_apps[i] = down.room_webhooks[i] = (int64_t)i + 1;
        down.rooms[i] = down.wrooms[i] = rooms[i];
    }
    down.nrooms = down.nwrooms = 4;
    down.room_new = 7;
    down.wroom_new = 1;
    hl_shares_copy(&up, &down);
    hl_shares_halve(&down, 0);
    hl_shares_halve(&up, 1);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(down.rooms[i] + up.rooms[i], rooms[i]);
        assert_int_equal(down.wrooms[i] + up.wrooms[i], rooms[i]);
        assert_true(up.wrooms[i] >= down.wrooms[i]);
    }
    assert_int_equal(down.room_new + up.room_new, 7);
    assert_int_equal(down.wroom_new, 1);
    assert_int_equal(up.wroom_new, 1);
    down.room_new = 0;
    hl_shares_halve(&down, 1);
    assert_int_equal(down.room_new, 0);
    hl_shares_free(&down);
    hl_shares_free(&up);
}

/* ---- the transfer thread after a 410 ---- */

/* A loopback receiver answering every request 410; the first only once told to (held). */
struct receiver {
    int fd, port;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int requests, release, stop;
};

/* Reads one request (headers, then Content-Length bytes of body). */
static void read_request(int c)
{
    char buf[8192];
    size_t got = 0;
    for (;;) {
        ssize_t r = read(c, buf + got, sizeof(buf) - 1 - got);
        if (r <= 0)
            return;
        got += (size_t)r;
        buf[got] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        const char *cl = strstr(buf, "Content-Length: ");
        if (end && (!cl || got - (size_t)(end + 4 - buf) >= strtoul(cl + 16, NULL, 10)))
            return;
        if (got == sizeof(buf) - 1)
            return;
    }
}

static void *receiver_run(void *arg)
{
    struct receiver *rx = arg;
    for (;;) {
        pthread_mutex_lock(&rx->mu);
        int stop = rx->stop;
        pthread_mutex_unlock(&rx->mu);
        if (stop)
            return NULL;
        struct pollfd p = {.fd = rx->fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int c = accept(rx->fd, NULL, NULL);
        if (c < 0)
            continue;
        read_request(c);
        pthread_mutex_lock(&rx->mu);
        int first = rx->requests++ == 0;
        pthread_cond_broadcast(&rx->cv);
        while (first && !rx->release && !rx->stop)
            pthread_cond_wait(&rx->cv, &rx->mu);
        pthread_mutex_unlock(&rx->mu);
        static const char gone[] =
            "HTTP/1.1 410 Gone\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        ssize_t w = write(c, gone, sizeof(gone) - 1);
        (void)w;
        close(c);
    }
}

static void receiver_start(struct receiver *rx)
{
    memset(rx, 0, sizeof(*rx));
    pthread_mutex_init(&rx->mu, NULL);
    pthread_cond_init(&rx->cv, NULL);
    rx->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(rx->fd >= 0);
    struct sockaddr_in in = {.sin_family = AF_INET};
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(rx->fd, (struct sockaddr *)&in, sizeof(in)), 0);
    socklen_t len = sizeof(in);
    assert_int_equal(getsockname(rx->fd, (struct sockaddr *)&in, &len), 0);
    assert_int_equal(listen(rx->fd, 16), 0);
    rx->port = ntohs(in.sin_port);
    assert_int_equal(pthread_create(&rx->th, NULL, receiver_run, rx), 0);
}

/* Waits until the receiver has seen n requests (fails after 20 s: something never came). */
static void receiver_wait(struct receiver *rx, int n)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 20;
    pthread_mutex_lock(&rx->mu);
    while (rx->requests < n && pthread_cond_timedwait(&rx->cv, &rx->mu, &until) == 0)
        ;
    int got = rx->requests;
    pthread_mutex_unlock(&rx->mu);
    if (got < n)
        fail_msg("the receiver saw %d requests, waited for %d", got, n);
}

static int receiver_count(struct receiver *rx)
{
    pthread_mutex_lock(&rx->mu);
    int n = rx->requests;
    pthread_mutex_unlock(&rx->mu);
    return n;
}

static void receiver_stop(struct receiver *rx)
{
    pthread_mutex_lock(&rx->mu);
    rx->stop = 1;
    pthread_cond_broadcast(&rx->cv);
    pthread_mutex_unlock(&rx->mu);
    pthread_join(rx->th, NULL);
    close(rx->fd);
    pthread_cond_destroy(&rx->cv);
    pthread_mutex_destroy(&rx->mu);
}

/* Hands a claimed job of webhook wid to the transfer thread, as the bookkeeper does. */
static void give(struct hl_handover *ho, struct hl_transfer *t, int port, int64_t id, int64_t wid)
{
    struct hl_job j = {.delivery_id = id, .webhook_id = wid, .app_id = 1, .event_id = id};
    snprintf(j.event_uid, sizeof(j.event_uid), "evt_%lld", (long long)id);
    snprintf(j.secret, sizeof(j.secret), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    j.url = malloc(64);
    j.payload = malloc(3);
    assert_non_null(j.url);
    assert_non_null(j.payload);
    snprintf(j.url, 64, "http://127.0.0.1:%d/w%lld", port, (long long)wid);
    memcpy(j.payload, "{}", 3);
    j.payload_len = 2;
    j.lease_until = INT64_MAX / 2;
    pthread_mutex_lock(&ho->mu);
    if (ho->nready == 0)
        ho->ready_since = ho->recorded;
    ho->ready[ho->nready++] = j;
    pthread_mutex_unlock(&ho->mu);
    hl_transfer_wake(t);
}

/* Waits (mu held) until the transfer thread has taken every ready job and holds none, with at
 * least n results published; fails after 20 s. */
static void settle(struct hl_handover *ho, size_t n)
{
    int64_t until = hl_mono_ms() + 20000;
    while ((ho->nready || ho->net_busy || ho->nresults < n) && hl_mono_ms() < until) {
        int64_t at = hl_mono_ms() + 50;
        struct timespec ts = {.tv_sec = at / 1000, .tv_nsec = (at % 1000) * 1000000};
        pthread_cond_timedwait(&ho->cv, &ho->mu, &ts);
    }
    if (ho->nready || ho->net_busy || ho->nresults < n)
        fail_msg("the transfer thread did not settle: %zu ready, %zu held, %zu results", ho->nready,
                 ho->net_busy, ho->nresults);
}

/* Takes the published results as the bookkeeper does; recorded: as if it recorded them (the
 * webhook disabled, its deliveries parked). Returns the webhook of the last. */
static int64_t take_results(struct hl_handover *ho, int recorded)
{
    int64_t wid = 0;
    for (size_t i = 0; i < ho->nresults; i++) {
        assert_int_equal(ho->results[i]->a.outcome, HL_OUT_GONE);
        wid = ho->results[i]->a.webhook_id;
        free(ho->results[i]);
    }
    if (recorded)
        ho->recorded += ho->nresults;
    ho->nresults = 0;
    return wid;
}

/* A job claimed before a webhook's 410 is recorded reaches the transfer thread after that 410:
 * it is let go, not sent (its delivery is parked by the record). Order, not timing: the first
 * attempt is held at the receiver until answered; the second job is handed over after the 410's
 * result is published and before it is recorded; another webhook's job still goes out, and once
 * the 410 is recorded a later claim of the webhook (enabled again) is sent. */
static void test_nothing_sent_after_410(void **state)
{
    (void)state;
    struct receiver rx;
    receiver_start(&rx);
    struct hl_dispatcher_config cfg = {
        .timeout_ms = 10000, .max_inflight = 4, .per_host = 1, .lease_ms = 60000, .sweep_ms = 1000};
    struct hl_handover ho = {0};
    size_t cap = cfg.max_inflight + 1;
    ho.ready = calloc(cap, sizeof(*ho.ready));
    ho.results = calloc(cap, sizeof(*ho.results));
    assert_non_null(ho.ready);
    assert_non_null(ho.results);
    assert_int_equal(hl_shares_init(&ho.shares, cap), HL_OK);
    pthread_mutex_init(&ho.mu, NULL);
    pthread_mutex_init(&ho.hook_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&ho.cv, &ca);
    pthread_condattr_destroy(&ca);
    struct hl_transfer *t = NULL;
    assert_int_equal(hl_transfer_new(&cfg, &ho, &t), HL_OK);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, hl_transfer_run, t), 0);

    give(&ho, t, rx.port, 1, 7);
    receiver_wait(&rx, 1); /* held there */
    pthread_mutex_lock(&rx.mu);
    rx.release = 1; /* answer 410 */
    pthread_cond_broadcast(&rx.cv);
    pthread_mutex_unlock(&rx.mu);
    pthread_mutex_lock(&ho.mu);
    settle(&ho, 1);
    assert_int_equal(take_results(&ho, 0), 7); /* published, not recorded yet */
    pthread_mutex_unlock(&ho.mu);

    /* Claimed before the record: webhook 7's is let go, webhook 8's goes out. */
    give(&ho, t, rx.port, 2, 7);
    give(&ho, t, rx.port, 3, 8);
    pthread_mutex_lock(&ho.mu);
    settle(&ho, 1);
    assert_int_equal(receiver_count(&rx), 2);
    assert_int_equal(take_results(&ho, 1), 8); /* and now both 410s are recorded */
    pthread_mutex_unlock(&ho.mu);

    /* After the record, what a claim hands over for webhook 7 (enabled again) is sent. */
    give(&ho, t, rx.port, 4, 7);
    pthread_mutex_lock(&ho.mu);
    settle(&ho, 1);
    assert_int_equal(take_results(&ho, 1), 7);
    pthread_mutex_unlock(&ho.mu);
    assert_int_equal(receiver_count(&rx), 3);

    pthread_mutex_lock(&ho.mu);
    ho.stop = 1;
    pthread_mutex_unlock(&ho.mu);
    hl_transfer_wake(t);
    pthread_join(th, NULL);
    hl_transfer_free(t);
    receiver_stop(&rx);
    pthread_cond_destroy(&ho.cv);
    pthread_mutex_destroy(&ho.hook_mu);
    pthread_mutex_destroy(&ho.mu);
    hl_shares_free(&ho.shares);
    free(ho.ready);
    free(ho.results);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_share),
        cmocka_unit_test(test_share_first),
        cmocka_unit_test(test_spend),
        cmocka_unit_test(test_halve),
        cmocka_unit_test(test_nothing_sent_after_410),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
