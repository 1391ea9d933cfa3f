/*
 * trace.h - a trace of what tasks did, each event with its time on the
 * loop's virtual clock, for tests that assert exact interleavings:
 *
 *     tr("s%d", id);                 appends "s3@10" (ms after TRACE_T0)
 *     CHECK_TRACE("s0@0 s3@10");     the whole trace so far
 *
 * Header-only, one trace a test program; include after check.h. The
 * times are those of a fresh virtual-clock loop, which starts at
 * COSYNC_SEC(1) (TRACE_T0); an event outside any loop has none.
 */
#ifndef COSYNC_TESTS_TRACE_H
#define COSYNC_TESTS_TRACE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

#include "check.h"

#define TRACE_T0 COSYNC_SEC(1)

static char trace_buf[16384];
static size_t trace_len;
static bool trace_off __attribute__((unused)); /* a scenario too long to trace */

static __attribute__((unused)) void trace_reset(void)
{
    trace_len = 0;
    trace_buf[0] = '\0';
}

static void tr(const char *fmt, ...) __attribute__((format(printf, 1, 2), unused));

/* Append an event: printf's @fmt, then "@<ms>" (with ".<ns>" when not a
 * whole millisecond) in a loop; a space before all but the first. */
static void tr(const char *fmt, ...)
{
    if (trace_off)
        return;
    char tok[128], when[48] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tok, sizeof tok, fmt, ap);
    va_end(ap);
    if (cosync_loop_current()) {
        int64_t d = cosync_now() - TRACE_T0;
        if (d % COSYNC_MS(1))
            snprintf(when, sizeof when, "@%lld.%06lld", (long long)(d / COSYNC_MS(1)),
                     (long long)(d % COSYNC_MS(1)));
        else
            snprintf(when, sizeof when, "@%lld", (long long)(d / COSYNC_MS(1)));
    }
    size_t room = sizeof trace_buf - trace_len;
    int n = snprintf(trace_buf + trace_len, room, "%s%s%s", trace_len ? " " : "", tok, when);
    CHECK(n > 0 && (size_t)n < room);
    trace_len += (size_t)n;
}

#define CHECK_TRACE(want) CHECK_STREQ(trace_buf, want)

#endif /* COSYNC_TESTS_TRACE_H */
