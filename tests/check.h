/*
 * check.h - assertions and ordering checkpoints for cosync's tests.
 *
 * Header-only. A failed check prints what failed (file:line, the expressions
 * and their values) to stderr and calls abort(): it never longjmps (which
 * would cross task stacks) and never exits (which would run atexit handlers
 * on a task stack). Use the checks anywhere, in a task or outside.
 *
 * Convention: a test program is a set of `TEST(name) { ... }` functions run
 * from main() with `RUN(name);`, and returns 0.
 *
 * The checkpoint counter is plain (not atomic) process-wide state: use the
 * CHECKPOINT macros from one thread at a time (a loop's tasks, or threads
 * ordered by the library's own synchronisation).
 */
#ifndef COSYNC_TESTS_CHECK_H
#define COSYNC_TESTS_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cosync.h"

/** Report a failed check at @file:@line with a printf-style message, then abort(). */
#define CHECK__FAIL(...)                                                                           \
    do {                                                                                           \
        fflush(stdout);                                                                            \
        fprintf(stderr, "%s:%d: check failed: ", __FILE__, __LINE__);                              \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fputc('\n', stderr);                                                                       \
        fflush(stderr);                                                                            \
        abort();                                                                                   \
    } while (0)

/** CHECK(cond): abort unless @cond is true. */
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            CHECK__FAIL("CHECK(%s)", #cond);                                                       \
    } while (0)

/** Compare two integers (as long long) with operator @op; abort with both values if false. */
#define CHECK__CMP(name, a, op, b)                                                                 \
    do {                                                                                           \
        long long check__a = (long long)(a);                                                       \
        long long check__b = (long long)(b);                                                       \
        if (!(check__a op check__b))                                                               \
            CHECK__FAIL("%s(%s, %s): %s = %lld, %s = %lld", name, #a, #b, #a, check__a, #b,        \
                        check__b);                                                                 \
    } while (0)

/** CHECK_EQ(a, b): abort unless the integers a == b. */
#define CHECK_EQ(a, b) CHECK__CMP("CHECK_EQ", a, ==, b)
/** CHECK_NE(a, b): abort unless the integers a != b. */
#define CHECK_NE(a, b) CHECK__CMP("CHECK_NE", a, !=, b)
/** CHECK_LT(a, b): abort unless the integers a < b. */
#define CHECK_LT(a, b) CHECK__CMP("CHECK_LT", a, <, b)
/** CHECK_LE(a, b): abort unless the integers a <= b. */
#define CHECK_LE(a, b) CHECK__CMP("CHECK_LE", a, <=, b)
/** CHECK_GT(a, b): abort unless the integers a > b. */
#define CHECK_GT(a, b) CHECK__CMP("CHECK_GT", a, >, b)
/** CHECK_GE(a, b): abort unless the integers a >= b. */
#define CHECK_GE(a, b) CHECK__CMP("CHECK_GE", a, >=, b)

/** CHECK_STREQ(a, b): abort unless the C strings are equal (NULL equals only NULL). */
#define CHECK_STREQ(a, b)                                                                          \
    do {                                                                                           \
        const char *check__sa = (a);                                                               \
        const char *check__sb = (b);                                                               \
        if (!(check__sa == check__sb ||                                                            \
              (check__sa && check__sb && strcmp(check__sa, check__sb) == 0)))                      \
            CHECK__FAIL("CHECK_STREQ(%s, %s): %s = \"%s\", %s = \"%s\"", #a, #b, #a,               \
                        check__sa ? check__sa : "(null)", #b, check__sb ? check__sb : "(null)");   \
    } while (0)

/** CHECK_NULL(p): abort unless the pointer @p is NULL. */
#define CHECK_NULL(p)                                                                              \
    do {                                                                                           \
        const void *check__p = (const void *)(p);                                                  \
        if (check__p != NULL)                                                                      \
            CHECK__FAIL("CHECK_NULL(%s): %s = %p", #p, #p, check__p);                              \
    } while (0)

/** CHECK_NOTNULL(p): abort if the pointer @p is NULL. */
#define CHECK_NOTNULL(p)                                                                           \
    do {                                                                                           \
        if ((const void *)(p) == NULL)                                                             \
            CHECK__FAIL("CHECK_NOTNULL(%s): it is NULL", #p);                                      \
    } while (0)

/** CHECK_OK(rc): abort unless the cosync return code @rc is 0 (prints its name). */
#define CHECK_OK(rc)                                                                               \
    do {                                                                                           \
        int check__rc = (int)(rc);                                                                 \
        if (check__rc != 0)                                                                        \
            CHECK__FAIL("CHECK_OK(%s): returned %d (%s)", #rc, check__rc,                          \
                        cosync_err_name(check__rc));                                               \
    } while (0)

/** CHECK_ERR(rc, code): abort unless the return code @rc equals @code (prints both names). */
#define CHECK_ERR(rc, code)                                                                        \
    do {                                                                                           \
        int check__rc = (int)(rc);                                                                 \
        int check__code = (int)(code);                                                             \
        if (check__rc != check__code)                                                              \
            CHECK__FAIL("CHECK_ERR(%s, %s): returned %d (%s), expected %d (%s)", #rc, #code,       \
                        check__rc, cosync_err_name(check__rc), check__code,                        \
                        cosync_err_name(check__code));                                             \
    } while (0)

/* ------------------------------------------------------------------------
 * Ordering checkpoints: assert an exact interleaving of tasks.
 *   task A: CHECKPOINT(0); ...suspend...; CHECKPOINT(2);
 *   task B: CHECKPOINT(1); ...
 *   main:   CHECKPOINTS_DONE(3);
 * ---------------------------------------------------------------------- */

/** The number of checkpoints passed so far (per test program; RUN resets it). */
static int check__step __attribute__((unused)) = 0;

/** CHECKPOINT(n): abort unless @n is the next expected step, then count it. */
#define CHECKPOINT(n)                                                                              \
    do {                                                                                           \
        int check__n = (int)(n);                                                                   \
        if (check__step != check__n)                                                               \
            CHECK__FAIL("CHECKPOINT(%s): reached step %d, but the next expected step is %d", #n,   \
                        check__n, check__step);                                                    \
        check__step++;                                                                             \
    } while (0)

/** CHECKPOINTS_DONE(n): abort unless exactly @n checkpoints (0..n-1) have been passed. */
#define CHECKPOINTS_DONE(n)                                                                        \
    do {                                                                                           \
        int check__n = (int)(n);                                                                   \
        if (check__step != check__n)                                                               \
            CHECK__FAIL("CHECKPOINTS_DONE(%s): %d checkpoints passed, expected %d", #n,            \
                        check__step, check__n);                                                    \
    } while (0)

/** CHECKPOINT_RESET(): start counting checkpoints from 0 again. */
#define CHECKPOINT_RESET() (check__step = 0)

/* ------------------------------------------------------------------------
 * Test functions
 * ---------------------------------------------------------------------- */

/** TEST(name) { ... }: define a test function `static void name(void)`. */
#define TEST(name) static void name(void)

/** RUN(name): reset the checkpoints, run the test function @name, print RUN/OK lines. */
#define RUN(name)                                                                                  \
    do {                                                                                           \
        printf("[ RUN ] %s\n", #name);                                                             \
        fflush(stdout);                                                                            \
        CHECKPOINT_RESET();                                                                        \
        name();                                                                                    \
        printf("[  OK ] %s\n", #name);                                                             \
        fflush(stdout);                                                                            \
    } while (0)

/** Whether the library reports suspicious use on stderr (COSYNC_DEBUG),
 * and how many report lines to expect where it would write @n. */
#ifdef COSYNC_DEBUG
#define DEBUG_REPORTS 1
#else
#define DEBUG_REPORTS 0
#endif
#define DEBUG_LINES(n) (DEBUG_REPORTS ? (n) : 0)

#endif /* COSYNC_TESTS_CHECK_H */
