/* A throttle for failed tries per client (throttle.h). */
#include "common/throttle.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/ids.h"

#define SLOTS 4096

struct slot {
    struct hl_client c;
    int64_t tat; /* when c's budget is whole again ("theoretical arrival time"); 0: never used */
};

struct hl_throttle {
    pthread_mutex_t mu;
    int64_t interval, slack; /* slack: (burst - 1) * interval */
    uint64_t seed;
    struct slot slots[SLOTS];
};

int hl_throttle_new(unsigned burst, int64_t interval_ms, struct hl_throttle **out)
{
    *out = NULL;
    if (burst == 0 || interval_ms <= 0 || interval_ms > INT64_MAX / 2 / burst)
        return HL_EINVAL;
    struct hl_throttle *t = calloc(1, sizeof(*t));
    if (!t)
        return HL_ENOMEM;
    if (hl_random((uint8_t *)&t->seed, sizeof(t->seed))) {
        free(t);
        return HL_EIO;
    }
    pthread_mutex_init(&t->mu, NULL);
    t->interval = interval_ms;
    t->slack = (int64_t)(burst - 1) * interval_ms;
    *out = t;
    return HL_OK;
}

void hl_throttle_free(struct hl_throttle *t)
{
    if (!t)
        return;
    pthread_mutex_destroy(&t->mu);
    free(t);
}

struct hl_client hl_client_of(const struct sockaddr *sa)
{
    struct hl_client c = {{0}};
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (sa && sa->sa_family == AF_INET) {
        c.b[0] = 4;
        memcpy(c.b + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (sa && sa->sa_family == AF_INET6) {
        const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        if (memcmp(a, mapped, sizeof(mapped)) == 0) {
            c.b[0] = 4;
            memcpy(c.b + 1, a + 12, 4);
        } else {
            c.b[0] = 6;
            memcpy(c.b + 1, a, 8);
        }
    }
    return c;
}

/* The slot of c: FNV-1a over the seed and the client. */
static struct slot *slot_of(struct hl_throttle *t, const struct hl_client *c)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ t->seed;
    for (size_t i = 0; i < sizeof(c->b); i++) {
        h ^= c->b[i];
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 29;
    return &t->slots[h % SLOTS];
}

/* The slot's budget as c sees it (under mu): a slot another client holds without debt is c's. */
static struct slot *take(struct hl_throttle *t, const struct hl_client *c, int64_t now)
{
    struct slot *s = slot_of(t, c);
    if (memcmp(&s->c, c, sizeof(*c)) != 0 && s->tat <= now) {
        s->c = *c;
        s->tat = 0;
    }
    return s;
}

int64_t hl_throttle_wait(struct hl_throttle *t, const struct hl_client *c, int64_t now_ms)
{
    pthread_mutex_lock(&t->mu);
    struct slot *s = take(t, c, now_ms);
    int64_t start = s->tat > now_ms ? s->tat : now_ms;
    int64_t wait = start - now_ms - t->slack;
    pthread_mutex_unlock(&t->mu);
    return wait > 0 ? wait : 0;
}

void hl_throttle_fail(struct hl_throttle *t, const struct hl_client *c, int64_t now_ms)
{
    pthread_mutex_lock(&t->mu);
    struct slot *s = take(t, c, now_ms);
    int64_t start = s->tat > now_ms ? s->tat : now_ms;
    /* Bounded: past the slack a client is refused, so its debt stops growing about there. */
    if (start - now_ms <= t->slack + t->interval)
        s->tat = start + t->interval;
    pthread_mutex_unlock(&t->mu);
}
