/* Listen addresses: turning the host part of a --listen option into a socket address. */
#ifndef HL_NET_H
#define HL_NET_H

#include <stdint.h>
#include <sys/socket.h>

/* Fills *ss (zeroed first) and *len with the address host:port to bind to. host is a NUL-terminated
 * IPv4 literal ("0.0.0.0" for every IPv4 address), a bare IPv6 literal (no brackets) or
 * "localhost" (127.0.0.1). family limits what is accepted: AF_INET (IPv4 and "localhost"),
 * AF_INET6 (IPv6 only) or AF_UNSPEC (either). Names other than "localhost" are not resolved.
 * Returns 0, or HL_EINVAL when host is none of those. */
int hl_parse_listen_host(const char *host, int family, uint16_t port, struct sockaddr_storage *ss,
                         socklen_t *len);

#endif
