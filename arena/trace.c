/*
 * trace.c -- one trace per collection: the runtime's object format drives a single pass
 * that marks, evacuates and fixes (docs/design.md §7a, include/arena.h).
 *
 * Layer 6 beside collect.c (docs/design.md §2): calls heap.c only (and collect.c's
 * arena__gc_fini); it reads the heap's page table and bitmaps and takes and retains
 * slots through heap.c, never maps anything itself.
 *
 * Per page (flags set at the start, cleared at the end):
 *   CONDEMNED  objects here die unless the trace reaches them (marks bitmap);
 *   EVAC       a condemned page whose reached objects are copied out (Immix's
 *              opportunistic evacuation): the copy's address is written over the old
 *              object's first word and a bit in `fwd` says so.
 * Pages that are not condemned (to-space pages, and old pages in a young collection)
 * are never looked at by arena_fix: a reference to them is left as it is.
 * Grey objects: copies are scanned in to-space order (Cheney: to-space is the queue);
 * objects marked in place go on a stack. When the stack cannot grow, the object is
 * marked anyway and a later pass rescans every marked in-place object (fixing is
 * idempotent: a fixed field names a to-space copy or an object already marked).
 */
#include "collect.h"
#include "heap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* First sizes of the grey stack and the to-space list (push_grow, tospace_page double them). */
#define STACK_FIRST 1024
#define TO_FIRST 64

struct grey {
    char *obj;
    size_t size;
};

struct tospace {
    size_t slot;            /* heap slot */
    size_t used;            /* bytes copied into it */
};

/* What outlives a collection, so that a collection allocates nothing in the common case:
 * the kept-page bitmap, the grey stack and the to-space list. The forwarding bitmap is the
 * heap's (h->moved: all zero between collections, the sweep clears the words of the pages
 * that evacuated). */
struct arena__trace {
    uint64_t *kept;
    size_t kept_words;
    struct grey *stack;
    size_t stack_cap;
    struct tospace *to;
    size_t to_cap;
};

struct arena_ss {
    arena_ss_head_t head;   /* first: arena_fix_inline reads it (arena.h, .req.trace.fix-inline) */
    arena_t *a;
    struct arena__heap *h;
    char *base;             /* heap view base */
    size_t heap_bytes;
    size_t old_top;         /* slots below it existed before the collection */
    uint64_t *fwd;          /* h->moved: bit per granule below old_top, the object was copied */
    uint64_t *kept;         /* bit per slot below old_top: objects not condemned */
    struct grey *stack;
    size_t sp, cap;
    bool overflow;          /* an object could not be pushed: rescan (see above) */
    struct tospace *to;     /* to-space pages in fill order */
    size_t nto, to_cap;
    size_t pool, pool_n;    /* slots taken for to-space and not yet started */
    size_t chunk;           /* slots the next take asks for */
    size_t scan_page, scan_off;   /* the Cheney scan: next object in to-space */
    bool to_exhausted;      /* no more free pages: mark the rest in place */
    arena_collect_stats_t st;
    int err;                /* first kernel error met */
    bool premarked;         /* some page below old_top holds objects marked before the call */
    size_t reached;         /* objects arena_fix's common case reached: added to
                               st.objects_live after the trace (apart from st, so the two
                               counts are not updated as one vector) */
    const arena_format_t *fmt;
};

static void note_error(arena_ss_t *ss, int err)
{
    if (err < 0 && err > ARENA_ELIBRARY && ss->err == 0) /* the kernel's (-errno) */
        ss->err = err;
}

/* ---------------------------------------------------------------- to-space -- */

/* A fresh page for copies: slots are taken in chunks (16, doubling to 512) so a large
 * evacuation costs few mapping calls, and one at a time once a chunk is refused. The unused
 * rest of a chunk is retained at the end: the slack that lets the next collection find its
 * to-space among retained slots (.req.trace.to-space). */
static bool tospace_page(arena_ss_t *ss)
{
    arena_t *a = ss->a;
    if (ss->nto == ss->to_cap) {
        size_t cap = ss->to_cap ? 2 * ss->to_cap : TO_FIRST;
        struct tospace *t = realloc(ss->to, cap * sizeof *t);
        if (t == NULL)
            return false;
        ss->to = t;
        ss->to_cap = cap;
    }
    if (ss->pool_n == 0) {
        size_t want = ss->chunk, got = 0;
        ss->chunk = want < 512 ? 2 * want : want;
        if (arena__heap_take_some(a, want, ARENA__PAGE_POOL, &ss->pool, &got) != 0 &&
            arena__heap_take_some(a, 1, ARENA__PAGE_POOL, &ss->pool, &got) != 0)
            return false;
        ss->pool_n = got;
    }
    size_t slot = ss->pool++;
    ss->pool_n--;
    __atomic_store_n(&ss->h->pages[slot].kind, ARENA__PAGE_SMALL, __ATOMIC_RELEASE);
    ss->to[ss->nto++] = (struct tospace){slot, 0};
    return true;
}

/* Room for size bytes (at most a page) in to-space, or NULL when none can be had. */
static char *tospace_room(arena_ss_t *ss, size_t size)
{
    if (ss->to_exhausted)
        return NULL;
    struct tospace *t = ss->nto ? &ss->to[ss->nto - 1] : NULL;
    if (t == NULL || t->used + size > ss->a->page_size) {
        if (!tospace_page(ss)) {
            ss->to_exhausted = true;
            return NULL;
        }
        t = &ss->to[ss->nto - 1];
    }
    char *dst = (ss->base + t->slot * ss->a->page_size) + t->used;
    t->used += size;
    ss->h->pages[t->slot].live += (uint32_t)size;
    return dst;
}

/* ------------------------------------------------------------------- grey -- */

/* push with a full stack. Returns 0 (arena_fix's result: a tail call). */
static __attribute__((noinline)) int push_grow(arena_ss_t *ss, char *obj, size_t size)
{
    size_t cap = ss->cap ? 2 * ss->cap : STACK_FIRST;
    struct grey *g = realloc(ss->stack, cap * sizeof *g);
    if (g == NULL) {
        ss->overflow = true;
        return 0;
    }
    ss->stack = g;
    ss->cap = cap;
    ss->stack[ss->sp++] = (struct grey){obj, size};
    return 0;
}

static inline void push(arena_ss_t *ss, char *obj, size_t size)
{
    if (__builtin_expect(ss->sp == ss->cap, 0))
        push_grow(ss, obj, size);
    else
        ss->stack[ss->sp++] = (struct grey){obj, size};
}

/* Size of the small object starting at granule bit: its end bit is most often in the
 * same bitmap word. */
static inline size_t small_size(const struct arena__heap *h, size_t bit, size_t limit)
{
    size_t i = bit >> 6;
    uint64_t w = __atomic_load_n(&h->ends[i], __ATOMIC_RELAXED) >> (bit & 63);
    if (__builtin_expect(w != 0, 1))
        return ((size_t)__builtin_ctzll(w) + 1) * ARENA__GRANULE;
    /* An object's end bit is set before its start bit, on its page (below limit). */
    while (++i < limit / 64 && (w = __atomic_load_n(&h->ends[i], __ATOMIC_RELAXED)) == 0)
        ;
    size_t end = w != 0 ? i * 64 + (size_t)__builtin_ctzll(w) : limit - 1;
    return (end + 1 - bit) * ARENA__GRANULE;
}

static bool fwd_get(const arena_ss_t *ss, size_t bit)
{
    return (ss->fwd[bit >> 6] >> (bit & 63)) & 1;
}

/* Copy size bytes (a multiple of the granule): objects of a few granules, the common
 * case, without a call. */
static inline __attribute__((always_inline)) void copy_granules(char *dst, const char *src, size_t size)
{
    if (size <= 4 * ARENA__GRANULE) {
        for (size_t i = 0; i < size; i += ARENA__GRANULE)
            __builtin_memcpy(dst + i, src + i, ARENA__GRANULE);
    } else {
        memcpy(dst, src, size);
    }
}

/* Copy the object at obj (granule bit, size bytes, at most a page) into to-space and leave
 * its forwarding address; NULL when to-space has no room. */
static inline __attribute__((always_inline)) char *copy_out(arena_ss_t *ss, struct arena__page *pg, char *obj,
                                                            size_t bit, size_t size)
{
    struct arena__heap *h = ss->h;
    struct tospace *t = ss->nto ? &ss->to[ss->nto - 1] : NULL;
    char *dst;
    if (__builtin_expect(t != NULL && t->used + size <= ss->a->page_size, 1)) {
        dst = ss->base + t->slot * ss->a->page_size + t->used;
        t->used += size;
        h->pages[t->slot].live += (uint32_t)size;
    } else if ((dst = tospace_room(ss, size)) == NULL) {
        return NULL;
    }
    copy_granules(dst, obj, size);
    size_t g = (size_t)(dst - ss->base) / ARENA__GRANULE;
    arena__bit_set(h->ends, g + size / ARENA__GRANULE - 1);
    arena__bit_set(h->starts, g);
    memcpy(obj, &dst, sizeof dst);   /* the forwarding address */
    ss->fwd[bit >> 6] |= (uint64_t)1 << (bit & 63);
    pg->flags |= ARENA__PAGE_MOVED;   /* its mark and forwarding bits need clearing */
    ss->st.objects_evacuated++;
    ss->st.bytes_evacuated += size;
    return dst;   /* scanned when the Cheney scan reaches it */
}

static __attribute__((noinline)) char *evacuate(arena_ss_t *ss, struct arena__page *pg, char *obj, size_t bit,
                                                size_t size)
{
    return copy_out(ss, pg, obj, bit, size);
}

/* The object at obj (granule bit, on a condemned page) is reached for the first time:
 * copy it when its page is an evacuation candidate and to-space has room, else mark it
 * in place. Returns where it lives now. */
static inline __attribute__((always_inline)) char *reach(arena_ss_t *ss, struct arena__page *pg, char *obj,
                                                          size_t bit, size_t size)
{
    arena__bit_set(ss->h->marks, bit);
    ss->st.objects_live++;
    ss->st.bytes_live += size;
    if ((pg->flags & ARENA__PAGE_EVAC) && size <= ss->a->page_size) {
        char *dst = evacuate(ss, pg, obj, bit, size);
        if (dst != NULL)
            return dst;
    }
    pg->live += (uint32_t)size;
    push(ss, obj, size);
    return obj;
}

/* The first fix of a small object on an evacuation candidate: copied when to-space has
 * room (*ref follows), else marked in place. Returns 0. */
static __attribute__((noinline)) int reach_evac(arena_ss_t *ss, void **ref, struct arena__page *pg,
                                                size_t bit, size_t size)
{
    char *obj = *ref, *dst = copy_out(ss, pg, obj, bit, size);
    if (__builtin_expect(dst != NULL, 1)) {
        *ref = dst;
        return 0;
    }
    pg->live += (uint32_t)size;
    push(ss, obj, size);
    return 0;
}

static int fix_general(arena_ss_t *ss, void **ref, struct arena__page *pg, size_t slot, size_t off);

/* The common case is a first fix of a small object named by its start on a condemned page
 * (arena_fix_inline settled the others): one load of each bitmap word it needs, the mark
 * stored from the word read (only the collector writes marks during the trace), and every
 * other case a tail call to fix_general with what it needs recomputed there, so the common
 * case keeps few values live. */
int arena_fix(arena_ss_t *ss, void **ref)
{
    if (ss == NULL || ref == NULL)
        return ARENA_ENULL;
    char *p = *ref;
    /* One comparison: NULL and addresses below the heap wrap around to large offsets. */
    size_t off = (size_t)((uintptr_t)p - (uintptr_t)ss->base);
    if (off >= ss->heap_bytes)
        return 0;
    struct arena__heap *h = ss->h;
    struct arena__page *pg = &h->pages[off >> ss->head.page_shift];
    if (!(pg->flags & ARENA__PAGE_CONDEMNED)) {
        /* Not condemned: a to-space copy, an old object in a young collection, or a page
         * holding nothing (which the runtime should hear about). */
        return pg->kind == ARENA__PAGE_FREE || pg->kind == ARENA__PAGE_POOL ? ARENA_ENOTOBJ : 0;
    }
    if (__builtin_expect((off & (ARENA__GRANULE - 1)) != 0 || pg->kind != ARENA__PAGE_SMALL, 0))
        return fix_general(ss, ref, pg, off >> ss->head.page_shift, off);
    size_t w = off / (64 * ARENA__GRANULE);
    unsigned shift = (unsigned)(off / ARENA__GRANULE) & 63;
    uint64_t marks = __atomic_load_n(&h->marks[w], __ATOMIC_RELAXED);
    if (__builtin_expect(!(((__atomic_load_n(&h->starts[w], __ATOMIC_RELAXED) & ~marks) >> shift) & 1), 0))
        return fix_general(ss, ref, pg, off >> ss->head.page_shift, off);
    /* Its size: the end bit is most often in the same word (else fix_general finds it). */
    uint64_t ends = __atomic_load_n(&h->ends[w], __ATOMIC_RELAXED) >> shift;
    if (__builtin_expect(ends == 0, 0))
        return fix_general(ss, ref, pg, off >> ss->head.page_shift, off);
    __atomic_store_n(&h->marks[w], marks | (uint64_t)1 << shift, __ATOMIC_RELAXED);
    size_t size = ((size_t)__builtin_ctzll(ends) + 1) * ARENA__GRANULE;
    ss->reached++;
    ss->st.bytes_live += size;
    if (pg->flags & ARENA__PAGE_EVAC)
        return reach_evac(ss, ref, pg, off / ARENA__GRANULE, size);
    pg->live += (uint32_t)size;
    if (__builtin_expect(ss->sp == ss->cap, 0))
        return push_grow(ss, *ref, size);
    ss->stack[ss->sp++] = (struct grey){p, size};
    return 0;
}

/* arena_fix on a condemned page, every case but the first fix of a small object named by its
 * start: an interior address, a large object, an object already reached. */
static __attribute__((noinline)) int fix_general(arena_ss_t *ss, void **ref, struct arena__page *pg,
                                                 size_t slot, size_t off)
{
    struct arena__heap *h = ss->h;
    char *p = *ref, *obj = p;
    size_t bit = off / ARENA__GRANULE;
    if ((off & (ARENA__GRANULE - 1)) != 0 || pg->kind != ARENA__PAGE_SMALL || !arena__bit_get(h->starts, bit)) {
        obj = arena__heap_find(ss->a, p, &slot);   /* interior pointer, or a large object */
        if (obj == NULL)
            return ARENA_ENOTOBJ;
        pg = &h->pages[slot];
        bit = (size_t)(obj - ss->base) / ARENA__GRANULE;
    }
    char *now;
    if (arena__bit_get(h->marks, bit)) {
        if (!(pg->flags & ARENA__PAGE_EVAC) || !fwd_get(ss, bit))
            return 0;
        memcpy(&now, obj, sizeof now);
    } else {
        size_t size = pg->kind == ARENA__PAGE_SMALL ? small_size(h, bit, (slot + 1) * h->granules)
                                                    : arena__heap_size_at(ss->a, slot, obj);
        now = reach(ss, pg, obj, bit, size);
    }
    if (now != obj)
        *ref = now + (p - obj);
    return 0;
}

/* ------------------------------------------------------------------- trace -- */

static void scan(arena_ss_t *ss, char *obj, size_t size)
{
    ss->fmt->scan(ss, obj, size, ss->fmt->closure);
}

/* Scan grey objects until none is left: the stack (objects marked in place), then
 * to-space in order (the copies: Cheney's scan). Every callback may push, copy and grow
 * both, so each step reloads what it reads. */
static void drain(arena_ss_t *ss)
{
    const struct arena__heap *h = ss->h;
    const size_t page_size = ss->a->page_size;
    for (;;) {
        if (ss->sp != 0) {
            struct grey gr = ss->stack[--ss->sp];
            scan(ss, gr.obj, gr.size);
            continue;
        }
        size_t ti = ss->scan_page;
        if (ti >= ss->nto)
            return;
        if (ss->scan_off < ss->to[ti].used) {
            size_t slot = ss->to[ti].slot;
            char *obj = ss->base + slot * page_size + ss->scan_off;
            size_t size = small_size(h, (size_t)(obj - ss->base) / ARENA__GRANULE, (slot + 1) * h->granules);
            ss->scan_off += size;
            scan(ss, obj, size);
        } else if (ti + 1 < ss->nto) {
            ss->scan_page++;
            ss->scan_off = 0;
        } else {
            return;
        }
    }
}

/* Every object marked in place on a condemned page, in address order. */
static void each_marked_in_place(arena_ss_t *ss, void (*fn)(arena_ss_t *, char *, size_t))
{
    struct arena__heap *h = ss->h;
    for (size_t s = 0; s < ss->old_top; s++) {
        struct arena__page *pg = &h->pages[s];
        if (!(pg->flags & ARENA__PAGE_CONDEMNED) || pg->kind == ARENA__PAGE_LARGE_TAIL)
            continue;
        size_t first = s * h->granules, limit = first + h->granules;
        for (size_t bit = arena__bit_next(h->marks, first, limit); bit != (size_t)-1;
             bit = arena__bit_next(h->marks, bit + 1, limit)) {
            if ((pg->flags & ARENA__PAGE_EVAC) && fwd_get(ss, bit))
                continue;
            char *obj = ss->base + bit * ARENA__GRANULE;
            fn(ss, obj, arena__heap_size_at(ss->a, s, obj));
        }
    }
}

static void rescan(arena_ss_t *ss, char *obj, size_t size)
{
    scan(ss, obj, size);
    drain(ss);
}

/* Objects pinned or marked before the call: roots that stay where they are. */
static void push_premarked(arena_ss_t *ss)
{
    struct arena__heap *h = ss->h;
    if (!ss->premarked)
        return;
    for (size_t s = 0; s < ss->old_top; s++) {
        struct arena__page *pg = &h->pages[s];
        if (pg->live == 0 || pg->kind == ARENA__PAGE_LARGE_TAIL)
            continue;
        size_t first = s * h->granules, limit = first + h->granules;
        for (size_t bit = arena__bit_next(h->marks, first, limit); bit != (size_t)-1;
             bit = arena__bit_next(h->marks, bit + 1, limit)) {
            char *obj = ss->base + bit * ARENA__GRANULE;
            size_t size = arena__heap_size_at(ss->a, s, obj);
            if (pg->flags & ARENA__PAGE_CONDEMNED) {
                ss->st.objects_live++;
                ss->st.bytes_live += size;
            }
            push(ss, obj, size);
        }
    }
}

/* A young collection after arena_collect: the objects allocated since into the gaps of
 * its pinned pages (.req.heap.recycle-pinned) are young on old pages, which this
 * collection neither condemns nor scans, and the runtime's remembered set does not name
 * them (they are not old): they are roots that stay where they are, or the young objects
 * they reference would be freed or moved under them. */
static void push_recycled(arena_ss_t *ss)
{
    struct arena__heap *h = ss->h;
    const uint32_t *slots;
    const uint64_t *old;
    size_t n = arena__heap_recycle_claimed(ss->a, &slots, &old);
    for (size_t i = 0; i < n; i++) {
        size_t s = slots[i];
        if (s >= ss->old_top || h->pages[s].kind != ARENA__PAGE_SMALL || (h->pages[s].flags & ARENA__PAGE_CONDEMNED))
            continue;   /* a full collection traces the page like any other */
        for (size_t w = 0; w < h->words; w++) {
            size_t word = s * h->words + w;
            /* Marked ones are pinned since: push_premarked pushed them. */
            uint64_t young = h->starts[word] & ~old[i * h->words + w] & ~h->marks[word];
            while (young != 0) {
                size_t bit = word * 64 + (size_t)__builtin_ctzll(young);
                young &= young - 1;
                push(ss, ss->base + bit * ARENA__GRANULE, small_size(h, bit, (s + 1) * h->granules));
            }
        }
    }
}

static void trace(arena_ss_t *ss)
{
    push_premarked(ss);
    push_recycled(ss);
    ss->fmt->roots(ss, ss->fmt->closure);
    drain(ss);
    while (ss->overflow) {
        ss->overflow = false;
        each_marked_in_place(ss, rescan);
    }
}

/* ----------------------------------------------------------- before, after -- */

/* Condemn and choose candidates (Immix: sparse pages by the last collection's live
 * counts; pages allocated since have no count and hold the young, mostly dead). */
static void condemn(arena_ss_t *ss, int mode)
{
    struct arena__heap *h = ss->h;
    const bool young = mode == ARENA_TRACE_YOUNG;
    bool premarked = false;
    memset(ss->kept, 0, (ss->old_top + 63) / 64 * sizeof *ss->kept);
    for (size_t s = 0; s < ss->old_top; s++) {
        struct arena__page *pg = &h->pages[s];
        premarked |= pg->live != 0; /* arena_mark and arena_pin count what they mark */
        if (pg->kind == ARENA__PAGE_SMALL && pg->pinned == 0 && pg->flags == 0) {
            /* The common case, a page taken since the last collection (a nursery page). */
            pg->flags = ARENA__PAGE_CONDEMNED | ARENA__PAGE_EVAC;
            continue;
        }
        uint16_t was = pg->flags, f = was & (uint16_t)~(ARENA__PAGE_CONDEMNED | ARENA__PAGE_EVAC);
        if (pg->kind < ARENA__PAGE_SMALL || (young && (f & ARENA__PAGE_OLD))) {
            if (pg->kind >= ARENA__PAGE_SMALL)
                ss->kept[s >> 6] |= (uint64_t)1 << (s & 63);
            if (f != was)
                pg->flags = f;
            continue;
        }
        f |= ARENA__PAGE_CONDEMNED;
        if (pg->kind == ARENA__PAGE_SMALL && !pg->pinned && !(f & ARENA__PAGE_MESHED) &&
            (!(f & ARENA__PAGE_OLD) || (f & ARENA__PAGE_SPARSE)))
            f |= ARENA__PAGE_EVAC;
        pg->flags = f;
    }
    ss->premarked = premarked;
}

/* A run of consecutive condemned slots whose objects all died or moved (.req.trace.lazy-sweep);
 * moved: the objects copied out of its pages (marked, started, not dead). */
struct release {
    size_t slot, n, moved;
};

/* The sweep's helpers are inlined into sweep_body, which is compiled twice: with the
 * popcnt instruction where the CPU has it (the dead are counted a word at a time), and
 * without. */
#define SWEEP_INLINE static inline __attribute__((always_inline))

/* Dead pages stay mapped and resident (retained, .req.heap.retain-pages): the next allocations and the
 * next collection's to-space reuse them; finish() trims the surplus. The run's objects are
 * counted as its slots are retained, in one pass over its page entries and start words, and
 * those that moved (counted as its pages joined the run) are not dead. Its marks and
 * forwarding words are clear already (release_moved); the start and end bits are left for
 * heap.c to clear when a slot is used again (.req.trace.lazy-sweep). */
SWEEP_INLINE void release_flush(arena_ss_t *ss, struct release *r)
{
    if (r->n == 0)
        return;
    ss->st.objects_freed += arena__heap_retain_unswept(ss->h, r->slot, r->n) - r->moved;
    r->n = 0;
    r->moved = 0;
}

/* A dead page joins the run: when objects were copied out of it (ARENA__PAGE_MOVED), its marks
 * (theirs only: nothing on it is kept in place) are counted into r->moved and cleared with its
 * forwarding words; no other dead page has either (the bitmaps are all zero between
 * collections), so the pause writes no bitmap word of a page that held no survivor. */
SWEEP_INLINE void release_moved(arena_ss_t *ss, struct release *r, size_t s, uint16_t flags)
{
    if (!(flags & ARENA__PAGE_MOVED))
        return;
    const struct arena__heap *h = ss->h;
    uint64_t *marks = h->marks + s * h->words, *fwd = ss->fwd + s * h->words;
    for (size_t w = 0; w < h->words; w++) {
        r->moved += (size_t)__builtin_popcountll(marks[w]);
        marks[w] = 0;
        fwd[w] = 0;
    }
}

SWEEP_INLINE void release_add(arena_ss_t *ss, struct release *r, size_t slot, size_t n)
{
    if (r->n != 0 && r->slot + r->n != slot)
        release_flush(ss, r);
    if (r->n == 0)
        r->slot = slot;
    r->n += n;
}

/* A condemned small page after the trace: counts its dead objects (the unmarked) into
 * objects_freed, leaves marked only the objects kept in place (the forwarding words are
 * zero on pages that did not evacuate) and clears its forwarding words, so the bitmap is
 * all zero between collections. Returns whether it keeps any object in place. */
SWEEP_INLINE bool settle_small(arena_ss_t *ss, size_t s)
{
    const struct arena__heap *h = ss->h;
    const size_t words = h->words, first = s * words;
    uint64_t *marks = h->marks + first, *fwd = ss->fwd + first;
    const uint64_t *starts = h->starts + first;
    uint64_t keep = 0;
    size_t dead = 0;
    for (size_t w = 0; w < words; w++) {
        uint64_t m = marks[w], k = m & ~fwd[w];
        dead += (size_t)__builtin_popcountll(starts[w] & ~m);
        keep |= k;
        marks[w] = k;
        fwd[w] = 0;
    }
    ss->st.objects_freed += dead;
    return keep != 0;
}

static void clear_marks(struct arena__heap *h, size_t s, size_t n)
{
    memset(&h->marks[s * h->words], 0, n * h->words * sizeof(uint64_t));
}

/* After the trace: free the dead, give back empty pages, record each kept page's
 * density for the next collection's choice of candidates. A condemned page keeps an
 * object in place exactly when its live count is not zero (the trace counts every object
 * it marks in place, and arena_mark and arena_pin count theirs): the others are released
 * without looking at their objects one page at a time. */
SWEEP_INLINE void sweep_body(arena_ss_t *ss, size_t sparse_bytes)
{
    struct arena__heap *h = ss->h;
    struct release r = {0, 0, 0};
    size_t top = h->top;
    for (size_t s = 0; s < top; s++) {
        struct arena__page *pg = &h->pages[s];
        uint16_t f = pg->flags;
        uint8_t kind = pg->kind;
        if ((f & (ARENA__PAGE_CONDEMNED | ARENA__PAGE_MESHED)) == ARENA__PAGE_CONDEMNED && pg->live == 0 &&
            kind == ARENA__PAGE_SMALL) {
            /* The common case, a nursery page all dead or moved, and the like pages after it:
             * one run. */
            release_flush(ss, &r);
            r.slot = s;
            release_moved(ss, &r, s, f);
            for (s++; s < top; s++) {
                pg = &h->pages[s];
                f = pg->flags;
                if ((f & (ARENA__PAGE_CONDEMNED | ARENA__PAGE_MESHED)) != ARENA__PAGE_CONDEMNED || pg->live != 0 ||
                    pg->kind != ARENA__PAGE_SMALL)
                    break;
                release_moved(ss, &r, s, f);
            }
            r.n = s - r.slot;
            s--; /* the page that ended the run is looked at next */
            continue;
        }
        size_t n = kind == ARENA__PAGE_LARGE_HEAD ? pg->aux : 1;
        if (kind == ARENA__PAGE_FREE)
            continue;
        if (!(f & ARENA__PAGE_CONDEMNED) && (f & ARENA__PAGE_OLD) && pg->live == 0 && pg->pinned == 0 &&
            !(f & (uint16_t)~(ARENA__PAGE_OLD | ARENA__PAGE_SPARSE | ARENA__PAGE_MESHED))) {
            /* An old page a young collection did not trace, with no pin: it stays as it is. */
            s += n - 1;
            continue;
        }
        if ((f & ARENA__PAGE_CONDEMNED) && pg->live == 0 && !(f & ARENA__PAGE_MESHED) &&
            (kind == ARENA__PAGE_SMALL || kind == ARENA__PAGE_LARGE_HEAD)) {
            release_add(ss, &r, s, n);   /* nothing kept in place: its objects died or moved */
            release_moved(ss, &r, s, f); /* a large object never moves: a small page only */
            s += n - 1;
            continue;
        }
        bool kept = true;
        if (kind == ARENA__PAGE_POOL) {
            kept = false;
        } else if (!(f & ARENA__PAGE_CONDEMNED)) {
            /* Marks of pins on old pages (counted in live); to-space pages (from retained or
             * fresh slots) have none. */
            if (s < ss->old_top && pg->live != 0)
                clear_marks(h, s, n);
        } else if (kind == ARENA__PAGE_SMALL) {
            /* A meshed page shares its file page: never retained here (.req.mesh.placement). */
            kept = settle_small(ss, s) || (f & ARENA__PAGE_MESHED);
            if (kept) {
                (void)arena__heap_sweep_page(ss->h, s, NULL); /* the dead were counted by settle_small; the moved go too */
                ss->st.pages_in_place++;
            }
        } else if (kind == ARENA__PAGE_LARGE_HEAD) {
            kept = arena__bit_get(h->marks, s * h->granules);
            ss->st.objects_freed += !kept;
            clear_marks(h, s, 1);
            ss->st.pages_in_place += kept ? n : 0;
        }
        if (!kept) {
            /* Counted and cleared already: released eagerly. */
            release_flush(ss, &r);
            arena__heap_retain(ss->a, s, n);
        } else {
            release_flush(ss, &r);
            for (size_t i = 0; i < n; i++) {
                struct arena__page *q = &h->pages[s + i];
                /* Condemned and to-space pages were measured now; old pages a young
                 * collection did not trace keep what their last measure said. */
                bool measured = (f & ARENA__PAGE_CONDEMNED) || !(f & ARENA__PAGE_OLD);
                bool sparse = measured ? q->live < sparse_bytes : (f & ARENA__PAGE_SPARSE);
                ss->st.pages_pinned += q->pinned;
                q->flags = (uint16_t)(ARENA__PAGE_OLD | (sparse && q->kind == ARENA__PAGE_SMALL ? ARENA__PAGE_SPARSE : 0) |
                                      (q->flags & ARENA__PAGE_MESHED));
                q->live = 0;
                q->pinned = 0;
            }
        }
        s += n - 1;
    }
    release_flush(ss, &r);
}

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
__attribute__((target("popcnt"))) static void sweep_popcnt(arena_ss_t *ss, size_t sparse_bytes)
{
    sweep_body(ss, sparse_bytes);
}
#define HAVE_POPCNT() __builtin_cpu_supports("popcnt")
#else
#define sweep_popcnt sweep_plain
#define HAVE_POPCNT() 0
#endif

static void sweep_plain(arena_ss_t *ss, size_t sparse_bytes)
{
    sweep_body(ss, sparse_bytes);
}

static void sweep(arena_ss_t *ss, size_t sparse_bytes)
{
    if (HAVE_POPCNT())
        sweep_popcnt(ss, sparse_bytes);
    else
        sweep_plain(ss, sparse_bytes);
}

static void finish(arena_ss_t *ss, int mode)
{
    arena_t *a = ss->a;
    struct arena__heap *h = ss->h;
    note_error(ss, arena__heap_rebuild_free(a));
    /* This collection's live bytes first: the retention limits and the reserve follow them. */
    h->live_bytes = mode == ARENA_TRACE_YOUNG ? h->live_bytes + ss->st.bytes_live : ss->st.bytes_live;
    /* .req.heap.retain-pages, as arena_collect: past the hard limit the surplus goes now; below it, the
     * allocator releases what stays unused past the delay. */
    size_t released = 0;
    note_error(ss, arena__heap_trim(a, arena__heap_retain_hard(a), &released));
    arena__heap_set_reserve(a, ss->nto); /* .req.trace.to-space-reserve */
    ss->st.pages_released += released;
    ss->st.pages_retained = h->retained_pages + h->nparked;
    (void)arena__heap_purge_due(a, arena__os_now_ns(), false);
    ss->st.pages_after = h->used_pages;
    ss->st.vmas_after = arena__budget_used(&a->budget);
    __atomic_store_n(&h->allocated_bytes, h->live_bytes, __ATOMIC_RELAXED);
    a->collections++;
    a->bytes_copied += ss->st.bytes_evacuated;
    a->pages_released += ss->st.pages_released;
    /* arena_forward answers as if nothing moved (documented): no table of the last
     * arena_collect may outlive this collection. */
    arena__gc_fini(a);
}

void arena__trace_fini(arena_t *a)
{
    struct arena__trace *t = a->trace;
    if (t == NULL)
        return;
    free(t->kept);
    free(t->stack);
    free(t->to);
    free(t);
    a->trace = NULL;
}

/* Grow *map to at least words words (one at least: never NULL after), the new ones zero. */
static bool grow_zeroed(uint64_t **map, size_t *have, size_t words)
{
    if (words <= *have && *map != NULL)
        return true;
    size_t n = *have ? *have : 64;
    while (n < words)
        n *= 2;
    uint64_t *m = realloc(*map, n * sizeof *m);
    if (m == NULL)
        return false;
    memset(m + *have, 0, (n - *have) * sizeof *m);
    *map = m;
    *have = n;
    return true;
}

void arena__trace_init(arena_t *a)
{
    struct arena__trace *t = calloc(1, sizeof *t);
    if (t == NULL)
        return;
    (void)grow_zeroed(&t->kept, &t->kept_words, 1);
    if ((t->stack = malloc(STACK_FIRST * sizeof *t->stack)) != NULL)
        t->stack_cap = STACK_FIRST;
    if ((t->to = malloc(TO_FIRST * sizeof *t->to)) != NULL)
        t->to_cap = TO_FIRST;
    a->trace = t;
}

/* The tables that outlive a collection, large enough for the slots below old_top (a
 * failure changes nothing), lent to ss until tables_return. */
static int tables_take(arena_ss_t *ss)
{
    arena_t *a = ss->a;
    if (a->trace == NULL && (a->trace = calloc(1, sizeof *a->trace)) == NULL)
        return ARENA_ENOCOLLECT;
    struct arena__trace *t = a->trace;
    if (!grow_zeroed(&t->kept, &t->kept_words, (ss->old_top + 63) / 64))
        return ARENA_ENOCOLLECT;
    ss->fwd = ss->h->moved;
    ss->kept = t->kept;
    ss->stack = t->stack;
    ss->cap = t->stack_cap;
    ss->to = t->to;
    ss->to_cap = t->to_cap;
    return 0;
}

static void tables_return(arena_ss_t *ss)
{
    struct arena__trace *t = ss->a->trace;
    t->stack = ss->stack;
    t->stack_cap = ss->cap;
    t->to = ss->to;
    t->to_cap = ss->to_cap;
}

int arena_trace_collect(arena_t *a, const arena_format_t *fmt, int mode, arena_collect_stats_t *st)
{
    if (a == NULL || fmt == NULL || fmt->scan == NULL || fmt->roots == NULL)
        return ARENA_ENULL;
    if (mode != ARENA_TRACE_FULL && mode != ARENA_TRACE_YOUNG)
        return ARENA_ECONFIG;
    int err = arena__callable(a); /* ARENA_ESTATE from one of its own callbacks */
    if (err)
        return err;
    pthread_mutex_lock(&a->lock);
    uint64_t t0 = arena__os_now_ns();
    struct arena__heap *h = a->heap;
    h->one_pass = true; /* no recycled pinned pages from now on (.req.heap.recycle-pinned) */
    arena_ss_t ss = {.a = a, .h = h, .base = h->base, .fmt = fmt, .chunk = 16,
                     .heap_bytes = h->nslots * a->page_size, .old_top = h->top};
    if (tables_take(&ss) != 0) {
        pthread_mutex_unlock(&a->lock);
        return ARENA_ENOCOLLECT;
    }
    ss.head = (arena_ss_head_t){.base = (uintptr_t)h->base, .heap_bytes = ss.heap_bytes,
                                .condemned_bytes = ss.old_top * a->page_size, .reached = h->marks,
                                .moved = ss.fwd, .kept = mode == ARENA_TRACE_YOUNG ? ss.kept : NULL,
                                .page_shift = a->page_shift};
    ss.st.vmas_before = arena__budget_used(&a->budget);
    ss.st.pages_before = h->used_pages;
    /* Every thread's current page is retired: the next allocation refills (.req.heap.lock-free-bump). */
    atomic_fetch_add(&h->epoch, 1);
    /* Unswept slots stay so (.req.trace.lazy-sweep); the pool's unused pages are resident:
     * to-space (.req.trace.to-space-reserve). */
    arena__heap_retire_pool_listed(a);
    /* At the file's cap the collector's reserve is the only to-space (.req.collect.full-file-no-jam): without it a
     * heap whose every page keeps a survivor could never evacuate one, and stayed full. */
    h->collecting = true;
    unsigned sparse = a->cfg.sparse_percent ? a->cfg.sparse_percent : 75;
    size_t sparse_bytes = a->page_size * (sparse > 100 ? 100 : sparse) / 100;
    condemn(&ss, mode);
    arena__set_tracing(a);   /* a collection from a callback is refused (arena.h) */
    trace(&ss);
    arena__set_tracing(NULL);
    ss.st.objects_live += ss.reached;
    if (ss.pool_n != 0) {   /* to-space taken and not used */
        arena__heap_retain_pool(a, ss.pool, ss.pool_n);
        ss.pool_n = 0;
    }
    sweep(&ss, sparse_bytes);
    arena__heap_recycle_begin(a);   /* what went into recycled gaps is old now */
    finish(&ss, mode);
    h->collecting = false;
    (void)arena__heap_restore_reserve(a); /* best effort, as arena_collect */
    tables_return(&ss);
    ss.st.pause_ns = arena__os_now_ns() - t0;
    err = ss.err;
    pthread_mutex_unlock(&a->lock);
    if (st != NULL)
        *st = ss.st;
    return -err; /* completed: positive even when a kernel error was met (arena.h) */
}
