#include "cli/client.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/output.h"
#include "common/err.h"
#include "common/json.h"

/* The largest answer read: a page of 100 deliveries with their attempt logs is far below. */
#define ANSWER_MAX (64u << 20)
#define CONNECT_TIMEOUT_S 10L
/* POST .../test waits for its attempt (the server's --timeout + 2 s): leave it room. */
#define REQUEST_TIMEOUT_S 120L

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct hl_buf *b = arg;
    return hl_buf_append(b, p, size * n) == HL_OK ? size * n : 0;
}

/* Appends s percent-encoded (everything but unreserved characters) to u. */
static int put_escaped(CURL *curl, struct hl_buf *u, const char *s)
{
    char *e = curl_easy_escape(curl, s, 0);
    if (!e)
        return HL_ENOMEM;
    int rc = hl_buf_puts(u, e);
    curl_free(e);
    return rc;
}

static int build_url(CURL *curl, const struct hl_client *c, const char *const *path, size_t npath,
                     const struct hl_query *q, size_t nq, struct hl_buf *u)
{
    size_t slen = strlen(c->server);
    while (slen > 0 && c->server[slen - 1] == '/')
        slen--;
    int rc = hl_buf_append(u, c->server, slen);
    if (!rc)
        rc = hl_buf_puts(u, "/api/v1/appuid/");
    if (!rc)
        rc = put_escaped(curl, u, c->app);
    for (size_t i = 0; !rc && i < npath; i++) {
        rc = hl_buf_putc(u, '/');
        if (!rc)
            rc = put_escaped(curl, u, path[i]);
    }
    char sep = '?';
    for (size_t i = 0; !rc && i < nq; i++) {
        if (!q[i].value)
            continue;
        rc = hl_buf_printf(u, "%c%s=", sep, q[i].name);
        if (!rc)
            rc = put_escaped(curl, u, q[i].value);
        sep = '&';
    }
    return rc;
}

/* Prints why a request got no 2xx answer; returns the exit status. */
static int refused(const struct hl_client *c, const struct hl_answer *a)
{
    char err[600] = "", code[80] = "";
    json_t *v = hl_json_parse(a->body.p ? a->body.p : "", a->body.len, NULL, 0);
    json_t *e = json_object_get(v, "error");
    if (json_is_string(json_object_get(e, "message")))
        hl_out_clean(json_string_value(json_object_get(e, "message")), 0, err, sizeof(err));
    if (json_is_string(json_object_get(e, "code")))
        hl_out_clean(json_string_value(json_object_get(e, "code")), 0, code, sizeof(code));
    if (c->json && v)
        printf("%s\n", a->body.p);
    if (err[0])
        fprintf(stderr, "hookline: %ld %s: %s\n", a->status, code, err);
    else
        fprintf(stderr, "hookline: the server answered %ld without an error message\n", a->status);
    json_decref(v);
    return HL_EXIT_REFUSED;
}

int hl_client_call(const struct hl_client *c, const char *method, const char *const *path,
                   size_t npath, const struct hl_query *query, size_t nq, const json_t *body,
                   const char *idem, struct hl_answer *out)
{
    struct hl_buf url, req, hdr;
    hl_buf_init(&url, 1 << 16);
    hl_buf_init(&req, 2u << 20);
    hl_buf_init(&hdr, 1024);
    hl_buf_init(&out->body, ANSWER_MAX);
    out->status = 0;
    struct curl_slist *headers = NULL;
    char errbuf[CURL_ERROR_SIZE] = "";
    int rc = HL_EXIT_UNREACHABLE;
    CURL *curl = curl_easy_init();
    if (!curl || build_url(curl, c, path, npath, query, nq, &url) ||
        (body && hl_json_write(&req, body)) ||
        hl_buf_printf(&hdr, "Authorization: Bearer %s", c->key)) {
        fprintf(stderr, "hookline: cannot build the request (out of memory)\n");
        goto out;
    }
    headers = curl_slist_append(headers, hdr.p);
    if (body)
        headers = curl_slist_append(headers, "Content-Type: application/json");
    if (idem) {
        hl_buf_reset(&hdr);
        hl_buf_printf(&hdr, "Idempotency-Key: %s", idem);
        headers = curl_slist_append(headers, hdr.p);
    }
    headers = curl_slist_append(headers, "Accept: application/json");
    curl_easy_setopt(curl, CURLOPT_URL, url.p);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "hookline-cli/" HL_VERSION);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, REQUEST_TIMEOUT_S);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &out->body);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    if (body) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req.p);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req.len);
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    }
    CURLcode cc = curl_easy_perform(curl);
    if (cc == CURLE_WRITE_ERROR) {
        fprintf(stderr, "hookline: the answer from %s is larger than %u bytes\n", c->server,
                ANSWER_MAX);
        rc = HL_EXIT_REFUSED;
        goto out;
    }
    if (cc != CURLE_OK) {
        char where[512];
        hl_out_clean(c->server, 200, where, sizeof(where));
        const char *api = strstr(url.p, "/api/v1/appuid/");
        char shown[300];
        hl_out_clean(api ? api : url.p, 120, shown, sizeof(shown));
        fprintf(stderr, "hookline: cannot reach the server at %s (%s %s): %s\n", where, method,
                shown, errbuf[0] ? errbuf : curl_easy_strerror(cc));
        goto out;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out->status);
    if (!out->body.p && hl_buf_puts(&out->body, "") != HL_OK) {
        rc = HL_EXIT_REFUSED;
        goto out;
    }
    rc = out->status >= 200 && out->status < 300 ? HL_EXIT_OK : refused(c, out);
out:
    if (rc != HL_EXIT_OK)
        hl_answer_free(out);
    curl_slist_free_all(headers);
    if (curl)
        curl_easy_cleanup(curl);
    hl_buf_free(&url);
    hl_buf_free(&req);
    hl_buf_free(&hdr);
    return rc;
}

void hl_answer_free(struct hl_answer *a)
{
    hl_buf_free(&a->body);
}

json_t *hl_answer_json(const struct hl_answer *a)
{
    char err[200];
    json_t *v = hl_json_parse(a->body.p ? a->body.p : "", a->body.len, err, sizeof(err));
    if (!v)
        fprintf(stderr, "hookline: the server's answer is not JSON: %s\n", err);
    return v;
}
