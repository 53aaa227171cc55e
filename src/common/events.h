/* The resource kinds and event names of the guide, and their bit masks. */
#ifndef HL_EVENTS_H
#define HL_EVENTS_H

#include <stddef.h>

/* Resource kinds, as bits of a webhook's `entities`. */
enum hl_entity {
    HL_ENT_AGENT = 1,
    HL_ENT_CONTEXT = 2,
    HL_ENT_CONTEXTFILE = 4,
};
#define HL_ENT_ALL 7u

/* Operations on a resource. */
enum hl_op { HL_OP_NONE = 0, HL_OP_CREATE, HL_OP_UPDATE, HL_OP_DELETE };

/* Event types; bit (1 << type) in a webhook's `eventTypes` mask. */
enum hl_event_type {
    HL_EV_AGENT_CREATED = 0,
    HL_EV_AGENT_UPDATED,
    HL_EV_AGENT_DELETED,
    HL_EV_CONTEXT_CREATED,
    HL_EV_CONTEXT_UPDATED,
    HL_EV_CONTEXT_DELETED,
    HL_EV_CONTEXTFILE_CREATED,
    HL_EV_CONTEXTFILE_UPDATED,
    HL_EV_CONTEXTFILE_DELETED,
    HL_EV_WEBHOOK_TEST,
    HL_EV_COUNT
};
/* The nine resource events (everything but webhook.test). */
#define HL_EV_RESOURCE_COUNT 9

/* Operational events (issue 21): what hookline tells an app's operational webhooks about its
 * ordinary ones. Numbered apart from the events above, whose bits ordinary webhooks' eventTypes
 * hold; an operational webhook's eventTypes holds (1 << type) of these. They belong to no entity,
 * so no ordinary webhook's fan-out ever matches them. */
enum hl_op_event_type {
    HL_OPEV_FIRST = 16,
    HL_OPEV_ENDPOINT_FAILING = HL_OPEV_FIRST,
    HL_OPEV_ENDPOINT_RECOVERED,
    HL_OPEV_ENDPOINT_DISABLED,
    HL_OPEV_ENDPOINT_SILENT,
    HL_OPEV_DELIVERY_EXHAUSTED,
    HL_OPEV_END
};
/* Every operational event's bit. */
#define HL_OPEV_ALL (((1u << HL_OPEV_END) - 1) & ~((1u << HL_OPEV_FIRST) - 1))
/* The operational event type for a name of len bytes ("endpoint.failing"), or -1. */
int hl_op_event_parse(const char *name, size_t len);

/* "agent", "context" or "contextfile" for one entity bit; NULL otherwise. */
const char *hl_entity_name(unsigned entity);
/* The entity bit for a name of len bytes, or 0 when unknown. */
unsigned hl_entity_parse(const char *name, size_t len);
/* "agent.created" etc. for a type (operational ones too); NULL when out of range. */
const char *hl_event_name(int type);
/* The event type for a name of len bytes, or -1 when unknown. */
int hl_event_parse(const char *name, size_t len);
/* The entity an event type belongs to (0 for webhook.test). */
unsigned hl_event_entity(int type);
/* The event type for an entity and operation (create/update/delete). */
int hl_event_for(unsigned entity, enum hl_op op);

#endif
