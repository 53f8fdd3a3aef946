/*
 * test_track_maplimit.c -- at the kernel's mapping limit a write to a tracked page never kills
 * the process (issue 12, item 3). The test consumes its own process's mapping count (never
 * vm.max_map_count: one-page anonymous mappings of alternating protection until mmap refuses),
 * then writes into the middle of an armed tracked view: opening one page or its group needs a
 * split the kernel refuses, so the handler must open the slot's whole mapping instead of
 * letting the fault kill the process. The write must then be reported by the next take.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "track_util.h"

#define PAGE 4096u
#define N 1024u

Test(maplimit, tracked_write_at_the_mapping_limit_proceeds, .timeout = 120)
{
    arena_t *a = track_arena(ARENA_TRACKER_SIGSEGV, 0);
    cr_assert_not_null(a);
    arena_view_t *v = track_view(a, N);
    cr_assert_not_null(v);
    cr_assert_eq(arena_track_start(v, ARENA_TRACK_WRITES), 0);
    unsigned char *seen = calloc(N, 1);
    cr_assert_geq(take_all(v, seen, N), 0);
    /* Use up the process's mappings. */
    size_t cap = 1 << 17, used = 0;
    void **maps = malloc(cap * sizeof *maps);
    while (used < cap) {
        void *p = mmap(NULL, PAGE, (used & 1) ? PROT_READ : PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            break;
        maps[used++] = p;
    }
    cr_assert_lt(used, cap, "mmap never refused");
    char *base = arena_view_base(v);
    base[(N / 2 + 3) * PAGE + 5] = 42; /* before the fix: killed by SIGSEGV here */
    base[(N / 2 + 200) * PAGE] = 43;
    for (size_t i = 0; i < used; i++)
        munmap(maps[i], PAGE);
    free(maps);
    memset(seen, 0, N);
    cr_assert_geq(take_all(v, seen, N), 0);
    cr_assert_eq(seen[N / 2 + 3], 1, "the page written at the limit was not reported");
    cr_assert_eq(seen[N / 2 + 200], 1, "the second page written at the limit was not reported");
    cr_assert_eq(base[(N / 2 + 3) * PAGE + 5], 42);
    free(seen);
    arena_destroy(a);
}
