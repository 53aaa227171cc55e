/* A webhook's filter on the content of events (filter.h). */
#include "common/filter.h"

#include <stdint.h>
#include <string.h>

#include "common/err.h"

static const char *const ENVELOPE_KEYS[] = {"eventId", "event",   "timestamp",
                                            "appUid",  "version", "data"};

/* Whether the first segment of path (p[0..len)) is a key of the envelope. */
static int known_root(const char *p, size_t len)
{
    const char *dot = memchr(p, '.', len);
    size_t n = dot ? (size_t)(dot - p) : len;
    for (size_t i = 0; i < sizeof(ENVELOPE_KEYS) / sizeof(ENVELOPE_KEYS[0]); i++)
        if (strlen(ENVELOPE_KEYS[i]) == n && memcmp(ENVELOPE_KEYS[i], p, n) == 0)
            return 1;
    return 0;
}

/* Whether every segment of p[0..len) is non-empty and the path holds no NUL. */
static int segments_ok(const char *p, size_t len)
{
    if (len == 0 || p[0] == '.' || p[len - 1] == '.' || memchr(p, '\0', len))
        return 0;
    for (size_t i = 1; i < len; i++)
        if (p[i] == '.' && p[i - 1] == '.')
            return 0;
    return 1;
}

int hl_filter_check(const json_t *filter, struct hl_fault *f)
{
    if (!json_is_object(filter))
        return hl_fault_set(f, "filter_not_object",
                            "must be an object mapping paths to lists of accepted values, or null",
                            NULL, 0);
    if (json_object_size(filter) == 0)
        return hl_fault_set(f, "filter_empty",
                            "must name at least one path (null removes the filter)", NULL, 0);
    if (json_object_size(filter) > HL_FILTER_PATHS_MAX)
        return hl_fault_set(f, "filter_too_many_paths", "must name at most 20 paths", NULL, 0);
    size_t values = 0;
    /* jansson's iterators take a non-const object; nothing here changes it. */
    json_t *obj = (json_t *)filter;
    for (void *it = json_object_iter(obj); it; it = json_object_iter_next(obj, it)) {
        const char *path = json_object_iter_key(it);
        size_t len = json_object_iter_key_len(it);
        json_t *list = json_object_iter_value(it);
        if (len > HL_FILTER_PATH_MAX)
            return hl_fault_set(f, "filter_path_too_long", "is longer than 256 bytes", path,
                                HL_FILTER_PATH_MAX);
        if (!segments_ok(path, len))
            return hl_fault_set(f, "filter_path_invalid",
                                "is not a dotted path: segments separated by '.', none empty", path,
                                len);
        if (!known_root(path, len))
            return hl_fault_set(f, "filter_path_invalid",
                                "must start with a key of the envelope: eventId, event, timestamp, "
                                "appUid, version or data",
                                path, len);
        if (!json_is_array(list) || json_array_size(list) == 0)
            return hl_fault_set(f, "filter_values_invalid",
                                "must be a non-empty list of accepted values", path, len);
        values += json_array_size(list);
        if (values > HL_FILTER_VALUES_MAX)
            return hl_fault_set(f, "filter_too_many_values",
                                "goes past 100 accepted values (the most for all paths together)",
                                path, len);
        size_t i;
        json_t *v;
        json_array_foreach(list, i, v)
        {
            if (json_is_object(v) || json_is_array(v))
                return hl_fault_set(
                    f, "filter_values_invalid",
                    "accepts strings, numbers, booleans and null only, not objects or "
                    "lists",
                    path, len);
            if (json_is_string(v) && json_string_length(v) > HL_FILTER_STRING_MAX)
                return hl_fault_set(f, "filter_values_invalid",
                                    "accepts strings of at most 1024 bytes", path, len);
        }
    }
    return HL_OK;
}

/* Whether a decimal index without leading zeros, and its value. */
static int index_of(const char *p, size_t len, size_t *out)
{
    if (len == 0 || len > 9 || (len > 1 && p[0] == '0'))
        return 0;
    size_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return 0;
        v = v * 10 + (size_t)(p[i] - '0');
    }
    *out = v;
    return 1;
}

/* The value at path p[0..len) in v, or NULL when the path leads nowhere. */
static const json_t *walk(const json_t *v, const char *p, size_t len)
{
    while (v) {
        const char *dot = memchr(p, '.', len);
        size_t n = dot ? (size_t)(dot - p) : len;
        size_t ix;
        if (json_is_object(v))
            v = json_object_getn(v, p, n);
        else if (json_is_array(v) && index_of(p, n, &ix))
            v = json_array_get(v, ix);
        else
            return NULL;
        if (!dot)
            return v;
        p = dot + 1;
        len -= n + 1;
    }
    return NULL;
}

/* Whether two scalars are the same JSON value. Numbers compare as JavaScript's JSON.parse reads
 * them, as doubles: 1 = 1.0, and integers beyond 2^53 equal the double they round to (which is
 * how hl_json_write writes them in every payload). */
static int same_value(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b))
        return json_number_value(a) == json_number_value(b);
    if (json_typeof(a) != json_typeof(b))
        return 0;
    if (json_is_string(a))
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
    /* true, false, null: the type is the value. */
    return json_is_true(a) || json_is_false(a) || json_is_null(a);
}

int hl_filter_match(const json_t *filter, const json_t *envelope)
{
    json_t *obj = (json_t *)filter;
    for (void *it = json_object_iter(obj); it; it = json_object_iter_next(obj, it)) {
        const json_t *got = walk(envelope, json_object_iter_key(it), json_object_iter_key_len(it));
        if (!got)
            return 0;
        int any = 0;
        size_t i;
        json_t *v;
        json_array_foreach(json_object_iter_value(it), i, v) any = any || same_value(got, v);
        if (!any)
            return 0;
    }
    return 1;
}
