/* libFuzzer target for src/common/json.c.
 *
 * Whatever hl_json_parse accepts, hl_json_write must write, and the output must be a fixed point:
 * parsing and writing it again gives the same bytes (what a receiver's JSON.stringify relies on).
 * The string writer is cross-checked against jansson's own UTF-8 validation and decoder. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Output can be ~6x the input (every control character becomes \u00xx); this never binds. */
#define OUT_MAX (64u << 20)

static void check_document(const char *in, size_t size)
{
    json_t *v = hl_json_parse(in, size, NULL, 0);
    if (!v)
        return;
    struct hl_buf a, b;
    hl_buf_init(&a, OUT_MAX);
    hl_buf_init(&b, OUT_MAX);
    if (hl_json_write(&a, v) != HL_OK)
        abort();
    json_t *again = hl_json_parse(a.p, a.len, NULL, 0);
    if (!again)
        abort();
    if (hl_json_write(&b, again) != HL_OK)
        abort();
    if (a.len != b.len || memcmp(a.p, b.p, a.len) != 0)
        abort();
    json_decref(again);
    json_decref(v);
    hl_buf_free(&a);
    hl_buf_free(&b);
}

static void check_string(const char *in, size_t size)
{
    struct hl_buf a;
    hl_buf_init(&a, OUT_MAX);
    int rc = hl_json_write_str(&a, in, size);
    json_t *ref = json_stringn(in, size); /* NULL exactly when the bytes are not valid UTF-8 */
    if ((rc == HL_OK) != (ref != NULL))
        abort();
    if (rc == HL_OK) {
        json_t *back = json_loadb(a.p, a.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        if (!back || !json_is_string(back) || json_string_length(back) != size ||
            memcmp(json_string_value(back), in, size) != 0)
            abort();
        json_decref(back);
    } else if (a.len != 0) {
        abort();
    }
    json_decref(ref);
    hl_buf_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    check_document(in, size);
    check_string(in, size);
    return 0;
}
