/* Listen addresses: turning a --listen option into a socket address. */
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

/* Fills *ss and *len from a serve --listen address HOST:PORT: "127.0.0.1:8080", "[::1]:8080",
 * ":8080" (every IPv4 address) or "localhost:8080"; an IPv6 literal needs its brackets, an IPv4
 * one or "localhost" must not have any; the port is decimal digits, 0..65535 (0: any free one).
 * Returns 0 or HL_EINVAL. */
int hl_parse_listen_addr(const char *addr, struct sockaddr_storage *ss, socklen_t *len);

/* Fills *ss and *len from a host alone, as listen's --listen takes it: an IPv4 or IPv6 literal
 * (brackets optional), "localhost" or "*" (every IPv4 address), with port. Returns 0 or
 * HL_EINVAL. */
int hl_parse_bind_host(const char *host, uint16_t port, struct sockaddr_storage *ss,
                       socklen_t *len);

#endif
