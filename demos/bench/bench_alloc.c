/*
 * bench_alloc.c -- small objects (16..256 bytes, one deterministic size sequence) by
 * arena_alloc against glibc malloc in the same run, ns per object.
 *
 * ns_per_object_16_256: each side stores one word into every object, as a runtime
 * writes an object's header at once, so both pay the first touch of their pages.
 * ns_per_object_untouched: nobody writes the objects; malloc still touches its pages
 * (chunk headers) while the arena's fresh pages stay untouched zero file pages, so
 * this one shows the allocation path alone on the arena's side.
 */
#include "bench.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double time_arena(const size_t *sizes, void **ptrs, size_t n, size_t reserve, bool touch,
                         char *why, size_t whylen)
{
    arena_t *a = NULL;
    arena_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.reserve = reserve;
    int err = arena_create(&a, &cfg);
    if (err) {
        snprintf(why, whylen, "arena_create: %s", arena_have_strerror(err));
        return NAN;
    }
    size_t made = 0;
    uint64_t t0 = bench_now_ns();
    for (; made < n; made++) {
        ptrs[made] = arena_alloc(a, sizes[made]);
        if (!ptrs[made])
            break;
        if (touch)
            *(volatile size_t *)ptrs[made] = made;
    }
    uint64_t t1 = bench_now_ns();
    double ns = (double)(t1 - t0) / (double)n;
    if (made < n) {
        snprintf(why, whylen, "arena_alloc(%zu) failed at object %zu", sizes[made], made);
        ns = NAN;
    }
    for (size_t i = 0; i < made && touch; i++)
        if (*(size_t *)ptrs[i] != i) {
            snprintf(why, whylen, "object %zu was overwritten by a later allocation", i);
            ns = NAN;
            break;
        }
    arena_destroy(a);
    return ns;
}

static double time_malloc(const size_t *sizes, void **ptrs, size_t n, bool touch)
{
    uint64_t t0 = bench_now_ns();
    for (size_t i = 0; i < n; i++) {
        ptrs[i] = malloc(sizes[i]);
        if (touch)
            *(volatile size_t *)ptrs[i] = i;
    }
    uint64_t t1 = bench_now_ns();
    for (size_t i = 0; i < n; i++)
        free(ptrs[i]);
    return (double)(t1 - t0) / (double)n;
}

static void one(const struct bench_opts *o, const size_t *sizes, void **ptrs, size_t n,
                size_t reserve, bool touch)
{
    double *va = malloc((size_t)o->repeat * 2 * sizeof *va), *vm = va + o->repeat;
    char why[256] = "";
    for (int r = 0; r < o->repeat; r++) {
        bench_progress("alloc %d/%d", r + 1, o->repeat);
        /* Alternate the order so neither side always runs on a warmer machine. */
        if (r % 2)
            vm[r] = time_malloc(sizes, ptrs, n, touch);
        va[r] = time_arena(sizes, ptrs, n, reserve, touch, why, sizeof why);
        if (!(r % 2))
            vm[r] = time_malloc(sizes, ptrs, n, touch);
        if (isnan(va[r])) {
            bench_note("alloc", "failed", why);
            free(va);
            return;
        }
    }
    bench_row("alloc", touch ? "ns_per_object_16_256" : "ns_per_object_untouched",
              bench_median(va, o->repeat), "ns", bench_median(vm, o->repeat));
    free(va);
}

int bench_alloc(const struct bench_opts *o)
{
    if (!bench_need("alloc", "arena_alloc", ARENA_HAVE(arena_alloc)))
        return 0;
    size_t n = o->quick ? (size_t)1 << 14 : (size_t)1 << 20;
    size_t *sizes = malloc(n * sizeof *sizes);
    void **ptrs = malloc(n * sizeof *ptrs);
    uint64_t seed = 42, total = 0;
    for (size_t i = 0; i < n; i++) {
        sizes[i] = 16 + bench_rand(&seed) % 241;
        total += sizes[i];
    }
    one(o, sizes, ptrs, n, total * 4 + ((size_t)64 << 20), true);
    one(o, sizes, ptrs, n, total * 4 + ((size_t)64 << 20), false);
    free(ptrs);
    free(sizes);
    return 0;
}
