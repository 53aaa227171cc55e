/* The HTTP side: libmicrohttpd glue, the router, and what handlers share.
 *
 * A request's memory (struct hl_req, its body, its response) belongs to the request and is freed
 * in one place when libmicrohttpd says the request is over.
 */
#ifndef HL_HTTP_H
#define HL_HTTP_H

#include <jansson.h>
#include <stdint.h>

#include "api/metrics.h"
#include "common/buf.h"
#include "common/str.h"
#include "store/store.h"

struct hl_http;
struct hl_api;
struct hl_req;
struct hl_resp;
struct hl_limits;
struct hl_upload;
struct hl_netlist;
struct MHD_Connection;

#define HL_MAX_BODY (1u << 20)
#define HL_MAX_SEGS 8
/* A connection with no traffic for this long is closed, so a request (an upload too) that goes
 * on sends something at least this often. A parked request (below) does not time out. */
#define HL_HTTP_IDLE_S 60

struct hl_api_config {
    int production; /* https only, address guard */
    /* Ranges production mode delivers to even so (serve --allow-network); NULL: none. */
    const struct hl_netlist *allow;
    size_t max_body;      /* request bodies above this get 413 */
    unsigned threads;     /* libmicrohttpd thread pool size (serve --threads) */
    int64_t test_wait_ms; /* how long POST /webhooks/{uid}/test waits for its attempt */
    const char *data_dir; /* uploads/ and files/ live here */
    size_t max_upload;    /* context files above this get 413 */
    /* Per app (api/limits.h); 0: no limit. */
    int64_t max_webhooks;    /* webhooks (409) */
    int64_t api_rate;        /* requests per second on this node (429) */
    int64_t api_burst;       /* requests at once above the rate */
    int64_t max_app_storage; /* bytes of context files (413) */
    /* Alerting (issue 21): the least silenceAlertSeconds, in ms; 0: 60 s. */
    int64_t silence_floor_ms;
    /* Where clients reach the server (serve --public-url), or NULL: portal links are made
     * with it and console cookies are Secure when it is https (api/session.h). */
    const char *public_url;
};

/* What the API asks of the rest of the process. main wires these in: the API includes neither
 * the ingest worker nor the dispatcher. Any of them may be NULL (the API alone, in tests). */
struct hl_api_hooks {
    /* A context file was queued for ingestion (called after its commit). */
    void (*file_queued)(void *arg);
    void *file_queued_arg;
    /* Fills this node's delivery counters for /metrics (api/metrics.h). */
    void (*delivery_counters)(void *arg, struct hl_delivery_counters *out);
    void *delivery_counters_arg;
    /* For GET /readyz: 1 when this node's dispatcher runs, else 0 with the reason in why (cap
     * bytes). NULL: the API runs without one, and is never ready. */
    int (*dispatcher_running)(void *arg, char *why, size_t cap);
    void *dispatcher_running_arg;
    /* Answers /console and everything under it (src/console, which sits beside the API and
     * uses it): rq->seg holds the path after "console", rq->url the whole path. NULL: no
     * console, /console is 404. */
    void (*console)(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs);
};

/* What handlers get: the store, the configuration and the hooks. */
struct hl_api {
    struct hl_store *store;
    struct hl_api_config cfg;
    struct hl_api_hooks hooks;
    /* The key that signs portal links and console sessions (api/session.h): read from the store,
     * where it is made once for every node, when the API's server starts. */
    uint8_t token_key[32];
    struct hl_limits *limits;            /* the per-app limits' state (NULL: none enforced here) */
    struct hl_http_metrics http_metrics; /* counted by every server on this api (metrics.h) */
};

enum hl_method { HL_GET = 1, HL_POST = 2, HL_PATCH = 4, HL_DELETE = 8, HL_PUT = 16 };

/* ---- parking: a request answered later, holding no HTTP thread meanwhile ----
 *
 * A handler that has to wait for something another thread does (the attempt of a delivery; the
 * store's group commit) parks its request with hl_req_park and returns without an answer. Its
 * connection is then suspended: no HTTP thread waits for it, so no number of parked requests
 * delays another request. It wakes when another thread calls hl_http_wake with its key, when it
 * is due for a recheck, at its deadline, or when the server stops; its park function then runs
 * on an HTTP thread and sets the answer, or parks the request again. A parked request always
 * wakes exactly once per park, and its memory stays the request's.
 */

/* Why a parked request woke. */
enum hl_wake {
    HL_WAKE_KEY = 1,  /* hl_http_wake named its key; rc is what that call passed */
    HL_WAKE_RECHECK,  /* its recheck interval passed: look again */
    HL_WAKE_DEADLINE, /* its deadline passed first */
    HL_WAKE_STOP,     /* the server is stopping: answer now */
};

/* What parked requests wait for: a kind (so that ids of different kinds never meet) and an id
 * below 2^56. A new reason to wait (the group commit's ticket, say) is a new kind. */
enum hl_park_kind {
    HL_PARK_DELIVERY = 1, /* an attempt of delivery id was recorded */
    HL_PARK_COMMIT = 2,   /* the change set of ticket id was committed, or failed (hl_req_commit) */
};
#define HL_PARK_KEY(kind, id)                                                                      \
    (((uint64_t)(kind) << 56) | ((uint64_t)(id) & ((UINT64_C(1) << 56) - 1)))
/* The id of a key made by HL_PARK_KEY. */
#define HL_PARK_ID(key) ((int64_t)((key) & ((UINT64_C(1) << 56) - 1)))

struct hl_req;
struct hl_resp;

/* Runs on an HTTP thread when rq wakes (why; rc from hl_http_wake with HL_WAKE_KEY, else 0). It
 * sets the answer in rs, or parks rq again and leaves rs alone. */
typedef void (*hl_park_fn)(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs,
                           enum hl_wake why, int rc);

/* How a request is parked. */
struct hl_park {
    uint64_t key;       /* HL_PARK_KEY(kind, id): hl_http_wake(key) wakes it */
    int64_t deadline;   /* monotonic ms (hl_mono_ms): it wakes with HL_WAKE_DEADLINE then */
    int64_t recheck_ms; /* > 0: it also wakes this often (news no waker reports, e.g. from
                           another node); 0: never */
    hl_park_fn fn;
    /* 1: it wakes by its key alone, because another thread is bound to call hl_http_wake with
     * it (the store's commit thread): no deadline, recheck or stop wakes it, and hl_http_stop
     * waits for it without a bound. */
    int key_only;
};

/* How a request under the app prefix was let in (authenticate in http.c). */
struct hl_auth {
    int session;             /* by the console's session cookie (api/session.h), not an API key */
    int read_only;           /* a read-only session: only GET and HEAD get through */
    int64_t expires_at;      /* a session's end (ms since the epoch) */
    char key_uid[HL_ID_MAX]; /* by an API key: that key's uid (a portal link it makes names it) */
};

struct hl_req {
    struct MHD_Connection *conn;
    struct hl_http *http; /* the server that took the request */
    const char *url;      /* the path as received (percent-decoded), owned by libmicrohttpd */
    enum hl_method method;
    struct hl_app app; /* the app the API key (or the session) belongs to */
    struct hl_auth auth;
    struct hl_str seg[HL_MAX_SEGS]; /* path segments after /api/v1/appuid/{appUid}/ */
    int nseg;
    struct hl_buf body;
    struct hl_upload *upload; /* a context file streaming to disk, or NULL */
    struct hl_park park;      /* how it is parked, when it is (read-only for handlers) */
    void *held;               /* what the request keeps while it is parked (hl_req_hold) */
    void (*held_free)(void *held);
};

struct hl_resp {
    int status;
    struct hl_buf body;
    const char *allow;        /* an Allow header for 405 */
    const char *content_type; /* NULL: application/json */
    struct hl_buf headers;    /* more headers (hl_resp_header), freed with the answer */
};

/* What a server answers: the API (everything but /metrics unless HL_SERVE_METRICS is given
 * too), /metrics, or both. */
enum hl_serve { HL_SERVE_API = 1, HL_SERVE_METRICS = 2 };

/* Starts a server on addr (HOST:PORT as hl_parse_listen_addr reads it) answering what serves
 * names (enum hl_serve). Every answered request is logged at info (the probes at debug): method,
 * route template, status, duration and app, never a key or a body. Returns 0; HL_ECONFLICT when
 * the address is in use; another error (logged with the reason). */
int hl_http_start(struct hl_api *api, const char *addr, unsigned serves, struct hl_http **out);
/* Stops taking new connections: from now on each is closed at once, unanswered (requests in
 * flight and the connections they came on go on). */
void hl_http_quiesce(struct hl_http *h);
/* Wakes every parked request (HL_WAKE_STOP) and lets their answers go out (bounded), finishes
 * in-flight requests, stops the server and frees it. A request waiting for its commit (a
 * key_only park) is not woken: the stop waits, without a bound, until its commit has reported
 * and it was answered. NULL is fine. */
void hl_http_stop(struct hl_http *h);
/* The port the server listens on (useful with port 0). */
uint16_t hl_http_port(const struct hl_http *h);

/* Parks rq (see above): call it from a handler, or from a park function, which then returns
 * without setting an answer. Registered at once, so a wake that comes before the handler
 * returns is not lost: the park function then runs as soon as it has. Returns 0; a key_only
 * park returns HL_EUNAVAIL instead when the server is stopping (rq is not parked: the caller
 * answers without waiting), where any other park wakes at once with HL_WAKE_STOP. */
int hl_req_park(struct hl_req *rq, const struct hl_park *p);
/* Gives rq what it keeps while parked: freed with free_fn when the request ends or another
 * hl_req_hold replaces it. */
void hl_req_hold(struct hl_req *rq, void *held, void (*free_fn)(void *held));
/* Commits ch (n changes, with idem when not NULL) while rq waits parked, its connection suspended
 * and no HTTP thread held; then runs on an HTTP thread with the outcome (rc as hl_store_commit
 * returns it) and sets the answer, so a 2xx can only follow a durable commit. ch, idem and what
 * they point to must live in what rq holds (hl_req_hold) until then. The handler returns right
 * after this call and leaves rs alone: then runs once it has returned, or (the server is
 * stopping: the commit runs on this thread) before this call returns. */
void hl_req_commit(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs,
                   const struct hl_change *ch, size_t n, const struct hl_idem *idem,
                   void (*then)(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs, int rc));
/* Wakes every request parked under key (HL_WAKE_KEY, with rc); any thread may call it. Returns
 * how many woke. */
size_t hl_http_wake(struct hl_http *h, uint64_t key, int rc);
/* Tells the server that these attempts were recorded: wakes the requests that wait for their
 * deliveries (POST /webhooks/{uid}/test). a is borrowed; any thread may call it. */
void hl_http_attempts_recorded(struct hl_http *h, const struct hl_attempt *a, size_t n);

/* Handler helpers. */

/* Sets a JSON error answer {"error":{"code","message"}}, replacing what rs held; the message is
 * cut to 511 bytes and made valid UTF-8. */
void hl_resp_error(struct hl_resp *rs, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Adds a header to the answer (name and value copied; at most 4 KiB of them in all). Returns 0
 * or HL_ETOOBIG. */
int hl_resp_header(struct hl_resp *rs, const char *name, const char *value);
/* Sets a JSON answer from a jansson value (the reference is taken over; NULL gives a 500). */
void hl_resp_json(struct hl_resp *rs, int status, json_t *v);
/* Answers a storage failure: 503 when the store is unavailable, 500 otherwise. */
void hl_resp_store_error(struct hl_resp *rs, int err);

/* Parses the request body as a JSON object. On failure sets the error answer (400/415) and
 * returns NULL. An empty body gives an empty object when allow_empty. */
json_t *hl_req_json(struct hl_req *rq, struct hl_resp *rs, int allow_empty);
/* A query argument, or NULL. */
const char *hl_req_query(struct hl_req *rq, const char *name);
/* A request header, or NULL. */
const char *hl_req_header(struct hl_req *rq, const char *name);
/* A cookie of the request, or NULL. */
const char *hl_req_cookie(struct hl_req *rq, const char *name);

/* Failed credentials (a forged, expired or used portal link, a forged session cookie, an
 * unknown key at the console's sign-in) are throttled per client address (common/throttle.h):
 * 10 at once, then one every 6 seconds. Only failures: a credential is checked first, and a
 * valid one is never refused by the throttle (behind a reverse proxy every client has the
 * proxy's address, so one attacker would otherwise lock everyone out). It limits noise (logs,
 * store lookups), not guessing: links and cookies are HMAC-SHA256 tokens and an API key holds 32
 * random bytes, which no rate of tries can find. */

/* A credential of rq failed: when its client has spent its budget of failures, sets a 429 with
 * Retry-After and returns 1 (the caller answers nothing more); else spends one failure and
 * returns 0 (the caller sets its own answer). */
int hl_req_failed(struct hl_req *rq, struct hl_resp *rs);
/* NUL-terminated copy of path segment i into out (cap bytes); returns 0 or HL_EINVAL when it
 * does not fit or holds a NUL. */
int hl_req_seg(struct hl_req *rq, int i, char *out, size_t cap);

/* Reads ?limit= (1..100, default 20) and ?cursor= (an opaque id). Sets a 422 answer and returns
 * HL_EINVAL on a bad value. */
int hl_req_page(struct hl_req *rq, struct hl_resp *rs, size_t *limit, int64_t *after);
/* Adds "data" and "nextCursor" (from last_id when the page is full, else null) to a list. */
json_t *hl_page_answer(json_t *data, size_t limit, int64_t last_id);

/* Handlers, one file per URL family. Each sets its answer in rs; one that leaves rs->status at 0
 * does not know the path, and the router answers 404. Under the app prefix rq->app is the
 * authenticated app and rq->seg the path after the prefix. */

/* /webhooks and everything under it (webhooks.c). */
void hl_api_webhooks(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs);
/* /deliveries/{id} and /deliveries/{id}/resend (deliveries.c). */
void hl_api_deliveries(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs);
/* /events and /events/{eventId} (events.c). */
void hl_api_events(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs);
/* /agents, /contexts and /contexts/{uid}/files (resources.c). */
void hl_api_resources(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs);
/* POST /portal: a signed, expiring link to the console for this app (portal.c). */
void hl_api_portal(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs);
/* GET /metrics, outside the app prefix and without a key (metrics.c). */
void hl_api_metrics(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs);
/* The files compiled into the binary (api/assets.h), without a key: /api/v1/openapi.json, the
 * API reference at /docs and the console's files under /console/ (docs.c). Returns 1 and sets the
 * answer when the path segments seg[0..n) name one, else 0 and leaves rs alone. */
int hl_api_asset(struct hl_req *rq, struct hl_resp *rs, const struct hl_str *seg, int n);
/* The same for the asset served at exactly path ("/console/"): 1 and the answer, or 0. */
int hl_api_asset_at(struct hl_req *rq, struct hl_resp *rs, const char *path);
/* Adds the headers every page and page file carries (docs.c): a strict Content-Security-Policy
 * (this origin's scripts and styles only, no inline script, no eval), never framed, no referrer. */
void hl_resp_page_headers(struct hl_resp *rs);

#endif
