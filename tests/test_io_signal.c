/*
 * test_io_signal.c - signals as something a task waits for
 * (cosync_signal_init, cosync_signal_wait, cosync_signal_destroy:
 * loop.add_signal_handler and remove_signal_handler).
 *
 * Every loop runs on the virtual clock. A signal is raised synchronously
 * in the loop's thread while the set blocks it (raise, pthread_kill of the
 * thread itself, kill of the process), so it is pending in the signalfd
 * before the call returns: no test sleeps. The one case with another
 * thread has it send the signal to the loop's thread; its outcome does
 * not depend on when it comes.
 *
 * Counting handlers are installed for the signals the tests use, so that
 * one delivered to a handler (by a destroy, or a bug) is seen rather than
 * killing the program; every test checks that the thread's mask is as it
 * found it, and the program leaves the mask and the handlers as they were.
 *
 * ctest-labels: threads (a plain thread sends a signal: run under TSan too)
 */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>

#include "core.h"
#include "fault.h"
#include "harness.h"

/* ------------------------------------------------------------------------
 * Helpers
 * ---------------------------------------------------------------------- */

/* The signals a test may raise, each with a counting handler. */
static const int handled[] = {SIGUSR1, SIGUSR2, SIGTERM, SIGINT};
static struct sigaction saved_actions[4];
static volatile sig_atomic_t delivered[COSYNC_SIGNAL_MAX + 1];

static void count_delivery(int signo)
{
    delivered[signo]++;
}

static void install_handlers(void)
{
    for (size_t i = 0; i < sizeof handled / sizeof handled[0]; i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = count_delivery;
        sigemptyset(&sa.sa_mask);
        CHECK_EQ(sigaction(handled[i], &sa, &saved_actions[i]), 0);
    }
    /* SIGRTMIN's default action would end the program too */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = count_delivery;
    sigemptyset(&sa.sa_mask);
    CHECK_EQ(sigaction(SIGRTMIN, &sa, NULL), 0);
}

static void restore_handlers(void)
{
    for (size_t i = 0; i < sizeof handled / sizeof handled[0]; i++)
        CHECK_EQ(sigaction(handled[i], &saved_actions[i], NULL), 0);
    CHECK(signal(SIGRTMIN, SIG_DFL) != SIG_ERR);
}

/* Whether the calling thread blocks @s now. */
static bool is_blocked(int s)
{
    sigset_t cur;
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, NULL, &cur), 0);
    int m = sigismember(&cur, s);
    CHECK_GE(m, 0);
    return m == 1;
}

/* The calling thread's mask as a bit set (bit s - 1 for signal s). */
static uint64_t mask_now(void)
{
    sigset_t cur;
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, NULL, &cur), 0);
    uint64_t m = 0;
    for (int s = 1; s <= COSYNC_SIGNAL_MAX; s++)
        if (sigismember(&cur, s) == 1)
            m |= UINT64_C(1) << (s - 1);
    return m;
}

static void set_blocked(int s, bool block)
{
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, s);
    CHECK_EQ(pthread_sigmask(block ? SIG_BLOCK : SIG_UNBLOCK, &one, NULL), 0);
}

/* Whether @s is pending for the calling thread (or the process). */
static bool is_pending(int s)
{
    sigset_t p;
    CHECK_EQ(sigpending(&p), 0);
    return sigismember(&p, s) == 1;
}

/* Take a pending (blocked) @s without a handler: sigtimedwait with a zero
 * timeout never waits. */
static void drain(int s)
{
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, s);
    CHECK_EQ(sigtimedwait(&one, NULL, &(struct timespec){0, 0}), s);
}

static void raise_ok(int s)
{
    CHECK_EQ(raise(s), 0);
}

static size_t io_waiters(void)
{
    return cosync_loop_current()->io_waiters;
}

/* Every test starts and ends with this: the mask it found, no signal of
 * ours pending, none delivered to a handler (unless it says so). */
typedef struct scene {
    uint64_t mask;
    int fds;
} scene;

static scene scene_begin(void)
{
    for (size_t i = 0; i < sizeof handled / sizeof handled[0]; i++) {
        CHECK(!is_pending(handled[i]));
        CHECK(!is_blocked(handled[i]));
    }
    memset((void *)delivered, 0, sizeof delivered);
    return (scene){mask_now(), count_fds()};
}

static void scene_end(scene s)
{
    CHECK_EQ(mask_now(), s.mask);
    CHECK_EQ(count_fds(), s.fds); /* every signalfd closed */
    for (size_t i = 0; i < sizeof handled / sizeof handled[0]; i++) {
        CHECK(!is_pending(handled[i]));
        CHECK_EQ(delivered[handled[i]], 0);
    }
}

/* A task's status counts a positive value as 0: a task that waits ends
 * with an error as its status, or with the signal's number as its result. */
static int signo_outcome(int rc, void **result)
{
    if (rc < 0)
        return rc;
    *result = (void *)(intptr_t)rc;
    return 0;
}

/* Join @t: its error status, or the signal number it got. */
static int join_signo(cosync_task t)
{
    int st = 12345;
    void *res = NULL;
    CHECK_OK(cosync_task_join(t, &st, &res, COSYNC_FOREVER));
    return st ? st : (int)(intptr_t)res;
}

static int wait_forever(void *arg, void **result)
{
    return signo_outcome(cosync_signal_wait(arg, COSYNC_FOREVER), result);
}

/* ------------------------------------------------------------------------
 * A wait, and what wakes it
 * ---------------------------------------------------------------------- */

typedef struct pair {
    cosync_signal sig;
    cosync_task waiter;
    int64_t start;
} pair;

static int checkpoint_wait(void *arg, void **result)
{
    pair *p = arg;
    CHECKPOINT(0);
    int rc = cosync_signal_wait(&p->sig, COSYNC_FOREVER);
    CHECKPOINT(3);
    CHECK_EQ(cosync_now(), p->start); /* no time passed: the signal woke it */
    return signo_outcome(rc, result);
}

static int checkpoint_raise(void *arg, void **result)
{
    (void)result;
    pair *p = arg;
    CHECKPOINT(1);
    CHECK(!cosync_task_done(p->waiter));
    CHECK_EQ(io_waiters(), 1); /* it waits in the signalfd */
    raise_ok(SIGUSR1);
    CHECKPOINT(2);
    return 0;
}

static int one_waiter_main(void *arg, void **result)
{
    (void)result;
    pair *p = arg;
    cosync_task raiser;
    p->start = cosync_now();
    CHECK_OK(cosync_task_spawn(&p->waiter, checkpoint_wait, p, NULL));
    CHECK_OK(cosync_task_spawn(&raiser, checkpoint_raise, p, NULL));
    CHECK_EQ(join_signo(p->waiter), SIGUSR1);
    join_ok(raiser);
    CHECK_EQ(io_waiters(), 0);
    return 0;
}

TEST(a_waiting_task_gets_the_signal_another_task_raises)
{
    scene sc = scene_begin();
    pair p;
    CHECK_OK(cosync_signal_init(&p.sig, (int[]){SIGUSR1}, 1));
    CHECK(is_blocked(SIGUSR1));
    run_main_ok(one_waiter_main, &p);
    CHECKPOINTS_DONE(4);
    CHECK_EQ(SIGUSR1, 10);
    CHECK_OK(cosync_signal_destroy(&p.sig));
    scene_end(sc);
}

/* ------------------------------------------------------------------------ */

static int pending_main(void *arg, void **result)
{
    (void)result;
    cosync_signal *sig = arg;
    raise_ok(SIGUSR1);
    uint64_t before = switches();
    int64_t t0 = cosync_now();
    CHECK_EQ(cosync_signal_wait(sig, COSYNC_FOREVER), SIGUSR1);
    CHECK_EQ(switches(), before); /* taken at once: no suspension */
    /* whatever the deadline: 0, or one that has passed */
    raise_ok(SIGUSR1);
    CHECK_EQ(cosync_signal_wait(sig, 0), SIGUSR1);
    raise_ok(SIGUSR1);
    CHECK_EQ(cosync_signal_wait(sig, t0 - 1), SIGUSR1);
    CHECK_EQ(switches(), before);
    /* three times before a wait, by three means of sending it to the
     * thread: one pending instance, taken once */
    raise_ok(SIGUSR1);
    CHECK_EQ(pthread_kill(pthread_self(), SIGUSR1), 0);
    raise_ok(SIGUSR1);
    CHECK_EQ(cosync_signal_wait(sig, COSYNC_FOREVER), SIGUSR1);
    CHECK_ERR(cosync_signal_wait(sig, 0), COSYNC_EAGAIN);
    CHECK_EQ(switches(), before);
    CHECK_EQ(cosync_now(), t0);
    CHECK_EQ(armed_timers(), 0);
    CHECK_EQ(io_waiters(), 0);
    CHECK(!is_pending(SIGUSR1));
    return 0;
}

TEST(a_signal_raised_before_the_wait_is_taken_at_once_and_counts_once)
{
    scene sc = scene_begin();
    cosync_signal sig;
    CHECK_OK(cosync_signal_init(&sig, (int[]){SIGUSR1}, 1));
    run_main_ok(pending_main, &sig);
    CHECK_OK(cosync_signal_destroy(&sig));
    scene_end(sc);
}

/* ------------------------------------------------------------------------ */

static int process_main(void *arg, void **result)
{
    (void)result;
    cosync_signal *sig = arg;
    CHECK_EQ(kill(getpid(), SIGTERM), 0); /* to the process, not the thread */
    CHECK_EQ(kill(getpid(), SIGTERM), 0);
    CHECK_EQ(cosync_signal_wait(sig, COSYNC_FOREVER), SIGTERM);
    CHECK_ERR(cosync_signal_wait(sig, 0), COSYNC_EAGAIN);
    return 0;
}

TEST(a_signal_sent_to_the_process_is_taken_too)
{
    scene sc = scene_begin();
    cosync_signal sig;
    CHECK_OK(cosync_signal_init(&sig, (int[]){SIGTERM}, 1));
    run_main_ok(process_main, &sig);
    CHECK_OK(cosync_signal_destroy(&sig));
    scene_end(sc);
}

/* ------------------------------------------------------------------------ */

static int two_signals_main(void *arg, void **result)
{
    (void)result;
    cosync_signal *sig = arg;
    raise_ok(SIGUSR2);
    raise_ok(SIGUSR1);
    int a = cosync_signal_wait(sig, COSYNC_FOREVER);
    int b = cosync_signal_wait(sig, COSYNC_FOREVER);
    /* both, once each (the kernel gives the lower number first; the
     * contract names no order) */
    CHECK((a == SIGUSR1 && b == SIGUSR2) || (a == SIGUSR2 && b == SIGUSR1));
    CHECK_ERR(cosync_signal_wait(sig, 0), COSYNC_EAGAIN);
    return 0;
}

TEST(two_signals_of_one_set_raised_give_two_waits_both_numbers)
{
    scene sc = scene_begin();
    cosync_signal sig;
    CHECK_OK(cosync_signal_init(&sig, (int[]){SIGUSR1, SIGUSR2}, 2));
    CHECK(is_blocked(SIGUSR1));
    CHECK(is_blocked(SIGUSR2));
    run_main_ok(two_signals_main, &sig);
    CHECK_OK(cosync_signal_destroy(&sig));
    scene_end(sc);
}

/* ------------------------------------------------------------------------ */

/* The kernel queues each instance of a real-time signal: the layer takes
 * them one a wait (the "counts once" of the contract is for standard
 * signals, of which the kernel keeps one). */
static int realtime_main(void *arg, void **result)
{
    (void)result;
    cosync_signal *sig = arg;
    raise_ok(SIGRTMIN);
    raise_ok(SIGRTMIN);
    CHECK_EQ(cosync_signal_wait(sig, COSYNC_FOREVER), SIGRTMIN);
    CHECK_EQ(cosync_signal_wait(sig, COSYNC_FOREVER), SIGRTMIN);
    CHECK_ERR(cosync_signal_wait(sig, 0), COSYNC_EAGAIN);
    return 0;
}

TEST(each_instance_of_a_realtime_signal_is_taken)
{
    scene sc = scene_begin();
    cosync_signal sig;
    CHECK_OK(cosync_signal_init(&sig, (int[]){SIGRTMIN}, 1));
    run_main_ok(realtime_main, &sig);
    CHECK_OK(cosync_signal_destroy(&sig));
    CHECK_EQ(delivered[SIGRTMIN], 0);
    scene_end(sc);
}

/* ------------------------------------------------------------------------
 * Deadlines and cancellation
 * ---------------------------------------------------------------------- */

static int deadline_main(void *arg, void **result)
{
    (void)result;
    cosync_signal *sig = arg;
    int64_t t0 = cosync_now();
    uint64_t before = switches();
    CHECK_ERR(cosync_signal_wait(sig, 0), COSYNC_EAGAIN);
    CHECK_EQ(switches(), before); /* the try form never suspends */
    CHECK_EQ(armed_timers(), 0);
    CHECK_EQ(io_waiters(), 0);
    /* a deadline that has passed: a timeout, at once */
    CHECK_ERR(cosync_signal_wait(sig, t0 - 1), COSYNC_ETIMEDOUT);
    CHECK_ERR(cosync_signal_wait(sig, t0), COSYNC_ETIMEDOUT);
    CHECK_EQ(switches(), before);
    /* a finite one: a timeout at exactly that time */
    CHECK_ERR(cosync_signal_wait(sig, t0 + COSYNC_MS(250)), COSYNC_ETIMEDOUT);
    CHECK_EQ(cosync_now(), t0 + COSYNC_MS(250));
    CHECK_EQ(armed_timers(), 0);
    CHECK_EQ(io_waiters(), 0);
    /* and nothing was lost meanwhile: raised now, it is there */
    raise_ok(SIGUSR1);
    CHECK_EQ(cosync_signal_wait(sig, 0), SIGUSR1);
    return 0;
}

TEST(deadline_zero_is_eagain_and_a_finite_one_times_out_at_that_virtual_time)
{
    scene sc = scene_begin();
    cosync_signal sig;
    CHECK_OK(cosync_signal_init(&sig, (int[]){SIGUSR1}, 1));
    run_main_ok(deadline_main, &sig);
    CHECK_OK(cosync_signal_destroy(&sig));
    scene_end(sc);
}

/* ------------------------------------------------------------------------ */

typedef struct timed {
    cosync_signal sig;
    int64_t t0;
    int64_t woke;
} timed;

static int wait_a_second(void *arg, void **result)
{
    timed *t = arg;
    int rc = cosync_signal_wait(&t->sig, t->t0 + COSYNC_SEC(1));
    t->woke = cosync_now();
    return signo_outcome(rc, result);
}

static int sleep_then_raise(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_sleep(COSYNC_MS(100)));
    raise_ok(SIGUSR1);
    return 0;
}

static int timed_main(void *arg, void **result)
{
    (void)result;
    timed *t = arg;
    cosync_task w, r;
    t->t0 = cosync_now();
    CHECK_OK(cosync_task_spawn(&w, wait_a_second, t, NULL));
    CHECK_OK(cosync_task_spawn(&r, sleep_then_raise, NULL, NULL));
    CHECK_EQ(join_signo(w), SIGUSR1);
    join_ok(r);
    CHECK_EQ(t->woke, t->t0 + COSYNC_MS(100)); /* when it came, not at the deadline */
    CHECK_EQ(armed_timers(), 0);               /* the wait's timer went with it */
    return 0;
}

TEST(a_signal_that_comes_before_the_deadline_ends_the_wait_then)
{
    scene sc = scene_begin();
    timed t;
    CHECK_OK(cosync_signal_init(&t.sig, (int[]){SIGUSR1}, 1));
    run_main_ok(timed_main, &t);
    CHECK_OK(cosync_signal_destroy(&t.sig));
    scene_end(sc);
}

/* ------------------------------------------------------------------------ */

static int cancel_main(void *arg, void **result)
{
    (void)result;
    cosync_signal *sig = arg;
    cosync_task w;
    CHECK_OK(cosync_task_spawn(&w, wait_forever, sig, NULL));
    CHECK_OK(cosync_yield()); /* it waits */
    CHECK_EQ(io_waiters(), 1);
    CHECK_OK(cosync_task_cancel(w));
    CHECK_EQ(join_signo(w), COSYNC_ECANCELED);
    CHECK_EQ(io_waiters(), 0);
    /* raised after the cancel: the next wait takes it */
    raise_ok(SIGUSR1);
    CHECK_OK(cosync_task_spawn(&w, wait_forever, sig, NULL));
    CHECK_EQ(join_signo(w), SIGUSR1);
    /* raised while nobody waits on a registered handle, then waited for
     * by a task that blocks first: the edge kept, nothing lost */
    CHECK_OK(cosync_task_spawn(&w, wait_forever, sig, NULL));
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_task_cancel(w));
    raise_ok(SIGUSR1); /* before the cancelled task has run again */
    CHECK_EQ(join_signo(w), COSYNC_ECANCELED);
    CHECK_EQ(cosync_signal_wait(sig, 0), SIGUSR1);
    return 0;
}

TEST(a_cancelled_wait_is_ecanceled_and_loses_no_signal)
{
    scene sc = scene_begin();
    cosync_signal sig;
    CHECK_OK(cosync_signal_init(&sig, (int[]){SIGUSR1}, 1));
    run_main_ok(cancel_main, &sig);
    CHECK_OK(cosync_signal_destroy(&sig));
    scene_end(sc);
}

/* ------------------------------------------------------------------------ */

/* A wait granted (the signal came, the task was made ready) and then
 * cancelled before the task runs takes the signal; the cancel comes at its
 * next suspension. The loop looks at I/O every few busy turns, so a task
 * that keeps yielding sees the waiter made ready behind it, and cancels it
 * before it runs. */
typedef struct granted {
    cosync_signal sig;
    cosync_task waiter;
    int got;
    int next;
} granted;

static int take_then_yield(void *arg, void **result)
{
    (void)result;
    granted *g = arg;
    g->got = cosync_signal_wait(&g->sig, COSYNC_FOREVER);
    g->next = cosync_yield();
    return 0;
}

static int granted_main(void *arg, void **result)
{
    (void)result;
    granted *g = arg;
    CHECK_OK(cosync_task_spawn(&g->waiter, take_then_yield, g, NULL));
    CHECK_OK(cosync_yield());
    CHECK_EQ(io_waiters(), 1);
    raise_ok(SIGUSR1);
    long spins = 0;
    while (ready_tasks() == 0) { /* main alone in the queue: not granted yet */
        CHECK_OK(cosync_yield());
        CHECK_LT(++spins, 100000);
    }
    CHECK_EQ(io_waiters(), 0); /* granted: made ready, not run */
    CHECK_OK(cosync_task_cancel(g->waiter));
    join_expect(g->waiter, COSYNC_ECANCELED); /* its body returned 0, not uncancelled */
    CHECK_EQ(g->got, SIGUSR1);
    CHECK_ERR(g->next, COSYNC_ECANCELED);
    CHECK_ERR(cosync_signal_wait(&g->sig, 0), COSYNC_EAGAIN);
    return 0;
}

TEST(a_granted_wait_cancelled_before_it_runs_still_takes_the_signal)
{
    scene sc = scene_begin();
    granted g;
    CHECK_OK(cosync_signal_init(&g.sig, (int[]){SIGUSR1}, 1));
    run_main_ok(granted_main, &g);
    CHECK_OK(cosync_signal_destroy(&g.sig));
    scene_end(sc);
}

/* ------------------------------------------------------------------------
 * Destroy, and the mask
 * ---------------------------------------------------------------------- */

/* The loop's switch must leave the signal mask alone: it is the thread's,
 * and a change one task makes (cosync_signal_init, cosync_signal_destroy,
 * in a task) is what every task and the loop then run with. The ucontext
 * backend's swapcontext and setcontext restore the mask saved with the
 * context they go to, so there the mask followed each task (a set made in
 * a task blocked its signals only while that task ran; a destroy in a task
 * was undone when the loop's context came back) until the switch carried
 * the thread's mask over (b3e4d7b). */
static int destroy_main(void *arg, void **result)
{
    (void)result;
    cosync_signal *sig = arg;
    cosync_task w;
    CHECK_OK(cosync_task_spawn(&w, wait_forever, sig, NULL));
    CHECK_OK(cosync_yield()); /* it waits */
    CHECK_OK(cosync_signal_destroy(sig));
    CHECK(!is_blocked(SIGUSR1)); /* unblocked at once, in this thread */
    CHECK_EQ(io_waiters(), 0);
    CHECK_EQ(join_signo(w), COSYNC_EBADF);
    /* a destroyed set: every wait and a second destroy */
    CHECK_ERR(cosync_signal_wait(sig, COSYNC_FOREVER), COSYNC_EBADF);
    CHECK_ERR(cosync_signal_wait(sig, 0), COSYNC_EBADF);
    CHECK_OK(cosync_signal_destroy(sig));
    CHECK(!is_blocked(SIGUSR1));
    return 0;
}

TEST(destroy_in_a_task_ends_a_waiting_task_with_ebadf)
{
    scene sc = scene_begin();
    cosync_signal sig;
    CHECK_OK(cosync_signal_init(&sig, (int[]){SIGUSR1}, 1));
    run_main_ok(destroy_main, &sig);
    CHECK(!is_blocked(SIGUSR1));                          /* still, after the run */
    CHECK_ERR(cosync_signal_wait(&sig, 0), COSYNC_EBADF); /* outside a task too */
    CHECK_OK(cosync_signal_destroy(&sig));
    scene_end(sc);
}

/* A set made by one task blocks its signals for the others, and for the
 * thread after the run; one destroyed in a task is unblocked for them all.
 * (The comments say what the ucontext backend did before b3e4d7b.) */
static int raise_usr1(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK(is_blocked(SIGUSR1)); /* was: not blocked in this task */
    raise_ok(SIGUSR1);          /* was: to the handler, not the set */
    return 0;
}

static int init_in_a_task(void *arg, void **result)
{
    (void)result;
    cosync_signal *sig = arg;
    CHECK_OK(cosync_signal_init(sig, (int[]){SIGUSR1}, 1));
    cosync_task r;
    CHECK_OK(cosync_task_spawn(&r, raise_usr1, NULL, NULL));
    join_ok(r);
    CHECK_EQ(cosync_signal_wait(sig, 0), SIGUSR1);
    CHECK_EQ(delivered[SIGUSR1], 0);
    return 0;
}

static int destroy_in_a_task(void *arg, void **result)
{
    (void)result;
    CHECK_OK(cosync_signal_destroy(arg));
    CHECK_OK(cosync_yield()); /* the loop's context runs */
    CHECK(!is_blocked(SIGUSR1));
    return 0;
}

TEST(a_mask_set_in_a_task_is_the_threads_mask)
{
    scene sc = scene_begin();
    cosync_signal sig;
    run_main_ok(init_in_a_task, &sig);
    CHECK(is_blocked(SIGUSR1)); /* was: unblocked by the return to the loop */
    run_main_ok(destroy_in_a_task, &sig);
    CHECK(!is_blocked(SIGUSR1)); /* was: blocked again by the return */
    scene_end(sc);
}

/* Destroyed while the loop does not run, with a task waiting: the task's
 * wait ends with COSYNC_EBADF when the loop runs again. */
static int leave_a_waiting_task(void *arg, void **result)
{
    (void)result;
    cosync_task *w = arg;
    CHECK_OK(cosync_task_spawn(w, wait_forever, cosync_task_get_local(), NULL));
    CHECK_OK(cosync_yield());
    CHECK_EQ(io_waiters(), 1);
    return 0;
}

static int join_the_waiter(void *arg, void **result)
{
    (void)result;
    cosync_task *w = arg;
    CHECK_EQ(io_waiters(), 0);
    CHECK_EQ(join_signo(*w), COSYNC_EBADF);
    return 0;
}

TEST(destroy_between_runs_ends_a_waiting_task_with_ebadf)
{
    scene sc = scene_begin();
    cosync_signal sig;
    CHECK_OK(cosync_signal_init(&sig, (int[]){SIGUSR1}, 1));
    cosync_loop *loop = new_loop();
    cosync_task m, w;
    CHECK_OK(
        cosync_loop_spawn(loop, &m, leave_a_waiting_task, &w, &(cosync_task_opts){.local = &sig}));
    CHECK_OK(cosync_loop_run(loop, m, NULL, NULL));
    CHECK(!cosync_task_done(w));
    CHECK_OK(cosync_signal_destroy(&sig));
    CHECK(!is_blocked(SIGUSR1));
    CHECK_ERR(cosync_signal_wait(&sig, 0), COSYNC_EBADF);
    CHECK_OK(cosync_signal_destroy(&sig)); /* twice: 0 */
    CHECK_OK(cosync_loop_spawn(loop, &m, join_the_waiter, &w, NULL));
    CHECK_OK(cosync_loop_run(loop, m, NULL, NULL));
    end_loop(loop);
    CHECK(!is_blocked(SIGUSR1));
    scene_end(sc);
}

/* ------------------------------------------------------------------------ */

TEST(destroy_unblocks_only_what_init_blocked)
{
    scene sc = scene_begin();
    set_blocked(SIGUSR2, true); /* the program's own, from before */
    cosync_signal sig;
    CHECK_OK(cosync_signal_init(&sig, (int[]){SIGUSR1, SIGUSR2}, 2));
    CHECK(is_blocked(SIGUSR1));
    CHECK(is_blocked(SIGUSR2));
    CHECK(!is_blocked(SIGTERM)); /* nothing beyond the set */
    CHECK_OK(cosync_signal_destroy(&sig));
    CHECK(!is_blocked(SIGUSR1));
    CHECK(is_blocked(SIGUSR2));
    /* twice: 0, and nothing moves, even what the program changed since */
    set_blocked(SIGUSR1, true);
    CHECK_OK(cosync_signal_destroy(&sig));
    CHECK(is_blocked(SIGUSR1));
    CHECK(is_blocked(SIGUSR2));
    set_blocked(SIGUSR1, false);
    set_blocked(SIGUSR2, false);

    cosync_signal zeroed;
    memset(&zeroed, 0, sizeof zeroed);
    CHECK_OK(cosync_signal_destroy(&zeroed));
    CHECK_ERR(cosync_signal_destroy(NULL), COSYNC_EINVAL);
    scene_end(sc);
}

/* A signal still pending at the destroy goes as usual: to its handler if
 * the destroy unblocks it, and stays pending if the program blocked it. */
TEST(a_signal_pending_at_destroy_is_delivered_as_usual)
{
    scene sc = scene_begin();
    set_blocked(SIGUSR2, true);
    cosync_signal sig;
    CHECK_OK(cosync_signal_init(&sig, (int[]){SIGUSR1, SIGUSR2}, 2));
    raise_ok(SIGUSR1);
    raise_ok(SIGUSR2);
    CHECK_EQ(delivered[SIGUSR1], 0);
    CHECK_OK(cosync_signal_destroy(&sig));
    CHECK_EQ(delivered[SIGUSR1], 1); /* on the unblock, before the destroy returned */
    CHECK_EQ(delivered[SIGUSR2], 0);
    CHECK(is_pending(SIGUSR2));
    drain(SIGUSR2);
    set_blocked(SIGUSR2, false);
    delivered[SIGUSR1] = 0;
    scene_end(sc);
}

/* Two sets that share a signal, destroyed in the reverse order of their
 * inits: the second found it blocked (by the first), so it leaves it
 * blocked; the first unblocks it. */
TEST(nested_sets_destroyed_in_reverse_order_give_back_the_mask)
{
    scene sc = scene_begin();
    cosync_signal outer, inner;
    CHECK_OK(cosync_signal_init(&outer, (int[]){SIGUSR1}, 1));
    CHECK_OK(cosync_signal_init(&inner, (int[]){SIGUSR1, SIGUSR2}, 2));
    CHECK_OK(cosync_signal_destroy(&inner));
    CHECK(is_blocked(SIGUSR1));
    CHECK(!is_blocked(SIGUSR2));
    CHECK_OK(cosync_signal_destroy(&outer));
    CHECK(!is_blocked(SIGUSR1));
    scene_end(sc);
}

/* ------------------------------------------------------------------------
 * Misuse
 * ---------------------------------------------------------------------- */

TEST(bad_arguments_to_init_are_einval_and_change_nothing)
{
    scene sc = scene_begin();
    cosync_signal sig, pristine;
    memset(&sig, 0xA5, sizeof sig);
    memcpy(&pristine, &sig, sizeof sig);
    int usr1 = SIGUSR1;
    CHECK_ERR(cosync_signal_init(NULL, &usr1, 1), COSYNC_EINVAL);
    CHECK_ERR(cosync_signal_init(&sig, NULL, 1), COSYNC_EINVAL);
    CHECK_ERR(cosync_signal_init(&sig, &usr1, 0), COSYNC_EINVAL);
    static const int bad[] = {0, -1, COSYNC_SIGNAL_MAX + 1, SIGKILL, SIGSTOP, INT32_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_ERR(cosync_signal_init(&sig, &bad[i], 1), COSYNC_EINVAL);
        /* a bad number after good ones: still nothing blocked */
        CHECK_ERR(cosync_signal_init(&sig, (int[]){SIGUSR1, SIGUSR2, bad[i]}, 3), COSYNC_EINVAL);
        CHECK_EQ(mask_now(), sc.mask);
    }
    CHECK(memcmp(&sig, &pristine, sizeof sig) == 0);
    CHECK_EQ(mask_now(), sc.mask);
    CHECK_EQ(count_fds(), sc.fds);

    /* the bounds that are signals: 1 and COSYNC_SIGNAL_MAX (SIGRTMAX) */
    CHECK_OK(cosync_signal_init(&sig, (int[]){SIGHUP, COSYNC_SIGNAL_MAX}, 2));
    CHECK(is_blocked(SIGHUP));
    CHECK_OK(cosync_signal_destroy(&sig));
    /* a number given twice is the same set */
    CHECK_OK(cosync_signal_init(&sig, (int[]){SIGUSR1, SIGUSR1}, 2));
    CHECK_OK(cosync_signal_destroy(&sig));
    CHECK_ERR(cosync_signal_wait(NULL, 0), COSYNC_EINVAL);
    scene_end(sc);
}

TEST(a_wait_outside_a_task_is_eperm)
{
    scene sc = scene_begin();
    cosync_signal sig;
    CHECK_OK(cosync_signal_init(&sig, (int[]){SIGUSR1}, 1));
    CHECK_ERR(cosync_signal_wait(&sig, COSYNC_FOREVER), COSYNC_EPERM);
    CHECK_ERR(cosync_signal_wait(&sig, 0), COSYNC_EPERM);
    CHECK(is_blocked(SIGUSR1));
    CHECK_OK(cosync_signal_destroy(&sig));
    scene_end(sc);
}

/* ------------------------------------------------------------------------ */

static int busy_main(void *arg, void **result)
{
    (void)result;
    cosync_signal *sig = arg;
    cosync_task first;
    CHECK_OK(cosync_task_spawn(&first, wait_forever, sig, NULL));
    CHECK_OK(cosync_yield());
    CHECK_ERR(cosync_signal_wait(sig, COSYNC_FOREVER), COSYNC_EBUSY);
    CHECK_ERR(cosync_signal_wait(sig, 0), COSYNC_EBUSY);
    CHECK_EQ(io_waiters(), 1);
    raise_ok(SIGUSR1);
    CHECK_EQ(join_signo(first), SIGUSR1); /* the first waiter's, undisturbed */
    return 0;
}

TEST(a_second_waiting_task_is_ebusy)
{
    scene sc = scene_begin();
    cosync_signal sig;
    CHECK_OK(cosync_signal_init(&sig, (int[]){SIGUSR1}, 1));
    run_main_ok(busy_main, &sig);
    CHECK_OK(cosync_signal_destroy(&sig));
    scene_end(sc);
}

/* ------------------------------------------------------------------------ */

static int try_wait(void *arg, void **result)
{
    (void)result;
    return cosync_signal_wait(arg, 0);
}

static int other_loop_task(void *arg, void **result)
{
    (void)result;
    cosync_signal *sig = arg;
    /* whatever the deadline (a finite one: a wait let through would
     * time out, where one for ever would hang the test) */
    CHECK_ERR(cosync_signal_wait(sig, cosync_deadline_after(COSYNC_MS(1))), COSYNC_EPERM);
    CHECK_ERR(cosync_signal_wait(sig, 0), COSYNC_EPERM);
    CHECK_EQ(io_waiters(), 0);
    CHECK_ERR(cosync_signal_destroy(sig), COSYNC_EPERM);
    CHECK(is_blocked(SIGUSR1)); /* nothing changed */
    CHECK_GE(cosync_io_fd(&sig->io), 0);
    return 0;
}

static int raise_after_yield(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_yield());
    raise_ok(SIGUSR1);
    return 0;
}

static int third_loop_main(void *arg, void **result)
{
    (void)result;
    cosync_task w, r;
    CHECK_OK(cosync_task_spawn(&w, wait_forever, arg, NULL));
    CHECK_OK(cosync_task_spawn(&r, raise_after_yield, NULL, NULL));
    CHECK_EQ(join_signo(w), SIGUSR1);
    join_ok(r);
    return 0;
}

/* The set is its first waiter's loop's: a task of another loop gets
 * COSYNC_EPERM from a wait and a destroy. A loop destroyed cuts it loose,
 * and another loop's task can then wait on it. */
TEST(a_set_belongs_to_the_loop_of_its_first_wait)
{
    scene sc = scene_begin();
    cosync_signal sig;
    CHECK_OK(cosync_signal_init(&sig, (int[]){SIGUSR1}, 1));
    cosync_loop *a = new_loop();
    cosync_task t;
    int st = 0;
    CHECK_OK(cosync_loop_spawn(a, &t, try_wait, &sig, NULL));
    CHECK_OK(cosync_loop_run(a, t, &st, NULL));
    CHECK_ERR(st, COSYNC_EAGAIN); /* and registered with a */

    cosync_loop *b = new_loop();
    CHECK_OK(cosync_loop_spawn(b, &t, other_loop_task, &sig, NULL));
    CHECK_OK(cosync_loop_run(b, t, &st, NULL));
    CHECK_OK(st);
    end_loop(b);

    end_loop(a); /* cuts the set loose */
    CHECK(is_blocked(SIGUSR1));
    cosync_loop *c = new_loop();
    CHECK_OK(cosync_loop_spawn(c, &t, third_loop_main, &sig, NULL));
    CHECK_OK(cosync_loop_run(c, t, &st, NULL));
    CHECK_OK(st);
    end_loop(c);
    CHECK_OK(cosync_signal_destroy(&sig));
    scene_end(sc);
}

/* ------------------------------------------------------------------------ */

typedef struct left_behind {
    cosync_signal sig;
    int got;
} left_behind;

static int record_wait(void *arg, void **result)
{
    (void)result;
    left_behind *l = arg;
    l->got = cosync_signal_wait(&l->sig, COSYNC_FOREVER);
    return l->got < 0 ? l->got : 0;
}

static int leave_a_waiter(void *arg, void **result)
{
    (void)result;
    CHECK_OK(cosync_task_spawn(NULL, record_wait, arg, NULL));
    CHECK_OK(cosync_yield());
    CHECK_EQ(io_waiters(), 1);
    return 0; /* and the run ends, the waiter still waiting */
}

static int take_now(void *arg, void **result)
{
    return signo_outcome(cosync_signal_wait(arg, 0), result);
}

/* A loop destroyed while a task waits for a signal: the close cancels
 * the task, and the set, cut loose, still holds its signals (blocked, its
 * signalfd open) for a wait in another loop. */
TEST(a_loop_destroyed_while_a_task_waits_cancels_it_and_keeps_the_set)
{
    scene sc = scene_begin();
    left_behind l = {.got = 0};
    CHECK_OK(cosync_signal_init(&l.sig, (int[]){SIGUSR1}, 1));
    cosync_loop *loop = new_loop();
    cosync_task m;
    CHECK_OK(cosync_loop_spawn(loop, &m, leave_a_waiter, &l, NULL));
    CHECK_OK(cosync_loop_run(loop, m, NULL, NULL));
    CHECK_EQ(l.got, 0);
    CHECK_OK(cosync_loop_destroy(loop));
    CHECK_ERR(l.got, COSYNC_ECANCELED);
    CHECK(is_blocked(SIGUSR1));
    CHECK_GE(cosync_io_fd(&l.sig.io), 0);
    raise_ok(SIGUSR1);
    loop = new_loop();
    void *res = NULL;
    CHECK_OK(cosync_loop_spawn(loop, &m, take_now, &l.sig, NULL));
    CHECK_OK(cosync_loop_run(loop, m, NULL, &res));
    CHECK_EQ((int)(intptr_t)res, SIGUSR1);
    end_loop(loop);
    CHECK_OK(cosync_signal_destroy(&l.sig));
    scene_end(sc);
}

/* ------------------------------------------------------------------------ */

#if COSYNC__DENSE_SUPPORTED
static int dense_own_set(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_signal sig;
    CHECK_OK(cosync_signal_init(&sig, (int[]){SIGUSR1}, 1));
    CHECK_ERR(cosync_signal_wait(&sig, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_EQ(io_waiters(), 0);
    raise_ok(SIGUSR1);
    CHECK_EQ(cosync_signal_wait(&sig, COSYNC_FOREVER), SIGUSR1); /* no wait needed */
    CHECK_OK(cosync_signal_destroy(&sig));
    return 0;
}

static int dense_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, dense_own_set, NULL, &(cosync_task_opts){.dense = true}));
    join_ok(t);
    return 0;
}
#endif

TEST(a_dense_task_cannot_wait_on_a_set_in_its_own_stack)
{
#if COSYNC__DENSE_SUPPORTED
    scene sc = scene_begin();
    run_main_ok(dense_main, NULL);
    scene_end(sc);
#endif
}

/* ------------------------------------------------------------------------
 * The loop while a task waits for a signal
 * ---------------------------------------------------------------------- */

static int no_deadlock_main(void *arg, void **result)
{
    (void)result;
    cosync_task w, r;
    CHECK_OK(cosync_task_spawn(&w, wait_forever, arg, NULL));
    CHECK_OK(cosync_task_spawn(&r, raise_after_yield, NULL, NULL));
    CHECK_EQ(join_signo(w), SIGUSR1);
    join_ok(r);
    return 0;
}

TEST(a_task_waiting_for_a_signal_is_no_deadlock)
{
    scene sc = scene_begin();
    cosync_signal sig;
    CHECK_OK(cosync_signal_init(&sig, (int[]){SIGUSR1}, 1));
    capture c;
    cosync_loop *loop = report_loop(&c, NULL);
    cosync_task m;
    int st = -1;
    CHECK_OK(cosync_loop_spawn(loop, &m, no_deadlock_main, &sig, NULL));
    CHECK_OK(cosync_loop_run(loop, m, &st, NULL));
    CHECK_OK(st);
    CHECK_STREQ(capture_text(&c), ""); /* no report */
    end_loop(loop);
    capture_free(&c);
    CHECK_OK(cosync_signal_destroy(&sig));
    scene_end(sc);
}

/* Nothing at all to run and no timer: the loop waits in epoll for the
 * signal that a plain thread sends to it (before or after the wait began:
 * the outcome is the same). */
typedef struct from_thread {
    cosync_signal sig;
    pthread_t loop_thread;
    pthread_t th;
} from_thread;

static void *send_to_loop(void *arg)
{
    from_thread *f = arg;
    CHECK_EQ(pthread_kill(f->loop_thread, SIGUSR1), 0);
    return NULL;
}

static int idle_main(void *arg, void **result)
{
    (void)result;
    from_thread *f = arg;
    f->loop_thread = pthread_self();
    CHECK_EQ(pthread_create(&f->th, NULL, send_to_loop, f), 0);
    int rc = cosync_signal_wait(&f->sig, COSYNC_FOREVER);
    CHECK_EQ(pthread_join(f->th, NULL), 0);
    CHECK_EQ(rc, SIGUSR1);
    return 0;
}

TEST(an_idle_loop_waits_for_a_signal_from_another_thread)
{
    scene sc = scene_begin();
    from_thread f;
    CHECK_OK(cosync_signal_init(&f.sig, (int[]){SIGUSR1}, 1));
    run_main_ok(idle_main, &f);
    CHECK_OK(cosync_signal_destroy(&f.sig));
    scene_end(sc);
}

/* After waits that timed out, were cancelled and were refused, the loop
 * no longer counts a task as waiting for I/O: a real deadlock is reported,
 * not waited out in epoll. */
static cosync_signal accounting_sig;

static int stuck_after_waits(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_ERR(cosync_signal_wait(&accounting_sig, 0), COSYNC_EAGAIN);
    CHECK_ERR(cosync_signal_wait(&accounting_sig, cosync_deadline_after(COSYNC_MS(5))),
              COSYNC_ETIMEDOUT);
    cosync_task w;
    CHECK_OK(cosync_task_spawn(&w, wait_forever, &accounting_sig, NULL));
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_task_cancel(w));
    CHECK_EQ(join_signo(w), COSYNC_ECANCELED);
    CHECK_EQ(io_waiters(), 0);
    cosync_future never;
    cosync_future_init(&never);
    return cosync_future_wait(&never, COSYNC_FOREVER);
}

TEST(a_deadlock_after_signal_waits_is_still_reported)
{
    scene sc = scene_begin();
    CHECK_OK(cosync_signal_init(&accounting_sig, (int[]){SIGUSR1}, 1));
    capture c;
    cosync_task m;
    cosync_loop *loop = deadlock_loop(&c, stuck_after_waits, NULL, "stuck", &m);
    CHECK(strstr(capture_text(&c), "deadlock") != NULL);
    CHECK_OK(cosync_loop_destroy(loop));
    capture_free(&c);
    CHECK_OK(cosync_signal_destroy(&accounting_sig));
    scene_end(sc);
}

/* ------------------------------------------------------------------------
 * A graceful shutdown
 * ---------------------------------------------------------------------- */

#define WORKERS 4

typedef struct stop_scene {
    cosync_signal sig;
    cosync_taskgroup workers;
    int64_t t0;
    int64_t got_at;
    int signo;
    int cancelled_by_watcher;
    int ticks[WORKERS];
    int cancels_seen[WORKERS];
    int cleanups[WORKERS];
} stop_scene;

static stop_scene sd;

static int worker(void *arg, void **result)
{
    (void)result;
    int id = (int)(intptr_t)arg;
    int rc;
    while ((rc = cosync_sleep(COSYNC_MS(10))) == 0) {
        sd.ticks[id]++;
        if (id == 0 && sd.ticks[id] == 5)
            raise_ok(SIGTERM); /* the operator's kill, 50 ms in */
    }
    if (rc == COSYNC_ECANCELED)
        sd.cancels_seen[id]++;
    sd.cleanups[id]++; /* the clean-up, on the way out */
    return rc;
}

static int watcher(void *arg, void **result)
{
    (void)arg, (void)result;
    sd.signo = cosync_signal_wait(&sd.sig, COSYNC_FOREVER);
    sd.got_at = cosync_now();
    sd.cancelled_by_watcher = cosync_taskgroup_cancel(&sd.workers);
    return sd.signo < 0 ? sd.signo : 0;
}

static int shutdown_main(void *arg, void **result)
{
    (void)arg, (void)result;
    sd.t0 = cosync_now();
    cosync_task w;
    CHECK_OK(cosync_taskgroup_init(&sd.workers));
    for (int i = 0; i < WORKERS; i++)
        CHECK_OK(cosync_taskgroup_spawn(&sd.workers, NULL, worker, (void *)(intptr_t)i, NULL));
    CHECK_OK(cosync_task_spawn(&w, watcher, NULL, NULL));
    CHECK_OK(cosync_taskgroup_wait(&sd.workers, COSYNC_FOREVER));
    join_ok(w);
    return 0;
}

TEST(a_graceful_shutdown_on_sigterm_cancels_every_worker_once)
{
    scene sc = scene_begin();
    memset(&sd, 0, sizeof sd);
    CHECK_OK(cosync_signal_init(&sd.sig, (int[]){SIGINT, SIGTERM}, 2));
    cosync_loop *loop = new_loop();
    cosync_task m;
    int st = -1;
    CHECK_OK(cosync_loop_spawn(loop, &m, shutdown_main, NULL, NULL));
    CHECK_OK(cosync_loop_run(loop, m, &st, NULL));
    CHECK_OK(st);
    end_loop(loop);
    CHECK_EQ(sd.signo, SIGTERM);
    CHECK_EQ(sd.got_at, sd.t0 + COSYNC_MS(50));
    CHECK_EQ(sd.cancelled_by_watcher, WORKERS);
    for (int i = 0; i < WORKERS; i++) {
        CHECK_EQ(sd.ticks[i], 5); /* the timers due at 50 ms all fired first */
        CHECK_EQ(sd.cancels_seen[i], 1);
        CHECK_EQ(sd.cleanups[i], 1);
    }
    CHECK(is_blocked(SIGTERM));
    CHECK_OK(cosync_signal_destroy(&sd.sig));
    scene_end(sc);
}

/* ------------------------------------------------------------------------
 * Fault injection
 * ---------------------------------------------------------------------- */

TEST(a_failed_signalfd_is_emfile_and_changes_nothing)
{
    scene sc = scene_begin();
    cosync_signal sig, pristine;
    memset(&sig, 0x5A, sizeof sig);
    memcpy(&pristine, &sig, sizeof sig);
    long failures = cosync__fault_failures;
    cosync__fault_countdown = 0; /* the first point: before signalfd */
    int rc = cosync_signal_init(&sig, (int[]){SIGUSR1, SIGTERM}, 2);
    cosync__fault_countdown = -1;
    CHECK_ERR(rc, COSYNC_EMFILE);
    CHECK_EQ(cosync__fault_failures, failures + 1);
    CHECK(memcmp(&sig, &pristine, sizeof sig) == 0);
    CHECK(!is_blocked(SIGUSR1));
    CHECK(!is_blocked(SIGTERM));
    /* a program that blocked one itself keeps it blocked */
    set_blocked(SIGTERM, true);
    cosync__fault_countdown = 0;
    rc = cosync_signal_init(&sig, (int[]){SIGUSR1, SIGTERM}, 2);
    cosync__fault_countdown = -1;
    CHECK_ERR(rc, COSYNC_EMFILE);
    CHECK(!is_blocked(SIGUSR1));
    CHECK(is_blocked(SIGTERM));
    set_blocked(SIGTERM, false);
    /* and then it works */
    CHECK_OK(cosync_signal_init(&sig, (int[]){SIGUSR1, SIGTERM}, 2));
    CHECK_OK(cosync_signal_destroy(&sig));
    scene_end(sc);
}

static int failed_registration_main(void *arg, void **result)
{
    (void)result;
    cosync_signal *sig = arg;
    uint64_t before = switches();
    long failures = cosync__fault_failures;
    cosync__fault_countdown = 0; /* the first point: the epoll registration */
    /* (a deadline, so that a wait the fault misses fails, not hangs) */
    int rc = cosync_signal_wait(sig, cosync_deadline_after(COSYNC_MS(5)));
    cosync__fault_countdown = -1;
    CHECK_ERR(rc, COSYNC_ENOMEM);
    CHECK_EQ(cosync__fault_failures, failures + 1);
    CHECK_EQ(switches(), before);
    CHECK_EQ(io_waiters(), 0);
    CHECK_EQ(armed_timers(), 0);
    /* the next wait registers, and works */
    cosync_task w, r;
    CHECK_OK(cosync_task_spawn(&w, wait_forever, sig, NULL));
    CHECK_OK(cosync_task_spawn(&r, raise_after_yield, NULL, NULL));
    CHECK_EQ(join_signo(w), SIGUSR1);
    join_ok(r);
    return 0;
}

TEST(a_failed_registration_at_the_first_wait_is_returned_and_the_next_wait_works)
{
    scene sc = scene_begin();
    cosync_signal sig;
    CHECK_OK(cosync_signal_init(&sig, (int[]){SIGUSR1}, 1));
    run_main_ok(failed_registration_main, &sig);
    CHECK_OK(cosync_signal_destroy(&sig));
    scene_end(sc);
}

/* ------------------------------------------------------------------------ */

int main(void)
{
    uint64_t mask_at_start = mask_now();
    install_handlers();
    RUN(a_waiting_task_gets_the_signal_another_task_raises);
    RUN(a_signal_raised_before_the_wait_is_taken_at_once_and_counts_once);
    RUN(a_signal_sent_to_the_process_is_taken_too);
    RUN(two_signals_of_one_set_raised_give_two_waits_both_numbers);
    RUN(each_instance_of_a_realtime_signal_is_taken);
    RUN(deadline_zero_is_eagain_and_a_finite_one_times_out_at_that_virtual_time);
    RUN(a_signal_that_comes_before_the_deadline_ends_the_wait_then);
    RUN(a_cancelled_wait_is_ecanceled_and_loses_no_signal);
    RUN(a_granted_wait_cancelled_before_it_runs_still_takes_the_signal);
    RUN(destroy_in_a_task_ends_a_waiting_task_with_ebadf);
    RUN(a_mask_set_in_a_task_is_the_threads_mask);
    RUN(destroy_between_runs_ends_a_waiting_task_with_ebadf);
    RUN(destroy_unblocks_only_what_init_blocked);
    RUN(a_signal_pending_at_destroy_is_delivered_as_usual);
    RUN(nested_sets_destroyed_in_reverse_order_give_back_the_mask);
    RUN(bad_arguments_to_init_are_einval_and_change_nothing);
    RUN(a_wait_outside_a_task_is_eperm);
    RUN(a_second_waiting_task_is_ebusy);
    RUN(a_set_belongs_to_the_loop_of_its_first_wait);
    RUN(a_loop_destroyed_while_a_task_waits_cancels_it_and_keeps_the_set);
    RUN(a_dense_task_cannot_wait_on_a_set_in_its_own_stack);
    RUN(a_task_waiting_for_a_signal_is_no_deadlock);
    RUN(an_idle_loop_waits_for_a_signal_from_another_thread);
    RUN(a_deadlock_after_signal_waits_is_still_reported);
    RUN(a_graceful_shutdown_on_sigterm_cancels_every_worker_once);
    RUN(a_failed_signalfd_is_emfile_and_changes_nothing);
    RUN(a_failed_registration_at_the_first_wait_is_returned_and_the_next_wait_works);
    restore_handlers();
    CHECK_EQ(mask_now(), mask_at_start);
    return 0;
}
