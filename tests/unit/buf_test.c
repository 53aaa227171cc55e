/* Tests for src/common/buf.c: the growable buffer with a hard maximum. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"

/* The buffer holds exactly want (len bytes), NUL-terminated, within its maximum. */
static void expect_buf(const struct hl_buf *b, const char *want, size_t len)
{
    assert_int_equal(b->len, len);
    assert_true(b->len <= b->max);
    if (b->p) {
        assert_true(b->cap >= b->len + 1);
        assert_true(b->cap <= b->max + 1);
        assert_memory_equal(b->p, want, len);
        assert_int_equal(b->p[len], '\0');
    } else {
        assert_int_equal(len, 0);
    }
}

enum op { APPEND, PUTS, PUTC, PRINTF_NUM, RESET };

struct step {
    enum op op;
    const char *arg; /* bytes for APPEND/PUTS, the char for PUTC, the number for PRINTF_NUM */
    int rc;
    const char *want; /* whole contents after the step */
};

struct buf_case {
    const char *name;
    size_t max;
    struct step steps[6];
};

/* clang-format off */
#define END {0, NULL, 0, NULL}
/* clang-format on */
#define D10 "0123456789"
#define S70 D10 D10 D10 D10 D10 D10 D10

static const struct buf_case cases[] = {
    {"fits exactly", 5, {{APPEND, "hello", HL_OK, "hello"}, {PUTC, "!", HL_ETOOBIG, "hello"}, END}},
    {"one too many", 4, {{APPEND, "hello", HL_ETOOBIG, ""}, {APPEND, "hell", HL_OK, "hell"}, END}},
    {"second append refused whole",
     8,
     {{PUTS, "abcde", HL_OK, "abcde"},
      {PUTS, "fghi", HL_ETOOBIG, "abcde"},
      {PUTS, "fgh", HL_OK, "abcdefgh"},
      {PUTS, "", HL_OK, "abcdefgh"},
      {PUTC, "x", HL_ETOOBIG, "abcdefgh"},
      END}},
    {"max 0", 0, {{APPEND, "", HL_OK, ""}, {PUTC, "a", HL_ETOOBIG, ""}, END}},
    {"printf at the limit",
     6,
     {{PUTS, "n=", HL_OK, "n="},
      {PRINTF_NUM, "12345", HL_ETOOBIG, "n="},
      {PRINTF_NUM, "1234", HL_OK, "n=1234"},
      {PRINTF_NUM, "1", HL_ETOOBIG, "n=1234"},
      END}},
    {"reset frees room",
     3,
     {{PUTS, "abc", HL_OK, "abc"},
      {PUTC, "d", HL_ETOOBIG, "abc"},
      {RESET, NULL, HL_OK, ""},
      {PUTS, "xyz", HL_OK, "xyz"},
      {PUTS, "w", HL_ETOOBIG, "xyz"},
      END}},
    {"bigger than the first allocation",
     200,
     {{PUTS, S70, HL_OK, S70}, {PUTS, S70, HL_OK, S70 S70}, {PUTS, S70, HL_ETOOBIG, S70 S70}, END}},
};

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct buf_case *c = &cases[i];
        struct hl_buf b;
        hl_buf_init(&b, c->max);
        assert_null(b.p);
        assert_int_equal(b.len, 0);
        assert_int_equal(b.max, c->max);
        for (size_t k = 0; k < 6 && c->steps[k].want; k++) {
            const struct step *s = &c->steps[k];
            print_message("%s, step %zu\n", c->name, k);
            /* a refused step must leave the bytes, length and allocation alone */
            char *p0 = b.p;
            size_t len0 = b.len, cap0 = b.cap;
            int rc = 0;
            switch (s->op) {
            case APPEND:
                rc = hl_buf_append(&b, s->arg, strlen(s->arg));
                break;
            case PUTS:
                rc = hl_buf_puts(&b, s->arg);
                break;
            case PUTC:
                rc = hl_buf_putc(&b, s->arg[0]);
                break;
            case PRINTF_NUM:
                rc = hl_buf_printf(&b, "%ld", strtol(s->arg, NULL, 10));
                break;
            case RESET:
                hl_buf_reset(&b);
                break;
            }
            assert_int_equal(rc, s->rc);
            if (rc != HL_OK) {
                assert_ptr_equal(b.p, p0);
                assert_int_equal(b.len, len0);
                assert_int_equal(b.cap, cap0);
            }
            expect_buf(&b, s->want, strlen(s->want));
        }
        hl_buf_free(&b);
        assert_null(b.p);
        assert_int_equal(b.len, 0);
    }
}

static void test_printf(void **state)
{
    (void)state;
    struct hl_buf b;
    hl_buf_init(&b, 1 << 20);
    /* printf on an empty, unallocated buffer */
    assert_int_equal(hl_buf_printf(&b, "%s", ""), HL_OK);
    expect_buf(&b, "", 0);
    assert_int_equal(hl_buf_printf(&b, "%d-%s-%05.1f-%x-%c", -7, "x", 3.14159, 255u, 'Z'), HL_OK);
    expect_buf(&b, "-7-x-003.1-ff-Z", 15);
    assert_int_equal(hl_buf_printf(&b, "|%lld|", (long long)INT64_MIN), HL_OK);
    expect_buf(&b, "-7-x-003.1-ff-Z|-9223372036854775808|", 37);
    /* output far longer than the first allocation, in one call */
    char big[5000];
    memset(big, 'q', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    hl_buf_reset(&b);
    assert_int_equal(hl_buf_printf(&b, "<%s>", big), HL_OK);
    assert_int_equal(b.len, 5001);
    assert_int_equal(b.p[0], '<');
    assert_int_equal(b.p[5000], '>');
    assert_int_equal(b.p[5001], '\0');
    hl_buf_free(&b);

    /* refused printf leaves an allocated buffer untouched, bytes after the NUL included */
    hl_buf_init(&b, 10);
    assert_int_equal(hl_buf_puts(&b, "abc"), HL_OK);
    char before[11];
    memcpy(before, b.p, b.cap < sizeof(before) ? b.cap : sizeof(before));
    assert_int_equal(hl_buf_printf(&b, "%s", "12345678"), HL_ETOOBIG);
    expect_buf(&b, "abc", 3);
    assert_memory_equal(b.p, before, b.cap < sizeof(before) ? b.cap : sizeof(before));
    hl_buf_free(&b);
}

/* Byte by byte up to the maximum: contents stay right, the allocation never passes max + 1. */
static void test_growth(void **state)
{
    (void)state;
    static const size_t maxes[] = {1, 63, 64, 65, 127, 128, 1000, 4096, 10000};
    for (size_t m = 0; m < sizeof(maxes) / sizeof(maxes[0]); m++) {
        struct hl_buf b;
        hl_buf_init(&b, maxes[m]);
        for (size_t i = 0; i < maxes[m]; i++) {
            assert_int_equal(hl_buf_putc(&b, (char)('a' + i % 26)), HL_OK);
            assert_int_equal(b.len, i + 1);
            assert_true(b.cap <= maxes[m] + 1);
            assert_int_equal(b.p[b.len], '\0');
        }
        for (size_t i = 0; i < maxes[m]; i++)
            assert_int_equal(b.p[i], (char)('a' + i % 26));
        assert_int_equal(hl_buf_putc(&b, 'x'), HL_ETOOBIG);
        assert_int_equal(hl_buf_append(&b, "xy", 2), HL_ETOOBIG);
        assert_int_equal(hl_buf_append(&b, "", 0), HL_OK);
        /* a length that would wrap size_t arithmetic is refused, not allocated */
        assert_int_equal(hl_buf_append(&b, "x", SIZE_MAX), HL_ETOOBIG);
        assert_int_equal(hl_buf_append(&b, "x", SIZE_MAX - b.len), HL_ETOOBIG);
        assert_int_equal(b.len, maxes[m]);
        hl_buf_free(&b);
    }
}

static void test_binary(void **state)
{
    (void)state;
    struct hl_buf b;
    hl_buf_init(&b, 16);
    /* bytes are bytes: NULs inside the data are kept and counted */
    assert_int_equal(hl_buf_append(&b, "a\0b\0", 4), HL_OK);
    assert_int_equal(b.len, 4);
    assert_memory_equal(b.p, "a\0b\0", 5);
    assert_int_equal(hl_buf_putc(&b, '\0'), HL_OK);
    assert_int_equal(b.len, 5);
    hl_buf_free(&b);
}

static void test_steal(void **state)
{
    (void)state;
    struct hl_buf b;
    hl_buf_init(&b, 100);
    /* stealing an empty, unallocated buffer still gives a string the caller frees */
    char *s = hl_buf_steal(&b);
    assert_non_null(s);
    assert_string_equal(s, "");
    free(s);
    assert_null(b.p);

    assert_int_equal(hl_buf_puts(&b, "hello"), HL_OK);
    char *p = b.p;
    s = hl_buf_steal(&b);
    /* the same memory changes hands; the buffer is empty and keeps its maximum */
    assert_ptr_equal(s, p);
    assert_string_equal(s, "hello");
    assert_null(b.p);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    assert_int_equal(b.max, 100);
    /* it can be used again at once, and its new bytes are not the stolen ones */
    assert_int_equal(hl_buf_puts(&b, "world"), HL_OK);
    expect_buf(&b, "world", 5);
    assert_string_equal(s, "hello");
    assert_ptr_not_equal(b.p, s);
    free(s);
    /* the maximum still holds after a steal */
    assert_int_equal(hl_buf_append(&b, "x", 96), HL_ETOOBIG);
    hl_buf_free(&b);
}

static void test_reset(void **state)
{
    (void)state;
    struct hl_buf b;
    /* reset of a buffer that never allocated */
    hl_buf_init(&b, 50);
    hl_buf_reset(&b);
    assert_null(b.p);
    assert_int_equal(b.len, 0);
    assert_int_equal(hl_buf_puts(&b, "some text"), HL_OK);
    char *p = b.p;
    size_t cap = b.cap;
    hl_buf_reset(&b);
    /* memory kept, contents gone */
    assert_ptr_equal(b.p, p);
    assert_int_equal(b.cap, cap);
    expect_buf(&b, "", 0);
    assert_int_equal(hl_buf_puts(&b, "new"), HL_OK);
    expect_buf(&b, "new", 3);
    /* free, then the same struct again after init */
    hl_buf_free(&b);
    assert_null(b.p);
    hl_buf_free(&b);
    hl_buf_init(&b, 2);
    assert_int_equal(hl_buf_puts(&b, "abc"), HL_ETOOBIG);
    assert_int_equal(hl_buf_puts(&b, "ab"), HL_OK);
    expect_buf(&b, "ab", 2);
    hl_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),  cmocka_unit_test(test_printf), cmocka_unit_test(test_growth),
        cmocka_unit_test(test_binary), cmocka_unit_test(test_steal),  cmocka_unit_test(test_reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
