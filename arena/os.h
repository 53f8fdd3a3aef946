/*
 * os.h -- the thin OS layer: every system call the library makes goes through here.
 * Layer 0 (docs/design.md §2): calls the kernel and libc only, no other module.
 *
 * Why: (1) one place to see what the library asks of the kernel; (2) a test build
 * (ARENA_FAULT_INJECTION) can make the Nth call of any of them fail with a chosen
 * errno, which is how the "never lose data" requirement is tested (docs/design.md, .req.fault.no-data-loss).
 * Every wrapper has the calling convention of the system call it wraps (-1 or
 * MAP_FAILED with errno set).
 */
#ifndef ARENA_OS_H
#define ARENA_OS_H

#include <errno.h>
#include <stddef.h>
#include <sys/types.h>

/* The library's error code for the errno a failed call left: -errno (arena.h: every code is
 * negative), or fallback (an ARENA_E* code) when errno is 0. */
static inline int arena__os_error(int fallback)
{
    return errno > 0 ? -errno : fallback;
}

enum arena__sys {
    ARENA_SYS_MEMFD_CREATE = 0,
    ARENA_SYS_OPEN,
    ARENA_SYS_FTRUNCATE,
    ARENA_SYS_FALLOCATE,
    ARENA_SYS_MMAP,
    ARENA_SYS_MUNMAP,
    ARENA_SYS_MREMAP,
    ARENA_SYS_REMAP_FILE_PAGES,
    ARENA_SYS_MPROTECT,
    ARENA_SYS_FCNTL,
    ARENA_SYS_USERFAULTFD,
    ARENA_SYS_IOCTL,
    ARENA_SYS_MADVISE,
    ARENA_SYS_COUNT
};

void *arena__os_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int arena__os_munmap(void *addr, size_t len);
void *arena__os_mremap(void *old, size_t old_len, size_t new_len, int flags, void *new_addr);
int arena__os_mprotect(void *addr, size_t len, int prot);
int arena__os_remap_file_pages(void *addr, size_t len, size_t pgoff);
int arena__os_memfd_create(const char *name, unsigned flags);
int arena__os_open(const char *path, int flags, int mode);
int arena__os_ftruncate(int fd, off_t len);
int arena__os_fallocate(int fd, int mode, off_t off, off_t len);
int arena__os_fcntl(int fd, int cmd, int arg);
int arena__os_userfaultfd(int flags);
int arena__os_ioctl(int fd, unsigned long req, void *arg);
int arena__os_madvise(void *addr, size_t len, int advice);
/* close(2) is not injectable: a failing close cannot be acted on. */
void arena__os_close(int fd);

/* fork.c's parent/child hand-shake: pipe2(O_CLOEXEC) and read(2), retried on EINTR.
 * Not injectable (they run inside atfork handlers, which cannot report errors). */
int arena__os_pipe(int fds[2]);
ssize_t arena__os_read(int fd, void *buf, size_t len);
/* Read a small text file whole into buf (NUL terminated, at most cap - 1 bytes): the bytes
 * read, or -1 with errno set. Never injected (queries of /proc and /sys). */
ssize_t arena__os_read_small(const char *path, char *buf, size_t cap);

/* Reserve len bytes of address space aligned to align (a power of two >= the OS
 * page), PROT_NONE, no memory committed. NULL with errno on failure. */
void *arena__os_reserve(size_t len, size_t align);

/* Put [addr, addr+len) back to the PROT_NONE reservation state (MAP_FIXED anonymous),
 * so the range stays ours and shows nothing. */
int arena__os_unreserve_to_none(void *addr, size_t len);

/* Queries, never injected: mincore(2), and the bytes allocated to a file (st_blocks * 512,
 * 0 when fstat fails). */
int arena__os_mincore(void *addr, size_t len, unsigned char *vec);
size_t arena__os_file_bytes(int fd);

/* ARENA_PROT_* to PROT_*. */
int arena__os_prot(int arena_prot);
/* os_memory.c. Bytes of memory the process may use at most: physical memory plus swap, or
 * the memory cgroup's limit (any ancestor's) where lower; SIZE_MAX when unknown. */
size_t arena__os_memory_limit(void);
/* Bytes still available now under the same limits (MemAvailable + SwapFree, the cgroup's
 * limit minus its usage); SIZE_MAX when unknown. Reads /proc and cgroup files: not cheap. */
size_t arena__os_memory_left(void);

/* The OS page size, cached. */
size_t arena__os_page(void);

/* Monotonic nanoseconds. */
unsigned long long arena__os_now_ns(void);

/* vm.max_map_count, or 65530 when it cannot be read. */
size_t arena__os_max_map_count(void);

/* Mappings the process has now (lines of /proc/self/maps), or 0 when unreadable. */
size_t arena__os_count_maps(void);

#ifdef ARENA_FAULT_INJECTION
/* Test hooks (built only into the fault-injection test library).
 * Make the nth call (1 = the next one) of sys from now fail with err; nth = 0 disarms.
 * Returns the number of calls of sys so far. */
void arena__fault_arm(int sys, unsigned long nth, int err);
void arena__fault_disarm_all(void);
unsigned long arena__fault_calls(int sys);
/* 1 once the armed failure has fired (and disarmed itself). */
int arena__fault_fired(void);
#endif

#endif /* ARENA_OS_H */
