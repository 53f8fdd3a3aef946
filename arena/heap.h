/*
 * heap.h -- the heap (heap.c: allocation, object lookup, marking). Never installed.
 * Layer 5 (docs/design.md §2): calls view.c, map.c, backing.c and os.c.
 * The struct is shared with collect.c, the one layer above that compacts it; nothing
 * else includes this header but arena.c for the life-cycle entries.
 * Design and requirements: docs/design.md §6 (heap) and §7 (collection).
 */
#ifndef ARENA_HEAP_H
#define ARENA_HEAP_H

#include "view.h"

/* What a heap slot holds (struct arena__page.kind). */
enum arena__page_kind {
    ARENA__PAGE_FREE = 0,   /* nothing: the slot shows no file page (zero = untouched memory) */
    ARENA__PAGE_POOL,       /* mapped and reserved for allocation, no object yet */
    ARENA__PAGE_SMALL,      /* objects no larger than a page, bump allocated */
    ARENA__PAGE_LARGE_HEAD, /* first page of a large object; aux = its page count */
    ARENA__PAGE_LARGE_TAIL, /* a later page of a large object; aux = distance to the head */
};

/* A FREE slot that still shows a file page: during a collection dead and
 * vacated slots are unmapped only at the end, in runs, so holes do not split the heap
 * into more mappings than the budget allows while pages slide (.req.collect.release-retains). */
#define ARENA__PAGE_STALE 1u
/* A FREE slot that still shows its file page, which stays allocated and resident: a
 * retained page (.req.heap.retain-pages). The allocator and the collector reuse it without a system call
 * (clearing it with memset when it must read as zero); arena__heap_trim releases it. */
#define ARENA__PAGE_RETAINED 2u
/* Only during a collection: a slot above the sweep that evacuation filled (collect.c). */
#define ARENA__PAGE_EVAC_TARGET 4u
/* The slot's objects survived a collection (either collector): an ARENA_TRACE_YOUNG
 * collection neither traces nor frees them. Pages taken for allocation start without. */
#define ARENA__PAGE_OLD 8u
/* Less than cfg.sparse_percent live at the end of the last one-pass collection that
 * traced it: the next full one evacuates it (trace.c). */
#define ARENA__PAGE_SPARSE 16u
/* During a one-pass collection only (trace.c): objects here die unless reached, and on
 * an EVAC page the ones reached are copied out. */
#define ARENA__PAGE_CONDEMNED 32u
#define ARENA__PAGE_EVAC 64u
/* A SMALL slot whose file page another slot shows too (mesh.c, .req.mesh.what): it never moves,
 * and when its objects die it is unmapped, not retained. A one-pass collection (trace.c)
 * traces and sweeps it in place but never evacuates or releases it: arena_collect does. */
#define ARENA__PAGE_MESHED 128u
/* A RETAINED slot whose start and end bitmap words still hold the bits of the objects that
 * died on it (.req.trace.lazy-sweep): a one-pass collection leaves them, and heap.c clears
 * them when the slot is taken again, released, or before arena_collect (which writes
 * object bits into retained slots). Nothing reads a FREE slot's bitmaps in between. */
#define ARENA__PAGE_UNSWEPT 256u
/* During a one-pass collection only (trace.c): a condemned page an object was copied out
 * of. Only such a page has marks and forwarding bits when nothing is kept in place on it,
 * so the sweep clears the bitmap words of these pages and of no other dead page
 * (.req.trace.lazy-sweep). */
#define ARENA__PAGE_MOVED 512u

/* Per-slot page information (.req.heap.page-info). Written under a->lock or stop-the-world; kind and
 * aux are read lock-free by arena_object, hence the atomic accessors in heap.c. */
struct arena__page {
    uint8_t kind;
    uint8_t pinned;         /* holds an object pinned for the next collection */
    uint16_t flags;         /* ARENA__PAGE_* bits above */
    uint32_t aux;
    uint32_t live;          /* marked bytes since the last collection */
    uint32_t file_page;     /* the file page the slot shows when not FREE */
};

/* A range of free slots below the top, left by pins and alignment gaps. */
struct arena__hole {
    size_t slot, n;
};

struct arena__heap {
    bool collecting;             /* arena_collect or arena_trace_collect runs: it may use the collector's reserve (.req.collect.full-file-no-jam) */
    bool take_lazy;              /* arena__heap_take_some runs: fresh pages are not populated */
    char *base;                  /* the heap view's slot 0 (arena__view_base), never moves */
    size_t nslots;               /* slots in the heap view */
    size_t granules;             /* granules per page */
    size_t words;                /* bitmap words per page (granules / 64) */
    struct arena__page *pages;   /* nslots entries, lazily committed */
    uint64_t *starts;            /* bit per granule: an object starts here */
    uint64_t *ends;              /* bit per granule: an object ends in this granule */
    uint64_t *marks;             /* bit per granule: the object starting here is marked */
    uint64_t *moved;             /* bit per granule: the object starting here was copied by the
                                    running one-pass collection (trace.c, .req.trace.fix-copies);
                                    all zero between collections */
    size_t table_bytes[5];       /* mapping lengths of the five tables above */
    size_t tables_top;           /* the highest slot whose mark and forwarding table pages were
                                    populated, plus one (heap.c's tables_cover) */
    _Atomic uint64_t epoch;      /* bumped by every collection: thread caches go stale */
    size_t top;                  /* every slot >= top is FREE */
    size_t used_pages;           /* slots that are not FREE */
    size_t pool_slot, pool_n;    /* the current chunk's slots not yet handed out */
    bool pool_dirty;             /* the pool's pages were retained: clear before handing out */
    size_t chunk_pages;          /* size of the next chunk */
    struct arena__hole *holes;   /* unmapped free ranges below top, low to high */
    size_t nholes, holes_cap;
    struct arena__hole *kept;    /* runs of RETAINED slots, low to high (.req.heap.retain-pages) */
    size_t nkept, kept_cap;
    size_t retained_pages;       /* RETAINED slots */
    size_t reserve_pages;        /* retained slots the mutator leaves (and tops up) for the next
                                    collection's to-space (.req.trace.to-space-reserve) */
    size_t unswept;              /* UNSWEPT slots (all of them RETAINED) */
    uint32_t *parked;            /* file pages allocated and resident but shown by no slot
                                    (displaced by a move in a collection): retained too */
    size_t nparked, parked_cap;
    uint64_t surplus_since;      /* when the retained pages last rose above the kept amount, 0 = not above */
    uint32_t *recycle;           /* pinned pages with free granules, low to high: the allocator
                                    bumps through their gaps (.req.heap.recycle-pinned) */
    uint64_t *recycle_old;       /* per listed page, its object-start words when listed (words
                                    each): the objects that survived; a start not in them is an
                                    object allocated into the page since (trace.c's young mode) */
    size_t nrecycle, recycle_cap, recycle_next; /* next = the first page no thread claimed yet */
    uint64_t recycle_epoch;      /* the epoch the list belongs to: any later collection voids it */
    bool one_pass;               /* arena_trace_collect ran on this heap: no recycling (its young
                                    mode would take objects put into old pages for old ones) */
    _Atomic uint64_t shuffle_streams; /* threads that took shuffle state (.req.heap.shuffle): each its own random stream */
    size_t live_bytes;           /* after the last collection */
    size_t allocated_bytes;      /* handed out since the last collection, plus live; written under
                                    the lock, read lock-free (arena_allocated_bytes): atomic access */
};

int arena__heap_init(arena_t *a);
void arena__heap_fini(arena_t *a);   /* frees the heap's tables; the heap view dies with the views */
/* arena_stats' heap fields: heap_pages, live_bytes, allocated_bytes (a->lock held). */
void arena__heap_stats(const arena_t *a, arena_stats_t *s);
/* fork.c's hook (struct arena__fork_hooks.heap): bump the epoch, so the thread caches of
 * threads that do not exist in the child go stale. */
void arena__heap_forked(arena_t *a);
/* The tracker's ARENA_TRACK_OLD hook (track.h): set bit s of bits (zeroed by the caller,
 * slots [0, end)) when slot s holds objects (small, or part of a large one) that survived
 * a collection. a->lock held. */
void arena__heap_old_slots(const arena_t *a, size_t end, uint64_t *bits);

static inline struct arena__page *arena__page_at(const arena_t *a, size_t slot)
{
    return &a->heap->pages[slot];
}

/* heap.c entry points for collect.c (a->lock held or stop-the-world). */
/* The slot of p in the heap view, or (size_t)-1 when p is outside it. */
size_t arena__heap_slot(const arena_t *a, const void *p);
/* The start of the live object containing p, or NULL; *slot_out gets its first slot. */
char *arena__heap_find(const arena_t *a, const void *p, size_t *slot_out);
/* Usable size of the object starting at obj in slot. */
size_t arena__heap_size_at(const arena_t *a, size_t slot, const char *obj);
/* Take n consecutive FREE slots showing file pages, kind set to kind: retained slots when a
 * run is long enough and use_kept (then *dirty = true: the pages hold old bytes), else fresh
 * slots showing n fresh consecutive file pages (*dirty = false). dirty may be NULL. */
int arena__heap_take(arena_t *a, size_t n, int kind, bool use_kept, size_t *slot_out, bool *dirty);
/* Between 1 and n consecutive slots (*got), kind set to kind: the first retained run
 * (its pages hold old bytes), else fresh slots (trace.c's to-space). Fresh or parked pages are
 * mapped without populating their page tables: inside the pause the to-space faults in only
 * the pages it fills, and the rest fault in when the allocator uses them. */
int arena__heap_take_some(arena_t *a, size_t n, int kind, size_t *slot_out, size_t *got);
/* Mark slots FREE and RETAINED: they keep showing their file pages (collect.c). */
void arena__heap_retain(arena_t *a, size_t slot, size_t n);
/* The same for POOL slots, which never held an object since they were taken: their bitmaps
 * are clear already (trace.c's unused to-space). */
void arena__heap_retain_pool(arena_t *a, size_t slot, size_t n);

/* File pages no slot shows any more, kept allocated for the trim (collect.c, after a move
 * displaced retained slots). On ENOMEM the caller punches them itself. */
int arena__heap_park(arena_t *a, const size_t *fp, size_t n);
/* Give back n file pages from fp; where the punch is refused they are parked (reused by the
 * next fresh slots, released by a later trim) instead of staying allocated to nothing.
 * Returns the punch's error, 0 else. */
int arena__heap_free_file(arena_t *a, size_t fp, size_t n);
/* Release retained pages (parked file pages first, then RETAINED slots from the top down)
 * until at most keep_pages stay retained; *released gets the count. a->lock held. */
int arena__heap_trim(arena_t *a, size_t keep_pages, size_t *released);
/* .req.collect.full-file-no-jam: file pages the mutator leaves free under the file's cap for the collector, and after
 * a collection the retained pages released until that many are free again. */
size_t arena__heap_collector_reserve(const arena_t *a);
int arena__heap_restore_reserve(arena_t *a);
/* Retained pages kept without delay / at most after a collection (cfg.retain_*, defaults). */
size_t arena__heap_retain_soft(const arena_t *a);
size_t arena__heap_retain_hard(const arena_t *a);
/* Called when the pool refills (release) and after a collection (only starts the clock):
 * releases the surplus above the soft amount once it has lasted cfg.retain_delay_ms (.req.heap.retain-pages). */
int arena__heap_purge_due(arena_t *a, uint64_t now, bool release);
/* Mark slots FREE and STALE: unmapped by arena__heap_unmap_stale at the end of the
 * collection, their file pages left to the caller (mesh.c: dead meshed slots). */
void arena__heap_discard(arena_t *a, size_t slot, size_t n);
/* Unmap every run of STALE slots below limit. */
int arena__heap_unmap_stale(arena_t *a, size_t limit);
/* The unused part of the allocation pool becomes retained (collect.c, before it moves pages),
 * and every UNSWEPT slot is swept: arena_collect evacuates into retained slots and moves
 * their bitmap words. */
void arena__heap_drop_pool(arena_t *a);
/* The same without sweeping the UNSWEPT slots (trace.c: they stay unswept, .req.trace.lazy-sweep). */
void arena__heap_retire_pool(arena_t *a);
/* As arena__heap_retire_pool, and the slots join the retained runs at once: the one-pass
 * collection that follows takes its first to-space from them (.req.trace.to-space-reserve). */
void arena__heap_retire_pool_listed(arena_t *a);
/* .req.heap.recycle-pinned: arena_collect lists the pinned pages whose gaps the allocator may
 * fill until the next collection: begin (the list is emptied and stamped with the heap's
 * epoch), then add each pinned small page (the sparse ones are kept). No memory for the list
 * only means fewer pages are recycled. */
void arena__heap_recycle_begin(arena_t *a);
void arena__heap_recycle_add(arena_t *a, size_t slot);
/* The listed pages a thread claimed since the list was made (whatever the epoch did since,
 * fork included): the objects put into their gaps are young in old pages. *old gets the
 * start words each page had when listed (words per page, in list order). */
size_t arena__heap_recycle_claimed(const arena_t *a, const uint32_t **slots, const uint64_t **old);
/* .req.trace.to-space-reserve: after a one-pass collection that used to_pages to-space pages,
 * the retained pages the allocator keeps resident and mapped for the next one's to-space. */
void arena__heap_set_reserve(arena_t *a, size_t to_pages);
/* Recompute top, the holes and the retained runs after a collection. */
int arena__heap_rebuild_free(arena_t *a);
/* The first set bit in [bit, limit), or (size_t)-1. */
size_t arena__bit_next(const uint64_t *map, size_t bit, size_t limit);
/* Bitmap helpers, bit index = slot * granules + granule. */
static inline bool arena__bit_get(const uint64_t *map, size_t bit)
{
    return (__atomic_load_n(&map[bit >> 6], __ATOMIC_RELAXED) >> (bit & 63)) & 1;
}
/* Only the thread owning the page (or the collector) writes its words: no lock needed,
 * but relaxed atomics keep concurrent readers (arena_object) defined. */
static inline void arena__bit_set(uint64_t *map, size_t bit)
{
    uint64_t w = __atomic_load_n(&map[bit >> 6], __ATOMIC_RELAXED);
    __atomic_store_n(&map[bit >> 6], w | (uint64_t)1 << (bit & 63), __ATOMIC_RELAXED);
}
static inline void arena__bit_clear(uint64_t *map, size_t bit)
{
    uint64_t w = __atomic_load_n(&map[bit >> 6], __ATOMIC_RELAXED);
    __atomic_store_n(&map[bit >> 6], w & ~((uint64_t)1 << (bit & 63)), __ATOMIC_RELAXED);
}

/* The sweep of one small page (.req.collect.sweep), for both collectors: every unmarked
 * object's start and end bits are cleared, and the page's marks. Returns the objects freed;
 * *live (may be NULL) gets the marked ones added. Always inlined: the one-pass collector
 * compiles its sweep twice (with and without popcnt). */
static inline __attribute__((always_inline)) size_t arena__heap_sweep_page(struct arena__heap *h, size_t slot,
                                                                            size_t *live)
{
    size_t first = slot * h->words, limit = (slot + 1) * h->granules, freed = 0;
    for (size_t w = first; w < first + h->words; w++) {
        uint64_t dead = h->starts[w] & ~h->marks[w];
        if (live != NULL)
            *live += (size_t)__builtin_popcountll(h->starts[w] & h->marks[w]);
        while (dead != 0) {
            size_t bit = w * 64 + (size_t)__builtin_ctzll(dead);
            dead &= dead - 1;
            size_t end = arena__bit_next(h->ends, bit, limit);
            arena__bit_clear(h->starts, bit);
            if (end != (size_t)-1)
                arena__bit_clear(h->ends, end);
            freed++;
        }
        h->marks[w] = 0;
    }
    return freed;
}

/* As arena__heap_retain, but the slots' start and end bits are left for heap.c to clear when
 * the slots are used again (ARENA__PAGE_UNSWEPT, .req.trace.lazy-sweep): the caller has cleared
 * their marks (trace.c's sweep). Returns the objects the slots' start bits name. Always
 * inlined, as arena__heap_sweep_page (the one-pass sweep is compiled with popcnt). */
static inline __attribute__((always_inline)) size_t arena__heap_retain_unswept(struct arena__heap *h, size_t slot,
                                                                               size_t n)
{
    const size_t words = n * h->words;
    const uint64_t *starts = h->starts + slot * h->words;
    size_t objects = 0, w = 0;
    for (; w + 4 <= words; w += 4) /* the run's start words are contiguous: unrolled */
        objects += (size_t)__builtin_popcountll(starts[w]) + (size_t)__builtin_popcountll(starts[w + 1]) +
                   (size_t)__builtin_popcountll(starts[w + 2]) + (size_t)__builtin_popcountll(starts[w + 3]);
    for (; w < words; w++)
        objects += (size_t)__builtin_popcountll(starts[w]);
    for (struct arena__page *pg = &h->pages[slot], *end = pg + n; pg != end; pg++) {
        __atomic_store_n(&pg->kind, ARENA__PAGE_FREE, __ATOMIC_RELAXED);
        pg->live = 0;
        pg->pinned = 0;
        pg->aux = 0;
        pg->flags = ARENA__PAGE_RETAINED | ARENA__PAGE_UNSWEPT;
    }
    h->used_pages -= n;
    h->retained_pages += n;
    h->unswept += n;
    return objects;
}

/* mesh.c (.req.mesh.what to .req.mesh.budget), called by arena_collect. Before the sweep: every meshed slot with a
 * live object is pinned, a meshed slot with none is discarded (STALE), and free_fp(ctx, fp)
 * is called for a file page no slot shows any more; *freed_objects counts the objects of the
 * discarded slots. */
int arena__mesh_prepare(arena_t *a, void (*free_fp)(void *, size_t), void *ctx, size_t *freed_objects);
/* After the slide: pinned small pages with at most max_percent of their granules occupied
 * are meshed (best fit: a file page may take several) while the VMA budget leaves
 * vma_margin mappings plus follow for each mesh made (what the mirrors following the
 * meshes may add); free_fp gets each emptied file page, *meshed the count. ARENA_ENOMEM or a
 * kernel error stops the pass; whatever was meshed stays meshed and correct. */
int arena__mesh_pass(arena_t *a, unsigned max_percent, size_t vma_margin, size_t follow,
                     void (*free_fp)(void *, size_t), void *ctx, size_t *meshed);

#endif /* ARENA_HEAP_H */
