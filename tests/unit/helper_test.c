/* Tests for src/ingest/helper.c: the answer decoder from a table of frames, then real helper
 * processes under real limits.
 *
 * For the second part this program is its own helper, as hookline is: hl_helper_extract runs
 * /proc/self/exe, so `helper_test extract ...` (main below) plays `hookline extract`, with an
 * extraction that misbehaves on demand, chosen by the file-name hint: it aborts, eats memory
 * until an allocation fails (as poppler does past RLIMIT_AS), spins, sleeps, answers text that
 * breaks the promises of extract.h, exits without answering, or lists its open descriptors.
 * Every case then checks that the helper was reaped and no descriptor was left open. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/config.h"
#include "common/err.h"
#include "ingest/helper.h"

/* ---- the decoder ---- */

/* A frame built by hand, as helper.h lays it out. */
struct frame {
    unsigned char b[4096];
    size_t n;
};

static void put(struct frame *f, const void *p, size_t n)
{
    assert_true(f->n + n <= sizeof(f->b));
    memcpy(f->b + f->n, p, n);
    f->n += n;
}

static void put32(struct frame *f, uint32_t v)
{
    put(f, &v, 4);
}

static void put64(struct frame *f, uint64_t v)
{
    put(f, &v, 8);
}

/* An answer frame whose length fields say why_len and text_len, followed by why and text. */
static void answer(struct frame *f, int32_t rc, uint32_t kind, uint32_t encoding, uint64_t pages,
                   const char *why, uint32_t why_len, const char *text, uint64_t text_len)
{
    put(f, "HLX1", 4);
    put32(f, (uint32_t)rc);
    put32(f, kind);
    put32(f, encoding);
    put64(f, pages);
    put64(f, text_len);
    put32(f, why_len);
    put(f, why, strlen(why));
    put(f, text, strlen(text));
}

static void ok_text(struct frame *f, const char *text)
{
    answer(f, 0, HL_EXTRACT_TEXT, 0, 0, "", 0, text, strlen(text));
}

static void died(struct frame *f, int32_t sig, int32_t err, uint64_t rss)
{
    put(f, "HLXD", 4);
    put32(f, (uint32_t)sig);
    put32(f, (uint32_t)err);
    put64(f, rss);
}

enum build {
    B_EMPTY,
    B_TEXT,
    B_TEXT_TABS,
    B_PDF,
    B_FAILURE,
    B_ANSWER_DIED,
    B_DIED,
    B_SHORT_HEAD,
    B_SHORT_TEXT,
    B_TRAILING,
    B_DIED_LONG,
    B_DIED_FIRST,
    B_BAD_MAGIC,
    B_KIND_NONE_OK,
    B_KIND_UNKNOWN,
    B_ENCODING_UNKNOWN,
    B_PDF_NO_PAGES,
    B_TEXT_PAGES,
    B_TEXT_NUL,
    B_TEXT_CONTROL,
    B_TEXT_INVALID,
    B_TEXT_SEPARATOR,
    B_TEXT_NO_WORDS,
    B_TEXT_OVER_MAX,
    B_TEXT_LEN_HUGE,
    B_RC_UNKNOWN,
    B_RC_POSITIVE,
    B_FAILURE_NO_WHY,
    B_FAILURE_TEXT,
    B_FAILURE_KIND,
    B_WHY_LONG,
    B_WHY_CONTROL,
    B_OK_WITH_WHY,
    B_DIED_SIGNAL_BIG,
    B_DIED_SIGNAL_NEGATIVE,
};

static void build(struct frame *f, enum build b)
{
    static char long_why[1100];
    memset(long_why, 'x', sizeof(long_why) - 1);
    f->n = 0;
    switch (b) {
    case B_EMPTY:
        break;
    case B_TEXT:
        ok_text(f, "hello world");
        break;
    case B_TEXT_TABS:
        ok_text(f, "a\tb\nc \xC3\xA9t\xC3\xA9");
        break;
    case B_PDF:
        answer(f, 0, HL_EXTRACT_PDF, 4, 3, "", 0, "page one", 8);
        break;
    case B_FAILURE:
        answer(f, HL_EPARSE, 0, 0, 0, "the PDF is damaged", 18, "", 0);
        break;
    case B_ANSWER_DIED:
        ok_text(f, "hello");
        died(f, SIGSEGV, 0, 1 << 20);
        break;
    case B_DIED:
        died(f, SIGABRT, ENOMEM, 600u << 20);
        break;
    case B_SHORT_HEAD:
        ok_text(f, "hello");
        f->n = 20;
        break;
    case B_SHORT_TEXT:
        answer(f, 0, HL_EXTRACT_TEXT, 0, 0, "", 0, "hello", 6);
        break;
    case B_TRAILING:
        ok_text(f, "hello");
        put(f, "x", 1);
        break;
    case B_DIED_LONG:
        died(f, SIGABRT, 0, 0);
        put(f, "x", 1);
        break;
    case B_DIED_FIRST:
        died(f, SIGABRT, 0, 0);
        ok_text(f, "hello");
        break;
    case B_BAD_MAGIC:
        ok_text(f, "hello");
        f->b[3] = '2';
        break;
    case B_KIND_NONE_OK:
        answer(f, 0, HL_EXTRACT_NONE, 0, 0, "", 0, "hello", 5);
        break;
    case B_KIND_UNKNOWN:
        answer(f, 0, 7, 0, 0, "", 0, "hello", 5);
        break;
    case B_ENCODING_UNKNOWN:
        answer(f, 0, HL_EXTRACT_TEXT, 5, 0, "", 0, "hello", 5);
        break;
    case B_PDF_NO_PAGES:
        answer(f, 0, HL_EXTRACT_PDF, 4, 0, "", 0, "hello", 5);
        break;
    case B_TEXT_PAGES:
        answer(f, 0, HL_EXTRACT_TEXT, 0, 2, "", 0, "hello", 5);
        break;
    case B_TEXT_NUL:
        answer(f, 0, HL_EXTRACT_TEXT, 0, 0, "", 0, "", 3);
        put(f, "a\0b", 3);
        break;
    case B_TEXT_CONTROL:
        ok_text(f, "a\x01"
                   "b");
        break;
    case B_TEXT_INVALID:
        ok_text(f, "a\xFF"
                   "b");
        break;
    case B_TEXT_SEPARATOR:
        ok_text(f, "a\xE2\x80\xA8"
                   "b");
        break;
    case B_TEXT_NO_WORDS:
        ok_text(f, " \n\t ");
        break;
    case B_TEXT_OVER_MAX:
        ok_text(f, "0123456789abcdefg"); /* max_text is 16 */
        break;
    case B_TEXT_LEN_HUGE:
        answer(f, 0, HL_EXTRACT_TEXT, 0, 0, "", 0, "hello", UINT64_MAX - 2);
        break;
    case B_RC_UNKNOWN:
        answer(f, -99, 0, 0, 0, "why", 3, "", 0);
        break;
    case B_RC_POSITIVE:
        answer(f, 5, 0, 0, 0, "why", 3, "", 0);
        break;
    case B_FAILURE_NO_WHY:
        answer(f, HL_EREFUSED, 0, 0, 0, "", 0, "", 0);
        break;
    case B_FAILURE_TEXT:
        answer(f, HL_EREFUSED, 0, 0, 0, "why", 3, "text", 4);
        break;
    case B_FAILURE_KIND:
        answer(f, HL_EREFUSED, HL_EXTRACT_TEXT, 0, 0, "why", 3, "", 0);
        break;
    case B_WHY_LONG:
        answer(f, HL_EREFUSED, 0, 0, 0, long_why, (uint32_t)strlen(long_why), "", 0);
        break;
    case B_WHY_CONTROL:
        answer(f, HL_EREFUSED, 0, 0, 0, "bad\033[2J", 8, "", 0);
        break;
    case B_OK_WITH_WHY:
        answer(f, 0, HL_EXTRACT_TEXT, 0, 0, "why", 3, "hello", 5);
        break;
    case B_DIED_SIGNAL_BIG:
        died(f, 200, 0, 0);
        break;
    case B_DIED_SIGNAL_NEGATIVE:
        died(f, -1, 0, 0);
        break;
    }
}

static const struct {
    enum build frame;
    int rc, answered, died;
} decode_cases[] = {
    {B_EMPTY, HL_OK, 0, 0},
    {B_TEXT, HL_OK, 1, 0},
    {B_TEXT_TABS, HL_OK, 1, 0},
    {B_PDF, HL_OK, 1, 0},
    {B_FAILURE, HL_OK, 1, 0},
    {B_ANSWER_DIED, HL_OK, 1, 1},
    {B_DIED, HL_OK, 0, 1},
    {B_SHORT_HEAD, HL_EPARSE, 0, 0},
    {B_SHORT_TEXT, HL_EPARSE, 0, 0},
    {B_TRAILING, HL_EPARSE, 0, 0},
    {B_DIED_LONG, HL_EPARSE, 0, 0},
    {B_DIED_FIRST, HL_EPARSE, 0, 0},
    {B_BAD_MAGIC, HL_EPARSE, 0, 0},
    {B_KIND_NONE_OK, HL_EPARSE, 0, 0},
    {B_KIND_UNKNOWN, HL_EPARSE, 0, 0},
    {B_ENCODING_UNKNOWN, HL_EPARSE, 0, 0},
    {B_PDF_NO_PAGES, HL_EPARSE, 0, 0},
    {B_TEXT_PAGES, HL_EPARSE, 0, 0},
    {B_TEXT_NUL, HL_EPARSE, 0, 0},
    {B_TEXT_CONTROL, HL_EPARSE, 0, 0},
    {B_TEXT_INVALID, HL_EPARSE, 0, 0},
    {B_TEXT_SEPARATOR, HL_EPARSE, 0, 0},
    {B_TEXT_NO_WORDS, HL_EPARSE, 0, 0},
    {B_TEXT_OVER_MAX, HL_EPARSE, 0, 0},
    {B_TEXT_LEN_HUGE, HL_EPARSE, 0, 0},
    {B_RC_UNKNOWN, HL_EPARSE, 0, 0},
    {B_RC_POSITIVE, HL_EPARSE, 0, 0},
    {B_FAILURE_NO_WHY, HL_EPARSE, 0, 0},
    {B_FAILURE_TEXT, HL_EPARSE, 0, 0},
    {B_FAILURE_KIND, HL_EPARSE, 0, 0},
    {B_WHY_LONG, HL_EPARSE, 0, 0},
    {B_WHY_CONTROL, HL_EPARSE, 0, 0},
    {B_OK_WITH_WHY, HL_EPARSE, 0, 0},
    {B_DIED_SIGNAL_BIG, HL_EPARSE, 0, 0},
    {B_DIED_SIGNAL_NEGATIVE, HL_EPARSE, 0, 0},
};

static void test_decode(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(decode_cases) / sizeof(decode_cases[0]); i++) {
        struct frame f;
        struct hl_helper_output o;
        build(&f, decode_cases[i].frame);
        print_message("decode case %zu\n", i);
        assert_int_equal(hl_helper_decode(f.b, f.n, 16, &o), decode_cases[i].rc);
        if (decode_cases[i].rc != HL_OK)
            continue;
        assert_int_equal(o.answered, decode_cases[i].answered);
        assert_int_equal(o.died, decode_cases[i].died);
    }
    /* what comes out */
    struct frame f;
    struct hl_helper_output o;
    build(&f, B_PDF);
    assert_int_equal(hl_helper_decode(f.b, f.n, 16, &o), HL_OK);
    assert_int_equal(o.rc, HL_OK);
    assert_int_equal(o.kind, HL_EXTRACT_PDF);
    assert_int_equal(o.page_count, 3);
    assert_string_equal(o.encoding, "binary");
    assert_int_equal(o.text_len, 8);
    assert_memory_equal(o.text, "page one", 8);
    build(&f, B_FAILURE);
    assert_int_equal(hl_helper_decode(f.b, f.n, 16, &o), HL_OK);
    assert_int_equal(o.rc, HL_EPARSE);
    assert_int_equal(o.why_len, 18);
    assert_memory_equal(o.why, "the PDF is damaged", 18);
    build(&f, B_DIED);
    assert_int_equal(hl_helper_decode(f.b, f.n, 16, &o), HL_OK);
    assert_int_equal(o.signal, SIGABRT);
    assert_int_equal(o.err, ENOMEM);
    assert_int_equal(o.rss, 600u << 20);
}

/* ---- real helpers: this program as `hookline extract` ---- */

static int give_text(struct hl_extract *x, const char *text)
{
    x->text = strdup(text);
    assert_non_null(x->text);
    x->len = strlen(text);
    x->kind = HL_EXTRACT_TEXT;
    x->word_count = 1;
    x->encoding = "UTF-8";
    return HL_OK;
}

/* The open descriptors, as "0 1 2 ...". */
static void list_fds(char *out, size_t cap)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    size_t n = 0;
    out[0] = '\0';
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.' && strtol(e->d_name, NULL, 10) != dirfd(d))
            n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? " " : "", e->d_name);
    if (d)
        closedir(d);
}

/* The helper's extraction: file_name picks how it misbehaves. */
static int misbehave(const char *path, const char *type, const char *name, struct hl_extract *x,
                     char *why, size_t whylen)
{
    if (!name)
        return hl_extract_file(path, type, name, x, why, whylen);
    if (strcmp(name, "abort") == 0) {
        errno = EINVAL;
        abort();
    }
    if (strcmp(name, "hog") == 0) {
        /* as poppler's gmalloc does: abort when an allocation fails */
        for (;;) {
            char *p = malloc(1 << 20);
            if (!p)
                abort();
            memset(p, 1, 1 << 20);
            usleep(1000);
        }
    }
    if (strcmp(name, "oom") == 0) {
        snprintf(why, whylen, "out of memory while extracting the text");
        return HL_ENOMEM;
    }
    if (strcmp(name, "spin") == 0)
        for (volatile unsigned i = 0;; i++)
            ;
    if (strcmp(name, "sleep") == 0)
        for (;;)
            pause();
    if (strcmp(name, "exit") == 0)
        _exit(3);
    if (strcmp(name, "bad") == 0)
        return give_text(x, "a\x01"
                            "b");
    if (strcmp(name, "fds") == 0) {
        char fds[256];
        list_fds(fds, sizeof(fds));
        return give_text(x, fds);
    }
    return hl_extract_file(path, type, name, x, why, whylen);
}

static int helper_main(int argc, char **argv)
{
    struct hl_options o;
    char err[256];
    if (hl_options_parse(HL_CMD_EXTRACT, argc, argv, &o, err, sizeof(err)) != HL_OK ||
        o.nargs != 1) {
        fprintf(stderr, "helper_test extract: %s\n", err);
        return 2;
    }
    struct hl_helper_limits lim = {(size_t)o.ingest_memory, o.ingest_timeout_ms,
                                   (size_t)o.max_upload};
    return hl_helper_main(&lim, o.args[0], o.content_type, o.file_name, misbehave);
}

static char file_path[64];

static int count_fds(void)
{
    char fds[512];
    list_fds(fds, sizeof(fds));
    int n = fds[0] ? 1 : 0;
    for (const char *p = fds; *p; p++)
        n += *p == ' ';
    return n;
}

struct outcome {
    int rc;
    enum hl_helper_end end;
    char why[768];
    struct hl_extract x;
};

/* Runs one helper with the mode name (NULL: a real extraction of file_path) under a budget of
 * memory and timeout_ms, and checks it was reaped and left no descriptor open. */
static void run(const char *name, size_t memory, int64_t timeout_ms,
                const struct hl_helper_watch *w, struct outcome *o)
{
    struct hl_helper_limits lim = {memory, timeout_ms, 1 << 20};
    int fds = count_fds();
    memset(o, 0, sizeof(*o));
    o->rc = hl_helper_extract(&lim, file_path, "text/plain", name, w, &o->x, &o->end, o->why,
                              sizeof(o->why));
    print_message("%s: end %d, rc %d: %s\n", name ? name : "(text)", (int)o->end, o->rc, o->why);
    assert_int_equal(count_fds(), fds);
    int status;
    assert_int_equal(waitpid(-1, &status, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

static void test_answers(void **state)
{
    (void)state;
    struct outcome o;
    run(NULL, 64 << 20, 30000, NULL, &o);
    assert_int_equal(o.end, HL_HELPER_ANSWERED);
    assert_int_equal(o.rc, HL_OK);
    assert_string_equal(o.x.text, "hello world");
    assert_int_equal(o.x.len, 11);
    assert_int_equal(o.x.kind, HL_EXTRACT_TEXT);
    assert_int_equal(o.x.word_count, 2);
    assert_string_equal(o.x.encoding, "UTF-8");
    hl_extract_free(&o.x);

    /* a failure it explains is its answer */
    FILE *f = fopen(file_path, "w");
    assert_non_null(f);
    fclose(f);
    run(NULL, 64 << 20, 30000, NULL, &o);
    assert_int_equal(o.end, HL_HELPER_ANSWERED);
    assert_int_equal(o.rc, HL_EREFUSED);
    assert_string_equal(o.why, "the file is empty");
    assert_null(o.x.text);

    /* the helper gets stdin, stdout, stderr and nothing of the server's */
    run("fds", 64 << 20, 30000, NULL, &o);
    assert_int_equal(o.end, HL_HELPER_ANSWERED);
    assert_string_equal(o.x.text, "0 1 2 3"); /* 3: the answer, moved off stdout */
    hl_extract_free(&o.x);
}

static void test_limits(void **state)
{
    (void)state;
    struct outcome o;
    /* an allocation fails past the budget */
    run("hog", 32 << 20, 120000, NULL, &o);
    assert_int_equal(o.end, HL_HELPER_MEMORY);
    assert_int_equal(o.rc, HL_ETOOBIG);
    assert_non_null(strstr(o.why, "needs more than 32 MiB to extract"));
    assert_non_null(strstr(o.why, "--ingest-memory"));
    assert_null(o.x.text);
    /* or the extraction says it ran out */
    run("oom", 32 << 20, 30000, NULL, &o);
    assert_int_equal(o.end, HL_HELPER_MEMORY);
    /* the wall clock, whether it works or waits */
    run("spin", 64 << 20, 300, NULL, &o);
    assert_int_equal(o.end, HL_HELPER_TIME);
    assert_int_equal(o.rc, HL_ETOOBIG);
    assert_non_null(strstr(o.why, "took longer than 300 ms"));
    assert_non_null(strstr(o.why, "--ingest-timeout"));
    run("sleep", 64 << 20, 1500, NULL, &o);
    assert_int_equal(o.end, HL_HELPER_TIME);
    assert_non_null(strstr(o.why, "took longer than 1.5 s"));
}

static void test_crashes(void **state)
{
    (void)state;
    struct outcome o;
    run("abort", 64 << 20, 30000, NULL, &o);
    assert_int_equal(o.end, HL_HELPER_CRASHED);
    assert_int_equal(o.rc, HL_EIO);
    assert_non_null(strstr(o.why, "killed by signal 6 (SIGABRT)"));
    run("exit", 64 << 20, 30000, NULL, &o);
    assert_int_equal(o.end, HL_HELPER_CRASHED);
    assert_non_null(strstr(o.why, "without an answer (exit status 3)"));
    /* an answer that breaks extract.h's promises is not used */
    run("bad", 64 << 20, 30000, NULL, &o);
    assert_int_equal(o.end, HL_HELPER_CRASHED);
    assert_non_null(strstr(o.why, "damaged answer"));
    assert_null(o.x.text);
}

static int ticks;

static int tick(void *arg)
{
    ticks++;
    return *(int *)arg;
}

static void test_stop(void **state)
{
    (void)state;
    struct outcome o;
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(write(p[1], "x", 1), 1);
    struct hl_helper_watch w = {p[0], 0, NULL, NULL};
    run("sleep", 64 << 20, 60000, &w, &o);
    assert_int_equal(o.end, HL_HELPER_STOPPED);
    assert_int_equal(o.rc, HL_EUNAVAIL);
    close(p[0]);
    close(p[1]);

    /* ticks come while it runs; one that says stop stops it */
    int go_on = 0, stop = 1;
    w = (struct hl_helper_watch){-1, 20, tick, &go_on};
    ticks = 0;
    run("sleep", 64 << 20, 500, &w, &o);
    assert_int_equal(o.end, HL_HELPER_TIME);
    assert_true(ticks >= 1);
    w.arg = &stop;
    ticks = 0;
    run("sleep", 64 << 20, 60000, &w, &o);
    assert_int_equal(o.end, HL_HELPER_STOPPED);
    assert_int_equal(ticks, 1);
}

static int setup(void **state)
{
    (void)state;
    snprintf(file_path, sizeof(file_path), "/tmp/helper-test-XXXXXX");
    int fd = mkstemp(file_path);
    if (fd < 0 || write(fd, "hello world", 11) != 11)
        return -1;
    close(fd);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(file_path);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "extract") == 0)
        return helper_main(argc - 1, argv + 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode),
        cmocka_unit_test_setup_teardown(test_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crashes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
