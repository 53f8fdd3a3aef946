/*
 * test_security.c -- what docs/README-security.md promises (docs/design.md §9): no named file,
 * close-on-exec, a memfd sealed against shrinking and not executable, read-only views that
 * refuse writes.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arena.h"
#include "fixtures.h"

/* The descriptor whose /proc/self/fd link starts with prefix, or -1. */
static int find_fd(const char *prefix)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int found = -1;
    cr_assert_not_null(d);
    while ((e = readdir(d)) != NULL && found < 0) {
        char path[300], target[300];
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(path, target, sizeof target - 1);
        if (n <= 0)
            continue;
        target[n] = '\0';
        if (strncmp(target, prefix, strlen(prefix)) == 0)
            found = atoi(e->d_name);
    }
    closedir(d);
    return found;
}

static arena_t *make(int backing, const char *dir)
{
    arena_t *a = TEST_ARENA(.reserve = (size_t)64 << 20, .backing = backing, .dir = dir);
    cr_assert_not_null(arena_alloc(a, 100));
    return a;
}

Test(security, memfd_is_sealed_cloexec_and_not_executable)
{
    arena_t *a = make(ARENA_BACKING_MEMFD, NULL);
    int fd = find_fd("/memfd:arena");
    cr_assert_geq(fd, 0, "no /memfd:arena descriptor");
    cr_expect(fcntl(fd, F_GETFD) & FD_CLOEXEC, "not close-on-exec");
    int seals = fcntl(fd, F_GET_SEALS);
    cr_expect(seals >= 0 && (seals & F_SEAL_SHRINK), "seals %#x", seals);
    cr_expect_eq(ftruncate(fd, 0), -1, "the file could be shrunk");
    cr_expect_eq(errno, EPERM);
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0);
    cr_expect_eq(st.st_mode & 0111, 0, "mode %o is executable", st.st_mode & 0777);
    arena_destroy(a);
    cr_expect_lt(find_fd("/memfd:arena"), 0, "descriptor left after destroy");
}

Test(security, tmpfile_has_no_name)
{
    char dir[] = "/tmp/arena-sec-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    arena_t *a = make(ARENA_BACKING_TMPFILE, dir);
    DIR *d = opendir(dir);
    struct dirent *e;
    int entries = 0;
    cr_assert_not_null(d);
    while ((e = readdir(d)) != NULL)
        entries += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    cr_expect_eq(entries, 0, "the backing file is visible in %s", dir);
    int fd = find_fd(dir);
    cr_assert_geq(fd, 0, "no descriptor under %s", dir);
    cr_expect(fcntl(fd, F_GETFD) & FD_CLOEXEC, "not close-on-exec");
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0);
    cr_expect_eq(st.st_mode & 0077, 0, "mode %o readable by others", st.st_mode & 0777);
    cr_expect_eq(st.st_nlink, 0, "the file has a link");
    arena_destroy(a);
    cr_expect_eq(rmdir(dir), 0, "directory not empty after destroy: %s", strerror(errno));
}

Test(security, read_only_view_refuses_writes, .signal = SIGSEGV)
{
    arena_t *a = make(ARENA_BACKING_AUTO, NULL);
    arena_view_t *v;
    cr_assert_eq(arena_view_open(a, ARENA_VIEW_MIRROR, 0, ARENA_PROT_READ, 0, &v), 0);
    char *obj = arena_alloc(a, 64);
    cr_assert_not_null(obj);
    volatile char *m = arena_view_addr(v, obj);
    cr_assert_not_null((char *)m);
    obj[0] = 7;
    cr_assert_eq(m[0], 7, "the mirror shows the heap");
    m[0] = 1; /* must fault */
}

Test(security, write_execute_refused)
{
    arena_t *a = make(ARENA_BACKING_AUTO, NULL);
    arena_view_t *v = NULL;
    int wx = ARENA_PROT_READ | ARENA_PROT_WRITE | ARENA_PROT_EXEC;
    cr_expect_eq(arena_view_open(a, ARENA_VIEW_MIRROR, 0, wx, 0, &v), ARENA_EPROT);
    cr_assert_eq(arena_view_open(a, ARENA_VIEW_EMPTY, 4, ARENA_PROT_READ | ARENA_PROT_EXEC, 0, &v), 0);
    cr_expect_eq(arena_view_protect(v, 0, 4, wx), ARENA_EPROT);
    arena_destroy(a);
}
