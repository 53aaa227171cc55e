/* Times as events and the API show them: ISO 8601 UTC with milliseconds
 * ("2025-01-20T14:30:00.000Z"), the format of every createdAt, updatedAt and processing time in a
 * resource's stored JSON, so in event data too. */
#ifndef HL_TIMESTAMP_H
#define HL_TIMESTAMP_H

#include <jansson.h>
#include <stdint.h>

/* A new JSON string for ms (Unix milliseconds), or JSON null for 0 (never happened). Returns a
 * new reference, NULL only when out of memory. */
json_t *hl_json_time(int64_t ms);

#endif
