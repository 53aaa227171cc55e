/* Tests for src/common/config.c: the value parsers, and the option table with its parser and
 * help. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/err.h"
#include "common/log.h"

#define BAD INT64_MIN

struct int_case {
    const char *text;
    long long min, max;
    long long want; /* BAD: HL_EINVAL */
};

static const struct int_case int_cases[] = {
    {"0", 0, 10, 0},
    {"10", 0, 10, 10},
    {"7", 1, 256, 7},
    {"-5", -10, 10, -5},
    {"+5", 0, 10, 5},
    {"007", 0, 10, 7},
    {"65535", 0, 65535, 65535},
    {"9223372036854775807", 0, LLONG_MAX, LLONG_MAX},
    /* out of range */
    {"11", 0, 10, BAD},
    {"-1", 0, 10, BAD},
    {"0", 1, 256, BAD},
    {"65536", 0, 65535, BAD},
    /* overflow */
    {"9223372036854775808", 0, LLONG_MAX, BAD},
    {"-9223372036854775809", LLONG_MIN, 0, BAD},
    {"99999999999999999999", 0, LLONG_MAX, BAD},
    /* not a number, or trailing text */
    {"", 0, 10, BAD},
    {"abc", 0, 10, BAD},
    {"5x", 0, 10, BAD},
    {"5 ", 0, 10, BAD},
    {"5.0", 0, 10, BAD},
    {"0x5", 0, 10, BAD},
    {"1e3", 0, 10000, BAD},
    {"-", -10, 10, BAD},
};

/* LLONG_MIN is the table's BAD marker, so it gets a test of its own */
static void test_int_min(void **state)
{
    (void)state;
    long long v = 0;
    assert_int_equal(hl_parse_int("-9223372036854775808", LLONG_MIN, 0, &v), HL_OK);
    assert_true(v == LLONG_MIN);
}

/* Runs a table of cases through parse (hl_parse_int or hl_parse_size). */
static void range_table(const struct int_case *cases, size_t n,
                        int (*parse)(const char *, long long, long long, long long *))
{
    for (size_t i = 0; i < n; i++) {
        const struct int_case *c = &cases[i];
        print_message("'%s' in [%lld, %lld]\n", c->text, c->min, c->max);
        long long v = 12345;
        int rc = parse(c->text, c->min, c->max, &v);
        if (c->want == BAD) {
            assert_int_equal(rc, HL_EINVAL);
            assert_int_equal(v, 12345); /* left alone */
        } else {
            assert_int_equal(rc, HL_OK);
            assert_true(v == c->want);
        }
    }
}

static void test_int_table(void **state)
{
    (void)state;
    range_table(int_cases, sizeof(int_cases) / sizeof(int_cases[0]), hl_parse_int);
}

struct duration_case {
    const char *text;
    int64_t want; /* BAD: HL_EINVAL */
};

static const struct duration_case duration_cases[] = {
    {"0", 0},
    {"30", 30000},
    {"0ms", 0},
    {"250ms", 250},
    {"1s", 1000},
    {"30s", 30000},
    {"2m", 120000},
    {"1h", 3600000},
    {"24h", 86400000},
    {"5d", 432000000},
    {"106751991167d", 9223372036828800000},
    {"9223372036854775807ms", INT64_MAX},
    {"9223372036854775s", 9223372036854775000},
    /* would overflow int64 milliseconds */
    {"9223372036854776s", BAD},
    {"106751991168d", BAD},
    {"9223372036854775808ms", BAD},
    /* negative */
    {"-1s", BAD},
    {"-1", BAD},
    /* no number: a bare unit is not zero */
    {"", BAD},
    {"ms", BAD},
    {"s", BAD},
    {"d", BAD},
    {"abc", BAD},
    /* unknown or malformed unit */
    {"5x", BAD},
    {"5 s", BAD},
    {"5sec", BAD},
    {"5S", BAD},
    {"5w", BAD},
    {"5us", BAD},
    {"1.5s", BAD},
    {"5ms ", BAD},
};

static void test_duration_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(duration_cases) / sizeof(duration_cases[0]); i++) {
        const struct duration_case *c = &duration_cases[i];
        print_message("'%s'\n", c->text);
        int64_t ms = 12345;
        int rc = hl_parse_duration(c->text, &ms);
        if (c->want == BAD) {
            assert_int_equal(rc, HL_EINVAL);
            assert_int_equal(ms, 12345); /* left alone */
        } else {
            assert_int_equal(rc, HL_OK);
            assert_int_equal(ms, c->want);
        }
    }
}

static const struct int_case size_cases[] = {
    {"0", 0, LLONG_MAX, 0},
    {"1048576", 1, LLONG_MAX, 1048576},
    {"1k", 1, LLONG_MAX, 1024},
    {"1K", 1, LLONG_MAX, 1024},
    {"512k", 1, LLONG_MAX, 524288},
    {"50M", 1, LLONG_MAX, 52428800},
    {"50m", 1, LLONG_MAX, 52428800},
    {"2G", 1, LLONG_MAX, 2147483648LL},
    {"1T", 1, LLONG_MAX, 1099511627776LL},
    {"007k", 1, LLONG_MAX, 7168},
    {"8388607T", 0, LLONG_MAX, 9223370937343148032LL},
    /* range */
    {"16M", 1, 16 << 20, 16 << 20},
    {"16777217", 1, 16 << 20, BAD},
    {"0", 1, 10, BAD},
    {"2T", 1, 1LL << 40, BAD},
    /* overflow, before and after the suffix */
    {"8388608T", 0, LLONG_MAX, BAD},
    {"9223372036854775808", 0, LLONG_MAX, BAD},
    /* not a size */
    {"", 0, LLONG_MAX, BAD},
    {"k", 0, LLONG_MAX, BAD},
    {"-1", -10, LLONG_MAX, BAD},
    {"+1", 0, LLONG_MAX, BAD},
    {" 1", 0, LLONG_MAX, BAD},
    {"1 k", 0, LLONG_MAX, BAD},
    {"1kb", 0, LLONG_MAX, BAD},
    {"1KiB", 0, LLONG_MAX, BAD},
    {"1x", 0, LLONG_MAX, BAD},
    {"1.5M", 0, LLONG_MAX, BAD},
    {"0x10", 0, LLONG_MAX, BAD},
};

static void test_size_table(void **state)
{
    (void)state;
    range_table(size_cases, sizeof(size_cases) / sizeof(size_cases[0]), hl_parse_size);
}

/* ---- the option table ---- */

/* Unsets every variable the table reads, so the machine's environment cannot leak in. */
static int clear_env(void **state)
{
    (void)state;
    size_t n;
    const struct hl_opt *t = hl_options_table(&n);
    for (size_t i = 0; i < n; i++)
        if (t[i].env)
            unsetenv(t[i].env);
    return 0;
}

/* Parses cmd's argv (after the command's name, NULL-terminated) with env ("NAME=value" pairs,
 * NULL-terminated) set for the call. */
static int parse(enum hl_cmd cmd, const char *const *args, const char *const *env,
                 struct hl_options *o, char *err, size_t errlen)
{
    char *argv[64] = {(char *)"cmd"};
    int argc = 1;
    for (; args && args[argc - 1]; argc++) {
        assert_true(argc < 64);
        argv[argc] = (char *)args[argc - 1];
    }
    char names[4][64];
    int nenv = 0;
    for (; env && env[nenv]; nenv++) {
        const char *eq = strchr(env[nenv], '=');
        snprintf(names[nenv], sizeof(names[nenv]), "%.*s", (int)(eq - env[nenv]), env[nenv]);
        setenv(names[nenv], eq + 1, 1);
    }
    err[0] = '\0';
    int rc = hl_options_parse(cmd, argc, argv, o, err, errlen);
    while (nenv-- > 0)
        unsetenv(names[nenv]);
    return rc;
}

/* The row of cmd named name. */
static const struct hl_opt *row(enum hl_cmd cmd, const char *name)
{
    size_t n;
    const struct hl_opt *t = hl_options_table(&n);
    for (size_t i = 0; i < n; i++)
        if ((t[i].cmds & cmd) && strcmp(t[i].name, name) == 0)
            return &t[i];
    fail_msg("no option --%s", name);
    return NULL;
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NONE NULL

struct opt_case {
    enum hl_cmd cmd;
    const char *const *args;
    const char *const *env;
    const char *opt;    /* the row whose value is checked */
    const char *want_s; /* STRING value */
    long long want;     /* INT, SIZE, DURATION (ms), ENUM (index), FLAG */
    const char *err;    /* the whole message when refused, else NULL */
};

#define PUBLIC_URL_WANT                                                                            \
    "want http:// or https://, a host, then an optional :port (1 to 65535) and /path, such as "    \
    "https://hooks.example.com"

static const struct opt_case opt_cases[] = {
    /* every kind, from a flag, in both spellings */
    {HL_CMD_SERVE, ARGS("--threads", "7"), NONE, "threads", NULL, 7, NULL},
    {HL_CMD_SERVE, ARGS("--threads=256"), NONE, "threads", NULL, 256, NULL},
    {HL_CMD_SERVE, ARGS("--max-upload", "512k"), NONE, "max-upload", NULL, 524288, NULL},
    {HL_CMD_SERVE, ARGS("--max-upload=1T"), NONE, "max-upload", NULL, 1LL << 40, NULL},
    {HL_CMD_SERVE, ARGS("--timeout", "250ms"), NONE, "timeout", NULL, 250, NULL},
    {HL_CMD_SERVE, ARGS("--api-rate", "0"), NONE, "api-rate", NULL, 0, NULL},
    {HL_CMD_SERVE, ARGS("--max-app-storage", "10M"), NONE, "max-app-storage", NULL, 10 << 20, NULL},
    {HL_CMD_SERVE, ARGS("--disable-after", "0"), NONE, "disable-after", NULL, 0, NULL},
    {HL_CMD_SERVE, ARGS("--mode", "production"), NONE, "mode", NULL, 1, NULL},
    {HL_CMD_SERVE, ARGS("--log-level", "warn"), NONE, "log-level", NULL, HL_LOG_WARN, NULL},
    {HL_CMD_APPS, ARGS("--json"), NONE, "json", NULL, 1, NULL},
    {HL_CMD_KEYS, ARGS("list"), NONE, "json", NULL, 0, NULL},
    {HL_CMD_SERVE, ARGS("--database", "/tmp/x.db"), NONE, "database", "/tmp/x.db", 0, NULL},
    {HL_CMD_SERVE, ARGS("--listen", "[::1]:0"), NONE, "listen", "[::1]:0", 0, NULL},
    {HL_CMD_SERVE, ARGS("--listen", ":8080"), NONE, "listen", ":8080", 0, NULL},
    {HL_CMD_LISTEN, ARGS("--secret", "s", "--listen", "*"), NONE, "listen", "*", 0, NULL},
    {HL_CMD_LISTEN, ARGS("--secret", "s", "--path", "/hook"), NONE, "path", "/hook", 0, NULL},
    {HL_CMD_LISTEN, ARGS("--secret", "s", "--max-body", "16M"), NONE, "max-body", NULL, 16 << 20,
     NULL},
    {HL_CMD_LISTEN, ARGS("--timeout", "2m"), NONE, "timeout", NULL, 120000, NULL},
    {HL_CMD_VERIFY, ARGS("--tolerance", "604800"), NONE, "tolerance", NULL, 604800, NULL},
    /* the defaults */
    {HL_CMD_SERVE, NONE, NONE, "threads", NULL, 8, NULL},
    {HL_CMD_SERVE, NONE, NONE, "max-inflight", NULL, 256, NULL},
    {HL_CMD_SERVE, NONE, NONE, "per-host", NULL, 32, NULL},
    {HL_CMD_SERVE, NONE, NONE, "timeout", NULL, 5000, NULL},
    {HL_CMD_SERVE, NONE, NONE, "disable-after", NULL, 5LL * 86400 * 1000, NULL},
    {HL_CMD_SERVE, NONE, NONE, "lease", NULL, 60000, NULL},
    {HL_CMD_SERVE, NONE, NONE, "ingest-lease", NULL, 600000, NULL},
    {HL_CMD_SERVE, NONE, NONE, "max-upload", NULL, 50LL << 20, NULL},
    {HL_CMD_SERVE, NONE, NONE, "max-webhooks", NULL, 100, NULL},
    {HL_CMD_SERVE, NONE, NONE, "api-rate", NULL, 1000, NULL},
    {HL_CMD_SERVE, NONE, NONE, "api-burst", NULL, 2000, NULL},
    {HL_CMD_SERVE, NONE, NONE, "max-app-storage", NULL, 1LL << 30, NULL},
    {HL_CMD_SERVE, NONE, NONE, "chunk-size", NULL, 1000, NULL},
    {HL_CMD_SERVE, NONE, NONE, "chunk-overlap", NULL, 200, NULL},
    {HL_CMD_SERVE, NONE, NONE, "mode", NULL, 0, NULL},
    {HL_CMD_SERVE, NONE, NONE, "log-level", NULL, HL_LOG_INFO, NULL},
    {HL_CMD_SERVE, NONE, NONE, "listen", "127.0.0.1:8080", 0, NULL},
    {HL_CMD_APPS, NONE, NONE, "database", "data/hookline.db", 0, NULL},
    {HL_CMD_LISTEN, NONE, NONE, "port", NULL, 3000, NULL},
    {HL_CMD_LISTEN, NONE, NONE, "listen", "127.0.0.1", 0, NULL},
    {HL_CMD_LISTEN, NONE, NONE, "max-body", NULL, 2 << 20, NULL},
    {HL_CMD_LISTEN, NONE, NONE, "timeout", NULL, 30000, NULL},
    {HL_CMD_LISTEN, NONE, NONE, "backoff", NULL, 1000, NULL},
    {HL_CMD_LISTEN, NONE, NONE, "attempts", NULL, 8, NULL},
    {HL_CMD_LISTEN, NONE, NONE, "tolerance", NULL, 300, NULL},
    {HL_CMD_LISTEN, NONE, NONE, "state", "./hookline-listen.db", 0, NULL},
    {HL_CMD_LISTEN, NONE, NONE, "path", NULL, 0, NULL},
    {HL_CMD_LISTEN, NONE, NONE, "dedupe-window", NULL, 7 * 86400000LL, NULL},
    {HL_CMD_LISTEN, NONE, NONE, "alert-after", NULL, 0, NULL},
    {HL_CMD_LISTEN, ARGS("--dedupe-window", "0"), NONE, "dedupe-window", NULL, 0, NULL},
    {HL_CMD_LISTEN, ARGS("--alert-after", "30m"), NONE, "alert-after", NULL, 1800000, NULL},
    {HL_CMD_LISTEN_REPLAY, NONE, NONE, "state", "./hookline-listen.db", 0, NULL},
    {HL_CMD_LISTEN_REPLAY, ARGS("--failed"), NONE, "failed", NULL, 1, NULL},
    {HL_CMD_LISTEN, ARGS("--alert-after", "500ms"), NONE, NULL, NULL, 0,
     "--alert-after 500ms: want a duration such as 250ms, 30s, 5m, 2h or 5d, from 1s to 365d"},
    {HL_CMD_LISTEN_REPLAY, ARGS("--secret", "s"), NONE, NULL, NULL, 0, "unknown option --secret"},
    {HL_CMD_LISTEN, ARGS("--alert-after", "366d"), NONE, NULL, NULL, 0,
     "--alert-after 366d: want a duration such as 250ms, 30s, 5m, 2h or 5d, from 1s to 365d"},
    {HL_CMD_SERVE, NONE, NONE, "data-dir", NULL, 0, NULL},
    /* ingestion: serve's limits, which its helpers (extract) take as flags */
    {HL_CMD_SERVE, NONE, NONE, "ingest-workers", NULL, 2, NULL},
    {HL_CMD_SERVE, NONE, NONE, "ingest-memory", NULL, 512LL << 20, NULL},
    {HL_CMD_SERVE, NONE, NONE, "ingest-timeout", NULL, 60000, NULL},
    {HL_CMD_EXTRACT, ARGS("--ingest-memory", "64M", "f"), NONE, "ingest-memory", NULL, 64LL << 20,
     NULL},
    {HL_CMD_EXTRACT, ARGS("--ingest-timeout=250ms", "f"), NONE, "ingest-timeout", NULL, 250, NULL},
    {HL_CMD_EXTRACT, NONE, ARGS("HOOKLINE_EXTRACT_FILE_NAME=a b.pdf"), "file-name", "a b.pdf", 0,
     NULL},
    {HL_CMD_EXTRACT, NONE, ARGS("HOOKLINE_EXTRACT_CONTENT_TYPE=text/csv"), "content-type",
     "text/csv", 0, NULL},
    {HL_CMD_SERVE, ARGS("--ingest-memory", "1M"), NONE, NULL, NULL, 0,
     "--ingest-memory 1M: want a size in bytes such as 1048576, 512k or 50M, from 16M to 1T"},
    {HL_CMD_SERVE, ARGS("--ingest-workers", "0"), NONE, NULL, NULL, 0,
     "--ingest-workers 0: want a whole number from 1 to 64"},
    {HL_CMD_SERVE, ARGS("--ingest-timeout", "50ms"), NONE, NULL, NULL, 0,
     "--ingest-timeout 50ms: want a duration such as 250ms, 30s, 5m, 2h or 5d, from 100ms to 1d"},
    {HL_CMD_SERVE, ARGS("--file-name", "x"), NONE, NULL, NULL, 0, "unknown option --file-name"},
    /* precedence: flag > variable > default; an empty variable is unset */
    {HL_CMD_SERVE, NONE, ARGS("HOOKLINE_THREADS=64"), "threads", NULL, 64, NULL},
    {HL_CMD_SERVE, ARGS("--threads", "8"), ARGS("HOOKLINE_THREADS=64"), "threads", NULL, 8, NULL},
    {HL_CMD_SERVE, NONE, ARGS("HOOKLINE_THREADS="), "threads", NULL, 8, NULL},
    {HL_CMD_SERVE, ARGS("--threads", "8"), ARGS("HOOKLINE_THREADS=junk"), "threads", NULL, 8, NULL},
    {HL_CMD_SERVE, ARGS("--threads", "1", "--threads", "2"), NONE, "threads", NULL, 2, NULL},
    {HL_CMD_SERVE, NONE, ARGS("HOOKLINE_MODE=production"), "mode", NULL, 1, NULL},
    {HL_CMD_SERVE, ARGS("--mode", "development"), ARGS("HOOKLINE_MODE=production"), "mode", NULL, 0,
     NULL},
    {HL_CMD_SERVE, NONE, ARGS("HOOKLINE_TIMEOUT=2s", "HOOKLINE_LOG_LEVEL=error"), "timeout", NULL,
     2000, NULL},
    {HL_CMD_SERVE, NONE, ARGS("HOOKLINE_DATABASE=postgres://h/db"), "database", "postgres://h/db",
     0, NULL},
    {HL_CMD_LISTEN, NONE, ARGS("HOOKLINE_LOG_LEVEL=debug"), "log-level", NULL, HL_LOG_DEBUG, NULL},
    /* a variable of another command's option is not read */
    {HL_CMD_LISTEN, NONE, ARGS("HOOKLINE_TIMEOUT=2s"), "timeout", NULL, 30000, NULL},
    /* refused, from a flag */
    {HL_CMD_SERVE, ARGS("--threads", "0"), NONE, NULL, NULL, 0,
     "--threads 0: want a whole number from 1 to 256"},
    {HL_CMD_SERVE, ARGS("--threads", "8x"), NONE, NULL, NULL, 0,
     "--threads 8x: want a whole number from 1 to 256"},
    /* retention: 0, or at least a minute */
    {HL_CMD_SERVE, ARGS("--retention", "59s"), NONE, NULL, NULL, 0,
     "--retention 59s: want 0 (keep everything) or a duration of at least 1m such as 90s, 12h or "
     "30d"},
    {HL_CMD_SERVE, ARGS("--retention", "1 day"), NONE, NULL, NULL, 0,
     "--retention 1 day: want 0 (keep everything) or a duration of at least 1m such as 90s, 12h "
     "or 30d"},
    {HL_CMD_SERVE, NONE, ARGS("HOOKLINE_RETENTION=30"), NULL, NULL, 0,
     "HOOKLINE_RETENTION=30: want 0 (keep everything) or a duration of at least 1m such as 90s, "
     "12h or 30d"},
    {HL_CMD_PRUNE, ARGS("--before", "yesterday"), NONE, NULL, NULL, 0,
     "--before yesterday: want now, a duration ago such as 30d or 12h, a date such as 2026-11-01 "
     "(UTC), or a time such as 2026-11-01T12:00:00Z"},
    {HL_CMD_PRUNE, ARGS("--dry-run", "--before", "now", "--retention", "1d"), NONE, NULL, NULL, 0,
     "unknown option --retention"},
    {HL_CMD_PRUNE, ARGS("--before", "now", "--dry-run"), NONE, "dry-run", NULL, 1, NULL},
    {HL_CMD_PRUNE, ARGS("--before", "30d"), NONE, "before", "30d", 0, NULL},
    {HL_CMD_DB, ARGS("compact", "--database", "x.db"), NONE, "database", "x.db", 0, NULL},
    {HL_CMD_SERVE, ARGS("--max-upload", "5X"), NONE, NULL, NULL, 0,
     "--max-upload 5X: want a size in bytes such as 1048576, 512k or 50M, from 1 to 1T"},
    {HL_CMD_LISTEN, ARGS("--max-body", "17M"), NONE, NULL, NULL, 0,
     "--max-body 17M: want a size in bytes such as 1048576, 512k or 50M, from 1 to 16M"},
    {HL_CMD_SERVE, ARGS("--timeout", "5x"), NONE, NULL, NULL, 0,
     "--timeout 5x: want a duration such as 250ms, 30s, 5m, 2h or 5d, at least 1ms"},
    {HL_CMD_SERVE, ARGS("--timeout", "0"), NONE, NULL, NULL, 0,
     "--timeout 0: want a duration such as 250ms, 30s, 5m, 2h or 5d, at least 1ms"},
    {HL_CMD_SERVE, ARGS("--lease", "999ms"), NONE, NULL, NULL, 0,
     "--lease 999ms: want a duration such as 250ms, 30s, 5m, 2h or 5d, at least 1s"},
    {HL_CMD_SERVE, ARGS("--disable-after", "-1"), NONE, NULL, NULL, 0,
     "--disable-after -1: want a duration such as 250ms, 30s, 5m, 2h or 5d"},
    {HL_CMD_SERVE, ARGS("--mode", "staging"), NONE, NULL, NULL, 0,
     "--mode staging: want development or production"},
    {HL_CMD_SERVE, ARGS("--log-level", "INFO"), NONE, NULL, NULL, 0,
     "--log-level INFO: want debug, info, warn or error"},
    {HL_CMD_SERVE, ARGS("--listen", "8080"), NONE, NULL, NULL, 0,
     "--listen 8080: want HOST:PORT such as 127.0.0.1:8080, [::1]:8080 or :8080 (every IPv4 "
     "address)"},
    {HL_CMD_SERVE, ARGS("--listen", "127.0.0.1:65536"), NONE, NULL, NULL, 0,
     "--listen 127.0.0.1:65536: want HOST:PORT such as 127.0.0.1:8080, [::1]:8080 or :8080 "
     "(every IPv4 address)"},
    {HL_CMD_SERVE, ARGS("--database="), NONE, NULL, NULL, 0,
     "--database: want a value that is not empty"},
    {HL_CMD_SERVE, ARGS("--retry-schedule", "0,8d"), NONE, NULL, NULL, 0,
     "--retry-schedule 0,8d: want 1 to 32 comma-separated waits such as 0,5s,5m,30m,2h, each at "
     "most 7d"},
    {HL_CMD_SERVE, ARGS("--allow-network", "10.0.0.0/33"), NONE, NULL, NULL, 0,
     "--allow-network 10.0.0.0/33: want CIDR ranges such as 10.0.0.0/8, 192.168.1.5 or "
     "fd00::/8, separated by commas or spaces, at most 64 in all"},
    {HL_CMD_LISTEN, ARGS("--path", "hook"), NONE, NULL, NULL, 0,
     "--path hook: want a path starting with /"},
    {HL_CMD_LISTEN, ARGS("--forward", "ftp://x/"), NONE, NULL, NULL, 0,
     "--forward ftp://x/: want an http:// or https:// URL"},
    {HL_CMD_LISTEN, ARGS("--listen", "example.com"), NONE, NULL, NULL, 0,
     "--listen example.com: want an IP address, localhost or * (every IPv4 address)"},
    {HL_CMD_LISTEN, ARGS("--port", "70000"), NONE, NULL, NULL, 0,
     "--port 70000: want a whole number from 0 to 65535"},
    /* refused, from a variable: named with its value */
    {HL_CMD_SERVE, NONE, ARGS("HOOKLINE_THREADS=999"), NULL, NULL, 0,
     "HOOKLINE_THREADS=999: want a whole number from 1 to 256"},
    {HL_CMD_SERVE, NONE, ARGS("HOOKLINE_TIMEOUT=1x"), NULL, NULL, 0,
     "HOOKLINE_TIMEOUT=1x: want a duration such as 250ms, 30s, 5m, 2h or 5d, at least 1ms"},
    {HL_CMD_SERVE, NONE, ARGS("HOOKLINE_LEASE=10ms"), NULL, NULL, 0,
     "HOOKLINE_LEASE=10ms: want a duration such as 250ms, 30s, 5m, 2h or 5d, at least 1s"},
    {HL_CMD_SERVE, NONE, ARGS("HOOKLINE_MAX_UPLOAD=lots"), NULL, NULL, 0,
     "HOOKLINE_MAX_UPLOAD=lots: want a size in bytes such as 1048576, 512k or 50M, from 1 to 1T"},
    {HL_CMD_SERVE, NONE, ARGS("HOOKLINE_ALLOW_NETWORK=1.2.3.4,junk"), NULL, NULL, 0,
     "HOOKLINE_ALLOW_NETWORK=1.2.3.4,junk: want CIDR ranges such as 10.0.0.0/8, 192.168.1.5 or "
     "fd00::/8, separated by commas or spaces, at most 64 in all"},
    {HL_CMD_KEYS, NONE, ARGS("HOOKLINE_DATABASE=x"), "database", "x", 0, NULL},
    /* secrets are never repeated */
    {HL_CMD_LISTEN, ARGS("--secret="), NONE, NULL, NULL, 0,
     "--secret: want 1 to 1024 bytes, at most 16 of them"},
    /* the words around the values */
    {HL_CMD_SERVE, ARGS("--threads"), NONE, NULL, NULL, 0,
     "--threads needs a value: a whole number from 1 to 256"},
    {HL_CMD_SERVE, ARGS("--nope"), NONE, NULL, NULL, 0, "unknown option --nope"},
    {HL_CMD_SERVE, ARGS("--nope=1"), NONE, NULL, NULL, 0, "unknown option --nope"},
    {HL_CMD_SERVE, ARGS("-t"), NONE, NULL, NULL, 0, "unknown option -t"},
    {HL_CMD_SERVE, ARGS("--thread", "8"), NONE, NULL, NULL, 0, "unknown option --thread"},
    {HL_CMD_APPS, ARGS("--threads", "8"), NONE, NULL, NULL, 0, "unknown option --threads"},
    {HL_CMD_APPS, ARGS("--json=1"), NONE, NULL, NULL, 0, "--json takes no value"},
    {HL_CMD_SERVE, ARGS("extra"), NONE, NULL, NULL, 0, "unexpected argument 'extra'"},
    /* what is repeated of the input is short and harmless to a terminal */
    {HL_CMD_SERVE, ARGS("--\x1b[2J"), NONE, NULL, NULL, 0, "unknown option --?[2J"},
    {HL_CMD_SERVE, ARGS("ex\ttra"), NONE, NULL, NULL, 0, "unexpected argument 'ex?tra'"},
    {HL_CMD_SERVE, ARGS("--mode", "prod\nuction"), NONE, NULL, NULL, 0,
     "--mode prod?uction: want development or production"},
    {HL_CMD_SERVE,
     ARGS("--database=", "--threads",
          "1234567890123456789012345678901234567890123456789012345678901234567890"),
     NONE, NULL, NULL, 0, "--database: want a value that is not empty"},
    {HL_CMD_SERVE,
     ARGS("--threads", "1234567890123456789012345678901234567890123456789012345678901234567890"),
     NONE, NULL, NULL, 0,
     "--threads 1234567890123456789012345678901234567890123456789012345678901234...: want a whole "
     "number from 1 to 256"},
    {HL_CMD_APPS, ARGS("create", "a", "b"), NONE, NULL, NULL, 0, "unexpected argument 'b'"},
    /* --public-url: a host that is not empty, a port from 1 to 65535, no empty path segment */
    {HL_CMD_SERVE, ARGS("--public-url", "https://hooks.example.com:8443/hl/"), NONE, "public-url",
     "https://hooks.example.com:8443/hl/", 0, NULL},
    {HL_CMD_SERVE, ARGS("--public-url", "http://[::1]:65535"), NONE, "public-url",
     "http://[::1]:65535", 0, NULL},
    {HL_CMD_SERVE, ARGS("--public-url", "https://h.example/"), NONE, "public-url",
     "https://h.example/", 0, NULL},
    {HL_CMD_SERVE, ARGS("--public-url", "https://:443"), NONE, NULL, NULL, 0,
     "--public-url https://:443: " PUBLIC_URL_WANT},
    {HL_CMD_SERVE, ARGS("--public-url", "https://:443/x"), NONE, NULL, NULL, 0,
     "--public-url https://:443/x: " PUBLIC_URL_WANT},
    {HL_CMD_SERVE, ARGS("--public-url", "https://[]:443"), NONE, NULL, NULL, 0,
     "--public-url https://[]:443: " PUBLIC_URL_WANT},
    {HL_CMD_SERVE, ARGS("--public-url", "https://h.example:"), NONE, NULL, NULL, 0,
     "--public-url https://h.example:: " PUBLIC_URL_WANT},
    {HL_CMD_SERVE, ARGS("--public-url", "https://h.example:0"), NONE, NULL, NULL, 0,
     "--public-url https://h.example:0: " PUBLIC_URL_WANT},
    {HL_CMD_SERVE, ARGS("--public-url", "https://h.example:65536"), NONE, NULL, NULL, 0,
     "--public-url https://h.example:65536: " PUBLIC_URL_WANT},
    {HL_CMD_SERVE, ARGS("--public-url", "https://h.example:123456"), NONE, NULL, NULL, 0,
     "--public-url https://h.example:123456: " PUBLIC_URL_WANT},
    {HL_CMD_SERVE, ARGS("--public-url", "https://h.example:44a"), NONE, NULL, NULL, 0,
     "--public-url https://h.example:44a: " PUBLIC_URL_WANT},
    {HL_CMD_SERVE, ARGS("--public-url", "https://h.example:-1"), NONE, NULL, NULL, 0,
     "--public-url https://h.example:-1: " PUBLIC_URL_WANT},
    {HL_CMD_SERVE, ARGS("--public-url", "https://[::1]x"), NONE, NULL, NULL, 0,
     "--public-url https://[::1]x: " PUBLIC_URL_WANT},
    {HL_CMD_SERVE, ARGS("--public-url", "https://::1:443"), NONE, NULL, NULL, 0,
     "--public-url https://::1:443: " PUBLIC_URL_WANT},
    {HL_CMD_SERVE, ARGS("--public-url", "https://h.example//"), NONE, NULL, NULL, 0,
     "--public-url https://h.example//: " PUBLIC_URL_WANT},
    {HL_CMD_SERVE, ARGS("--public-url", "https://h.example/hl//"), NONE, NULL, NULL, 0,
     "--public-url https://h.example/hl//: " PUBLIC_URL_WANT},
    {HL_CMD_SERVE, ARGS("--public-url", "https://h.example/a//b"), NONE, NULL, NULL, 0,
     "--public-url https://h.example/a//b: " PUBLIC_URL_WANT},
    /* --help stops reading */
    {HL_CMD_SERVE, ARGS("--help", "--threads", "0"), NONE, "help", NULL, 1, NULL},
    {HL_CMD_VERIFY, ARGS("-h"), ARGS("HOOKLINE_WEBHOOK_SECRET="), "help", NULL, 1, NULL},
};

static long long number_of(const struct hl_opt *r, const struct hl_options *o)
{
    const void *field = (const char *)o + r->offset;
    switch (r->kind) {
    case HL_OPT_INT:
    case HL_OPT_SIZE:
        return *(const long long *)field;
    case HL_OPT_DURATION:
        return *(const int64_t *)field;
    case HL_OPT_ENUM:
    case HL_OPT_FLAG:
        return *(const int *)field;
    default:
        fail_msg("--%s is not a number", r->name);
        return 0;
    }
}

static void test_option_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(opt_cases) / sizeof(opt_cases[0]); i++) {
        const struct opt_case *c = &opt_cases[i];
        print_message("case %zu: %s %s\n", i, hl_cmd_name(c->cmd), c->args ? c->args[0] : "");
        struct hl_options o;
        char err[512];
        int rc = parse(c->cmd, c->args, c->env, &o, err, sizeof(err));
        if (c->err) {
            assert_int_equal(rc, HL_EINVAL);
            assert_string_equal(err, c->err);
            continue;
        }
        if (rc != HL_OK)
            fail_msg("refused: %s", err);
        const struct hl_opt *r = row(c->cmd, c->opt);
        if (r->kind == HL_OPT_STRING) {
            const char *got = *(const char *const *)((const char *)&o + r->offset);
            if (c->want_s)
                assert_string_equal(got, c->want_s);
            else
                assert_null(got);
        } else {
            assert_true(number_of(r, &o) == c->want);
        }
    }
}

static void test_lists(void **state)
{
    (void)state;
    struct hl_options o;
    char err[512];
    /* repeated flags add up; the variable counts only without them */
    assert_int_equal(parse(HL_CMD_LISTEN, ARGS("--secret", "a", "--secret=b"),
                           ARGS("HOOKLINE_WEBHOOK_SECRET=c"), &o, err, sizeof(err)),
                     HL_OK);
    assert_int_equal(o.secrets.n, 2);
    assert_string_equal(o.secrets.v[0], "a");
    assert_string_equal(o.secrets.v[1], "b");
    assert_int_equal(
        parse(HL_CMD_VERIFY, NONE, ARGS("HOOKLINE_WEBHOOK_SECRET=c,d"), &o, err, sizeof(err)),
        HL_OK);
    assert_int_equal(o.secrets.n, 1);
    assert_string_equal(o.secrets.v[0], "c,d"); /* a secret is one value, commas and all */
    const char *many[2 * HL_SECRETS_MAX + 3];
    for (int i = 0; i <= HL_SECRETS_MAX; i++) {
        many[2 * i] = "--secret";
        many[2 * i + 1] = "s";
    }
    many[2 * HL_SECRETS_MAX + 2] = NULL;
    assert_int_equal(parse(HL_CMD_LISTEN, many, NONE, &o, err, sizeof(err)), HL_EINVAL);
    assert_string_equal(err, "--secret: too many; want 1 to 1024 bytes, at most 16 of them");

    /* CIDR ranges: comma-separated in one value, repeatable, flags replace the variable */
    assert_int_equal(
        parse(HL_CMD_SERVE,
              ARGS("--allow-network", "10.0.0.0/8, fd00::/8", "--allow-network", "127.0.0.1"),
              ARGS("HOOKLINE_ALLOW_NETWORK=192.168.0.0/16"), &o, err, sizeof(err)),
        HL_OK);
    assert_int_equal(o.allow.n, 3);
    assert_int_equal(o.allow.nets[2].prefix, 32);
    assert_int_equal(parse(HL_CMD_SERVE, NONE, ARGS("HOOKLINE_ALLOW_NETWORK=192.168.0.0/16 ::1"),
                           &o, err, sizeof(err)),
                     HL_OK);
    assert_int_equal(o.allow.n, 2);
    assert_int_equal(parse(HL_CMD_SERVE, NONE, NONE, &o, err, sizeof(err)), HL_OK);
    assert_int_equal(o.allow.n, 0);
    /* a bad range adds none of its list */
    assert_int_equal(
        parse(HL_CMD_SERVE, ARGS("--allow-network", "10.0.0.0/8,junk"), NONE, &o, err, sizeof(err)),
        HL_EINVAL);
    assert_int_equal(o.allow.n, 0);

    /* the retry schedule */
    assert_int_equal(parse(HL_CMD_SERVE, NONE, NONE, &o, err, sizeof(err)), HL_OK);
    assert_int_equal(o.retry.n, 8);
    assert_true(o.retry.delays_ms[7] == 10 * 3600 * 1000LL);
    assert_int_equal(
        parse(HL_CMD_SERVE, NONE, ARGS("HOOKLINE_RETRY_SCHEDULE=0,100ms"), &o, err, sizeof(err)),
        HL_OK);
    assert_int_equal(o.retry.n, 2);
    assert_true(o.retry.delays_ms[1] == 100);
}

static void test_operands(void **state)
{
    (void)state;
    struct hl_options o;
    char err[512];
    /* options may come before, between and after operands; "--" ends them */
    assert_int_equal(parse(HL_CMD_APPS, ARGS("--json", "create", "--database", "d.db", "my app"),
                           NONE, &o, err, sizeof(err)),
                     HL_OK);
    assert_int_equal(o.nargs, 2);
    assert_string_equal(o.args[0], "create");
    assert_string_equal(o.args[1], "my app");
    assert_string_equal(o.database, "d.db");
    assert_int_equal(o.json, 1);
    assert_int_equal(parse(HL_CMD_KEYS, ARGS("revoke", "--", "--json"), NONE, &o, err, sizeof(err)),
                     HL_OK);
    assert_int_equal(o.nargs, 2);
    assert_string_equal(o.args[1], "--json");
    assert_int_equal(o.json, 0);
    /* "-" alone is an operand */
    assert_int_equal(parse(HL_CMD_KEYS, ARGS("list", "-"), NONE, &o, err, sizeof(err)), HL_OK);
    assert_string_equal(o.args[1], "-");
}

static const enum hl_cmd cmds[] = {HL_CMD_SERVE,  HL_CMD_APPS,          HL_CMD_KEYS,  HL_CMD_LISTEN,
                                   HL_CMD_VERIFY, HL_CMD_LISTEN_REPLAY, HL_CMD_PRUNE, HL_CMD_DB};

/* --retention: what serve keeps, in ms (0: everything). */
static void test_retention(void **state)
{
    (void)state;
    static const struct {
        const char *flag, *env;
        int64_t want;
    } cases[] = {
        {NULL, NULL, 30LL * 86400000}, /* the default */
        {"0", NULL, 0},
        {"1m", NULL, 60000},
        {"60000ms", NULL, 60000},
        {"90s", NULL, 90000},
        {"12h", NULL, 12LL * 3600000},
        {NULL, "7d", 7LL * 86400000},
        {"2h", "7d", 2LL * 3600000},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char env[64];
        snprintf(env, sizeof(env), "HOOKLINE_RETENTION=%s", cases[i].env ? cases[i].env : "");
        struct hl_options o;
        char err[512];
        int rc = parse(HL_CMD_SERVE,
                       cases[i].flag ? ARGS("--retention", cases[i].flag)
                                     : ARGS("--mode", "development"),
                       ARGS(env), &o, err, sizeof(err));
        if (rc != HL_OK)
            fail_msg("case %zu refused: %s", i, err);
        assert_int_equal(o.retention_ms, cases[i].want);
    }
}

/* prune --before: when, from now. */
static void test_time_before(void **state)
{
    (void)state;
    const int64_t now = 1796048554431; /* 2026-11-30T14:22:34.431Z */
    static const struct {
        const char *text;
        int64_t want; /* INT64_MIN: refused */
    } cases[] = {
        {"now", 1796048554431},
        {"0", 1796048554431},
        {"30d", 1796048554431 - 30LL * 86400000},
        {"12h", 1796048554431 - 12LL * 3600000},
        {"250ms", 1796048554431 - 250},
        {"2026-11-01", 1793491200000},
        {"2026-11-01T12:00:00Z", 1793534400000},
        {"2026-11-01T12:00:00.5Z", 1793534400500},
        {"2026-11-01T13:00:00+01:00", 1793534400000},
        {"2099-01-01", 4070908800000},      /* the future parses: the command refuses it */
        {"2026-11-01T12:00:00", INT64_MIN}, /* no zone: not guessed */
        {"2026-11-31", INT64_MIN},
        {"2026-13-01", INT64_MIN},
        {"26-11-01", INT64_MIN},
        {"yesterday", INT64_MIN},
        {"", INT64_MIN},
        {"-1d", INT64_MIN},
        {"100000d", INT64_MIN}, /* before the epoch */
        {"2026-11-01 ", INT64_MIN},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        print_message("%s\n", cases[i].text);
        int64_t got = 42;
        int rc = hl_parse_time_before(cases[i].text, now, &got);
        if (cases[i].want == INT64_MIN) {
            assert_int_equal(rc, HL_EINVAL);
            assert_int_equal(got, 42);
        } else {
            assert_int_equal(rc, HL_OK);
            assert_int_equal(got, cases[i].want);
        }
    }
}

/* Every command reads its defaults without complaint, and rows are consistent. */
static void test_table_rows(void **state)
{
    (void)state;
    size_t n;
    const struct hl_opt *t = hl_options_table(&n);
    for (size_t c = 0; c < sizeof(cmds) / sizeof(cmds[0]); c++) {
        struct hl_options o;
        char err[512];
        assert_non_null(hl_cmd_name(cmds[c]));
        if (parse(cmds[c], NONE, NONE, &o, err, sizeof(err)) != HL_OK)
            fail_msg("%s: %s", hl_cmd_name(cmds[c]), err);
    }
    for (size_t i = 0; i < n; i++) {
        const struct hl_opt *r = &t[i];
        print_message("--%s\n", r->name);
        assert_non_null(r->help);
        assert_true(r->cmds != 0);
        assert_true(r->kind != HL_OPT_FLAG || (!r->def && !r->arg));
        assert_true(r->kind == HL_OPT_FLAG || r->arg);
        assert_true(r->kind != HL_OPT_ENUM || r->choices);
        assert_true((r->kind == HL_OPT_VALUE || r->kind == HL_OPT_LIST) == (r->set != NULL));
        assert_true(!r->check || r->forms);
        for (size_t j = 0; j < i; j++) /* one meaning per name and command */
            assert_false(strcmp(t[j].name, r->name) == 0 && (t[j].cmds & r->cmds));
    }
}

/* Each command's help names every option of its own, with its variable and default, and no
 * other command's. */
static void test_help_lists_every_option(void **state)
{
    (void)state;
    size_t n;
    const struct hl_opt *t = hl_options_table(&n);
    for (size_t c = 0; c < sizeof(cmds) / sizeof(cmds[0]); c++) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        assert_non_null(f);
        hl_options_help(cmds[c], f);
        fclose(f);
        print_message("%s", text);
        /* the help wraps its lines: compare with every run of blanks as one space */
        size_t k = 0;
        for (size_t i = 0; i < len; i++)
            if (!(text[i] == ' ' || text[i] == '\n') || (k > 0 && text[k - 1] != ' '))
                text[k++] = text[i] == '\n' ? ' ' : text[i];
        text[k] = '\0';
        assert_non_null(strstr(text, "usage: hookline "));
        for (size_t i = 0; i < n; i++) {
            char want[160];
            snprintf(want, sizeof(want), " --%s%s%s ", t[i].name, t[i].arg ? " " : "",
                     t[i].arg ? t[i].arg : "");
            int listed = strstr(text, want) != NULL;
            int mine = (t[i].cmds & cmds[c]) != 0;
            for (size_t j = 0; j < n && !mine; j++) /* another row of the same name may be */
                mine = (t[j].cmds & cmds[c]) && strcmp(t[j].name, t[i].name) == 0;
            if (!(t[i].cmds & cmds[c])) {
                assert_true(!listed || mine);
                continue;
            }
            if (t[i].hidden) { /* a test-only flag */
                assert_false(listed);
                continue;
            }
            if (!listed)
                fail_msg("%s --help does not list%s", hl_cmd_name(cmds[c]), want);
            if (t[i].env)
                assert_non_null(strstr(text, t[i].env));
            snprintf(want, sizeof(want), "default %s)", t[i].def ? t[i].def : "");
            if (t[i].def && !strstr(text, want))
                fail_msg("%s --help does not show --%s's %s", hl_cmd_name(cmds[c]), t[i].name,
                         want);
        }
        free(text);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_int_table),
        cmocka_unit_test(test_int_min),
        cmocka_unit_test(test_duration_table),
        cmocka_unit_test(test_size_table),
        cmocka_unit_test_setup(test_option_table, clear_env),
        cmocka_unit_test_setup(test_lists, clear_env),
        cmocka_unit_test_setup(test_operands, clear_env),
        cmocka_unit_test_setup(test_table_rows, clear_env),
        cmocka_unit_test(test_help_lists_every_option),
        cmocka_unit_test_setup(test_retention, clear_env),
        cmocka_unit_test(test_time_before),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
