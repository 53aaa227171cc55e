/* Configuration: the value parsers (integers, sizes, durations) and the option table of every
 * command.
 *
 * Every option of every command is one row of one table (config.c): its --flag, its environment
 * variable, its default as text, its kind (which says how the text is parsed and checked), where
 * the value goes in struct hl_options, and its help line. One parser reads argv and the
 * environment for a command (a flag beats its environment variable, which beats the default),
 * and the command's --help is generated from the same rows. Adding an option is a row, a field
 * in struct hl_options and the code that uses the value.
 *
 * The table knows the values of every command; the two that are more than a number, the retry
 * schedule and CIDR ranges, are common values too (common/schedule.h, common/net.h).
 */
#ifndef HL_CONFIG_H
#define HL_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/net.h"
#include "common/schedule.h"

/* Parses s as a decimal integer within [min, max] (strtoll syntax: leading blanks and a sign are
 * allowed, trailing text is not). Returns 0 and sets *out, or HL_EINVAL (empty, not a number,
 * trailing text, overflow, out of range) and leaves *out alone. */
int hl_parse_int(const char *s, long long min, long long max, long long *out);

/* Parses a duration such as "250ms", "30s", "5m", "2h" or "5d" into milliseconds; a bare number is
 * seconds. The number must be present, non-negative and decimal, the unit one of those five.
 * Returns 0 and sets *ms, or HL_EINVAL (also when the result would not fit in an int64_t) and
 * leaves *ms alone. */
int hl_parse_duration(const char *s, int64_t *ms);

/* Parses a size in bytes: decimal digits with an optional suffix k, M, G or T (either case,
 * powers of 1024), e.g. "1048576", "512k", "50M". Returns 0 and sets *out when the result is
 * within [min, max], or HL_EINVAL (no digits, a sign, a blank, another suffix, overflow, out of
 * range) and leaves *out alone. */
int hl_parse_size(const char *s, long long min, long long max, long long *out);

/* Parses a point in time as `hookline prune --before` takes it: "now"; a duration meaning that
 * long before now ("30d", "12h", hl_parse_duration's forms); a date "YYYY-MM-DD" (midnight
 * UTC); or an ISO 8601 / RFC 3339 time ("2026-11-01T12:00:00Z", with fractions or an offset).
 * now is the current time in ms. Returns 0 and sets *ms (which may be after now: the caller
 * decides), or HL_EINVAL and leaves *ms alone. */
int hl_parse_time_before(const char *s, int64_t now, int64_t *ms);

/* The shortest retention serve accepts (other than 0, which keeps everything). */
#define HL_RETENTION_MIN_MS 60000

/* ---- the option table ---- */

/* The commands that read options; a row names the commands it belongs to (a mask of these). */
enum hl_cmd {
    HL_CMD_SERVE = 1 << 0,
    HL_CMD_APPS = 1 << 1,
    HL_CMD_KEYS = 1 << 2,
    HL_CMD_LISTEN = 1 << 3,
    HL_CMD_VERIFY = 1 << 4,
    HL_CMD_LISTEN_REPLAY = 1 << 5, /* hookline listen replay */
    HL_CMD_DB = 1 << 6,            /* hookline db init, db compact */
    HL_CMD_PRUNE = 1 << 7,
    HL_CMD_EXTRACT = 1 << 8, /* hookline extract: the ingest worker's helper */
    /* The API client (src/cli): one command per subcommand, so each has its own options and
     * help. */
    HL_CMD_WEBHOOKS_LIST = 1 << 9,
    HL_CMD_WEBHOOKS_GET = 1 << 10,
    HL_CMD_WEBHOOKS_CREATE = 1 << 11,
    HL_CMD_WEBHOOKS_UPDATE = 1 << 12,
    HL_CMD_WEBHOOKS_PAUSE = 1 << 13,
    HL_CMD_WEBHOOKS_RESUME = 1 << 14,
    HL_CMD_WEBHOOKS_DELETE = 1 << 15,
    HL_CMD_WEBHOOKS_TEST = 1 << 16,
    HL_CMD_WEBHOOKS_ROTATE = 1 << 17,
    HL_CMD_DELIVERIES_LIST = 1 << 18,
    HL_CMD_DELIVERIES_SHOW = 1 << 19,
    HL_CMD_DELIVERIES_RESEND = 1 << 20,
    HL_CMD_DELIVERIES_RECOVER = 1 << 21,
    HL_CMD_EVENTS_LIST = 1 << 22,
    HL_CMD_EVENTS_SHOW = 1 << 23,
    HL_CMD_EVENTS_PUBLISH = 1 << 24,
};

/* Every command of the API client. */
#define HL_CMD_CLIENT                                                                              \
    (HL_CMD_WEBHOOKS_LIST | HL_CMD_WEBHOOKS_GET | HL_CMD_WEBHOOKS_CREATE |                         \
     HL_CMD_WEBHOOKS_UPDATE | HL_CMD_WEBHOOKS_PAUSE | HL_CMD_WEBHOOKS_RESUME |                     \
     HL_CMD_WEBHOOKS_DELETE | HL_CMD_WEBHOOKS_TEST | HL_CMD_WEBHOOKS_ROTATE |                      \
     HL_CMD_DELIVERIES_LIST | HL_CMD_DELIVERIES_SHOW | HL_CMD_DELIVERIES_RESEND |                  \
     HL_CMD_DELIVERIES_RECOVER | HL_CMD_EVENTS_LIST | HL_CMD_EVENTS_SHOW | HL_CMD_EVENTS_PUBLISH)

/* How a row's text is read, and the type of its field in struct hl_options. */
enum hl_opt_kind {
    HL_OPT_STRING,   /* const char *, not empty; row.check, when set, must accept it */
    HL_OPT_INT,      /* long long within [row.min, row.max] (hl_parse_int) */
    HL_OPT_SIZE,     /* long long bytes within [row.min, row.max] (hl_parse_size) */
    HL_OPT_DURATION, /* int64_t ms within [row.min, row.max] (hl_parse_duration) */
    HL_OPT_ENUM,     /* int: the index of the text in row.choices */
    HL_OPT_FLAG,     /* int 1 when given; takes no value (its variable: 1/0, true/false, yes/no) */
    HL_OPT_VALUE,    /* any type: row.set parses the text into the field */
    HL_OPT_LIST,     /* as HL_OPT_VALUE, repeatable: row.set adds each value to the field */
};

/* The environment variables of `hookline extract`'s hints (its rows below), which the ingest
 * worker sets for each helper: not arguments, which other local users can read. */
#define HL_ENV_EXTRACT_PREFIX "HOOKLINE_EXTRACT_"
#define HL_ENV_EXTRACT_TYPE HL_ENV_EXTRACT_PREFIX "CONTENT_TYPE"
#define HL_ENV_EXTRACT_NAME HL_ENV_EXTRACT_PREFIX "FILE_NAME"
/* The pid of the server that started the helper (ingest/helper.h: it dies with that server). */
#define HL_ENV_EXTRACT_PARENT HL_ENV_EXTRACT_PREFIX "PARENT"

/* Most --secret values. */
#define HL_SECRETS_MAX 16
/* Most operands (words that are not options) a command takes. */
#define HL_ARGS_MAX 4

/* Secrets a receiver accepts (listen, verify), each 1..HL_SECRET_MAX bytes. */
struct hl_secrets {
    const char *v[HL_SECRETS_MAX];
    size_t n;
};

/* Every command's values, filled by hl_options_parse. Strings point into argv or the
 * environment. */
struct hl_options {
    int help; /* --help was given: nothing else was read */
    const char *args[HL_ARGS_MAX];
    int nargs;
    /* serve, apps, keys, db */
    const char *database;
    int json; /* apps, keys: machine-readable output; listen: print bodies */
    /* serve */
    const char *listen;         /* HOST:PORT */
    const char *metrics_listen; /* HOST:PORT of /metrics alone, or NULL: on listen */
    const char *public_url;     /* where clients reach the server (portal links, Secure), or NULL */
    int production;             /* --mode: 0 development, 1 production */
    struct hl_retry retry;
    int64_t timeout_ms, disable_after_ms, lease_ms, sweep_ms, ingest_lease_ms;
    /* The least silenceAlertSeconds a webhook takes (issue 21): 60 s; tests make it shorter
     * with the hidden --test-silence-floor. */
    int64_t silence_floor_ms;
    struct hl_netlist allow;
    long long threads, max_inflight, per_host;
    long long breaker_after; /* failed attempts in a row that open a webhook's breaker */
    long long defer_after;   /* deliveries waiting for a first attempt beyond which a webhook
                              * defers (store.h, hl_store_defer_step); 0: never */
    const char *data_dir;    /* NULL: beside the SQLite file (the caller decides) */
    int64_t retention_ms;    /* 0: keep everything */
    long long max_upload, chunk_size, chunk_overlap; /* max_upload: extract too */
    long long ingest_workers;
    long long ingest_memory;                                      /* serve, extract */
    int64_t ingest_timeout_ms;                                    /* serve, extract */
    long long max_webhooks, api_rate, api_burst, max_app_storage; /* per app; 0: no limit */
    int log_level;  /* enum hl_log_level (serve, listen) */
    int log_format; /* enum hl_log_format (serve, listen) */
    /* listen */
    long long port;
    const char *bind; /* the host part of listen's --listen */
    const char *path, *state, *exec, *forward;
    long long attempts, max_body;
    int64_t backoff_ms, handoff_timeout_ms;
    int64_t dedupe_window_ms; /* 0: keep every eventId */
    int64_t alert_after_ms;   /* 0: no silence alert */
    const char *alert_exec;
    /* listen replay (and --state above) */
    int failed;
    /* prune */
    const char *before; /* hl_parse_time_before's forms */
    int dry_run;
    /* listen, verify */
    struct hl_secrets secrets;
    long long tolerance_s;
    /* verify */
    const char *signature, *id, *timestamp, *standard_signature;
    /* the API client */
    const char *server, *app, *key; /* app, key: NULL when not given (then data/dev-*) */
    int all;                        /* lists: follow nextCursor to the end */
    long long limit;                /* lists: items per page */
    const char *url, *entities, *event_types, *description;
    const char *filter, *headers; /* webhooks create/update: JSON objects, or "none" */
    int64_t overlap_ms;
    const char *webhook, *status, *event, *tenant, *data, *idempotency_key;
    int64_t since_ms, until_ms; /* 0: not given */
    /* extract */
    const char *content_type, *file_name;
};

/* One option. */
struct hl_opt {
    const char *name; /* the flag, without "--" */
    const char *env;  /* its environment variable, or NULL */
    const char *def;  /* the default as the flag would spell it, or NULL: none */
    enum hl_opt_kind kind;
    unsigned cmds;                             /* enum hl_cmd mask */
    size_t offset;                             /* of the field in struct hl_options */
    long long min, max;                        /* INT, SIZE (bytes), DURATION (ms) */
    const char *const *choices;                /* ENUM: NULL-terminated */
    int (*check)(const char *text);            /* STRING: 0 when acceptable, or NULL */
    int (*set)(void *field, const char *text); /* VALUE, LIST: 0, HL_EINVAL or HL_ETOOBIG */
    const char *forms; /* what is accepted (STRING with check, VALUE, LIST) */
    int secret;        /* never repeat the value in a message */
    const char *arg;   /* the value's name in the help, e.g. "DURATION" */
    const char *help;  /* one line; the help adds the variable and the default */
    int hidden;        /* a test-only flag: read like any other, left out of the help */
};

/* The table: *n rows. */
const struct hl_opt *hl_options_table(size_t *n);

/* The command's name ("serve"), or NULL for a value that is no single command. */
const char *hl_cmd_name(enum hl_cmd cmd);

/* Reads the options of cmd from argv[1..argc) and the environment into *o (zeroed first):
 * "--name value", "--name=value", "--" ends the options, "-h" is --help; other words are operands
 * (o->args). Rows not given as flags take their environment variable (when set and not empty),
 * else their default. Stops at --help (o->help = 1). Returns 0, or HL_EINVAL with a message in
 * err that names the flag or variable and what it accepts. */
int hl_options_parse(enum hl_cmd cmd, int argc, char **argv, struct hl_options *o, char *err,
                     size_t errlen);

/* Writes cmd's help: its usage, what it does, then one entry per option from the table. */
void hl_options_help(enum hl_cmd cmd, FILE *f);

/* What a command returns from hl_options_get when it should go on. */
#define HL_OPTS_RUN (-1)

/* hl_options_parse, handled the same way for every command: prints the help on --help (returns
 * 0), the error on stderr (returns 2), or returns HL_OPTS_RUN. */
int hl_options_get(enum hl_cmd cmd, int argc, char **argv, struct hl_options *o);

/* Prints "hookline CMD: message" and where to find the options on stderr; returns 2, the exit
 * status of a usage error. */
int hl_usage_error(enum hl_cmd cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
