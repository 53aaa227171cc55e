/* Field checks shared by the handlers. Each sets a 422 answer naming the field and returns
 * HL_EINVAL when the field is wrong, 0 when it is fine. */
#ifndef HL_VALIDATE_H
#define HL_VALIDATE_H

#include <jansson.h>

#include "api/http.h"

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
