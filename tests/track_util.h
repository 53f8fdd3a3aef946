/*
 * track_util.h -- helpers shared by the tracking tests (test_track.c, prog_track_*.c).
 */
#ifndef ARENA_TEST_TRACK_UTIL_H
#define ARENA_TEST_TRACK_UTIL_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "arena.h"
#include "fixtures.h"

/* userfaultfd WP_ASYNC + PAGEMAP_SCAN exist from Linux 6.7: there the backend must work. */
static inline bool kernel_has_uffd_wp_async(void)
{
    struct utsname u;
    int major = 0, minor = 0;
    if (uname(&u) != 0 || sscanf(u.release, "%d.%d", &major, &minor) != 2)
        return false;
    return major > 6 || (major == 6 && minor >= 7);
}

static inline arena_t *track_arena(int backend, size_t vma_budget)
{
    arena_config_t cfg;
    arena_config_init(&cfg);
    cfg.tracker = backend;
    cfg.reserve = (size_t)1 << 30;
    cfg.vma_budget = vma_budget;
    arena_t *a = NULL;
    return arena_create(&a, &cfg) == 0 ? a : NULL;
}

/* A read-write view of n fresh file pages; NULL on failure (fixtures.h). */
static inline arena_view_t *track_view(arena_t *a, size_t n)
{
    return test_rw_view(a, n, NULL);
}

/* Take until nothing is left; seen[slot] counts reports. Returns pages reported, or -1
 * on an error or an address outside the view. */
static inline long take_all(arena_view_t *v, unsigned char *seen, size_t batch)
{
    char *base = arena_view_base(v);
    void **pages = malloc(batch * sizeof *pages);
    long total = 0;
    for (;;) {
        size_t got = 0;
        if (arena_track_take(v, pages, batch, &got) != 0) {
            total = -1;
            break;
        }
        for (size_t i = 0; i < got; i++) {
            char *p = pages[i];
            if (p < base) {
                total = -1;
                break;
            }
            size_t slot = (size_t)(p - base) / 4096;
            if (slot >= arena_view_slots(v)) {
                total = -1;
                break;
            }
            if (seen[slot] < 255)
                seen[slot]++;
        }
        if (total < 0)
            break;
        total += (long)got;
        if (got < batch)
            break;
    }
    free(pages);
    return total;
}

#endif
