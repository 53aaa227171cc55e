/* A webhook's static request headers: the rules their names and values follow.
 *
 * A webhook may carry up to HL_HEADERS_MAX headers that every attempt of every delivery to it
 * sends (first attempts, retries, resends, tests). They are a JSON object of name -> value as the
 * client sent it. Names are RFC 9110 tokens, distinct ignoring case, and none of those hookline
 * sets or HTTP itself owns: the signature headers (webhook-*, x-webhook-*, svix-*, x-hookline-*),
 * content-type, content-length, content-encoding, host, user-agent, expect and the hop-by-hop
 * headers (connection, keep-alive, transfer-encoding, te, trailer, upgrade, proxy-*,
 * http2-settings). Values are strings of at most HL_HEADER_VALUE_MAX bytes without control
 * characters (CR, LF and NUL among them; tab is allowed inside) and without leading or trailing
 * blanks. */
#ifndef HL_HEADERS_H
#define HL_HEADERS_H

#include <stddef.h>

#include <jansson.h>

#include "common/fault.h"

/* Most headers of one webhook. */
#define HL_HEADERS_MAX 20
/* Longest header name, in bytes. */
#define HL_HEADER_NAME_MAX 128
/* Longest header value, in bytes. */
#define HL_HEADER_VALUE_MAX 1024

/* Checks a webhook's headers as a client sends them (not NULL: null means "none" and is the
 * caller's). Returns 0, or HL_EINVAL with *f saying what is wrong (its key: the header). */
int hl_headers_check(const json_t *headers, struct hl_fault *f);

/* Whether name[0..len) is a header hookline owns (signature, framing or hop-by-hop), compared
 * without regard to case. */
int hl_header_reserved(const char *name, size_t len);

#endif
