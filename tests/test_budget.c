/* The VMA budget against the kernel's own limit (docs/design.md .req.map.vma-budget). */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "view.h"

Test(budget, clamped_to_what_the_kernel_can_honour)
{
    arena_config_t cfg;
    arena_config_init(&cfg);
    cfg.vma_budget = SIZE_MAX / 2;
    arena_t *a;
    cr_assert_eq(arena_create(&a, &cfg), 0);
    arena_stats_t st;
    cr_assert_eq(arena_stats(a, &st), 0);
    size_t max = arena__os_max_map_count();
    cr_assert_lt(st.vma_budget, max, "budget %zu not clamped below max_map_count %zu", st.vma_budget, max);
    cr_assert_leq(st.vma_budget + 512, max);
    arena_destroy(a);
}

/* A layout needing more mappings than the process may have is refused before any
 * change (ARENA_EVMA), never half-applied by a kernel ENOMEM, even when the caller
 * asked for an impossible budget. */
Test(budget, layout_past_max_map_count_refused_whole)
{
    arena_config_t cfg;
    arena_config_init(&cfg);
    cfg.vma_budget = SIZE_MAX / 2;
    cfg.copy_below = 16;
    arena_t *a;
    cr_assert_eq(arena_create(&a, &cfg), 0);
    size_t n = arena__os_max_map_count() + 16, first;
    cr_assert_eq(arena_file_alloc(a, n, &first), 0);
    arena_view_t *v;
    cr_assert_eq(arena_view_open(a, ARENA_VIEW_EMPTY, n, ARENA_PROT_READ | ARENA_PROT_WRITE, 0, &v), 0);
    cr_assert_eq(arena_view_map(v, 0, first, n), 0);
    size_t *table = malloc(n * sizeof *table);
    cr_assert_not_null(table);
    for (size_t i = 0; i < n; i++)
        table[i] = first + n - 1 - i;    /* reversed: one mapping per page */
    size_t vmas = arena_view_vmas(v), maps = arena__os_count_maps();
    cr_assert_eq(arena_view_apply(v, 0, table, n), ARENA_EVMA);
    cr_assert_eq(arena_view_vmas(v), vmas);
    cr_assert_eq(arena__os_count_maps(), maps, "the refused apply changed the process's mappings");
    for (size_t i = 0; i < n; i += n / 64)
        cr_assert_eq(arena_view_file_page(v, i), first + i, "slot %zu changed", i);
    free(table);
    arena_destroy(a);
}
