/* The transfer thread (see dispatch.h): one libcurl multi handle, the transfers in flight, the
 * claimed jobs held back by a webhook's, a host's or an app's cap, and the counts that enforce
 * the caps and share max_inflight fairly between apps (and between an app's webhooks).
 * Everything here but the hand-over (t->ho, under its mutex) belongs to this thread alone. */
#include <curl/curl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/headers.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "crypto/sign.h"
#include "delivery/dispatch.h"

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
    size_t idx; /* position in hl_transfer.active */
    struct xfer *next_free;
};

/* Counts per key (a webhook id, a host's hash or an app id): open addressing; a table is rebuilt
 * without its zero entries when one drops to zero, so probes stay short. */
struct slot {
    uint64_t key;
    uint64_t host; /* a webhook's: its host's key */
    int64_t app;   /* a webhook's: its app */
    int inflight;  /* attempts in flight */
    int queued;    /* claimed jobs held back by a cap */
    int webhooks;  /* an app's: its webhooks holding jobs, not behind a full host (share_out) */
    int blocked;   /* an app's: the jobs its webhooks behind a full host hold (share_out) */
    int skipped;   /* in a skip list as share_out found it (share_out's own use) */
};

struct counts {
    struct slot *s;
    size_t n; /* a power of two, at least twice the most keys ever present */
};

/* A webhook that answered 410, and the number its result gets among those published: until the
 * bookkeeper has recorded that many (disabling the webhook and parking its deliveries), a job of
 * its may still be on its way from a claim made before, and is let go instead of started. As
 * many entries as results may wait to be recorded: max_inflight + 1. */
struct gone {
    int64_t webhook_id;
    uint64_t seq;
};

struct hl_transfer {
    const struct hl_dispatcher_config *cfg;
    struct hl_handover *ho;
    CURLM *multi;
    struct xfer *free_list;
    struct xfer **active; /* the transfers in flight, [0, inflight) */
    size_t inflight;
    struct hl_job *waiting; /* claimed, held back by a webhook's or a host's cap, in order */
    uint64_t *waiting_host; /* hl_url_host_key() of each */
    size_t nwaiting;
    struct counts by_webhook, by_host, by_app;
    int app_cap;            /* attempts one app may have in flight (its share) */
    int counts_dirty;       /* the shares must be counted again */
    int slot_freed;         /* a cap has room again: held-back jobs may start */
    struct hl_job *taken;   /* jobs just taken from ready */
    struct hl_result **out; /* results of this turn, published together */
    size_t nout;
    uint64_t published; /* results published so far */
    struct gone *gone;  /* webhooks whose 410 is not recorded yet (max_inflight + 1 entries) */
    size_t ngone;
    uint32_t rng;
};

static uint32_t rnd(struct hl_transfer *t)
{
    /* xorshift32, seeded from the CSPRNG: jitter needs spread, not secrecy. */
    uint32_t x = t->rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    t->rng = x;
    return x;
}

/* ---- counts per webhook and per host ---- */

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

/* Adds din attempts in flight and dq held-back jobs to the counts of j's webhook, its host and
 * its app. Returns 1 when one of them fell to nothing (the tables may be compacted). */
static int count_job(struct hl_transfer *t, const struct hl_job *j, uint64_t host, int din, int dq)
{
    int create = din > 0 || dq > 0;
    struct slot *s[3] = {counts_get(&t->by_webhook, (uint64_t)j->webhook_id, create),
                         counts_get(&t->by_host, host, create),
                         counts_get(&t->by_app, (uint64_t)j->app_id, create)};
    int emptied = 0;
    for (int i = 0; i < 3; i++) {
        if (!s[i])
            continue;
        s[i]->inflight = s[i]->inflight + din > 0 ? s[i]->inflight + din : 0;
        s[i]->queued = s[i]->queued + dq > 0 ? s[i]->queued + dq : 0;
        emptied |= s[i]->inflight == 0 && s[i]->queued == 0;
    }
    if (s[0]) {
        s[0]->host = host;
        s[0]->app = j->app_id;
    }
    t->counts_dirty = 1;
    return emptied;
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
static struct xfer *xfer_new(struct hl_transfer *t)
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
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)t->cfg->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)t->cfg->timeout_ms);
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
    x->guard.allow = &t->cfg->allow;
    x->guard.enforce = t->cfg->production;
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, hl_target_opensocket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, &x->guard);
    return x;
}

static struct xfer *xfer_get(struct hl_transfer *t)
{
    struct xfer *x = t->free_list;
    if (x)
        t->free_list = x->next_free;
    else if (!(x = xfer_new(t)))
        return NULL;
    x->headers = NULL;
    x->response_len = 0;
    x->retry_after[0] = '\0';
    x->errbuf[0] = '\0';
    x->guard.refused[0] = '\0';
    return x;
}

static void xfer_put(struct hl_transfer *t, struct xfer *x)
{
    curl_slist_free_all(x->headers);
    x->headers = NULL;
    hl_job_clear(&x->job);
    x->next_free = t->free_list;
    t->free_list = x;
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

/* The webhook's static headers (issue 19), as its row keeps them: a JSON object of names to
 * values, checked when it was set (common/headers.h), so none can replace a header above. */
static int add_static_headers(struct curl_slist **h, const char *text)
{
    json_t *o = hl_json_parse(text, strlen(text), NULL, 0);
    if (!json_is_object(o)) {
        json_decref(o);
        return HL_EINVAL;
    }
    int rc = HL_OK;
    char line[HL_HEADER_NAME_MAX + HL_HEADER_VALUE_MAX + 4];
    for (void *it = json_object_iter(o); it && rc == HL_OK; it = json_object_iter_next(o, it)) {
        json_t *v = json_object_iter_value(it);
        if (!json_is_string(v))
            continue;
        /* "Name;" is how libcurl sends a header with an empty value. */
        int n = snprintf(line, sizeof(line), json_string_length(v) ? "%s: %s" : "%s;",
                         json_object_iter_key(it), json_string_value(v));
        if (n < 0 || (size_t)n >= sizeof(line))
            continue; /* beyond the limits a check let through: never sent cut short */
        struct curl_slist *l = curl_slist_append(*h, line);
        if (!l)
            rc = HL_ENOMEM;
        else
            *h = l;
    }
    json_decref(o);
    return rc;
}

/* Builds the signed headers of one attempt, then the webhook's static ones. */
static int build_headers(struct xfer *x)
{
    struct hl_job *j = &x->job;
    char hex[HL_SIGN_HEX_SIZE], iso[HL_ISO_MAX], ts[24];
    int64_t now_ms = hl_now_ms(), ts_s = now_ms / 1000;
    int rc = hl_sign_hex(j->secret, strlen(j->secret), j->payload, j->payload_len, hex);
    if (rc)
        return rc;
    snprintf(ts, sizeof(ts), "%" PRId64, ts_s);
    hl_time_iso(j->event_ts, iso);
    /* webhook-signature: the current secret's, then every earlier one's whose overlap has not
     * ended, newest first: a Standard Webhooks receiver holding any of them verifies. */
    char sigs[(HL_PREV_SECRETS_MAX + 1) * HL_SIGN_STD_SIZE];
    size_t used = 0;
    char prev_prefixed[8 + HL_SIGN_HEX_SIZE] = "";
    for (int k = -1; k < j->prev.n; k++) {
        const char *secret = k < 0 ? j->secret : j->prev.v[k].secret;
        if (k >= 0 && j->prev.v[k].until <= now_ms)
            continue;
        if (used)
            sigs[used++] = ' ';
        rc = hl_sign_std(secret, strlen(secret), j->event_uid, strlen(j->event_uid), ts_s,
                         j->payload, j->payload_len, sigs + used, sizeof(sigs) - used);
        if (rc)
            return rc;
        used += strlen(sigs + used);
        /* The guide's verifiers compare exactly one hex digest per header: -Previous carries
         * the newest earlier secret's, the one a receiver that switched once still holds. */
        if (k >= 0 && !prev_prefixed[0]) {
            char prev_hex[HL_SIGN_HEX_SIZE];
            rc = hl_sign_hex(secret, strlen(secret), j->payload, j->payload_len, prev_hex);
            if (rc)
                return rc;
            snprintf(prev_prefixed, sizeof(prev_prefixed), "sha256=%s", prev_hex);
        }
    }
    char prefixed[8 + HL_SIGN_HEX_SIZE];
    snprintf(prefixed, sizeof(prefixed), "sha256=%s", hex);
    struct curl_slist **h = &x->headers;
    if (add_header(h, "Content-Type", "application/json") ||
        add_header(h, "User-Agent", "hookline/" HL_VERSION) ||
        add_header(h, "X-Webhook-Signature", prefixed) ||
        add_header(h, "X-Webhook-Event-Id", j->event_uid) ||
        add_header(h, "X-Webhook-Timestamp", iso) || add_header(h, "webhook-id", j->event_uid) ||
        add_header(h, "webhook-timestamp", ts) || add_header(h, "webhook-signature", sigs) ||
        add_header(h, "Expect", ""))
        return HL_ENOMEM;
    if (prev_prefixed[0] && add_header(h, "X-Webhook-Signature-Previous", prev_prefixed))
        return HL_ENOMEM;
    return j->headers ? add_static_headers(h, j->headers) : HL_OK;
}

/* ---- attempts ---- */

static void push_result(struct hl_transfer *t, struct xfer *x, const struct hl_attempt *a,
                        enum hl_attempt_class c, const char *error);
static void drop_gone(struct hl_transfer *t, int64_t webhook_id);

/* Starts the attempt of one claimed job (taking what it owns); on failure the job is recorded
 * as failed now. */
static void start(struct hl_transfer *t, struct hl_job *job, uint64_t host)
{
    struct xfer *x = xfer_get(t);
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
        push_result(t, x, &a, HL_AC_ERROR, "could not sign the payload");
        return;
    }
    curl_easy_setopt(e, CURLOPT_URL, x->job.url);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->job.payload);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->job.payload_len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
    if (curl_multi_add_handle(t->multi, e) != CURLM_OK) {
        struct hl_attempt a = {0};
        push_result(t, x, &a, HL_AC_ERROR, "could not start the transfer");
        return;
    }
    count_job(t, &x->job, host, 1, 0);
    x->idx = t->inflight;
    t->active[t->inflight++] = x;
}

/* Decides the outcome of a finished attempt (the outcome policy, retry.c), counts it as class c
 * (a 2xx the policy calls a success counts as one whatever c says) and queues it for the
 * bookkeeper. */
static void push_result(struct hl_transfer *t, struct xfer *x, const struct hl_attempt *in,
                        enum hl_attempt_class c, const char *error)
{
    struct hl_attempt a = *in;
    a.delivery_id = x->job.delivery_id;
    a.webhook_id = x->job.webhook_id;
    a.started_at = x->started_at;
    a.duration_us = hl_mono_us() - x->started_us;
    int attempts = x->job.attempts + 1;
    int64_t now = hl_now_ms();
    hl_retry_outcome(&t->cfg->retry, t->cfg->disable_after_ms, attempts, x->retry_after, now,
                     rnd(t), &a);
    hl_breaker_outcome(&t->cfg->retry, t->cfg->breaker_after, &x->job, now, rnd(t), &a);
    if (a.outcome == HL_OUT_SUCCESS) {
        error = NULL;
        c = HL_AC_SUCCESS;
    } else if (c == HL_AC_SUCCESS) {
        c = HL_AC_ERROR;
    }
    if (a.outcome == HL_OUT_GONE)
        drop_gone(t, a.webhook_id);
    hl_attempt_metrics_count(&t->ho->metrics, c, a.duration_us, (now - x->job.created_at) * 1000);

    static const char *const outcome_names[] = {"", "delivered", "will retry", "failed",
                                                "gone (webhook disabled)"};
    enum hl_log_level level = a.outcome == HL_OUT_SUCCESS ? HL_LOG_INFO : HL_LOG_WARN;
    char dlv[HL_ID_MAX];
    hl_delivery_uid(a.delivery_id, dlv);
    if (hl_log_enabled(level)) {
        struct hl_log_field f[] = {
            HL_LOG_STR("delivery", dlv),
            HL_LOG_STR("webhook", x->job.webhook_uid),
            HL_LOG_STR("event", x->job.event_uid),
            HL_LOG_NUM("attempt", attempts),
            HL_LOG_NUM("status", a.status_code),
            HL_LOG_NUM("duration_ms", (double)(a.duration_us / 100) / 10.0),
            HL_LOG_STR("error", error),
        };
        hl_log_fields(level, f, sizeof(f) / sizeof(f[0]), "attempt %s", outcome_names[a.outcome]);
    }

    size_t elen = error ? strlen(error) + 1 : 0;
    struct hl_result *r = malloc(sizeof(*r) + elen + x->response_len);
    if (!r || t->nout > t->cfg->max_inflight) {
        /* Unrecorded, the delivery keeps its lease until it lapses, then is tried again. */
        hl_error("dispatcher: could not queue the attempt of delivery %s", dlv);
        free(r);
        xfer_put(t, x);
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
    t->out[t->nout++] = r;
    xfer_put(t, x);
}

/* The class of an answer's status code (a 2xx is a success if the policy agrees). */
static enum hl_attempt_class http_class(long code)
{
    if (code >= 200 && code < 300)
        return HL_AC_SUCCESS;
    if (code >= 400 && code < 500)
        return HL_AC_HTTP_4XX;
    if (code >= 500 && code < 600)
        return HL_AC_HTTP_5XX;
    return HL_AC_HTTP_OTHER;
}

/* Turns a finished transfer into its attempt. */
static void finish_xfer(struct hl_transfer *t, struct xfer *x, CURLcode res)
{
    struct hl_attempt a = {0};
    long code = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
    char msg[300];
    const char *error = NULL;
    enum hl_attempt_class c = HL_AC_ERROR;
    if (res != CURLE_OK) {
        code = 0;
        const char *detail = x->errbuf[0] ? x->errbuf : curl_easy_strerror(res);
        if (x->guard.refused[0]) {
            c = HL_AC_BLOCKED;
            snprintf(msg, sizeof(msg), "%s", x->guard.refused);
        } else if (res == CURLE_OPERATION_TIMEDOUT) {
            c = HL_AC_TIMEOUT;
            snprintf(msg, sizeof(msg), "timeout: no complete answer within %" PRId64 " ms",
                     t->cfg->timeout_ms);
        } else if (res == CURLE_COULDNT_CONNECT) {
            c = HL_AC_CONNECT;
            snprintf(msg, sizeof(msg), "connection refused: %s", detail);
        } else if (res == CURLE_COULDNT_RESOLVE_HOST) {
            c = HL_AC_DNS;
            snprintf(msg, sizeof(msg), "DNS: %s", detail);
        } else if (res == CURLE_SSL_CONNECT_ERROR || res == CURLE_PEER_FAILED_VERIFICATION ||
                   res == CURLE_SSL_CERTPROBLEM || res == CURLE_SSL_CACERT_BADFILE) {
            c = HL_AC_TLS;
            snprintf(msg, sizeof(msg), "TLS: %s", detail);
        } else {
            snprintf(msg, sizeof(msg), "%s", detail);
        }
        error = msg;
    } else {
        c = http_class(code);
        if (code < 200 || code >= 300) {
            snprintf(msg, sizeof(msg), "HTTP %ld", code);
            error = msg;
        }
    }
    a.status_code = (int)code;
    push_result(t, x, &a, c, error);
}

static void reap(struct hl_transfer *t)
{
    CURLMsg *m;
    int left;
    int emptied = 0;
    while ((m = curl_multi_info_read(t->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct xfer *x = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        CURLcode res = m->data.result;
        curl_multi_remove_handle(t->multi, m->easy_handle);
        emptied |= count_job(t, &x->job, x->host, -1, 0);
        t->slot_freed = 1;
        t->active[x->idx] = t->active[--t->inflight];
        t->active[x->idx]->idx = x->idx;
        finish_xfer(t, x, res);
    }
    if (emptied) {
        counts_compact(&t->by_webhook);
        counts_compact(&t->by_host);
        counts_compact(&t->by_app);
    }
}

/* Whether a job may start now: its webhook and its host below the per-host cap, its app below
 * its share. */
static int has_room(struct hl_transfer *t, const struct hl_job *j, uint64_t host)
{
    struct slot *w = counts_get(&t->by_webhook, (uint64_t)j->webhook_id, 0);
    struct slot *h = counts_get(&t->by_host, host, 0);
    struct slot *a = counts_get(&t->by_app, (uint64_t)j->app_id, 0);
    return (!w || w->inflight < t->cfg->per_host) && (!h || h->inflight < t->cfg->per_host) &&
           (!a || a->inflight < t->app_cap);
}

/* Starts the held-back jobs whose webhook and host have room now, keeping the others in order.
 * A job waits behind its webhook's earlier ones, so one webhook's deliveries start in order. */
static void start_waiting(struct hl_transfer *t)
{
    size_t kept = 0;
    /* A job should finish inside its lease, or another claim could send it a second time: one
     * that has waited so long that an attempt would outlive its lease is let go instead. (A
     * lease shorter than an attempt is the operator's choice; then half of it must be left.) */
    int64_t need = t->cfg->timeout_ms + 1000;
    if (need > t->cfg->lease_ms / 2)
        need = t->cfg->lease_ms / 2;
    int64_t late = hl_now_ms() + need;
    for (size_t i = 0; i < t->nwaiting; i++) {
        struct hl_job *j = &t->waiting[i];
        uint64_t host = t->waiting_host[i];
        if (j->lease_until <= late || has_room(t, j, host)) {
            count_job(t, j, host, 0, -1); /* it leaves the queue, to start or to be let go */
            if (j->lease_until > late)
                start(t, j, host);
            else
                hl_job_clear(j); /* its lease lapses; a later claim takes it again */
        } else {
            t->waiting_host[kept] = host;
            t->waiting[kept++] = *j;
        }
    }
    t->nwaiting = kept;
    t->counts_dirty = 1;
}

static struct gone *gone_find(struct hl_transfer *t, int64_t webhook_id)
{
    for (size_t i = 0; i < t->ngone; i++)
        if (t->gone[i].webhook_id == webhook_id)
            return &t->gone[i];
    return NULL;
}

/* A webhook answered 410: forgets its held-back jobs, and keeps it in t->gone until that answer
 * is recorded (take_ready lets go of its jobs claimed meanwhile). Recording the answer parks
 * their deliveries with the webhook. */
static void drop_gone(struct hl_transfer *t, int64_t webhook_id)
{
    struct gone *g = gone_find(t, webhook_id);
    if (!g && t->ngone <= t->cfg->max_inflight)
        g = &t->gone[t->ngone++];
    if (g) /* the one this answer gets when published (push_result adds it next) */
        *g = (struct gone){webhook_id, t->published + t->nout + 1};
    size_t kept = 0;
    for (size_t i = 0; i < t->nwaiting; i++) {
        struct hl_job *j = &t->waiting[i];
        if (j->webhook_id != webhook_id) {
            t->waiting_host[kept] = t->waiting_host[i];
            t->waiting[kept++] = *j;
            continue;
        }
        count_job(t, j, t->waiting_host[i], 0, -1);
        hl_job_clear(j);
    }
    t->nwaiting = kept;
    t->counts_dirty = 1;
}

/* Forgets the webhooks whose 410 the bookkeeper had recorded: before taking jobs, those it had
 * recorded when the oldest of them was claimed; after, those it had when they were taken (every
 * job claimed before that record was among them). */
static void forget_gone(struct hl_transfer *t, uint64_t recorded)
{
    size_t kept = 0;
    for (size_t i = 0; i < t->ngone; i++)
        if (t->gone[i].seq > recorded)
            t->gone[kept++] = t->gone[i];
    t->ngone = kept;
}

/* Takes newly claimed jobs in behind the ones already held back. */
static void take_ready(struct hl_transfer *t, struct hl_job *jobs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (t->nwaiting > t->cfg->max_inflight || gone_find(t, jobs[i].webhook_id)) {
            /* Claimed before its webhook's 410 was recorded: the record parks it. (A full queue
             * cannot happen: claims are bounded by the room we report.) What the claim took off
             * the shares is given back at the next count. */
            hl_job_clear(&jobs[i]);
            t->counts_dirty = 1;
            continue;
        }
        struct hl_job *j = &t->waiting[t->nwaiting];
        *j = jobs[i];
        memset(&jobs[i], 0, sizeof(jobs[i]));
        uint64_t host = t->waiting_host[t->nwaiting++] = hl_url_host_key(j->url, strlen(j->url));
        count_job(t, j, host, 0, 1);
    }
    t->slot_freed = 1;
}

static int active(const struct slot *s)
{
    return s->key && s->inflight + s->queued > 0;
}

/* Marks whether a slot is in its skip list now; returns 1 when it just left it. */
static int mark(struct slot *s, int on)
{
    int was = s->skipped;
    s->skipped = on;
    return was && !on;
}

/* Marks the slots of the ids in a skip list as it stands (which the bookkeeper may have added
 * to: hl_shares_spend). Returns 1 when one of them holds nothing any more: it is out of the
 * list from now on. */
static int mark_listed(struct counts *c, const int64_t *ids, size_t n)
{
    int gone = 0;
    for (size_t i = 0; i < n; i++) {
        struct slot *s = counts_get(c, (uint64_t)ids[i], 0);
        if (s && active(s))
            s->skipped = 1;
        else
            gone = 1;
    }
    return gone;
}

/* Lists s (an app's or a webhook's slot) for the next claim: in the skip list when on, else,
 * holding jobs, in the room list with room more jobs. Each list holds max + 1 entries. */
static void list_slot(const struct slot *s, int on, long room, size_t max, int64_t *skip,
                      size_t *nskip, int64_t *ids, int64_t *rooms, size_t *nrooms)
{
    if (on && *nskip <= max) {
        skip[(*nskip)++] = (int64_t)s->key;
    } else if (active(s) && *nrooms <= max) {
        ids[*nrooms] = (int64_t)s->key;
        rooms[(*nrooms)++] = room;
    }
}

/* The apps' part of share_out: their cap, skip list and rooms. Returns 1 when an app left the
 * skip list. */
static int share_apps(struct hl_transfer *t, struct hl_shares *sh, int cap)
{
    struct counts *ap = &t->by_app;
    size_t max = t->cfg->max_inflight;
    int freed = 0;
    sh->nskip_apps = sh->nrooms = 0;
    for (size_t i = 0; i < ap->n; i++) {
        struct slot *a = &ap->s[i];
        int held = a->inflight + a->queued, on = active(a) && held >= cap;
        freed |= mark(a, on);
        list_slot(a, on, cap - held, max, sh->skip_apps, &sh->nskip_apps, sh->room_apps, sh->rooms,
                  &sh->nrooms);
    }
    return freed;
}

/* Whether w (a webhook's slot) is behind a host with a full queue: as many jobs held for it as
 * deep (twice the per-host cap). Such a webhook gets no claims until the host drains. */
static int host_full(struct hl_transfer *t, const struct slot *w, long deep)
{
    const struct slot *h = counts_get(&t->by_host, w->host, 0);
    return h && h->inflight + h->queued >= deep;
}

/* The share of each of app a's webhooks that are not behind a full host (more: one more of
 * them): what those behind a full host hold is theirs alone (they take no more until it
 * drains, however long its receiver takes), the rest of the app's cap is split between the
 * others. A slow endpoint's webhooks thus never shrink a healthy one's share of its app. */
static long webhook_share(int cap, const struct slot *a, int more)
{
    long left = (long)cap - a->blocked;
    return (long)hl_share(left > 0 ? (size_t)left : 0, (size_t)a->webhooks + (size_t)more);
}

/* Shares max_inflight out (mu held). Every app holding jobs may hold hl_share() of it, and each
 * of its webhooks holding jobs its part of the app's (webhook_share), and no more than as many
 * again held back as it may have in flight (a deeper queue would only wait in front of the
 * others; up to that depth, held-back jobs keep its connections busy while the bookkeeper
 * records). Claims take nothing for an app or a webhook at its share, nor for a webhook whose
 * host has such a queue. Returns 1 when a webhook or an app left the skip lists: what claims
 * left behind for it may be claimed now. */
static int share_out(struct hl_transfer *t, struct hl_shares *sh)
{
    struct counts *ap = &t->by_app, *wh = &t->by_webhook;
    size_t max = t->cfg->max_inflight, napps = 0;
    long deep = 2 * t->cfg->per_host;
    int freed = mark_listed(wh, sh->skip, sh->nskip);
    freed |= mark_listed(ap, sh->skip_apps, sh->nskip_apps);
    for (size_t i = 0; i < ap->n; i++) {
        ap->s[i].webhooks = ap->s[i].blocked = 0;
        napps += (size_t)active(&ap->s[i]);
    }
    for (size_t i = 0; i < wh->n; i++) {
        struct slot *w = &wh->s[i];
        struct slot *a = active(w) ? counts_get(ap, (uint64_t)w->app, 0) : NULL;
        if (a && host_full(t, w, deep))
            a->blocked += w->inflight + w->queued;
        else if (a)
            a->webhooks++;
    }
    int cap = (int)hl_share(max, napps);
    t->app_cap = cap;
    sh->room_new = (int64_t)hl_share_first(max, napps);
    /* A webhook holding none: as one more of its app's, or the first of an app holding none. */
    long wnew = (long)hl_share((size_t)sh->room_new, 1);
    for (size_t i = 0; i < ap->n; i++) {
        long w = webhook_share(cap, &ap->s[i], 1);
        if (active(&ap->s[i]) && w < wnew)
            wnew = w;
    }
    sh->wroom_new = wnew < deep ? wnew : deep;
    freed |= share_apps(t, sh, cap);
    sh->nskip = sh->nwrooms = 0;
    for (size_t i = 0; i < wh->n; i++) {
        struct slot *w = &wh->s[i];
        int held = w->inflight + w->queued, on = 0;
        long wcap = deep;
        if (active(w)) {
            const struct slot *a = counts_get(ap, (uint64_t)w->app, 0);
            long share = a ? webhook_share(cap, a, 0) : deep;
            wcap = share < deep ? share : deep;
            on = held >= wcap || host_full(t, w, deep);
        }
        freed |= mark(w, on);
        list_slot(w, on, wcap - held, max, sh->skip, &sh->nskip, sh->room_webhooks, sh->wrooms,
                  &sh->nwrooms);
    }
    return freed;
}

/* Hands this turn's results to the bookkeeper with what the transfer thread holds; mu held. */
static void publish(struct hl_transfer *t)
{
    struct hl_handover *ho = t->ho;
    int wake = t->nout > 0;
    for (size_t i = 0; i < t->nout; i++)
        ho->results[ho->nresults++] = t->out[i];
    t->published += t->nout;
    t->nout = 0;
    ho->net_busy = t->inflight + t->nwaiting;
    ho->stats.inflight = t->inflight;
    if (t->counts_dirty) {
        if (share_out(t, &ho->shares)) {
            ho->room_freed = 1;
            wake = 1;
        }
        /* Claimed and not taken yet: not in the counts, but no longer room to claim. */
        hl_shares_spend(&ho->shares, ho->ready, ho->nready);
        t->counts_dirty = 0;
    }
    if (wake)
        pthread_cond_signal(&ho->cv);
}

void *hl_transfer_run(void *arg)
{
    struct hl_transfer *t = arg;
    struct hl_handover *ho = t->ho;
    struct hl_job *taken = t->taken;
    int64_t stop_deadline = 0;
    for (;;) {
        size_t ntaken = 0;
        pthread_mutex_lock(&ho->mu);
        int stop = ho->stop;
        uint64_t recorded = ho->recorded, since = ho->ready_since;
        if (!stop) {
            memcpy(taken, ho->ready, ho->nready * sizeof(*taken));
            ntaken = ho->nready;
            ho->nready = 0;
            ho->net_busy += ntaken; /* still counted until publish() recounts */
        }
        pthread_mutex_unlock(&ho->mu);
        if (stop && !stop_deadline)
            stop_deadline = hl_mono_ms() + t->cfg->timeout_ms + 1000;
        if (stop && (t->inflight == 0 || hl_mono_ms() > stop_deadline))
            break;
        if (ntaken) {
            forget_gone(t, since);
            take_ready(t, taken, ntaken);
        }
        forget_gone(t, recorded);
        if (!stop && t->nwaiting && t->slot_freed) {
            t->slot_freed = 0;
            start_waiting(t);
        }
        int running;
        curl_multi_perform(t->multi, &running);
        reap(t);
        pthread_mutex_lock(&ho->mu);
        publish(t);
        pthread_mutex_unlock(&ho->mu);
        /* Freed room starts held-back jobs at once; otherwise sleep until a socket event or a
         * claim (curl_multi_wakeup). */
        int again = t->slot_freed && t->nwaiting && !stop;
        curl_multi_poll(t->multi, NULL, 0, again ? 0 : stop ? 100 : 1000, NULL);
    }
    /* Whatever is still in flight is abandoned; its lease lapses and it is tried again. */
    reap(t);
    pthread_mutex_lock(&ho->mu);
    publish(t);
    ho->net_done = 1;
    pthread_cond_signal(&ho->cv);
    pthread_mutex_unlock(&ho->mu);
    return NULL;
}

void hl_transfer_wake(struct hl_transfer *t)
{
    curl_multi_wakeup(t->multi);
}

int hl_transfer_new(const struct hl_dispatcher_config *c, struct hl_handover *h,
                    struct hl_transfer **out)
{
    *out = NULL;
    struct hl_transfer *t = calloc(1, sizeof(*t));
    if (!t)
        return HL_ENOMEM;
    t->cfg = c;
    t->ho = h;
    t->app_cap = (int)hl_share(c->max_inflight, 1);
    size_t cap = c->max_inflight + 1;
    t->out = calloc(cap, sizeof(*t->out));
    t->taken = calloc(cap, sizeof(*t->taken));
    t->active = calloc(cap, sizeof(*t->active));
    t->waiting = calloc(cap, sizeof(*t->waiting));
    t->waiting_host = calloc(cap, sizeof(*t->waiting_host));
    t->gone = calloc(cap, sizeof(*t->gone));
    t->multi = curl_multi_init();
    if (!t->out || !t->taken || !t->active || !t->waiting || !t->waiting_host || !t->gone ||
        !t->multi || counts_init(&t->by_webhook, cap) || counts_init(&t->by_host, cap) ||
        counts_init(&t->by_app, cap)) {
        hl_transfer_free(t);
        return HL_ENOMEM;
    }
    uint8_t seed[4];
    hl_random(seed, sizeof(seed));
    t->rng =
        ((uint32_t)seed[0] << 24 | (uint32_t)seed[1] << 16 | (uint32_t)seed[2] << 8 | seed[3]) | 1;
    curl_multi_setopt(t->multi, CURLMOPT_MAX_HOST_CONNECTIONS, c->per_host);
    curl_multi_setopt(t->multi, CURLMOPT_MAXCONNECTS, (long)c->max_inflight);
    *out = t;
    return HL_OK;
}

void hl_transfer_free(struct hl_transfer *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->inflight; i++) {
        curl_multi_remove_handle(t->multi, t->active[i]->easy);
        xfer_put(t, t->active[i]);
    }
    for (size_t i = 0; i < t->nwaiting; i++)
        hl_job_clear(&t->waiting[i]);
    for (size_t i = 0; i < t->nout; i++)
        free(t->out[i]);
    while (t->free_list) {
        struct xfer *x = t->free_list;
        t->free_list = x->next_free;
        curl_easy_cleanup(x->easy);
        free(x);
    }
    if (t->multi)
        curl_multi_cleanup(t->multi);
    free(t->out);
    free(t->taken);
    free(t->active);
    free(t->waiting);
    free(t->waiting_host);
    free(t->gone);
    free(t->by_webhook.s);
    free(t->by_host.s);
    free(t->by_app.s);
    free(t);
}
