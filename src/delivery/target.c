#include "delivery/target.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "common/err.h"

/* ---- URL validation ---- */

static int fail(const char **code, const char **message, const char *c, const char *m)
{
    if (code)
        *code = c;
    if (message)
        *message = m;
    return HL_EINVAL;
}

static int is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* True for s[0..n) equal to the lower-case word w, ignoring case. */
static int eq_nocase(const char *s, size_t n, const char *w)
{
    size_t wl = strlen(w);
    if (n != wl)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != w[i])
            return 0;
    }
    return 1;
}

/* A canonical dotted quad: four decimal parts 0..255 without leading zeros. */
static int dotted_quad(const char *s, size_t n)
{
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        if (part > 0) {
            if (i >= n || s[i] != '.')
                return 0;
            i++;
        }
        size_t start = i;
        int v = 0;
        while (i < n && is_digit(s[i]) && i - start < 3)
            v = v * 10 + (s[i++] - '0');
        size_t d = i - start;
        if (d == 0 || v > 255 || (d > 1 && s[start] == '0'))
            return 0;
    }
    return i == n;
}

/* A DNS name (LDH plus '_', optional trailing dot) or a canonical dotted quad. */
static int host_name_ok(const char *h, size_t n)
{
    size_t full = n;
    if (n > 0 && h[n - 1] == '.')
        n--;
    if (n == 0 || n > 253)
        return 0;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && h[i] != '.') {
            char c = h[i];
            if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '_')
                return 0;
            continue;
        }
        size_t ll = i - start;
        if (ll == 0 || ll > 63 || h[start] == '-' || h[i - 1] == '-')
            return 0;
        if (i == n && is_digit(h[start])) {
            /* No top-level domain starts with a digit: this is meant as an IPv4 address, and only
             * the canonical form is accepted (no "127.1", octal, hex or trailing dot). */
            return n == full && dotted_quad(h, n);
        }
        start = i + 1;
    }
    return 1;
}

static const char msg_not_absolute[] =
    "url must be an absolute URL with a scheme and a host, such as https://example.com/webhook";
static const char msg_scheme[] = "url must use the http or https scheme";
static const char msg_credentials[] = "url must not contain a user name or password";
static const char msg_too_long[] = "url must be at most 2048 bytes long";
static const char msg_https[] = "url must use https in production mode";
static const char msg_chars[] = "url must be printable ASCII without spaces, backslashes, quotes "
                                "or angle brackets (percent-encode them, use punycode for names)";
static const char msg_host[] = "url has an empty or invalid host name";
static const char msg_ipv6[] = "url has an invalid IPv6 literal (use [address] without a zone id)";
static const char msg_port[] = "url has an invalid port (must be 1..65535)";
static const char msg_fragment[] = "url must not contain a fragment (#...)";
static const char msg_escape[] = "url has an invalid percent escape (must be % and two hex digits)";

static int parse(const char *u, size_t len, struct hl_url *out, const char **code,
                 const char **message)
{
    if (!u || len == 0)
        return fail(code, message, "url_not_absolute", msg_not_absolute);
    if (len > HL_URL_MAX)
        return fail(code, message, "url_too_long", msg_too_long);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)u[i];
        if (c <= 0x20 || c >= 0x7f || c == '\\' || c == '"' || c == '<' || c == '>')
            return fail(code, message, "url_invalid", msg_chars);
    }

    /* scheme "://" */
    size_t i = 0;
    if (is_alpha(u[0])) {
        i = 1;
        while (i < len &&
               (is_alpha(u[i]) || is_digit(u[i]) || u[i] == '+' || u[i] == '-' || u[i] == '.'))
            i++;
    }
    if (i == 0 || len - i < 3 || memcmp(u + i, "://", 3) != 0)
        return fail(code, message, "url_not_absolute", msg_not_absolute);
    struct hl_url r;
    memset(&r, 0, sizeof(r));
    r.scheme = (struct hl_str){u, i};
    if (eq_nocase(u, i, "https"))
        r.https = 1;
    else if (!eq_nocase(u, i, "http"))
        return fail(code, message, "url_scheme", msg_scheme);

    /* authority */
    size_t a = i + 3, ae = a;
    while (ae < len && u[ae] != '/' && u[ae] != '?' && u[ae] != '#')
        ae++;
    if (memchr(u + a, '@', ae - a))
        return fail(code, message, "url_credentials", msg_credentials);
    size_t hp, he, p; /* host text [hp, he), then p at ':' or ae */
    if (a < ae && u[a] == '[') {
        const char *close = memchr(u + a, ']', ae - a);
        if (!close)
            return fail(code, message, "url_invalid", msg_ipv6);
        hp = a + 1;
        he = (size_t)(close - u);
        p = he + 1;
        char tmp[INET6_ADDRSTRLEN];
        struct in6_addr in6;
        if (he - hp == 0 || he - hp >= sizeof(tmp) || (p < ae && u[p] != ':'))
            return fail(code, message, "url_invalid", msg_ipv6);
        memcpy(tmp, u + hp, he - hp);
        tmp[he - hp] = '\0';
        if (inet_pton(AF_INET6, tmp, &in6) != 1)
            return fail(code, message, "url_invalid", msg_ipv6);
        r.ipv6 = 1;
    } else {
        hp = a;
        he = a;
        while (he < ae && u[he] != ':')
            he++;
        p = he;
        if (memchr(u + hp, '[', he - hp) || memchr(u + hp, ']', ae - hp))
            return fail(code, message, "url_invalid", msg_ipv6);
        if (!host_name_ok(u + hp, he - hp))
            return fail(code, message, "url_invalid", msg_host);
    }
    r.host = (struct hl_str){u + hp, he - hp};
    r.port = r.https ? 443 : 80;
    if (p < ae) { /* u[p] == ':' */
        size_t d = ae - p - 1;
        unsigned v = 0;
        if (d == 0 || d > 5)
            return fail(code, message, "url_invalid", msg_port);
        for (size_t k = p + 1; k < ae; k++) {
            if (!is_digit(u[k]))
                return fail(code, message, "url_invalid", msg_port);
            v = v * 10 + (unsigned)(u[k] - '0');
        }
        if (v == 0 || v > 65535)
            return fail(code, message, "url_invalid", msg_port);
        r.port = (uint16_t)v;
        r.port_explicit = 1;
    }

    /* path and query */
    if (memchr(u + ae, '#', len - ae))
        return fail(code, message, "url_invalid", msg_fragment);
    for (size_t k = ae; k < len; k++) {
        if (u[k] == '%' && (len - k < 3 || !is_hex(u[k + 1]) || !is_hex(u[k + 2])))
            return fail(code, message, "url_invalid", msg_escape);
    }
    r.path = (struct hl_str){u + ae, len - ae};
    if (out)
        *out = r;
    return HL_OK;
}

int hl_url_check(const char *url, size_t len, int production, const char **code,
                 const char **message)
{
    struct hl_url r;
    int rc = parse(url, len, &r, code, message);
    if (rc != HL_OK)
        return rc;
    if (production && !r.https)
        return fail(code, message, "url_https_required", msg_https);
    return HL_OK;
}

int hl_url_parse(const char *url, size_t len, struct hl_url *out)
{
    return parse(url, len, out, NULL, NULL);
}

/* FNV-1a over s[0..n), lower-cased, continuing from h. */
static uint64_t fnv_lower(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        h = (h ^ c) * 1099511628211ull;
    }
    return h;
}

uint64_t hl_url_host_key(const char *url, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    struct hl_url u;
    if (hl_url_parse(url, len, &u) != HL_OK)
        return fnv_lower(h, url, url ? len : 0) | 1;
    char port[8];
    int pl = snprintf(port, sizeof(port), "]:%u", (unsigned)u.port);
    h = fnv_lower(h, u.https ? "https://[" : "http://[", u.https ? 9 : 8);
    h = fnv_lower(h, u.host.p, u.host.len);
    return fnv_lower(h, port, (size_t)pl) | 1;
}

/* ---- the libcurl hook ---- */

curl_socket_t hl_target_opensocket(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr)
{
    struct hl_target_guard *g = clientp;
    (void)purpose;
    if (g && g->enforce) {
        const char *why = "unsupported";
        char text[INET6_ADDRSTRLEN] = "?";
        struct sockaddr_storage ss;
        size_t need = addr->family == AF_INET    ? sizeof(struct sockaddr_in)
                      : addr->family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                 : sizeof(ss) + 1;
        if (addr->addrlen >= need && need <= sizeof(ss)) {
            memset(&ss, 0, sizeof(ss));
            memcpy(&ss, &addr->addr, need);
            why = hl_addr_blocked((const struct sockaddr *)&ss, g->allow);
            const void *bin = addr->family == AF_INET
                                  ? (const void *)&((const struct sockaddr_in *)&ss)->sin_addr
                                  : (const void *)&((const struct sockaddr_in6 *)&ss)->sin6_addr;
            if (!inet_ntop(addr->family, bin, text, sizeof(text)))
                snprintf(text, sizeof(text), "?");
        }
        if (why) {
            snprintf(g->refused, sizeof(g->refused), "refused address %s (%s)", text, why);
            return CURL_SOCKET_BAD;
        }
    }
    int type = addr->socktype;
#ifdef SOCK_CLOEXEC
    type |= SOCK_CLOEXEC;
#endif
    return socket(addr->family, type, addr->protocol);
}
