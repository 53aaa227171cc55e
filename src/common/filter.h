/* A webhook's filter on the content of events: which events it gets deliveries of.
 *
 * A filter is a JSON object mapping dotted paths in the envelope ("data.externalTenantId") to
 * non-empty lists of accepted values (strings, numbers, booleans, null). An envelope matches
 * when every path exists in it and its value equals one of that path's values: AND across
 * paths, OR within a list. Values compare as JSON values, not as text: 1, 1.0 and 1e0 are equal
 * (numbers compare as the doubles JSON.parse makes of them),
 * "\u00e9" equals "é", null equals only null, and a path that leads nowhere (a missing key, a
 * step into a string) never matches, not even null.
 *
 * Paths: segments separated by '.', none empty; a segment steps into an object by key, or into
 * an array by a decimal index without leading zeros. The first segment is a key of the envelope
 * (eventId, event, timestamp, appUid, version, data). Keys holding '.' cannot be named. */
#ifndef HL_FILTER_H
#define HL_FILTER_H

#include <stddef.h>

#include <jansson.h>

#include "common/fault.h"

/* Most paths in one filter. */
#define HL_FILTER_PATHS_MAX 20
/* Most accepted values in one filter, all paths together (the "100 values per webhook"
 * read the strict way: a total, not per path). */
#define HL_FILTER_VALUES_MAX 100
/* Longest path, in bytes. */
#define HL_FILTER_PATH_MAX 256
/* Longest accepted string value, in bytes. */
#define HL_FILTER_STRING_MAX 1024

/* Checks a filter as a client sends it (not NULL: null means "no filter" and is the caller's).
 * Returns 0, or HL_EINVAL with *f saying what is wrong (its key: the path at fault). */
int hl_filter_check(const json_t *filter, struct hl_fault *f);

/* Whether envelope (a parsed envelope) matches filter (one hl_filter_check accepted). */
int hl_filter_match(const json_t *filter, const json_t *envelope);

#endif
