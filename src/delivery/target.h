/* Where deliveries may go: webhook URL validation (at the API) and the address policy that the
 * dispatcher enforces at connect time, after DNS, so that rebinding cannot slip through.
 *
 * URL rules (hl_url_check): an absolute http or https URL of at most HL_URL_MAX bytes, printable
 * ASCII only (no spaces, controls, bytes >= 0x80, backslash, '"', '<', '>'), no user info, a host
 * that is a DNS name (letters, digits, '-', '_', labels of 1..63 bytes, an optional trailing dot),
 * a canonical dotted-quad IPv4 address or a bracketed IPv6 literal without zone id, an optional
 * port 1..65535, valid %XX escapes and no fragment. A host whose last label starts with a digit
 * must be a canonical dotted quad, so "127.1", "0x7f.0.0.1" and "2130706433" are refused rather
 * than left to the resolver's interpretation.
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
#ifndef HL_DELIVERY_TARGET_H
#define HL_DELIVERY_TARGET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <curl/curl.h>

#include "common/str.h"

/* Longest webhook URL accepted, in bytes. */
#define HL_URL_MAX 2048

/* A parsed URL. Every hl_str points into the string given to hl_url_parse. */
struct hl_url {
    struct hl_str scheme; /* "http" or "https", as written (any case) */
    struct hl_str host;   /* without the brackets of an IPv6 literal */
    struct hl_str path;   /* path and query from the first '/' or '?'; empty when absent */
    uint16_t port;        /* the explicit port, else 80 or 443 */
    int https;            /* 1 for https */
    int port_explicit;    /* 1 when the URL names a port */
    int ipv6;             /* 1 when host is an IPv6 literal */
};

/* Checks a webhook URL from the API, url[0..len) (no NUL needed). Returns 0 when it may be
 * stored, else HL_EINVAL with *code set to a stable machine code and *message to a static
 * human-readable text that names the field "url". Codes: "url_too_long", "url_invalid",
 * "url_not_absolute", "url_scheme", "url_credentials", "url_https_required" (an http URL while
 * production != 0). code and message may be NULL; they are left alone on success. */
int hl_url_check(const char *url, size_t len, int production, const char **code,
                 const char **message);

/* Parses url[0..len) by the same rules as hl_url_check with production == 0. Returns 0 and fills
 * *out (pointing into url), or HL_EINVAL. */
int hl_url_parse(const char *url, size_t len, struct hl_url *out);

/* Who a delivery to url[0..len) connects to, as libcurl pools connections: the scheme, the host
 * (case-folded; an IPv6 literal without its brackets) and the port (the scheme's default when
 * none is written), taken by hl_url_parse and hashed into a key that is never 0. URLs that connect
 * to the same place get the same key; a URL that hl_url_parse refuses gets one of its own (its
 * bytes, case-folded). The dispatcher caps attempts per key. */
uint64_t hl_url_host_key(const char *url, size_t len);

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

/* What hl_target_opensocket needs, owned by the caller and alive for the whole transfer. */
struct hl_target_guard {
    const struct hl_netlist *allow; /* may be NULL */
    int enforce;                    /* 0: open every address (development mode) */
    char refused[128];              /* last refusal, e.g. "refused address 127.0.0.1 (loopback)";
                                       the caller clears it before a transfer */
};

/* A CURLOPT_OPENSOCKETFUNCTION callback; clientp (CURLOPT_OPENSOCKETDATA) is a struct
 * hl_target_guard or NULL. When the guard enforces and hl_addr_blocked refuses the address it
 * writes the reason into guard->refused and returns CURL_SOCKET_BAD (curl then fails with
 * CURLE_COULDNT_CONNECT, or tries the next address); otherwise it returns a new close-on-exec
 * socket for the address. The check only sees what curl connects to: the dispatcher must not let
 * curl use a proxy (CURLOPT_PROXY "" and CURLOPT_NOPROXY "*"). */
curl_socket_t hl_target_opensocket(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr);

#endif
