/* Hex and base64 codecs. Pure functions: no allocation, bounded by the caller's buffers. */
#ifndef HL_ENCODE_H
#define HL_ENCODE_H

#include <stddef.h>
#include <stdint.h>

/* Writes 2*n lowercase hex digits and a NUL to out (out must hold 2*n+1 bytes). */
void hl_hex_encode(const uint8_t *in, size_t n, char *out);
/* Decodes exactly 2*outlen hex digits (either case) from in[0..inlen).
 * Returns 0, or HL_EINVAL when the length is not 2*outlen or a digit is not hex. */
int hl_hex_decode(const char *in, size_t inlen, uint8_t *out, size_t outlen);

/* Bytes needed for the base64 text of n bytes, without the NUL. */
#define HL_B64_LEN(n) ((((n) + 2) / 3) * 4)
/* Writes standard base64 (with padding) of in and a NUL to out (HL_B64_LEN(n)+1 bytes).
 * With url=1 the URL-safe alphabet is used and padding is left out. Returns the text length. */
size_t hl_b64_encode(const uint8_t *in, size_t n, char *out, int url);
/* Decodes standard or URL-safe base64 (padding optional) into out (cap bytes).
 * Returns 0 and sets *outlen, or HL_EINVAL on a bad character or length, HL_ETOOBIG when out is
 * too small. */
int hl_b64_decode(const char *in, size_t inlen, uint8_t *out, size_t cap, size_t *outlen);

#endif
