/* How `hookline listen`'s background threads (hand-off worker, keeper) sleep: until woken,
 * stopped, or a timeout, on the monotonic clock. */
#ifndef HL_WAKER_H
#define HL_WAKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

struct hl_waker {
    pthread_mutex_t mu;
    pthread_cond_t cond; /* CLOCK_MONOTONIC */
    uint64_t wakes;      /* under mu: bumped by hl_waker_wake */
    atomic_int stopping;
};

/* Sets w up. Release with hl_waker_destroy. */
void hl_waker_init(struct hl_waker *w);

void hl_waker_destroy(struct hl_waker *w);

/* The wake count to pass to hl_waker_wait: take it before looking for work, so that a wake
 * between the look and the wait is not missed. */
uint64_t hl_waker_seen(struct hl_waker *w);

/* Sleeps until a wake after `seen`, a stop, or ms milliseconds (nothing when ms < 1). */
void hl_waker_wait(struct hl_waker *w, uint64_t seen, int64_t ms);

/* Wakes the sleeper. Safe from any thread. */
void hl_waker_wake(struct hl_waker *w);

/* Asks the sleeper to stop, and wakes it. */
void hl_waker_stop(struct hl_waker *w);

/* True once hl_waker_stop was called. */
int hl_waker_stopping(struct hl_waker *w);

#endif
