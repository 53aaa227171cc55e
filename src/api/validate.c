#include "api/validate.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "common/err.h"
#include "common/events.h"
#include "common/utf8.h"
#include "delivery/target.h"

const struct hl_text_rule HL_RULE_FILE_NAME = {"fileName", HL_MAX_FILE_NAME};
const struct hl_text_rule HL_RULE_TENANT = {"externalTenantId", HL_MAX_TENANT};
const struct hl_text_rule HL_RULE_CONTENT_TYPE = {"contentType", HL_MAX_CONTENT_TYPE};

const struct hl_text_rule *hl_text_rule_find(const char *name)
{
    static const struct hl_text_rule *const all[] = {&HL_RULE_FILE_NAME, &HL_RULE_TENANT,
                                                     &HL_RULE_CONTENT_TYPE};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        if (strcmp(all[i]->field, name) == 0)
            return all[i];
    return NULL;
}

int hl_check_text(const struct hl_text_rule *r, const char *p, size_t len, struct hl_resp *rs)
{
    if (len > r->max) {
        hl_resp_error(rs, 422, "field_too_long", "%s must be at most %zu bytes", r->field, r->max);
        return HL_EINVAL;
    }
    const unsigned char *s = (const unsigned char *)p;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t l = hl_utf8_seq(s + i, len - i, &cp);
        if (l == 0) {
            hl_resp_error(rs, 422, "field_not_utf8", "%s must be UTF-8 (byte %zu is not)", r->field,
                          i);
            return HL_EINVAL;
        }
        if (cp == 0) {
            hl_resp_error(rs, 422, "field_has_nul", "%s must not hold NUL (byte %zu)", r->field, i);
            return HL_EINVAL;
        }
        if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) {
            hl_resp_error(rs, 422, "field_has_control",
                          "%s must not hold control characters (U+%04X at byte %zu)", r->field,
                          (unsigned)cp, i);
            return HL_EINVAL;
        }
        i += l;
    }
    return HL_OK;
}

int hl_check_url_address(const char *url, size_t len, const struct hl_netlist *allow,
                         struct hl_resp *rs)
{
    struct hl_url u;
    char host[64];
    if (hl_url_parse(url, len, &u) != HL_OK || u.host.len >= sizeof(host))
        return HL_OK; /* not a literal address (the longest IPv6 one has 45 bytes) */
    memcpy(host, u.host.p, u.host.len);
    host[u.host.len] = '\0';
    struct sockaddr_storage ss = {0};
    if (u.ipv6) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
        a6->sin6_family = AF_INET6;
        if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1)
            return HL_OK;
    } else {
        if (u.host.len && host[u.host.len - 1] == '.')
            host[u.host.len - 1] = '\0'; /* "127.0.0.1." resolves as 127.0.0.1 */
        struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
        a4->sin_family = AF_INET;
        if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
            return HL_OK; /* a name */
    }
    const char *why = hl_addr_blocked((const struct sockaddr *)&ss, allow);
    if (!why)
        return HL_OK;
    hl_resp_error(rs, 422, "url_address_not_public",
                  "url points at %s, a %s address: production mode delivers to public addresses"
                  " only (serve --allow-network CIDR opts a range in)",
                  host, why);
    return HL_EINVAL;
}

void hl_printable(char *out, size_t cap, const char *p, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 1 < cap; i++)
        out[o++] = (p[i] >= 0x20 && p[i] < 0x7f) ? p[i] : '?';
    out[o] = '\0';
}

int hl_reject_unknown(json_t *body, const char *const *known, struct hl_resp *rs)
{
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
    {
        int ok = 0;
        for (const char *const *k = known; *k && !ok; k++)
            ok = strcmp(*k, key) == 0;
        if (!ok) {
            char shown[80];
            /* Echo a bounded, printable version of the name only. */
            hl_printable(shown, sizeof(shown), key, strlen(key));
            hl_resp_error(rs, 422, "unknown_field", "unknown field \"%s\"", shown);
            return HL_EINVAL;
        }
    }
    return HL_OK;
}

int hl_read_entities(json_t *v, unsigned *mask, struct hl_resp *rs)
{
    if (!json_is_array(v)) {
        hl_resp_error(rs, 422, "entities_not_list",
                      "entities must be a list of \"agent\", \"context\", \"contextfile\"");
        return HL_EINVAL;
    }
    if (json_array_size(v) == 0) {
        hl_resp_error(rs, 422, "entities_empty", "entities must name at least one entity");
        return HL_EINVAL;
    }
    unsigned m = 0;
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        unsigned bit =
            json_is_string(e) ? hl_entity_parse(json_string_value(e), json_string_length(e)) : 0;
        if (!bit) {
            hl_resp_error(rs, 422, "entities_unknown",
                          "entities[%zu] is not one of \"agent\", \"context\", \"contextfile\"", i);
            return HL_EINVAL;
        }
        if (m & bit) {
            hl_resp_error(rs, 422, "entities_repeated", "entities[%zu] repeats \"%s\"", i,
                          hl_entity_name(bit));
            return HL_EINVAL;
        }
        m |= bit;
    }
    *mask = m;
    return HL_OK;
}

int hl_read_event_types(json_t *v, unsigned entities, unsigned *mask, struct hl_resp *rs)
{
    if (json_is_null(v)) {
        *mask = 0;
        return HL_OK;
    }
    if (!json_is_array(v)) {
        hl_resp_error(rs, 422, "event_types_not_list",
                      "eventTypes must be a list of event names, or null for every event");
        return HL_EINVAL;
    }
    if (json_array_size(v) == 0) {
        hl_resp_error(rs, 422, "event_types_empty",
                      "eventTypes must name at least one event, or be null for every event");
        return HL_EINVAL;
    }
    unsigned m = 0;
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        int t =
            json_is_string(e) ? hl_event_parse(json_string_value(e), json_string_length(e)) : -1;
        if (t < 0 || t >= HL_EV_RESOURCE_COUNT) {
            hl_resp_error(rs, 422, "event_types_unknown",
                          "eventTypes[%zu] is not one of the nine events (agent.created, ...)", i);
            return HL_EINVAL;
        }
        if (!(hl_event_entity(t) & entities)) {
            hl_resp_error(rs, 422, "event_types_outside_entities",
                          "eventTypes[%zu] (%s) is not an event of the webhook's entities", i,
                          hl_event_name(t));
            return HL_EINVAL;
        }
        if (m & (1u << t)) {
            hl_resp_error(rs, 422, "event_types_repeated", "eventTypes[%zu] repeats %s", i,
                          hl_event_name(t));
            return HL_EINVAL;
        }
        m |= 1u << t;
    }
    *mask = m;
    return HL_OK;
}

int hl_read_string(json_t *body, const char *field, int required, size_t max, const char **out,
                   struct hl_resp *rs)
{
    json_t *v = json_object_get(body, field);
    *out = NULL;
    if (!v) {
        if (required) {
            hl_resp_error(rs, 422, "field_required", "%s is required", field);
            return HL_EINVAL;
        }
        return HL_OK;
    }
    if (!json_is_string(v)) {
        hl_resp_error(rs, 422, "field_not_string", "%s must be a string", field);
        return HL_EINVAL;
    }
    size_t len = json_string_length(v);
    if (required && len == 0) {
        hl_resp_error(rs, 422, "field_empty", "%s must not be empty", field);
        return HL_EINVAL;
    }
    if (len > max) {
        hl_resp_error(rs, 422, "field_too_long", "%s must be at most %zu bytes", field, max);
        return HL_EINVAL;
    }
    if (strlen(json_string_value(v)) != len) {
        hl_resp_error(rs, 422, "field_invalid", "%s must not hold NUL characters", field);
        return HL_EINVAL;
    }
    *out = json_string_value(v);
    return HL_OK;
}

void hl_method_not_allowed(struct hl_resp *rs, const char *allow)
{
    rs->allow = allow;
    hl_resp_error(rs, 405, "method_not_allowed", "this path takes %s", allow);
}
