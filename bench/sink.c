/* hl-sink: a fast HTTP/1.1 receiver for the benchmarks.
 *
 * Answers 200 "ok" to every POST on keep-alive connections (epoll, one thread per core, each with
 * its own SO_REUSEPORT listening socket), counts them, and, while recording is on, keeps for each
 * POST its arrival time (CLOCK_REALTIME, µs), path, body length, and the body's "eventId",
 * "timestamp" and "data.uid". Control endpoints (GET):
 *   /count        POSTs since the last reset
 *   /stats        count, records kept, records dropped (over the cap), malformed requests
 *   /reset        count and records back to zero, recording off
 *   /record/on    start recording; /record/off stops it
 *   /dump         writes the records to the -o file as text, one line each:
 *                 "t_us path body_len eventId data.uid timestamp" ("-" for what is missing)
 *   /last         the raw bytes (head and body) of the first POST since the last reset
 * Every buffer has a fixed size; a request that does not fit is answered 413 and the connection
 * closed. Loopback only.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "args.h"

#define IN_MAX (64 * 1024)
#define OUT_MAX (IN_MAX + 1024)
#define KEY_MAX 48
#define PATH_KEEP 40
#define THREADS_MAX 64
#define EVENTS_MAX 256

struct rec {
    int64_t t_us;
    uint32_t body_len;
    char path[PATH_KEEP];
    char event_id[KEY_MAX];
    char uid[KEY_MAX];
    char ts[32];
    atomic_int ready;
};

struct conn {
    int fd;
    char *in;
    size_t in_len;
    char *out;
    size_t out_len, out_off;
    int close_after;
    uint32_t interest;
    struct conn *prev, *next;
};

struct worker {
    pthread_t thread;
    int lfd;
    int ep;
    struct conn *conns;
    _Alignas(64) atomic_uint_fast64_t posts;
    atomic_uint_fast64_t bad;
};

static struct worker workers[THREADS_MAX];
static int nworkers;
static atomic_int stop_flag;
static atomic_int recording;
static atomic_uint_fast64_t count_base;
static atomic_uint_fast64_t rec_next;
static atomic_uint_fast64_t rec_dropped;
static struct rec *recs;
static uint64_t rec_cap;
static const char *dump_path;

static pthread_mutex_t last_mu = PTHREAD_MUTEX_INITIALIZER;
static char last_req[IN_MAX];
static size_t last_len;
static atomic_int last_set;

static int listen_marker;

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static uint64_t posts_total(void)
{
    uint64_t sum = 0;
    for (int i = 0; i < nworkers; i++)
        sum += atomic_load_explicit(&workers[i].posts, memory_order_relaxed);
    return sum;
}

static uint64_t bad_total(void)
{
    uint64_t sum = 0;
    for (int i = 0; i < nworkers; i++)
        sum += atomic_load_explicit(&workers[i].bad, memory_order_relaxed);
    return sum;
}

/* Copies the JSON string value that follows `key` (e.g. "\"eventId\":\"") in [p, p+n) into out.
 * Returns 1 if found. */
static int json_str_after(const char *p, size_t n, const char *key, char *out, size_t outsz)
{
    size_t kl = strlen(key);
    const char *k = memmem(p, n, key, kl);
    out[0] = '\0';
    if (!k)
        return 0;
    const char *v = k + kl;
    const char *end = p + n;
    size_t i = 0;
    while (v < end && *v != '"' && i + 1 < outsz)
        out[i++] = *v++;
    out[i] = '\0';
    return 1;
}

static void record(const char *path, size_t path_len, const char *body, size_t body_len,
                   int64_t t_us)
{
    uint64_t i = atomic_fetch_add_explicit(&rec_next, 1, memory_order_relaxed);
    if (i >= rec_cap) {
        atomic_fetch_add_explicit(&rec_dropped, 1, memory_order_relaxed);
        return;
    }
    struct rec *r = &recs[i];
    r->t_us = t_us;
    r->body_len = (uint32_t)body_len;
    size_t pl = path_len < PATH_KEEP - 1 ? path_len : PATH_KEEP - 1;
    memcpy(r->path, path, pl);
    r->path[pl] = '\0';
    json_str_after(body, body_len, "\"eventId\":\"", r->event_id, sizeof(r->event_id));
    json_str_after(body, body_len, "\"timestamp\":\"", r->ts, sizeof(r->ts));
    const char *data = memmem(body, body_len, "\"data\":{", 8);
    if (data)
        json_str_after(data, body_len - (size_t)(data - body), "\"uid\":\"", r->uid,
                       sizeof(r->uid));
    else
        r->uid[0] = '\0';
    atomic_store_explicit(&r->ready, 1, memory_order_release);
}

static int dump_records(uint64_t *written)
{
    *written = 0;
    if (!dump_path)
        return -1;
    FILE *f = fopen(dump_path, "w");
    if (!f)
        return -1;
    uint64_t n = atomic_load(&rec_next);
    if (n > rec_cap)
        n = rec_cap;
    for (uint64_t i = 0; i < n; i++) {
        struct rec *r = &recs[i];
        if (!atomic_load_explicit(&r->ready, memory_order_acquire))
            continue;
        fprintf(f, "%" PRId64 " %s %u %s %s %s\n", r->t_us, r->path[0] ? r->path : "-", r->body_len,
                r->event_id[0] ? r->event_id : "-", r->uid[0] ? r->uid : "-",
                r->ts[0] ? r->ts : "-");
        (*written)++;
    }
    int rc = ferror(f) ? -1 : 0;
    if (fclose(f))
        rc = -1;
    return rc;
}

static void reset_all(void)
{
    atomic_store(&recording, 0);
    uint64_t n = atomic_load(&rec_next);
    if (n > rec_cap)
        n = rec_cap;
    for (uint64_t i = 0; i < n; i++)
        atomic_store_explicit(&recs[i].ready, 0, memory_order_relaxed);
    atomic_store(&rec_next, 0);
    atomic_store(&rec_dropped, 0);
    atomic_store(&count_base, posts_total());
    pthread_mutex_lock(&last_mu);
    last_set = 0;
    last_len = 0;
    pthread_mutex_unlock(&last_mu);
}

/* Appends an answer to c->out; the caller made sure it fits. */
static void answer(struct conn *c, int status, const char *body, size_t len)
{
    const char *reason = status == 200   ? "OK"
                         : status == 404 ? "Not Found"
                         : status == 413 ? "Content Too Large"
                         : status == 400 ? "Bad Request"
                                         : "Internal Server Error";
    int h = snprintf(c->out + c->out_len, OUT_MAX - c->out_len,
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n%s\r\n",
                     status, reason, len, c->close_after ? "Connection: close\r\n" : "");
    if (h < 0 || (size_t)h >= OUT_MAX - c->out_len) {
        c->close_after = 1;
        return;
    }
    c->out_len += (size_t)h;
    if (len > OUT_MAX - c->out_len)
        len = OUT_MAX - c->out_len;
    memcpy(c->out + c->out_len, body, len);
    c->out_len += len;
}

static int path_is(const char *p, size_t n, const char *want)
{
    size_t wl = strlen(want);
    return n == wl && memcmp(p, want, wl) == 0;
}

static void control(struct conn *c, const char *path, size_t plen)
{
    char body[256];
    int n;
    if (path_is(path, plen, "/count")) {
        n = snprintf(body, sizeof(body), "%" PRIu64 "\n", posts_total() - atomic_load(&count_base));
    } else if (path_is(path, plen, "/stats")) {
        uint64_t kept = atomic_load(&rec_next);
        n = snprintf(body, sizeof(body),
                     "{\"count\":%" PRIu64 ",\"records\":%" PRIu64 ",\"dropped\":%" PRIu64
                     ",\"malformed\":%" PRIu64 ",\"recording\":%d}\n",
                     posts_total() - atomic_load(&count_base), kept > rec_cap ? rec_cap : kept,
                     atomic_load(&rec_dropped), bad_total(), atomic_load(&recording));
    } else if (path_is(path, plen, "/reset")) {
        reset_all();
        n = snprintf(body, sizeof(body), "reset\n");
    } else if (path_is(path, plen, "/record/on")) {
        atomic_store(&recording, 1);
        n = snprintf(body, sizeof(body), "recording\n");
    } else if (path_is(path, plen, "/record/off")) {
        atomic_store(&recording, 0);
        n = snprintf(body, sizeof(body), "not recording\n");
    } else if (path_is(path, plen, "/dump")) {
        uint64_t w;
        if (dump_records(&w)) {
            n = snprintf(body, sizeof(body), "cannot write %s\n",
                         dump_path ? dump_path : "(no -o)");
            answer(c, 500, body, (size_t)n);
            return;
        }
        n = snprintf(body, sizeof(body), "%" PRIu64 "\n", w);
    } else if (path_is(path, plen, "/last")) {
        pthread_mutex_lock(&last_mu);
        answer(c, last_set ? 200 : 404, last_req, last_set ? last_len : 0);
        pthread_mutex_unlock(&last_mu);
        return;
    } else {
        answer(c, 404, "not found\n", 10);
        return;
    }
    answer(c, 200, body, (size_t)n);
}

/* Handles every complete request in c->in while the answers fit; returns 0, or -1 to close. */
static int process(struct worker *w, struct conn *c)
{
    size_t off = 0;
    int64_t t = 0;
    while (!c->close_after && OUT_MAX - c->out_len >= 512) {
        const char *p = c->in + off;
        size_t avail = c->in_len - off;
        const char *hend = memmem(p, avail, "\r\n\r\n", 4);
        if (!hend) {
            if (avail >= IN_MAX) {
                atomic_fetch_add_explicit(&w->bad, 1, memory_order_relaxed);
                c->close_after = 1;
                answer(c, 413, "head too large\n", 15);
            }
            break;
        }
        size_t head_len = (size_t)(hend - p) + 4;
        const char *sp1 = memchr(p, ' ', head_len);
        const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', head_len - (size_t)(sp1 + 1 - p)) : NULL;
        if (!sp1 || !sp2) {
            atomic_fetch_add_explicit(&w->bad, 1, memory_order_relaxed);
            c->close_after = 1;
            answer(c, 400, "bad request line\n", 17);
            break;
        }
        const char *path = sp1 + 1;
        size_t plen = (size_t)(sp2 - path);
        int is_post = (size_t)(sp1 - p) == 4 && memcmp(p, "POST", 4) == 0;
        size_t clen = 0;
        int bad_len = 0;
        const char *line = memchr(p, '\n', head_len);
        while (line && line + 1 < p + head_len) {
            line++;
            const char *eol = memchr(line, '\n', (size_t)(p + head_len - line));
            if (!eol)
                break;
            size_t ll = (size_t)(eol - line);
            if (ll > 15 && strncasecmp(line, "content-length:", 15) == 0) {
                char num[24];
                size_t k = 0;
                const char *v = line + 15;
                while (v < eol && (*v == ' ' || *v == '\t'))
                    v++;
                while (v < eol && *v >= '0' && *v <= '9' && k + 1 < sizeof(num))
                    num[k++] = *v++;
                num[k] = '\0';
                char *endp;
                errno = 0;
                unsigned long long cl = strtoull(num, &endp, 10);
                if (k == 0 || *endp || errno)
                    bad_len = 1;
                else
                    clen = cl > IN_MAX ? IN_MAX + 1 : (size_t)cl;
            } else if (ll >= 17 && strncasecmp(line, "connection: close", 17) == 0) {
                c->close_after = 1;
            }
            line = eol;
        }
        if (bad_len || clen > IN_MAX - head_len) {
            atomic_fetch_add_explicit(&w->bad, 1, memory_order_relaxed);
            c->close_after = 1;
            answer(c, 413, "body too large\n", 15);
            break;
        }
        if (avail < head_len + clen)
            break; /* the rest of the body has not come yet */
        const char *body = p + head_len;
        if (is_post) {
            atomic_fetch_add_explicit(&w->posts, 1, memory_order_relaxed);
            if (atomic_load_explicit(&recording, memory_order_relaxed)) {
                if (!t)
                    t = now_us();
                record(path, plen, body, clen, t);
            }
            if (!atomic_load_explicit(&last_set, memory_order_relaxed)) {
                pthread_mutex_lock(&last_mu);
                if (!last_set && head_len + clen <= sizeof(last_req)) {
                    memcpy(last_req, p, head_len + clen);
                    last_len = head_len + clen;
                    atomic_store(&last_set, 1);
                }
                pthread_mutex_unlock(&last_mu);
            }
            answer(c, 200, "ok", 2);
        } else {
            control(c, path, plen);
        }
        off += head_len + clen;
    }
    if (off) {
        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= off;
    }
    return 0;
}

/* Writes what is queued; returns 1 when all is written, 0 when the socket is full, -1 on error. */
static int flush_out(struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            return -1;
        }
        c->out_off += (size_t)n;
    }
    c->out_off = c->out_len = 0;
    return 1;
}

static void conn_close(struct worker *w, struct conn *c)
{
    epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c->in);
    free(c->out);
    free(c);
}

static void set_interest(struct worker *w, struct conn *c, uint32_t ev)
{
    if (c->interest == ev)
        return;
    struct epoll_event e = {.events = ev, .data.ptr = c};
    epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &e);
    c->interest = ev;
}

/* Processes input and writes answers; closes the connection when it is done with. */
static void pump(struct worker *w, struct conn *c)
{
    for (;;) {
        size_t before = c->in_len;
        process(w, c);
        int f = flush_out(c);
        if (f < 0) {
            conn_close(w, c);
            return;
        }
        if (f == 0) {
            set_interest(w, c, EPOLLOUT);
            return;
        }
        if (c->close_after) {
            conn_close(w, c);
            return;
        }
        /* Go round again only if a full out buffer held complete requests back. */
        if (c->in_len == before || c->in_len == 0)
            break;
    }
    set_interest(w, c, EPOLLIN);
}

static void on_readable(struct worker *w, struct conn *c)
{
    if (c->in_len >= IN_MAX) {
        pump(w, c);
        return;
    }
    ssize_t n = recv(c->fd, c->in + c->in_len, IN_MAX - c->in_len, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        conn_close(w, c);
        return;
    }
    if (n > 0)
        c->in_len += (size_t)n;
    pump(w, c);
}

static void on_accept(struct worker *w)
{
    for (;;) {
        int fd = accept4(w->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct conn *c = calloc(1, sizeof(*c));
        if (c) {
            c->in = malloc(IN_MAX);
            c->out = malloc(OUT_MAX);
        }
        if (!c || !c->in || !c->out) {
            if (c) {
                free(c->in);
                free(c->out);
            }
            free(c);
            close(fd);
            continue;
        }
        c->fd = fd;
        c->interest = EPOLLIN;
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &e)) {
            free(c->in);
            free(c->out);
            free(c);
            close(fd);
            continue;
        }
        c->next = w->conns;
        if (w->conns)
            w->conns->prev = c;
        w->conns = c;
    }
}

static void *run(void *arg)
{
    struct worker *w = arg;
    struct epoll_event evs[EVENTS_MAX];
    while (!atomic_load_explicit(&stop_flag, memory_order_relaxed)) {
        int n = epoll_wait(w->ep, evs, EVENTS_MAX, 200);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == &listen_marker) {
                on_accept(w);
                continue;
            }
            struct conn *c = evs[i].data.ptr;
            if (evs[i].events & EPOLLOUT) {
                int f = flush_out(c);
                if (f < 0 || (f == 1 && c->close_after)) {
                    conn_close(w, c);
                    continue;
                }
                if (f == 1)
                    pump(w, c);
                continue;
            }
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                on_readable(w, c);
        }
    }
    while (w->conns)
        conn_close(w, w->conns);
    return NULL;
}

static int open_listener(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 4096)) {
        close(fd);
        return -1;
    }
    return fd;
}

static void usage(void)
{
    fprintf(stderr, "usage: hl-sink -p PORT [-t THREADS] [-m MAX_RECORDS] [-o DUMP_FILE]\n");
}

int main(int argc, char **argv)
{
    long long port = -1, threads = sysconf(_SC_NPROCESSORS_ONLN), cap = 1000000;
    int opt;
    while ((opt = getopt(argc, argv, "p:t:m:o:")) != -1) {
        switch (opt) {
        case 'p':
            if (parse_ll(optarg, 0, 65535, &port))
                return usage(), 2;
            break;
        case 't':
            if (parse_ll(optarg, 1, THREADS_MAX, &threads))
                return usage(), 2;
            break;
        case 'm':
            if (parse_ll(optarg, 1, 50000000, &cap))
                return usage(), 2;
            break;
        case 'o':
            dump_path = optarg;
            break;
        default:
            usage();
            return 2;
        }
    }
    if (port < 0 || threads < 1) {
        usage();
        return 2;
    }
    if (threads > THREADS_MAX)
        threads = THREADS_MAX;
    rec_cap = (uint64_t)cap;
    recs = calloc(rec_cap, sizeof(*recs));
    if (!recs) {
        fprintf(stderr, "hl-sink: no memory for %llu records\n", cap);
        return 1;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    int rc = 1;
    for (nworkers = 0; nworkers < threads; nworkers++) {
        struct worker *w = &workers[nworkers];
        w->lfd = open_listener((int)port);
        if (w->lfd < 0) {
            fprintf(stderr, "hl-sink: cannot listen on 127.0.0.1:%lld: %s\n", port,
                    strerror(errno));
            goto out;
        }
        if (port == 0) {
            struct sockaddr_in a;
            socklen_t al = sizeof(a);
            getsockname(w->lfd, (struct sockaddr *)&a, &al);
            port = ntohs(a.sin_port);
        }
        w->ep = epoll_create1(EPOLL_CLOEXEC);
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = &listen_marker};
        if (w->ep < 0 || epoll_ctl(w->ep, EPOLL_CTL_ADD, w->lfd, &e)) {
            fprintf(stderr, "hl-sink: epoll: %s\n", strerror(errno));
            close(w->lfd);
            if (w->ep >= 0)
                close(w->ep);
            goto out;
        }
        if (pthread_create(&w->thread, NULL, run, w)) {
            fprintf(stderr, "hl-sink: cannot start a thread\n");
            close(w->lfd);
            close(w->ep);
            goto out;
        }
    }
    printf("hl-sink listening on 127.0.0.1:%lld with %d threads\n", port, nworkers);
    fflush(stdout);
    int sig;
    sigwait(&set, &sig);
    rc = 0;
out:
    atomic_store(&stop_flag, 1);
    for (int i = 0; i < nworkers; i++) {
        pthread_join(workers[i].thread, NULL);
        close(workers[i].lfd);
        close(workers[i].ep);
    }
    free(recs);
    return rc;
}
