/*
 * heap_gen.c -- generational collection on the arena, in one pass per collection, with
 * a write barrier that is either card marking (--barrier cards, the default) or the
 * arena's page tracking (--barrier pages, .req.runtime.tracking-barrier).
 *
 * Two generations, "sticky" (Demers et al., POPL 1990): every object that survives a
 * collection becomes old (AH_OLD in its header; with --barrier pages, its pages in old_pages) and stays
 * old until a full collection finds it dead. The arena agrees: an ARENA_TRACE_YOUNG
 * collection condemns only the pages allocated since the previous collection.
 *
 * The remembered set is a set of heap pages, "dirty" since the last collection. A young
 * object can only be referenced from an old one through a store made after the young
 * one was allocated, i.e. after the last collection, so the old object's field lies on
 * a dirty page. Two ways to know the dirty pages:
 *   cards: the interpreter's stores go through set_field (lisp.h), which marks the card
 *          (a byte per CARD_BYTES of heap) of a field of an old object that receives a
 *          heap pointer, and lists the card the first time (lisp_card_dirty). No system
 *          call; a test and a load per store.
 *   pages: the arena tracks the heap view's old pages (ARENA_TRACK_OLD): the pages
 *          written since the last take. No code in the interpreter; a fault per first
 *          write to a page, and system calls per collection to read and re-arm them.
 *
 * A young collection (arena_trace_collect with ARENA_TRACE_YOUNG):
 *   1. its roots are the interpreter's roots and the fields of the old objects that lie
 *      on the dirty cards or pages (walked object by object with arena_object);
 *   2. the arena copies the young objects reached out of the nursery pages (Cheney),
 *      fixing every reference as it goes; old objects are neither traced nor moved, so
 *      references to them never change;
 *   3. the format's scan is called once per survivor: it fixes the fields and promotes.
 * Its cost is O(young survivors + objects on dirty old pages): the old generation is
 * never traced. Afterwards every object is old and the remembered set starts empty.
 *
 * A full collection (when the old generation has doubled since the last one) is the
 * one-pass ARENA_TRACE_FULL of heap_arena.c; it rebuilds old_pages and frees dead old
 * objects. Old objects that die between full collections are kept (and whatever they
 * point to): the usual floating garbage of a generational collector.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "heap_arena.h"

/* A card: small, so that the collection walks few objects per dirty card (a page of
 * symbols holds a hundred); a power of two that divides every arena page. */
#define CARD_BYTES 256

static struct {
    arena_view_t *hv;
    size_t old_bytes, major_trigger;
    void **dirty;         /* the remembered set: dirty cards (CARD_BYTES) or pages */
    size_t ndirty, dirtycap;
    obj **dirty_obj;      /* cards: the large object whose field dirtied dirty[i] (a card
                           * may be listed twice, once per large object on it) */
    size_t dirty_objcap;
    obj **remembered;     /* cards: the old objects marked MARK_REMEMBERED */
    size_t nremembered, rememberedcap;
    uint64_t *old_pages;  /* --barrier pages: bit per heap slot, holds (part of) an old object */
    char *heap_base;
    size_t page_size, nslots;
    unsigned page_shift;  /* log2(page_size): slot numbers by shifts, once per survivor */
    size_t dirty_bytes;   /* what an entry of dirty covers: CARD_BYTES or a page */
    uint64_t minors, majors, minor_ns, major_ns, dirty_pages, scanned_pages, take_ns, remembered_objects;
    size_t nursery;       /* bytes allocated between young collections */
} G;


static void *grow(void *p, size_t *cap, size_t elt)
{
    *cap = *cap ? 2 * *cap : 1024;
    p = realloc(p, *cap * elt);
    if (!p) {
        fprintf(stderr, "arena-lisp: out of memory (generational tables)\n");
        exit(1);
    }
    return p;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int gen_init(void)
{
    G.hv = arena_heap_view(AH.a);
    G.heap_base = arena_view_base(G.hv);
    G.nslots = arena_view_slots(G.hv);
    G.page_size = arena_page_size(AH.a);
    G.page_shift = (unsigned)__builtin_ctzl(G.page_size);
    if (L.barrier == LISP_BARRIER_CARDS) {
        L.card_shift = (unsigned)__builtin_ctzl(CARD_BYTES);
        L.card = calloc(G.nslots * G.page_size / CARD_BYTES, 1);
        if (!L.card)
            return -1;
        L.card_base = (uintptr_t)G.heap_base;
        G.dirty_bytes = CARD_BYTES;
    } else {
        G.old_pages = calloc((G.nslots + 63) / 64, sizeof *G.old_pages);
        if (!G.old_pages)
            return -1;
        int rc = arena_track_start(G.hv, ARENA_TRACK_WRITES | ARENA_TRACK_OLD);
        if (rc) {
            fprintf(stderr, "arena-lisp: --barrier pages needs page tracking: %s\n", arena_strerror(rc));
            return -1;
        }
        G.dirty_bytes = G.page_size;
    }
    AH.gen = 1;
    /* The nursery gets the memory a semispace collector holds for the same --heap (two
     * spaces of --heap): young collections cost per collection, not per byte allocated. */
    G.nursery = 2 * AH.initial;
    AH.threshold = G.nursery;
    G.major_trigger = 4 * AH.initial;
    return 0;
}

static size_t slot_of(const void *p)
{
    return (size_t)((const char *)p - G.heap_base) >> G.page_shift;
}

static int page_has_old(const void *page)
{
    size_t s = slot_of(page);
    return s < G.nslots && ((G.old_pages[s / 64] >> (s % 64)) & 1);
}

static void promote(obj *o, size_t size)
{
    SET_MARK(o, MARK(o) | AH_OLD);
    G.old_bytes += size;
    if (!G.old_pages)
        return;
    for (size_t s = slot_of(o), e = slot_of((char *)o + size - 1); s <= e; s++)
        G.old_pages[s / 64] |= (uint64_t)1 << (s % 64);
}

/* The remembered set, read without re-arming: the collection's own writes to these pages
 * (fixed fields) then cost no fault, and the take that ends it re-arms them all. */
static void peek_dirty(void)
{
    uint64_t t0 = now_ns();
    for (;;) {
        size_t n = 0;
        int rc = arena_track_peek(G.hv, G.dirty, G.dirtycap, &n);
        if (rc)
            ah_fatal("arena_track_peek", rc);
        G.ndirty = n;
        if (n <= G.dirtycap)
            break;
        while (G.dirtycap < n)
            G.dirty = grow(G.dirty, &G.dirtycap, sizeof *G.dirty);
    }
    G.take_ns += now_ns() - t0;
}

/* The barrier's slow path: the first store of a heap pointer into the old object o since
 * the last collection (for a large one, every such store). */
void lisp_remember(val o, const val *slot)
{
    obj *p = OBJ(o);
    if (obj_bytes(p) <= CARD_BYTES) {
        SET_MARK(p, MARK(p) | AH_REMEMBERED);
        if (G.nremembered == G.rememberedcap)
            G.remembered = grow(G.remembered, &G.rememberedcap, sizeof *G.remembered);
        G.remembered[G.nremembered++] = p;
        return;
    }
    /* A card can hold fields of two large objects (each is larger than a card, so a third
     * cannot fit): the one that covers its first byte and the one that starts inside it.
     * Each is listed once, by its own bit of the card byte. */
    size_t card = ((uintptr_t)slot - L.card_base) >> L.card_shift;
    unsigned char which = (uintptr_t)p > L.card_base + (card << L.card_shift) ? 2 : 1;
    if (L.card[card] & which)
        return;
    L.card[card] |= which;
    if (G.ndirty == G.dirtycap)
        G.dirty = grow(G.dirty, &G.dirtycap, sizeof *G.dirty);
    if (G.ndirty == G.dirty_objcap)
        G.dirty_obj = grow(G.dirty_obj, &G.dirty_objcap, sizeof *G.dirty_obj);
    G.dirty_obj[G.ndirty] = p;
    G.dirty[G.ndirty++] = G.heap_base + (card << L.card_shift);
}

/* Empty the card barrier's remembered set. Before a full collection, which may move or
 * free the remembered objects (a copy keeping MARK_REMEMBERED would never be remembered
 * again); after a young one, which moves no old object. */
static void forget_remembered(void)
{
    for (size_t i = 0; i < G.nremembered; i++)
        SET_MARK(G.remembered[i], MARK(G.remembered[i]) & ~AH_REMEMBERED);
    G.nremembered = 0;
}

/* Every heap page is clean again. Cards: the dirty ones are reset. Pages: the take reads
 * and re-arms the tracked pages (what the collection wrote itself, copies and fixed
 * fields, too: no old-to-young store). */
static void take_dirty(void)
{
    uint64_t t0 = now_ns();
    if (L.card) {
        for (size_t i = 0; i < G.ndirty; i++)
            L.card[(size_t)((char *)G.dirty[i] - G.heap_base) >> L.card_shift] = 0;
        G.ndirty = 0;
        G.take_ns += now_ns() - t0;
        return;
    }
    G.ndirty = 0;
    for (;;) {
        if (G.dirtycap - G.ndirty < 256)
            G.dirty = grow(G.dirty, &G.dirtycap, sizeof *G.dirty);
        size_t n = 0;
        size_t room = G.dirtycap - G.ndirty;
        int rc = arena_track_take(G.hv, G.dirty + G.ndirty, room, &n);
        if (rc)
            ah_fatal("arena_track_take", rc);
        G.ndirty += n;
        if (n < room)
            break;
    }
    G.take_ns += now_ns() - t0;
}

/* The fields of o that lie in [lo, hi): of a large object, only those on one dirty card or
 * page (the others are dirty or not on their own). */
static void fix_fields_within(arena_ss_t *ss, obj *o, char *lo, char *hi)
{
    val *f = o->f, *fe = o->f + obj_nvals(o);
    if ((char *)f < lo)
        f = (val *)(void *)lo;
    if ((char *)fe > hi)
        fe = (val *)(void *)hi;
    for (; f < fe; f++)
        ah_fix_inline(ss, f);
}

/* The remembered set of the page barrier: fix the fields of the old objects that lie on
 * the page. */
static void scan_dirty(arena_ss_t *ss, char *page)
{
    char *end = page + G.dirty_bytes;
    for (char *p = page; p < end;) {
        obj *o = arena_object(AH.a, p);
        if (!o) {
            p += 16;
            continue;
        }
        if (MARK(o) & AH_OLD)
            fix_fields_within(ss, o, page, end);
        char *next = (char *)o + obj_bytes(o);
        p = next > p ? next : p + 16;
    }
}

/* Every object the arena scans survived: fix its fields, and it is old from now on. */
static void scan_promote(arena_ss_t *ss, void *p, size_t size, void *closure)
{
    (void)closure;
    obj *o = p;
    ah_fix_fields(ss, o);
    promote(o, size);
}

static void young_roots(arena_ss_t *ss, void *closure)
{
    (void)closure;
    ah_fix_young_roots(ss);
    if (L.card) {
        for (size_t i = 0; i < G.nremembered; i++)
            ah_fix_fields(ss, G.remembered[i]);
        for (size_t i = 0; i < G.ndirty; i++)
            fix_fields_within(ss, G.dirty_obj[i], G.dirty[i], (char *)G.dirty[i] + CARD_BYTES);
        G.scanned_pages += G.ndirty;
        return;
    }
    for (size_t i = 0; i < G.ndirty; i++) {
        /* Most tracked pages are the nursery's own: nothing old to scan there. */
        if (!page_has_old(G.dirty[i]))
            continue;
        G.scanned_pages++;
        scan_dirty(ss, G.dirty[i]);
    }
}

static void full_roots(arena_ss_t *ss, void *closure)
{
    (void)closure;
    ah_fix_roots(ss);
}

static void minor(void)
{
    static const arena_format_t fmt = {scan_promote, young_roots, NULL};
    if (!L.card)
        peek_dirty();
    G.dirty_pages += G.ndirty;
    G.remembered_objects += G.nremembered;
    ah_trace(&fmt, ARENA_TRACE_YOUNG);
}

static void major(void)
{
    static const arena_format_t fmt = {scan_promote, full_roots, NULL};
    forget_remembered();
    G.old_bytes = 0;
    if (G.old_pages)
        memset(G.old_pages, 0, (G.nslots + 63) / 64 * sizeof *G.old_pages);
    ah_trace(&fmt, ARENA_TRACE_FULL);
    G.major_trigger = 2 * G.old_bytes > 4 * AH.initial ? 2 * G.old_bytes : 4 * AH.initial;
}

void gen_collect(size_t need)
{
    uint64_t t0 = now_ns();
    int is_major = G.old_bytes > G.major_trigger || need == 0;
    if (is_major)
        major();
    else
        minor();
    /* Every object is old now: the remembered set starts empty again. */
    forget_remembered();
    take_dirty();
    lisp_young_roots_reset();
    uint64_t dt = now_ns() - t0;
    if (is_major) {
        G.majors++;
        G.major_ns += dt;
    } else {
        G.minors++;
        G.minor_ns += dt;
    }
    /* The nursery keeps its size: young collections stay proportional to it. */
    AH.threshold = G.nursery > 2 * need ? G.nursery : 2 * need;
    AH.since = 0;
}

void gen_fini(void)
{
    if (L.card) {
        free(L.card);
        L.card = NULL;
    } else {
        arena_track_stop(G.hv);
    }
    free(G.dirty);
    free(G.dirty_obj);
    free(G.remembered);
    free(G.old_pages);
    memset(&G, 0, sizeof G);
}

void gen_describe(FILE *out)
{
    fprintf(out,
            ",\"minor_gcs\":%llu,\"major_gcs\":%llu,\"minor_ms\":%.3f,\"major_ms\":%.3f,"
            "\"dirty_pages\":%llu,\"scanned_pages\":%llu,\"remembered_objects\":%llu,\"take_ms\":%.3f,\"old_kb\":%zu,"
            "\"barrier\":\"%s\"",
            (unsigned long long)G.minors, (unsigned long long)G.majors, (double)G.minor_ns / 1e6,
            (double)G.major_ns / 1e6, (unsigned long long)G.dirty_pages,
            (unsigned long long)G.scanned_pages, (unsigned long long)G.remembered_objects,
            (double)G.take_ns / 1e6, G.old_bytes / 1024,
            L.card ? "cards" : arena_track_backend(G.hv) == ARENA_TRACKER_UFFD ? "pages/uffd" : "pages/sigsegv");
}
