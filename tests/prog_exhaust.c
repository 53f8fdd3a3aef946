/*
 * prog_exhaust.c -- running out (docs/design.md §9, .req.fault.exhaustion-is-error).
 *
 *  1. a backing file capped by cfg.max_file: arena_alloc returns NULL with ENOSPC or ENOMEM,
 *     never SIGBUS; after a collection frees memory, allocation works again;
 *  2. the same on a 4 MiB tmpfs (ARENA_BACKING_TMPFILE in it), where the filesystem itself is
 *     full: skipped when mount(2) is not allowed;
 *  3. a tiny VMA budget: collections of a fragmented heap stay within it (copying instead
 *     of remapping), views get ARENA_EVMA instead of crossing it, and no object is lost.
 * A plain program (not Criterion) so a SIGBUS is reported as what it is.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "arena.h"

#include "prog_check.h"

struct obj {
    char *p;
    size_t size;
    unsigned char tag;
};

#define MAXOBJ 20000
/* Under a tiny VMA budget a collection may refuse (ARENA_EVMA) and an allocation may fail
 * (ENOMEM), as arena.h allows: counted and printed, while no object may be lost. */
static bool evma_allowed;
static size_t evma_collects, enomem_allocs;
/* A collection of a full file may report ENOSPC (it had no room to copy into): counted. */
static bool enospc_allowed;
static size_t enospc_collects;
static struct obj objs[MAXOBJ];

static void on_sigbus(int sig)
{
    (void)sig;
    static const char msg[] = "prog_exhaust: SIGBUS: a write reached a file page that was not reserved\n";
    if (write(2, msg, sizeof msg - 1) < 0)
        _exit(3);
    _exit(3);
}

static bool holds(const struct obj *o, const char *p)
{
    for (size_t i = 0; i < o->size; i++)
        if ((unsigned char)p[i] != o->tag)
            return false;
    return true;
}

/* Allocate until the heap refuses; returns the count. The refusal must be ENOSPC/ENOMEM. */
static size_t fill_up(arena_t *a, size_t from, size_t size)
{
    size_t n = from;
    while (n < MAXOBJ) {
        errno = 0;
        char *p = arena_alloc(a, size + (n % 3) * 16);
        if (p == NULL) {
            CHECK(errno == ENOSPC || errno == ENOMEM, "exhausted with errno %d (%s)", errno,
                  strerror(errno));
            break;
        }
        objs[n] = (struct obj){p, size + (n % 3) * 16, (unsigned char)(n * 7 + 1)};
        memset(p, objs[n].tag, objs[n].size);
        n++;
    }
    return n;
}

/* Keep one block of `block` consecutive objects in every `keep`, collect, forward, verify;
 * returns the survivors. */
static size_t keep_some(arena_t *a, size_t n, size_t keep, size_t block)
{
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
        if ((i / block) % keep == 0)
            CHECK(arena_mark(a, objs[i].p) == 0, "mark");
    arena_collect_stats_t st;
    int err = arena_collect(a, &st);
    if (err == -ARENA_EVMA && evma_allowed)
        evma_collects++;
    else if (err == -ARENA_ENOSPC && enospc_allowed)
        enospc_collects++; /* no room to copy into: what it could not move stayed in place */
    else
        CHECK(err == 0, "arena_collect: %s", arena_strerror(err));
    for (size_t i = 0; i < n; i++) {
        if ((i / block) % keep != 0)
            continue;
        struct obj o = objs[i];
        o.p = arena_forward(a, o.p);
        CHECK(o.p != NULL && holds(&o, o.p), "object %zu after the collection", i);
        objs[kept++] = o;
    }
    return kept;
}

static void exhaust(const char *what, arena_config_t *cfg, size_t size)
{
    arena_t *a = NULL;
    int err = arena_create(&a, cfg);
    CHECK(err == 0, "%s: arena_create: %s", what, arena_strerror(err));
    if (err != 0)
        return;
    enospc_allowed = true;
    enospc_collects = 0;
    size_t n = fill_up(a, 0, size);
    CHECK(n > 0 && n < MAXOBJ, "%s: %zu objects before running out", what, n);
    errno = 0;
    CHECK(arena_alloc(a, size) == NULL, "%s: still full", what);
    /* Whole pages die: a page with any live object stays (the heap bumps, it does not refill
     * holes), and a full file leaves no room to evacuate sparse pages into. */
    size_t kept = keep_some(a, n, 4, 64);
    size_t again = fill_up(a, kept, size);
    CHECK(again > kept, "%s: nothing could be allocated after the collection", what);
    size_t last = keep_some(a, again, 2, 64);
    arena_stats_t st;
    CHECK(arena_stats(a, &st) == 0, "stats");
    if (cfg->max_file != 0)
        CHECK(st.file_size <= cfg->max_file, "%s: file %zu > cap %zu", what, st.file_size, cfg->max_file);
    printf("exhaust: %s: %zu objects of ~%zu bytes until full, %zu kept, %zu after refilling "
           "(%zu collections reported ENOSPC): %s\n", what, n, size, kept, last, enospc_collects,
           failures ? "FAIL" : "ok");
    enospc_allowed = false;
    arena_destroy(a);
}

static void test_max_file(void)
{
    arena_config_t cfg;
    arena_config_init(&cfg);
    cfg.reserve = (size_t)256 << 20;
    cfg.max_file = (size_t)2 << 20;
    exhaust("max_file 2 MiB, small objects", &cfg, 200);
    exhaust("max_file 2 MiB, page runs", &cfg, 3 * 4096 + 100);
}

static void test_tmpfs(void)
{
    char dir[] = "/tmp/arena-exhaust-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        printf("exhaust: tmpfs: skipped (mkdtemp: %s)\n", strerror(errno));
        return;
    }
    if (mount("arena-exhaust", dir, "tmpfs", MS_NOSUID | MS_NODEV, "size=4m") != 0) {
        printf("exhaust: tmpfs of 4 MiB: skipped (mount: %s)\n", strerror(errno));
        rmdir(dir);
        return;
    }
    arena_config_t cfg;
    arena_config_init(&cfg);
    cfg.reserve = (size_t)256 << 20;
    cfg.backing = ARENA_BACKING_TMPFILE;
    cfg.dir = dir;
    exhaust("tmpfs of 4 MiB", &cfg, 300);
    CHECK(umount2(dir, MNT_DETACH) == 0, "umount: %s", strerror(errno));
    rmdir(dir);
}

/* A heap of single-page objects, every third kept: scattered live pages that would need
 * one mapping each to remap, far more than the budget. */
static void test_vma_budget(int mover, size_t budget)
{
    arena_config_t cfg;
    arena_t *a = NULL;
    arena_config_init(&cfg);
    cfg.reserve = (size_t)256 << 20;
    cfg.vma_budget = budget;
    cfg.mover = mover;
    cfg.copy_below = 1; /* remap wherever the budget allows it */
    evma_allowed = true;
    evma_collects = enomem_allocs = 0;
    int err = arena_create(&a, &cfg);
    CHECK(err == 0, "arena_create with vma_budget %zu: %s", budget, arena_strerror(err));
    if (err != 0)
        return;
    size_t ps = arena_page_size(a), n = 0;
    arena_view_t *mirror = NULL;
    if (getenv("EXHAUST_MIRROR")) {
    err = arena_view_open(a, ARENA_VIEW_MIRROR, 0, ARENA_PROT_READ, 0, &mirror);
    CHECK(err == 0 || err == ARENA_EVMA, "mirror under a small budget: %s", arena_strerror(err));
    }
    for (int round = 0; round < 4; round++) {
        while (n < 1500) {
            size_t size = (n % 5 == 0) ? 2 * ps + 32 : ps - 64;
            errno = 0;
            char *p = arena_alloc(a, size);
            if (p == NULL) {
                CHECK(errno == ENOMEM, "alloc under the budget: %s", strerror(errno));
                enomem_allocs++;
                break;
            }
            objs[n] = (struct obj){p, size, (unsigned char)(n * 13 + round)};
            memset(p, objs[n].tag, size);
            n++;
        }
        n = keep_some(a, n, 3, 1);
        arena_stats_t st;
        CHECK(arena_stats(a, &st) == 0, "stats");
        CHECK(st.vmas <= st.vma_budget, "round %d: %zu mappings, budget %zu", round, st.vmas,
              st.vma_budget);
        if (mirror != NULL)
            for (size_t i = 0; i < n; i++) {
                char *m = arena_view_addr(mirror, objs[i].p);
                CHECK(m != NULL && holds(&objs[i], m), "object %zu through the mirror", i);
            }
    }
    /* A view asked to show scattered pages runs into the budget: refused, not crossed. */
    size_t first;
    arena_view_t *v = NULL;
    int refused = 0;
    if (arena_file_alloc(a, 64, &first) == 0 &&
        arena_view_open(a, ARENA_VIEW_EMPTY, 128, ARENA_PROT_READ, 0, &v) == 0) {
        for (size_t i = 0; i < 64 && !refused; i++) {
            err = arena_view_map(v, 2 * i, first + 63 - i, 1);
            CHECK(err == 0 || err == ARENA_EVMA, "scattered map: %s", arena_strerror(err));
            refused = err == ARENA_EVMA;
        }
        arena_stats_t st;
        CHECK(arena_stats(a, &st) == 0 && st.vmas <= st.vma_budget, "budget crossed by a view");
        CHECK(refused, "64 scattered pages fit a budget of %zu mappings", budget);
        arena_view_close(v);
    }
    printf("exhaust: vma_budget %zu, mover %d: %zu objects kept over 4 collections (%zu refused "
           "with ARENA_EVMA, %zu allocations refused with ENOMEM), view refused with ARENA_EVMA: %s\n",
           budget, mover, n, evma_collects, enomem_allocs, failures ? "FAIL" : "ok");
    evma_allowed = false;
    if (mirror != NULL)
        arena_view_close(mirror);
    arena_destroy(a);
}

int main(void)
{
    signal(SIGBUS, on_sigbus);
    setvbuf(stdout, NULL, _IONBF, 0);
    alarm(120);
    test_max_file();
    test_tmpfs();
    size_t budget = getenv("EXHAUST_BUDGET") ? strtoul(getenv("EXHAUST_BUDGET"), NULL, 10) : 24;
    test_vma_budget(ARENA_MOVE_AUTO, budget);
    test_vma_budget(ARENA_MOVE_REMAP_FILE_PAGES, budget);
    return failures != 0;
}
