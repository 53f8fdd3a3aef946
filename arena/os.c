/*
 * os.c -- the thin OS layer (docs/design.md §4, .req.os.wrapped-calls): every system call the library
 * makes, plus the fault-injection hooks of the test build (.req.os.fault-counters).
 * Layer 0 (docs/design.md §2): the only file that calls the kernel; calls no other module.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "os.h"

#include "arena.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------ fault injection -- */
#ifdef ARENA_FAULT_INJECTION
/* Per system call: calls made so far, and the call number that must fail (0 = none).
 * Atomics so that threads calling the library while a test arms a failure see a
 * consistent count, and exactly one call fires. */
static _Atomic unsigned long fi_calls[ARENA_SYS_COUNT];
static _Atomic unsigned long fi_target[ARENA_SYS_COUNT];
static _Atomic int fi_errno[ARENA_SYS_COUNT];
static _Atomic int fi_fired;

void arena__fault_arm(int sys, unsigned long nth, int err)
{
    if (sys < 0 || sys >= ARENA_SYS_COUNT)
        return;
    atomic_store(&fi_errno[sys], err);
    atomic_store(&fi_fired, 0);
    atomic_store(&fi_target[sys], nth ? atomic_load(&fi_calls[sys]) + nth : 0);
}

void arena__fault_disarm_all(void)
{
    for (int i = 0; i < ARENA_SYS_COUNT; i++)
        atomic_store(&fi_target[i], 0);
}

unsigned long arena__fault_calls(int sys)
{
    return (sys < 0 || sys >= ARENA_SYS_COUNT) ? 0 : atomic_load(&fi_calls[sys]);
}

int arena__fault_fired(void)
{
    return atomic_load(&fi_fired);
}

/* True when this call must fail; errno is set. */
static int fi_fail(int sys)
{
    unsigned long n = atomic_fetch_add(&fi_calls[sys], 1) + 1;
    unsigned long target = atomic_load(&fi_target[sys]);
    if (target == 0 || n != target)
        return 0;
    if (!atomic_compare_exchange_strong(&fi_target[sys], &target, 0))
        return 0;
    atomic_store(&fi_fired, 1);
    errno = atomic_load(&fi_errno[sys]);
    return 1;
}
#define FAIL_IF_ARMED(sys, ret) \
    do {                         \
        if (fi_fail(sys))        \
            return ret;          \
    } while (0)
#else
#define FAIL_IF_ARMED(sys, ret) ((void)0)
#endif

/* ------------------------------------------------------------------ wrappers -- */
void *arena__os_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    FAIL_IF_ARMED(ARENA_SYS_MMAP, MAP_FAILED);
    return mmap(addr, len, prot, flags, fd, off);
}

int arena__os_munmap(void *addr, size_t len)
{
    FAIL_IF_ARMED(ARENA_SYS_MUNMAP, -1);
    return munmap(addr, len);
}

void *arena__os_mremap(void *old, size_t old_len, size_t new_len, int flags, void *new_addr)
{
    FAIL_IF_ARMED(ARENA_SYS_MREMAP, MAP_FAILED);
    return mremap(old, old_len, new_len, flags, new_addr);
}

int arena__os_mprotect(void *addr, size_t len, int prot)
{
    FAIL_IF_ARMED(ARENA_SYS_MPROTECT, -1);
    return mprotect(addr, len, prot);
}

int arena__os_remap_file_pages(void *addr, size_t len, size_t pgoff)
{
    FAIL_IF_ARMED(ARENA_SYS_REMAP_FILE_PAGES, -1);
    /* The kernel prints a one-time deprecation notice to its log; the call still works
     * (emulated with one mapping per discontiguous run). */
    return remap_file_pages(addr, len, 0, pgoff, 0);
}

int arena__os_memfd_create(const char *name, unsigned flags)
{
    FAIL_IF_ARMED(ARENA_SYS_MEMFD_CREATE, -1);
    return (int)syscall(SYS_memfd_create, name, flags);
}

int arena__os_open(const char *path, int flags, int mode)
{
    FAIL_IF_ARMED(ARENA_SYS_OPEN, -1);
    return open(path, flags, mode);
}

int arena__os_ftruncate(int fd, off_t len)
{
    FAIL_IF_ARMED(ARENA_SYS_FTRUNCATE, -1);
    return ftruncate(fd, len);
}

int arena__os_fallocate(int fd, int mode, off_t off, off_t len)
{
    FAIL_IF_ARMED(ARENA_SYS_FALLOCATE, -1);
    int r;
    do
        r = fallocate(fd, mode, off, len);
    while (r < 0 && errno == EINTR);
    return r;
}

int arena__os_fcntl(int fd, int cmd, int arg)
{
    FAIL_IF_ARMED(ARENA_SYS_FCNTL, -1);
    return fcntl(fd, cmd, arg);
}

int arena__os_userfaultfd(int flags)
{
    FAIL_IF_ARMED(ARENA_SYS_USERFAULTFD, -1);
    return (int)syscall(SYS_userfaultfd, flags);
}

int arena__os_ioctl(int fd, unsigned long req, void *arg)
{
    FAIL_IF_ARMED(ARENA_SYS_IOCTL, -1);
    return ioctl(fd, req, arg);
}

int arena__os_madvise(void *addr, size_t len, int advice)
{
    FAIL_IF_ARMED(ARENA_SYS_MADVISE, -1);
    return madvise(addr, len, advice);
}

void arena__os_close(int fd)
{
    if (fd >= 0) {
        int saved = errno;
        close(fd);
        errno = saved;
    }
}

/* ---------------------------------------------------------- address space -- */
void *arena__os_reserve(size_t len, size_t align)
{
    if (len == 0 || align == 0 || (align & (align - 1)) || len + align < len) {
        errno = EINVAL;
        return NULL;
    }
    size_t page = arena__os_page();
    if (align < page)
        align = page;
    len = (len + page - 1) & ~(page - 1);
    /* Over-reserve, then give back the unaligned head and the tail: the reservation
     * stays ours, nothing is committed (NORESERVE, PROT_NONE). */
    size_t span = len + align - page;
    char *raw = arena__os_mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw == MAP_FAILED)
        return NULL;
    char *start = (char *)(((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1));
    if (start > raw)
        munmap(raw, (size_t)(start - raw));
    char *end = start + len;
    if (raw + span > end)
        munmap(end, (size_t)(raw + span - end));
    return start;
}

int arena__os_unreserve_to_none(void *addr, size_t len)
{
    void *p = arena__os_mmap(addr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
    return p == MAP_FAILED ? -1 : 0;
}

/* ------------------------------------------------------------------ queries -- */
size_t arena__os_page(void)
{
    static _Atomic size_t cached;
    size_t p = atomic_load_explicit(&cached, memory_order_relaxed);
    if (p == 0) {
        long r = sysconf(_SC_PAGESIZE);
        p = r > 0 ? (size_t)r : 4096;
        atomic_store_explicit(&cached, p, memory_order_relaxed);
    }
    return p;
}

unsigned long long arena__os_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

/* Plain open/read: these are queries of /proc and /sys, not state the library changes, so
 * fault injection does not apply to them. */
ssize_t arena__os_read_small(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t got = 0;
    while (got + 1 < cap) {
        ssize_t r = read(fd, buf + got, cap - 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    buf[got] = '\0';
    return (ssize_t)got;
}

size_t arena__os_max_map_count(void)
{
    char buf[64];
    if (arena__os_read_small("/proc/sys/vm/max_map_count", buf, sizeof buf) <= 0)
        return 65530;
    unsigned long v = strtoul(buf, NULL, 10);
    return v ? (size_t)v : 65530;
}

size_t arena__os_count_maps(void)
{
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    char buf[8192];
    size_t lines = 0;
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        for (ssize_t i = 0; i < r; i++)
            lines += buf[i] == '\n';
    }
    close(fd);
    return lines;
}

int arena__os_mincore(void *addr, size_t len, unsigned char *vec)
{
    return mincore(addr, len, vec);
}

size_t arena__os_file_bytes(int fd)
{
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        return 0;
    return (size_t)st.st_blocks * 512;
}

int arena__os_pipe(int fds[2])
{
    return pipe2(fds, O_CLOEXEC);
}

ssize_t arena__os_read(int fd, void *buf, size_t len)
{
    ssize_t r;
    do
        r = read(fd, buf, len);
    while (r < 0 && errno == EINTR);
    return r;
}

int arena__os_prot(int prot)
{
    return ((prot & ARENA_PROT_READ) ? PROT_READ : 0) | ((prot & ARENA_PROT_WRITE) ? PROT_WRITE : 0) |
           ((prot & ARENA_PROT_EXEC) ? PROT_EXEC : 0);
}
