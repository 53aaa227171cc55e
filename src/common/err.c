#include "common/err.h"

const char *hl_strerror(int err)
{
    switch (err) {
    case HL_OK:
        return "success";
#define HL_ERR_CASE(name, value, text)                                                             \
    case HL_##name:                                                                                \
        return text;
        HL_ERRNO_MAP(HL_ERR_CASE)
#undef HL_ERR_CASE
    }
    return "unknown error";
}
