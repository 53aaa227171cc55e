/* libFuzzer target for the option parsers: the value parsers (integers, sizes, durations,
 * listen addresses) on the input as one string, and the option table's parser on the input cut
 * at NUL bytes into an argv for the command its first byte picks. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/config.h"
#include "common/err.h"
#include "common/net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
    if (!ok)
        abort();
}

static void fuzz_values(const char *s)
{
    long long v = 7;
    int rc = hl_parse_int(s, -1000, 1000, &v);
    check(rc == HL_OK ? v >= -1000 && v <= 1000 : rc == HL_EINVAL && v == 7);
    rc = hl_parse_size(s, 1, 1LL << 40, &v);
    check(rc == HL_OK ? v >= 1 && v <= 1LL << 40 : rc == HL_EINVAL);
    int64_t ms = -1;
    rc = hl_parse_duration(s, &ms);
    check(rc == HL_OK ? ms >= 0 : rc == HL_EINVAL && ms == -1);
    struct sockaddr_storage ss;
    socklen_t len = 0;
    if (hl_parse_listen_addr(s, &ss, &len) == HL_OK)
        check(len > 0 && len <= sizeof(ss) &&
              (ss.ss_family == AF_INET || ss.ss_family == AF_INET6));
    len = 0;
    if (hl_parse_bind_host(s, 3000, &ss, &len) == HL_OK)
        check(len > 0 && len <= sizeof(ss));
}

/* Every number the table parsed is within its row's range. */
static void check_ranges(enum hl_cmd cmd, const struct hl_options *o)
{
    size_t n;
    const struct hl_opt *t = hl_options_table(&n);
    for (size_t i = 0; i < n; i++) {
        const void *field = (const char *)o + t[i].offset;
        if (!(t[i].cmds & cmd))
            continue;
        if (t[i].kind == HL_OPT_INT || t[i].kind == HL_OPT_SIZE) {
            long long v = *(const long long *)field;
            check(v == 0 || (v >= t[i].min && v <= t[i].max));
        } else if (t[i].kind == HL_OPT_DURATION) {
            int64_t v = *(const int64_t *)field;
            check(v == 0 || (v >= t[i].min && v <= t[i].max));
        }
    }
    check(o->nargs >= 0 && o->nargs <= HL_ARGS_MAX);
    check(o->secrets.n <= HL_SECRETS_MAX);
    check(o->allow.n >= 0 && o->allow.n <= HL_NETLIST_MAX);
}

static void fuzz_options(char *s, size_t size)
{
    static const enum hl_cmd cmds[] = {HL_CMD_SERVE, HL_CMD_APPS, HL_CMD_KEYS, HL_CMD_LISTEN,
                                       HL_CMD_VERIFY};
    if (size == 0)
        return;
    enum hl_cmd cmd = cmds[(unsigned char)s[0] % 5];
    char *argv[64] = {(char *)"cmd"};
    int argc = 1;
    for (size_t i = 1; i < size && argc < 64; i += strlen(s + i) + 1)
        argv[argc++] = s + i;
    struct hl_options o;
    char err[256];
    err[0] = '\0';
    int rc = hl_options_parse(cmd, argc, argv, &o, err, sizeof(err));
    if (rc != HL_OK) {
        check(rc == HL_EINVAL && err[0] && memchr(err, '\0', sizeof(err)));
        /* a message never carries control characters from the input */
        for (const char *p = err; *p; p++)
            check((unsigned char)*p >= 0x20 && *p != 0x7f);
        return;
    }
    if (!o.help)
        check_ranges(cmd, &o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    fuzz_values(s);
    fuzz_options(s, size);
    free(s);
    return 0;
}
