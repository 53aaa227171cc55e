/* Splitting extracted text into passages ("chunks") for search.
 *
 * Sizes count characters (Unicode code points), not bytes, so that a passage of "1000" holds about
 * the same amount of text in any script. A byte that does not begin a valid UTF-8 sequence counts
 * as one character; a valid sequence is never split.
 *
 * Each chunk holds at most chunk_size characters. When the text goes on beyond that, the chunk
 * ends at the best break among its last half (its last chunk_size - overlap - 1 characters when
 * the overlap is larger than half): after a blank line, else after a line break, else after the
 * end of a sentence (. ! ? and CJK 。！？ followed by a space or line end), else between words,
 * else after exactly chunk_size characters. Whitespace around chunks is trimmed, so no chunk is
 * empty and whitespace-only text gives no chunks.
 *
 * The next chunk starts `overlap` characters before the end of the previous one, moved forward to
 * the start of the next word when that lands inside a word (so it may share a little less), and
 * always at least one character after the previous chunk's start.
 *
 * Chunks are views: offsets and lengths into the caller's text, in order, which is not copied.
 * Cost is linear in len * chunk_size / (chunk_size - overlap).
 */
#ifndef HL_INGEST_CHUNK_H
#define HL_INGEST_CHUNK_H

#include <stddef.h>

/* Most chunks one text may give; more fails with HL_ETOOBIG (a 64 MiB text in 1,000-character
 * chunks gives about 65,000). */
#define HL_CHUNK_MAX_COUNT (1u << 20)

struct hl_chunk {
    size_t index;  /* 0, 1, 2, ... in text order */
    size_t offset; /* byte offset of the chunk's first byte in the text */
    size_t len;    /* bytes */
    size_t chars;  /* characters (code points), 1..chunk_size */
};

struct hl_chunks {
    struct hl_chunk *items; /* owned; n entries */
    size_t n;
};

/* Splits text[0..len) (need not end in NUL) into chunks of at most chunk_size characters with
 * overlap characters shared between neighbours, as described above. Returns 0 and fills *out
 * (release with hl_chunks_free; n may be 0), HL_EINVAL when chunk_size is 0, overlap >= chunk_size
 * or text is NULL with len > 0, HL_ETOOBIG past HL_CHUNK_MAX_COUNT, or HL_ENOMEM. On error *out
 * is empty. */
int hl_chunk_text(const char *text, size_t len, size_t chunk_size, size_t overlap,
                  struct hl_chunks *out);

/* Frees the chunks and leaves *c empty. */
void hl_chunks_free(struct hl_chunks *c);

#endif
