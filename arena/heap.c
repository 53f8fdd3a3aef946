/*
 * heap.c -- allocation on the heap view (docs/design.md §6).
 *
 * The heap is the primary view of the backing file. Slots are handed out in chunks
 * of consecutive slots showing consecutive file pages (one fallocate and one mapping
 * per chunk, .req.heap.chunks-no-hoarding); each thread bumps through its own current page with no lock (.req.heap.lock-free-bump).
 * There is no object header: a start bit and an end bit per 16-byte granule give every
 * object's extent, so interior pointers resolve (.req.heap.no-header).
 *
 * Layer 5 (docs/design.md §2): calls view.c, map.c, backing.c and os.c.
 */
#include "heap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define CHUNK_MIN 16u
#define CHUNK_MAX 1024u
#define TCACHE_WAYS 4u
/* Retention defaults (.req.heap.retain-pages). */
#define RETAIN_SOFT_MIN ((size_t)16 << 20)
#define RETAIN_HARD_MIN ((size_t)64 << 20)
#define RETAIN_DELAY_MS 250u
/* The to-space reserve's floor (.req.trace.to-space-reserve): a first chunk of to-space. */
#define RESERVE_MIN 16u

/* The calling thread's current page per arena (.req.heap.lock-free-bump). Keyed by the arena's id, which is
 * never reused, and the heap epoch, which every collection bumps: a cache whose arena
 * was destroyed or collected is simply stale, nothing has to find and clear it. */
struct tcache {
    uint64_t id, epoch;
    char *cur, *end;
    size_t rslot, rgran; /* the recycled page this thread claimed (slot + 1, 0 = none) and the
                            granule of it to look for the next gap from (.req.heap.recycle-pinned) */
};
static size_t retained_total(const struct arena__heap *h);

static _Thread_local struct tcache tcache[TCACHE_WAYS];

static void tables_unmap(struct arena__heap *h)
{
    void *t[5] = {h->pages, h->starts, h->ends, h->marks, h->moved};
    for (int i = 0; i < 5; i++)
        if (t[i] != NULL)
            arena__map_table_free(t[i], h->table_bytes[i]);
}

int arena__heap_init(arena_t *a)
{
    struct arena__heap *h = calloc(1, sizeof *h);
    if (h == NULL)
        return ARENA_ENOMEM;
    h->nslots = a->cfg.reserve / a->page_size;
    h->granules = a->page_size / ARENA__GRANULE;
    h->words = h->granules / 64;
    h->chunk_pages = CHUNK_MIN;
    size_t bitmap = h->nslots * h->words * sizeof(uint64_t);
    h->table_bytes[0] = h->nslots * sizeof(struct arena__page);
    h->table_bytes[1] = h->table_bytes[2] = h->table_bytes[3] = h->table_bytes[4] = bitmap;
    h->pages = arena__map_table(h->table_bytes[0]);
    h->starts = arena__map_table(bitmap);
    h->ends = arena__map_table(bitmap);
    h->marks = arena__map_table(bitmap);
    /* Reserved like the others, not grown by the collector: its pages are committed where a
     * copy first sets a bit, never zeroed or copied in a pause. */
    h->moved = arena__map_table(bitmap);
    int err = 0;
    if (h->pages == NULL || h->starts == NULL || h->ends == NULL || h->marks == NULL || h->moved == NULL)
        err = arena__os_error(ARENA_ENOMEM);
    else
        err = arena__view_create(a, ARENA_VIEW_EMPTY, h->nslots,
                                 ARENA_PROT_READ | ARENA_PROT_WRITE, 0, true, &a->heap_view);
    if (err != 0) {
        tables_unmap(h);
        free(h);
        return err;
    }
    h->base = arena__view_base(a->heap_view);
    a->heap = h;
    return 0;
}

/* The heap view itself is destroyed with every other view by arena_destroy. */
void arena__heap_fini(arena_t *a)
{
    struct arena__heap *h = a->heap;
    if (h == NULL)
        return;
    tables_unmap(h);
    free(h->holes);
    free(h->kept);
    free(h->parked);
    free(h->recycle);
    free(h->recycle_old);
    free(h);
    a->heap = NULL;
}

void arena__heap_forked(arena_t *a)
{
    if (a->heap != NULL)
        atomic_fetch_add(&a->heap->epoch, 1);
}

void arena__heap_old_slots(const arena_t *a, size_t end, uint64_t *bits)
{
    const struct arena__heap *h = a->heap;
    size_t top = h == NULL ? 0 : h->top < end ? h->top : end; /* nothing is old at or past top */
    for (size_t s = 0; s < top; s++) {
        const struct arena__page *pg = &h->pages[s];
        if ((pg->flags & ARENA__PAGE_OLD) && (pg->kind == ARENA__PAGE_SMALL || pg->kind == ARENA__PAGE_LARGE_HEAD ||
                                              pg->kind == ARENA__PAGE_LARGE_TAIL))
            bits[s >> 6] |= (uint64_t)1 << (s & 63);
    }
}

void arena__heap_stats(const arena_t *a, arena_stats_t *s)
{
    const struct arena__heap *h = a->heap;
    s->heap_pages = h->used_pages;
    s->live_bytes = h->live_bytes;
    s->allocated_bytes = __atomic_load_n(&h->allocated_bytes, __ATOMIC_RELAXED);
    s->retained_bytes = (h->retained_pages + h->nparked) * a->page_size;
}

size_t arena_allocated_bytes(const arena_t *a)
{
    if (a == NULL || a->heap == NULL)
        return 0;
    return __atomic_load_n(&a->heap->allocated_bytes, __ATOMIC_RELAXED);
}

/* allocated_bytes is written under the lock and read without it. */
static void allocated_add(struct arena__heap *h, size_t add, size_t sub)
{
    size_t v = __atomic_load_n(&h->allocated_bytes, __ATOMIC_RELAXED);
    __atomic_store_n(&h->allocated_bytes, v + add - sub, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------ object lookup -- */

size_t arena__heap_slot(const arena_t *a, const void *p)
{
    const char *base = a->heap->base;
    if ((const char *)p < base || (size_t)((const char *)p - base) >= a->heap->nslots * a->page_size)
        return (size_t)-1;
    return (size_t)((const char *)p - base) >> a->page_shift;
}

int arena_contains(const arena_t *a, const void *p)
{
    return a != NULL && a->heap != NULL && arena__heap_slot(a, p) != (size_t)-1;
}

static size_t last_bit_at_or_below(const uint64_t *map, size_t first, size_t bit)
{
    for (size_t w = bit >> 6;; w--) {
        uint64_t word = __atomic_load_n(&map[w], __ATOMIC_RELAXED);
        if (w == bit >> 6 && (bit & 63) != 63)
            word &= ((uint64_t)2 << (bit & 63)) - 1;
        if (word != 0)
            return w * 64 + 63 - (size_t)__builtin_clzll(word);
        if (w == first >> 6)
            return (size_t)-1;
    }
}

size_t arena__bit_next(const uint64_t *map, size_t bit, size_t limit)
{
    for (size_t w = bit >> 6; w < (limit + 63) >> 6; w++) {
        uint64_t word = __atomic_load_n(&map[w], __ATOMIC_RELAXED);
        if (w == bit >> 6)
            word &= ~(uint64_t)0 << (bit & 63);
        if (word != 0)
            return w * 64 + (size_t)__builtin_ctzll(word);
    }
    return (size_t)-1;
}

size_t arena__heap_size_at(const arena_t *a, size_t slot, const char *obj)
{
    const struct arena__heap *h = a->heap;
    size_t first = (size_t)(obj - a->heap->base) / ARENA__GRANULE;
    size_t last_page = slot;
    uint8_t kind = __atomic_load_n(&h->pages[slot].kind, __ATOMIC_RELAXED);
    if (kind == ARENA__PAGE_LARGE_HEAD)
        last_page = slot + __atomic_load_n(&h->pages[slot].aux, __ATOMIC_RELAXED) - 1;
    size_t from = kind == ARENA__PAGE_LARGE_HEAD ? last_page * h->granules : first;
    size_t end = arena__bit_next(h->ends, from, (last_page + 1) * h->granules);
    if (end == (size_t)-1)
        return 0;
    return (end + 1 - first) * ARENA__GRANULE;
}

char *arena__heap_find(const arena_t *a, const void *p, size_t *slot_out)
{
    const struct arena__heap *h = a->heap;
    size_t slot = arena__heap_slot(a, p);
    if (slot == (size_t)-1)
        return NULL;
    const struct arena__page *pg = &h->pages[slot];
    uint8_t kind = __atomic_load_n(&pg->kind, __ATOMIC_RELAXED);
    char *start;
    if (kind == ARENA__PAGE_LARGE_TAIL || kind == ARENA__PAGE_LARGE_HEAD) {
        if (kind == ARENA__PAGE_LARGE_TAIL)
            slot -= __atomic_load_n(&pg->aux, __ATOMIC_RELAXED);
        start = arena__view_slot_addr(a->heap_view, slot);
    } else if (kind == ARENA__PAGE_SMALL) {
        size_t bit = (size_t)((const char *)p - a->heap->base) / ARENA__GRANULE;
        if (arena__bit_get(h->starts, bit)) {
            /* p is in its object's first granule (runtimes mostly pass starts): inside it. */
            if (slot_out != NULL)
                *slot_out = slot;
            return a->heap->base + bit * ARENA__GRANULE;
        }
        size_t s = last_bit_at_or_below(h->starts, slot * h->granules, bit);
        if (s == (size_t)-1)
            return NULL;
        /* Inside that object when its end (the first end bit from its start on, most
         * often in the same word) is not below p's granule. */
        uint64_t w = __atomic_load_n(&h->ends[s >> 6], __ATOMIC_RELAXED) >> (s & 63);
        size_t end = w != 0 ? s + (size_t)__builtin_ctzll(w) : arena__bit_next(h->ends, s, (slot + 1) * h->granules);
        if (end == (size_t)-1 || end < bit)
            return NULL;
        if (slot_out != NULL)
            *slot_out = slot;
        return a->heap->base + s * ARENA__GRANULE;
    } else {
        return NULL;
    }
    size_t size = arena__heap_size_at(a, slot, start);
    if ((size_t)((const char *)p - start) >= size)
        return NULL;
    if (slot_out != NULL)
        *slot_out = slot;
    return start;
}

void *arena_object(const arena_t *a, const void *p)
{
    if (a == NULL || a->heap == NULL || p == NULL)
        return NULL;
    return arena__heap_find(a, p, NULL);
}

size_t arena_object_size(const arena_t *a, const void *obj)
{
    size_t slot;
    if (a == NULL || a->heap == NULL || obj == NULL || arena__heap_find(a, obj, &slot) != obj)
        return 0;
    return arena__heap_size_at(a, slot, obj);
}

/* ------------------------------------------------------------- slots, pages -- */

/* Mirror views show the heap's layout (.req.collect.mirrors-follow): a change to heap slots is made to them too. */
static int mirrors_set_run(arena_t *a, size_t slot, size_t file_page, size_t n)
{
    for (arena_view_t *v = a->views; v != NULL; v = arena__view_next(v)) {
        size_t nslots = arena__view_nslots(v);
        if (!arena__view_is_mirror(v) || slot >= nslots)
            continue;
        size_t m = n < nslots - slot ? n : nslots - slot;
        int err = arena__view_set_run(v, slot, file_page, m, ARENA_MOVE_MMAP_FIXED);
        if (err != 0)
            return err;
    }
    return 0;
}

static void run_remove(struct arena__hole *runs, size_t *nruns, size_t i, size_t used)
{
    runs[i].slot += used;
    runs[i].n -= used;
    if (runs[i].n == 0) {
        memmove(&runs[i], &runs[i + 1], (*nruns - i - 1) * sizeof runs[0]);
        (*nruns)--;
    }
}

/* First fit in a run list: exactly n slots when exact, else between 1 and n in *got. */
static bool runs_take(struct arena__hole *runs, size_t *nruns, size_t n, bool exact, size_t *slot,
                      size_t *got)
{
    for (size_t i = 0; i < *nruns; i++) {
        if (runs[i].n >= n || !exact) {
            *slot = runs[i].slot;
            *got = runs[i].n < n ? runs[i].n : n;
            run_remove(runs, nruns, i, *got);
            return true;
        }
    }
    return false;
}

/* The collector writes the mark and forwarding tables only inside a pause, where the first
 * write to a table page would fault: when slots for small objects are taken above the last
 * ones covered (mostly in the mutator's refills), the table pages that cover them are
 * populated, a table page (which covers many heap pages) at a time. Not for large objects
 * (one mark each), and only once the slots are had: a refused request commits nothing. Only
 * advice, as for heap pages. */
static void tables_cover(struct arena__heap *h, size_t slot, size_t n)
{
    if (slot + n <= h->tables_top)
        return;
    if (slot < h->tables_top)
        slot = h->tables_top;
    size_t table_page = arena__os_page(), per_slot = h->words * sizeof(uint64_t);
    size_t from = slot * per_slot / table_page * table_page;
    size_t to = ((slot + n) * per_slot + table_page - 1) / table_page * table_page;
    if (to > h->table_bytes[3])
        to = h->table_bytes[3];
    arena__map_populate((char *)h->marks + from, to - from);
    arena__map_populate((char *)h->moved + from, to - from);
    h->tables_top = to / per_slot;
}

/* n unmapped free slots (exactly n when exact, else between 1 and n in *got): first fit
 * in the holes below top, else at the top. */
static int find_slots(struct arena__heap *h, size_t n, bool exact, size_t *slot, size_t *got)
{
    if (runs_take(h->holes, &h->nholes, n, exact, slot, got))
        return 0;
    if (n > h->nslots - h->top)
        return ARENA_ENOMEM;
    *slot = h->top;
    *got = n;
    h->top += n;
    return 0;
}

static void give_back_slots(struct arena__heap *h, size_t slot, size_t n)
{
    if (slot + n == h->top)
        h->top = slot;
    else if (h->nholes < h->holes_cap)
        h->holes[h->nholes++] = (struct arena__hole){slot, n};
    /* Otherwise the slots stay unused until the next collection rebuilds the holes. */
}

static bool have_mirror(const arena_t *a)
{
    for (const arena_view_t *v = a->views; v != NULL; v = arena__view_next(v))
        if (arena__view_is_mirror(v))
            return true;
    return false;
}

/* Mirrors show nothing at a retained slot (a FREE slot, .req.collect.mirrors-follow): reused, they show its page. */
static int mirrors_show(arena_t *a, size_t slot, size_t n)
{
    if (!have_mirror(a))
        return 0;
    for (size_t i = 0; i < n;) {
        size_t fp = a->heap->pages[slot + i].file_page, j = i + 1;
        while (j < n && a->heap->pages[slot + j].file_page == fp + (j - i))
            j++;
        int err = mirrors_set_run(a, slot + i, fp, j - i);
        if (err != 0) {
            mirrors_set_run(a, slot, ARENA_NO_PAGE, n);
            return err;
        }
        i = j;
    }
    return 0;
}

/* .req.collect.full-file-no-jam: evacuating a sparse page needs one page to copy into before the evacuated page becomes
 * a target itself. With the file at its cap and no page wholly dead there was none: every
 * collection freed nothing and allocation failed with ENOSPC for ever. So the mutator leaves
 * a few file pages free under the cap, only a collection takes them, and each collection ends
 * by releasing retained pages until they are free again. Files of fewer than 32 pages keep
 * none. */
#define COLLECTOR_RESERVE 2

size_t arena__heap_collector_reserve(const arena_t *a)
{
    return arena__backing_max_pages(a->backing) >= 32 ? COLLECTOR_RESERVE : 0;
}

int arena__heap_restore_reserve(arena_t *a)
{
    size_t max = arena__backing_max_pages(a->backing), used = arena__backing_used_pages(a->backing);
    size_t want = arena__heap_collector_reserve(a), free_now = max > used ? max - used : 0;
    size_t retained = retained_total(a->heap);
    if (free_now >= want || retained == 0)
        return 0;
    size_t give = want - free_now < retained ? want - free_now : retained;
    return arena__heap_trim(a, retained - give, NULL);
}

static int map_fresh(arena_t *a, size_t slot, size_t n)
{
    size_t fp;
    size_t keep = a->heap->collecting ? 0 : arena__heap_collector_reserve(a);
    size_t max = arena__backing_max_pages(a->backing), used = arena__backing_used_pages(a->backing);
    if (keep && used + n + keep > max)
        return ARENA_ENOSPC;
    int err = arena__backing_alloc(a->backing, n, &fp);
    if (err != 0)
        return err;
    err = arena__view_set_run(a->heap_view, slot, fp, n, ARENA_MOVE_MMAP_FIXED);
    if (err == 0)
        err = mirrors_set_run(a, slot, fp, n);
    if (err != 0) {
        arena__view_set_run(a->heap_view, slot, ARENA_NO_PAGE, n, ARENA_MOVE_MMAP_FIXED);
        mirrors_set_run(a, slot, ARENA_NO_PAGE, n);
        arena__backing_free(a->backing, fp, n);
        return err;
    }
    for (size_t i = 0; i < n; i++)
        a->heap->pages[slot + i].file_page = (uint32_t)(fp + i);
    /* .req.heap.chunks-no-hoarding: fallocate already made the file pages resident; one call fills the page
     * tables, instead of one shmem fault per page on first touch (dearer than an
     * anonymous fault). Only advice: an older kernel (EINVAL) or a refusal leaves the
     * pages to fault in as usual. Not for a one-pass collection's to-space (take_lazy). */
    if (!a->heap->take_lazy)
        arena__view_populate(a->heap_view, slot, n);
    return 0;
}

static int cmp_u32(const void *x, const void *y);

/* The last run of consecutive parked file pages (.req.heap.retain-pages), the parked list sorted
 * first: its length (0: none parked) and in *first its first file page. */
static size_t parked_run(struct arena__heap *h, size_t *first)
{
    if (h->nparked == 0)
        return 0;
    qsort(h->parked, h->nparked, sizeof *h->parked, cmp_u32);
    size_t i = h->nparked - 1;
    while (i > 0 && h->parked[i - 1] + 1 == h->parked[i])
        i--;
    *first = h->parked[i];
    return h->nparked - i;
}

/* Show parked file pages [fp, fp+n) at the unmapped slots [slot, slot+n) (they are resident and
 * allocated: no fallocate), then drop them from the parked list (its last n entries). On an
 * error the slots show nothing and the pages stay parked. */
static int map_parked(arena_t *a, size_t slot, size_t fp, size_t n)
{
    int err = arena__view_set_run(a->heap_view, slot, fp, n, ARENA_MOVE_MMAP_FIXED);
    if (err == 0)
        err = mirrors_set_run(a, slot, fp, n);
    if (err != 0) {
        arena__view_set_run(a->heap_view, slot, ARENA_NO_PAGE, n, ARENA_MOVE_MMAP_FIXED);
        mirrors_set_run(a, slot, ARENA_NO_PAGE, n);
        return err;
    }
    for (size_t i = 0; i < n; i++)
        a->heap->pages[slot + i].file_page = (uint32_t)(fp + i);
    a->heap->nparked -= n;
    if (!a->heap->take_lazy)
        arena__view_populate(a->heap_view, slot, n); /* advice, as for fresh pages */
    return 0;
}

/* Unmapped slots showing parked pages when a long enough run is parked (*dirty: they hold
 * old bytes), else fresh ones. */
static int take_unmapped(arena_t *a, size_t n, bool exact, size_t *slot, size_t *got, bool *dirty)
{
    struct arena__heap *h = a->heap;
    size_t fp = 0, run = parked_run(h, &fp);
    bool parked = run != 0 && (run >= n || !exact);
    if (parked && run < n)
        n = run;
    int err = find_slots(h, n, exact, slot, got);
    if (err != 0)
        return err;
    err = parked ? map_parked(a, *slot, fp + run - *got, *got) : map_fresh(a, *slot, *got);
    if (err != 0)
        give_back_slots(h, *slot, *got);
    *dirty = parked;
    return err;
}

/* Clear the bitmap words the UNSWEPT slots among [slot, slot+n) kept (.req.trace.lazy-sweep). */
static void sweep_unswept(struct arena__heap *h, size_t slot, size_t n)
{
    if (h->unswept == 0)
        return;
    size_t bytes = h->words * sizeof(uint64_t);
    for (size_t i = slot; i < slot + n; i++) {
        struct arena__page *pg = &h->pages[i];
        if (!(pg->flags & ARENA__PAGE_UNSWEPT))
            continue;
        memset(&h->starts[i * h->words], 0, bytes);
        memset(&h->ends[i * h->words], 0, bytes);
        memset(&h->marks[i * h->words], 0, bytes);
        pg->flags &= (uint16_t)~ARENA__PAGE_UNSWEPT;
        h->unswept--;
    }
}

/* Retained slots first (no system call, .req.heap.retain-pages), then parked pages (mapped, no
 * fallocate), else fresh ones. */
static int take_slots(arena_t *a, size_t n, bool exact, bool use_kept, int kind, size_t *slot_out,
                      size_t *got_out, bool *dirty)
{
    struct arena__heap *h = a->heap;
    size_t slot, got;
    bool kept = use_kept && runs_take(h->kept, &h->nkept, n, exact, &slot, &got);
    int err;
    bool old_bytes = kept;
    if (kept) {
        err = mirrors_show(a, slot, got);
        if (err != 0) {
            /* The run is simply not offered again until the next rebuild. */
            return err;
        }
        h->retained_pages -= got;
        sweep_unswept(h, slot, got); /* before the slots show objects again */
    } else {
        err = take_unmapped(a, n, exact, &slot, &got, &old_bytes);
        if (err != 0)
            return err;
    }
    for (size_t i = 0; i < got; i++) {
        struct arena__page *pg = &h->pages[slot + i];
        pg->live = 0;
        pg->pinned = 0;
        __atomic_store_n(&pg->flags, 0, __ATOMIC_RELAXED); /* read lock-free by arena_forward_check */
        __atomic_store_n(&pg->aux, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&pg->kind, (uint8_t)kind, __ATOMIC_RELEASE);
    }
    h->used_pages += got;
    if (kind != ARENA__PAGE_LARGE_HEAD)
        tables_cover(h, slot, got);
    *slot_out = slot;
    *got_out = got;
    if (dirty != NULL)
        *dirty = old_bytes;
    return 0;
}

int arena__heap_take(arena_t *a, size_t n, int kind, bool use_kept, size_t *slot_out, bool *dirty)
{
    size_t got;
    return take_slots(a, n, true, use_kept, kind, slot_out, &got, dirty);
}

int arena__heap_take_some(arena_t *a, size_t n, int kind, size_t *slot_out, size_t *got)
{
    a->heap->take_lazy = true;
    int err = take_slots(a, n, false, true, kind, slot_out, got, NULL);
    a->heap->take_lazy = false;
    return err;
}

static void mark_free(struct arena__heap *h, size_t slot, size_t n, uint16_t flags)
{
    size_t bits = h->words * sizeof(uint64_t);
    memset(&h->starts[slot * h->words], 0, n * bits);
    memset(&h->ends[slot * h->words], 0, n * bits);
    memset(&h->marks[slot * h->words], 0, n * bits);
    for (size_t i = 0; i < n; i++) {
        __atomic_store_n(&h->pages[slot + i].kind, ARENA__PAGE_FREE, __ATOMIC_RELAXED);
        h->pages[slot + i].live = 0;
        h->pages[slot + i].pinned = 0;
        h->pages[slot + i].aux = 0;
        h->pages[slot + i].flags = flags;
    }
}

void arena__heap_retain(arena_t *a, size_t slot, size_t n)
{
    mark_free(a->heap, slot, n, ARENA__PAGE_RETAINED);
    a->heap->used_pages -= n;
    a->heap->retained_pages += n;
}

void arena__heap_discard(arena_t *a, size_t slot, size_t n)
{
    mark_free(a->heap, slot, n, ARENA__PAGE_STALE);
    a->heap->used_pages -= n;
}

int arena__heap_unmap_stale(arena_t *a, size_t limit)
{
    struct arena__heap *h = a->heap;
    int err = 0;
    for (size_t s = 0; s < limit;) {
        if (!(h->pages[s].flags & ARENA__PAGE_STALE)) {
            s++;
            continue;
        }
        size_t e = s;
        while (e < limit && (h->pages[e].flags & ARENA__PAGE_STALE))
            h->pages[e++].flags = 0;
        int e2 = arena__view_set_run(a->heap_view, s, ARENA_NO_PAGE, e - s, ARENA_MOVE_MMAP_FIXED);
        /* Past the budget the slots keep showing punched pages: FREE, never read. */
        if (err == 0 && e2 != ARENA_EVMA)
            err = e2;
        s = e;
    }
    return err;
}

void arena__heap_retain_pool(arena_t *a, size_t slot, size_t n)
{
    struct arena__heap *h = a->heap;
    for (size_t i = slot; i < slot + n; i++) {
        struct arena__page *pg = &h->pages[i];
        __atomic_store_n(&pg->kind, ARENA__PAGE_FREE, __ATOMIC_RELAXED);
        pg->live = 0;
        pg->pinned = 0;
        pg->aux = 0;
        pg->flags = ARENA__PAGE_RETAINED;
    }
    h->used_pages -= n;
    h->retained_pages += n;
}

void arena__heap_retire_pool(arena_t *a)
{
    struct arena__heap *h = a->heap;
    if (h->pool_n != 0)
        arena__heap_retain_pool(a, h->pool_slot, h->pool_n); /* pool slots hold no object bits */
    h->pool_n = 0;
}

void arena__heap_drop_pool(arena_t *a)
{
    arena__heap_retire_pool(a);
    sweep_unswept(a->heap, 0, a->heap->top);
}

static int runs_append(struct arena__hole **runs, size_t *n, size_t *cap, size_t slot, size_t len)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 64;
        struct arena__hole *r = realloc(*runs, c * sizeof *r);
        if (r == NULL)
            return ARENA_ENOMEM; /* the runs left out are simply not reused this cycle */
        *runs = r;
        *cap = c;
    }
    (*runs)[(*n)++] = (struct arena__hole){slot, len};
    return 0;
}

static bool is_retained(const struct arena__page *pg)
{
    return pg->kind == ARENA__PAGE_FREE && (pg->flags & ARENA__PAGE_RETAINED);
}

int arena__heap_rebuild_free(arena_t *a)
{
    struct arena__heap *h = a->heap;
    size_t top = h->top;
    while (top > 0 && h->pages[top - 1].kind == ARENA__PAGE_FREE && !is_retained(&h->pages[top - 1]))
        top--;
    h->top = top;
    h->nholes = h->nkept = h->retained_pages = 0;
    int err = 0;
    for (size_t s = 0; s < top;) {
        if (h->pages[s].kind != ARENA__PAGE_FREE) {
            s++;
            continue;
        }
        bool kept = is_retained(&h->pages[s]);
        size_t e = s;
        /* Bounded by top: a retained run may end at the last slot of the reservation. */
        while (e < top && h->pages[e].kind == ARENA__PAGE_FREE && is_retained(&h->pages[e]) == kept)
            e++;
        if (kept) {
            h->retained_pages += e - s;
            if (err == 0)
                err = runs_append(&h->kept, &h->nkept, &h->kept_cap, s, e - s);
        } else if (err == 0) {
            err = runs_append(&h->holes, &h->nholes, &h->holes_cap, s, e - s);
        }
        s = e;
    }
    if (h->holes_cap == 0) {
        h->holes = malloc(64 * sizeof *h->holes);
        h->holes_cap = h->holes ? 64 : 0;
    }
    return err;
}

/* ------------------------------------------------------------ retained pages -- */

size_t arena__heap_retain_hard(const arena_t *a)
{
    size_t bytes = a->cfg.retain_max;
    if (bytes == 0) {
        bytes = a->heap->live_bytes * 4;
        bytes = bytes < RETAIN_HARD_MIN ? RETAIN_HARD_MIN : bytes;
    }
    return bytes / a->page_size;
}

size_t arena__heap_retain_soft(const arena_t *a)
{
    size_t bytes = a->cfg.retain_bytes, hard = arena__heap_retain_hard(a);
    if (bytes == 0) {
        bytes = a->heap->live_bytes * 2;
        bytes = bytes < RETAIN_SOFT_MIN ? RETAIN_SOFT_MIN : bytes;
    }
    return bytes / a->page_size < hard ? bytes / a->page_size : hard;
}

static size_t retained_total(const struct arena__heap *h)
{
    return h->retained_pages + h->nparked;
}

int arena__heap_park(arena_t *a, const size_t *fp, size_t n)
{
    struct arena__heap *h = a->heap;
    if (h->nparked + n > h->parked_cap) {
        size_t cap = h->parked_cap ? h->parked_cap : 256;
        while (cap < h->nparked + n)
            cap *= 2;
        uint32_t *p = realloc(h->parked, cap * sizeof *p);
        if (p == NULL)
            return ARENA_ENOMEM;
        h->parked = p;
        h->parked_cap = cap;
    }
    for (size_t i = 0; i < n; i++)
        h->parked[h->nparked++] = (uint32_t)fp[i];
    return 0;
}

static int cmp_u32(const void *x, const void *y)
{
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
    return a < b ? -1 : a > b;
}

/* Punch the last n parked file pages (sorted first, so they go in runs). */
static int unpark(arena_t *a, size_t n)
{
    struct arena__heap *h = a->heap;
    qsort(h->parked, h->nparked, sizeof *h->parked, cmp_u32);
    int err = 0;
    size_t keep = h->nparked - n, i = keep;
    while (i < h->nparked) {
        size_t j = i + 1;
        while (j < h->nparked && h->parked[j] == h->parked[i] + (j - i))
            j++;
        int e = arena__backing_free(a->backing, h->parked[i], j - i);
        if (e != 0) {
            /* Still allocated: it stays parked for a later trim. */
            if (err == 0)
                err = e;
            memmove(&h->parked[keep], &h->parked[i], (j - i) * sizeof *h->parked);
            keep += j - i;
        }
        i = j;
    }
    h->nparked = keep;
    return err;
}

/* Unmap retained slots [slot, slot+n) in every view, then punch their file pages (.req.heap.release-order
 * order). A page whose punch failed is parked. */
int arena__heap_free_file(arena_t *a, size_t fp, size_t n)
{
    int err = arena__backing_free(a->backing, fp, n);
    if (err == 0)
        return 0;
    size_t list[64];
    for (size_t k = 0; k < n; k += 64) {
        size_t m = n - k < 64 ? n - k : 64;
        for (size_t q = 0; q < m; q++)
            list[q] = fp + k + q;
        (void)arena__heap_park(a, list, m); /* else leaked to the file until destroy */
    }
    return err;
}

static int release_kept(arena_t *a, size_t slot, size_t n)
{
    struct arena__heap *h = a->heap;
    int err = arena__view_set_run(a->heap_view, slot, ARENA_NO_PAGE, n, ARENA_MOVE_MMAP_FIXED);
    if (err != 0)
        return err; /* all-or-nothing: the slots stay retained */
    sweep_unswept(h, slot, n); /* unmapped free slots have clear bitmaps */
    (void)mirrors_set_run(a, slot, ARENA_NO_PAGE, n); /* mirrors already show nothing there */
    for (size_t i = 0; i < n;) {
        size_t fp = h->pages[slot + i].file_page, j = i + 1;
        while (j < n && h->pages[slot + j].file_page == fp + (j - i))
            j++;
        int e = arena__heap_free_file(a, fp, j - i);
        if (e != 0 && err == 0)
            err = e;
        i = j;
    }
    for (size_t i = 0; i < n; i++)
        h->pages[slot + i].flags = 0;
    h->retained_pages -= n;
    return err;
}

int arena__heap_trim(arena_t *a, size_t keep, size_t *released)
{
    struct arena__heap *h = a->heap;
    size_t before = retained_total(h);
    int err = 0;
    if (before > keep && h->nparked != 0) {
        size_t n = before - keep < h->nparked ? before - keep : h->nparked;
        err = unpark(a, n);
    }
    /* The highest runs first: the top of the heap shrinks, and so do its mappings. */
    bool shrunk = false;
    for (size_t i = h->nkept; i-- > 0 && retained_total(h) > keep;) {
        size_t excess = retained_total(h) - keep;
        size_t m = h->kept[i].n < excess ? h->kept[i].n : excess;
        size_t slot = h->kept[i].slot + h->kept[i].n - m;
        int e = release_kept(a, slot, m);
        if (e != 0 && err == 0)
            err = e;
        if (e == ARENA_EVMA || (e != 0 && h->pages[slot].flags & ARENA__PAGE_RETAINED))
            continue;
        h->kept[i].n -= m;
        shrunk = true;
    }
    if (released != NULL)
        *released = before - retained_total(h);
    /* A run whose punch failed was unmapped and its file pages parked: the retained total
     * is the same, but the runs changed, and an emptied run must not stay listed. */
    if (shrunk || before != retained_total(h)) {
        int e = arena__heap_rebuild_free(a);
        if (err == 0)
            err = e;
    }
    return err;
}

int arena__heap_purge_due(arena_t *a, uint64_t now, bool release)
{
    struct arena__heap *h = a->heap;
    size_t soft = arena__heap_retain_soft(a);
    if (retained_total(h) <= soft) {
        h->surplus_since = 0;
        return 0;
    }
    if (h->surplus_since == 0) {
        h->surplus_since = now ? now : 1;
        return 0;
    }
    uint64_t delay = (uint64_t)(a->cfg.retain_delay_ms ? a->cfg.retain_delay_ms : RETAIN_DELAY_MS) * 1000000u;
    if (!release || now - h->surplus_since < delay)
        return 0;
    h->surplus_since = 0;
    return arena__heap_trim(a, soft, NULL);
}

int arena_trim(arena_t *a, size_t keep)
{
    if (a == NULL)
        return ARENA_ENULL;
    int err = arena__callable(a);
    if (err)
        return err;
    pthread_mutex_lock(&a->lock);
    err = arena__heap_trim(a, keep / a->page_size, NULL);
    a->heap->surplus_since = 0;
    /* Memory given back on request stays given back: the next allocation does not take a
     * reserve above what the caller kept; the next one-pass collection sets it again. */
    if (a->heap->reserve_pages > keep / a->page_size)
        a->heap->reserve_pages = keep / a->page_size;
    pthread_mutex_unlock(&a->lock);
    return err;
}

/* ---------------------------------------------------------------- allocation -- */

static void set_object_bits(struct arena__heap *h, const arena_t *a, const char *obj, size_t size)
{
    size_t first = (size_t)(obj - a->heap->base) / ARENA__GRANULE;
    /* End first: a reader that sees the start bit then finds the end. */
    arena__bit_set(h->ends, first + size / ARENA__GRANULE - 1);
    arena__bit_set(h->starts, first);
}

void arena__heap_set_reserve(arena_t *a, size_t to_pages)
{
    /* The survivors of the next collection may outgrow this one's: half again as much. Never
     * above what the retention keeps without delay, so the purge does not fight it. */
    size_t want = to_pages + to_pages / 2, soft = arena__heap_retain_soft(a);
    want = want < RESERVE_MIN ? RESERVE_MIN : want;
    a->heap->reserve_pages = want < soft ? want : soft;
}

/* Slots [slot, slot+n), just taken as POOL, become a retained run (sorted into the list). */
static void reserve_add(arena_t *a, size_t slot, size_t n)
{
    struct arena__heap *h = a->heap;
    if (runs_append(&h->kept, &h->nkept, &h->kept_cap, slot, n) != 0) {
        /* No room in the list: the slots stay retained and the next rebuild lists them. */
        arena__heap_retain_pool(a, slot, n);
        return;
    }
    size_t i = h->nkept - 1;
    for (; i > 0 && h->kept[i - 1].slot > slot; i--)
        h->kept[i] = h->kept[i - 1];
    h->kept[i] = (struct arena__hole){slot, n};
    arena__heap_retain_pool(a, slot, n);
}

void arena__heap_retire_pool_listed(arena_t *a)
{
    struct arena__heap *h = a->heap;
    if (h->pool_n != 0)
        reserve_add(a, h->pool_slot, h->pool_n);
    h->pool_n = 0;
}

/* The reserve as it may be now: never above the retention's soft amount, which falls when a
 * later collection (arena_collect too) finds less alive, so the delayed purge never
 * releases what the pool would take back fresh (.req.trace.to-space-reserve). */
static size_t reserve_now(const arena_t *a)
{
    size_t soft = arena__heap_retain_soft(a);
    return a->heap->reserve_pages < soft ? a->heap->reserve_pages : soft;
}

/* .req.trace.to-space-reserve: while the retained pages are at or below the reserve, the pool
 * takes fresh (or parked) slots, populated by the mutator, and as many more as the reserve
 * lacks, which it retains; the retained pages above the reserve are used first. When no fresh
 * slot can be had (the file's cap, the mapping budget) the reserve is eaten as before. */
static int take_pool(arena_t *a, size_t want, size_t *slot, size_t *got, bool *dirty)
{
    struct arena__heap *h = a->heap;
    size_t reserve = reserve_now(a);
    if (h->retained_pages > reserve) {
        size_t spare = h->retained_pages - reserve;
        return take_slots(a, want < spare ? want : spare, false, true, ARENA__PAGE_POOL, slot, got, dirty);
    }
    size_t lack = reserve - h->retained_pages;
    if (take_slots(a, want + lack, false, false, ARENA__PAGE_POOL, slot, got, dirty) == 0) {
        if (*got > want) {
            reserve_add(a, *slot + want, *got - want);
            *got = want;
        }
        return 0;
    }
    return take_slots(a, want, false, true, ARENA__PAGE_POOL, slot, got, dirty);
}

/* A chunk of fresh slots for the pool: its size follows the heap (an eighth of it,
 * within bounds), so growth costs few system calls without hoarding (.req.heap.chunks-no-hoarding). */
static int pool_refill(arena_t *a)
{
    struct arena__heap *h = a->heap;
    size_t want = h->used_pages / 8;
    want = want < CHUNK_MIN ? CHUNK_MIN : want > CHUNK_MAX ? CHUNK_MAX : want;
    size_t slot, got;
    bool dirty = false;
    (void)arena__heap_purge_due(a, arena__os_now_ns(), true); /* retained pages no one wanted */
    int err = take_pool(a, want, &slot, &got, &dirty);
    if (err != 0 && want > 1)
        err = take_pool(a, 1, &slot, &got, &dirty);
    if (err != 0)
        return err;
    h->pool_slot = slot;
    h->pool_n = got;
    h->pool_dirty = dirty;
    return 0;
}

/* ---------------------------------------------------- recycled pinned pages -- */

/* .req.heap.recycle-pinned: a pinned page stays where it is with the gaps its dead objects
 * left, which nothing else would fill until the pins go (Boehm GC reuses such space through
 * its free lists; Immix, Blackburn and McKinley PLDI 2008, bumps through the free lines of
 * "recyclable" blocks). A page fuller than this has few gaps an object fits in. */
#define RECYCLE_MAX_PERCENT 75u

void arena__heap_recycle_begin(arena_t *a)
{
    struct arena__heap *h = a->heap;
    h->nrecycle = h->recycle_next = 0;
    h->recycle_epoch = atomic_load_explicit(&h->epoch, memory_order_relaxed);
}

void arena__heap_recycle_add(arena_t *a, size_t slot)
{
    struct arena__heap *h = a->heap;
    const struct arena__page *pg = &h->pages[slot];
    /* Not after a one-pass collection (its young mode would take new objects in an old page
     * for old ones), not with ARENA_DEBUG_FORWARD (arena_forward_check tells new objects by
     * their pages), never a meshed page (its free granules hold another slot's objects). */
    if (h->one_pass || (a->cfg.debug & ARENA_DEBUG_FORWARD) || pg->kind != ARENA__PAGE_SMALL ||
        (pg->flags & ARENA__PAGE_MESHED) || pg->live > a->page_size / 100 * RECYCLE_MAX_PERCENT)
        return;
    if (h->nrecycle == h->recycle_cap) {
        size_t cap = h->recycle_cap ? h->recycle_cap * 2 : 256;
        uint32_t *r = realloc(h->recycle, cap * sizeof *r);
        if (r == NULL)
            return;
        h->recycle = r;
        uint64_t *o = realloc(h->recycle_old, cap * h->words * sizeof *o);
        if (o == NULL)
            return;
        h->recycle_old = o;
        h->recycle_cap = cap;
    }
    memcpy(h->recycle_old + h->nrecycle * h->words, h->starts + slot * h->words, h->words * sizeof(uint64_t));
    h->recycle[h->nrecycle++] = (uint32_t)slot;
}

size_t arena__heap_recycle_claimed(const arena_t *a, const uint32_t **slots, const uint64_t **old)
{
    const struct arena__heap *h = a->heap;
    *slots = h->recycle;
    *old = h->recycle_old;
    return h->recycle_next;
}

/* The first gap of at least n granules in slot's page from page granule g on (g is free or
 * an object's start): [*from, *to) in heap granules. */
static bool next_gap(const struct arena__heap *h, size_t slot, size_t g, size_t n, size_t *from, size_t *to)
{
    size_t limit = (slot + 1) * h->granules;
    for (size_t b = slot * h->granules + g; b < limit;) {
        size_t s = arena__bit_next(h->starts, b, limit);
        size_t e = s == (size_t)-1 || s > limit ? limit : s;
        if (e - b >= n) {
            *from = b;
            *to = e;
            return true;
        }
        size_t last = arena__bit_next(h->ends, e, limit);
        if (last == (size_t)-1 || last >= limit)
            return false;
        b = last + 1;
    }
    return false;
}

/* The next gap of at least size bytes in the recycled page the thread claimed, else in the
 * next page of the list, which the thread claims: only it writes that page's bitmap words
 * (.req.heap.lock-free-bump) until the next collection voids every claim. At most one page
 * is claimed per call, so an object no gap fits costs one page of the list, not all of it
 * (the claim stays for smaller objects); objects above a quarter page do not look. NULL
 * when nothing fits. a->lock held. */
static char *take_gap(arena_t *a, struct tcache *c, uint64_t now, size_t size, char **end)
{
    struct arena__heap *h = a->heap;
    if (h->recycle_epoch != now || size > a->page_size / 4)
        return NULL;
    for (int claims = 0;; claims++) {
        if (c->rslot != 0) {
            size_t slot = c->rslot - 1, from, to;
            if (next_gap(h, slot, c->rgran, size / ARENA__GRANULE, &from, &to)) {
                c->rgran = to - slot * h->granules;
                *end = h->base + to * ARENA__GRANULE;
                return h->base + from * ARENA__GRANULE;
            }
            if (claims > 0)
                return NULL;
            c->rslot = 0;
        }
        if (h->recycle_next == h->nrecycle)
            return NULL;
        c->rslot = (size_t)h->recycle[h->recycle_next++] + 1;
        c->rgran = 0;
    }
}

/* The errno value arena_alloc leaves for err: the kernel's own (err is -errno), else
 * fallback (a budget or other refusal of the library: no memory for the heap). */
static int errno_of(int err, int fallback)
{
    return err < 0 && err > ARENA_ELIBRARY ? -err : fallback;
}

/* A new current page for a bump cache whose page is [*cur, *end) of epoch *epoch (valid
 * says whether that page is still this heap's): the unused rest is uncounted, the page is
 * taken from the pool under the lock and cleared outside it when it was retained. Returns
 * the page with [*cur, *end) and *epoch set to it, or NULL with errno set. */
static char *take_page(arena_t *a, struct tcache *c, size_t size, bool valid, char **cur, char **end,
                       uint64_t *epoch)
{
    struct arena__heap *h = a->heap;
    pthread_mutex_lock(&a->lock);
    uint64_t now = atomic_load_explicit(&h->epoch, memory_order_relaxed);
    if (valid && *epoch == now)
        allocated_add(h, 0, (size_t)(*end - *cur));
    *cur = *end = NULL;
    if (c != NULL) {
        if (!valid || *epoch != now)
            c->rslot = 0; /* a claim of an earlier epoch, or of a destroyed arena */
        char *gap_end, *gap = take_gap(a, c, now, size, &gap_end);
        if (gap != NULL) {
            allocated_add(h, (size_t)(gap_end - gap), 0);
            pthread_mutex_unlock(&a->lock);
            memset(gap, 0, (size_t)(gap_end - gap)); /* dead objects' bytes; a tracked page may fault */
            *cur = gap;
            *end = gap_end;
            *epoch = now;
            return gap;
        }
    }
    int err = h->pool_n == 0 ? pool_refill(a) : 0;
    if (err != 0) {
        pthread_mutex_unlock(&a->lock);
        errno = errno_of(err, ENOMEM);
        return NULL;
    }
    size_t slot = h->pool_slot++;
    h->pool_n--;
    __atomic_store_n(&h->pages[slot].kind, ARENA__PAGE_SMALL, __ATOMIC_RELEASE);
    allocated_add(h, a->page_size, 0);
    bool dirty = h->pool_dirty;
    pthread_mutex_unlock(&a->lock);
    char *page = arena__view_slot_addr(a->heap_view, slot);
    /* A retained page holds a dead page's bytes (.req.heap.retain-pages); outside the lock, since a tracked
     * page may fault here. */
    if (dirty)
        memset(page, 0, a->page_size);
    *cur = page;
    *end = page + a->page_size;
    *epoch = now;
    return page;
}

/* ------------------------------------------------------- shuffled placement -- */

/* .req.heap.shuffle (cfg.shuffle, Mesh's shuffle vectors): an object of at most SHUFFLE_MAX
 * bytes goes to a random free slot of a page of its size class, which the thread owns as it
 * owns its bump page; the page's slots are handed out in the order of a Fisher-Yates
 * permutation drawn when the page is taken. One class per granule count: a slot is exactly
 * its objects' size (coarser classes would leave slack in every slot). Order entries are 16
 * bits, not Mesh's 8: a page holds up to page/16 objects (arena.c refuses pages the entries
 * cannot number). */
#define SHUFFLE_MAX 1024u
#define SHUFFLE_CLASSES (SHUFFLE_MAX / ARENA__GRANULE)

struct shuffle_page {
    char *page;                     /* NULL: none yet */
    uint64_t epoch;                 /* the epoch the page belongs to */
    uint16_t *order;                /* the slots not handed out: order[0..left) */
    uint16_t stride, n, left;       /* slot size in granules, slots, slots not handed out */
};

struct shuffle {
    uint64_t id;                    /* the arena it belongs to (as tcache.id) */
    size_t granules;                /* that arena's granules per page: the orders' sizes */
    uint64_t rng;
    char *cur, *end;                /* bump page for objects above SHUFFLE_MAX */
    uint64_t epoch;
    struct shuffle_page cls[SHUFFLE_CLASSES];
    uint16_t orders[];              /* every class's order, one after the other */
};

/* Class k holds objects of k + 1 granules. */
static size_t shuffle_stride(size_t k)
{
    return k + 1;
}

/* Per thread, per tcache way: malloc'd at a thread's first shuffled allocation (nothing for
 * threads and arenas that never shuffle), freed by a key destructor when the thread exits.
 * Not a tcache field: a larger tcache costs arena_alloc's fast path an instruction. */
static _Thread_local struct shuffle *shuffles[TCACHE_WAYS];
static pthread_key_t shuffle_key;
static bool shuffle_key_ok;
static pthread_once_t shuffle_once = PTHREAD_ONCE_INIT;

static void shuffle_free(void *unused)
{
    (void)unused;
    for (size_t w = 0; w < TCACHE_WAYS; w++) {
        free(shuffles[w]);
        shuffles[w] = NULL;
    }
}

static void shuffle_key_init(void)
{
    shuffle_key_ok = pthread_key_create(&shuffle_key, shuffle_free) == 0;
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* A fresh state for a: NULL when it cannot be had (no memory, no key). */
static __attribute__((noinline)) struct shuffle *shuffle_new(arena_t *a, struct shuffle *old)
{
    size_t granules = a->heap->granules, total = 0;
    for (size_t k = 0; k < SHUFFLE_CLASSES; k++)
        total += granules / shuffle_stride(k);
    struct shuffle *s = old;
    if (s == NULL || s->granules != granules) {
        (void)pthread_once(&shuffle_once, shuffle_key_init);
        if (!shuffle_key_ok || (s = malloc(sizeof *s + total * sizeof(uint16_t))) == NULL)
            return NULL;
        if (pthread_setspecific(shuffle_key, shuffles) != 0) {
            free(s);
            return NULL;
        }
        free(old);
    }
    /* Another arena's pages (destroyed or not) are dropped, uncounted, as a stale tcache's. */
    memset(s, 0, sizeof *s);
    s->id = a->id;
    s->granules = granules;
    for (size_t k = 0, at = 0; k < SHUFFLE_CLASSES; k++) {
        s->cls[k].order = s->orders + at;
        at += granules / shuffle_stride(k);
    }
    /* One stream per thread and arena: the seed, then the order threads came. */
    uint64_t stream = atomic_fetch_add_explicit(&a->heap->shuffle_streams, 1, memory_order_relaxed);
    s->rng = (a->cfg.shuffle_seed ? a->cfg.shuffle_seed : arena__os_now_ns() ^ (uintptr_t)s) +
             stream * 0x2545f4914f6cdd1du;
    (void)splitmix64(&s->rng);
    return s;
}

/* The calling thread's state for a, fresh when the way last served another arena; NULL
 * when it cannot be had: the caller allocates unshuffled. */
static inline __attribute__((always_inline)) struct shuffle *shuffle_state(arena_t *a)
{
    struct shuffle **sp = &shuffles[a->id % TCACHE_WAYS];
    if (*sp != NULL && (*sp)->id == a->id)
        return *sp;
    struct shuffle *s = shuffle_new(a, *sp);
    if (s == NULL && *sp != NULL && (*sp)->granules != a->heap->granules)
        return NULL; /* the old state stays for its own arena */
    *sp = s;
    return s;
}

/* Uniform in [0, n) (Lemire's multiply-shift; the bias for n <= 4096 is below 2^-52). */
static size_t shuffle_below(struct shuffle *s, size_t n)
{
    return (size_t)(((unsigned __int128)splitmix64(&s->rng) * n) >> 64);
}

/* A fresh page for class k: the unused slots of the old one are uncounted (when it is of
 * this epoch), the slots are shuffled. False with errno set when no page can be had. */
static __attribute__((noinline)) bool shuffle_refill(arena_t *a, struct shuffle *s, struct shuffle_page *cp,
                                                     size_t k)
{
    char *cur = NULL, *end = NULL;
    if (cp->page != NULL) {
        size_t used = (size_t)(cp->n - cp->left) * cp->stride * ARENA__GRANULE;
        cur = cp->page + used; /* [cur, end): the bytes of the page this thread did not use */
        end = cp->page + a->page_size;
    }
    size_t stride = shuffle_stride(k), n = s->granules / stride;
    char *page = take_page(a, NULL, stride * ARENA__GRANULE, cp->page != NULL, &cur, &end, &cp->epoch);
    cp->page = page;
    if (page == NULL)
        return false;
    cp->stride = (uint16_t)stride;
    cp->n = cp->left = (uint16_t)n;
    for (size_t i = 0; i < n; i++)
        cp->order[i] = (uint16_t)i;
    for (size_t i = n - 1; i > 0; i--) { /* Fisher-Yates (Durstenfeld) */
        size_t j = shuffle_below(s, i + 1);
        uint16_t t = cp->order[i];
        cp->order[i] = cp->order[j];
        cp->order[j] = t;
    }
    return true;
}

/* An object of size bytes (rounded, at most a page) with shuffling on. */
static inline __attribute__((always_inline)) void *shuffled_alloc(arena_t *a, struct shuffle *s, size_t size)
{
    struct arena__heap *h = a->heap;
    uint64_t now = atomic_load_explicit(&h->epoch, memory_order_relaxed);
    if (size > SHUFFLE_MAX) {
        if (s->cur == NULL || s->epoch != now || (size_t)(s->end - s->cur) < size) {
            if (take_page(a, NULL, size, s->cur != NULL, &s->cur, &s->end, &s->epoch) == NULL)
                return NULL;
        }
        char *obj = s->cur;
        s->cur += size;
        set_object_bits(h, a, obj, size);
        return obj;
    }
    size_t k = size / ARENA__GRANULE - 1;
    struct shuffle_page *cp = &s->cls[k];
    if (cp->page == NULL || cp->epoch != now || cp->left == 0) {
        if (!shuffle_refill(a, s, cp, k))
            return NULL;
    }
    char *obj = cp->page + (size_t)cp->order[--cp->left] * cp->stride * ARENA__GRANULE;
    set_object_bits(h, a, obj, size);
    return obj;
}

/* A new bump page for the thread's cache c, and the object of size bytes at its start. */
static void *alloc_page(arena_t *a, struct tcache *c, size_t size)
{
    bool valid = c->id == a->id;
    c->id = 0;
    char *page = take_page(a, c, size, valid, &c->cur, &c->end, &c->epoch);
    if (page == NULL)
        return NULL;
    c->id = a->id;
    c->cur += size;
    set_object_bits(a->heap, a, page, size);
    return page;
}

/* arena_alloc's slow path with cfg.shuffle on; without state for the thread, unshuffled.
 * Out of line (alloc_slow jumps here), so the path without the option keeps its shape. */
static __attribute__((noinline)) void *alloc_slow_shuffled(arena_t *a, struct tcache *c, size_t size)
{
    struct shuffle *s = shuffle_state(a);
    return s != NULL ? shuffled_alloc(a, s, size) : alloc_page(a, c, size);
}

/* From a callback of arena_trace_collect the lock is this thread's already: refused with
 * EDEADLK instead of waiting forever (.req.trace.callback-calls). The fast paths never get
 * here then either: the collection started a new epoch. */
static bool refuse_in_callback(const arena_t *a)
{
    if (arena__callable(a) != ARENA_ESTATE)
        return false;
    errno = EDEADLK;
    return true;
}

static void *alloc_slow(arena_t *a, struct tcache *c, size_t size)
{
    if (refuse_in_callback(a))
        return NULL;
    if (a->cfg.shuffle)
        return alloc_slow_shuffled(a, c, size);
    return alloc_page(a, c, size);
}

static void *alloc_large(arena_t *a, size_t size)
{
    if (refuse_in_callback(a))
        return NULL;
    struct arena__heap *h = a->heap;
    size_t n = (size + a->page_size - 1) >> a->page_shift, slot;
    bool dirty = false;
    pthread_mutex_lock(&a->lock);
    /* Fresh slots rather than the to-space reserve's (.req.trace.to-space-reserve), when they can be had. */
    bool spare = h->retained_pages >= reserve_now(a) + n;
    int err = arena__heap_take(a, n, ARENA__PAGE_LARGE_HEAD, spare, &slot, &dirty);
    if (err != 0 && !spare)
        err = arena__heap_take(a, n, ARENA__PAGE_LARGE_HEAD, true, &slot, &dirty);
    if (err == 0) {
        h->pages[slot].aux = (uint32_t)n;
        for (size_t i = 1; i < n; i++) {
            __atomic_store_n(&h->pages[slot + i].aux, (uint32_t)i, __ATOMIC_RELAXED);
            __atomic_store_n(&h->pages[slot + i].kind, ARENA__PAGE_LARGE_TAIL, __ATOMIC_RELEASE);
        }
        allocated_add(h, size, 0);
    }
    pthread_mutex_unlock(&a->lock);
    if (err != 0) {
        errno = errno_of(err, ENOMEM);
        return NULL;
    }
    char *obj = arena__view_slot_addr(a->heap_view, slot);
    if (dirty)
        memset(obj, 0, n * a->page_size);
    set_object_bits(h, a, obj, size);
    return obj;
}

void *arena_alloc(arena_t *a, size_t size)
{
    if (a == NULL || size == 0 || size > a->cfg.reserve) {
        errno = EINVAL;
        return NULL;
    }
    if (arena__broken(a)) {
        errno = errno_of(arena__broken(a), EIO);
        return NULL;
    }
    size = (size + ARENA__GRANULE - 1) & ~(size_t)(ARENA__GRANULE - 1);
    if (size > a->page_size)
        return alloc_large(a, size);
    struct arena__heap *h = a->heap;
    struct tcache *c = &tcache[a->id % TCACHE_WAYS];
    /* .req.heap.lock-free-bump: the fast path touches only this thread's cache and its own page's bitmap words. */
    if (c->id == a->id && c->epoch == atomic_load_explicit(&h->epoch, memory_order_relaxed) &&
        (size_t)(c->end - c->cur) >= size) {
        char *obj = c->cur;
        c->cur += size;
        set_object_bits(h, a, obj, size);
        return obj;
    }
    return alloc_slow(a, c, size);
}

/* ------------------------------------------------------ inline allocation -- */

int arena_lab_init(arena_t *a, arena_lab_t *lab)
{
    if (a == NULL || lab == NULL)
        return ARENA_ENULL;
    if (arena__broken(a))
        return arena__broken(a);
    struct arena__heap *h = a->heap;
    *lab = (arena_lab_t){.cur = NULL, .end = NULL, .base = h->base, .starts = h->starts,
                         .ends = h->ends, .epoch_now = (const uint64_t *)&h->epoch,
                         .epoch = UINT64_MAX, .arena = a, .next = NULL, .last = NULL,
                         .unused = 0, .dirty = 0};
    return 0;
}

/* Pool pages a lab takes under one lock (at least one): entering the next of them is then
 * a bump of lab->next, as arena_lab_alloc's is of lab->cur. */
#define LAB_BATCH_BYTES ((size_t)64 << 10)

/* Forget lab's pages: the rest of the current one, the pages not entered and the rests
 * noted in lab->unused leave the allocated bytes, unless a collection (or fork) since
 * they were taken already recounted them. a->lock held. */
static void lab_drop(arena_lab_t *lab, arena_t *a, uint64_t now)
{
    if (lab->cur != NULL && lab->epoch == now)
        allocated_add(a->heap, 0, (size_t)(lab->end - lab->cur) + (size_t)(lab->last - lab->next) + lab->unused);
    lab->cur = lab->end = lab->next = lab->last = NULL;
    lab->unused = 0;
}

/* lab's current page becomes [page, page + page size), cleared when dirty, with the object
 * of size bytes at its start. */
static void *lab_enter(arena_lab_t *lab, arena_t *a, char *page, bool dirty, size_t size)
{
    /* A retained page holds a dead page's bytes (.req.heap.retain-pages); cleared outside
     * the lock, since a tracked page may fault here. */
    if (dirty)
        memset(page, 0, a->page_size);
    lab->cur = page + size;
    lab->end = page + a->page_size;
    set_object_bits(a->heap, a, page, size);
    return page;
}

/* A batch of pool pages for lab (.req.heap.lock-free-bump), and the object of size bytes at
 * the start of the first. NULL with errno set. */
static void *lab_page(arena_lab_t *lab, arena_t *a, size_t size)
{
    struct arena__heap *h = a->heap;
    pthread_mutex_lock(&a->lock);
    uint64_t now = atomic_load_explicit(&h->epoch, memory_order_relaxed);
    lab_drop(lab, a, now);
    int err = h->pool_n == 0 ? pool_refill(a) : 0;
    if (err != 0) {
        pthread_mutex_unlock(&a->lock);
        errno = errno_of(err, ENOMEM);
        return NULL;
    }
    size_t want = LAB_BATCH_BYTES >> a->page_shift, n = want == 0 ? 1 : want < h->pool_n ? want : h->pool_n;
    size_t slot = h->pool_slot;
    h->pool_slot += n;
    h->pool_n -= n;
    for (size_t i = 0; i < n; i++)
        __atomic_store_n(&h->pages[slot + i].kind, ARENA__PAGE_SMALL, __ATOMIC_RELEASE);
    allocated_add(h, n * a->page_size, 0);
    bool dirty = h->pool_dirty;
    pthread_mutex_unlock(&a->lock);
    /* The pool's slots are consecutive, and so are their addresses in the heap view. */
    char *page = arena__view_slot_addr(a->heap_view, slot);
    lab->next = page + a->page_size;
    lab->last = page + n * a->page_size;
    lab->dirty = dirty;
    lab->epoch = now;
    return lab_enter(lab, a, page, dirty, size);
}

/* arena_lab_refill with cfg.shuffle on: the lab never gets a page, unless the thread has no
 * state: then it bumps as without the option. Out of line, as alloc_slow_shuffled. */
static __attribute__((noinline)) void *lab_refill_shuffled(arena_lab_t *lab, arena_t *a, size_t size)
{
    struct shuffle *s = shuffle_state(a);
    if (s == NULL)
        return lab_page(lab, a, size);
    arena_lab_retire(lab);
    return shuffled_alloc(a, s, size);
}

void *arena_lab_refill(arena_lab_t *lab, size_t size)
{
    arena_t *a = lab == NULL ? NULL : lab->arena; /* NULL lab: EINVAL, as arena_alloc(NULL) */
    if (a == NULL || size == 0 || size > a->page_size)
        return arena_alloc(a, size); /* large objects (and errors) take the ordinary path */
    if (arena__broken(a)) {
        errno = errno_of(arena__broken(a), EIO);
        return NULL;
    }
    if (refuse_in_callback(a))
        return NULL;
    size_t rounded = (size + ARENA__GRANULE - 1) & ~(size_t)(ARENA__GRANULE - 1);
    if (a->cfg.shuffle)
        return lab_refill_shuffled(lab, a, rounded);
    /* The next page of the batch, without the lock, while no collection happened since the
     * batch was taken: as for arena_lab_alloc's bump, no collection runs while the thread
     * allocates, so the epoch cannot change under it. */
    if (lab->next != lab->last &&
        lab->epoch == atomic_load_explicit(&a->heap->epoch, memory_order_relaxed)) {
        char *page = lab->next;
        lab->next += a->page_size;
        lab->unused += (size_t)(lab->end - lab->cur);
        return lab_enter(lab, a, page, lab->dirty, rounded);
    }
    return lab_page(lab, a, rounded);
}

void arena_lab_retire(arena_lab_t *lab)
{
    arena_t *a = lab == NULL ? NULL : lab->arena;
    if (a == NULL || lab->cur == NULL || arena__callable(a) == ARENA_ESTATE)
        return; /* from a trace callback: the lab stays as it is (.req.trace.callback-calls) */
    pthread_mutex_lock(&a->lock);
    lab_drop(lab, a, atomic_load_explicit(&a->heap->epoch, memory_order_relaxed));
    pthread_mutex_unlock(&a->lock);
}
