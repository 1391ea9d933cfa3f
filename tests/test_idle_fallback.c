/*
 * test_idle_fallback.c - the loop's idle step when epoll_pwait2 is
 * refused. A sandbox's seccomp filter may refuse a system call it does
 * not know with EPERM rather than ENOSYS; the loop must then fall back to
 * epoll_wait for good, not fail every idle step at once and spin until
 * its timer is due.
 *
 * This program defines epoll_pwait2 itself, so the library's calls reach
 * this one, which refuses them and counts them. It runs on the real clock
 * (the virtual one never waits), but asserts no timing: only how many
 * times the refused call was tried, and that every sleep ended as a sleep.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <sys/epoll.h>
#include <time.h>

#include "harness.h"

static long pwait2_calls;

int epoll_pwait2(int epfd, struct epoll_event *events, int maxevents,
                 const struct timespec *timeout, const sigset_t *sigmask)
{
    (void)epfd, (void)events, (void)maxevents, (void)timeout, (void)sigmask;
    pwait2_calls++;
    errno = EPERM;
    return -1;
}

static int sleep_three_times(void *arg, void **result)
{
    (void)arg, (void)result;
    for (int i = 0; i < 3; i++) {
        int64_t due = cosync_deadline_after(COSYNC_MS(1));
        CHECK_OK(cosync_sleep_until(due));
        CHECK_GE(cosync_now(), due);
    }
    return 0;
}

TEST(refused_epoll_pwait2_falls_back_for_good)
{
    CHECK_OK(cosync_run(sleep_three_times, NULL));
    CHECK_EQ(pwait2_calls, 1);
    /* a second loop in the same process does not try it again */
    CHECK_OK(cosync_run(sleep_three_times, NULL));
    CHECK_EQ(pwait2_calls, 1);
}

int main(void)
{
    RUN(refused_epoll_pwait2_falls_back_for_good);
    return 0;
}
