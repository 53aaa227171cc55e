/* PostgreSQL backend: the subject of issue 8. Until it lands, a postgres:// database is refused
 * with a clear message rather than half-served. */
#include <stdio.h>

#include "common/err.h"
#include "store/store.h"

int hl_postgres_open(const char *conninfo, struct hl_store **out, char *err, size_t errlen)
{
    (void)conninfo;
    *out = NULL;
    snprintf(err, errlen, "the PostgreSQL backend is not available in this build yet (issue 8)");
    return HL_EUNAVAIL;
}
