/* test_backing.c -- the backing file, its page allocator, the life cycle, the OS layer. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core.h"
#include "view.h"
#include "fixtures.h"

static arena_t *make(int backing, size_t max_file)
{
    return TEST_ARENA(.backing = backing, .max_file = max_file, .reserve = 64 << 20);
}

Test(backing, memfd_and_tmpfile_kinds)
{
    arena_t *a = make(ARENA_BACKING_MEMFD, 0);
    arena_t *b = make(ARENA_BACKING_TMPFILE, 0);
    arena_t *c = make(ARENA_BACKING_AUTO, 0);
    arena_stats_t s;
    cr_assert_eq(arena_stats(a, &s), 0);
    cr_expect_eq(s.backing, ARENA_BACKING_MEMFD);
    cr_assert_eq(arena_stats(b, &s), 0);
    cr_expect_eq(s.backing, ARENA_BACKING_TMPFILE);
    cr_assert_eq(arena_stats(c, &s), 0);
    cr_expect_eq(s.backing, ARENA_BACKING_MEMFD);
    /* Both descriptors are close-on-exec. */
    cr_expect(fcntl(arena__backing_fd(a->backing), F_GETFD) & FD_CLOEXEC);
    cr_expect(fcntl(arena__backing_fd(b->backing), F_GETFD) & FD_CLOEXEC);
    arena_destroy(a);
    arena_destroy(b);
    arena_destroy(c);
}

Test(backing, memfd_is_sealed_against_shrinking)
{
    arena_t *a = make(ARENA_BACKING_MEMFD, 0);
    size_t first;
    cr_assert_eq(arena_file_alloc(a, 4, &first), 0);
    int seals = fcntl(arena__backing_fd(a->backing), F_GET_SEALS);
    cr_expect(seals & F_SEAL_SHRINK);
    cr_expect_eq(ftruncate(arena__backing_fd(a->backing), 0), -1);
    /* Growing still works. */
    cr_assert_eq(arena_file_alloc(a, 1000, &first), 0);
    arena_destroy(a);
}

Test(backing, tmpfile_in_configured_dir_leaves_nothing)
{
    char dir[] = "/tmp/arena-test-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    arena_config_t cfg;
    arena_config_init(&cfg);
    cfg.backing = ARENA_BACKING_TMPFILE;
    cfg.dir = dir;
    cfg.reserve = 16 << 20;
    arena_t *a = NULL;
    cr_assert_eq(arena_create(&a, &cfg), 0);
    size_t first;
    cr_assert_eq(arena_file_alloc(a, 8, &first), 0);
    arena_destroy(a);
    cr_expect_eq(rmdir(dir), 0, "the directory must be empty: %s", strerror(errno));
}

Test(backing, tmpfile_bad_dir_is_an_errno)
{
    arena_config_t cfg;
    arena_config_init(&cfg);
    cfg.backing = ARENA_BACKING_TMPFILE;
    cfg.dir = "/nonexistent/arena";
    arena_t *a = NULL;
    cr_expect_eq(arena_create(&a, &cfg), ARENA_ENOENT);
    cr_expect_null(a);
}

Test(backing, alloc_is_zeroed_reserved_and_first_fit)
{
    arena_t *a = make(ARENA_BACKING_MEMFD, 0);
    size_t p0, p1, p2;
    cr_assert_eq(arena_file_alloc(a, 3, &p0), 0);
    cr_assert_eq(arena_file_alloc(a, 2, &p1), 0);
    cr_expect_geq(p1, p0 + 3);
    size_t before = arena__backing_bytes(a->backing);
    cr_assert_eq(arena_file_alloc(a, 5, &p2), 0);
    /* fallocate reserved the pages before they were handed out */
    cr_expect_geq(arena__backing_bytes(a->backing), before + 5 * a->page_size);
    for (size_t i = 0; i < 5; i++)
        cr_expect(arena__backing_is_used(a->backing, p2 + i));
    /* write, free, reallocate: the first fit takes the hole back, and it reads as zero */
    char *m = mmap(NULL, 3 * a->page_size, PROT_READ | PROT_WRITE, MAP_SHARED, arena__backing_fd(a->backing),
                   (off_t)(p0 * a->page_size));
    cr_assert_neq(m, MAP_FAILED);
    memset(m, 0x5a, 3 * a->page_size);
    cr_assert_eq(arena_file_free(a, p0, 3), 0);
    cr_expect_eq(m[0], 0, "freed pages are punched");
    size_t again;
    cr_assert_eq(arena_file_alloc(a, 3, &again), 0);
    cr_expect_eq(again, p0);
    for (size_t i = 0; i < 3 * a->page_size; i++)
        if (m[i] != 0)
            cr_assert_fail("byte %zu not zero", i);
    munmap(m, 3 * a->page_size);
    arena_destroy(a);
}

Test(backing, free_punches_memory)
{
    arena_t *a = make(ARENA_BACKING_MEMFD, 0);
    size_t first;
    cr_assert_eq(arena_file_alloc(a, 256, &first), 0);
    size_t full = arena__backing_bytes(a->backing);
    cr_assert_eq(arena_file_free(a, first + 16, 128), 0);
    cr_expect_leq(arena__backing_bytes(a->backing), full - 128 * a->page_size);
    arena_destroy(a);
}

Test(backing, bad_file_calls)
{
    arena_t *a = make(ARENA_BACKING_MEMFD, 0);
    size_t first;
    cr_expect_eq(arena_file_alloc(NULL, 1, &first), ARENA_ENULL);
    cr_expect_eq(arena_file_alloc(a, 1, NULL), ARENA_ENULL);
    cr_expect_eq(arena_file_alloc(a, 0, &first), ARENA_ESIZE);
    cr_assert_eq(arena_file_alloc(a, 2, &first), 0);
    cr_expect_eq(arena_file_free(a, first, 0), ARENA_ESIZE);
    cr_expect_eq(arena_file_free(a, first + 1, 2), ARENA_ERANGE, "past the allocation");
    cr_expect_eq(arena_file_free(a, (size_t)1 << 40, 1), ARENA_ERANGE);
    cr_expect_eq(arena_file_free(NULL, first, 1), ARENA_ENULL);
    cr_expect_eq(arena_file_free(a, first, 2), 0);
    cr_expect_eq(arena_file_free(a, first, 2), ARENA_ERANGE, "double free");
    arena_destroy(a);
}

Test(backing, max_file_gives_enospc)
{
    size_t page = arena__os_page();
    arena_t *a = make(ARENA_BACKING_MEMFD, 0);
    size_t used_by_heap = arena__backing_used_pages(a->backing);
    arena_destroy(a);
    a = make(ARENA_BACKING_MEMFD, (used_by_heap + 10) * page);
    size_t first, second;
    cr_expect_eq(arena_file_alloc(a, 11, &first), ARENA_ENOSPC);
    cr_assert_eq(arena_file_alloc(a, 10, &first), 0);
    cr_expect_eq(arena_file_alloc(a, 1, &second), ARENA_ENOSPC);
    cr_assert_eq(arena_file_free(a, first + 3, 1), 0);
    cr_expect_eq(arena_file_alloc(a, 1, &second), 0);
    cr_expect_eq(second, first + 3);
    arena_destroy(a);
}

Test(backing, bad_configs)
{
    arena_config_t cfg;
    arena_t *a = NULL;
    cr_expect_eq(arena_create(NULL, NULL), ARENA_ENULL);
    arena_config_init(&cfg);
    cfg.page_size = 3000;
    cr_expect_eq(arena_create(&a, &cfg), ARENA_ECONFIG);
    arena_config_init(&cfg);
    cfg.page_size = 12288; /* multiple of the page, not a power of two */
    cr_expect_eq(arena_create(&a, &cfg), ARENA_ECONFIG);
    arena_config_init(&cfg);
    cfg.backing = 9;
    cr_expect_eq(arena_create(&a, &cfg), ARENA_ECONFIG);
    arena_config_init(&cfg);
    cfg.mover = -1;
    cr_expect_eq(arena_create(&a, &cfg), ARENA_ECONFIG);
    arena_config_init(&cfg);
    cfg.tracker = 7;
    cr_expect_eq(arena_create(&a, &cfg), ARENA_ECONFIG);
    arena_config_init(&cfg);
    cfg.sparse_percent = 101;
    cr_expect_eq(arena_create(&a, &cfg), ARENA_ECONFIG);
    cr_expect_null(a);
    arena_destroy(NULL);
}

Test(backing, defaults_and_stats)
{
    arena_t *a = NULL;
    cr_assert_eq(arena_create(&a, NULL), 0);
    arena_stats_t s;
    cr_assert_eq(arena_stats(a, &s), 0);
    cr_expect_eq(s.page_size, arena__os_page());
    cr_expect_eq(arena_page_size(a), arena__os_page());
    cr_expect_eq(s.reserve, ARENA__DEFAULT_RESERVE);
    cr_expect_gt(s.vma_budget, 1000);
    cr_expect_lt(s.vma_budget, arena__os_max_map_count());
    cr_expect_geq(s.copy_below, 1);
    cr_expect_leq(s.copy_below, 64);
    cr_expect_geq(s.views, 1);
    cr_expect_geq(s.vmas, 1);
    cr_expect_eq(arena_stats(NULL, &s), ARENA_ENULL);
    cr_expect_eq(arena_stats(a, NULL), ARENA_ENULL);
    arena_destroy(a);
}

Test(backing, larger_arena_pages)
{
    arena_config_t cfg;
    arena_config_init(&cfg);
    cfg.page_size = 4 * arena__os_page();
    cfg.reserve = 32 << 20;
    arena_t *a = NULL;
    cr_assert_eq(arena_create(&a, &cfg), 0);
    cr_expect_eq(arena_page_size(a), cfg.page_size);
    size_t first;
    cr_assert_eq(arena_file_alloc(a, 3, &first), 0);
    cr_expect_geq(arena__backing_file_pages(a->backing) * cfg.page_size, (first + 3) * cfg.page_size);
    arena_destroy(a);
}

Test(backing, strerror_covers_every_code)
{
    for (int e = ARENA_ENOCOLLECT; e <= ARENA_ENULL; e++)
        if (e != -1003) /* was ARENA_EALIGN, which nothing returned: gone */
            cr_expect_str_neq(arena_strerror(e), "unknown arena error", "code %d", e);
    cr_expect_str_eq(arena_strerror(-1003), "unknown arena error");
    cr_expect_str_eq(arena_strerror(-1), "operation not permitted", "-EPERM");
    cr_expect_not_null(arena_strerror(ENOSPC));
    cr_expect_not_null(arena_strerror(0));
}

Test(os, reserve_is_aligned_and_none)
{
    char *p = arena__os_reserve(3 * ARENA__2M + 4096, ARENA__2M);
    cr_assert_not_null(p);
    cr_expect_eq((uintptr_t)p % ARENA__2M, 0);
    unsigned char vec[1];
    cr_expect_eq(mincore(p, 4096, vec), 0, "reserved");
    cr_expect_eq(munmap(p, 3 * ARENA__2M + 4096), 0);
    errno = 0;
    cr_expect_null(arena__os_reserve(0, 4096));
    cr_expect_eq(errno, EINVAL);
}

Test(os, fault_injection_fires_once)
{
    unsigned long before = arena__fault_calls(ARENA_SYS_FTRUNCATE);
    arena__fault_arm(ARENA_SYS_FTRUNCATE, 2, EIO);
    int fd = memfd_create("t", MFD_CLOEXEC);
    cr_assert_geq(fd, 0);
    cr_expect_eq(arena__os_ftruncate(fd, 4096), 0);
    cr_expect_eq(arena__fault_fired(), 0);
    errno = 0;
    cr_expect_eq(arena__os_ftruncate(fd, 4096), -1);
    cr_expect_eq(errno, EIO);
    cr_expect_eq(arena__fault_fired(), 1);
    cr_expect_eq(arena__os_ftruncate(fd, 4096), 0, "disarmed after firing");
    cr_expect_eq(arena__fault_calls(ARENA_SYS_FTRUNCATE), before + 3);
    close(fd);
}

Test(os, injected_failures_leave_no_arena)
{
    static const int sys[] = { ARENA_SYS_MEMFD_CREATE, ARENA_SYS_MMAP };
    for (size_t i = 0; i < sizeof sys / sizeof *sys; i++) {
        arena_config_t cfg;
        arena_config_init(&cfg);
        cfg.backing = ARENA_BACKING_MEMFD;
        cfg.copy_below = 8; /* no calibration: the armed call is the arena's own */
        arena__fault_arm(sys[i], 1, ENOMEM);
        arena_t *a = NULL;
        int err = arena_create(&a, &cfg);
        cr_expect_eq(err, ARENA_ENOMEM, "sys %d: %s", sys[i], arena_strerror(err));
        cr_expect_null(a);
        arena__fault_disarm_all();
    }
}

Test(backing, fallocate_failure_is_an_error_not_a_sigbus)
{
    arena_t *a = make(ARENA_BACKING_MEMFD, 0);
    size_t first;
    size_t used = arena__backing_used_pages(a->backing);
    arena__fault_arm(ARENA_SYS_FALLOCATE, 1, ENOSPC);
    cr_expect_eq(arena_file_alloc(a, 4, &first), ARENA_ENOSPC);
    cr_expect_eq(arena__backing_used_pages(a->backing), used, "nothing handed out");
    cr_expect_eq(arena_file_alloc(a, 4, &first), 0);
    arena_destroy(a);
}
