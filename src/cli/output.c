#include "cli/output.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/utf8.h"

#define RESET "\033[0m"

int hl_out_color_wanted(void)
{
    const char *no = getenv("NO_COLOR"), *term = getenv("TERM");
    return isatty(STDOUT_FILENO) && !(no && *no) && !(term && strcmp(term, "dumb") == 0);
}

/* The next character of s[i..n) made clean: its bytes (*len of them) and how far to step. */
static const char *next_clean(const char *s, size_t i, size_t n, size_t *len, size_t *step)
{
    uint32_t cp;
    size_t l = hl_utf8_seq((const unsigned char *)s + i, n - i, &cp);
    if (l == 0 || cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) {
        *len = 1;
        *step = l ? l : 1;
        return "?";
    }
    *len = *step = l;
    return s + i;
}

char *hl_out_clean(const char *s, size_t max_width, char *out, size_t cap)
{
    static const char ellipsis[] = "\xe2\x80\xa6"; /* … */
    if (!s)
        s = "-";
    size_t n = strlen(s), len, step, width = 0;
    for (size_t i = 0; i < n; i += step, width++)
        next_clean(s, i, n, &len, &step);
    /* Too wide: keep max_width - 1 columns and the ellipsis. */
    size_t keep = max_width && width > max_width ? max_width - 1 : width, o = 0, cols = 0;
    int cut = keep < width;
    for (size_t i = 0; i < n && cols < keep; i += step, cols++) {
        const char *b = next_clean(s, i, n, &len, &step);
        if (o + len + sizeof(ellipsis) > cap) {
            cut = 1;
            break;
        }
        memcpy(out + o, b, len);
        o += len;
    }
    if (cut && o + sizeof(ellipsis) <= cap) {
        memcpy(out + o, ellipsis, sizeof(ellipsis) - 1);
        o += sizeof(ellipsis) - 1;
    }
    out[o] = '\0';
    return out;
}

size_t hl_out_width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xc0) != 0x80;
    return w;
}

void hl_out_span(int64_t ms, char *out, size_t cap)
{
    int64_t s = (ms < 0 ? -ms : ms) / 1000;
    if (s < 60)
        snprintf(out, cap, "%llds", (long long)s);
    else if (s < 3600)
        snprintf(out, cap, "%lldm", (long long)(s / 60));
    else if (s < 48 * 3600)
        snprintf(out, cap, "%lldh", (long long)(s / 3600));
    else
        snprintf(out, cap, "%lldd", (long long)(s / 86400));
}

void hl_out_when(int64_t ms, int64_t now, char *out, size_t cap)
{
    if (ms == 0) {
        snprintf(out, cap, "-");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char day[32] = "?", span[16];
    if (localtime_r(&t, &tm))
        strftime(day, sizeof(day), "%Y-%m-%d %H:%M:%S", &tm);
    hl_out_span(now - ms, span, sizeof(span));
    if (ms > now + 999)
        snprintf(out, cap, "%s (in %s)", day, span);
    else
        snprintf(out, cap, "%s (%s ago)", day, span);
}

void hl_out_when_iso(const char *iso, int64_t now, char *out, size_t cap)
{
    int64_t ms;
    if (!iso) {
        snprintf(out, cap, "-");
        return;
    }
    if (hl_time_parse(iso, strlen(iso), &ms) != HL_OK || ms == 0) {
        hl_out_clean(iso, 40, out, cap);
        return;
    }
    hl_out_when(ms, now, out, cap);
}

const char *hl_out_state_color(const char *state)
{
    static const struct {
        const char *state, *color;
    } colors[] = {
        {"succeeded", "\033[32m"}, {"active", "\033[32m"},   {"completed", "\033[32m"},
        {"failed", "\033[31m"},    {"disabled", "\033[31m"}, {"failing", "\033[31m"},
        {"pending", "\033[33m"},   {"paused", "\033[33m"},   {"processing", "\033[33m"},
        {"cancelled", "\033[2m"},
    };
    for (size_t i = 0; state && i < sizeof(colors) / sizeof(colors[0]); i++)
        if (strcmp(state, colors[i].state) == 0)
            return colors[i].color;
    return "";
}

/* ---- tables ---- */

struct cell {
    char *text;
    const char *color;
};

struct hl_table {
    size_t ncols, nrows, cap;
    struct cell *cells; /* nrows * ncols, the header row first */
};

/* The widest cell the table keeps, in columns (a longer one is cut with "…"). */
#define CELL_MAX_WIDTH 72

static int add_row(struct hl_table *t, const char *const *cells, const char *const *colors)
{
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        struct cell *c = realloc(t->cells, cap * t->ncols * sizeof(*c));
        if (!c)
            return HL_ENOMEM;
        t->cells = c;
        t->cap = cap;
    }
    struct cell *row = t->cells + t->nrows * t->ncols;
    for (size_t i = 0; i < t->ncols; i++) {
        char buf[CELL_MAX_WIDTH * 4 + 8];
        row[i].text = strdup(hl_out_clean(cells[i], CELL_MAX_WIDTH, buf, sizeof(buf)));
        row[i].color = colors && colors[i] ? colors[i] : "";
        if (!row[i].text) {
            while (i-- > 0)
                free(row[i].text);
            return HL_ENOMEM;
        }
    }
    t->nrows++;
    return HL_OK;
}

struct hl_table *hl_table_new(size_t ncols, const char *const *headers)
{
    struct hl_table *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->ncols = ncols;
    if (add_row(t, headers, NULL) != HL_OK) {
        free(t);
        return NULL;
    }
    return t;
}

int hl_table_add(struct hl_table *t, const char *const *cells, const char *const *colors)
{
    return add_row(t, cells, colors);
}

void hl_table_print(const struct hl_table *t, FILE *f, int color)
{
    size_t width[16] = {0};
    size_t ncols = t->ncols < 16 ? t->ncols : 16;
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < ncols; c++) {
            size_t w = hl_out_width(t->cells[r * t->ncols + c].text);
            if (w > width[c])
                width[c] = w;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < ncols; c++) {
            const struct cell *cl = &t->cells[r * t->ncols + c];
            int paint = color && (r == 0 || cl->color[0]);
            if (paint)
                fputs(r == 0 ? "\033[1m" : cl->color, f);
            fputs(cl->text, f);
            if (paint)
                fputs(RESET, f);
            if (c + 1 < ncols)
                fprintf(f, "%*s", (int)(width[c] - hl_out_width(cl->text) + 2), "");
        }
        fputc('\n', f);
    }
}

void hl_table_free(struct hl_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i].text);
    free(t->cells);
    free(t);
}

void hl_out_field(FILE *f, int col, const char *label, const char *value, const char *color,
                  int use_color)
{
    char buf[8192];
    hl_out_clean(value, 0, buf, sizeof(buf));
    int paint = use_color && color && color[0];
    fprintf(f, "%s:%*s%s%s%s\n", label,
            col - (int)strlen(label) - 1 > 0 ? col - (int)strlen(label) - 1 : 1, "",
            paint ? color : "", buf, paint ? RESET : "");
}
