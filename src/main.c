/* hookline: the command line. serve, apps, keys, listen, verify. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/http.h"
#include "api/metrics.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/err.h"
#include "common/ids.h"
#include "common/log.h"
#include "console/console.h"
#include "delivery/dispatcher.h"
#include "ingest/worker.h"
#include "receiver/listen.h"
#include "store/store.h"

static int open_store(const char *db, struct hl_store **st)
{
    char err[256];
    if (hl_store_open(db, st, err, sizeof(err))) {
        fprintf(stderr, "hookline: %s\n", err);
        return 1;
    }
    return 0;
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
    const char *sub = o.nargs ? o.args[0] : "", *db = o.database;
    int json = o.json;
    struct hl_store *st;
    if (strcmp(sub, "create") == 0) {
        if (o.nargs != 2 || !*o.args[1] || strlen(o.args[1]) >= HL_NAME_MAX)
            return hl_usage_error(HL_CMD_APPS, "apps create takes one NAME of 1 to %d bytes",
                                  HL_NAME_MAX - 1);
        if (open_store(db, &st))
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
            return hl_usage_error(HL_CMD_APPS, "apps list takes no argument");
        if (open_store(db, &st))
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
    return hl_usage_error(HL_CMD_APPS, "want apps create NAME or apps list");
}

static int cmd_keys(int argc, char **argv)
{
    struct hl_options o;
    int status = hl_options_get(HL_CMD_KEYS, argc, argv, &o);
    if (status != HL_OPTS_RUN)
        return status;
    const char *sub = o.nargs ? o.args[0] : "", *db = o.database, *arg = o.args[1];
    int json = o.json;
    struct hl_store *st;
    int rc;
    if (strcmp(sub, "create") == 0 && o.nargs == 2) {
        if (open_store(db, &st))
            return 1;
        struct hl_app app;
        struct new_key k;
        rc = hl_store_app_get(st, arg, &app);
        if (rc == HL_OK)
            rc = make_key(st, app.id, &k);
        hl_store_close(st);
        if (rc) {
            fprintf(stderr, "hookline: cannot create a key for %s: %s\n", arg,
                    rc == HL_ENOTFOUND ? "no such app" : hl_strerror(rc));
            return 1;
        }
        if (json)
            printf("{\"appUid\":\"%s\",\"apiKey\":\"%s\",\"keyId\":\"%s\"}\n", app.uid, k.key,
                   k.uid);
        else
            printf("apiKey: %s\nkeyId:  %s\n\nThe API key is shown only now.\n", k.key, k.uid);
        return 0;
    }
    if (strcmp(sub, "revoke") == 0 && o.nargs == 2) {
        if (open_store(db, &st))
            return 1;
        rc = hl_store_key_revoke(st, arg);
        hl_store_close(st);
        if (rc) {
            fprintf(stderr, "hookline: cannot revoke %s: %s\n", arg,
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
        if (open_store(db, &st))
            return 1;
        struct hl_app app = {0};
        rc = arg ? hl_store_app_get(st, arg, &app) : HL_OK;
        struct hl_api_key *keys = NULL;
        size_t n = 0;
        if (rc == HL_OK)
            rc = hl_store_key_list(st, app.id, &keys, &n);
        hl_store_close(st);
        if (rc) {
            fprintf(stderr, "hookline: cannot list keys: %s\n", hl_strerror(rc));
            return 1;
        }
        for (size_t k = 0; k < n; k++) {
            char iso[HL_ISO_MAX];
            hl_time_iso(keys[k].created_at, iso);
            if (json)
                printf("{\"keyId\":\"%s\",\"appUid\":\"%s\",\"prefix\":\"%s\","
                       "\"createdAt\":\"%s\",\"revoked\":%s}\n",
                       keys[k].uid, keys[k].app_uid, keys[k].prefix, iso,
                       keys[k].revoked_at ? "true" : "false");
            else
                printf("%s  %s  %s…  %s%s\n", keys[k].uid, keys[k].app_uid, keys[k].prefix, iso,
                       keys[k].revoked_at ? "  revoked" : "");
        }
        free(keys);
        return 0;
    }
    return hl_usage_error(HL_CMD_KEYS,
                          "want keys create APP_UID, keys revoke KEY_ID or keys list [APP_UID]");
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

/* Makes DIR/uploads and DIR/files, and removes the uploads that a crash left half-written. Nodes
 * may share DIR: a temporary file still being written (another node's upload in progress) is
 * left alone; only one that nobody has written for UPLOAD_LEFTOVER_S goes. */
static int prepare_data_dir(const char *dir)
{
    char path[PATH_MAX + 16];
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
    *out = (struct hl_delivery_counters){
        .succeeded = s.succeeded, .failed = s.failed, .inflight = s.inflight};
}

/* Turns serve's options into each part's configuration, and checks what no single option can.
 * The data directory, unless given, is the SQLite file's folder (dir, cap bytes, holds it).
 * Returns 0, or 2 after saying what is wrong. */
static int serve_config(const struct hl_options *o, struct hl_api_config *api,
                        struct hl_dispatcher_config *dc, struct hl_ingest_config *ic, char *dir,
                        size_t cap)
{
    if (o->chunk_overlap >= o->chunk_size)
        return hl_usage_error(HL_CMD_SERVE,
                              "--chunk-overlap %lld: want fewer than --chunk-size %lld",
                              o->chunk_overlap, o->chunk_size);
    const char *db = o->database, *slash = strrchr(db, '/');
    if (o->data_dir)
        snprintf(dir, cap, "%s", o->data_dir);
    else if (strncmp(db, "postgres", 8) == 0)
        snprintf(dir, cap, "data");
    else if (!slash)
        snprintf(dir, cap, ".");
    else
        snprintf(dir, cap, "%.*s", (int)(slash - db), db);
    *dc = (struct hl_dispatcher_config){.retry = o->retry,
                                        .timeout_ms = o->timeout_ms,
                                        .max_inflight = (size_t)o->max_inflight,
                                        .per_host = (long)o->per_host,
                                        .production = o->production,
                                        .allow = o->allow,
                                        .disable_after_ms = o->disable_after_ms,
                                        .lease_ms = o->lease_ms,
                                        .sweep_ms = o->sweep_ms};
    *ic = (struct hl_ingest_config){.chunk_size = (size_t)o->chunk_size,
                                    .overlap = (size_t)o->chunk_overlap,
                                    .lease_ms = o->ingest_lease_ms,
                                    .max_input = (size_t)o->max_upload};
    *api = (struct hl_api_config){.production = o->production,
                                  .max_body = HL_MAX_BODY,
                                  .threads = (unsigned)o->threads,
                                  .test_wait_ms = o->timeout_ms + 2000,
                                  .data_dir = dir,
                                  .max_upload = (size_t)o->max_upload};
    return 0;
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
    api.store = st;
    if (hl_dispatcher_start(st, &dc, &disp)) {
        fprintf(stderr, "hookline: cannot start the dispatcher\n");
        goto out;
    }
    api.hooks.delivery_counters = hook_delivery_counters;
    api.hooks.delivery_counters_arg = disp;
    api.hooks.dispatcher_running = hook_dispatcher_running;
    api.hooks.dispatcher_running_arg = disp;
    if (hl_ingest_start(st, &ic, &ingest)) {
        fprintf(stderr, "hookline: cannot start the ingest worker\n");
        goto out;
    }
    api.hooks.file_queued = hook_file_queued;
    api.hooks.file_queued_arg = ingest;
    api.hooks.console = hl_console_serve;
    if (o.metrics_listen && hl_http_start(&api, o.metrics_listen, HL_SERVE_METRICS, &metrics))
        goto out;
    if (hl_http_start(&api, o.listen, HL_SERVE_API | (metrics ? 0 : HL_SERVE_METRICS), &http))
        goto out;
    hl_dispatcher_on_recorded(disp, hook_recorded, http);
    hl_info("hookline %s listening on %s (%s mode, database %s)", HL_VERSION, o.listen,
            api.cfg.production ? "production" : "development",
            strncmp(o.database, "postgres", 8) == 0 ? "postgres" : o.database);
    if (hl_http_port(http))
        hl_info("port %u", (unsigned)hl_http_port(http));
    if (metrics)
        hl_info("/metrics on %s (port %u) only", o.metrics_listen, (unsigned)hl_http_port(metrics));
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
    hl_store_close(st);
    if (status == 0)
        hl_info("stopped");
    return status;
}

static void main_help(FILE *f)
{
    fprintf(f,
            "hookline %s: webhook delivery\n\n"
            "usage: hookline COMMAND [options]   (COMMAND --help for its options)\n\n"
            "  serve    run the API and the dispatcher\n"
            "  apps     create or list apps\n"
            "  keys     create, revoke or list API keys\n"
            "  listen   receive webhooks: verify, de-duplicate, hand on\n"
            "  verify   check one body's signature from a shell\n"
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
    if (strcmp(cmd, "listen") == 0)
        return hl_listen_main(argc - 1, argv + 1);
    if (strcmp(cmd, "verify") == 0)
        return hl_verify_main(argc - 1, argv + 1);
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
