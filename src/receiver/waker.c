/* Sleeping until woken, stopped or timed out; see waker.h. */
#include "receiver/waker.h"

#include <errno.h>
#include <time.h>

#include "common/clock.h"

void hl_waker_init(struct hl_waker *w)
{
    pthread_condattr_t ca;
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cond, &ca);
    pthread_condattr_destroy(&ca);
    w->wakes = 0;
    atomic_init(&w->stopping, 0);
}

void hl_waker_destroy(struct hl_waker *w)
{
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->mu);
}

uint64_t hl_waker_seen(struct hl_waker *w)
{
    pthread_mutex_lock(&w->mu);
    uint64_t seen = w->wakes;
    pthread_mutex_unlock(&w->mu);
    return seen;
}

void hl_waker_wait(struct hl_waker *w, uint64_t seen, int64_t ms)
{
    if (ms < 1)
        return;
    struct timespec until = hl_mono_ts(hl_mono_ms() + ms);
    pthread_mutex_lock(&w->mu);
    while (w->wakes == seen && !atomic_load(&w->stopping))
        if (pthread_cond_timedwait(&w->cond, &w->mu, &until) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&w->mu);
}

void hl_waker_wake(struct hl_waker *w)
{
    pthread_mutex_lock(&w->mu);
    w->wakes++;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->mu);
}

void hl_waker_stop(struct hl_waker *w)
{
    pthread_mutex_lock(&w->mu);
    atomic_store(&w->stopping, 1);
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->mu);
}

int hl_waker_stopping(struct hl_waker *w)
{
    return atomic_load(&w->stopping);
}
