/*
 * track_impl.h -- the tracker's private state, shared by track.c (front end) and its two
 * backends, track_sigsegv.c and track_uffd.c. Never included elsewhere: other modules use
 * track.h. Tracking layer (docs/design.md §2): the backends sit below track.c; they call
 * view.c, map.c and os.c, and reach the front end only through the `fault` hook it
 * stores in each struct arena__track.
 */
#ifndef ARENA_TRACK_IMPL_H
#define ARENA_TRACK_IMPL_H

#include "track.h"
#include "view.h"

/* One tracked view.
 *
 * `open` has a bit per slot: the page was touched since the last take and is waiting to be
 * reported. With libsigsegv a set bit also means the page is unprotected (open to the
 * mutator); a clear bit on a mapped slot means it is protected (armed). With userfaultfd the
 * kernel keeps the written state in its page tables and `open` only holds pages touched by
 * other means (new contents, moves, prepare_io).
 *
 * Slots are grouped in 2^group_shift slots (at least 64: one bitmap word). A group has a
 * spin lock byte: the fault handler, take and prepare_io change the bits and protection of a
 * group only while holding it, so a page is never re-armed while a fault on it is being
 * handled. The handler never waits for it: a busy group makes it return and the faulting
 * instruction simply faults again. */
struct arena__track {
    arena_view_t *view;
    int what;                 /* ARENA_TRACK_WRITES | ARENA_TRACK_ACCESS */
    int backend;              /* ARENA_TRACKER_SIGSEGV or ARENA_TRACKER_UFFD */
    char *base;
    size_t nslots;
    size_t page;              /* arena page in bytes */
    unsigned shift;           /* log2(page) */
    _Atomic uint64_t *open;   /* bit per slot */
    uint32_t *shown;          /* the view's slot records (arena__view_snapshot) as last armed */
    uint8_t *shown_prot;      /* and its per-slot protection records, .req.track.slot-protection */
    size_t nwords;
    uint64_t *carried;        /* touched, but armed: a move the kernel would not open (.req.track.moves) */
    _Atomic unsigned char *lock; /* per group */
    _Atomic unsigned group_shift; /* grows with the slots in use (regroup) */
    size_t nlocks;            /* one per group of the smallest size */
    size_t coarse_room;       /* mappings coarse mode may use: 2 per group in use */
    _Atomic size_t splits;    /* upper bound of the mappings the protection split adds */
    size_t fine_limit;        /* past this many splits, a fault opens its whole group */
    _Atomic int coarse;
    /* ARENA_TRACK_OLD: the old slots, recomputed at each take and peek (scope_refresh);
     * NULL when it could not be allocated (then every slot counts: conservative). */
    uint64_t *scope;
    size_t scope_words;
    /* The front end's fault handler (track.c), usable from a signal handler. 1: the fault
     * at addr was ours and the page is now open; 0: ours, but there was nothing to open
     * (already open, or the slot shows nothing); -1: its group is busy, let the
     * instruction fault again. */
    int (*fault)(struct arena__track *t, void *addr);
    /* userfaultfd backend */
    int uffd;
    int pagemap;              /* /proc/self/pagemap of the process that armed the view */
};

static inline bool arena__track_slot_mapped(const struct arena__track *t, size_t slot)
{
    return arena__view_page(t->view, slot) != ARENA_NO_PAGE;
}

/* track_sigsegv.c: the handler finds t through the view registry (arena__view_visit). */
int arena__tsig_attach(struct arena__track *t);   /* install the handler, publish t in its view (before protecting) */
void arena__tsig_detach(struct arena__track *t);  /* withdraw t from its view; waits for handlers in flight */

/* track_uffd.c */
bool arena__tuffd_available(void);
int arena__tuffd_attach(struct arena__track *t);  /* create the context, register the range */
void arena__tuffd_detach(struct arena__track *t);
/* (Re)register and write-protect slots [slot, slot+n). */
int arena__tuffd_arm(struct arena__track *t, size_t slot, size_t n);
/* Collect up to max written pages into pages[] and write-protect them again; *count. */
int arena__tuffd_scan(struct arena__track *t, void **pages, size_t max, size_t *count);
/* As arena__tuffd_scan, but only over the slots set in scope (words of bits from slot 0):
 * the others stay written (unprotected) and unreported. */
int arena__tuffd_scan_kept(struct arena__track *t, void **pages, size_t max, size_t *count,
                           const uint64_t *scope, size_t words);
/* Set bit i of bits when slot+i was written since it was last armed (no state change). */
int arena__tuffd_written(struct arena__track *t, size_t slot, size_t n, uint64_t *bits);
/* Set bit s of bits (indexed from slot 0) for every slot set in scope that was written
 * since it was last armed (no state change). */
int arena__tuffd_written_kept(struct arena__track *t, uint64_t *bits, const uint64_t *scope,
                              size_t words);

#endif /* ARENA_TRACK_IMPL_H */
