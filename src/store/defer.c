/* Deferred fan-out (issue 19; the contract is in store.h, hl_store_defer_step).
 *
 * Why: on SQLite a delivery row costs the commit that makes it one page of every index that
 * begins with the webhook (the claims', the lists'), and SQLite's WAL writes whole pages. A change
 * for an app with 50 webhooks writes 50 pages per such index; when those webhooks are dead or
 * slow their rows pile up and every commit, the healthy webhooks' included, pays for them. An
 * owed row is keyed by the event first, so a change's owed rows for every deferring webhook land
 * on the same page.
 *
 * How: a webhook defers once more than `after` of its deliveries wait for a first attempt
 * (pending, not failing: a dead endpoint's behind its open breaker, a slow one's; failing ones
 * waiting for a retry hours away hold nothing up), which a step notices (HL_Q_DEFER_ENTER).
 * Each change then owes it a row (sqlite.c's Q_OWE_FANOUT, and HL_Q_OWE_INSERT for filters:
 * decided at commit exactly as a delivery would be). A step makes its owed rows deliveries,
 * oldest event first, whenever fewer than after / 2 wait (so an open breaker's probe always has
 * a delivery to try, and a draining queue refills); once nothing is owed and fewer than that
 * wait, it stops deferring. All of a step is one transaction on the one writer, so no change
 * commits between "nothing owed" and "not deferring". With `after` 0 (deferral turned off on a
 * database where webhooks defer) steps make everything owed and stop every deferral.
 *
 * Order: a deferring webhook's deliveries made before it deferred have lower ids than every owed
 * row made into a delivery, and owed rows are made in event order, which on one writer is commit
 * order: ordering (SQL_ORDER_FREE, by id) holds.
 *
 * owed_after: every owed row of a webhook has a higher event id (the insert trigger lowers it
 * below a new row, a move raises it to the last row made), so a step seeks there instead of
 * stepping over the rows of every other deferring webhook. That holds even when event ids are
 * used again (SQLite's rowid, once the newest events are pruned): the oldest owed is made first. */
#include <stdlib.h>

#include "common/err.h"
#include "store/sql.h"

/* Most deferring webhooks one step visits, in id order from where the last one stopped. */
#define STEP_WEBHOOKS 256
/* Most owed rows one step makes deliveries of or drops, all webhooks together: a step holds the
 * one writer, so it is kept to a few milliseconds (struct hl_defer_result's full: the next step
 * comes sooner). */
#define STEP_ROWS 500

static int run(struct hl_sess *s, int q, const struct hl_arg *a, size_t n, struct hl_rows *rows)
{
    return s->st->be->run(s, q, a, n, rows);
}

/* The first n owed rows of webhook w after event id `after`, made deliveries due at now; *made,
 * how many; *last, the highest event id made. */
static int move_after(struct hl_sess *s, int64_t w, int64_t after, int64_t n, int64_t now,
                      int64_t *made, int64_t *last)
{
    struct hl_arg a[] = {hl_arg_int(w), hl_arg_int(after), hl_arg_int(n), hl_arg_int(now)};
    struct hl_rows ids = {.rd = &hl_read_int};
    int rc = run(s, HL_Q_DEFER_MOVE, a, HL_NARGS(a), &ids);
    *made = 0;
    *last = after;
    for (size_t i = 0; rc == HL_OK && i < ids.n; i++) {
        int64_t id = ((const int64_t *)ids.arr)[i];
        if (id > *last)
            *last = id;
    }
    if (rc == HL_OK && ids.n) {
        *made = (int64_t)ids.n;
        struct hl_arg f[] = {hl_arg_int(w), hl_arg_int(after), hl_arg_int(*last)};
        rc = run(s, HL_Q_DEFER_FORGET, f, HL_NARGS(f), NULL);
        if (rc == HL_OK) {
            struct hl_arg m[] = {hl_arg_int(w), hl_arg_int(*last)};
            rc = run(s, HL_Q_DEFER_MARK, m, HL_NARGS(m), NULL);
        }
    }
    hl_rows_clear(&ids);
    return rc;
}

/* A step under way: what it may still do (it holds the one writer: rows made or dropped) and
 * what it did. */
struct step {
    int64_t now, low, budget;
    struct hl_defer_result *r;
};

/* One deferring webhook's turn. */
static int step_one(struct hl_sess *s, const struct hl_deferring *d, struct step *t)
{
    struct hl_arg id[] = {hl_arg_int(d->id)};
    struct hl_rows left = {0};
    int rc = HL_OK;
    if (d->deleted_at) { /* nothing owed to it will be delivered */
        struct hl_arg a[] = {id[0], hl_arg_int(d->owed_after), hl_arg_int(t->budget)};
        struct hl_rows gone = {0};
        rc = run(s, HL_Q_DEFER_DROP, a, HL_NARGS(a), &gone);
        t->budget -= gone.changed;
        t->r->dropped += gone.changed;
        if (rc == HL_OK && gone.changed >= d->owed)
            rc = run(s, HL_Q_DEFER_LEAVE, id, 1, &left);
        t->r->left += left.changed;
        return rc;
    }
    if (!d->active) /* owed until it is enabled again, as its paused deliveries are */
        return HL_OK;
    int64_t made = 0, last = 0, room = t->low - d->pending;
    if (d->owed > 0 && room > 0) {
        int64_t n = room < t->budget ? room : t->budget;
        rc = move_after(s, d->id, d->owed_after, n, t->now, &made, &last);
        t->budget -= made;
        t->r->made += made;
    }
    if (rc == HL_OK && d->owed == made && d->pending + made < t->low) {
        rc = run(s, HL_Q_DEFER_LEAVE, id, 1, &left);
        t->r->left += left.changed;
    }
    return rc;
}

int hl_store_defer_step(struct hl_store *st, int64_t now, int64_t after, int enter, int64_t *cursor,
                        struct hl_defer_result *out)
{
    *out = (struct hl_defer_result){0};
    if (!st->be->defers) {
        *cursor = 0;
        return HL_OK;
    }
    struct hl_sess s;
    int rc = st->be->open(st, HL_SESS_TX, &s);
    if (rc)
        return rc;
    if (enter && after > 0) {
        struct hl_arg a[] = {hl_arg_int(after)};
        struct hl_rows began = {0};
        rc = run(&s, HL_Q_DEFER_ENTER, a, HL_NARGS(a), &began);
        out->entered = began.changed;
    }
    struct hl_arg a[] = {hl_arg_int(*cursor), hl_arg_int(STEP_WEBHOOKS)};
    struct hl_rows list = {.rd = &hl_read_deferring};
    if (rc == HL_OK)
        rc = run(&s, HL_Q_DEFER_LIST, a, HL_NARGS(a), &list);
    const struct hl_deferring *d = list.arr;
    int64_t low = after <= 0 ? INT64_MAX : after / 2 > 0 ? after / 2 : 1;
    struct step t = {.now = now, .low = low, .budget = STEP_ROWS, .r = out};
    size_t i = 0;
    for (; rc == HL_OK && i < list.n && t.budget > 0; i++)
        rc = step_one(&s, &d[i], &t);
    /* The next step goes on from the last webhook visited, or from the first once every one
     * was. */
    int64_t next = i > 0 && (i < list.n || list.n == STEP_WEBHOOKS) ? d[i - 1].id : 0;
    out->more = (int64_t)i > out->left || *cursor != 0 || next != 0;
    out->full = t.budget <= 0;
    hl_rows_clear(&list);
    rc = st->be->close(&s, rc);
    if (rc == HL_OK && out->made)
        hl_store_notify(st);
    if (rc)
        *out = (struct hl_defer_result){0};
    else
        *cursor = next;
    return rc;
}
