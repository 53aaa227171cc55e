/* hl-curlmax: how fast libcurl alone POSTs to the sink, the way the dispatcher uses it.
 *
 *   hl-curlmax -u URL -f REQUEST_FILE [-c CONNS] [-d SECONDS] [-m reset|reuse]
 *
 * One thread, one curl multi handle, CONNS transfers in flight on keep-alive connections, each
 * POSTing the body of REQUEST_FILE (a raw HTTP request as hl-sink's /last returns it: head, blank
 * line, body) with the same nine headers hookline sends. Mode "reset" sets a transfer up the way
 * the dispatcher did before it kept its handles configured (curl_easy_reset, every option, a new
 * header list); "reuse" keeps the handle's options and changes only the body and the headers.
 * Prints one line: "requests N seconds S rate R/s errors E". It is the baseline of the dispatcher
 * figures: no database, no signing, nothing but libcurl and the loopback.
 */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "args.h"

#define CONNS_MAX 1024

struct xfer {
    CURL *easy;
    struct curl_slist *headers;
};

static const char *url;
static char *body;
static size_t body_len;
static char *head_lines[32];
static size_t nhead;
static int reuse;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t drop(char *p, size_t size, size_t n, void *u)
{
    (void)p;
    (void)u;
    return size * n;
}

/* The request file's header lines worth sending again (not Host, Content-Length, Accept). */
static int load_request(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    static char raw[64 * 1024];
    size_t n = fread(raw, 1, sizeof(raw) - 1, f);
    fclose(f);
    raw[n] = '\0';
    char *sep = strstr(raw, "\r\n\r\n");
    if (!sep)
        return -1;
    *sep = '\0';
    body = sep + 4;
    body_len = n - (size_t)(body - raw);
    char *save = NULL;
    char *line = strtok_r(raw, "\r\n", &save); /* the request line */
    while ((line = strtok_r(NULL, "\r\n", &save)) && nhead < 32) {
        if (strncasecmp(line, "host:", 5) == 0 || strncasecmp(line, "content-length:", 15) == 0 ||
            strncasecmp(line, "accept:", 7) == 0)
            continue;
        head_lines[nhead++] = line;
    }
    return 0;
}

static struct curl_slist *make_headers(void)
{
    struct curl_slist *h = NULL;
    for (size_t i = 0; i < nhead; i++)
        h = curl_slist_append(h, head_lines[i]);
    return curl_slist_append(h, "Expect:");
}

static void setup(struct xfer *x, int first)
{
    CURL *e = x->easy;
    if (!reuse || first) {
        if (!first)
            curl_easy_reset(e);
        curl_easy_setopt(e, CURLOPT_URL, url);
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(e, CURLOPT_PROXY, "");
        curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, drop);
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, drop);
        curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    }
    curl_slist_free_all(x->headers);
    x->headers = make_headers(); /* the signature changes with every attempt */
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
}

int main(int argc, char **argv)
{
    int conns = 64;
    double secs = 5;
    const char *req = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "u:f:c:d:m:")) != -1) {
        switch (opt) {
        case 'u':
            url = optarg;
            break;
        case 'f':
            req = optarg;
            break;
        case 'c': {
            long long v;
            if (parse_ll(optarg, 1, CONNS_MAX, &v))
                goto usage;
            conns = (int)v;
            break;
        }
        case 'd':
            if (parse_dbl(optarg, 0.001, 3600, &secs))
                goto usage;
            break;
        case 'm':
            reuse = strcmp(optarg, "reuse") == 0;
            break;
        default:
            goto usage;
        }
    }
    if (!url || !req || conns < 1 || conns > CONNS_MAX || secs <= 0)
        goto usage;
    if (load_request(req) != 0) {
        fprintf(stderr, "hl-curlmax: cannot read a request from %s\n", req);
        return 1;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM *m = curl_multi_init();
    curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, (long)conns);
    curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)conns);
    static struct xfer xs[CONNS_MAX];
    for (int i = 0; i < conns; i++) {
        xs[i].easy = curl_easy_init();
        setup(&xs[i], 1);
        curl_multi_add_handle(m, xs[i].easy);
    }
    uint64_t done = 0, errors = 0;
    double t0 = now_s(), end = t0 + secs;
    while (now_s() < end) {
        int running;
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            struct xfer *x;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
            long code = 0;
            curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
            if (msg->data.result != CURLE_OK || code != 200)
                errors++;
            done++;
            curl_multi_remove_handle(m, x->easy);
            setup(x, 0);
            curl_multi_add_handle(m, x->easy);
        }
        curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    double took = now_s() - t0;
    printf("requests %llu seconds %.2f rate %.0f/s errors %llu\n", (unsigned long long)done, took,
           (double)done / took, (unsigned long long)errors);
    for (int i = 0; i < conns; i++) {
        curl_multi_remove_handle(m, xs[i].easy);
        curl_easy_cleanup(xs[i].easy);
        curl_slist_free_all(xs[i].headers);
    }
    curl_multi_cleanup(m);
    curl_global_cleanup();
    return 0;
usage:
    fprintf(stderr, "usage: hl-curlmax -u URL -f REQUEST_FILE [-c CONNS] [-d SECONDS] "
                    "[-m reset|reuse]\n");
    return 2;
}
