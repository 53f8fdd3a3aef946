/*
 * prog_track_gib.c -- 1 GiB tracked with every other page written (docs/design.md .req.track.coarsening):
 * one protection split per written page would need ~262000 mappings, four times
 * vm.max_map_count. Tracking must coarsen instead: no ENOMEM, no crash, no page missed.
 * Run on every backend the kernel has. Memory: the file pages are reserved up front
 * (1 GiB of tmpfs while it runs).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "os.h"
#include "track_util.h"

#define PAGE 4096u
#define SLOTS ((size_t)1 << 18) /* 1 GiB */

static int fail(const char *what, int err)
{
    printf("FAIL: %s: %s\n", what, arena_strerror(err));
    return 1;
}

/* 1 GiB at the start of a view of view_slots (64 GiB: like the default heap view). */
static arena_view_t *gib_view(arena_t *a, size_t view_slots)
{
    size_t first;
    arena_view_t *v = NULL;
    if (arena_file_alloc(a, SLOTS, &first) != 0 ||
        arena_view_open(a, ARENA_VIEW_EMPTY, view_slots, ARENA_PROT_READ | ARENA_PROT_WRITE, 0, &v) != 0 ||
        arena_view_map(v, 0, first, SLOTS) != 0)
        return NULL;
    return v;
}

static int run(int backend, const char *name, size_t view_slots)
{
    arena_t *a = track_arena(backend, 0);
    if (a == NULL)
        return fail("arena_create", 0);
    arena_view_t *v = gib_view(a, view_slots);
    if (v == NULL)
        return fail("view of 1 GiB", 0);
    int err = arena_track_start(v, ARENA_TRACK_WRITES);
    if (err != 0)
        return fail("arena_track_start", err);
    char *base = arena_view_base(v);
    for (int round = 0; round < 1; round++) { /* one round keeps it well under a minute */
        for (size_t s = (size_t)round; s < SLOTS; s += 2)
            base[s * PAGE] = (char)(1 + round);
        unsigned char *seen = calloc(SLOTS, 1);
        long n = take_all(v, seen, 65536);
        if (n < 0)
            return fail("arena_track_take", 0);
        for (size_t s = (size_t)round; s < SLOTS; s += 2)
            if (!seen[s]) {
                printf("FAIL: %s round %d: written slot %zu not reported\n", name, round, s);
                return 1;
            }
        arena_stats_t st;
        if ((err = arena_stats(a, &st)) != 0)
            return fail("arena_stats", err);
        printf("%s, view of %zu GiB, round %d: %zu pages written, %ld reported, %zu mappings now (budget %zu), "
               "%zu in the process\n", name, view_slots >> 18, round, SLOTS / 2, n, st.vmas, st.vma_budget,
               arena__os_count_maps());
        free(seen);
    }
    /* Every page is armed again after the take: one more write is seen exactly. */
    base[12345 * PAGE] = 9;
    void *p[2];
    size_t got = 0;
    if ((err = arena_track_take(v, p, 2, &got)) != 0 || got != 1 || p[0] != base + 12345 * PAGE) {
        printf("FAIL: %s: after the big take, one write gave %zu pages\n", name, got);
        return 1;
    }
    arena_destroy(a);
    return 0;
}

int main(void)
{
    int bad = run(ARENA_TRACKER_SIGSEGV, "sigsegv", SLOTS);
    /* Only 1 GiB of 64 in use: coarse blocks are sized from what is in use (.req.track.coarsening). */
    bad |= run(ARENA_TRACKER_SIGSEGV, "sigsegv", SLOTS << 6);
    if (kernel_has_uffd_wp_async())
        bad |= run(ARENA_TRACKER_UFFD, "uffd", SLOTS);
    printf("%d passed, %d failed\n", bad ? 0 : 1, bad ? 1 : 0);
    return bad;
}
