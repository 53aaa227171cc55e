/* The API client's HTTP side: one request to a hookline server's app API with libcurl, and what
 * its outcome means for the command's exit status.
 *
 * Exit statuses (the client's contract with scripts): 0 done, 1 the API refused (its error
 * message is printed), 2 usage error, 3 the server cannot be reached (saying where it tried).
 */
#ifndef HL_CLI_CLIENT_H
#define HL_CLI_CLIENT_H

#include <jansson.h>
#include <stddef.h>

#include "common/buf.h"

enum { HL_EXIT_OK = 0, HL_EXIT_REFUSED = 1, HL_EXIT_USAGE = 2, HL_EXIT_UNREACHABLE = 3 };

/* Where requests go and who makes them. Strings are borrowed. */
struct hl_client {
    const char *server; /* "http://127.0.0.1:8080", no trailing slash needed */
    const char *app;    /* the app uid */
    const char *key;    /* its API key */
    int json;           /* --json: errors go to stdout as the API's JSON too */
};

/* A query parameter; a NULL value leaves it out. */
struct hl_query {
    const char *name, *value;
};

/* One answer. body holds the response bytes (NUL-terminated). */
struct hl_answer {
    long status;
    struct hl_buf body;
};

/* Sends METHOD {server}/api/v1/appuid/{app}/{path}?{query} (path: segments joined by '/', each
 * percent-encoded here; nq query parameters) with body as JSON (NULL: none), plus an
 * Idempotency-Key when idem is not NULL. On a 2xx answer returns HL_EXIT_OK with the answer in
 * *out (the caller frees it with hl_answer_free). Otherwise prints why on stderr (the API's
 * message, or where it could not connect; with --json the API's error body on stdout too) and
 * returns HL_EXIT_REFUSED or HL_EXIT_UNREACHABLE. */
int hl_client_call(const struct hl_client *c, const char *method, const char *const *path,
                   size_t npath, const struct hl_query *query, size_t nq, const json_t *body,
                   const char *idem, struct hl_answer *out);

/* Frees an answer's body. */
void hl_answer_free(struct hl_answer *a);

/* The answer's body as JSON (a new reference), or NULL after printing that it is not. */
json_t *hl_answer_json(const struct hl_answer *a);

#endif
