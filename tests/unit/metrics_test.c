/* Tests for src/api/metrics.c: the route a path is counted under (a template of the route table,
 * or "unmatched", never text from the path), and the bounded status and method labels of
 * hookline_http_requests_total. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "api/http.h"
#include "api/metrics.h"
#include "common/buf.h"

struct route_case {
    const char *path;
    const char *route;
};

static const struct route_case route_cases[] = {
    {"/healthz", "/healthz"},
    {"/metrics", "/metrics"},
    {"//metrics/", "/metrics"},
    {"/metrics/x", "unmatched"},
    {"/", "unmatched"},
    {"", "unmatched"},
    {"/api/v1/openapi.json", "/api/v1/openapi.json"},
    {"/docs/reference.js", "/docs/reference.js"},
    {"/api/v1/appuid/app-1/webhooks", "/api/v1/appuid/{appUid}/webhooks"},
    {"/api/v1/appuid/app-1/webhooks/webhook-2", "/api/v1/appuid/{appUid}/webhooks/{webhookUid}"},
    {"/api/v1/appuid/app-1/webhooks/webhook-2/stats",
     "/api/v1/appuid/{appUid}/webhooks/{webhookUid}/stats"},
    {"/api/v1/appuid/app-1/webhooks/webhook-2/nope", "unmatched"},
    {"/api/v1/appuid/app-1/webhook", "unmatched"},
    {"/api/v1/appuid/app-1", "unmatched"},
    {"/api/v1/appuid/app-1/deliveries/dlv_3/resend",
     "/api/v1/appuid/{appUid}/deliveries/{deliveryId}/resend"},
    {"/api/v1/appuid/a/contexts/c/files/f/content",
     "/api/v1/appuid/{appUid}/contexts/{contextUid}/files/{fileUid}/content"},
    {"/api/v1/appuid/a/contexts/c/files/f/content/more", "unmatched"},
    {"/api/v2/appuid/a/webhooks", "unmatched"},
    {"/console", "/console"},
    {"/console/session", "/console/session"},
    {"/console/app.css", "/console/{file}"},
    {"/console/js/pages/webhooks.js", "/console/js/pages/{file}"},
    {"/console/js/pages/a/b", "unmatched"},
    {"/api/v1/appuid/a/webhooks/w/stats/series",
     "/api/v1/appuid/{appUid}/webhooks/{webhookUid}/stats/series"},
};

static void test_routes(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(route_cases) / sizeof(route_cases[0]); i++) {
        size_t r = hl_route_of(route_cases[i].path);
        assert_string_equal(hl_route_name(r), route_cases[i].route);
    }
    assert_string_equal(hl_route_name(0), "unmatched");
    assert_string_equal(hl_route_name(hl_route_count()), "unmatched");
    assert_true(hl_route_count() <= HL_ROUTES_MAX);
}

static void test_counts_are_bounded(void **state)
{
    (void)state;
    static struct hl_http_metrics m; /* large: not on the stack */
    memset(&m, 0, sizeof(m));
    size_t w = hl_route_of("/api/v1/appuid/a/webhooks");
    hl_http_metrics_count(&m, w, HL_GET, 200, 100);
    hl_http_metrics_count(&m, w, HL_GET, 200, 100);
    hl_http_metrics_count(&m, w, HL_POST, 422, 100);
    hl_http_metrics_count(&m, w, 0, 299, 100);          /* an unknown method, an unlisted 2xx */
    hl_http_metrics_count(&m, w, HL_PUT, 999, 100);     /* out of range: "other" */
    hl_http_metrics_count(&m, 12345, HL_GET, 404, 100); /* a route past the table: unmatched */
    uint64_t total = 0, cells = 0;
    for (size_t r = 0; r < HL_ROUTES_MAX; r++)
        for (size_t me = 0; me < HL_METHOD_SLOTS; me++)
            for (size_t s = 0; s < HL_STATUS_SLOTS; s++) {
                uint64_t n = atomic_load(&m.requests[r][me][s]);
                total += n;
                cells += n != 0;
                if (n)
                    assert_true(r == w || r == 0);
            }
    assert_int_equal(total, 6);
    assert_int_equal(cells, 5);
    uint64_t timed = 0;
    for (size_t k = 0; k <= HL_HISTO_MAX; k++)
        timed += atomic_load(&m.duration[w].bucket[k]);
    assert_int_equal(timed, 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_counts_are_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
