#include "common/thread.h"

int hl_thread_start(pthread_t *t, void *(*fn)(void *), void *arg, const char *name)
{
    int rc = pthread_create(t, NULL, fn, arg);
    if (rc == 0)
        (void)pthread_setname_np(*t, name); /* a name too long is left unset, never fatal */
    return rc;
}
