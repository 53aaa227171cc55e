#include "ingest/helper.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/config.h"
#include "common/err.h"
#include "common/log.h"
#include "common/utf8.h"

#if defined(__SANITIZE_ADDRESS__)
#define HL_HELPER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HL_HELPER_ASAN 1
#endif
#endif
#ifdef HL_HELPER_ASAN
#include <sanitizer/common_interface_defs.h>
/* ASan's resident size when the helper starts (shadow, its allocator): the soft limit allows it
 * on top of the budget. */
#define ASAN_START_MB 64
#endif

extern char **environ;

/* The frames (helper.h). */
#define ANSWER_MAGIC "HLX1"
#define DIED_MAGIC "HLXD"
enum {
    A_RC = 4,
    A_KIND = 8,
    A_ENCODING = 12,
    A_PAGES = 16,
    A_TEXT_LEN = 24,
    A_WHY_LEN = 32,
    ANSWER_HEAD = 36,
    D_SIGNAL = 4,
    D_ERRNO = 8,
    D_RSS = 12,
    DIED_LEN = 20,
    WHY_MAX = 1024,
    DIAG_MAX = 2048, /* bytes of the helper's stderr kept for the log */
};

/* The encodings hl_extract reports, by their index in the answer. */
static const char *const ENCODINGS[] = {"UTF-8", "UTF-16LE", "UTF-16BE", "windows-1252", "binary"};
#define NENCODINGS (sizeof(ENCODINGS) / sizeof(ENCODINGS[0]))

/* ---- decoding ---- */

static uint32_t get32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* Checks an answer frame's fields against the promises of extract.h. */
static int check_answer(const struct hl_helper_output *o, uint32_t encoding)
{
    if (o->rc != HL_OK) {
        if (o->rc < HL_EREFUSED || o->rc > HL_ENOMEM || o->kind != HL_EXTRACT_NONE ||
            o->page_count || o->text_len || o->why_len == 0 ||
            !hl_extract_text_ok(o->why, o->why_len))
            return HL_EPARSE;
        return HL_OK;
    }
    if (o->kind <= HL_EXTRACT_NONE || o->kind > HL_EXTRACT_PDF || encoding >= NENCODINGS ||
        o->why_len || (o->kind == HL_EXTRACT_PDF) != (o->page_count > 0) ||
        o->page_count > INT32_MAX || !hl_extract_text_ok(o->text, o->text_len) ||
        hl_extract_count_words(o->text, o->text_len) == 0)
        return HL_EPARSE;
    return HL_OK;
}

int hl_helper_decode(const void *data, size_t n, size_t max_text, struct hl_helper_output *o)
{
    const unsigned char *p = data;
    size_t at = 0;
    memset(o, 0, sizeof(*o));
    if (n >= 4 && memcmp(p, ANSWER_MAGIC, 4) == 0) {
        if (n < ANSWER_HEAD)
            return HL_EPARSE;
        uint64_t pages = get64(p + A_PAGES), text_len = get64(p + A_TEXT_LEN);
        uint32_t why_len = get32(p + A_WHY_LEN), kind = get32(p + A_KIND);
        size_t room = n - ANSWER_HEAD;
        if (why_len > WHY_MAX || why_len > room || text_len > max_text ||
            text_len > room - why_len || kind > HL_EXTRACT_PDF)
            return HL_EPARSE;
        o->rc = (int32_t)get32(p + A_RC);
        o->kind = (enum hl_extract_kind)kind;
        o->page_count = (size_t)pages;
        o->why = (const char *)p + ANSWER_HEAD;
        o->why_len = why_len;
        o->text = o->why + why_len;
        o->text_len = (size_t)text_len;
        uint32_t encoding = get32(p + A_ENCODING);
        if (check_answer(o, encoding) != HL_OK)
            return HL_EPARSE;
        o->encoding = o->rc == HL_OK ? ENCODINGS[encoding] : NULL;
        o->answered = 1;
        at = ANSWER_HEAD + why_len + (size_t)text_len;
    }
    if (n - at >= 4 && memcmp(p + at, DIED_MAGIC, 4) == 0) {
        if (n - at != DIED_LEN)
            return HL_EPARSE;
        int32_t sig = (int32_t)get32(p + at + D_SIGNAL);
        if (sig < 0 || sig >= NSIG)
            return HL_EPARSE;
        o->died = 1;
        o->signal = sig;
        o->err = (int32_t)get32(p + at + D_ERRNO);
        o->rss = get64(p + at + D_RSS);
        at = n;
    }
    return at == n ? HL_OK : HL_EPARSE;
}

/* ---- the helper's side ---- */

static int answer_fd = -1;
static volatile sig_atomic_t died_told;

/* Writes all of p[0..n) to fd (async-signal-safe). */
static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return HL_EIO;
        c += w;
        n -= (size_t)w;
    }
    return HL_OK;
}

/* Field `field` (0: size, 1: resident) of /proc/self/statm, in bytes; 0 when unknown.
 * Async-signal-safe. */
static uint64_t statm(int field)
{
    char b[128];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, b, sizeof(b) - 1);
    close(fd);
    uint64_t v = 0;
    for (ssize_t i = 0, f = 0; i < n && f <= field; i++) {
        if (b[i] == ' ')
            f++;
        else if (f == field && b[i] >= '0' && b[i] <= '9')
            v = v * 10 + (uint64_t)(b[i] - '0');
    }
    return v * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* Tells the parent how the helper dies, once (async-signal-safe). */
static void tell_death(int sig, int err)
{
    if (died_told || answer_fd < 0)
        return;
    died_told = 1;
    unsigned char f[DIED_LEN];
    int32_t s = sig, e = err;
    uint64_t rss = statm(1);
    memcpy(f, DIED_MAGIC, 4);
    memcpy(f + D_SIGNAL, &s, 4);
    memcpy(f + D_ERRNO, &e, 4);
    memcpy(f + D_RSS, &rss, 8);
    write_all(answer_fd, f, sizeof(f));
}

static const int FATAL[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP};
#define NFATAL (sizeof(FATAL) / sizeof(FATAL[0]))
static struct sigaction fatal_before[NFATAL];

static void on_fatal(int sig)
{
    int err = errno;
    tell_death(sig, err);
    for (size_t i = 0; i < NFATAL; i++)
        if (FATAL[i] == sig)
            sigaction(sig, &fatal_before[i], NULL);
    /* A fault happens again on return, now to the handler before ours (AddressSanitizer's
     * report, or the default); abort() and a breakpoint trap must be raised again. */
    if (sig == SIGABRT || sig == SIGTRAP)
        raise(sig);
    errno = err;
}

#ifdef HL_HELPER_ASAN
static void on_asan_death(void)
{
    tell_death(0, errno);
}
#endif

static void catch_deaths(void)
{
    /* A stack of their own, for a stack overflow (unless AddressSanitizer has set one up) */
    static char stack[64 * 1024];
    stack_t ss = {.ss_sp = stack, .ss_size = sizeof(stack)}, before;
    if (sigaltstack(NULL, &before) == 0 && (before.ss_flags & SS_DISABLE))
        sigaltstack(&ss, NULL);
    for (size_t i = 0; i < NFATAL; i++) {
        struct sigaction sa = {.sa_handler = on_fatal, .sa_flags = SA_ONSTACK};
        sigemptyset(&sa.sa_mask);
        sigaction(FATAL[i], &sa, &fatal_before[i]);
    }
#ifdef HL_HELPER_ASAN
    __sanitizer_set_death_callback(on_asan_death);
#endif
}

/* Lowers limit res to want (never above its hard limit). */
static int limit(int res, rlim_t want, rlim_t hard_extra)
{
    struct rlimit now, r;
    if (getrlimit(res, &now) != 0)
        return HL_EIO;
    r.rlim_max = want + hard_extra;
    if (now.rlim_max != RLIM_INFINITY && r.rlim_max > now.rlim_max)
        r.rlim_max = now.rlim_max;
    r.rlim_cur = want < r.rlim_max ? want : r.rlim_max;
    return setrlimit(res, &r) == 0 ? HL_OK : HL_EIO;
}

static int limit_self(const struct hl_helper_limits *lim)
{
    uint64_t size = statm(0);
    if (size == 0)
        return HL_EIO;
    /* CPU time: SIGXCPU at the timeout, SIGKILL a second later. */
    rlim_t cpu = (rlim_t)((lim->timeout_ms + 999) / 1000);
    int rc = limit(RLIMIT_CORE, 0, 0);
    if (rc == HL_OK)
        rc = limit(RLIMIT_CPU, cpu, 1);
    if (rc == HL_OK)
        rc = limit(RLIMIT_AS, (rlim_t)(size + lim->memory), 0);
    return rc;
}

static uint32_t encoding_index(const char *e)
{
    for (uint32_t i = 0; e && i < NENCODINGS; i++)
        if (strcmp(e, ENCODINGS[i]) == 0)
            return i;
    return 0;
}

/* Makes a failure's reason fit its frame: never empty, valid UTF-8 without control characters
 * (a reason may quote a library's message), each byte that breaks that replaced by '?'. */
static void clean_reason(char *why, size_t cap, int rc)
{
    if (!why[0])
        snprintf(why, cap, "%s", hl_strerror(rc));
    size_t n = strlen(why);
    for (size_t i = 0; i < n;) {
        size_t l = hl_utf8_next((const unsigned char *)why + i, n - i, &(uint32_t){0});
        if (!hl_extract_text_ok(why + i, l) || why[i] == '\n' || why[i] == '\t')
            memset(why + i, '?', l);
        i += l;
    }
}

static int send_answer(int fd, int rc, const struct hl_extract *x, char *why)
{
    unsigned char h[ANSWER_HEAD];
    if (rc)
        clean_reason(why, WHY_MAX, rc);
    size_t why_len = rc ? strlen(why) : 0;
    int32_t code = rc;
    uint32_t kind = x->kind, enc = encoding_index(x->encoding), wl = (uint32_t)why_len;
    uint64_t pages = x->page_count, text_len = rc ? 0 : x->len;
    memcpy(h, ANSWER_MAGIC, 4);
    memcpy(h + A_RC, &code, 4);
    memcpy(h + A_KIND, &kind, 4);
    memcpy(h + A_ENCODING, &enc, 4);
    memcpy(h + A_PAGES, &pages, 8);
    memcpy(h + A_TEXT_LEN, &text_len, 8);
    memcpy(h + A_WHY_LEN, &wl, 4);
    int w = write_all(fd, h, sizeof(h));
    if (w == HL_OK)
        w = write_all(fd, why, why_len);
    if (w == HL_OK)
        w = write_all(fd, x->text, text_len);
    return w;
}

/* The server's worker thread going away (the server killed) takes the helper along: SIGKILL
 * when it dies. A server killed before the prctl took effect sent nothing; the helper then has
 * another parent already (init or a subreaper) than the pid the server put in its environment,
 * and stops at once. Run without that variable (by hand), only the prctl applies. */
static int follow_parent(void)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        return HL_EIO;
    const char *want = getenv(HL_ENV_EXTRACT_PARENT);
    if (!want)
        return HL_OK;
    char *end;
    errno = 0;
    long long pid = strtoll(want, &end, 10);
    if (errno || end == want || *end || pid <= 0)
        return HL_EINVAL;
    return (long long)getppid() == pid ? HL_OK : HL_ESTALE;
}

int hl_helper_main(const struct hl_helper_limits *lim, const char *path, const char *declared_type,
                   const char *file_name, hl_helper_fn extract)
{
    if (follow_parent() != HL_OK) {
        fprintf(stderr, "hookline extract: cannot follow the server that started it (gone?)\n");
        return 1;
    }
    /* The answer goes where stdout pointed; stdout itself to /dev/null, so that nothing a
     * library prints can get into a frame. */
    answer_fd = fcntl(1, F_DUPFD_CLOEXEC, 3);
    int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (answer_fd < 0 || null < 0 || dup2(null, 1) < 0) {
        fprintf(stderr, "hookline extract: cannot set up its output: %s\n", strerror(errno));
        return 1;
    }
    close(null);
    catch_deaths();
    if (limit_self(lim) != HL_OK) {
        fprintf(stderr, "hookline extract: cannot set its limits: %s\n", strerror(errno));
        return 1;
    }
    struct hl_extract x = {.max_input = lim->max_input};
    char why[WHY_MAX] = "";
    int rc = extract(path, declared_type, file_name, &x, why, sizeof(why));
    int w = send_answer(answer_fd, rc, &x, why);
    hl_extract_free(&x);
    close(answer_fd);
    answer_fd = -1;
    return w == HL_OK ? 0 : 1;
}

/* ---- the server's side ---- */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "60 s", "1.5 s", "250 ms" */
static void duration_text(char *dst, size_t n, int64_t ms)
{
    if (ms < 1000)
        snprintf(dst, n, "%lld ms", (long long)ms);
    else if (ms % 1000 == 0)
        snprintf(dst, n, "%lld s", (long long)(ms / 1000));
    else
        snprintf(dst, n, "%.1f s", (double)ms / 1000.0);
}

/* The helper's argument and environment strings, all owned here. */
struct spawn_args {
    const char *argv[11];
    char memory[32], timeout[32], max_input[32];
    char **envp;
    char *own[4]; /* environment strings made here */
};

static void spawn_args_free(struct spawn_args *a)
{
    for (size_t i = 0; i < sizeof(a->own) / sizeof(a->own[0]); i++)
        free(a->own[i]);
    free(a->envp);
}

/* "NAME=value" in a new string, or NULL. */
static char *env_entry(const char *name, const char *value)
{
    size_t n = strlen(name) + strlen(value) + 2;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s=%s", name, value);
    return s;
}

/* The server's environment without the hint variables, the hints themselves, and in ASan builds
 * the allocator's limit. */
static int spawn_env(struct spawn_args *a, const struct hl_helper_limits *lim, const char *type,
                     const char *name)
{
    size_t n = 0, k = 0, o = 0;
    while (environ[n])
        n++;
    a->envp = calloc(n + 5, sizeof(char *));
    if (!a->envp)
        return HL_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (strncmp(environ[i], HL_ENV_EXTRACT_PREFIX, strlen(HL_ENV_EXTRACT_PREFIX)) == 0)
            continue;
#ifdef HL_HELPER_ASAN
        if (strncmp(environ[i], "ASAN_OPTIONS=", 13) == 0)
            continue;
#endif
        a->envp[k++] = environ[i];
    }
    if (type && *type && !(a->envp[k++] = a->own[o++] = env_entry(HL_ENV_EXTRACT_TYPE, type)))
        return HL_ENOMEM;
    if (name && *name && !(a->envp[k++] = a->own[o++] = env_entry(HL_ENV_EXTRACT_NAME, name)))
        return HL_ENOMEM;
    char pid[24];
    snprintf(pid, sizeof(pid), "%lld", (long long)getpid());
    if (!(a->envp[k++] = a->own[o++] = env_entry(HL_ENV_EXTRACT_PARENT, pid)))
        return HL_ENOMEM;
#ifdef HL_HELPER_ASAN
    const char *before = getenv("ASAN_OPTIONS");
    char opts[1024];
    snprintf(opts, sizeof(opts), "%s%ssoft_rss_limit_mb=%zu:allocator_may_return_null=1",
             before ? before : "", before && *before ? ":" : "",
             (lim->memory >> 20) + ASAN_START_MB);
    if (!(a->envp[k++] = a->own[o++] = env_entry("ASAN_OPTIONS", opts)))
        return HL_ENOMEM;
#else
    (void)lim;
#endif
    return HL_OK;
}

static int spawn_argv(struct spawn_args *a, const struct hl_helper_limits *lim, const char *path)
{
    snprintf(a->memory, sizeof(a->memory), "%zu", lim->memory);
    snprintf(a->timeout, sizeof(a->timeout), "%lldms", (long long)lim->timeout_ms);
    snprintf(a->max_input, sizeof(a->max_input), "%zu", lim->max_input);
    const char *v[] = {"hookline", "extract",      "--ingest-memory", a->memory, "--ingest-timeout",
                       a->timeout, "--max-upload", a->max_input,      "--",      path,
                       NULL};
    _Static_assert(sizeof(v) == sizeof(a->argv), "argv fits");
    memcpy(a->argv, v, sizeof(v));
    return HL_OK;
}

/* A helper being run. */
struct run {
    pid_t pid;
    int pidfd;    /* readable once it exited; -1 where pidfd_open is missing */
    int out, err; /* the read ends of its stdout and stderr; -1 after EOF */
    int exited;   /* pidfd said so */
    int killed;   /* enum kill_why */
    struct hl_buf answer;
    char diag[DIAG_MAX];
    size_t diag_len;
};

enum kill_why { NOT_KILLED, KILLED_TIME, KILLED_STOP, KILLED_SIZE };

/* Starts the helper with its stdout and stderr on two pipes. */
static int start(struct run *r, const struct hl_helper_limits *lim, const char *path,
                 const char *type, const char *name)
{
    int out[2] = {-1, -1}, err[2] = {-1, -1}, rc = HL_EIO;
    struct spawn_args a = {0};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0)
        goto fail;
    if ((rc = spawn_env(&a, lim, type, name)) || (rc = spawn_argv(&a, lim, path)))
        goto fail;
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    /* Its own process group (a terminal's ^C is the server's to handle), no signal blocked
     * (the server blocks SIGINT and SIGTERM for sigwait) and none ignored (SIGPIPE). */
    sigset_t none, dflt;
    sigemptyset(&none);
    sigemptyset(&dflt);
    sigaddset(&dflt, SIGPIPE);
    sigaddset(&dflt, SIGINT);
    sigaddset(&dflt, SIGTERM);
    sigaddset(&dflt, SIGXCPU);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &dflt);
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                      POSIX_SPAWN_SETPGROUP);
    int e = posix_spawn(&r->pid, "/proc/self/exe", &fa, &at, (char *const *)a.argv, a.envp);
    if (e != 0) {
        errno = e;
        rc = e == ENOMEM ? HL_ENOMEM : HL_EIO;
        goto fail;
    }
    rc = HL_OK;
    r->out = out[0];
    r->err = err[0];
    out[0] = err[0] = -1;
    r->pidfd = (int)syscall(SYS_pidfd_open, r->pid, 0);
fail:
    for (int i = 0; i < 2; i++) {
        if (out[i] >= 0)
            close(out[i]);
        if (err[i] >= 0)
            close(err[i]);
    }
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    spawn_args_free(&a);
    return rc;
}

static void kill_helper(struct run *r, enum kill_why why)
{
    if (r->killed == NOT_KILLED) {
        r->killed = why;
        kill(r->pid, SIGKILL);
    }
}

/* Reads what is there on one of the pipes. */
static void drain(struct run *r, int *fd)
{
    char b[65536];
    ssize_t n = read(*fd, b, sizeof(b));
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) {
        close(*fd);
        *fd = -1;
        return;
    }
    if (fd == &r->err) {
        size_t keep = (size_t)n < DIAG_MAX - r->diag_len ? (size_t)n : DIAG_MAX - r->diag_len;
        memcpy(r->diag + r->diag_len, b, keep);
        r->diag_len += keep;
    } else if (hl_buf_append(&r->answer, b, (size_t)n) != HL_OK) {
        kill_helper(r, KILLED_SIZE);
    }
}

/* Waits for the helper to end, reading its pipes, until the deadline or a stop (w). */
static void watch(struct run *r, const struct hl_helper_watch *w, int64_t deadline)
{
    int stop_fd = w ? w->stop_fd : -1;
    int ticking = w && w->tick && w->tick_ms > 0;
    int64_t next_tick = ticking ? mono_ms() + w->tick_ms : INT64_MAX;
    while (r->killed == NOT_KILLED &&
           (r->out >= 0 || r->err >= 0 || (r->pidfd >= 0 && !r->exited))) {
        struct pollfd p[4];
        int fds[4] = {r->out, r->err, r->exited ? -1 : r->pidfd, stop_fd};
        for (int i = 0; i < 4; i++)
            p[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
        int64_t now = mono_ms();
        int64_t left = (deadline < next_tick ? deadline : next_tick) - now;
        if (poll(p, 4, left <= 0 ? 0 : left < 60000 ? (int)left : 60000) < 0 && errno != EINTR)
            break;
        if (p[3].revents) {
            kill_helper(r, KILLED_STOP);
            break;
        }
        if (p[0].revents)
            drain(r, &r->out);
        if (p[1].revents)
            drain(r, &r->err);
        if (p[2].revents)
            r->exited = 1;
        now = mono_ms();
        if (now >= deadline) {
            kill_helper(r, KILLED_TIME);
        } else if (now >= next_tick) {
            next_tick = now + w->tick_ms;
            if (w->tick(w->arg))
                kill_helper(r, KILLED_STOP);
        }
    }
}

/* The helper's stderr as one printable line, for the log. */
static void diag_line(struct run *r)
{
    for (size_t i = 0; i < r->diag_len; i++) {
        unsigned char c = (unsigned char)r->diag[i];
        if (c < 0x20 || c >= 0x7F)
            r->diag[i] = c == '\n' ? '|' : '?';
    }
}

/* Names a wait status: "killed by signal 9 (KILL)", "exit status 1". */
static void status_text(char *dst, size_t n, int status)
{
    if (WIFSIGNALED(status)) {
        const char *abbrev = sigabbrev_np(WTERMSIG(status));
        snprintf(dst, n, "killed by signal %d (SIG%s)", WTERMSIG(status), abbrev ? abbrev : "?");
    } else {
        snprintf(dst, n, "exit status %d", WEXITSTATUS(status));
    }
}

/* Decides how the reaped helper ended and says why; fills out on success. */
static int judge(struct run *r, const struct hl_helper_limits *lim, int status,
                 const struct rusage *ru, struct hl_extract *out, enum hl_helper_end *end,
                 char *why, size_t whylen)
{
    struct hl_helper_output o;
    size_t max_text = out->max_text ? out->max_text : HL_EXTRACT_MAX_TEXT;
    int decoded = hl_helper_decode(r->answer.p, r->answer.len, max_text, &o) == HL_OK;
    int64_t cpu_ms = (int64_t)(ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) * 1000 +
                     (ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) / 1000;
    int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    char b[64], how[64];
    status_text(how, sizeof(how), status);
    if (r->killed == KILLED_STOP) {
        *end = HL_HELPER_STOPPED;
        snprintf(why, whylen, "the extraction was stopped");
        return HL_EUNAVAIL;
    }
    if (decoded && o.answered && o.rc != HL_ENOMEM) {
        *end = HL_HELPER_ANSWERED;
        if (o.rc != HL_OK) {
            snprintf(why, whylen, "%.*s", (int)o.why_len, o.why);
            return o.rc;
        }
        /* the text moves to the front of the buffer, which out takes over */
        memmove(r->answer.p, o.text, o.text_len);
        r->answer.p[o.text_len] = '\0';
        out->kind = o.kind;
        out->page_count = o.page_count;
        out->word_count = hl_extract_count_words(r->answer.p, o.text_len);
        out->encoding = o.encoding;
        out->len = o.text_len;
        out->text = hl_buf_steal(&r->answer);
        return HL_OK;
    }
    if (r->killed == KILLED_TIME || sig == SIGXCPU ||
        (sig == SIGKILL && cpu_ms >= lim->timeout_ms)) {
        *end = HL_HELPER_TIME;
        duration_text(b, sizeof(b), lim->timeout_ms);
        snprintf(why, whylen,
                 "extracting the file took longer than %s (the server's --ingest-timeout): split "
                 "it into smaller files, or ask for a longer timeout",
                 b);
        return HL_ETOOBIG;
    }
    /* Out of memory: said so (an allocation failed where the extraction checks), or died right
     * after an allocation failed, or at the budget. */
    if (decoded && (o.answered || (o.died && (o.err == ENOMEM || o.rss >= lim->memory)))) {
        *end = HL_HELPER_MEMORY;
        hl_extract_size_text(b, sizeof(b), lim->memory);
        snprintf(why, whylen,
                 "the file needs more than %s to extract (the server's --ingest-memory): split "
                 "it into smaller files, or ask for a higher limit",
                 b);
        return HL_ETOOBIG;
    }
    *end = HL_HELPER_CRASHED;
    if (r->killed == KILLED_SIZE)
        snprintf(why, whylen, "the extraction process sent more than its limit of text");
    else if (!decoded)
        snprintf(why, whylen, "the extraction process sent a damaged answer (%s)", how);
    else
        snprintf(why, whylen, "the extraction process ended without an answer (%s)", how);
    return HL_EIO;
}

int hl_helper_extract(const struct hl_helper_limits *lim, const char *path,
                      const char *declared_type, const char *file_name,
                      const struct hl_helper_watch *w, struct hl_extract *out,
                      enum hl_helper_end *end, char *why, size_t whylen)
{
    size_t max_text = out->max_text ? out->max_text : HL_EXTRACT_MAX_TEXT;
    hl_extract_free(out);
    *end = HL_HELPER_CRASHED;
    struct run r = {.pidfd = -1, .out = -1, .err = -1};
    hl_buf_init(&r.answer, ANSWER_HEAD + WHY_MAX + max_text + DIED_LEN);
    int64_t deadline = mono_ms() + lim->timeout_ms;
    int rc = start(&r, lim, path, declared_type, file_name);
    if (rc) {
        snprintf(why, whylen, "the extraction process could not be started: %s", strerror(errno));
        hl_buf_free(&r.answer);
        return rc;
    }
    watch(&r, w, deadline);
    if (r.out >= 0)
        close(r.out);
    if (r.err >= 0)
        close(r.err);
    int status = 0;
    struct rusage ru = {0};
    while (wait4(r.pid, &status, 0, &ru) < 0 && errno == EINTR)
        ;
    if (r.pidfd >= 0)
        close(r.pidfd);
    rc = judge(&r, lim, status, &ru, out, end, why, whylen);
    diag_line(&r);
    if (*end == HL_HELPER_CRASHED || (*end == HL_HELPER_ANSWERED && status != 0))
        hl_warn("ingest: the extraction of %s: %s%s%.*s", path, why,
                r.diag_len ? "; it said: " : "", (int)r.diag_len, r.diag);
    else if (r.diag_len)
        hl_debug("ingest: the extraction of %s said: %.*s", path, (int)r.diag_len, r.diag);
    hl_buf_free(&r.answer);
    return rc;
}
