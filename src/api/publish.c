#include "api/publish.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/err.h"
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

static int publish(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs, enum hl_op op,
                   const struct hl_resource *r, int64_t expect_version, int64_t now,
                   const struct hl_file_rec *file)
{
    struct hl_event ev;
    int rc = hl_event_make(rq->app.id, rq->app.uid, hl_event_for(r->kind, op), r->tenant, r->uid,
                           r->body, r->body_len, now, 0, &ev);
    if (rc)
        return hl_resp_error(rs, 500, "internal", "could not build the event"), rc;
    struct hl_change ch = {
        .op = op, .res = r, .expect_version = expect_version, .ev = &ev, .file = file};
    rc = hl_store_commit(api->store, &ch, 1, NULL, NULL);
    hl_event_clear(&ev);
    if (rc)
        commit_error(rs, rc, r->uid);
    return rc;
}

int hl_publish_change(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs, enum hl_op op,
                      const struct hl_resource *r, int64_t expect_version, int64_t now)
{
    return publish(api, rq, rs, op, r, expect_version, now, NULL);
}

int hl_publish_change_file(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs, enum hl_op op,
                           const struct hl_resource *r, int64_t expect_version,
                           const struct hl_file_rec *file, int64_t now)
{
    return publish(api, rq, rs, op, r, expect_version, now, file);
}

int hl_publish_delete(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs,
                      const struct hl_resource *cur)
{
    struct hl_resource *files = NULL;
    size_t nfiles = 0;
    int rc = HL_OK;
    if (cur->kind == HL_ENT_CONTEXT) {
        /* Every file of the context, whatever its number: one page of the largest size. */
        rc = hl_store_resource_list(api->store, rq->app.id, HL_ENT_CONTEXTFILE, cur->uid, NULL, 0,
                                    SIZE_MAX / 2, &files, &nfiles);
        if (rc)
            return hl_resp_store_error(rs, rc), rc;
    }
    size_t n = nfiles + 1, made = 0;
    struct hl_change *ch = calloc(n, sizeof(*ch));
    struct hl_event *ev = calloc(n, sizeof(*ev));
    char **paths = calloc(n, sizeof(*paths));
    int64_t now = hl_now_ms();
    if (!ch || !ev || !paths) {
        rc = HL_ENOMEM;
        hl_resp_store_error(rs, rc);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const struct hl_resource *r = i < nfiles ? &files[i] : cur;
        rc = hl_event_make(rq->app.id, rq->app.uid, hl_event_for(r->kind, HL_OP_DELETE), r->tenant,
                           r->uid, r->body, r->body_len, now, now, &ev[i]);
        if (rc) {
            hl_resp_error(rs, 500, "internal", "could not build the event");
            goto out;
        }
        made++;
        ch[i] = (struct hl_change){
            .op = HL_OP_DELETE, .res = r, .expect_version = r->version, .ev = &ev[i]};
    }
    /* The stored bytes of every file that goes, removed once the commit stands. */
    for (size_t i = 0; i < n; i++) {
        const struct hl_resource *r = i < nfiles ? &files[i] : cur;
        if (r->kind == HL_ENT_CONTEXTFILE &&
            hl_store_file_path(api->store, rq->app.id, r->uid, &paths[i]) != HL_OK)
            paths[i] = NULL;
    }
    rc = hl_store_commit(api->store, ch, n, NULL, NULL);
    if (rc)
        commit_error(rs, rc, cur->uid);
    for (size_t i = 0; rc == HL_OK && i < n; i++)
        if (paths[i])
            unlink(paths[i]);
out:
    for (size_t i = 0; paths && i < n; i++)
        free(paths[i]);
    free(paths);
    for (size_t i = 0; ev && i < made; i++)
        hl_event_clear(&ev[i]);
    free(ev);
    free(ch);
    for (size_t i = 0; i < nfiles; i++)
        hl_resource_clear(&files[i]);
    free(files);
    return rc;
}
