/* libFuzzer target for the API's field checks: src/api/validate.c and the webhook, resource and
 * publish body checks built on it, driven the way a client drives them.
 *
 * The real HTTP server (hl_http_start) runs in this process on a loopback port over a real SQLite
 * store in a temporary folder, with one app, one API key and one webhook, agent, context and
 * context file to update. Each input is a request: its first byte picks the method and path
 * (create or update of a webhook, agent, context or context file, or a published event; a
 * webhook's also with the API in production mode) and the rest is the JSON body, sent by
 * libcurl with the key.
 *
 * What it proves, for any body:
 * - the answer is 2xx, or an error the contract lists (400, 409, 413, 415, 422), never a 5xx, a
 *   404 or a crash, and an error is {"error":{"code":"...","message":"..."}};
 * - a 422 names the field: its message starts with the name of a field of that endpoint or a key
 *   of the body (`entities[2] ...`, `data.uid ...` count), or is `unknown field "<key>"` for a key
 *   of the body (shown with anything but printable ASCII as '?');
 * - a refused request stores nothing (PRAGMA data_version, read on a connection of this target's
 *   own, stays where it was), while an accepted create does move it.
 * Any broken promise aborts, which libFuzzer reports as a crash. */
#include <curl/curl.h>
#include <jansson.h>
#include <openssl/sha.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/http.h"
#include "common/ids.h"
#include "common/json.h"
#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define RESPONSE_MAX (1u << 20)

static const char *const WEBHOOK_FIELDS[] = {"url", "entities", "active", "description",
                                             "eventTypes", "filter", "headers",
                                             /* alerting (issue 21) */
                                             "silenceAlertSeconds", "expectEvents",
                                             /* rateLimit, ordering (issue 19) */
                                             "rateLimit", "ordering", NULL};
static const char *const OP_WEBHOOK_FIELDS[] = {"url", "events", "active", "description", NULL};
static const char *const AGENT_FIELDS[] = {
    "agentName", "externalTenantId", "live",      "description", "instructions",
    "model",     "temperature",      "maxTokens", "metadata",    NULL};
static const char *const CONTEXT_FIELDS[] = {"name", "externalTenantId", "description", "metadata",
                                             NULL};
static const char *const FILE_FIELDS[] = {"fileName",  "externalTenantId", "contentType",
                                          "sizeBytes", "metadata",         NULL};
static const char *const EVENT_FIELDS[] = {"event", "data", NULL};

/* What an input's first byte picks: method and path (prefix, the fixture's uid, suffix). */
enum fixture { FX_NONE, FX_WEBHOOK, FX_AGENT, FX_CONTEXT, FX_FILE };
struct target {
    const char *method;
    const char *prefix; /* after /api/v1/appuid/{app}/ */
    enum fixture fx;
    const char *suffix;
    const char *const *fields;
    int production; /* the API in production mode (https only, literal addresses checked) */
};
static const struct target TARGETS[] = {
    {"POST", "webhooks", FX_NONE, "", WEBHOOK_FIELDS, 0},
    {"PATCH", "webhooks/", FX_WEBHOOK, "", WEBHOOK_FIELDS, 0},
    {"POST", "agents", FX_NONE, "", AGENT_FIELDS, 0},
    {"PATCH", "agents/", FX_AGENT, "", AGENT_FIELDS, 0},
    {"POST", "contexts", FX_NONE, "", CONTEXT_FIELDS, 0},
    {"PATCH", "contexts/", FX_CONTEXT, "", CONTEXT_FIELDS, 0},
    {"POST", "contexts/", FX_CONTEXT, "/files", FILE_FIELDS, 0},
    {"PATCH", "contexts/", FX_FILE, "", FILE_FIELDS, 0},
    {"POST", "events", FX_NONE, "", EVENT_FIELDS, 0},
    {"POST", "webhooks", FX_NONE, "", WEBHOOK_FIELDS, 1},
    {"PATCH", "webhooks/", FX_WEBHOOK, "", WEBHOOK_FIELDS, 1},
    {"POST", "operational-webhooks", FX_NONE, "", OP_WEBHOOK_FIELDS, 0},
};
#define NTARGETS (sizeof(TARGETS) / sizeof(TARGETS[0]))

static struct {
    char dir[512];
    char db[600];
    struct hl_store *st;
    struct hl_api api;
    struct hl_http *http;
    sqlite3 *watch; /* our own connection, for PRAGMA data_version */
    CURL *curl;
    char base[256];
    char auth[128];
    char uid[5][HL_ID_MAX + 64]; /* by enum fixture (FX_NONE: ""); FX_FILE: "ctx/files/file" */
    char resp[RESPONSE_MAX];
    size_t resp_len;
} g;

static void check(int ok, const char *what, const uint8_t *body, size_t len)
{
    if (ok)
        return;
    fprintf(stderr, "validate_fuzz: broken promise: %s\nbody: %.*s\nanswer: %.*s\n", what, (int)len,
            (const char *)body, (int)g.resp_len, g.resp);
    abort();
}

static size_t collect(char *p, size_t size, size_t n, void *ud)
{
    (void)ud;
    size_t len = size * n;
    if (len > RESPONSE_MAX - 1 - g.resp_len)
        return 0;
    memcpy(g.resp + g.resp_len, p, len);
    g.resp_len += len;
    return len;
}

/* Sends one request; returns the status (0 when the transfer failed). */
static long request(const char *method, const char *path, const void *body, size_t len)
{
    char url[512];
    snprintf(url, sizeof(url), "%s/%s", g.base, path);
    struct curl_slist *h = curl_slist_append(NULL, g.auth);
    h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, "Expect:");
    g.resp_len = 0;
    curl_easy_setopt(g.curl, CURLOPT_URL, url);
    curl_easy_setopt(g.curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(g.curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(g.curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(g.curl, CURLOPT_HTTPHEADER, h);
    long status = 0;
    if (curl_easy_perform(g.curl) == CURLE_OK)
        curl_easy_getinfo(g.curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    g.resp[g.resp_len] = '\0';
    return status;
}

/* Creates a fixture with a fixed valid body; copies its uid into out. */
static void fixture(const char *path, const char *body, char *out, size_t cap)
{
    long st = request("POST", path, body, strlen(body));
    json_t *v = json_loadb(g.resp, g.resp_len, 0, NULL);
    const char *uid = json_string_value(json_object_get(v, "uid"));
    check(st == 201 && uid, "a fixture is created", (const uint8_t *)body, strlen(body));
    snprintf(out, cap, "%s", uid);
    json_decref(v);
}

static long long data_version(void)
{
    sqlite3_stmt *s = NULL;
    long long v = -1;
    if (sqlite3_prepare_v2(g.watch, "PRAGMA data_version", -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

/* Removes the temporary folder at exit. The server and the store are left running (reachable
 * from g, so not leaks): stopping the server's thread first makes LeakSanitizer report the
 * per-thread random generator state OpenSSL keeps for it. */
static void cleanup(void)
{
    static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
        char p[700];
        snprintf(p, sizeof(p), "%s%s", g.db, suffix[i]);
        unlink(p);
    }
    char sub[700];
    snprintf(sub, sizeof(sub), "%s/uploads", g.dir);
    rmdir(sub);
    snprintf(sub, sizeof(sub), "%s/files", g.dir);
    rmdir(sub);
    rmdir(g.dir);
}

static void fail_init(const char *what)
{
    fprintf(stderr, "validate_fuzz: cannot start: %s\n", what);
    exit(1);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *tmp = getenv("TMPDIR");
    snprintf(g.dir, sizeof(g.dir), "%s/hookline-validate-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g.dir))
        fail_init("mkdtemp");
    snprintf(g.db, sizeof(g.db), "%s/fuzz.db", g.dir);
    char err[256] = "";
    if (hl_store_open(g.db, &g.st, err, sizeof(err)))
        fail_init(err);
    atexit(cleanup);

    struct hl_app app;
    char app_uid[HL_ID_MAX], key[64], key_uid[HL_ID_MAX];
    uint8_t hash[SHA256_DIGEST_LENGTH];
    if (hl_id_new("app-", 9, app_uid, sizeof(app_uid)) || hl_id_new("hlk_", 32, key, sizeof(key)) ||
        hl_id_new("key_", 9, key_uid, sizeof(key_uid)))
        fail_init("no randomness");
    SHA256((const unsigned char *)key, strlen(key), hash);
    if (hl_store_app_create(g.st, app_uid, "fuzz", &app) ||
        hl_store_key_create(g.st, app.id, key_uid, hash, "hlk_fuzz"))
        fail_init("app and key");

    g.api.store = g.st;
    g.api.cfg.max_body = HL_MAX_BODY;
    g.api.cfg.threads = 1;
    g.api.cfg.data_dir = g.dir;
    g.api.cfg.max_upload = 1u << 20;
    if (hl_http_start(&g.api, "127.0.0.1:0", HL_SERVE_API | HL_SERVE_METRICS, &g.http))
        fail_init("http server");
    snprintf(g.base, sizeof(g.base), "http://127.0.0.1:%u/api/v1/appuid/%s",
             (unsigned)hl_http_port(g.http), app_uid);
    snprintf(g.auth, sizeof(g.auth), "Authorization: Bearer %s", key);
    if (sqlite3_open_v2(g.db, &g.watch, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        fail_init("sqlite3_open_v2");

    curl_global_init(CURL_GLOBAL_DEFAULT);
    g.curl = curl_easy_init();
    if (!g.curl)
        fail_init("curl");
    curl_easy_setopt(g.curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(g.curl, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(g.curl, CURLOPT_NOSIGNAL, 1L);

    fixture("webhooks",
            "{\"url\":\"http://127.0.0.1:9/hook\",\"entities\":[\"agent\",\"context\"],"
            "\"active\":true}",
            g.uid[FX_WEBHOOK], sizeof(g.uid[FX_WEBHOOK]));
    fixture("agents", "{\"agentName\":\"a\",\"externalTenantId\":\"t\"}", g.uid[FX_AGENT],
            sizeof(g.uid[FX_AGENT]));
    fixture("contexts", "{\"name\":\"c\",\"externalTenantId\":\"t\"}", g.uid[FX_CONTEXT],
            sizeof(g.uid[FX_CONTEXT]));
    char path[HL_ID_MAX + 32], file[HL_ID_MAX];
    snprintf(path, sizeof(path), "contexts/%s/files", g.uid[FX_CONTEXT]);
    fixture(path, "{\"fileName\":\"f.txt\"}", file, sizeof(file));
    snprintf(g.uid[FX_FILE], sizeof(g.uid[FX_FILE]), "%s/files/%s", g.uid[FX_CONTEXT], file);
    return 0;
}

/* Whether msg starts with name[0..n) followed by something that cannot continue a name. */
static int starts_with_name(const char *msg, const char *name, size_t n)
{
    if (n == 0 || strncmp(msg, name, n) != 0)
        return 0;
    char c = msg[n];
    return c == '\0' || c == ' ' || c == '[' || c == '.' || c == ',';
}

/* Whether quoted[0..n) is key as the API shows an unknown one: at most 79 bytes, anything but
 * printable ASCII as '?'. */
static int shown_as(const char *quoted, size_t n, const char *key)
{
    size_t k = strlen(key);
    if (n != (k < 79 ? k : 79))
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)key[i];
        if (quoted[i] != (c >= 0x20 && c < 0x7f ? (char)c : '?'))
            return 0;
    }
    return 1;
}

/* Whether a 422's message names a field of the endpoint or a key of the body. */
static int names_a_field(const char *msg, json_t *body, const char *const *fields)
{
    static const char unknown[] = "unknown field \"";
    const char *key;
    json_t *v;
    if (strncmp(msg, unknown, sizeof(unknown) - 1) == 0) {
        const char *q = msg + sizeof(unknown) - 1;
        const char *end = strrchr(q, '"');
        if (!end || end[1] != '\0')
            return 0;
        json_object_foreach(body, key, v)
        {
            if (shown_as(q, (size_t)(end - q), key))
                return 1;
        }
        return 0;
    }
    for (const char *const *f = fields; *f; f++)
        if (starts_with_name(msg, *f, strlen(*f)))
            return 1;
    json_object_foreach(body, key, v)
    {
        if (starts_with_name(msg, key, strlen(key)))
            return 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const struct target *t = &TARGETS[data[0] % NTARGETS];
    const uint8_t *body = data + 1;
    size_t len = size - 1;
    char path[2 * HL_ID_MAX + 64];
    snprintf(path, sizeof(path), "%s%s%s", t->prefix, g.uid[t->fx], t->suffix);

    /* Requests go one at a time: the server reads this between them. */
    g.api.cfg.production = t->production;
    long long before = data_version();
    long status = request(t->method, path, body, len);
    check(status != 0, "the server answers", body, len);
    check(status < 500, "no 5xx", body, len);
    if (status >= 200 && status < 300) {
        /* Which shows that the watch below sees the server's commits. */
        if (strcmp(t->method, "POST") == 0)
            check(data_version() != before, "an accepted create is stored", body, len);
        return 0;
    }
    check(status == 400 || status == 409 || status == 413 || status == 415 || status == 422,
          "an error the contract lists (400, 409, 413, 415, 422)", body, len);
    check(data_version() == before, "a refused request stores nothing", body, len);

    json_t *answer = json_loadb(g.resp, g.resp_len, 0, NULL);
    json_t *err = json_object_get(answer, "error");
    const char *code = json_string_value(json_object_get(err, "code"));
    const char *msg = json_string_value(json_object_get(err, "message"));
    check(code && *code && msg && *msg, "an error is {\"error\":{\"code\",\"message\"}}", body,
          len);
    if (status == 422) {
        json_t *sent = hl_json_parse((const char *)body, len, NULL, 0); /* as the server read it */
        check(json_is_object(sent), "a 422 answers a JSON object", body, len);
        check(names_a_field(msg, sent, t->fields), "a 422 names a field", body, len);
        json_decref(sent);
    }
    json_decref(answer);
    return 0;
}
