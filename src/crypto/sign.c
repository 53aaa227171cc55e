#include "crypto/sign.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "common/encode.h"
#include "common/err.h"

struct part {
    const void *p;
    size_t len;
};

/* Fetching the algorithm and creating a context cost about three times the MAC of a typical
 * body, so the algorithm is fetched once per process and one context is kept per thread. */
static pthread_once_t mac_once = PTHREAD_ONCE_INIT;
static EVP_MAC *mac_alg;
static pthread_key_t mac_key;
static int mac_key_ok;

static void free_thread_ctx(void *ctx)
{
    EVP_MAC_CTX_free(ctx);
}

static void mac_setup(void)
{
    mac_alg = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
    mac_key_ok = pthread_key_create(&mac_key, free_thread_ctx) == 0;
}

static EVP_MAC_CTX *thread_ctx(void)
{
    pthread_once(&mac_once, mac_setup);
    if (mac_alg == NULL || !mac_key_ok)
        return NULL;
    EVP_MAC_CTX *ctx = pthread_getspecific(mac_key);
    if (ctx != NULL)
        return ctx;
    ctx = EVP_MAC_CTX_new(mac_alg);
    if (ctx == NULL)
        return NULL;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    if (!EVP_MAC_CTX_set_params(ctx, params) || pthread_setspecific(mac_key, ctx) != 0) {
        EVP_MAC_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static int mac_parts(const void *key, size_t key_len, const struct part *parts, size_t n,
                     uint8_t out[HL_SHA256_LEN])
{
    if (key == NULL || key_len == 0 || key_len > HL_SECRET_MAX || out == NULL)
        return HL_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (parts[i].p == NULL && parts[i].len != 0)
            return HL_EINVAL;
    EVP_MAC_CTX *ctx = thread_ctx();
    if (ctx == NULL)
        return HL_ENOMEM;
    if (!EVP_MAC_init(ctx, key, key_len, NULL))
        return HL_ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (parts[i].len != 0 && !EVP_MAC_update(ctx, parts[i].p, parts[i].len))
            return HL_ENOMEM;
    size_t outlen = 0;
    if (!EVP_MAC_final(ctx, out, &outlen, HL_SHA256_LEN) || outlen != HL_SHA256_LEN)
        return HL_ENOMEM;
    return HL_OK;
}

int hl_hmac_sha256(const void *key, size_t key_len, const void *body, size_t body_len,
                   uint8_t out[HL_SHA256_LEN])
{
    struct part parts[] = {{body, body_len}};
    return mac_parts(key, key_len, parts, 1, out);
}

int hl_sign_hex(const char *secret, size_t secret_len, const char *body, size_t body_len,
                char out[HL_SIGN_HEX_SIZE])
{
    uint8_t mac[HL_SHA256_LEN];
    if (out == NULL)
        return HL_EINVAL;
    int rc = hl_hmac_sha256(secret, secret_len, body, body_len, mac);
    if (rc != HL_OK)
        return rc;
    hl_hex_encode(mac, sizeof(mac), out);
    return HL_OK;
}

int hl_std_key(const char *secret, size_t secret_len, uint8_t *key, size_t cap, size_t *key_len)
{
    static const char prefix[] = HL_SECRET_PREFIX;
    const size_t plen = sizeof(prefix) - 1;
    if (secret == NULL || key == NULL || key_len == NULL || secret_len > HL_SECRET_MAX)
        return HL_EINVAL;
    if (secret_len >= plen && memcmp(secret, prefix, plen) == 0) {
        secret += plen;
        secret_len -= plen;
    }
    size_t n = 0;
    int rc = hl_b64_decode(secret, secret_len, key, cap, &n);
    if (rc != HL_OK)
        return rc;
    if (n == 0)
        return HL_EINVAL;
    *key_len = n;
    return HL_OK;
}

int hl_std_mac(const uint8_t *key, size_t key_len, const char *msg_id, size_t id_len,
               int64_t ts_seconds, const char *body, size_t body_len, uint8_t out[HL_SHA256_LEN])
{
    char ts[24];
    if (ts_seconds < 0)
        return HL_EINVAL;
    int ts_len = snprintf(ts, sizeof(ts), "%" PRId64, ts_seconds);
    if (ts_len < 0 || (size_t)ts_len >= sizeof(ts))
        return HL_EINVAL;
    struct part parts[] = {
        {msg_id, id_len}, {".", 1}, {ts, (size_t)ts_len}, {".", 1}, {body, body_len},
    };
    return mac_parts(key, key_len, parts, sizeof(parts) / sizeof(parts[0]), out);
}

int hl_sign_std(const char *secret, size_t secret_len, const char *msg_id, size_t id_len,
                int64_t ts_seconds, const char *body, size_t body_len, char *out, size_t cap)
{
    uint8_t key[HL_STD_KEY_MAX], mac[HL_SHA256_LEN];
    size_t key_len = 0;
    if (out == NULL)
        return HL_EINVAL;
    if (cap < HL_SIGN_STD_SIZE)
        return HL_ETOOBIG;
    int rc = hl_std_key(secret, secret_len, key, sizeof(key), &key_len);
    if (rc == HL_OK)
        rc = hl_std_mac(key, key_len, msg_id, id_len, ts_seconds, body, body_len, mac);
    OPENSSL_cleanse(key, sizeof(key));
    if (rc != HL_OK)
        return rc;
    memcpy(out, "v1,", 3);
    hl_b64_encode(mac, sizeof(mac), out + 3, 0);
    return HL_OK;
}
