/* `hookline listen`: a ready receiver for local development and small integrations, and
 * `hookline verify`, which checks one body's signature from a shell.
 *
 * listen answers every POST in three steps, all before the answer:
 *   1. verify: the guide's X-Webhook-Signature (or X-Webhook-Signature-Previous, sent during a
 *      rotation) or the Standard Webhooks headers, under any of the configured secrets;
 *   2. parse the envelope (eventId, event, data.externalTenantId);
 *   3. record it in the state file, durably, unless its eventId is already there.
 * The hand-off (command, URL or stdout) happens afterwards in the worker (handoff.c), so the
 * sender gets its 200 in the time of one fsync, whatever the hand-off costs. The keeper thread
 * (keeper.c) prunes the state file, runs the silence alert and writes the summaries of the
 * rate-limited log lines (ratelog.c): a flood of refused requests costs a line per 10 s. */
#include "receiver/listen.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/err.h"
#include "common/log.h"
#include "common/net.h"
#include "hookline/verify.h"
#include "receiver/alert.h"
#include "receiver/handoff.h"
#include "receiver/inbox.h"
#include "receiver/keeper.h"
#include "receiver/ratelog.h"

/* The recorded headers of one request (libmicrohttpd already caps them near 32 KiB). */
#define HEADERS_MAX (64u << 10)
#define HTTP_THREADS 4
/* With listen's default --max-body, bounds the memory that bodies in flight can take (512 MiB). */
#define CONNECTIONS_MAX 256u
/* How much of a too large chunked body is read (and dropped) to be able to answer 413. */
#define DROP_MAX (16u << 20)
/* The interval of the rate-limited log lines: one line per kind at once, then one count per. */
#define LOG_INTERVAL_MS 10000

static const char ANSWER_OK[] = "{\"received\":true}";
static const char ANSWER_DUPLICATE[] = "{\"received\":true,\"duplicate\":true}";
static const char ANSWER_UNSIGNED[] = "{\"error\":\"invalid signature\"}";
static const char ANSWER_BAD_BODY[] = "{\"error\":\"invalid event body\"}";
static const char ANSWER_TOO_BIG[] = "{\"error\":\"body too large\"}";
static const char ANSWER_METHOD[] = "{\"error\":\"method not allowed\"}";
static const char ANSWER_NOT_FOUND[] = "{\"error\":\"not found\"}";
static const char ANSWER_STORE[] = "{\"error\":\"could not record the event\"}";

/* The secrets a request may be signed with, and how far a webhook-timestamp may be off. */
struct keyring {
    struct hl_secrets s;
    int64_t tolerance_s;
};

struct listener {
    struct keyring keys;
    const char *path; /* accept POSTs to this path only, or NULL for any */
    size_t max_body;
    struct hl_inbox *inbox;
    struct hl_handoff *handoff;
    struct hl_keeper *keeper;
    struct hl_ratelog log;
    struct hl_alert alert;
    int alerting; /* --alert-after was given: alert is set up */
};

/* The kinds of rate-limited lines: one per answer and reason. */
enum line_kind {
    LINE_UNSIGNED = 0,  /* + -(hookline_verify_request's code), 1..15 */
    LINE_BAD_BODY = 16, /* + -(hookline_parse_envelope's code), 1..15 */
    LINE_STORE = 30,
    LINE_DUPLICATE = 31,
};
_Static_assert(LINE_DUPLICATE < HL_RATELOG_KINDS, "every kind has a slot");

/* The kind of a failure `base + -code`, with the codes libhookline has (-1 .. -15). */
static unsigned line_kind(enum line_kind base, int code)
{
    return (unsigned)base + (code < 0 && code > -16 ? (unsigned)-code : 0u);
}

/* Request-scoped state, freed in on_completed. */
struct request {
    struct hl_buf body;
    int too_big;    /* the body went past the maximum */
    size_t dropped; /* bytes read and dropped since */
};

/* ---- verification ---- */

/* True when some secret verifies the request (hookline_verify_request: either scheme, each with
 * its replay check). *why gets the most telling failure otherwise. */
static int verified(const struct keyring *k, const char *body, size_t len,
                    const struct hookline_headers *h, int *why)
{
    *why = HOOKLINE_ERR_FORMAT;
    for (size_t i = 0; i < k->s.n; i++) {
        int rc = hookline_verify_request(k->s.v[i], h, body, len, 0, k->tolerance_s);
        if (rc == HOOKLINE_OK)
            return 1;
        /* the secrets disagree only on the signature itself: keep the first secret's reason
         * unless a later one says more (a signed time or body, rather than a mismatch) */
        if (i == 0 || rc == HOOKLINE_ERR_TIMESTAMP || rc == HOOKLINE_ERR_PARSE)
            *why = rc;
    }
    return 0;
}

/* hookline_parse_envelope, except that a JSON null in an optional field counts as absent:
 * webhook.test events carry "externalTenantId": null. */
static int parse_event(const char *body, size_t len, struct hookline_envelope *env)
{
    int rc = hookline_parse_envelope(body, len, env);
    if (rc != HOOKLINE_ERR_PARSE)
        return rc;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *data = json_object_get(root, "data");
    if (!json_is_object(root) || !json_is_object(data)) {
        json_decref(root);
        return rc;
    }
    int changed = 0;
    static const char *const top[] = {"appUid", "version"};
    static const char *const inner[] = {"externalTenantId", "uid"};
    for (size_t i = 0; i < 2; i++) {
        if (json_is_null(json_object_get(root, top[i])))
            changed |= json_object_del(root, top[i]) == 0;
        if (json_is_null(json_object_get(data, inner[i])))
            changed |= json_object_del(data, inner[i]) == 0;
    }
    char *again = changed ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    if (again)
        rc = hookline_parse_envelope(again, strlen(again), env);
    free(again);
    return rc;
}

/* ---- HTTP ---- */

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned status, const char *json,
                              const char *allow)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(json), (void *)json, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/json");
    if (allow)
        MHD_add_response_header(r, "Allow", allow);
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Headers that describe this hop, not the event: they are not recorded for --forward. */
static int hop_header(const char *name)
{
    static const char *const hop[] = {"Host",
                                      "Content-Length",
                                      "Transfer-Encoding",
                                      "Connection",
                                      "Keep-Alive",
                                      "Expect",
                                      "TE",
                                      "Trailer",
                                      "Upgrade",
                                      "Proxy-Connection",
                                      "Proxy-Authorization"};
    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
        if (strcasecmp(name, hop[i]) == 0)
            return 1;
    return 0;
}

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    (void)kind;
    struct hl_buf *b = cls;
    if (!key || hop_header(key))
        return MHD_YES;
    /* A header that does not fit is left out rather than cut. */
    size_t before = b->len;
    if (hl_buf_printf(b, "%s: %s\r\n", key, value ? value : "") != HL_OK) {
        b->len = before;
        if (b->p)
            b->p[before] = '\0';
    }
    return MHD_YES;
}

static const char *header(struct MHD_Connection *conn, const char *name)
{
    return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
}

/* A request path as it may go into a log line: at most 120 bytes, control characters as '?'. */
static void loggable(const char *url, char out[128])
{
    size_t i = 0;
    for (; url[i] && i < 120; i++)
        out[i] = (unsigned char)url[i] < 0x20 || url[i] == 0x7f ? '?' : url[i];
    out[i] = '\0';
}

/* The last step of a request: verify, parse, record, answer. */
static enum MHD_Result handle(struct listener *L, struct MHD_Connection *conn, const char *url,
                              struct request *r)
{
    const char *body = r->body.p ? r->body.p : "";
    size_t len = r->body.len;
    int why;
    char path[128];
    loggable(url, path);
    struct hookline_headers h = {.signature = header(conn, "X-Webhook-Signature"),
                                 .signature_previous = header(conn, "X-Webhook-Signature-Previous"),
                                 .webhook_id = header(conn, "webhook-id"),
                                 .webhook_timestamp = header(conn, "webhook-timestamp"),
                                 .webhook_signature = header(conn, "webhook-signature")};
    int64_t now = hl_mono_ms();
    int rc = HOOKLINE_OK;
    if (!verified(&L->keys, body, len, &h, &why)) {
        /* a signature matched, but the body has no timestamp to check it against */
        if (why == HOOKLINE_ERR_PARSE) {
            rc = why;
        } else {
            hl_ratelog(&L->log, line_kind(LINE_UNSIGNED, why), HL_LOG_WARN, now,
                       "listen: POST %s: 401 (%s)", path, hookline_strerror(why));
            return answer(conn, 401, ANSWER_UNSIGNED, NULL);
        }
    }
    struct hookline_envelope env;
    if (rc == HOOKLINE_OK)
        rc = parse_event(body, len, &env);
    if (rc != HOOKLINE_OK) {
        hl_ratelog(&L->log, line_kind(LINE_BAD_BODY, rc), HL_LOG_WARN, now,
                   "listen: POST %s: 400 (%s)", path, hookline_strerror(rc));
        return answer(conn, 400, ANSWER_BAD_BODY, NULL);
    }
    /* verified: whatever happens next, the sender is there */
    if (L->alerting && hl_alert_seen(&L->alert, now))
        hl_keeper_wake(L->keeper);
    struct hl_buf headers;
    hl_buf_init(&headers, HEADERS_MAX);
    MHD_get_connection_values(conn, MHD_HEADER_KIND, collect_header, &headers);
    struct hl_inbox_event ev = {.event_id = env.event_id,
                                .event = env.event,
                                .tenant = env.external_tenant_id,
                                .body = body,
                                .body_len = len,
                                .headers = headers.p ? headers.p : ""};
    int duplicate = 0;
    rc = hl_inbox_add(L->inbox, &ev, hl_now_ms(), &duplicate);
    hl_buf_free(&headers);
    if (rc != HL_OK) {
        hl_ratelog(&L->log, LINE_STORE, HL_LOG_ERROR, now, "listen: %s %s: cannot record it: %s",
                   env.event_id, env.event, hl_strerror(rc));
        return answer(conn, 503, ANSWER_STORE, NULL);
    }
    if (duplicate) {
        hl_ratelog(&L->log, LINE_DUPLICATE, HL_LOG_INFO, now,
                   "listen: %s %s: duplicate, not handed on again", env.event_id, env.event);
        return answer(conn, 200, ANSWER_DUPLICATE, NULL);
    }
    hl_handoff_wake(L->handoff);
    return answer(conn, 200, ANSWER_OK, NULL);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    struct listener *L = cls;
    struct request *r = *con_cls;
    if (!r) {
        if (strcmp(method, "POST") != 0)
            return answer(conn, 405, ANSWER_METHOD, "POST");
        if (L->path && strcmp(url, L->path) != 0)
            return answer(conn, 404, ANSWER_NOT_FOUND, NULL);
        const char *cl = header(conn, "Content-Length");
        long long n;
        if (cl && hl_parse_int(cl, 0, LLONG_MAX, &n) == HL_OK &&
            (unsigned long long)n > L->max_body)
            return answer(conn, 413, ANSWER_TOO_BIG, NULL);
        if (!(r = calloc(1, sizeof(*r))))
            return MHD_NO;
        hl_buf_init(&r->body, L->max_body);
        *con_cls = r;
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        /* libmicrohttpd takes no answer while a body is coming in: the rest of a body that
         * is too large (sent chunked, without Content-Length) is read and dropped, up to a
         * bound, and the 413 goes out at the end. */
        if (!r->too_big && hl_buf_append(&r->body, upload_data, n) == HL_OK)
            return MHD_YES;
        r->too_big = 1;
        r->dropped += n;
        return r->dropped <= DROP_MAX ? MHD_YES : MHD_NO;
    }
    if (r->too_big)
        return answer(conn, 413, ANSWER_TOO_BIG, NULL);
    return handle(L, conn, url, r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    struct request *r = *con_cls;
    if (!r)
        return;
    hl_buf_free(&r->body);
    free(r);
    *con_cls = NULL;
}

__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    hl_debug_va("listen: http", fmt, ap);
}

/* ---- hookline listen ---- */

struct listen_opts {
    const char *addr;
    long port;
    const char *state;
    struct listener L;
    struct hl_handoff_config hc;
    struct hl_keeper_config kc;
    int64_t alert_after_ms;
};

/* Reads the options into *lo; returns HL_OPTS_RUN, or the exit status (0 after --help, 2 on a
 * usage error). */
static int listen_opts(int argc, char **argv, struct listen_opts *lo)
{
    struct hl_options o;
    int status = hl_options_get(HL_CMD_LISTEN, argc, argv, &o);
    if (status != HL_OPTS_RUN)
        return status;
    if (o.secrets.n == 0)
        return hl_usage_error(HL_CMD_LISTEN, "give the webhook's secret with --secret or "
                                             "HOOKLINE_WEBHOOK_SECRET");
    if (o.exec && o.forward)
        return hl_usage_error(HL_CMD_LISTEN, "--exec and --forward are exclusive; pick one");
    if (o.json && (o.exec || o.forward))
        return hl_usage_error(HL_CMD_LISTEN, "--json is for printing; not with --exec/--forward");
    if (o.alert_exec && !o.alert_after_ms)
        return hl_usage_error(HL_CMD_LISTEN, "--alert-exec runs after --alert-after; give both");
    /* A request's signed time may be off by --tolerance either way, so a replay can come up to
     * twice the tolerance after the original: its eventId must still be remembered then. */
    if (o.dedupe_window_ms && o.dedupe_window_ms / 2000 < o.tolerance_s)
        return hl_usage_error(HL_CMD_LISTEN,
                              "--dedupe-window must be at least twice --tolerance (%lld s), or "
                              "replays inside the tolerance would be handed on again",
                              o.tolerance_s);
    hl_log_set_level((enum hl_log_level)o.log_level);
    hl_log_set_format((enum hl_log_format)o.log_format);
    *lo = (struct listen_opts){
        .addr = o.bind,
        .port = (long)o.port,
        .state = o.state,
        .L = {.keys = {.s = o.secrets, .tolerance_s = o.tolerance_s},
              .path = o.path,
              .max_body = (size_t)o.max_body},
        .hc = {.exec_cmd = o.exec,
               .forward_url = o.forward,
               .json = o.json,
               .out = stdout,
               .max_attempts = (int)o.attempts,
               .backoff_ms = o.backoff_ms,
               /* doubling stops at 5 minutes, or at --backoff when that is longer */
               .backoff_max_ms = o.backoff_ms > 300000 ? o.backoff_ms : 300000,
               .timeout_ms = o.handoff_timeout_ms},
        .kc = {.state_path = o.state,
               .dedupe_window_ms = o.dedupe_window_ms,
               .alert_cmd = o.alert_exec,
               .alert_timeout_ms = o.handoff_timeout_ms},
        .alert_after_ms = o.alert_after_ms,
    };
    return HL_OPTS_RUN;
}

int hl_listen_main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "replay") == 0)
        return hl_listen_replay_main(argc - 1, argv + 1);
    struct listen_opts o;
    int status = listen_opts(argc, argv, &o);
    if (status != HL_OPTS_RUN)
        return status;
    /* the option table checked the address */
    struct sockaddr_storage ss;
    socklen_t sslen;
    if (hl_parse_bind_host(o.addr, (uint16_t)o.port, &ss, &sslen))
        return hl_usage_error(HL_CMD_LISTEN, "--listen %s: not an address", o.addr);

    /* Signals are taken by sigwait below, in this thread only; the worker and the HTTP threads
     * start with them blocked. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct listener *L = &o.L;
    struct MHD_Daemon *d = NULL;
    int curl_up = 0;
    char err[512];
    status = 1;
    if (o.hc.forward_url) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            fprintf(stderr, "hookline listen: cannot initialise libcurl\n");
            goto out;
        }
        curl_up = 1;
    }
    if (hl_inbox_open(o.state, &L->inbox, err, sizeof(err)) != HL_OK) {
        fprintf(stderr, "hookline listen: %s\n", err);
        goto out;
    }
    if (hl_handoff_start(o.state, &o.hc, &L->handoff) != HL_OK)
        goto out;
    hl_ratelog_init(&L->log, LOG_INTERVAL_MS);
    o.kc.log = &L->log;
    if (o.alert_after_ms) {
        hl_alert_init(&L->alert, o.alert_after_ms, hl_mono_ms());
        L->alerting = 1;
        o.kc.alert = &L->alert;
    }
    if (hl_keeper_start(&o.kc, &L->keeper) != HL_OK)
        goto out;
    unsigned flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_USE_ITC;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, L, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)HTTP_THREADS, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_CONNECTION_LIMIT, CONNECTIONS_MAX,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL, MHD_OPTION_END);
    if (!d) {
        int e = errno;
        fprintf(stderr, "hookline listen: cannot listen on %s port %ld: %s%s\n", o.addr, o.port,
                strerror(e),
                e == EADDRINUSE ? " (another program has it: give another with --port)" : "");
        goto out;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    const char *to = o.hc.exec_cmd      ? "runs --exec"
                     : o.hc.forward_url ? "goes to --forward"
                     : o.hc.json        ? "printed (JSON)"
                                        : "printed";
    hl_info("listen: receiving on %s%s%s port %u, path %s; state %s; each event %s",
            ss.ss_family == AF_INET6 ? "[" : "", o.addr, ss.ss_family == AF_INET6 ? "]" : "",
            info ? (unsigned)info->port : (unsigned)o.port, L->path ? L->path : "(any)", o.state,
            to);

    int sig = 0;
    sigwait(&set, &sig);
    hl_info("listen: signal %d: stopping", sig);
    status = 0;
out:
    /* No MHD_quiesce_daemon first: on an epoll thread pool it takes the listening socket out of
     * each thread's epoll set while that thread may be doing the same, and libmicrohttpd aborts
     * the process when it finds the socket gone. The stop closes the socket itself. */
    if (d)
        MHD_stop_daemon(d);
    hl_handoff_stop(L->handoff);
    /* last: the HTTP threads that report to it are gone */
    hl_keeper_stop(L->keeper);
    if (o.kc.log)
        hl_ratelog_destroy(&L->log);
    if (L->alerting)
        hl_alert_destroy(&L->alert);
    hl_inbox_close(L->inbox);
    if (curl_up)
        curl_global_cleanup();
    if (status == 0)
        hl_info("listen: stopped");
    return status;
}

/* ---- hookline verify ---- */

/* Reads all of stdin into b (bounded by its maximum). */
static int read_stdin(struct hl_buf *b)
{
    char chunk[65536];
    for (;;) {
        ssize_t n = read(STDIN_FILENO, chunk, sizeof(chunk));
        if (n == 0)
            return HL_OK;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return HL_EIO;
        int rc = hl_buf_append(b, chunk, (size_t)n);
        if (rc != HL_OK)
            return rc;
    }
}

int hl_verify_main(int argc, char **argv)
{
    struct hl_options o;
    int status = hl_options_get(HL_CMD_VERIFY, argc, argv, &o);
    if (status != HL_OPTS_RUN)
        return status;
    struct keyring k = {.s = o.secrets, .tolerance_s = o.tolerance_s};
    const char *sig = o.signature, *wid = o.id, *wts = o.timestamp, *wsig = o.standard_signature;
    int std = wid || wts || wsig;
    if (k.s.n == 0)
        return hl_usage_error(HL_CMD_VERIFY,
                              "give the secret with --secret or HOOKLINE_WEBHOOK_SECRET");
    if (std && !(wid && wts && wsig))
        return hl_usage_error(HL_CMD_VERIFY,
                              "--id, --timestamp and --standard-signature go together");
    if (!sig && !std)
        return hl_usage_error(HL_CMD_VERIFY,
                              "give --signature, or the three Standard Webhooks values");
    struct hl_buf body;
    hl_buf_init(&body, HOOKLINE_BODY_MAX);
    int rc = read_stdin(&body);
    if (rc != HL_OK) {
        fprintf(stderr, "hookline verify: cannot read the body: %s\n",
                rc == HL_ETOOBIG ? "larger than 16 MiB" : hl_strerror(rc));
        hl_buf_free(&body);
        return 2;
    }
    int why;
    struct hookline_headers h = {
        .signature = sig, .webhook_id = wid, .webhook_timestamp = wts, .webhook_signature = wsig};
    int ok = verified(&k, body.p ? body.p : "", body.len, &h, &why);
    hl_buf_free(&body);
    if (ok) {
        printf("valid\n");
        return 0;
    }
    if (why == HOOKLINE_ERR_SECRET) {
        fprintf(stderr, "hookline verify: %s\n", hookline_strerror(why));
        return 2;
    }
    fprintf(stderr, "invalid: %s\n", hookline_strerror(why));
    return 1;
}
