/* `hookline listen`'s worker: one thread that takes recorded events from the inbox and hands
 * them on (run a command, re-POST to a URL, or print), retrying failures with backoff.
 *
 * The HTTP side never waits for it: it records, answers and calls hl_handoff_wake. The worker
 * keeps its own connection to the state file, so a slow command or URL never holds up a request.
 */
#ifndef HL_HANDOFF_H
#define HL_HANDOFF_H

#include <stdint.h>
#include <stdio.h>

struct hl_handoff;

struct hl_handoff_config {
    const char *exec_cmd;    /* run `sh -c exec_cmd` per event, or NULL */
    const char *forward_url; /* re-POST each event here, or NULL */
    int json;                /* print mode: the body instead of a summary line (time, event,
                                tenant, eventId, a context file's processingStatus) */
    FILE *out;               /* where print mode writes (stdout) */
    int max_attempts;        /* attempts per event before giving up (>= 1) */
    int64_t backoff_ms;      /* delay before the second attempt; doubles after each failure */
    int64_t backoff_max_ms;  /* longest delay between two attempts */
    int64_t timeout_ms;      /* longest a command or a forward may take */
};

/* Opens its own connection to the state file at state_path and starts the worker thread, which
 * first makes every pending hand-off due (a restart resumes them at once), and looks at the file
 * at least once a second (another process may queue events again: hookline listen replay).
 * state_path and the strings in cfg must outlive the worker. Returns 0 or a negative HL_E code
 * (reason logged). */
int hl_handoff_start(const char *state_path, const struct hl_handoff_config *cfg,
                     struct hl_handoff **out);

/* Tells the worker that an event was recorded. Cheap; safe from any thread. */
void hl_handoff_wake(struct hl_handoff *h);

/* Stops the worker after the hand-off in progress (a running command gets a short grace period,
 * then is killed and stays pending), joins it and frees h (NULL is fine). */
void hl_handoff_stop(struct hl_handoff *h);

#endif
