/* Streaming uploads of context files: the body goes to a temporary file under the data folder as
 * it arrives (never whole in memory), hashed on the way, and is refused with 413 as soon as it is
 * known to be too large, leaving nothing behind. */
#ifndef HL_UPLOAD_H
#define HL_UPLOAD_H

#include <limits.h>
#include <openssl/evp.h>
#include <stdint.h>

#include "api/http.h"

struct MHD_PostProcessor;

struct hl_upload {
    int fd;
    char tmp_path[PATH_MAX];
    int64_t size;
    EVP_MD_CTX *sha;
    char sha256[65];
    char file_name[256];
    char content_type[128];
    char tenant[257];
    int multipart;
    int got_file;
    struct MHD_PostProcessor *pp;
    struct hl_api *api;
    struct hl_resp *fail; /* where a failure inside the multipart parser is reported */
    int failed;
};

/* True when rq (POST .../contexts/{uid}/files, multipart or with ?fileName=) is an upload. */
int hl_upload_wanted(struct hl_req *rq, const char *url);
/* Starts an upload: checks the announced size and opens the temporary file. On failure sets the
 * answer and returns an error. */
int hl_upload_begin(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs);
/* Takes the next bytes of the body. On failure (too large, bad form) sets the answer. */
int hl_upload_data(struct hl_api *api, struct hl_req *rq, const char *data, size_t n,
                   struct hl_resp *rs);
/* Ends the body: flushes and syncs the file, finishes the hash. */
int hl_upload_end(struct hl_upload *up);
/* Moves the file to its final path (made durable). Returns 0 or HL_EIO. */
int hl_upload_keep(struct hl_upload *up, const char *path);
/* Frees the upload; its temporary file, if still there, is removed. NULL is fine. */
void hl_upload_free(struct hl_upload *up);

#endif
