/* hl-load: drives changes into hookline's API over keep-alive HTTP/1.1 connections.
 *
 * Closed loop (-r 0): every connection sends its next request as soon as the answer to the last
 * one is in, for -d seconds. Open loop (-r RATE): request i is due at start + i/RATE (timerfd,
 * nanosecond pacing) and goes out on the first idle connection; when none is idle it waits, and
 * its response time is also reported from the time it was due ("corrected", so a stall is not
 * hidden by coordinated omission).
 *
 * Kinds: "agents" POSTs /agents with a distinct agentName per request and keys the record by the
 * agent uid in the answer; "events" POSTs /events (agent.updated) with data.uid chosen here and
 * keys the record by that uid. Both ends of a delivery can then be joined on data.uid.
 *
 * Prints one JSON object with counts and response-time percentiles; with -o also writes one line
 * per request: "key answer_us send_us due_us status" (CLOCK_REALTIME µs; due_us is 0 in closed
 * loop). Every load is bounded: -d seconds, at most -n requests, and -g seconds of grace for the
 * answers still outstanding.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "args.h"

#define REQ_MAX 4096
#define IN_MAX (64 * 1024)
#define KEY_MAX 48
#define CONNS_MAX 1024
#define SAMPLES_MAX 20000000u

enum kind { K_AGENTS, K_EVENTS };

struct conn {
    int fd;
    int busy;
    int writing;
    char out[REQ_MAX];
    size_t out_len, out_off;
    char in[IN_MAX];
    size_t in_len;
    uint64_t seq;
    int64_t due_mono_ns; /* 0 in closed loop */
    int64_t send_mono_ns;
    int64_t send_real_us;
    int64_t due_real_us;
    char key[KEY_MAX];
};

struct rec {
    char key[KEY_MAX];
    int64_t answer_us, send_us, due_us;
    int status;
};

struct cfg {
    int port;
    const char *app;
    const char *api_key;
    enum kind kind;
    int conns;
    double duration_s;
    double rate;
    uint64_t max_requests;
    double grace_s;
    const char *out_path;
    uint64_t max_records;
    const char *prefix;
};

static struct cfg cfg;
static int ep;
static struct conn *conns;
static int *idle;
static int nidle;

static uint64_t next_seq;
static uint64_t sent, answered, ok2xx, non2xx, errors, reconnects, late;
static uint64_t status_hist[6]; /* 1xx..5xx, other */
static int64_t max_lag_ns;
static uint32_t *rt_us;  /* response time from send */
static uint32_t *rtc_us; /* from due (open loop) */
static size_t nrt, cap_rt;
static struct rec *recs;
static size_t nrecs, cap_recs;
static uint64_t recs_dropped;
static char path_buf[256];

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t real_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int conn_open(struct conn *c)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg.port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e)) {
        close(fd);
        return -1;
    }
    c->fd = fd;
    c->busy = 0;
    c->writing = 0;
    c->in_len = 0;
    c->out_len = c->out_off = 0;
    return 0;
}

static void conn_drop(struct conn *c)
{
    if (c->fd >= 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
}

static int build_request(struct conn *c, uint64_t seq)
{
    char body[1024];
    int bl;
    if (cfg.kind == K_AGENTS) {
        bl = snprintf(body, sizeof(body),
                      "{\"agentName\":\"bench-%s-%" PRIu64
                      "\",\"externalTenantId\":\"tenant-bench\","
                      "\"live\":true,\"model\":\"gpt-4o\",\"temperature\":0.7}",
                      cfg.prefix, seq);
        c->key[0] = '\0';
    } else {
        snprintf(c->key, sizeof(c->key), "agent-%s-%" PRIu64, cfg.prefix, seq);
        bl = snprintf(body, sizeof(body),
                      "{\"event\":\"agent.updated\",\"data\":{\"uid\":\"%s\","
                      "\"externalTenantId\":\"tenant-bench\",\"agentName\":\"bench-%s-%" PRIu64
                      "\",\"live\":true,\"model\":\"gpt-4o\",\"temperature\":0.7,"
                      "\"description\":\"Published by another service.\","
                      "\"instructions\":\"Answer in one short paragraph.\","
                      "\"updatedAt\":\"2026-01-01T00:00:00.000Z\"}}",
                      c->key, cfg.prefix, seq);
    }
    if (bl < 0 || (size_t)bl >= sizeof(body))
        return -1;
    int n = snprintf(c->out, sizeof(c->out),
                     "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer %s\r\n"
                     "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                     path_buf, cfg.port, cfg.api_key, bl, body);
    if (n < 0 || (size_t)n >= sizeof(c->out))
        return -1;
    c->out_len = (size_t)n;
    c->out_off = 0;
    return 0;
}

static void set_out_interest(struct conn *c, int on)
{
    if (c->writing == on)
        return;
    struct epoll_event e = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
    c->writing = on;
}

/* Writes what is left of the request; returns -1 on a broken connection. */
static int write_out(struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                set_out_interest(c, 1);
                return 0;
            }
            return -1;
        }
        c->out_off += (size_t)n;
    }
    set_out_interest(c, 0);
    return 0;
}

static void fail_request(struct conn *c);

/* Sends request seq on an idle connection. */
static void send_on(struct conn *c, uint64_t seq, int64_t due_ns, int64_t due_real)
{
    if (c->fd < 0 && conn_open(c)) {
        errors++;
        return;
    }
    if (build_request(c, seq)) {
        errors++;
        idle[nidle++] = (int)(c - conns);
        return;
    }
    c->busy = 1;
    c->seq = seq;
    c->due_mono_ns = due_ns;
    c->due_real_us = due_real;
    c->send_mono_ns = mono_ns();
    c->send_real_us = real_us();
    c->in_len = 0;
    sent++;
    if (write_out(c))
        fail_request(c);
}

static void keep_rt(int64_t from_send_ns, int64_t from_due_ns)
{
    if (nrt == cap_rt) {
        if (cap_rt >= SAMPLES_MAX)
            return;
        size_t nc = cap_rt ? cap_rt * 2 : 65536;
        uint32_t *a = realloc(rt_us, nc * sizeof(*a));
        if (!a)
            return;
        rt_us = a;
        uint32_t *b = realloc(rtc_us, nc * sizeof(*b));
        if (!b)
            return;
        rtc_us = b;
        cap_rt = nc;
    }
    int64_t a_us = from_send_ns / 1000, b_us = from_due_ns / 1000;
    rt_us[nrt] = a_us > UINT32_MAX ? UINT32_MAX : (uint32_t)a_us;
    rtc_us[nrt] = b_us > UINT32_MAX ? UINT32_MAX : (uint32_t)b_us;
    nrt++;
}

static void keep_record(const struct conn *c, int64_t answer_real, int status)
{
    if (!cfg.out_path)
        return;
    if (nrecs == cap_recs) {
        if (cap_recs >= cfg.max_records) {
            recs_dropped++;
            return;
        }
        size_t nc = cap_recs ? cap_recs * 2 : 16384;
        if (nc > cfg.max_records)
            nc = cfg.max_records;
        struct rec *r = realloc(recs, nc * sizeof(*r));
        if (!r) {
            recs_dropped++;
            return;
        }
        recs = r;
        cap_recs = nc;
    }
    struct rec *r = &recs[nrecs++];
    snprintf(r->key, sizeof(r->key), "%s", c->key[0] ? c->key : "-");
    r->answer_us = answer_real;
    r->send_us = c->send_real_us;
    r->due_us = c->due_real_us;
    r->status = status;
}

static void fail_request(struct conn *c)
{
    errors++;
    answered++;
    c->busy = 0;
    conn_drop(c);
    reconnects++;
    if (conn_open(c) == 0)
        idle[nidle++] = (int)(c - conns);
}

/* Finds the string value after `key` in [p, p+n). */
static void str_after(const char *p, size_t n, const char *key, char *out, size_t outsz)
{
    size_t kl = strlen(key);
    const char *k = memmem(p, n, key, kl);
    out[0] = '\0';
    if (!k)
        return;
    const char *v = k + kl, *end = p + n;
    size_t i = 0;
    while (v < end && *v != '"' && i + 1 < outsz)
        out[i++] = *v++;
    out[i] = '\0';
}

/* Parses a complete answer in c->in; returns 1 done, 0 need more, -1 malformed. */
static int parse_answer(struct conn *c, int *status, int *close_after)
{
    const char *hend = memmem(c->in, c->in_len, "\r\n\r\n", 4);
    if (!hend)
        return c->in_len >= IN_MAX ? -1 : 0;
    size_t head = (size_t)(hend - c->in) + 4;
    if (c->in_len < 12 || memcmp(c->in, "HTTP/1.", 7) != 0)
        return -1;
    *status = (c->in[9] - '0') * 100 + (c->in[10] - '0') * 10 + (c->in[11] - '0');
    size_t clen = 0;
    int have_len = 0;
    *close_after = 0;
    const char *line = memchr(c->in, '\n', head);
    while (line && line + 1 < c->in + head) {
        line++;
        const char *eol = memchr(line, '\n', (size_t)(c->in + head - line));
        if (!eol)
            break;
        size_t ll = (size_t)(eol - line);
        if (ll > 15 && strncasecmp(line, "content-length:", 15) == 0) {
            char *endp;
            errno = 0;
            unsigned long long v = strtoull(line + 15, &endp, 10);
            if (errno || endp == line + 15 || v > IN_MAX)
                return -1;
            clen = (size_t)v;
            have_len = 1;
        } else if (ll > 26 && strncasecmp(line, "transfer-encoding: chunked", 26) == 0) {
            return -1; /* hookline answers with a length; chunked is not expected here */
        } else if (ll >= 17 && strncasecmp(line, "connection: close", 17) == 0) {
            *close_after = 1;
        }
        line = eol;
    }
    if (!have_len && *status != 204 && *status != 304)
        return -1;
    if (c->in_len < head + clen)
        return c->in_len >= IN_MAX ? -1 : 0;
    if (c->in_len > head + clen)
        return -1; /* nothing is pipelined: extra bytes are an error */
    if (cfg.kind == K_AGENTS && *status / 100 == 2)
        str_after(c->in + head, clen, "\"uid\":\"", c->key, sizeof(c->key));
    return 1;
}

static void on_answer(struct conn *c, int status, int close_after)
{
    int64_t now = mono_ns();
    int64_t answer_real = real_us();
    answered++;
    int cls = status / 100;
    status_hist[cls >= 1 && cls <= 5 ? cls - 1 : 5]++;
    if (cls == 2)
        ok2xx++;
    else
        non2xx++;
    keep_rt(now - c->send_mono_ns, now - (c->due_mono_ns ? c->due_mono_ns : c->send_mono_ns));
    keep_record(c, answer_real, status);
    c->busy = 0;
    c->in_len = 0;
    if (close_after) {
        conn_drop(c);
        reconnects++;
        if (conn_open(c)) {
            errors++;
            return;
        }
    }
    idle[nidle++] = (int)(c - conns);
}

static void on_event(struct conn *c, uint32_t events)
{
    if (c->fd < 0)
        return;
    if (events & EPOLLOUT) {
        if (write_out(c)) {
            fail_request(c);
            return;
        }
    }
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        return;
    ssize_t n = recv(c->fd, c->in + c->in_len, IN_MAX - c->in_len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        if (c->busy) {
            fail_request(c);
        } else {
            /* The server closed an idle connection: open a fresh one in its place. */
            for (int i = 0; i < nidle; i++)
                if (idle[i] == (int)(c - conns)) {
                    idle[i] = idle[--nidle];
                    break;
                }
            conn_drop(c);
            reconnects++;
            if (conn_open(c) == 0)
                idle[nidle++] = (int)(c - conns);
        }
        return;
    }
    c->in_len += (size_t)n;
    if (!c->busy) {
        c->in_len = 0; /* bytes nobody asked for */
        errors++;
        return;
    }
    int status = 0, close_after = 0;
    int r = parse_answer(c, &status, &close_after);
    if (r < 0)
        fail_request(c);
    else if (r > 0)
        on_answer(c, status, close_after);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static uint32_t pct(const uint32_t *v, size_t n, double p)
{
    if (!n)
        return 0;
    size_t i = (size_t)(p / 100.0 * (double)n);
    if (i >= n)
        i = n - 1;
    return v[i];
}

static int write_records(void)
{
    FILE *f = fopen(cfg.out_path, "w");
    if (!f)
        return -1;
    for (size_t i = 0; i < nrecs; i++)
        fprintf(f, "%s %" PRId64 " %" PRId64 " %" PRId64 " %d\n", recs[i].key, recs[i].answer_us,
                recs[i].send_us, recs[i].due_us, recs[i].status);
    int rc = ferror(f) ? -1 : 0;
    if (fclose(f))
        rc = -1;
    return rc;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: hl-load -p PORT -a APP_UID -k API_KEY [-K agents|events] [-c CONNS]\n"
            "               [-d SECONDS] [-r RATE (0: closed loop)] [-n MAX_REQUESTS]\n"
            "               [-g GRACE_SECONDS] [-o RECORDS_FILE] [-m MAX_RECORDS] [-x PREFIX]\n");
}

static int parse_args(int argc, char **argv)
{
    cfg.conns = 16;
    cfg.duration_s = 5;
    cfg.max_requests = 100000000;
    cfg.grace_s = 10;
    cfg.max_records = 2000000;
    cfg.prefix = "x";
    cfg.kind = K_AGENTS;
    long long v;
    int opt;
    while ((opt = getopt(argc, argv, "p:a:k:K:c:d:r:n:g:o:m:x:")) != -1) {
        switch (opt) {
        case 'p':
            if (parse_ll(optarg, 1, 65535, &v))
                return -1;
            cfg.port = (int)v;
            break;
        case 'a':
            cfg.app = optarg;
            break;
        case 'k':
            cfg.api_key = optarg;
            break;
        case 'K':
            if (strcmp(optarg, "agents") == 0)
                cfg.kind = K_AGENTS;
            else if (strcmp(optarg, "events") == 0)
                cfg.kind = K_EVENTS;
            else
                return -1;
            break;
        case 'c':
            if (parse_ll(optarg, 1, CONNS_MAX, &v))
                return -1;
            cfg.conns = (int)v;
            break;
        case 'd':
            if (parse_dbl(optarg, 0.1, 3600, &cfg.duration_s))
                return -1;
            break;
        case 'r':
            if (parse_dbl(optarg, 0, 1e6, &cfg.rate))
                return -1;
            break;
        case 'n':
            if (parse_ll(optarg, 1, 1000000000LL, &v))
                return -1;
            cfg.max_requests = (uint64_t)v;
            break;
        case 'g':
            if (parse_dbl(optarg, 0, 600, &cfg.grace_s))
                return -1;
            break;
        case 'o':
            cfg.out_path = optarg;
            break;
        case 'm':
            if (parse_ll(optarg, 1, 50000000, &v))
                return -1;
            cfg.max_records = (uint64_t)v;
            break;
        case 'x':
            if (strlen(optarg) > 16 ||
                strspn(optarg, "abcdefghijklmnopqrstuvwxyz0123456789") != strlen(optarg))
                return -1;
            cfg.prefix = optarg;
            break;
        default:
            return -1;
        }
    }
    if (!cfg.port || !cfg.app || !cfg.api_key || optind != argc)
        return -1;
    if (strlen(cfg.api_key) > 200 || strlen(cfg.app) > 64)
        return -1;
    int n = snprintf(path_buf, sizeof(path_buf), "/api/v1/appuid/%s/%s", cfg.app,
                     cfg.kind == K_AGENTS ? "agents" : "events");
    return n > 0 && (size_t)n < sizeof(path_buf) ? 0 : -1;
}

static void arm_timer(int tfd, int64_t at_ns)
{
    struct itimerspec its = {0};
    if (at_ns <= 0)
        at_ns = 1; /* 0 would disarm */
    its.it_value.tv_sec = at_ns / 1000000000;
    its.it_value.tv_nsec = at_ns % 1000000000;
    timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

int main(int argc, char **argv)
{
    if (parse_args(argc, argv)) {
        usage();
        return 2;
    }
    int rc = 1;
    int tfd = -1;
    ep = epoll_create1(EPOLL_CLOEXEC);
    conns = calloc((size_t)cfg.conns, sizeof(*conns));
    idle = calloc((size_t)cfg.conns, sizeof(*idle));
    if (ep < 0 || !conns || !idle) {
        fprintf(stderr, "hl-load: out of resources\n");
        goto out;
    }
    for (int i = 0; i < cfg.conns; i++)
        conns[i].fd = -1;
    for (int i = 0; i < cfg.conns; i++) {
        if (conn_open(&conns[i])) {
            fprintf(stderr, "hl-load: cannot connect to 127.0.0.1:%d: %s\n", cfg.port,
                    strerror(errno));
            goto out;
        }
        idle[nidle++] = i;
    }
    tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    static int timer_marker;
    struct epoll_event te = {.events = EPOLLIN, .data.ptr = &timer_marker};
    if (tfd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &te)) {
        fprintf(stderr, "hl-load: timerfd: %s\n", strerror(errno));
        goto out;
    }
    int open_loop = cfg.rate > 0;
    double period_ns = open_loop ? 1e9 / cfg.rate : 0;
    int64_t t0 = mono_ns();
    int64_t t0_real = real_us();
    int64_t end_ns = t0 + (int64_t)(cfg.duration_s * 1e9);
    int64_t hard_end = end_ns + (int64_t)(cfg.grace_s * 1e9);
    uint64_t total = cfg.max_requests;
    if (open_loop) {
        uint64_t planned = (uint64_t)(cfg.duration_s * cfg.rate);
        if (planned < total)
            total = planned;
    }
    arm_timer(tfd, open_loop ? t0 : end_ns);
    struct epoll_event evs[256];
    int64_t send_end_ns = 0;
    for (;;) {
        int64_t now = mono_ns();
        /* Start what is due on idle connections. Open loop: every planned request goes out,
         * late if need be (skipping the late ones would hide a stall); closed loop: until the
         * time is up. */
        while (nidle > 0 && next_seq < total && (open_loop || now < end_ns)) {
            int64_t due = 0, due_real = 0;
            if (open_loop) {
                due = t0 + (int64_t)((double)next_seq * period_ns);
                if (due > now)
                    break;
                if (now - due > 1000000)
                    late++;
                if (now - due > max_lag_ns)
                    max_lag_ns = now - due;
                due_real = t0_real + (due - t0) / 1000;
            }
            struct conn *c = &conns[idle[--nidle]];
            send_on(c, next_seq++, due, due_real);
        }
        int outstanding = 0;
        for (int i = 0; i < cfg.conns; i++)
            outstanding += conns[i].busy;
        if ((next_seq >= total || (!open_loop && now >= end_ns)) && !send_end_ns)
            send_end_ns = now;
        if (send_end_ns && !outstanding)
            break;
        if (now >= hard_end) {
            fprintf(stderr, "hl-load: %d answers still outstanding after the grace period\n",
                    outstanding);
            errors += (uint64_t)outstanding;
            break;
        }
        if (open_loop && next_seq < total) {
            int64_t due = t0 + (int64_t)((double)next_seq * period_ns);
            arm_timer(tfd, due > now ? due : now + 100000);
        } else {
            arm_timer(tfd, send_end_ns ? hard_end : end_ns);
        }
        int n = epoll_wait(ep, evs, 256, 1000);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == &timer_marker) {
                uint64_t exp;
                ssize_t r = read(tfd, &exp, sizeof(exp));
                (void)r;
                continue;
            }
            on_event(evs[i].data.ptr, evs[i].events);
        }
    }
    /* Until the last answer: in closed loop the answers in flight at the end count too. */
    double elapsed = (double)(mono_ns() - t0) / 1e9;
    uint64_t unsent = next_seq < total && open_loop ? total - next_seq : 0;
    qsort(rt_us, nrt, sizeof(*rt_us), cmp_u32);
    qsort(rtc_us, nrt, sizeof(*rtc_us), cmp_u32);
    if (cfg.out_path && write_records()) {
        fprintf(stderr, "hl-load: cannot write %s\n", cfg.out_path);
        goto out;
    }
    printf("{\"kind\":\"%s\",\"mode\":\"%s\",\"rate_target\":%.1f,\"conns\":%d,"
           "\"duration_s\":%.3f,\"sent\":%" PRIu64 ",\"answered\":%" PRIu64 ",\"ok\":%" PRIu64
           ",\"non2xx\":%" PRIu64 ",\"errors\":%" PRIu64 ",\"reconnects\":%" PRIu64
           ",\"status\":{\"1xx\":%" PRIu64 ",\"2xx\":%" PRIu64 ",\"3xx\":%" PRIu64
           ",\"4xx\":%" PRIu64 ",\"5xx\":%" PRIu64 ",\"other\":%" PRIu64
           "},\"ok_per_s\":%.1f,\"late_sends\":%" PRIu64 ",\"max_send_lag_us\":%" PRId64
           ",\"rt_us\":{\"p50\":%u,\"p95\":%u,\"p99\":%u,\"p999\":%u,\"max\":%u},"
           "\"rt_corrected_us\":{\"p50\":%u,\"p95\":%u,\"p99\":%u,\"p999\":%u,\"max\":%u},"
           "\"records\":%zu,\"records_dropped\":%" PRIu64 ",\"unsent\":%" PRIu64 "}\n",
           cfg.kind == K_AGENTS ? "agents" : "events", open_loop ? "open" : "closed", cfg.rate,
           cfg.conns, elapsed, sent, answered, ok2xx, non2xx, errors, reconnects, status_hist[0],
           status_hist[1], status_hist[2], status_hist[3], status_hist[4], status_hist[5],
           elapsed > 0 ? (double)ok2xx / elapsed : 0.0, late, max_lag_ns / 1000,
           pct(rt_us, nrt, 50), pct(rt_us, nrt, 95), pct(rt_us, nrt, 99), pct(rt_us, nrt, 99.9),
           nrt ? rt_us[nrt - 1] : 0, pct(rtc_us, nrt, 50), pct(rtc_us, nrt, 95),
           pct(rtc_us, nrt, 99), pct(rtc_us, nrt, 99.9), nrt ? rtc_us[nrt - 1] : 0, nrecs,
           recs_dropped, unsent);
    rc = 0;
out:
    if (conns)
        for (int i = 0; i < cfg.conns; i++)
            conn_drop(&conns[i]);
    if (tfd >= 0)
        close(tfd);
    if (ep >= 0)
        close(ep);
    free(conns);
    free(idle);
    free(rt_us);
    free(rtc_us);
    free(recs);
    return rc;
}
