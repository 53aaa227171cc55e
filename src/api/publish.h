/* The one-transaction commit of a resource change, its event and its deliveries, answered the
 * way the API answers (the envelope and the event itself come from events/envelope.h). */
#ifndef HL_PUBLISH_H
#define HL_PUBLISH_H

#include <stddef.h>
#include <stdint.h>

#include "api/http.h"
#include "store/store.h"

/* Commits a create or update of r with its event, taking r over (it is left empty), while the
 * request waits parked (hl_req_commit): the handler returns right after and leaves rs alone.
 * Answers status with r's body once committed, or the error (409 when the resource changed
 * meanwhile, 404 when it is gone). */
void hl_publish_change(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs, enum hl_op op,
                       struct hl_resource *r, int64_t expect_version, int64_t now, int status);

/* Commits a context file r with its bytes (file) queued for ingestion, and its event: the create
 * of an uploaded file, or the update (of version expect_version) that brings the bytes of a file
 * registered without them. Sets the error answer on failure. It waits for the commit on this
 * thread: the caller holds the app's storage lock until then (api/limits.h). */
int hl_publish_change_file(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs, enum hl_op op,
                           const struct hl_resource *r, int64_t expect_version,
                           const struct hl_file_rec *file, int64_t now);

/* Deletes cur with its *.deleted event (last state plus deletedAt), taking cur over (it is left
 * empty); a context's files go first, each with its own contextfile.deleted, all in one
 * transaction; the files' stored bytes go after the commit. The request waits parked, as for
 * hl_publish_change; answers 204 once committed, or the error. */
void hl_publish_delete(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs,
                       struct hl_resource *cur);

#endif
