/* Event payloads as the store keeps them: packed with raw deflate over a preset dictionary.
 *
 * Most of an event's bytes are the same in every event (the envelope's keys, the resource's field
 * names, "2026-…" timestamps); a shared dictionary takes them out, so a typical 460-byte
 * agent.created payload is kept in about 115 bytes. What comes back is the exact bytes that went
 * in: receivers verify signatures over them.
 *
 * Stored form: a payload stored as it came starts with '{' (it is a JSON object); a packed one
 * starts with the byte PACK_V1, then the unpacked length as a little-endian base-128 varint,
 * then a raw deflate stream (window 2^WBITS) made with DICT_V1 as its preset dictionary. Rows
 * written before packing existed, or by hand (bench/bench.py's backlog), are read as they are.
 * DICT_V1 and WBITS are part of the stored format: they never change; a better dictionary gets a
 * new marker byte and both stay readable. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "common/err.h"
#include "store/sql.h"

#define PACK_V1 0x01
#define WBITS 12
#define MEM_LEVEL 6
/* Payloads smaller than this are kept as they are: there is nothing to win. */
#define PACK_MIN 64

/* Most frequent strings last: deflate reaches the end of the dictionary with the shortest
 * distances. */
static const char DICT_V1[] =
    "\"event\":\"webhook.test\",\"data\":{\"message\":\",\"processingStatus\":\"failed\","
    "\"processingError\":\",\"processingStatus\":\"completed\",\"processingError\":null,"
    "\"processingStartedAt\":\"20\",\"processingCompletedAt\":\"20,\"pageCount\":null,"
    "\"wordCount\":null,\"chunkCount\":null,\"createdAt\":\"20{\"uid\":\"file-\",\"appUid\":"
    "\"app-\",\"contextUid\":\"context-\",\"fileName\":\"\",\"externalTenantId\":\"\","
    "\"contentType\":\"application/pdf\",\"contentType\":\"text/plain\",\"sizeBytes\":,"
    "\"metadata\":null,\"processingStatus\":\"pending\",\"processingError\":null,"
    "\"processingStartedAt\":null,\"processingCompletedAt\":null,\"sha256\":\"{\"uid\":"
    "\"context-\",\"appUid\":\"app-\",\"name\":\"\",\"externalTenantId\":\"\",\"description\":"
    "null,\"metadata\":null,\"createdAt\":\"20\"event\":\"contextfile.created\",\"event\":"
    "\"contextfile.updated\",\"event\":\"contextfile.deleted\",\"event\":\"context.created\","
    "\"event\":\"context.updated\",\"event\":\"context.deleted\",\"event\":\"agent.deleted\","
    "\"deletedAt\":\"20\",\"event\":\"agent.updated\",{\"eventId\":\"evt_\",\"event\":"
    "\"agent.created\",\"timestamp\":\"20\",\"appUid\":\"app-\",\"version\":1,\"data\":{\"uid\":"
    "\"agent-\",\"appUid\":\"app-\",\"agentName\":\"\",\"externalTenantId\":\"tenant-\","
    "\"live\":true,\"live\":false,\"description\":null,\"instructions\":null,\"model\":"
    "\"gpt-4o\",\"temperature\":0.7,\"maxTokens\":null,\"metadata\":null,\"createdAt\":\"20\","
    "\"updatedAt\":\"20";

int hl_payload_pack(const char *p, size_t n, struct hl_buf *out)
{
    hl_buf_reset(out);
    /* A payload that starts with the marker itself is always packed, so the marker never lies. */
    int must = n > 0 && (unsigned char)p[0] == PACK_V1;
    if ((n < PACK_MIN && !must) || n > HL_PAYLOAD_MAX)
        return HL_OK;
    unsigned char head[11];
    size_t hlen = 0;
    head[hlen++] = PACK_V1;
    for (uint64_t v = n;; v >>= 7) {
        head[hlen++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        if (v <= 0x7f)
            break;
    }
    z_stream z = {0};
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -WBITS, MEM_LEVEL,
                     Z_DEFAULT_STRATEGY) != Z_OK)
        return HL_ENOMEM;
    int rc = HL_ENOMEM;
    /* Packing must win: a stream longer than the payload is not kept. */
    size_t cap = hlen + (must ? deflateBound(&z, (uLong)n) : n);
    unsigned char *buf = malloc(cap);
    if (!buf ||
        deflateSetDictionary(&z, (const Bytef *)DICT_V1, (uInt)(sizeof(DICT_V1) - 1)) != Z_OK)
        goto out;
    memcpy(buf, head, hlen);
    z.next_in = (Bytef *)p;
    z.avail_in = (uInt)n;
    z.next_out = buf + hlen;
    z.avail_out = (uInt)(cap - hlen);
    int zr = deflate(&z, Z_FINISH);
    rc = HL_OK;
    if (zr == Z_STREAM_END)
        rc = hl_buf_append(out, buf, cap - z.avail_out);
out:
    deflateEnd(&z);
    free(buf);
    return rc;
}

/* The unpacked length of a packed payload, and where its stream starts; HL_ESTORE when the
 * header is damaged. */
static int packed_len(const unsigned char *p, size_t n, size_t *len, size_t *at)
{
    uint64_t v = 0;
    for (size_t i = 1; i < n && i <= 10; i++) {
        v |= (uint64_t)(p[i] & 0x7f) << (7 * (i - 1));
        if (!(p[i] & 0x80)) {
            if (v == 0 || v > HL_PAYLOAD_MAX)
                return HL_ESTORE;
            *len = (size_t)v;
            *at = i + 1;
            return HL_OK;
        }
    }
    return HL_ESTORE;
}

int hl_payload_unpack(const void *stored, size_t n, char **out, size_t *out_len)
{
    const unsigned char *p = stored;
    *out = NULL;
    *out_len = 0;
    if (n == 0 || p[0] != PACK_V1) {
        char *s = malloc(n + 1);
        if (!s)
            return HL_ENOMEM;
        if (n)
            memcpy(s, p, n);
        s[n] = '\0';
        *out = s;
        *out_len = n;
        return HL_OK;
    }
    size_t len, at;
    if (packed_len(p, n, &len, &at))
        return HL_ESTORE;
    char *s = malloc(len + 1);
    if (!s)
        return HL_ENOMEM;
    z_stream z = {0};
    if (inflateInit2(&z, -WBITS) != Z_OK) {
        free(s);
        return HL_ENOMEM;
    }
    int rc = HL_ESTORE;
    if (inflateSetDictionary(&z, (const Bytef *)DICT_V1, (uInt)(sizeof(DICT_V1) - 1)) != Z_OK)
        goto out;
    z.next_in = (Bytef *)(p + at);
    z.avail_in = (uInt)(n - at);
    z.next_out = (Bytef *)s;
    z.avail_out = (uInt)len;
    int zr = inflate(&z, Z_FINISH);
    /* All of it, exactly the length recorded, and nothing after the stream. */
    if (zr == Z_STREAM_END && z.avail_out == 0 && z.avail_in == 0)
        rc = HL_OK;
    else if (zr == Z_MEM_ERROR)
        rc = HL_ENOMEM;
out:
    inflateEnd(&z);
    if (rc) {
        free(s);
        return rc;
    }
    s[len] = '\0';
    *out = s;
    *out_len = len;
    return HL_OK;
}

int hl_payload_packed(const void *stored, size_t n)
{
    return n > 0 && ((const unsigned char *)stored)[0] == PACK_V1;
}
