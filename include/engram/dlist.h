/* dlist.h -- an intrusive doubly linked list: a node lives inside the
 * object it links, so linking allocates nothing and unlinking any member is
 * O(1), wherever it is in the list.
 *
 * The list is circular around a sentinel (the dlist itself): empty when the
 * sentinel points to itself.  A node that is on no list has next == NULL
 * (zero-initialised memory is an unlinked node), so "is it queued?" needs
 * no flag of its own, and unlinking an unlinked node is a no-op.
 *
 * Not thread-safe: the owner of the list serialises access. */
#ifndef ENGRAM_DLIST_H
#define ENGRAM_DLIST_H

#include <stddef.h>

typedef struct dlist_node {
    struct dlist_node *prev, *next;
} dlist_node;

typedef struct dlist {
    dlist_node head;        /* sentinel */
} dlist;

/* The object that contains node, as container_of. */
#define DLIST_ENTRY(node, type, member) ((type *)(void *)((char *)(node) - offsetof(type, member)))

static inline void dlist_init(dlist *l) { l->head.prev = l->head.next = &l->head; }
static inline int dlist_empty(const dlist *l) { return l->head.next == &l->head; }
static inline int dlist_linked(const dlist_node *n) { return n->next != NULL; }

/* Append n (not on any list) at the tail. */
static inline void dlist_push(dlist *l, dlist_node *n)
{
    n->prev = l->head.prev;
    n->next = &l->head;
    l->head.prev->next = n;
    l->head.prev = n;
}

/* Take n off its list; nothing if it is on none. */
static inline void dlist_remove(dlist_node *n)
{
    if (!n->next) return;
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = NULL;
}

/* The first node, or NULL when empty. */
static inline dlist_node *dlist_first(const dlist *l)
{
    return l->head.next == &l->head ? NULL : l->head.next;
}

/* The node after n on l, or NULL at the end. */
static inline dlist_node *dlist_next(const dlist *l, const dlist_node *n)
{
    return n->next == &l->head ? NULL : n->next;
}

#endif
