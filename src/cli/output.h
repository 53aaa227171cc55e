/* What the API client prints for people: aligned tables, times in local time with their age,
 * states in colour (only on a terminal), and text from the server made safe for a terminal.
 *
 * Everything the server sends is someone's data (a tenant's agent name, a receiver's answer), so
 * no byte of it reaches the terminal as a control character: hl_out_clean turns C0, DEL and C1
 * characters and invalid UTF-8 into '?', and keeps the rest.
 */
#ifndef HL_CLI_OUTPUT_H
#define HL_CLI_OUTPUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Whether to colour: stdout is a terminal, NO_COLOR is unset and TERM is not "dumb". */
int hl_out_color_wanted(void);

/* Copies s into out (cap > 0 bytes, NUL-terminated) without control characters or invalid UTF-8
 * (each becomes '?'); NULL gives "-". When the result would be wider than max_width columns (0:
 * no limit) it is cut and ends in "…". Returns out. */
char *hl_out_clean(const char *s, size_t max_width, char *out, size_t cap);

/* Display columns of the UTF-8 text s (one per code point). */
size_t hl_out_width(const char *s);

/* "5s", "2m", "3h", "4d" for a span of ms (its absolute value; "0s" under a second). */
void hl_out_span(int64_t ms, char *out, size_t cap);

/* A time for people: "2026-11-30 15:32:13 (2m ago)" in local time, "in 5s" for a time still to
 * come, "-" for 0 (never). now: the current time in ms. */
void hl_out_when(int64_t ms, int64_t now, char *out, size_t cap);

/* An ISO 8601 time from the API as hl_out_when writes it ("-" for NULL; the text itself, made
 * clean, when it is not a time). */
void hl_out_when_iso(const char *iso, int64_t now, char *out, size_t cap);

/* The terminal colour of a state word (succeeded, failed, pending, active, paused, disabled ...):
 * an escape sequence, or "" for none. */
const char *hl_out_state_color(const char *state);

/* A table: a header row, then rows of cells; printed with every column as wide as its widest
 * cell. Cells are copied (and made clean) when added. */
struct hl_table;

/* A table of ncols columns named by headers (ncols strings). NULL when out of memory. */
struct hl_table *hl_table_new(size_t ncols, const char *const *headers);
/* Adds a row of ncols cells (NULL cells print "-"); colors: NULL, or one escape sequence (or "")
 * per cell. Returns 0 or HL_ENOMEM. */
int hl_table_add(struct hl_table *t, const char *const *cells, const char *const *colors);
/* Prints the table to f, in colour when color is set; the last column is not padded. */
void hl_table_print(const struct hl_table *t, FILE *f, int color);
/* Frees the table. NULL is fine. */
void hl_table_free(struct hl_table *t);

/* Prints "label: value" lines with the values aligned at column col (value made clean; NULL
 * prints "-"), in colour when color is given and wanted. */
void hl_out_field(FILE *f, int col, const char *label, const char *value, const char *color,
                  int use_color);

#endif
