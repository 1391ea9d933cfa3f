/*
 * Signals as something a task waits for: the signals of a set are blocked
 * in the loop's thread and read from a signalfd, through a handle of
 * io/fd.c, so that a signal wakes the loop like any other readiness and
 * no handler runs between two instructions of a task.
 */
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "core.h"
#include "fault.h"

static void mask_to_set(uint64_t mask, sigset_t *set)
{
    sigemptyset(set);
    for (int s = 1; s <= COSYNC_SIGNAL_MAX; s++)
        if (mask & (UINT64_C(1) << (s - 1)))
            sigaddset(set, s);
}

/* The mask of the @n signals, or 0 if one of them cannot be caught. */
static uint64_t mask_of(const int *signals, size_t n)
{
    uint64_t mask = 0;
    for (size_t i = 0; i < n; i++) {
        int s = signals[i];
        if (s < 1 || s > COSYNC_SIGNAL_MAX || s >= NSIG || s == SIGKILL || s == SIGSTOP)
            return 0;
        mask |= UINT64_C(1) << (s - 1);
    }
    return mask;
}

int cosync_signal_init(cosync_signal *sig, const int *signals, size_t n)
{
    if (!sig || !signals || n == 0)
        return COSYNC_EINVAL;
    uint64_t mask = mask_of(signals, n);
    if (!mask)
        return COSYNC_EINVAL;
    sigset_t set, before;
    mask_to_set(mask, &set);
    pthread_sigmask(SIG_BLOCK, &set, &before);
    int fd =
        cosync__fault_hit() ? (errno = EMFILE, -1) : signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    int rc = fd < 0 ? -errno : cosync_io_init(&sig->io, fd);
    if (rc) {
        if (fd >= 0)
            close(fd);
        pthread_sigmask(SIG_SETMASK, &before, NULL);
        return rc;
    }
    sig->set = mask;
    sig->blocked_before = 0;
    for (int s = 1; s <= COSYNC_SIGNAL_MAX; s++)
        if ((mask & (UINT64_C(1) << (s - 1))) && sigismember(&before, s) == 1)
            sig->blocked_before |= UINT64_C(1) << (s - 1);
    return 0;
}

static ssize_t read_signal(cosync_io *io, void *ctx)
{
    struct signalfd_siginfo info;
    ssize_t n = read(io->fd, &info, sizeof info);
    if (n < 0)
        return -errno;
    *(int *)ctx = (int)info.ssi_signo;
    return 0;
}

int cosync_signal_wait(cosync_signal *sig, int64_t deadline)
{
    if (!sig)
        return COSYNC_EINVAL;
    int signo = 0;
    ssize_t rc = cosync__io_retry(&sig->io, COSYNC_IO_READ, read_signal, &signo, deadline);
    return rc < 0 ? (int)rc : signo;
}

int cosync_signal_destroy(cosync_signal *sig)
{
    if (!sig)
        return COSYNC_EINVAL;
    if (cosync_io_fd(&sig->io) < 0)
        return 0; /* destroyed already, or never made */
    int rc = cosync_io_close(&sig->io);
    if (rc)
        return rc;
    sigset_t unblock;
    mask_to_set(sig->set & ~sig->blocked_before, &unblock);
    pthread_sigmask(SIG_UNBLOCK, &unblock, NULL);
    return 0;
}
