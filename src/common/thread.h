/* Starting a thread of hookline's own: every one carries a name, for top -H and /proc/PID/task. */
#ifndef HL_THREAD_H
#define HL_THREAD_H

#include <pthread.h>

/* As pthread_create with default attributes, then names the thread (at most 15 characters,
 * "hl-..."). The name is set before this returns, so whoever started the thread can count on it.
 * Returns 0, or pthread_create's error (no thread was started). */
int hl_thread_start(pthread_t *t, void *(*fn)(void *), void *arg, const char *name);

#endif
