/* Operational events (issue 21): the payloads of endpoint.failing, endpoint.recovered,
 * endpoint.disabled, endpoint.silent and delivery.exhausted, in the envelope every receiver
 * gets. The store decides when one is due and writes it (store.h, struct hl_op_facts); this is
 * what it says. */
#ifndef HL_EVENTS_OPERATIONAL_H
#define HL_EVENTS_OPERATIONAL_H

#include "store/store.h"

/* Builds the event of f into ev: a new evt_ uid, its time f->at, no tenant, the described
 * webhook's uid as the resource, and the envelope whose data holds the webhook's uid and url
 * and the facts of its type. The caller releases ev with hl_event_clear. Returns 0, HL_ENOMEM,
 * HL_EIO (no randomness) or HL_EINVAL (not an operational type). An hl_op_event_fn. */
int hl_op_event_make(const struct hl_op_facts *f, struct hl_event *ev);

#endif
