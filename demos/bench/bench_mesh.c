/*
 * bench_mesh.c -- meshing of pinned pages (docs/design.md §7, .req.mesh.what): small objects, 25 %
 * of them survive scattered uniformly at random, every survivor pinned (as a conservative
 * stack scan would), one collection. Memory is the backing file's allocated blocks after
 * arena_trim(a, 0): every heap byte is a file page, and a meshed file page shown at two
 * slots is one page of memory (mincore over the heap view would count it twice).
 *
 * Rows mesh.pinned /
 *   resident_per_live     file bytes / live bytes, meshing on (target <= 1.3);
 *   resident_vs_unmeshed  file bytes with meshing / without, on the same heap shape;
 *   pause_per_meshed_page the collection's meshing time per meshed page / a memcpy of a
 *                         page into resident memory (the cost of a copying compaction).
 *
 * Rows mesh.regular: the same objects, but a regular survivor pattern (every 4th object
 * pinned, as an array of handles to every 4th object would pin them), meshing on:
 *   resident_per_live     file bytes / live bytes with cfg.shuffle on (report);
 *   resident_vs_unshuffled file bytes with shuffling / without (report). Bump allocation
 *                         puts every page's survivors at the same offsets: nothing meshes.
 */
#include "bench.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OBJ_SIZE 256    /* bytes: 16 objects on a 4 KiB page */

struct mesh_result {
    double file, live, mesh_ns, meshed;
};

/* One heap: survivors drawn at random (regular false) or every 4th object (regular true). */
static int one(const struct bench_opts *o, int mesh, int shuffle, bool regular, struct mesh_result *r,
               char *why, size_t whylen)
{
    size_t total = o->heap / 4;
    arena_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.reserve = o->heap * 4;
    cfg.mesh = mesh;
    cfg.shuffle = shuffle;
    cfg.shuffle_seed = 11; /* one layout for every repetition */
    arena_t *a = NULL;
    int err = arena_create(&a, &cfg);
    if (err) {
        snprintf(why, whylen, "arena_create: %s", arena_have_strerror(err));
        return -1;
    }
    size_t n = total / OBJ_SIZE, live = 0;
    uint64_t seed = 11;
    int rc = -1;
    for (size_t i = 0; i < n; i++) {
        uint64_t *p = arena_alloc(a, OBJ_SIZE);
        if (!p) {
            snprintf(why, whylen, "arena_alloc failed at object %zu", i);
            goto out;
        }
        p[0] = i;
        if (regular ? i % 4 == 0 : bench_rand(&seed) % 4 == 0) {
            arena_pin(a, p);
            live += OBJ_SIZE;
        }
    }
    arena_collect_stats_t st;
    err = arena_collect(a, &st);
    if (err > 0)
        err = 0; /* completed: a kernel error met on the way is not this benchmark's concern */
    if (err == 0)
        err = arena_trim(a, 0);
    arena_stats_t s;
    if (err == 0)
        err = arena_stats(a, &s);
    if (err) {
        snprintf(why, whylen, "collect/trim/stats: %s", arena_have_strerror(err));
        goto out;
    }
    r->file = (double)s.file_bytes;
    r->live = (double)live;
    r->mesh_ns = (double)st.mesh_ns;
    r->meshed = (double)st.pages_meshed;
    rc = 0;
out:
    arena_destroy(a);
    return rc;
}

/* ns to memcpy one 4 KiB page into resident memory (median of passes over 2 MiB). */
static double page_copy_ns(void)
{
    enum { PAGES = 512, PASSES = 9 };
    char *src = malloc(PAGES * 4096), *dst = malloc(PAGES * 4096);
    memset(src, 1, PAGES * 4096);
    memset(dst, 2, PAGES * 4096);
    double t[PASSES];
    for (int p = 0; p < PASSES; p++) {
        uint64_t t0 = bench_now_ns();
        for (int i = 0; i < PAGES; i++)
            memcpy(dst + (size_t)i * 4096, src + (size_t)((i * 7) % PAGES) * 4096, 4096);
        t[p] = (double)(bench_now_ns() - t0) / PAGES;
        __asm__ volatile("" : : "r"(dst) : "memory");
    }
    free(src);
    free(dst);
    return bench_median(t, PASSES);
}

/* mesh.regular: the layout is seeded and the rows are bytes, so one run says it all. */
static void regular(const struct bench_opts *o)
{
    const char *bench = "mesh.regular";
    char why[256], note[256];
    struct mesh_result on = {0}, off = {0};
    bench_progress("%s", bench);
    if (one(o, ARENA_MESH_ON, ARENA_SHUFFLE_ON, true, &on, why, sizeof why) ||
        one(o, ARENA_MESH_ON, ARENA_SHUFFLE_OFF, true, &off, why, sizeof why)) {
        bench_note(bench, "resident_per_live", why);
        return;
    }
    snprintf(note, sizeof note, "%d-byte objects, every 4th pinned, meshing on: %.0f pages meshed shuffled, "
             "%.0f unshuffled (%.2fx live)", OBJ_SIZE, on.meshed, off.meshed, off.file / off.live);
    bench_row_note(bench, "resident_per_live", on.file, "bytes", on.live, note);
    bench_row(bench, "resident_vs_unshuffled", on.file, "bytes", off.file);
}

int bench_mesh(const struct bench_opts *o)
{
    const char *bench = "mesh.pinned";
    if (!bench_need(bench, "arena_alloc, arena_pin, arena_collect, arena_trim",
                    arena_alloc && arena_pin && arena_collect && arena_trim))
        return 0;
    int reps = o->repeat;
    double *pause = malloc(sizeof(double) * (size_t)reps);
    char why[256], note[256];
    struct mesh_result on = {0}, off = {0};
    for (int r = 0; r < reps; r++) {
        bench_progress("%s %d/%d", bench, r + 1, reps);
        if (one(o, ARENA_MESH_ON, ARENA_SHUFFLE_OFF, false, &on, why, sizeof why) ||
            one(o, ARENA_MESH_OFF, ARENA_SHUFFLE_OFF, false, &off, why, sizeof why)) {
            bench_note(bench, "resident_per_live", why);
            free(pause);
            return 0;
        }
        pause[r] = on.meshed > 0 ? on.mesh_ns / on.meshed : NAN;
    }
    snprintf(note, sizeof note, "%d-byte objects, 25%% pinned at random, %.0f of %.0f pages meshed, "
             "without meshing %.2fx live", OBJ_SIZE, on.meshed, off.file / 4096, off.file / off.live);
    /* The heap shape is seeded: every repetition has the same bytes, only the time varies. */
    bench_row_note(bench, "resident_per_live", on.file, "bytes", on.live, note);
    bench_row(bench, "resident_vs_unmeshed", on.file, "bytes", off.file);
    bench_row(bench, "pause_per_meshed_page", bench_median(pause, reps), "ns", page_copy_ns());
    free(pause);
    regular(o);
    return 0;
}
