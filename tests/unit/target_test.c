/* Tests for src/delivery/target.c: URL checks, CIDR lists, address classes and the libcurl hook. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "common/err.h"
#include "delivery/target.h"

/* ---- URLs ---- */

struct url_case {
    const char *url;
    int production;
    const char *code; /* NULL: accepted */
};

static const struct url_case url_cases[] = {
    /* accepted */
    {"https://example.com/webhook", 1, NULL},
    {"https://example.com", 1, NULL},
    {"HTTPS://Example.COM/Hook?x=1&y=%20z", 1, NULL},
    {"http://localhost:8080/hook", 0, NULL},
    {"http://127.0.0.1:9000/", 0, NULL},
    {"https://[::1]:8443/x", 1, NULL},
    {"https://[2606:4700::1111]/", 1, NULL},
    {"https://example.com.:443/a/b", 1, NULL},
    {"https://my_host.example-1.com/", 1, NULL},
    {"https://example.com?only=query", 1, NULL},
    {"https://example.com:65535/", 1, NULL},
    {"https://example.com/a[]=1|{x}", 1, NULL},
    {"https://255.255.255.255/", 1, NULL},
    {"https://1e100.net/", 1, NULL},
    /* url_not_absolute */
    {"", 0, "url_not_absolute"},
    {"example.com/hook", 0, "url_not_absolute"},
    {"//example.com/hook", 0, "url_not_absolute"},
    {"/hook", 0, "url_not_absolute"},
    {"localhost:8080/hook", 0, "url_not_absolute"},
    {"https:/example.com", 0, "url_not_absolute"},
    {"https:example.com", 0, "url_not_absolute"},
    {"://example.com", 0, "url_not_absolute"},
    {"1http://example.com", 0, "url_not_absolute"},
    {"mailto:ops@example.com", 0, "url_not_absolute"},
    /* url_scheme */
    {"ftp://example.com/", 0, "url_scheme"},
    {"file:///etc/passwd", 0, "url_scheme"},
    {"gopher://127.0.0.1:6379/_x", 0, "url_scheme"},
    {"httpss://example.com/", 0, "url_scheme"},
    {"ws://example.com/", 0, "url_scheme"},
    {"dict://example.com/", 1, "url_scheme"},
    /* url_credentials */
    {"https://user:pass@example.com/", 0, "url_credentials"},
    {"https://user@example.com/", 0, "url_credentials"},
    {"https://@example.com/", 0, "url_credentials"},
    {"https://good.com@evil.com/", 0, "url_credentials"},
    {"http://a:b@127.0.0.1:80/", 1, "url_credentials"},
    /* url_https_required */
    {"http://example.com/hook", 1, "url_https_required"},
    {"HTTP://example.com/hook", 1, "url_https_required"},
    {"http://localhost:8080/", 1, "url_https_required"},
    /* url_invalid: host */
    {"https:///path", 0, "url_invalid"},
    {"https://", 0, "url_invalid"},
    {"https://:443/", 0, "url_invalid"},
    {"https://exa$mple.com/", 0, "url_invalid"},
    {"https://-example.com/", 0, "url_invalid"},
    {"https://example-.com/", 0, "url_invalid"},
    {"https://example..com/", 0, "url_invalid"},
    {"https://.example.com/", 0, "url_invalid"},
    {"https://example.com../", 0, "url_invalid"},
    {"https://127.1/", 0, "url_invalid"},
    {"https://2130706433/", 0, "url_invalid"},
    {"https://0x7f.0.0.1/", 0, "url_invalid"},
    {"https://0177.0.0.1/", 0, "url_invalid"},
    {"https://1.2.3.4.5/", 0, "url_invalid"},
    {"https://256.0.0.1/", 0, "url_invalid"},
    {"https://1.2.3.4./", 0, "url_invalid"},
    {"https://ex%41mple.com/", 0, "url_invalid"},
    {"https://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com/", 0,
     "url_invalid"},
    /* url_invalid: IPv6 literals */
    {"https://[::1/", 0, "url_invalid"},
    {"https://::1/", 0, "url_invalid"},
    {"https://[::1/]", 0, "url_invalid"},
    {"https://[]/", 0, "url_invalid"},
    {"https://[::g]/", 0, "url_invalid"},
    {"https://[fe80::1%25eth0]/", 0, "url_invalid"},
    {"https://[::1]x/", 0, "url_invalid"},
    {"https://[::1]]/", 0, "url_invalid"},
    {"https://[127.0.0.1]/", 0, "url_invalid"},
    {"https://ex]ample.com/", 0, "url_invalid"},
    /* url_invalid: port */
    {"https://example.com:/", 0, "url_invalid"},
    {"https://example.com:0/", 0, "url_invalid"},
    {"https://example.com:65536/", 0, "url_invalid"},
    {"https://example.com:99999/", 0, "url_invalid"},
    {"https://example.com:123456/", 0, "url_invalid"},
    {"https://example.com:8o/", 0, "url_invalid"},
    {"https://example.com:-1/", 0, "url_invalid"},
    {"https://example.com:+80/", 0, "url_invalid"},
    {"https://example.com:80:80/", 0, "url_invalid"},
    {"https://[::1]:/", 0, "url_invalid"},
    /* url_invalid: characters, escapes, fragment */
    {"https://example.com/a b", 0, "url_invalid"},
    {"https://exa mple.com/", 0, "url_invalid"},
    {" https://example.com/", 0, "url_invalid"},
    {"https://example.com/\t", 0, "url_invalid"},
    {"https://example.com/\r\nX-Injected: 1", 0, "url_invalid"},
    {"https://example.com/\x7f", 0, "url_invalid"},
    {"https://ex\xc3\xa4mple.com/", 0, "url_invalid"},
    {"https://evil.com\\@good.com/", 0, "url_invalid"},
    {"https://example.com/\"x\"", 0, "url_invalid"},
    {"https://example.com/<script>", 0, "url_invalid"},
    {"https://example.com/%", 0, "url_invalid"},
    {"https://example.com/%4", 0, "url_invalid"},
    {"https://example.com/%zz", 0, "url_invalid"},
    {"https://example.com/hook#frag", 0, "url_invalid"},
    {"https://example.com#", 0, "url_invalid"},
    /* the character check comes before the scheme check */
    {"ftp://exa mple.com/", 0, "url_invalid"},
};

static void test_url_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(url_cases) / sizeof(url_cases[0]); i++) {
        const struct url_case *c = &url_cases[i];
        const char *code = "untouched", *message = "untouched";
        int rc = hl_url_check(c->url, strlen(c->url), c->production, &code, &message);
        if (c->code == NULL) {
            if (rc != HL_OK)
                print_error("case %zu %s: unexpected %s\n", i, c->url, code);
            assert_int_equal(rc, HL_OK);
            assert_string_equal(code, "untouched");
            continue;
        }
        if (rc != HL_EINVAL || strcmp(code, c->code) != 0)
            print_error("case %zu %s: want %s, got rc %d %s\n", i, c->url, c->code, rc,
                        rc ? code : "-");
        assert_int_equal(rc, HL_EINVAL);
        assert_string_equal(code, c->code);
        assert_non_null(strstr(message, "url"));
    }
}

static void test_url_length(void **state)
{
    (void)state;
    char url[HL_URL_MAX + 2];
    const char *pre = "https://example.com/";
    size_t pl = strlen(pre);
    memcpy(url, pre, pl);
    memset(url + pl, 'a', sizeof(url) - pl);
    const char *code = NULL, *message = NULL;
    assert_int_equal(hl_url_check(url, HL_URL_MAX, 1, &code, &message), HL_OK);
    assert_int_equal(hl_url_check(url, HL_URL_MAX + 1, 1, &code, &message), HL_EINVAL);
    assert_string_equal(code, "url_too_long");
    assert_non_null(strstr(message, "url"));
    /* the length is checked before anything else */
    assert_int_equal(hl_url_check("x", HL_URL_MAX + 1, 0, &code, &message), HL_EINVAL);
    assert_string_equal(code, "url_too_long");
    /* bytes past len are never looked at; an embedded NUL is a control character */
    assert_int_equal(hl_url_check("https://example.com/#x", 20, 0, NULL, NULL), HL_OK);
    assert_int_equal(hl_url_check("https://a.com/\0x", 16, 0, &code, NULL), HL_EINVAL);
    assert_string_equal(code, "url_invalid");
    assert_int_equal(hl_url_check(NULL, 0, 0, &code, NULL), HL_EINVAL);
    assert_string_equal(code, "url_not_absolute");
}

struct parse_case {
    const char *url;
    const char *scheme, *host, *path;
    int port, https, port_explicit, ipv6;
};

static const struct parse_case parse_cases[] = {
    {"https://example.com/webhook?a=1", "https", "example.com", "/webhook?a=1", 443, 1, 0, 0},
    {"http://example.com", "http", "example.com", "", 80, 0, 0, 0},
    {"HtTp://Example.com:8080?q", "HtTp", "Example.com", "?q", 8080, 0, 1, 0},
    {"https://[::1]:8443/x", "https", "::1", "/x", 8443, 1, 1, 1},
    {"https://[2001:db8::1]", "https", "2001:db8::1", "", 443, 1, 0, 1},
    {"http://10.0.0.1:1/", "http", "10.0.0.1", "/", 1, 0, 1, 0},
};

static void test_url_parse(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
        const struct parse_case *c = &parse_cases[i];
        struct hl_url u;
        assert_int_equal(hl_url_parse(c->url, strlen(c->url), &u), HL_OK);
        assert_true(hl_str_eqc(u.scheme, c->scheme));
        assert_true(hl_str_eqc(u.host, c->host));
        assert_true(hl_str_eqc(u.path, c->path));
        assert_int_equal(u.port, c->port);
        assert_int_equal(u.https, c->https);
        assert_int_equal(u.port_explicit, c->port_explicit);
        assert_int_equal(u.ipv6, c->ipv6);
    }
    struct hl_url u;
    assert_int_equal(hl_url_parse("ftp://x.com/", 12, &u), HL_EINVAL);
    assert_int_equal(hl_url_parse("https://u@x.com/", 16, &u), HL_EINVAL);
    /* parse does not apply the production rule */
    assert_int_equal(hl_url_parse("http://x.com/", 13, &u), HL_OK);
}

/* ---- host keys ---- */

/* Each URL connects where its canonical form (scheme://host:port) does. */
struct host_key_case {
    const char *url, *same_as;
};

static const struct host_key_case host_key_cases[] = {
    {"http://example.com/webhook", "http://example.com:80"},
    {"http://example.com:0080/", "http://example.com:80"},
    {"http://example.com:00080", "http://example.com:80"},
    {"https://example.com?x=1", "https://example.com:443"},
    {"https://example.com:00443/a", "https://example.com:443"},
    {"HTTPS://Example.COM/", "https://example.com:443"},
    {"HtTp://EXAMPLE.com:8080/x?y", "http://example.com:8080"},
    {"https://[::1]/", "https://[::1]:443"},
    {"http://[FE80::1]:8080/", "http://[fe80::1]:8080"},
    {"http://10.0.0.1?q", "http://10.0.0.1:80"},
    {"http://example.com:80/a%20b", "http://example.com/"},
};

/* Different places: every pair has different keys. The last ones are refused by hl_url_parse. */
static const char *const host_key_distinct[] = {
    "http://example.com:80",
    "https://example.com:443",
    "http://example.com:443",
    "https://example.com:80",
    "http://example.com:8080",
    "http://example.org:80",
    "http://a.example.com:80",
    "http://[::1]:80",
    "http://127.0.0.1:80",
    "http://[::ffff:127.0.0.1]:80",
    "ftp://example.com/",
    "hxxps://example.com/",
    "not a url",
};

static void test_host_key(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(host_key_cases) / sizeof(host_key_cases[0]); i++) {
        const struct host_key_case *c = &host_key_cases[i];
        uint64_t a = hl_url_host_key(c->url, strlen(c->url));
        uint64_t b = hl_url_host_key(c->same_as, strlen(c->same_as));
        if (a != b)
            print_error("case %zu: %s and %s have different keys\n", i, c->url, c->same_as);
        assert_true(a == b);
        assert_true(a != 0);
        /* only the first len bytes count */
        char buf[128];
        snprintf(buf, sizeof(buf), "%s/more", c->same_as);
        assert_true(hl_url_host_key(buf, strlen(c->same_as)) == b);
    }
    size_t n = sizeof(host_key_distinct) / sizeof(host_key_distinct[0]);
    for (size_t i = 0; i < n; i++) {
        const char *u = host_key_distinct[i];
        uint64_t a = hl_url_host_key(u, strlen(u));
        assert_true(a != 0);
        for (size_t k = 0; k < i; k++) {
            const char *v = host_key_distinct[k];
            if (a == hl_url_host_key(v, strlen(v)))
                print_error("%s and %s have the same key\n", u, v);
            assert_true(a != hl_url_host_key(v, strlen(v)));
        }
    }
    assert_true(hl_url_host_key("", 0) != 0);
}

/* ---- addresses ---- */

static socklen_t make_addr(const char *text, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, text, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons(443);
        return sizeof(*in);
    }
    if (inet_pton(AF_INET6, text, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(443);
        return sizeof(*in6);
    }
    fail_msg("bad test address %s", text);
    return 0;
}

struct addr_case {
    const char *addr;
    const char *why; /* NULL: allowed */
};

static const struct addr_case addr_cases[] = {
    /* public */
    {"8.8.8.8", NULL},
    {"1.1.1.1", NULL},
    {"93.184.216.34", NULL},
    {"2606:4700::1111", NULL},
    {"2001:4860:4860::8888", NULL},
    {"2a00:1450:4001:82b::200e", NULL},
    /* boundaries */
    {"9.255.255.255", NULL},
    {"10.0.0.0", "private"},
    {"10.255.255.255", "private"},
    {"11.0.0.0", NULL},
    {"172.15.255.255", NULL},
    {"172.16.0.0", "private"},
    {"172.31.255.255", "private"},
    {"172.32.0.0", NULL},
    {"192.167.255.255", NULL},
    {"192.168.0.0", "private"},
    {"192.168.255.255", "private"},
    {"192.169.0.0", NULL},
    {"100.63.255.255", NULL},
    {"100.64.0.0", "cgnat"},
    {"100.127.255.255", "cgnat"},
    {"100.128.0.0", NULL},
    {"126.255.255.255", NULL},
    {"127.0.0.0", "loopback"},
    {"127.0.0.1", "loopback"},
    {"127.255.255.254", "loopback"},
    {"128.0.0.0", NULL},
    {"169.253.255.255", NULL},
    {"169.254.0.0", "link-local"},
    {"169.254.169.253", "link-local"},
    {"169.254.169.254", "metadata"},
    {"169.254.169.255", "link-local"},
    {"169.254.170.2", "metadata"},
    {"169.254.255.255", "link-local"},
    {"169.255.0.0", NULL},
    {"100.100.100.200", "metadata"},
    {"192.0.0.192", "metadata"},
    {"0.0.0.0", "unspecified"},
    {"0.255.255.255", "unspecified"},
    {"1.0.0.0", NULL},
    {"223.255.255.255", NULL},
    {"224.0.0.0", "multicast"},
    {"239.255.255.250", "multicast"},
    {"240.0.0.0", "reserved"},
    {"255.255.255.254", "reserved"},
    {"255.255.255.255", "broadcast"},
    {"192.0.0.8", "reserved"},
    {"192.0.1.0", NULL},
    {"192.0.2.1", "reserved"},
    {"192.88.99.1", "reserved"},
    {"198.17.255.255", NULL},
    {"198.18.0.0", "reserved"},
    {"198.19.255.255", "reserved"},
    {"198.20.0.0", NULL},
    {"198.51.100.7", "reserved"},
    {"203.0.113.255", "reserved"},
    {"203.0.114.0", NULL},
    /* IPv6 */
    {"::", "unspecified"},
    {"::1", "loopback"},
    {"::2", "unspecified"}, /* IPv4-compatible 0.0.0.2 */
    {"fc00::1", "private"},
    {"fd12:3456::1", "private"},
    {"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "private"},
    {"fec0::1", "private"},
    {"fe80::1", "link-local"},
    {"febf:ffff::1", "link-local"},
    {"ff02::1", "multicast"},
    {"ff0e::101", "multicast"},
    {"fd00:ec2::254", "metadata"},
    {"fd00:ec2::253", "private"},
    {"2001:db8::1", "reserved"},
    {"2001:db8:ffff::1", "reserved"},
    {"2001:db9::1", NULL},
    {"2001::1", "reserved"},
    {"2001:2::1", "reserved"},
    {"2001:10::1", "reserved"},
    {"2001:20::1", "reserved"},
    {"3fff::1", "reserved"},
    {"100::1", "reserved"},
    {"0:0:0:0:1::1", "reserved"},
    {"::ffff:0:7f00:1", "reserved"}, /* SIIT IPv4-translated */
    {"4000::1", "reserved"},
    {"5f00::1", "reserved"},
    {"1fff:ffff::1", "reserved"},
    {"2000::1", NULL},
    {"3ffe:ffff::1", NULL},
    /* IPv4-mapped and IPv4-compatible: judged by the IPv4 address */
    {"::ffff:127.0.0.1", "loopback"},
    {"::ffff:10.1.2.3", "private"},
    {"::ffff:169.254.169.254", "metadata"},
    {"::ffff:172.16.0.1", "private"},
    {"::ffff:172.15.255.255", NULL},
    {"::ffff:0.0.0.0", "unspecified"},
    {"::ffff:8.8.8.8", NULL},
    {"::127.0.0.1", "loopback"},
    {"::10.0.0.1", "private"},
    {"::8.8.8.8", NULL},
    /* NAT64 and 6to4: judged by the embedded IPv4 address */
    {"64:ff9b::127.0.0.1", "loopback"},
    {"64:ff9b::169.254.169.254", "metadata"},
    {"64:ff9b::192.168.1.1", "private"},
    {"64:ff9b::8.8.8.8", NULL},
    {"64:ff9b:1::8.8.8.8", "reserved"},
    {"2002:7f00:1::1", "loopback"},
    {"2002:a00:1::", "private"},
    {"2002:a9fe:a9fe::1", "metadata"},
    {"2002:808:808::1", NULL},
};

static void test_addr_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(addr_cases) / sizeof(addr_cases[0]); i++) {
        const struct addr_case *c = &addr_cases[i];
        struct sockaddr_storage ss;
        make_addr(c->addr, &ss);
        const char *why = hl_addr_blocked((struct sockaddr *)&ss, NULL);
        if ((why == NULL) != (c->why == NULL) || (why && strcmp(why, c->why) != 0))
            print_error("case %zu %s: want %s, got %s\n", i, c->addr, c->why ? c->why : "allowed",
                        why ? why : "allowed");
        if (c->why == NULL) {
            assert_null(why);
        } else {
            assert_non_null(why);
            assert_string_equal(why, c->why);
        }
    }
    struct sockaddr sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_family = AF_UNIX;
    assert_string_equal(hl_addr_blocked(&sa, NULL), "unsupported");
    assert_string_equal(hl_addr_blocked(NULL, NULL), "unsupported");
}

/* ---- CIDR lists ---- */

struct cidr_case {
    const char *cidr;
    int rc;
};

static const struct cidr_case cidr_cases[] = {
    {"10.0.0.0/8", HL_OK},
    {"127.0.0.1", HL_OK},
    {"::1/128", HL_OK},
    {"fd00::/8", HL_OK},
    {"0.0.0.0/0", HL_OK},
    {"::/0", HL_OK},
    {"192.168.1.77/24", HL_OK},
    {"1.2.3.4/32", HL_OK},
    {"::ffff:10.0.0.0/104", HL_OK},
    {"10.0.0.0/008", HL_OK},
    {"", HL_EINVAL},
    {"/", HL_EINVAL},
    {"/8", HL_EINVAL},
    {"10.0.0.0/", HL_EINVAL},
    {"10.0.0.0/33", HL_EINVAL},
    {"10.0.0.0/-1", HL_EINVAL},
    {"10.0.0.0/+8", HL_EINVAL},
    {"10.0.0.0/8/8", HL_EINVAL},
    {"10.0.0.0/1000", HL_EINVAL},
    {"10.0.0.0/ 8", HL_EINVAL},
    {" 10.0.0.0/8", HL_EINVAL},
    {"::/129", HL_EINVAL},
    {"10.0.0/8", HL_EINVAL},
    {"10.0.0.256", HL_EINVAL},
    {"localhost", HL_EINVAL},
    {"[::1]", HL_EINVAL},
    {"fe80::1%eth0", HL_EINVAL},
    {"1:2:3:4:5:6:7:8:9", HL_EINVAL},
    {"ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128xxxxxxxxxxxxxxxxxxx", HL_EINVAL},
};

static void test_netlist_parse(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cidr_cases) / sizeof(cidr_cases[0]); i++) {
        struct hl_netlist nl = {0};
        int rc = hl_netlist_add(&nl, cidr_cases[i].cidr);
        if (rc != cidr_cases[i].rc)
            print_error("case %zu '%s': want %d, got %d\n", i, cidr_cases[i].cidr, cidr_cases[i].rc,
                        rc);
        assert_int_equal(rc, cidr_cases[i].rc);
        assert_int_equal(nl.n, rc == HL_OK ? 1 : 0);
    }
    struct hl_netlist nl = {0};
    assert_int_equal(hl_netlist_add(&nl, "192.168.1.77/20"), HL_OK);
    assert_int_equal(nl.nets[0].family, AF_INET);
    assert_int_equal(nl.nets[0].prefix, 20);
    static const uint8_t want[4] = {192, 168, 0, 0};
    assert_memory_equal(nl.nets[0].addr, want, 4);

    memset(&nl, 0, sizeof(nl));
    for (int i = 0; i < HL_NETLIST_MAX; i++)
        assert_int_equal(hl_netlist_add(&nl, "10.0.0.0/8"), HL_OK);
    assert_int_equal(hl_netlist_add(&nl, "10.0.0.0/8"), HL_ETOOBIG);
    assert_int_equal(nl.n, HL_NETLIST_MAX);

    memset(&nl, 0, sizeof(nl));
    assert_int_equal(hl_netlist_add_list(&nl, "10.0.0.0/8, ::1,,127.0.0.1\t fd00::/8 "), HL_OK);
    assert_int_equal(nl.n, 4);
    assert_int_equal(hl_netlist_add_list(&nl, ""), HL_OK);
    assert_int_equal(hl_netlist_add_list(&nl, "1.2.3.4,junk"), HL_EINVAL);
    assert_int_equal(nl.n, 5);
}

struct contains_case {
    const char *addr;
    int in;
};

static void test_netlist_contains(void **state)
{
    (void)state;
    struct hl_netlist nl = {0};
    assert_int_equal(hl_netlist_add_list(&nl, "10.0.0.0/8,192.168.1.5,fd00::/8,2001:db8::/33,"
                                              "172.16.0.0/13"),
                     HL_OK);
    static const struct contains_case cases[] = {
        {"10.0.0.0", 1},          {"10.255.255.255", 1},
        {"11.0.0.0", 0},          {"9.255.255.255", 0},
        {"192.168.1.5", 1},       {"192.168.1.4", 0},
        {"192.168.1.6", 0},       {"172.16.0.1", 1},
        {"172.23.255.255", 1},    {"172.24.0.0", 0},
        {"fd00::1", 1},           {"fdff::1", 1},
        {"fc00::1", 0},           {"2001:db8::1", 1},
        {"2001:db8:7fff::1", 1},  {"2001:db8:8000::1", 0},
        {"::ffff:10.1.1.1", 1}, /* mapped matches IPv4 ranges */
        {"::10.1.1.1", 1},        {"::ffff:11.1.1.1", 0},
        {"64:ff9b::10.1.1.1", 0}, {"::1", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sockaddr_storage ss;
        make_addr(cases[i].addr, &ss);
        int in = hl_netlist_contains(&nl, (struct sockaddr *)&ss);
        if (in != cases[i].in)
            print_error("case %zu %s: want %d\n", i, cases[i].addr, cases[i].in);
        assert_int_equal(in, cases[i].in);
    }
    struct hl_netlist empty = {0}, all = {0};
    assert_int_equal(hl_netlist_add_list(&all, "0.0.0.0/0 ::/0"), HL_OK);
    struct sockaddr_storage ss;
    make_addr("8.8.8.8", &ss);
    assert_int_equal(hl_netlist_contains(&empty, (struct sockaddr *)&ss), 0);
    assert_int_equal(hl_netlist_contains(&all, (struct sockaddr *)&ss), 1);
    make_addr("2606:4700::1111", &ss);
    assert_int_equal(hl_netlist_contains(&all, (struct sockaddr *)&ss), 1);
}

static void test_allow_override(void **state)
{
    (void)state;
    struct hl_netlist allow = {0};
    assert_int_equal(hl_netlist_add_list(&allow, "127.0.0.1,10.1.0.0/16,fd00::/8"), HL_OK);
    static const struct addr_case cases[] = {
        {"127.0.0.1", NULL},
        {"127.0.0.2", "loopback"},
        {"10.1.2.3", NULL},
        {"10.2.0.1", "private"},
        {"::ffff:127.0.0.1", NULL},
        {"::ffff:10.1.9.9", NULL},
        {"64:ff9b::10.1.0.1", NULL},
        {"2002:a01:1::1", NULL},
        {"fd12::1", NULL},
        {"fd00:ec2::254", NULL},
        {"fc00::1", "private"},
        {"::1", "loopback"},
        {"169.254.169.254", "metadata"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sockaddr_storage ss;
        make_addr(cases[i].addr, &ss);
        const char *why = hl_addr_blocked((struct sockaddr *)&ss, &allow);
        if ((why == NULL) != (cases[i].why == NULL))
            print_error("case %zu %s\n", i, cases[i].addr);
        if (cases[i].why == NULL) {
            assert_null(why);
        } else {
            assert_non_null(why);
            assert_string_equal(why, cases[i].why);
        }
    }
}

/* ---- the libcurl hook, for real, on loopback ---- */

/* A loopback port with nothing listening: bind to port 0, note the port, close. */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in in;
    memset(&in, 0, sizeof(in));
    in.sin_family = AF_INET;
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&in, sizeof(in)), 0);
    socklen_t len = sizeof(in);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&in, &len), 0);
    close(fd);
    return ntohs(in.sin_port);
}

static CURLcode fetch(const char *url, struct hl_target_guard *g)
{
    CURL *h = curl_easy_init();
    assert_non_null(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROXY, "");
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, hl_target_opensocket);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, g);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_cleanup(h);
    return rc;
}

static void test_curl_guard(void **state)
{
    (void)state;
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", closed_port());

    struct hl_target_guard g = {.allow = NULL, .enforce = 1};
    assert_int_equal(fetch(url, &g), CURLE_COULDNT_CONNECT);
    assert_string_equal(g.refused, "refused address 127.0.0.1 (loopback)");

    /* not enforced: curl really connects, and the closed port refuses it */
    memset(&g, 0, sizeof(g));
    assert_int_equal(fetch(url, &g), CURLE_COULDNT_CONNECT);
    assert_string_equal(g.refused, "");

    /* enforced, but the address is allow-listed */
    struct hl_netlist allow = {0};
    assert_int_equal(hl_netlist_add(&allow, "127.0.0.0/8"), HL_OK);
    memset(&g, 0, sizeof(g));
    g.allow = &allow;
    g.enforce = 1;
    assert_int_equal(fetch(url, &g), CURLE_COULDNT_CONNECT);
    assert_string_equal(g.refused, "");

    /* a name is checked after DNS: localhost resolves to loopback and is refused */
    snprintf(url, sizeof(url), "http://localhost:%d/hook", closed_port());
    memset(&g, 0, sizeof(g));
    g.enforce = 1;
    assert_int_equal(fetch(url, &g), CURLE_COULDNT_CONNECT);
    assert_non_null(strstr(g.refused, "refused address "));
    assert_non_null(strstr(g.refused, " (loopback)"));
}

static void test_opensocket_direct(void **state)
{
    (void)state;
    struct {
        struct curl_sockaddr a;
        struct sockaddr_storage room;
    } s;
    memset(&s, 0, sizeof(s));
    s.a.family = AF_INET6;
    s.a.socktype = SOCK_STREAM;
    s.a.protocol = 0;
    s.a.addrlen = sizeof(struct sockaddr_in6);
    struct sockaddr_in6 in6;
    memset(&in6, 0, sizeof(in6));
    in6.sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, "fd00:ec2::254", &in6.sin6_addr), 1);
    memcpy(&s.a.addr, &in6, sizeof(in6));

    struct hl_target_guard g = {.enforce = 1};
    assert_int_equal(hl_target_opensocket(&g, CURLSOCKTYPE_IPCXN, &s.a), CURL_SOCKET_BAD);
    assert_string_equal(g.refused, "refused address fd00:ec2::254 (metadata)");

    /* a truncated address is refused, not read past its end */
    s.a.addrlen = sizeof(struct sockaddr_in);
    memset(&g, 0, sizeof(g));
    g.enforce = 1;
    assert_int_equal(hl_target_opensocket(&g, CURLSOCKTYPE_IPCXN, &s.a), CURL_SOCKET_BAD);
    assert_non_null(strstr(g.refused, "(unsupported)"));

    /* a public address gets a socket */
    s.a.addrlen = sizeof(struct sockaddr_in6);
    assert_int_equal(inet_pton(AF_INET6, "2606:4700::1111", &in6.sin6_addr), 1);
    memcpy(&s.a.addr, &in6, sizeof(in6));
    memset(&g, 0, sizeof(g));
    g.enforce = 1;
    curl_socket_t fd = hl_target_opensocket(&g, CURLSOCKTYPE_IPCXN, &s.a);
    assert_true(fd != CURL_SOCKET_BAD);
    assert_string_equal(g.refused, "");
    close(fd);

    /* without a guard every address is opened */
    assert_int_equal(inet_pton(AF_INET6, "::1", &in6.sin6_addr), 1);
    memcpy(&s.a.addr, &in6, sizeof(in6));
    fd = hl_target_opensocket(NULL, CURLSOCKTYPE_IPCXN, &s.a);
    assert_true(fd != CURL_SOCKET_BAD);
    close(fd);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_table),         cmocka_unit_test(test_url_length),
        cmocka_unit_test(test_url_parse),         cmocka_unit_test(test_addr_table),
        cmocka_unit_test(test_netlist_parse),     cmocka_unit_test(test_netlist_contains),
        cmocka_unit_test(test_allow_override),    cmocka_unit_test(test_curl_guard),
        cmocka_unit_test(test_opensocket_direct), cmocka_unit_test(test_host_key),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
