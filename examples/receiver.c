/* The guide's "Complete Working Example" in C: libmicrohttpd serves HTTP, libhookline verifies
 * and parses. It verifies the raw body, answers 200 at once, and processes each event on a
 * worker thread, only once per eventId.
 *
 *   cc receiver.c $(pkg-config --cflags --libs hookline libmicrohttpd) -lpthread -o receiver
 *   MINDSET_WEBHOOK_SECRET=whsec_... ./receiver 3000
 *
 * It listens on 127.0.0.1 (put your HTTPS reverse proxy in front of it) at /webhooks/mindset.
 */
#include <hookline/verify.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATH "/webhooks/mindset"
#define MAX_BODY (1u << 20)
#define QUEUE_MAX 256 /* events received but not yet processed */
#define SEEN_MAX 4096 /* eventIds remembered (in memory here; keep them in your database) */

static const char *webhook_secret;

/* ---- Process asynchronously: a queue, one worker thread, idempotency on eventId ---- */

static struct hookline_envelope queue[QUEUE_MAX];
static size_t q_head, q_len;
static int stopping;
static pthread_mutex_t q_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_cond = PTHREAD_COND_INITIALIZER;

/* Queues an event for the worker; 0 when the queue is full. */
static int enqueue(const struct hookline_envelope *ev)
{
    pthread_mutex_lock(&q_mu);
    int ok = q_len < QUEUE_MAX;
    if (ok) {
        queue[(q_head + q_len++) % QUEUE_MAX] = *ev;
        pthread_cond_signal(&q_cond);
    }
    pthread_mutex_unlock(&q_mu);
    return ok;
}

static char seen[SEEN_MAX][HOOKLINE_FIELD_MAX];
static size_t seen_next;

static int is_event_processed(const char *event_id)
{
    for (size_t i = 0; i < SEEN_MAX; i++)
        if (strcmp(seen[i], event_id) == 0)
            return 1;
    return 0;
}

static void mark_event_processed(const char *event_id)
{
    snprintf(seen[seen_next], HOOKLINE_FIELD_MAX, "%s", event_id);
    seen_next = (seen_next + 1) % SEEN_MAX;
}

/* Your work goes here: update your database, notify, trigger workflows... */
static void process_webhook(const struct hookline_envelope *ev)
{
    if (is_event_processed(ev->event_id)) {
        printf("Event %s already processed\n", ev->event_id);
        fflush(stdout);
        return;
    }
    /* "" when the event has no tenant: webhook.test's externalTenantId is null */
    const char *tenant = ev->external_tenant_id[0] ? ev->external_tenant_id : "(none)";
    if (strcmp(ev->event, "webhook.test") == 0)
        printf("Test event %s received: this endpoint works\n", ev->event_id);
    else if (strcmp(ev->event, "agent.created") == 0)
        printf("Processing agent.created for tenant %s: agent %s (%s)\n", tenant, ev->data_uid,
               ev->event_id);
    else
        printf("Processing %s for tenant %s (%s)\n", ev->event, tenant, ev->event_id);
    fflush(stdout);
    mark_event_processed(ev->event_id);
}

static void *worker(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&q_mu);
        while (q_len == 0 && !stopping)
            pthread_cond_wait(&q_cond, &q_mu);
        if (q_len == 0) {
            pthread_mutex_unlock(&q_mu);
            return NULL;
        }
        struct hookline_envelope ev = queue[q_head];
        q_head = (q_head + 1) % QUEUE_MAX;
        q_len--;
        pthread_mutex_unlock(&q_mu);
        process_webhook(&ev);
    }
}

/* ---- The endpoint ---- */

struct request {
    char *body;
    size_t len;
    int too_big;
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *json)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(json), (void *)json, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static const char *header(struct MHD_Connection *conn, const char *name)
{
    return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    (void)cls;
    (void)version;
    struct request *req = *con_cls;
    if (!req) {
        if (strcmp(method, "POST") != 0 || strcmp(url, PATH) != 0)
            return reply(conn, 404, "{\"error\":\"Not found\"}");
        *con_cls = req = calloc(1, sizeof(*req));
        return req ? MHD_YES : MHD_NO;
    }
    if (*upload_size) { /* collect the raw body: the signature is over these exact bytes */
        if (req->len + *upload_size > MAX_BODY) {
            req->too_big = 1;
        } else if (!req->too_big) {
            char *p = realloc(req->body, req->len + *upload_size);
            if (!p)
                return MHD_NO;
            memcpy(p + req->len, upload_data, *upload_size);
            req->body = p;
            req->len += *upload_size;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (req->too_big)
        return reply(conn, 413, "{\"error\":\"Payload too large\"}");

    /* 1. Verify the signature, and that it is not a replay of an old request: the Standard
     *    Webhooks headers with their signed send time, or X-Webhook-Signature (or, during a
     *    secret rotation, -Previous) with the event's own signed timestamp, within 5 minutes. */
    struct hookline_headers h = {
        .signature = header(conn, "X-Webhook-Signature"),
        .signature_previous = header(conn, "X-Webhook-Signature-Previous"),
        .webhook_id = header(conn, "webhook-id"),
        .webhook_timestamp = header(conn, "webhook-timestamp"),
        .webhook_signature = header(conn, "webhook-signature"),
    };
    int rc = hookline_verify_request(webhook_secret, &h, req->body, req->len, 0, 0);
    if (rc != HOOKLINE_OK) {
        fprintf(stderr, "Rejected a request: %s\n", hookline_strerror(rc));
        return reply(conn, 401, "{\"error\":\"Invalid signature\"}");
    }

    /* 2. Parse and respond quickly. */
    struct hookline_envelope ev;
    if (hookline_parse_envelope(req->body, req->len, &ev) != HOOKLINE_OK)
        return reply(conn, 400, "{\"error\":\"Invalid event\"}");

    /* 3. The worker processes it asynchronously (when the queue is full, a 503 makes the
     *    sender retry later). */
    if (!enqueue(&ev))
        return reply(conn, 503, "{\"error\":\"Busy\"}");
    return reply(conn, 200, "{\"received\":true}");
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    struct request *req = *con_cls;
    if (req) {
        free(req->body);
        free(req);
        *con_cls = NULL;
    }
}

int main(int argc, char **argv)
{
    webhook_secret = getenv("MINDSET_WEBHOOK_SECRET");
    char *end = NULL;
    long port = argc > 1 ? strtol(argv[1], &end, 10) : 3000;
    if (!webhook_secret || !*webhook_secret || (end && *end) || port <= 0 || port > 65535) {
        fprintf(stderr, "usage: MINDSET_WEBHOOK_SECRET=whsec_... %s [PORT]\n", argv[0]);
        return 2;
    }
    /* SIGINT/SIGTERM are taken by sigwait below, not by the server's threads. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    pthread_t thread;
    if (pthread_create(&thread, NULL, worker, NULL) != 0)
        return 1;
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct MHD_Daemon *d =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, (uint16_t)port, NULL,
                         NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
    if (d) {
        printf("Webhook server running on port %ld\n", port);
        fflush(stdout);
        int sig;
        sigwait(&stop, &sig);
        MHD_stop_daemon(d);
    }
    pthread_mutex_lock(&q_mu);
    stopping = 1; /* the worker finishes what is queued, then ends */
    pthread_cond_signal(&q_cond);
    pthread_mutex_unlock(&q_mu);
    pthread_join(thread, NULL);
    return d ? 0 : 1;
}
