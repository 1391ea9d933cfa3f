/*
 * Intrusive doubly linked lists that end in NULL (so `{0}` is empty), as the
 * caller-embedded structs need for their static initialisers.
 */
#ifndef COSYNC_LIST_H
#define COSYNC_LIST_H

#include <stdbool.h>
#include <stddef.h>

#include "cosync/base.h"

#define cosync__container_of(ptr, type, member)                                                    \
    ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

static inline bool cosync__list_empty(const cosync__list *l)
{
    return l->head == NULL;
}

static inline void cosync__list_push_back(cosync__list *l, cosync__node *n)
{
    n->next = NULL;
    n->prev = l->tail;
    if (l->tail)
        l->tail->next = n;
    else
        l->head = n;
    l->tail = n;
}

static inline void cosync__list_remove(cosync__list *l, cosync__node *n)
{
    if (n->prev)
        n->prev->next = n->next;
    else
        l->head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        l->tail = n->prev;
    n->next = n->prev = NULL;
}

static inline cosync__node *cosync__list_pop_front(cosync__list *l)
{
    cosync__node *n = l->head;
    if (n)
        cosync__list_remove(l, n);
    return n;
}

#endif /* COSYNC_LIST_H */
