/* The API client's commands: each reads its options (common/config.h), makes its requests
 * (cli/client.h) and prints the answer for people (cli/output.h) or, with --json, as it came. */
#include "cli/cli.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/client.h"
#include "cli/output.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/err.h"
#include "common/json.h"

/* The values' column in "label: value" output. */
#define COL 16

/* One run of a command. */
struct run {
    struct hl_client c;
    const struct hl_options *o;
    enum hl_cmd cmd;
    int color;
    int64_t now;
    char app[256], key[256];
};

/* ---- small helpers ---- */

static const char *str(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* A field shown as text: strings as they are, numbers, true/false, null as NULL. */
static const char *text(json_t *o, const char *key, char *buf, size_t cap)
{
    json_t *v = json_object_get(o, key);
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v))
        snprintf(buf, cap, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(buf, cap, "%.2f", json_real_value(v));
    else if (json_is_boolean(v))
        snprintf(buf, cap, "%s", json_is_true(v) ? "true" : "false");
    else
        return NULL;
    return buf;
}

/* The strings of a JSON list joined with commas (cap bytes), or NULL for anything else. */
static const char *joined(json_t *list, char *buf, size_t cap)
{
    if (!json_is_array(list))
        return NULL;
    size_t i, o = 0;
    json_t *v;
    buf[0] = '\0';
    json_array_foreach(list, i, v)
    {
        if (json_is_string(v) && o < cap)
            o += (size_t)snprintf(buf + o, cap - o, "%s%s", i ? "," : "", json_string_value(v));
    }
    return buf;
}

static void when_field(struct run *r, const char *label, json_t *o, const char *key)
{
    char w[96];
    hl_out_when_iso(str(o, key), r->now, w, sizeof(w));
    hl_out_field(stdout, COL, label, w, NULL, 0);
}

/* Prints the answer exactly as it came (--json); nothing for an empty answer (204). */
static void print_raw(const struct hl_answer *a)
{
    if (a->body.len)
        printf("%s\n", a->body.p);
}

/* A comma-separated list as a JSON array of its non-empty, trimmed items. */
static json_t *list_of(const char *s)
{
    json_t *a = json_array();
    while (s && *s) {
        size_t n = strcspn(s, ",");
        const char *b = s, *e = s + n;
        while (b < e && *b == ' ')
            b++;
        while (e > b && e[-1] == ' ')
            e--;
        if (e > b)
            json_array_append_new(a, json_stringn(b, (size_t)(e - b)));
        s += n + (s[n] == ',');
    }
    return a;
}

/* A single call whose answer is printed by show (or raw with --json). */
static int call_show(struct run *r, const char *method, const char *const *path, size_t npath,
                     json_t *body, const char *idem, void (*show)(struct run *, json_t *))
{
    struct hl_answer a;
    int rc = hl_client_call(&r->c, method, path, npath, NULL, 0, body, idem, &a);
    json_decref(body);
    if (rc != HL_EXIT_OK)
        return rc;
    if (r->o->json || !show) {
        if (r->o->json)
            print_raw(&a);
        hl_answer_free(&a);
        return HL_EXIT_OK;
    }
    json_t *v = hl_answer_json(&a);
    hl_answer_free(&a);
    if (!v)
        return HL_EXIT_REFUSED;
    show(r, v);
    json_decref(v);
    return HL_EXIT_OK;
}

/* ---- lists: one page, or every page with --all ---- */

/* Fetches the list at path (query: nq parameters, the last two left for limit and cursor) and
 * prints it with render, or raw with --json (every page's items in one list with --all). */
static int list(struct run *r, const char *const *path, size_t npath, struct hl_query *q, size_t nq,
                void (*render)(struct run *, json_t *))
{
    char limit[16], cursor[32] = "";
    snprintf(limit, sizeof(limit), "%lld", r->o->limit);
    q[nq - 2] = (struct hl_query){"limit", limit};
    q[nq - 1] = (struct hl_query){"cursor", NULL};
    json_t *all = json_array();
    int rc = HL_EXIT_OK, more = 0;
    for (;;) {
        struct hl_answer a;
        rc = hl_client_call(&r->c, "GET", path, npath, q, nq, NULL, NULL, &a);
        if (rc != HL_EXIT_OK)
            break;
        if (r->o->json && !r->o->all) {
            print_raw(&a);
            hl_answer_free(&a);
            json_decref(all);
            return HL_EXIT_OK;
        }
        json_t *page = hl_answer_json(&a);
        hl_answer_free(&a);
        json_t *data = json_object_get(page, "data");
        const char *next = str(page, "nextCursor");
        if (!json_is_array(data)) {
            json_decref(page);
            fprintf(stderr, "hookline: the server's list has no data\n");
            rc = HL_EXIT_REFUSED;
            break;
        }
        json_array_extend(all, data);
        more = next != NULL;
        if (next)
            snprintf(cursor, sizeof(cursor), "%s", next);
        json_decref(page);
        if (!more || !r->o->all)
            break;
        q[nq - 1].value = cursor;
    }
    if (rc == HL_EXIT_OK && r->o->json) {
        struct hl_buf b;
        hl_buf_init(&b, 256u << 20);
        json_t *v = json_pack("{s:O,s:n}", "data", all, "nextCursor");
        if (hl_json_write(&b, v) == HL_OK)
            printf("%s\n", b.p ? b.p : "");
        json_decref(v);
        hl_buf_free(&b);
    } else if (rc == HL_EXIT_OK) {
        if (json_array_size(all) == 0)
            printf("none\n");
        else
            render(r, all);
        if (more)
            printf("(more: --all for every page)\n");
    }
    json_decref(all);
    return rc;
}

/* Reads the JSON object that flag (--data, --filter, --headers) was given as text. Returns 0
 * with *out set (a new reference; JSON null for "none" when none_ok), or the usage error's exit
 * code. */
static int object_arg(struct run *r, const char *flag, const char *text, int none_ok, json_t **out)
{
    if (none_ok && strcmp(text, "none") == 0) {
        *out = json_null();
        return HL_EXIT_OK;
    }
    char err[200];
    json_t *v = hl_json_parse(text, strlen(text), err, sizeof(err));
    if (json_is_object(v)) {
        *out = v;
        return HL_EXIT_OK;
    }
    static const char *const kinds[] = {"an object", "an array", "a string", "a number",
                                        "a number",  "true",     "false",    "null"};
    const char *kind = v ? kinds[json_typeof(v)] : NULL;
    json_decref(v);
    if (!kind)
        return hl_usage_error(r->cmd, "--%s: not JSON: %s", flag, err);
    return hl_usage_error(r->cmd, "--%s: want a JSON object%s, not %s", flag,
                          none_ok ? " or none" : "", kind);
}

/* ---- webhooks ---- */

static const char *webhook_state(json_t *w)
{
    if (json_is_string(json_object_get(w, "disabledAt")))
        return "disabled";
    return json_is_true(json_object_get(w, "active")) ? "active" : "paused";
}

static const char *webhook_events(json_t *w, char *buf, size_t cap)
{
    json_t *types = json_object_get(w, "eventTypes");
    return json_is_array(types) ? joined(types, buf, cap)
                                : joined(json_object_get(w, "entities"), buf, cap);
}

static void render_webhooks(struct run *r, json_t *data)
{
    static const char *const head[] = {"UID", "STATE", "URL", "EVENTS", "LAST ATTEMPT"};
    struct hl_table *t = hl_table_new(5, head);
    size_t i;
    json_t *w;
    json_array_foreach(data, i, w)
    {
        char events[512], last[96];
        const char *state = webhook_state(w);
        hl_out_when_iso(str(w, "lastTriggeredAt"), r->now, last, sizeof(last));
        const char *cells[] = {str(w, "uid"), state, str(w, "url"),
                               webhook_events(w, events, sizeof(events)), last};
        const char *colors[] = {NULL, hl_out_state_color(state), NULL, NULL, NULL};
        if (t)
            hl_table_add(t, cells, colors);
    }
    if (t)
        hl_table_print(t, stdout, r->color);
    hl_table_free(t);
}

/* The filter and headers of webhook w as compact JSON, "none" when it has none. */
static void policy_fields(json_t *w)
{
    static const char *const names[] = {"filter", "headers"};
    for (int i = 0; i < 2; i++) {
        json_t *v = json_object_get(w, names[i]);
        char *text = json_is_object(v) ? json_dumps(v, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
        hl_out_field(stdout, COL, names[i], text ? text : "none", NULL, 0);
        free(text);
    }
}

static void show_webhook(struct run *r, json_t *w)
{
    char buf[512];
    const char *state = webhook_state(w);
    hl_out_field(stdout, COL, "uid", str(w, "uid"), NULL, 0);
    hl_out_field(stdout, COL, "state", state, hl_out_state_color(state), r->color);
    hl_out_field(stdout, COL, "url", str(w, "url"), NULL, 0);
    hl_out_field(stdout, COL, "entities", joined(json_object_get(w, "entities"), buf, sizeof(buf)),
                 NULL, 0);
    const char *types = joined(json_object_get(w, "eventTypes"), buf, sizeof(buf));
    hl_out_field(stdout, COL, "events", types ? types : "all of the entities'", NULL, 0);
    hl_out_field(stdout, COL, "description", str(w, "description"), NULL, 0);
    policy_fields(w); /* filter, headers (issue 19) */
    when_field(r, "created", w, "createdAt");
    when_field(r, "updated", w, "updatedAt");
    when_field(r, "last attempt", w, "lastTriggeredAt");
    when_field(r, "last success", w, "lastSuccessAt");
    when_field(r, "last failure", w, "lastFailureAt");
    if (str(w, "disabledAt")) {
        when_field(r, "disabled", w, "disabledAt");
        hl_out_field(stdout, COL, "disabled why", str(w, "disabledReason"), NULL, 0);
    }
    /* delivery policy (issue 19) */
    if (str(w, "breakerOpenedAt"))
        when_field(r, "breaker open", w, "breakerOpenedAt");
    json_t *rate = json_object_get(w, "rateLimit");
    if (json_is_integer(rate)) {
        snprintf(buf, sizeof(buf), "%lld a second", (long long)json_integer_value(rate));
        hl_out_field(stdout, COL, "rate limit", buf, NULL, 0);
    }
    if (str(w, "ordering") && strcmp(str(w, "ordering"), "none") != 0)
        hl_out_field(stdout, COL, "ordering", "per resource", NULL, 0);
    if (str(w, "secret")) {
        hl_out_field(stdout, COL, "secret", str(w, "secret"), NULL, 0);
        printf("\nThe secret is shown only now: keep it where your receiver can read it.\n");
    }
}

static int webhooks_list(struct run *r)
{
    static const char *const path[] = {"webhooks"};
    struct hl_query q[2];
    return list(r, path, 1, q, 2, render_webhooks);
}

static int webhooks_get(struct run *r)
{
    const char *path[] = {"webhooks", r->o->args[0]};
    return call_show(r, "GET", path, 2, NULL, NULL, show_webhook);
}

/* The body of a create or update from --url, --entities, --event-types, --description, --filter
 * and --headers into *out. Returns 0 or the usage error's exit code. */
static int webhook_body(struct run *r, int creating, json_t **out)
{
    const struct hl_options *o = r->o;
    json_t *b = json_object();
    if (o->url)
        json_object_set_new(b, "url", json_string(o->url));
    if (o->entities || creating)
        json_object_set_new(b, "entities",
                            list_of(o->entities ? o->entities : "agent,context,contextfile"));
    if (o->event_types)
        json_object_set_new(b, "eventTypes",
                            strcmp(o->event_types, "all") == 0 ? json_null()
                                                               : list_of(o->event_types));
    if (o->description)
        json_object_set_new(b, "description", json_string(o->description));
    /* delivery policy (issue 19) */
    const char *flags[] = {"filter", "headers"};
    const char *texts[] = {o->filter, o->headers};
    for (int i = 0; i < 2; i++) {
        json_t *v;
        int rc = texts[i] ? object_arg(r, flags[i], texts[i], 1, &v) : HL_EXIT_OK;
        if (rc != HL_EXIT_OK) {
            json_decref(b);
            return rc;
        }
        if (texts[i])
            json_object_set_new(b, flags[i], v);
    }
    *out = b;
    return HL_EXIT_OK;
}

static int webhooks_create(struct run *r)
{
    if (!r->o->url)
        return hl_usage_error(r->cmd, "--url is required: where the events go");
    static const char *const path[] = {"webhooks"};
    json_t *body;
    int rc = webhook_body(r, 1, &body);
    return rc != HL_EXIT_OK ? rc : call_show(r, "POST", path, 1, body, NULL, show_webhook);
}

static int webhooks_update(struct run *r)
{
    const struct hl_options *o = r->o;
    if (!o->url && !o->entities && !o->event_types && !o->description && !o->filter && !o->headers)
        return hl_usage_error(r->cmd, "nothing to change: give --url, --entities, --event-types, "
                                      "--description, --filter or --headers");
    const char *path[] = {"webhooks", o->args[0]};
    json_t *body;
    int rc = webhook_body(r, 0, &body);
    return rc != HL_EXIT_OK ? rc : call_show(r, "PATCH", path, 2, body, NULL, show_webhook);
}

static int webhooks_active(struct run *r, int active)
{
    const char *path[] = {"webhooks", r->o->args[0]};
    return call_show(r, "PATCH", path, 2, json_pack("{s:b}", "active", active), NULL, show_webhook);
}

static int webhooks_pause(struct run *r)
{
    return webhooks_active(r, 0);
}

static int webhooks_resume(struct run *r)
{
    return webhooks_active(r, 1);
}

static int webhooks_delete(struct run *r)
{
    const char *path[] = {"webhooks", r->o->args[0]};
    int rc = call_show(r, "DELETE", path, 2, NULL, NULL, NULL);
    if (rc == HL_EXIT_OK && !r->o->json) {
        char uid[300];
        printf("deleted %s (its pending deliveries are cancelled)\n",
               hl_out_clean(r->o->args[0], 100, uid, sizeof(uid)));
    }
    return rc;
}

static void show_rotated(struct run *r, json_t *v)
{
    char w[96];
    hl_out_field(stdout, COL, "uid", str(v, "uid"), NULL, 0);
    hl_out_field(stdout, COL, "new secret", str(v, "secret"), NULL, 0);
    hl_out_when_iso(str(v, "previousSecretExpiresAt"), r->now, w, sizeof(w));
    hl_out_field(stdout, COL, "old one until",
                 str(v, "previousSecretExpiresAt") ? w : "no longer signs", NULL, 0);
    printf("\nThe new secret is shown only now. Until then deliveries carry both signatures.\n");
}

static int webhooks_rotate(struct run *r)
{
    const char *path[] = {"webhooks", r->o->args[0], "rotate-secret"};
    json_t *body = json_pack("{s:I}", "overlapSeconds", (json_int_t)(r->o->overlap_ms / 1000));
    return call_show(r, "POST", path, 3, body, NULL, show_rotated);
}

/* ---- deliveries ---- */

/* "200", "HTTP 500", "timeout": what the last attempt came to. */
static const char *last_result(json_t *d, char *buf, size_t cap)
{
    const char *err = str(d, "lastError");
    json_t *code = json_object_get(d, "lastStatusCode");
    if (err)
        return err;
    if (json_is_integer(code)) {
        snprintf(buf, cap, "%lld", (long long)json_integer_value(code));
        return buf;
    }
    return NULL;
}

static void render_deliveries(struct run *r, json_t *data)
{
    int wide = !r->o->webhook; /* every webhook's: say whose */
    static const char *const head[] = {"ID",    "STATUS", "EVENT",   "WEBHOOK",
                                       "TRIES", "LAST",   "CREATED", "NEXT"};
    static const char *const narrow[] = {"ID",   "STATUS",  "EVENT", "TRIES",
                                         "LAST", "CREATED", "NEXT"};
    struct hl_table *t = wide ? hl_table_new(8, head) : hl_table_new(7, narrow);
    size_t i;
    json_t *d;
    json_array_foreach(data, i, d)
    {
        char tries[16], last[128], created[96], next[32] = "-";
        const char *status = str(d, "status");
        int64_t at;
        const char *na = str(d, "nextAttemptAt");
        if (na && hl_time_parse(na, strlen(na), &at) == HL_OK) {
            char span[16];
            hl_out_span(at - r->now, span, sizeof(span));
            if (at > r->now)
                snprintf(next, sizeof(next), "in %s", span);
            else
                snprintf(next, sizeof(next), "now");
        }
        hl_out_when_iso(str(d, "createdAt"), r->now, created, sizeof(created));
        const char *res = last_result(d, last, sizeof(last));
        const char *lt = text(d, "attempts", tries, sizeof(tries));
        const char *cells[] = {str(d, "id"), status, str(d, "event"), str(d, "webhookUid"),
                               lt,           res,    created,         next};
        const char *narrow_cells[] = {cells[0], cells[1], cells[2], lt, res, created, next};
        const char *colors[] = {NULL, hl_out_state_color(status), NULL, NULL, NULL, NULL, NULL,
                                NULL};
        if (t)
            hl_table_add(t, wide ? cells : narrow_cells, colors);
    }
    if (t)
        hl_table_print(t, stdout, r->color);
    hl_table_free(t);
}

/* Prints a response excerpt: up to 8 lines, each cut to 100 columns. */
static void print_excerpt(const char *resp, const char *encoding)
{
    if (!resp || !*resp) {
        printf("    response: (empty)\n");
        return;
    }
    printf("    response%s:\n", encoding ? " (base64)" : "");
    const char *p = resp;
    for (int line = 0; *p && line < 8; line++) {
        size_t n = strcspn(p, "\n");
        char raw[512], clean[1024];
        size_t k = n < sizeof(raw) - 1 ? n : sizeof(raw) - 1;
        memcpy(raw, p, k);
        raw[k] = '\0';
        if (k && raw[k - 1] == '\r')
            raw[k - 1] = '\0';
        printf("      %s\n", hl_out_clean(raw, 100, clean, sizeof(clean)));
        p += n + (p[n] == '\n');
    }
    if (*p)
        printf("      … (%zu more bytes)\n", strlen(p));
}

static void show_attempts(struct run *r, json_t *log)
{
    size_t i;
    json_t *a;
    if (!json_array_size(log)) {
        printf("\nno attempt yet\n");
        return;
    }
    printf("\nattempts (oldest first):\n");
    json_array_foreach(log, i, a)
    {
        char when[96], code[16], err[256];
        hl_out_when_iso(str(a, "startedAt"), r->now, when, sizeof(when));
        json_t *sc = json_object_get(a, "statusCode");
        if (json_is_integer(sc))
            snprintf(code, sizeof(code), "%lld", (long long)json_integer_value(sc));
        else
            snprintf(code, sizeof(code), "no answer");
        json_t *ms = json_object_get(a, "durationMs");
        int ok = json_is_integer(sc) && json_integer_value(sc) / 100 == 2;
        const char *color = r->color ? hl_out_state_color(ok ? "succeeded" : "failed") : "";
        printf("  #%zu  %s  %.2f ms  %s%s%s", i + 1, when, json_number_value(ms), color, code,
               r->color ? "\033[0m" : "");
        if (str(a, "error"))
            printf("  %s", hl_out_clean(str(a, "error"), 120, err, sizeof(err)));
        printf("\n");
        print_excerpt(str(a, "response"), str(a, "responseEncoding"));
    }
}

static void show_delivery(struct run *r, json_t *d)
{
    char buf[128];
    const char *status = str(d, "status");
    hl_out_field(stdout, COL, "id", str(d, "id"), NULL, 0);
    hl_out_field(stdout, COL, "status", status, hl_out_state_color(status), r->color);
    hl_out_field(stdout, COL, "event", str(d, "event"), NULL, 0);
    hl_out_field(stdout, COL, "event id", str(d, "eventId"), NULL, 0);
    hl_out_field(stdout, COL, "webhook", str(d, "webhookUid"), NULL, 0);
    hl_out_field(stdout, COL, "attempts", text(d, "attempts", buf, sizeof(buf)), NULL, 0);
    hl_out_field(stdout, COL, "last result", last_result(d, buf, sizeof(buf)), NULL, 0);
    when_field(r, "created", d, "createdAt");
    when_field(r, "delivered", d, "deliveredAt");
    when_field(r, "next attempt", d, "nextAttemptAt");
    show_attempts(r, json_object_get(d, "attemptLog"));
}

/* An ISO 8601 text of ms for a query or a body (buf holds HL_ISO_MAX), or NULL for 0. */
static const char *iso_or_null(int64_t ms, char *buf)
{
    if (!ms)
        return NULL;
    hl_time_iso(ms, buf);
    return buf;
}

static int deliveries_list(struct run *r)
{
    const struct hl_options *o = r->o;
    char since[HL_ISO_MAX], until[HL_ISO_MAX];
    struct hl_query q[] = {{"status", o->status},
                           {"event", o->event},
                           {"since", iso_or_null(o->since_ms, since)},
                           {"until", iso_or_null(o->until_ms, until)},
                           {0},
                           {0}};
    const char *mine[] = {"webhooks", o->webhook, "deliveries"};
    static const char *const all[] = {"deliveries"};
    return o->webhook ? list(r, mine, 3, q, 6, render_deliveries)
                      : list(r, all, 1, q, 6, render_deliveries);
}

static int deliveries_show(struct run *r)
{
    const char *path[] = {"deliveries", r->o->args[0]};
    return call_show(r, "GET", path, 2, NULL, NULL, show_delivery);
}

static void show_resent(struct run *r, json_t *d)
{
    (void)r;
    char id[64], ev[64];
    printf("queued %s again (event %s keeps its eventId); follow it with: hookline deliveries "
           "show %s\n",
           hl_out_clean(str(d, "id"), 40, id, sizeof(id)),
           hl_out_clean(str(d, "eventId"), 40, ev, sizeof(ev)), id);
}

static int deliveries_resend(struct run *r)
{
    const char *path[] = {"deliveries", r->o->args[0], "resend"};
    return call_show(r, "POST", path, 3, NULL, NULL, show_resent);
}

static void show_recovered(struct run *r, json_t *v)
{
    char uid[300];
    long long n = (long long)json_integer_value(json_object_get(v, "queued"));
    long long failed = (long long)json_integer_value(json_object_get(v, "failed"));
    long long failing = (long long)json_integer_value(json_object_get(v, "failing"));
    printf("queued %lld deliver%s of %s again (%lld failed, %lld failing)\n", n,
           n == 1 ? "y" : "ies", hl_out_clean(r->o->args[0], 100, uid, sizeof(uid)), failed,
           failing);
}

static int deliveries_recover(struct run *r)
{
    const struct hl_options *o = r->o;
    if (!o->since_ms)
        return hl_usage_error(r->cmd, "--since is required: the start of the window");
    char since[HL_ISO_MAX], until[HL_ISO_MAX];
    json_t *body = json_pack("{s:s}", "since", iso_or_null(o->since_ms, since));
    if (o->until_ms)
        json_object_set_new(body, "until", json_string(iso_or_null(o->until_ms, until)));
    const char *path[] = {"webhooks", o->args[0], "recover"};
    return call_show(r, "POST", path, 3, body, NULL, show_recovered);
}

/* ---- events ---- */

static void render_events(struct run *r, json_t *data)
{
    static const char *const head[] = {"EVENT ID", "EVENT", "TENANT", "RESOURCE", "TIME"};
    struct hl_table *t = hl_table_new(5, head);
    size_t i;
    json_t *e;
    json_array_foreach(data, i, e)
    {
        char when[96];
        json_t *d = json_object_get(e, "data");
        hl_out_when_iso(str(e, "timestamp"), r->now, when, sizeof(when));
        const char *cells[] = {str(e, "eventId"), str(e, "event"), str(d, "externalTenantId"),
                               str(d, "uid"), when};
        if (t)
            hl_table_add(t, cells, NULL);
    }
    if (t)
        hl_table_print(t, stdout, r->color);
    hl_table_free(t);
}

/* The event's data, indented, every line made clean. */
static void print_data(json_t *data)
{
    char *s = json_dumps(data, JSON_INDENT(2) | JSON_REAL_PRECISION(15) | JSON_PRESERVE_ORDER);
    printf("\ndata:\n");
    for (const char *p = s ? s : "null"; *p;) {
        size_t n = strcspn(p, "\n");
        char *line = strndup(p, n), clean[4096];
        printf("  %s\n", hl_out_clean(line ? line : "", 0, clean, sizeof(clean)));
        free(line);
        p += n + (p[n] == '\n');
    }
    free(s);
}

static void show_event(struct run *r, json_t *e)
{
    json_t *d = json_object_get(e, "data");
    hl_out_field(stdout, COL, "event id", str(e, "eventId"), NULL, 0);
    hl_out_field(stdout, COL, "event", str(e, "event"), NULL, 0);
    when_field(r, "time", e, "timestamp");
    hl_out_field(stdout, COL, "tenant", str(d, "externalTenantId"), NULL, 0);
    hl_out_field(stdout, COL, "resource", str(d, "uid"), NULL, 0);
    print_data(d);
    json_t *dl = json_object_get(e, "deliveries");
    printf("\ndeliveries:\n");
    if (json_array_size(dl))
        render_deliveries(r, dl);
    else
        printf("none (no webhook wanted it)\n");
}

static int events_list(struct run *r)
{
    const struct hl_options *o = r->o;
    char since[HL_ISO_MAX], until[HL_ISO_MAX];
    struct hl_query q[] = {{"event", o->event},
                           {"externalTenantId", o->tenant},
                           {"since", iso_or_null(o->since_ms, since)},
                           {"until", iso_or_null(o->until_ms, until)},
                           {0},
                           {0}};
    static const char *const path[] = {"events"};
    return list(r, path, 1, q, 6, render_events);
}

static int events_show(struct run *r)
{
    const char *path[] = {"events", r->o->args[0]};
    return call_show(r, "GET", path, 2, NULL, NULL, show_event);
}

static void show_published(struct run *r, json_t *v)
{
    char when[96], id[64], ev[64];
    hl_out_when_iso(str(v, "timestamp"), r->now, when, sizeof(when));
    printf("published %s (%s) at %s\n", hl_out_clean(str(v, "eventId"), 40, id, sizeof(id)),
           hl_out_clean(str(v, "event"), 40, ev, sizeof(ev)), when);
}

static int events_publish(struct run *r)
{
    const struct hl_options *o = r->o;
    if (!o->data)
        return hl_usage_error(r->cmd, "--data is required: a JSON object with uid and "
                                      "externalTenantId");
    json_t *data;
    int rc = object_arg(r, "data", o->data, 0, &data);
    if (rc != HL_EXIT_OK)
        return rc;
    json_t *body = json_pack("{s:s,s:o}", "event", o->args[0], "data", data);
    static const char *const path[] = {"events"};
    return call_show(r, "POST", path, 1, body, o->idempotency_key, show_published);
}

static int webhooks_test(struct run *r)
{
    const char *path[] = {"webhooks", r->o->args[0], "test"};
    return call_show(r, "POST", path, 3, NULL, NULL, show_delivery);
}

/* ---- the table of commands ---- */

static const struct command {
    const char *group, *name;
    enum hl_cmd cmd;
    const char *operand; /* the one operand it takes ("a webhook UID"), or NULL: none */
    int (*run)(struct run *r);
    const char *what; /* one line for the group's help */
} COMMANDS[] = {
    {"webhooks", "list", HL_CMD_WEBHOOKS_LIST, NULL, webhooks_list, "the app's webhooks"},
    {"webhooks", "get", HL_CMD_WEBHOOKS_GET, "a webhook UID", webhooks_get, "one webhook"},
    {"webhooks", "create", HL_CMD_WEBHOOKS_CREATE, NULL, webhooks_create, "register a webhook"},
    {"webhooks", "update", HL_CMD_WEBHOOKS_UPDATE, "a webhook UID", webhooks_update,
     "change a webhook"},
    {"webhooks", "pause", HL_CMD_WEBHOOKS_PAUSE, "a webhook UID", webhooks_pause,
     "stop sending to it"},
    {"webhooks", "resume", HL_CMD_WEBHOOKS_RESUME, "a webhook UID", webhooks_resume,
     "send to it again"},
    {"webhooks", "delete", HL_CMD_WEBHOOKS_DELETE, "a webhook UID", webhooks_delete,
     "delete a webhook"},
    {"webhooks", "test", HL_CMD_WEBHOOKS_TEST, "a webhook UID", webhooks_test,
     "send it a webhook.test event"},
    {"webhooks", "rotate-secret", HL_CMD_WEBHOOKS_ROTATE, "a webhook UID", webhooks_rotate,
     "give it a new signing secret"},
    {"deliveries", "list", HL_CMD_DELIVERIES_LIST, NULL, deliveries_list,
     "deliveries, newest first"},
    {"deliveries", "show", HL_CMD_DELIVERIES_SHOW, "a delivery ID", deliveries_show,
     "a delivery and its attempts"},
    {"deliveries", "resend", HL_CMD_DELIVERIES_RESEND, "a delivery ID", deliveries_resend,
     "one more attempt now"},
    {"deliveries", "recover", HL_CMD_DELIVERIES_RECOVER, "a webhook UID", deliveries_recover,
     "queue a webhook's failed deliveries again, and bring its failing ones forward"},
    {"events", "list", HL_CMD_EVENTS_LIST, NULL, events_list, "the event log, newest first"},
    {"events", "show", HL_CMD_EVENTS_SHOW, "an event ID", events_show,
     "an event and its deliveries"},
    {"events", "publish", HL_CMD_EVENTS_PUBLISH, "an event name", events_publish,
     "publish an event"},
};
#define NCOMMANDS (sizeof(COMMANDS) / sizeof(COMMANDS[0]))

int hl_cli_is_group(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(COMMANDS[i].group, name) == 0)
            return 1;
    return 0;
}

static void group_help(const char *group, FILE *f)
{
    fprintf(f, "usage: hookline %s COMMAND [options]\n\n", group);
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(COMMANDS[i].group, group) == 0)
            fprintf(f, "  %-15s %s\n", COMMANDS[i].name, COMMANDS[i].what);
    fprintf(f, "\n`hookline %s COMMAND --help` shows its options and an example.\n", group);
}

/* Reads the first line of path into out (cap bytes); 0, or HL_EIO when there is none. */
static int read_line(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return HL_EIO;
    int ok = fgets(out, (int)cap, f) != NULL;
    fclose(f);
    out[ok ? strcspn(out, "\r\n") : 0] = '\0';
    return ok && out[0] ? HL_OK : HL_EIO;
}

/* Printable ASCII without spaces: what an app uid and an API key are made of. */
static int plain(const char *s)
{
    for (; *s; s++)
        if (*s <= ' ' || *s >= 0x7f)
            return 0;
    return 1;
}

/* The app and key: the options', else those a `make run` server left in data/. */
static int who(struct run *r)
{
    static const struct {
        const char *flag, *env, *file;
    } from[] = {{"--app", "HOOKLINE_APP", "data/dev-app-uid"},
                {"--key", "HOOKLINE_API_KEY", "data/dev-api-key"}};
    const char *given[] = {r->o->app, r->o->key};
    char *dst[] = {r->app, r->key};
    for (int i = 0; i < 2; i++) {
        if (given[i])
            snprintf(dst[i], sizeof(r->app), "%s", given[i]);
        else if (read_line(from[i].file, dst[i], sizeof(r->app)) != HL_OK)
            return hl_usage_error(r->cmd,
                                  "no %s: give %s or %s (or run beside a `make run` "
                                  "server, which leaves %s)",
                                  i ? "API key" : "app", from[i].flag, from[i].env, from[i].file);
        if (!plain(dst[i]) || strlen(dst[i]) >= sizeof(r->app) - 1)
            return hl_usage_error(r->cmd, "%s: want printable ASCII without spaces",
                                  given[i] ? from[i].flag : from[i].file);
    }
    r->c.app = r->app;
    r->c.key = r->key;
    return HL_EXIT_OK;
}

static int run_command(const struct command *c, int argc, char **argv)
{
    struct hl_options o;
    struct run r = {.o = &o, .cmd = c->cmd};
    int status = hl_options_get(c->cmd, argc, argv, &o);
    if (status != HL_OPTS_RUN)
        return status;
    if (o.nargs != (c->operand ? 1 : 0))
        return c->operand ? hl_usage_error(c->cmd, "want one operand: %s", c->operand)
                          : hl_usage_error(c->cmd, "takes no operand");
    if ((status = who(&r)) != HL_EXIT_OK)
        return status;
    r.c.server = o.server;
    r.c.json = o.json;
    r.color = !o.json && hl_out_color_wanted();
    r.now = hl_now_ms();
    return c->run(&r);
}

int hl_cli_main(int argc, char **argv)
{
    const char *group = argv[0], *name = argc > 1 ? argv[1] : NULL;
    if (!name || strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 ||
        strcmp(name, "help") == 0) {
        group_help(group, name ? stdout : stderr);
        return name ? 0 : HL_EXIT_USAGE;
    }
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (strcmp(COMMANDS[i].group, group) != 0 || strcmp(COMMANDS[i].name, name) != 0)
            continue;
        curl_global_init(CURL_GLOBAL_DEFAULT);
        int rc = run_command(&COMMANDS[i], argc - 1, argv + 1);
        fflush(stdout);
        curl_global_cleanup();
        return rc;
    }
    char shown[80];
    fprintf(stderr, "hookline %s: unknown command '%s'\n\n", group,
            hl_out_clean(name, 60, shown, sizeof(shown)));
    group_help(group, stderr);
    return HL_EXIT_USAGE;
}
