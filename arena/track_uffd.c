/*
 * track_uffd.c -- the userfaultfd tracking backend (docs/design.md §8, .req.track.uffd).
 *
 * The view's range is registered with a userfaultfd in write-protect mode with
 * UFFD_FEATURE_WP_ASYNC: a write to a protected page is let through by the kernel itself,
 * which only records it in the page table (no signal, no VMA split). PAGEMAP_SCAN on
 * /proc/self/pagemap then lists the written pages and write-protects them again in the
 * same call (PM_SCAN_WP_MATCHING). Needs Linux 6.7; detected at run time.
 *
 * Debian 12's kernel headers predate both interfaces, so the definitions are repeated here
 * from the kernel's UAPI (include/uapi/linux/userfaultfd.h and fs.h) when missing.
 *
 * Tracking layer, below track.c (docs/design.md §2): calls view.c, map.c and os.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "track_impl.h"

#ifndef UFFD_FEATURE_WP_HUGETLBFS_SHMEM
#define UFFD_FEATURE_WP_HUGETLBFS_SHMEM (1 << 12)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif

#ifndef PAGEMAP_SCAN
#define PAGE_IS_WPALLOWED (1 << 0)
#define PAGE_IS_WRITTEN (1 << 1)
struct page_region {
    __u64 start;
    __u64 end;
    __u64 categories;
};
struct pm_scan_arg {
    __u64 size;
    __u64 flags;
    __u64 start;
    __u64 end;
    __u64 walk_end;
    __u64 vec;
    __u64 vec_len;
    __u64 max_pages;
    __u64 category_inverted;
    __u64 category_mask;
    __u64 category_anyof_mask;
    __u64 return_mask;
};
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#define PM_SCAN_WP_MATCHING (1 << 0)
#define PM_SCAN_CHECK_WPASYNC (1 << 1)
#endif

#define FEATURES (UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_HUGETLBFS_SHMEM)

/* A userfaultfd with the async write-protect API, or -1 with errno. Unprivileged
 * processes may only have one that handles user-mode faults (vm.unprivileged_userfaultfd). */
static int open_uffd(void)
{
    int fd = arena__os_userfaultfd(O_CLOEXEC | O_NONBLOCK);
    if (fd < 0 && errno == EPERM)
        fd = arena__os_userfaultfd(O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
    if (fd < 0)
        return -1;
    struct uffdio_api api;
    memset(&api, 0, sizeof api);
    api.api = UFFD_API;
    api.features = FEATURES;
    if (arena__os_ioctl(fd, UFFDIO_API, &api) != 0 || (api.features & FEATURES) != FEATURES) {
        int err = errno ? errno : ENOTSUP;
        arena__os_close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

static int scan(int pagemap, struct pm_scan_arg *arg)
{
    return arena__os_ioctl(pagemap, PAGEMAP_SCAN, arg);
}

/* 0: not known yet, 1: available, 2: not. A probe that failed for want of resources
 * (memory, descriptors) says nothing about the kernel: it is repeated next time. Two
 * threads probing at once both find the same. */
static _Atomic int probed;

static bool transient(int err)
{
    return err == ENOMEM || err == EAGAIN || err == EMFILE || err == ENFILE || err == EINTR;
}

static int probe(void)
{
    int fd = open_uffd();
    if (fd < 0)
        return transient(errno) ? 0 : 2;
    int result = 2;
    int pm = arena__os_open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC, 0);
    if (pm >= 0) {
        struct pm_scan_arg arg;
        memset(&arg, 0, sizeof arg);
        arg.size = sizeof arg;
        arg.start = arg.end = (__u64)arena__os_page();
        result = scan(pm, &arg) >= 0 ? 1 : transient(errno) ? 0 : 2;
        arena__os_close(pm);
    } else if (transient(errno)) {
        result = 0;
    }
    arena__os_close(fd);
    return result;
}

bool arena__tuffd_available(void)
{
    int known = atomic_load(&probed);
    if (known == 0) {
        known = probe();
        if (known != 0)
            atomic_store(&probed, known);
    }
    return known == 1;
}

static int range_ioctl(struct arena__track *t, unsigned long req, size_t slot, size_t n, __u64 mode)
{
    if (req == UFFDIO_REGISTER) {
        struct uffdio_register r;
        memset(&r, 0, sizeof r);
        r.range.start = (__u64)(uintptr_t)(t->base + (slot << t->shift));
        r.range.len = (__u64)n << t->shift;
        r.mode = mode;
        return arena__os_ioctl(t->uffd, req, &r);
    }
    if (req == UFFDIO_WRITEPROTECT) {
        struct uffdio_writeprotect w;
        memset(&w, 0, sizeof w);
        w.range.start = (__u64)(uintptr_t)(t->base + (slot << t->shift));
        w.range.len = (__u64)n << t->shift;
        w.mode = mode;
        return arena__os_ioctl(t->uffd, req, &w);
    }
    struct uffdio_range r;
    r.start = (__u64)(uintptr_t)(t->base + (slot << t->shift));
    r.len = (__u64)n << t->shift;
    return arena__os_ioctl(t->uffd, req, &r);
}

/* The next maximal run of mapped slots in [*s, end): [*run, *s). False when none is left.
 * Only mapped runs are handed to the kernel: an empty slot is an anonymous PROT_NONE
 * reservation, which the userfaultfd ioctls and PAGEMAP_SCAN's WP checks refuse. */
static bool next_mapped_run(const struct arena__track *t, size_t *s, size_t end, size_t *run)
{
    while (*s < end && !arena__track_slot_mapped(t, *s))
        (*s)++;
    if (*s >= end)
        return false;
    *run = *s;
    while (*s < end && arena__track_slot_mapped(t, *s))
        (*s)++;
    return true;
}

/* Register (idempotent for the same context: new mappings replaced the registered ones)
 * and write-protect the mapped runs of [slot, slot+n). */
int arena__tuffd_arm(struct arena__track *t, size_t slot, size_t n)
{
    size_t s = slot, end = slot + n, run;
    while (next_mapped_run(t, &s, end, &run)) {
        if (range_ioctl(t, UFFDIO_WRITEPROTECT, run, s - run, UFFDIO_WRITEPROTECT_MODE_WP) == 0)
            continue;
        if (range_ioctl(t, UFFDIO_REGISTER, run, s - run, UFFDIO_REGISTER_MODE_WP) != 0 ||
            range_ioctl(t, UFFDIO_WRITEPROTECT, run, s - run, UFFDIO_WRITEPROTECT_MODE_WP) != 0)
            return arena__os_error(ARENA_EIO);
    }
    return 0;
}

static void unregister_all(struct arena__track *t)
{
    size_t s = 0, end = arena__view_used_end(t->view), run;
    while (next_mapped_run(t, &s, end, &run))
        range_ioctl(t, UFFDIO_UNREGISTER, run, s - run, 0);
}

void arena__tuffd_detach(struct arena__track *t)
{
    if (t->uffd >= 0) {
        unregister_all(t);
        arena__os_close(t->uffd);
    }
    if (t->pagemap >= 0)
        arena__os_close(t->pagemap);
    t->uffd = t->pagemap = -1;
}

int arena__tuffd_attach(struct arena__track *t)
{
    t->pagemap = -1;
    t->uffd = open_uffd();
    if (t->uffd < 0)
        return arena__os_error(ARENA_ENOTSUP);
    t->pagemap = arena__os_open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC, 0);
    int err = t->pagemap < 0 ? arena__os_error(ARENA_EIO) : arena__tuffd_arm(t, 0, arena__view_used_end(t->view));
    if (err != 0) {
        arena__tuffd_detach(t);
        return err;
    }
    return 0;
}

/* Scan [slot, end) of the view; each region found calls add(). WP re-protects them. */
static int scan_runs(struct arena__track *t, size_t slot, size_t end, bool wp, size_t limit,
                     void (*add)(struct arena__track *, size_t, void *), void *ctx)
{
    struct page_region regs[64];
    size_t found = 0;
    size_t s = slot, run;
    while (found < limit && next_mapped_run(t, &s, end, &run)) {
        struct pm_scan_arg arg;
        memset(&arg, 0, sizeof arg);
        arg.size = sizeof arg;
        arg.flags = PM_SCAN_CHECK_WPASYNC | (wp ? PM_SCAN_WP_MATCHING : 0);
        arg.start = (__u64)(uintptr_t)(t->base + (run << t->shift));
        arg.end = (__u64)(uintptr_t)(t->base + (s << t->shift));
        arg.vec = (__u64)(uintptr_t)regs;
        arg.vec_len = sizeof regs / sizeof regs[0];
        arg.category_mask = PAGE_IS_WRITTEN;
        arg.return_mask = PAGE_IS_WRITTEN;
        while (arg.start < arg.end && found < limit) {
            /* Counted in OS pages: a limit in arena pages is never exceeded. */
            arg.max_pages = limit - found;
            int r = scan(t->pagemap, &arg);
            if (r < 0)
                return arena__os_error(ARENA_EIO);
            for (int i = 0; i < r; i++) {
                size_t first = (size_t)((char *)(uintptr_t)regs[i].start - t->base) >> t->shift;
                size_t last = (size_t)((char *)(uintptr_t)regs[i].end - 1 - t->base) >> t->shift;
                for (size_t p = first; p <= last && found < limit; p++) {
                    add(t, p, ctx);
                    found++;
                }
            }
            arg.start = arg.walk_end;
        }
    }
    return 0;
}

struct collect {
    void **pages;
    size_t n;
};

static void add_page(struct arena__track *t, size_t slot, void *ctx)
{
    struct collect *c = ctx;
    char *addr = t->base + (slot << t->shift);
    if (c->n > 0 && c->pages[c->n - 1] == addr)
        return; /* several OS pages of one arena page */
    c->pages[c->n++] = addr;
}

int arena__tuffd_scan(struct arena__track *t, void **pages, size_t max, size_t *count)
{
    struct collect c = {pages, 0};
    size_t end = arena__view_used_end(t->view);
    int err = scan_runs(t, 0, end, true, max, add_page, &c);
    *count = c.n;
    return err;
}

/* The next run [*run, *s) of slots set in scope (words of bits from slot 0) below end;
 * false when none is left. */
static bool next_scope_run(const uint64_t *scope, size_t words, size_t *s, size_t end, size_t *run)
{
    if (end > words * 64)
        end = words * 64;
    while (*s < end) {
        uint64_t w = scope[*s >> 6] >> (*s & 63);
        if (w == 0) {
            *s = (*s | 63) + 1;
            continue;
        }
        *s += (size_t)__builtin_ctzll(w);
        break;
    }
    if (*s >= end)
        return false;
    *run = *s;
    while (*s < end && ((scope[*s >> 6] >> (*s & 63)) & 1))
        (*s)++;
    return true;
}

/* Scan only the runs of slots set in scope, write-protecting what they report in the
 * same call (PM_SCAN_WP_MATCHING); the slots in between are not walked at all. */
int arena__tuffd_scan_kept(struct arena__track *t, void **pages, size_t max, size_t *count,
                           const uint64_t *scope, size_t words)
{
    struct collect c = {pages, 0};
    size_t end = arena__view_used_end(t->view), s = 0, run;
    int err = 0;
    while (c.n < max && err == 0 && next_scope_run(scope, words, &s, end, &run))
        err = scan_runs(t, run, s, true, max - c.n, add_page, &c);
    *count = c.n;
    return err;
}

struct bits_ctx {
    uint64_t *bits;
    size_t first;
};

static void add_bit(struct arena__track *t, size_t slot, void *ctx)
{
    (void)t;
    struct bits_ctx *b = ctx;
    size_t i = slot - b->first;
    b->bits[i >> 6] |= (uint64_t)1 << (i & 63);
}

int arena__tuffd_written(struct arena__track *t, size_t slot, size_t n, uint64_t *bits)
{
    struct bits_ctx b = {bits, slot};
    return scan_runs(t, slot, slot + n, false, SIZE_MAX, add_bit, &b);
}

int arena__tuffd_written_kept(struct arena__track *t, uint64_t *bits, const uint64_t *scope,
                              size_t words)
{
    struct bits_ctx b = {bits, 0};
    size_t end = arena__view_used_end(t->view), s = 0, run;
    int err = 0;
    while (err == 0 && next_scope_run(scope, words, &s, end, &run))
        err = scan_runs(t, run, s, false, SIZE_MAX, add_bit, &b);
    return err;
}
