/* /agents, /contexts, /contexts/{uid}/files: the resources whose changes fire events.
 *
 * Every change commits with its event and deliveries in one transaction (api/publish.h; the
 * request waits for it parked, holding no HTTP thread), and the event's `data` is the resource's
 * stored JSON, byte for byte.
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/http.h"
#include "api/limits.h"
#include "api/publish.h"
#include "api/upload.h"
#include "api/validate.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/ids.h"
#include "common/json.h"
#include "events/timestamp.h"

enum ftype { F_STR, F_STR_NULL, F_BOOL, F_NUM_NULL, F_INT, F_OBJ_NULL, F_SERVER };

struct field {
    const char *name;
    enum ftype type;
    int required;
    size_t max;    /* strings: bytes */
    double lo, hi; /* numbers */
    int immutable; /* set on create only */
};

struct kind {
    enum hl_entity entity;
    const char *path;   /* "agents" */
    const char *prefix; /* uid prefix */
    const char *noun;   /* for messages */
    const struct field *fields;
};

static const struct field AGENT_FIELDS[] = {
    {"agentName", F_STR, 1, 256, 0, 0, 0},
    {"externalTenantId", F_STR, 1, HL_MAX_TENANT, 0, 0, 1},
    {"live", F_BOOL, 0, 0, 0, 0, 0},
    {"description", F_STR_NULL, 0, 4096, 0, 0, 0},
    {"instructions", F_STR_NULL, 0, 100000, 0, 0, 0},
    {"model", F_STR_NULL, 0, 256, 0, 0, 0},
    {"temperature", F_NUM_NULL, 0, 0, 0, 2, 0},
    {"maxTokens", F_NUM_NULL, 0, 0, 1, 10000000, 0},
    {"metadata", F_OBJ_NULL, 0, 0, 0, 0, 0},
    {NULL, 0, 0, 0, 0, 0, 0},
};

static const struct field CONTEXT_FIELDS[] = {
    {"name", F_STR, 1, 256, 0, 0, 0},
    {"externalTenantId", F_STR, 1, HL_MAX_TENANT, 0, 0, 1},
    {"description", F_STR_NULL, 0, 4096, 0, 0, 0},
    {"metadata", F_OBJ_NULL, 0, 0, 0, 0, 0},
    {NULL, 0, 0, 0, 0, 0, 0},
};

static const struct field FILE_FIELDS[] = {
    {"fileName", F_STR, 1, HL_MAX_FILE_NAME, 0, 0, 0},
    {"externalTenantId", F_STR, 0, HL_MAX_TENANT, 0, 0, 1},
    {"contentType", F_STR, 0, HL_MAX_CONTENT_TYPE, 0, 0, 0},
    {"sizeBytes", F_INT, 0, 0, 0, 1e15, 0},
    {"metadata", F_OBJ_NULL, 0, 0, 0, 0, 0},
    {"processingStatus", F_SERVER, 0, 0, 0, 0, 0},
    {"processingError", F_SERVER, 0, 0, 0, 0, 0},
    {"processingStartedAt", F_SERVER, 0, 0, 0, 0, 0},
    {"processingCompletedAt", F_SERVER, 0, 0, 0, 0, 0},
    {"sha256", F_SERVER, 0, 0, 0, 0, 0},
    {"pageCount", F_SERVER, 0, 0, 0, 0, 0},
    {"wordCount", F_SERVER, 0, 0, 0, 0, 0},
    {"chunkCount", F_SERVER, 0, 0, 0, 0, 0},
    {NULL, 0, 0, 0, 0, 0, 0},
};

static const struct kind AGENT = {HL_ENT_AGENT, "agents", "agent-", "agent", AGENT_FIELDS};
static const struct kind CONTEXT = {HL_ENT_CONTEXT, "contexts", "context-", "context",
                                    CONTEXT_FIELDS};
static const struct kind FILEK = {HL_ENT_CONTEXTFILE, "files", "file-", "context file",
                                  FILE_FIELDS};

/* The processingStatus of a context file registered by its JSON metadata, until its bytes come
 * (PUT .../files/{uid}/content); they then go pending -> processing -> completed | failed. */
#define AWAITING_UPLOAD "awaiting_upload"

/* The default of a field nobody set. */
static json_t *field_default(const struct kind *k, const struct field *f)
{
    if (f->type == F_BOOL)
        return json_false();
    if (f->type == F_INT)
        return json_integer(0);
    if (k == &FILEK && strcmp(f->name, "contentType") == 0)
        return json_string("application/octet-stream");
    if (k == &FILEK && strcmp(f->name, "processingStatus") == 0)
        return json_string("pending");
    return json_null();
}

/* Checks one client-set value. Sets a 422 naming the field on failure. */
static int check_value(const struct field *f, json_t *v, struct hl_resp *rs)
{
    switch (f->type) {
    case F_STR:
    case F_STR_NULL:
        if (json_is_null(v) && f->type == F_STR_NULL)
            return HL_OK;
        if (!json_is_string(v))
            return hl_resp_error(rs, 422, "field_not_string", "%s must be a string%s", f->name,
                                 f->type == F_STR_NULL ? " or null" : ""),
                   HL_EINVAL;
        if (f->type == F_STR && f->required && json_string_length(v) == 0)
            return hl_resp_error(rs, 422, "field_empty", "%s must not be empty", f->name),
                   HL_EINVAL;
        /* fileName, externalTenantId, contentType: the rule every path shares. */
        const struct hl_text_rule *rule = hl_text_rule_find(f->name);
        if (rule)
            return hl_check_text(rule, json_string_value(v), json_string_length(v), rs);
        if (json_string_length(v) > f->max)
            return hl_resp_error(rs, 422, "field_too_long", "%s must be at most %zu bytes", f->name,
                                 f->max),
                   HL_EINVAL;
        return HL_OK;
    case F_BOOL:
        if (!json_is_boolean(v))
            return hl_resp_error(rs, 422, "field_not_boolean", "%s must be true or false", f->name),
                   HL_EINVAL;
        return HL_OK;
    case F_NUM_NULL:
    case F_INT:
        if (json_is_null(v) && f->type == F_NUM_NULL)
            return HL_OK;
        if (!json_is_number(v) || (f->type == F_INT && !json_is_integer(v)))
            return hl_resp_error(rs, 422, "field_not_number", "%s must be %s", f->name,
                                 f->type == F_INT ? "an integer" : "a number or null"),
                   HL_EINVAL;
        if (json_number_value(v) < f->lo || json_number_value(v) > f->hi)
            return hl_resp_error(rs, 422, "field_out_of_range", "%s must be from %g to %g", f->name,
                                 f->lo, f->hi),
                   HL_EINVAL;
        return HL_OK;
    case F_OBJ_NULL:
        if (!json_is_null(v) && !json_is_object(v))
            return hl_resp_error(rs, 422, "field_not_object", "%s must be an object or null",
                                 f->name),
                   HL_EINVAL;
        return HL_OK;
    case F_SERVER:
        return hl_resp_error(rs, 422, "field_read_only", "%s is set by hookline, not by you",
                             f->name),
               HL_EINVAL;
    }
    return HL_EINVAL;
}

static const struct field *find_field(const struct kind *k, const char *name)
{
    for (const struct field *f = k->fields; f->name; f++)
        if (strcmp(f->name, name) == 0)
            return f;
    return NULL;
}

/* Checks a create (creating) or update body against the kind's fields. */
static int check_body(const struct kind *k, json_t *body, int creating, struct hl_resp *rs)
{
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
    {
        const struct field *f = find_field(k, key);
        if (!f) {
            const char *const none[] = {NULL};
            json_t *one = json_object();
            json_object_set(one, key, v);
            hl_reject_unknown(one, none, rs);
            json_decref(one);
            return HL_EINVAL;
        }
        if (check_value(f, v, rs))
            return HL_EINVAL;
        if (!creating && f->immutable)
            return hl_resp_error(rs, 422, "field_immutable", "%s cannot change after create",
                                 f->name),
                   HL_EINVAL;
    }
    if (creating) {
        for (const struct field *f = k->fields; f->name; f++)
            if (f->required && !json_object_get(body, f->name))
                return hl_resp_error(rs, 422, "field_required", "%s is required", f->name),
                       HL_EINVAL;
    }
    return HL_OK;
}

/* Lays out the resource object in its fixed key order from values (fields by name). */
static json_t *build(const struct kind *k, const char *uid, const char *app_uid, const char *parent,
                     json_t *values, int64_t created, int64_t updated)
{
    json_t *o = json_object();
    json_object_set_new(o, "uid", json_string(uid));
    json_object_set_new(o, "appUid", json_string(app_uid));
    if (k == &FILEK)
        json_object_set_new(o, "contextUid", json_string(parent));
    for (const struct field *f = k->fields; f->name; f++) {
        json_t *v = json_object_get(values, f->name);
        json_object_set_new(o, f->name, v ? json_incref(v) : field_default(k, f));
    }
    json_object_set_new(o, "createdAt", hl_json_time(created));
    json_object_set_new(o, "updatedAt", hl_json_time(updated));
    return o;
}

/* Writes obj as the canonical body of r. */
static int set_body(struct hl_resource *r, json_t *obj, struct hl_resp *rs)
{
    struct hl_buf b;
    hl_buf_init(&b, HL_MAX_BODY * 2);
    int rc = hl_json_write(&b, obj);
    if (rc) {
        hl_buf_free(&b);
        if (rc == HL_EINVAL)
            return hl_resp_error(rs, 422, "invalid_value", "a value nests too deeply"), rc;
        return hl_resp_error(rs, 500, "internal", "could not write the resource"), rc;
    }
    r->body_len = b.len;
    r->body = hl_buf_steal(&b);
    return HL_OK;
}

static int load(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs, const struct kind *k,
                const char *uid, const char *parent, struct hl_resource *out)
{
    int rc = hl_store_resource_get(api->store, rq->app.id, k->entity, uid, out);
    if (rc == HL_OK && parent && strcmp(out->parent_uid, parent) != 0) {
        hl_resource_clear(out);
        rc = HL_ENOTFOUND;
    }
    if (rc == HL_ENOTFOUND)
        return hl_resp_error(rs, 404, "not_found", "no %s %s", k->noun, uid), rc;
    if (rc)
        return hl_resp_store_error(rs, rc), rc;
    return HL_OK;
}

/* Answers with a resource's stored JSON. */
static void answer_body(struct hl_resp *rs, int status, const struct hl_resource *r)
{
    hl_resp_json(rs, status, hl_json_parse(r->body, r->body_len, NULL, 0));
}

static void create(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs, const struct kind *k,
                   const char *parent)
{
    json_t *body = hl_req_json(rq, rs, 0);
    if (!body)
        return;
    struct hl_resource ctx = {0}, r = {0};
    json_t *obj = NULL;
    if (check_body(k, body, 1, rs))
        goto out;
    if (parent) {
        if (load(api, rq, rs, &CONTEXT, parent, NULL, &ctx))
            goto out;
        if (!json_object_get(body, "externalTenantId"))
            json_object_set_new(body, "externalTenantId", json_string(ctx.tenant));
        json_object_set_new(body, "processingStatus", json_string(AWAITING_UPLOAD));
    }
    if (hl_id_new(k->prefix, 12, r.uid, sizeof(r.uid))) {
        hl_resp_error(rs, 500, "internal", "no randomness available");
        goto out;
    }
    int64_t now = hl_now_ms();
    r.kind = k->entity;
    r.app_id = rq->app.id;
    snprintf(r.parent_uid, sizeof(r.parent_uid), "%s", parent ? parent : "");
    r.created_at = r.updated_at = now;
    obj = build(k, r.uid, rq->app.uid, parent, body, now, now);
    r.tenant = strdup(json_string_value(json_object_get(obj, "externalTenantId")));
    if (!r.tenant || set_body(&r, obj, rs))
        goto out;
    hl_publish_change(api, rq, rs, HL_OP_CREATE, &r, 0, now, 201);
out:
    json_decref(obj);
    json_decref(body);
    hl_resource_clear(&r);
    hl_resource_clear(&ctx);
}

/* Keeps the bytes of rq's finished upload as file r's under data_dir/files/<uid><suffix> and
 * commits r (op, at expect_version) with them queued for ingestion; answers 202 with r. The
 * app's storage limit (--max-app-storage) is checked first. On failure sets the answer, leaves
 * no bytes behind and returns the error. */
static int keep_and_publish(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs,
                            const struct hl_resource *r, enum hl_op op, int64_t expect_version,
                            const char *suffix, int64_t now)
{
    struct hl_upload *up = rq->upload;
    char path[PATH_MAX];
    /* From the check of the app's storage to the commit, no other upload of the app commits
     * on this node. */
    hl_limits_storage_lock(api->limits, rq->app.id);
    int rc = hl_limits_storage_check(api, rq->app.id, up->size, rs);
    if (rc)
        goto out;
    snprintf(path, sizeof(path), "%s/files/%s%s", api->cfg.data_dir, r->uid, suffix);
    if (hl_upload_keep(up, path)) {
        hl_resp_error(rs, 507, "insufficient_storage", "the file could not be stored");
        rc = HL_EIO;
        goto out;
    }
    struct hl_file_rec file = {.path = path, .size = up->size, .sha256 = up->sha256};
    rc = hl_publish_change_file(api, rq, rs, op, r, expect_version, &file, now);
    if (rc) {
        unlink(path);
        goto out;
    }
    if (api->hooks.file_queued)
        api->hooks.file_queued(api->hooks.file_queued_arg);
    answer_body(rs, 202, r);
out:
    hl_limits_storage_unlock(api->limits, rq->app.id);
    return rc;
}

/* POST .../files with the file itself (multipart or raw): stored, then queued for ingestion. */
static void create_upload(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs,
                          const char *parent)
{
    struct hl_upload *up = rq->upload;
    struct hl_resource ctx = {0}, r = {0};
    json_t *vals = NULL, *obj = NULL;
    if (hl_upload_end(up, rs) || load(api, rq, rs, &CONTEXT, parent, NULL, &ctx))
        goto out;
    if (hl_id_new(FILEK.prefix, 12, r.uid, sizeof(r.uid))) {
        hl_resp_error(rs, 500, "internal", "no randomness available");
        goto out;
    }
    vals = json_pack("{s:s,s:s,s:s,s:I,s:s}", "fileName", up->file_name, "externalTenantId",
                     up->tenant[0] ? up->tenant : ctx.tenant, "contentType",
                     up->content_type[0] ? up->content_type : "application/octet-stream",
                     "sizeBytes", (json_int_t)up->size, "sha256", up->sha256);
    if (!vals) { /* the fields were checked against their rules: only memory can fail */
        hl_resp_error(rs, 500, "internal", "out of memory");
        goto out;
    }
    int64_t now = hl_now_ms();
    r.kind = HL_ENT_CONTEXTFILE;
    r.app_id = rq->app.id;
    snprintf(r.parent_uid, sizeof(r.parent_uid), "%s", parent);
    r.created_at = r.updated_at = now;
    obj = build(&FILEK, r.uid, rq->app.uid, parent, vals, now, now);
    r.tenant = strdup(json_string_value(json_object_get(obj, "externalTenantId")));
    if (!r.tenant || set_body(&r, obj, rs))
        goto out;
    keep_and_publish(api, rq, rs, &r, HL_OP_CREATE, 0, "", now);
out:
    json_decref(obj);
    json_decref(vals);
    hl_resource_clear(&r);
    hl_resource_clear(&ctx);
}

/* Whether the stored file r still awaits its bytes; its parsed JSON in *values when not NULL
 * (the caller's reference). */
static int awaits_bytes(const struct hl_resource *r, json_t **values)
{
    json_t *v = hl_json_parse(r->body, r->body_len, NULL, 0);
    const char *st = json_string_value(json_object_get(v, "processingStatus"));
    int awaiting = st && strcmp(st, AWAITING_UPLOAD) == 0;
    if (values)
        *values = v;
    else
        json_decref(v);
    return awaiting;
}

static void already_uploaded(struct hl_resp *rs, const char *uid)
{
    hl_resp_error(rs, 409, "file_already_uploaded",
                  "context file %s has its bytes already; upload a new file to replace them", uid);
}

/* PUT .../files/{uid}/content: the bytes of a file registered by its JSON metadata alone, taken
 * once (raw body or a form's "file" part) and queued for processing like an upload; sizeBytes
 * and sha256 become the bytes' own. */
static void upload_content(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs,
                           const char *parent, const char *uid)
{
    struct hl_upload *up = rq->upload;
    struct hl_resource cur = {0}, r = {0};
    json_t *values = NULL, *obj = NULL;
    char tag[HL_ID_MAX];
    if (!up) {
        hl_resp_error(rs, 500, "internal", "the upload did not start");
        return;
    }
    if (load(api, rq, rs, &FILEK, uid, parent, &cur))
        return;
    if (!awaits_bytes(&cur, &values)) {
        already_uploaded(rs, uid);
        goto out;
    }
    /* Under a name of its own: two uploads racing for the file never write over each other. */
    if (hl_upload_end(up, rs) || hl_id_new("-", 6, tag, sizeof(tag))) {
        if (!rs->status)
            hl_resp_error(rs, 500, "internal", "no randomness available");
        goto out;
    }
    json_object_set_new(values, "sizeBytes", json_integer(up->size));
    json_object_set_new(values, "sha256", json_string(up->sha256));
    json_object_set_new(values, "processingStatus", json_string("pending"));
    int64_t now = hl_now_ms();
    r = cur;
    r.tenant = strdup(cur.tenant);
    r.body = NULL;
    r.updated_at = now;
    obj = build(&FILEK, cur.uid, rq->app.uid, parent, values, cur.created_at, now);
    if (!r.tenant || set_body(&r, obj, rs))
        goto out;
    if (keep_and_publish(api, rq, rs, &r, HL_OP_UPDATE, cur.version, tag, now) == HL_ECONFLICT) {
        struct hl_resource now_there = {0};
        if (hl_store_resource_get(api->store, rq->app.id, HL_ENT_CONTEXTFILE, uid, &now_there) ==
                HL_OK &&
            !awaits_bytes(&now_there, NULL))
            already_uploaded(rs, uid); /* another upload won the race */
        hl_resource_clear(&now_there);
    }
out:
    json_decref(obj);
    json_decref(values);
    hl_resource_clear(&r);
    hl_resource_clear(&cur);
}

/* GET .../files/{uid}/chunks: the passages of a processed file, in order. */
static void list_chunks(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs,
                        const char *parent, const char *uid)
{
    size_t limit;
    int64_t after;
    struct hl_resource r;
    if (hl_req_page(rq, rs, &limit, &after) || load(api, rq, rs, &FILEK, uid, parent, &r))
        return;
    hl_resource_clear(&r);
    /* Cursors are passage indexes + 1 (the API's cursors are positive). */
    struct hl_text_chunk *c = NULL;
    size_t n = 0;
    int rc = hl_store_chunk_list(api->store, rq->app.id, uid, after - 1, limit, &c, &n);
    if (rc) {
        hl_resp_store_error(rs, rc);
        return;
    }
    json_t *data = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(data,
                              json_pack("{s:I,s:I,s:s%}", "index", (json_int_t)c[i].index, "offset",
                                        (json_int_t)c[i].offset, "text", c[i].text, c[i].len));
    int64_t last = n ? c[n - 1].index + 1 : 0;
    hl_chunks_list_free(c, n);
    hl_resp_json(rs, 200, hl_page_answer(data, limit, last));
}

static void update(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs, const struct kind *k,
                   const char *uid, const char *parent)
{
    json_t *body = hl_req_json(rq, rs, 0);
    if (!body)
        return;
    struct hl_resource cur = {0}, r = {0};
    json_t *values = NULL, *obj = NULL;
    if (check_body(k, body, 0, rs) || load(api, rq, rs, k, uid, parent, &cur))
        goto out;
    values = hl_json_parse(cur.body, cur.body_len, NULL, 0);
    if (!values) {
        hl_resp_error(rs, 500, "internal", "stored resource is unreadable");
        goto out;
    }
    json_object_update(values, body);
    int64_t now = hl_now_ms();
    r = cur;
    r.tenant = strdup(cur.tenant);
    r.body = NULL;
    r.updated_at = now;
    obj = build(k, cur.uid, rq->app.uid, parent, values, cur.created_at, now);
    if (!r.tenant || set_body(&r, obj, rs))
        goto out;
    hl_publish_change(api, rq, rs, HL_OP_UPDATE, &r, cur.version, now, 200);
out:
    json_decref(obj);
    json_decref(values);
    json_decref(body);
    hl_resource_clear(&r);
    hl_resource_clear(&cur);
}

static void del(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs, const struct kind *k,
                const char *uid, const char *parent)
{
    struct hl_resource cur = {0};
    if (load(api, rq, rs, k, uid, parent, &cur))
        return;
    hl_publish_delete(api, rq, rs, &cur);
    hl_resource_clear(&cur);
}

static void list(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs, const struct kind *k,
                 const char *parent)
{
    size_t limit;
    int64_t after;
    if (hl_req_page(rq, rs, &limit, &after))
        return;
    if (parent) {
        struct hl_resource ctx;
        if (load(api, rq, rs, &CONTEXT, parent, NULL, &ctx))
            return;
        hl_resource_clear(&ctx);
    }
    const char *tenant = hl_req_query(rq, "externalTenantId");
    struct hl_resource *arr = NULL;
    size_t n = 0;
    int rc = hl_store_resource_list(api->store, rq->app.id, k->entity, parent, tenant, after, limit,
                                    &arr, &n);
    if (rc) {
        hl_resp_store_error(rs, rc);
        return;
    }
    json_t *data = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(data, hl_json_parse(arr[i].body, arr[i].body_len, NULL, 0));
    int64_t last = n ? arr[n - 1].id : 0;
    for (size_t i = 0; i < n; i++)
        hl_resource_clear(&arr[i]);
    free(arr);
    hl_resp_json(rs, 200, hl_page_answer(data, limit, last));
}

/* GET, PATCH or DELETE of one item (/agents/{uid}). */
static void serve_item(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs,
                       const struct kind *k, const char *uid, const char *parent)
{
    struct hl_resource r;
    switch (rq->method) {
    case HL_GET:
        if (load(api, rq, rs, k, uid, parent, &r) == HL_OK) {
            answer_body(rs, 200, &r);
            hl_resource_clear(&r);
        }
        break;
    case HL_PATCH:
        update(api, rq, rs, k, uid, parent);
        break;
    case HL_DELETE:
        del(api, rq, rs, k, uid, parent);
        break;
    default:
        hl_method_not_allowed(rs, "GET, PATCH, DELETE");
    }
}

/* One collection (/agents) or item (/agents/{uid}) of a kind. */
static void serve_kind(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs,
                       const struct kind *k, int item_seg, const char *parent)
{
    if (rq->nseg == item_seg) {
        if (rq->method == HL_POST && rq->upload)
            create_upload(api, rq, rs, parent);
        else if (rq->method == HL_POST)
            create(api, rq, rs, k, parent);
        else if (rq->method == HL_GET)
            list(api, rq, rs, k, parent);
        else
            hl_method_not_allowed(rs, "GET, POST");
        return;
    }
    char uid[HL_ID_MAX];
    if (hl_req_seg(rq, item_seg, uid, sizeof(uid))) {
        hl_resp_error(rs, 404, "not_found", "no such %s", k->noun);
        return;
    }
    if (k == &FILEK && rq->nseg == item_seg + 2 && hl_str_eqc(rq->seg[item_seg + 1], "chunks")) {
        if (rq->method != HL_GET)
            hl_method_not_allowed(rs, "GET");
        else
            list_chunks(api, rq, rs, parent, uid);
        return;
    }
    if (k == &FILEK && rq->nseg == item_seg + 2 && hl_str_eqc(rq->seg[item_seg + 1], "content")) {
        if (rq->method != HL_PUT)
            hl_method_not_allowed(rs, "PUT");
        else
            upload_content(api, rq, rs, parent, uid);
        return;
    }
    if (rq->nseg == item_seg + 1)
        serve_item(api, rq, rs, k, uid, parent);
}

void hl_api_resources(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs)
{
    if (hl_str_eqc(rq->seg[0], "agents")) {
        serve_kind(api, rq, rs, &AGENT, 1, NULL);
        return;
    }
    /* contexts */
    if (rq->nseg >= 3 && hl_str_eqc(rq->seg[2], "files")) {
        char ctx[HL_ID_MAX];
        if (hl_req_seg(rq, 1, ctx, sizeof(ctx)))
            hl_resp_error(rs, 404, "not_found", "no such context");
        else
            serve_kind(api, rq, rs, &FILEK, 3, ctx);
        return;
    }
    serve_kind(api, rq, rs, &CONTEXT, 1, NULL);
}
