/* Streaming uploads of context files: the body goes to a temporary file under the data folder as
 * it arrives (never whole in memory), hashed on the way, and is refused with 413 as soon as it is
 * known to be too large, leaving nothing behind.
 *
 * Two shapes: a raw body (the file itself, named by ?fileName=), or a multipart/form-data form
 * with a "file" part and an optional "externalTenantId" part, read by hookline's own streaming
 * parser (api/multipart.h). The same two bring the bytes of a file registered by its JSON
 * metadata alone (PUT …/files/{uid}/content): then nothing names the file, which has its name. The
 * core (hl_upload_open/write/end) needs no HTTP connection, so the whole path can be driven by a
 * fuzzer; hl_upload_begin/data adapt it to libmicrohttpd.
 *
 * fileName, externalTenantId and contentType follow the same rules here as on the JSON path
 * (api/validate.h), whichever part of the request carries them.
 */
#ifndef HL_UPLOAD_H
#define HL_UPLOAD_H

#include <limits.h>
#include <openssl/evp.h>
#include <stdint.h>

#include "api/http.h"
#include "api/multipart.h"
#include "api/validate.h"

/* What a request says about its upload, as sent: pointer and length (p NULL when absent). */
struct hl_upload_meta {
    struct hl_str content_type; /* the Content-Type header */
    struct hl_str file_name;    /* ?fileName= (raw bodies only) */
    struct hl_str tenant;       /* ?externalTenantId= (raw bodies only) */
    int existing;               /* the bytes of a file registered before: no fields at all */
};

struct hl_upload {
    int fd;
    char tmp_path[PATH_MAX];
    size_t max; /* bytes of file allowed */
    int64_t size;
    EVP_MD_CTX *sha;
    char sha256[65];
    /* Checked against their rules before they are stored here; "" when not given. */
    char file_name[HL_MAX_FILE_NAME + 1];
    char content_type[HL_MAX_CONTENT_TYPE + 1];
    char tenant[HL_MAX_TENANT + 1];
    size_t tenant_len;
    int multipart;
    int existing; /* hl_upload_meta.existing */
    int got_file;
    int got_tenant;
    int in;               /* which form part is being read */
    struct hl_resp *fail; /* where a failure inside the form is answered */
    struct hl_multipart mp;
};

/* True when rq is an upload: POST .../contexts/{uid}/files, multipart or with ?fileName=, or
 * PUT .../contexts/{uid}/files/{uid}/content. */
int hl_upload_wanted(struct hl_req *rq, const char *url);
/* Starts the upload of request rq: checks the announced size, then hl_upload_open with the
 * request's Content-Type and query (a PUT's is the bytes of an existing file). Sets rq->upload.
 * On failure sets the answer and returns an error. */
int hl_upload_begin(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs);
/* Takes the next bytes of rq's body (hl_upload_write). */
int hl_upload_data(struct hl_api *api, struct hl_req *rq, const char *data, size_t n,
                   struct hl_resp *rs);

/* Opens an upload whose temporary file goes under data_dir/uploads/, for at most max_upload
 * bytes of file. A raw body's fileName, externalTenantId and Content-Type are checked now
 * (unless m->existing: a form's "file" part then needs no filename, and takes no
 * externalTenantId part). On
 * success *out owns the upload (free it with hl_upload_free); on failure sets the answer (422,
 * 400 for a form without a usable boundary, 507) and returns an error. */
int hl_upload_open(const char *data_dir, size_t max_upload, const struct hl_upload_meta *m,
                   struct hl_upload **out, struct hl_resp *rs);
/* Takes the next n bytes of the body, in chunks of any size. On failure (413 too large, 400
 * malformed form, 422 a wrong field, 507 a write error) sets the answer and returns an error;
 * the upload must then be freed. */
int hl_upload_write(struct hl_upload *up, const char *data, size_t n, struct hl_resp *rs);
/* Ends the body: a form must have reached its closing boundary and carried the file (else 400
 * invalid_form or 422 file_required); finishes the hash. Sets the answer on failure. */
int hl_upload_end(struct hl_upload *up, struct hl_resp *rs);
/* Makes the file durable at its final path. Returns 0 or HL_EIO. */
int hl_upload_keep(struct hl_upload *up, const char *path);
/* Frees the upload; its temporary file, if still there, is removed. NULL is fine. */
void hl_upload_free(struct hl_upload *up);

#endif
