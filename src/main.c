/* hookline: the command line. serve, apps, keys, listen, verify. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/http.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/err.h"
#include "common/ids.h"
#include "common/log.h"
#include "delivery/dispatcher.h"
#include "delivery/retry.h"
#include "delivery/target.h"
#include "ingest/worker.h"
#include "receiver/listen.h"
#include "store/store.h"

#define DEFAULT_DB "data/hookline.db"

static const char *env_or(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v && *v ? v : def;
}

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

static void usage_db(FILE *f)
{
    fprintf(f, "  --database PATH|URL   SQLite file or postgres:// URL "
               "(HOOKLINE_DATABASE, default " DEFAULT_DB ")\n"
               "  --json                machine-readable output\n"
               "  --help                this text\n");
}

/* Reads the common --database/--json/--help options; returns the index of the first operand,
 * -1 to exit 0 (help shown) or -2 on a usage error. */
static int common_opts(int argc, char **argv, const char **db, int *json, void (*help)(FILE *))
{
    static const struct option opts[] = {{"database", required_argument, NULL, 'd'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    *db = env_or("HOOKLINE_DATABASE", DEFAULT_DB);
    *json = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "d:jh", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            *db = optarg;
            break;
        case 'j':
            *json = 1;
            break;
        case 'h':
            help(stdout);
            return -1;
        default:
            help(stderr);
            return -2;
        }
    }
    return optind;
}

static void apps_help(FILE *f)
{
    fprintf(f, "usage: hookline apps create NAME [options]\n"
               "       hookline apps list [options]\n\n"
               "Creates an app (printing its appUid and a first API key, once) or lists apps.\n\n");
    usage_db(f);
}

static int cmd_apps(int argc, char **argv)
{
    const char *db;
    int json;
    int i = common_opts(argc, argv, &db, &json, apps_help);
    if (i < 0)
        return i == -1 ? 0 : 2;
    if (i >= argc) {
        apps_help(stderr);
        return 2;
    }
    const char *sub = argv[i];
    struct hl_store *st;
    if (strcmp(sub, "create") == 0) {
        if (i + 2 != argc || !*argv[i + 1] || strlen(argv[i + 1]) >= HL_NAME_MAX) {
            apps_help(stderr);
            return 2;
        }
        if (open_store(db, &st))
            return 1;
        struct hl_app app;
        struct new_key k;
        int rc = create_app(st, argv[i + 1], &app, &k);
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
        if (i + 1 != argc) {
            apps_help(stderr);
            return 2;
        }
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
    apps_help(stderr);
    return 2;
}

static void keys_help(FILE *f)
{
    fprintf(f, "usage: hookline keys create APP_UID [options]\n"
               "       hookline keys revoke KEY_ID [options]\n"
               "       hookline keys list [APP_UID] [options]\n\n"
               "Creates an API key for an app (shown once), revokes one, or lists them.\n\n");
    usage_db(f);
}

static int cmd_keys(int argc, char **argv)
{
    const char *db;
    int json;
    int i = common_opts(argc, argv, &db, &json, keys_help);
    if (i < 0)
        return i == -1 ? 0 : 2;
    if (i >= argc) {
        keys_help(stderr);
        return 2;
    }
    const char *sub = argv[i];
    struct hl_store *st;
    int rc;
    if (strcmp(sub, "create") == 0 && i + 2 == argc) {
        if (open_store(db, &st))
            return 1;
        struct hl_app app;
        struct new_key k;
        rc = hl_store_app_get(st, argv[i + 1], &app);
        if (rc == HL_OK)
            rc = make_key(st, app.id, &k);
        hl_store_close(st);
        if (rc) {
            fprintf(stderr, "hookline: cannot create a key for %s: %s\n", argv[i + 1],
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
    if (strcmp(sub, "revoke") == 0 && i + 2 == argc) {
        if (open_store(db, &st))
            return 1;
        rc = hl_store_key_revoke(st, argv[i + 1]);
        hl_store_close(st);
        if (rc) {
            fprintf(stderr, "hookline: cannot revoke %s: %s\n", argv[i + 1],
                    rc == HL_ENOTFOUND ? "no such key, or already revoked" : hl_strerror(rc));
            return 1;
        }
        if (json)
            printf("{\"keyId\":\"%s\",\"revoked\":true}\n", argv[i + 1]);
        else
            printf("revoked %s\n", argv[i + 1]);
        return 0;
    }
    if (strcmp(sub, "list") == 0 && i + 2 >= argc) {
        if (open_store(db, &st))
            return 1;
        struct hl_app app = {0};
        rc = i + 1 < argc ? hl_store_app_get(st, argv[i + 1], &app) : HL_OK;
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
    keys_help(stderr);
    return 2;
}

/* ---- serve ---- */

static void serve_help(FILE *f)
{
    fprintf(f,
            "usage: hookline serve [options]\n\n"
            "Runs the API, the dispatcher and the ingest worker.\n\n"
            "  --listen ADDR:PORT      HOOKLINE_LISTEN, default 127.0.0.1:8080\n"
            "  --database PATH|URL     HOOKLINE_DATABASE, default " DEFAULT_DB "\n"
            "  --mode MODE             development|production (HOOKLINE_MODE, default "
            "development)\n"
            "  --retry-schedule LIST   HOOKLINE_RETRY_SCHEDULE, default "
            "\"0,5s,5m,30m,2h,5h,10h,10h\"\n"
            "  --timeout DURATION      per attempt, connect and answer (HOOKLINE_TIMEOUT, "
            "default 5s)\n"
            "  --disable-after DURATION  disable a webhook failing that long "
            "(HOOKLINE_DISABLE_AFTER, default 5d; 0 never)\n"
            "  --allow-network CIDR    reachable in production even if private (repeatable; "
            "HOOKLINE_ALLOW_NETWORK, comma-separated)\n"
            "  --threads N             HTTP worker threads (HOOKLINE_THREADS, default 128)\n"
            "  --max-inflight N        concurrent deliveries (HOOKLINE_MAX_INFLIGHT, default "
            "256)\n"
            "  --per-host N            attempts in flight per receiving host, and per webhook\n"
            "                          (HOOKLINE_PER_HOST, default 32)\n"
            "  --data-dir DIR          uploaded files (HOOKLINE_DATA_DIR, default: the SQLite "
            "file's folder, or ./data)\n"
            "  --max-upload BYTES      largest context file (HOOKLINE_MAX_UPLOAD, default "
            "52428800)\n"
            "  --chunk-size N          characters per passage (HOOKLINE_CHUNK_SIZE, default 1000)\n"
            "  --chunk-overlap N       characters shared by passages (HOOKLINE_CHUNK_OVERLAP, "
            "default 200)\n"
            "  --log-level LEVEL       debug|info|warn|error (HOOKLINE_LOG_LEVEL, default info)\n"
            "  --help                  this text\n");
}

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

/* Makes DIR/uploads and DIR/files, and removes uploads a crash left half-written. */
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
    while (d && (e = readdir(d))) {
        if (strncmp(e->d_name, "upload-", 7) == 0) {
            char f[PATH_MAX + 300];
            snprintf(f, sizeof(f), "%s/%s", path, e->d_name);
            unlink(f);
        }
    }
    if (d)
        closedir(d);
    return 0;
}

static int cmd_serve(int argc, char **argv)
{
    static const struct option opts[] = {{"listen", required_argument, NULL, 'l'},
                                         {"database", required_argument, NULL, 'd'},
                                         {"mode", required_argument, NULL, 'm'},
                                         {"retry-schedule", required_argument, NULL, 'r'},
                                         {"timeout", required_argument, NULL, 'T'},
                                         {"disable-after", required_argument, NULL, 'D'},
                                         {"allow-network", required_argument, NULL, 'a'},
                                         {"threads", required_argument, NULL, 't'},
                                         {"max-inflight", required_argument, NULL, 'i'},
                                         {"per-host", required_argument, NULL, 'p'},
                                         {"log-level", required_argument, NULL, 'L'},
                                         {"data-dir", required_argument, NULL, 'X'},
                                         {"max-upload", required_argument, NULL, 'U'},
                                         {"chunk-size", required_argument, NULL, 'C'},
                                         {"chunk-overlap", required_argument, NULL, 'O'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *listen = env_or("HOOKLINE_LISTEN", "127.0.0.1:8080");
    const char *db = env_or("HOOKLINE_DATABASE", DEFAULT_DB);
    const char *mode = env_or("HOOKLINE_MODE", "development");
    const char *schedule = env_or("HOOKLINE_RETRY_SCHEDULE", NULL);
    const char *timeout = env_or("HOOKLINE_TIMEOUT", "5s");
    const char *disable = env_or("HOOKLINE_DISABLE_AFTER", "5d");
    const char *threads = env_or("HOOKLINE_THREADS", "128");
    const char *inflight = env_or("HOOKLINE_MAX_INFLIGHT", "256");
    const char *perhost = env_or("HOOKLINE_PER_HOST", "32");
    const char *level = env_or("HOOKLINE_LOG_LEVEL", "info");
    const char *data_dir = env_or("HOOKLINE_DATA_DIR", NULL);
    const char *max_upload = env_or("HOOKLINE_MAX_UPLOAD", "52428800");
    const char *chunk_size = env_or("HOOKLINE_CHUNK_SIZE", "1000");
    const char *chunk_overlap = env_or("HOOKLINE_CHUNK_OVERLAP", "200");
    struct hl_dispatcher_config dc;
    hl_dispatcher_config_default(&dc);
    const char *allow_env = env_or("HOOKLINE_ALLOW_NETWORK", NULL);
    if (allow_env && hl_netlist_add_list(&dc.allow, allow_env)) {
        fprintf(stderr, "hookline: HOOKLINE_ALLOW_NETWORK: not a list of CIDR ranges\n");
        return 2;
    }
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'l':
            listen = optarg;
            break;
        case 'd':
            db = optarg;
            break;
        case 'm':
            mode = optarg;
            break;
        case 'r':
            schedule = optarg;
            break;
        case 'T':
            timeout = optarg;
            break;
        case 'D':
            disable = optarg;
            break;
        case 'a':
            if (hl_netlist_add_list(&dc.allow, optarg)) {
                fprintf(stderr, "hookline: --allow-network %s: not a CIDR range\n", optarg);
                return 2;
            }
            break;
        case 't':
            threads = optarg;
            break;
        case 'i':
            inflight = optarg;
            break;
        case 'p':
            perhost = optarg;
            break;
        case 'L':
            level = optarg;
            break;
        case 'X':
            data_dir = optarg;
            break;
        case 'U':
            max_upload = optarg;
            break;
        case 'C':
            chunk_size = optarg;
            break;
        case 'O':
            chunk_overlap = optarg;
            break;
        case 'h':
            serve_help(stdout);
            return 0;
        default:
            serve_help(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        serve_help(stderr);
        return 2;
    }
    struct hl_api api = {0};
    if (strcmp(mode, "production") == 0) {
        api.cfg.production = 1;
    } else if (strcmp(mode, "development") != 0) {
        fprintf(stderr, "hookline: --mode must be development or production\n");
        return 2;
    }
    if (strcmp(level, "debug") == 0)
        hl_log_set_level(HL_LOG_DEBUG);
    else if (strcmp(level, "warn") == 0)
        hl_log_set_level(HL_LOG_WARN);
    else if (strcmp(level, "error") == 0)
        hl_log_set_level(HL_LOG_ERROR);
    else if (strcmp(level, "info") != 0) {
        fprintf(stderr, "hookline: --log-level must be debug, info, warn or error\n");
        return 2;
    }
    long long v;
    if (hl_parse_int(threads, 1, 256, &v)) {
        fprintf(stderr, "hookline: --threads must be 1..256\n");
        return 2;
    }
    api.cfg.threads = (unsigned)v;
    if (hl_parse_int(inflight, 1, 65536, &v)) {
        fprintf(stderr, "hookline: --max-inflight must be 1..65536\n");
        return 2;
    }
    dc.max_inflight = (size_t)v;
    if (hl_parse_int(perhost, 1, 4096, &v)) {
        fprintf(stderr, "hookline: --per-host must be 1..4096\n");
        return 2;
    }
    dc.per_host = (long)v;
    if (schedule && hl_retry_parse(schedule, &dc.retry)) {
        fprintf(stderr, "hookline: --retry-schedule: want a list like 0,5s,5m,30m,2h\n");
        return 2;
    }
    if (hl_parse_duration(timeout, &dc.timeout_ms) || dc.timeout_ms < 1) {
        fprintf(stderr, "hookline: --timeout: want a duration like 5s or 500ms\n");
        return 2;
    }
    if (hl_parse_duration(disable, &dc.disable_after_ms)) {
        fprintf(stderr, "hookline: --disable-after: want a duration like 5d, 1h or 0\n");
        return 2;
    }
    dc.production = api.cfg.production;
    api.cfg.test_wait_ms = dc.timeout_ms + 2000;
    const char *lease = env_or("HOOKLINE_LEASE", NULL);
    if (lease && (hl_parse_duration(lease, &dc.lease_ms) || dc.lease_ms < 1000)) {
        fprintf(stderr, "hookline: HOOKLINE_LEASE: want a duration of at least 1s\n");
        return 2;
    }
    api.cfg.max_body = HL_MAX_BODY;
    if (hl_parse_int(max_upload, 1, 1LL << 40, &v)) {
        fprintf(stderr, "hookline: --max-upload must be a number of bytes\n");
        return 2;
    }
    api.cfg.max_upload = (size_t)v;
    struct hl_ingest_config ic;
    hl_ingest_config_default(&ic);
    long long ov;
    if (hl_parse_int(chunk_size, 1, 1 << 20, &v) || hl_parse_int(chunk_overlap, 0, v - 1, &ov)) {
        fprintf(stderr, "hookline: --chunk-size must be 1..1048576 and --chunk-overlap below "
                        "it\n");
        return 2;
    }
    ic.chunk_size = (size_t)v;
    ic.max_input = api.cfg.max_upload;
    ic.overlap = (size_t)ov;
    const char *ingest_lease = env_or("HOOKLINE_INGEST_LEASE", NULL);
    if (ingest_lease && (hl_parse_duration(ingest_lease, &ic.lease_ms) || ic.lease_ms < 1000)) {
        fprintf(stderr, "hookline: HOOKLINE_INGEST_LEASE: want a duration of at least 1s\n");
        return 2;
    }
    char dirbuf[PATH_MAX];
    if (!data_dir) {
        const char *slash = strrchr(db, '/');
        if (strncmp(db, "postgres", 8) == 0)
            data_dir = "data";
        else if (!slash)
            data_dir = ".";
        else {
            snprintf(dirbuf, sizeof(dirbuf), "%.*s", (int)(slash - db), db);
            data_dir = dirbuf;
        }
    }
    api.cfg.data_dir = data_dir;
    if (prepare_data_dir(data_dir))
        return 1;

    /* Signals are taken by sigwait below, not by whichever thread they land on. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct hl_store *st;
    if (open_store(db, &st))
        return 1;
    /* One serving process per SQLite file: a second one would drop the first one's leases. */
    char lock_err[512];
    if (hl_store_lock(st, lock_err, sizeof(lock_err))) {
        fprintf(stderr, "hookline: %s\n", lock_err);
        hl_store_close(st);
        return 1;
    }
    if (!api.cfg.production && dev_bootstrap(st, data_dir)) {
        fprintf(stderr, "hookline: could not create the development app\n");
        hl_store_close(st);
        return 1;
    }
    api.store = st;
    struct hl_dispatcher *disp = NULL;
    if (hl_dispatcher_start(st, &dc, &disp)) {
        fprintf(stderr, "hookline: cannot start the dispatcher\n");
        hl_store_close(st);
        return 1;
    }
    api.dispatcher = disp;
    struct hl_ingest *ingest = NULL;
    if (hl_ingest_start(st, &ic, &ingest)) {
        fprintf(stderr, "hookline: cannot start the ingest worker\n");
        hl_dispatcher_stop(disp);
        hl_store_close(st);
        return 1;
    }
    api.ingest = ingest;
    struct hl_http *http;
    if (hl_http_start(&api, listen, &http)) {
        hl_ingest_stop(ingest);
        hl_dispatcher_stop(disp);
        hl_store_close(st);
        return 1;
    }
    hl_info("hookline %s listening on %s (%s mode, database %s)", HL_VERSION, listen,
            api.cfg.production ? "production" : "development",
            strncmp(db, "postgres", 8) == 0 ? "postgres" : db);
    if (hl_http_port(http))
        hl_info("port %u", (unsigned)hl_http_port(http));
    int sig = 0;
    sigwait(&set, &sig);
    hl_info("signal %d: stopping (finishing requests in flight)", sig);
    hl_http_quiesce(http);
    hl_http_stop(http);
    hl_ingest_stop(ingest);
    hl_dispatcher_stop(disp);
    hl_store_close(st);
    hl_info("stopped");
    return 0;
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
