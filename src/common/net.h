/* Addresses: turning a --listen option into a socket address, CIDR lists, and the classes of
 * addresses (loopback, private, metadata, ...) that production mode keeps deliveries away from.
 *
 * Address classes (hl_addr_blocked), checked in this order for IPv4:
 *   unspecified 0.0.0.0/8; broadcast 255.255.255.255; metadata 169.254.169.254, 169.254.170.2,
 *   100.100.100.200, 192.0.0.192; loopback 127/8; private 10/8, 172.16/12, 192.168/16;
 *   link-local 169.254/16; cgnat 100.64/10; multicast 224/4; reserved 240/4, 192.0.0/24,
 *   192.0.2/24, 192.88.99/24, 198.18/15, 198.51.100/24, 203.0.113/24.
 * and for IPv6:
 *   unspecified ::; loopback ::1; IPv4-mapped ::ffff:0:0/96 and IPv4-compatible ::/96 are judged
 *   by the embedded IPv4 address; reserved for the rest of ::/8; metadata fd00:ec2::254;
 *   private fc00::/7 and the deprecated site-local fec0::/10; link-local fe80::/10; multicast
 *   ff00::/8; NAT64 64:ff9b::/96 and 6to4 2002::/16 are judged by the embedded IPv4 address;
 *   reserved 64:ff9b:1::/48, 100::/64, 2001::/32 (Teredo), 2001:2::/48, 2001:10::/28,
 *   2001:20::/28, 2001:db8::/32, 3fff::/20 and everything outside 2000::/3.
 */
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

/* Most ranges an hl_netlist holds. */
#define HL_NETLIST_MAX 64

/* One CIDR range. addr has the host bits cleared; an IPv4 range uses addr[0..4). */
struct hl_net {
    int family; /* AF_INET or AF_INET6 */
    int prefix; /* 0..32 or 0..128 */
    uint8_t addr[16];
};

/* A fixed-size list of CIDR ranges. Zero it (= {0}) to start empty; it owns no memory. */
struct hl_netlist {
    int n;
    struct hl_net nets[HL_NETLIST_MAX];
};

/* Adds a range written as "10.0.0.0/8", "127.0.0.1" (one host), "::1/128" or "fd00::/8".
 * Host bits below the prefix are cleared ("10.1.2.3/8" is 10.0.0.0/8). Returns 0, HL_EINVAL on
 * anything else (including a prefix out of range) or HL_ETOOBIG when the list is full; the list is
 * unchanged on error. */
int hl_netlist_add(struct hl_netlist *nl, const char *cidr);

/* Adds every range of a list separated by commas and/or spaces ("10.0.0.0/8, ::1"). Returns 0 or
 * the first error of hl_netlist_add; ranges before the bad one stay added. */
int hl_netlist_add_list(struct hl_netlist *nl, const char *list);

/* Returns 1 when the address of sa (AF_INET or AF_INET6; the port is ignored) lies in one of the
 * ranges, else 0. An IPv4-mapped or IPv4-compatible IPv6 address also matches IPv4 ranges. */
int hl_netlist_contains(const struct hl_netlist *nl, const struct sockaddr *sa);

/* Decides whether a delivery may connect to sa (an AF_INET or AF_INET6 address). Returns NULL
 * when it may, else a static reason naming the class of the address: "loopback", "private",
 * "link-local", "cgnat", "multicast", "unspecified", "metadata", "broadcast", "reserved", or
 * "unsupported" for another family. Addresses inside allow (may be NULL) are always permitted. */
const char *hl_addr_blocked(const struct sockaddr *sa, const struct hl_netlist *allow);

#endif
