/* Turning changes into events: the envelope every receiver gets, and the one-transaction commit
 * of a change, its event and its deliveries. */
#ifndef HL_PUBLISH_H
#define HL_PUBLISH_H

#include <stddef.h>
#include <stdint.h>

#include "api/http.h"
#include "common/buf.h"
#include "store/store.h"

/* Writes the envelope {"eventId","event","timestamp","appUid","version":1,"data":…} with data
 * given as canonical JSON text (written as is) and, when deleted_at is non-zero, "deletedAt"
 * added as the last key of data. Returns 0 or a buffer error. */
int hl_payload_build(struct hl_buf *out, const char *event_uid, int type, int64_t ts,
                     const char *app_uid, const char *data, size_t data_len, int64_t deleted_at);

/* Fills ev for one event of an app (a fresh evt_ uid, the payload built from data). The caller
 * releases it with hl_event_clear. */
int hl_event_make(int64_t app_id, const char *app_uid, int type, const char *tenant,
                  const char *resource_uid, const char *data, size_t data_len, int64_t ts,
                  int64_t deleted_at, struct hl_event *ev);

/* Commits a create or update of r with its event. Sets the error answer on failure (409 when
 * the resource changed meanwhile, 404 when it is gone). */
int hl_publish_change(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs, enum hl_op op,
                      const struct hl_resource *r, int64_t expect_version, int64_t now);

/* Commits the create of an uploaded context file r with its bytes (file) queued for ingestion,
 * and its contextfile.created event. Sets the error answer on failure. */
int hl_publish_change_file(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs,
                           const struct hl_resource *r, const struct hl_file_rec *file,
                           int64_t now);

/* Deletes cur with its *.deleted event (last state plus deletedAt); a context's files go first,
 * each with its own contextfile.deleted, all in one transaction; the files' stored bytes go after
 * the commit. Sets the error answer on failure. */
int hl_publish_delete(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs,
                      const struct hl_resource *cur);

#endif
