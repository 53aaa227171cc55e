/* `hookline listen`'s housekeeping thread; see keeper.h. */
#include "receiver/keeper.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "common/thread.h"
#include "receiver/inbox.h"
#include "receiver/spawn.h"
#include "receiver/waker.h"

/* Longest sleep between two looks (log summaries are due at most this late). */
#define TICK_MS 1000
/* How often a running alert command is checked on. */
#define CHILD_TICK_MS 50
/* Rows per prune transaction, and the pause between two full batches. */
#define PRUNE_BATCH 500
#define PRUNE_PAUSE_MS 20
/* A prune pass every window/16, within these bounds: rows are kept at most that much longer. */
#define PRUNE_EVERY_MIN_MS 1000
#define PRUNE_EVERY_MAX_MS (10 * 60 * 1000)
/* How long a running alert command may go on after a stop was asked for. */
#define STOP_GRACE_MS 5000

struct hl_keeper {
    struct hl_keeper_config cfg;
    struct hl_inbox *inbox; /* only when pruning */
    pthread_t thread;
    int started;
    struct hl_waker waker;
    int64_t next_prune; /* monotonic ms */
    pid_t child;        /* the running alert command, or 0 */
    int64_t child_deadline;
};

/* ---- pruning ---- */

/* Deletes one batch; returns when to prune next (monotonic ms). */
static int64_t prune_step(struct hl_keeper *k, int64_t now)
{
    int64_t every = k->cfg.dedupe_window_ms / 16;
    every = every < PRUNE_EVERY_MIN_MS   ? PRUNE_EVERY_MIN_MS
            : every > PRUNE_EVERY_MAX_MS ? PRUNE_EVERY_MAX_MS
                                         : every;
    int deleted = 0;
    int rc = hl_inbox_prune(k->inbox, hl_now_ms() - k->cfg.dedupe_window_ms, PRUNE_BATCH, &deleted);
    if (rc != HL_OK) {
        hl_error("listen: cannot prune the state file: %s; trying again later", hl_strerror(rc));
        return now + every;
    }
    if (deleted)
        hl_debug("listen: forgot %d eventId(s) handed on before the de-duplication window",
                 deleted);
    return deleted == PRUNE_BATCH ? now + PRUNE_PAUSE_MS : now + every;
}

/* ---- the alert ---- */

/* Starts the alert command for r; logs what happens. */
static void announce(struct hl_keeper *k, const struct hl_alert_report *r, int64_t now)
{
    int64_t secs = r->silence_ms / 1000;
    char last[HL_ISO_MAX] = "";
    if (r->last_ms >= 0)
        hl_time_iso(hl_now_ms() - (now - r->last_ms), last);
    if (r->kind == HL_ALERT_SILENT)
        hl_warn("listen: no verified event for %" PRId64 " s (since %s)%s", secs,
                last[0] ? last : "the start", k->cfg.alert_cmd ? "; running --alert-exec" : "");
    else
        hl_info("listen: events arrive again after %" PRId64 " s of silence%s", secs,
                k->cfg.alert_cmd ? "; running --alert-exec" : "");
    if (!k->cfg.alert_cmd)
        return;
    char kind[48], silence[64], last_at[64], err[256];
    snprintf(kind, sizeof(kind), "HOOKLINE_ALERT=%s",
             r->kind == HL_ALERT_SILENT ? "silent" : "recovered");
    snprintf(silence, sizeof(silence), "HOOKLINE_SILENCE_SECONDS=%" PRId64, secs);
    snprintf(last_at, sizeof(last_at), "HOOKLINE_LAST_EVENT_AT=%s", last);
    const char *vars[] = {kind, silence, last_at};
    pid_t pid;
    if (hl_spawn_sh(k->cfg.alert_cmd, -1, vars, 3, &pid, err, sizeof(err)) != HL_OK) {
        hl_error("listen: --alert-exec: %s", err);
        return;
    }
    k->child = pid;
    /* --timeout has no upper bound */
    k->child_deadline =
        k->cfg.alert_timeout_ms > INT64_MAX - now ? INT64_MAX : now + k->cfg.alert_timeout_ms;
}

/* Reaps the alert command when it ended (killing it past kill_at). Returns 1 while it runs. */
static int child_running(struct hl_keeper *k, int64_t now, int64_t kill_at)
{
    int status = 0;
    pid_t r = waitpid(k->child, &status, WNOHANG);
    if (r == 0 && now < kill_at)
        return 1;
    if (r == 0) {
        kill(-k->child, SIGKILL);
        while ((r = waitpid(k->child, &status, 0)) < 0 && errno == EINTR)
            ;
        hl_warn("listen: --alert-exec ran for more than %" PRId64 " ms; killed",
                k->cfg.alert_timeout_ms);
    } else if (r == k->child && WIFEXITED(status) && WEXITSTATUS(status) != 0) {
        hl_warn("listen: --alert-exec exited with status %d", WEXITSTATUS(status));
    } else if (r == k->child && WIFSIGNALED(status)) {
        hl_warn("listen: --alert-exec killed by signal %d", WTERMSIG(status));
    }
    k->child = 0;
    return 0;
}

/* Moves the alert on; returns when to look again (monotonic ms). */
static int64_t alert_step(struct hl_keeper *k, int64_t now)
{
    /* One command at a time: the state waits, so an announcement is late, never lost. */
    if (k->child && child_running(k, now, k->child_deadline))
        return now + CHILD_TICK_MS;
    struct hl_alert_report r;
    int64_t next;
    hl_alert_check(k->cfg.alert, now, &r, &next);
    if (r.kind != HL_ALERT_NONE)
        announce(k, &r, now);
    return k->child ? now + CHILD_TICK_MS : next;
}

/* ---- the thread ---- */

static void *keeper(void *arg)
{
    struct hl_keeper *k = arg;
    while (!hl_waker_stopping(&k->waker)) {
        uint64_t seen = hl_waker_seen(&k->waker);
        int64_t now = hl_mono_ms(), wake = now + TICK_MS;
        if (k->cfg.alert) {
            int64_t at = alert_step(k, now);
            wake = at < wake ? at : wake;
        }
        if (k->inbox) {
            if (now >= k->next_prune)
                k->next_prune = prune_step(k, now);
            wake = k->next_prune < wake ? k->next_prune : wake;
        }
        if (k->cfg.log)
            hl_ratelog_flush(k->cfg.log, now, 0, NULL, NULL);
        hl_waker_wait(&k->waker, seen, wake - hl_mono_ms());
    }
    if (k->cfg.log)
        hl_ratelog_flush(k->cfg.log, hl_mono_ms(), 1, NULL, NULL);
    int64_t grace = hl_mono_ms() + STOP_GRACE_MS;
    struct timespec tick = {0, CHILD_TICK_MS * 1000000L};
    while (k->child && child_running(k, hl_mono_ms(), grace))
        nanosleep(&tick, NULL);
    return NULL;
}

int hl_keeper_start(const struct hl_keeper_config *cfg, struct hl_keeper **out)
{
    int rc = HL_ENOMEM;
    *out = NULL;
    struct hl_keeper *k = calloc(1, sizeof(*k));
    if (!k)
        return HL_ENOMEM;
    k->cfg = *cfg;
    hl_waker_init(&k->waker);
    if (cfg->dedupe_window_ms > 0) {
        char err[512];
        if ((rc = hl_inbox_open(cfg->state_path, &k->inbox, err, sizeof(err))) != HL_OK) {
            hl_error("listen: %s", err);
            goto out;
        }
    }
    if (hl_thread_start(&k->thread, keeper, k, "hl-keeper") != 0) {
        rc = HL_ENOMEM;
        goto out;
    }
    k->started = 1;
    *out = k;
    k = NULL;
    rc = HL_OK;
out:
    hl_keeper_stop(k);
    return rc;
}

void hl_keeper_wake(struct hl_keeper *k)
{
    hl_waker_wake(&k->waker);
}

void hl_keeper_stop(struct hl_keeper *k)
{
    if (!k)
        return;
    hl_waker_stop(&k->waker);
    if (k->started)
        pthread_join(k->thread, NULL);
    hl_inbox_close(k->inbox);
    hl_waker_destroy(&k->waker);
    free(k);
}
