/*
 * test_mesh.c -- meshing of pinned pages (docs/design.md §7, .req.mesh.what to .req.mesh.budget): aliasing after
 * a mesh, allocation and death around meshed pages, a tight VMA budget, tracking, mirrors,
 * meshing off, and a seeded property test of many collections with random pins.
 */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"

#define PAGE 4096
#define OBJ 64
#define PER_PAGE (PAGE / OBJ)

static arena_t *make(int mesh, size_t budget)
{
    arena_config_t cfg;
    arena_config_init(&cfg);
    cfg.page_size = PAGE;
    cfg.reserve = (size_t)1 << 30;
    cfg.mesh = mesh;
    cfg.vma_budget = budget;
    arena_t *a = NULL;
    cr_assert_eq(arena_create(&a, &cfg), 0);
    return a;
}

static void fill(char *p, uint32_t tag)
{
    for (size_t i = 0; i < OBJ; i += 4)
        memcpy(p + i, &(uint32_t){tag * 2654435761u + (uint32_t)i}, 4);
}

static bool intact(const char *p, uint32_t tag)
{
    for (size_t i = 0; i < OBJ; i += 4) {
        uint32_t w;
        memcpy(&w, p + i, 4);
        if (w != tag * 2654435761u + (uint32_t)i)
            return false;
    }
    return true;
}

static size_t slot_of(arena_t *a, const void *p)
{
    return (size_t)((const char *)p - (const char *)arena_view_base(arena_heap_view(a))) / PAGE;
}

/* npages whole pages of 64-byte objects, page-aligned: objs[page * PER_PAGE + k]. */
static char **pages_of_objects(arena_t *a, size_t npages)
{
    char **objs = calloc(npages * PER_PAGE, sizeof *objs);
    char *p;
    do /* skip to a page boundary */
        p = arena_alloc(a, OBJ);
    while ((uintptr_t)p % PAGE != 0);
    objs[0] = p;
    for (size_t i = 1; i < npages * PER_PAGE; i++) {
        objs[i] = arena_alloc(a, OBJ);
        cr_assert_eq(objs[i], objs[i - 1] + OBJ, "objects not consecutive");
    }
    for (size_t i = 0; i < npages * PER_PAGE; i++)
        fill(objs[i], (uint32_t)i);
    return objs;
}

/* Object k of page i survives (pinned) when kept(i, k). */
static bool checker(size_t page, size_t k) { return (k % 2) == (page % 2); }

Test(mesh, aliasing_after_a_mesh)
{
    arena_t *a = make(ARENA_MESH_ON, 0);
    char **objs = pages_of_objects(a, 2);
    for (size_t i = 0; i < 2 * PER_PAGE; i++)
        if (checker(i / PER_PAGE, i % PER_PAGE))
            cr_assert_eq(arena_pin(a, objs[i]), 0);
    arena_collect_stats_t st;
    cr_assert_eq(arena_collect(a, &st), 0);
    cr_assert_eq(st.pages_meshed, 1, "two half-full pinned pages with disjoint objects: one mesh");
    arena_view_t *hv = arena_heap_view(a);
    size_t s0 = slot_of(a, objs[0]), s1 = slot_of(a, objs[PER_PAGE]);
    cr_assert_neq(arena_view_file_page(hv, s0), ARENA_NO_PAGE);
    cr_assert_eq(arena_view_file_page(hv, s0), arena_view_file_page(hv, s1), "both slots show one file page");
    /* each survivor through its own address, and forwarding gives the same address */
    for (size_t i = 0; i < 2 * PER_PAGE; i++) {
        if (!checker(i / PER_PAGE, i % PER_PAGE))
            continue;
        cr_assert_eq(arena_forward(a, objs[i]), objs[i]);
        cr_assert_eq(arena_object(a, objs[i] + 5), objs[i]);
        cr_assert(intact(objs[i], (uint32_t)i), "object %zu changed by the mesh", i);
    }
    /* the dead half of each slot is no object, though the bytes there are the other's */
    cr_assert_null(arena_object(a, objs[1]));
    cr_assert_null(arena_forward(a, objs[1]));
    /* a write through one page's object shows at the same offset in the other slot, where
     * no object of that slot lives, and changes no other object */
    for (size_t i = 0; i < 2 * PER_PAGE; i++)
        if (checker(i / PER_PAGE, i % PER_PAGE))
            fill(objs[i], (uint32_t)(i + 1000));
    for (size_t i = 0; i < 2 * PER_PAGE; i++) {
        if (!checker(i / PER_PAGE, i % PER_PAGE))
            continue;
        cr_assert(intact(objs[i], (uint32_t)(i + 1000)));
        size_t other = i < PER_PAGE ? i + PER_PAGE : i - PER_PAGE;
        cr_assert_eq(memcmp(objs[i], objs[other], OBJ), 0, "the slots do not alias");
    }
    free(objs);
    arena_destroy(a);
}

/* OFF, and the default (AUTO), which does not mesh (docs/design.md §7: recycling the gaps of
 * pinned pages serves a heap that keeps allocating better than meshing them). */
static void no_mesh(int mode)
{
    arena_t *a = make(mode, 0);
    char **objs = pages_of_objects(a, 2);
    for (size_t i = 0; i < 2 * PER_PAGE; i++)
        if (checker(i / PER_PAGE, i % PER_PAGE))
            cr_assert_eq(arena_pin(a, objs[i]), 0);
    arena_collect_stats_t st;
    cr_assert_eq(arena_collect(a, &st), 0);
    cr_assert_eq(st.pages_meshed, 0);
    arena_view_t *hv = arena_heap_view(a);
    cr_assert_neq(arena_view_file_page(hv, slot_of(a, objs[0])), arena_view_file_page(hv, slot_of(a, objs[PER_PAGE])));
    free(objs);
    arena_destroy(a);
}

Test(mesh, off_means_no_mesh) { no_mesh(ARENA_MESH_OFF); }
Test(mesh, default_does_not_mesh) { no_mesh(ARENA_MESH_AUTO); }

Test(mesh, bad_config)
{
    arena_config_t cfg;
    arena_config_init(&cfg);
    cfg.mesh = 7;
    arena_t *a = NULL;
    cr_assert_eq(arena_create(&a, &cfg), ARENA_ECONFIG);
    cr_assert_null(a);
}

Test(mesh, overlapping_pages_do_not_mesh)
{
    arena_t *a = make(ARENA_MESH_ON, 0);
    char **objs = pages_of_objects(a, 2);
    /* both pages keep object 5: the granules overlap */
    for (size_t i = 0; i < 2 * PER_PAGE; i++)
        if (i % PER_PAGE == 5 || checker(i / PER_PAGE, i % PER_PAGE))
            cr_assert_eq(arena_pin(a, objs[i]), 0);
    arena_collect_stats_t st;
    cr_assert_eq(arena_collect(a, &st), 0);
    cr_assert_eq(st.pages_meshed, 0);
    free(objs);
    arena_destroy(a);
}

/* Pin objects of many pages in a pattern that lets up to four pages share a file page. */
static size_t quarter(size_t page, size_t k) { return (k % 4) == (page % 4); }

Test(mesh, allocation_and_death_around_meshed_pages)
{
    arena_t *a = make(ARENA_MESH_ON, 0);
    enum { NP = 16 };
    char **objs = pages_of_objects(a, NP);
    bool *alive = calloc(NP * PER_PAGE, sizeof *alive);
    for (size_t i = 0; i < NP * PER_PAGE; i++)
        if ((alive[i] = quarter(i / PER_PAGE, i % PER_PAGE)))
            cr_assert_eq(arena_pin(a, objs[i]), 0);
    arena_collect_stats_t st;
    cr_assert_eq(arena_collect(a, &st), 0);
    cr_assert_geq(st.pages_meshed, NP / 2, "quarter-full disjoint pages mesh (got %zu)", st.pages_meshed);
    for (int round = 0; round < 6; round++) {
        /* allocate and scribble over a lot of new objects: retained and fresh pages */
        for (int j = 0; j < 3000; j++) {
            char *p = arena_alloc(a, 16 + (size_t)(j % 7) * 16);
            cr_assert_not_null(p);
            memset(p, 0xA5, 16 + (size_t)(j % 7) * 16);
        }
        for (size_t i = 0; i < NP * PER_PAGE; i++)
            if (alive[i])
                cr_assert(intact(objs[i], (uint32_t)i), "round %d: object %zu overwritten", round, i);
        /* one page in four loses its objects; the rest stay pinned, or only marked */
        for (size_t i = 0; i < NP * PER_PAGE; i++) {
            if (!alive[i])
                continue;
            if ((i / PER_PAGE) % 4 == (size_t)round % 4 && round > 0)
                alive[i] = false;
            else
                cr_assert_eq(round % 2 ? arena_mark(a, objs[i]) : arena_pin(a, objs[i]), 0);
        }
        cr_assert_eq(arena_collect(a, &st), 0);
        for (size_t i = 0; i < NP * PER_PAGE; i++) {
            if (alive[i]) {
                cr_assert_eq(arena_forward(a, objs[i]), objs[i], "a meshed object moved");
                cr_assert(intact(objs[i], (uint32_t)i), "round %d: object %zu lost", round, i);
            } else {
                cr_assert_null(arena_forward(a, objs[i]));
            }
        }
    }
    free(alive);
    free(objs);
    arena_destroy(a);
}

Test(mesh, tight_vma_budget)
{
    arena_t *a = make(ARENA_MESH_ON, 64);
    enum { NP = 200 };
    char **objs = pages_of_objects(a, NP);
    for (size_t i = 0; i < NP * PER_PAGE; i++)
        if (checker(i / PER_PAGE, i % PER_PAGE))
            cr_assert_eq(arena_pin(a, objs[i]), 0);
    arena_collect_stats_t st;
    cr_assert_eq(arena_collect(a, &st), 0);
    arena_stats_t s;
    cr_assert_eq(arena_stats(a, &s), 0);
    cr_assert_leq(s.vmas, s.vma_budget);
    cr_assert_gt(st.pages_meshed, 0);
    cr_assert_lt(st.pages_meshed, NP / 2, "a budget of 64 cannot hold %zu meshes", st.pages_meshed);
    for (size_t i = 0; i < NP * PER_PAGE; i++)
        if (checker(i / PER_PAGE, i % PER_PAGE))
            cr_assert(intact(objs[i], (uint32_t)i));
    free(objs);
    arena_destroy(a);
}

Test(mesh, tracking_and_mirrors_see_meshed_pages)
{
    arena_t *a = make(ARENA_MESH_ON, 0);
    arena_view_t *mirror = NULL, *hv = arena_heap_view(a);
    cr_assert_eq(arena_view_open(a, ARENA_VIEW_MIRROR, 0, ARENA_PROT_READ, 0, &mirror), 0);
    char **objs = pages_of_objects(a, 2);
    cr_assert_eq(arena_track_start(hv, ARENA_TRACK_WRITES), 0);
    for (size_t i = 0; i < 2 * PER_PAGE; i++)
        if (checker(i / PER_PAGE, i % PER_PAGE))
            cr_assert_eq(arena_pin(a, objs[i]), 0);
    arena_collect_stats_t st;
    cr_assert_eq(arena_collect(a, &st), 0);
    cr_assert_eq(st.pages_meshed, 1);
    size_t s0 = slot_of(a, objs[0]), s1 = slot_of(a, objs[PER_PAGE]);
    cr_assert_eq(arena_view_file_page(mirror, s0), arena_view_file_page(hv, s0));
    cr_assert_eq(arena_view_file_page(mirror, s1), arena_view_file_page(hv, s0), "the mirror shows the mesh");
    for (size_t i = 0; i < 2 * PER_PAGE; i++)
        if (checker(i / PER_PAGE, i % PER_PAGE))
            cr_assert(intact(arena_view_addr(mirror, objs[i]), (uint32_t)i));
    void *pages[64];
    size_t n;
    cr_assert_eq(arena_track_take(hv, pages, 64, &n), 0); /* what the collection touched */
    /* a write through the second page's object is reported at its own slot */
    fill(objs[PER_PAGE + 1], 77);
    cr_assert_eq(arena_track_take(hv, pages, 64, &n), 0);
    bool seen = false;
    for (size_t i = 0; i < n; i++)
        seen |= pages[i] == (char *)arena_view_base(hv) + s1 * PAGE;
    cr_assert(seen, "the write through the meshed slot was not reported");
    cr_assert(intact(objs[PER_PAGE + 1], 77));
    cr_assert(intact(objs[0], 0));
    cr_assert_eq(arena_track_stop(hv), 0);
    free(objs);
    arena_destroy(a);
}

/* Many collections: random objects, random pins (often in meshable patterns), random
 * deaths; every pinned object keeps its address and bytes, every marked one its bytes. */
static uint64_t rng_state;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

struct ref {
    char *p;
    uint32_t tag;
};

static void property(uint64_t seed)
{
    rng_state = seed;
    arena_t *a = make(ARENA_MESH_ON, 0);
    size_t cap = 6000, n = 0, meshed = 0;
    struct ref *refs = calloc(cap, sizeof *refs);
    uint32_t tags = 1;
    for (int cycle = 0; cycle < 25; cycle++) {
        size_t fresh = 200 + rnd() % 800;
        for (size_t i = 0; i < fresh && n < cap; i++) {
            refs[n].p = arena_alloc(a, OBJ);
            refs[n].tag = tags++;
            fill(refs[n].p, refs[n].tag);
            n++;
        }
        unsigned phase = (unsigned)(rnd() % 4), survive = 10 + (unsigned)(rnd() % 40);
        bool *pinned = calloc(n, sizeof *pinned), *live = calloc(n, sizeof *live);
        for (size_t i = 0; i < n; i++) {
            size_t k = ((uintptr_t)refs[i].p % PAGE) / OBJ, pg = (uintptr_t)refs[i].p / PAGE;
            /* mostly a meshable quarter pattern, sometimes anything */
            bool keep = rnd() % 100 < 80 ? (k + pg + phase) % 4 == 0 && rnd() % 100 < 90
                                         : rnd() % 100 < survive;
            if (!keep)
                continue;
            live[i] = true;
            pinned[i] = rnd() % 100 < 85;
            cr_assert_eq(pinned[i] ? arena_pin(a, refs[i].p + rnd() % OBJ) : arena_mark(a, refs[i].p), 0);
        }
        arena_collect_stats_t st;
        cr_assert_eq(arena_collect(a, &st), 0);
        meshed += st.pages_meshed;
        size_t kept = 0;
        for (size_t i = 0; i < n; i++) {
            char *now = arena_forward(a, refs[i].p);
            if (!live[i]) {
                cr_assert_null(now);
                continue;
            }
            cr_assert_not_null(now, "seed %llu cycle %d: a live object was lost", (unsigned long long)seed, cycle);
            if (pinned[i])
                cr_assert_eq(now, refs[i].p, "a pinned object moved");
            cr_assert(intact(now, refs[i].tag), "seed %llu cycle %d: object bytes changed",
                      (unsigned long long)seed, cycle);
            refs[kept] = refs[i];
            refs[kept++].p = now;
        }
        n = kept;
        free(pinned);
        free(live);
        arena_stats_t s;
        cr_assert_eq(arena_stats(a, &s), 0);
        cr_assert_leq(s.vmas, s.vma_budget);
    }
    cr_assert_gt(meshed, 0, "seed %llu: nothing meshed", (unsigned long long)seed);
    free(refs);
    arena_destroy(a);
}

Test(mesh, property_seed_sweep)
{
    for (uint64_t seed = 1; seed <= 10; seed++)
        property(seed * 0x9E3779B97F4A7C15ull);
}

/* The one-pass collector (arena_trace_collect) after a mesh: it traces meshed pages in
 * place, never evacuates or retains them; arena_collect releases them when they die. */
struct trace_roots {
    char **objs;
    size_t n;
    bool *alive;
};

static void no_fields(arena_ss_t *ss, void *obj, size_t size, void *closure)
{
    (void)ss, (void)obj, (void)size, (void)closure;
}

static void roots_of(arena_ss_t *ss, void *closure)
{
    struct trace_roots *r = closure;
    for (size_t i = 0; i < r->n; i++)
        if (r->alive[i])
            cr_assert_eq(arena_fix(ss, (void **)&r->objs[i]), 0);
}

Test(mesh, one_pass_collector_keeps_meshed_pages)
{
    arena_t *a = make(ARENA_MESH_ON, 0);
    char **objs = pages_of_objects(a, 2);
    bool alive[2 * PER_PAGE];
    for (size_t i = 0; i < 2 * PER_PAGE; i++)
        if ((alive[i] = checker(i / PER_PAGE, i % PER_PAGE)))
            cr_assert_eq(arena_pin(a, objs[i]), 0);
    arena_collect_stats_t st;
    cr_assert_eq(arena_collect(a, &st), 0);
    cr_assert_eq(st.pages_meshed, 1);
    /* every object of the first page dies in a one-pass collection; the second page's live */
    for (size_t i = 0; i < PER_PAGE; i++)
        alive[i] = false;
    char *keep[2 * PER_PAGE];
    memcpy(keep, objs, sizeof keep);
    struct trace_roots r = {objs, 2 * PER_PAGE, alive};
    arena_format_t fmt = {.scan = no_fields, .roots = roots_of, .closure = &r};
    for (int round = 0; round < 2; round++) {
        cr_assert_eq(arena_trace_collect(a, &fmt, ARENA_TRACE_FULL, &st), 0);
        for (int j = 0; j < 2000; j++)
            memset(arena_alloc(a, 48), 0x5A, 48); /* retained and fresh pages reused */
        for (size_t i = PER_PAGE; i < 2 * PER_PAGE; i++)
            if (alive[i]) {
                cr_assert_eq(objs[i], keep[i], "a meshed object moved in the one-pass collector");
                cr_assert(intact(objs[i], (uint32_t)i), "object %zu lost", i);
            }
    }
    /* arena_collect: the dead meshed slot is unmapped and the second page is alone again */
    for (size_t i = PER_PAGE; i < 2 * PER_PAGE; i++)
        if (alive[i])
            cr_assert_eq(arena_mark(a, objs[i]), 0);
    cr_assert_eq(arena_collect(a, &st), 0);
    for (size_t i = PER_PAGE; i < 2 * PER_PAGE; i++)
        if (alive[i]) {
            char *now = arena_forward(a, objs[i]);
            cr_assert_not_null(now);
            cr_assert(intact(now, (uint32_t)i), "object %zu lost after unmeshing", i);
        }
    free(objs);
    arena_destroy(a);
}

/* Mirrors follow every mesh at the end of the collection, and each mesh may split a
 * mirror's mapping as it split the heap's: the pass must leave the budget room for them,
 * or the collection fails with ARENA_EVMA and the mirror is left out of step. */
Test(mesh, mirrors_follow_meshes_within_the_budget)
{
    static const size_t budgets[] = {64, 100, 127};
    enum { NP = 64 };
    for (size_t b = 0; b < sizeof budgets / sizeof *budgets; b++) {
        arena_t *a = make(ARENA_MESH_ON, budgets[b]);
        arena_view_t *mirror = NULL;
        cr_assert_eq(arena_view_open(a, ARENA_VIEW_MIRROR, 0, ARENA_PROT_READ, 0, &mirror), 0);
        char **objs = pages_of_objects(a, NP);
        for (size_t i = 0; i < NP * PER_PAGE; i++)
            if ((i % PER_PAGE + i / PER_PAGE) % 8 == 0)
                cr_assert_eq(arena_pin(a, objs[i]), 0);
        arena_collect_stats_t st;
        int err = arena_collect(a, &st);
        cr_assert_eq(err, 0, "budget %zu: the collection failed (%s) after %zu meshes", budgets[b],
                     arena_strerror(err), st.pages_meshed);
        arena_stats_t s;
        cr_assert_eq(arena_stats(a, &s), 0);
        cr_assert_leq(s.vmas, s.vma_budget);
        for (size_t i = 0; i < NP * PER_PAGE; i++)
            if ((i % PER_PAGE + i / PER_PAGE) % 8 == 0) {
                cr_assert(intact(objs[i], (uint32_t)i));
                cr_assert(intact(arena_view_addr(mirror, objs[i]), (uint32_t)i), "the mirror is out of step");
            }
        if (budgets[b] >= 100)
            cr_assert_gt(st.pages_meshed, 0, "budget %zu: room for some meshes", budgets[b]);
        cr_assert_eq(arena_view_close(mirror), 0);
        free(objs);
        arena_destroy(a);
    }
}

/* Four quarter-full pages whose objects sit at four different offsets share ONE file
 * page: each object is read and written through its own address, the other pages'
 * objects stay as they were, and every slot shows the same file page. */
Test(mesh, four_pages_share_one_file_page)
{
    arena_t *a = make(ARENA_MESH_ON, 0);
    enum { NP = 4 };
    char **objs = pages_of_objects(a, NP);
    for (size_t i = 0; i < NP * PER_PAGE; i++)
        if (quarter(i / PER_PAGE, i % PER_PAGE))
            cr_assert_eq(arena_pin(a, objs[i]), 0);
    arena_collect_stats_t st;
    cr_assert_eq(arena_collect(a, &st), 0);
    cr_assert_eq(st.pages_meshed, NP - 1, "four disjoint quarter-full pages: three meshes (got %zu)",
                 st.pages_meshed);
    arena_view_t *hv = arena_heap_view(a);
    size_t fp = arena_view_file_page(hv, slot_of(a, objs[0]));
    cr_assert_neq(fp, ARENA_NO_PAGE);
    for (size_t p = 1; p < NP; p++)
        cr_assert_eq(arena_view_file_page(hv, slot_of(a, objs[p * PER_PAGE])), fp,
                     "slot of page %zu shows another file page", p);
    for (size_t i = 0; i < NP * PER_PAGE; i++) {
        if (!quarter(i / PER_PAGE, i % PER_PAGE))
            continue;
        cr_assert_eq(arena_forward(a, objs[i]), objs[i]);
        cr_assert(intact(objs[i], (uint32_t)i), "object %zu changed by the mesh", i);
    }
    /* page w's objects rewritten one page at a time: only they change, and each shows at
     * the same offset in every other slot */
    for (size_t w = 0; w < NP; w++) {
        for (size_t k = 0; k < PER_PAGE; k++)
            if (quarter(w, k))
                fill(objs[w * PER_PAGE + k], (uint32_t)(w * PER_PAGE + k + 5000));
        for (size_t i = 0; i < NP * PER_PAGE; i++) {
            size_t p = i / PER_PAGE, k = i % PER_PAGE;
            if (!quarter(p, k))
                continue;
            cr_assert(intact(objs[i], (uint32_t)(p <= w ? i + 5000 : i)),
                      "after rewriting page %zu: object %zu of page %zu", w, k, p);
            for (size_t q = 0; q < NP; q++)
                cr_assert_eq(memcmp(objs[i], objs[q * PER_PAGE + k], OBJ), 0, "slots %zu and %zu do not alias",
                             p, q);
        }
    }
    cr_assert_null(arena_object(a, objs[1]), "page 0 has no object at offset 1");
    free(objs);
    arena_destroy(a);
}

/* The packing: 256-byte objects, a quarter of them pinned at random (the mesh.pinned
 * shape). Pages fit three or four to a file page when the packing searches every open
 * target; the first version (the 32 most recent targets) kept half as many again. */
Test(mesh, random_quarter_full_pages_pack_three_or_four_to_a_file_page)
{
    enum { BIG = 256, NP = 600, PER = PAGE / BIG };
    arena_t *a = make(ARENA_MESH_ON, 0);
    char *first;
    do
        first = arena_alloc(a, BIG);
    while ((uintptr_t)first % PAGE != 0);
    char **objs = calloc(NP * PER, sizeof *objs);
    objs[0] = first;
    for (size_t i = 1; i < NP * PER; i++)
        cr_assert_not_null(objs[i] = arena_alloc(a, BIG));
    rng_state = 11;
    bool *kept = calloc(NP * PER, sizeof *kept);
    size_t live = 0;
    for (size_t i = 0; i < NP * PER; i++)
        if ((kept[i] = rnd() % 4 == 0)) {
            memset(objs[i], (int)(i & 0xFF), BIG);
            cr_assert_eq(arena_pin(a, objs[i]), 0);
            live++;
        }
    arena_collect_stats_t st;
    cr_assert_eq(arena_collect(a, &st), 0);
    /* distinct file pages shown by the slots that hold the survivors */
    arena_view_t *hv = arena_heap_view(a);
    size_t *fps = calloc(NP, sizeof *fps), nfp = 0;
    for (size_t i = 0; i < NP * PER; i++) {
        if (!kept[i])
            continue;
        cr_assert_eq(arena_forward(a, objs[i]), objs[i]);
        for (size_t b = 0; b < BIG; b++)
            cr_assert_eq((unsigned char)objs[i][b], (unsigned char)(i & 0xFF), "object %zu changed", i);
        size_t fp = arena_view_file_page(hv, slot_of(a, objs[i])), j = 0;
        while (j < nfp && fps[j] != fp)
            j++;
        if (j == nfp)
            fps[nfp++] = fp;
    }
    double live_pages = (double)(live * BIG) / PAGE;
    cr_assert_leq((double)nfp, 1.3 * live_pages, "%zu file pages for %.0f pages of live objects (%zu meshed)", nfp,
                  live_pages, st.pages_meshed);
    free(fps);
    free(kept);
    free(objs);
    arena_destroy(a);
}

/* Many collections of objects of mixed sizes with uniformly random pins and marks,
 * checked against a model: every live object keeps its bytes, a pinned one its address,
 * a dead one forwards nowhere; the live objects of all slots that show one file page
 * occupy disjoint bytes of it; a mirror shows what the heap shows; the VMA budget holds. */
struct mobj {
    char *p;
    uint32_t tag, size;
};

static void fill_n(char *p, uint32_t tag, size_t size)
{
    for (size_t i = 0; i + 4 <= size; i += 4)
        memcpy(p + i, &(uint32_t){tag * 2654435761u + (uint32_t)i}, 4);
}

static bool intact_n(const char *p, uint32_t tag, size_t size)
{
    for (size_t i = 0; i + 4 <= size; i += 4) {
        uint32_t w;
        memcpy(&w, p + i, 4);
        if (w != tag * 2654435761u + (uint32_t)i)
            return false;
    }
    return true;
}

struct span {
    size_t fp, from, to, obj;
};

static int cmp_span(const void *x, const void *y)
{
    const struct span *a = x, *b = y;
    if (a->fp != b->fp)
        return a->fp < b->fp ? -1 : 1;
    return a->from < b->from ? -1 : a->from > b->from;
}

static void random_pins(uint64_t seed, size_t budget)
{
    rng_state = seed;
    arena_t *a = make(ARENA_MESH_ON, budget);
    arena_view_t *hv = arena_heap_view(a), *mirror = NULL;
    cr_assert_eq(arena_view_open(a, ARENA_VIEW_MIRROR, 0, ARENA_PROT_READ, 0, &mirror), 0);
    size_t cap = 8000, n = 0, meshed = 0;
    struct mobj *objs = calloc(cap, sizeof *objs);
    struct span *spans = calloc(cap, sizeof *spans);
    bool *pinned = calloc(cap, sizeof *pinned);
    char **dead = calloc(cap, sizeof *dead);
    uint32_t tags = 1;
    for (int cycle = 0; cycle < 12; cycle++) {
        size_t fresh = 500 + rnd() % 1500;
        for (size_t i = 0; i < fresh && n < cap; i++, n++) {
            objs[n].size = (uint32_t)(16 * (1 + rnd() % 16));
            objs[n].tag = tags++;
            objs[n].p = arena_alloc(a, objs[n].size);
            cr_assert_not_null(objs[n].p);
            fill_n(objs[n].p, objs[n].tag, objs[n].size);
        }
        unsigned survive = 5 + (unsigned)(rnd() % 45), pin = 50 + (unsigned)(rnd() % 51);
        size_t kept = 0, ndead = 0;
        for (size_t i = 0; i < n; i++) {
            if (rnd() % 100 >= survive) {
                dead[ndead++] = objs[i].p;
                continue;
            }
            objs[kept] = objs[i];
            pinned[kept] = rnd() % 100 < pin;
            char *at = objs[kept].p + rnd() % objs[kept].size; /* interior pointers pin too */
            cr_assert_eq(pinned[kept] ? arena_pin(a, at) : arena_mark(a, objs[kept].p), 0);
            kept++;
        }
        arena_collect_stats_t st;
        cr_assert_eq(arena_collect(a, &st), 0, "seed %llu cycle %d", (unsigned long long)seed, cycle);
        meshed += st.pages_meshed;
        for (size_t i = 0; i < ndead; i++)
            cr_assert_null(arena_forward(a, dead[i]), "seed %llu cycle %d: a dead object forwards",
                           (unsigned long long)seed, cycle);
        n = kept;
        for (size_t i = 0; i < n; i++) {
            char *now = arena_forward(a, objs[i].p);
            cr_assert_not_null(now, "seed %llu cycle %d: a live object was lost", (unsigned long long)seed, cycle);
            if (pinned[i])
                cr_assert_eq(now, objs[i].p, "seed %llu cycle %d: a pinned object moved",
                             (unsigned long long)seed, cycle);
            objs[i].p = now;
            cr_assert(intact_n(now, objs[i].tag, objs[i].size), "seed %llu cycle %d: object bytes changed",
                      (unsigned long long)seed, cycle);
            cr_assert(intact_n(arena_view_addr(mirror, now), objs[i].tag, objs[i].size),
                      "seed %llu cycle %d: the mirror is out of step", (unsigned long long)seed, cycle);
            size_t slot = slot_of(a, now), off = (size_t)(now - (char *)arena_view_base(hv)) % PAGE;
            size_t fp = arena_view_file_page(hv, slot);
            cr_assert_eq(arena_view_file_page(mirror, slot), fp);
            spans[i] = (struct span){fp, off, off + objs[i].size, i};
        }
        /* objects of every slot showing one file page never share a byte of it */
        qsort(spans, n, sizeof *spans, cmp_span);
        for (size_t i = 1; i < n; i++)
            if (spans[i].fp == spans[i - 1].fp)
                cr_assert_geq(spans[i].from, spans[i - 1].to,
                              "seed %llu cycle %d: two live objects share bytes of file page %zu",
                              (unsigned long long)seed, cycle, spans[i].fp);
        arena_stats_t s;
        cr_assert_eq(arena_stats(a, &s), 0);
        cr_assert_leq(s.vmas, s.vma_budget);
    }
    cr_assert_gt(meshed, 0, "seed %llu: nothing meshed", (unsigned long long)seed);
    cr_assert_eq(arena_view_close(mirror), 0);
    free(dead);
    free(pinned);
    free(spans);
    free(objs);
    arena_destroy(a);
}

Test(mesh, random_pins_against_a_model_seed_sweep)
{
    for (uint64_t seed = 1; seed <= 8; seed++)
        random_pins(seed * 0xD1B54A32D192ED03ull, seed % 3 == 0 ? 160 : 0);
}
