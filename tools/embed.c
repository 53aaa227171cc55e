/* embed: turns files into a C table that the API serves (src/api/assets.h), at build time.
 *
 *   embed OUT.c URL_PATH CONTENT_TYPE FILE [URL_PATH CONTENT_TYPE FILE]...
 *
 * A text/ type gets "; charset=utf-8".
 * A FILE ending in .yaml is converted to compact JSON first (the OpenAPI document is written in
 * YAML and served as JSON: one source, no copy to keep in step). Other files are embedded byte
 * for byte.
 *
 * The YAML is read with libyaml and resolved the way both this tool and PyYAML's safe_load (which
 * the tests use to read the same file) agree on: plain scalars null/~, true/false, decimal
 * integers and decimal floats with a dot; every other plain scalar is a string. A plain scalar
 * that the two readers would resolve differently (yes/no/on/off, octal or hexadecimal or
 * underscored numbers, sexagesimal numbers, dates, 1e5 without a dot, .inf, .nan) is an error
 * that asks for quotes, as are anchors, aliases, tags, merge keys, duplicate keys and mapping
 * keys that are not strings. So the JSON served is exactly what the tests read from the YAML.
 */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/json.h"

#define MAX_INPUT (16u << 20)

struct reader {
    yaml_parser_t p;
    const char *file;
    char err[512];
};

static int fail(struct reader *r, const yaml_event_t *ev, const char *what, const char *value)
{
    snprintf(r->err, sizeof(r->err), "%s:%zu:%zu: %s%s%s%s", r->file,
             ev ? ev->start_mark.line + 1 : 0, ev ? ev->start_mark.column + 1 : 0, what,
             value ? " '" : "", value ? value : "", value ? "'" : "");
    return HL_EINVAL;
}

static int next(struct reader *r, yaml_event_t *ev)
{
    if (yaml_parser_parse(&r->p, ev))
        return HL_OK;
    snprintf(r->err, sizeof(r->err), "%s:%zu:%zu: %s", r->file, r->p.problem_mark.line + 1,
             r->p.problem_mark.column + 1, r->p.problem ? r->p.problem : "YAML error");
    return HL_EPARSE;
}

static int all_digits(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return 0;
    return 1;
}

/* A plain scalar PyYAML would read as something other than what resolve() makes of it. */
static int ambiguous(const char *s)
{
    static const char *const words[] = {"yes",  "no",    "on",    "off",  "y",  "n",
                                        ".inf", "-.inf", "+.inf", ".nan", "<<", "="};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strcasecmp(s, words[i]) == 0)
            return 1;
    const char *d = s + (*s == '-' || *s == '+');
    if (isdigit((unsigned char)d[0])) {
        /* 0x1f, 0o17, 017, 1_000, 1:30, 2026-01-20 and 1e5 all mean something else there. */
        if (strchr(d, '_') || strchr(d, ':') || (d[0] == '0' && isalnum((unsigned char)d[1])))
            return 1;
        if (strlen(d) >= 8 && isdigit((unsigned char)d[3]) && d[4] == '-')
            return 1;
        if ((strchr(d, 'e') || strchr(d, 'E')) && !strchr(d, '.')) {
            char *end;
            strtod(d, &end);
            return *end == '\0';
        }
    }
    return 0;
}

/* A plain scalar as JSON: null, a boolean, an integer, a real, or a string. */
static json_t *resolve(const char *s)
{
    if (!*s || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
        strcmp(s, "NULL") == 0)
        return json_null();
    if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "TRUE") == 0)
        return json_true();
    if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0 || strcmp(s, "FALSE") == 0)
        return json_false();
    const char *d = s + (*s == '-' || *s == '+');
    if (all_digits(d)) {
        errno = 0;
        long long v = strtoll(s, NULL, 10);
        if (errno == 0)
            return json_integer(v);
    }
    if (isdigit((unsigned char)*d) || (*d == '.' && isdigit((unsigned char)d[1]))) {
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (*end == '\0' && errno == 0 && strchr(s, '.'))
            return json_real(v);
    }
    return json_string(s);
}

static int node(struct reader *r, yaml_event_t *ev, json_t **out);

static int mapping(struct reader *r, json_t **out)
{
    json_t *o = json_object();
    for (;;) {
        yaml_event_t ev;
        int rc = next(r, &ev);
        if (rc)
            goto fail;
        if (ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            *out = o;
            return HL_OK;
        }
        json_t *key = NULL, *val = NULL;
        rc = node(r, &ev, &key);
        if (rc == HL_OK && !json_is_string(key))
            rc = fail(r, &ev, "a mapping key must be a string: quote it", NULL);
        if (rc == HL_OK && json_object_get(o, json_string_value(key)))
            rc = fail(r, &ev, "duplicate key", json_string_value(key));
        yaml_event_delete(&ev);
        if (rc == HL_OK && (rc = next(r, &ev)) == HL_OK) {
            rc = node(r, &ev, &val);
            yaml_event_delete(&ev);
        }
        if (rc == HL_OK)
            json_object_set_new(o, json_string_value(key), val);
        else
            json_decref(val);
        json_decref(key);
        if (rc)
            goto fail;
    }
fail:
    json_decref(o);
    return HL_EINVAL;
}

static int sequence(struct reader *r, json_t **out)
{
    json_t *a = json_array();
    for (;;) {
        yaml_event_t ev;
        if (next(r, &ev))
            break;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            *out = a;
            return HL_OK;
        }
        json_t *v = NULL;
        int rc = node(r, &ev, &v);
        yaml_event_delete(&ev);
        if (rc)
            break;
        json_array_append_new(a, v);
    }
    json_decref(a);
    return HL_EINVAL;
}

/* Reads the node that begins with ev (which the caller deletes). */
static int node(struct reader *r, yaml_event_t *ev, json_t **out)
{
    const yaml_char_t *anchor = NULL, *tag = NULL;
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        anchor = ev->data.scalar.anchor;
        tag = ev->data.scalar.tag;
        break;
    case YAML_MAPPING_START_EVENT:
        anchor = ev->data.mapping_start.anchor;
        tag = ev->data.mapping_start.tag;
        break;
    case YAML_SEQUENCE_START_EVENT:
        anchor = ev->data.sequence_start.anchor;
        tag = ev->data.sequence_start.tag;
        break;
    case YAML_ALIAS_EVENT:
        return fail(r, ev, "aliases are not used here: write the value out", NULL);
    default:
        return fail(r, ev, "unexpected YAML event", NULL);
    }
    if (anchor)
        return fail(r, ev, "anchors are not used here", (const char *)anchor);
    if (tag)
        return fail(r, ev, "tags are not used here", (const char *)tag);
    if (ev->type == YAML_MAPPING_START_EVENT)
        return mapping(r, out);
    if (ev->type == YAML_SEQUENCE_START_EVENT)
        return sequence(r, out);
    const char *s = (const char *)ev->data.scalar.value;
    if (strlen(s) != ev->data.scalar.length)
        return fail(r, ev, "a scalar holds NUL", NULL);
    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
        *out = json_stringn(s, ev->data.scalar.length);
        return *out ? HL_OK : fail(r, ev, "a string is not UTF-8", NULL);
    }
    if (ambiguous(s))
        return fail(r, ev, "YAML readers disagree on this plain scalar: quote it", s);
    *out = resolve(s);
    return *out ? HL_OK : fail(r, ev, "a string is not UTF-8", NULL);
}

/* Reads one YAML document from text into *out. */
static int yaml_to_json(const char *file, const char *text, size_t len, json_t **out, char *err,
                        size_t errlen)
{
    struct reader r = {.file = file};
    int rc = HL_EPARSE;
    if (!yaml_parser_initialize(&r.p)) {
        snprintf(err, errlen, "%s: cannot start the YAML parser", file);
        return HL_ENOMEM;
    }
    yaml_parser_set_input_string(&r.p, (const unsigned char *)text, len);
    yaml_event_t ev;
    json_t *doc = NULL;
    /* stream start, document start, the root node, document end, stream end */
    if (next(&r, &ev) || ev.type != YAML_STREAM_START_EVENT)
        goto out;
    yaml_event_delete(&ev);
    if (next(&r, &ev) || ev.type != YAML_DOCUMENT_START_EVENT)
        goto out;
    yaml_event_delete(&ev);
    if (next(&r, &ev))
        goto out;
    rc = node(&r, &ev, &doc);
    yaml_event_delete(&ev);
    if (rc || next(&r, &ev))
        goto out;
    yaml_event_delete(&ev);
    if (next(&r, &ev))
        goto out;
    if (ev.type != YAML_STREAM_END_EVENT) {
        rc = fail(&r, &ev, "one YAML document per file", NULL);
        yaml_event_delete(&ev);
        goto out;
    }
    yaml_event_delete(&ev);
    *out = doc;
    doc = NULL;
    rc = HL_OK;
out:
    if (rc && !r.err[0])
        snprintf(r.err, sizeof(r.err), "%s: not a YAML document", file);
    if (rc)
        snprintf(err, errlen, "%s", r.err);
    json_decref(doc);
    yaml_parser_delete(&r.p);
    return rc;
}

static int read_file(const char *path, struct hl_buf *out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return HL_EIO;
    char chunk[65536];
    size_t n;
    int rc = HL_OK;
    while (rc == HL_OK && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        rc = hl_buf_append(out, chunk, n);
    if (ferror(f))
        rc = HL_EIO;
    fclose(f);
    return rc;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* The bytes to embed for file: its JSON when it is YAML, else its content. */
static int load(const char *file, struct hl_buf *out)
{
    struct hl_buf text;
    hl_buf_init(&text, MAX_INPUT);
    int rc = read_file(file, &text);
    if (rc) {
        fprintf(stderr, "embed: cannot read %s: %s\n", file, hl_strerror(rc));
    } else if (ends_with(file, ".yaml")) {
        json_t *doc = NULL;
        char err[600];
        rc = yaml_to_json(file, text.p ? text.p : "", text.len, &doc, err, sizeof(err));
        if (rc)
            fprintf(stderr, "embed: %s\n", err);
        else if ((rc = hl_json_write(out, doc)))
            fprintf(stderr, "embed: %s: cannot write it as JSON: %s\n", file, hl_strerror(rc));
        json_decref(doc);
    } else {
        rc = hl_buf_append(out, text.p ? text.p : "", text.len);
    }
    hl_buf_free(&text);
    return rc;
}

/* Writes s as a C string literal's content (for paths and content types). */
static void c_string(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        fputc(*s, f);
    }
}

int main(int argc, char **argv)
{
    if (argc < 5 || (argc - 2) % 3 != 0) {
        fprintf(stderr, "usage: embed OUT.c URL_PATH CONTENT_TYPE FILE [...]\n");
        return 2;
    }
    const char *out_path = argv[1];
    char tmp_path[4096];
    snprintf(tmp_path, sizeof(tmp_path), "%s.tmp", out_path);
    FILE *f = fopen(tmp_path, "w");
    if (!f) {
        fprintf(stderr, "embed: cannot write %s\n", tmp_path);
        return 1;
    }
    int n = (argc - 2) / 3, rc = HL_OK;
    fprintf(f, "/* Generated by tools/embed.c at build time: do not edit. */\n"
               "#include \"api/assets.h\"\n\n");
    for (int i = 0; i < n && rc == HL_OK; i++) {
        struct hl_buf b;
        hl_buf_init(&b, MAX_INPUT);
        rc = load(argv[4 + 3 * i], &b);
        fprintf(f, "/* %s */\nstatic const unsigned char asset%d[%zu] = {", argv[4 + 3 * i], i,
                b.len + 1);
        for (size_t k = 0; rc == HL_OK && k < b.len; k++)
            fprintf(f, "%s%u,", k % 24 ? "" : "\n", (unsigned char)b.p[k]);
        fprintf(f, "0};\n");
        fprintf(f, "#define ASSET%d_LEN %zuu\n\n", i, b.len);
        hl_buf_free(&b);
    }
    fprintf(f, "const struct hl_asset hl_assets[] = {\n");
    for (int i = 0; i < n; i++) {
        fprintf(f, "    {\"");
        c_string(f, argv[2 + 3 * i]);
        fprintf(f, "\", \"");
        c_string(f, argv[3 + 3 * i]);
        /* Text is UTF-8 (a list in CMake cannot hold the ';' of a charset parameter). */
        if (strncmp(argv[3 + 3 * i], "text/", 5) == 0)
            fprintf(f, "; charset=utf-8");
        fprintf(f, "\", asset%d, ASSET%d_LEN},\n", i, i);
    }
    fprintf(f, "    {0, 0, 0, 0},\n};\n");
    if (fclose(f) != 0 || rc != HL_OK || rename(tmp_path, out_path) != 0) {
        remove(tmp_path);
        if (rc == HL_OK)
            fprintf(stderr, "embed: cannot write %s\n", out_path);
        return 1;
    }
    return 0;
}
