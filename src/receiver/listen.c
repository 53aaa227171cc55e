/* `hookline listen`: a ready receiver for local development and small integrations, and
 * `hookline verify`, which checks one body's signature from a shell.
 *
 * listen answers every POST in three steps, all before the answer:
 *   1. verify: the guide's X-Webhook-Signature (or X-Webhook-Signature-Previous, sent during a
 *      rotation) or the Standard Webhooks headers, under any of the configured secrets;
 *   2. parse the envelope (eventId, event, data.externalTenantId);
 *   3. record it in the state file, durably, unless its eventId is already there.
 * The hand-off (command, URL or stdout) happens afterwards in the worker (handoff.c), so the
 * sender gets its 200 in the time of one fsync, whatever the hand-off costs. */
#include "receiver/listen.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
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
#include "receiver/handoff.h"
#include "receiver/inbox.h"

#define DEFAULT_PORT 3000
#define DEFAULT_STATE "./hookline-listen.db"
/* Twice the largest API request hookline serve accepts, so any event it sends fits. */
#define DEFAULT_MAX_BODY (2u << 20)
#define SECRETS_MAX 16
/* The recorded headers of one request (libmicrohttpd already caps them near 32 KiB). */
#define HEADERS_MAX (64u << 10)
#define HTTP_THREADS 4
/* With DEFAULT_MAX_BODY, bounds the memory that bodies in flight can take (512 MiB). */
#define CONNECTIONS_MAX 256u
/* How much of a too large chunked body is read (and dropped) to be able to answer 413. */
#define DROP_MAX (16u << 20)

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
    const char *secrets[SECRETS_MAX];
    size_t n;
    int64_t tolerance_s;
};

struct listener {
    struct keyring keys;
    const char *path; /* accept POSTs to this path only, or NULL for any */
    size_t max_body;
    struct hl_inbox *inbox;
    struct hl_handoff *handoff;
};

/* Request-scoped state, freed in on_completed. */
struct request {
    struct hl_buf body;
    int too_big;    /* the body went past the maximum */
    size_t dropped; /* bytes read and dropped since */
};

/* ---- small parsers ---- */

/* An IPv4 or IPv6 literal (brackets optional), "localhost" or "*" (every IPv4 address). */
static int parse_bind(const char *addr, long port, struct sockaddr_storage *ss)
{
    char host[64];
    size_t n = strlen(addr);
    if (n >= 2 && addr[0] == '[' && addr[n - 1] == ']') {
        addr++;
        n -= 2;
    }
    if (n >= sizeof(host))
        return HL_EINVAL;
    memcpy(host, addr, n);
    host[n] = '\0';
    socklen_t len;
    return hl_parse_listen_host(strcmp(host, "*") == 0 ? "0.0.0.0" : host, AF_UNSPEC,
                                (uint16_t)port, ss, &len);
}

/* ---- verification ---- */

/* True when some secret verifies the request by either scheme. *why gets the reason of the
 * most telling failure otherwise (a Standard Webhooks one, e.g. a stale timestamp, when those
 * headers were sent). */
static int verified(const struct keyring *k, const char *body, size_t len, const char *sig,
                    const char *prev, const char *wid, const char *wts, const char *wsig, int *why)
{
    int std = wid || wts || wsig;
    *why = HOOKLINE_ERR_FORMAT;
    for (size_t i = 0; i < k->n; i++) {
        const char *s = k->secrets[i];
        int rc = HOOKLINE_ERR_FORMAT;
        if (sig && (rc = hookline_verify_signature(s, body, len, sig)) == HOOKLINE_OK)
            return 1;
        if (!std && sig)
            *why = rc;
        /* During a rotation the guide's header holds the new secret's signature and this one
         * the old secret's: a receiver not yet switched over still verifies. */
        if (prev && hookline_verify_signature(s, body, len, prev) == HOOKLINE_OK)
            return 1;
        if (std) {
            rc = hookline_verify_standard(s, wid, wts, wsig, body, len, 0, k->tolerance_s);
            if (rc == HOOKLINE_OK)
                return 1;
            if (*why != HOOKLINE_ERR_TIMESTAMP)
                *why = rc;
        }
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
    if (!verified(&L->keys, body, len, header(conn, "X-Webhook-Signature"),
                  header(conn, "X-Webhook-Signature-Previous"), header(conn, "webhook-id"),
                  header(conn, "webhook-timestamp"), header(conn, "webhook-signature"), &why)) {
        hl_warn("listen: POST %s: 401 (%s)", path, hookline_strerror(why));
        return answer(conn, 401, ANSWER_UNSIGNED, NULL);
    }
    struct hookline_envelope env;
    int rc = parse_event(body, len, &env);
    if (rc != HOOKLINE_OK) {
        hl_warn("listen: POST %s: 400 (%s)", path, hookline_strerror(rc));
        return answer(conn, 400, ANSWER_BAD_BODY, NULL);
    }
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
        hl_error("listen: %s %s: cannot record it: %s", env.event_id, env.event, hl_strerror(rc));
        return answer(conn, 503, ANSWER_STORE, NULL);
    }
    if (duplicate) {
        hl_info("listen: %s %s: duplicate, not handed on again", env.event_id, env.event);
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

static void listen_help(FILE *f)
{
    fprintf(f,
            "usage: hookline listen [--port PORT] --secret SECRET [options]\n\n"
            "Receives webhooks: verifies each request (X-Webhook-Signature or the Standard\n"
            "Webhooks headers), records it durably, answers 200 {\"received\":true} (401 on a\n"
            "bad or missing signature), de-duplicates on eventId across restarts, then hands\n"
            "each event on once, asynchronously.\n\n"
            "  --port PORT          port to listen on (default %d; 0 picks a free one)\n"
            "  --listen ADDR        address to bind (default 127.0.0.1; * for every address)\n"
            "  --secret SECRET      the webhook's secret (HOOKLINE_WEBHOOK_SECRET, better: other\n"
            "                       local users can read arguments); repeat it to accept\n"
            "                       several, e.g. the old and the new one while rotating\n"
            "  --path PATH          accept POSTs to this path only (default: any path)\n"
            "  --state FILE         SQLite file for de-duplication and the hand-off queue\n"
            "                       (default " DEFAULT_STATE ")\n"
            "  --exec CMD           run `sh -c CMD` per event: body on stdin, HOOKLINE_EVENT,\n"
            "                       HOOKLINE_EVENT_ID, HOOKLINE_TENANT, HOOKLINE_ATTEMPT set\n"
            "  --forward URL        re-POST each event, with its headers, to URL\n"
            "  --json               print each body on one line instead of a summary line\n"
            "                       (default: time, event, tenant, eventId, tab-separated)\n"
            "  --attempts N         tries per event before giving up (default 8)\n"
            "  --backoff DURATION   wait before the 2nd try, doubled after each (default 1s;\n"
            "                       at most 5m)\n"
            "  --timeout DURATION   longest a command or a forward may take (default 30s)\n"
            "  --tolerance SECONDS  accepted age of webhook-timestamp (default %d)\n"
            "  --max-body BYTES     larger bodies get 413 (default %u)\n"
            "  --log-level LEVEL    debug|info|warn|error (default info; logs go to stderr)\n"
            "  --help               this text\n\n"
            "Failed hand-offs are retried, and reported on stderr. SIGINT or SIGTERM stops\n"
            "after the hand-off in progress; the next start resumes what was left.\n",
            DEFAULT_PORT, HOOKLINE_DEFAULT_TOLERANCE, DEFAULT_MAX_BODY);
}

struct listen_opts {
    const char *addr;
    long port;
    const char *state;
    const char *log_level;
    struct listener L;
    struct hl_handoff_config hc;
};

/* Reads the options; returns 0, or the exit status (0 after --help, 2 on a usage error). */
static int listen_opts(int argc, char **argv, struct listen_opts *o, int *exit_now)
{
    static const struct option opts[] = {
        {"port", required_argument, NULL, 'p'},     {"listen", required_argument, NULL, 'l'},
        {"secret", required_argument, NULL, 's'},   {"path", required_argument, NULL, 'P'},
        {"state", required_argument, NULL, 'S'},    {"exec", required_argument, NULL, 'e'},
        {"forward", required_argument, NULL, 'f'},  {"json", no_argument, NULL, 'j'},
        {"attempts", required_argument, NULL, 'a'}, {"backoff", required_argument, NULL, 'b'},
        {"timeout", required_argument, NULL, 't'},  {"tolerance", required_argument, NULL, 'T'},
        {"max-body", required_argument, NULL, 'm'}, {"log-level", required_argument, NULL, 'L'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0}};
    long long v;
    *exit_now = 1;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            if (hl_parse_int(optarg, 0, 65535, &v)) {
                fprintf(stderr, "hookline listen: --port must be 0..65535\n");
                return 2;
            }
            o->port = (long)v;
            break;
        case 'l':
            o->addr = optarg;
            break;
        case 's':
            if (o->L.keys.n == SECRETS_MAX) {
                fprintf(stderr, "hookline listen: at most %d --secret\n", SECRETS_MAX);
                return 2;
            }
            o->L.keys.secrets[o->L.keys.n++] = optarg;
            break;
        case 'P':
            if (optarg[0] != '/') {
                fprintf(stderr, "hookline listen: --path must start with /\n");
                return 2;
            }
            o->L.path = optarg;
            break;
        case 'S':
            o->state = optarg;
            break;
        case 'e':
            o->hc.exec_cmd = optarg;
            break;
        case 'f':
            if (strncmp(optarg, "http://", 7) != 0 && strncmp(optarg, "https://", 8) != 0) {
                fprintf(stderr, "hookline listen: --forward wants an http:// or https:// URL\n");
                return 2;
            }
            o->hc.forward_url = optarg;
            break;
        case 'j':
            o->hc.json = 1;
            break;
        case 'a':
            if (hl_parse_int(optarg, 1, 1000, &v)) {
                fprintf(stderr, "hookline listen: --attempts must be 1..1000\n");
                return 2;
            }
            o->hc.max_attempts = (int)v;
            break;
        case 'b':
            if (hl_parse_duration(optarg, &o->hc.backoff_ms) || o->hc.backoff_ms < 1) {
                fprintf(stderr, "hookline listen: --backoff wants a duration like 1s or 250ms\n");
                return 2;
            }
            break;
        case 't':
            if (hl_parse_duration(optarg, &o->hc.timeout_ms) || o->hc.timeout_ms < 1) {
                fprintf(stderr, "hookline listen: --timeout wants a duration like 30s\n");
                return 2;
            }
            break;
        case 'T':
            if (hl_parse_int(optarg, 1, 7 * 86400, &v)) {
                fprintf(stderr, "hookline listen: --tolerance must be 1..604800 seconds\n");
                return 2;
            }
            o->L.keys.tolerance_s = v;
            break;
        case 'm':
            if (hl_parse_int(optarg, 1, HOOKLINE_BODY_MAX, &v)) {
                fprintf(stderr, "hookline listen: --max-body must be 1..%u\n", HOOKLINE_BODY_MAX);
                return 2;
            }
            o->L.max_body = (size_t)v;
            break;
        case 'L':
            o->log_level = optarg;
            break;
        case 'h':
            listen_help(stdout);
            return 0;
        default:
            listen_help(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "hookline listen: unexpected argument '%s'\n\n", argv[optind]);
        listen_help(stderr);
        return 2;
    }
    const char *env = getenv("HOOKLINE_WEBHOOK_SECRET");
    if (o->L.keys.n == 0 && env && *env)
        o->L.keys.secrets[o->L.keys.n++] = env;
    if (o->L.keys.n == 0) {
        fprintf(stderr, "hookline listen: give the webhook's secret with --secret or "
                        "HOOKLINE_WEBHOOK_SECRET\n");
        return 2;
    }
    for (size_t i = 0; i < o->L.keys.n; i++) {
        if (!*o->L.keys.secrets[i] || strlen(o->L.keys.secrets[i]) > HOOKLINE_SECRET_MAX) {
            fprintf(stderr, "hookline listen: a secret must be 1..%d bytes\n", HOOKLINE_SECRET_MAX);
            return 2;
        }
    }
    if (o->hc.exec_cmd && o->hc.forward_url) {
        fprintf(stderr, "hookline listen: --exec and --forward are exclusive; pick one\n");
        return 2;
    }
    if (o->hc.json && (o->hc.exec_cmd || o->hc.forward_url)) {
        fprintf(stderr, "hookline listen: --json is for printing; not with --exec/--forward\n");
        return 2;
    }
    if (strcmp(o->log_level, "debug") == 0)
        hl_log_set_level(HL_LOG_DEBUG);
    else if (strcmp(o->log_level, "warn") == 0)
        hl_log_set_level(HL_LOG_WARN);
    else if (strcmp(o->log_level, "error") == 0)
        hl_log_set_level(HL_LOG_ERROR);
    else if (strcmp(o->log_level, "info") != 0) {
        fprintf(stderr, "hookline listen: --log-level must be debug, info, warn or error\n");
        return 2;
    }
    *exit_now = 0;
    return 0;
}

int hl_listen_main(int argc, char **argv)
{
    struct listen_opts o = {
        .addr = "127.0.0.1",
        .port = DEFAULT_PORT,
        .state = DEFAULT_STATE,
        .log_level = "info",
        .L = {.keys = {.tolerance_s = HOOKLINE_DEFAULT_TOLERANCE}, .max_body = DEFAULT_MAX_BODY},
        .hc = {.out = stdout,
               .max_attempts = 8,
               .backoff_ms = 1000,
               .backoff_max_ms = 300000,
               .timeout_ms = 30000},
    };
    int exit_now;
    int status = listen_opts(argc, argv, &o, &exit_now);
    if (exit_now)
        return status;
    if (o.hc.backoff_max_ms < o.hc.backoff_ms)
        o.hc.backoff_max_ms = o.hc.backoff_ms;

    struct sockaddr_storage ss;
    if (parse_bind(o.addr, o.port, &ss)) {
        fprintf(stderr, "hookline listen: --listen wants an IP address, localhost or *\n");
        return 2;
    }

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
        fprintf(stderr, "hookline listen: cannot listen on %s port %ld: %s\n", o.addr, o.port,
                strerror(errno));
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
    MHD_socket s = MHD_quiesce_daemon(d);
    if (s != MHD_INVALID_SOCKET)
        close(s);
    status = 0;
out:
    if (d)
        MHD_stop_daemon(d);
    hl_handoff_stop(L->handoff);
    hl_inbox_close(L->inbox);
    if (curl_up)
        curl_global_cleanup();
    if (status == 0)
        hl_info("listen: stopped");
    return status;
}

/* ---- hookline verify ---- */

static void verify_help(FILE *f)
{
    fprintf(f,
            "usage: hookline verify --secret SECRET --signature HEADER < body\n"
            "       hookline verify --secret SECRET --id ID --timestamp SECONDS\n"
            "                       --standard-signature HEADER < body\n\n"
            "Checks the signature of one webhook body read from stdin (the raw bytes, as\n"
            "received). --signature is X-Webhook-Signature (\"sha256=<hex>\" or the bare hex);\n"
            "--id, --timestamp and --standard-signature are the Standard Webhooks headers\n"
            "webhook-id, webhook-timestamp and webhook-signature. Given both, either may match.\n\n"
            "  --secret SECRET      the webhook's secret (HOOKLINE_WEBHOOK_SECRET); repeatable\n"
            "  --tolerance SECONDS  accepted age of --timestamp (default %d)\n"
            "  --help               this text\n\n"
            "Exit status: 0 valid, 1 invalid, 2 usage or input error.\n",
            HOOKLINE_DEFAULT_TOLERANCE);
}

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
    static const struct option opts[] = {{"secret", required_argument, NULL, 's'},
                                         {"signature", required_argument, NULL, 'g'},
                                         {"id", required_argument, NULL, 'i'},
                                         {"timestamp", required_argument, NULL, 't'},
                                         {"standard-signature", required_argument, NULL, 'S'},
                                         {"tolerance", required_argument, NULL, 'T'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct keyring k = {.tolerance_s = HOOKLINE_DEFAULT_TOLERANCE};
    const char *sig = NULL, *wid = NULL, *wts = NULL, *wsig = NULL;
    long long v;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            if (k.n == SECRETS_MAX) {
                fprintf(stderr, "hookline verify: at most %d --secret\n", SECRETS_MAX);
                return 2;
            }
            k.secrets[k.n++] = optarg;
            break;
        case 'g':
            sig = optarg;
            break;
        case 'i':
            wid = optarg;
            break;
        case 't':
            wts = optarg;
            break;
        case 'S':
            wsig = optarg;
            break;
        case 'T':
            if (hl_parse_int(optarg, 1, 7 * 86400, &v)) {
                fprintf(stderr, "hookline verify: --tolerance must be 1..604800 seconds\n");
                return 2;
            }
            k.tolerance_s = v;
            break;
        case 'h':
            verify_help(stdout);
            return 0;
        default:
            verify_help(stderr);
            return 2;
        }
    }
    const char *env = getenv("HOOKLINE_WEBHOOK_SECRET");
    if (k.n == 0 && env && *env)
        k.secrets[k.n++] = env;
    int std = wid || wts || wsig;
    if (optind != argc || k.n == 0 || (!sig && !std) || (std && !(wid && wts && wsig))) {
        fprintf(stderr, "hookline verify: %s\n\n",
                optind != argc ? "unexpected argument"
                : k.n == 0     ? "give the secret with --secret or HOOKLINE_WEBHOOK_SECRET"
                : std          ? "--id, --timestamp and --standard-signature go together"
                               : "give --signature, or the three Standard Webhooks values");
        verify_help(stderr);
        return 2;
    }
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
    int ok = verified(&k, body.p ? body.p : "", body.len, sig, NULL, wid, wts, wsig, &why);
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
