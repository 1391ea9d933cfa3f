/*
 * Telling the sanitizers and valgrind about stack switches.
 *
 * AddressSanitizer must hear of every switch (start before, finish after)
 * or it reports false stack-buffer overflows and loses fake stacks;
 * ThreadSanitizer wants one fiber per task. Without those sanitizers every
 * helper here compiles to nothing.
 */
#ifndef COSYNC_SANITIZE_H
#define COSYNC_SANITIZE_H

#include <stddef.h>

#ifndef __has_feature
#define __has_feature(x) 0
#endif

#if defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
#define COSYNC__ASAN 1
void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom, size_t size);
void __sanitizer_finish_switch_fiber(void *fake_stack_save, const void **bottom_old,
                                     size_t *size_old);
void __asan_unpoison_memory_region(void const volatile *addr, size_t size);
#else
#define COSYNC__ASAN 0
#endif

#if defined(__SANITIZE_THREAD__) || __has_feature(thread_sanitizer)
#define COSYNC__TSAN 1
void *__tsan_get_current_fiber(void);
void *__tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void *fiber);
void __tsan_switch_to_fiber(void *fiber, unsigned flags);
#else
#define COSYNC__TSAN 0
#endif

#define COSYNC__SANITIZE_FIBERS (COSYNC__ASAN || COSYNC__TSAN)

#if defined(COSYNC_HAVE_VALGRIND)
#include <valgrind/memcheck.h>
#include <valgrind/valgrind.h>
#define COSYNC__VALGRIND_STACK_REGISTER(lo, hi) VALGRIND_STACK_REGISTER(lo, hi)
#define COSYNC__VALGRIND_STACK_DEREGISTER(id) VALGRIND_STACK_DEREGISTER(id)
/* memcheck marks a stack's bytes below its lowest stack pointer so far
 * unaddressable as the stack pointer comes back up: a dense task's bytes
 * copied back in (dense.c) may land there */
#define COSYNC__VALGRIND_MAKE_ADDRESSABLE(p, n) VALGRIND_MAKE_MEM_UNDEFINED(p, n)
#else
#define COSYNC__VALGRIND_STACK_REGISTER(lo, hi) ((void)(lo), (void)(hi), 0u)
#define COSYNC__VALGRIND_STACK_DEREGISTER(id) ((void)(id))
#define COSYNC__VALGRIND_MAKE_ADDRESSABLE(p, n) ((void)(p), (void)(n))
#endif

#endif /* COSYNC_SANITIZE_H */
