/* A webhook's static request headers (headers.h). */
#include "common/headers.h"

#include <string.h>
#include <strings.h>

#include "common/err.h"

/* Names hookline sets on every attempt or HTTP owns, whole... */
static const char *const RESERVED[] = {
    "content-type",   "content-length", "content-encoding",  "host", "user-agent", "expect",
    "connection",     "keep-alive",     "transfer-encoding", "te",   "trailer",    "upgrade",
    "http2-settings",
};
/* ...and by prefix: the signature headers of hookline (X-Webhook-*), Standard Webhooks
 * (webhook-*), Svix (svix-*), hookline's own future ones, and proxies'. */
static const char *const RESERVED_PREFIX[] = {"webhook-", "x-webhook-", "svix-", "x-hookline-",
                                              "proxy-"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

int hl_header_reserved(const char *name, size_t len)
{
    for (size_t i = 0; i < COUNT(RESERVED); i++)
        if (strlen(RESERVED[i]) == len && strncasecmp(RESERVED[i], name, len) == 0)
            return 1;
    for (size_t i = 0; i < COUNT(RESERVED_PREFIX); i++) {
        size_t n = strlen(RESERVED_PREFIX[i]);
        if (len >= n && strncasecmp(RESERVED_PREFIX[i], name, n) == 0)
            return 1;
    }
    return 0;
}

/* RFC 9110 tchar. */
static int tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int is_token(const char *p, size_t len)
{
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!tchar((unsigned char)p[i]))
            return 0;
    return 1;
}

/* Whether v[0..len) may be sent as a field value: no control character but tab inside, no
 * blank at either end (obs-text, i.e. UTF-8, is fine). */
static int value_ok(const char *v, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return 0;
    }
    return len == 0 || (v[0] != ' ' && v[0] != '\t' && v[len - 1] != ' ' && v[len - 1] != '\t');
}

int hl_headers_check(const json_t *headers, struct hl_fault *f)
{
    if (!json_is_object(headers))
        return hl_fault_set(f, "headers_not_object",
                            "must be an object of header names to values, or null", NULL, 0);
    if (json_object_size(headers) > HL_HEADERS_MAX)
        return hl_fault_set(f, "headers_too_many", "must hold at most 20 headers", NULL, 0);
    json_t *obj = (json_t *)headers; /* jansson's iterators take a non-const object */
    for (void *it = json_object_iter(obj); it; it = json_object_iter_next(obj, it)) {
        const char *name = json_object_iter_key(it);
        size_t len = json_object_iter_key_len(it);
        json_t *v = json_object_iter_value(it);
        if (len > HL_HEADER_NAME_MAX)
            return hl_fault_set(f, "header_name_invalid", "is longer than 128 bytes", name,
                                HL_HEADER_NAME_MAX);
        if (!is_token(name, len))
            return hl_fault_set(f, "header_name_invalid",
                                "is not a header name (RFC 9110 token: letters, digits and "
                                "!#$%&'*+-.^_`|~)",
                                name, len);
        if (hl_header_reserved(name, len))
            return hl_fault_set(
                f, "header_reserved",
                "is set by hookline or by HTTP itself (signature, content, host and "
                "hop-by-hop headers cannot be set)",
                name, len);
        for (void *o = json_object_iter(obj); o != it; o = json_object_iter_next(obj, o))
            if (json_object_iter_key_len(o) == len &&
                strncasecmp(json_object_iter_key(o), name, len) == 0)
                return hl_fault_set(f, "header_duplicate", "is given twice (names ignore case)",
                                    name, len);
        if (!json_is_string(v))
            return hl_fault_set(f, "header_value_invalid", "must have a string value", name, len);
        if (json_string_length(v) > HL_HEADER_VALUE_MAX)
            return hl_fault_set(f, "header_value_invalid", "has a value longer than 1024 bytes",
                                name, len);
        if (!value_ok(json_string_value(v), json_string_length(v)))
            return hl_fault_set(
                f, "header_value_invalid",
                "has a value with a control character (CR, LF, NUL, ...) or a blank "
                "at either end",
                name, len);
    }
    return HL_OK;
}
