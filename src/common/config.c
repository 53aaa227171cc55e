#include "common/config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "common/net.h"
#include "common/ids.h"
#include "hookline/verify.h"

int hl_parse_int(const char *s, long long min, long long max, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno || v < min || v > max)
        return HL_EINVAL;
    *out = v;
    return HL_OK;
}

int hl_parse_duration(const char *s, int64_t *ms)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    /* end == s: no digits at all, so a bare unit such as "ms" is not a zero duration */
    if (!*s || end == s || errno || v < 0)
        return HL_EINVAL;
    long long mul;
    if (strcmp(end, "ms") == 0)
        mul = 1;
    else if (*end == '\0' || strcmp(end, "s") == 0)
        mul = 1000;
    else if (strcmp(end, "m") == 0)
        mul = 60000;
    else if (strcmp(end, "h") == 0)
        mul = 3600000;
    else if (strcmp(end, "d") == 0)
        mul = 86400000;
    else
        return HL_EINVAL;
    if (v > INT64_MAX / mul)
        return HL_EINVAL;
    *ms = v * mul;
    return HL_OK;
}

int hl_parse_size(const char *s, long long min, long long max, long long *out)
{
    if (*s < '0' || *s > '9')
        return HL_EINVAL;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno)
        return HL_EINVAL;
    static const char units[] = "kmgt";
    const char *u = *end ? strchr(units, *end | 0x20) : NULL;
    if (*end && (!u || end[1]))
        return HL_EINVAL;
    for (long i = u ? u - units + 1 : 0; i > 0; i--) {
        if (v > LLONG_MAX / 1024)
            return HL_EINVAL;
        v *= 1024;
    }
    if (v < min || v > max)
        return HL_EINVAL;
    *out = v;
    return HL_OK;
}

int hl_parse_time_before(const char *s, int64_t now, int64_t *ms)
{
    int64_t v;
    if (strcmp(s, "now") == 0) {
        *ms = now;
        return HL_OK;
    }
    if (hl_parse_duration(s, &v) == HL_OK) {
        if (v > now)
            return HL_EINVAL;
        *ms = now - v;
        return HL_OK;
    }
    size_t len = strlen(s);
    char day[32];
    if (len == 10) { /* a date: its midnight, UTC */
        snprintf(day, sizeof(day), "%sT00:00:00Z", s);
        s = day;
        len = strlen(day);
    }
    /* a time says its zone (Z or an offset): hl_time_parse refuses a bare local time */
    if (hl_time_parse(s, len, &v) != HL_OK)
        return HL_EINVAL;
    *ms = v;
    return HL_OK;
}

/* ---- setters and checks of the rows that need more than their kind ---- */

static int set_retention(void *field, const char *text)
{
    int64_t ms;
    if (hl_parse_duration(text, &ms) != HL_OK || (ms != 0 && ms < HL_RETENTION_MIN_MS))
        return HL_EINVAL;
    *(int64_t *)field = ms;
    return HL_OK;
}

static int check_before(const char *text)
{
    int64_t ms;
    return hl_parse_time_before(text, hl_now_ms(), &ms);
}

static int set_schedule(void *field, const char *text)
{
    return hl_retry_parse(text, field);
}

static int set_cidrs(void *field, const char *text)
{
    struct hl_netlist *nl = field, next = *nl;
    /* all or nothing: a bad range in the middle adds none of the list */
    int rc = hl_netlist_add_list(&next, text);
    if (rc == HL_OK)
        *nl = next;
    return rc;
}

static int set_secret(void *field, const char *text)
{
    struct hl_secrets *s = field;
    if (!*text || strlen(text) > HL_SECRET_MAX)
        return HL_EINVAL;
    if (s->n == HL_SECRETS_MAX)
        return HL_ETOOBIG;
    s->v[s->n++] = text;
    return HL_OK;
}

static int check_listen_addr(const char *text)
{
    struct sockaddr_storage ss;
    socklen_t len;
    return hl_parse_listen_addr(text, &ss, &len);
}

static int check_bind_host(const char *text)
{
    struct sockaddr_storage ss;
    socklen_t len;
    return hl_parse_bind_host(text, 0, &ss, &len);
}

/* http:// or https://, a host that is not empty and an optional port from 1 to 65535, nothing
 * after them but an optional path with no empty segment ("//": links would get "//console"):
 * no user, query, fragment, blank or control character; at most 255 characters. */
static int check_public_url(const char *text)
{
    size_t n = strlen(text), skip = strncmp(text, "https://", 8) == 0  ? 8
                                    : strncmp(text, "http://", 7) == 0 ? 7
                                                                       : 0;
    if (skip == 0 || n <= skip || n > 255 || text[skip] == '/')
        return HL_EINVAL;
    for (size_t i = skip; i < n; i++)
        if ((unsigned char)text[i] <= ' ' || (unsigned char)text[i] >= 0x7f ||
            strchr("@?#\\\"<>", text[i]))
            return HL_EINVAL;
    const char *host = text + skip, *end = host + strcspn(host, "/"), *port = NULL;
    if (*host == '[') { /* an IPv6 address */
        const char *close = memchr(host, ']', (size_t)(end - host));
        if (!close || close == host + 1 || (close + 1 < end && close[1] != ':'))
            return HL_EINVAL;
        port = close + 1 < end ? close + 1 : NULL;
    } else {
        port = memchr(host, ':', (size_t)(end - host));
    }
    if (port == host)
        return HL_EINVAL;
    if (port) {
        long value = 0;
        const char *p = port + 1;
        for (; p < end && p - port <= 5 && *p >= '0' && *p <= '9'; p++)
            value = value * 10 + (*p - '0');
        if (p != end || p == port + 1 || value < 1 || value > 65535)
            return HL_EINVAL;
    }
    return strstr(end, "//") ? HL_EINVAL : HL_OK;
}

static int check_path(const char *text)
{
    return text[0] == '/' ? HL_OK : HL_EINVAL;
}

/* A point in time: ISO 8601 ("2026-11-30T14:00:00Z"), or a duration ago ("2h": two hours before
 * now). */
static int set_when(void *field, const char *text)
{
    int64_t ms, ago;
    if (hl_parse_duration(text, &ago) == HL_OK) {
        ms = hl_now_ms() - ago;
        if (ago >= hl_now_ms() || ms <= 0)
            return HL_EINVAL;
    } else if (hl_time_parse(text, strlen(text), &ms) != HL_OK || ms <= 0) {
        return HL_EINVAL;
    }
    *(int64_t *)field = ms;
    return HL_OK;
}

static int check_http_url(const char *text)
{
    return strncmp(text, "http://", 7) == 0 || strncmp(text, "https://", 8) == 0 ? HL_OK
                                                                                 : HL_EINVAL;
}

/* ---- the table ---- */

#define SERVE HL_CMD_SERVE
#define LISTEN HL_CMD_LISTEN
#define VERIFY HL_CMD_VERIFY
#define DB_CMDS (HL_CMD_SERVE | HL_CMD_APPS | HL_CMD_KEYS | HL_CMD_PRUNE | HL_CMD_DB)
#define REPLAY HL_CMD_LISTEN_REPLAY
#define EXTRACT HL_CMD_EXTRACT
#define ALL_CMDS                                                                                   \
    (DB_CMDS | HL_CMD_LISTEN | HL_CMD_VERIFY | HL_CMD_LISTEN_REPLAY | HL_CMD_CLIENT | EXTRACT)
#define PRUNE HL_CMD_PRUNE
#define CLIENT HL_CMD_CLIENT
#define CLIENT_LISTS (HL_CMD_WEBHOOKS_LIST | HL_CMD_DELIVERIES_LIST | HL_CMD_EVENTS_LIST)
#define WEBHOOK_FIELDS (HL_CMD_WEBHOOKS_CREATE | HL_CMD_WEBHOOKS_UPDATE)

/* The offset of a field of struct hl_options, which must have type T: comparing pointers to
 * different types does not compile (-Werror), so a row cannot write the wrong type. */
#define AT(field, T)                                                                               \
    (offsetof(struct hl_options, field) + 0 * sizeof(&((struct hl_options *)0)->field == (T *)0))
#define STRING(f) .kind = HL_OPT_STRING, .offset = AT(f, const char *)
#define INT(f) .kind = HL_OPT_INT, .offset = AT(f, long long)
#define SIZE(f) .kind = HL_OPT_SIZE, .offset = AT(f, long long)
#define DURATION(f) .kind = HL_OPT_DURATION, .offset = AT(f, int64_t)
#define ENUM(f) .kind = HL_OPT_ENUM, .offset = AT(f, int)
#define FLAG(f) .kind = HL_OPT_FLAG, .offset = AT(f, int)
#define VALUE(f, T) .kind = HL_OPT_VALUE, .offset = AT(f, T)
#define LIST(f, T) .kind = HL_OPT_LIST, .offset = AT(f, T)
#define NO_MAX LLONG_MAX

#define SEC 1000LL
#define MIB (1LL << 20)

static const char *const MODES[] = {"development", "production", NULL};
/* in the order of enum hl_log_level */
static const char *const LEVELS[] = {"debug", "info", "warn", "error", NULL};
_Static_assert(HL_LOG_DEBUG == 0 && HL_LOG_INFO == 1 && HL_LOG_WARN == 2 && HL_LOG_ERROR == 3,
               "LEVELS follows enum hl_log_level");
/* in the order of enum hl_log_format */
static const char *const FORMATS[] = {"text", "json", NULL};
_Static_assert(HL_LOG_TEXT == 0 && HL_LOG_JSON == 1, "FORMATS follows enum hl_log_format");

static const struct hl_opt OPTS[] = {
    /* serve */
    {.name = "listen",
     .env = "HOOKLINE_LISTEN",
     .def = "127.0.0.1:8080",
     STRING(listen),
     .check = check_listen_addr,
     .cmds = SERVE,
     .arg = "ADDR:PORT",
     .forms = "HOST:PORT such as 127.0.0.1:8080, [::1]:8080 or :8080 (every IPv4 address)",
     .help = "address of the API"},
    {.name = "metrics-listen",
     .env = "HOOKLINE_METRICS_LISTEN",
     STRING(metrics_listen),
     .check = check_listen_addr,
     .cmds = SERVE,
     .arg = "ADDR:PORT",
     .forms = "HOST:PORT such as 127.0.0.1:9090, [::1]:9090 or :9090 (every IPv4 address)",
     .help = "serve /metrics here only (the API's address then answers 404 for it); default: "
             "on the API's address"},
    {.name = "public-url",
     .env = "HOOKLINE_PUBLIC_URL",
     STRING(public_url),
     .check = check_public_url,
     .cmds = SERVE,
     .arg = "URL",
     .forms = "http:// or https://, a host, then an optional :port (1 to 65535) and /path, such as "
              "https://hooks.example.com",
     .help = "where clients reach this server (behind a proxy, the proxy's address): portal links "
             "point there, and console cookies are Secure when it is https; default: links "
             "name the request's Host over http, cookies not Secure"},
    {.name = "database",
     .env = "HOOKLINE_DATABASE",
     .def = "data/hookline.db",
     STRING(database),
     .cmds = DB_CMDS,
     .arg = "PATH|URL",
     .help = "SQLite file or postgres:// URL"},
    {.name = "mode",
     .env = "HOOKLINE_MODE",
     .def = "development",
     ENUM(production),
     .choices = MODES,
     .cmds = SERVE,
     .arg = "MODE",
     .help = "production: https webhooks only, private addresses refused"},
    {.name = "retry-schedule",
     .env = "HOOKLINE_RETRY_SCHEDULE",
     .def = HL_RETRY_DEFAULT_SPEC,
     VALUE(retry, struct hl_retry),
     .set = set_schedule,
     .cmds = SERVE,
     .arg = "LIST",
     .forms = "1 to 32 comma-separated waits such as 0,5s,5m,30m,2h, each at most 7d",
     .help = "wait before each attempt of a delivery"},
    {.name = "timeout",
     .env = "HOOKLINE_TIMEOUT",
     .def = "5s",
     DURATION(timeout_ms),
     .min = 1,
     .max = NO_MAX,
     .cmds = SERVE,
     .arg = "DURATION",
     .help = "per attempt, connect and answer together"},
    {.name = "disable-after",
     .env = "HOOKLINE_DISABLE_AFTER",
     .def = "5d",
     DURATION(disable_after_ms),
     .min = 0,
     .max = NO_MAX,
     .cmds = SERVE,
     .arg = "DURATION",
     .help = "disable a webhook failing that long; 0: never"},
    {.name = "breaker-after",
     .env = "HOOKLINE_BREAKER_AFTER",
     .def = "10",
     INT(breaker_after),
     .min = 1,
     .max = 1000000,
     .cmds = SERVE,
     .arg = "N",
     .help = "failed attempts in a row that open a webhook's circuit breaker: then one probe "
             "at a time, at the retry schedule's pace, until one succeeds"},
    {.name = "defer-after",
     .env = "HOOKLINE_DEFER_AFTER",
     .def = "1000",
     INT(defer_after),
     .min = 0,
     .max = 1000000000,
     .cmds = SERVE,
     .arg = "N",
     .help = "deliveries waiting for a first attempt beyond which a webhook's new ones are owed "
             "compactly and made as its queue drains (SQLite); 0: never"},
    {.name = "allow-network",
     .env = "HOOKLINE_ALLOW_NETWORK",
     LIST(allow, struct hl_netlist),
     .set = set_cidrs,
     .cmds = SERVE,
     .arg = "CIDR",
     .forms = "CIDR ranges such as 10.0.0.0/8, 192.168.1.5 or fd00::/8, separated by commas or "
              "spaces, at most 64 in all",
     .help = "reachable in production even if private; repeatable, comma-separated"},
    {.name = "threads",
     .env = "HOOKLINE_THREADS",
     .def = "8",
     INT(threads),
     .min = 1,
     .max = 256,
     .cmds = SERVE,
     .arg = "N",
     .help = "HTTP worker threads"},
    {.name = "max-inflight",
     .env = "HOOKLINE_MAX_INFLIGHT",
     .def = "256",
     INT(max_inflight),
     .min = 1,
     .max = 65536,
     .cmds = SERVE,
     .arg = "N",
     .help = "concurrent deliveries"},
    {.name = "per-host",
     .env = "HOOKLINE_PER_HOST",
     .def = "32",
     INT(per_host),
     .min = 1,
     .max = 4096,
     .cmds = SERVE,
     .arg = "N",
     .help = "attempts in flight per receiving host, and per webhook"},
    {.name = "data-dir",
     .env = "HOOKLINE_DATA_DIR",
     STRING(data_dir),
     .cmds = SERVE,
     .arg = "DIR",
     .help = "uploaded files and the development key; default: a folder beside the SQLite "
             "file named after it (data/hookline-data for data/hookline.db), or ./hookline-data "
             "with PostgreSQL"},
    {.name = "max-upload",
     .env = "HOOKLINE_MAX_UPLOAD",
     .def = "50M",
     SIZE(max_upload),
     .min = 1,
     .max = 1LL << 40,
     .cmds = SERVE | EXTRACT,
     .arg = "BYTES",
     .help = "largest context file"},
    {.name = "chunk-size",
     .env = "HOOKLINE_CHUNK_SIZE",
     .def = "1000",
     INT(chunk_size),
     .min = 1,
     .max = 1 << 20,
     .cmds = SERVE,
     .arg = "N",
     .help = "characters per passage"},
    {.name = "chunk-overlap",
     .env = "HOOKLINE_CHUNK_OVERLAP",
     .def = "200",
     INT(chunk_overlap),
     .min = 0,
     .max = (1 << 20) - 1,
     .cmds = SERVE,
     .arg = "N",
     .help = "characters shared by neighbouring passages, fewer than --chunk-size"},
    {.name = "lease",
     .env = "HOOKLINE_LEASE",
     .def = "60s",
     DURATION(lease_ms),
     .min = SEC,
     .max = NO_MAX,
     .cmds = SERVE,
     .arg = "DURATION",
     .help = "how long a node's claim holds a delivery"},
    /* Test-only (issue 21), hidden from the help: the e2e suites use it to see silence alerts
     * within seconds. Not for production: silence this short is noise. */
    {.name = "test-silence-floor",
     .def = "60s",
     DURATION(silence_floor_ms),
     .min = 100,
     .max = 60 * SEC,
     .cmds = SERVE,
     .arg = "DURATION",
     .help = "test only: the least silenceAlertSeconds a webhook takes",
     .hidden = 1},
    {.name = "sweep",
     .env = "HOOKLINE_SWEEP",
     .def = "1s",
     DURATION(sweep_ms),
     .min = 100,
     .max = 3600 * SEC,
     .cmds = SERVE,
     .arg = "DURATION",
     .help = "how often a node looks for deliveries no wake-up announced (lapsed leases; on"
             " PostgreSQL it bounds how long a crashed node's new deliveries wait for another)"},
    {.name = "ingest-lease",
     .env = "HOOKLINE_INGEST_LEASE",
     .def = "10m",
     DURATION(ingest_lease_ms),
     .min = SEC,
     .max = NO_MAX,
     .cmds = SERVE,
     .arg = "DURATION",
     .help = "how long a node's claim holds a context file being processed (renewed while its "
             "extraction runs): the file is taken over that long after a node dies"},
    {.name = "ingest-workers",
     .env = "HOOKLINE_INGEST_WORKERS",
     .def = "2",
     INT(ingest_workers),
     .min = 1,
     .max = 64,
     .cmds = SERVE,
     .arg = "N",
     .help = "context files processed at once, the apps' files taking turns"},
    {.name = "ingest-memory",
     .env = "HOOKLINE_INGEST_MEMORY",
     .def = "512M",
     SIZE(ingest_memory),
     .min = 16 * MIB,
     .max = 1LL << 40,
     .cmds = SERVE | EXTRACT,
     .arg = "BYTES",
     .help = "memory extracting one context file may use (in its own process); a file needing "
             "more fails"},
    {.name = "ingest-timeout",
     .env = "HOOKLINE_INGEST_TIMEOUT",
     .def = "60s",
     DURATION(ingest_timeout_ms),
     .min = 100,
     .max = 86400 * SEC,
     .cmds = SERVE | EXTRACT,
     .arg = "DURATION",
     .help = "time (wall clock and CPU) extracting one context file may take; a file taking "
             "longer fails"},
    {.name = "max-webhooks",
     .env = "HOOKLINE_MAX_WEBHOOKS",
     .def = "100",
     INT(max_webhooks),
     .min = 0,
     .max = 1000000,
     .cmds = SERVE,
     .arg = "N",
     .help = "webhooks one app may have; 0: no limit"},
    {.name = "api-rate",
     .env = "HOOKLINE_API_RATE",
     .def = "1000",
     INT(api_rate),
     .min = 0,
     .max = 100000000,
     .cmds = SERVE,
     .arg = "N",
     .help = "API requests per second one app may make, counted on each node apart (a token "
             "bucket; more get 429 with Retry-After); 0: no limit"},
    {.name = "api-burst",
     .env = "HOOKLINE_API_BURST",
     .def = "2000",
     INT(api_burst),
     .min = 1,
     .max = 100000000,
     .cmds = SERVE,
     .arg = "N",
     .help = "requests an app may make at once above --api-rate (the bucket's size)"},
    {.name = "max-app-storage",
     .env = "HOOKLINE_MAX_APP_STORAGE",
     .def = "1G",
     SIZE(max_app_storage),
     .min = 0,
     .max = 1LL << 50,
     .cmds = SERVE,
     .arg = "BYTES",
     .help = "bytes of context files one app may keep; 0: no limit"},
    {.name = "retention",
     .env = "HOOKLINE_RETENTION",
     .def = "30d",
     VALUE(retention_ms, int64_t),
     .set = set_retention,
     .cmds = SERVE,
     .arg = "DURATION",
     .forms = "0 (keep everything) or a duration of at least 1m such as 90s, 12h or 30d",
     .help = "events older than this go, with their deliveries and attempts, once nothing is "
             "owed to a receiver; 0 keeps everything"},
    /* apps, keys, prune */
    {.name = "json",
     FLAG(json),
     .cmds = HL_CMD_APPS | HL_CMD_KEYS | PRUNE,
     .help = "machine-readable output"},
    /* prune */
    {.name = "before",
     STRING(before),
     .check = check_before,
     .cmds = PRUNE,
     .arg = "TIME",
     .forms = "now, a duration ago such as 30d or 12h, a date such as 2026-11-01 (UTC), or a "
              "time such as 2026-11-01T12:00:00Z",
     .help = "remove what is final among the events created before TIME (required)"},
    {.name = "dry-run",
     FLAG(dry_run),
     .cmds = PRUNE,
     .help = "count what would be removed; remove nothing"},
    /* listen */
    {.name = "port",
     .def = "3000",
     INT(port),
     .min = 0,
     .max = 65535,
     .cmds = LISTEN,
     .arg = "PORT",
     .help = "port to listen on; 0 picks a free one"},
    {.name = "listen",
     .def = "127.0.0.1",
     STRING(bind),
     .check = check_bind_host,
     .cmds = LISTEN,
     .arg = "ADDR",
     .forms = "an IP address, localhost or * (every IPv4 address)",
     .help = "address to bind; * for every IPv4 address"},
    {.name = "secret",
     .env = "HOOKLINE_WEBHOOK_SECRET",
     LIST(secrets, struct hl_secrets),
     .set = set_secret,
     .secret = 1,
     .cmds = LISTEN | VERIFY,
     .arg = "SECRET",
     .forms = "1 to 1024 bytes, at most 16 of them",
     .help = "the webhook's secret, better given in the variable: other local users can "
             "read arguments; repeat it to accept several, e.g. the old and the new one while "
             "rotating"},
    {.name = "path",
     STRING(path),
     .check = check_path,
     .cmds = LISTEN,
     .arg = "PATH",
     .forms = "a path starting with /",
     .help = "accept POSTs to this path only; default: any"},
    {.name = "state",
     .def = "./hookline-listen.db",
     STRING(state),
     .cmds = LISTEN | REPLAY,
     .arg = "FILE",
     .help = "SQLite file for de-duplication and the hand-off queue"},
    {.name = "dedupe-window",
     .def = "7d",
     DURATION(dedupe_window_ms),
     .min = 0,
     .max = NO_MAX,
     .cmds = LISTEN,
     .arg = "DURATION",
     .help = "how long an eventId handed on is remembered as a duplicate, at least twice "
             "--tolerance; 0: for ever"},
    {.name = "alert-after",
     DURATION(alert_after_ms),
     .min = SEC,
     .max = 365 * 86400 * SEC,
     .cmds = LISTEN,
     .arg = "DURATION",
     .help = "warn once when no verified event arrived for that long (the timer starts with "
             "listen), and once when they come back"},
    {.name = "alert-exec",
     STRING(alert_exec),
     .cmds = LISTEN,
     .arg = "CMD",
     .help = "with --alert-after: run `sh -c CMD` on each of those, HOOKLINE_ALERT=silent or "
             "recovered, HOOKLINE_SILENCE_SECONDS and HOOKLINE_LAST_EVENT_AT set; one at a time, "
             "within --timeout"},
    {.name = "exec",
     STRING(exec),
     .cmds = LISTEN,
     .arg = "CMD",
     .help = "run `sh -c CMD` per event: body on stdin, HOOKLINE_EVENT, HOOKLINE_EVENT_ID, "
             "HOOKLINE_TENANT, HOOKLINE_ATTEMPT set"},
    {.name = "forward",
     STRING(forward),
     .check = check_http_url,
     .cmds = LISTEN,
     .arg = "URL",
     .forms = "an http:// or https:// URL",
     .help = "re-POST each event, with its headers, to URL"},
    {.name = "json",
     FLAG(json),
     .cmds = LISTEN,
     .help = "print each body on one line instead of a summary line of time, event, tenant, "
             "eventId and a context file's processingStatus (- for other events)"},
    {.name = "attempts",
     .def = "8",
     INT(attempts),
     .min = 1,
     .max = 1000,
     .cmds = LISTEN,
     .arg = "N",
     .help = "tries per event before giving up"},
    {.name = "backoff",
     .def = "1s",
     DURATION(backoff_ms),
     .min = 1,
     .max = NO_MAX,
     .cmds = LISTEN,
     .arg = "DURATION",
     .help = "wait before the 2nd try, doubled after each up to 5m, or this wait if longer"},
    {.name = "timeout",
     .def = "30s",
     DURATION(handoff_timeout_ms),
     .min = 1,
     .max = NO_MAX,
     .cmds = LISTEN,
     .arg = "DURATION",
     .help = "longest a command, a forward or an --alert-exec may take"},
    /* Twice the largest API request hookline serve accepts, so any event it sends fits. */
    {.name = "max-body",
     .def = "2M",
     SIZE(max_body),
     .min = 1,
     .max = HOOKLINE_BODY_MAX,
     .cmds = LISTEN,
     .arg = "BYTES",
     .help = "larger bodies get 413"},
    /* listen, verify */
    {.name = "tolerance",
     .def = "300",
     INT(tolerance_s),
     .min = 1,
     .max = 7 * 86400,
     .cmds = LISTEN | VERIFY,
     .arg = "SECONDS",
     .help = "how far the signed time may be from now: webhook-timestamp, or the body's "
             "timestamp when only X-Webhook-Signature verifies"},
    /* listen replay */
    {.name = "failed",
     FLAG(failed),
     .cmds = REPLAY,
     .help = "every event that gave up, instead of EVENT_IDs"},
    /* verify */
    {.name = "signature",
     STRING(signature),
     .cmds = VERIFY,
     .arg = "HEADER",
     .help = "X-Webhook-Signature (sha256=<hex> or the bare hex)"},
    {.name = "id", STRING(id), .cmds = VERIFY, .arg = "ID", .help = "webhook-id"},
    {.name = "timestamp",
     STRING(timestamp),
     .cmds = VERIFY,
     .arg = "SECONDS",
     .help = "webhook-timestamp"},
    {.name = "standard-signature",
     STRING(standard_signature),
     .cmds = VERIFY,
     .arg = "HEADER",
     .help = "webhook-signature"},
    /* the API client: where the server is and who is asking */
    {.name = "server",
     .env = "HOOKLINE_SERVER",
     .def = "http://127.0.0.1:8080",
     STRING(server),
     .check = check_http_url,
     .cmds = CLIENT,
     .arg = "URL",
     .forms = "an http:// or https:// URL such as http://127.0.0.1:8080",
     .help = "the hookline server"},
    {.name = "app",
     .env = "HOOKLINE_APP",
     STRING(app),
     .cmds = CLIENT,
     .arg = "APP_UID",
     .help = "the app's uid, else the one in data/dev-app-uid (as `make run` leaves it)"},
    {.name = "key",
     .env = "HOOKLINE_API_KEY",
     STRING(key),
     .secret = 1,
     .cmds = CLIENT,
     .arg = "KEY",
     .help = "its API key, else the one in data/dev-api-key"},
    {.name = "json",
     FLAG(json),
     .cmds = CLIENT,
     .help = "print the API's JSON as it came, for scripts (with --all: one list of every page)"},
    {.name = "all", FLAG(all), .cmds = CLIENT_LISTS, .help = "every page, following nextCursor"},
    {.name = "limit",
     .def = "20",
     INT(limit),
     .min = 1,
     .max = 100,
     .cmds = CLIENT_LISTS,
     .arg = "N",
     .help = "items per page"},
    /* webhooks */
    {.name = "url",
     STRING(url),
     .check = check_http_url,
     .cmds = WEBHOOK_FIELDS,
     .arg = "URL",
     .forms = "an http:// or https:// URL",
     .help = "where the events go"},
    {.name = "entities",
     STRING(entities),
     .cmds = WEBHOOK_FIELDS,
     .arg = "LIST",
     .help = "comma-separated: agent, context, contextfile; create's default: all three"},
    {.name = "event-types",
     STRING(event_types),
     .cmds = WEBHOOK_FIELDS,
     .arg = "LIST",
     .help = "comma-separated events within the entities (agent.created, ...), or all"},
    {.name = "description",
     STRING(description),
     .cmds = WEBHOOK_FIELDS,
     .arg = "TEXT",
     .help = "yours, shown with the webhook"},
    /* delivery policy (issue 19) */
    {.name = "filter",
     STRING(filter),
     .cmds = WEBHOOK_FIELDS,
     .arg = "JSON",
     .help = "only events whose envelope matches: {\"data.externalTenantId\":[\"t-1\"]}; none "
             "removes it"},
    {.name = "headers",
     STRING(headers),
     .cmds = WEBHOOK_FIELDS,
     .arg = "JSON",
     .help = "static request headers sent with every attempt: {\"Authorization\":\"Bearer x\"}; "
             "none removes them"},
    {.name = "overlap",
     .def = "24h",
     DURATION(overlap_ms),
     .min = 0,
     .max = 30 * 86400 * SEC,
     .cmds = HL_CMD_WEBHOOKS_ROTATE,
     .arg = "DURATION",
     .help = "how long the old secret keeps signing beside the new one (0: not at all)"},
    /* deliveries, events */
    {.name = "webhook",
     STRING(webhook),
     .cmds = HL_CMD_DELIVERIES_LIST,
     .arg = "UID",
     .help = "only this webhook's deliveries"},
    {.name = "status",
     STRING(status),
     .cmds = HL_CMD_DELIVERIES_LIST,
     .arg = "STATUS",
     .help = "only deliveries in this state: pending, failing (pending, with a failed "
             "attempt behind it), failed, succeeded, cancelled, paused"},
    {.name = "event",
     STRING(event),
     .cmds = HL_CMD_DELIVERIES_LIST | HL_CMD_EVENTS_LIST,
     .arg = "EVENT",
     .help = "only this event (agent.created, ...)"},
    {.name = "since",
     VALUE(since_ms, int64_t),
     .set = set_when,
     .cmds = HL_CMD_DELIVERIES_LIST | HL_CMD_DELIVERIES_RECOVER | HL_CMD_EVENTS_LIST,
     .arg = "TIME",
     .forms = "an ISO 8601 time such as 2026-11-30T14:00:00Z, or a duration ago such as 2h",
     .help = "from this time (ISO 8601, or a duration ago: 30m, 2h, 1d)"},
    {.name = "until",
     VALUE(until_ms, int64_t),
     .set = set_when,
     .cmds = HL_CMD_DELIVERIES_LIST | HL_CMD_DELIVERIES_RECOVER | HL_CMD_EVENTS_LIST,
     .arg = "TIME",
     .forms = "an ISO 8601 time such as 2026-11-30T14:00:00Z, or a duration ago such as 2h",
     .help = "before this time"},
    {.name = "tenant",
     STRING(tenant),
     .cmds = HL_CMD_EVENTS_LIST,
     .arg = "ID",
     .help = "only this externalTenantId's events"},
    {.name = "data",
     STRING(data),
     .cmds = HL_CMD_EVENTS_PUBLISH,
     .arg = "JSON",
     .help = "the event's data: a JSON object with uid and externalTenantId"},
    {.name = "idempotency-key",
     STRING(idempotency_key),
     .cmds = HL_CMD_EVENTS_PUBLISH,
     .arg = "KEY",
     .help = "a repeat with the same key within 24 h publishes nothing new"},
    /* extract */
    {.name = "content-type",
     .env = HL_ENV_EXTRACT_TYPE,
     STRING(content_type),
     .cmds = EXTRACT,
     .arg = "TYPE",
     .help = "the media type the file was uploaded with (a hint)"},
    {.name = "file-name",
     .env = HL_ENV_EXTRACT_NAME,
     STRING(file_name),
     .cmds = EXTRACT,
     .arg = "NAME",
     .help = "the file's original name (a hint)"},
    /* every command */
    {.name = "log-level",
     .env = "HOOKLINE_LOG_LEVEL",
     .def = "info",
     ENUM(log_level),
     .choices = LEVELS,
     .cmds = SERVE | LISTEN,
     .arg = "LEVEL",
     .help = "logs go to stderr"},
    {.name = "log-format",
     .env = "HOOKLINE_LOG_FORMAT",
     .def = "text",
     ENUM(log_format),
     .choices = FORMATS,
     .cmds = SERVE | LISTEN,
     .arg = "FORMAT",
     .help = "json: one object per line with time, level, message and fields"},
    {.name = "help", FLAG(help), .cmds = ALL_CMDS, .help = "this text"},
};

const struct hl_opt *hl_options_table(size_t *n)
{
    *n = sizeof(OPTS) / sizeof(OPTS[0]);
    return OPTS;
}

/* ---- the commands ---- */

struct command {
    enum hl_cmd cmd;
    const char *name;
    int max_args;
    const char *usage; /* the lines before the options */
    const char *notes; /* the lines after them, or NULL */
};

static const struct command COMMANDS[] = {
    {HL_CMD_SERVE, "serve", 0,
     "usage: hookline serve [options]\n\n"
     "Runs the API, the dispatcher and the ingest worker.\n",
     NULL},
    {HL_CMD_APPS, "apps", 2,
     "usage: hookline apps create NAME [options]\n"
     "       hookline apps list [options]\n\n"
     "Creates an app (printing its appUid and a first API key, once) or lists apps.\n",
     NULL},
    {HL_CMD_KEYS, "keys", 2,
     "usage: hookline keys create APP_UID [options]\n"
     "       hookline keys revoke KEY_ID [options]\n"
     "       hookline keys list [APP_UID] [options]\n\n"
     "Creates an API key for an app (shown once), revokes one, or lists them.\n",
     NULL},
    {HL_CMD_PRUNE, "prune", 0,
     "usage: hookline prune --before TIME [--dry-run] [options]\n\n"
     "Removes the events created before TIME whose deliveries are all final (succeeded,\n"
     "failed after the last retry, cancelled), with their deliveries and attempt logs, and\n"
     "the idempotency keys whose 24 h window is over. A delivery still owed to a receiver\n"
     "(pending, retrying, paused, held by a disabled webhook) and its event stay, whatever\n"
     "their age; apps, keys, webhooks and the current state of agents, contexts and files\n"
     "are never removed. Runs in short steps beside a serving hookline.\n",
     "Exit status: 0 done, 1 a store error (what was removed so far stays removed), 2 usage\n"
     "error (nothing removed).\n"},
    {HL_CMD_DB, "db", 1,
     "usage: hookline db init [options]\n"
     "       hookline db compact [options]\n\n"
     "db init creates the database and its schema, or brings an existing one up to date.\n"
     "hookline serve does the same when it starts; apps and keys need a database\n"
     "that exists.\n\n"
     "db compact compacts the database once. SQLite: rewrites the file without its free pages\n"
     "(VACUUM) and turns incremental auto-vacuum on, so that from then on pruning gives space\n"
     "back as it goes; needs the file to itself (stop hookline serve first) and free disk space\n"
     "for a copy. PostgreSQL: VACUUM (ANALYZE) of the tables pruning empties, beside the nodes.\n",
     NULL},
    {HL_CMD_LISTEN, "listen", 0,
     "usage: hookline listen [--port PORT] --secret SECRET [options]\n"
     "       hookline listen replay [--state FILE] (EVENT_ID... | --failed)\n\n"
     "Receives webhooks: verifies each request (X-Webhook-Signature or the Standard\n"
     "Webhooks headers, each with its replay check), records it durably, answers 200\n"
     "{\"received\":true} (401 on a bad or missing signature or a stale timestamp),\n"
     "de-duplicates on eventId across restarts, then hands each event on once,\n"
     "asynchronously: to --exec, to --forward, or printed (time, event, tenant,\n"
     "eventId, a context file's processingStatus).\n",
     "Failed hand-offs are retried, and reported on stderr; `hookline listen replay`\n"
     "queues the ones that gave up again. Warnings about refused requests are\n"
     "rate-limited: the first of a kind at once, then one count per 10 s. SIGINT or\n"
     "SIGTERM stops after the hand-off in progress; the next start resumes what was\n"
     "left.\n"},
    {HL_CMD_LISTEN_REPLAY, "listen replay", HL_ARGS_MAX,
     "usage: hookline listen replay [--state FILE] EVENT_ID...\n"
     "       hookline listen replay [--state FILE] --failed\n\n"
     "Queues events whose hand-off gave up (after --attempts) again, in the state\n"
     "file of a hookline listen: the one running on it hands them to its --exec or\n"
     "--forward within a second, with a fresh count of attempts; otherwise the next\n"
     "one started on it does.\n",
     "Exit status: 0 when every event named is queued (or still pending), 1 when one\n"
     "is unknown or was handed on already (its body is not kept), 2 usage error.\n"},
#define CLIENT_NOTES                                                                               \
    "The server, app and key come from --server, --app and --key, or HOOKLINE_SERVER,\n"           \
    "HOOKLINE_APP and HOOKLINE_API_KEY; beside a `make run` server, data/dev-app-uid and\n"        \
    "data/dev-api-key. Exit status: 0 done, 1 the API refused (its message is printed),\n"         \
    "2 usage error, 3 the server cannot be reached.\n"
    {HL_CMD_WEBHOOKS_LIST, "webhooks list", 0,
     "usage: hookline webhooks list [--all] [--json] [options]\n\n"
     "Lists the app's webhooks: state, URL, events and when each was last tried.\n\n"
     "example: hookline webhooks list --all\n",
     CLIENT_NOTES},
    {HL_CMD_WEBHOOKS_GET, "webhooks get", 1,
     "usage: hookline webhooks get UID [--json] [options]\n\n"
     "Shows one webhook (its secret is never shown again after create).\n\n"
     "example: hookline webhooks get webhook-4oE9Zb6yQJ1xk0Vw\n",
     CLIENT_NOTES},
    {HL_CMD_WEBHOOKS_CREATE, "webhooks create", 0,
     "usage: hookline webhooks create --url URL [--entities LIST] [--event-types LIST]\n"
     "                                [--description TEXT] [--filter JSON] [--headers JSON]\n"
     "                                [options]\n\n"
     "Registers a webhook and prints it with its signing secret, shown only now.\n\n"
     "example: hookline webhooks create --url https://example.com/hooks --entities agent,context\n",
     CLIENT_NOTES},
    {HL_CMD_WEBHOOKS_UPDATE, "webhooks update", 1,
     "usage: hookline webhooks update UID [--url URL] [--entities LIST] [--event-types LIST]\n"
     "                                [--description TEXT] [--filter JSON] [--headers JSON]\n"
     "                                [options]\n\n"
     "Changes the fields given.\n\n"
     "example: hookline webhooks update webhook-4oE9Zb6yQJ1xk0Vw --event-types agent.created\n",
     CLIENT_NOTES},
    {HL_CMD_WEBHOOKS_PAUSE, "webhooks pause", 1,
     "usage: hookline webhooks pause UID [options]\n\n"
     "Pauses a webhook: it gets nothing new until it is resumed.\n\n"
     "example: hookline webhooks pause webhook-4oE9Zb6yQJ1xk0Vw\n",
     CLIENT_NOTES},
    {HL_CMD_WEBHOOKS_RESUME, "webhooks resume", 1,
     "usage: hookline webhooks resume UID [options]\n\n"
     "Resumes a paused webhook, or enables a disabled one again (what happened meanwhile\n"
     "is not replayed; the deliveries that waited go out).\n\n"
     "example: hookline webhooks resume webhook-4oE9Zb6yQJ1xk0Vw\n",
     CLIENT_NOTES},
    {HL_CMD_WEBHOOKS_DELETE, "webhooks delete", 1,
     "usage: hookline webhooks delete UID [options]\n\n"
     "Deletes a webhook; its pending deliveries are cancelled.\n\n"
     "example: hookline webhooks delete webhook-4oE9Zb6yQJ1xk0Vw\n",
     CLIENT_NOTES},
    {HL_CMD_WEBHOOKS_TEST, "webhooks test", 1,
     "usage: hookline webhooks test UID [options]\n\n"
     "Sends a signed webhook.test event to this webhook only, and prints the attempt.\n\n"
     "example: hookline webhooks test webhook-4oE9Zb6yQJ1xk0Vw\n",
     CLIENT_NOTES},
    {HL_CMD_WEBHOOKS_ROTATE, "webhooks rotate-secret", 1,
     "usage: hookline webhooks rotate-secret UID [--overlap DURATION] [options]\n\n"
     "Gives the webhook a new signing secret, shown only now; the old one keeps signing\n"
     "beside it for the overlap.\n\n"
     "example: hookline webhooks rotate-secret webhook-4oE9Zb6yQJ1xk0Vw --overlap 1h\n",
     CLIENT_NOTES},
    {HL_CMD_DELIVERIES_LIST, "deliveries list", 0,
     "usage: hookline deliveries list [--webhook UID] [--status STATUS] [--event EVENT]\n"
     "                                [--since TIME] [--until TIME] [--all] [options]\n\n"
     "Lists deliveries, newest first: every webhook's, or one webhook's.\n\n"
     "example: hookline deliveries list --status failed --since 1d\n",
     CLIENT_NOTES},
    {HL_CMD_DELIVERIES_SHOW, "deliveries show", 1,
     "usage: hookline deliveries show ID [options]\n\n"
     "Shows a delivery and every attempt: status, duration, error and the start of the\n"
     "response.\n\n"
     "example: hookline deliveries show dlv_42\n",
     CLIENT_NOTES},
    {HL_CMD_DELIVERIES_RESEND, "deliveries resend", 1,
     "usage: hookline deliveries resend ID [options]\n\n"
     "Queues one more attempt of a delivery now; it keeps its eventId.\n\n"
     "example: hookline deliveries resend dlv_42\n",
     CLIENT_NOTES},
    {HL_CMD_DELIVERIES_RECOVER, "deliveries recover", 1,
     "usage: hookline deliveries recover WEBHOOK_UID --since TIME [--until TIME] [options]\n\n"
     "Queues again every failed delivery of a webhook created in the window.\n\n"
     "example: hookline deliveries recover webhook-4oE9Zb6yQJ1xk0Vw --since 6h\n",
     CLIENT_NOTES},
    {HL_CMD_EVENTS_LIST, "events list", 0,
     "usage: hookline events list [--event EVENT] [--tenant ID] [--since TIME] [--until TIME]\n"
     "                            [--all] [options]\n\n"
     "Lists the event log, newest first.\n\n"
     "example: hookline events list --event agent.created --since 2h\n",
     CLIENT_NOTES},
    {HL_CMD_EVENTS_SHOW, "events show", 1,
     "usage: hookline events show EVENT_ID [options]\n\n"
     "Shows an event as it was sent, and the deliveries it fanned out to.\n\n"
     "example: hookline events show evt_arJxKqNDoNZCYDh6\n",
     CLIENT_NOTES},
    {HL_CMD_EVENTS_PUBLISH, "events publish", 1,
     "usage: hookline events publish EVENT --data JSON [--idempotency-key KEY] [options]\n\n"
     "Publishes one of the nine events with your data, as another service would.\n\n"
     "example: hookline events publish agent.updated \\\n"
     "           --data '{\"uid\":\"agent-1\",\"externalTenantId\":\"tenant-xyz789\"}'\n",
     CLIENT_NOTES},
    {HL_CMD_VERIFY, "verify", 0,
     "usage: hookline verify --secret SECRET --signature HEADER < body\n"
     "       hookline verify --secret SECRET --id ID --timestamp SECONDS\n"
     "                       --standard-signature HEADER < body\n\n"
     "Checks the signature of one webhook body read from stdin (the raw bytes, as\n"
     "received): --signature, or the three Standard Webhooks headers. Given both, either\n"
     "may match.\n",
     "Exit status: 0 valid, 1 invalid, 2 usage or input error.\n"},
    {HL_CMD_EXTRACT, "extract", 1,
     "usage: hookline extract [options] FILE\n\n"
     "Extracts the text of one context file, as hookline serve's ingest worker has it\n"
     "done for each file: in this process of its own, under --ingest-memory and\n"
     "--ingest-timeout. Writes a binary answer for the worker on stdout.\n",
     "Exit status: 0 when the answer was written (the extraction may have failed),\n"
     "1 when it could not be, 2 usage error; killed by a signal past a limit.\n"},
};

static const struct command *command(enum hl_cmd cmd)
{
    for (size_t i = 0; i < sizeof(COMMANDS) / sizeof(COMMANDS[0]); i++)
        if (COMMANDS[i].cmd == cmd)
            return &COMMANDS[i];
    return NULL;
}

const char *hl_cmd_name(enum hl_cmd cmd)
{
    const struct command *c = command(cmd);
    return c ? c->name : NULL;
}

/* ---- parsing ---- */

/* A duration in the largest unit that divides it: "1s", "7d", "250ms". */
static void fmt_ms(long long ms, char *out, size_t cap)
{
    static const struct {
        long long ms;
        const char *unit;
    } units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}};
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (ms > 0 && ms % units[i].ms == 0) {
            snprintf(out, cap, "%lld%s", ms / units[i].ms, units[i].unit);
            return;
        }
    }
    snprintf(out, cap, "%lldms", ms);
}

/* A size in the largest power of 1024 that divides it: "16M", "1T", "2000". */
static void fmt_size(long long n, char *out, size_t cap)
{
    static const char units[] = "kMGT";
    int u = -1;
    while (n > 0 && n % 1024 == 0 && u < 3) {
        n /= 1024;
        u++;
    }
    if (u < 0)
        snprintf(out, cap, "%lld", n);
    else
        snprintf(out, cap, "%lld%c", n, units[u]);
}

/* What row r accepts, for its error messages. */
static void forms(const struct hl_opt *r, char *out, size_t cap)
{
    char lo[32], hi[32];
    switch (r->kind) {
    case HL_OPT_INT:
        snprintf(out, cap, "a whole number from %lld to %lld", r->min, r->max);
        return;
    case HL_OPT_SIZE:
        fmt_size(r->min, lo, sizeof(lo));
        fmt_size(r->max, hi, sizeof(hi));
        snprintf(out, cap, "a size in bytes such as 1048576, 512k or 50M, from %s to %s", lo, hi);
        return;
    case HL_OPT_DURATION:
        fmt_ms(r->min, lo, sizeof(lo));
        fmt_ms(r->max, hi, sizeof(hi));
        snprintf(out, cap, "a duration such as 250ms, 30s, 5m, 2h or 5d%s%s%s%s",
                 r->max != NO_MAX ? ", from "
                 : r->min > 0     ? ", at least "
                                  : "",
                 r->min > 0 || r->max != NO_MAX ? lo : "", r->max != NO_MAX ? " to " : "",
                 r->max != NO_MAX ? hi : "");
        return;
    case HL_OPT_ENUM: {
        size_t len = 0;
        out[0] = '\0';
        for (size_t i = 0; r->choices[i] && len < cap; i++)
            len += (size_t)snprintf(out + len, cap - len, "%s%s",
                                    i == 0              ? ""
                                    : r->choices[i + 1] ? ", "
                                                        : " or ",
                                    r->choices[i]);
        return;
    }
    case HL_OPT_FLAG:
        snprintf(out, cap, "1 or 0 (true/false, yes/no)");
        return;
    default:
        snprintf(out, cap, "%s", r->forms ? r->forms : "a value that is not empty");
        return;
    }
}

/* Where a text came from, to name it in a message. */
enum origin { FROM_FLAG, FROM_ENV, FROM_DEFAULT };

/* A copy of s[0..len) that may go into a message: at most 64 bytes ("..." after a longer one),
 * control characters as '?', so that nothing in it can drive a terminal. */
static void printable(const char *s, size_t len, char out[72])
{
    size_t i = 0;
    for (; i < len && i < 64; i++)
        out[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    memcpy(out + i, i < len ? "..." : "", i < len ? 4 : 1);
}

/* Writes the error for row r's text: "--threads 0: want a whole number from 1 to 256". */
static int refuse(const struct hl_opt *r, enum origin from, const char *text, const char *why,
                  char *err, size_t errlen)
{
    char shown[72] = "", want[320];
    if (!r->secret && text)
        printable(text, strlen(text), shown);
    forms(r, want, sizeof(want));
    snprintf(err, errlen, "%s%s%s%s%s: %s%s", from == FROM_ENV ? "" : "--",
             from == FROM_ENV ? r->env : r->name,
             !shown[0]          ? ""
             : from == FROM_ENV ? "="
                                : " ",
             shown, from == FROM_DEFAULT ? " (the default)" : "", why ? why : "want ", want);
    return HL_EINVAL;
}

static int parse_flag_text(const char *text, int *v)
{
    static const char *const yes[] = {"1", "true", "yes"}, *const no[] = {"0", "false", "no"};
    for (size_t i = 0; i < 3; i++) {
        if (strcasecmp(text, yes[i]) == 0 || strcasecmp(text, no[i]) == 0) {
            *v = strcasecmp(text, yes[i]) == 0;
            return HL_OK;
        }
    }
    return HL_EINVAL;
}

/* Parses text for row r into its field of o. text is NULL for a flag given on the command line. */
static int apply(const struct hl_opt *r, enum origin from, const char *text, struct hl_options *o,
                 char *err, size_t errlen)
{
    void *field = (char *)o + r->offset;
    int rc = HL_OK;
    switch (r->kind) {
    case HL_OPT_STRING:
        if (!*text || (r->check && r->check(text) != HL_OK))
            rc = HL_EINVAL;
        else
            *(const char **)field = text;
        break;
    case HL_OPT_INT:
        rc = hl_parse_int(text, r->min, r->max, field);
        break;
    case HL_OPT_SIZE:
        rc = hl_parse_size(text, r->min, r->max, field);
        break;
    case HL_OPT_DURATION: {
        int64_t ms;
        rc = hl_parse_duration(text, &ms);
        if (rc == HL_OK && (ms < r->min || ms > r->max))
            rc = HL_EINVAL;
        if (rc == HL_OK)
            *(int64_t *)field = ms;
        break;
    }
    case HL_OPT_ENUM:
        rc = HL_EINVAL;
        for (int i = 0; r->choices[i]; i++) {
            if (strcmp(text, r->choices[i]) == 0) {
                *(int *)field = i;
                rc = HL_OK;
            }
        }
        break;
    case HL_OPT_FLAG:
        if (text)
            rc = parse_flag_text(text, field);
        else
            *(int *)field = 1;
        break;
    case HL_OPT_VALUE:
    case HL_OPT_LIST:
        rc = r->set(field, text);
        if (rc == HL_ETOOBIG)
            return refuse(r, from, NULL, "too many; want ", err, errlen);
        break;
    }
    return rc == HL_OK ? HL_OK : refuse(r, from, text, NULL, err, errlen);
}

/* The row of cmd named name[0..len), or NULL. */
static const struct hl_opt *find(enum hl_cmd cmd, const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof(OPTS) / sizeof(OPTS[0]); i++)
        if ((OPTS[i].cmds & cmd) && strlen(OPTS[i].name) == len &&
            memcmp(OPTS[i].name, name, len) == 0)
            return &OPTS[i];
    return NULL;
}

/* Reads one option word argv[*i] ("--name", "--name=value", "-h"), and its value from the next
 * word when it takes one. */
static int one_flag(const struct command *c, int argc, char **argv, int *i, struct hl_options *o,
                    unsigned char *given, char *err, size_t errlen)
{
    const char *word = strcmp(argv[*i], "-h") == 0 ? "--help" : argv[*i];
    if (word[1] != '-') {
        char shown[72];
        printable(word, strlen(word), shown);
        snprintf(err, errlen, "unknown option %s", shown);
        return HL_EINVAL;
    }
    const char *name = word + 2, *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    const struct hl_opt *r = find(c->cmd, name, len);
    if (!r) {
        char shown[72];
        printable(name, len, shown);
        snprintf(err, errlen, "unknown option --%s", shown);
        return HL_EINVAL;
    }
    const char *text = eq ? eq + 1 : NULL;
    char want[320];
    if (r->kind == HL_OPT_FLAG && text) {
        snprintf(err, errlen, "--%s takes no value", r->name);
        return HL_EINVAL;
    }
    if (r->kind != HL_OPT_FLAG && !text) {
        if (*i + 1 >= argc) {
            forms(r, want, sizeof(want));
            snprintf(err, errlen, "--%s needs a value: %s", r->name, want);
            return HL_EINVAL;
        }
        text = argv[++*i];
    }
    given[r - OPTS] = 1;
    return apply(r, FROM_FLAG, text, o, err, errlen);
}

int hl_options_parse(enum hl_cmd cmd, int argc, char **argv, struct hl_options *o, char *err,
                     size_t errlen)
{
    memset(o, 0, sizeof(*o));
    const struct command *c = command(cmd);
    if (!c) {
        snprintf(err, errlen, "no such command");
        return HL_EINVAL;
    }
    unsigned char given[sizeof(OPTS) / sizeof(OPTS[0])] = {0};
    int options_end = 0;
    for (int i = 1; i < argc; i++) {
        const char *word = argv[i];
        if (!options_end && strcmp(word, "--") == 0) {
            options_end = 1;
        } else if (options_end || word[0] != '-' || word[1] == '\0') {
            if (o->nargs >= c->max_args) {
                char shown[72];
                printable(word, strlen(word), shown);
                snprintf(err, errlen, "unexpected argument '%s'", shown);
                return HL_EINVAL;
            }
            o->args[o->nargs++] = word;
        } else {
            if (one_flag(c, argc, argv, &i, o, given, err, errlen) != HL_OK)
                return HL_EINVAL;
            if (o->help)
                return HL_OK;
        }
    }
    for (size_t k = 0; k < sizeof(OPTS) / sizeof(OPTS[0]); k++) {
        const struct hl_opt *r = &OPTS[k];
        if (!(r->cmds & cmd) || given[k])
            continue;
        const char *env = r->env ? getenv(r->env) : NULL;
        int rc = HL_OK;
        if (env && *env)
            rc = apply(r, FROM_ENV, env, o, err, errlen);
        else if (r->def)
            rc = apply(r, FROM_DEFAULT, r->def, o, err, errlen);
        if (rc != HL_OK)
            return rc;
    }
    return HL_OK;
}

/* ---- help ---- */

/* Writes text from column col, wrapped before column width; the first line starts at *at. */
static void wrap(FILE *f, const char *text, int col, int width, int at)
{
    const char *p = text;
    while (*p) {
        size_t word = strcspn(p, " ");
        if (at > col && at + 1 + (int)word > width) {
            fprintf(f, "\n%*s", col, "");
            at = col;
        } else if (at > col) {
            fputc(' ', f);
            at++;
        }
        fprintf(f, "%.*s", (int)word, p);
        at += (int)word;
        p += word;
        while (*p == ' ')
            p++;
    }
    fputc('\n', f);
}

void hl_options_help(enum hl_cmd cmd, FILE *f)
{
    const struct command *c = command(cmd);
    if (!c)
        return;
    enum { COL = 28, WIDTH = 80 };
    fprintf(f, "%s\n", c->usage);
    for (size_t k = 0; k < sizeof(OPTS) / sizeof(OPTS[0]); k++) {
        const struct hl_opt *r = &OPTS[k];
        if (!(r->cmds & cmd) || r->hidden)
            continue;
        int at = fprintf(f, "  --%s%s%s", r->name, r->arg ? " " : "", r->arg ? r->arg : "");
        if (at >= COL) {
            fprintf(f, "\n");
            at = 0;
        }
        fprintf(f, "%*s", COL - at, "");
        char text[512];
        snprintf(text, sizeof(text), "%s%s%s%s%s%s%s", r->help, r->env || r->def ? " (" : "",
                 r->env ? r->env : "", r->env && r->def ? ", " : "", r->def ? "default " : "",
                 r->def ? r->def : "", r->env || r->def ? ")" : "");
        wrap(f, text, COL, WIDTH, COL);
    }
    if (c->notes)
        fprintf(f, "\n%s", c->notes);
}

int hl_options_get(enum hl_cmd cmd, int argc, char **argv, struct hl_options *o)
{
    char err[512];
    if (hl_options_parse(cmd, argc, argv, o, err, sizeof(err)) != HL_OK)
        return hl_usage_error(cmd, "%s", err);
    if (o->help) {
        hl_options_help(cmd, stdout);
        return 0;
    }
    return HL_OPTS_RUN;
}

int hl_usage_error(enum hl_cmd cmd, const char *fmt, ...)
{
    const char *name = hl_cmd_name(cmd);
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "hookline %s: %s\n(hookline %s --help lists the options)\n", name, msg, name);
    return 2;
}
