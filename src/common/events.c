#include "common/events.h"

#include <string.h>

static const char *const EVENT_NAMES[HL_EV_COUNT] = {
    "agent.created",       "agent.updated",   "agent.deleted",       "context.created",
    "context.updated",     "context.deleted", "contextfile.created", "contextfile.updated",
    "contextfile.deleted", "webhook.test",
};

static const char *const OP_EVENT_NAMES[HL_OPEV_END - HL_OPEV_FIRST] = {
    "endpoint.failing", "endpoint.recovered", "endpoint.disabled",
    "endpoint.silent",  "delivery.exhausted",
};

const char *hl_entity_name(unsigned entity)
{
    switch (entity) {
    case HL_ENT_AGENT:
        return "agent";
    case HL_ENT_CONTEXT:
        return "context";
    case HL_ENT_CONTEXTFILE:
        return "contextfile";
    }
    return NULL;
}

unsigned hl_entity_parse(const char *name, size_t len)
{
    for (unsigned e = 1; e <= HL_ENT_CONTEXTFILE; e <<= 1) {
        const char *n = hl_entity_name(e);
        if (strlen(n) == len && memcmp(n, name, len) == 0)
            return e;
    }
    return 0;
}

const char *hl_event_name(int type)
{
    if (type >= HL_OPEV_FIRST && type < HL_OPEV_END)
        return OP_EVENT_NAMES[type - HL_OPEV_FIRST];
    return type >= 0 && type < HL_EV_COUNT ? EVENT_NAMES[type] : NULL;
}

int hl_op_event_parse(const char *name, size_t len)
{
    for (int t = HL_OPEV_FIRST; t < HL_OPEV_END; t++) {
        const char *n = OP_EVENT_NAMES[t - HL_OPEV_FIRST];
        if (strlen(n) == len && memcmp(n, name, len) == 0)
            return t;
    }
    return -1;
}

int hl_event_parse(const char *name, size_t len)
{
    for (int t = 0; t < HL_EV_COUNT; t++)
        if (strlen(EVENT_NAMES[t]) == len && memcmp(EVENT_NAMES[t], name, len) == 0)
            return t;
    return -1;
}

unsigned hl_event_entity(int type)
{
    if (type < 0 || type >= HL_EV_RESOURCE_COUNT)
        return 0;
    return 1u << (type / 3);
}

int hl_event_for(unsigned entity, enum hl_op op)
{
    int base;
    if (entity == HL_ENT_AGENT)
        base = 0;
    else if (entity == HL_ENT_CONTEXT)
        base = 3;
    else if (entity == HL_ENT_CONTEXTFILE)
        base = 6;
    else
        return -1;
    switch (op) {
    case HL_OP_CREATE:
        return base;
    case HL_OP_UPDATE:
        return base + 1;
    case HL_OP_DELETE:
        return base + 2;
    default:
        return -1;
    }
}
