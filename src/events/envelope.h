/* The envelope every receiver gets, and the event row a change commits with.
 *
 * Shared by the API (resource changes, published and test events) and the ingest worker
 * (processing steps of a context file). It knows the store's struct hl_event and the event names
 * (common/events.h), and nothing of HTTP.
 */
#ifndef HL_ENVELOPE_H
#define HL_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "store/store.h"

/* The largest envelope built: a resource body (at most twice the API's 1 MiB request limit,
 * after canonical re-writing) with room for the envelope's keys. */
#define HL_ENVELOPE_MAX (4u << 20)

/* Writes the envelope {"eventId","event","timestamp","appUid","version":1,"data":…} to out, with
 * data given as canonical JSON text (written as is) and, when deleted_at is non-zero, "deletedAt"
 * added as the last key of data. Returns 0 or a buffer error (out's own limit applies). */
int hl_payload_build(struct hl_buf *out, const char *event_uid, int type, int64_t ts,
                     const char *app_uid, const char *data, size_t data_len, int64_t deleted_at);

/* Fills ev for one event of an app: a fresh evt_ uid, type, tenant (copied), resource_uid, ts as
 * its time, and the payload built from data (see hl_payload_build). The caller releases it with
 * hl_event_clear; on failure ev is left empty. Returns 0, HL_ENOMEM, HL_EIO (no randomness) or a
 * buffer error when the envelope would pass HL_ENVELOPE_MAX. */
int hl_event_make(int64_t app_id, const char *app_uid, int type, const char *tenant,
                  const char *resource_uid, const char *data, size_t data_len, int64_t ts,
                  int64_t deleted_at, struct hl_event *ev);

#endif
