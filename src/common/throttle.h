/* A throttle for failed tries per client: the console's bad tokens and bad sign-ins.
 *
 * Each client address has a budget of `burst` failures, refilled by one every `interval_ms`
 * (the generic cell rate algorithm: one time per client, no timer). Successful tries cost
 * nothing. Clients are IPv4 addresses, or the /64 of an IPv6 address (one host usually holds a
 * whole /64), an IPv4-mapped IPv6 address counting as its IPv4 one.
 *
 * The table has a fixed number of slots (memory does not grow with the number of clients).
 * Two clients that land on one slot share its budget while either one has debt there: a
 * collision can only throttle more, never less. The slot of a client depends on a random seed
 * drawn at creation, so nobody can aim at another client's slot.
 */
#ifndef HL_THROTTLE_H
#define HL_THROTTLE_H

#include <stdint.h>
#include <sys/socket.h>

struct hl_throttle;

/* Who is throttled: an address family byte and the address (IPv4) or its /64 (IPv6). */
struct hl_client {
    uint8_t b[9];
};

/* Makes a throttle of burst failures refilled one per interval_ms (both > 0). Returns 0,
 * HL_EINVAL or HL_ENOMEM. */
int hl_throttle_new(unsigned burst, int64_t interval_ms, struct hl_throttle **out);
/* Frees it; NULL is fine. */
void hl_throttle_free(struct hl_throttle *t);
/* The client of a socket address (AF_INET or AF_INET6; anything else, or NULL, is one client). */
struct hl_client hl_client_of(const struct sockaddr *sa);
/* 0 when c may try now; otherwise how many ms until it may (answer 429 with Retry-After). */
int64_t hl_throttle_wait(struct hl_throttle *t, const struct hl_client *c, int64_t now_ms);
/* Spends one failure of c's budget. */
void hl_throttle_fail(struct hl_throttle *t, const struct hl_client *c, int64_t now_ms);

#endif
