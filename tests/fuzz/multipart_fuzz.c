/* libFuzzer target for the upload path without a server: src/api/upload.c (the form's rules:
 * one "file" part, at most one "externalTenantId", the field rules of api/validate.c, the size
 * limit, the temporary file and its hash) on src/api/multipart.c (the streaming parser).
 *
 * Input: one byte that picks how the body is cut (its high bit: the bytes of a file registered
 * before, as PUT …/files/{uid}/content sends them), then the Content-Type header up to the first
 * '\n', then the body. Every input is uploaded twice, whole and cut into the chosen chunks, and
 * both must end the same way: same result, same answer, same fields, same stored bytes. Then:
 * - accepted: a file part was there, its fields pass their rules (for a registered file's bytes:
 *   no field at all was taken), the temporary file holds exactly `size` bytes whose SHA-256 is
 *   the one reported, and no more than the limit;
 * - refused: a 4xx answer whose body is {"error":{"code":...,"message":...}};
 * - either way, nothing is left under the data folder once the upload is freed.
 *
 *   make fuzz && build-fuzz/multipart_fuzz -max_total_time=60 tests/fuzz/corpus/multipart_fuzz
 * HL_FUZZ_PRINT=1 prints how each input ended. */
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/upload.h"
#include "common/encode.h"
#include "common/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_UPLOAD 1024 /* small, so that the 413 path is reached */

/* A data folder per input, removed after it: rmdir fails if anything was left in it. */
static char data_dir[64];
static char uploads_dir[96];

static void data_dir_open(void)
{
    /* tmpfs where there is one: folders and files come and go for every input */
    snprintf(data_dir, sizeof(data_dir), "%s/hl-multipart-fuzz-XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (!mkdtemp(data_dir))
        abort();
    snprintf(uploads_dir, sizeof(uploads_dir), "%s/uploads", data_dir);
    if (mkdir(uploads_dir, 0700) != 0)
        abort();
}

static void data_dir_close(void)
{
    if (rmdir(uploads_dir) != 0 || rmdir(data_dir) != 0)
        abort(); /* left behind */
}

/* How an upload ended. */
struct outcome {
    int rc;
    int status;
    char answer[1024];
    char file_name[HL_MAX_FILE_NAME + 1];
    char content_type[HL_MAX_CONTENT_TYPE + 1];
    char tenant[HL_MAX_TENANT + 1];
    int64_t size;
    char sha256[65];
};

static size_t next_cut(uint32_t *seed, uint8_t how)
{
    switch (how & 3) {
    case 0:
        return 1; /* a byte at a time */
    case 1:
        return 1 + (how >> 2); /* fixed chunks of 1..64 */
    default:
        *seed = *seed * 1103515245u + 12345u; /* random chunks of 1..256 */
        return 1 + ((*seed >> 16) % 256);
    }
}

/* The file under the temporary path must hold exactly what was reported. */
static void check_stored(const struct hl_upload *up)
{
    int fd = open(up->tmp_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        abort();
    static char buf[MAX_UPLOAD + 1];
    ssize_t n = read(fd, buf, sizeof(buf));
    close(fd);
    if (n != up->size || up->size > MAX_UPLOAD)
        abort();
    unsigned char md[32];
    unsigned len = 0;
    char hex[65];
    if (EVP_Digest(buf, (size_t)n, md, &len, EVP_sha256(), NULL) != 1 || len != 32)
        abort();
    hl_hex_encode(md, 32, hex);
    if (strcmp(hex, up->sha256) != 0)
        abort();
}

static void check_refusal(const struct hl_resp *rs)
{
    if (rs->status < 400 || rs->status > 499)
        abort();
    json_t *v = json_loadb(rs->body.p, rs->body.len, 0, NULL);
    json_t *e = json_object_get(v, "error");
    if (!json_is_string(json_object_get(e, "code")) ||
        !json_is_string(json_object_get(e, "message")) || json_object_size(v) != 1 ||
        json_object_size(e) != 2)
        abort();
    json_decref(v);
}

static void check_fields(const struct hl_upload *up)
{
    if (up->existing) {
        if (up->file_name[0] || up->tenant[0] || up->content_type[0] ||
            (up->multipart && !up->got_file))
            abort();
        return;
    }
    struct hl_resp rs = {0};
    hl_buf_init(&rs.body, 4096);
    if (!up->file_name[0] || (up->multipart && !up->got_file) ||
        hl_check_text(&HL_RULE_FILE_NAME, up->file_name, strlen(up->file_name), &rs) ||
        hl_check_text(&HL_RULE_TENANT, up->tenant, strlen(up->tenant), &rs) ||
        hl_check_text(&HL_RULE_CONTENT_TYPE, up->content_type, strlen(up->content_type), &rs))
        abort();
    hl_buf_free(&rs.body);
}

static void upload(const char *ct, const char *body, size_t n, uint8_t how, int whole,
                   struct outcome *o)
{
    memset(o, 0, sizeof(*o));
    struct hl_resp rs = {0};
    hl_buf_init(&rs.body, 4096);
    struct hl_upload_meta m = {.content_type = hl_str_c(ct), .existing = (how & 0x80) != 0};
    if (!m.existing && strncasecmp(ct, "multipart/form-data", 19) != 0)
        m.file_name = HL_STR("raw.bin");
    struct hl_upload *up = NULL;
    char tmp_path[PATH_MAX] = "";
    int rc = hl_upload_open(data_dir, MAX_UPLOAD, &m, &up, &rs);
    if (rc == 0) {
        snprintf(tmp_path, sizeof(tmp_path), "%s", up->tmp_path);
        uint32_t seed = how;
        for (size_t at = 0; at < n && rc == 0;) {
            size_t k = whole ? n : next_cut(&seed, how);
            if (k > n - at)
                k = n - at;
            rc = hl_upload_write(up, body + at, k, &rs);
            at += k;
        }
        if (rc == 0)
            rc = hl_upload_end(up, &rs);
    }
    o->rc = rc;
    o->status = rs.status;
    snprintf(o->answer, sizeof(o->answer), "%.*s", (int)rs.body.len, rs.body.p ? rs.body.p : "");
    if (rc == 0) {
        if (rs.status != 0)
            abort();
        check_fields(up);
        check_stored(up);
        memcpy(o->file_name, up->file_name, sizeof(o->file_name));
        memcpy(o->content_type, up->content_type, sizeof(o->content_type));
        memcpy(o->tenant, up->tenant, sizeof(o->tenant));
        o->size = up->size;
        memcpy(o->sha256, up->sha256, sizeof(o->sha256));
    } else {
        check_refusal(&rs);
    }
    hl_upload_free(up);
    hl_buf_free(&rs.body);
    if (tmp_path[0] && access(tmp_path, F_OK) == 0)
        abort(); /* left behind */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t how = data[0];
    const char *rest = (const char *)data + 1;
    size_t n = size - 1;
    const char *nl = memchr(rest, '\n', n);
    size_t ct_len = nl ? (size_t)(nl - rest) : n;
    if (ct_len > 1024)
        return 0;
    char ct[1025];
    memcpy(ct, rest, ct_len);
    ct[ct_len] = '\0'; /* a header value cannot hold NUL: it ends there */
    const char *body = nl ? nl + 1 : rest + n;
    size_t body_len = (size_t)(rest + n - body);

    static struct outcome a, b;
    data_dir_open();
    upload(ct, body, body_len, how, 1, &a);
    upload(ct, body, body_len, how, 0, &b);
    data_dir_close();
    if (memcmp(&a, &b, sizeof(a)) != 0)
        abort();                 /* the outcome depends on where the body was cut */
    if (getenv("HL_FUZZ_PRINT")) /* how each input ended, to check a corpus */
        fprintf(stderr, "%d %s %s %zu bytes %s\n", a.status, a.answer, a.file_name, (size_t)a.size,
                a.tenant);
    return 0;
}
