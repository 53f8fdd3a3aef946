/*
 * collect.c -- marking, pinning and forwarding (docs/design.md §7).
 *
 * Layer 6 (docs/design.md §2): calls heap.c, track.c, view.c, map.c, backing.c and os.c.
 */
#include "collect.h"

#include "heap.h"
#include "track.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* An object evacuated out of a sparse page (.req.collect.evacuate-sparse): its old and new offsets in the heap
 * view. Appended in old-address order: a page's entries are consecutive. */
/* Forwarding of the last collection (.req.collect.forwarding), valid until the next one. */
struct arena__gc {
    uint32_t *page_fwd;      /* per old slot: new slot, FWD_DEAD or FWD_EVAC */
    size_t nslots;           /* slots covered by page_fwd */
    size_t *evac;            /* objects moved one by one: the new heap offset of each, all a
                                collection keeps per object (the old offset is the rank's
                                start bit in the block, the size the copy's end bit) */
    size_t nevac, evac_cap;
    /* O(1) forwarding of evacuated objects (.req.collect.forwarding): per evacuated page a block holding its
     * first entry's index and the start bits of its live objects; the rank of an object's
     * start bit among them is its entry. */
    uint32_t *evac_blk;      /* per old slot (FWD_EVAC ones): its block */
    uint32_t *blk_first;     /* per block: index of the page's first entry */
    uint64_t *blk_bits;      /* per block: words bitmap words */
    size_t nblk, blk_cap, words;
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
    free(gc->evac_blk);
    free(gc->blk_first);
    free(gc->blk_bits);
    free(gc);
    a->gc = NULL;
}

/* ------------------------------------------------------------------ marking -- */

static int mark(arena_t *a, const void *p, bool pin)
{
    if (a == NULL || p == NULL)
        return ARENA_ENULL;
    int err = arena__callable(a); /* a mark from a callback would hide an unscanned object */
    if (err)
        return err;
    if (arena__heap_slot(a, p) == (size_t)-1)
        return ARENA_EFOREIGN;
    size_t slot;
    char *obj = arena__heap_find(a, p, &slot);
    if (obj == NULL)
        return ARENA_ENOTOBJ;
    struct arena__heap *h = a->heap;
    struct arena__page *pg = &h->pages[slot];
    size_t bit = (size_t)(obj - a->heap->base) / ARENA__GRANULE;
    size_t npages = pg->kind == ARENA__PAGE_LARGE_HEAD ? pg->aux : 1;
    if (!arena__bit_get(h->marks, bit)) {
        arena__bit_set(h->marks, bit);
        size_t size = arena__heap_size_at(a, slot, obj);
        /* A large object's pages are full by definition: never sparse (.req.collect.evacuate-sparse). */
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

int arena_forward_check(const arena_t *a, const void *p)
{
    if (a == NULL)
        return ARENA_ENULL;
    size_t slot = a->heap == NULL || p == NULL ? (size_t)-1 : arena__heap_slot(a, p);
    const struct arena__gc *gc = a->gc;
    if (slot == (size_t)-1 || gc == NULL || arena__heap_find(a, p, NULL) == NULL)
        return 0;
    /* Every page the collection kept is OLD; a page taken for allocation since is not, and
     * may be one the collection vacated (page_fwd says where its old contents went). */
    if (!(__atomic_load_n(&a->heap->pages[slot].flags, __ATOMIC_RELAXED) & ARENA__PAGE_OLD))
        return ARENA_EFORWARDED;
    /* A live object where none lived before the collection was moved there. With the debug
     * flag nothing is ever moved to where one did live, so this is every moved-to address. */
    if (slot >= gc->nslots || gc->page_fwd[slot] == FWD_DEAD)
        return ARENA_EFORWARDED;
    return 0;
}

int arena_is_marked(const arena_t *a, const void *p)
{
    if (a == NULL || p == NULL)
        return ARENA_ENULL;
    if (arena__broken(a))
        return arena__broken(a);
    if (arena__heap_slot(a, p) == (size_t)-1)
        return ARENA_EFOREIGN;
    char *obj = arena__heap_find(a, p, NULL);
    if (obj == NULL)
        return ARENA_ENOTOBJ;
    return arena__bit_get(a->heap->marks, (size_t)(obj - a->heap->base) / ARENA__GRANULE);
}

/* --------------------------------------------------------------- forwarding -- */

/* The evacuated object containing heap offset off, in evacuated old slot slot: the last
 * live start bit at or below off's granule, ranked, gives its entry. True with its old
 * and new offsets when off lies inside it. */
static bool evac_find(const arena_t *a, const struct arena__gc *gc, size_t slot, size_t off, size_t *old_off,
                      size_t *new_off)
{
    const struct arena__heap *h = a->heap;
    size_t granules = h->granules;
    uint32_t blk = gc->evac_blk[slot];
    const uint64_t *bits = &gc->blk_bits[blk * gc->words];
    size_t g = (off / ARENA__GRANULE) % granules, w = g / 64;
    uint64_t word = bits[w] & (((uint64_t)2 << (g % 64)) - 1); /* bits 0..g%64 */
    while (word == 0) {
        if (w == 0)
            return false;
        word = bits[--w];
    }
    size_t rank = (size_t)__builtin_popcountll(word) - 1;
    for (size_t i = 0; i < w; i++)
        rank += (size_t)__builtin_popcountll(bits[i]);
    *old_off = (slot * granules + w * 64 + 63 - (size_t)__builtin_clzll(word)) * ARENA__GRANULE;
    *new_off = gc->evac[gc->blk_first[blk] + rank];
    /* The copy is live until the next collection: its end bit gives the size. */
    size_t ng = *new_off / ARENA__GRANULE, end = arena__bit_next(h->ends, ng, (ng / granules + 1) * granules);
    return end != (size_t)-1 && off - *old_off < (end + 1 - ng) * ARENA__GRANULE;
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
    size_t off = (size_t)((const char *)old - a->heap->base);
    if (gc->page_fwd[slot] == FWD_EVAC) {
        size_t old_off, new_off;
        /* An entry is a live object by construction: no lookup to confirm it. */
        return evac_find(a, gc, slot, off, &old_off, &new_off) ? a->heap->base + new_off + (off - old_off) : NULL;
    }
    char *now = arena__view_slot_addr(a->heap_view, gc->page_fwd[slot]) + (off & (a->page_size - 1));
    /* The page survived, but the object p pointed into may have died in it. */
    return arena__heap_find(a, now, NULL) != NULL ? now : NULL;
}

/* ----------------------------------------------------------------- collection -- */

/* State of one collection. */
struct cycle {
    arena_t *a;
    struct arena__heap *h;
    arena_collect_stats_t st;
    int err;                  /* first kernel error met; the collection still completes */
    struct arena__gc *gc;     /* being built */
    size_t old_top;
    size_t slide_left;        /* live pages the slide has not passed yet: bounds the fresh
                                 pages taken for copies (a collection that copies one page
                                 must not allocate and populate a whole 2 MiB window) */
    size_t sweep_at;          /* the slot the sweep is at: retained slots below it are free to fill */
    size_t evac_scan;         /* no retained slot below this one is left for evacuation */
    size_t evac_scan_hi;      /* nor between the sweep and this one */
    size_t evac_slot, evac_used;      /* the page being filled by evacuation */
    size_t evac_pool, evac_pool_n;    /* fresh slots taken for evacuation, not yet used */
    size_t evac_chunk;                /* slots the next take asks for: doubles, so a large
                                         evacuation costs few mapping calls */
    size_t sparse_bytes;      /* below this many live bytes a page is sparse */
    uint32_t *where;          /* during the slide: final slot of the page at each slot */
    size_t copy_fp, copy_fp_n;        /* fresh consecutive file pages for copied units */
    size_t *dead_fp, ndead, dead_cap; /* file pages to punch once no slot shows them */
    struct batch *batch;              /* copies waiting to be shown at their target */
};

static void note_error(struct cycle *c, int err)
{
    if (err != 0 && c->err == 0)
        c->err = err;
}

static int cmp_size(const void *x, const void *y)
{
    size_t a = *(const size_t *)x, b = *(const size_t *)y;
    return a < b ? -1 : a > b;
}

/* File pages no longer needed are punched at the end of the collection, after their
 * slots were unmapped (.req.collect.release-retains): cheaper, and sorted into runs. */
static void defer_free(struct cycle *c, size_t fp)
{
    if (c->ndead == c->dead_cap) {
        size_t cap = c->dead_cap ? c->dead_cap * 2 : 1024;
        size_t *d = realloc(c->dead_fp, cap * sizeof *d);
        if (d == NULL) {
            (void)arena__heap_free_file(c->a, fp, 1);
            return;
        }
        c->dead_fp = d;
        c->dead_cap = cap;
    }
    c->dead_fp[c->ndead++] = fp;
}

/* File pages no slot shows any more stay allocated and resident, parked for reuse or the
 * trim (.req.heap.retain-pages); only without memory for the list are they punched now. */
static void park_deferred(struct cycle *c)
{
    if (c->ndead == 0 || arena__heap_park(c->a, c->dead_fp, c->ndead) == 0) {
        free(c->dead_fp);
        return;
    }
    if (c->ndead > 1) /* dead_fp is NULL when nothing died: qsort(NULL, ...) is undefined */
        qsort(c->dead_fp, c->ndead, sizeof *c->dead_fp, cmp_size);
    for (size_t i = 0; i < c->ndead;) {
        size_t j = i + 1;
        while (j < c->ndead && c->dead_fp[j] == c->dead_fp[i] + (j - i))
            j++;
        note_error(c, arena__heap_free_file(c->a, c->dead_fp[i], j - i));
        c->st.pages_released += j - i;
        i = j;
    }
    free(c->dead_fp);
}


/* .req.heap.retain-pages: a dead page stays mapped and resident, a retained page: the allocation pool and
 * this collection's to-space (evacuation, slides) reuse it without a system call. */
static void retain(struct cycle *c, size_t slot, size_t n)
{
    arena__heap_retain(c->a, slot, n);
    c->st.pages_retained += n;
}

/* -------------------------------------------------------------- evacuation -- */

static bool evac_append(struct arena__gc *gc, size_t new_off)
{
    if (gc->nevac == gc->evac_cap) {
        size_t cap = gc->evac_cap ? gc->evac_cap * 2 : 256;
        size_t *e = realloc(gc->evac, cap * sizeof *e);
        if (e == NULL)
            return false;
        gc->evac = e;
        gc->evac_cap = cap;
    }
    gc->evac[gc->nevac++] = new_off;
    return true;
}

/* The lowest retained slot below the sweep, or (size_t)-1. Every slot below the sweep has
 * its forwarding settled, a retained one FWD_DEAD: no live pre-collection address names it,
 * so evacuated objects may land there (.req.collect.evacuate-sparse). */
/* ARENA_DEBUG_FORWARD: true when no live object was in slots [t, t+n) before the collection,
 * so nothing moved there can be mistaken for an old address (arena_forward_check). */
static bool held_nothing(const struct cycle *c, size_t t, size_t n)
{
    for (size_t i = t; i < t + n && i < c->old_top; i++)
        if (c->gc->page_fwd[i] != FWD_DEAD)
            return false;
    return true;
}

static size_t retained_below(struct cycle *c)
{
    const struct arena__page *pages = c->h->pages;
    bool debug = (c->a->cfg.debug & ARENA_DEBUG_FORWARD) != 0;
    while (c->evac_scan < c->sweep_at) {
        const struct arena__page *pg = &pages[c->evac_scan];
        if (pg->kind == ARENA__PAGE_FREE && (pg->flags & ARENA__PAGE_RETAINED) &&
            (!debug || c->gc->page_fwd[c->evac_scan] == FWD_DEAD))
            return c->evac_scan++;
        c->evac_scan++;
    }
    return (size_t)-1;
}

/* Else the lowest slot above the sweep that was retained before this collection began (by
 * the last one, or the dropped pool): it holds nothing old either. It is flagged, so the
 * sweep passes it by when it gets there. */
static size_t retained_above(struct cycle *c)
{
    struct arena__page *pages = c->h->pages;
    if (c->evac_scan_hi <= c->sweep_at)
        c->evac_scan_hi = c->sweep_at + 1;
    while (c->evac_scan_hi < c->old_top) {
        struct arena__page *pg = &pages[c->evac_scan_hi++];
        if (pg->kind == ARENA__PAGE_FREE && (pg->flags & ARENA__PAGE_RETAINED)) {
            pg->flags = ARENA__PAGE_RETAINED | ARENA__PAGE_EVAC_TARGET;
            return c->evac_scan_hi - 1;
        }
    }
    return (size_t)-1;
}

/* Room for size bytes in the evacuation target pages: retained slots below the sweep
 * first, else chunks of fresh slots above the old top (so no pre-collection address ever
 * names them). */
static char *evac_room(struct cycle *c, size_t size)
{
    arena_t *a = c->a;
    if (c->evac_slot == (size_t)-1 || c->evac_used + size > a->page_size) {
        size_t r = retained_below(c);
        if (r == (size_t)-1)
            r = retained_above(c);
        if (r != (size_t)-1) {
            c->evac_slot = r;
            c->h->pages[r].flags &= ARENA__PAGE_EVAC_TARGET;
            c->h->pages[r].kind = ARENA__PAGE_SMALL;
            c->h->used_pages++;
            c->h->retained_pages--;
            c->st.pages_retained--;
            c->evac_used = 0;
        } else if (c->evac_pool_n == 0) {
            size_t want = c->evac_chunk < 16 ? 16 : c->evac_chunk;
            c->evac_chunk = want < 512 ? want * 2 : want;
            if (arena__heap_take(a, want, ARENA__PAGE_POOL, false, &c->evac_pool, NULL) != 0 &&
                arena__heap_take(a, want = 1, ARENA__PAGE_POOL, false, &c->evac_pool, NULL) != 0)
                return NULL;
            c->evac_pool_n = want;
        }
        if (r == (size_t)-1) {
            c->evac_slot = c->evac_pool++;
            c->evac_pool_n--;
            c->h->pages[c->evac_slot].kind = ARENA__PAGE_SMALL;
            c->evac_used = 0;
        }
    }
    char *dst = arena__view_slot_addr(a->heap_view, c->evac_slot) + c->evac_used;
    c->evac_used += size;
    c->h->pages[c->evac_slot].live += (uint32_t)size;
    return dst;
}

/* .req.collect.evacuate-sparse: a sparse page's objects are copied one by one into fresh pages. All or nothing:
 * when room runs out half-way, the copies are forgotten and the page stays. */
static bool evacuate(struct cycle *c, size_t slot)
{
    arena_t *a = c->a;
    struct arena__heap *h = c->h;
    struct arena__gc *gc = c->gc;
    char *base = a->heap->base;
    size_t first = slot * h->granules, limit = first + h->granules, mark = gc->nevac;
    size_t bytes = 0, objects = 0, dead = 0;
    if (gc->nblk == gc->blk_cap) {
        size_t cap = gc->blk_cap ? gc->blk_cap * 2 : 64;
        uint32_t *f = realloc(gc->blk_first, cap * sizeof *f);
        if (f != NULL)
            gc->blk_first = f;
        uint64_t *b = f == NULL ? NULL : realloc(gc->blk_bits, cap * h->words * sizeof *b);
        if (b == NULL)
            return false; /* the page stays where it is */
        gc->blk_bits = b;
        gc->blk_cap = cap;
    }
    uint64_t *bits = &gc->blk_bits[gc->nblk * h->words];
    for (size_t i = 0; i < h->words; i++)
        bits[i] = h->starts[first / 64 + i] & h->marks[first / 64 + i];
    gc->blk_first[gc->nblk] = (uint32_t)mark;
    /* Marked objects only: the dead are never swept one by one, the page is retained with
     * its bitmaps cleared wholesale (most of a sparse page is garbage). */
    for (size_t w = first / 64; w < limit / 64; w++) {
        uint64_t live = h->starts[w] & h->marks[w];
        dead += (size_t)__builtin_popcountll(h->starts[w] & ~h->marks[w]);
        for (; live != 0; live &= live - 1) {
            size_t bit = w * 64 + (size_t)__builtin_ctzll(live);
            size_t end = arena__bit_next(h->ends, bit, limit);
            size_t size = (end + 1 - bit) * ARENA__GRANULE;
            char *dst = evac_room(c, size);
            if (dst == NULL || !evac_append(gc, (size_t)(dst - base))) {
                for (size_t i = mark; i < gc->nevac; i++) {
                    size_t g = gc->evac[i] / ARENA__GRANULE;
                    arena__bit_clear(h->starts, g);
                    arena__bit_clear(h->ends, arena__bit_next(h->ends, g, (g / h->granules + 1) * h->granules));
                }
                gc->nevac = mark;
                return false;
            }
            memcpy(dst, base + bit * ARENA__GRANULE, size);
            size_t g = (size_t)(dst - base) / ARENA__GRANULE;
            arena__bit_set(h->ends, g + size / ARENA__GRANULE - 1);
            arena__bit_set(h->starts, g);
            bytes += size;
            objects++;
        }
    }
    gc->evac_blk[slot] = (uint32_t)gc->nblk++;
    c->st.objects_evacuated += objects;
    c->st.bytes_evacuated += bytes;
    c->st.objects_live += objects;
    c->st.objects_freed += dead;
    return true;
}

/* Pass 1 over the old heap: sweep, release the dead, evacuate the sparse (.req.collect.sweep to .req.collect.evacuate-sparse). */
static void sweep_all(struct cycle *c)
{
    struct arena__heap *h = c->h;
    uint32_t *fwd = c->gc->page_fwd;
    for (size_t s = 0; s < c->old_top; s++) {
        struct arena__page *pg = &h->pages[s];
        fwd[s] = FWD_DEAD;
        c->sweep_at = s;
        if (pg->flags & ARENA__PAGE_EVAC_TARGET) {
            pg->flags &= (uint16_t)~ARENA__PAGE_EVAC_TARGET; /* filled by this sweep: nothing old */
            continue;
        } else if (pg->kind == ARENA__PAGE_FREE) {
            continue;
        } else if (pg->kind == ARENA__PAGE_SMALL && pg->live == 0) {
            /* Nothing marked: the release clears the page's bitmaps wholesale, so its
             * dead objects are only counted, not swept one by one (most pages of a
             * runtime's young garbage end here). */
            for (size_t w = s * h->words; w < (s + 1) * h->words; w++)
                c->st.objects_freed += (size_t)__builtin_popcountll(h->starts[w]);
            retain(c, s, 1);
        } else if (pg->kind == ARENA__PAGE_SMALL) {
            c->st.bytes_live += pg->live;
            if (pg->live < c->sparse_bytes && !pg->pinned && evacuate(c, s)) {
                fwd[s] = FWD_EVAC;
                retain(c, s, 1);
            } else {
                c->st.objects_freed += arena__heap_sweep_page(c->h, s, &c->st.objects_live);
                fwd[s] = (uint32_t)s;
            }
        } else if (pg->kind == ARENA__PAGE_LARGE_HEAD) {
            size_t n = pg->aux, bit = s * h->granules;
            bool live = arena__bit_get(h->marks, bit);
            arena__bit_clear(h->marks, bit);
            if (live) {
                c->st.objects_live++;
                c->st.bytes_live += arena__heap_size_at(c->a, s, c->a->heap->base + bit * ARENA__GRANULE);
                for (size_t i = 0; i < n; i++)
                    fwd[s + i] = (uint32_t)(s + i);
            } else {
                c->st.objects_freed++;
                for (size_t i = 1; i < n; i++)
                    fwd[s + i] = FWD_DEAD;
                retain(c, s, n);
            }
            s += n - 1;
        } else {
            /* A POOL page (evacuation's fresh slots are above old_top): nothing lives in it. */
            retain(c, s, 1);
        }
    }
    if (c->evac_pool_n != 0)
        retain(c, c->evac_pool, c->evac_pool_n);
    c->evac_pool_n = 0;
}

/* ----------------------------------------------------------------- the slide -- */

enum method { M_STAY, M_REMAP, M_MREMAP, M_COPY };

/* Mappings kept free for copying once remapping stops (.req.collect.slide). */
#define VMA_MARGIN 8
/* Pinned pages at most this % occupied are meshed into others (.req.mesh.what). */
#define MESH_PERCENT 50

static size_t *page_list(struct cycle *c, size_t slot, size_t n)
{
    size_t *fp = malloc(n * sizeof *fp);
    if (fp != NULL)
        for (size_t i = 0; i < n; i++)
            fp[i] = c->h->pages[slot + i].kind == ARENA__PAGE_FREE ? ARENA_NO_PAGE
                                                                 : c->h->pages[slot + i].file_page;
    return fp;
}

/* .req.collect.mirrors-follow: mirror views show what the heap shows, slot for slot. */
static void mirrors_follow(struct cycle *c, size_t slot, size_t n)
{
    for (arena_view_t *v = c->a->views; v != NULL; v = arena__view_next(v)) {
        size_t nslots = arena__view_nslots(v);
        if (!arena__view_is_mirror(v) || slot >= nslots)
            continue;
        size_t m = n < nslots - slot ? n : nslots - slot;
        size_t *fp = page_list(c, slot, m);
        int err = fp == NULL ? ARENA_ENOMEM : arena__view_set(v, slot, fp, m, ARENA_MOVE_MMAP_FIXED);
        /* view_set rolled back: the mirror shows the old layout, which no pointer the
         * runtime will hold after forwarding can use (.req.fault.no-data-loss). */
        arena__view_set_out_of_step(v, err != 0);
        note_error(c, err);
        free(fp);
    }
}

/* The heap's tables follow a unit moved from src to dst (file pages already updated
 * in pages[src..]): page info and object bits move, the vacated slots become FREE and
 * STALE (still mapped until the end of the collection; whatever they show is either
 * also shown at dst or was given back). */
static void tables_move(struct cycle *c, size_t dst, size_t src, size_t n)
{
    struct arena__heap *h = c->h;
    size_t wb = h->words * sizeof(uint64_t);
    /* Retained target slots no longer show their file pages: parked at the end (.req.heap.retain-pages). */
    for (size_t i = dst; i < dst + n; i++) {
        if (h->pages[i].kind == ARENA__PAGE_FREE && (h->pages[i].flags & ARENA__PAGE_RETAINED)) {
            defer_free(c, h->pages[i].file_page);
            h->pages[i].flags = 0;
            h->retained_pages--;
            c->st.pages_retained--;
        }
    }
    memmove(&h->pages[dst], &h->pages[src], n * sizeof h->pages[0]);
    memmove(&h->starts[dst * h->words], &h->starts[src * h->words], n * wb);
    memmove(&h->ends[dst * h->words], &h->ends[src * h->words], n * wb);
    size_t from = dst + n > src ? dst + n : src;
    if (from < src + n) {
        memset(&h->pages[from], 0, (src + n - from) * sizeof h->pages[0]);
        for (size_t i = from; i < src + n; i++)
            h->pages[i].flags = ARENA__PAGE_STALE;
        memset(&h->starts[from * h->words], 0, (src + n - from) * wb);
        memset(&h->ends[from * h->words], 0, (src + n - from) * wb);
    }
}

/* .req.heap.retain-pages slide: the unit's bytes are copied down into the slots below it, which show
 * retained (or the unit's own) pages: no mapping changes, no fault. File pages stay with
 * their slots; the slots the unit vacates are retained in turn. */
static bool slidable(const struct cycle *c, size_t dst, size_t src, size_t n)
{
    if (arena__view_track(c->a->heap_view) != NULL)
        return false; /* the tracker must see moves as remaps (.req.track.moves): the old paths do that */
    size_t end = dst + n < src ? dst + n : src;
    for (size_t i = dst; i < end; i++) {
        const struct arena__page *pg = &c->h->pages[i];
        if (pg->kind != ARENA__PAGE_FREE || !(pg->flags & ARENA__PAGE_RETAINED))
            return false;
    }
    return true;
}

static void slide_unit(struct cycle *c, size_t dst, size_t src, size_t n)
{
    arena_t *a = c->a;
    struct arena__heap *h = c->h;
    size_t wb = h->words * sizeof(uint64_t);
    memmove(arena__view_slot_addr(a->heap_view, dst), arena__view_slot_addr(a->heap_view, src),
            n * a->page_size);
    for (size_t i = 0; i < n; i++) { /* dst < src: ascending never reads a written entry */
        uint32_t fp = h->pages[dst + i].file_page;
        if (h->pages[dst + i].kind == ARENA__PAGE_FREE)
            h->retained_pages--, c->st.pages_retained--;
        h->pages[dst + i] = h->pages[src + i];
        h->pages[dst + i].file_page = fp;
    }
    memmove(&h->starts[dst * h->words], &h->starts[src * h->words], n * wb);
    memmove(&h->ends[dst * h->words], &h->ends[src * h->words], n * wb);
    size_t from = dst + n > src ? dst + n : src;
    if (from < src + n) {
        memset(&h->starts[from * h->words], 0, (src + n - from) * wb);
        memset(&h->ends[from * h->words], 0, (src + n - from) * wb);
        for (size_t i = from; i < src + n; i++) {
            uint32_t fp = h->pages[i].file_page;
            memset(&h->pages[i], 0, sizeof h->pages[i]);
            h->pages[i].file_page = fp;
            h->pages[i].flags = ARENA__PAGE_RETAINED;
        }
        h->retained_pages += src + n - from;
        c->st.pages_retained += src + n - from;
    }
    c->st.pages_slid += n;
}

static int move_remap(struct cycle *c, size_t dst, size_t src, size_t n, int mover)
{
    size_t *fp = page_list(c, src, n);
    if (fp == NULL)
        return ARENA_ENOMEM;
    int err = arena__view_set(c->a->heap_view, dst, fp, n, mover);
    free(fp);
    if (err != 0)
        return err;
    return 0;
}

/* The tables follow a swap: the unit is at dst, the retained pages dst showed are parked
 * at the vacated source slots, still retained (.req.heap.retain-pages). */
static void tables_swap(struct cycle *c, size_t dst, size_t src, size_t n)
{
    struct arena__heap *h = c->h;
    size_t wb = h->words * sizeof(uint64_t);
    for (size_t i = 0; i < n; i++) {
        uint32_t fp = h->pages[dst + i].file_page;
        h->pages[dst + i] = h->pages[src + i];
        memset(&h->pages[src + i], 0, sizeof h->pages[src + i]);
        h->pages[src + i].file_page = fp;
        h->pages[src + i].flags = ARENA__PAGE_RETAINED;
    }
    memcpy(&h->starts[dst * h->words], &h->starts[src * h->words], n * wb);
    memcpy(&h->ends[dst * h->words], &h->ends[src * h->words], n * wb);
    memset(&h->starts[src * h->words], 0, n * wb);
    memset(&h->ends[src * h->words], 0, n * wb);
    c->st.pages_parked += n;
}

/* Swaps one slide down may take: past them one mremap through a scratch reservation,
 * parking what the rest of the target showed, costs fewer system calls. */
#define SWAP_MAX_PIECES 32

/* Retained slots from slot on showing consecutive file pages (one mapping), at most max. */
static size_t retained_run(const struct arena__heap *h, size_t slot, size_t max)
{
    size_t k = 0;
    while (k < max && h->pages[slot + k].kind == ARENA__PAGE_FREE &&
           (h->pages[slot + k].flags & ARENA__PAGE_RETAINED) &&
           (k == 0 || h->pages[slot + k].file_page == h->pages[slot].file_page + k))
        k++;
    return k;
}

/* A unit slides down onto retained slots by swaps (.req.heap.retain-pages), piece by piece from
 * its front: a piece is as long as the retained run at its target and, when target and
 * source overlap, as the gap between them, so each swap's two ranges are clear of each
 * other (a later piece's target then shows the retained pages an earlier swap left at its
 * source), and ends between objects. The retained pages end at the slots the unit vacates, still mapped, instead of
 * parked (which the next refills would have to map again). Each swap completes or changes
 * nothing. Needs no tracker to tell (.req.track.moves). Returns the pages moved, a prefix
 * of the unit. */
static size_t swap_down(struct cycle *c, size_t dst, size_t src, size_t n)
{
    if (dst >= src || arena__view_track(c->a->heap_view) != NULL)
        return 0;
    size_t g = src - dst, done = 0;
    for (int pieces = 0; done < n && pieces < SWAP_MAX_PIECES; pieces++) {
        size_t m = retained_run(c->h, dst + done, n - done < g ? n - done : g);
        /* A piece ends between objects: a refusal after it must not leave half a large
         * object behind. */
        while (m > 0 && done + m < n && c->h->pages[src + done + m].kind == ARENA__PAGE_LARGE_TAIL)
            m--;
        bool swapped = false;
        if (m == 0 || arena__view_swap_run(c->a->heap_view, dst + done, src + done, m, &swapped) != 0)
            break;
        if (!swapped) { /* the piece moved and its source shows nothing: a plain move */
            tables_move(c, dst + done, src + done, m);
            return done + m;
        }
        tables_swap(c, dst + done, src + done, m);
        done += m;
    }
    return done;
}

/* mremap carries page tables along; view.c takes overlapping slides through a scratch
 * reservation and is all-or-nothing. Retained targets are first swapped with the source
 * (swap_down): mremap onto resident page tables tears them down, which is most of a long
 * run's move; moving them costs as little as moving the unit's. What the swaps leave moves
 * by mremap. *moved gets the pages moved: n, or when that mremap is refused after some
 * swaps, the prefix they moved (the rest stays at its source). */
static int move_mremap(struct cycle *c, size_t dst, size_t src, size_t n, size_t *moved)
{
    size_t done = swap_down(c, dst, src, n);
    *moved = n;
    if (done == n)
        return 0;
    int err = arena__view_move_run(c->a->heap_view, dst + done, src + done, n - done, ARENA_MOVE_MREMAP);
    if (err == 0)
        tables_move(c, dst + done, src + done, n - done);
    else if (done != 0)
        *moved = done, err = 0;
    return err;
}

/* Fresh file pages for copies come from one consecutive batch, so that units copied to
 * consecutive slots show consecutive file pages: one mapping, however scattered the
 * sources were (this is what keeps a copying slide inside the VMA budget, .req.collect.slide). */
static int fresh_pages(struct cycle *c, size_t n, size_t *fp)
{
    struct arena__backing *b = c->a->backing;
    if (c->copy_fp_n < n) {
        if (c->copy_fp_n != 0)
            (void)arena__heap_free_file(c->a, c->copy_fp, c->copy_fp_n);
        c->copy_fp_n = 0;
        size_t want = c->slide_left < 256 ? c->slide_left : 256, first;
        want = want < n ? n : want;
        if (arena__backing_alloc(b, want, &first) != 0) {
            want = n;
            int err = arena__backing_alloc(b, want, &first);
            if (err != 0)
                return err;
        }
        c->copy_fp = first;
        c->copy_fp_n = want;
    }
    *fp = c->copy_fp;
    c->copy_fp += n;
    c->copy_fp_n -= n;
    return 0;
}

static void fresh_pages_done(struct cycle *c)
{
    if (c->copy_fp_n != 0)
        (void)arena__heap_free_file(c->a, c->copy_fp, c->copy_fp_n);
    c->copy_fp_n = 0;
}

/* .req.collect.slide copy: fresh file pages at the free part of the target, memmove, and the source
 * slots no longer covered give their file pages back. Nothing is lost before the
 * memmove, and nothing after it can fail in a way that loses data. */
static int move_copy(struct cycle *c, size_t dst, size_t src, size_t n)
{
    arena_t *a = c->a;
    struct arena__heap *h = c->h;
    size_t fresh_n = src - dst < n ? src - dst : n, fp;
    size_t *old = page_list(c, src, n);
    if (old == NULL)
        return ARENA_ENOMEM;
    int err = fresh_pages(c, fresh_n, &fp);
    if (err == 0) {
        err = arena__view_set_run(a->heap_view, dst, fp, fresh_n, ARENA_MOVE_MMAP_FIXED);
        if (err != 0)
            (void)arena__heap_free_file(a, fp, fresh_n);
    }
    if (err != 0) {
        free(old);
        return err;
    }
    memmove(arena__view_slot_addr(a->heap_view, dst), arena__view_slot_addr(a->heap_view, src),
            n * a->page_size);
    /* Logical page i now lives at dst+i: the first fresh_n in fresh pages, the rest in the
     * source's first file pages; the source's last fresh_n file pages are garbage. */
    for (size_t i = n - fresh_n; i < n; i++)
        defer_free(c, old[i]);
    for (size_t i = 0; i < n; i++)
        h->pages[src + i].file_page = (uint32_t)(i < fresh_n ? fp + i : old[i - fresh_n]);
    free(old);
    return 0;
}

static bool kernel_error(int err)
{
    return err != 0 && err != ARENA_EVMA;
}

/* ------------------------------------------------------------ copy batches -- */

/* .req.collect.slide copy, batched: units copied to consecutive target slots share one run of fresh
 * consecutive file pages, filled through a private scratch mapping and then shown at
 * the target by ONE mapping call. Mapping over a still-mapped range costs a TLB
 * shootdown per call, far more than copying a page (docs/design.md §1 has the measured
 * figures), so one mapping call per unit would dominate the pause. Nothing
 * is mapped over a source before the flush, so a failed flush leaves every unit where
 * it was, intact (.req.collect.never-lose-data). */
struct batch_unit {
    size_t dst, src, n;
};

struct batch {
    size_t t, k, cap;           /* target slot, pages queued, largest window in pages */
    size_t win;                 /* this window's pages: at most cap, at most what is left */
    size_t fp;                  /* first of cap fresh file pages */
    char *scratch;              /* the fresh pages, mapped populated */
    struct batch_unit *u;       /* queued units, slide order */
    size_t nu;
};

/* 2 MiB windows: bounds the extra memory a collection holds at once. */
static size_t batch_window(const arena_t *a)
{
    size_t w = ARENA__2M / a->page_size;
    return w < 16 ? 16 : w;
}

/* The pages a batch whose first unit comes from src can take: the live unpinned pages
 * before the next pinned one, which the slide goes around (units past it land past it,
 * so they open the next batch). At most cap: counting stops there. */
static size_t batch_reach(const struct cycle *c, size_t src, size_t cap)
{
    const struct arena__heap *h = c->h;
    size_t n = 0;
    for (size_t s = src; s < h->top && n < cap && !h->pages[s].pinned; s++)
        n += h->pages[s].kind != ARENA__PAGE_FREE;
    return n;
}

static bool batch_open(struct cycle *c, size_t src, size_t n)
{
    arena_t *a = c->a;
    struct batch *b = c->batch;
    /* Fresh pages past what the batch can take would be reserved, populated and punched
     * for nothing: between pinned pages (meshed ones stay pinned) that is most of them. */
    b->win = c->slide_left < b->cap ? c->slide_left : b->cap;
    b->win = batch_reach(c, src, b->win);
    b->win = b->win < n ? n : b->win;
    if (arena__backing_alloc(a->backing, b->win, &b->fp) != 0)
        return false;
    char *p = arena__map_window(a->backing, b->fp, b->win);
    if (p == NULL) {
        (void)arena__heap_free_file(a, b->fp, b->win);
        return false;
    }
    b->scratch = p;
    b->k = b->nu = 0;
    return true;
}

/* Queue a copy of n slots from src to dst; false when it does not extend the batch
 * (the caller flushes and asks again, or copies the unit alone). */
static bool batch_add(struct cycle *c, size_t dst, size_t src, size_t n)
{
    struct batch *b = c->batch;
    /* A tracked heap copies unit by unit: the tracker learns each move while the
     * sources still show what they showed (arena__track_moved, .req.track.moves). */
    if (b == NULL || n > b->cap || arena__view_track(c->a->heap_view) != NULL)
        return false;
    if (b->scratch != NULL && (dst != b->t + b->k || b->k + n > b->win))
        return false;
    if (b->scratch == NULL) {
        if (!batch_open(c, src, n))
            return false;
        b->t = dst;
    }
    size_t ps = c->a->page_size;
    memcpy(b->scratch + b->k * ps, arena__view_slot_addr(c->a->heap_view, src), n * ps);
    b->u[b->nu++] = (struct batch_unit){dst, src, n};
    b->k += n;
    return true;
}

/* Show the batch at its target. Returns true when the units moved; false leaves them
 * at their sources (and frees the fresh pages). */
static bool batch_flush(struct cycle *c)
{
    arena_t *a = c->a;
    struct batch *b = c->batch;
    if (b == NULL || b->scratch == NULL)
        return true;
    /* The scratch pages past the batch go; the batch itself moves into place with its
     * page tables, so the mutator does not refault what the copy just touched. */
    if (b->k < b->win)
        arena__map_window_close(a->backing, b->scratch + b->k * a->page_size, b->win - b->k);
    int err = arena__view_adopt_run(a->heap_view, b->t, b->fp, b->k, b->scratch);
    b->scratch = NULL;
    if (err != 0) {
        if (kernel_error(err))
            note_error(c, err);
        (void)arena__heap_free_file(a, b->fp, b->win);
        return false;
    }
    if (b->k < b->win)
        note_error(c, arena__heap_free_file(a, b->fp + b->k, b->win - b->k));
    size_t fp = b->fp;
    for (size_t i = 0; i < b->nu; i++) {
        struct batch_unit *u = &b->u[i];
        for (size_t j = 0; j < u->n; j++) {
            defer_free(c, c->h->pages[u->src + j].file_page);
            c->h->pages[u->src + j].file_page = (uint32_t)(fp + j);
        }
        fp += u->n;
        tables_move(c, u->dst, u->src, u->n);
        c->st.runs_copied++;
        c->st.pages_copied += u->n;
    }
    return true;
}

/* Move a unit with the chosen method, falling back to copying, then to staying where
 * it is (.req.collect.never-lose-data). Returns the slot the unit ends at; *moved gets the
 * pages that moved there: n, or a prefix when a rotation stopped part way (the rest of the
 * unit stays at its source). */
static size_t move_unit(struct cycle *c, size_t dst, size_t src, size_t n, enum method m, size_t *moved)
{
    arena_t *a = c->a;
    size_t final = src, l2m = ARENA__2M / a->page_size;
    int err = ARENA_EVMA;
    *moved = n;
    if (m == M_MREMAP) {
        err = move_mremap(c, dst, src, n, moved);
        if (err == 0) {
            final = dst;
            c->st.runs_mremap_2m += n >= l2m && dst % l2m == src % l2m;
        }
        if (err == 0 && *moved < n) {
            c->st.runs_remapped++;
            c->st.pages_remapped += *moved;
            return final;
        }
    } else if (m == M_REMAP) {
        int mover = a->cfg.mover == ARENA_MOVE_AUTO || a->cfg.mover == ARENA_MOVE_MREMAP
                        ? ARENA_MOVE_MMAP_FIXED : a->cfg.mover;
        err = move_remap(c, dst, src, n, mover);
        if (err == 0) {
            tables_move(c, dst, src, n);
            final = dst;
        }
    }
    if (final != src) {
        c->st.runs_remapped++;
        c->st.pages_remapped += n;
    } else {
        if (arena__broken(a)) {
            /* The undo of the refused move was refused too (ARENA_EBROKEN): the source
             * slots may be left unmapped, so copying from them could fault. Stay. */
            note_error(c, arena__broken(a));
            return src;
        }
        if (m != M_COPY && kernel_error(err))
            note_error(c, err);
        err = move_copy(c, dst, src, n);
        m = M_COPY;
        if (err == 0) {
            tables_move(c, dst, src, n);
            final = dst;
            c->st.runs_copied++;
            c->st.pages_copied += n;
        } else if (kernel_error(err)) {
            note_error(c, err);
        }
    }
    /* view.c's moves tell the tracker themselves; ours must. */
    if (final != src && m != M_MREMAP) {
        if (arena__view_track(a->heap_view) != NULL)
            arena__track_moved(a->heap_view, final, src, n);
    }
    return final;
}

static bool single_segment(const struct arena__heap *h, size_t s, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (h->pages[s + i].file_page != h->pages[s].file_page + i)
            return false;
    return true;
}

/* .req.collect.slide: the method for a unit, and its target (which may move up to keep a long run
 * congruent to its source mod 2 MiB, so mremap moves whole page tables). */
static enum method choose(struct cycle *c, size_t *dst, size_t src, size_t n)
{
    arena_t *a = c->a;
    bool single = single_segment(c->h, src, n);
    switch (a->cfg.mover) {
    case ARENA_MOVE_COPY:
        return M_COPY;
    case ARENA_MOVE_MREMAP:
        return single ? M_MREMAP : M_REMAP;
    case ARENA_MOVE_MMAP_FIXED:
    case ARENA_MOVE_REMAP_FILE_PAGES:
        return M_REMAP;
    default:
        break;
    }
    size_t l2m = ARENA__2M / a->page_size;
    if (n < arena__map_copy_below(a->cfg.copy_below, a->page_size))
        return M_COPY;
    if (!single || !arena__map_have_dontunmap())
        return M_REMAP;
    if (n >= l2m) {
        size_t t = *dst + (src - *dst) % l2m;
        if (t >= src)
            return M_STAY;
        *dst = t;
        return M_MREMAP;
    }
    return *dst + n <= src ? M_MREMAP : M_REMAP;
}

/* Units: maximal runs of consecutive unpinned live slots, cut where file pages stop
 * being consecutive except inside a large object (whose pages must stay together). */
static size_t unit_end(const struct arena__heap *h, size_t s, size_t top)
{
    size_t e = s + 1;
    while (e < top && h->pages[e].kind != ARENA__PAGE_FREE && !h->pages[e].pinned &&
           (h->pages[e].kind == ARENA__PAGE_LARGE_TAIL ||
            h->pages[e].file_page == h->pages[e - 1].file_page + 1))
        e++;
    return e;
}

/* Units of a failed batch flush stay at their sources; the slide resumes after them. */
static size_t batch_undo(struct cycle *c, size_t cursor)
{
    struct batch *b = c->batch;
    for (size_t i = 0; i < b->nu; i++) {
        for (size_t j = 0; j < b->u[i].n; j++)
            c->where[b->u[i].src + j] = (uint32_t)(b->u[i].src + j);
        c->st.pages_in_place += b->u[i].n;
        cursor = b->u[i].src + b->u[i].n;
    }
    return cursor;
}

static size_t flush_or_undo(struct cycle *c, size_t cursor)
{
    if (c->batch == NULL || c->batch->nu == 0)
        return cursor;
    if (!batch_flush(c))
        cursor = batch_undo(c, cursor);
    c->batch->nu = c->batch->k = 0;
    return cursor;
}

static void passed(struct cycle *c, size_t n)
{
    c->slide_left = c->slide_left > n ? c->slide_left - n : 0;
}

/* Pass 2: live pages slide toward the low end in address order; pinned pages stay and
 * the slide goes around them (.req.collect.slide). */
static void slide(struct cycle *c)
{
    struct arena__heap *h = c->h;
    size_t top = h->top, cursor = 0;
    uint32_t *where = c->where;
    c->slide_left = h->used_pages;
    for (size_t s = 0; s < top;) {
        struct arena__page *pg = &h->pages[s];
        if (pg->kind == ARENA__PAGE_FREE) {
            s++;
            continue;
        }
        if (pg->pinned) {
            where[s] = (uint32_t)s;
            c->st.pages_pinned++;
            c->st.pages_in_place++;
            passed(c, 1);
            cursor = ++s;
            continue;
        }
        size_t e = unit_end(h, s, top), n = e - s, t = cursor;
        enum method m = t == s ? M_STAY : choose(c, &t, s, n);
        /* Near the budget a remap would leave no room for the copies that must follow (a
         * chain of copies into consecutive fresh pages costs no new mapping): copy. */
        if (m != M_STAY && m != M_COPY && arena__budget_check(&c->a->budget, VMA_MARGIN) != 0)
            m = M_COPY;
        if (m != M_STAY && (c->a->cfg.debug & ARENA_DEBUG_FORWARD) && !held_nothing(c, t, n))
            m = M_STAY;
        if (m == M_COPY && (c->batch == NULL || c->batch->nu == 0) && slidable(c, t, s, n)) {
            slide_unit(c, t, s, n);
            for (size_t i = 0; i < n; i++)
                where[s + i] = (uint32_t)(t + i);
            cursor = t + n;
            passed(c, n);
            s = e;
            continue;
        }
        if (m == M_COPY && batch_add(c, t, s, n)) {
            for (size_t i = 0; i < n; i++)
                where[s + i] = (uint32_t)(t + i);
            cursor = t + n;
            passed(c, n);
            s = e;
            continue;
        }
        if (c->batch != NULL && c->batch->nu != 0) {
            cursor = flush_or_undo(c, cursor);
            continue; /* this unit again, from the settled cursor */
        }
        size_t moved = n, final = m == M_STAY ? s : move_unit(c, t, s, n, m, &moved);
        for (size_t i = 0; i < n; i++)
            where[s + i] = (uint32_t)(i < moved ? final + i : s + i);
        if (final == s)
            c->st.pages_in_place += n;
        else
            c->st.pages_in_place += n - moved;
        if (moved < n)
            cursor = s + n; /* the unit's tail stayed */
        else if (final == s || final == t)
            cursor = final + n;
        passed(c, n);
        s = e;
    }
    flush_or_undo(c, cursor);
}

static void batch_init(struct cycle *c)
{
    struct batch *b = calloc(1, sizeof *b);
    if (b != NULL) {
        b->cap = batch_window(c->a);
        b->u = malloc(b->cap * sizeof *b->u);
        if (b->u == NULL) {
            free(b);
            b = NULL;
        }
    }
    c->batch = b; /* without one, every unit is copied on its own */
}

static void batch_fini(struct cycle *c)
{
    if (c->batch != NULL)
        free(c->batch->u);
    free(c->batch);
    c->batch = NULL;
}

/* Forwarding of evacuated objects points into their target pages, which may have slid. */
static void resolve_forwarding(struct cycle *c)
{
    struct arena__gc *gc = c->gc;
    size_t shift = c->a->page_shift, mask = c->a->page_size - 1;
    for (size_t s = 0; s < c->old_top; s++)
        if (gc->page_fwd[s] != FWD_DEAD && gc->page_fwd[s] != FWD_EVAC)
            gc->page_fwd[s] = c->where[s];
    for (size_t i = 0; i < gc->nevac; i++) {
        size_t off = gc->evac[i];
        gc->evac[i] = ((size_t)c->where[off >> shift] << shift) | (off & mask);
    }
}

static void defer_free_cb(void *ctx, size_t fp)
{
    defer_free(ctx, fp);
}

/* .req.mesh.what: pages that stayed where they are (pinned) and are sparse share file pages;
 * only with ARENA_MESH_ON (.req.mesh.default: the default leaves their gaps to recycling). */
static void mesh(struct cycle *c)
{
    if (c->a->cfg.mesh != ARENA_MESH_ON)
        return;
    uint64_t t0 = arena__os_now_ns();
    /* Mirrors follow the heap's layout at the end of the collection: what the slides
     * already changed (the heap view's mappings beyond the mirror's) and, for each mesh,
     * the split it may make in every mirror as in the heap view. */
    size_t margin = VMA_MARGIN, mirrors = 0, heap_vmas = arena__view_vmas(c->a->heap_view);
    for (arena_view_t *v = c->a->views; v != NULL; v = arena__view_next(v)) {
        if (!arena__view_is_mirror(v))
            continue;
        mirrors++;
        margin += 1 + (heap_vmas > arena__view_vmas(v) ? heap_vmas - arena__view_vmas(v) : 0);
    }
    int err = arena__mesh_pass(c->a, MESH_PERCENT, margin, 2 * mirrors, defer_free_cb, c, &c->st.pages_meshed);
    if (kernel_error(err))
        note_error(c, err);
    c->st.mesh_ns = arena__os_now_ns() - t0;
}

static void finish(struct cycle *c)
{
    arena_t *a = c->a;
    struct arena__heap *h = c->h;
    arena__heap_recycle_begin(a);
    for (size_t s = 0; s < h->top; s++) {
        if (h->pages[s].pinned)
            arena__heap_recycle_add(a, s); /* .req.heap.recycle-pinned: its gaps take new objects */
        h->pages[s].live = 0;
        h->pages[s].pinned = 0;
        if (h->pages[s].kind != ARENA__PAGE_FREE)
            h->pages[s].flags |= ARENA__PAGE_OLD; /* survivors: trace.c's young mode spares them */
    }
    note_error(c, arena__heap_unmap_stale(a, h->top));
    mirrors_follow(c, 0, h->top);
    park_deferred(c);
    note_error(c, arena__heap_rebuild_free(a));
    h->live_bytes = c->st.bytes_live;
    __atomic_store_n(&h->allocated_bytes, c->st.bytes_live, __ATOMIC_RELAXED);
    /* .req.heap.retain-pages: past the hard limit the surplus goes now, in runs; below it, the allocator
     * releases what stays unused past the delay. */
    size_t released = 0;
    note_error(c, arena__heap_trim(a, arena__heap_retain_hard(a), &released));
    c->st.pages_released += released;
    c->st.pages_retained = h->retained_pages + h->nparked;
    (void)arena__heap_purge_due(a, arena__os_now_ns(), false);
    c->st.pages_after = h->used_pages;
    c->st.vmas_after = arena__budget_used(&a->budget);
    a->collections++;
    a->bytes_remapped += (uint64_t)c->st.pages_remapped * a->page_size;
    a->bytes_copied += (uint64_t)c->st.pages_copied * a->page_size + c->st.bytes_evacuated;
    a->pages_released += c->st.pages_released;
    arena__gc_fini(a);
    a->gc = c->gc;
}

/* The arena whose arena_trace_collect runs its callbacks on this thread, so that
 * arena__set_tracing(NULL) knows which arena's flag to clear. */
static _Thread_local arena_t *tracing;

void arena__set_tracing(arena_t *a)
{
    if (tracing != NULL)
        atomic_store_explicit(&tracing->in_callbacks, false, memory_order_release);
    tracing = a;
    if (a != NULL) {
        a->callback_thread = pthread_self();
        atomic_store_explicit(&a->in_callbacks, true, memory_order_release);
    }
}

int arena_collect(arena_t *a, arena_collect_stats_t *st)
{
    if (a == NULL)
        return ARENA_ENULL;
    int err = arena__callable(a); /* ARENA_ESTATE from a callback of arena_trace_collect */
    if (err)
        return err;
    uint64_t t0 = arena__os_now_ns();
    pthread_mutex_lock(&a->lock);
    struct arena__heap *h = a->heap;
    struct cycle c = {.a = a, .h = h, .evac_slot = (size_t)-1};
    c.st.vmas_before = arena__budget_used(&a->budget);
    c.st.pages_before = h->used_pages;
    unsigned sparse = a->cfg.sparse_percent ? a->cfg.sparse_percent : 75;
    c.sparse_bytes = a->page_size * (sparse > 100 ? 100 : sparse) / 100;
    /* Every thread's current page is retired: the next allocation refills (.req.heap.lock-free-bump). */
    c.gc = calloc(1, sizeof *c.gc);
    if (c.gc != NULL) {
        c.gc->page_fwd = malloc((h->top ? h->top : 1) * sizeof(uint32_t));
        c.gc->evac_blk = malloc((h->top ? h->top : 1) * sizeof(uint32_t));
        c.gc->words = h->words;
    }
    if (c.gc == NULL || c.gc->page_fwd == NULL || c.gc->evac_blk == NULL) {
        if (c.gc != NULL) {
            free(c.gc->page_fwd);
            free(c.gc->evac_blk);
        }
        free(c.gc);
        pthread_mutex_unlock(&a->lock);
        return ARENA_ENOCOLLECT;
    }
    /* The last collection's forwarding is void from here (arena_forward: "valid until the
     * next collection"): its tables go before this one's grow, not after. */
    arena__gc_fini(a);
    atomic_fetch_add(&h->epoch, 1);
    h->collecting = true; /* the collector's reserve is open (.req.collect.full-file-no-jam) */
    arena__heap_drop_pool(a);
    /* Evacuation fills retained slots below the sweep, else fresh slots above the old heap. */
    h->nholes = h->nkept = 0;
    c.old_top = h->top;
    c.gc->nslots = c.old_top;
    note_error(&c, arena__mesh_prepare(a, defer_free_cb, &c, &c.st.objects_freed));
    sweep_all(&c);
    c.where = malloc((h->top ? h->top : 1) * sizeof(uint32_t));
    if (c.where != NULL) {
        batch_init(&c);
        slide(&c);
        batch_fini(&c);
        fresh_pages_done(&c);
        resolve_forwarding(&c);
        free(c.where);
    } else {
        note_error(&c, ARENA_ENOMEM); /* nothing slides: every live page keeps its slot */
    }
    mesh(&c);
    finish(&c);
    h->collecting = false;
    (void)arena__heap_restore_reserve(a); /* best effort: a refused release keeps the pages retained */
    pthread_mutex_unlock(&a->lock);
    c.st.pause_ns = arena__os_now_ns() - t0;
    if (st != NULL)
        *st = c.st;
    return -c.err; /* completed: positive even when a kernel error was met (arena.h) */
}
