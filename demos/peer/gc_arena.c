/*
 * gc_arena.c -- the benchmarks on the arena, with precise roots in a shadow stack, in
 * two ways:
 *
 * --gc arena (one pass): the runtime describes its objects with an object format
 *   (arena_format_t: a scan callback fixes a node's two fields, a roots callback the
 *   shadow stack) and arena_trace_collect() marks, moves and updates in one trace.
 *   Generational by default (docs/runtime-guide.md §4; "sticky" generations: Demers
 *   et al., POPL 1990): an ARENA_TRACE_YOUNG collection when the nursery is full traces
 *   only what was allocated since the previous collection; every object it finds
 *   reachable is old from then on (every page in use that allocation did not touch
 *   since the last collection, see page_is_old), and the remembered set is the old
 *   pages written since (by card marking in SET_FIELD, or with --barrier pages by the
 *   arena's page tracking of the old pages, ARENA_TRACK_OLD, as demos/lisp/heap_gen.c).
 *   A young collection's pause is the copying of its survivors, so the nursery adapts
 *   (nursery_adapt) to make them about --nursery / 4 bytes. A full collection
 *   (ARENA_TRACE_FULL) when the old objects have grown by --grow percent of the live
 *   bytes the last full one found (at least --min-heap; later while the heap grows, see
 *   heap_growing; and at a moment when little is live, see full_due) frees the old
 *   objects that died since, which young collections keep. So the long-lived tree and
 *   array are traced only by full collections, and the array, a large pointer-free
 *   object, never moves. --nursery 0: every collection is full, one after allocating
 *   max(--min-heap, live * --grow / 100) bytes.
 *
 * --gc arena-mark, the way a runtime that cannot describe its objects does it (.req.runtime.one-trace):
 *   1. mark:    trace from the roots with an explicit stack; a side bitmap (one bit per
 *               16 bytes of the heap reservation) says what was reached, arena_mark()
 *               tells the arena, and a mark list records each object once;
 *   2. collect: arena_collect();
 *   3. fix:     for each object on the mark list, arena_forward() it and its two
 *               fields once; then the roots.
 *   A collection starts when the bytes allocated since the last one reach
 *   max(--min-heap, live * --grow / 100).
 */
#include "peer.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "arena.h"

#define GRANULE 16
#define ATOMIC_TAG ((uintptr_t)1) /* on the mark list: an object without pointer fields */
#define MAX_ROOTS 4096
#define MAX_ATOMIC 8

static struct {
    arena_t *a;
    arena_lab_t lab;       /* this thread's allocation buffer: arena_lab_alloc, inline */
    uintptr_t base;
    unsigned char *bits;
    void *roots[MAX_ROOTS];
    size_t nroots;
    void **atomic[MAX_ATOMIC];
    size_t natomic;
    uintptr_t *marked, *stack;
    size_t nmarked, nstack, cap_marked, cap_stack;
    size_t since, threshold, min_heap;
    unsigned grow;
    bool one_pass;
    bool log;              /* --log: a line per collection on stderr */
    struct peer_result *res;
} H;

/* Generational collection (--nursery): the old generation and the remembered set. */
static struct {
    size_t nursery;        /* bytes allocated between young collections; 0 = every one full */
    arena_view_t *hv;
    char *heap_base;
    size_t page_size, nslots;
    unsigned page_shift;   /* log2(page_size): slot numbers by shifts on the barrier's path */
    size_t nursery_max;    /* --nursery: the nursery adapts between young_budget and this */
    size_t young_budget;   /* bytes a young collection should copy at most (its pause) */
    unsigned char *young;  /* byte per heap slot: allocation put an object there since the
                              last collection (every other page in use holds old objects) */
    size_t *young_list;    /* those slots, to clear after a collection */
    size_t nyoung, young_cap;
    char *lab_end;         /* the allocation buffer's page end young_note last saw (NULL after a collection) */
    size_t old_bytes;      /* live after the last full collection plus promoted since */
    size_t full_trigger;   /* a full collection when old_bytes passes this */
    bool last_full_freed;  /* the last full collection freed a quarter of the old bytes */
    bool last_young_kept;  /* the last young collection kept half of the bytes allocated */
    size_t last_promoted;  /* bytes the last young collection promoted */
    double survival;       /* recent young collections' promoted / allocated (nursery_adapt) */
    unsigned char *card;   /* card marking: a byte per heap slot, a node on it was written
                              (SET_FIELD); NULL with --barrier pages (the arena's tracking) */
    void **dirty;          /* pages written since the last collection */
    size_t ndirty, dirtycap;
} G;

static void **roots_push(size_t n)
{
    if (H.nroots + n > MAX_ROOTS)
        peer_fail("arena: more than %d root slots", MAX_ROOTS);
    void **r = H.roots + H.nroots;
    memset(r, 0, n * sizeof *r);
    H.nroots += n;
    return r;
}

static void grow_array(uintptr_t **v, size_t *cap, size_t need)
{
    if (need <= *cap)
        return;
    size_t c = *cap ? *cap : 4096;
    while (c < need)
        c *= 2;
    uintptr_t *n = realloc(*v, c * sizeof *n);
    if (!n)
        peer_fail("arena: out of memory for the mark stack");
    *v = n;
    *cap = c;
}

static void mark_one(uintptr_t p, uintptr_t tag)
{
    size_t g = (p - H.base) / GRANULE;
    unsigned char bit = (unsigned char)(1u << (g % 8));
    if (H.bits[g / 8] & bit)
        return;
    H.bits[g / 8] |= bit;
    int rc = arena_mark(H.a, (void *)p);
    if (rc)
        peer_fail("arena_mark(%p): %s", (void *)p, arena_strerror(rc));
    grow_array(&H.marked, &H.cap_marked, H.nmarked + 1);
    H.marked[H.nmarked++] = p | tag;
    if (tag)
        return;
    void *const *f = (void *const *)p;
    grow_array(&H.stack, &H.cap_stack, H.nstack + 2);
    for (int k = 0; k < 2; k++)
        if (f[k])
            H.stack[H.nstack++] = (uintptr_t)f[k];
}

static void *forward(void *p)
{
    if (!p)
        return NULL;
    void *q = arena_forward(H.a, p);
    if (!q)
        peer_fail("arena_forward lost a reachable object at %p", p);
    return q;
}

/* Only nodes (two pointer fields first) and the pointer-free array of doubles live in
 * this heap, and the array is the only object larger than a node. */
#define NODE_MAX 32

static void scan_node(arena_ss_t *ss, void *obj, size_t size, void *closure)
{
    (void)closure;
    if (size > NODE_MAX)
        return;
    void **f = obj;
    arena_fix(ss, &f[0]);
    arena_fix(ss, &f[1]);
}

static void scan_roots(arena_ss_t *ss, void *closure)
{
    (void)closure;
    for (size_t i = 0; i < H.nroots; i++)
        arena_fix(ss, &H.roots[i]);
    for (size_t i = 0; i < H.natomic; i++)
        arena_fix(ss, H.atomic[i]);
}

static void grow_dirty(void)
{
    G.dirtycap = G.dirtycap ? 2 * G.dirtycap : 1024;
    G.dirty = realloc(G.dirty, G.dirtycap * sizeof *G.dirty);
    if (!G.dirty)
        peer_fail("arena: out of memory for the remembered set");
}

/* The write barrier (card marking, Hölzle 1993, with a card per arena page): the page
 * of a node written after its allocation joins the remembered set. */
static void write_barrier(void *obj)
{
    if (!G.card)
        return; /* not generational, or --barrier pages: the arena tracks the writes */
    size_t s = (size_t)((char *)obj - G.heap_base) >> G.page_shift;
    if (G.card[s])
        return;
    G.card[s] = 1;
    if (G.ndirty == G.dirtycap)
        grow_dirty();
    G.dirty[G.ndirty++] = G.heap_base + (s << G.page_shift);
}

/* The pages written since the last take: every heap page is clean again. */
static void take_dirty(void)
{
    if (G.card)
        return;
    G.ndirty = 0;
    for (;;) {
        if (G.dirtycap - G.ndirty < 256)
            grow_dirty();
        size_t n = 0, room = G.dirtycap - G.ndirty;
        int rc = arena_track_take(G.hv, G.dirty + G.ndirty, room, &n);
        if (rc)
            peer_fail("arena_track_take: %s", arena_strerror(rc));
        G.ndirty += n;
        if (n < room)
            return;
    }
}

/* A written page holds old objects unless allocation used it since the last collection:
 * a collection retires the allocation buffer's page, so no page holds both, and what a
 * collection keeps (copies, objects kept in place) is old from then on. */
static bool page_is_old(const char *page)
{
    size_t s = (size_t)(page - G.heap_base) >> G.page_shift;
    return s < G.nslots && !G.young[s];
}

/* Allocation at p (size bytes) on a new buffer page, or an object larger than a node
 * (which may bypass the buffer): note its slots as young. */
static __attribute__((noinline)) void young_note(const char *p, size_t size)
{
    G.lab_end = H.lab.end;
    if (!G.young)
        return; /* not generational */
    size_t s = (size_t)(p - G.heap_base) >> G.page_shift, e = (size_t)(p + size - 1 - G.heap_base) >> G.page_shift;
    for (; s <= e; s++) {
        if (G.young[s])
            continue;
        if (G.nyoung == G.young_cap) {
            G.young_cap = G.young_cap ? 2 * G.young_cap : 1024;
            G.young_list = realloc(G.young_list, G.young_cap * sizeof *G.young_list);
            if (!G.young_list)
                peer_fail("arena: out of memory for the young-page list");
        }
        G.young[s] = 1;
        G.young_list[G.nyoung++] = s;
    }
}

/* After a collection: every page in use holds old objects. */
static void young_clear(void)
{
    for (size_t i = 0; i < G.nyoung; i++)
        G.young[G.young_list[i]] = 0;
    G.nyoung = 0;
    G.lab_end = NULL;
}

/* The remembered set: the fields of every node on a written page of old objects (every
 * object on such a page is old: allocation takes whole fresh pages; only pinned pages
 * of an arena that never ran arena_trace_collect get their gaps refilled). A node a young
 * object could be reached from was written after the young one was allocated, so after
 * the last collection, so its page is among the touched ones. */
static void scan_old_page(arena_ss_t *ss, char *page)
{
    for (char *p = page; p < page + G.page_size;) {
        void **obj = arena_object(H.a, p);
        if (!obj) {
            p += GRANULE;
            continue;
        }
        size_t size = arena_object_size(H.a, obj);
        if (size <= NODE_MAX) {
            arena_fix_inline(ss, &obj[0]); /* mostly old objects: no call */
            arena_fix_inline(ss, &obj[1]);
        }
        p = (char *)obj + size;
    }
}

static void young_roots(arena_ss_t *ss, void *closure)
{
    scan_roots(ss, closure);
    for (size_t i = 0; i < G.ndirty; i++)
        if (page_is_old(G.dirty[i]))
            scan_old_page(ss, G.dirty[i]);
}

static size_t trace_collect(const arena_format_t *format, int mode)
{
    arena_collect_stats_t st;
    uint64_t cpu = H.log ? peer_cpu_ns() : 0;
    int rc = arena_trace_collect(H.a, format, mode, &st);
    if (rc < 0)
        peer_fail("arena_trace_collect: %s", arena_strerror(rc));
    if (H.log)
        fprintf(stderr, "%s pause_us %.1f cpu_us %.1f since %zu live %zu evacuated %zu objects_evacuated %zu pages_before %zu pages_after %zu in_place %zu remembered %zu nursery %zu\n",
                mode == ARENA_TRACE_YOUNG ? "young" : "full", (double)st.pause_ns / 1e3,
                (double)(peer_cpu_ns() - cpu) / 1e3, H.since, st.bytes_live, st.bytes_evacuated,
                st.objects_evacuated, st.pages_before, st.pages_after, st.pages_in_place, G.ndirty, G.nursery);
    return st.bytes_live;
}

static size_t collect_one_pass(void)
{
    static const arena_format_t format = {.scan = scan_node, .roots = scan_roots};
    return trace_collect(&format, ARENA_TRACE_FULL);
}

/* Whether the full collection that is due would find mostly live objects: the heap is
 * growing (the last full collection freed less than a quarter of the old objects, and
 * the last young one kept more than half of what was allocated), so it waits, until the
 * old objects reach twice the trigger. GCBench's stretch tree is the case: traced
 * whole by each full collection while it grows, and dead right after. */
static bool heap_growing(void)
{
    return !G.last_full_freed && G.last_young_kept && G.old_bytes < 2 * G.full_trigger;
}

/* A due full collection waits for a young one that promoted less than half its budget,
 * while the old objects grow by at most FULL_WAIT budgets: opportunistic collection (Wilson
 * and Moher, OOPSLA 1989: collect where little is live). Survivors that stop surviving
 * mark the end of a structure's construction; in the middle of one, a full collection
 * would trace the part built so far, and its pause would grow by that much. */
#define FULL_WAIT 8

static bool full_due(void)
{
    if (G.old_bytes < G.full_trigger || heap_growing())
        return false;
    return G.last_promoted < G.young_budget / 2 || G.old_bytes >= G.full_trigger + FULL_WAIT * G.young_budget;
}

/* The next nursery: a young collection's pause is mostly the copying of what survives,
 * so the nursery is sized to make the expected survivors fit young_budget, between
 * young_budget and nursery_max. The expected survival rate is an average of the last
 * ones (a single collection's survivors depend on where in a structure's construction it
 * fell); the nursery at most doubles per collection. */
static void nursery_adapt(size_t since, size_t promoted)
{
    double rate = since ? (double)promoted / (double)since : 1;
    G.survival = (G.survival + rate) / 2;
    size_t want = G.survival > 0 ? (size_t)((double)G.young_budget / G.survival) : G.nursery_max;
    if (want > 2 * G.nursery)
        want = 2 * G.nursery;
    G.nursery = want < G.young_budget ? G.young_budget : want > G.nursery_max ? G.nursery_max : want;
}

/* Sticky generations (Demers et al., POPL 1990): a young collection traces only what
 * was allocated since the previous collection; a full one when the old objects have
 * grown by --grow percent since the last full one (unless heap_growing). Returns the
 * bytes allocated since the collection to allow before the next one. */
static size_t collect_generational(size_t since)
{
    static const arena_format_t young = {.scan = scan_node, .roots = young_roots};
    static const arena_format_t full = {.scan = scan_node, .roots = scan_roots};
    size_t old = G.old_bytes;
    if (full_due()) {
        G.old_bytes = trace_collect(&full, ARENA_TRACE_FULL);
        size_t t = G.old_bytes / 100 * (100 + H.grow);
        G.full_trigger = t > H.min_heap ? t : H.min_heap;
        G.last_full_freed = old - (G.old_bytes < old ? G.old_bytes : old) >= old / 4;
    } else {
        take_dirty();
        G.last_promoted = trace_collect(&young, ARENA_TRACE_YOUNG);
        G.old_bytes += G.last_promoted;
        G.last_young_kept = G.last_promoted > since / 2;
        nursery_adapt(since, G.last_promoted);
        H.res->young++;
    }
    young_clear();
    /* What the collection wrote itself (copies, fixed fields) is no old-to-young store. */
    take_dirty();
    if (G.card) {
        for (size_t i = 0; i < G.ndirty; i++)
            G.card[(size_t)((char *)G.dirty[i] - G.heap_base) >> G.page_shift] = 0;
        G.ndirty = 0;
    }
    /* A full collection due now comes after a short allocation run: it copies what was
     * allocated since this collection too, and the pause grows by that much. */
    return full_due() ? G.young_budget / 8 : G.nursery;
}

static size_t collect_mark_forward(void)
{
    for (size_t i = 0; i < H.nroots; i++)
        if (H.roots[i])
            mark_one((uintptr_t)H.roots[i], 0);
    for (size_t i = 0; i < H.natomic; i++)
        if (*H.atomic[i])
            mark_one((uintptr_t)*H.atomic[i], ATOMIC_TAG);
    while (H.nstack)
        mark_one(H.stack[--H.nstack], 0);

    arena_collect_stats_t st;
    int rc = arena_collect(H.a, &st);
    if (rc < 0)
        peer_fail("arena_collect: %s", arena_strerror(rc));

    for (size_t i = 0; i < H.nmarked; i++) {
        uintptr_t old = H.marked[i] & ~ATOMIC_TAG;
        size_t g = (old - H.base) / GRANULE;
        H.bits[g / 8] &= (unsigned char)~(1u << (g % 8));
        if (H.marked[i] & ATOMIC_TAG)
            continue;
        void **f = forward((void *)old);
        f[0] = forward(f[0]);
        f[1] = forward(f[1]);
    }
    H.nmarked = 0;
    for (size_t i = 0; i < H.nroots; i++)
        H.roots[i] = forward(H.roots[i]);
    for (size_t i = 0; i < H.natomic; i++)
        *H.atomic[i] = forward(*H.atomic[i]);
    return st.bytes_live;
}

static void collect(void)
{
    uint64_t t0 = peer_now_ns();
    if (G.nursery) {
        H.threshold = collect_generational(H.since);
    } else {
        size_t live = H.one_pass ? collect_one_pass() : collect_mark_forward();
        size_t t = live / 100 * H.grow;
        H.threshold = t > H.min_heap ? t : H.min_heap;
    }
    H.since = 0;
    uint64_t pause = peer_now_ns() - t0;
    H.res->gc_ns += pause;
    if (pause > H.res->max_pause_ns)
        H.res->max_pause_ns = pause;
    H.res->collections++;
}

static void *alloc(size_t size)
{
    size_t rounded = (size + GRANULE - 1) & ~(size_t)(GRANULE - 1);
    if (H.since + rounded > H.threshold)
        collect();
    void *p = arena_lab_alloc(&H.lab, size);
    if (!p)
        peer_fail("arena_alloc(%zu) failed", size);
    H.since += rounded;
    if (H.lab.end != G.lab_end || size > NODE_MAX)
        young_note(p, size); /* a page (or an object) allocation had not used since the last collection */
    return p;
}

static void keep_atomic(void **slot)
{
    if (H.natomic == MAX_ATOMIC)
        peer_fail("arena: too many atomic roots");
    H.atomic[H.natomic++] = slot;
}

static void drop_atomic(void **slot)
{
    for (size_t i = 0; i < H.natomic; i++)
        if (H.atomic[i] == slot)
            H.atomic[i] = H.atomic[--H.natomic];
}

#define NEW_OBJ(size) alloc(size)
#define NEW_ATOMIC(size) alloc(size)
#define ROOTS(r, n) void **r = roots_push(n)
#define ROOTS_END(r, n) (H.nroots -= (n))
#define KEEP_ATOMIC(pp) keep_atomic((void **)(pp))
#define DROP_ATOMIC(pp) drop_atomic((void **)(pp))
#define SET_FIELD(o, f, v) (write_barrier(o), (o)->f = (v))
#define DROP_TREE(t) ((void)(t))
#include "programs.h"

static int run(const char *program, const struct peer_params *p, struct peer_result *r, bool one_pass)
{
    H.one_pass = one_pass;
    H.log = p->log;
    arena_config_t cfg;
    arena_config_init(&cfg);
    cfg.reserve = (size_t)1 << 30;
    int rc = arena_create(&H.a, &cfg);
    if (rc)
        peer_fail("arena_create: %s", arena_strerror(rc));
    if ((rc = arena_lab_init(H.a, &H.lab)))
        peer_fail("arena_lab_init: %s", arena_strerror(rc));
    arena_view_t *v = arena_heap_view(H.a);
    H.base = (uintptr_t)arena_view_base(v);
    size_t granules = arena_view_slots(v) * arena_page_size(H.a) / GRANULE;
    H.bits = calloc(granules / 8 + 1, 1);
    if (!H.bits)
        peer_fail("arena: no memory for the mark bitmap");
    H.min_heap = H.threshold = p->min_heap;
    H.grow = p->grow_percent;
    H.res = r;
    G.nursery = one_pass ? p->nursery : 0;
    if (G.nursery) {
        G.hv = v;
        G.heap_base = arena_view_base(v);
        G.page_size = arena_page_size(H.a);
        G.page_shift = (unsigned)__builtin_ctzl(G.page_size);
        G.nslots = arena_view_slots(v);
        G.young = calloc(G.nslots, 1);
        if (!G.young)
            peer_fail("arena: no memory for the young-page table");
        G.nursery_max = G.nursery;
        G.young_budget = G.nursery / 4 >= 4096 ? G.nursery / 4 : G.nursery;
        G.nursery = G.young_budget; /* grows while few survive */
        G.survival = 1;
        G.full_trigger = p->min_heap;
        G.last_full_freed = true; /* no sign of growth yet: the first one comes at --min-heap */
        H.threshold = G.nursery;
        if (!p->track_pages) {
            G.card = calloc(G.nslots, 1);
            if (!G.card)
                peer_fail("arena: no memory for the card table");
        } else if ((rc = arena_track_start(v, ARENA_TRACK_WRITES | ARENA_TRACK_OLD))) {
            peer_fail("arena_track_start: %s", arena_strerror(rc));
        }
    }
    rc = run_program(program, p, &r->checksum);
    if (G.nursery && !G.card)
        arena_track_stop(v);
    free(G.card);
    free(G.young);
    free(G.young_list);
    free(G.dirty);
    memset(&G, 0, sizeof G);
    arena_lab_retire(&H.lab);
    arena_destroy(H.a);
    free(H.bits);
    free(H.marked);
    free(H.stack);
    return rc;
}

int peer_run_arena(const char *program, const struct peer_params *p, struct peer_result *r)
{
    return run(program, p, r, true);
}

int peer_run_arena_mark(const char *program, const struct peer_params *p, struct peer_result *r)
{
    return run(program, p, r, false);
}
