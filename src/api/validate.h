/* Field checks shared by the handlers. Each sets a 422 answer naming the field and returns
 * HL_EINVAL when the field is wrong, 0 when it is fine. */
#ifndef HL_VALIDATE_H
#define HL_VALIDATE_H

#include <jansson.h>

#include "api/http.h"
#include "common/net.h"

/* The free-text fields that reach the store by more than one path (JSON body, query string,
 * request header, multipart form) follow one rule each, kept here. */
#define HL_MAX_FILE_NAME 1024
#define HL_MAX_TENANT 256
#define HL_MAX_CONTENT_TYPE 256

struct hl_text_rule {
    const char *field; /* as the API names it: "fileName" */
    size_t max;        /* bytes */
};

extern const struct hl_text_rule HL_RULE_FILE_NAME;    /* fileName */
extern const struct hl_text_rule HL_RULE_TENANT;       /* externalTenantId */
extern const struct hl_text_rule HL_RULE_CONTENT_TYPE; /* contentType */

/* The rule of the field called name, or NULL when it has none. */
const struct hl_text_rule *hl_text_rule_find(const char *name);
/* Checks p[0..len) against rule r: at most r->max bytes (checked first: a longer value is not
 * read, so p may hold fewer bytes then), valid UTF-8, no NUL, no control character (C0, DEL,
 * C1). Emptiness is the caller's rule. On failure sets a 422 that names the field and the rule
 * (field_too_long, field_not_utf8, field_has_nul, field_has_control) and returns HL_EINVAL. */
int hl_check_text(const struct hl_text_rule *r, const char *p, size_t len, struct hl_resp *rs);
/* Writes a printable, bounded copy of p[0..len) into out (cap > 0 bytes, NUL-terminated): bytes
 * outside printable ASCII become '?'. For echoing client-chosen names in error messages. */
void hl_printable(char *out, size_t cap, const char *p, size_t len);

/* Refuses a webhook URL (url[0..len), already accepted by hl_url_check) whose host is a literal
 * IPv4 or IPv6 address that the connect-time guard would refuse (hl_addr_blocked: loopback,
 * private, link-local, metadata, ...) unless allow (may be NULL) covers it: 422
 * url_address_not_public, naming the class. For production mode; host names pass, since only
 * their DNS answer at connect time says where they lead. */
int hl_check_url_address(const char *url, size_t len, const struct hl_netlist *allow,
                         struct hl_resp *rs);
/* Refuses any key of body not in known (NULL-terminated): 422 unknown_field. */
int hl_reject_unknown(json_t *body, const char *const *known, struct hl_resp *rs);
/* Reads `entities`: a non-empty list of distinct "agent"/"context"/"contextfile". */
int hl_read_entities(json_t *v, unsigned *mask, struct hl_resp *rs);
/* Reads `eventTypes`: null (every event), or a non-empty list of distinct event names, each
 * belonging to one of entities. */
int hl_read_event_types(json_t *v, unsigned entities, unsigned *mask, struct hl_resp *rs);
/* Reads a string field. Missing: required gives 422 field_required, otherwise *out = NULL.
 * Wrong type, over max bytes, empty when required, or holding NUL gives a 422 naming field. */
int hl_read_string(json_t *body, const char *field, int required, size_t max, const char **out,
                   struct hl_resp *rs);
/* Sets a 405 answer with an Allow header (allow: "GET, POST"; a static string). */
void hl_method_not_allowed(struct hl_resp *rs, const char *allow);

#endif
