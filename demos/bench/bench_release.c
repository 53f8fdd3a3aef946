/*
 * bench_release.c -- memory still resident after a collection, divided by the live
 * bytes, when 30 % of small objects survive: in runs (whole stretches of the heap
 * live or dead) and scattered uniformly at random. Resident is measured with
 * mincore over the heap view (a punched file page is resident nowhere); the
 * baseline is the live bytes themselves, so the ratio is the overhead factor.
 */
#include "bench.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RUN_OBJECTS 300     /* in runs: objects 0..299 of every 1000 survive */

struct result {
    double resident, live, file;
};

static int one(const struct bench_opts *o, bool scattered, struct result *res, char *why,
               size_t whylen)
{
    size_t total = o->heap / 2;
    arena_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.reserve = o->heap * 4;
    arena_t *a = NULL;
    int err = arena_create(&a, &cfg);
    if (err) {
        snprintf(why, whylen, "arena_create: %s", arena_have_strerror(err));
        return -1;
    }
    size_t cap = total / 16, n = 0, kept = 0, live = 0;
    uint64_t **objs = malloc(cap * sizeof *objs);
    uint64_t seed = 7;
    int rc = -1;
    for (size_t bytes = 0; bytes < total && n < cap; n++) {
        size_t size = 16 + bench_rand(&seed) % 241;
        objs[n] = arena_alloc(a, size);
        if (!objs[n]) {
            snprintf(why, whylen, "arena_alloc(%zu) failed at object %zu", size, n);
            goto out;
        }
        objs[n][0] = n;
        bytes += size;
    }
    for (size_t i = 0; i < n; i++) {
        bool keep = scattered ? bench_rand(&seed) % 10 < 3 : i % 1000 < RUN_OBJECTS;
        if (!keep)
            continue;
        arena_mark(a, objs[i]);
        live += arena_object_size(a, objs[i]);
        objs[kept++] = objs[i]; /* kept <= i: survivors are compacted into the same array */
    }
    err = arena_collect(a, NULL);
    if (err < 0) {
        snprintf(why, whylen, "arena_collect: %s", arena_have_strerror(err));
        goto out;
    }
    /* The figures only count if the survivors did survive. */
    for (size_t i = 0, id = 0; i < kept; i++) {
        uint64_t *now = arena_forward(a, objs[i]);
        if (!now || (i > 0 && now[0] <= id)) {
            snprintf(why, whylen, "survivor %zu lost or overwritten by the collection", i);
            goto out;
        }
        id = now[0];
    }
    /* Dead pages are retained for reuse until a trim (.req.heap.retain-pages): the exact release is measured
     * after one, as a runtime that wants its memory back would ask for it. */
    if (ARENA_HAVE(arena_trim) && (err = arena_trim(a, 0)) != 0) {
        snprintf(why, whylen, "arena_trim: %s", arena_have_strerror(err));
        goto out;
    }
    res->resident = (double)bench_heap_resident(a);
    res->live = (double)live;
    arena_stats_t s;
    res->file = ARENA_HAVE(arena_stats) && arena_stats(a, &s) == 0 ? (double)s.file_bytes : NAN;
    rc = 0;
out:
    free(objs);
    arena_destroy(a);
    return rc;
}

static void report(const char *bench, const struct bench_opts *o, bool scattered)
{
    int reps = o->repeat;
    double *v = malloc((size_t)reps * 3 * sizeof *v), *live = v + reps, *file = v + 2 * reps;
    char why[256];
    for (int r = 0; r < reps; r++) {
        struct result res;
        bench_progress("%s %d/%d", bench, r + 1, reps);
        if (one(o, scattered, &res, why, sizeof why)) {
            bench_note(bench, "failed", why);
            free(v);
            return;
        }
        v[r] = res.resident;
        live[r] = res.live;
        file[r] = res.file;
    }
    double l = bench_median(live, reps);
    bench_row(bench, "resident_after_collect", bench_median(v, reps), "bytes", l);
    bench_row(bench, "file_bytes_after_collect", bench_median(file, reps), "bytes", l);
    free(v);
}

int bench_release(const struct bench_opts *o)
{
    if (!bench_need("release", "the heap (arena_alloc/mark/collect/forward)",
                    bench_have_heap() && ARENA_HAVE(arena_object_size)))
        return 0;
    report("release.runs", o, false);
    report("release.scattered", o, true);
    return 0;
}
