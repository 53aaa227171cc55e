#include "common/net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "common/err.h"

int hl_parse_listen_host(const char *host, int family, uint16_t port, struct sockaddr_storage *ss,
                         socklen_t *len)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    int v4 = family != AF_INET6, v6 = family != AF_INET;
    if (v4 && strcmp(host, "localhost") == 0) {
        a4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    } else if (!v4 || inet_pton(AF_INET, host, &a4->sin_addr) != 1) {
        if (!v6 || inet_pton(AF_INET6, host, &a6->sin6_addr) != 1)
            return HL_EINVAL;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(port);
        *len = sizeof(*a6);
        return HL_OK;
    }
    a4->sin_family = AF_INET;
    a4->sin_port = htons(port);
    *len = sizeof(*a4);
    return HL_OK;
}

int hl_parse_listen_addr(const char *addr, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[128];
    const char *colon = strrchr(addr, ':');
    if (!colon)
        return HL_EINVAL;
    size_t hl = (size_t)(colon - addr);
    if (hl >= sizeof(host))
        return HL_EINVAL;
    memcpy(host, addr, hl);
    host[hl] = '\0';
    long port = 0;
    const char *d = colon + 1;
    if (!*d)
        return HL_EINVAL;
    for (; *d; d++) {
        if (*d < '0' || *d > '9' || (port = port * 10 + (*d - '0')) > 65535)
            return HL_EINVAL;
    }
    if (host[0] == '[') {
        if (hl < 3 || host[hl - 1] != ']')
            return HL_EINVAL;
        host[hl - 1] = '\0';
        return hl_parse_listen_host(host + 1, AF_INET6, (uint16_t)port, ss, len);
    }
    return hl_parse_listen_host(host[0] ? host : "0.0.0.0", AF_INET, (uint16_t)port, ss, len);
}

int hl_parse_bind_host(const char *addr, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[64];
    size_t n = strlen(addr);
    if (n >= 2 && addr[0] == '[' && addr[n - 1] == ']') {
        addr++;
        n -= 2;
    }
    if (n >= sizeof(host))
        return HL_EINVAL;
    memcpy(host, addr, n);
    host[n] = '\0';
    return hl_parse_listen_host(strcmp(host, "*") == 0 ? "0.0.0.0" : host, AF_UNSPEC, port, ss,
                                len);
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* ---- CIDR lists ---- */

/* True when the first prefix bits of a and net agree. */
static int prefix_match(const uint8_t *a, const uint8_t *net, int prefix)
{
    int full = prefix / 8, rem = prefix % 8;
    if (full > 0 && memcmp(a, net, (size_t)full) != 0)
        return 0;
    if (rem == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xff << (8 - rem));
    return (a[full] & mask) == (net[full] & mask);
}

int hl_netlist_add(struct hl_netlist *nl, const char *cidr)
{
    char tmp[INET6_ADDRSTRLEN + 8];
    if (!nl || !cidr)
        return HL_EINVAL;
    size_t n = strnlen(cidr, sizeof(tmp));
    if (n == 0 || n >= sizeof(tmp))
        return HL_EINVAL;
    memcpy(tmp, cidr, n + 1);

    struct hl_net net;
    memset(&net, 0, sizeof(net));
    char *slash = strchr(tmp, '/');
    int prefix = -1;
    if (slash) {
        const char *d = slash + 1;
        size_t dl = strlen(d);
        if (dl == 0 || dl > 3)
            return HL_EINVAL;
        prefix = 0;
        for (size_t k = 0; k < dl; k++) {
            if (!is_digit(d[k]))
                return HL_EINVAL;
            prefix = prefix * 10 + (d[k] - '0');
        }
        *slash = '\0';
    }
    int max;
    if (inet_pton(AF_INET, tmp, net.addr) == 1) {
        net.family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, tmp, net.addr) == 1) {
        net.family = AF_INET6;
        max = 128;
    } else {
        return HL_EINVAL;
    }
    if (prefix < 0)
        prefix = max;
    if (prefix > max)
        return HL_EINVAL;
    net.prefix = prefix;
    for (int bit = prefix; bit < max; bit++)
        net.addr[bit / 8] &= (uint8_t) ~(0x80u >> (bit % 8));
    if (nl->n < 0 || nl->n >= HL_NETLIST_MAX)
        return HL_ETOOBIG;
    nl->nets[nl->n++] = net;
    return HL_OK;
}

int hl_netlist_add_list(struct hl_netlist *nl, const char *list)
{
    if (!nl || !list)
        return HL_EINVAL;
    const char *s = list;
    while (*s) {
        while (*s == ',' || *s == ' ' || *s == '\t')
            s++;
        size_t n = strcspn(s, ", \t");
        if (n == 0)
            break;
        char one[INET6_ADDRSTRLEN + 8];
        if (n >= sizeof(one))
            return HL_EINVAL;
        memcpy(one, s, n);
        one[n] = '\0';
        int rc = hl_netlist_add(nl, one);
        if (rc != HL_OK)
            return rc;
        s += n;
    }
    return HL_OK;
}

/* The address of sa as bytes: 4 for AF_INET, 16 for AF_INET6. Returns the family or 0. */
static int sa_bytes(const struct sockaddr *sa, uint8_t out[16])
{
    if (!sa)
        return 0;
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in in;
        memcpy(&in, sa, sizeof(in));
        memcpy(out, &in.sin_addr, 4);
        return AF_INET;
    }
    if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 in6;
        memcpy(&in6, sa, sizeof(in6));
        memcpy(out, &in6.sin6_addr, 16);
        return AF_INET6;
    }
    return 0;
}

static const uint8_t v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* For an IPv4-mapped (::ffff:a.b.c.d) or IPv4-compatible (::a.b.c.d) address, the IPv4 part. */
static const uint8_t *embedded_v4(const uint8_t a6[16])
{
    if (memcmp(a6, v4mapped_prefix, 12) == 0)
        return a6 + 12;
    static const uint8_t zero[12];
    if (memcmp(a6, zero, 12) == 0)
        return a6 + 12;
    return NULL;
}

static int list_has(const struct hl_netlist *nl, int family, const uint8_t *a)
{
    if (!nl)
        return 0;
    for (int i = 0; i < nl->n && i < HL_NETLIST_MAX; i++) {
        const struct hl_net *net = &nl->nets[i];
        if (net->family == family && prefix_match(a, net->addr, net->prefix))
            return 1;
    }
    return 0;
}

int hl_netlist_contains(const struct hl_netlist *nl, const struct sockaddr *sa)
{
    uint8_t a[16];
    int family = sa_bytes(sa, a);
    if (family == 0)
        return 0;
    if (list_has(nl, family, a))
        return 1;
    if (family == AF_INET6) {
        const uint8_t *v4 = embedded_v4(a);
        if (v4 && list_has(nl, AF_INET, v4))
            return 1;
    }
    return 0;
}

/* ---- address classes ---- */

struct range4 {
    uint8_t net[4];
    int prefix;
    const char *why;
};

/* First match wins: exact addresses before the ranges that hold them. */
static const struct range4 ranges4[] = {
    {{0, 0, 0, 0}, 8, "unspecified"},       {{255, 255, 255, 255}, 32, "broadcast"},
    {{169, 254, 169, 254}, 32, "metadata"}, /* AWS, GCP, Azure, ... */
    {{169, 254, 170, 2}, 32, "metadata"},   /* AWS ECS task metadata */
    {{100, 100, 100, 200}, 32, "metadata"}, /* Alibaba Cloud */
    {{192, 0, 0, 192}, 32, "metadata"},     /* Oracle Cloud */
    {{127, 0, 0, 0}, 8, "loopback"},        {{10, 0, 0, 0}, 8, "private"},
    {{172, 16, 0, 0}, 12, "private"},       {{192, 168, 0, 0}, 16, "private"},
    {{169, 254, 0, 0}, 16, "link-local"},   {{100, 64, 0, 0}, 10, "cgnat"},
    {{224, 0, 0, 0}, 4, "multicast"},       {{240, 0, 0, 0}, 4, "reserved"},
    {{192, 0, 0, 0}, 24, "reserved"},    /* IETF protocol assignments */
    {{192, 0, 2, 0}, 24, "reserved"},    /* TEST-NET-1 */
    {{192, 88, 99, 0}, 24, "reserved"},  /* 6to4 relay anycast (deprecated) */
    {{198, 18, 0, 0}, 15, "reserved"},   /* benchmarking */
    {{198, 51, 100, 0}, 24, "reserved"}, /* TEST-NET-2 */
    {{203, 0, 113, 0}, 24, "reserved"},  /* TEST-NET-3 */
};

/* embed >= 0: judge by the IPv4 address at that byte offset instead of why. */
struct range6 {
    uint8_t net[16];
    int prefix;
    int embed;
    const char *why;
};

static const struct range6 ranges6[] = {
    {{0}, 128, -1, "unspecified"},
    {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128, -1, "loopback"},
    {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}, 96, 12, NULL}, /* IPv4-mapped */
    {{0}, 96, 12, NULL},                                        /* IPv4-compatible */
    {{0x00, 0x64, 0xff, 0x9b}, 96, 12, NULL},                   /* NAT64 well-known prefix */
    {{0x00, 0x64, 0xff, 0x9b, 0, 1}, 48, -1, "reserved"},       /* local-use NAT64 */
    {{0}, 8, -1, "reserved"},                                   /* the rest of ::/8 */
    {{0x01, 0x00}, 64, -1, "reserved"},                         /* discard-only */
    {{0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54}, 128, -1, "metadata"},
    {{0xfc}, 7, -1, "private"},
    {{0xfe, 0xc0}, 10, -1, "private"}, /* site-local (deprecated) */
    {{0xfe, 0x80}, 10, -1, "link-local"},
    {{0xff}, 8, -1, "multicast"},
    {{0x20, 0x01, 0x00, 0x00}, 32, -1, "reserved"},       /* Teredo */
    {{0x20, 0x01, 0x00, 0x02, 0, 0}, 48, -1, "reserved"}, /* benchmarking */
    {{0x20, 0x01, 0x00, 0x10}, 28, -1, "reserved"},       /* ORCHID */
    {{0x20, 0x01, 0x00, 0x20}, 28, -1, "reserved"},       /* ORCHIDv2 */
    {{0x20, 0x01, 0x0d, 0xb8}, 32, -1, "reserved"},       /* documentation */
    {{0x3f, 0xff}, 20, -1, "reserved"},                   /* documentation */
    {{0x20, 0x02}, 16, 2, NULL},                          /* 6to4 */
};

static const uint8_t global_unicast[16] = {0x20};

static const char *judge4(const uint8_t a[4], const struct hl_netlist *allow)
{
    if (list_has(allow, AF_INET, a))
        return NULL;
    for (size_t i = 0; i < sizeof(ranges4) / sizeof(ranges4[0]); i++) {
        if (prefix_match(a, ranges4[i].net, ranges4[i].prefix))
            return ranges4[i].why;
    }
    return NULL;
}

const char *hl_addr_blocked(const struct sockaddr *sa, const struct hl_netlist *allow)
{
    uint8_t a[16];
    int family = sa_bytes(sa, a);
    if (family == 0)
        return "unsupported";
    if (family == AF_INET)
        return judge4(a, allow);
    if (list_has(allow, AF_INET6, a))
        return NULL;
    for (size_t i = 0; i < sizeof(ranges6) / sizeof(ranges6[0]); i++) {
        const struct range6 *r = &ranges6[i];
        if (!prefix_match(a, r->net, r->prefix))
            continue;
        return r->embed >= 0 ? judge4(a + r->embed, allow) : r->why;
    }
    if (!prefix_match(a, global_unicast, 3))
        return "reserved";
    return NULL;
}
