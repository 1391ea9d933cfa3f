/*
 * test_rwlock.c - cosync_rwlock, the writer-preferring read-write lock
 * (the seed's ReadWriteLock).
 *
 * Every loop runs on the virtual clock: times are exact, nothing sleeps.
 * Every task that holds the lock checks exclusion on entry with the
 * "inside" counters (readers_in, writers_in).
 */
#define _GNU_SOURCE /* open_memstream */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static int64_t t0;
#define AT(ms) (t0 + COSYNC_MS(ms))

/* ------------------------------------------------------------------------
 * Exclusion bookkeeping and the grant log
 * ---------------------------------------------------------------------- */

static int readers_in, writers_in;
static int grant_log[512];
static int ngrants;

static void enter(const cosync_rwlock *rw, bool write, int id)
{
    if (write) {
        CHECK_EQ(readers_in, 0);
        CHECK_EQ(writers_in, 0);
        CHECK(cosync_rwlock_write_locked(rw));
        CHECK_EQ(cosync_rwlock_readers(rw), 0);
        writers_in++;
    } else {
        CHECK_EQ(writers_in, 0);
        CHECK(!cosync_rwlock_write_locked(rw));
        readers_in++;
        CHECK_LE(readers_in, (int)cosync_rwlock_readers(rw));
    }
    CHECK_LT(ngrants, 512);
    grant_log[ngrants++] = id;
}

static void leave(bool write)
{
    if (write)
        writers_in--;
    else
        readers_in--;
    CHECK_GE(readers_in, 0);
    CHECK_GE(writers_in, 0);
}

static void reset_log(void)
{
    readers_in = writers_in = 0;
    ngrants = 0;
}

/* Check that the grant log is exactly @ids (terminated by -1). */
#define CHECK_LOG(...)                                                                             \
    do {                                                                                           \
        const int check__ids[] = {__VA_ARGS__, -1};                                                \
        int check__n = 0;                                                                          \
        while (check__ids[check__n] >= 0) {                                                        \
            CHECK_LT(check__n, ngrants);                                                           \
            CHECK_EQ(grant_log[check__n], check__ids[check__n]);                                   \
            check__n++;                                                                            \
        }                                                                                          \
        CHECK_EQ(ngrants, check__n);                                                               \
    } while (0)

/* ------------------------------------------------------------------------
 * An actor: acquires (after a delay), holds for a while, releases.
 * ---------------------------------------------------------------------- */

typedef struct actor {
    cosync_rwlock *rw;
    int id;
    bool write;
    int64_t delay;    /* sleep before acquiring (0: none) */
    int64_t deadline; /* of the acquire */
    int64_t hold;     /* sleep while holding (0: yield) */
    int checkpoint;   /* < 0: none; else at the grant */
    /* observed */
    int rc;      /* of the acquire */
    int hold_rc; /* of the sleep while holding */
    int64_t got_at;
    int64_t left_at;
} actor;

static int actor_fn(void *arg, void **result)
{
    (void)result;
    actor *a = arg;
    if (a->delay)
        CHECK_OK(cosync_sleep(a->delay));
    a->rc = a->write ? cosync_rwlock_write_acquire(a->rw, a->deadline)
                     : cosync_rwlock_read_acquire(a->rw, a->deadline);
    a->got_at = cosync_now();
    if (a->rc)
        return 0;
    enter(a->rw, a->write, a->id);
    if (a->checkpoint >= 0)
        CHECKPOINT(a->checkpoint);
    a->hold_rc = a->hold ? cosync_sleep(a->hold) : cosync_yield();
    leave(a->write);
    CHECK_OK(a->write ? cosync_rwlock_write_release(a->rw) : cosync_rwlock_read_release(a->rw));
    a->left_at = cosync_now();
    return a->hold_rc;
}

static actor mk(cosync_rwlock *rw, int id, bool write, int64_t hold)
{
    return (actor){.rw = rw,
                   .id = id,
                   .write = write,
                   .deadline = COSYNC_FOREVER,
                   .hold = hold,
                   .checkpoint = -1,
                   .rc = 1,
                   .hold_rc = 1,
                   .got_at = -1,
                   .left_at = -1};
}

static cosync_task spawn_actor(actor *a)
{
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, actor_fn, a, NULL));
    return t;
}

/* Spawn the actors a[0..n) as t[0..n). */
static void spawn_actors(actor *a, cosync_task *t, int n)
{
    for (int i = 0; i < n; i++)
        t[i] = spawn_actor(&a[i]);
}

/* main's own holds, logged like an actor's (id 0) */
static void main_read(cosync_rwlock *rw)
{
    CHECK_OK(cosync_rwlock_read_acquire(rw, COSYNC_FOREVER));
    enter(rw, false, 0);
}

static void main_write(cosync_rwlock *rw)
{
    CHECK_OK(cosync_rwlock_write_acquire(rw, COSYNC_FOREVER));
    enter(rw, true, 0);
}

static void main_read_release(cosync_rwlock *rw)
{
    leave(false);
    CHECK_OK(cosync_rwlock_read_release(rw));
}

static void main_write_release(cosync_rwlock *rw)
{
    leave(true);
    CHECK_OK(cosync_rwlock_write_release(rw));
}

/* ------------------------------------------------------------------------
 * Basic behaviour
 * ---------------------------------------------------------------------- */

static int readers_share_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    reset_log();
    cosync_rwlock rw;
    cosync_rwlock_init(&rw);
    CHECK_EQ(cosync_rwlock_readers(&rw), 0);
    CHECK(!cosync_rwlock_write_locked(&rw));
    main_read(&rw);
    actor a[3];
    cosync_task t[3];
    for (int i = 0; i < 3; i++) {
        a[i] = mk(&rw, i + 1, false, COSYNC_MS(5));
        t[i] = spawn_actor(&a[i]);
    }
    CHECK_OK(cosync_yield());
    /* every reader got in at once, beside main's hold */
    CHECK_EQ(cosync_rwlock_readers(&rw), 4);
    CHECK_EQ(cosync_rwlock_waiters(&rw), 0);
    CHECK_LOG(0, 1, 2, 3);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(a[i].got_at, t0);
    /* try_read joins them; try_write cannot */
    CHECK_OK(cosync_rwlock_try_read(&rw));
    CHECK_EQ(cosync_rwlock_readers(&rw), 5);
    CHECK_OK(cosync_rwlock_read_release(&rw));
    CHECK_ERR(cosync_rwlock_try_write(&rw), COSYNC_EAGAIN);
    CHECK_EQ(cosync_rwlock_waiters(&rw), 0);
    /* a read hold survives recursion: main takes a second one */
    CHECK_OK(cosync_rwlock_read_acquire(&rw, 0));
    CHECK_OK(cosync_rwlock_read_release(&rw));
    main_read_release(&rw);
    CHECK_OK(cosync_gather(t, 3, NULL, COSYNC_FOREVER));
    for (int i = 0; i < 3; i++) {
        CHECK_OK(a[i].rc);
        CHECK_EQ(a[i].left_at, AT(5));
    }
    CHECK_EQ(cosync_rwlock_readers(&rw), 0);
    /* free: a writer takes it at once, with any deadline */
    CHECK_OK(cosync_rwlock_try_write(&rw));
    CHECK(cosync_rwlock_write_locked(&rw));
    CHECK_OK(cosync_rwlock_write_release(&rw));
    CHECK_OK(cosync_rwlock_write_acquire(&rw, 1)); /* a deadline long passed */
    CHECK_OK(cosync_rwlock_write_release(&rw));
    CHECK_OK(cosync_rwlock_destroy(&rw));
    return 0;
}

TEST(readers_share)
{
    CHECK_OK(run_main(readers_share_main, NULL));
}

static int writer_excludes_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    reset_log();
    cosync_rwlock rw = COSYNC_RWLOCK_INIT;
    main_write(&rw);
    CHECK(cosync_rwlock_write_locked(&rw));
    CHECK_ERR(cosync_rwlock_try_read(&rw), COSYNC_EAGAIN);
    CHECK_ERR(cosync_rwlock_try_write(&rw), COSYNC_EAGAIN);
    actor a[2] = {mk(&rw, 1, false, COSYNC_MS(3)), mk(&rw, 2, true, COSYNC_MS(3))};
    a[0].checkpoint = 1;
    a[1].checkpoint = 2;
    cosync_task t[2] = {spawn_actor(&a[0]), spawn_actor(&a[1])};
    CHECK_OK(cosync_sleep(COSYNC_MS(5)));
    CHECK_EQ(cosync_rwlock_waiters(&rw), 2);
    CHECK_EQ(cosync_rwlock_waiting_writers(&rw), 1);
    CHECK_EQ(a[0].rc, 1);
    CHECK_EQ(a[1].rc, 1);
    CHECKPOINT(0);
    main_write_release(&rw);
    /* the reader is granted at once: it holds before it has run */
    CHECK_EQ(cosync_rwlock_readers(&rw), 1);
    CHECK(!cosync_rwlock_write_locked(&rw));
    CHECK_EQ(cosync_rwlock_waiters(&rw), 1);
    CHECK_OK(cosync_gather(t, 2, NULL, COSYNC_FOREVER));
    CHECKPOINTS_DONE(3);
    CHECK_LOG(0, 1, 2);
    CHECK_EQ(a[0].got_at, AT(5));
    CHECK_EQ(a[1].got_at, AT(8));
    CHECK_EQ(a[1].left_at, AT(11));
    CHECK_EQ(cosync_rwlock_waiting_writers(&rw), 0);
    CHECK_OK(cosync_rwlock_destroy(&rw));
    return 0;
}

TEST(writer_excludes_readers_and_writers)
{
    CHECK_OK(run_main(writer_excludes_main, NULL));
}

/* ------------------------------------------------------------------------
 * Fairness
 * ---------------------------------------------------------------------- */

static int writer_preference_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    reset_log();
    cosync_rwlock rw = COSYNC_RWLOCK_INIT;
    main_read(&rw);
    /* W waits for main's read hold; R2, R3 come after it: they queue
     * behind W although only readers hold the lock (writer preference);
     * W2 comes last */
    actor a[4] = {mk(&rw, 1, true, COSYNC_MS(5)), mk(&rw, 2, false, COSYNC_MS(4)),
                  mk(&rw, 3, false, COSYNC_MS(4)), mk(&rw, 4, true, COSYNC_MS(1))};
    a[1].delay = COSYNC_MS(1);
    a[2].delay = COSYNC_MS(2);
    a[3].delay = COSYNC_MS(3);
    cosync_task t[4];
    spawn_actors(a, t, 4);
    CHECK_OK(cosync_sleep(COSYNC_US(2500)));
    CHECK_EQ(cosync_rwlock_waiters(&rw), 3);
    CHECK_EQ(cosync_rwlock_readers(&rw), 1);
    CHECK_ERR(cosync_rwlock_try_read(&rw), COSYNC_EAGAIN); /* blocked by the waiting writer */
    CHECK_OK(cosync_sleep_until(AT(10)));
    main_read_release(&rw);
    CHECK(cosync_rwlock_write_locked(&rw));
    CHECK_OK(cosync_gather(t, 4, NULL, COSYNC_FOREVER));
    /* W at 10 until 15; then R2 and R3 together (no reader starvation) until
     * 19; then W2 */
    CHECK_LOG(0, 1, 2, 3, 4);
    CHECK_EQ(a[0].got_at, AT(10));
    CHECK_EQ(a[1].got_at, AT(15));
    CHECK_EQ(a[2].got_at, AT(15));
    CHECK_EQ(a[3].got_at, AT(19));
    CHECK_EQ(a[3].left_at, AT(20));
    return 0;
}

TEST(writer_preference_and_no_reader_starvation)
{
    CHECK_OK(run_main(writer_preference_main, NULL));
}

/* A stream of readers that overlap: the lock is never free of readers,
 * yet a writer gets in once those that held it when it came have left. */
typedef struct streamer {
    cosync_rwlock *rw;
    int id;
    int64_t start;
    bool *stop;
    int64_t last_got;
    int grants;
} streamer;

static int streamer_fn(void *arg, void **result)
{
    (void)result;
    streamer *s = arg;
    CHECK_OK(cosync_sleep_until(s->start));
    while (!*s->stop) {
        CHECK_OK(cosync_rwlock_read_acquire(s->rw, COSYNC_FOREVER));
        s->last_got = cosync_now();
        s->grants++;
        enter(s->rw, false, s->id);
        CHECK_OK(cosync_sleep(COSYNC_MS(1)));
        leave(false);
        CHECK_OK(cosync_rwlock_read_release(s->rw));
        /* and straight back in, without a suspension in between */
    }
    return 0;
}

static int no_writer_starvation_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    reset_log();
    cosync_rwlock rw = COSYNC_RWLOCK_INIT;
    bool stop = false;
    streamer s[4];
    cosync_task t[4];
    for (int i = 0; i < 4; i++) {
        s[i] = (streamer){.rw = &rw, .id = 10 + i, .start = t0 + COSYNC_US(250 * i), .stop = &stop};
        CHECK_OK(cosync_task_spawn(&t[i], streamer_fn, &s[i], NULL));
    }
    /* the writer comes at 3.1 ms: reader 0 holds since 3.0 (until 4.0),
     * 1 since 2.25, 2 since 2.5, 3 since 2.75 */
    actor w = mk(&rw, 1, true, COSYNC_MS(1));
    w.delay = COSYNC_US(3100);
    cosync_task wt = spawn_actor(&w);
    join_ok(wt);
    CHECK_OK(w.rc);
    CHECK_EQ(w.got_at, t0 + COSYNC_US(4000));
    CHECK_EQ(w.left_at, t0 + COSYNC_US(5000));
    stop = true;
    CHECK_OK(cosync_gather(t, 4, NULL, COSYNC_FOREVER));
    /* the readers that queued behind it (1 at 3.25, 2 at 3.5, 3 at 3.75,
     * 0 at 4.0) got in together, right after it */
    int wpos = -1;
    for (int i = 0; i < ngrants; i++)
        if (grant_log[i] == 1)
            wpos = i;
    CHECK_GE(wpos, 0);
    CHECK_EQ(ngrants, wpos + 5);
    CHECK_EQ(grant_log[wpos + 1], 11);
    CHECK_EQ(grant_log[wpos + 2], 12);
    CHECK_EQ(grant_log[wpos + 3], 13);
    CHECK_EQ(grant_log[wpos + 4], 10);
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(s[i].last_got, t0 + COSYNC_US(5000));
        CHECK_GE(s[i].grants, 4);
    }
    return 0;
}

TEST(no_writer_starvation_under_a_stream_of_readers)
{
    CHECK_OK(run_main(no_writer_starvation_main, NULL));
}

static int fifo_batches_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    reset_log();
    cosync_rwlock rw = COSYNC_RWLOCK_INIT;
    main_write(&rw);
    /* queue: R1 R2 W3 R4 R5 W6, each holding 1 ms */
    const bool kinds[6] = {false, false, true, false, false, true};
    actor a[6];
    cosync_task t[6];
    for (int i = 0; i < 6; i++) {
        a[i] = mk(&rw, i + 1, kinds[i], COSYNC_MS(1));
        a[i].checkpoint = i;
        t[i] = spawn_actor(&a[i]);
    }
    CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_rwlock_waiters(&rw), 6);
    CHECK_EQ(cosync_rwlock_waiting_writers(&rw), 2);
    CHECK_OK(cosync_sleep(COSYNC_MS(1)));
    main_write_release(&rw); /* at 1 ms */
    /* the first batch is granted at once, the rest wait */
    CHECK_EQ(cosync_rwlock_readers(&rw), 2);
    CHECK_EQ(cosync_rwlock_waiters(&rw), 4);
    /* a newcomer reader at 3.5 ms, while R4 R5 hold and W6 waits */
    actor late = mk(&rw, 7, false, COSYNC_MS(1));
    late.delay = COSYNC_US(2500);
    cosync_task lt = spawn_actor(&late);
    CHECK_OK(cosync_gather(t, 6, NULL, COSYNC_FOREVER));
    join_ok(lt);
    CHECKPOINTS_DONE(6);
    CHECK_LOG(0, 1, 2, 3, 4, 5, 6, 7);
    const int64_t got[6] = {1, 1, 2, 3, 3, 4};
    for (int i = 0; i < 6; i++) {
        CHECK_OK(a[i].rc);
        CHECK_EQ(a[i].got_at, AT(got[i]));
        CHECK_EQ(a[i].left_at, AT(got[i] + 1));
    }
    CHECK_EQ(late.got_at, AT(5)); /* behind W6 */
    CHECK_EQ(cosync_rwlock_waiting_writers(&rw), 0);
    CHECK_EQ(cosync_rwlock_waiters(&rw), 0);
    return 0;
}

TEST(fifo_batches_r_r_w_r_r_w)
{
    CHECK_OK(run_main(fifo_batches_main, NULL));
}

static int burst_main(void *arg, void **result)
{
    (void)arg, (void)result;
    enum { N = 100 };
    t0 = cosync_now();
    reset_log();
    cosync_rwlock rw = COSYNC_RWLOCK_INIT;
    main_write(&rw);
    static actor a[N];
    cosync_task t[N];
    for (int i = 0; i < N; i++) {
        a[i] = mk(&rw, i + 1, false, COSYNC_MS(1));
        a[i].checkpoint = i;
        t[i] = spawn_actor(&a[i]);
    }
    CHECK_OK(cosync_sleep(COSYNC_MS(2)));
    CHECK_EQ(cosync_rwlock_waiters(&rw), N);
    main_write_release(&rw);
    /* every reader is granted by the release itself */
    CHECK_EQ(cosync_rwlock_readers(&rw), N);
    CHECK_EQ(cosync_rwlock_waiters(&rw), 0);
    CHECK_ERR(cosync_rwlock_try_write(&rw), COSYNC_EAGAIN);
    /* and all run, in order, before main runs again */
    CHECK_OK(cosync_yield());
    CHECKPOINTS_DONE(N);
    for (int i = 0; i < N; i++) {
        CHECK_OK(a[i].rc);
        CHECK_EQ(a[i].got_at, AT(2));
    }
    CHECK_OK(cosync_gather(t, N, NULL, COSYNC_FOREVER));
    for (int i = 0; i < N; i++)
        CHECK_EQ(a[i].left_at, AT(3));
    CHECK_EQ(cosync_rwlock_readers(&rw), 0);
    return 0;
}

TEST(burst_of_100_readers_released_in_one_step)
{
    CHECK_OK(run_main(burst_main, NULL));
}

/* ------------------------------------------------------------------------
 * Cancellation and deadlines
 * ---------------------------------------------------------------------- */

static int granted_then_cancelled_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    reset_log();
    cosync_rwlock rw = COSYNC_RWLOCK_INIT;
    main_write(&rw);
    /* R1 and W2 wait; R1 is granted by the release and cancelled before it
     * runs: it keeps its read hold (its acquire returns 0), the cancellation
     * comes at its next suspension, and W2 gets the lock when R1 leaves */
    actor a[3] = {mk(&rw, 1, false, COSYNC_MS(5)), mk(&rw, 2, true, COSYNC_MS(5)),
                  mk(&rw, 3, false, COSYNC_MS(5))};
    cosync_task t[3];
    spawn_actors(a, t, 3);
    CHECK_OK(cosync_sleep(COSYNC_MS(1)));
    main_write_release(&rw);
    CHECK_EQ(cosync_rwlock_readers(&rw), 1);
    CHECK_OK(cosync_task_cancel(t[0]));
    CHECK_EQ(cosync_rwlock_readers(&rw), 1); /* the grant stands */
    join_expect(t[0], COSYNC_ECANCELED);
    CHECK_OK(a[0].rc);
    CHECK_EQ(a[0].got_at, AT(1));
    CHECK_ERR(a[0].hold_rc, COSYNC_ECANCELED); /* its hold's sleep, cut short */
    CHECK_EQ(a[0].left_at, AT(1));
    /* R1 left at once: W2 holds now */
    CHECK(cosync_rwlock_write_locked(&rw));
    /* W2 is granted by R1's release; cancel it before it runs: it keeps the
     * write hold */
    CHECK_OK(cosync_task_cancel(t[1]));
    CHECK(cosync_rwlock_write_locked(&rw));
    join_expect(t[1], COSYNC_ECANCELED);
    CHECK_OK(a[1].rc);
    CHECK_ERR(a[1].hold_rc, COSYNC_ECANCELED);
    CHECK_EQ(a[1].got_at, AT(1));
    join_ok(t[2]);
    CHECK_OK(a[2].rc);
    CHECK_EQ(a[2].got_at, AT(1));
    CHECK_EQ(a[2].left_at, AT(6));
    CHECK_LOG(0, 1, 2, 3);
    CHECK_EQ(cosync_rwlock_waiting_writers(&rw), 0);
    CHECK_OK(cosync_rwlock_destroy(&rw));
    return 0;
}

TEST(waiter_cancelled_after_grant_keeps_its_hold)
{
    CHECK_OK(run_main(granted_then_cancelled_main, NULL));
}

/* A second write release before the writer it handed the lock to has run
 * is refused (COSYNC_EPERM), as the Lock's: it would let the next waiters
 * in beside that writer. */
static int write_release_during_hand_off_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    reset_log();
    cosync_rwlock rw = COSYNC_RWLOCK_INIT;
    main_write(&rw);
    actor a[2] = {mk(&rw, 1, true, COSYNC_MS(5)), mk(&rw, 2, false, COSYNC_MS(5))};
    cosync_task t[2];
    spawn_actors(a, t, 2);
    CHECK_OK(cosync_yield()); /* W1 and R2 wait */
    main_write_release(&rw);  /* handed to W1 */
    CHECK(cosync_rwlock_write_locked(&rw));
    CHECK_ERR(cosync_rwlock_write_release(&rw), COSYNC_EPERM);
    CHECK(cosync_rwlock_write_locked(&rw));
    CHECK_EQ(cosync_rwlock_readers(&rw), 0); /* R2 still waits */
    CHECK_EQ(cosync_rwlock_waiters(&rw), 1);
    join_ok(t[0]);
    join_ok(t[1]);
    CHECK_EQ(a[1].got_at, AT(5)); /* after W1's hold, not beside it */
    CHECK_LOG(0, 1, 2);
    CHECK_ERR(cosync_rwlock_write_release(&rw), COSYNC_EPERM);
    CHECK_OK(cosync_rwlock_destroy(&rw));
    return 0;
}

TEST(write_release_while_handed_to_a_writer_is_eperm)
{
    CHECK_OK(run_main(write_release_during_hand_off_main, NULL));
}

/* How a waiter leaves: by cancel or by its deadline. */
enum { BY_CANCEL, BY_DEADLINE };

/* A writer at the head leaves while readers hold: the readers behind it
 * are let in at once. */
static int head_writer_leaves_main(void *arg, void **result)
{
    (void)result;
    int how = (int)(intptr_t)arg;
    t0 = cosync_now();
    reset_log();
    cosync_rwlock rw = COSYNC_RWLOCK_INIT;
    main_read(&rw);
    actor a[4] = {mk(&rw, 1, true, COSYNC_MS(1)), mk(&rw, 2, false, COSYNC_MS(1)),
                  mk(&rw, 3, false, COSYNC_MS(1)), mk(&rw, 4, true, COSYNC_MS(1))};
    if (how == BY_DEADLINE)
        a[0].deadline = AT(5);
    cosync_task t[4];
    spawn_actors(a, t, 4);
    CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_rwlock_waiters(&rw), 4);
    CHECK_EQ(cosync_rwlock_waiting_writers(&rw), 2);
    if (how == BY_CANCEL) {
        CHECK_OK(cosync_sleep(COSYNC_MS(5)));
        CHECK_OK(cosync_task_cancel(t[0]));
        /* at once: R2 and R3 hold beside main; W4 still waits */
        CHECK_EQ(cosync_rwlock_readers(&rw), 3);
        CHECK_EQ(cosync_rwlock_waiters(&rw), 1);
        CHECK_EQ(cosync_rwlock_waiting_writers(&rw), 1);
        join_expect(t[0], COSYNC_ECANCELED);
        CHECK_ERR(a[0].rc, COSYNC_ECANCELED);
    } else {
        CHECK_OK(cosync_task_join(t[0], NULL, NULL, COSYNC_FOREVER));
        CHECK_ERR(a[0].rc, COSYNC_ETIMEDOUT);
        CHECK_EQ(a[0].got_at, AT(5));
        CHECK_EQ(cosync_rwlock_readers(&rw), 3);
    }
    CHECK_OK(cosync_task_join(t[1], NULL, NULL, COSYNC_FOREVER));
    CHECK_EQ(a[1].got_at, AT(5));
    CHECK_EQ(a[2].got_at, AT(5));
    CHECK_EQ(a[1].left_at, AT(6));
    CHECK_OK(cosync_sleep(COSYNC_MS(1)));
    CHECK(!cosync_rwlock_write_locked(&rw)); /* W4 waits for main */
    main_read_release(&rw);                  /* at 7 ms */
    CHECK(cosync_rwlock_write_locked(&rw));
    join_ok(t[2]);
    join_ok(t[3]);
    CHECK_EQ(a[3].got_at, AT(7));
    CHECK_LOG(0, 2, 3, 4);
    CHECK_EQ(cosync_rwlock_waiting_writers(&rw), 0);
    return 0;
}

TEST(writer_at_the_head_cancelled_lets_the_readers_behind_in)
{
    CHECK_OK(run_main(head_writer_leaves_main, (void *)(intptr_t)BY_CANCEL));
}

TEST(writer_at_the_head_timed_out_lets_the_readers_behind_in)
{
    CHECK_OK(run_main(head_writer_leaves_main, (void *)(intptr_t)BY_DEADLINE));
}

/* Leaving at the head while a writer holds, in the middle, at the tail. */
static void leave_by(cosync_task t, actor *a, int how)
{
    if (how == BY_CANCEL) {
        CHECK_OK(cosync_task_cancel(t));
        CHECK_OK(cosync_task_join(t, NULL, NULL, COSYNC_FOREVER));
        CHECK_ERR(a->rc, COSYNC_ECANCELED);
    } else {
        CHECK_OK(cosync_task_join(t, NULL, NULL, COSYNC_FOREVER));
        CHECK_ERR(a->rc, COSYNC_ETIMEDOUT);
    }
}

static int leave_positions_main(void *arg, void **result)
{
    (void)result;
    int how = (int)(intptr_t)arg;
    t0 = cosync_now();
    cosync_rwlock rw = COSYNC_RWLOCK_INIT;

    /* head, writer holds: a reader at the head leaves; nothing else moves */
    reset_log();
    main_write(&rw);
    {
        actor a[3] = {mk(&rw, 1, false, COSYNC_MS(1)), mk(&rw, 2, false, COSYNC_MS(1)),
                      mk(&rw, 3, true, COSYNC_MS(1))};
        a[0].deadline = how == BY_DEADLINE ? AT(2) : COSYNC_FOREVER;
        cosync_task t[3];
        spawn_actors(a, t, 3);
        CHECK_OK(cosync_sleep(COSYNC_MS(1)));
        leave_by(t[0], &a[0], how);
        CHECK(cosync_rwlock_write_locked(&rw));
        CHECK_EQ(cosync_rwlock_waiters(&rw), 2);
        CHECK_OK(cosync_sleep_until(AT(3)));
        main_write_release(&rw); /* at 3 */
        join_ok(t[1]);
        join_ok(t[2]);
        CHECK_EQ(a[1].got_at, AT(3));
        CHECK_EQ(a[2].got_at, AT(4));
        CHECK_LOG(0, 2, 3);
    }

    /* middle: R1 W2 R3 behind a writer; W2 leaves: R1 and R3 are one batch */
    reset_log();
    t0 = cosync_now();
    main_write(&rw);
    {
        actor a[3] = {mk(&rw, 1, false, COSYNC_MS(1)), mk(&rw, 2, true, COSYNC_MS(1)),
                      mk(&rw, 3, false, COSYNC_MS(1))};
        a[1].deadline = how == BY_DEADLINE ? AT(2) : COSYNC_FOREVER;
        cosync_task t[3];
        spawn_actors(a, t, 3);
        CHECK_OK(cosync_sleep(COSYNC_MS(1)));
        leave_by(t[1], &a[1], how);
        CHECK_EQ(cosync_rwlock_waiting_writers(&rw), 0);
        CHECK_EQ(cosync_rwlock_waiters(&rw), 2);
        CHECK_OK(cosync_sleep_until(AT(3)));
        main_write_release(&rw);
        CHECK_EQ(cosync_rwlock_readers(&rw), 2);
        join_ok(t[0]);
        join_ok(t[2]);
        CHECK_EQ(a[0].got_at, AT(3));
        CHECK_EQ(a[2].got_at, AT(3));
        CHECK_LOG(0, 1, 3);
    }

    /* middle: W1 R2 W3 behind readers; R2 leaves: W1 then W3 */
    reset_log();
    t0 = cosync_now();
    main_read(&rw);
    {
        actor a[3] = {mk(&rw, 1, true, COSYNC_MS(1)), mk(&rw, 2, false, COSYNC_MS(1)),
                      mk(&rw, 3, true, COSYNC_MS(1))};
        a[1].deadline = how == BY_DEADLINE ? AT(2) : COSYNC_FOREVER;
        cosync_task t[3];
        spawn_actors(a, t, 3);
        CHECK_OK(cosync_sleep(COSYNC_MS(1)));
        leave_by(t[1], &a[1], how);
        CHECK_EQ(cosync_rwlock_readers(&rw), 1);
        CHECK_EQ(cosync_rwlock_waiters(&rw), 2);
        CHECK_OK(cosync_sleep_until(AT(3)));
        main_read_release(&rw);
        join_ok(t[0]);
        join_ok(t[2]);
        CHECK_EQ(a[0].got_at, AT(3));
        CHECK_EQ(a[2].got_at, AT(4));
        CHECK_LOG(0, 1, 3);
    }

    /* tail: R1 W2 behind a writer; W2 leaves: R1 alone, later */
    reset_log();
    t0 = cosync_now();
    main_write(&rw);
    {
        actor a[2] = {mk(&rw, 1, false, COSYNC_MS(1)), mk(&rw, 2, true, COSYNC_MS(1))};
        a[1].deadline = how == BY_DEADLINE ? AT(2) : COSYNC_FOREVER;
        cosync_task t[2];
        spawn_actors(a, t, 2);
        CHECK_OK(cosync_sleep(COSYNC_MS(1)));
        leave_by(t[1], &a[1], how);
        CHECK_EQ(cosync_rwlock_waiting_writers(&rw), 0);
        CHECK_EQ(cosync_rwlock_waiters(&rw), 1);
        CHECK(cosync_rwlock_write_locked(&rw));
        CHECK_OK(cosync_sleep_until(AT(3)));
        main_write_release(&rw);
        join_ok(t[0]);
        CHECK_EQ(a[0].got_at, AT(3));
        CHECK_LOG(0, 1);
        /* a tail reader leaves behind a waiting writer */
    }
    reset_log();
    t0 = cosync_now();
    main_read(&rw);
    {
        actor a[2] = {mk(&rw, 1, true, COSYNC_MS(1)), mk(&rw, 2, false, COSYNC_MS(1))};
        a[1].deadline = how == BY_DEADLINE ? AT(2) : COSYNC_FOREVER;
        cosync_task t[2];
        spawn_actors(a, t, 2);
        CHECK_OK(cosync_sleep(COSYNC_MS(1)));
        leave_by(t[1], &a[1], how);
        CHECK_EQ(cosync_rwlock_waiters(&rw), 1);
        CHECK_EQ(cosync_rwlock_readers(&rw), 1);
        CHECK_OK(cosync_sleep_until(AT(3)));
        main_read_release(&rw);
        join_ok(t[0]);
        CHECK_EQ(a[0].got_at, AT(3));
        CHECK_LOG(0, 1);
    }
    CHECK_EQ(cosync_rwlock_waiting_writers(&rw), 0);
    CHECK_OK(cosync_rwlock_destroy(&rw));
    return 0;
}

TEST(cancelled_waiters_at_head_middle_and_tail)
{
    CHECK_OK(run_main(leave_positions_main, (void *)(intptr_t)BY_CANCEL));
}

TEST(timed_out_waiters_at_head_middle_and_tail)
{
    CHECK_OK(run_main(leave_positions_main, (void *)(intptr_t)BY_DEADLINE));
}

/* A task that makes one acquire and records its outcome and time. */
typedef struct attempt {
    cosync_rwlock *rw;
    bool write;
    int64_t deadline;
    int rc;
    int64_t at;
} attempt;

static int attempt_fn(void *arg, void **result)
{
    (void)result;
    attempt *p = arg;
    p->rc = p->write ? cosync_rwlock_write_acquire(p->rw, p->deadline)
                     : cosync_rwlock_read_acquire(p->rw, p->deadline);
    p->at = cosync_now();
    if (p->rc == 0)
        CHECK_OK(p->write ? cosync_rwlock_write_release(p->rw) : cosync_rwlock_read_release(p->rw));
    return 0;
}

/* One acquire from a fresh task, whose result is returned; @at its time. */
static int try_once(cosync_rwlock *rw, bool write, int64_t deadline, int64_t *at)
{
    attempt p = {rw, write, deadline, 1, -1};
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, attempt_fn, &p, NULL));
    join_ok(t);
    if (at)
        *at = p.at;
    return p.rc;
}

static int deadlines_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_rwlock rw = COSYNC_RWLOCK_INIT;
    int64_t at;

    /* a writer holds: readers and writers wait; each waiting state ends
     * at its deadline exactly, and leaves nothing behind */
    t0 = cosync_now();
    CHECK_OK(cosync_rwlock_write_acquire(&rw, COSYNC_FOREVER));
    CHECK_ERR(try_once(&rw, false, 0, &at), COSYNC_EAGAIN);
    CHECK_EQ(at, t0);
    CHECK_ERR(try_once(&rw, true, 0, &at), COSYNC_EAGAIN);
    CHECK_ERR(try_once(&rw, false, AT(3), &at), COSYNC_ETIMEDOUT);
    CHECK_EQ(at, AT(3));
    CHECK_ERR(try_once(&rw, true, AT(5), &at), COSYNC_ETIMEDOUT);
    CHECK_EQ(at, AT(5));
    /* a deadline already passed: at once, without waiting */
    CHECK_ERR(try_once(&rw, false, AT(1), &at), COSYNC_ETIMEDOUT);
    CHECK_EQ(at, AT(5));
    CHECK_ERR(try_once(&rw, true, 1, &at), COSYNC_ETIMEDOUT);
    CHECK_EQ(cosync_rwlock_waiters(&rw), 0);
    CHECK_EQ(cosync_rwlock_waiting_writers(&rw), 0);
    CHECK_OK(cosync_rwlock_write_release(&rw));

    /* readers hold: a writer waits (and times out); try_write is EAGAIN */
    t0 = cosync_now();
    CHECK_OK(cosync_rwlock_read_acquire(&rw, COSYNC_FOREVER));
    CHECK_ERR(cosync_rwlock_try_write(&rw), COSYNC_EAGAIN);
    CHECK_ERR(try_once(&rw, true, 0, &at), COSYNC_EAGAIN);
    CHECK_ERR(try_once(&rw, true, AT(2), &at), COSYNC_ETIMEDOUT);
    CHECK_EQ(at, AT(2));
    CHECK_EQ(cosync_rwlock_waiting_writers(&rw), 0);
    /* a reader gets in at once whatever its deadline */
    CHECK_OK(try_once(&rw, false, 0, &at));
    CHECK_OK(try_once(&rw, false, 1, &at));

    /* readers hold and a writer waits: a reader waits behind it (writer
     * preference) and times out; its leaving does not disturb the writer */
    t0 = cosync_now();
    attempt w = {&rw, true, COSYNC_FOREVER, 1, -1};
    cosync_task wt;
    CHECK_OK(cosync_task_spawn(&wt, attempt_fn, &w, NULL));
    CHECK_OK(cosync_yield());
    CHECK_ERR(cosync_rwlock_try_read(&rw), COSYNC_EAGAIN);
    CHECK_ERR(try_once(&rw, false, 0, &at), COSYNC_EAGAIN);
    CHECK_ERR(try_once(&rw, false, AT(4), &at), COSYNC_ETIMEDOUT);
    CHECK_EQ(at, AT(4));
    /* a second writer behind the first times out too */
    CHECK_ERR(try_once(&rw, true, AT(6), &at), COSYNC_ETIMEDOUT);
    CHECK_EQ(at, AT(6));
    CHECK_EQ(cosync_rwlock_waiters(&rw), 1);
    CHECK_EQ(cosync_rwlock_waiting_writers(&rw), 1);
    CHECK_EQ(w.rc, 1);
    CHECK_OK(cosync_rwlock_read_release(&rw));
    join_ok(wt);
    CHECK_OK(w.rc);
    CHECK_EQ(w.at, AT(6));

    /* a deadline that is the very instant of the release: the deadline's
     * timer fires in the same step, before the releaser runs, so the wait
     * times out; the lock ends up free */
    t0 = cosync_now();
    CHECK_OK(cosync_rwlock_write_acquire(&rw, COSYNC_FOREVER));
    attempt r = {&rw, false, AT(3), 1, -1};
    cosync_task rt;
    CHECK_OK(cosync_task_spawn(&rt, attempt_fn, &r, NULL));
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_sleep_until(AT(3)));
    CHECK_OK(cosync_rwlock_write_release(&rw));
    join_ok(rt);
    CHECK_ERR(r.rc, COSYNC_ETIMEDOUT);
    CHECK_EQ(r.at, AT(3));

    /* a deadline later than the grant: the grant wins, the timer goes */
    t0 = cosync_now();
    CHECK_OK(cosync_rwlock_write_acquire(&rw, COSYNC_FOREVER));
    r = (attempt){&rw, true, AT(3), 1, -1};
    CHECK_OK(cosync_task_spawn(&rt, attempt_fn, &r, NULL));
    CHECK_OK(cosync_sleep_until(AT(2)));
    CHECK_OK(cosync_rwlock_write_release(&rw));
    join_ok(rt);
    CHECK_OK(r.rc);
    CHECK_EQ(r.at, AT(2));
    CHECK_OK(cosync_sleep(COSYNC_MS(5))); /* no stray timer wakes anything */
    CHECK(!cosync_rwlock_write_locked(&rw));
    CHECK_EQ(cosync_rwlock_readers(&rw), 0);
    CHECK_OK(cosync_rwlock_destroy(&rw));
    return 0;
}

TEST(deadline_expiry_at_every_waiting_state)
{
    CHECK_OK(run_main(deadlines_main, NULL));
}

/* A pending cancellation: an acquire that can complete at once does not
 * deliver it; one that would wait does. */
static int pending_cancel_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_rwlock rw = COSYNC_RWLOCK_INIT;
    cosync_task me = cosync_task_current();
    CHECK_OK(cosync_task_cancel(me));
    CHECK_OK(cosync_rwlock_read_acquire(&rw, COSYNC_FOREVER));
    /* the acquire that would wait suspends once: a ready task runs first */
    cosync_task other;
    CHECK_OK(cosync_task_spawn(&other, checkpoint_arg, (void *)0, NULL));
    CHECK_ERR(cosync_rwlock_write_acquire(&rw, COSYNC_FOREVER), COSYNC_ECANCELED);
    CHECKPOINT(1);
    join_ok(other);
    CHECK_EQ(cosync_rwlock_waiters(&rw), 0);
    CHECK_EQ(cosync_rwlock_waiting_writers(&rw), 0);
    CHECK_OK(cosync_rwlock_read_release(&rw));
    CHECK_EQ(cosync_task_uncancel(me), 0);
    CHECKPOINTS_DONE(2);
    return 0;
}

TEST(pending_cancellation_delivered_only_by_a_wait)
{
    CHECK_OK(run_main(pending_cancel_main, NULL));
}

/* ------------------------------------------------------------------------
 * Misuse
 * ---------------------------------------------------------------------- */

static int misuse_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_rwlock rw;
    cosync_rwlock_init(&rw);
    /* releases of what is not held: EPERM, nothing changes */
    CHECK_ERR(cosync_rwlock_read_release(&rw), COSYNC_EPERM);
    CHECK_ERR(cosync_rwlock_write_release(&rw), COSYNC_EPERM);
    CHECK_OK(cosync_rwlock_write_acquire(&rw, COSYNC_FOREVER));
    CHECK_ERR(cosync_rwlock_read_release(&rw), COSYNC_EPERM);
    CHECK(cosync_rwlock_write_locked(&rw));
    CHECK_ERR(cosync_rwlock_destroy(&rw), COSYNC_EBUSY);
    CHECK_OK(cosync_rwlock_write_release(&rw));
    CHECK_ERR(cosync_rwlock_write_release(&rw), COSYNC_EPERM);
    CHECK_OK(cosync_rwlock_read_acquire(&rw, COSYNC_FOREVER));
    CHECK_ERR(cosync_rwlock_write_release(&rw), COSYNC_EPERM);
    CHECK_EQ(cosync_rwlock_readers(&rw), 1);
    CHECK_ERR(cosync_rwlock_destroy(&rw), COSYNC_EBUSY);
    /* waited on by a writer, then held by it */
    t0 = cosync_now();
    attempt w = {&rw, true, AT(1), 1, -1};
    cosync_task wt;
    CHECK_OK(cosync_task_spawn(&wt, attempt_fn, &w, NULL));
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_rwlock_read_release(&rw));
    /* the writer was granted: held again */
    CHECK_ERR(cosync_rwlock_destroy(&rw), COSYNC_EBUSY);
    join_ok(wt);
    CHECK_OK(w.rc);
    CHECK_EQ(cosync_rwlock_readers(&rw), 0);
    CHECK(!cosync_rwlock_write_locked(&rw));
    CHECK_OK(cosync_rwlock_write_acquire(&rw, COSYNC_FOREVER));
    w = (attempt){&rw, false, AT(1), 1, -1};
    CHECK_OK(cosync_task_spawn(&wt, attempt_fn, &w, NULL));
    CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_rwlock_waiters(&rw), 1);
    CHECK_OK(cosync_rwlock_write_release(&rw));
    CHECK_ERR(cosync_rwlock_destroy(&rw), COSYNC_EBUSY); /* the reader holds */
    join_ok(wt);

    /* destroyed: every call is EINVAL; the predicates say "free" */
    CHECK_OK(cosync_rwlock_destroy(&rw));
    CHECK_ERR(cosync_rwlock_destroy(&rw), COSYNC_EINVAL);
    CHECK_ERR(cosync_rwlock_read_acquire(&rw, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_rwlock_write_acquire(&rw, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_rwlock_try_read(&rw), COSYNC_EINVAL);
    CHECK_ERR(cosync_rwlock_try_write(&rw), COSYNC_EINVAL);
    CHECK_ERR(cosync_rwlock_read_release(&rw), COSYNC_EINVAL);
    CHECK_ERR(cosync_rwlock_write_release(&rw), COSYNC_EINVAL);
    CHECK_EQ(cosync_rwlock_readers(&rw), 0);
    CHECK(!cosync_rwlock_write_locked(&rw));
    CHECK_EQ(cosync_rwlock_waiters(&rw), 0);
    /* init brings it back */
    cosync_rwlock_init(&rw);
    CHECK_OK(cosync_rwlock_try_write(&rw));
    CHECK_OK(cosync_rwlock_write_release(&rw));
    CHECK_OK(cosync_rwlock_destroy(&rw));
    return 0;
}

TEST(misuse_errors)
{
    CHECK_OK(run_main(misuse_main, NULL));
    /* outside a task: EPERM, even on a free lock */
    cosync_rwlock rw = COSYNC_RWLOCK_INIT;
    CHECK_ERR(cosync_rwlock_read_acquire(&rw, COSYNC_FOREVER), COSYNC_EPERM);
    CHECK_ERR(cosync_rwlock_write_acquire(&rw, COSYNC_FOREVER), COSYNC_EPERM);
    CHECK_ERR(cosync_rwlock_try_read(&rw), COSYNC_EPERM);
    CHECK_ERR(cosync_rwlock_try_write(&rw), COSYNC_EPERM);
    CHECK_EQ(cosync_rwlock_readers(&rw), 0);
    CHECK(!cosync_rwlock_write_locked(&rw));
    CHECK_OK(cosync_rwlock_destroy(&rw));
}

/* Bound to the loop of its waiters: from another loop meanwhile, EPERM. */
static int hold_write_forever(void *arg, void **result)
{
    (void)result;
    cosync_rwlock *rw = arg;
    CHECK_OK(cosync_rwlock_write_acquire(rw, COSYNC_FOREVER));
    return 0;
}

static int attempt_read_forever(void *arg, void **result)
{
    (void)result;
    attempt *p = arg;
    p->rc = cosync_rwlock_read_acquire(p->rw, p->deadline);
    return 0;
}

static int stopper(void *arg, void **result)
{
    (void)arg, (void)result;
    return 0;
}

TEST(bound_to_the_loop_of_its_waiters)
{
    cosync_rwlock rw = COSYNC_RWLOCK_INIT;
    cosync_loop *a = new_loop();
    cosync_loop *b = new_loop();
    cosync_task h, wa, s;
    /* loop a: a writer holds, a reader waits */
    spawn_and_run(a, &h, hold_write_forever, &rw);
    attempt pa = {&rw, false, COSYNC_FOREVER, 1, -1};
    CHECK_OK(cosync_loop_spawn(a, &wa, attempt_read_forever, &pa, NULL));
    spawn_and_run(a, &s, stopper, NULL);
    CHECK_EQ(cosync_rwlock_waiters(&rw), 1);
    /* loop b: EPERM for a reader and a writer, with any deadline */
    attempt pb = {&rw, false, COSYNC_FOREVER, 1, -1};
    cosync_task tb;
    for (int k = 0; k < 4; k++) {
        pb = (attempt){&rw, k & 1, k & 2 ? 0 : COSYNC_FOREVER, 1, -1};
        spawn_and_run(b, &tb, attempt_fn, &pb);
        CHECK_ERR(pb.rc, COSYNC_EPERM);
    }
    CHECK_EQ(cosync_rwlock_waiting_writers(&rw), 0);
    CHECK_EQ(cosync_rwlock_waiters(&rw), 1);
    /* the writer's hold is released from outside any loop: a's reader is
     * granted, and the lock is free of waiters (and of its loop) */
    CHECK_OK(cosync_rwlock_write_release(&rw));
    CHECK_OK(cosync_loop_run(a, wa, NULL, NULL));
    CHECK_OK(pa.rc);
    CHECK_EQ(cosync_rwlock_readers(&rw), 1);
    CHECK_OK(cosync_rwlock_read_release(&rw));
    /* now b may use it */
    pb = (attempt){&rw, true, COSYNC_FOREVER, 1, -1};
    spawn_and_run(b, &tb, attempt_fn, &pb);
    CHECK_OK(pb.rc);
    end_loop(a);
    end_loop(b);
    CHECK_OK(cosync_rwlock_destroy(&rw));
}

/* ------------------------------------------------------------------------
 * The seed's scenario (../bench/python/workloads.py `rwlock`, scaled down)
 * ---------------------------------------------------------------------- */

enum { SEED_READERS = 64, SEED_WRITERS = 4, SEED_R_ITERS = 100, SEED_W_ITERS = 25 };

typedef struct seed_rw {
    cosync_rwlock rw;
    long value;
    long reads;
    int max_readers_in;
} seed_rw;

static int seed_reader(void *arg, void **result)
{
    (void)result;
    seed_rw *s = arg;
    for (int i = 0; i < SEED_R_ITERS; i++) {
        CHECK_OK(cosync_rwlock_read_acquire(&s->rw, COSYNC_FOREVER));
        enter(&s->rw, false, 1);
        if (readers_in > s->max_readers_in)
            s->max_readers_in = readers_in;
        CHECK_OK(cosync_sleep(0));
        s->reads++;
        leave(false);
        CHECK_OK(cosync_rwlock_read_release(&s->rw));
        ngrants = 0; /* the log is not needed here */
    }
    return 0;
}

static int seed_writer(void *arg, void **result)
{
    (void)result;
    seed_rw *s = arg;
    for (int i = 0; i < SEED_W_ITERS; i++) {
        CHECK_OK(cosync_rwlock_write_acquire(&s->rw, COSYNC_FOREVER));
        enter(&s->rw, true, 2);
        long v = s->value;
        CHECK_OK(cosync_sleep(0)); /* a lost update without exclusion */
        s->value = v + 1;
        leave(true);
        CHECK_OK(cosync_rwlock_write_release(&s->rw));
        ngrants = 0;
    }
    return 0;
}

static int seed_main(void *arg, void **result)
{
    (void)arg, (void)result;
    reset_log();
    static seed_rw s;
    s = (seed_rw){.rw = COSYNC_RWLOCK_INIT};
    cosync_task t[SEED_READERS + SEED_WRITERS];
    for (int i = 0; i < SEED_READERS; i++)
        CHECK_OK(cosync_task_spawn(&t[i], seed_reader, &s, NULL));
    for (int i = 0; i < SEED_WRITERS; i++)
        CHECK_OK(cosync_task_spawn(&t[SEED_READERS + i], seed_writer, &s, NULL));
    CHECK_OK(cosync_gather(t, SEED_READERS + SEED_WRITERS, NULL, COSYNC_FOREVER));
    CHECK_EQ(s.value, SEED_WRITERS * SEED_W_ITERS);
    CHECK_EQ(s.reads, SEED_READERS * SEED_R_ITERS);
    CHECK_GT(s.max_readers_in, 1); /* readers did share */
    CHECK_EQ(readers_in, 0);
    CHECK_EQ(writers_in, 0);
    CHECK_OK(cosync_rwlock_destroy(&s.rw));
    return 0;
}

TEST(seed_rwlock_workload)
{
    CHECK_OK(run_main(seed_main, NULL));
}

/* The seed's own example: 5 readers read 5 times with pauses, 2 writers
 * write 3 times; every read sees a value some writer wrote (or 0). */
typedef struct seed_ex {
    cosync_rwlock rw;
    int value;
    int writes;
} seed_ex;

typedef struct seed_ex_arg {
    seed_ex *s;
    int id;
} seed_ex_arg;

static int seed_ex_reader(void *arg, void **result)
{
    (void)result;
    seed_ex_arg *a = arg;
    for (int i = 0; i < 5; i++) {
        CHECK_OK(cosync_rwlock_read_acquire(&a->s->rw, COSYNC_FOREVER));
        int v = a->s->value;
        CHECK(v == 0 || (v / 100 < 2 && v % 100 < 3));
        CHECK_OK(cosync_rwlock_read_release(&a->s->rw));
        CHECK_OK(cosync_sleep(COSYNC_MS(100 + 100 * ((a->id + i) % 5))));
    }
    return 0;
}

static int seed_ex_writer(void *arg, void **result)
{
    (void)result;
    seed_ex_arg *a = arg;
    for (int i = 0; i < 3; i++) {
        CHECK_OK(cosync_sleep(COSYNC_MS(500 + 250 * ((a->id + i) % 3))));
        CHECK_OK(cosync_rwlock_write_acquire(&a->s->rw, COSYNC_FOREVER));
        CHECK_EQ(cosync_rwlock_readers(&a->s->rw), 0);
        a->s->value = a->id * 100 + i;
        a->s->writes++;
        CHECK_OK(cosync_rwlock_write_release(&a->s->rw));
    }
    return 0;
}

static int seed_example_main(void *arg, void **result)
{
    (void)arg, (void)result;
    seed_ex s = {.rw = COSYNC_RWLOCK_INIT};
    seed_ex_arg args[7];
    cosync_task t[7];
    for (int i = 0; i < 7; i++) {
        args[i] = (seed_ex_arg){&s, i < 5 ? i : i - 5};
        CHECK_OK(cosync_task_spawn(&t[i], i < 5 ? seed_ex_reader : seed_ex_writer, &args[i], NULL));
    }
    CHECK_OK(cosync_gather(t, 7, NULL, COSYNC_FOREVER));
    CHECK_EQ(s.writes, 6);
    CHECK_OK(cosync_rwlock_destroy(&s.rw));
    return 0;
}

TEST(seed_example)
{
    CHECK_OK(run_main(seed_example_main, NULL));
}

/* ------------------------------------------------------------------------
 * The deadlock report
 * ---------------------------------------------------------------------- */

static int want_write(void *arg, void **result)
{
    (void)result;
    cosync_rwlock *rw = arg;
    CHECK_OK(cosync_rwlock_write_acquire(rw, COSYNC_FOREVER));
    CHECK_OK(cosync_rwlock_write_release(rw));
    return 0;
}

static int want_read(void *arg, void **result)
{
    (void)result;
    cosync_rwlock *rw = arg;
    CHECK_OK(cosync_rwlock_read_acquire(rw, COSYNC_FOREVER));
    CHECK_OK(cosync_rwlock_read_release(rw));
    return 0;
}

typedef struct report_case {
    cosync_rwlock rw;
    cosync_task other;
    int reads; /* held by main in held_by_readers_main */
} report_case;

static int held_by_readers_main(void *arg, void **result)
{
    (void)result;
    report_case *c = arg;
    for (int i = 0; i < c->reads; i++)
        CHECK_OK(cosync_rwlock_read_acquire(&c->rw, COSYNC_FOREVER));
    CHECK_OK(
        cosync_task_spawn(&c->other, want_write, &c->rw, &(cosync_task_opts){.name = "writer-2"}));
    join_ok(c->other); /* never: main holds the reads */
    return 0;
}

static int held_by_writer_main(void *arg, void **result)
{
    (void)result;
    report_case *c = arg;
    CHECK_OK(cosync_rwlock_write_acquire(&c->rw, COSYNC_FOREVER));
    CHECK_OK(
        cosync_task_spawn(&c->other, want_read, &c->rw, &(cosync_task_opts){.name = "reader-1"}));
    join_ok(c->other);
    return 0;
}

/* The report must say: task '@who' (#2) waits on rwlock <address> @tail; main holds
 * @reads reads, or (0) the write lock. */
static void deadlock_case(cosync_task_fn fn, const char *who, const char *tail, int reads)
{
    static report_case c;
    c = (report_case){.rw = COSYNC_RWLOCK_INIT, .reads = reads};
    capture report;
    cosync_task m;
    cosync_loop *loop = deadlock_loop(&report, fn, &c, "main", &m);
    const char *buf = report.buf;
    char expect[256];
    snprintf(expect, sizeof expect, "task '%s' (#2) waits on rwlock %p %s", who, (void *)&c.rw,
             tail);
    if (!strstr(buf, expect))
        CHECK__FAIL("the report lacks \"%s\":\n%s", expect, buf);
    CHECK(strstr(buf, "task 'main' (#1) waits on join of task") != NULL);
    /* free the lock from outside: the waiter is granted, the loop ends */
    if (!reads) {
        CHECK_OK(cosync_rwlock_write_release(&c.rw));
    } else {
        for (int i = 0; i < reads; i++)
            CHECK_OK(cosync_rwlock_read_release(&c.rw));
    }
    int st = 1;
    CHECK_OK(cosync_loop_run(loop, m, &st, NULL));
    CHECK_EQ(st, 0);
    end_loop(loop);
    capture_free(&report);
    CHECK_OK(cosync_rwlock_destroy(&c.rw));
}

/* A writer that finished without releasing: reported as finished as soon
 * as it finishes, not only once its record has been collected. */
static int write_and_finish(void *arg, void **result)
{
    (void)result;
    return cosync_rwlock_write_acquire(arg, COSYNC_FOREVER);
}

static int held_by_finished_writer_main(void *arg, void **result)
{
    (void)result;
    report_case *c = arg;
    CHECK_OK(cosync_task_spawn(&c->other, write_and_finish, &c->rw,
                               &(cosync_task_opts){.name = "writer-2"}));
    CHECK_OK(cosync_yield());
    CHECK(cosync_task_done(c->other)); /* holding the lock, not collected */
    return cosync_rwlock_read_acquire(&c->rw, COSYNC_FOREVER);
}

static void finished_writer_case(void)
{
    static report_case c;
    c = (report_case){.rw = COSYNC_RWLOCK_INIT};
    capture report;
    cosync_task m;
    cosync_loop *loop = deadlock_loop(&report, held_by_finished_writer_main, &c, "main", &m);
    char expect[256];
    snprintf(expect, sizeof expect,
             "task 'main' (#1) waits on rwlock %p held by a finished writer task (#2) (wants "
             "read)\n",
             (void *)&c.rw);
    if (!strstr(report.buf, expect))
        CHECK__FAIL("the report lacks \"%s\":\n%s", expect, report.buf);
    CHECK_OK(cosync_loop_destroy(loop)); /* cancels main's wait */
    capture_free(&report);
    CHECK(cosync_rwlock_write_locked(&c.rw));
    CHECK_EQ(cosync_rwlock_readers(&c.rw), 0);
    CHECK_EQ(cosync_rwlock_waiters(&c.rw), 0);
}

/* A writer of a loop that is gone: named without reading its record. */
static cosync_rwlock orphaned_rw = COSYNC_RWLOCK_INIT;

static int write_orphaned(void *arg, void **result)
{
    (void)arg, (void)result;
    return cosync_rwlock_write_acquire(&orphaned_rw, COSYNC_FOREVER);
}

static int read_orphaned(void *arg, void **result)
{
    (void)arg, (void)result;
    return cosync_rwlock_read_acquire(&orphaned_rw, COSYNC_FOREVER);
}

static void writer_of_a_loop_that_is_gone_case(void)
{
    CHECK_OK(cosync_run(write_orphaned, NULL)); /* main ends holding it */
    CHECK(cosync_rwlock_write_locked(&orphaned_rw));
    capture report;
    cosync_task m;
    cosync_loop *loop = deadlock_loop(&report, read_orphaned, NULL, "main", &m);
    char expect[256];
    snprintf(expect, sizeof expect,
             "task 'main' (#1) waits on rwlock %p held by a writer task of another loop (#1) "
             "(wants read)\n",
             (void *)&orphaned_rw);
    if (!strstr(report.buf, expect))
        CHECK__FAIL("the report lacks \"%s\":\n%s", expect, report.buf);
    CHECK_OK(cosync_loop_destroy(loop));
    capture_free(&report);
    CHECK_EQ(cosync_rwlock_waiters(&orphaned_rw), 0);
}

/* Main, holding reads, asks for one more after a writer queued: shared
 * holders alone would let it in, so the report says what keeps it out. */
static int read_behind_writer_main(void *arg, void **result)
{
    (void)result;
    report_case *c = arg;
    for (int i = 0; i < 3; i++)
        CHECK_OK(cosync_rwlock_read_acquire(&c->rw, COSYNC_FOREVER));
    CHECK_OK(cosync_task_spawn(&c->other, write_and_finish, &c->rw,
                               &(cosync_task_opts){.name = "writer-2"}));
    CHECK_OK(cosync_yield()); /* writer-2 queues */
    return cosync_rwlock_read_acquire(&c->rw, COSYNC_FOREVER);
}

/* Main holds the write lock; writer-2 queues, then main asks to read:
 * the holding writer keeps it out, and the report names that holder only. */
static int read_behind_held_write_main(void *arg, void **result)
{
    (void)result;
    report_case *c = arg;
    CHECK_OK(cosync_rwlock_write_acquire(&c->rw, COSYNC_FOREVER));
    CHECK_OK(cosync_task_spawn(&c->other, write_and_finish, &c->rw,
                               &(cosync_task_opts){.name = "writer-2"}));
    CHECK_OK(cosync_yield()); /* writer-2 queues */
    return cosync_rwlock_read_acquire(&c->rw, COSYNC_FOREVER);
}

static void reader_behind_a_held_write_case(void)
{
    static report_case c;
    c = (report_case){.rw = COSYNC_RWLOCK_INIT};
    capture report;
    cosync_task m;
    cosync_loop *loop = deadlock_loop(&report, read_behind_held_write_main, &c, "main", &m);
    char expect[256];
    snprintf(expect, sizeof expect,
             "task 'main' (#1) waits on rwlock %p held by writer task 'main' (#1) (wants read)\n",
             (void *)&c.rw);
    if (!strstr(report.buf, expect))
        CHECK__FAIL("the report lacks \"%s\":\n%s", expect, report.buf);
    CHECK_OK(cosync_loop_destroy(loop));
    capture_free(&report);
}

static void reader_behind_a_writer_case(void)
{
    static report_case c;
    c = (report_case){.rw = COSYNC_RWLOCK_INIT};
    capture report;
    cosync_task m;
    cosync_loop *loop = deadlock_loop(&report, read_behind_writer_main, &c, "main", &m);
    char expect[2][256];
    snprintf(expect[0], sizeof expect[0],
             "task 'main' (#1) waits on rwlock %p held by 3 readers (wants read, behind a "
             "waiting writer)\n",
             (void *)&c.rw);
    snprintf(expect[1], sizeof expect[1],
             "task 'writer-2' (#2) waits on rwlock %p held by 3 readers (wants write)\n",
             (void *)&c.rw);
    for (int i = 0; i < 2; i++)
        if (!strstr(report.buf, expect[i]))
            CHECK__FAIL("the report lacks \"%s\":\n%s", expect[i], report.buf);
    CHECK_OK(cosync_loop_destroy(loop)); /* cancels both waits */
    capture_free(&report);
    CHECK_EQ(cosync_rwlock_readers(&c.rw), 3); /* main's reads, never released */
    CHECK_EQ(cosync_rwlock_waiters(&c.rw), 0);
}

TEST(deadlock_report_names_the_holders)
{
    reader_behind_a_writer_case();
    reader_behind_a_held_write_case();
    writer_of_a_loop_that_is_gone_case();
    finished_writer_case();
    deadlock_case(held_by_readers_main, "writer-2", "held by 3 readers (wants write)\n", 3);
    deadlock_case(held_by_readers_main, "writer-2", "held by 1 reader (wants write)\n", 1);
    deadlock_case(held_by_writer_main, "reader-1", "held by writer task 'main' (#1) (wants read)\n",
                  0);
}

int main(void)
{
    RUN(readers_share);
    RUN(writer_excludes_readers_and_writers);
    RUN(writer_preference_and_no_reader_starvation);
    RUN(no_writer_starvation_under_a_stream_of_readers);
    RUN(fifo_batches_r_r_w_r_r_w);
    RUN(burst_of_100_readers_released_in_one_step);
    RUN(waiter_cancelled_after_grant_keeps_its_hold);
    RUN(write_release_while_handed_to_a_writer_is_eperm);
    RUN(writer_at_the_head_cancelled_lets_the_readers_behind_in);
    RUN(writer_at_the_head_timed_out_lets_the_readers_behind_in);
    RUN(cancelled_waiters_at_head_middle_and_tail);
    RUN(timed_out_waiters_at_head_middle_and_tail);
    RUN(deadline_expiry_at_every_waiting_state);
    RUN(pending_cancellation_delivered_only_by_a_wait);
    RUN(misuse_errors);
    RUN(bound_to_the_loop_of_its_waiters);
    RUN(seed_rwlock_workload);
    RUN(seed_example);
    RUN(deadlock_report_names_the_holders);
    return 0;
}
