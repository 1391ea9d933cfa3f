#include "cosync.h"

#define CODES(X)                                                                                   \
    X(COSYNC_EPERM, "operation not permitted (misuse)")                                            \
    X(COSYNC_ESRCH, "no such task (already joined, or detached and finished)")                     \
    X(COSYNC_EINTR, "the loop was stopped")                                                        \
    X(COSYNC_EAGAIN, "would block")                                                                \
    X(COSYNC_ENOMEM, "out of memory")                                                              \
    X(COSYNC_EBUSY, "in use")                                                                      \
    X(COSYNC_EINVAL, "invalid argument")                                                           \
    X(COSYNC_EDEADLK, "deadlock: nothing can wake the blocked tasks")                              \
    X(COSYNC_EOVERFLOW, "value too large")                                                         \
    X(COSYNC_EALREADY, "already done")                                                             \
    X(COSYNC_ETIMEDOUT, "timed out")                                                               \
    X(COSYNC_ECANCELED, "cancelled")                                                               \
    X(COSYNC_ESHUTDOWN, "shut down")                                                               \
    X(COSYNC_EBROKEN, "broken barrier")

const char *cosync_strerror(int err)
{
    if (err == 0)
        return "success";
#define X(code, text)                                                                              \
    if (err == code)                                                                               \
        return text;
    CODES(X)
#undef X
    return "unknown error";
}

const char *cosync_err_name(int err)
{
    if (err == 0)
        return "0";
#define X(code, text)                                                                              \
    if (err == code)                                                                               \
        return #code;
    CODES(X)
#undef X
    return "COSYNC_E?";
}
