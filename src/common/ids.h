/* Random identifiers and secrets from OpenSSL's CSPRNG. */
#ifndef HL_IDS_H
#define HL_IDS_H

#include <stddef.h>
#include <stdint.h>

/* Room for any id made here, with its NUL. */
#define HL_ID_MAX 64
/* Longest webhook secret string a signer or verifier accepts, in bytes (hookline makes 38). */
#define HL_SECRET_MAX 1024

/* Fills out with n bytes from a cryptographic RNG. Returns 0 or HL_EIO. */
int hl_random(uint8_t *out, size_t n);
/* Writes prefix + URL-safe base64 of nbytes random bytes into out (cap bytes).
 * Returns 0, HL_EINVAL when it does not fit, or HL_EIO. */
int hl_id_new(const char *prefix, size_t nbytes, char *out, size_t cap);
/* A webhook signing secret: "whsec_" + standard base64 of 24 random bytes. */
int hl_secret_new(char *out, size_t cap);
/* Writes a delivery's public id, "dlv_" and its number, into out. */
void hl_delivery_uid(int64_t id, char out[HL_ID_MAX]);
/* True when s looks like an id this prefix makes (prefix, then URL-safe base64, bounded length). */
int hl_id_valid(const char *prefix, const char *s, size_t len);

#endif
