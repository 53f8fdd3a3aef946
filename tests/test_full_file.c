/*
 * test_full_file.c -- a full backing file never jams the heap (issue 12, item 5): at the
 * max_file cap with about 41 % of every page live, a collection must recover the space the
 * dead objects hold, so allocation works again. Evacuating a sparse page needs a page to
 * copy into; with the file at its cap and no page wholly dead there was none, every
 * collection freed nothing and a 16-byte allocation failed with ENOSPC for ever.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"

#define OBJ 48

/* Allocate OBJ-byte objects until the file is full, appending them to p[*n..]. */
static void fill_up(arena_t *a, void ***p, size_t *n, size_t *cap)
{
    for (;;) {
        if (*n == *cap)
            *p = realloc(*p, (*cap *= 2) * sizeof **p);
        errno = 0;
        void *o = arena_alloc(a, OBJ);
        if (!o)
            break;
        memset(o, (int)(*n & 0x7f), OBJ);
        (*p)[(*n)++] = o;
    }
    cr_assert(errno == ENOSPC || errno == ENOMEM, "the fill stopped with errno %d", errno);
}

/* Three rounds: fill the file to its cap, keep 41 % of every object spread over every page,
 * collect; each time a 16-byte allocation must work again and most of the dead space must
 * come back (the collector's reserve is restored after each collection). */
Test(full_file, collection_at_the_cap_recovers_dead_space)
{
    arena_config_t cfg;
    arena_config_init(&cfg);
    cfg.max_file = (size_t)2 << 20;
    cfg.reserve = (size_t)64 << 20;
    arena_t *a;
    cr_assert_eq(arena_create(&a, &cfg), 0);
    size_t n = 0, cap = 1024;
    void **p = malloc(cap * sizeof *p);
    for (int round = 0; round < 3; round++) {
        size_t before = n;
        fill_up(a, &p, &n, &cap);
        cr_assert_gt(n - before, 1000, "round %d: only %zu objects fit", round, n - before);
        size_t live = 0;
        for (size_t i = 0; i < n; i++)
            if (i % 100 < 41) {
                cr_assert_eq(arena_mark(a, p[i]), 0);
                p[live++] = p[i];
            }
        size_t dead = n - live;
        arena_collect_stats_t st;
        int err = arena_collect(a, &st);
        cr_assert(err >= 0 || err == ARENA_ENOCOLLECT, "arena_collect: %s", arena_strerror(err));
        for (size_t i = 0; i < live; i++) {
            p[i] = arena_forward(a, p[i]);
            cr_assert_not_null(p[i]);
            const unsigned char *o = p[i];
            cr_assert_eq(o[0], o[OBJ - 1]);
        }
        n = live;
        errno = 0;
        void *small = arena_alloc(a, 16);
        cr_assert_not_null(small, "round %d: after a collection at the cap a 16-byte allocation failed (errno %d): "
                                  "freed %zu objects, evacuated %zu, pages %zu -> %zu",
                          round, errno, st.objects_freed, st.objects_evacuated, st.pages_before, st.pages_after);
        cr_assert_geq(st.objects_evacuated * 2, live, "round %d: %zu of %zu survivors evacuated", round,
                      st.objects_evacuated, live);
        (void)dead;
    }
    free(p);
    arena_destroy(a);
}

static void **trace_roots;
static size_t trace_nroots;

static void scan_leaf(arena_ss_t *ss, void *obj, size_t size, void *closure)
{
    (void)ss, (void)obj, (void)size, (void)closure;
}

static void roots_list(arena_ss_t *ss, void *closure)
{
    (void)closure;
    for (size_t i = 0; i < trace_nroots; i++)
        cr_assert_eq(arena_fix(ss, &trace_roots[i]), 0);
}

/* The same for the one-pass collector, with the same survivors every round: at the cap
 * arena_trace_collect freed 25 556 objects but no page (no to-space: the collector's reserve
 * was closed to it), and a 16-byte allocation failed with ENOSPC for ever. */
Test(full_file, trace_collection_at_the_cap_frees_pages)
{
    arena_config_t cfg;
    arena_config_init(&cfg);
    cfg.max_file = (size_t)2 << 20;
    cfg.reserve = (size_t)64 << 20;
    arena_t *a;
    cr_assert_eq(arena_create(&a, &cfg), 0);
    size_t n = 0, cap = 1024;
    void **p = malloc(cap * sizeof *p);
    fill_up(a, &p, &n, &cap);
    size_t live = 0;
    for (size_t i = 0; i < n; i++)
        if (i % 100 < 41)
            p[live++] = p[i];
    trace_roots = p;
    trace_nroots = live;
    arena_format_t fmt = {scan_leaf, roots_list, NULL};
    size_t pages = SIZE_MAX;
    for (int round = 0; round < 4; round++) {
        arena_collect_stats_t st;
        int err = arena_trace_collect(a, &fmt, ARENA_TRACE_FULL, &st);
        cr_assert(err == 0 || err == -ARENA_ENOSPC, "arena_trace_collect: %s", arena_strerror(err));
        cr_assert_eq(st.objects_live, live);
        for (size_t i = 0; i < live; i++) {
            const unsigned char *o = p[i];
            cr_assert_eq(o[0], o[OBJ - 1]);
        }
        cr_assert_lt(st.pages_after, pages, "round %d: pages %zu -> %zu, %zu evacuated", round,
                     st.pages_before, st.pages_after, st.objects_evacuated);
        pages = st.pages_after;
        errno = 0;
        void *small = arena_alloc(a, 16);
        cr_assert_not_null(small, "round %d: a 16-byte allocation failed after the collection (errno %d)", round, errno);
    }
    free(p);
    arena_destroy(a);
}
