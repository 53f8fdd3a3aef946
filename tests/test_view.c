/* test_view.c -- views and movers: aliasing, protections, batches against a model, the
 * VMA budget and count, rollback, bad inputs. Every mover is exercised. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <pthread.h>
#include <unistd.h>

#include "core.h"
#include "view.h"
#include "fixtures.h"

static const int movers[] = { ARENA_MOVE_REMAP_FILE_PAGES, ARENA_MOVE_MMAP_FIXED, ARENA_MOVE_MREMAP,
                              ARENA_MOVE_COPY };
#define NMOVERS (sizeof movers / sizeof *movers)

static int test_backing = ARENA_BACKING_MEMFD;

static arena_t *make_arena(size_t vma_budget)
{
    return TEST_ARENA(.reserve = 16 << 20, .copy_below = 4, .vma_budget = vma_budget, .backing = test_backing);
}

#define tagged_pages test_tagged_pages

static arena_view_t *open_view(arena_t *a, size_t nslots, int prot, int mover)
{
    arena_view_t *v = NULL;
    int err = arena_view_open(a, ARENA_VIEW_EMPTY, nslots, prot, 0, &v);
    cr_assert_eq(err, 0, "arena_view_open: %s", arena_strerror(err));
    err = arena_view_set_mover(v, mover);
    cr_assert_eq(err, 0, "set_mover(%d): %s", mover, arena_strerror(err));
    return v;
}

static volatile uint64_t *slot_word(arena_view_t *v, size_t slot)
{
    return (volatile uint64_t *)((char *)arena_view_base(v) + slot * arena_page_size(arena__view_arena(v)));
}

/* Lines of /proc/self/maps that overlap [lo, hi). */
static size_t maps_in(const void *lo, const void *hi)
{
    FILE *f = fopen("/proc/self/maps", "r");
    cr_assert_not_null(f);
    char line[512];
    size_t n = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long s, e;
        if (sscanf(line, "%lx-%lx", &s, &e) == 2 && s < (uintptr_t)hi && e > (uintptr_t)lo)
            n++;
    }
    fclose(f);
    return n;
}

static size_t maps_of(arena_view_t *v)
{
    char *b = arena_view_base(v);
    return maps_in(b, b + arena_view_slots(v) * arena_page_size(arena__view_arena(v)));
}

/* ---------------------------------------------------------------- aliasing -- */
Test(view, same_page_at_many_slots)
{
    for (size_t m = 0; m < NMOVERS; m++) {
        arena_t *a = make_arena(0);
        size_t p = tagged_pages(a, 1, 100);
        arena_view_t *v = open_view(a, 64, ARENA_PROT_READ | ARENA_PROT_WRITE, movers[m]);
        static const size_t slots[] = { 0, 5, 6, 31, 63 };
        for (size_t i = 0; i < 5; i++)
            cr_assert_eq(arena_view_map(v, slots[i], p, 1), 0);
        for (size_t i = 0; i < 5; i++) {
            cr_expect_eq(*slot_word(v, slots[i]), 100);
            cr_expect_eq(arena_view_file_page(v, slots[i]), p);
        }
        *slot_word(v, 6) = 777;
        for (size_t i = 0; i < 5; i++)
            cr_expect_eq(*slot_word(v, slots[i]), 777, "mover %d slot %zu", movers[m], slots[i]);
        cr_expect_eq(arena_view_vmas(v), maps_of(v), "mover %d", movers[m]);
        arena_destroy(a);
    }
}

Test(view, alias_across_views_and_protections)
{
    for (size_t m = 0; m < NMOVERS; m++) {
        arena_t *a = make_arena(0);
        size_t p = tagged_pages(a, 4, 10);
        arena_view_t *rw = open_view(a, 8, ARENA_PROT_READ | ARENA_PROT_WRITE, movers[m]);
        arena_view_t *ro = open_view(a, 8, ARENA_PROT_READ, movers[m]);
        arena_view_t *rx = open_view(a, 8, ARENA_PROT_READ | ARENA_PROT_EXEC, movers[m]);
        cr_assert_eq(arena_view_map(rw, 0, p, 4), 0);
        cr_assert_eq(arena_view_map(ro, 4, p, 4), 0);
        int err = arena_view_map(rx, 2, p + 1, 2);
        cr_assert_eq(err, 0, "rx map: %s", arena_strerror(err));
        for (size_t i = 0; i < 4; i++)
            *slot_word(rw, i) = 1000 + i;
        for (size_t i = 0; i < 4; i++)
            cr_expect_eq(*slot_word(ro, 4 + i), 1000 + i);
        cr_expect_eq(*slot_word(rx, 2), 1001);
        cr_expect_eq(*slot_word(rx, 3), 1002);
        cr_expect_eq(arena_view_prot(ro), ARENA_PROT_READ);
        arena_destroy(a);
    }
}

Test(view, remapped_slot_no_longer_shows_old_page)
{
    for (size_t m = 0; m < NMOVERS; m++) {
        arena_t *a = make_arena(0);
        size_t p = tagged_pages(a, 2, 50);
        arena_view_t *v = open_view(a, 4, ARENA_PROT_READ | ARENA_PROT_WRITE, movers[m]);
        cr_assert_eq(arena_view_map(v, 1, p, 1), 0);
        cr_assert_eq(arena_view_map(v, 2, p, 1), 0);
        cr_assert_eq(arena_view_map(v, 1, p + 1, 1), 0);
        cr_expect_eq(*slot_word(v, 1), 51);
        *slot_word(v, 1) = 9;
        cr_expect_eq(*slot_word(v, 2), 50, "the old page is untouched");
        cr_expect_eq(arena_view_file_page(v, 1), p + 1);
        cr_assert_eq(arena_view_unmap(v, 2, 1), 0);
        cr_expect_eq(arena_view_file_page(v, 2), ARENA_NO_PAGE);
        cr_expect_eq(arena_view_vmas(v), maps_of(v));
        arena_destroy(a);
    }
}

Test(view, write_through_read_only_view_dies, .signal = SIGSEGV)
{
    arena_t *a = make_arena(0);
    size_t p = tagged_pages(a, 1, 1);
    arena_view_t *ro = open_view(a, 2, ARENA_PROT_READ, ARENA_MOVE_MMAP_FIXED);
    cr_assert_eq(arena_view_map(ro, 0, p, 1), 0);
    *slot_word(ro, 0) = 2;
}

Test(view, empty_slot_is_inaccessible, .signal = SIGSEGV)
{
    arena_t *a = make_arena(0);
    arena_view_t *v = open_view(a, 2, ARENA_PROT_READ | ARENA_PROT_WRITE, ARENA_MOVE_MMAP_FIXED);
    (void)*slot_word(v, 1);
}

Test(view, protected_slot_rejects_writes, .signal = SIGSEGV)
{
    arena_t *a = make_arena(0);
    size_t p = tagged_pages(a, 4, 1);
    arena_view_t *v = open_view(a, 4, ARENA_PROT_READ | ARENA_PROT_WRITE, ARENA_MOVE_MMAP_FIXED);
    cr_assert_eq(arena_view_map(v, 0, p, 4), 0);
    cr_assert_eq(arena_view_protect(v, 1, 2, ARENA_PROT_READ), 0);
    *slot_word(v, 0) = 5;
    cr_expect_eq(*slot_word(v, 1), 2);
    *slot_word(v, 2) = 5;
}

Test(view, protect_counts_mappings_and_survives_remap)
{
    arena_t *a = make_arena(0);
    size_t p = tagged_pages(a, 8, 1);
    arena_view_t *v = open_view(a, 8, ARENA_PROT_READ | ARENA_PROT_WRITE, ARENA_MOVE_MMAP_FIXED);
    cr_assert_eq(arena_view_map(v, 0, p, 8), 0);
    cr_expect_eq(arena_view_vmas(v), 1);
    cr_assert_eq(arena_view_protect(v, 2, 2, ARENA_PROT_READ), 0);
    cr_expect_eq(arena_view_vmas(v), 3);
    cr_expect_eq(maps_of(v), 3);
    /* remapping a protected slot keeps the slot's protection */
    cr_assert_eq(arena_view_map(v, 2, p + 7, 1), 0);
    cr_expect_eq(arena_view_vmas(v), maps_of(v));
    cr_assert_eq(arena_view_protect(v, 0, 8, ARENA_PROT_READ | ARENA_PROT_WRITE), 0);
    cr_assert_eq(arena_view_map(v, 2, p + 2, 1), 0);
    cr_expect_eq(arena_view_vmas(v), 1);
    cr_expect_eq(maps_of(v), 1);
    *slot_word(v, 3) = 3;
    arena_destroy(a);
}

/* -------------------------------------------------- batches against a model -- */
struct model {
    size_t nslots;
    uint64_t *tag; /* what each slot shows: the page's tag, 0 = nothing */
};

static void check_model(arena_view_t *v, const struct model *md, const char *what, int mover)
{
    for (size_t s = 0; s < md->nslots; s++) {
        size_t fp = arena_view_file_page(v, s);
        if (md->tag[s] == 0) {
            cr_assert_eq(fp, ARENA_NO_PAGE, "%s mover %d slot %zu shows %zu", what, mover, s, fp);
            continue;
        }
        cr_assert_neq(fp, ARENA_NO_PAGE, "%s mover %d slot %zu empty", what, mover, s);
        cr_assert_eq(*slot_word(v, s), md->tag[s], "%s mover %d slot %zu", what, mover, s);
    }
    cr_assert_eq(arena_view_vmas(v), maps_of(v), "%s mover %d: accounted vs /proc/self/maps", what, mover);
}

/* A deterministic generator (the test must be reproducible). */
static uint64_t rng_state = 88172645463325252ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void random_batches(int rounds);

Test(view, random_batches_and_moves_match_model)
{
    random_batches(40);
}

Test(view, random_batches_on_tmpfile_backing)
{
    test_backing = ARENA_BACKING_TMPFILE;
    random_batches(12);
    arena_t *a = make_arena(0);
    arena_stats_t st;
    cr_assert_eq(arena_stats(a, &st), 0);
    cr_expect_eq(st.backing, ARENA_BACKING_TMPFILE);
    arena_destroy(a);
}

static void random_batches(int rounds)
{
    enum { NPAGES = 96, NSLOTS = 160 };
    for (size_t m = 0; m < NMOVERS; m++) {
        arena_t *a = make_arena(0);
        size_t first = tagged_pages(a, NPAGES, 1000);
        arena_view_t *v = open_view(a, NSLOTS, ARENA_PROT_READ | ARENA_PROT_WRITE, movers[m]);
        struct model md = { NSLOTS, calloc(NSLOTS, sizeof(uint64_t)) };
        size_t table[NSLOTS];
        for (int r = 0; r < rounds; r++) {
            size_t start = rnd() % NSLOTS, n = 1 + rnd() % (NSLOTS - start);
            /* runs of consecutive pages (so coalescing matters), holes, duplicates */
            for (size_t i = 0; i < n;) {
                size_t len = 1 + rnd() % 8, kind = rnd() % 8, p = rnd() % NPAGES;
                for (size_t k = 0; k < len && i < n; k++, i++) {
                    if (kind == 0)
                        table[i] = ARENA_NO_PAGE;
                    else
                        table[i] = first + (p + k) % NPAGES;
                }
            }
            int err = arena_view_apply(v, start, table, n);
            cr_assert_eq(err, 0, "apply: %s", arena_strerror(err));
            for (size_t i = 0; i < n; i++)
                md.tag[start + i] = table[i] == ARENA_NO_PAGE ? 0 : 1000 + (table[i] - first);
            check_model(v, &md, "apply", movers[m]);

            /* a move, overlapping or not */
            size_t len = 1 + rnd() % 24, src = rnd() % (NSLOTS - len), dst = rnd() % (NSLOTS - len);
            err = arena_view_move(v, dst, src, len);
            cr_assert_eq(err, 0, "move %zu <- %zu (%zu): %s", dst, src, len, arena_strerror(err));
            uint64_t carried[NSLOTS];
            memcpy(carried, md.tag + src, len * sizeof *carried);
            for (size_t i = 0; i < len; i++)
                md.tag[src + i] = 0;
            memcpy(md.tag + dst, carried, len * sizeof *carried);
            check_model(v, &md, "move", movers[m]);
        }
        /* Aliases still alias after all that: a write through one slot shows at all
         * slots showing the same page (COPY gives fresh pages, so compare by file page). */
        for (size_t s = 0; s < NSLOTS; s++) {
            if (md.tag[s] == 0)
                continue;
            *slot_word(v, s) = 0xabc00000 + s;
            for (size_t t = 0; t < NSLOTS; t++)
                if (md.tag[t] && arena_view_file_page(v, t) == arena_view_file_page(v, s))
                    cr_assert_eq(*slot_word(v, t), 0xabc00000 + s);
            break;
        }
        free(md.tag);
        arena_destroy(a);
    }
}

Test(view, apply_coalesces_runs)
{
    arena_t *a = make_arena(0);
    size_t p = tagged_pages(a, 64, 1);
    arena_view_t *v = open_view(a, 64, ARENA_PROT_READ | ARENA_PROT_WRITE, ARENA_MOVE_MMAP_FIXED);
    size_t table[64];
    for (size_t i = 0; i < 64; i++) /* two runs: 32..63 then 0..31 */
        table[i] = p + (i + 32) % 64;
    unsigned long before = arena__fault_calls(ARENA_SYS_MMAP);
    cr_assert_eq(arena_view_apply(v, 0, table, 64), 0);
    cr_expect_eq(arena__fault_calls(ARENA_SYS_MMAP) - before, 2, "one call per run");
    cr_expect_eq(arena_view_vmas(v), 2);
    cr_expect_eq(maps_of(v), 2);
    /* applying the same table again changes nothing and calls nothing */
    before = arena__fault_calls(ARENA_SYS_MMAP);
    cr_assert_eq(arena_view_apply(v, 0, table, 64), 0);
    cr_expect_eq(arena__fault_calls(ARENA_SYS_MMAP), before);
    arena_destroy(a);
}

Test(view, remap_file_pages_is_used_on_shown_runs)
{
    arena_t *a = make_arena(0);
    size_t p = tagged_pages(a, 64, 1);
    arena_view_t *v = open_view(a, 64, ARENA_PROT_READ | ARENA_PROT_WRITE, ARENA_MOVE_REMAP_FILE_PAGES);
    unsigned long mm = arena__fault_calls(ARENA_SYS_MMAP), rfp = arena__fault_calls(ARENA_SYS_REMAP_FILE_PAGES);
    cr_assert_eq(arena_view_map(v, 0, p, 64), 0);
    cr_expect_eq(arena__fault_calls(ARENA_SYS_MMAP) - mm, 1, "empty slots: established with MAP_FIXED");
    cr_expect_eq(arena__fault_calls(ARENA_SYS_REMAP_FILE_PAGES), rfp);
    size_t table[64];
    for (size_t i = 0; i < 64; i++)
        table[i] = p + (i + 32) % 64;
    mm = arena__fault_calls(ARENA_SYS_MMAP);
    cr_assert_eq(arena_view_apply(v, 0, table, 64), 0);
    cr_expect_eq(arena__fault_calls(ARENA_SYS_REMAP_FILE_PAGES) - rfp, 2, "one remap per run");
    cr_expect_eq(arena__fault_calls(ARENA_SYS_MMAP), mm);
    cr_expect_eq(*slot_word(v, 0), 33);
    cr_expect_eq(*slot_word(v, 32), 1);
    cr_expect_eq(arena_view_vmas(v), maps_of(v));
    arena_destroy(a);
}

Test(view, mremap_moves_whole_runs)
{
    if (!arena__map_have_dontunmap())
        cr_skip_test("no MREMAP_DONTUNMAP for shared mappings");
    arena_t *a = make_arena(0);
    size_t p = tagged_pages(a, 32, 1);
    arena_view_t *v = open_view(a, 128, ARENA_PROT_READ | ARENA_PROT_WRITE, ARENA_MOVE_MREMAP);
    cr_assert_eq(arena_view_map(v, 0, p, 32), 0);
    unsigned long before = arena__fault_calls(ARENA_SYS_MREMAP);
    cr_assert_eq(arena_view_move(v, 64, 0, 32), 0);
    cr_expect_eq(arena__fault_calls(ARENA_SYS_MREMAP) - before, 1);
    cr_expect_eq(*slot_word(v, 64), 1);
    cr_expect_eq(*slot_word(v, 95), 32);
    cr_expect_eq(arena_view_file_page(v, 0), ARENA_NO_PAGE);
    cr_expect_eq(arena_view_vmas(v), maps_of(v));
    /* overlapping, both directions */
    cr_assert_eq(arena_view_move(v, 60, 64, 32), 0);
    cr_expect_eq(*slot_word(v, 60), 1);
    cr_assert_eq(arena_view_move(v, 70, 60, 32), 0);
    cr_expect_eq(*slot_word(v, 70), 1);
    cr_expect_eq(*slot_word(v, 101), 32);
    cr_expect_eq(arena_view_file_page(v, 69), ARENA_NO_PAGE);
    cr_expect_eq(arena_view_vmas(v), maps_of(v));
    arena_destroy(a);
}

Test(view, copy_move_gives_fresh_pages)
{
    arena_t *a = make_arena(0);
    size_t p = tagged_pages(a, 4, 40);
    arena_view_t *v = open_view(a, 16, ARENA_PROT_READ | ARENA_PROT_WRITE, ARENA_MOVE_COPY);
    cr_assert_eq(arena_view_map(v, 0, p, 4), 0);
    cr_assert_eq(arena_view_move(v, 8, 0, 4), 0);
    for (size_t i = 0; i < 4; i++) {
        cr_expect_eq(*slot_word(v, 8 + i), 40 + i);
        cr_expect_neq(arena_view_file_page(v, 8 + i), p + i);
        cr_expect(arena__backing_is_used(a->backing, p + i), "old pages stay with their owner");
    }
    cr_expect_eq(arena_view_file_page(v, 9), arena_view_file_page(v, 8) + 1, "one fresh run");
    arena_destroy(a);
}

/* ---------------------------------------------------------------- budget -- */
Test(view, budget_refusal_leaves_view_unchanged)
{
    arena_t *a = make_arena(0);
    size_t used = arena__budget_used(&a->budget);
    arena_destroy(a);
    a = make_arena(used + 1 + 6); /* room for the view and 6 more mappings */
    size_t p = tagged_pages(a, 32, 1);
    arena_view_t *v = open_view(a, 32, ARENA_PROT_READ | ARENA_PROT_WRITE, ARENA_MOVE_MMAP_FIXED);
    cr_assert_eq(arena_view_map(v, 0, p, 32), 0);
    size_t table[32];
    for (size_t i = 0; i < 32; i++) /* reversal: 32 mappings */
        table[i] = p + 31 - i;
    unsigned long calls = arena__fault_calls(ARENA_SYS_MMAP);
    cr_expect_eq(arena_view_apply(v, 0, table, 32), ARENA_EVMA);
    cr_expect_eq(arena__fault_calls(ARENA_SYS_MMAP), calls, "refused before any call");
    for (size_t i = 0; i < 32; i++) {
        cr_expect_eq(arena_view_file_page(v, i), p + i);
        cr_expect_eq(*slot_word(v, i), 1 + i);
    }
    cr_expect_eq(arena_view_vmas(v), 1);
    cr_expect_eq(arena_view_protect(v, 0, 32, ARENA_PROT_READ), 0, "one run, no new mapping");
    cr_expect_eq(arena_view_vmas(v), 1);
    /* a checkerboard of protections needs 32 mappings: refused */
    int refused = 0;
    for (size_t i = 0; i < 32; i += 2) {
        int err = arena_view_protect(v, i, 1, ARENA_PROT_READ | ARENA_PROT_WRITE);
        cr_assert(err == 0 || err == ARENA_EVMA);
        refused += err == ARENA_EVMA;
    }
    cr_expect_gt(refused, 0);
    cr_expect_eq(arena_view_vmas(v), maps_of(v));
    cr_expect_leq(arena__budget_used(&a->budget), arena__budget_limit(&a->budget));
    /* new views until the budget refuses one */
    int opened = 0, err = 0;
    while (opened < 8 && (err = arena_view_open(a, ARENA_VIEW_EMPTY, 4, ARENA_PROT_READ, 0, &(arena_view_t *){ 0 })) == 0)
        opened++;
    cr_expect_eq(err, ARENA_EVMA);
    cr_expect_eq(arena__budget_used(&a->budget), arena__budget_limit(&a->budget), "filled exactly");
    arena_destroy(a);
}

Test(view, vma_count_agrees_with_kernel_for_reversal)
{
    for (size_t m = 0; m < NMOVERS; m++) {
        arena_t *a = make_arena(0);
        enum { N = 256 };
        size_t p = tagged_pages(a, N, 1);
        arena_view_t *v = open_view(a, N + 8, ARENA_PROT_READ | ARENA_PROT_WRITE, movers[m]);
        cr_assert_eq(arena_view_map(v, 4, p, N), 0);
        cr_expect_eq(arena_view_vmas(v), 3);
        cr_expect_eq(maps_of(v), 3);
        size_t table[N];
        for (size_t i = 0; i < N; i++)
            table[i] = p + N - 1 - i;
        cr_assert_eq(arena_view_apply(v, 4, table, N), 0);
        cr_expect_eq(arena_view_vmas(v), N + 2);
        cr_expect_eq(maps_of(v), N + 2, "mover %d", movers[m]);
        for (size_t i = 0; i < N; i++)
            cr_assert_eq(*slot_word(v, 4 + i), N - i);
        arena_destroy(a);
    }
}

/* ------------------------------------------------------------- rollback -- */
Test(view, kernel_failure_mid_batch_rolls_back)
{
    for (size_t m = 0; m < NMOVERS; m++) {
        arena_t *a = make_arena(0);
        size_t p = tagged_pages(a, 16, 1);
        arena_view_t *v = open_view(a, 16, ARENA_PROT_READ | ARENA_PROT_WRITE, movers[m]);
        cr_assert_eq(arena_view_map(v, 0, p, 16), 0);
        size_t table[16];
        for (size_t i = 0; i < 16; i++)
            table[i] = p + (i % 4 == 0 ? 15 - i : i) ; /* several runs */
        int sys = movers[m] == ARENA_MOVE_REMAP_FILE_PAGES ? ARENA_SYS_REMAP_FILE_PAGES : ARENA_SYS_MMAP;
        arena__fault_arm(sys, 3, ENOMEM);
        cr_expect_eq(arena_view_apply(v, 0, table, 16), ARENA_ENOMEM, "mover %d", movers[m]);
        cr_expect(arena__fault_fired());
        arena__fault_disarm_all();
        for (size_t i = 0; i < 16; i++) {
            cr_expect_eq(arena_view_file_page(v, i), p + i, "mover %d slot %zu", movers[m], i);
            cr_expect_eq(*slot_word(v, i), 1 + i);
        }
        cr_expect_eq(arena_view_vmas(v), 1);
        cr_expect_eq(maps_of(v), 1, "mover %d", movers[m]);

        /* a move failing half way */
        cr_assert_eq(arena_view_apply(v, 0, table, 16), 0);
        int msys = movers[m] == ARENA_MOVE_MREMAP ? ARENA_SYS_MREMAP : sys;
        arena__fault_arm(msys, 2, ENOMEM);
        int err = arena_view_move(v, 2, 0, 12);
        arena__fault_disarm_all();
        cr_expect_eq(err, ARENA_ENOMEM, "mover %d: %s", movers[m], arena_strerror(err));
        for (size_t i = 0; i < 16; i++) {
            cr_expect_eq(arena_view_file_page(v, i), table[i], "mover %d slot %zu", movers[m], i);
            cr_expect_eq(*slot_word(v, i), 1 + (table[i] - p));
        }
        cr_expect_eq(arena_view_vmas(v), maps_of(v));
        arena_destroy(a);
    }
}

/* ---------------------------------------------------------- mirror, find -- */
Test(view, mirror_shows_the_heap)
{
    arena_t *a = make_arena(0);
    char *obj = arena_alloc(a, 100);
    cr_assert_not_null(obj);
    strcpy(obj, "hello");
    arena_view_t *mirror = NULL;
    cr_assert_eq(arena_view_open(a, ARENA_VIEW_MIRROR, 0, ARENA_PROT_READ, 0, &mirror), 0);
    char *seen = arena_view_addr(mirror, obj);
    cr_assert_not_null(seen);
    cr_expect_str_eq(seen, "hello");
    obj[0] = 'j';
    cr_expect_eq(seen[0], 'j');
    cr_expect_eq(arena_view_slots(mirror), arena_view_slots(arena_heap_view(a)));
    cr_expect_null(arena_view_addr(mirror, &seen), "not a heap pointer");
    arena_destroy(a);
}

Test(view, find_by_address)
{
    arena_t *a = make_arena(0);
    arena_t *b = make_arena(0);
    arena_view_t *v = open_view(a, 8, ARENA_PROT_READ, ARENA_MOVE_MMAP_FIXED);
    size_t slot = 99;
    char *addr = (char *)arena_view_base(v) + 5 * arena_page_size(a) + 17;
    cr_expect_eq(arena__view_find(a, addr, &slot), v);
    cr_expect_eq(slot, 5);
    cr_expect_null(arena__view_find(b, addr, &slot), "another arena's view");
    cr_expect_eq(arena__view_find_any(addr, &slot), v);
    cr_expect_eq(arena__view_find_any(arena_view_base(arena_heap_view(b)), &slot), arena_heap_view(b));
    cr_expect_null(arena__view_find_any(&slot, &slot));
    cr_assert_eq(arena_view_close(v), 0);
    cr_expect_null(arena__view_find_any(addr, &slot), "closed views are gone");
    arena_destroy(a);
    arena_destroy(b);
}

/* The registry has no fixed size (it was a table of 4096 entries): more views than that are
 * all found by address, each at its own slot, and none after it closes. */
#define MANY_VIEWS 4500
Test(view, registry_has_no_fixed_limit)
{
    arena_t *a = make_arena(0);
    arena_view_t **v = calloc(MANY_VIEWS, sizeof *v);
    cr_assert_not_null(v);
    for (size_t i = 0; i < MANY_VIEWS; i++)
        cr_assert_eq(arena_view_open(a, ARENA_VIEW_EMPTY, 2, ARENA_PROT_READ, 0, &v[i]), 0, "view %zu", i);
    size_t slot = 0;
    for (size_t i = 0; i < MANY_VIEWS; i++) {
        char *addr = (char *)arena_view_base(v[i]) + arena_page_size(a);
        cr_expect_eq(arena__view_find(a, addr, &slot), v[i], "view %zu", i);
        cr_expect_eq(slot, 1);
    }
    for (size_t i = 0; i < MANY_VIEWS; i += 2) {
        char *addr = arena_view_base(v[i]);
        cr_assert_eq(arena_view_close(v[i]), 0);
        cr_expect_null(arena__view_find_any(addr, &slot), "view %zu closed", i);
        if (i + 1 < MANY_VIEWS)
            cr_expect_eq(arena__view_find_any(arena_view_base(v[i + 1]), &slot), v[i + 1]);
    }
    free(v);
    arena_destroy(a);
}

Test(view, linear_and_private_views)
{
    arena_t *a = make_arena(0);
    arena_view_t *v = NULL;
    /* LINEAR needs file pages 0..n-1 */
    int err = arena_view_open(a, ARENA_VIEW_LINEAR, 1u << 20, ARENA_PROT_READ, 0, &v);
    cr_expect_eq(err, ARENA_ERANGE);
    size_t p = tagged_pages(a, 4, 7);
    size_t n = p + 4;
    cr_assert_eq(arena_view_open(a, ARENA_VIEW_LINEAR, n, ARENA_PROT_READ | ARENA_PROT_WRITE, 0, &v), 0);
    cr_expect_eq(*slot_word(v, p + 2), 9);
    arena_view_t *priv = NULL;
    cr_assert_eq(arena_view_open(a, ARENA_VIEW_EMPTY, 4, ARENA_PROT_READ | ARENA_PROT_WRITE, ARENA_VIEW_PRIVATE, &priv),
                 0);
    cr_expect_eq(arena_view_set_mover(priv, ARENA_MOVE_REMAP_FILE_PAGES), ARENA_EPRIVATE);
    cr_assert_eq(arena_view_map(priv, 0, p, 4), 0);
    *slot_word(priv, 0) = 123; /* copy-on-write: nobody else sees it */
    cr_expect_eq(*slot_word(v, p), 7);
    *slot_word(v, p + 1) = 321; /* not yet copied in the private view: visible */
    cr_expect_eq(*slot_word(priv, 1), 321);
    arena_destroy(a);
}

/* ------------------------------------------------------------- bad inputs -- */
Test(view, bad_inputs)
{
    arena_t *a = make_arena(0);
    size_t p = tagged_pages(a, 4, 1);
    arena_view_t *v = NULL;
    arena_view_t *h = arena_heap_view(a);
    cr_assert_not_null(h);
    cr_expect_eq(arena_view_open(NULL, ARENA_VIEW_EMPTY, 4, ARENA_PROT_READ, 0, &v), ARENA_ENULL);
    cr_expect_eq(arena_view_open(a, ARENA_VIEW_EMPTY, 4, ARENA_PROT_READ, 0, NULL), ARENA_ENULL);
    cr_expect_eq(arena_view_open(a, ARENA_VIEW_EMPTY, 0, ARENA_PROT_READ, 0, &v), ARENA_ESIZE);
    cr_expect_eq(arena_view_open(a, ARENA_VIEW_EMPTY, 4, ARENA_PROT_WRITE | ARENA_PROT_EXEC, 0, &v), ARENA_EPROT);
    cr_expect_eq(arena_view_open(a, ARENA_VIEW_EMPTY, 4, 64, 0, &v), ARENA_EPROT);
    cr_expect_eq(arena_view_open(a, 17, 4, ARENA_PROT_READ, 0, &v), ARENA_ECONFIG);
    cr_expect_eq(arena_view_open(a, ARENA_VIEW_EMPTY, 4, ARENA_PROT_READ, 8, &v), ARENA_ECONFIG);
    cr_expect_eq(arena_view_open(a, ARENA_VIEW_EMPTY, SIZE_MAX / 2, ARENA_PROT_READ, 0, &v), ARENA_ESIZE);
    cr_assert_eq(arena_view_open(a, ARENA_VIEW_EMPTY, 8, ARENA_PROT_READ | ARENA_PROT_WRITE, 0, &v), 0);

    cr_expect_eq(arena_view_map(NULL, 0, p, 1), ARENA_ENULL);
    cr_expect_eq(arena_view_map(v, 0, p, 0), ARENA_ESIZE);
    cr_expect_eq(arena_view_map(v, 8, p, 1), ARENA_ERANGE);
    cr_expect_eq(arena_view_map(v, 6, p, 3), ARENA_ERANGE);
    cr_expect_eq(arena_view_map(v, SIZE_MAX, p, 2), ARENA_ERANGE);
    cr_expect_eq(arena_view_map(v, 0, p + 3, 2), ARENA_ERANGE, "past the allocated pages");
    cr_expect_eq(arena_view_map(v, 0, (size_t)1 << 40, 1), ARENA_ERANGE);
    cr_expect_eq(arena_view_map(h, 0, p, 1), ARENA_EHEAP);
    cr_expect_eq(arena_view_unmap(h, 0, 1), ARENA_EHEAP);
    cr_expect_eq(arena_view_unmap(v, 0, 0), ARENA_ESIZE);
    cr_expect_eq(arena_view_unmap(v, 7, 2), ARENA_ERANGE);
    size_t table[2] = { p, (size_t)1 << 33 };
    cr_expect_eq(arena_view_apply(v, 0, NULL, 2), ARENA_ENULL);
    cr_expect_eq(arena_view_apply(v, 0, table, 0), ARENA_ESIZE);
    cr_expect_eq(arena_view_apply(v, 7, table, 2), ARENA_ERANGE);
    cr_expect_eq(arena_view_apply(v, 0, table, 2), ARENA_ERANGE, "bad file page in the table");
    cr_expect_eq(arena_view_file_page(v, 0), ARENA_NO_PAGE, "and nothing changed");
    cr_expect_eq(arena_view_apply(h, 0, table, 1), ARENA_EHEAP);
    cr_expect_eq(arena_view_move(v, 0, 7, 2), ARENA_ERANGE);
    cr_expect_eq(arena_view_move(v, 7, 0, 2), ARENA_ERANGE);
    cr_expect_eq(arena_view_move(v, 0, 1, 0), ARENA_ESIZE);
    cr_expect_eq(arena_view_move(h, 0, 1, 1), ARENA_EHEAP);
    cr_expect_eq(arena_view_protect(v, 0, 1, ARENA_PROT_WRITE | ARENA_PROT_EXEC), ARENA_EPROT);
    cr_expect_eq(arena_view_protect(v, 0, 0, ARENA_PROT_READ), ARENA_ESIZE);
    cr_expect_eq(arena_view_protect(v, 8, 1, ARENA_PROT_READ), ARENA_ERANGE);
    cr_expect_eq(arena_view_protect(h, 0, 1, ARENA_PROT_READ), ARENA_EHEAP);
    cr_expect_eq(arena_view_set_mover(v, 99), ARENA_ECONFIG);
    cr_expect_eq(arena_view_set_mover(NULL, ARENA_MOVE_COPY), ARENA_ENULL);
    cr_expect_eq(arena_view_set_mover(h, ARENA_MOVE_COPY), ARENA_EHEAP);
    cr_expect_eq(arena_view_close(h), ARENA_EHEAP);
    cr_expect_eq(arena_view_close(NULL), ARENA_ENULL);
    cr_expect_eq(arena_view_file_page(v, 8), ARENA_NO_PAGE);
    cr_expect_eq(arena_view_file_page(NULL, 0), ARENA_NO_PAGE);
    cr_expect_null(arena_view_base(NULL));
    cr_expect_eq(arena_view_slots(NULL), 0);
    cr_expect_null(arena_heap_view(NULL));
    cr_expect_null(arena_view_addr(v, arena_view_base(h)), "not a mirror");

    cr_assert_eq(arena_view_close(v), 0);
    cr_expect_eq(arena_view_close(v), ARENA_ECLOSED);
    cr_expect_eq(arena_view_map(v, 0, p, 1), ARENA_ECLOSED);
    cr_expect_eq(arena_view_unmap(v, 0, 1), ARENA_ECLOSED);
    cr_expect_eq(arena_view_apply(v, 0, table, 1), ARENA_ECLOSED);
    cr_expect_eq(arena_view_move(v, 0, 1, 1), ARENA_ECLOSED);
    cr_expect_eq(arena_view_protect(v, 0, 1, ARENA_PROT_READ), ARENA_ECLOSED);
    cr_expect_eq(arena_view_set_mover(v, ARENA_MOVE_COPY), ARENA_ECLOSED);
    cr_expect_null(arena_view_base(v));
    cr_expect_eq(arena_view_slots(v), 0);
    cr_expect_eq(arena_view_vmas(v), 0);
    arena_destroy(a);
}

/* ------------------------------------------------ failures while opening -- */
Test(view, open_failures_change_nothing)
{
    static const int sys[] = { ARENA_SYS_MMAP, ARENA_SYS_MMAP, ARENA_SYS_MMAP };
    arena_t *a = make_arena(0);
    size_t p = tagged_pages(a, 8, 1);
    (void)p;
    size_t vmas = arena__budget_used(&a->budget), maps = arena__os_count_maps();
    for (size_t i = 0; i < sizeof sys / sizeof *sys; i++) {
        arena_view_t *v = NULL;
        arena__fault_arm(sys[i], i + 1, ENOMEM);
        int err = arena_view_open(a, ARENA_VIEW_LINEAR, 8, ARENA_PROT_READ, 0, &v);
        int fired = arena__fault_fired();
        arena__fault_disarm_all();
        cr_expect(fired, "call %zu was reached", i + 1);
        cr_expect_eq(err, ARENA_ENOMEM, "call %zu: %s", i + 1, arena_strerror(err));
        cr_expect_null(v);
        cr_expect_eq(arena__budget_used(&a->budget), vmas);
        cr_expect_eq(arena__os_count_maps(), maps, "call %zu: no mapping left behind", i + 1);
    }
    arena_destroy(a);
}

/* --------------------------------------------------------------- threads -- */
struct worker {
    arena_t *a;
    size_t first;
    int err;
};

static void *churn(void *arg)
{
    struct worker *w = arg;
    arena_view_t *v = NULL;
    w->err = arena_view_open(w->a, ARENA_VIEW_EMPTY, 32, ARENA_PROT_READ | ARENA_PROT_WRITE, 0, &v);
    for (int r = 0; r < 200 && !w->err; r++) {
        size_t slot = (size_t)(r * 7) % 28, page = w->first + (size_t)(r * 3) % 12;
        w->err = arena_view_map(v, slot, page, 4);
        if (!w->err && *(volatile uint64_t *)((char *)arena_view_base(v) + slot * arena_page_size(w->a)) !=
                           1 + (page - w->first))
            w->err = -1;
        if (!w->err && r % 3 == 0)
            w->err = arena_view_unmap(v, slot, 2);
    }
    return NULL;
}

Test(view, threads_share_an_arena)
{
    arena_t *a = make_arena(0);
    size_t first = tagged_pages(a, 16, 1);
    pthread_t t[4];
    struct worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){ a, first, 0 };
        cr_assert_eq(pthread_create(&t[i], NULL, churn, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        cr_expect_eq(w[i].err, 0, "worker %d: %s", i, arena_strerror(w[i].err));
    }
    size_t sum = 0;
    for (arena_view_t *v = a->views; v; v = arena__view_next(v)) {
        if (!arena__view_is_heap(v))
            cr_expect_eq(arena__view_vmas(v), maps_of(v));
        sum += arena__view_vmas(v);
    }
    cr_expect_eq(arena__budget_used(&a->budget), sum, "the budget counts every view's mappings (no tracking here)");
    arena_destroy(a);
}
