#include "timer.h"

#include <time.h>

int64_t cosync__clock_monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static bool before(const cosync__timer *a, const cosync__timer *b)
{
    return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

/* Meld two heap roots (both with no siblings) into one. */
static cosync__timer *meld(cosync__timer *a, cosync__timer *b)
{
    if (!a)
        return b;
    if (!b)
        return a;
    if (before(b, a)) {
        cosync__timer *t = a;
        a = b;
        b = t;
    }
    /* b becomes a's first child */
    b->prev = a;
    b->next = a->child;
    if (a->child)
        a->child->prev = b;
    a->child = b;
    a->next = a->prev = NULL;
    return a;
}

/* The standard two-pass pairing of a sibling list into one heap. */
static cosync__timer *merge_pairs(cosync__timer *first)
{
    cosync__timer *paired = NULL; /* the pairs, linked in reverse through next */
    while (first) {
        cosync__timer *a = first, *b = first->next;
        if (!b) {
            a->next = a->prev = NULL;
            a->next = paired;
            paired = a;
            break;
        }
        first = b->next;
        a->next = a->prev = NULL;
        b->next = b->prev = NULL;
        a = meld(a, b);
        a->next = paired;
        paired = a;
    }
    cosync__timer *root = NULL;
    while (paired) {
        cosync__timer *next = paired->next;
        paired->next = NULL;
        root = meld(root, paired);
        paired = next;
    }
    return root;
}

void cosync__timer_arm(cosync__timer_heap *h, cosync__timer *t, int64_t when)
{
    if (cosync__timer_armed(t))
        cosync__timer_disarm(h, t);
    t->when = when;
    t->seq = h->seq++;
    t->child = t->next = t->prev = NULL;
    h->root = meld(h->root, t);
    h->count++;
}

void cosync__timer_disarm(cosync__timer_heap *h, cosync__timer *t)
{
    if (!cosync__timer_armed(t))
        return;
    if (t == h->root) {
        h->root = merge_pairs(t->child);
    } else {
        /* cut t's subtree out of its sibling list, then meld its children back */
        if (t->prev->child == t)
            t->prev->child = t->next;
        else
            t->prev->next = t->next;
        if (t->next)
            t->next->prev = t->prev;
        h->root = meld(h->root, merge_pairs(t->child));
    }
    t->child = t->next = t->prev = NULL;
    t->when = COSYNC_FOREVER;
    h->count--;
}

size_t cosync__timer_run(cosync__timer_heap *h, int64_t now)
{
    size_t fired = 0;
    while (h->root && h->root->when <= now) {
        cosync__timer *t = h->root;
        cosync__timer_disarm(h, t);
        t->fire(t);
        fired++;
    }
    return fired;
}
