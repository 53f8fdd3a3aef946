/*
 * collect.c -- marking, pinning and forwarding (docs/design.md §7).
 */
#include "heap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* An object evacuated out of a sparse page (R7.4): its old and new offsets in the heap
 * view. Appended in old-address order, so the table is sorted for binary search. */
struct evac_entry {
    size_t old_off, new_off, size;
};

/* Forwarding of the last collection (R7.6), valid until the next one. */
struct arena__gc {
    uint32_t *page_fwd;      /* per old slot: new slot, FWD_DEAD or FWD_EVAC */
    size_t nslots;           /* slots covered by page_fwd */
    struct evac_entry *evac; /* objects moved one by one */
    size_t nevac, evac_cap;
};

#define FWD_DEAD UINT32_MAX
#define FWD_EVAC (UINT32_MAX - 1)

void arena__gc_fini(arena_t *a)
{
    struct arena__gc *gc = a->gc;
    if (gc == NULL)
        return;
    free(gc->page_fwd);
    free(gc->evac);
    free(gc);
    a->gc = NULL;
}

/* ------------------------------------------------------------------ marking -- */

static int mark(arena_t *a, const void *p, bool pin)
{
    if (a == NULL || p == NULL)
        return ARENA_ENULL;
    if (arena__broken(a))
        return arena__broken(a);
    if (arena__heap_slot(a, p) == (size_t)-1)
        return ARENA_EFOREIGN;
    size_t slot;
    char *obj = arena__heap_find(a, p, &slot);
    if (obj == NULL)
        return ARENA_ENOTOBJ;
    struct arena__heap *h = a->heap;
    struct arena__page *pg = &h->pages[slot];
    size_t bit = (size_t)(obj - a->heap_view->base) / ARENA__GRANULE;
    size_t npages = pg->kind == ARENA__PAGE_LARGE_HEAD ? pg->aux : 1;
    if (!arena__bit_get(h->marks, bit)) {
        arena__bit_set(h->marks, bit);
        size_t size = arena__heap_size_at(a, slot, obj);
        /* A large object's pages are full by definition: never sparse (R7.4). */
        pg->live += npages > 1 ? (uint32_t)a->page_size : (uint32_t)size;
        for (size_t i = 1; i < npages; i++)
            h->pages[slot + i].live = (uint32_t)a->page_size;
    }
    if (pin)
        for (size_t i = 0; i < npages; i++)
            h->pages[slot + i].pinned = 1;
    return 0;
}

int arena_mark(arena_t *a, const void *p)
{
    return mark(a, p, false);
}

int arena_pin(arena_t *a, const void *p)
{
    return mark(a, p, true);
}

/* --------------------------------------------------------------- forwarding -- */

static const struct evac_entry *evac_find(const struct arena__gc *gc, size_t off)
{
    size_t lo = 0, hi = gc->nevac;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (gc->evac[mid].old_off <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return NULL;
    const struct evac_entry *e = &gc->evac[lo - 1];
    return off - e->old_off < e->size ? e : NULL;
}

void *arena_forward(const arena_t *a, const void *old)
{
    if (a == NULL || old == NULL || a->heap == NULL)
        return (void *)old;
    size_t slot = arena__heap_slot(a, old);
    if (slot == (size_t)-1)
        return (void *)old;
    const struct arena__gc *gc = a->gc;
    if (gc == NULL)
        return arena__heap_find(a, old, NULL) != NULL ? (void *)old : NULL;
    if (slot >= gc->nslots || gc->page_fwd[slot] == FWD_DEAD)
        return NULL;
    size_t off = (size_t)((const char *)old - a->heap_view->base);
    char *now;
    if (gc->page_fwd[slot] == FWD_EVAC) {
        const struct evac_entry *e = evac_find(gc, off);
        if (e == NULL)
            return NULL;
        now = a->heap_view->base + e->new_off + (off - e->old_off);
    } else {
        size_t in_page = off & (a->page_size - 1);
        now = arena__view_slot_addr(a->heap_view, gc->page_fwd[slot]) + in_page;
    }
    /* The page survived, but the object p pointed into may have died in it. */
    return arena__heap_find(a, now, NULL) != NULL ? now : NULL;
}
