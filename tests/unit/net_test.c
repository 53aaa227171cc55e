/* Tests for src/common/net.c: listen addresses, whole (serve) and host only (listen). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "common/err.h"
#include "common/net.h"

struct host_case {
    const char *host;
    int family;       /* what the caller allows */
    int want_family;  /* 0: HL_EINVAL */
    const char *want; /* the address as inet_ntop prints it */
};

static const struct host_case host_cases[] = {
    {"127.0.0.1", AF_UNSPEC, AF_INET, "127.0.0.1"},
    {"0.0.0.0", AF_UNSPEC, AF_INET, "0.0.0.0"},
    {"192.168.1.20", AF_INET, AF_INET, "192.168.1.20"},
    {"localhost", AF_UNSPEC, AF_INET, "127.0.0.1"},
    {"localhost", AF_INET, AF_INET, "127.0.0.1"},
    {"::1", AF_UNSPEC, AF_INET6, "::1"},
    {"::", AF_INET6, AF_INET6, "::"},
    {"fe80::1:2", AF_INET6, AF_INET6, "fe80::1:2"},
    {"::ffff:10.0.0.1", AF_UNSPEC, AF_INET6, "::ffff:10.0.0.1"},
    /* the family limit */
    {"::1", AF_INET, 0, NULL},
    {"127.0.0.1", AF_INET6, 0, NULL},
    {"localhost", AF_INET6, 0, NULL},
    /* not literals */
    {"", AF_UNSPEC, 0, NULL},
    {"*", AF_UNSPEC, 0, NULL},
    {"[::1]", AF_UNSPEC, 0, NULL},
    {"example.com", AF_UNSPEC, 0, NULL},
    {"LOCALHOST", AF_UNSPEC, 0, NULL},
    {"256.0.0.1", AF_UNSPEC, 0, NULL},
    {"127.0.0.1:80", AF_UNSPEC, 0, NULL},
    {" 127.0.0.1", AF_UNSPEC, 0, NULL},
    {"::1::2", AF_UNSPEC, 0, NULL},
};

static void test_host_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(host_cases) / sizeof(host_cases[0]); i++) {
        const struct host_case *c = &host_cases[i];
        print_message("'%s' family %d\n", c->host, c->family);
        struct sockaddr_storage ss;
        socklen_t len = 0;
        int rc = hl_parse_listen_host(c->host, c->family, 8080, &ss, &len);
        if (!c->want_family) {
            assert_int_equal(rc, HL_EINVAL);
            continue;
        }
        assert_int_equal(rc, HL_OK);
        assert_int_equal(ss.ss_family, c->want_family);
        char text[INET6_ADDRSTRLEN];
        if (c->want_family == AF_INET) {
            const struct sockaddr_in *a4 = (const struct sockaddr_in *)&ss;
            assert_int_equal(len, sizeof(*a4));
            assert_int_equal(ntohs(a4->sin_port), 8080);
            assert_non_null(inet_ntop(AF_INET, &a4->sin_addr, text, sizeof(text)));
        } else {
            const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)&ss;
            assert_int_equal(len, sizeof(*a6));
            assert_int_equal(ntohs(a6->sin6_port), 8080);
            assert_int_equal(a6->sin6_scope_id, 0);
            assert_non_null(inet_ntop(AF_INET6, &a6->sin6_addr, text, sizeof(text)));
        }
        assert_string_equal(text, c->want);
    }
}

static void test_port_edges(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    socklen_t len;
    assert_int_equal(hl_parse_listen_host("127.0.0.1", AF_INET, 0, &ss, &len), HL_OK);
    assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 0);
    assert_int_equal(hl_parse_listen_host("::1", AF_INET6, 65535, &ss, &len), HL_OK);
    assert_int_equal(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), 65535);
}

struct addr_case {
    const char *text;
    int want_family; /* 0: HL_EINVAL */
    const char *want;
    unsigned port;
};

/* serve --listen: HOST:PORT */
static const struct addr_case addr_cases[] = {
    {"127.0.0.1:8080", AF_INET, "127.0.0.1", 8080},
    {":8080", AF_INET, "0.0.0.0", 8080},
    {"0.0.0.0:0", AF_INET, "0.0.0.0", 0},
    {"localhost:65535", AF_INET, "127.0.0.1", 65535},
    {"[::1]:8080", AF_INET6, "::1", 8080},
    {"[::]:1", AF_INET6, "::", 1},
    {"127.0.0.1:08080", AF_INET, "127.0.0.1", 8080},
    {"8080", 0, NULL, 0},
    {"127.0.0.1", 0, NULL, 0},
    {"127.0.0.1:", 0, NULL, 0},
    {"127.0.0.1:65536", 0, NULL, 0},
    {"127.0.0.1:99999999999999999999", 0, NULL, 0},
    {"127.0.0.1:-1", 0, NULL, 0},
    {"127.0.0.1:+80", 0, NULL, 0},
    {"127.0.0.1: 80", 0, NULL, 0},
    {"127.0.0.1:80x", 0, NULL, 0},
    {"::1:8080", 0, NULL, 0},
    {"[::1:8080", 0, NULL, 0},
    {"[]:8080", 0, NULL, 0},
    {"[127.0.0.1]:8080", 0, NULL, 0},
    {"example.com:80", 0, NULL, 0},
    {"", 0, NULL, 0},
};

/* listen --listen: a host alone */
static const struct addr_case bind_cases[] = {
    {"127.0.0.1", AF_INET, "127.0.0.1", 3000},
    {"*", AF_INET, "0.0.0.0", 3000},
    {"localhost", AF_INET, "127.0.0.1", 3000},
    {"::1", AF_INET6, "::1", 3000},
    {"[::1]", AF_INET6, "::1", 3000},
    {"[127.0.0.1]", AF_INET, "127.0.0.1", 3000},
    {"", 0, NULL, 0},
    {"[]", 0, NULL, 0},
    {"[", 0, NULL, 0},
    {"[::1", 0, NULL, 0},
    {"127.0.0.1:3000", 0, NULL, 0},
    {"not-an-address", 0, NULL, 0},
    {"**", 0, NULL, 0},
    {"1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb:cccc:dddd", 0, NULL, 0},
};

static void check_addr(const struct addr_case *c, int rc, const struct sockaddr_storage *ss)
{
    if (!c->want_family) {
        assert_int_equal(rc, HL_EINVAL);
        return;
    }
    assert_int_equal(rc, HL_OK);
    assert_int_equal(ss->ss_family, c->want_family);
    char got[INET6_ADDRSTRLEN];
    const void *a = c->want_family == AF_INET
                        ? (const void *)&((struct sockaddr_in *)ss)->sin_addr
                        : (const void *)&((struct sockaddr_in6 *)ss)->sin6_addr;
    assert_non_null(inet_ntop(c->want_family, a, got, sizeof(got)));
    assert_string_equal(got, c->want);
    unsigned port = ntohs(c->want_family == AF_INET ? ((struct sockaddr_in *)ss)->sin_port
                                                    : ((struct sockaddr_in6 *)ss)->sin6_port);
    assert_int_equal(port, c->port);
}

static void test_listen_addr_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(addr_cases) / sizeof(addr_cases[0]); i++) {
        print_message("'%s'\n", addr_cases[i].text);
        struct sockaddr_storage ss;
        socklen_t len;
        check_addr(&addr_cases[i], hl_parse_listen_addr(addr_cases[i].text, &ss, &len), &ss);
    }
    for (size_t i = 0; i < sizeof(bind_cases) / sizeof(bind_cases[0]); i++) {
        print_message("host '%s'\n", bind_cases[i].text);
        struct sockaddr_storage ss;
        socklen_t len;
        check_addr(&bind_cases[i], hl_parse_bind_host(bind_cases[i].text, 3000, &ss, &len), &ss);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_table),
        cmocka_unit_test(test_port_edges),
        cmocka_unit_test(test_listen_addr_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
