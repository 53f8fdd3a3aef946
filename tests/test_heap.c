/*
 * test_heap.c -- allocation (docs/design.md §6): zeroed 16-byte aligned objects, no
 * straddling, large objects, interior pointers without headers, statistics, threads.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "fixtures.h"

static arena_t *make(size_t page)
{
    return TEST_ARENA(.page_size = page, .reserve = (size_t)1 << 32);
}

static void basics(size_t page)
{
    arena_t *a = make(page);
    cr_assert_eq(arena_page_size(a), page);
    unsigned seed = 7;
    for (int i = 0; i < 5000; i++) {
        size_t size = 1 + (size_t)rand_r(&seed) % page;
        unsigned char *p = arena_alloc(a, size);
        cr_assert_not_null(p);
        cr_assert_eq((uintptr_t)p % 16, 0);
        cr_assert_eq((uintptr_t)p / page, (uintptr_t)(p + size - 1) / page, "object straddles a page");
        for (size_t b = 0; b < size; b++)
            cr_assert_eq(p[b], 0, "not zeroed");
        size_t usable = (size + 15) & ~(size_t)15;
        cr_assert_eq(arena_object_size(a, p), usable);
        cr_assert_eq(arena_object(a, p + usable - 1), p);
        cr_assert(arena_contains(a, p));
        if (usable > 16)
            cr_assert_eq(arena_object_size(a, p + 16), 0, "interior pointer is not an object start");
        memset(p, 0xab, size);
    }
    arena_destroy(a);
}

Test(heap, basics_4k) { basics(4096); }
Test(heap, basics_16k) { basics(16384); }

Test(heap, large_objects)
{
    arena_t *a = make(4096);
    size_t sizes[] = {4097, 3 * 4096, 5 * 4096 + 48, (size_t)1 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char *p = arena_alloc(a, sizes[i]);
        cr_assert_not_null(p);
        cr_assert_eq((uintptr_t)p % 4096, 0, "a large object starts its own page run");
        size_t usable = (sizes[i] + 15) & ~(size_t)15;
        cr_assert_eq(arena_object_size(a, p), usable);
        cr_assert_eq(arena_object(a, p + usable - 1), p);
        cr_assert_eq(arena_object(a, p + usable / 2), p);
        cr_assert_null(arena_object(a, p + usable)); /* past the end: nothing, or another object */
        memset(p, 1, sizes[i]);
    }
    arena_destroy(a);
}

Test(heap, lookups_outside_objects)
{
    arena_t *a = make(4096);
    int local;
    cr_assert_null(arena_object(a, &local));
    cr_assert_eq(arena_object_size(a, &local), 0);
    cr_assert(!arena_contains(a, &local));
    char *p = arena_alloc(a, 32);
    cr_assert_null(arena_object(a, p + 32), "free space in the current page");
    cr_assert_null(arena_object(NULL, p));
    errno = 0;
    cr_assert_null(arena_alloc(a, 0));
    cr_assert_eq(errno, EINVAL);
    cr_assert_null(arena_alloc(NULL, 16));
    cr_assert_null(arena_alloc(a, (size_t)1 << 40));
    arena_destroy(a);
}

Test(heap, stats)
{
    arena_t *a = make(4096);
    for (int i = 0; i < 1000; i++)
        cr_assert_not_null(arena_alloc(a, 400));
    arena_stats_t s;
    cr_assert_eq(arena_stats(a, &s), 0);
    cr_assert_geq(s.allocated_bytes, 400000);
    cr_assert_geq(s.heap_pages, 400000 / 4096);
    /* Chunks grow with the heap but do not hoard: at most an eighth more, plus a chunk. */
    cr_assert_leq(s.heap_pages, 400000 / 4096 * 9 / 8 + 20);
    arena_destroy(a);
}

/* Two arenas used alternately by one thread: the per-thread cache is per arena. */
Test(heap, two_arenas)
{
    arena_t *a = make(4096), *b = make(4096);
    for (int i = 0; i < 2000; i++) {
        char *p = arena_alloc(a, 48), *q = arena_alloc(b, 48);
        cr_assert(arena_contains(a, p) && !arena_contains(a, q));
        cr_assert(arena_contains(b, q) && !arena_contains(b, p));
    }
    arena_destroy(a);
    arena_destroy(b);
}

enum { THREADS = 4, PER_THREAD = 20000 };
struct span {
    uintptr_t start;
    size_t size;
};
struct worker {
    arena_t *a;
    unsigned id;
    struct span spans[PER_THREAD];
};

static void *allocate(void *arg)
{
    struct worker *w = arg;
    unsigned seed = w->id;
    for (int i = 0; i < PER_THREAD; i++) {
        size_t size = 16 + (size_t)rand_r(&seed) % (i % 100 == 0 ? 9000 : 300);
        unsigned char *p = arena_alloc(w->a, size);
        if (p == NULL)
            return (void *)1;
        memset(p, (int)w->id + 1, size);
        w->spans[i] = (struct span){(uintptr_t)p, size};
    }
    return NULL;
}

static int by_start(const void *x, const void *y)
{
    const struct span *a = x, *b = y;
    return a->start < b->start ? -1 : a->start > b->start;
}

Test(heap, threads_do_not_overlap, .timeout = 120)
{
    arena_t *a = make(4096);
    static struct worker w[THREADS];
    pthread_t t[THREADS];
    for (unsigned i = 0; i < THREADS; i++) {
        w[i].a = a;
        w[i].id = i;
        cr_assert_eq(pthread_create(&t[i], NULL, allocate, &w[i]), 0);
    }
    for (unsigned i = 0; i < THREADS; i++) {
        void *rc;
        pthread_join(t[i], &rc);
        cr_assert_null(rc, "an allocation failed");
    }
    struct span *all = malloc(sizeof(struct span) * THREADS * PER_THREAD);
    for (unsigned i = 0; i < THREADS; i++) {
        for (int k = 0; k < PER_THREAD; k++) {
            const unsigned char *p = (const unsigned char *)w[i].spans[k].start;
            for (size_t b = 0; b < w[i].spans[k].size; b += 7)
                cr_assert_eq(p[b], i + 1, "another thread wrote into this object");
            cr_assert_eq(arena_object(a, p + w[i].spans[k].size - 1), p);
        }
        memcpy(all + i * PER_THREAD, w[i].spans, sizeof w[i].spans);
    }
    qsort(all, THREADS * PER_THREAD, sizeof *all, by_start);
    for (size_t k = 1; k < THREADS * PER_THREAD; k++)
        cr_assert_leq(all[k - 1].start + all[k - 1].size, all[k].start, "objects overlap");
    free(all);
    /* And the heap collects after a threaded phase (stop-the-world: threads joined). */
    for (unsigned i = 0; i < THREADS; i++)
        cr_assert_eq(arena_mark(a, (void *)w[i].spans[0].start), 0);
    cr_assert_eq(arena_collect(a, NULL), 0);
    for (unsigned i = 0; i < THREADS; i++) {
        unsigned char *now = arena_forward(a, (void *)w[i].spans[0].start);
        cr_assert_not_null(now);
        cr_assert_eq(now[0], i + 1);
    }
    arena_destroy(a);
}
