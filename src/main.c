/* hookline: the command line. serve, apps, keys, prune, db, listen, verify, extract (serve's
 * helper), and the API client's webhooks, deliveries and events (src/cli). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/http.h"
#include "api/limits.h"
#include "api/metrics.h"
#include "cli/cli.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/err.h"
#include "common/ids.h"
#include "common/log.h"
#include "console/console.h"
#include "delivery/dispatcher.h"
#include "events/operational.h"
#include "ingest/helper.h"
#include "ingest/worker.h"
#include "receiver/listen.h"
#include "store/prune.h"
#include "store/store.h"

static int open_store(const char *db, struct hl_store **st)
{
    char err[512];
    if (hl_store_open(db, st, err, sizeof(err))) {
        fprintf(stderr, "hookline: %s\n", err);
        return 1;
    }
    return 0;
}

/* How a database is named in messages: a file by its path, PostgreSQL without its URL (which
 * may hold a password). */
static const char *db_shown(const char *db)
{
    return strncmp(db, "postgres", 8) == 0 ? "the PostgreSQL database" : db;
}

/* Opens a database that must exist already: apps and keys never create one, so a mistyped
 * --database is an error rather than a new empty database. */
static int open_existing(const char *db, struct hl_store **st)
{
    char err[512];
    int rc = hl_store_exists(db, err, sizeof(err));
    if (rc == HL_ENOTFOUND) {
        fprintf(stderr,
                "hookline: %s\nhookline serve creates the database when it first starts; "
                "hookline db init --database %s creates it without serving.\n",
                err, strncmp(db, "postgres", 8) == 0 ? "URL" : db);
        return 1;
    }
    if (rc) {
        fprintf(stderr, "hookline: %s\n", err);
        return 1;
    }
    return open_store(db, st);
}

/* ---- apps and keys ---- */

struct new_key {
    char key[64];
    char uid[HL_ID_MAX];
};

static int make_key(struct hl_store *st, int64_t app_id, struct new_key *k)
{
    if (hl_id_new("hlk_", 32, k->key, sizeof(k->key)) ||
        hl_id_new("key_", 9, k->uid, sizeof(k->uid)))
        return HL_EIO;
    uint8_t hash[32];
    SHA256((const unsigned char *)k->key, strlen(k->key), hash);
    char prefix[16];
    snprintf(prefix, sizeof(prefix), "%.10s", k->key);
    return hl_store_key_create(st, app_id, k->uid, hash, prefix);
}

static int create_app(struct hl_store *st, const char *name, struct hl_app *app, struct new_key *k)
{
    char uid[HL_ID_MAX];
    if (hl_id_new("app-", 9, uid, sizeof(uid)))
        return HL_EIO;
    int rc = hl_store_app_create(st, uid, name, app);
    if (rc == HL_OK)
        rc = make_key(st, app->id, k);
    return rc;
}

static int cmd_apps(int argc, char **argv)
{
    struct hl_options o;
    int status = hl_options_get(HL_CMD_APPS, argc, argv, &o);
    if (status != HL_OPTS_RUN)
        return status;
    const char *sub = o.nargs ? o.args[0] : NULL, *db = o.database;
    int json = o.json;
    struct hl_store *st;
    if (!sub)
        return hl_usage_error(HL_CMD_APPS, "missing what to do: apps create NAME or apps list");
    if (strcmp(sub, "create") == 0) {
        if (o.nargs < 2)
            return hl_usage_error(HL_CMD_APPS,
                                  "missing the NAME of the app to create: apps create NAME");
        if (!*o.args[1] || strlen(o.args[1]) >= HL_NAME_MAX)
            return hl_usage_error(HL_CMD_APPS, "the app's NAME must be 1 to %d bytes",
                                  HL_NAME_MAX - 1);
        if (open_existing(db, &st))
            return 1;
        struct hl_app app;
        struct new_key k;
        int rc = create_app(st, o.args[1], &app, &k);
        hl_store_close(st);
        if (rc) {
            fprintf(stderr, "hookline: cannot create the app: %s\n", hl_strerror(rc));
            return 1;
        }
        if (json)
            printf("{\"appUid\":\"%s\",\"apiKey\":\"%s\",\"keyId\":\"%s\"}\n", app.uid, k.key,
                   k.uid);
        else
            printf("appUid: %s\napiKey: %s\nkeyId:  %s\n\nThe API key is shown only now: keep "
                   "it somewhere safe.\n",
                   app.uid, k.key, k.uid);
        return 0;
    }
    if (strcmp(sub, "list") == 0) {
        if (o.nargs != 1)
            return hl_usage_error(HL_CMD_APPS, "apps list takes no argument, not '%.64s'",
                                  o.args[1]);
        if (open_existing(db, &st))
            return 1;
        struct hl_app *apps = NULL;
        size_t n = 0;
        int rc = hl_store_app_list(st, &apps, &n);
        hl_store_close(st);
        if (rc) {
            fprintf(stderr, "hookline: cannot list apps: %s\n", hl_strerror(rc));
            return 1;
        }
        json_t *arr = json_array();
        for (size_t k = 0; k < n; k++) {
            char iso[HL_ISO_MAX];
            hl_time_iso(apps[k].created_at, iso);
            if (json)
                json_array_append_new(arr, json_pack("{s:s,s:s,s:s}", "appUid", apps[k].uid, "name",
                                                     apps[k].name, "createdAt", iso));
            else
                printf("%s  %s  %s\n", apps[k].uid, iso, apps[k].name);
        }
        if (json) {
            char *s = json_dumps(arr, JSON_COMPACT);
            printf("%s\n", s ? s : "[]");
            free(s);
        }
        json_decref(arr);
        free(apps);
        return 0;
    }
    return hl_usage_error(HL_CMD_APPS,
                          "unknown subcommand '%.64s': want apps create NAME or apps list", sub);
}

/* Prints the keys as a JSON array (as apps list --json does) or one line each. */
static void print_keys(const struct hl_api_key *keys, size_t n, int json)
{
    json_t *arr = json ? json_array() : NULL;
    for (size_t k = 0; k < n; k++) {
        char iso[HL_ISO_MAX];
        hl_time_iso(keys[k].created_at, iso);
        if (json)
            json_array_append_new(arr,
                                  json_pack("{s:s,s:s,s:s,s:s,s:b}", "keyId", keys[k].uid, "appUid",
                                            keys[k].app_uid, "prefix", keys[k].prefix, "createdAt",
                                            iso, "revoked", keys[k].revoked_at != 0));
        else
            printf("%s  %s  %s…  %s%s\n", keys[k].uid, keys[k].app_uid, keys[k].prefix, iso,
                   keys[k].revoked_at ? "  revoked" : "");
    }
    if (json) {
        char *s = json_dumps(arr, JSON_COMPACT);
        printf("%s\n", s ? s : "[]");
        free(s);
        json_decref(arr);
    }
}

static int cmd_keys(int argc, char **argv)
{
    struct hl_options o;
    int status = hl_options_get(HL_CMD_KEYS, argc, argv, &o);
    if (status != HL_OPTS_RUN)
        return status;
    const char *sub = o.nargs ? o.args[0] : NULL, *db = o.database, *arg = o.args[1];
    int json = o.json;
    struct hl_store *st;
    int rc;
    if (!sub)
        return hl_usage_error(HL_CMD_KEYS, "missing what to do: keys create APP_UID, keys revoke "
                                           "KEY_ID or keys list [APP_UID]");
    int create = strcmp(sub, "create") == 0, revoke = strcmp(sub, "revoke") == 0;
    if ((create || revoke) && !arg)
        return hl_usage_error(HL_CMD_KEYS, "missing the %s",
                              create ? "APP_UID of the app to make a key for: keys create APP_UID"
                                     : "KEY_ID of the key to revoke: keys revoke KEY_ID (keys "
                                       "list shows them)");
    if (create) {
        if (open_existing(db, &st))
            return 1;
        struct hl_app app;
        struct new_key k;
        rc = hl_store_app_get(st, arg, &app);
        if (rc == HL_OK)
            rc = make_key(st, app.id, &k);
        hl_store_close(st);
        if (rc) {
            fprintf(stderr, "hookline: cannot create a key for %.64s: %s\n", arg,
                    rc == HL_ENOTFOUND ? "no such app (hookline apps list shows them)"
                                       : hl_strerror(rc));
            return 1;
        }
        if (json)
            printf("{\"appUid\":\"%s\",\"apiKey\":\"%s\",\"keyId\":\"%s\"}\n", app.uid, k.key,
                   k.uid);
        else
            printf("apiKey: %s\nkeyId:  %s\n\nThe API key is shown only now.\n", k.key, k.uid);
        return 0;
    }
    if (revoke) {
        if (open_existing(db, &st))
            return 1;
        rc = hl_store_key_revoke(st, arg);
        hl_store_close(st);
        if (rc) {
            fprintf(stderr, "hookline: cannot revoke %.64s: %s\n", arg,
                    rc == HL_ENOTFOUND ? "no such key, or already revoked" : hl_strerror(rc));
            return 1;
        }
        if (json)
            printf("{\"keyId\":\"%s\",\"revoked\":true}\n", arg);
        else
            printf("revoked %s\n", arg);
        return 0;
    }
    if (strcmp(sub, "list") == 0) {
        if (open_existing(db, &st))
            return 1;
        struct hl_app app = {0};
        rc = arg ? hl_store_app_get(st, arg, &app) : HL_OK;
        struct hl_api_key *keys = NULL;
        size_t n = 0;
        if (rc == HL_OK)
            rc = hl_store_key_list(st, app.id, &keys, &n);
        hl_store_close(st);
        if (rc == HL_ENOTFOUND && arg) {
            fprintf(stderr,
                    "hookline: cannot list the keys of %.64s: no such app (hookline "
                    "apps list shows them)\n",
                    arg);
            return 1;
        }
        if (rc) {
            fprintf(stderr, "hookline: cannot list keys: %s\n", hl_strerror(rc));
            return 1;
        }
        print_keys(keys, n, json);
        free(keys);
        return 0;
    }
    return hl_usage_error(HL_CMD_KEYS,
                          "unknown subcommand '%.64s': want keys create APP_UID, keys revoke "
                          "KEY_ID or keys list [APP_UID]",
                          sub);
}

/* ---- db ---- */

/* hookline db init: the database with its schema, up to date. */
static int db_init(const struct hl_options *o)
{
    struct hl_store *st;
    if (open_store(o->database, &st))
        return 1;
    hl_store_close(st);
    printf("%s is ready\n", db_shown(o->database));
    return 0;
}

/* ---- retention: prune and db compact ---- */

#define MIB (1024.0 * 1024.0)

/* A progress line on stderr: rewritten in place on a terminal, one line each time otherwise. */
static void progress_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void progress_line(const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (isatty(STDERR_FILENO))
        fprintf(stderr, "\r%s\033[K", line);
    else
        fprintf(stderr, "%s\n", line);
}

static void progress_end(int shown)
{
    if (shown && isatty(STDERR_FILENO))
        fputc('\n', stderr);
}

/* What a prune run removed (or would), and where it got to. */
struct prune_run {
    struct hl_prune_result sum;
    int64_t idem;
    int64_t released; /* bytes given back to the file system (SQLite) */
    int progress;     /* a progress line was shown */
};

/* Every step of one pass from the first event, adapting the step to hold the writer briefly
 * and leaving room between steps for a server beside it. */
static int prune_pass(struct hl_store *st, int64_t before, int dry_run, struct prune_run *run)
{
    struct hl_prune p = {.before = before, .dry_run = dry_run};
    struct hl_prune_pace pace;
    hl_prune_pace_init(&pace, st);
    int64_t start = hl_mono_ms(), shown = start;
    for (;;) {
        hl_prune_pace_step(&pace, &p);
        struct hl_prune_result r;
        int rc = hl_store_prune(st, &p, &r);
        if (rc)
            return rc;
        if (r.busy) { /* a serving node's step: it will be over in a moment */
            usleep(50000);
            continue;
        }
        run->sum.events += r.events;
        run->sum.deliveries += r.deliveries;
        run->sum.attempts += r.attempts;
        run->sum.kept_owed += r.kept_owed;
        p.after_at = r.last_at;
        p.after_id = r.last_id;
        /* the server's pruner's steps and waits: a server beside it keeps its latency */
        int64_t gap = hl_prune_pace_done(&pace, &r, 0);
        if (r.done)
            return HL_OK;
        if (hl_mono_ms() - shown >= 1000) {
            shown = hl_mono_ms();
            char iso[HL_ISO_MAX];
            hl_time_iso(r.last_at, iso);
            progress_line("prune: %lld events, %lld deliveries, %lld attempts %s so far"
                          " (up to %s, %lld s)",
                          (long long)run->sum.events, (long long)run->sum.deliveries,
                          (long long)run->sum.attempts, dry_run ? "to remove" : "removed", iso,
                          (long long)((shown - start) / 1000));
            run->progress = 1;
        }
        if (!dry_run)
            usleep((useconds_t)(gap * 1000));
    }
}

/* Idempotency keys past their window: all of them counted, or removed in steps. */
static int prune_idem(struct hl_store *st, int dry_run, int64_t *total)
{
    int64_t before = hl_now_ms() - HL_IDEM_WINDOW_MS, n = 0;
    if (dry_run)
        return hl_store_idem_expire(st, before, 0, 1, total);
    do {
        int rc = hl_store_idem_expire(st, before, 1000, 0, &n);
        if (rc)
            return rc;
        *total += n;
    } while (n == 1000);
    return HL_OK;
}

/* Freed pages past the reserve back to the file system (SQLite with auto-vacuum), in the
 * server's short steps with a pause between them for a server beside it. */
static int prune_release(struct hl_store *st, int64_t *total)
{
    for (;;) {
        int64_t n = 0;
        int rc = hl_store_release_space(st, &n);
        if (rc || n == 0)
            return rc;
        *total += n;
        usleep(5000);
    }
}

static void prune_report(const struct prune_run *run, int64_t before, int dry_run, int json)
{
    char iso[HL_ISO_MAX];
    hl_time_iso(before, iso);
    const struct hl_prune_result *s = &run->sum;
    if (json) {
        printf("{\"dryRun\":%s,\"before\":\"%s\",\"events\":%lld,\"deliveries\":%lld,"
               "\"attempts\":%lld,\"idempotencyKeys\":%lld,\"keptOwed\":%lld,"
               "\"releasedBytes\":%lld}\n",
               dry_run ? "true" : "false", iso, (long long)s->events, (long long)s->deliveries,
               (long long)s->attempts, (long long)run->idem, (long long)s->kept_owed,
               (long long)run->released);
        return;
    }
    printf("%s %lld events, %lld deliveries and %lld attempts created before %s,\n"
           "and %lld idempotency keys past their 24 h window.\n",
           dry_run ? "would remove" : "removed", (long long)s->events, (long long)s->deliveries,
           (long long)s->attempts, iso, (long long)run->idem);
    if (s->kept_owed)
        printf("kept %lld older events: a delivery of each is still owed to a receiver.\n",
               (long long)s->kept_owed);
    if (run->released)
        printf("gave %.1f MiB of free space back to the file system.\n",
               (double)run->released / MIB);
}

static int cmd_prune(int argc, char **argv)
{
    struct hl_options o;
    int status = hl_options_get(HL_CMD_PRUNE, argc, argv, &o);
    if (status != HL_OPTS_RUN)
        return status;
    if (!o.before)
        return hl_usage_error(HL_CMD_PRUNE,
                              "--before TIME is required: now, a duration ago such as 30d, a date "
                              "such as 2026-11-01, or a time such as 2026-11-01T12:00:00Z");
    int64_t now = hl_now_ms(), before = 0;
    if (hl_parse_time_before(o.before, now, &before))
        return hl_usage_error(HL_CMD_PRUNE, "--before %s: not a time", o.before);
    if (before > now) {
        char iso[HL_ISO_MAX];
        hl_time_iso(now, iso);
        return hl_usage_error(HL_CMD_PRUNE,
                              "--before %s: that is in the future (now is %s); nothing removed",
                              o.before, iso);
    }
    struct hl_store *st;
    if (open_store(o.database, &st))
        return 1;
    struct prune_run run = {0};
    int rc = prune_pass(st, before, o.dry_run, &run);
    progress_end(run.progress);
    if (rc == HL_OK)
        rc = prune_idem(st, o.dry_run, &run.idem);
    if (rc == HL_OK && !o.dry_run)
        rc = prune_release(st, &run.released);
    hl_store_close(st);
    if (rc) {
        fprintf(stderr, "hookline prune: stopped: %s\n", hl_strerror(rc));
        prune_report(&run, before, o.dry_run, 0);
        return 1;
    }
    prune_report(&run, before, o.dry_run, o.json);
    return 0;
}

static void compact_progress(void *arg, const struct hl_compact_progress *p)
{
    int *shown = arg;
    *shown = 1;
    if (p->total > 0 && p->total > 1000)
        progress_line("db compact: %lld s, %s: %.1f of %.1f MiB (%d%%)",
                      (long long)(p->elapsed_ms / 1000), p->phase, (double)p->done / MIB,
                      (double)p->total / MIB, (int)(100 * p->done / p->total));
    else
        progress_line("db compact: %lld s, %s", (long long)(p->elapsed_ms / 1000), p->phase);
}

/* hookline db compact: the database's free space given back once. */
static int db_compact(const struct hl_options *o)
{
    struct hl_store *st;
    if (open_store(o->database, &st))
        return 1;
    /* VACUUM rewrites the whole file: not beside a server, which holds the lock */
    char err[512];
    struct hl_store_space before = {0}, after = {0};
    int rc = hl_store_lock(st, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "hookline db compact: %s\n", err);
        hl_store_close(st);
        return 1;
    }
    rc = hl_store_space(st, &before);
    int shown = 0;
    if (rc == HL_OK) {
        progress_line("db compact: %.1f MiB, %.1f MiB of it free", (double)before.bytes / MIB,
                      (double)before.free_bytes / MIB);
        shown = 1;
        rc = hl_store_compact(st, compact_progress, &shown, err, sizeof(err));
    } else {
        snprintf(err, sizeof(err), "%s", hl_strerror(rc));
    }
    progress_end(shown);
    if (rc == HL_OK)
        rc = hl_store_space(st, &after);
    hl_store_close(st);
    if (rc) {
        fprintf(stderr, "hookline db compact: %s\n", *err ? err : hl_strerror(rc));
        return 1;
    }
    printf("compacted: %.1f MiB before, %.1f MiB after%s\n", (double)before.bytes / MIB,
           (double)after.bytes / MIB,
           after.reclaims ? "; freed space is given back as pruning goes" : "");
    return 0;
}

static int cmd_db(int argc, char **argv)
{
    struct hl_options o;
    int status = hl_options_get(HL_CMD_DB, argc, argv, &o);
    if (status != HL_OPTS_RUN)
        return status;
    if (o.nargs == 0)
        return hl_usage_error(HL_CMD_DB, "missing what to do: db init or db compact");
    if (o.nargs == 1 && strcmp(o.args[0], "init") == 0)
        return db_init(&o);
    if (o.nargs == 1 && strcmp(o.args[0], "compact") == 0)
        return db_compact(&o);
    return hl_usage_error(HL_CMD_DB, "unknown subcommand '%.64s': want db init or db compact",
                          o.args[0]);
}

/* ---- serve ---- */

/* Writes s to path with mode 0600, replacing it. */
static int write_private(const char *path, const char *s)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return HL_EIO;
    fchmod(fd, 0600);
    size_t n = strlen(s);
    ssize_t w = write(fd, s, n);
    close(fd);
    return w == (ssize_t)n ? HL_OK : HL_EIO;
}

/* First start in development mode with no app: make one and leave its key beside the database,
 * so the README's examples work as pasted. */
static int dev_bootstrap(struct hl_store *st, const char *dir)
{
    struct hl_app *apps = NULL;
    size_t n = 0;
    int rc = hl_store_app_list(st, &apps, &n);
    free(apps);
    if (rc || n > 0)
        return rc;
    struct hl_app app;
    struct new_key k;
    if ((rc = create_app(st, "development", &app, &k)))
        return rc;
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/dev-api-key", dir);
    int wrc = write_private(path, k.key);
    snprintf(path, sizeof(path), "%s/dev-app-uid", dir);
    if (wrc == HL_OK)
        wrc = write_private(path, app.uid);
    printf("\nCreated a development app and API key (shown once):\n"
           "  appUid: %s\n  apiKey: %s\n"
           "Saved to %s/dev-app-uid and %s/dev-api-key (mode 0600).\n\n",
           app.uid, k.key, dir, dir);
    fflush(stdout);
    if (wrc)
        hl_warn("could not write %s/dev-api-key", dir);
    return HL_OK;
}

/* An upload in progress writes its temporary file at least every HL_HTTP_IDLE_S, or its
 * connection is closed; one untouched for this long is a leftover of a node that died. Ten times
 * that, for the clocks of the nodes sharing the folder and an NFS client's attribute cache. */
#define UPLOAD_LEFTOVER_S (10 * HL_HTTP_IDLE_S)

/* Makes DIR (and the folders above it), DIR/uploads and DIR/files, and removes the uploads that a
 * crash left half-written. Nodes may share DIR: a temporary file still being written (another
 * node's upload in progress) is left alone; only one that nobody has written for
 * UPLOAD_LEFTOVER_S goes. */
static int prepare_data_dir(const char *dir)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s", dir);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST) {
            fprintf(stderr, "hookline: cannot create %s: %s\n", path, strerror(errno));
            return 1;
        }
        *p = '/';
    }
    static const char *const subs[] = {"", "/uploads", "/files"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s%s", dir, subs[i]);
        if (mkdir(path, 0700) != 0 && errno != EEXIST) {
            fprintf(stderr, "hookline: cannot create %s: %s\n", path, strerror(errno));
            return 1;
        }
    }
    snprintf(path, sizeof(path), "%s/uploads", dir);
    DIR *d = opendir(path);
    struct dirent *e;
    time_t before = time(NULL) - UPLOAD_LEFTOVER_S;
    while (d && (e = readdir(d))) {
        struct stat sb;
        if (strncmp(e->d_name, "upload-", 7) != 0 ||
            fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 || sb.st_mtime >= before)
            continue;
        if (unlinkat(dirfd(d), e->d_name, 0) == 0)
            hl_info("removed %s/%s, an upload nobody has written for %d minutes", path, e->d_name,
                    UPLOAD_LEFTOVER_S / 60);
    }
    if (d)
        closedir(d);
    return 0;
}

/* The API reaches the ingest worker and the dispatcher only through these hooks (struct
 * hl_api_hooks), wired in by cmd_serve. */
static void hook_file_queued(void *ingest)
{
    hl_ingest_wake(ingest);
}

/* The dispatcher runs when it is not stopping and its bookkeeper, which turns at least once a
 * second, turned recently. */
#define DISPATCHER_STALL_MS 15000

static int hook_dispatcher_running(void *dispatcher, char *why, size_t cap)
{
    struct hl_dispatcher_stats s;
    hl_dispatcher_stats(dispatcher, &s);
    int64_t idle = hl_mono_ms() - s.turned_at;
    if (s.stopping)
        snprintf(why, cap, "stopping");
    else if (idle > DISPATCHER_STALL_MS)
        snprintf(why, cap, "stalled: no turn for %lld ms", (long long)idle);
    return !s.stopping && idle <= DISPATCHER_STALL_MS;
}

/* The other way: the dispatcher tells the API which attempts it recorded (POST .../test waits). */
static void hook_recorded(void *http, const struct hl_attempt *a, size_t n)
{
    hl_http_attempts_recorded(http, a, n);
}

static void hook_delivery_counters(void *dispatcher, struct hl_delivery_counters *out)
{
    struct hl_dispatcher_stats s;
    hl_dispatcher_stats(dispatcher, &s);
    *out = (struct hl_delivery_counters){.attempts = hl_dispatcher_metrics(dispatcher),
                                         .inflight = s.inflight};
}

/* The data folder of a database given no --data-dir: beside a SQLite file, named after it without
 * its extension and "-data" ("data/hookline.db": "data/hookline-data"), so two databases in one
 * folder never share one; "hookline-data" with PostgreSQL. */
static void default_data_dir(const char *db, char *dir, size_t cap)
{
    if (strncmp(db, "postgres", 8) == 0) {
        snprintf(dir, cap, "hookline-data");
        return;
    }
    if (strncmp(db, "sqlite:", 7) == 0)
        db += 7;
    const char *slash = strrchr(db, '/'), *base = slash ? slash + 1 : db;
    const char *dot = strrchr(base, '.');
    size_t len = dot && dot > base ? (size_t)(dot - db) : strlen(db);
    snprintf(dir, cap, "%.*s-data", (int)len, db);
}

/* The limits of one extraction, the same for serve and for the helpers it starts. */
static struct hl_helper_limits helper_limits(const struct hl_options *o)
{
    return (struct hl_helper_limits){.memory = (size_t)o->ingest_memory,
                                     .timeout_ms = o->ingest_timeout_ms,
                                     .max_input = (size_t)o->max_upload};
}

/* How often the dispatcher looks for silent webhooks (issue 21): a quarter of the shortest
 * silence a webhook may have, within 250 ms .. 15 s, so that an alert comes at most that late. */
static int64_t silence_sweep_ms(const struct hl_options *o)
{
    int64_t ms = o->silence_floor_ms / 4;
    return ms < 250 ? 250 : ms > 15000 ? 15000 : ms;
}

/* Turns serve's options into each part's configuration, and checks what no single option can.
 * The data directory (dir, cap bytes, holds it) is --data-dir or default_data_dir's. Returns 0,
 * or 2 after saying what is wrong. */
static int serve_config(const struct hl_options *o, struct hl_api_config *api,
                        struct hl_dispatcher_config *dc, struct hl_ingest_config *ic, char *dir,
                        size_t cap)
{
    if (o->chunk_overlap >= o->chunk_size)
        return hl_usage_error(HL_CMD_SERVE,
                              "--chunk-overlap %lld: want fewer than --chunk-size %lld",
                              o->chunk_overlap, o->chunk_size);
    if (o->data_dir)
        snprintf(dir, cap, "%s", o->data_dir);
    else
        default_data_dir(o->database, dir, cap);
    *dc = (struct hl_dispatcher_config){.retry = o->retry,
                                        .timeout_ms = o->timeout_ms,
                                        .max_inflight = (size_t)o->max_inflight,
                                        .per_host = (long)o->per_host,
                                        .production = o->production,
                                        .allow = o->allow,
                                        .disable_after_ms = o->disable_after_ms,
                                        .lease_ms = o->lease_ms,
                                        .sweep_ms = o->sweep_ms,
                                        .silence_sweep_ms = silence_sweep_ms(o),
                                        .breaker_after = (int)o->breaker_after,
                                        .defer_after = o->defer_after};
    *ic = (struct hl_ingest_config){.chunk_size = (size_t)o->chunk_size,
                                    .overlap = (size_t)o->chunk_overlap,
                                    .lease_ms = o->ingest_lease_ms,
                                    .workers = (size_t)o->ingest_workers,
                                    .limits = helper_limits(o)};
    *api = (struct hl_api_config){.production = o->production,
                                  .allow = &o->allow,
                                  .max_body = HL_MAX_BODY,
                                  .threads = (unsigned)o->threads,
                                  .test_wait_ms = o->timeout_ms + 2000,
                                  .data_dir = dir,
                                  .max_upload = (size_t)o->max_upload,
                                  .max_webhooks = o->max_webhooks,
                                  .api_rate = o->api_rate,
                                  .api_burst = o->api_burst,
                                  .max_app_storage = o->max_app_storage,
                                  .silence_floor_ms = o->silence_floor_ms,
                                  .public_url = o->public_url};
    return 0;
}

/* Starts a server on addr, given by flag, answering serves; says what to do when another
 * program holds the address. Returns 0 or an error (said). */
static int start_http(struct hl_api *api, const char *addr, const char *flag, unsigned serves,
                      struct hl_http **out)
{
    int rc = hl_http_start(api, addr, serves, out);
    if (rc == HL_ECONFLICT)
        fprintf(stderr,
                "hookline: another program listens on %s: stop it, or give this server another "
                "address: %s 127.0.0.1:8081%s\n",
                addr, flag,
                serves & HL_SERVE_API ? " (or, with make run, make run LISTEN=127.0.0.1:8081)"
                                      : "");
    return rc;
}

/* Once at start: how big the database is, how much of it is reclaimable, what the retention
 * does. */
static void log_space(struct hl_store *st, int64_t retention_ms)
{
    struct hl_store_space sp;
    if (hl_store_space(st, &sp)) {
        hl_warn("cannot measure the database");
        return;
    }
    char ret[64];
    if (retention_ms)
        snprintf(ret, sizeof(ret), "events final for %lld s and older go",
                 (long long)(retention_ms / 1000));
    else
        snprintf(ret, sizeof(ret), "retention 0: every event is kept");
    hl_info("database: %.1f MiB on disk, %.1f MiB of it reclaimable; %s", (double)sp.bytes / MIB,
            (double)sp.free_bytes / MIB, ret);
    if (!sp.reclaims)
        hl_warn("database: this SQLite file predates incremental auto-vacuum: pruned space is "
                "reused but never given back (%.1f MiB free now). Run `hookline db compact` once "
                "with the server stopped to give it back and turn auto-vacuum on",
                (double)sp.free_bytes / MIB);
}

static int cmd_serve(int argc, char **argv)
{
    struct hl_options o;
    int status = hl_options_get(HL_CMD_SERVE, argc, argv, &o);
    if (status != HL_OPTS_RUN)
        return status;
    struct hl_api api = {0};
    struct hl_dispatcher_config dc;
    struct hl_ingest_config ic;
    char data_dir[PATH_MAX];
    /* Every option is checked before anything is created or opened. */
    if (serve_config(&o, &api.cfg, &dc, &ic, data_dir, sizeof(data_dir)))
        return 2;
    hl_log_set_level((enum hl_log_level)o.log_level);
    hl_log_set_format((enum hl_log_format)o.log_format);

    /* Signals are taken by sigwait below, not by whichever thread they land on. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct hl_store *st = NULL;
    struct hl_dispatcher *disp = NULL;
    struct hl_ingest *ingest = NULL;
    struct hl_http *http = NULL, *metrics = NULL;
    struct hl_pruner *pruner = NULL;
    status = 1;
    if (prepare_data_dir(data_dir) || open_store(o.database, &st))
        goto out;
    /* One serving process per SQLite file: a second one would drop the first one's leases. */
    char lock_err[512];
    if (hl_store_lock(st, lock_err, sizeof(lock_err))) {
        fprintf(stderr, "hookline: %s\n", lock_err);
        goto out;
    }
    if (!api.cfg.production && dev_bootstrap(st, data_dir)) {
        fprintf(stderr, "hookline: could not create the development app\n");
        goto out;
    }
    log_space(st, o.retention_ms);
    struct hl_pruner_config pc = {.retention_ms = o.retention_ms};
    if (o.retention_ms && hl_pruner_start(st, &pc, &pruner)) {
        fprintf(stderr, "hookline: cannot start the pruner\n");
        goto out;
    }
    api.store = st;
    if (hl_limits_new(&api.cfg, &api.limits)) {
        fprintf(stderr, "hookline: out of memory\n");
        goto out;
    }
    hl_store_on_op_event(st, hl_op_event_make); /* operational events (issue 21) */
    if (hl_dispatcher_start(st, &dc, &disp)) {
        fprintf(stderr, "hookline: cannot start the dispatcher\n");
        goto out;
    }
    api.hooks.delivery_counters = hook_delivery_counters;
    api.hooks.delivery_counters_arg = disp;
    api.hooks.dispatcher_running = hook_dispatcher_running;
    api.hooks.dispatcher_running_arg = disp;
    if (hl_ingest_start(st, &ic, &ingest)) {
        fprintf(stderr, "hookline: cannot start the ingest workers\n");
        goto out;
    }
    api.hooks.file_queued = hook_file_queued;
    api.hooks.file_queued_arg = ingest;
    api.hooks.console = hl_console_serve;
    if (o.metrics_listen &&
        start_http(&api, o.metrics_listen, "--metrics-listen", HL_SERVE_METRICS, &metrics))
        goto out;
    if (start_http(&api, o.listen, "--listen", HL_SERVE_API | (metrics ? 0 : HL_SERVE_METRICS),
                   &http))
        goto out;
    hl_dispatcher_on_recorded(disp, hook_recorded, http);
    /* The port actually bound, which --listen HOST:0 leaves to the system. */
    const char *colon = strrchr(o.listen, ':');
    hl_info("hookline %s listening on %.*s:%u (%s mode, %s, data in %s)", HL_VERSION,
            (int)(colon - o.listen), o.listen, (unsigned)hl_http_port(http),
            api.cfg.production ? "production" : "development", db_shown(o.database), data_dir);
    if (metrics) {
        colon = strrchr(o.metrics_listen, ':');
        hl_info("/metrics on %.*s:%u only", (int)(colon - o.metrics_listen), o.metrics_listen,
                (unsigned)hl_http_port(metrics));
    }
    int sig = 0;
    sigwait(&set, &sig);
    hl_info("signal %d: stopping (finishing requests in flight)", sig);
    hl_http_quiesce(http);
    hl_http_quiesce(metrics);
    status = 0;
out:
    if (disp)
        hl_dispatcher_on_recorded(disp, NULL, NULL);
    hl_http_stop(http);
    hl_http_stop(metrics);
    hl_ingest_stop(ingest);
    hl_dispatcher_stop(disp);
    hl_pruner_stop(pruner);
    hl_limits_free(api.limits);
    hl_store_close(st);
    if (status == 0)
        hl_info("stopped");
    return status;
}

/* ---- extract ---- */

/* The ingest worker's helper: one context file's text, under limits (ingest/helper.h). */
static int cmd_extract(int argc, char **argv)
{
    struct hl_options o;
    int status = hl_options_get(HL_CMD_EXTRACT, argc, argv, &o);
    if (status != HL_OPTS_RUN)
        return status;
    if (o.nargs != 1)
        return hl_usage_error(HL_CMD_EXTRACT, "extract takes one FILE");
    struct hl_helper_limits lim = helper_limits(&o);
    return hl_helper_main(&lim, o.args[0], o.content_type, o.file_name, hl_extract_file);
}

static void main_help(FILE *f)
{
    fprintf(f,
            "hookline %s: webhook delivery\n\n"
            "usage: hookline COMMAND [options]   (COMMAND --help for its options)\n\n"
            "  serve    run the API and the dispatcher\n"
            "  apps     create or list apps\n"
            "  keys     create, revoke or list API keys\n"
            "  prune    remove final events older than a time (serve --retention does it too)\n"
            "  db       db init: create the database without serving; db compact: give its free\n"
            "           space back once\n"
            "  listen   receive webhooks: verify, de-duplicate, hand on\n"
            "  verify   check one body's signature from a shell\n\n"
            "  webhooks    list, get, create, update, pause, resume, delete, test, rotate-secret\n"
            "  deliveries  list, show, resend, recover\n"
            "  events      list, show, publish\n"
            "              (these talk to a running server: --server, --app, --key)\n\n"
            "  version  print the version\n",
            HL_VERSION);
}

int main(int argc, char **argv)
{
    /* Databases and files hold webhook secrets and uploads: private by default. */
    umask(077);
    if (argc < 2) {
        main_help(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc - 1, argv + 1);
    if (strcmp(cmd, "apps") == 0)
        return cmd_apps(argc - 1, argv + 1);
    if (strcmp(cmd, "keys") == 0)
        return cmd_keys(argc - 1, argv + 1);
    if (strcmp(cmd, "prune") == 0)
        return cmd_prune(argc - 1, argv + 1);
    if (strcmp(cmd, "db") == 0)
        return cmd_db(argc - 1, argv + 1);
    if (strcmp(cmd, "listen") == 0)
        return hl_listen_main(argc - 1, argv + 1);
    if (strcmp(cmd, "verify") == 0)
        return hl_verify_main(argc - 1, argv + 1);
    if (strcmp(cmd, "extract") == 0)
        return cmd_extract(argc - 1, argv + 1);
    if (hl_cli_is_group(cmd))
        return hl_cli_main(argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("hookline %s\n", HL_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        main_help(stdout);
        return 0;
    }
    fprintf(stderr, "hookline: unknown command '%s'\n\n", cmd);
    main_help(stderr);
    return 2;
}
