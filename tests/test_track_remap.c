/*
 * test_track_remap.c -- a tracked slot whose mapping is re-created between two takes keeps
 * an exact dirty state (issue 12 item 3). The re-created mapping is writable, so a write to
 * it raises no fault: tracking must count the slot as touched even when it shows the same
 * file page, with the same protection, as when it was armed. Every path that re-creates a
 * mapping is one case: unmap + map of the same page, a protection round trip, an undo
 * (rollback) after a refused system call, a heap page released and taken again.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>

#include "core.h"
#include "os.h"
#include "track_util.h"

#define PAGE 4096u
#define N 16u

#define BOTH(name)                                                                              \
    static void name##_body(int backend);                                                      \
    Test(remap_sigsegv, name) { name##_body(ARENA_TRACKER_SIGSEGV); }                          \
    Test(remap_uffd, name)                                                                     \
    {                                                                                          \
        if (!kernel_has_uffd_wp_async())                                                       \
            cr_skip_test("kernel older than 6.7");                                             \
        name##_body(ARENA_TRACKER_UFFD);                                                       \
    }                                                                                          \
    static void name##_body(int backend)

static arena_view_t *clean_view(arena_t **ap, int backend)
{
    arena_t *a = track_arena(backend, 0);
    cr_assert_not_null(a);
    cr_assert_eq(arena_page_size(a), PAGE);
    arena_view_t *v = track_view(a, N);
    cr_assert_not_null(v);
    cr_assert_eq(arena_track_start(v, ARENA_TRACK_WRITES), 0);
    unsigned char seen[N] = {0};
    cr_assert_geq(take_all(v, seen, N), 0);
    *ap = a;
    return v;
}

/* Write slot, take, and demand exactly that slot (others may have been re-created too, so
 * only the written one is required). */
static void expect_reported(arena_view_t *v, size_t slot, const char *how)
{
    char *base = arena_view_base(v);
    base[slot * PAGE + 17] ^= 0x5a;
    unsigned char seen[N] = {0};
    cr_assert_geq(take_all(v, seen, N), 0);
    cr_assert_eq(seen[slot], 1, "%s: written slot %zu reported %d times", how, slot, seen[slot]);
    /* And the slot is armed again: the next write is seen too. */
    base[slot * PAGE + 18] ^= 0x5a;
    memset(seen, 0, sizeof seen);
    cr_assert_geq(take_all(v, seen, N), 0);
    cr_assert_eq(seen[slot], 1, "%s: second write of slot %zu reported %d times", how, slot, seen[slot]);
}

BOTH(unmap_then_map_same_page)
{
    arena_t *a;
    arena_view_t *v = clean_view(&a, backend);
    size_t fp = arena_view_file_page(v, 5);
    cr_assert_eq(arena_view_unmap(v, 5, 1), 0);
    cr_assert_eq(arena_view_map(v, 5, fp, 1), 0);
    expect_reported(v, 5, "unmap+map");
    arena_destroy(a);
}

BOTH(apply_round_trip)
{
    arena_t *a;
    arena_view_t *v = clean_view(&a, backend);
    size_t p6 = arena_view_file_page(v, 6), p7 = arena_view_file_page(v, 7);
    size_t swapped[2] = {p7, p6}, orig[2] = {p6, p7};
    cr_assert_eq(arena_view_apply(v, 6, swapped, 2), 0);
    cr_assert_eq(arena_view_apply(v, 6, orig, 2), 0);
    expect_reported(v, 6, "apply swap and back");
    arena_destroy(a);
}

BOTH(protect_round_trip)
{
    arena_t *a;
    arena_view_t *v = clean_view(&a, backend);
    cr_assert_eq(arena_view_protect(v, 3, 2, ARENA_PROT_READ), 0);
    cr_assert_eq(arena_view_protect(v, 3, 2, ARENA_PROT_READ | ARENA_PROT_WRITE), 0);
    expect_reported(v, 4, "protect READ then READ|WRITE");
    arena_destroy(a);
}

/* An apply whose second run is refused puts the first back: a fresh mapping of the same
 * file page as before, which must count as touched. */
BOTH(rollback_recreates)
{
    arena_t *a;
    arena_view_t *v = clean_view(&a, backend);
    size_t p0 = arena_view_file_page(v, 0);
    size_t t[3] = {p0 + 9, ARENA_NO_PAGE, p0 + 11};
    arena__fault_arm(ARENA_SYS_MMAP, 2, ENOMEM);
    int err = arena_view_apply(v, 2, t, 3);
    arena__fault_disarm_all();
    cr_assert_neq(err, 0, "the injected failure must make the apply fail");
    for (size_t s = 0; s < N; s++)
        cr_assert_eq(arena_view_file_page(v, s), p0 + s, "slot %zu not rolled back", s);
    expect_reported(v, 2, "rollback");
    arena_destroy(a);
}

/* The move of a run out and back (arena_view_move twice) gives the slots their old pages. */
BOTH(move_out_and_back)
{
    arena_t *a;
    arena_view_t *v = clean_view(&a, backend);
    size_t p0 = arena_view_file_page(v, 0);
    cr_assert_eq(arena_view_unmap(v, 12, 4), 0);
    unsigned char seen[N] = {0};
    cr_assert_geq(take_all(v, seen, N), 0);
    cr_assert_eq(arena_view_move(v, 12, 8, 2), 0);
    cr_assert_eq(arena_view_move(v, 8, 12, 2), 0);
    cr_assert_eq(arena_view_file_page(v, 8), p0 + 8);
    expect_reported(v, 9, "move out and back");
    arena_destroy(a);
}

/* The heap: a page whose objects all died is released by a collection; the next allocation
 * takes the same slot and, first fit, the same file page again. Its write must be seen. */
BOTH(heap_page_released_and_taken_again)
{
    arena_t *a = track_arena(backend, 0);
    cr_assert_not_null(a);
    arena_view_t *h = arena_heap_view(a);
    char *big = arena_alloc(a, 3 * PAGE);
    cr_assert_not_null(big);
    memset(big, 1, 3 * PAGE);
    cr_assert_eq(arena_track_start(h, ARENA_TRACK_WRITES), 0);
    size_t nh = arena_view_slots(h);
    unsigned char *seen = calloc(nh, 1);
    cr_assert_geq(take_all(h, seen, 64), 0);
    size_t slot = (size_t)(big - (char *)arena_view_base(h)) / PAGE;
    size_t fp = arena_view_file_page(h, slot);
    cr_assert_eq(arena_collect(a, NULL) >= 0 || 1, 1); /* nothing marked: big dies */
    char *again = arena_alloc(a, 3 * PAGE);
    cr_assert_not_null(again);
    size_t s2 = (size_t)(again - (char *)arena_view_base(h)) / PAGE;
    if (s2 != slot || arena_view_file_page(h, s2) != fp)
        cr_skip_test("the allocator did not reuse slot and file page (%zu/%zu)", s2, slot);
    again[100] = 7;
    memset(seen, 0, nh);
    cr_assert_geq(take_all(h, seen, 64), 0);
    cr_assert_eq(seen[slot], 1, "reused heap page written but reported %d times", seen[slot]);
    free(seen);
    arena_destroy(a);
}

/* A thread that blocks SIGSEGV would be killed by its first write to an armed page: the
 * libsigsegv backend refuses to start from such a thread (ARENA_ESTATE), changing nothing. */
Test(remap_sigsegv, start_refused_when_sigsegv_is_blocked)
{
    arena_t *a = track_arena(ARENA_TRACKER_SIGSEGV, 0);
    cr_assert_not_null(a);
    arena_view_t *v = track_view(a, N);
    cr_assert_not_null(v);
    sigset_t segv, old;
    sigemptyset(&segv);
    sigaddset(&segv, SIGSEGV);
    pthread_sigmask(SIG_BLOCK, &segv, &old);
    int err = arena_track_start(v, ARENA_TRACK_WRITES);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    cr_assert_eq(err, ARENA_ESTATE, "arena_track_start with SIGSEGV blocked: %s", arena_strerror(err));
    cr_assert_eq(arena_track_backend(v), -1);
    ((char *)arena_view_base(v))[0] = 1; /* still writable: nothing was armed */
    cr_assert_eq(arena_track_start(v, ARENA_TRACK_WRITES), 0);
    arena_destroy(a);
}

/* The hook marks slots re-created BEFORE view.c's system call; when that call is refused
 * the slot keeps its armed mapping. Stopping must still open it: with ACCESS tracking an
 * armed page left PROT_NONE after arena_track_stop faults with no tracker to answer
 * (the fuzz_api crash: a collection's refused mmap, then stop, then an allocation). */
Test(remap_sigsegv, refused_remap_then_stop_opens_every_page) /* ACCESS: libsigsegv only */
{
    arena_t *a = track_arena(ARENA_TRACKER_SIGSEGV, 0);
    cr_assert_not_null(a);
    arena_view_t *v = track_view(a, N);
    cr_assert_not_null(v);
    cr_assert_eq(arena_track_start(v, ARENA_TRACK_ACCESS), 0);
    unsigned char seen[N] = {0};
    cr_assert_geq(take_all(v, seen, N), 0); /* every page armed: PROT_NONE on libsigsegv */
    size_t p0 = arena_view_file_page(v, 0);
    size_t t[3] = {p0 + 9, ARENA_NO_PAGE, p0 + 11};
    arena__fault_arm(ARENA_SYS_MMAP, 2, ENOMEM);
    int err = arena_view_apply(v, 2, t, 3);
    arena__fault_disarm_all();
    cr_assert_neq(err, 0, "the injected failure must make the apply fail");
    cr_assert_eq(arena_track_stop(v), 0);
    volatile char *base = arena_view_base(v);
    for (size_t s = 0; s < N; s++)
        base[s * PAGE + 1] ^= 0x11; /* SIGSEGV here: a page stop left armed */
    arena_destroy(a);
}
