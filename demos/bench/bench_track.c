/*
 * bench_track.c -- the cost of the first write to a tracked page, per backend
 * (libsigsegv, userfaultfd), against the cheapest thing a first write can cost: a
 * first-touch page fault on a fresh MAP_SHARED memfd page, measured in the same run;
 * and the cost per reported page of the arena_track_take that collects and re-arms them,
 * against the same fault (what a write barrier pays per page, once per take).
 */
#include "bench.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static double first_touch_memfd(size_t pages, size_t page)
{
    int fd = memfd_create("arena-bench-baseline", MFD_CLOEXEC);
    if (fd < 0)
        return NAN;
    double ns = NAN;
    if (ftruncate(fd, (off_t)(pages * page)) == 0) {
        char *p = mmap(NULL, pages * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p != MAP_FAILED) {
            uint64_t t0 = bench_now_ns();
            for (size_t i = 0; i < pages; i++)
                *(volatile uint64_t *)(p + i * page) = i;
            ns = (double)(bench_now_ns() - t0) / (double)pages;
            munmap(p, pages * page);
        }
    }
    close(fd);
    return ns;
}

/* Per tracked page: ns of the first write; *reported gets the pages a take returned and
 * *take_ns the time of the takes per reported page. */
static double tracked_write(int backend, size_t pages, double *reported, double *take_ns, char *why,
                            size_t whylen)
{
    arena_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.tracker = backend;
    arena_t *a = NULL;
    int err = arena_create(&a, &cfg);
    if (err) {
        snprintf(why, whylen, "arena_create: %s", arena_have_strerror(err));
        return NAN;
    }
    size_t page = arena_page_size(a);
    char **objs = malloc(pages * sizeof *objs);
    void **taken = malloc(pages * sizeof *taken);
    double ns = NAN;
    for (size_t i = 0; i < pages; i++) {
        objs[i] = arena_alloc(a, page);
        if (!objs[i]) {
            snprintf(why, whylen, "arena_alloc(page) failed");
            goto out;
        }
        *(volatile uint64_t *)objs[i] = i; /* resident before tracking starts */
    }
    arena_view_t *heap = arena_heap_view(a);
    err = arena_track_start(heap, ARENA_TRACK_WRITES);
    if (err) {
        snprintf(why, whylen, "arena_track_start: %s", arena_have_strerror(err));
        goto out;
    }
    if (arena_track_backend(heap) != backend) {
        snprintf(why, whylen, "asked for backend %d, the arena tracks with %d", backend,
                 arena_track_backend(heap));
        arena_track_stop(heap);
        goto out;
    }
    uint64_t t0 = bench_now_ns();
    for (size_t i = 0; i < pages; i++)
        *(volatile uint64_t *)objs[i] = ~(uint64_t)i;
    ns = (double)(bench_now_ns() - t0) / (double)pages;
    size_t total = 0, got;
    t0 = bench_now_ns();
    do {
        got = 0;
        err = arena_track_take(heap, taken, pages, &got);
        total += got;
    } while (!err && got == pages && total < 4 * pages);
    *take_ns = total ? (double)(bench_now_ns() - t0) / (double)total : NAN;
    *reported = (double)total;
    arena_track_stop(heap);
out:
    free(taken);
    free(objs);
    arena_destroy(a);
    return ns;
}

static void one(const struct bench_opts *o, int backend, const char *bench)
{
    size_t pages = o->quick ? 256 : 8192;
    int reps = o->repeat;
    double *v = malloc((size_t)reps * 3 * sizeof *v), *b = v + reps, *t = b + reps, reported = 0;
    char why[256];
    for (int r = 0; r < reps; r++) {
        bench_progress("%s %d/%d", bench, r + 1, reps);
        v[r] = tracked_write(backend, pages, &reported, &t[r], why, sizeof why);
        if (isnan(v[r])) {
            bench_note(bench, "skipped", why);
            free(v);
            return;
        }
        b[r] = first_touch_memfd(pages, (size_t)sysconf(_SC_PAGESIZE));
    }
    bench_row(bench, "ns_per_first_write", bench_median(v, reps), "ns", bench_median(b, reps));
    bench_row(bench, "pages_reported", reported, "pages", (double)pages);
    bench_row(bench, "ns_take_per_page", bench_median(t, reps), "ns", bench_median(b, reps));
    free(v);
}

int bench_track(const struct bench_opts *o)
{
    if (!bench_need("track", "tracking (arena_track_start/take/stop/backend)",
                    bench_have_heap() && ARENA_HAVE(arena_track_start) &&
                        ARENA_HAVE(arena_track_take) && ARENA_HAVE(arena_track_stop) &&
                        ARENA_HAVE(arena_track_backend)))
        return 0;
    one(o, ARENA_TRACKER_SIGSEGV, "track.sigsegv");
    one(o, ARENA_TRACKER_UFFD, "track.uffd");
    return 0;
}
