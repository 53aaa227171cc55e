/* The durable side of `hookline listen`: one SQLite file that is both the de-duplication record
 * (one row per eventId ever accepted) and the queue of hand-offs still to do.
 *
 * Invariants:
 * - An event is acknowledged (200) only after its row committed with synchronous=FULL, so an
 *   acknowledged event survives a crash or power loss and is handed on after the restart.
 * - eventId is UNIQUE: a second delivery of the same event changes nothing and is reported as a
 *   duplicate, across restarts, for as long as the file is kept.
 * - A row is pending until its hand-off succeeded (then its body and headers are dropped, the
 *   eventId stays) or gave up (then they are kept, for inspection and for hl_inbox_requeue). A
 *   crash between the hand-off and the update repeats that hand-off: hand-offs are at least
 *   once, like deliveries.
 * - Only rows that were handed on are ever deleted (hl_inbox_prune), and only those received
 *   before the cut-off: an eventId is a duplicate for at least the de-duplication window after
 *   it was received; pending rows and rows that gave up stay until they are handed on.
 *
 * Every function may be called from several threads; calls on one struct hl_inbox are
 * serialised by its own mutex. Several connections (hl_inbox_open twice) may share a file.
 */
#ifndef HL_INBOX_H
#define HL_INBOX_H

#include <stddef.h>
#include <stdint.h>

#include "hookline/verify.h"

struct hl_inbox;

/* The state of a recorded event. */
enum hl_inbox_state { HL_INBOX_PENDING = 0, HL_INBOX_DONE = 1, HL_INBOX_FAILED = 2 };

/* What is recorded for an accepted event. The strings are NUL-terminated; body and headers are
 * copied, nothing is retained. headers is "Name: value\r\n" lines (may be empty). */
struct hl_inbox_event {
    const char *event_id;
    const char *event;
    const char *tenant;
    const char *body;
    size_t body_len;
    const char *headers;
};

/* One pending hand-off, as returned by hl_inbox_next. Owns body and headers (NUL-terminated);
 * release them with hl_inbox_item_clear. */
struct hl_inbox_item {
    int64_t id;
    char event_id[HOOKLINE_FIELD_MAX];
    char event[HOOKLINE_FIELD_MAX];
    char tenant[HOOKLINE_FIELD_MAX];
    int64_t received_at; /* ms since the epoch */
    int attempts;        /* hand-off attempts made before this one */
    char *body;
    size_t body_len;
    char *headers;
};

/* Opens (creating when missing) the state file at path: WAL, synchronous=FULL, schema migrated.
 * On failure returns a negative HL_E code and writes a reason to err (errlen bytes). */
int hl_inbox_open(const char *path, struct hl_inbox **out, char *err, size_t errlen);

/* Closes the connection and frees ib (NULL is fine). */
void hl_inbox_close(struct hl_inbox *ib);

/* Records ev as received at now_ms, due for hand-off at once, in one durable commit. Sets
 * *duplicate to 1 (and changes nothing) when its event_id was recorded before, else to 0.
 * Returns 0, HL_EINVAL for missing fields, HL_ENOMEM or HL_ESTORE. */
int hl_inbox_add(struct hl_inbox *ib, const struct hl_inbox_event *ev, int64_t now_ms,
                 int *duplicate);

/* Takes the pending item that is due first. When one is due at or before now_ms, fills *it and
 * returns 0. Otherwise returns HL_ENOTFOUND and sets *next_at to when the earliest pending item
 * is due (0 when nothing is pending). Returns HL_ENOMEM or HL_ESTORE on failure. */
int hl_inbox_next(struct hl_inbox *ib, int64_t now_ms, struct hl_inbox_item *it, int64_t *next_at);

/* Marks item id handed on: its body and headers are dropped, its eventId is kept. */
int hl_inbox_done(struct hl_inbox *ib, int64_t id);

/* Records a failed attempt of item id and makes it due again at next_at. error may be NULL. */
int hl_inbox_retry(struct hl_inbox *ib, int64_t id, int64_t next_at, const char *error);

/* Records a last failed attempt of item id: it is no longer pending (body kept). */
int hl_inbox_fail(struct hl_inbox *ib, int64_t id, const char *error);

/* Makes every pending item that waits for a later retry due at now_ms (used at start: a restart
 * is often the fix). Sets *pending to the number of pending items. */
int hl_inbox_resume(struct hl_inbox *ib, int64_t now_ms, int64_t *pending);

/* Deletes at most limit rows that were handed on and received before before_ms (the oldest
 * first), in one short transaction, so that a large prune done batch by batch lets the
 * receiving side write in between. Sets *deleted; fewer than limit means nothing is left to
 * prune. Returns 0, HL_ENOMEM or HL_ESTORE. */
int hl_inbox_prune(struct hl_inbox *ib, int64_t before_ms, int limit, int *deleted);

/* Makes the event event_id pending again, due at now_ms with no attempts counted, when it gave
 * up (HL_INBOX_FAILED). Sets *was to the state it was in (only a failed one changes; a pending
 * one is left as it is; a handed-on one no longer has its body). Returns 0, HL_ENOTFOUND when
 * the file has no such event, HL_ENOMEM or HL_ESTORE. */
int hl_inbox_requeue(struct hl_inbox *ib, const char *event_id, int64_t now_ms, int *was);

/* hl_inbox_requeue for every event that gave up; sets *n to how many. */
int hl_inbox_requeue_failed(struct hl_inbox *ib, int64_t now_ms, int64_t *n);

/* Frees what an item owns and zeroes it. */
void hl_inbox_item_clear(struct hl_inbox_item *it);

#endif
