#include "api/publish.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/json.h"
#include "events/envelope.h"

static void commit_error(struct hl_resp *rs, int rc, const char *uid)
{
    if (rc == HL_ECONFLICT)
        hl_resp_error(rs, 409, "conflict",
                      "%s changed while this request was made; read it and try again", uid);
    else if (rc == HL_ENOTFOUND)
        hl_resp_error(rs, 404, "not_found", "%s is gone", uid);
    else
        hl_resp_store_error(rs, rc);
}

/* A change set and everything it borrows, kept by its request until the commit is over: one
 * resource and its event, or a deleted context's files first and then the context. */
struct pub {
    struct hl_resource res;    /* the new state, or the resource deleted (ours) */
    struct hl_resource *files; /* a deleted context's files (ours) */
    size_t nfiles;
    size_t n, made; /* changes, and events built so far */
    struct hl_change *ch;
    struct hl_event *ev;
    char **paths; /* stored bytes removed once the commit stands (NULL entries: none) */
    int status;   /* the answer once committed: res's body with it, or no body (204) */
};

static void pub_free(void *arg)
{
    struct pub *p = arg;
    for (size_t i = 0; p->paths && i < p->n; i++)
        free(p->paths[i]);
    free(p->paths);
    for (size_t i = 0; p->ev && i < p->made; i++)
        hl_event_clear(&p->ev[i]);
    free(p->ev);
    free(p->ch);
    for (size_t i = 0; i < p->nfiles; i++)
        hl_resource_clear(&p->files[i]);
    free(p->files);
    hl_resource_clear(&p->res);
    free(p);
}

/* Builds p's changes (op, with their events, each resource at expect_version or its own version
 * for a delete). Sets the error answer on failure. */
static int pub_build(struct hl_req *rq, struct hl_resp *rs, struct pub *p, enum hl_op op,
                     int64_t expect_version, const struct hl_file_rec *file, int64_t now)
{
    p->n = p->nfiles + 1;
    p->ch = calloc(p->n, sizeof(*p->ch));
    p->ev = calloc(p->n, sizeof(*p->ev));
    p->paths = calloc(p->n, sizeof(*p->paths));
    if (!p->ch || !p->ev || !p->paths)
        return hl_resp_store_error(rs, HL_ENOMEM), HL_ENOMEM;
    int64_t deleted_at = op == HL_OP_DELETE ? now : 0;
    for (size_t i = 0; i < p->n; i++) {
        const struct hl_resource *r = i < p->nfiles ? &p->files[i] : &p->res;
        int rc = hl_event_make(rq->app.id, rq->app.uid, hl_event_for(r->kind, op), r->tenant,
                               r->uid, r->body, r->body_len, now, deleted_at, &p->ev[i]);
        if (rc)
            return hl_resp_error(rs, 500, "internal", "could not build the event"), rc;
        p->made++;
        p->ch[i] =
            (struct hl_change){.op = op,
                               .res = r,
                               .expect_version = op == HL_OP_DELETE ? r->version : expect_version,
                               .ev = &p->ev[i],
                               .file = file};
    }
    return HL_OK;
}

/* The commit of a held pub is over: answers it, and removes the stored bytes of what it
 * deleted. */
static void pub_committed(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs, int rc)
{
    (void)api;
    struct pub *p = rq->held;
    if (rc) {
        commit_error(rs, rc, p->res.uid);
        return;
    }
    for (size_t i = 0; i < p->n; i++)
        if (p->paths[i])
            unlink(p->paths[i]);
    if (p->status == 204)
        rs->status = 204;
    else
        hl_resp_json(rs, p->status, hl_json_parse(p->res.body, p->res.body_len, NULL, 0));
}

/* Takes *r over (leaving it empty) into a new pub, or sets the error answer and returns NULL. */
static struct pub *pub_new(struct hl_resp *rs, struct hl_resource *r, int status)
{
    struct pub *p = calloc(1, sizeof(*p));
    if (!p)
        return hl_resp_store_error(rs, HL_ENOMEM), NULL;
    p->res = *r;
    memset(r, 0, sizeof(*r));
    p->status = status;
    return p;
}

void hl_publish_change(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs, enum hl_op op,
                       struct hl_resource *r, int64_t expect_version, int64_t now, int status)
{
    struct pub *p = pub_new(rs, r, status);
    if (!p)
        return;
    hl_req_hold(rq, p, pub_free);
    if (pub_build(rq, rs, p, op, expect_version, NULL, now) == HL_OK)
        hl_req_commit(api, rq, rs, p->ch, p->n, NULL, pub_committed);
}

int hl_publish_change_file(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs, enum hl_op op,
                           const struct hl_resource *r, int64_t expect_version,
                           const struct hl_file_rec *file, int64_t now)
{
    struct pub p = {.res = *r}; /* borrowed: not freed here */
    int rc = pub_build(rq, rs, &p, op, expect_version, file, now);
    if (rc == HL_OK) {
        rc = hl_store_commit(api->store, p.ch, p.n, NULL, NULL);
        if (rc)
            commit_error(rs, rc, r->uid);
    }
    for (size_t i = 0; i < p.made; i++)
        hl_event_clear(&p.ev[i]);
    free(p.ev);
    free(p.ch);
    free(p.paths);
    return rc;
}

void hl_publish_delete(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs,
                       struct hl_resource *cur)
{
    struct pub *p = pub_new(rs, cur, 204);
    if (!p)
        return;
    hl_req_hold(rq, p, pub_free);
    if (p->res.kind == HL_ENT_CONTEXT) {
        /* Every file of the context, whatever its number: one page of the largest size. */
        int rc = hl_store_resource_list(api->store, rq->app.id, HL_ENT_CONTEXTFILE, p->res.uid,
                                        NULL, 0, SIZE_MAX / 2, &p->files, &p->nfiles);
        if (rc) {
            hl_resp_store_error(rs, rc);
            return;
        }
    }
    if (pub_build(rq, rs, p, HL_OP_DELETE, 0, NULL, hl_now_ms()))
        return;
    /* The stored bytes of every file that goes, removed once the commit stands. */
    for (size_t i = 0; i < p->nfiles; i++)
        if (hl_store_file_path(api->store, rq->app.id, p->files[i].uid, &p->paths[i]) != HL_OK)
            p->paths[i] = NULL;
    if (p->res.kind == HL_ENT_CONTEXTFILE &&
        hl_store_file_path(api->store, rq->app.id, p->res.uid, &p->paths[p->nfiles]) != HL_OK)
        p->paths[p->nfiles] = NULL;
    hl_req_commit(api, rq, rs, p->ch, p->n, NULL, pub_committed);
}
