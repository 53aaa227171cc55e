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
