/* Error codes shared by every module: 0 is success, negative values are errors. */
#ifndef HL_ERR_H
#define HL_ERR_H

#define HL_ERRNO_MAP(X)                                                                            \
    X(ENOMEM, -1, "out of memory")                                                                 \
    X(EINVAL, -2, "invalid argument")                                                              \
    X(ENOTFOUND, -3, "not found")                                                                  \
    X(ECONFLICT, -4, "conflict")                                                                   \
    X(EIO, -5, "input/output error")                                                               \
    X(ESTORE, -6, "storage error")                                                                 \
    X(ETOOBIG, -7, "too large")                                                                    \
    X(EUNAVAIL, -8, "temporarily unavailable")                                                     \
    X(EBADSIG, -9, "signature mismatch")                                                           \
    X(ESTALE, -10, "timestamp outside tolerance")                                                  \
    X(EPARSE, -11, "parse error")                                                                  \
    X(EREFUSED, -12, "refused")

enum hl_err {
    HL_OK = 0,
#define HL_ERR_ENUM(name, value, text) HL_##name = (value),
    HL_ERRNO_MAP(HL_ERR_ENUM)
#undef HL_ERR_ENUM
};

/* Returns a static, human-readable text for an error code from the table above. */
const char *hl_strerror(int err);

#endif
