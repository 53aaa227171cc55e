#include "common/ids.h"

#include <inttypes.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#include "common/encode.h"
#include "common/err.h"

int hl_random(uint8_t *out, size_t n)
{
    return RAND_bytes(out, (int)n) == 1 ? HL_OK : HL_EIO;
}

int hl_id_new(const char *prefix, size_t nbytes, char *out, size_t cap)
{
    uint8_t raw[48];
    size_t plen = strlen(prefix);
    if (nbytes > sizeof(raw) || plen + HL_B64_LEN(nbytes) + 1 > cap)
        return HL_EINVAL;
    if (hl_random(raw, nbytes))
        return HL_EIO;
    memcpy(out, prefix, plen);
    hl_b64_encode(raw, nbytes, out + plen, 1);
    return HL_OK;
}

int hl_secret_new(char *out, size_t cap)
{
    uint8_t raw[24];
    if (cap < 6 + HL_B64_LEN(sizeof(raw)) + 1)
        return HL_EINVAL;
    if (hl_random(raw, sizeof(raw)))
        return HL_EIO;
    memcpy(out, "whsec_", 6);
    hl_b64_encode(raw, sizeof(raw), out + 6, 0);
    return HL_OK;
}

int hl_id_valid(const char *prefix, const char *s, size_t len)
{
    size_t plen = strlen(prefix);
    if (len <= plen || len >= HL_ID_MAX || memcmp(s, prefix, plen) != 0)
        return 0;
    for (size_t i = plen; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

void hl_delivery_uid(int64_t id, char out[HL_ID_MAX])
{
    snprintf(out, HL_ID_MAX, "dlv_%" PRId64, id);
}
