/* The background pruner (prune.h). */
#include "store/prune.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "common/thread.h"

/* How long one step may take: the number of events a step removes follows what the last steps
 * took. With one writer (SQLite) every write of the API waits for a step: a few milliseconds.
 * PostgreSQL's writes do not wait for it (a step locks only the rows it deletes), and each
 * step costs several round trips: larger steps. The scan looks further ahead (owed events
 * cost it nothing to skip). */
#define TARGET_ONE_WRITER_US 2000
#define TARGET_US 50000
#define STEP_MIN 1
#define STEP_START 64
/* Behind: more than BEHIND_MS of old events still wait (the machine is so busy that steps
 * timed by the clock shrank below the rate events come in). Steps then stay at least
 * STEP_BEHIND_MIN and the wait after one at most GAP_BEHIND_MS, so that the pruner catches up:
 * on a loaded machine a step's time is mostly time off the CPU, not work. */
#define BEHIND_MS 5000
#define STEP_BEHIND_MIN 32
#define GAP_BEHIND_MS 20
#define STEP_MAX 1024
#define SCAN 4096
/* Between steps the thread waits at least this, and at least SHARE times what the step took:
 * the pruner holds the writer a quarter of the time at most, and the API's requests that
 * queued behind a step go first. */
#define GAP_MIN_MS 5
#define SHARE 3
/* A pass from the beginning this often, and at least every half retention: an event still owed
 * when it grew old (a dispatcher more than a retention behind) is stepped over by the cursor, and
 * only a pass from the beginning finds it once its deliveries are final. Waiting longer than the
 * retention for that would let such events pile up beyond it. */
#define FULL_PASS_MS (10 * 60 * 1000)
/* Idempotency keys removed per statement, and space release steps per round. */
#define IDEM_STEP 500
#define RELEASE_STEPS 64
#define PAUSE_MIN_MS 1000
#define PAUSE_MAX_MS 60000
/* One warning per this long while steps keep failing. */
#define WARN_EVERY_MS 60000

struct hl_pruner {
    struct hl_store *st;
    int64_t retention_ms;
    int64_t full_every_ms; /* how often a pass starts from the beginning */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    /* the thread's own */
    int64_t at, id; /* the cursor where the next pass resumes */
    int64_t last_full, last_warn;
    struct hl_prune_pace pace;
};

void hl_prune_pace_init(struct hl_prune_pace *pc, struct hl_store *st)
{
    pc->step = STEP_START;
    pc->target_us = hl_store_one_writer(st) ? TARGET_ONE_WRITER_US : TARGET_US;
}

void hl_prune_pace_step(const struct hl_prune_pace *pc, struct hl_prune *q)
{
    q->max_events = pc->step;
    q->scan = pc->step * 8 + 64 < SCAN ? pc->step * 8 + 64 : SCAN;
}

int64_t hl_prune_pace_done(struct hl_prune_pace *pc, const struct hl_prune_result *r,
                           int64_t lag_ms)
{
    int behind = lag_ms > BEHIND_MS;
    size_t floor = behind ? STEP_BEHIND_MIN : STEP_MIN;
    if (r->events > 0 && r->write_us > pc->target_us)
        pc->step = pc->step / 2;
    else if (r->events > 0 && r->write_us < pc->target_us / 2 && (size_t)r->events == pc->step)
        pc->step = pc->step + pc->step / 2 + 1 < STEP_MAX ? pc->step + pc->step / 2 + 1 : STEP_MAX;
    if (pc->step < floor)
        pc->step = floor;
    int64_t gap = SHARE * r->write_us / 1000;
    if (behind && gap > GAP_BEHIND_MS)
        gap = GAP_BEHIND_MS;
    return gap > GAP_MIN_MS ? gap : GAP_MIN_MS;
}

/* Waits ms, or until stop; returns 1 when stopping. */
static int pause_ms(struct hl_pruner *p, int64_t ms)
{
    struct timespec ts = hl_mono_ts(hl_mono_ms() + ms);
    pthread_mutex_lock(&p->mu);
    while (!p->stop && pthread_cond_timedwait(&p->cv, &p->mu, &ts) != ETIMEDOUT)
        ;
    int stop = p->stop;
    pthread_mutex_unlock(&p->mu);
    return stop;
}

static void warn(struct hl_pruner *p, const char *what, int rc)
{
    int64_t now = hl_mono_ms();
    if (p->last_warn && now - p->last_warn < WARN_EVERY_MS)
        return;
    p->last_warn = now;
    hl_warn("pruner: %s: %s; trying again later", what, hl_strerror(rc));
}

/* One pass over the old events from the cursor; returns 1 when stopping. */
static int pass(struct hl_pruner *p, struct hl_prune_result *sum)
{
    int full = !p->last_full || hl_mono_ms() - p->last_full >= p->full_every_ms;
    if (full)
        p->at = p->id = 0;
    for (;;) {
        struct hl_prune q = {
            .before = hl_now_ms() - p->retention_ms, .after_at = p->at, .after_id = p->id};
        hl_prune_pace_step(&p->pace, &q);
        struct hl_prune_result r;
        int rc = hl_store_prune(p->st, &q, &r);
        if (rc) {
            warn(p, "cannot prune", rc);
            return 0;
        }
        if (r.busy) /* another node's turn: it goes on from where it is */
            return 0;
        p->at = r.last_at;
        p->id = r.last_id;
        sum->events += r.events;
        sum->deliveries += r.deliveries;
        sum->attempts += r.attempts;
        sum->kept_owed += r.kept_owed;
        int64_t gap = hl_prune_pace_done(&p->pace, &r, r.done ? 0 : q.before - r.last_at);
        if (r.done) {
            if (full)
                p->last_full = hl_mono_ms();
            return 0;
        }
        if (pause_ms(p, gap))
            return 1;
    }
}

/* Expired idempotency keys, then freed space back to the file system; returns 1 when
 * stopping. */
static int tidy(struct hl_pruner *p)
{
    int64_t n = IDEM_STEP;
    while (n == IDEM_STEP) {
        int rc = hl_store_idem_expire(p->st, hl_now_ms() - HL_IDEM_WINDOW_MS, IDEM_STEP, 0, &n);
        if (rc) {
            warn(p, "cannot drop expired idempotency keys", rc);
            break;
        }
        if (n == IDEM_STEP && pause_ms(p, GAP_MIN_MS))
            return 1;
    }
    for (int i = 0; i < RELEASE_STEPS; i++) {
        int64_t released = 0;
        int rc = hl_store_release_space(p->st, &released);
        if (rc)
            warn(p, "cannot give free space back", rc);
        if (rc || released == 0)
            break;
        if (pause_ms(p, GAP_MIN_MS))
            return 1;
    }
    return 0;
}

static void *pruner_main(void *arg)
{
    struct hl_pruner *p = arg;
    int64_t wait = p->retention_ms / 50;
    wait = wait < PAUSE_MIN_MS ? PAUSE_MIN_MS : wait > PAUSE_MAX_MS ? PAUSE_MAX_MS : wait;
    for (;;) {
        struct hl_prune_result sum = {0};
        int64_t t0 = hl_mono_ms();
        if (pass(p, &sum) || tidy(p))
            break;
        if (sum.events || sum.deliveries)
            hl_debug("pruner: removed %lld events, %lld deliveries, %lld attempts in %lld ms;"
                     " %lld old events kept (owed)",
                     (long long)sum.events, (long long)sum.deliveries, (long long)sum.attempts,
                     (long long)(hl_mono_ms() - t0), (long long)sum.kept_owed);
        if (pause_ms(p, wait))
            break;
    }
    return NULL;
}

int hl_pruner_start(struct hl_store *st, const struct hl_pruner_config *cfg, struct hl_pruner **out)
{
    *out = NULL;
    if (cfg->retention_ms <= 0)
        return HL_EINVAL;
    struct hl_pruner *p = calloc(1, sizeof(*p));
    if (!p)
        return HL_ENOMEM;
    p->st = st;
    p->retention_ms = cfg->retention_ms;
    p->full_every_ms = cfg->retention_ms / 2 < FULL_PASS_MS ? cfg->retention_ms / 2 : FULL_PASS_MS;
    hl_prune_pace_init(&p->pace, st);
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &attr);
    pthread_condattr_destroy(&attr);
    if (hl_thread_start(&p->thread, pruner_main, p, "hl-pruner") != 0) {
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
        free(p);
        return HL_ENOMEM;
    }
    *out = p;
    return HL_OK;
}

void hl_pruner_stop(struct hl_pruner *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
