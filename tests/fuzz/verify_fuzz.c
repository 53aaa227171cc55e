/* libFuzzer target for the receiver library: signature headers, secrets and event bodies.
 *
 * The input is split on '\n' into secret, webhook-id, webhook-timestamp, webhook-signature and
 * body (the rest, which may hold more newlines). Each field is copied into its own exactly sized
 * allocation so that ASan catches any read past the end. The whole input is also parsed as a
 * body on its own. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/sign.h"
#include "hookline/verify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NFIELDS 5

/* Copies n bytes into a new NUL-terminated string, or NULL when the field is "\x01" (absent). */
static char *field(const uint8_t *p, size_t n)
{
    if (n == 1 && p[0] == 1)
        return NULL;
    char *s = malloc(n + 1);
    if (s == NULL)
        abort();
    if (n > 0)
        memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hookline_envelope env;
    char *f[NFIELDS] = {0};
    size_t len[NFIELDS] = {0};

    hookline_parse_envelope(data, size, &env);

    size_t start = 0;
    for (int i = 0; i < NFIELDS; i++) {
        size_t end = start;
        if (i < NFIELDS - 1)
            while (end < size && data[end] != '\n')
                end++;
        else
            end = size;
        f[i] = field(data + start, end - start);
        len[i] = end - start;
        start = end < size ? end + 1 : size;
    }
    const char *secret = f[0], *id = f[1], *ts = f[2], *sig = f[3];
    /* The body keeps any NUL bytes; only its copy's length counts. */
    const char *body = f[4];
    size_t body_len = body != NULL ? len[4] : 0;

    hookline_verify_signature(secret, body, body_len, sig);
    hookline_verify_signature(secret, body, body_len, secret);
    /* With the default window, and with one wide enough that the MAC is always compared. */
    hookline_verify_standard(secret, id, ts, sig, body, body_len, 1737383722, 0);
    hookline_verify_standard(secret, id, ts, sig, body, body_len, 1737383722, INT64_MAX);
    hookline_parse_envelope(body, body_len, &env);
    /* The guide's replay check reads the body only once its signature matched: sign it here so
     * that the fuzzer reaches the timestamp parsing. */
    char hex[HL_SIGN_HEX_SIZE], prefixed[8 + HL_SIGN_HEX_SIZE];
    if (secret != NULL && body != NULL && hl_sign_hex(secret, len[0], body, body_len, hex) == 0) {
        memcpy(prefixed, "sha256=", 7);
        memcpy(prefixed + 7, hex, sizeof(hex));
        hookline_verify_signature_fresh(secret, body, body_len, prefixed, 1737383722, 0);
        struct hookline_headers h = {.signature = sig,
                                     .signature_previous = prefixed,
                                     .webhook_id = id,
                                     .webhook_timestamp = ts,
                                     .webhook_signature = sig};
        hookline_verify_request(secret, &h, body, body_len, 1737383722, 0);
    }

    char out[HL_SIGN_STD_SIZE];
    if (secret != NULL && id != NULL)
        hl_sign_std(secret, len[0], id, len[1], 1737383722, body, body_len, out, sizeof(out));

    for (int i = 0; i < NFIELDS; i++)
        free(f[i]);
    return 0;
}
