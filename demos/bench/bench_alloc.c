/*
 * bench_alloc.c -- small objects (16..256 bytes, one deterministic size sequence) by
 * arena_alloc against glibc malloc in the same run, ns per object.
 *
 * ns_per_object_16_256: each side stores one word into every object, as a runtime
 * writes an object's header at once, so both pay the first touch of their pages.
 * ns_per_object_untouched: nobody writes the objects; malloc still touches its pages
 * (chunk headers) while the arena's fresh pages stay untouched zero file pages, so
 * this one shows the allocation path alone on the arena's side.
 * ns_per_object_steady: the same objects in a heap at a fixed live size: a ring of
 * STEADY_RING objects, each allocation replacing the oldest. malloc frees the object it
 * replaces (malloc + free timed); the arena collects every STEADY_EVERY allocations (the
 * ring marked, the collection, the ring forwarded: timed apart, as
 * collect_ns_per_object_steady, not in the row) after at least 3 collections of warm-up,
 * so the arena allocates from the pages its collections retained (docs/design.md .req.heap.retain-pages).
 * The row allocates with arena_lab_alloc, the header's inline fast path;
 * ns_per_object_steady_call does the same through the arena_alloc call.
 * The steady baseline is glibc malloc at its fastest: the median arena run against the
 * fastest of STEADY_MALLOC_RUNS malloc runs per repetition, interleaved with the arena's.
 * glibc's work per object is the same in every run (same instructions, no system call, no
 * page fault once warm), but its time is not: the pattern reuses chunks freed a ring ago,
 * scattered over a ~10 MB heap that lives in the shared L3, so whatever else runs on the
 * machine (the other core, other guests) can make it wait on DRAM and up to 3x slower,
 * where the arena's sequential bump barely notices. The fastest run is what malloc costs
 * on a machine to itself. Both sides are timed in the thread's CPU time, so a process
 * that takes the CPU away charges neither. Both rings are mmap'd, outside malloc's heap (a calloc'd ring
 * would cross glibc's dynamic mmap threshold and put the ring inside the heap it
 * measures), and both loops index their sizes with a mask, not a division.
 * ns_per_object_shuffled: ns_per_object_16_256 with cfg.shuffle on (shuffle vectors for
 * objects up to 1 KiB); the baseline is the same loop without it, in the same run.
 * ns_per_object_steady_shuffled: ns_per_object_steady_call with cfg.shuffle on (no first
 * touch of fresh pages in either: the allocation path's own cost); baseline likewise.
 */
#include "bench.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static double time_arena(const size_t *sizes, void **ptrs, size_t n, size_t reserve, bool touch, int shuffle,
                         char *why, size_t whylen)
{
    arena_t *a = NULL;
    arena_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.reserve = reserve;
    cfg.shuffle = shuffle;
    cfg.shuffle_seed = 42;
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
        va[r] = time_arena(sizes, ptrs, n, reserve, touch, ARENA_SHUFFLE_OFF, why, sizeof why);
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

/* Shuffled against unshuffled arena_alloc, objects written, alternating which runs first. */
static double steady_arena(const size_t *sizes, size_t n, size_t reserve, bool inline_path, int shuffle,
                           double *collect_ns, char *why, size_t whylen);

/* Shuffled against unshuffled arena_alloc (steady: in the steady ring, else on a fresh
 * heap), objects written, alternating which runs first. */
static void shuffled(const struct bench_opts *o, const size_t *sizes, void **ptrs, size_t n, size_t reserve,
                     bool steady)
{
    double *vs = malloc((size_t)o->repeat * 2 * sizeof *vs), *vb = vs + o->repeat, gc;
    char why[256] = "";
    /* One untimed pass of each first: the process's first arena pays cold caches and the
     * allocator's first growth, which would favour whichever side runs second. */
    for (int first = ARENA_SHUFFLE_OFF; first <= ARENA_SHUFFLE_ON; first++)
        (void)(steady ? steady_arena(sizes, n, reserve, false, first, &gc, why, sizeof why)
                      : time_arena(sizes, ptrs, n, reserve, true, first, why, sizeof why));
    for (int r = 0; r < o->repeat; r++) {
        bench_progress("alloc shuffled %d/%d", r + 1, o->repeat);
        int first = r % 2 ? ARENA_SHUFFLE_ON : ARENA_SHUFFLE_OFF;
        double t0 = steady ? steady_arena(sizes, n, reserve, false, first, &gc, why, sizeof why)
                           : time_arena(sizes, ptrs, n, reserve, true, first, why, sizeof why);
        double t1 = steady ? steady_arena(sizes, n, reserve, false, !first, &gc, why, sizeof why)
                           : time_arena(sizes, ptrs, n, reserve, true, !first, why, sizeof why);
        vs[r] = first == ARENA_SHUFFLE_ON ? t0 : t1;
        vb[r] = first == ARENA_SHUFFLE_ON ? t1 : t0;
        if (isnan(vs[r]) || isnan(vb[r])) {
            bench_note("alloc", "failed", why);
            free(vs);
            return;
        }
    }
    bench_row_note("alloc", steady ? "ns_per_object_steady_shuffled" : "ns_per_object_shuffled",
                   bench_median(vs, o->repeat), "ns", bench_median(vb, o->repeat),
                   "baseline: the same loop with cfg.shuffle off");
    free(vs);
}

#define STEADY_RING ((size_t)1 << 16)
#define STEADY_EVERY ((size_t)1 << 18)
#define STEADY_WARM 3
#define STEADY_MALLOC_RUNS 5

/* The steady ring, zeroed, outside malloc's heap; NULL when mmap fails. */
static void **ring_new(void)
{
    void *r = mmap(NULL, STEADY_RING * sizeof(void *), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return r == MAP_FAILED ? NULL : r;
}

static void ring_free(void **ring)
{
    munmap(ring, STEADY_RING * sizeof(void *));
}

/* The steady rows' clock: this thread's CPU time (the benchmark and the library run no
 * other thread), so neither side is charged for the time other processes on the machine
 * hold the CPU; waiting for memory and the kernel's work for the thread still count. */
static uint64_t steady_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One collection keeping the ring; returns its ns, or a negative value on failure. */
static double steady_collect(arena_t *a, void **ring, size_t n, char *why, size_t whylen)
{
    uint64_t t0 = steady_now_ns();
    for (size_t i = 0; i < n; i++)
        if (ring[i] != NULL)
            arena_mark(a, ring[i]);
    int err = arena_collect(a, NULL);
    if (err < 0) {
        snprintf(why, whylen, "arena_collect: %s", arena_have_strerror(err));
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (ring[i] == NULL)
            continue;
        /* Slot i holds the object allocated at an index congruent to i. */
        ring[i] = arena_forward(a, ring[i]);
        if (ring[i] == NULL || *(size_t *)ring[i] % n != i) {
            snprintf(why, whylen, "ring object %zu lost in a collection", i);
            return -1;
        }
    }
    return (double)(steady_now_ns() - t0);
}

static double steady_arena(const size_t *sizes, size_t n, size_t reserve, bool inline_path, int shuffle,
                           double *collect_ns, char *why, size_t whylen)
{
    arena_t *a = NULL;
    arena_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.reserve = reserve;
    cfg.shuffle = shuffle;
    cfg.shuffle_seed = 42;
    int err = arena_create(&a, &cfg);
    if (err) {
        snprintf(why, whylen, "arena_create: %s", arena_have_strerror(err));
        return NAN;
    }
    void **ring = ring_new();
    if (ring == NULL) {
        snprintf(why, whylen, "mmap of the ring failed");
        arena_destroy(a);
        return NAN;
    }
    arena_lab_t lab;
    if (inline_path && (err = arena_lab_init(a, &lab)) != 0) {
        snprintf(why, whylen, "arena_lab_init: %s", arena_have_strerror(err));
        ring_free(ring);
        arena_destroy(a);
        return NAN;
    }
    double ns = NAN, gc = 0;
    size_t warm = STEADY_WARM * STEADY_EVERY, total = warm + n;
    uint64_t t0 = 0;
    for (size_t i = 0; i < total; i++) {
        if (i == warm)
            t0 = steady_now_ns(), gc = 0;
        if (i % STEADY_EVERY == 0 && i > 0) {
            double c = steady_collect(a, ring, STEADY_RING, why, whylen);
            if (c < 0)
                goto out;
            gc += c;
        }
        size_t size = sizes[i & (n - 1)];
        void *p = inline_path ? arena_lab_alloc(&lab, size) : arena_alloc(a, size);
        if (p == NULL) {
            snprintf(why, whylen, "arena_alloc(%zu) failed at object %zu", size, i);
            goto out;
        }
        *(volatile size_t *)p = i;
        ring[i % STEADY_RING] = p;
    }
    ns = ((double)(steady_now_ns() - t0) - gc) / (double)n;
    *collect_ns = gc / (double)n;
out:
    ring_free(ring);
    arena_destroy(a);
    return ns;
}

static double steady_malloc(const size_t *sizes, size_t n)
{
    void **ring = ring_new();
    if (ring == NULL)
        return NAN;
    size_t warm = STEADY_WARM * STEADY_EVERY, total = warm + n;
    uint64_t t0 = 0;
    for (size_t i = 0; i < total; i++) {
        if (i == warm)
            t0 = steady_now_ns();
        free(ring[i % STEADY_RING]);
        void *p = malloc(sizes[i & (n - 1)]);
        *(volatile size_t *)p = i;
        ring[i % STEADY_RING] = p;
    }
    double ns = (double)(steady_now_ns() - t0) / (double)n;
    for (size_t i = 0; i < STEADY_RING; i++)
        free(ring[i]);
    ring_free(ring);
    return ns;
}

static void steady(const struct bench_opts *o, const size_t *sizes, size_t n, size_t reserve, bool inline_path)
{
    if (!ARENA_HAVE(arena_collect) || !ARENA_HAVE(arena_mark) || !ARENA_HAVE(arena_forward)) {
        bench_note("alloc", "skipped", "ns_per_object_steady needs arena_mark/collect/forward");
        return;
    }
    int runs = o->repeat * STEADY_MALLOC_RUNS;
    double *va = malloc((size_t)(o->repeat * 2 + runs) * sizeof *va), *vc = va + o->repeat, *vm = vc + o->repeat;
    char why[256] = "";
    for (int r = 0; r < o->repeat; r++) {
        bench_progress("alloc steady %d/%d", r + 1, o->repeat);
        /* malloc runs on both sides of each arena run: neither always runs on a warmer machine. */
        bool ring_failed = false;
        for (int k = 0; k < STEADY_MALLOC_RUNS; k++) {
            if (k == STEADY_MALLOC_RUNS / 2)
                va[r] = steady_arena(sizes, n, reserve, inline_path, ARENA_SHUFFLE_OFF, &vc[r], why, sizeof why);
            vm[r * STEADY_MALLOC_RUNS + k] = steady_malloc(sizes, n);
            ring_failed |= isnan(vm[r * STEADY_MALLOC_RUNS + k]);
        }
        if (isnan(va[r]) || ring_failed) {
            bench_note("alloc", "failed", isnan(va[r]) ? why : "mmap of the ring failed");
            free(va);
            return;
        }
    }
    double best = vm[0], worst = vm[0];
    for (int r = 1; r < runs; r++)
        best = fmin(best, vm[r]), worst = fmax(worst, vm[r]);
    char note[128];
    snprintf(note, sizeof note, "baseline: malloc's fastest of %d runs (%.3g to %.3g ns here)", runs, best, worst);
    bench_row_note("alloc", inline_path ? "ns_per_object_steady" : "ns_per_object_steady_call",
                   bench_median(va, o->repeat), "ns", best, note);
    if (inline_path)
        bench_row("alloc", "collect_ns_per_object_steady", bench_median(vc, o->repeat), "ns", NAN);
    free(va);
}

int bench_alloc(const struct bench_opts *o)
{
    if (!bench_need("alloc", "arena_alloc", ARENA_HAVE(arena_alloc)))
        return 0;
    size_t n = o->quick ? (size_t)1 << 14 : (size_t)1 << 20; /* a power of two: the steady loops mask */
    size_t *sizes = malloc(n * sizeof *sizes);
    void **ptrs = malloc(n * sizeof *ptrs);
    uint64_t seed = 42, total = 0;
    for (size_t i = 0; i < n; i++) {
        sizes[i] = 16 + bench_rand(&seed) % 241;
        total += sizes[i];
    }
    one(o, sizes, ptrs, n, total * 4 + ((size_t)64 << 20), true);
    one(o, sizes, ptrs, n, total * 4 + ((size_t)64 << 20), false);
    shuffled(o, sizes, ptrs, n, total * 4 + ((size_t)64 << 20), false);
    steady(o, sizes, n, (size_t)1 << 32, true);
    steady(o, sizes, n, (size_t)1 << 32, false);
    if (ARENA_HAVE(arena_collect) && ARENA_HAVE(arena_mark) && ARENA_HAVE(arena_forward))
        shuffled(o, sizes, ptrs, n, (size_t)1 << 32, true);
    free(ptrs);
    free(sizes);
    return 0;
}
