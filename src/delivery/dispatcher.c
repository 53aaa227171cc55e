#include "delivery/dispatcher.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/ids.h"
#include "common/log.h"
#include "crypto/sign.h"

/* Two threads share the work (see dispatcher.h): the transfer thread owns the curl multi handle,
 * the transfers and the per-webhook and per-host counts; the bookkeeper owns every store call
 * (claims, records, the next due time). They meet under `mu` in three places: claimed jobs
 * (`ready`, bookkeeper → transfers), finished attempts (`results`, transfers → bookkeeper) and
 * what the transfer thread has taken on (`net_busy`, `skip`), which bounds the next claim. */

/* One attempt in flight. Its easy handle keeps the options every attempt shares. */
struct xfer {
    CURL *easy;
    struct hl_job job;
    struct curl_slist *headers;
    char response[HL_RESPONSE_KEEP];
    size_t response_len;
    char retry_after[64];
    char errbuf[CURL_ERROR_SIZE];
    struct hl_target_guard guard;
    uint64_t host;
    int64_t started_at;
    int64_t started_us;
    size_t idx; /* position in hl_dispatcher.active */
    struct xfer *next_free;
};

/* A finished attempt on its way to the bookkeeper; its error text and response bytes follow it
 * in the same allocation. */
struct result {
    struct hl_attempt a;
};

/* Counts per key (a webhook id, or a host's hash): open addressing; a table is rebuilt without
 * its zero entries when one drops to zero, so probes stay short. */
struct slot {
    uint64_t key;
    uint64_t host; /* a webhook's: its host's key */
    int inflight;  /* attempts in flight */
    int queued;    /* claimed jobs held back by a cap */
};

struct counts {
    struct slot *s;
    size_t n; /* a power of two, at least twice the most keys ever present */
};

struct hl_dispatcher {
    struct hl_store *st;
    struct hl_dispatcher_config cfg;
    CURLM *multi;
    pthread_t net_thread, book_thread;

    /* Shared, under mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv; /* the bookkeeper waits here: results, commits, room, stop */
    int stop;
    int net_done;         /* the transfer thread has published its last results */
    struct hl_job *ready; /* claimed, not yet taken by the transfer thread */
    size_t nready;
    struct result **results; /* finished attempts waiting to be recorded */
    size_t nresults;
    size_t recording; /* results the bookkeeper has taken and not yet recorded */
    size_t net_busy;  /* jobs the transfer thread holds: in flight or held back */
    int64_t *skip;    /* webhooks not to claim for: saturated, or with jobs held back */
    size_t nskip;
    int room_freed; /* the skip list lost a webhook since the last claim */
    struct hl_dispatcher_stats stats;

    /* The transfer thread's own. */
    struct xfer *free_list;
    struct xfer **active; /* the transfers in flight, [0, inflight) */
    size_t inflight;
    struct hl_job *waiting; /* claimed, held back by a webhook's or a host's cap, in order */
    uint64_t *waiting_host; /* host_key() of each */
    size_t nwaiting;
    struct counts by_webhook, by_host;
    int counts_dirty;     /* the skip list must be rebuilt */
    int slot_freed;       /* a cap has room again: held-back jobs may start */
    struct hl_job *taken; /* jobs just taken from ready */
    struct result **out;  /* results of this turn, published together */
    size_t nout;
    uint32_t rng;

    /* What to tell after a batch is recorded (hl_dispatcher_on_recorded), under hook_mu. */
    pthread_mutex_t hook_mu;
    void (*on_recorded)(void *arg, const struct hl_attempt *a, size_t n);
    void *on_recorded_arg;

    /* The bookkeeper's own. */
    uint64_t seen_seq;
    int64_t next_due;      /* wall ms of the next due delivery we know of; 0: ask the store */
    int claim_full;        /* the last claim filled its batch: more may be due */
    int fresh_ok;          /* the store claims new deliveries by id (hl_store_claim_new) */
    int64_t fresh_after;   /* where the next claim of new deliveries starts */
    int fresh_full;        /* the last claim of new deliveries filled its batch */
    int more_due;          /* the last claim left due deliveries behind (a webhook's share of a
                            * claim is bounded, and busy webhooks are skipped) */
    int64_t last_claim_ms; /* monotonic time of the last claim */
    struct result **batch; /* results being recorded */
    int64_t *skip_copy;    /* the skip list as the last claim saw it */
    struct hl_attempt *attempts;
};

static uint32_t rnd(struct hl_dispatcher *d)
{
    /* xorshift32, seeded from the CSPRNG: jitter needs spread, not secrecy. */
    uint32_t x = d->rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    d->rng = x;
    return x;
}

/* ---- counts per webhook and per host (transfer thread) ---- */

static int counts_init(struct counts *c, size_t most)
{
    c->n = 1;
    while (c->n < most * 2)
        c->n <<= 1;
    c->s = calloc(c->n, sizeof(*c->s));
    return c->s ? HL_OK : HL_ENOMEM;
}

static struct slot *counts_get(struct counts *c, uint64_t key, int create)
{
    size_t mask = c->n - 1;
    size_t i = (size_t)(key * 0x9E3779B97F4A7C15ull >> 20) & mask;
    for (size_t k = 0; k < c->n; k++, i = (i + 1) & mask) {
        if (c->s[i].key == key)
            return &c->s[i];
        if (c->s[i].key == 0) {
            if (!create)
                return NULL;
            c->s[i] = (struct slot){.key = key};
            return &c->s[i];
        }
    }
    return NULL;
}

/* Drops the keys whose counts are both zero. */
static void counts_compact(struct counts *c)
{
    struct slot *old = c->s;
    struct slot *fresh = calloc(c->n, sizeof(*fresh));
    if (!fresh)
        return; /* keep the stale keys: lookups stay right, only longer */
    c->s = fresh;
    for (size_t i = 0; i < c->n; i++)
        if (old[i].key && (old[i].inflight > 0 || old[i].queued > 0))
            *counts_get(c, old[i].key, 1) = old[i];
    free(old);
}

/* Who a URL connects to, as libcurl pools connections: scheme, host and port (the scheme's
 * default when none is written; no user info), case-folded and hashed (never 0). */
static uint64_t host_key(const char *url)
{
    uint64_t h = 1469598103934665603ull;
    const char *sep = strstr(url, "://");
    const char *scheme_end = sep ? sep : url;
    const char *host = sep ? sep + 3 : url;
    const char *end = host;
    while (*end && *end != '/' && *end != '?' && *end != '#')
        end++;
    for (const char *p = host; p < end; p++)
        if (*p == '@')
            host = p + 1;
    int has_port = 0;
    for (const char *p = end; p > host && p[-1] != ']'; p--)
        if (p[-1] == ':') {
            has_port = 1;
            break;
        }
    char tail[8] = "";
    if (!has_port)
        snprintf(tail, sizeof(tail), ":%s", scheme_end - url == 5 ? "443" : "80");
    const char *parts[3][2] = {{url, scheme_end}, {host, end}, {tail, tail + strlen(tail)}};
    for (int k = 0; k < 3; k++)
        for (const char *p = parts[k][0]; p < parts[k][1]; p++) {
            unsigned char ch = (unsigned char)*p;
            if (ch >= 'A' && ch <= 'Z')
                ch = (unsigned char)(ch - 'A' + 'a');
            h = (h ^ ch) * 1099511628211ull;
        }
    return h | 1;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct xfer *x = userdata;
    size_t n = size * nmemb;
    size_t room = sizeof(x->response) - x->response_len;
    size_t take = n < room ? n : room;
    memcpy(x->response + x->response_len, ptr, take);
    x->response_len += take;
    return n; /* read and drop the rest: the answer's status is what counts */
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *userdata)
{
    struct xfer *x = userdata;
    size_t n = size * nitems;
    static const char name[] = "retry-after:";
    if (n > sizeof(name) - 1 && strncasecmp(buf, name, sizeof(name) - 1) == 0) {
        const char *v = buf + sizeof(name) - 1;
        size_t len = n - (sizeof(name) - 1);
        while (len && (*v == ' ' || *v == '\t'))
            v++, len--;
        while (len && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' '))
            len--;
        if (len >= sizeof(x->retry_after))
            len = sizeof(x->retry_after) - 1;
        memcpy(x->retry_after, v, len);
        x->retry_after[len] = '\0';
    }
    return n;
}

/* A transfer with its handle set up for every attempt it will make. */
static struct xfer *xfer_new(struct hl_dispatcher *d)
{
    struct xfer *x = calloc(1, sizeof(*x));
    if (!x)
        return NULL;
    CURL *e = x->easy = curl_easy_init();
    if (!e) {
        free(x);
        return NULL;
    }
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)d->cfg.timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)d->cfg.timeout_ms);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    /* No proxy from the environment: the address guard must see the receiver's address. */
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    x->guard.allow = &d->cfg.allow;
    x->guard.enforce = d->cfg.production;
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, hl_target_opensocket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, &x->guard);
    return x;
}

static struct xfer *xfer_get(struct hl_dispatcher *d)
{
    struct xfer *x = d->free_list;
    if (x)
        d->free_list = x->next_free;
    else if (!(x = xfer_new(d)))
        return NULL;
    x->headers = NULL;
    x->response_len = 0;
    x->retry_after[0] = '\0';
    x->errbuf[0] = '\0';
    x->guard.refused[0] = '\0';
    return x;
}

static void xfer_put(struct hl_dispatcher *d, struct xfer *x)
{
    curl_slist_free_all(x->headers);
    x->headers = NULL;
    hl_job_clear(&x->job);
    x->next_free = d->free_list;
    d->free_list = x;
}

static int add_header(struct curl_slist **h, const char *name, const char *value)
{
    char line[512];
    /* "Name:" with nothing after it tells libcurl to drop a header it would add itself. */
    snprintf(line, sizeof(line), *value ? "%s: %s" : "%s:%s", name, value);
    struct curl_slist *n = curl_slist_append(*h, line);
    if (!n)
        return HL_ENOMEM;
    *h = n;
    return HL_OK;
}

/* Builds the signed headers of one attempt. */
static int build_headers(struct xfer *x)
{
    struct hl_job *j = &x->job;
    char hex[65], iso[HL_ISO_MAX], ts[24];
    char sig[2 * 64 + 8];
    int rc = hl_sign_hex(j->secret, strlen(j->secret), j->payload, j->payload_len, hex);
    if (rc)
        return rc;
    int64_t ts_s = hl_now_ms() / 1000;
    snprintf(ts, sizeof(ts), "%" PRId64, ts_s);
    hl_time_iso(j->event_ts, iso);
    rc = hl_sign_std(j->secret, strlen(j->secret), j->event_uid, strlen(j->event_uid), ts_s,
                     j->payload, j->payload_len, sig, sizeof(sig));
    if (rc)
        return rc;
    char both[sizeof(sig) * 2 + 2];
    char prev_hex[65], prev_prefixed[80];
    prev_prefixed[0] = '\0';
    if (j->prev_secret[0]) {
        rc = hl_sign_hex(j->prev_secret, strlen(j->prev_secret), j->payload, j->payload_len,
                         prev_hex);
        if (rc)
            return rc;
        snprintf(prev_prefixed, sizeof(prev_prefixed), "sha256=%s", prev_hex);
        char old[sizeof(sig)];
        rc = hl_sign_std(j->prev_secret, strlen(j->prev_secret), j->event_uid, strlen(j->event_uid),
                         ts_s, j->payload, j->payload_len, old, sizeof(old));
        if (rc)
            return rc;
        snprintf(both, sizeof(both), "%s %s", sig, old);
    } else {
        snprintf(both, sizeof(both), "%s", sig);
    }
    char prefixed[80];
    snprintf(prefixed, sizeof(prefixed), "sha256=%s", hex);
    struct curl_slist **h = &x->headers;
    if (add_header(h, "Content-Type", "application/json") ||
        add_header(h, "User-Agent", "hookline/" HL_VERSION) ||
        add_header(h, "X-Webhook-Signature", prefixed) ||
        add_header(h, "X-Webhook-Event-Id", j->event_uid) ||
        add_header(h, "X-Webhook-Timestamp", iso) || add_header(h, "webhook-id", j->event_uid) ||
        add_header(h, "webhook-timestamp", ts) || add_header(h, "webhook-signature", both) ||
        add_header(h, "Expect", ""))
        return HL_ENOMEM;
    /* During a rotation the guide's header keeps one value (its verifiers compare exactly one);
     * the old secret's signature rides beside it for receivers not yet switched over. */
    if (prev_prefixed[0] && add_header(h, "X-Webhook-Signature-Previous", prev_prefixed))
        return HL_ENOMEM;
    return HL_OK;
}

/* ---- the transfer thread ---- */

static void push_result(struct hl_dispatcher *d, struct xfer *x, const struct hl_attempt *a,
                        const char *error);
static void drop_waiting(struct hl_dispatcher *d, int64_t webhook_id);

/* Starts the attempt of one claimed job (taking what it owns); on failure the job is recorded
 * as failed now. */
static void start(struct hl_dispatcher *d, struct hl_job *job, uint64_t host)
{
    struct xfer *x = xfer_get(d);
    if (!x) {
        hl_job_clear(job);
        return; /* the lease runs out and the delivery is claimed again */
    }
    x->job = *job;
    memset(job, 0, sizeof(*job));
    x->host = host;
    x->started_at = hl_now_ms();
    x->started_us = hl_mono_us();
    CURL *e = x->easy;
    if (build_headers(x)) {
        struct hl_attempt a = {0};
        push_result(d, x, &a, "could not sign the payload");
        return;
    }
    curl_easy_setopt(e, CURLOPT_URL, x->job.url);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->job.payload);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->job.payload_len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
    if (curl_multi_add_handle(d->multi, e) != CURLM_OK) {
        struct hl_attempt a = {0};
        push_result(d, x, &a, "could not start the transfer");
        return;
    }
    struct slot *w = counts_get(&d->by_webhook, (uint64_t)x->job.webhook_id, 1);
    struct slot *h = counts_get(&d->by_host, host, 1);
    if (w)
        w->inflight++;
    if (h)
        h->inflight++;
    d->counts_dirty = 1;
    x->idx = d->inflight;
    d->active[d->inflight++] = x;
}

/* Decides the outcome of a finished attempt and queues it for the bookkeeper. */
static void push_result(struct hl_dispatcher *d, struct xfer *x, const struct hl_attempt *in,
                        const char *error)
{
    struct hl_attempt a = *in;
    a.delivery_id = x->job.delivery_id;
    a.webhook_id = x->job.webhook_id;
    a.started_at = x->started_at;
    a.duration_us = hl_mono_us() - x->started_us;
    int attempts = x->job.attempts + 1;
    if (a.status_code >= 200 && a.status_code < 300) {
        a.outcome = HL_OUT_SUCCESS;
        error = NULL;
    } else if (a.status_code == 410) {
        a.outcome = HL_OUT_GONE;
        drop_waiting(d, a.webhook_id);
    } else {
        int64_t delay = hl_retry_delay(&d->cfg.retry, attempts, rnd(d));
        if (delay >= 0 && (a.status_code == 429 || a.status_code == 503) && x->retry_after[0]) {
            int64_t after;
            /* Wait at least as long as the receiver asked (within bounds), never less than the
             * schedule says. */
            if (hl_retry_after(x->retry_after, strlen(x->retry_after), hl_now_ms(), &after) ==
                    HL_OK &&
                hl_retry_clamp_after(after) > delay)
                delay = hl_retry_clamp_after(after);
        }
        if (delay < 0) {
            a.outcome = HL_OUT_FAILED;
        } else {
            a.outcome = HL_OUT_RETRY;
            a.next_attempt_at = hl_now_ms() + delay;
        }
    }

    static const char *const outcome_names[] = {"", "delivered", "will retry", "failed",
                                                "gone (webhook disabled)"};
    if (a.outcome == HL_OUT_SUCCESS ? hl_log_enabled(HL_LOG_INFO) : 1)
        hl_log(a.outcome == HL_OUT_SUCCESS ? HL_LOG_INFO : HL_LOG_WARN,
               "attempt %d delivery=%" PRId64 " event=%s webhook=%" PRId64
               " status=%d time=%.1fms %s%s%s",
               attempts, a.delivery_id, x->job.event_uid, a.webhook_id, a.status_code,
               (double)a.duration_us / 1000.0, outcome_names[a.outcome], error ? ": " : "",
               error ? error : "");

    size_t elen = error ? strlen(error) + 1 : 0;
    struct result *r = malloc(sizeof(*r) + elen + x->response_len);
    if (!r || d->nout > d->cfg.max_inflight) {
        /* Unrecorded, the delivery keeps its lease until it lapses, then is tried again. */
        hl_error("dispatcher: could not queue the attempt of delivery %" PRId64, a.delivery_id);
        free(r);
        xfer_put(d, x);
        return;
    }
    char *tail = (char *)(r + 1);
    a.error = NULL;
    if (error) {
        memcpy(tail, error, elen);
        a.error = tail;
    }
    a.response = NULL;
    a.response_len = x->response_len;
    if (x->response_len) {
        memcpy(tail + elen, x->response, x->response_len);
        a.response = tail + elen;
    }
    r->a = a;
    d->out[d->nout++] = r;
    xfer_put(d, x);
}

/* Turns a finished transfer into its attempt. */
static void finish_xfer(struct hl_dispatcher *d, struct xfer *x, CURLcode res)
{
    struct hl_attempt a = {0};
    long code = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
    char msg[300];
    const char *error = NULL;
    if (res != CURLE_OK) {
        code = 0;
        const char *detail = x->errbuf[0] ? x->errbuf : curl_easy_strerror(res);
        if (x->guard.refused[0]) {
            snprintf(msg, sizeof(msg), "%s", x->guard.refused);
        } else if (res == CURLE_OPERATION_TIMEDOUT) {
            snprintf(msg, sizeof(msg), "timeout: no complete answer within %" PRId64 " ms",
                     d->cfg.timeout_ms);
        } else if (res == CURLE_COULDNT_CONNECT) {
            snprintf(msg, sizeof(msg), "connection refused: %s", detail);
        } else if (res == CURLE_COULDNT_RESOLVE_HOST) {
            snprintf(msg, sizeof(msg), "DNS: %s", detail);
        } else if (res == CURLE_SSL_CONNECT_ERROR || res == CURLE_PEER_FAILED_VERIFICATION ||
                   res == CURLE_SSL_CERTPROBLEM || res == CURLE_SSL_CACERT_BADFILE) {
            snprintf(msg, sizeof(msg), "TLS: %s", detail);
        } else {
            snprintf(msg, sizeof(msg), "%s", detail);
        }
        error = msg;
    } else if (code < 200 || code >= 300) {
        snprintf(msg, sizeof(msg), "HTTP %ld", code);
        error = msg;
    }
    a.status_code = (int)code;
    push_result(d, x, &a, error);
}

static void reap(struct hl_dispatcher *d)
{
    CURLMsg *m;
    int left;
    int emptied = 0;
    while ((m = curl_multi_info_read(d->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct xfer *x = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        CURLcode res = m->data.result;
        curl_multi_remove_handle(d->multi, m->easy_handle);
        struct slot *w = counts_get(&d->by_webhook, (uint64_t)x->job.webhook_id, 0);
        struct slot *h = counts_get(&d->by_host, x->host, 0);
        if (w && w->inflight > 0 && --w->inflight == 0 && w->queued == 0)
            emptied = 1;
        if (h && h->inflight > 0 && --h->inflight == 0 && h->queued == 0)
            emptied = 1;
        d->slot_freed = 1;
        d->counts_dirty = 1;
        d->active[x->idx] = d->active[--d->inflight];
        d->active[x->idx]->idx = x->idx;
        finish_xfer(d, x, res);
    }
    if (emptied) {
        counts_compact(&d->by_webhook);
        counts_compact(&d->by_host);
    }
}

static int has_room(struct hl_dispatcher *d, int64_t webhook_id, uint64_t host)
{
    struct slot *w = counts_get(&d->by_webhook, (uint64_t)webhook_id, 0);
    struct slot *h = counts_get(&d->by_host, host, 0);
    return (!w || w->inflight < d->cfg.per_host) && (!h || h->inflight < d->cfg.per_host);
}

/* A held-back job leaves the queue (to start, or to be let go): its webhook and host count it
 * no longer. */
static void unqueue(struct hl_dispatcher *d, int64_t webhook_id, uint64_t host)
{
    struct slot *w = counts_get(&d->by_webhook, (uint64_t)webhook_id, 0);
    struct slot *h = counts_get(&d->by_host, host, 0);
    if (w && w->queued > 0)
        w->queued--;
    if (h && h->queued > 0)
        h->queued--;
}

/* Starts the held-back jobs whose webhook and host have room now, keeping the others in order.
 * A job waits behind its webhook's earlier ones, so one webhook's deliveries start in order. */
static void start_waiting(struct hl_dispatcher *d)
{
    size_t kept = 0;
    /* A job should finish inside its lease, or another claim could send it a second time: one
     * that has waited so long that an attempt would outlive its lease is let go instead. (A
     * lease shorter than an attempt is the operator's choice; then half of it must be left.) */
    int64_t need = d->cfg.timeout_ms + 1000;
    if (need > d->cfg.lease_ms / 2)
        need = d->cfg.lease_ms / 2;
    int64_t late = hl_now_ms() + need;
    for (size_t i = 0; i < d->nwaiting; i++) {
        struct hl_job *j = &d->waiting[i];
        uint64_t host = d->waiting_host[i];
        if (j->lease_until <= late || has_room(d, j->webhook_id, host)) {
            unqueue(d, j->webhook_id, host);
            if (j->lease_until > late)
                start(d, j, host);
            else
                hl_job_clear(j); /* its lease lapses; a later claim takes it again */
        } else {
            d->waiting_host[kept] = host;
            d->waiting[kept++] = *j;
        }
    }
    d->nwaiting = kept;
    d->counts_dirty = 1;
}

/* Forgets the held-back jobs of a webhook that answered 410: recording that answer parks
 * their deliveries with the webhook. */
static void drop_waiting(struct hl_dispatcher *d, int64_t webhook_id)
{
    size_t kept = 0;
    for (size_t i = 0; i < d->nwaiting; i++) {
        struct hl_job *j = &d->waiting[i];
        if (j->webhook_id != webhook_id) {
            d->waiting_host[kept] = d->waiting_host[i];
            d->waiting[kept++] = *j;
            continue;
        }
        unqueue(d, webhook_id, d->waiting_host[i]);
        hl_job_clear(j);
    }
    d->nwaiting = kept;
    d->counts_dirty = 1;
}

/* Takes newly claimed jobs in behind the ones already held back. */
static void take_ready(struct hl_dispatcher *d, struct hl_job *jobs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (d->nwaiting > d->cfg.max_inflight) {
            hl_job_clear(&jobs[i]); /* cannot happen: claims are bounded by the room we report */
            continue;
        }
        struct hl_job *j = &d->waiting[d->nwaiting];
        *j = jobs[i];
        memset(&jobs[i], 0, sizeof(jobs[i]));
        uint64_t host = d->waiting_host[d->nwaiting++] = host_key(j->url);
        struct slot *w = counts_get(&d->by_webhook, (uint64_t)j->webhook_id, 1);
        struct slot *h = counts_get(&d->by_host, host, 1);
        if (w) {
            w->host = host;
            w->queued++;
        }
        if (h)
            h->queued++;
    }
    d->slot_freed = 1;
    d->counts_dirty = 1;
}

/* Hands this turn's results to the bookkeeper with what the transfer thread holds; mu held. */
static void publish(struct hl_dispatcher *d)
{
    int wake = d->nout > 0;
    for (size_t i = 0; i < d->nout; i++)
        d->results[d->nresults++] = d->out[i];
    d->nout = 0;
    d->net_busy = d->inflight + d->nwaiting;
    d->stats.inflight = d->inflight;
    if (d->counts_dirty) {
        /* A webhook, or a host, with as many jobs again held back as it may have in flight:
         * claiming more for it would only lengthen the queue in front of the others. Up to that
         * depth, held-back jobs keep its connections busy while the bookkeeper records. */
        long deep = 2 * d->cfg.per_host;
        size_t before = d->nskip;
        d->nskip = 0;
        for (size_t i = 0; i < d->by_webhook.n; i++) {
            const struct slot *s = &d->by_webhook.s[i];
            if (!s->key)
                continue;
            const struct slot *h = counts_get(&d->by_host, s->host, 0);
            if ((s->inflight + s->queued >= deep || (h && h->inflight + h->queued >= deep)) &&
                d->nskip <= d->cfg.max_inflight)
                d->skip[d->nskip++] = (int64_t)s->key;
        }
        if (d->nskip < before) {
            d->room_freed = 1;
            wake = 1;
        }
        d->counts_dirty = 0;
    }
    if (wake)
        pthread_cond_signal(&d->cv);
}

static void *net_run(void *arg)
{
    struct hl_dispatcher *d = arg;
    struct hl_job *taken = d->taken;
    int64_t stop_deadline = 0;
    for (;;) {
        size_t ntaken = 0;
        pthread_mutex_lock(&d->mu);
        int stop = d->stop;
        if (!stop) {
            memcpy(taken, d->ready, d->nready * sizeof(*taken));
            ntaken = d->nready;
            d->nready = 0;
            d->net_busy += ntaken; /* still counted until publish() recounts */
        }
        pthread_mutex_unlock(&d->mu);
        if (stop && !stop_deadline)
            stop_deadline = hl_mono_ms() + d->cfg.timeout_ms + 1000;
        if (stop && (d->inflight == 0 || hl_mono_ms() > stop_deadline))
            break;
        if (ntaken)
            take_ready(d, taken, ntaken);
        if (!stop && d->nwaiting && d->slot_freed) {
            d->slot_freed = 0;
            start_waiting(d);
        }
        int running;
        curl_multi_perform(d->multi, &running);
        reap(d);
        pthread_mutex_lock(&d->mu);
        publish(d);
        pthread_mutex_unlock(&d->mu);
        /* Freed room starts held-back jobs at once; otherwise sleep until a socket event or a
         * claim (curl_multi_wakeup). */
        int again = d->slot_freed && d->nwaiting && !stop;
        curl_multi_poll(d->multi, NULL, 0, again ? 0 : stop ? 100 : 1000, NULL);
    }
    /* Whatever is still in flight is abandoned; its lease lapses and it is tried again. */
    reap(d);
    pthread_mutex_lock(&d->mu);
    publish(d);
    d->net_done = 1;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

/* ---- the bookkeeper ---- */

/* Records a batch of results in one transaction and frees them. */
static void record(struct hl_dispatcher *d, struct result **batch, size_t n)
{
    for (size_t i = 0; i < n; i++)
        d->attempts[i] = batch[i]->a;
    int rc = hl_store_record(d->st, d->attempts, n, d->cfg.disable_after_ms);
    if (rc)
        hl_error("dispatcher: could not record %zu attempts: %s (their leases will lapse and "
                 "they will be tried again)",
                 n, hl_strerror(rc));
    pthread_mutex_lock(&d->hook_mu);
    if (rc == HL_OK && d->on_recorded)
        d->on_recorded(d->on_recorded_arg, d->attempts, n);
    pthread_mutex_unlock(&d->hook_mu);
    uint64_t ok = 0;
    for (size_t i = 0; i < n; i++) {
        const struct hl_attempt *a = &d->attempts[i];
        ok += a->outcome == HL_OUT_SUCCESS;
        if (a->outcome == HL_OUT_RETRY && a->next_attempt_at &&
            (d->next_due == 0 || a->next_attempt_at < d->next_due))
            d->next_due = a->next_attempt_at;
        free(batch[i]);
    }
    pthread_mutex_lock(&d->mu);
    d->stats.attempts += n;
    d->stats.succeeded += ok;
    d->stats.failed += n - ok;
    d->recording = 0;
    pthread_mutex_unlock(&d->mu);
}

/* Most jobs one claim asks for: a claim holds the writer while it runs. */
#define CLAIM_BATCH_MAX 128

/* Gives claimed jobs (and the array) to the transfer thread, each with its lease. */
static void hand_over(struct hl_dispatcher *d, struct hl_job *jobs, size_t n, int64_t lease_until)
{
    for (size_t i = 0; i < n; i++)
        jobs[i].lease_until = lease_until;
    if (n) {
        pthread_mutex_lock(&d->mu);
        memcpy(d->ready + d->nready, jobs, n * sizeof(*jobs));
        d->nready += n;
        pthread_mutex_unlock(&d->mu);
        curl_multi_wakeup(d->multi);
    }
    free(jobs);
}

/* Claims up to room due deliveries for the transfer thread. */
static void claim(struct hl_dispatcher *d, size_t room, const int64_t *skip, size_t nskip)
{
    if (room > CLAIM_BATCH_MAX)
        room = CLAIM_BATCH_MAX;
    int64_t now = hl_now_ms();
    d->last_claim_ms = hl_mono_ms();
    struct hl_job *jobs = NULL;
    size_t n = 0;
    int rc = hl_store_claim(d->st, now, now + d->cfg.lease_ms, room, skip, nskip, &jobs, &n);
    if (rc) {
        hl_error("dispatcher: claim failed: %s", hl_strerror(rc));
        d->next_due = now + 1000; /* try again in a second, not at once */
        d->claim_full = 0;
        d->more_due = 0;
        return;
    }
    /* Full: the batch, or some webhook's share of it (HL_CLAIM_PER_WEBHOOK): more may be due. */
    d->claim_full = n == room;
    for (size_t i = 0; i < n && !d->claim_full; i++) {
        size_t same = 0;
        for (size_t k = 0; k < n; k++)
            same += jobs[k].webhook_id == jobs[i].webhook_id;
        d->claim_full = same >= HL_CLAIM_PER_WEBHOOK;
    }
    hand_over(d, jobs, n, now + d->cfg.lease_ms);
    d->more_due = 0;
    if (!d->claim_full) {
        int64_t at = 0;
        if (hl_store_next_due(d->st, now, &at) == HL_OK) {
            /* Due but not claimed: held back behind a busy webhook, or beyond its share of one
             * claim. Claiming again is worth it once attempts have finished (record) or a
             * webhook left the skip list (room_freed); until then, no busy loop. */
            d->next_due = at > now ? at : 0;
            d->more_due = at != 0 && at <= now;
        }
    }
}

/* Claims up to room of the deliveries made since the last such claim, in the order they were
 * made: what a commit's wake-up is for, found without visiting every webhook with pending work
 * (a backlog elsewhere costs it nothing). Returns how many it claimed. */
static size_t claim_fresh(struct hl_dispatcher *d, size_t room, const int64_t *skip, size_t nskip)
{
    if (room > CLAIM_BATCH_MAX)
        room = CLAIM_BATCH_MAX;
    int64_t now = hl_now_ms();
    struct hl_job *jobs = NULL;
    size_t n = 0;
    int64_t next = d->fresh_after;
    int rc = hl_store_claim_new(d->st, now, now + d->cfg.lease_ms, d->fresh_after, room, skip,
                                nskip, &jobs, &n, &next);
    d->fresh_full = 0;
    if (rc) {
        hl_error("dispatcher: claim of new deliveries failed: %s", hl_strerror(rc));
        d->claim_full = 1; /* the full claim finds them */
        return 0;
    }
    d->fresh_after = next;
    d->fresh_full = n == room;
    hand_over(d, jobs, n, now + d->cfg.lease_ms);
    return n;
}

/* Retries falling due, and deliveries left behind a busy webhook, are claimed at most this
 * often: retry schedules are seconds apart, and the claim that finds them visits every webhook
 * with pending work, so a backlog's trickle of due retries must not claim at its own pace. */
#define RETRY_CLAIM_GAP_MS 50

/* Whether to claim now, and how much (mu held): *fresh for the deliveries commits made, *full
 * for the walk over every webhook with pending work, *due when that walk is for retries
 * falling due. recorded: results just recorded (progress makes deliveries left behind a busy
 * webhook worth another look). */
static size_t claim_reasons(struct hl_dispatcher *d, size_t recorded, int *fresh, int *full,
                            int *due)
{
    size_t busy = d->net_busy + d->nready + d->nresults + d->recording;
    int64_t since = hl_mono_ms() - d->last_claim_ms;
    int gap_ok = since >= RETRY_CLAIM_GAP_MS;
    *due = d->next_due && d->next_due <= hl_now_ms() && gap_ok;
    /* Besides commits and due retries, look once a second: leases lapse (an attempt lost with
     * a node, a claim that outlived a pause) without anyone committing. */
    int sweep = since >= 1000;
    *fresh = hl_store_wake_seq(d->st) != d->seen_seq || d->fresh_full;
    *full = *due || d->claim_full || sweep || d->room_freed || (recorded && d->more_due && gap_ok);
    return busy < d->cfg.max_inflight ? d->cfg.max_inflight - busy : 0;
}

static void *book_run(void *arg)
{
    struct hl_dispatcher *d = arg;
    int64_t *skip = d->skip_copy;
    /* New deliveries are those made from now on; what is pending already, the first (full)
     * claim finds. A claim of none tells where "now" is. */
    struct hl_job *none = NULL;
    size_t nnone = 0;
    d->fresh_ok = hl_store_claim_new(d->st, hl_now_ms(), hl_now_ms(), INT64_MAX, 0, NULL, 0, &none,
                                     &nnone, &d->fresh_after) == HL_OK;
    free(none);
    if (!d->fresh_ok)
        d->fresh_after = 0;
    pthread_mutex_lock(&d->mu);
    for (;;) {
        int fresh, full, due;
        for (;;) {
            d->stats.turned_at = hl_mono_ms();
            if (d->nresults)
                break;
            if (d->stop) {
                if (d->net_done)
                    goto out;
                pthread_cond_wait(&d->cv, &d->mu);
                continue;
            }
            size_t room = claim_reasons(d, 0, &fresh, &full, &due);
            if ((fresh || full) && room > 0)
                break;
            int64_t now = hl_now_ms();
            int64_t mono = hl_mono_ms();
            int64_t gap = RETRY_CLAIM_GAP_MS - (mono - d->last_claim_ms);
            int64_t wait_ms = 1000 - (mono - d->last_claim_ms);
            if (d->next_due && d->next_due - now < wait_ms)
                wait_ms = d->next_due - now;
            if (d->next_due && wait_ms < gap)
                wait_ms = gap;
            if (wait_ms < 1)
                wait_ms = 1;
            if (room == 0)
                wait_ms = 1000; /* results free room, and they wake us */
            int64_t until = mono + wait_ms;
            struct timespec ts = {.tv_sec = until / 1000, .tv_nsec = (until % 1000) * 1000000};
            pthread_cond_timedwait(&d->cv, &d->mu, &ts);
        }
        size_t n = d->nresults;
        struct result **tmp = d->batch;
        d->batch = d->results;
        d->results = tmp;
        d->nresults = 0;
        d->recording = n;
        pthread_mutex_unlock(&d->mu);

        if (n)
            record(d, d->batch, n);

        pthread_mutex_lock(&d->mu);
        if (d->stop)
            continue;
        size_t room = claim_reasons(d, n, &fresh, &full, &due);
        if (room == 0 || !(fresh || full))
            continue;
        size_t nskip = d->nskip;
        memcpy(skip, d->skip, nskip * sizeof(*skip));
        d->room_freed = 0;
        d->seen_seq = hl_store_wake_seq(d->st);
        if (due)
            d->next_due = 0;
        pthread_mutex_unlock(&d->mu);
        /* A commit's new deliveries first, by id; the walk over every webhook with pending work
         * only when something else is due, or when the wake-up brought nothing new (a resend, a
         * recovery, a webhook enabled again). */
        size_t got = fresh && d->fresh_ok ? claim_fresh(d, room, skip, nskip) : 0;
        if ((full || got == 0) && got < room)
            claim(d, room - got, skip, nskip);
        pthread_mutex_lock(&d->mu);
    }
out:
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

static void wakeup(void *arg)
{
    struct hl_dispatcher *d = arg;
    pthread_mutex_lock(&d->mu);
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void dispatcher_free(struct hl_dispatcher *d)
{
    for (size_t i = 0; i < d->nready; i++)
        hl_job_clear(&d->ready[i]);
    for (size_t i = 0; i < d->nwaiting; i++)
        hl_job_clear(&d->waiting[i]);
    for (size_t i = 0; i < d->nresults; i++)
        free(d->results[i]);
    while (d->free_list) {
        struct xfer *x = d->free_list;
        d->free_list = x->next_free;
        curl_easy_cleanup(x->easy);
        free(x);
    }
    if (d->multi)
        curl_multi_cleanup(d->multi);
    free(d->ready);
    free(d->results);
    free(d->batch);
    free(d->skip_copy);
    free(d->taken);
    free(d->out);
    free(d->attempts);
    free(d->skip);
    free(d->active);
    free(d->waiting);
    free(d->waiting_host);
    free(d->by_webhook.s);
    free(d->by_host.s);
    free(d);
}

int hl_dispatcher_start(struct hl_store *st, const struct hl_dispatcher_config *c,
                        struct hl_dispatcher **out)
{
    *out = NULL;
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, curl_init_once);
    struct hl_dispatcher *d = calloc(1, sizeof(*d));
    if (!d)
        return HL_ENOMEM;
    d->st = st;
    d->cfg = *c;
    size_t cap = d->cfg.max_inflight + 1;
    d->ready = calloc(cap, sizeof(*d->ready));
    d->results = calloc(cap, sizeof(*d->results));
    d->batch = calloc(cap, sizeof(*d->batch));
    d->out = calloc(cap, sizeof(*d->out));
    d->attempts = calloc(cap, sizeof(*d->attempts));
    d->skip = calloc(cap, sizeof(*d->skip));
    d->skip_copy = calloc(cap, sizeof(*d->skip_copy));
    d->taken = calloc(cap, sizeof(*d->taken));
    d->active = calloc(cap, sizeof(*d->active));
    d->waiting = calloc(cap, sizeof(*d->waiting));
    d->waiting_host = calloc(cap, sizeof(*d->waiting_host));
    d->multi = curl_multi_init();
    if (!d->ready || !d->results || !d->batch || !d->out || !d->attempts || !d->skip ||
        !d->skip_copy || !d->taken || !d->active || !d->waiting || !d->waiting_host || !d->multi ||
        counts_init(&d->by_webhook, cap) || counts_init(&d->by_host, cap)) {
        dispatcher_free(d);
        return HL_ENOMEM;
    }
    uint8_t seed[4];
    hl_random(seed, sizeof(seed));
    d->rng =
        ((uint32_t)seed[0] << 24 | (uint32_t)seed[1] << 16 | (uint32_t)seed[2] << 8 | seed[3]) | 1;
    curl_multi_setopt(d->multi, CURLMOPT_MAX_HOST_CONNECTIONS, d->cfg.per_host);
    curl_multi_setopt(d->multi, CURLMOPT_MAXCONNECTS, (long)d->cfg.max_inflight);
    pthread_mutex_init(&d->mu, NULL);
    pthread_mutex_init(&d->hook_mu, NULL);
    d->stats.turned_at = hl_mono_ms();
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->cv, &ca);
    pthread_condattr_destroy(&ca);
    hl_store_release_leases(st);
    d->seen_seq = hl_store_wake_seq(st) - 1; /* claim once at start: pending work resumes */
    hl_store_on_notify(st, wakeup, d);
    if (pthread_create(&d->net_thread, NULL, net_run, d) != 0)
        goto bad;
    if (pthread_create(&d->book_thread, NULL, book_run, d) != 0) {
        pthread_mutex_lock(&d->mu);
        d->stop = 1;
        pthread_mutex_unlock(&d->mu);
        curl_multi_wakeup(d->multi);
        pthread_join(d->net_thread, NULL);
        goto bad;
    }
    *out = d;
    return HL_OK;
bad:
    hl_store_on_notify(st, NULL, NULL);
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->mu);
    pthread_mutex_destroy(&d->hook_mu);
    dispatcher_free(d);
    return HL_ENOMEM;
}

void hl_dispatcher_stop(struct hl_dispatcher *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->mu);
    d->stop = 1;
    d->stats.stopping = 1;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
    curl_multi_wakeup(d->multi);
    /* The transfer thread lets attempts in flight finish (bounded by the timeout); the
     * bookkeeper records what it hands over, then both end. */
    pthread_join(d->net_thread, NULL);
    pthread_join(d->book_thread, NULL);
    hl_store_on_notify(d->st, NULL, NULL);
    /* Abandoned transfers and held-back jobs: their leases lapse and they are tried again. */
    for (size_t i = 0; i < d->inflight; i++) {
        curl_multi_remove_handle(d->multi, d->active[i]->easy);
        xfer_put(d, d->active[i]);
    }
    d->inflight = 0;
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->mu);
    pthread_mutex_destroy(&d->hook_mu);
    dispatcher_free(d);
}

void hl_dispatcher_on_recorded(struct hl_dispatcher *d,
                               void (*fn)(void *arg, const struct hl_attempt *a, size_t n),
                               void *arg)
{
    pthread_mutex_lock(&d->hook_mu);
    d->on_recorded = fn;
    d->on_recorded_arg = arg;
    pthread_mutex_unlock(&d->hook_mu);
}

void hl_dispatcher_stats(struct hl_dispatcher *d, struct hl_dispatcher_stats *out)
{
    pthread_mutex_lock(&d->mu);
    *out = d->stats;
    pthread_mutex_unlock(&d->mu);
}
