/* libFuzzer target for the delivery parsers: webhook URLs (and their host keys), CIDR ranges,
 * retry schedules and Retry-After values, plus the address classifier, all fed the same arbitrary
 * bytes. */
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/err.h"
#include "delivery/retry.h"
#include "delivery/target.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
    if (!ok)
        abort();
}

static int inside(struct hl_str s, const char *p, size_t n)
{
    return s.len == 0 || (s.p >= p && s.len <= n && (size_t)(s.p - p) <= n - s.len);
}

static void fuzz_url(const char *p, size_t n)
{
    const char *code = NULL, *message = NULL;
    int rc = hl_url_check(p, n, 0, &code, &message);
    check(rc == HL_OK || (rc == HL_EINVAL && code && message));
    int rc_prod = hl_url_check(p, n, 1, &code, &message);
    check(rc_prod == HL_OK || rc_prod == HL_EINVAL);
    check(rc != HL_OK || rc_prod == HL_OK || strcmp(code, "url_https_required") == 0);

    struct hl_url u;
    int prc = hl_url_parse(p, n, &u);
    check(prc == rc);
    if (prc == HL_OK) {
        check(n <= HL_URL_MAX);
        check(inside(u.scheme, p, n) && inside(u.host, p, n) && inside(u.path, p, n));
        check(u.host.len > 0 && u.port > 0);
        check(u.path.len == 0 || u.path.p[0] == '/' || u.path.p[0] == '?');
        check(memchr(p, '@', (size_t)(u.host.p - p)) == NULL);
        /* the host key is the canonical origin's, scheme://host:port */
        char canon[HL_URL_MAX + 32];
        int cl = snprintf(canon, sizeof(canon), u.ipv6 ? "%s://[%.*s]:%u" : "%s://%.*s:%u",
                          u.https ? "https" : "http", (int)u.host.len, u.host.p, u.port);
        check(cl > 0 && (size_t)cl < sizeof(canon));
        check(hl_url_host_key(canon, (size_t)cl) == hl_url_host_key(p, n));
    }
    check(hl_url_host_key(p, n) != 0);
}

static void fuzz_netlist(const char *s, const uint8_t *data, size_t size)
{
    struct hl_netlist nl = {0};
    int rc = hl_netlist_add(&nl, s);
    check(rc == HL_OK || rc == HL_EINVAL);
    check(nl.n == (rc == HL_OK ? 1 : 0));
    if (rc == HL_OK) {
        /* the range contains its own first address */
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof(ss));
        if (nl.nets[0].family == AF_INET) {
            struct sockaddr_in *in = (struct sockaddr_in *)&ss;
            in->sin_family = AF_INET;
            memcpy(&in->sin_addr, nl.nets[0].addr, 4);
        } else {
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
            in6->sin6_family = AF_INET6;
            memcpy(&in6->sin6_addr, nl.nets[0].addr, 16);
        }
        check(hl_netlist_contains(&nl, (struct sockaddr *)&ss) == 1);
        check(hl_addr_blocked((struct sockaddr *)&ss, &nl) == NULL);
    }
    struct hl_netlist many = {0};
    rc = hl_netlist_add_list(&many, s);
    check(rc == HL_OK || rc == HL_EINVAL || rc == HL_ETOOBIG);
    check(many.n >= 0 && many.n <= HL_NETLIST_MAX);

    /* classify the raw bytes as addresses */
    if (size >= 4) {
        struct sockaddr_in in;
        memset(&in, 0, sizeof(in));
        in.sin_family = AF_INET;
        memcpy(&in.sin_addr, data, 4);
        (void)hl_addr_blocked((struct sockaddr *)&in, &many);
    }
    if (size >= 16) {
        struct sockaddr_in6 in6;
        memset(&in6, 0, sizeof(in6));
        in6.sin6_family = AF_INET6;
        memcpy(&in6.sin6_addr, data, 16);
        (void)hl_addr_blocked((struct sockaddr *)&in6, NULL);
        (void)hl_netlist_contains(&many, (struct sockaddr *)&in6);
    }
}

static void fuzz_retry(const char *s, const char *p, size_t n)
{
    struct hl_retry r;
    if (hl_retry_parse(s, &r) == HL_OK) {
        check(r.n >= 1 && r.n <= HL_RETRY_MAX);
        for (int i = 0; i < r.n; i++) {
            check(r.delays_ms[i] >= 0 && r.delays_ms[i] <= HL_RETRY_MAX_DELAY_MS);
            int64_t lo = hl_retry_delay(&r, i, 0), hi = hl_retry_delay(&r, i, UINT32_MAX);
            check(lo >= 0 && lo <= r.delays_ms[i] && hi >= r.delays_ms[i]);
        }
        check(hl_retry_delay(&r, r.n, 0) == -1);
    }
    int64_t d = -1;
    int rc = hl_retry_after(p, n, 1700000000000LL, &d);
    check(rc == HL_EINVAL || (rc == HL_OK && d >= 0));
    if (rc == HL_OK) {
        int64_t c = hl_retry_clamp_after(d);
        check(c >= HL_RETRY_AFTER_MIN_MS && c <= HL_RETRY_AFTER_MAX_MS);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exact-size copy so that ASan sees any read past the length */
    char *p = malloc(size ? size : 1);
    char *s = malloc(size + 1);
    if (!p || !s) {
        free(p);
        free(s);
        return 0;
    }
    memcpy(p, data, size);
    memcpy(s, data, size);
    s[size] = '\0';

    fuzz_url(p, size);
    fuzz_netlist(s, data, size);
    fuzz_retry(s, p, size);

    free(p);
    free(s);
    return 0;
}
