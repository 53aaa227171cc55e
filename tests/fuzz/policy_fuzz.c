/* libFuzzer target for a webhook's delivery policy: src/common/filter.c and src/common/headers.c.
 *
 * An input is "H<headers JSON>" (or 'h') or "<any other byte><filter JSON>\n<envelope JSON>". What
 * it proves:
 * - hl_filter_check and hl_headers_check never crash, and a refusal names a code, a rule and, when
 *   given, a key that really is one of the object's;
 * - an accepted filter decides the same after the round trip the store makes (written with
 *   hl_json_write, parsed again), and the same for the envelope written and parsed again: the
 *   stored text and the comparison by value cannot disagree;
 * - a filter made of the envelope's own scalar at a path (when the path is a name the checker
 *   accepts) matches that envelope;
 * - accepted headers hold only RFC 9110 token names and values without CR, LF, NUL or DEL, no
 *   reserved name, at most HL_HEADERS_MAX of them (checked here again, independently).
 * Any broken promise aborts, which libFuzzer reports as a crash. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/filter.h"
#include "common/headers.h"
#include "common/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define OUT_MAX (16u << 20)

/* v written and parsed again, as the store keeps it. */
static json_t *round_trip(const json_t *v)
{
    struct hl_buf b;
    hl_buf_init(&b, OUT_MAX);
    json_t *again = NULL;
    if (hl_json_write(&b, v) == HL_OK)
        again = hl_json_parse(b.p, b.len, NULL, 0);
    hl_buf_free(&b);
    return again;
}

/* Whether key (len bytes of it) is one of the keys of object o, as the checkers point at them. */
static int is_key(json_t *o, const char *key, size_t len)
{
    for (void *it = json_object_iter(o); it; it = json_object_iter_next(o, it))
        if (json_object_iter_key(it) == key && json_object_iter_key_len(it) >= len)
            return 1;
    return 0;
}

/* A filter of one path (data.<key> for the first scalar key of the envelope's data) with that
 * scalar as its only value must match the envelope. */
static void check_own_value(json_t *env)
{
    json_t *d = json_object_get(env, "data");
    if (!json_is_object(d))
        return;
    for (void *it = json_object_iter(d); it; it = json_object_iter_next(d, it)) {
        json_t *v = json_object_iter_value(it);
        const char *k = json_object_iter_key(it);
        size_t klen = json_object_iter_key_len(it);
        if (json_is_object(v) || json_is_array(v) || memchr(k, '.', klen) || klen == 0 ||
            memchr(k, '\0', klen) || klen > 200)
            continue;
        char path[256] = "data.";
        memcpy(path + 5, k, klen);
        json_t *f = json_object();
        json_object_setn_new(f, path, 5 + klen, json_pack("[O]", v));
        struct hl_fault ft;
        if (hl_filter_check(f, &ft) == HL_OK && !hl_filter_match(f, env))
            abort();
        json_decref(f);
        return;
    }
}

static void fuzz_filter(const char *p, size_t n)
{
    const char *nl = memchr(p, '\n', n);
    size_t flen = nl ? (size_t)(nl - p) : n;
    json_t *f = hl_json_parse(p, flen, NULL, 0);
    json_t *env = nl ? hl_json_parse(nl + 1, n - flen - 1, NULL, 0) : NULL;
    if (f) {
        struct hl_fault ft;
        int rc = hl_filter_check(f, &ft);
        if (rc != HL_OK) {
            if (rc != HL_EINVAL || !ft.code || !ft.what || strncmp(ft.code, "filter_", 7) != 0)
                abort();
            if (ft.key && (!json_is_object(f) || !is_key(f, ft.key, ft.key_len)))
                abort();
        } else if (env) {
            int m = hl_filter_match(f, env);
            json_t *f2 = round_trip(f), *env2 = round_trip(env);
            struct hl_fault ft2;
            if (!f2 || !env2 || hl_filter_check(f2, &ft2) != HL_OK)
                abort();
            if (hl_filter_match(f2, env) != m || hl_filter_match(f, env2) != m)
                abort();
            json_decref(f2);
            json_decref(env2);
        }
    }
    if (env)
        check_own_value(env);
    json_decref(f);
    json_decref(env);
}

static int tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static void fuzz_headers(const char *p, size_t n)
{
    json_t *h = hl_json_parse(p, n, NULL, 0);
    if (!h)
        return;
    struct hl_fault ft;
    int rc = hl_headers_check(h, &ft);
    if (rc != HL_OK) {
        if (rc != HL_EINVAL || !ft.code || !ft.what)
            abort();
        if (ft.key && (!json_is_object(h) || !is_key(h, ft.key, ft.key_len)))
            abort();
        json_decref(h);
        return;
    }
    if (!json_is_object(h) || json_object_size(h) > HL_HEADERS_MAX)
        abort();
    for (void *it = json_object_iter(h); it; it = json_object_iter_next(h, it)) {
        const char *k = json_object_iter_key(it);
        size_t klen = json_object_iter_key_len(it);
        json_t *v = json_object_iter_value(it);
        if (klen == 0 || klen > HL_HEADER_NAME_MAX || hl_header_reserved(k, klen) ||
            !json_is_string(v) || json_string_length(v) > HL_HEADER_VALUE_MAX)
            abort();
        for (size_t i = 0; i < klen; i++)
            if (!tchar((unsigned char)k[i]))
                abort();
        const char *s = json_string_value(v);
        for (size_t i = 0; i < json_string_length(v); i++)
            if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0' || s[i] == 0x7f)
                abort();
        if (strncasecmp(k, "content-type", klen) == 0 && klen == 12)
            abort();
    }
    json_decref(h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *p = (const char *)data + 1;
    if ((data[0] | 0x20) == 'h')
        fuzz_headers(p, size - 1);
    else
        fuzz_filter(p, size - 1);
    return 0;
}
