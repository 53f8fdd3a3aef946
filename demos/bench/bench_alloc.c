/*
 * bench_alloc.c -- small objects (16..256 bytes, one deterministic size sequence) by
 * arena_alloc against glibc malloc in the same run, ns per object.
 *
 * ns_per_object_16_256: each side stores one word into every object, as a runtime
 * writes an object's header at once, so both pay the first touch of their pages.
 * ns_per_object_untouched: nobody writes the objects; malloc still touches its pages
 * (chunk headers) while the arena's fresh pages stay untouched zero file pages, so
 * this one shows the allocation path alone on the arena's side.
 *
 * ns_per_object_steady: a heap at a fixed live size (a table of live objects; each new
 * object replaces a random one, which becomes garbage), collected whenever the bytes
 * allocated since the last collection reach the live size (mark the table, collect,
 * forward the table). Timed after 3 collections; the figure is the allocation loop
 * alone, collections excluded. ns_per_object_steady_gc is the same run with the
 * collections included. The baseline does the same pattern with malloc, and free of
 * the replaced object.
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

struct steady {
    size_t live_objects; /* table size */
    size_t live_bytes;   /* collect after allocating this much */
    size_t warm_objects; /* malloc's warm-up: as many replacements as the arena's 3 cycles */
    size_t timed;        /* objects allocated in the timed part */
};

static size_t steady_size(uint64_t *seed) { return 16 + bench_rand(seed) % 241; }

/* One full collection of the table; returns 0 or an arena error. */
static int steady_collect(arena_t *a, uint64_t **table, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int rc = arena_mark(a, table[i]);
        if (rc)
            return rc;
    }
    int rc = arena_collect(a, NULL);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++)
        if (!(table[i] = arena_forward(a, table[i])))
            return ARENA_ENOTOBJ;
    return 0;
}

/* Arena side: *alloc_ns and *total_ns per timed object; st->warm_objects = objects
 * allocated before timing (malloc does as many). ids[i]: the id table[i] must hold. */
static int steady_arena(struct steady *st, uint64_t **table, uint64_t *ids, double *alloc_ns,
                        double *total_ns, char *why, size_t whylen)
{
    arena_t *a = NULL;
    arena_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.reserve = (size_t)1 << 30;
    int err = arena_create(&a, &cfg);
    if (err) {
        snprintf(why, whylen, "arena_create: %s", arena_have_strerror(err));
        return -1;
    }
    uint64_t seed = 99, id = 0;
    int rc = -1;
    for (size_t i = 0; i < st->live_objects; i++) {
        if (!(table[i] = arena_alloc(a, steady_size(&seed))))
            goto fail_alloc;
        table[i][0] = ids[i] = id++;
    }
    size_t since = 0, collections = 0;
    uint64_t gc_ns = 0, t0 = 0;
    for (size_t timed = 0; timed < st->timed;) {
        size_t size = steady_size(&seed), slot = bench_rand(&seed) % st->live_objects;
        if (since >= st->live_bytes) {
            uint64_t g0 = bench_now_ns();
            if ((err = steady_collect(a, table, st->live_objects))) {
                snprintf(why, whylen, "collection %zu: %s", collections + 1, arena_have_strerror(err));
                goto out;
            }
            gc_ns += bench_now_ns() - g0;
            since = 0;
            if (++collections == 3) {
                st->warm_objects = (size_t)id - st->live_objects;
                gc_ns = 0;
                t0 = bench_now_ns();
            }
        }
        uint64_t *p = arena_alloc(a, size);
        if (!p)
            goto fail_alloc;
        p[0] = ids[slot] = id++;
        table[slot] = p;
        since += size;
        timed += collections >= 3;
    }
    uint64_t t1 = bench_now_ns();
    *total_ns = (double)(t1 - t0) / (double)st->timed;
    *alloc_ns = (double)(t1 - t0 - gc_ns) / (double)st->timed;
    /* Every object still in the table kept its id: nothing was lost or overwritten. */
    for (size_t i = 0; i < st->live_objects; i++)
        if (table[i][0] != ids[i]) {
            snprintf(why, whylen, "live object %zu lost its contents", i);
            goto out;
        }
    rc = 0;
    goto out;
fail_alloc:
    snprintf(why, whylen, "arena_alloc failed after %llu objects", (unsigned long long)id);
out:
    arena_destroy(a);
    return rc;
}

static double steady_malloc(const struct steady *st, uint64_t **table)
{
    uint64_t seed = 99, id = 0;
    for (size_t i = 0; i < st->live_objects; i++) {
        table[i] = malloc(steady_size(&seed));
        table[i][0] = id++;
    }
    uint64_t t0 = 0;
    for (size_t done = 0; done < st->warm_objects + st->timed; done++) {
        if (done == st->warm_objects)
            t0 = bench_now_ns();
        size_t size = steady_size(&seed), slot = bench_rand(&seed) % st->live_objects;
        free(table[slot]);
        uint64_t *p = malloc(size);
        p[0] = id++;
        table[slot] = p;
    }
    double ns = (double)(bench_now_ns() - t0) / (double)st->timed;
    for (size_t i = 0; i < st->live_objects; i++)
        free(table[i]);
    return ns;
}

static void steady(const struct bench_opts *o)
{
    struct steady st = {.live_bytes = o->quick ? (size_t)2 << 20 : (size_t)32 << 20,
                        .timed = o->quick ? (size_t)1 << 16 : (size_t)1 << 22};
    st.live_objects = st.live_bytes / 136; /* the mean of 16..256 */
    uint64_t **table = malloc(st.live_objects * sizeof *table);
    uint64_t *ids = malloc(st.live_objects * sizeof *ids);
    int reps = o->repeat;
    double *v = malloc((size_t)reps * 3 * sizeof *v), *total = v + reps, *m = v + 2 * reps;
    char why[256];
    for (int r = 0; r < reps; r++) {
        bench_progress("alloc steady %d/%d", r + 1, reps);
        if (steady_arena(&st, table, ids, &v[r], &total[r], why, sizeof why)) {
            bench_note("alloc", "failed", why);
            goto out;
        }
        m[r] = steady_malloc(&st, table);
    }
    double base = bench_median(m, reps);
    bench_row("alloc", "ns_per_object_steady", bench_median(v, reps), "ns", base);
    bench_row("alloc", "ns_per_object_steady_gc", bench_median(total, reps), "ns", base);
out:
    free(v);
    free(ids);
    free(table);
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
    steady(o);
    free(ptrs);
    free(sizes);
    return 0;
}
