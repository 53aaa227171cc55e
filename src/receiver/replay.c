/* `hookline listen replay`: queues events whose hand-off gave up again.
 *
 * It only changes the state file: those events become pending, due now, with no attempts
 * counted. The hookline listen running on that file notices within a second (its worker looks
 * at the file that often) and hands them to its own --exec or --forward, with its own retries;
 * when none runs, the next one started on the file does. So the command needs no target of its
 * own, and an event is never handed on by two processes at once. */
#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/config.h"
#include "common/err.h"
#include "receiver/inbox.h"
#include "receiver/listen.h"

/* Queues one event; prints what became of it. Returns 1 when it is queued or still pending. */
static int requeue_one(struct hl_inbox *ib, const char *state, const char *event_id)
{
    int was = -1;
    int rc = hl_inbox_requeue(ib, event_id, hl_now_ms(), &was);
    if (rc == HL_ENOTFOUND) {
        fprintf(stderr, "hookline listen replay: %s: no such event in %s\n", event_id, state);
        return 0;
    }
    if (rc != HL_OK) {
        fprintf(stderr, "hookline listen replay: %s: %s\n", event_id, hl_strerror(rc));
        return 0;
    }
    switch (was) {
    case HL_INBOX_FAILED:
        printf("%s: queued again\n", event_id);
        return 1;
    case HL_INBOX_PENDING:
        printf("%s: still pending; it is being handed on\n", event_id);
        return 1;
    default:
        fprintf(stderr,
                "hookline listen replay: %s: handed on already; its body is not kept, "
                "so it cannot be handed on again (ask the sender to resend it)\n",
                event_id);
        return 0;
    }
}

int hl_listen_replay_main(int argc, char **argv)
{
    struct hl_options o;
    int status = hl_options_get(HL_CMD_LISTEN_REPLAY, argc, argv, &o);
    if (status != HL_OPTS_RUN)
        return status;
    if (!o.failed && o.nargs == 0)
        return hl_usage_error(HL_CMD_LISTEN_REPLAY, "give EVENT_IDs, or --failed for every "
                                                    "event that gave up");
    if (o.failed && o.nargs)
        return hl_usage_error(HL_CMD_LISTEN_REPLAY, "EVENT_IDs or --failed, not both");
    /* Opening creates a missing file: a mistyped --state would look like an empty one. */
    if (access(o.state, F_OK) != 0)
        return hl_usage_error(HL_CMD_LISTEN_REPLAY,
                              "--state %s: no such file (the state file of hookline listen)",
                              o.state);
    struct hl_inbox *ib = NULL;
    char err[512];
    if (hl_inbox_open(o.state, &ib, err, sizeof(err)) != HL_OK) {
        fprintf(stderr, "hookline listen replay: %s\n", err);
        return 1;
    }
    status = 0;
    if (o.failed) {
        int64_t n = 0;
        int rc = hl_inbox_requeue_failed(ib, hl_now_ms(), &n);
        if (rc == HL_OK) {
            printf("%" PRId64 " event(s) queued again\n", n);
        } else {
            fprintf(stderr, "hookline listen replay: %s\n", hl_strerror(rc));
            status = 1;
        }
    }
    for (int i = 0; i < o.nargs; i++)
        if (!requeue_one(ib, o.state, o.args[i]))
            status = 1;
    hl_inbox_close(ib);
    return status;
}
