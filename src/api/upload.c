#include "api/upload.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/encode.h"
#include "common/err.h"
#include "common/log.h"

/* Slack for a multipart body's boundaries and part headers around the file itself. */
#define MULTIPART_SLACK (64 * 1024)

int hl_upload_wanted(struct hl_req *rq, const char *url)
{
    if (rq->method != HL_POST)
        return 0;
    /* /api/v1/appuid/{app}/contexts/{ctx}/files */
    const char *p = url;
    int n = 0;
    const char *segs[8];
    size_t lens[8];
    while (*p && n < 8) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        segs[n] = p;
        while (*p && *p != '/')
            p++;
        lens[n] = (size_t)(p - segs[n]);
        n++;
    }
    if (*p || n != 7 || lens[4] != 8 || memcmp(segs[4], "contexts", 8) != 0 || lens[6] != 5 ||
        memcmp(segs[6], "files", 5) != 0)
        return 0;
    const char *ct = hl_req_header(rq, "Content-Type");
    if (ct && strncasecmp(ct, "multipart/form-data", 19) == 0)
        return 1;
    return hl_req_query(rq, "fileName") != NULL;
}

static int too_big(struct hl_upload *up, struct hl_resp *rs)
{
    hl_resp_error(rs, 413, "payload_too_large", "the file is larger than %zu bytes",
                  up->api->cfg.max_upload);
    return HL_ETOOBIG;
}

/* Appends file bytes to the temporary file. */
static int put(struct hl_upload *up, const char *data, size_t n, struct hl_resp *rs)
{
    if ((uint64_t)up->size + n > up->api->cfg.max_upload)
        return too_big(up, rs);
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(up->fd, data + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            hl_error("upload: write %s: %s", up->tmp_path, strerror(errno));
            hl_resp_error(rs, 507, "insufficient_storage", "the file could not be stored");
            return HL_EIO;
        }
        done += (size_t)w;
    }
    EVP_DigestUpdate(up->sha, data, n);
    up->size += (int64_t)n;
    return HL_OK;
}

static void copy_bounded(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

static enum MHD_Result on_part(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *filename, const char *content_type,
                               const char *transfer_encoding, const char *data, uint64_t off,
                               size_t size)
{
    (void)kind;
    (void)transfer_encoding;
    struct hl_upload *up = cls;
    if (up->failed)
        return MHD_NO;
    if (!key || !*key) {
        /* A part whose Content-Disposition names no field: the parser hands it over with no
         * key at all. */
        hl_resp_error(up->fail, 400, "invalid_form",
                      "a form part has no name; send the file as \"file\" (and optionally "
                      "\"externalTenantId\")");
        up->failed = 1;
        return MHD_NO;
    }
    if (strcmp(key, "file") == 0) {
        if (off == 0 && !up->got_file) {
            up->got_file = 1;
            copy_bounded(up->file_name, sizeof(up->file_name), filename);
            copy_bounded(up->content_type, sizeof(up->content_type), content_type);
        }
        if (size && put(up, data, size, up->fail)) {
            up->failed = 1;
            return MHD_NO;
        }
        return MHD_YES;
    }
    if (strcmp(key, "externalTenantId") == 0) {
        size_t have = strlen(up->tenant);
        if (have + size >= sizeof(up->tenant) || memchr(data, '\0', size)) {
            hl_resp_error(up->fail, 422, "field_too_long",
                          "externalTenantId must be at most 256 bytes");
            up->failed = 1;
            return MHD_NO;
        }
        memcpy(up->tenant + have, data, size);
        up->tenant[have + size] = '\0';
        return MHD_YES;
    }
    hl_resp_error(up->fail, 422, "unknown_field",
                  "unknown form field; send the file as \"file\" (and optionally "
                  "\"externalTenantId\")");
    up->failed = 1;
    return MHD_NO;
}

int hl_upload_begin(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs)
{
    const char *ct = hl_req_header(rq, "Content-Type");
    int multipart = ct && strncasecmp(ct, "multipart/form-data", 19) == 0;
    const char *cl = hl_req_header(rq, "Content-Length");
    if (cl) {
        char *end;
        unsigned long long v = strtoull(cl, &end, 10);
        if (*end == '\0' && v > api->cfg.max_upload + (multipart ? MULTIPART_SLACK : 0)) {
            hl_resp_error(rs, 413, "payload_too_large", "the file is larger than %zu bytes",
                          api->cfg.max_upload);
            return HL_ETOOBIG;
        }
    }
    struct hl_upload *up = calloc(1, sizeof(*up));
    if (!up)
        return hl_resp_error(rs, 500, "internal", "out of memory"), HL_ENOMEM;
    up->fd = -1;
    up->api = api;
    up->multipart = multipart;
    rq->upload = up;
    snprintf(up->tmp_path, sizeof(up->tmp_path), "%s/uploads/upload-XXXXXX", api->cfg.data_dir);
    up->fd = mkostemp(up->tmp_path, O_CLOEXEC);
    up->sha = EVP_MD_CTX_new();
    if (up->fd < 0 || !up->sha || EVP_DigestInit_ex(up->sha, EVP_sha256(), NULL) != 1) {
        hl_error("upload: cannot create %s: %s", up->tmp_path, strerror(errno));
        up->tmp_path[0] = '\0';
        return hl_resp_error(rs, 507, "insufficient_storage", "the file could not be stored"),
               HL_EIO;
    }
    if (multipart) {
        up->pp = MHD_create_post_processor(rq->conn, 64 * 1024, on_part, up);
        if (!up->pp)
            return hl_resp_error(rs, 400, "invalid_form",
                                 "the multipart/form-data body cannot be read (boundary?)"),
                   HL_EINVAL;
    } else {
        copy_bounded(up->file_name, sizeof(up->file_name), hl_req_query(rq, "fileName"));
        copy_bounded(up->content_type, sizeof(up->content_type),
                     ct ? ct : "application/octet-stream");
        copy_bounded(up->tenant, sizeof(up->tenant), hl_req_query(rq, "externalTenantId"));
    }
    return HL_OK;
}

int hl_upload_data(struct hl_api *api, struct hl_req *rq, const char *data, size_t n,
                   struct hl_resp *rs)
{
    (void)api;
    struct hl_upload *up = rq->upload;
    if (!up->multipart)
        return put(up, data, n, rs);
    up->fail = rs;
    if (MHD_post_process(up->pp, data, n) != MHD_YES || up->failed) {
        if (!up->failed)
            hl_resp_error(rs, 400, "invalid_form", "the multipart/form-data body is malformed");
        return HL_EINVAL;
    }
    return HL_OK;
}

int hl_upload_end(struct hl_upload *up)
{
    if (up->pp) {
        MHD_destroy_post_processor(up->pp);
        up->pp = NULL;
    }
    uint8_t md[32];
    unsigned len = 0;
    if (EVP_DigestFinal_ex(up->sha, md, &len) != 1 || len != 32)
        return HL_EIO;
    hl_hex_encode(md, 32, up->sha256);
    if (fsync(up->fd) != 0)
        return HL_EIO;
    return HL_OK;
}

int hl_upload_keep(struct hl_upload *up, const char *path)
{
    if (rename(up->tmp_path, path) != 0) {
        hl_error("upload: rename to %s: %s", path, strerror(errno));
        return HL_EIO;
    }
    up->tmp_path[0] = '\0';
    /* The directory entry must be durable before the API acknowledges the upload. */
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", path);
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return HL_OK;
}

void hl_upload_free(struct hl_upload *up)
{
    if (!up)
        return;
    if (up->pp)
        MHD_destroy_post_processor(up->pp);
    if (up->fd >= 0)
        close(up->fd);
    if (up->tmp_path[0])
        unlink(up->tmp_path);
    EVP_MD_CTX_free(up->sha);
    free(up);
}
