/*
 * test_collect.c -- the compacting collector (docs/design.md §7): a random multi-cycle
 * property test per mover and page size, pins, release of dead pages, the VMA budget,
 * a sparse 1 GiB heap, mirror views.
 */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "arena.h"
#include "prop_util.h"
#include "core.h"
#include "view.h"
#include "fixtures.h"

struct ref {
    char *p;
    size_t size;
    uint64_t seed;
    bool pinned;
};


static void fill(const struct ref *r)
{
    uint64_t *w = (uint64_t *)r->p;
    for (size_t i = 0; i < r->size / 8; i++)
        w[i] = word_of(r->seed, i);
}

static bool intact(const struct ref *r, const char *at)
{
    const uint64_t *w = (const uint64_t *)at;
    for (size_t i = 0; i < r->size / 8; i++)
        if (w[i] != word_of(r->seed, i))
            return false;
    return true;
}

static size_t pick_size(size_t page)
{
    uint64_t k = rnd() % 100;
    if (k < 80)
        return 16 + rnd() % 496;
    if (k < 96)
        return 512 + rnd() % (page - 512);
    return page + 1 + rnd() % (3 * page);
}

static size_t retain_max; /* cfg.retain_max for make(): 0 default, 1 keeps nothing */
static unsigned debug;    /* cfg.debug for make() */

static arena_t *make(int mover, size_t page, size_t budget)
{
    return TEST_ARENA(.mover = mover, .page_size = page, .reserve = (size_t)1 << 32, .vma_budget = budget,
                      .retain_max = retain_max, .debug = debug);
}

/* One cycle of the model: allocate, choose survivors (marked through interior
 * pointers, some pinned), collect, forward every reference, verify every byte. */
static size_t cycle(arena_t *a, struct ref *refs, size_t n, size_t cap, arena_view_t *mirror)
{
    size_t page = arena_page_size(a);
    size_t fresh = 20 + rnd() % 120;
    for (size_t i = 0; i < fresh && n < cap; i++) {
        struct ref r = {.size = (pick_size(page) + 15) & ~(size_t)15, .seed = rnd()};
        r.p = arena_alloc(a, r.size);
        cr_assert_not_null(r.p);
        cr_assert_eq((uintptr_t)r.p % 16, 0);
        cr_assert_eq(arena_object_size(a, r.p), r.size);
        if (r.size <= page)
            cr_assert_eq((uintptr_t)r.p / page, (uintptr_t)(r.p + r.size - 1) / page, "small object straddles");
        fill(&r);
        refs[n++] = r;
    }
    bool *live = calloc(n, sizeof *live);
    size_t nlive = 0;
    for (size_t i = 0; i < n; i++) {
        live[i] = rnd() % 100 < 55;
        refs[i].pinned = live[i] && rnd() % 100 < 3;
        if (!live[i])
            continue;
        nlive++;
        const char *interior = refs[i].p + rnd() % refs[i].size;
        cr_assert_eq(arena_object(a, interior), refs[i].p);
        cr_assert_eq(refs[i].pinned ? arena_pin(a, interior) : arena_mark(a, interior), 0);
        if (rnd() % 4 == 0)
            cr_assert_eq(arena_mark(a, refs[i].p), 0); /* idempotent */
    }
    arena_collect_stats_t st;
    cr_assert_eq(arena_collect(a, &st), 0);
    cr_assert_eq(st.objects_live, nlive);
    cr_assert_eq(st.objects_freed, n - nlive);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        size_t off = rnd() % refs[i].size;
        char *now = arena_forward(a, refs[i].p);
        if (!live[i]) {
            cr_assert_null(now, "a dead object forwards to %p", (void *)now);
            cr_assert_null(arena_forward(a, refs[i].p + off));
            continue;
        }
        cr_assert_not_null(now, "a live object was lost");
        cr_assert_eq(arena_forward(a, refs[i].p + off), now + off, "interior forwarding");
        if (debug) {
            cr_assert_eq(arena_forward_check(a, refs[i].p + off), 0, "an old address reported forwarded");
            if (now != refs[i].p) {
                cr_assert_eq(arena_forward_check(a, now + off), ARENA_EFORWARDED, "a moved-to address not reported");
                cr_assert_null(arena_forward(a, now + off), "forwarding twice reached another object");
            }
        }
        if (refs[i].pinned)
            cr_assert_eq(now, refs[i].p, "a pinned object moved");
        cr_assert_eq(arena_object(a, now + off), now);
        cr_assert_eq(arena_object_size(a, now), refs[i].size);
        refs[kept] = refs[i];
        refs[kept].p = now;
        cr_assert(intact(&refs[kept], now), "object bytes changed");
        if (mirror != NULL)
            cr_assert(intact(&refs[kept], arena_view_addr(mirror, now)), "mirror differs");
        kept++;
    }
    free(live);
    arena_stats_t s;
    cr_assert_eq(arena_stats(a, &s), 0);
    cr_assert_leq(s.vmas, s.vma_budget);
    return kept;
}

static void property(int mover, size_t page, int cycles, uint64_t seed)
{
    rng_state = seed;
    arena_t *a = make(mover, page, 0);
    size_t cap = 4096, n = 0;
    struct ref *refs = calloc(cap, sizeof *refs);
    for (int c = 0; c < cycles; c++)
        n = cycle(a, refs, n, cap, NULL);
    arena_stats_t s;
    cr_assert_eq(arena_stats(a, &s), 0);
    cr_assert_eq(s.collections, (size_t)cycles);
    free(refs);
    arena_destroy(a);
}

Test(collect, auto_4k) { property(ARENA_MOVE_AUTO, 4096, 200, 1); }
Test(collect, auto_16k) { property(ARENA_MOVE_AUTO, 16384, 150, 2); }
Test(collect, copy_4k) { property(ARENA_MOVE_COPY, 4096, 200, 3); }
Test(collect, copy_16k) { property(ARENA_MOVE_COPY, 16384, 150, 4); }
Test(collect, mmap_fixed_4k) { property(ARENA_MOVE_MMAP_FIXED, 4096, 200, 5); }
Test(collect, mmap_fixed_16k) { property(ARENA_MOVE_MMAP_FIXED, 16384, 150, 6); }
Test(collect, mremap_4k) { property(ARENA_MOVE_MREMAP, 4096, 200, 7); }
Test(collect, mremap_16k) { property(ARENA_MOVE_MREMAP, 16384, 150, 8); }
Test(collect, remap_file_pages_4k) { property(ARENA_MOVE_REMAP_FILE_PAGES, 4096, 200, 9); }
Test(collect, remap_file_pages_16k) { property(ARENA_MOVE_REMAP_FILE_PAGES, 16384, 150, 10); }
/* Without retained pages every slide target is unmapped or freshly released: the
 * remapping and fresh-copy paths (.req.collect.slide) instead of slides into retained pages. */
Test(collect, auto_4k_no_retain) { retain_max = 1; property(ARENA_MOVE_AUTO, 4096, 150, 11); }
Test(collect, copy_4k_no_retain) { retain_max = 1; property(ARENA_MOVE_COPY, 4096, 150, 12); }
/* ARENA_DEBUG_FORWARD: every moved-to address is told apart from every old one. */
Test(collect, auto_4k_debug_forward) { debug = ARENA_DEBUG_FORWARD; property(ARENA_MOVE_AUTO, 4096, 120, 14); }
Test(collect, copy_4k_debug_forward_no_retain)
{
    debug = ARENA_DEBUG_FORWARD;
    retain_max = 1;
    property(ARENA_MOVE_COPY, 4096, 120, 15);
}
Test(collect, mremap_4k_no_retain) { retain_max = 1; property(ARENA_MOVE_MREMAP, 4096, 150, 13); }

/* An object allocated after the collection is no pre-collection address either: in a page
 * the collection vacated, arena_forward of it answers with a pointer into whatever object
 * that page's old contents became. arena_forward_check reported 0 for such objects. */
Test(collect, forward_check_reports_objects_allocated_since)
{
    debug = ARENA_DEBUG_FORWARD;
    arena_t *a = make(ARENA_MOVE_AUTO, 4096, 0);
    enum { N = 20000, NEW = 5000 };
    char **o = calloc(N, sizeof *o);
    cr_assert_not_null(o);
    for (size_t i = 0; i < N; i++) {
        o[i] = arena_alloc(a, 100);
        cr_assert_not_null(o[i]);
        memset(o[i], 1, 100);
    }
    /* Pages of 36 objects: a third die whole, a third keep one in nine, a third stay. */
    for (size_t i = 0; i < N; i++)
        if ((i / 36) % 3 == 0 || ((i / 36) % 3 == 1 && i % 9 == 0))
            cr_assert_eq(arena_mark(a, o[i]), 0);
    cr_assert_eq(arena_collect(a, NULL), 0);
    for (size_t i = 0; i < N; i++)
        if ((i / 36) % 3 == 0 || ((i / 36) % 3 == 1 && i % 9 == 0))
            cr_assert_eq(arena_forward_check(a, o[i]), 0, "an old address reported forwarded");
    for (size_t i = 0; i < NEW; i++) {
        char *p = arena_alloc(a, 100);
        cr_assert_not_null(p);
        cr_assert_eq(arena_forward_check(a, p + i % 100), ARENA_EFORWARDED,
                     "object %zu allocated since the collection not reported", i);
    }
    char *big = arena_alloc(a, 3 * 4096);
    cr_assert_not_null(big);
    cr_assert_eq(arena_forward_check(a, big + 2 * 4096), ARENA_EFORWARDED);
    free(o);
    arena_destroy(a);
    debug = 0;
}

Test(collect, mirror_follows)
{
    rng_state = 11;
    arena_t *a = make(ARENA_MOVE_AUTO, 4096, 0);
    arena_view_t *mirror = NULL;
    cr_assert_eq(arena_view_open(a, ARENA_VIEW_MIRROR, 0, ARENA_PROT_READ, 0, &mirror), 0);
    size_t cap = 4096, n = 0;
    struct ref *refs = calloc(cap, sizeof *refs);
    for (int c = 0; c < 60; c++)
        n = cycle(a, refs, n, cap, mirror);
    free(refs);
    arena_destroy(a);
}

Test(collect, pinned_never_move)
{
    arena_t *a = make(ARENA_MOVE_AUTO, 4096, 0);
    enum { N = 3000 };
    static char *objs[N];
    for (int i = 0; i < N; i++) {
        objs[i] = arena_alloc(a, 200);
        memset(objs[i], i & 0xff, 200);
    }
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i += 97)
            cr_assert_eq(arena_pin(a, objs[i] + 5), 0);
        cr_assert_eq(arena_collect(a, NULL), 0);
        for (int i = 0; i < N; i += 97) {
            cr_assert_eq(arena_forward(a, objs[i]), objs[i]);
            for (int b = 0; b < 200; b++)
                cr_assert_eq((unsigned char)objs[i][b], i & 0xff);
        }
    }
    arena_destroy(a);
}

Test(collect, dead_pages_released)
{
    arena_t *a = make(ARENA_MOVE_AUTO, 4096, 0);
    char *keep = NULL;
    for (int i = 0; i < 4096; i++) {
        char *p = arena_alloc(a, 1000);
        memset(p, 0x5a, 1000);
        if (i == 1234)
            keep = p;
    }
    arena_stats_t before, after;
    cr_assert_eq(arena_stats(a, &before), 0);
    cr_assert_eq(arena_mark(a, keep), 0);
    arena_collect_stats_t st;
    cr_assert_eq(arena_collect(a, &st), 0);
    cr_assert_geq(st.pages_retained, 1000, "dead pages are retained, not released in the pause");
    cr_assert_eq(st.pages_released, 0);
    cr_assert_eq(arena_trim(a, 0), 0);
    cr_assert_eq(arena_stats(a, &after), 0);
    cr_assert_eq(after.retained_bytes, 0);
    cr_assert_lt(after.file_bytes * 20, before.file_bytes, "file %zu -> %zu", before.file_bytes, after.file_bytes);
    cr_assert_lt(after.resident_bytes * 20, before.resident_bytes, "resident %zu -> %zu",
                 before.resident_bytes, after.resident_bytes);
    cr_assert_eq(after.heap_pages, 1);
    char *now = arena_forward(a, keep);
    for (int b = 0; b < 1000; b++)
        cr_assert_eq(now[b], 0x5a);
    arena_destroy(a);
}

/* A budget too small for scattered remaps: the slide must copy and stay correct. */
Test(collect, tiny_budget_copies)
{
    arena_t *a = make(ARENA_MOVE_MMAP_FIXED, 4096, 24);
    enum { N = 1500 };
    static char *objs[N];
    for (int i = 0; i < N; i++) {
        objs[i] = arena_alloc(a, 4000);
        cr_assert_not_null(objs[i]);
        memset(objs[i], i % 251, 4000);
    }
    for (int i = 0; i < N; i += 3)
        cr_assert_eq(arena_mark(a, objs[i]), 0);
    arena_collect_stats_t st;
    int err = arena_collect(a, &st);
    cr_assert_eq(err, 0, "collect: %s", arena_strerror(err));
    cr_assert_gt(st.pages_copied, 0);
    arena_stats_t s;
    cr_assert_eq(arena_stats(a, &s), 0);
    cr_assert_leq(s.vmas, 24);
    for (int i = 0; i < N; i++) {
        char *now = arena_forward(a, objs[i]);
        if (i % 3) {
            cr_assert_null(now);
            continue;
        }
        cr_assert_not_null(now);
        for (int b = 0; b < 4000; b += 97)
            cr_assert_eq((unsigned char)now[b], i % 251);
    }
    arena_destroy(a);
}

/* 1 GiB of one-object pages, every fourth survives: remapping each survivor would need
 * more mappings than vm.max_map_count; the collection stays inside the budget. */
Test(collect, sparse_1g_within_vma_limit, .timeout = 600)
{
    arena_config_t cfg;
    arena_config_init(&cfg);
    cfg.mover = ARENA_MOVE_MMAP_FIXED;
    arena_t *a = NULL;
    cr_assert_eq(arena_create(&a, &cfg), 0);
    size_t n = ((size_t)1 << 30) / 4096;
    char **objs = malloc(n * sizeof *objs);
    for (size_t i = 0; i < n; i++) {
        objs[i] = arena_alloc(a, 4000);
        cr_assert_not_null(objs[i]);
    }
    for (size_t i = 0; i < n; i += 4) {
        memcpy(objs[i] + 8, &i, sizeof i);
        cr_assert_eq(arena_mark(a, objs[i] + 100), 0);
    }
    arena_collect_stats_t st;
    int err = arena_collect(a, &st);
    cr_assert_eq(err, 0, "collect: %s", arena_strerror(err));
    arena_stats_t s;
    cr_assert_eq(arena_stats(a, &s), 0);
    cr_assert_leq(s.vmas, s.vma_budget);
    cr_assert_lt(arena__os_count_maps(), arena__os_max_map_count());
    cr_assert_eq(st.objects_live, n / 4);
    for (size_t i = 0; i < n; i += 4) {
        char *now = arena_forward(a, objs[i]);
        cr_assert_not_null(now);
        size_t tag;
        memcpy(&tag, now + 8, sizeof tag);
        cr_assert_eq(tag, i);
    }
    free(objs);
    arena_destroy(a);
}

Test(collect, errors)
{
    arena_t *a = make(ARENA_MOVE_AUTO, 4096, 0);
    int local;
    cr_assert_eq(arena_mark(NULL, &local), ARENA_ENULL);
    cr_assert_eq(arena_mark(a, NULL), ARENA_ENULL);
    cr_assert_eq(arena_mark(a, &local), ARENA_EFOREIGN);
    cr_assert_eq(arena_pin(a, &local), ARENA_EFOREIGN);
    char *p = arena_alloc(a, 32);
    cr_assert_eq(arena_mark(a, p + 64), ARENA_ENOTOBJ); /* free space after the object */
    cr_assert_eq(arena_collect(NULL, NULL), ARENA_ENULL);
    cr_assert_eq(arena_forward(a, &local), (void *)&local);
    cr_assert_eq(arena_collect(a, NULL), 0);
    cr_assert_null(arena_forward(a, p), "unmarked object survived");
    arena_destroy(a);
}

/* Long runs slide by whole 2 MiB steps with mremap (page tables move along). */
Test(collect, long_runs_mremap_2m)
{
    arena_t *a = make(ARENA_MOVE_AUTO, 4096, 0);
    enum { N = 6 };
    char *objs[N];
    for (int i = 0; i < N; i++) {
        objs[i] = arena_alloc(a, (size_t)2 << 20);
        cr_assert_not_null(objs[i]);
        memset(objs[i], 'a' + i, (size_t)2 << 20);
    }
    for (int i = 1; i < N; i++)
        cr_assert_eq(arena_mark(a, objs[i] + 12345), 0);
    arena_collect_stats_t st;
    cr_assert_eq(arena_collect(a, &st), 0);
    if (arena__map_have_dontunmap())
        cr_assert_geq(st.runs_mremap_2m, 1, "remapped %zu runs, copied %zu", st.runs_remapped, st.runs_copied);
    for (int i = 1; i < N; i++) {
        char *now = arena_forward(a, objs[i]);
        cr_assert_not_null(now);
        cr_assert_eq(((uintptr_t)now - (uintptr_t)objs[i]) % ((size_t)2 << 20), 0, "not congruent mod 2 MiB");
        for (size_t b = 0; b < ((size_t)2 << 20); b += 4096)
            cr_assert_eq(now[b], 'a' + i);
    }
    cr_assert_eq(arena_forward(a, objs[0]), NULL);
    arena_destroy(a);
}

/* Each page of a 2 MiB object carries its object's tag and its own index. */
static void fill_2m(char *p, unsigned tag)
{
    for (size_t b = 0; b < ((size_t)2 << 20); b += 4096)
        *(uint64_t *)(p + b) = ((uint64_t)tag << 32) | b;
}

static bool holds_2m(const char *p, unsigned tag)
{
    for (size_t b = 0; b < ((size_t)2 << 20); b += 4096)
        if (*(const uint64_t *)(p + b) != (((uint64_t)tag << 32) | b))
            return false;
    return true;
}

/* A long run moved onto retained pages parks them at the slots it vacated (.req.heap.retain-pages): they
 * stay retained, allocation reuses them zeroed, the trim releases them, and no live page
 * is lost on the way. */
Test(collect, long_runs_park_retained_targets)
{
    arena_t *a = make(ARENA_MOVE_AUTO, 4096, 0);
    enum { N = 8, M = 3 };
    const size_t big = (size_t)2 << 20;
    char *objs[N], *fresh[M];
    for (int i = 0; i < N; i++) {
        objs[i] = arena_alloc(a, big);
        cr_assert_not_null(objs[i]);
        fill_2m(objs[i], (unsigned)i + 1);
    }
    for (int i = 1; i < N; i += 2)
        cr_assert_eq(arena_mark(a, objs[i]), 0);
    arena_collect_stats_t st;
    cr_assert_eq(arena_collect(a, &st), 0);
    if (arena__map_have_dontunmap())
        cr_assert_geq(st.pages_parked, big / 4096, "parked %zu pages, mremap runs %zu", st.pages_parked,
                      st.runs_mremap_2m);
    for (int i = 1; i < N; i += 2) {
        objs[i] = arena_forward(a, objs[i]);
        cr_assert_not_null(objs[i]);
        cr_assert(holds_2m(objs[i], (unsigned)i + 1), "live object %d lost its content", i);
    }
    arena_stats_t s;
    cr_assert_eq(arena_stats(a, &s), 0);
    cr_assert_geq(s.retained_bytes, st.pages_parked * 4096, "parked pages are counted as retained");

    /* The parked pages are the allocation pool: reused zeroed, the survivors untouched. */
    for (int k = 0; k < M; k++) {
        fresh[k] = arena_alloc(a, big);
        cr_assert_not_null(fresh[k]);
        for (size_t b = 0; b < big; b += 512)
            cr_assert_eq(*(uint64_t *)(fresh[k] + b), 0, "reused page not cleared at %zu", b);
        fill_2m(fresh[k], 100u + (unsigned)k);
    }
    for (int i = 1; i < N; i += 2)
        cr_assert(holds_2m(objs[i], (unsigned)i + 1), "live object %d overwritten by a reuse", i);

    /* The trim releases what is still retained; a second collection keeps everyone. */
    cr_assert_eq(arena_trim(a, 0), 0);
    cr_assert_eq(arena_stats(a, &s), 0);
    cr_assert_eq(s.retained_bytes, 0);
    for (int i = 1; i < N; i += 2)
        cr_assert_eq(arena_mark(a, objs[i]), 0);
    for (int k = 0; k < M; k++)
        cr_assert_eq(arena_mark(a, fresh[k]), 0);
    cr_assert_eq(arena_collect(a, &st), 0);
    for (int i = 1; i < N; i += 2) {
        char *now = arena_forward(a, objs[i]);
        cr_assert_not_null(now);
        cr_assert(holds_2m(now, (unsigned)i + 1), "live object %d lost after the trim", i);
    }
    for (int k = 0; k < M; k++) {
        char *now = arena_forward(a, fresh[k]);
        cr_assert_not_null(now);
        cr_assert(holds_2m(now, 100u + (unsigned)k), "reused object %d lost", k);
    }
    arena_destroy(a);
}
