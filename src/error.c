#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strerrordesc_np, strerrorname_np */
#endif
#include <string.h>

#include "cosync.h"

/* Codes that are negated errno values the library passes on from the
 * system (cosync_loop_init's EMFILE, ...) get the system's name and text
 * where the C library can say them without a buffer (glibc 2.32+). */
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
#define SYSTEM_TEXT(err) ((err) < 0 && (err) > -4096 ? strerrordesc_np(-(err)) : NULL)
#define SYSTEM_NAME(err) ((err) < 0 && (err) > -4096 ? strerrorname_np(-(err)) : NULL)
#else
#define SYSTEM_TEXT(err) ((const char *)NULL)
#define SYSTEM_NAME(err) ((const char *)NULL)
#endif

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
    X(COSYNC_EBROKEN, "broken barrier")                                                            \
    X(COSYNC_EOPEN, "circuit open: the call was not made")                                         \
    X(COSYNC_EBADF, "closed handle")                                                               \
    X(COSYNC_EPIPE, "the peer has gone")                                                           \
    X(COSYNC_ECONNRESET, "connection reset by the peer")                                           \
    X(COSYNC_ECONNREFUSED, "connection refused")                                                   \
    X(COSYNC_EADDRINUSE, "address in use")                                                         \
    X(COSYNC_EAFNOSUPPORT, "address family not supported")                                         \
    X(COSYNC_ENOTCONN, "not connected")                                                            \
    X(COSYNC_EMFILE, "out of descriptors")                                                         \
    X(COSYNC_EMSGSIZE, "message too long")                                                         \
    X(COSYNC_ENOENT, "no such file or program")                                                    \
    X(COSYNC_EACCES, "permission denied")                                                          \
    X(COSYNC_ENONAME, "name not resolved")                                                         \
    X(COSYNC_ETLS, "TLS failure")                                                                  \
    X(COSYNC_ECERT, "certificate not accepted")

const char *cosync_strerror(int err)
{
    if (err == 0)
        return "success";
#define X(code, text)                                                                              \
    if (err == code)                                                                               \
        return text;
    CODES(X)
#undef X
    const char *text = SYSTEM_TEXT(err);
    return text ? text : "unknown error";
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
    const char *name = SYSTEM_NAME(err);
    return name ? name : "COSYNC_E?";
}
