/*
 * test_vma_pool.c -- several arenas of one process draw their mappings from one process-wide
 * budget (issue 12, item 1): five arenas with default configurations cannot hold all of
 * vm.max_map_count between them. Each arena maps single pages out of order (one mapping each)
 * until it is refused; the refusal must be ARENA_EVMA (the library's), never the kernel's
 * ENOMEM, and the process must keep at least half of what it had left.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>

#include "arena.h"
#include "os.h"

#define ARENAS 5

/* Slot i shows file page 2 - i % 3 (descending, so no two neighbours join: one mapping per
 * slot) for i = 0.. until refused; returns the refusal (opening the view may be it). */
static int fill(arena_t *a, size_t n, size_t *mapped)
{
    size_t first;
    *mapped = 0;
    cr_assert_eq(arena_file_alloc(a, 3, &first), 0);
    arena_view_t *v;
    int err = arena_view_open(a, ARENA_VIEW_EMPTY, n, ARENA_PROT_READ | ARENA_PROT_WRITE, 0, &v);
    if (err)
        return err;
    for (size_t i = 0; i < n; i++) {
        err = arena_view_map(v, i, first + 2 - i % 3, 1);
        if (err)
            return err;
        *mapped = i + 1;
    }
    return 0;
}

Test(vma_pool, five_default_arenas_share_one_budget, .timeout = 300)
{
    size_t max = arena__os_max_map_count(), before = arena__os_count_maps();
    if (max > 300000)
        cr_skip_test("vm.max_map_count is %zu: filling half of it would take too long", max);
    cr_assert_lt(before, max);
    arena_t *a[ARENAS];
    for (int i = 0; i < ARENAS; i++)
        cr_assert_eq(arena_create(&a[i], NULL), 0);
    arena_stats_t st;
    size_t total = 0;
    for (int i = 0; i < ARENAS; i++) {
        size_t mapped;
        int err = fill(a[i], max, &mapped);
        cr_assert_eq(err, ARENA_EVMA, "arena %d: after %zu mappings the refusal was %d (%s), not ARENA_EVMA", i,
                     mapped, err, arena_strerror(err));
        cr_assert_eq(arena_stats(a[i], &st), 0);
        total += st.vmas;
        cr_assert_leq(st.process_vmas, st.process_vma_budget);
    }
    size_t now = arena__os_count_maps();
    cr_log_info("max_map_count %zu, process had %zu, arenas hold %zu (process budget %zu), process has %zu", max,
                before, total, st.process_vma_budget, now);
    cr_assert_eq(st.process_vmas, total, "the process-wide count %zu is not the sum %zu", st.process_vmas, total);
    cr_assert_leq(total, (max - before) / 2 + ARENAS * 8, "five arenas hold %zu of the %zu mappings left", total,
                  max - before);
    cr_assert_lt(now + 512, max, "the process is left with %zu of %zu mappings", max - now, max);
    for (int i = 0; i < ARENAS; i++)
        arena_destroy(a[i]);
    arena_t *b;
    cr_assert_eq(arena_create(&b, NULL), 0);
    cr_assert_eq(arena_stats(b, &st), 0);
    cr_assert_leq(st.process_vmas, 8, "destroyed arenas still counted: %zu", st.process_vmas);
    arena_destroy(b);
}
