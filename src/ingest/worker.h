/* The ingest workers: threads that process uploaded context files.
 *
 * Each file goes pending -> processing -> completed | failed, every step committed with its
 * contextfile.updated event. A file is claimed under a lease, renewed while its extraction runs;
 * one being processed when the server dies is claimed again after the lease (or, on SQLite, at
 * the next start) and still ends in one final state. The text is extracted out of process, in a
 * helper under limits (ingest/helper.h), so no file can take the server down, and no file is
 * tried for ever: a file whose processing was cut short HL_INGEST_MAX_ATTEMPTS times (its helper
 * died, or the server did) ends failed. Apps take turns (hl_store_ingest_claim). The workers run
 * off the API threads and share nothing with the dispatcher but the store.
 */
#ifndef HL_INGEST_WORKER_H
#define HL_INGEST_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include "ingest/helper.h"
#include "store/store.h"

/* Claims of one file before it ends failed when each was cut short. */
#define HL_INGEST_MAX_ATTEMPTS 2

/* Filled from serve's options; their defaults are in the option table (common/config.c). */
struct hl_ingest_config {
    size_t chunk_size;              /* characters per passage (--chunk-size) */
    size_t overlap;                 /* characters shared by neighbours (--chunk-overlap) */
    int64_t lease_ms;               /* how long a claim holds a file (--ingest-lease) */
    size_t workers;                 /* files processed at once (--ingest-workers) */
    struct hl_helper_limits limits; /* of each extraction (--ingest-memory, --ingest-timeout) */
};

struct hl_ingest;

/* Starts the worker threads on st (borrowed). */
int hl_ingest_start(struct hl_store *st, const struct hl_ingest_config *c, struct hl_ingest **out);
/* Wakes the workers: a file was uploaded. NULL is fine. */
void hl_ingest_wake(struct hl_ingest *w);
/* Stops the workers (an extraction under way is stopped, its file given back to the queue
 * without counting the attempt) and frees them. NULL is fine. */
void hl_ingest_stop(struct hl_ingest *w);

#endif
