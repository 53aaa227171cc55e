#include "events/timestamp.h"

#include "common/clock.h"

json_t *hl_json_time(int64_t ms)
{
    if (ms == 0)
        return json_null();
    char iso[HL_ISO_MAX];
    hl_time_iso(ms, iso);
    return json_string(iso);
}
