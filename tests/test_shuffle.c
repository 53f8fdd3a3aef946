/*
 * test_shuffle.c -- randomised placement of small objects (cfg.shuffle, docs/design.md §6,
 * .req.heap.shuffle): objects never overlap and stay within their page across seeds, the
 * order really is shuffled (and is the seed's), arena_object / forwarding / collections
 * work on shuffled pages, labs and threads, and a regular survivor pattern meshes more
 * pages with shuffling than without.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "fixtures.h"

#define PAGE 4096u

static arena_t *make(int shuffle, uint64_t seed, int mesh)
{
    return TEST_ARENA(.page_size = PAGE, .reserve = (size_t)1 << 30, .shuffle = shuffle,
                      .shuffle_seed = seed, .mesh = mesh);
}

static uint64_t rnd(uint64_t *s)
{
    *s = *s * 6364136223846793005u + 1442695040888963407u;
    return *s >> 33;
}

static size_t round16(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

struct obj {
    char *p;
    size_t size;   /* rounded */
    uint32_t tag;
};

static void fill(struct obj *o)
{
    for (size_t i = 0; i + 4 <= o->size; i += 4)
        memcpy(o->p + i, &(uint32_t){o->tag * 2654435761u + (uint32_t)i}, 4);
}

static bool intact(const struct obj *o)
{
    for (size_t i = 0; i + 4 <= o->size; i += 4) {
        uint32_t w;
        memcpy(&w, o->p + i, 4);
        if (w != o->tag * 2654435761u + (uint32_t)i)
            return false;
    }
    return true;
}

static int by_addr(const void *x, const void *y)
{
    const struct obj *a = x, *b = y;
    return a->p < b->p ? -1 : a->p > b->p;
}

/* One fresh object checked the way every caller needs: aligned, zeroed, within its page
 * when it is not larger than one, its own object to arena_object at both ends. */
static void check_new(arena_t *a, const struct obj *o, size_t page)
{
    cr_assert_not_null(o->p, "allocation of %zu bytes failed", o->size);
    cr_assert_eq((uintptr_t)o->p % 16, 0);
    if (o->size <= page)
        cr_assert_leq((uintptr_t)o->p % page + o->size, page, "object of %zu bytes crosses its page", o->size);
    for (size_t i = 0; i < o->size; i++)
        cr_assert_eq(o->p[i], 0, "object of %zu bytes not zeroed at byte %zu", o->size, i);
    cr_assert_eq(arena_object(a, o->p), o->p);
    cr_assert_eq(arena_object(a, o->p + o->size - 1), o->p);
    cr_assert_eq(arena_object_size(a, o->p), o->size);
}

/* Sorted by address, no object overlaps the next, and every one still holds its tag. */
static void check_disjoint(struct obj *v, size_t n)
{
    qsort(v, n, sizeof *v, by_addr);
    for (size_t i = 0; i < n; i++) {
        cr_assert(intact(&v[i]), "object %p (%zu bytes) overwritten", (void *)v[i].p, v[i].size);
        if (i + 1 < n)
            cr_assert_leq(v[i].p + v[i].size, v[i + 1].p, "objects %p (%zu bytes) and %p overlap",
                          (void *)v[i].p, v[i].size, (void *)v[i + 1].p);
    }
}

Test(shuffle, config_is_checked)
{
    arena_config_t cfg;
    arena_config_init(&cfg);
    arena_t *a = NULL;
    cfg.shuffle = 2;
    cr_assert_eq(arena_create(&a, &cfg), ARENA_ECONFIG);
    cfg.shuffle = -1;
    cr_assert_eq(arena_create(&a, &cfg), ARENA_ECONFIG);
    cr_assert_null(a);
    cfg.shuffle = ARENA_SHUFFLE_ON;
    cfg.page_size = ARENA_SHUFFLE_MAX_PAGE * 2; /* slot numbers are 16 bits */
    cr_assert_eq(arena_create(&a, &cfg), ARENA_ECONFIG);
    cfg.page_size = 0; /* any seed is valid, 0 included */
    cr_assert_eq(arena_create(&a, &cfg), 0);
    arena_destroy(a);
    cfg.page_size = ARENA_SHUFFLE_MAX_PAGE;
    cr_assert_eq(arena_create(&a, &cfg), 0);
    arena_destroy(a);
}

/* Mixed sizes (exact classes up to 256 bytes, 64-byte classes up to 1 KiB, larger bumped
 * ones, a few over a page) through arena_alloc and a lab, several seeds and two page sizes. */
Test(shuffle, objects_never_overlap, .timeout = 120)
{
    enum { N = 20000 };
    struct obj *v = malloc(N * sizeof *v);
    for (uint64_t seed = 1; seed <= 6; seed++) {
        arena_t *a = seed % 3 ? make(ARENA_SHUFFLE_ON, seed, ARENA_MESH_ON)
                              : TEST_ARENA(.page_size = 4 * PAGE, .reserve = (size_t)1 << 30,
                                           .shuffle = ARENA_SHUFFLE_ON, .shuffle_seed = seed);
        size_t page = arena_page_size(a);
        arena_lab_t lab;
        cr_assert_eq(arena_lab_init(a, &lab), 0);
        uint64_t r = seed * 977;
        for (size_t i = 0; i < N; i++) {
            uint64_t kind = rnd(&r) % 50;
            size_t want = kind == 0 ? 1025 + rnd(&r) % 20000 : kind < 20 ? 257 + rnd(&r) % 768 : 1 + rnd(&r) % 256;
            v[i].p = rnd(&r) % 2 ? arena_lab_alloc(&lab, want) : arena_alloc(a, want);
            v[i].size = round16(want);
            v[i].tag = (uint32_t)i;
            check_new(a, &v[i], page);
            fill(&v[i]);
        }
        check_disjoint(v, N);
        arena_lab_retire(&lab);
        arena_destroy(a);
    }
    free(v);
}

/* Equal-sized objects are not handed out in address order (they are without shuffling),
 * and each page takes every one of its slots before the next page is taken. */
Test(shuffle, order_is_shuffled)
{
    enum { N = 64 * 40, SIZE = 64 };
    for (int on = 0; on <= 1; on++) {
        arena_t *a = make(on ? ARENA_SHUFFLE_ON : ARENA_SHUFFLE_OFF, 7, ARENA_MESH_ON);
        char *prev = arena_alloc(a, SIZE);
        size_t rising = 0, same_page = 0;
        for (size_t i = 1; i < N; i++) {
            char *p = arena_alloc(a, SIZE);
            cr_assert_not_null(p);
            if ((uintptr_t)p / PAGE == (uintptr_t)prev / PAGE) {
                same_page++;
                rising += p > prev;
            }
            prev = p;
        }
        cr_assert_gt(same_page, N * 9 / 10, "consecutive objects of one size share their page");
        if (on)
            cr_assert(rising > same_page / 4 && rising < same_page * 3 / 4,
                      "shuffled: %zu of %zu consecutive pairs rise", rising, same_page);
        else
            cr_assert_eq(rising, same_page, "bump allocation rises");
        arena_destroy(a);
    }
}

/* The seed decides the layout: the same seed and sequence give the same page offsets,
 * another seed others. */
Test(shuffle, seed_decides_layout)
{
    enum { N = 512 };
    uintptr_t off[3][N];
    uint64_t seeds[3] = {5, 5, 6};
    for (int k = 0; k < 3; k++) {
        arena_t *a = make(ARENA_SHUFFLE_ON, seeds[k], ARENA_MESH_ON);
        for (size_t i = 0; i < N; i++) {
            char *p = arena_alloc(a, 16 + (i % 7) * 16);
            cr_assert_not_null(p);
            off[k][i] = (uintptr_t)p % PAGE;
        }
        arena_destroy(a);
    }
    cr_assert_eq(memcmp(off[0], off[1], sizeof off[0]), 0, "seed 5 twice: the same layout");
    cr_assert_neq(memcmp(off[0], off[2], sizeof off[0]), 0, "seeds 5 and 6: different layouts");
}

/* Collections over shuffled pages: marked and pinned objects survive with their bytes,
 * arena_forward finds them, arena_object answers for them, allocation continues after
 * each collection (pages of an earlier epoch are dropped), several seeds. */
Test(shuffle, collections_and_forwarding, .timeout = 120)
{
    enum { N = 12000, ROUNDS = 4 };
    struct obj *v = malloc(N * sizeof *v), *keep = malloc(N * ROUNDS * sizeof *keep);
    for (uint64_t seed = 1; seed <= 5; seed++) {
        arena_t *a = make(ARENA_SHUFFLE_ON, seed, seed % 2 ? ARENA_MESH_ON : ARENA_MESH_OFF);
        uint64_t r = seed * 31;
        size_t nkeep = 0;
        uint32_t tag = 0;
        for (int round = 0; round < ROUNDS; round++) {
            for (size_t i = 0; i < N; i++) {
                size_t want = rnd(&r) % 20 == 0 ? 1100 + rnd(&r) % 700 : 16 + rnd(&r) % 1000;
                v[i] = (struct obj){arena_alloc(a, want), round16(want), ++tag};
                check_new(a, &v[i], PAGE);
                fill(&v[i]);
                if (rnd(&r) % 5 == 0)
                    keep[nkeep++] = v[i];
            }
            for (size_t i = 0; i < nkeep; i++)
                cr_assert_eq(i % 3 == 0 ? arena_pin(a, keep[i].p) : arena_mark(a, keep[i].p), 0);
            int rc = arena_collect(a, NULL);
            cr_assert(rc >= 0, "arena_collect: %s", arena_strerror(rc));
            for (size_t i = 0; i < nkeep; i++) {
                char *to = arena_forward(a, keep[i].p);
                cr_assert_not_null(to, "kept object %zu lost (seed %llu)", i, (unsigned long long)seed);
                if (i % 3 == 0)
                    cr_assert_eq(to, keep[i].p, "a pinned object moved");
                keep[i].p = to;
                cr_assert(intact(&keep[i]), "kept object %zu changed (seed %llu)", i, (unsigned long long)seed);
                cr_assert_eq(arena_object(a, to + keep[i].size / 2), to);
                cr_assert_eq(arena_object_size(a, to), keep[i].size);
            }
            /* Forget half of them for the next round. */
            size_t m = 0;
            for (size_t i = 0; i < nkeep; i++)
                if (rnd(&r) % 2)
                    keep[m++] = keep[i];
            nkeep = m;
        }
        /* What is still kept and a last batch do not overlap. */
        for (size_t i = 0; i < 2000; i++) {
            keep[nkeep] = (struct obj){arena_alloc(a, 48), 48, ++tag};
            check_new(a, &keep[nkeep], PAGE);
            fill(&keep[nkeep++]);
        }
        check_disjoint(keep, nkeep);
        arena_destroy(a);
    }
    free(v);
    free(keep);
}

/* The pattern mesh.regular measures: 256-byte objects (and 512-byte ones, a 64-byte
 * class), every 4th one pinned, one collection. Bump allocation puts the survivors of
 * every page at the same offsets, so no two pages mesh; shuffled, their offsets differ
 * from page to page. */
static size_t regular_meshes(int shuffle, uint64_t seed, size_t size, size_t *pages)
{
    const size_t SIZE = size, N = PAGE / size * 400;
    arena_t *a = make(shuffle, seed, ARENA_MESH_ON);
    struct obj *v = malloc((N / 4 + 1) * sizeof *v);
    size_t n = 0;
    for (size_t i = 0; i < N; i++) {
        char *p = arena_alloc(a, SIZE);
        cr_assert_not_null(p);
        if (i % 4 == 0) {
            v[n] = (struct obj){p, SIZE, (uint32_t)i};
            fill(&v[n++]);
            cr_assert_eq(arena_pin(a, p), 0);
        }
    }
    arena_collect_stats_t st;
    int rc = arena_collect(a, &st);
    cr_assert(rc >= 0, "arena_collect: %s", arena_strerror(rc));
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(arena_forward(a, v[i].p), v[i].p);
        cr_assert(intact(&v[i]), "pinned object %zu changed by meshing", i);
    }
    *pages = st.pages_pinned;
    free(v);
    arena_destroy(a);
    return st.pages_meshed;
}

Test(shuffle, regular_pattern_meshes_more, .timeout = 120)
{
    for (size_t size = 256; size <= 512; size *= 2) {
        size_t pages_off, pages_on;
        size_t off = regular_meshes(ARENA_SHUFFLE_OFF, 1, size, &pages_off);
        for (uint64_t seed = 1; seed <= 3; seed++) {
            size_t on = regular_meshes(ARENA_SHUFFLE_ON, seed, size, &pages_on);
            cr_assert_gt(on, off + pages_on / 4, "%zu bytes, seed %llu: %zu of %zu pages meshed shuffled, %zu of %zu without",
                         size, (unsigned long long)seed, on, pages_on, off, pages_off);
        }
    }
}

struct worker {
    arena_t *a;
    struct obj *v;
    size_t n;
    uint64_t seed;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    uint64_t r = w->seed;
    arena_lab_t lab;
    if (arena_lab_init(w->a, &lab) != 0)
        return NULL;
    for (size_t i = 0; i < w->n; i++) {
        size_t want = 1 + rnd(&r) % 1200;
        w->v[i] = (struct obj){i % 2 ? arena_lab_alloc(&lab, want) : arena_alloc(w->a, want), round16(want),
                               (uint32_t)(w->seed * 1000003u + i)};
        if (w->v[i].p == NULL)
            return NULL;
        fill(&w->v[i]);
    }
    return w;
}

/* Threads own their shuffled pages as they own their bump pages: two threads at once
 * never hand out the same bytes. */
Test(shuffle, threads_never_overlap, .timeout = 120)
{
    enum { N = 20000, T = 3 };
    arena_t *a = make(ARENA_SHUFFLE_ON, 9, ARENA_MESH_ON);
    struct obj *all = malloc(N * T * sizeof *all);
    struct worker w[T];
    pthread_t th[T];
    for (int t = 0; t < T; t++) {
        w[t] = (struct worker){a, all + (size_t)t * N, N, (uint64_t)t + 1};
        cr_assert_eq(pthread_create(&th[t], NULL, work, &w[t]), 0);
    }
    for (int t = 0; t < T; t++) {
        void *ok;
        pthread_join(th[t], &ok);
        cr_assert_not_null(ok, "thread %d failed to allocate", t);
    }
    check_disjoint(all, N * T);
    free(all);
    arena_destroy(a);
}
