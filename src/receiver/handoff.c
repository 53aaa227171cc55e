/* `hookline listen`'s worker thread: inbox → command, URL or stdout, with bounded retries.
 *
 * One item at a time, oldest due first, so events are handed on in the order they arrived
 * unless one of them is waiting for a retry. A command gets the body on stdin (written without
 * blocking, so a command that never reads cannot wedge the worker) and runs in its own process
 * group, so a timeout kills everything it started. */
#include "receiver/handoff.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "common/thread.h"
#include "receiver/inbox.h"
#include "receiver/spawn.h"
#include "receiver/waker.h"

/* How long a command may go on after a stop was asked for before it is killed. */
#define STOP_GRACE_MS 5000
/* Longest sleep of an idle worker between two looks at the inbox (a wake ends it early). Short,
 * because another process may queue work in the file: `hookline listen replay`. */
#define IDLE_WAIT_MS 1000
/* Pause after a failure of the state file itself, so that it is not hammered. */
#define STORE_RETRY_MS 1000
/* Headers of one forwarded request are at most this many lines. */
#define FORWARD_HEADERS_MAX 128

struct hl_handoff {
    struct hl_handoff_config cfg;
    const char *state_path;
    struct hl_inbox *inbox;
    CURL *curl;
    pthread_t thread;
    int started;
    struct hl_waker waker;
};

/* Outcome of one attempt beyond 0/HL_E codes: stopped before it could finish. */
#define INTERRUPTED 1

/* ---- print ---- */

/* Copies a field for a one-line summary: control characters and tabs become '?'. */
static void printable(const char *s, char *out, size_t cap)
{
    size_t i = 0;
    for (; s[i] && i + 1 < cap; i++)
        out[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    out[i] = '\0';
}

/* The fifth column of a summary line: data.processingStatus of a context file's event
 * (pending, processing, completed, failed), "-" for other events. */
static void processing_status(const struct hl_inbox_item *it, char *out, size_t cap)
{
    json_t *root = NULL;
    if (strncmp(it->event, "contextfile.", 12) == 0)
        root = json_loadb(it->body, it->body_len, 0, NULL);
    json_t *v = json_object_get(json_object_get(root, "data"), "processingStatus");
    printable(json_is_string(v) && json_string_length(v) ? json_string_value(v) : "-", out, cap);
    json_decref(root);
}

static int run_print(struct hl_handoff *h, struct hl_inbox_item *it, char *err, size_t errlen)
{
    FILE *f = h->cfg.out;
    if (h->cfg.json) {
        /* The body is valid JSON (it was parsed before it was recorded), where raw CR and LF
         * can only be whitespace between tokens: blanking them keeps it JSON on one line. */
        for (size_t i = 0; i < it->body_len; i++)
            if (it->body[i] == '\n' || it->body[i] == '\r')
                it->body[i] = ' ';
        fwrite(it->body, 1, it->body_len, f);
        fputc('\n', f);
    } else {
        char iso[HL_ISO_MAX], ev[HOOKLINE_FIELD_MAX], tenant[HOOKLINE_FIELD_MAX],
            id[HOOKLINE_FIELD_MAX], status[HOOKLINE_FIELD_MAX];
        hl_time_iso(it->received_at, iso);
        printable(it->event, ev, sizeof(ev));
        printable(it->tenant[0] ? it->tenant : "-", tenant, sizeof(tenant));
        printable(it->event_id, id, sizeof(id));
        processing_status(it, status, sizeof(status));
        fprintf(f, "%s\t%s\t%s\t%s\t%s\n", iso, ev, tenant, id, status);
    }
    if (fflush(f) != 0 || ferror(f)) {
        clearerr(f);
        snprintf(err, errlen, "cannot write to the output: %s", strerror(errno));
        return HL_EIO;
    }
    return HL_OK;
}

/* ---- exec ---- */

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

enum ended { RUNNING, EXITED, TIMED_OUT, STOPPED, LOST };

/* Writes the body to the command's stdin without blocking and waits for it to exit, killing
 * its process group on timeout or after the grace period of a stop. Closes fd; reaps pid. */
static enum ended feed_and_wait(struct hl_handoff *h, pid_t pid, int fd, const char *body,
                                size_t len, int *status)
{
    enum ended how = RUNNING;
    int64_t deadline = hl_mono_ms() + h->cfg.timeout_ms, stop_deadline = 0, nap = 1;
    size_t off = 0;
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR) {
            how = LOST;
            break;
        }
        int64_t now = hl_mono_ms();
        if (how == RUNNING && now >= deadline) {
            how = TIMED_OUT;
            kill(-pid, SIGKILL);
        } else if (how == RUNNING && hl_waker_stopping(&h->waker)) {
            if (!stop_deadline) {
                stop_deadline = now + STOP_GRACE_MS;
            } else if (now >= stop_deadline) {
                how = STOPPED;
                kill(-pid, SIGKILL);
            }
        }
        if (fd >= 0 && off < len) {
            ssize_t w = write(fd, body + off, len - off);
            if (w > 0) {
                off += (size_t)w;
            } else if (w < 0 && errno == EAGAIN) {
                struct pollfd p = {.fd = fd, .events = POLLOUT};
                poll(&p, 1, 10);
            } else if (!(w < 0 && errno == EINTR)) {
                /* EPIPE: the command does not read (all of) its input. That is its choice. */
                off = len;
            }
            continue;
        }
        if (fd >= 0) {
            close(fd);
            fd = -1;
        }
        sleep_ms(nap);
        nap = nap < 20 ? nap * 2 : 20;
    }
    if (fd >= 0)
        close(fd);
    return how == RUNNING ? EXITED : how;
}

static int run_exec(struct hl_handoff *h, struct hl_inbox_item *it, int attempt, char *err,
                    size_t errlen)
{
    char event[32 + HOOKLINE_FIELD_MAX], event_id[32 + HOOKLINE_FIELD_MAX],
        tenant[32 + HOOKLINE_FIELD_MAX], attempt_var[48];
    snprintf(event, sizeof(event), "HOOKLINE_EVENT=%s", it->event);
    snprintf(event_id, sizeof(event_id), "HOOKLINE_EVENT_ID=%s", it->event_id);
    snprintf(tenant, sizeof(tenant), "HOOKLINE_TENANT=%s", it->tenant);
    snprintf(attempt_var, sizeof(attempt_var), "HOOKLINE_ATTEMPT=%d", attempt);
    const char *vars[] = {event, event_id, tenant, attempt_var};
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0) {
        snprintf(err, errlen, "cannot make a pipe: %s", strerror(errno));
        return HL_EIO;
    }
    pid_t pid;
    int rc = hl_spawn_sh(h->cfg.exec_cmd, pfd[0], vars, sizeof(vars) / sizeof(vars[0]), &pid, err,
                         errlen);
    close(pfd[0]);
    if (rc != HL_OK) {
        close(pfd[1]);
        return rc;
    }
    fcntl(pfd[1], F_SETFL, fcntl(pfd[1], F_GETFL) | O_NONBLOCK);
    int status = 0;
    enum ended how = feed_and_wait(h, pid, pfd[1], it->body, it->body_len, &status);
    rc = HL_EIO;
    if (how == TIMED_OUT)
        snprintf(err, errlen, "timed out after %" PRId64 " ms (killed)", h->cfg.timeout_ms);
    else if (how == STOPPED)
        rc = INTERRUPTED;
    else if (how == LOST)
        snprintf(err, errlen, "lost track of the command (waitpid failed)");
    else if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        rc = HL_OK;
    else if (WIFEXITED(status))
        snprintf(err, errlen, "exited with status %d%s", WEXITSTATUS(status),
                 WEXITSTATUS(status) == 127 ? " (command not found?)" : "");
    else if (WIFSIGNALED(status))
        snprintf(err, errlen, "killed by signal %d", WTERMSIG(status));
    else
        snprintf(err, errlen, "ended abnormally");
    return rc;
}

/* ---- forward ---- */

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return size * n;
}

static int abort_on_stop(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                         curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    struct hl_handoff *h = ud;
    return hl_waker_stopping(&h->waker) ? 1 : 0;
}

static int run_forward(struct hl_handoff *h, struct hl_inbox_item *it, char *err, size_t errlen)
{
    int rc = HL_ENOMEM;
    struct curl_slist *hdrs = NULL, *more;
    int has_type = 0, lines = 0;
    /* headers holds "Name: value\r\n" lines; they are cut in place (the item is ours). */
    for (char *line = it->headers; line && *line && lines < FORWARD_HEADERS_MAX; lines++) {
        char *end = strstr(line, "\r\n");
        if (end)
            *end = '\0';
        if (strncasecmp(line, "Content-Type:", 13) == 0)
            has_type = 1;
        if (!(more = curl_slist_append(hdrs, line)))
            goto out;
        hdrs = more;
        line = end ? end + 2 : NULL;
    }
    /* No "Expect: 100-continue" round trip; and JSON when the sender did not say. */
    if (!(more = curl_slist_append(hdrs, "Expect:")))
        goto out;
    hdrs = more;
    if (!has_type) {
        if (!(more = curl_slist_append(hdrs, "Content-Type: application/json")))
            goto out;
        hdrs = more;
    }
    CURL *c = h->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, h->cfg.forward_url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, it->body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)it->body_len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)h->cfg.timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, abort_on_stop);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, h);
    CURLcode res = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    if (res == CURLE_ABORTED_BY_CALLBACK) {
        rc = INTERRUPTED;
    } else if (res != CURLE_OK) {
        snprintf(err, errlen, "%s", curl_easy_strerror(res));
        rc = HL_EIO;
    } else if (code < 200 || code > 299) {
        snprintf(err, errlen, "answered HTTP %ld", code);
        rc = HL_EIO;
    } else {
        rc = HL_OK;
    }
    /* The list is freed below; the handle must not point at it. */
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
out:
    if (rc == HL_ENOMEM)
        snprintf(err, errlen, "out of memory");
    curl_slist_free_all(hdrs);
    return rc;
}

/* ---- the worker ---- */

/* Delay before the attempt after `failed` failures: backoff, doubled each time, capped. */
static int64_t backoff(const struct hl_handoff_config *cfg, int failed)
{
    int64_t d = cfg->backoff_ms;
    for (int i = 1; i < failed && d < cfg->backoff_max_ms; i++)
        d *= 2;
    return d < cfg->backoff_max_ms ? d : cfg->backoff_max_ms;
}

/* Hands one item on and records the outcome. Returns 0, or a store error. */
static int handle(struct hl_handoff *h, struct hl_inbox_item *it)
{
    char err[512] = "";
    int attempt = it->attempts + 1;
    int rc;
    if (h->cfg.exec_cmd)
        rc = run_exec(h, it, attempt, err, sizeof(err));
    else if (h->cfg.forward_url)
        rc = run_forward(h, it, err, sizeof(err));
    else
        rc = run_print(h, it, err, sizeof(err));

    if (rc == HL_OK) {
        if (h->cfg.exec_cmd || h->cfg.forward_url)
            hl_info("%s %s: handed on (attempt %d)", it->event_id, it->event, attempt);
        return hl_inbox_done(h->inbox, it->id);
    }
    if (rc == INTERRUPTED) {
        hl_warn("%s %s: interrupted by the stop; it is handed on again at the next start",
                it->event_id, it->event);
        return hl_inbox_retry(h->inbox, it->id, hl_now_ms(), "interrupted by a stop");
    }
    if (attempt >= h->cfg.max_attempts) {
        hl_error("%s %s: attempt %d of %d failed: %s; giving up (kept in the state file; "
                 "`hookline listen replay --state %s %s` hands it on again)",
                 it->event_id, it->event, attempt, h->cfg.max_attempts, err, h->state_path,
                 it->event_id);
        return hl_inbox_fail(h->inbox, it->id, err);
    }
    int64_t delay = backoff(&h->cfg, attempt);
    hl_warn("%s %s: attempt %d of %d failed: %s; retrying in %" PRId64 " ms", it->event_id,
            it->event, attempt, h->cfg.max_attempts, err, delay);
    return hl_inbox_retry(h->inbox, it->id, hl_now_ms() + delay, err);
}

/* Sleeps until woken, stopped, or ms milliseconds passed (at most IDLE_WAIT_MS). */
static void wait_for_work(struct hl_handoff *h, uint64_t seen, int64_t ms)
{
    hl_waker_wait(&h->waker, seen, ms < 1 ? 1 : ms > IDLE_WAIT_MS ? IDLE_WAIT_MS : ms);
}

static void *worker(void *arg)
{
    struct hl_handoff *h = arg;
    while (!hl_waker_stopping(&h->waker)) {
        uint64_t seen = hl_waker_seen(&h->waker);
        struct hl_inbox_item it;
        int64_t next_at = 0;
        int rc = hl_inbox_next(h->inbox, hl_now_ms(), &it, &next_at);
        if (rc == HL_OK) {
            rc = handle(h, &it);
            hl_inbox_item_clear(&it);
            if (rc == HL_OK)
                continue;
        }
        if (rc == HL_ENOTFOUND) {
            wait_for_work(h, seen, next_at ? next_at - hl_now_ms() : IDLE_WAIT_MS);
        } else {
            hl_error("listen: state file: %s; trying again in %d ms", hl_strerror(rc),
                     STORE_RETRY_MS);
            wait_for_work(h, seen, STORE_RETRY_MS);
        }
    }
    return NULL;
}

int hl_handoff_start(const char *state_path, const struct hl_handoff_config *cfg,
                     struct hl_handoff **out)
{
    int rc = HL_ENOMEM;
    char err[512];
    *out = NULL;
    struct hl_handoff *h = calloc(1, sizeof(*h));
    if (!h)
        return HL_ENOMEM;
    h->cfg = *cfg;
    h->state_path = state_path;
    hl_waker_init(&h->waker);
    if ((rc = hl_inbox_open(state_path, &h->inbox, err, sizeof(err))) != HL_OK) {
        hl_error("listen: %s", err);
        goto out;
    }
    int64_t pending = 0;
    if ((rc = hl_inbox_resume(h->inbox, hl_now_ms(), &pending)) != HL_OK) {
        hl_error("listen: %s: cannot read the pending hand-offs", state_path);
        goto out;
    }
    if (pending)
        hl_info("listen: %" PRId64 " event(s) from before the restart still to hand on", pending);
    if (cfg->forward_url && !(h->curl = curl_easy_init())) {
        rc = HL_ENOMEM;
        goto out;
    }
    if (hl_thread_start(&h->thread, worker, h, "hl-handoff") != 0) {
        rc = HL_ENOMEM;
        goto out;
    }
    h->started = 1;
    *out = h;
    h = NULL;
    rc = HL_OK;
out:
    hl_handoff_stop(h);
    return rc;
}

void hl_handoff_wake(struct hl_handoff *h)
{
    hl_waker_wake(&h->waker);
}

void hl_handoff_stop(struct hl_handoff *h)
{
    if (!h)
        return;
    hl_waker_stop(&h->waker);
    if (h->started)
        pthread_join(h->thread, NULL);
    if (h->curl)
        curl_easy_cleanup(h->curl);
    hl_inbox_close(h->inbox);
    hl_waker_destroy(&h->waker);
    free(h);
}
