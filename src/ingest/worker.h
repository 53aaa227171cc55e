/* The ingest worker: one thread that processes uploaded context files.
 *
 * Each file goes pending -> processing -> completed | failed, every step committed with its
 * contextfile.updated event. A file is claimed under a lease; one being processed when the
 * server dies is claimed again after the lease (or, on SQLite, at the next start) and still ends
 * in one final state. It runs off the API threads and shares nothing with the dispatcher but the
 * store.
 */
#ifndef HL_INGEST_WORKER_H
#define HL_INGEST_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* Filled from serve's options; their defaults are in the option table (common/config.c). */
struct hl_ingest_config {
    size_t chunk_size; /* characters per passage (--chunk-size) */
    size_t overlap;    /* characters shared by neighbours (--chunk-overlap) */
    int64_t lease_ms;  /* how long a claim holds a file (--ingest-lease) */
    size_t max_input;  /* largest file extracted (the upload limit) */
};

struct hl_ingest;

/* Starts the worker thread on st (borrowed). */
int hl_ingest_start(struct hl_store *st, const struct hl_ingest_config *c, struct hl_ingest **out);
/* Wakes the worker: a file was uploaded. NULL is fine. */
void hl_ingest_wake(struct hl_ingest *w);
/* Stops after the file in hand and frees the worker. NULL is fine. */
void hl_ingest_stop(struct hl_ingest *w);

#endif
