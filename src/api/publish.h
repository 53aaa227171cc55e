/* The one-transaction commit of a resource change, its event and its deliveries, answered the
 * way the API answers (the envelope and the event itself come from events/envelope.h). */
#ifndef HL_PUBLISH_H
#define HL_PUBLISH_H

#include <stddef.h>
#include <stdint.h>

#include "api/http.h"
#include "store/store.h"

/* Commits a create or update of r with its event. Sets the error answer on failure (409 when
 * the resource changed meanwhile, 404 when it is gone). */
int hl_publish_change(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs, enum hl_op op,
                      const struct hl_resource *r, int64_t expect_version, int64_t now);

/* Commits a context file r with its bytes (file) queued for ingestion, and its event: the create
 * of an uploaded file, or the update (of version expect_version) that brings the bytes of a file
 * registered without them. Sets the error answer on failure. */
int hl_publish_change_file(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs, enum hl_op op,
                           const struct hl_resource *r, int64_t expect_version,
                           const struct hl_file_rec *file, int64_t now);

/* Deletes cur with its *.deleted event (last state plus deletedAt); a context's files go first,
 * each with its own contextfile.deleted, all in one transaction; the files' stored bytes go after
 * the commit. Sets the error answer on failure. */
int hl_publish_delete(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs,
                      const struct hl_resource *cur);

#endif
