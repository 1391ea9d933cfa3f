/*
 * A circuit breaker: closed, open, half-open, as the seed's
 * CircuitBreaker and the usual libraries (pybreaker, resilience4j) have
 * it, with the two decisions the seed leaves open made strictly: one
 * trial call at a time while half-open, and the outcome of a call that
 * entered in an earlier state ignored (its ticket is that state's era).
 * Nothing waits: a breaker never suspends; the calls it lets through do.
 */
#include "core.h"

static bool valid(const cosync_breaker *b)
{
    return b && !b->dead && b->threshold >= 1 && b->reset_timeout >= 0;
}

static void change(cosync_breaker *b, uint8_t state)
{
    b->state = state;
    b->era++;
    b->trial = false;
    b->failures = 0;
}

static void open_now(cosync_breaker *b)
{
    change(b, COSYNC_BREAKER_OPEN);
    b->opened_at = cosync_now();
}

/* An open breaker whose reset timeout has passed is half-open. A clock
 * behind the opening (another loop's, or the monotonic clock outside any
 * loop) counts the timeout afresh from now. */
static void catch_up(cosync_breaker *b)
{
    if (b->state != COSYNC_BREAKER_OPEN)
        return;
    int64_t now = cosync_now();
    if (now < b->opened_at)
        b->opened_at = now;
    if (now - b->opened_at >= b->reset_timeout)
        change(b, COSYNC_BREAKER_HALF_OPEN);
}

int cosync_breaker_init(cosync_breaker *b, int64_t threshold, int64_t reset_timeout)
{
    if (!b)
        return COSYNC_EINVAL;
    *b = (cosync_breaker)COSYNC_BREAKER_INIT(threshold, reset_timeout);
    return valid(b) ? 0 : COSYNC_EINVAL;
}

int cosync_breaker_enter(cosync_breaker *b, uint64_t *ticket)
{
    if (!valid(b) || !ticket)
        return COSYNC_EINVAL;
    catch_up(b);
    if (b->state == COSYNC_BREAKER_OPEN || (b->state == COSYNC_BREAKER_HALF_OPEN && b->trial))
        return COSYNC_EOPEN;
    if (b->state == COSYNC_BREAKER_HALF_OPEN)
        b->trial = true;
    *ticket = b->era;
    return 0;
}

int cosync_breaker_leave(cosync_breaker *b, uint64_t ticket, int status)
{
    if (!valid(b))
        return COSYNC_EINVAL;
    if (ticket != b->era)
        return 0; /* entered in another state: it decides nothing now */
    if (status == COSYNC_ECANCELED) {
        b->trial = false; /* says nothing of the service: the next call tries */
        return 0;
    }
    if (b->state == COSYNC_BREAKER_HALF_OPEN) {
        if (status < 0)
            open_now(b);
        else
            change(b, COSYNC_BREAKER_CLOSED);
    } else if (status >= 0) {
        b->failures = 0;
    } else if (++b->failures >= b->threshold) {
        open_now(b);
    }
    return 0;
}

int cosync_breaker_call(cosync_breaker *b, cosync_task_fn fn, void *arg, void **result)
{
    if (!fn)
        return COSYNC_EINVAL;
    uint64_t ticket;
    int rc = cosync_breaker_enter(b, &ticket);
    if (rc)
        return rc;
    void *ignored = NULL;
    rc = fn(arg, result ? result : &ignored);
    cosync_breaker_leave(b, ticket, rc);
    return rc;
}

int cosync_breaker_get_state(cosync_breaker *b)
{
    if (!valid(b))
        return COSYNC_EINVAL;
    catch_up(b);
    return b->state;
}

int64_t cosync_breaker_failures(const cosync_breaker *b)
{
    return b->failures;
}

int cosync_breaker_reset(cosync_breaker *b)
{
    if (!valid(b))
        return COSYNC_EINVAL;
    change(b, COSYNC_BREAKER_CLOSED);
    return 0;
}

int cosync_breaker_destroy(cosync_breaker *b)
{
    if (!b || b->dead)
        return COSYNC_EINVAL;
    b->dead = 1;
    return 0;
}
