/* Extraction out of process: one helper process per file, under limits.
 *
 * poppler and the text decoders never run inside the server. For each file the ingest worker
 * starts the server's own binary (/proc/self/exe) as `hookline extract FILE`, in its own process
 * group, with the hints in its environment (not its arguments, which other local users can read)
 * and the server's pid. The helper dies with the server: first it asks for SIGKILL when its parent
 * dies (PR_SET_PDEATHSIG), then checks that its parent is still that pid (a server killed before
 * that has no say any more), and stops at once when it is not.
 * Before it reads the file the helper limits itself: no core files, a CPU-time limit of the
 * timeout (RLIMIT_CPU), and an address-space limit (RLIMIT_AS) of its size at that point plus the
 * memory budget, so the budget is what extracting may use on top of the program itself. The
 * parent kills it (SIGKILL) at the wall-clock deadline and always reaps it; every descriptor it
 * opens is close-on-exec, and the helper gets exactly stdin (/dev/null), stdout (the answer pipe)
 * and stderr (the diagnostics pipe).
 *
 * The helper answers in one frame on the answer pipe; the parent reads it with a hard maximum,
 * checks it (sizes, the kind, UTF-8 and the other promises of extract.h) and only then uses it.
 * What the helper prints on stderr (poppler's complaints) is kept, its first 2 KiB, for the log.
 *
 * How it ended (enum hl_helper_end) is decided from the answer, the wait status and a "died"
 * frame: the helper catches the signals of a crash (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT,
 * SIGTRAP) and, before dying of them, writes the signal, errno and its resident size. A death
 * whose last failure was an allocation (errno ENOMEM: poppler and glib abort when malloc fails
 * under RLIMIT_AS), or whose resident size reached the budget, is over memory; SIGXCPU, or the
 * parent's kill at the deadline, is over time; any other death is a crash, which trying again may
 * cure (the worker does, once).
 *
 * AddressSanitizer builds (make test): ASan reserves its heap when the process starts, so
 * RLIMIT_AS does not bound small allocations there. The parent then also gives the helper
 * ASAN_OPTIONS soft_rss_limit_mb (the budget plus ASan's own start-up size) and
 * allocator_may_return_null=1, so allocations fail past the budget as they would under
 * RLIMIT_AS, and the death callback writes the died frame for ASan's own out-of-memory exit.
 *
 * Frames, in the host's byte order (the same binary writes and reads them):
 *   answer: "HLX1", int32 rc, uint32 kind, uint64 page_count, uint32 why_len, uint64 text_len,
 *           then why_len bytes of reason (rc != 0) and text_len bytes of text (rc == 0)
 *   died:   "HLXD", int32 signal (0: AddressSanitizer's exit), int32 errno, uint64 rss bytes
 */
#ifndef HL_INGEST_HELPER_H
#define HL_INGEST_HELPER_H

#include <stddef.h>
#include <stdint.h>

#include "ingest/extract.h"

/* The limits of one extraction; serve's options (defaults in common/config.c). */
struct hl_helper_limits {
    size_t memory;      /* bytes extracting may use (--ingest-memory) */
    int64_t timeout_ms; /* wall-clock and CPU time (--ingest-timeout) */
    size_t max_input;   /* the largest file read (--max-upload) */
};

/* How a helper ended. */
enum hl_helper_end {
    HL_HELPER_ANSWERED, /* it answered: success, or a failure with its reason */
    HL_HELPER_MEMORY,   /* it needed more than the memory limit */
    HL_HELPER_TIME,     /* it took longer than the timeout */
    HL_HELPER_CRASHED,  /* it died otherwise (a signal, no answer, a bad answer) */
    HL_HELPER_STOPPED,  /* the caller stopped it (struct hl_helper_watch) */
};

/* What the caller watches while a helper runs (all optional). */
struct hl_helper_watch {
    int stop_fd;            /* the helper is killed as soon as this is readable; -1: none */
    int64_t tick_ms;        /* tick is called every tick_ms while the helper runs */
    int (*tick)(void *arg); /* nonzero: stop the helper (the caller's claim is gone, say) */
    void *arg;
};

/* Extracts the file at path in a helper process under lim, as hl_extract_file would with
 * out->max_input = lim->max_input: declared_type and file_name are hints (may be NULL). The
 * helper is stopped as w (NULL: nothing to watch) says. On success fills out (free with
 * hl_extract_free) and sets *end to HL_HELPER_ANSWERED. Otherwise sets *end, leaves out empty
 * and writes a reason a person can act on in why: the helper's answer (its code is returned), or
 * over memory or time (naming the limit and the flag that sets it; HL_ETOOBIG), a crash (HL_EIO)
 * or a stop (HL_EUNAVAIL). HL_ENOMEM or HL_EIO when the helper cannot be started (end
 * HL_HELPER_CRASHED). */
int hl_helper_extract(const struct hl_helper_limits *lim, const char *path,
                      const char *declared_type, const char *file_name,
                      const struct hl_helper_watch *w, struct hl_extract *out,
                      enum hl_helper_end *end, char *why, size_t whylen);

/* An extraction as hl_extract_file does it (same arguments and returns). */
typedef int (*hl_helper_fn)(const char *path, const char *declared_type, const char *file_name,
                            struct hl_extract *out, char *why, size_t whylen);

/* The helper's side, `hookline extract`: limits this process as above, extracts the file at path
 * with extract (hl_extract_file; tests give their own) and writes the answer frame to stdout
 * (stdout then points at /dev/null). Returns the exit status: 0 when the answer was written
 * (whatever it says), 1 when it could not be. */
int hl_helper_main(const struct hl_helper_limits *lim, const char *path, const char *declared_type,
                   const char *file_name, hl_helper_fn extract);

/* What hl_helper_decode finds in a helper's output. */
struct hl_helper_output {
    int answered; /* a complete answer frame came */
    int rc;       /* its code: 0, or a negative HL_E code */
    enum hl_extract_kind kind;
    size_t page_count;
    const char *why; /* rc != 0: the reason, why_len bytes (not NUL-terminated); points into the
                        output */
    size_t why_len;
    const char *text; /* rc == 0: the text, text_len bytes, points into the output */
    size_t text_len;
    const char *encoding; /* rc == 0: static, as struct hl_extract's */
    int died;             /* a died frame came (after the answer, or alone) */
    int signal;           /* the died frame's signal (0: AddressSanitizer's exit) */
    int err;              /* its errno */
    uint64_t rss;         /* its resident size in bytes */
};

/* Decodes a helper's output data[0..n) into *o. Returns 0, or HL_EPARSE when it is anything but
 * an answer frame (perhaps followed by a died frame), a died frame alone, or nothing: a frame cut
 * short or with bytes after it, an unknown kind or code, a reason longer than 1 KiB, text over
 * max_text or breaking the promises of extract.h (valid UTF-8, no NUL or control characters but
 * tab and newline, some words), a page count on a kind that has none. */
int hl_helper_decode(const void *data, size_t n, size_t max_text, struct hl_helper_output *o);

#endif
