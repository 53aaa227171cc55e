/* Text extraction for context files: bytes of an uploaded file in, UTF-8 text and counts out.
 *
 * The kind is decided by content first, hints second:
 *  1. "%PDF-" at byte 0 is a PDF (read with poppler-glib). Other binary signatures (ZIP, which
 *     includes .docx/.xlsx/.odt, gzip, OLE .doc/.xls, PNG, JPEG, GIF, ...) and data with NUL bytes
 *     or many control characters are refused as binary.
 *  2. Anything else is decoded to UTF-8 (below), then: a top-level JSON object or array that
 *     parses is JSON; a document starting with an HTML tag (WHATWG sniffing: <!DOCTYPE html,
 *     <html, <head, <body, <p, <div, ...) is HTML, unless the hints say Markdown, CSV or text and
 *     the document does not start with <!DOCTYPE html or <html.
 *  3. Otherwise the declared media type (unless generic: empty, text/plain or
 *     application/octet-stream), then the file name's extension, then a light content check
 *     (Markdown headings, fences or links), choose text, Markdown, CSV (or TSV) or HTML.
 *  A file declared or named as JSON that does not parse fails with the parser's message.
 *
 * Encodings. UTF-8 passes (a BOM is dropped). UTF-16 with a BOM is converted. Bytes that are not
 * valid UTF-8 are read as Windows-1252 (the superset of Latin-1 that browsers use for it) when
 * the declared charset says so (iso-8859-1, latin1, windows-1252, us-ascii, ...) or when the file
 * holds no valid multi-byte UTF-8 sequence at all (a legacy 8-bit file); a mix of valid and
 * invalid UTF-8 is a damaged file and fails with the offset of the first bad byte. Bytes that
 * Windows-1252 leaves undefined (0x81 0x8D 0x8F 0x90 0x9D) also fail.
 *
 * What comes out, for every kind: valid UTF-8, NUL-terminated, "\n" line ends, no control
 * characters other than tab and newline. Text and Markdown keep their layout. CSV: a row per
 * line, its non-empty cells separated by one space (quoted fields with commas, quotes and line
 * breaks are read per RFC 4180; ';' and tab delimiters are detected). JSON (RFC 8259, nested at
 * most 128 deep, read in one pass without a document tree): one line per scalar, numbers as
 * written, "key: value" inside objects, the key of a nested container on its own line; nulls,
 * empty strings and empty containers are left out with their keys. HTML:
 * <script>, <style>, <template> and comments dropped, tags removed, block-level tags break lines,
 * whitespace collapsed (kept in <pre>), character references decoded (&nbsp; becomes a space).
 * PDF: the pages' text, pages separated by a blank line.
 *
 * word_count counts maximal runs of non-whitespace characters (as `wc -w` does; Unicode spaces
 * such as U+00A0 and U+3000 separate words, so CJK text without spaces counts few words).
 *
 * Functions here keep no state between calls; poppler's own global state is its business (one
 * thread extracting PDFs at a time is the safe use).
 */
#ifndef HL_INGEST_EXTRACT_H
#define HL_INGEST_EXTRACT_H

#include <stdbool.h>
#include <stddef.h>

/* Default for hl_extract.max_input: the largest file read (the upload limit's default). */
#define HL_EXTRACT_MAX_INPUT (50u << 20)
/* Default for hl_extract.max_text: the largest text produced (PDF streams are compressed, and
 * Windows-1252 and UTF-16 input can grow when converted). */
#define HL_EXTRACT_MAX_TEXT (64u << 20)

enum hl_extract_kind {
    HL_EXTRACT_NONE = 0, /* nothing extracted (failure) */
    HL_EXTRACT_TEXT,
    HL_EXTRACT_MARKDOWN,
    HL_EXTRACT_CSV, /* also tab-separated values */
    HL_EXTRACT_JSON,
    HL_EXTRACT_HTML,
    HL_EXTRACT_PDF,
};

struct hl_extract {
    /* Limits, set by the caller before the call; 0 means the default above. */
    size_t max_input; /* bytes of input; larger files fail with HL_ETOOBIG */
    size_t max_text;  /* bytes of extracted text; more fails with HL_ETOOBIG */

    /* Results, set on success (and reset to empty on failure). */
    enum hl_extract_kind kind;
    char *text;           /* owned; valid UTF-8, NUL-terminated */
    size_t len;           /* bytes of text, without the NUL */
    size_t page_count;    /* PDF pages; 0 for other kinds */
    size_t word_count;    /* see above; always > 0 on success */
    const char *encoding; /* static: what the input was read as: "UTF-8", "UTF-16LE", "UTF-16BE",
                             "windows-1252", or "binary" for PDF */
};

/* Extracts the text of the file at path (read whole, at most max_input bytes, before anything
 * else happens). declared_type is the Content-Type the file came with ("text/csv;
 * charset=utf-8"), file_name its original name ("report.csv"); both may be NULL and are hints
 * only (see above). out's limits are read, its results written; free them with hl_extract_free.
 * Returns 0, or a negative code with a sentence for the uploader in why (whylen bytes, may be 0):
 * HL_EIO (the file cannot be read: retrying may help), HL_ENOMEM (likewise), HL_ETOOBIG (input
 * or text over the limit), HL_EPARSE (damaged content: invalid UTF-8, a damaged PDF, invalid
 * JSON declared as JSON), HL_EREFUSED (nothing to extract: empty, binary or unsupported type,
 * password-protected PDF, no text), HL_EINVAL (bad arguments). */
int hl_extract_file(const char *path, const char *declared_type, const char *file_name,
                    struct hl_extract *out, char *why, size_t whylen);

/* The same as hl_extract_file for data[0..len) already in memory (the caller keeps owning it;
 * nothing points into it afterwards). */
int hl_extract_buffer(const void *data, size_t len, const char *declared_type,
                      const char *file_name, struct hl_extract *out, char *why, size_t whylen);

/* Frees the text and resets the results; the limits stay, so the struct can be reused. */
void hl_extract_free(struct hl_extract *x);

/* The kind's lowercase name: "text", "markdown", "csv", "json", "html", "pdf" ("none"). */
const char *hl_extract_kind_name(enum hl_extract_kind kind);

/* Writes a size as the reasons above say it: "512 bytes", "12.5 KiB", "50 MiB" (dst holds n
 * bytes). */
void hl_extract_size_text(char *dst, size_t n, size_t bytes);

/* True when text[0..len) keeps the promise above: valid UTF-8 with no control character but tab
 * and newline (nor U+2028, U+2029), so no NUL either. */
bool hl_extract_text_ok(const char *text, size_t len);

/* Counts words in valid UTF-8 text[0..len) as word_count does. */
size_t hl_extract_count_words(const char *text, size_t len);

#endif
