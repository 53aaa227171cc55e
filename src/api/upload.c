#include "api/upload.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "api/limits.h"
#include "common/encode.h"
#include "common/err.h"
#include "common/log.h"

/* Slack for a multipart body's boundaries and part headers around the file itself. */
#define MULTIPART_SLACK (64 * 1024)

enum { IN_NONE, IN_FILE, IN_TENANT };

/* True when a Content-Type announces a form (the parser checks the rest of it). */
static bool is_form(struct hl_str ct)
{
    static const char form[] = "multipart/form-data";
    return ct.p && ct.len >= sizeof(form) - 1 && strncasecmp(ct.p, form, sizeof(form) - 1) == 0;
}

int hl_upload_wanted(struct hl_req *rq, const char *url)
{
    if (rq->method != HL_POST && rq->method != HL_PUT)
        return 0;
    /* POST /api/v1/appuid/{app}/contexts/{ctx}/files, PUT …/files/{uid}/content */
    const char *p = url;
    int n = 0;
    const char *segs[10];
    size_t lens[10];
    while (*p && n < 10) {
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
    if (*p || n != (rq->method == HL_PUT ? 9 : 7) || lens[4] != 8 ||
        memcmp(segs[4], "contexts", 8) != 0 || lens[6] != 5 || memcmp(segs[6], "files", 5) != 0)
        return 0;
    if (rq->method == HL_PUT)
        return lens[8] == 7 && memcmp(segs[8], "content", 7) == 0;
    if (is_form(hl_str_c(hl_req_header(rq, "Content-Type"))))
        return 1;
    return hl_req_query(rq, "fileName") != NULL;
}

static int too_big(struct hl_upload *up, struct hl_resp *rs)
{
    hl_resp_error(rs, 413, "payload_too_large", "the file is larger than %zu bytes", up->max);
    return HL_ETOOBIG;
}

static int invalid_form(struct hl_resp *rs, const char *why)
{
    hl_resp_error(rs, 400, "invalid_form", "the multipart/form-data body is malformed: %s", why);
    return HL_EINVAL;
}

static int file_name_required(struct hl_resp *rs)
{
    hl_resp_error(rs, 422, "field_required",
                  "fileName is required (the multipart filename, or ?fileName=)");
    return HL_EINVAL;
}

/* Checks s against rule r and keeps a NUL-terminated copy in dst (which holds r->max + 1). */
static int take(const struct hl_text_rule *r, struct hl_str s, char *dst, struct hl_resp *rs)
{
    if (hl_check_text(r, s.p, s.len, rs))
        return HL_EINVAL;
    memcpy(dst, s.p, s.len);
    dst[s.len] = '\0';
    return HL_OK;
}

/* Appends file bytes to the temporary file. */
static int put(struct hl_upload *up, const char *data, size_t n, struct hl_resp *rs)
{
    if ((uint64_t)up->size + n > up->max)
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

/* ---- the form: one "file" part, at most one "externalTenantId" part, nothing else ---- */

static int form_part(void *ud, const struct hl_part *p)
{
    struct hl_upload *up = ud;
    if (hl_str_eqc(p->name, "file")) {
        if (up->got_file)
            return invalid_form(up->fail, "it has two \"file\" parts (one file per request)");
        if (up->existing) { /* the file has its name: the part's filename is only a label */
            up->got_file = 1;
            up->in = IN_FILE;
            return HL_OK;
        }
        if (!p->has_filename || p->filename.len == 0)
            return file_name_required(up->fail);
        if (take(&HL_RULE_FILE_NAME, p->filename, up->file_name, up->fail) ||
            (p->has_content_type &&
             take(&HL_RULE_CONTENT_TYPE, p->content_type, up->content_type, up->fail)))
            return HL_EINVAL;
        up->got_file = 1;
        up->in = IN_FILE;
        return HL_OK;
    }
    if (hl_str_eqc(p->name, "externalTenantId")) {
        if (up->existing) {
            hl_resp_error(up->fail, 422, "field_immutable",
                          "externalTenantId cannot change after create");
            return HL_EINVAL;
        }
        if (up->got_tenant)
            return invalid_form(up->fail, "it has two \"externalTenantId\" parts");
        up->got_tenant = 1;
        up->in = IN_TENANT;
        return HL_OK;
    }
    char shown[64];
    hl_printable(shown, sizeof(shown), p->name.p, p->name.len);
    hl_resp_error(up->fail, 422, "unknown_field",
                  "unknown form field \"%s\"; send the file as \"file\" (and optionally "
                  "\"externalTenantId\")",
                  shown);
    return HL_EINVAL;
}

static int form_data(void *ud, const char *p, size_t n)
{
    struct hl_upload *up = ud;
    if (up->in == IN_FILE)
        return put(up, p, n, up->fail);
    /* The tenant part: refused as soon as it is too long; its bytes are checked when it ends. */
    if (n > HL_MAX_TENANT - up->tenant_len)
        return hl_check_text(&HL_RULE_TENANT, up->tenant, up->tenant_len + n, up->fail);
    memcpy(up->tenant + up->tenant_len, p, n);
    up->tenant_len += n;
    return HL_OK;
}

static int form_part_end(void *ud)
{
    struct hl_upload *up = ud;
    int in = up->in;
    up->in = IN_NONE;
    if (in == IN_TENANT)
        return take(&HL_RULE_TENANT, (struct hl_str){up->tenant, up->tenant_len}, up->tenant,
                    up->fail);
    return HL_OK;
}

static const struct hl_multipart_cb FORM = {form_part, form_data, form_part_end};

/* A raw body's fields come with the request: checked before any byte is stored. The bytes of a
 * file registered before take none: the file has them. */
static int raw_fields(struct hl_upload *up, const struct hl_upload_meta *m, struct hl_resp *rs)
{
    if (m->existing)
        return HL_OK;
    if (!m->file_name.p || m->file_name.len == 0)
        return file_name_required(rs);
    if (take(&HL_RULE_FILE_NAME, m->file_name, up->file_name, rs))
        return HL_EINVAL;
    if (m->tenant.p && take(&HL_RULE_TENANT, m->tenant, up->tenant, rs))
        return HL_EINVAL;
    if (m->content_type.p && take(&HL_RULE_CONTENT_TYPE, m->content_type, up->content_type, rs))
        return HL_EINVAL;
    return HL_OK;
}

int hl_upload_open(const char *data_dir, size_t max_upload, const struct hl_upload_meta *m,
                   struct hl_upload **out, struct hl_resp *rs)
{
    *out = NULL;
    struct hl_upload *up = calloc(1, sizeof(*up));
    if (!up)
        return hl_resp_error(rs, 500, "internal", "out of memory"), HL_ENOMEM;
    up->fd = -1;
    up->max = max_upload;
    up->existing = m->existing;
    up->multipart = is_form(m->content_type);
    int rc = HL_EINVAL;
    if (up->multipart) {
        /* The header value is NUL-terminated: it comes from the HTTP layer as a C string. */
        if (hl_multipart_init(&up->mp, m->content_type.p, &FORM, up)) {
            invalid_form(rs, hl_multipart_error(&up->mp));
            goto fail;
        }
    } else if (raw_fields(up, m, rs)) {
        goto fail;
    }
    snprintf(up->tmp_path, sizeof(up->tmp_path), "%s/uploads/upload-XXXXXX", data_dir);
    up->fd = mkostemp(up->tmp_path, O_CLOEXEC);
    up->sha = EVP_MD_CTX_new();
    if (up->fd < 0 || !up->sha || EVP_DigestInit_ex(up->sha, EVP_sha256(), NULL) != 1) {
        hl_error("upload: cannot create %s: %s", up->tmp_path, strerror(errno));
        if (up->fd < 0)
            up->tmp_path[0] = '\0';
        hl_resp_error(rs, 507, "insufficient_storage", "the file could not be stored");
        rc = HL_EIO;
        goto fail;
    }
    *out = up;
    return HL_OK;
fail:
    hl_upload_free(up);
    return rc;
}

int hl_upload_write(struct hl_upload *up, const char *data, size_t n, struct hl_resp *rs)
{
    if (!up->multipart)
        return put(up, data, n, rs);
    up->fail = rs;
    int rc = hl_multipart_feed(&up->mp, data, n);
    if (rc && hl_multipart_error(&up->mp))
        invalid_form(rs, hl_multipart_error(&up->mp));
    return rc;
}

int hl_upload_end(struct hl_upload *up, struct hl_resp *rs)
{
    if (up->multipart) {
        up->fail = rs;
        int rc = hl_multipart_finish(&up->mp);
        if (rc)
            return invalid_form(rs, hl_multipart_error(&up->mp) ? hl_multipart_error(&up->mp)
                                                                : "it was refused before"),
                   rc;
        if (!up->got_file) {
            hl_resp_error(rs, 422, "file_required",
                          "the form must carry the file as field \"file\"");
            return HL_EINVAL;
        }
    }
    uint8_t md[32];
    unsigned len = 0;
    if (EVP_DigestFinal_ex(up->sha, md, &len) != 1 || len != 32) {
        hl_resp_error(rs, 500, "internal", "could not hash the file");
        return HL_EIO;
    }
    hl_hex_encode(md, 32, up->sha256);
    return HL_OK;
}

/* ---- libmicrohttpd: the request's Content-Type and query ---- */

static struct hl_str request_value(struct hl_req *rq, enum MHD_ValueKind kind, const char *name)
{
    const char *v = NULL;
    size_t n = 0;
    if (MHD_lookup_connection_value_n(rq->conn, kind, name, strlen(name), &v, &n) != MHD_YES)
        v = NULL;
    return (struct hl_str){v, v ? n : 0};
}

int hl_upload_begin(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs)
{
    struct hl_upload_meta m = {.content_type = request_value(rq, MHD_HEADER_KIND, "Content-Type"),
                               .existing = rq->method == HL_PUT};
    int multipart = is_form(m.content_type);
    if (m.content_type.p && m.content_type.len == 0)
        m.content_type.p = NULL;
    if (!multipart && !m.existing) {
        m.file_name = request_value(rq, MHD_GET_ARGUMENT_KIND, "fileName");
        m.tenant = request_value(rq, MHD_GET_ARGUMENT_KIND, "externalTenantId");
        if (m.tenant.len == 0)
            m.tenant.p = NULL; /* ?externalTenantId= is the context's */
    }
    const char *cl = hl_req_header(rq, "Content-Length");
    int64_t file = 0; /* what the body surely holds of file bytes */
    if (cl) {
        char *end;
        unsigned long long v = strtoull(cl, &end, 10);
        if (*end == '\0' && v > api->cfg.max_upload + (multipart ? MULTIPART_SLACK : 0)) {
            hl_resp_error(rs, 413, "payload_too_large", "the file is larger than %zu bytes",
                          api->cfg.max_upload);
            return HL_ETOOBIG;
        }
        if (*end == '\0')
            file = multipart ? (int64_t)v - MULTIPART_SLACK : (int64_t)v;
    }
    /* Refused before any byte is read when the app's storage cannot take it; checked again,
     * exactly, before the file is committed. */
    int rc = hl_limits_storage_check(api, rq->app.id, file > 0 ? file : 0, rs);
    if (rc)
        return rc;
    return hl_upload_open(api->cfg.data_dir, api->cfg.max_upload, &m, &rq->upload, rs);
}

int hl_upload_data(struct hl_api *api, struct hl_req *rq, const char *data, size_t n,
                   struct hl_resp *rs)
{
    (void)api;
    return hl_upload_write(rq->upload, data, n, rs);
}

int hl_upload_keep(struct hl_upload *up, const char *path)
{
    if (fsync(up->fd) != 0) {
        hl_error("upload: fsync %s: %s", up->tmp_path, strerror(errno));
        return HL_EIO;
    }
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
    if (up->fd >= 0)
        close(up->fd);
    if (up->tmp_path[0])
        unlink(up->tmp_path);
    EVP_MD_CTX_free(up->sha);
    free(up);
}
