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
 * The address classes the guard refuses are common/net.h's (hl_addr_blocked).
 */
#ifndef HL_DELIVERY_TARGET_H
#define HL_DELIVERY_TARGET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <curl/curl.h>

#include "common/net.h"
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
