/*
 * move.c -- the primitives that change what a virtual range shows (docs/design.md §5).
 *
 * Each works on whole arena pages of one view. view.c decides which to use, keeps the
 * slot table and the VMA count, and undoes earlier steps when a later one fails; a
 * primitive only promises to leave its own range as it was when it fails before
 * changing anything, which the kernel guarantees for a single mmap / mremap / remap.
 *
 * R5.6  remap_file_pages only on a range that is already a shared file mapping of the
 *       same protection (the kernel requires it); view.c establishes other ranges with
 *       MAP_FIXED. A private view refuses it (ARENA_EPRIVATE).
 * R5.7  Empty slots are a PROT_NONE anonymous reservation, never a hole: another thread's
 *       mmap could otherwise land inside a view.
 * R5.8  mremap moves page tables (no refault) with MREMAP_DONTUNMAP, so the source is never
 *       a hole either; it is put back to PROT_NONE afterwards. Overlapping source and
 *       target go through a scratch reservation.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

static int err_or(int fallback)
{
    return errno ? errno : fallback;
}

int arena__move_map(const struct arena__move_ctx *c, char *addr, size_t file_page, size_t npages, int prot,
                    int mover)
{
    size_t len = npages * c->page_size;
    off_t off = (off_t)(file_page * c->page_size);
    if (mover == ARENA_MOVE_REMAP_FILE_PAGES) {
        if (c->map_flags & MAP_PRIVATE)
            return ARENA_EPRIVATE;
        errno = 0;
        if (arena__os_remap_file_pages(addr, len, (size_t)off / arena__os_page()) == 0)
            return 0;
        return err_or(EINVAL);
    }
    errno = 0;
    void *p = arena__os_mmap(addr, len, arena__prot_os(prot), c->map_flags | MAP_FIXED, c->fd, off);
    return p == MAP_FAILED ? err_or(ENOMEM) : 0;
}

int arena__move_unmap(const struct arena__move_ctx *c, char *addr, size_t npages)
{
    errno = 0;
    return arena__os_unreserve_to_none(addr, npages * c->page_size) < 0 ? err_or(ENOMEM) : 0;
}

static int mremap_dontunmap(char *dst, char *src, size_t len)
{
    errno = 0;
    void *p = arena__os_mremap(src, len, len, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, dst);
    return p == MAP_FAILED ? err_or(EINVAL) : 0;
}

/* dst shows what src showed; src (where it does not overlap dst) shows nothing. */
int arena__move_mremap(const struct arena__move_ctx *c, char *dst, char *src, size_t npages)
{
    if (!arena__move_have_dontunmap())
        return ARENA_ENOTSUP;
    size_t len = npages * c->page_size;
    if (dst == src)
        return 0;
    bool overlap = dst < src + len && src < dst + len;
    int err;
    if (!overlap) {
        err = mremap_dontunmap(dst, src, len);
        if (err)
            return err;
        return arena__move_unmap(c, src, npages);
    }
    char *scratch = arena__os_reserve(len, arena__os_page());
    if (!scratch)
        return err_or(ENOMEM);
    /* When the second step fails, src still maps the same file pages (DONTUNMAP): it is
     * as it was, minus page tables. */
    err = mremap_dontunmap(scratch, src, len);
    if (!err)
        err = mremap_dontunmap(dst, scratch, len);
    if (!err) {
        /* The part of src that dst does not cover goes back to the reservation. If that is
         * refused the move has still happened (part of src now shows dst's pages, it cannot
         * be "as it was"): report success; the leftover keeps showing old file pages until
         * the slots are mapped again (R9.6). */
        char *lo = src < dst ? src : dst + len;
        size_t left = src < dst ? (size_t)(dst - src) : (size_t)(src - dst);
        (void)arena__move_unmap(c, lo, left / c->page_size);
    }
    arena__os_munmap(scratch, len);
    return err;
}

/* Probe once: MREMAP_DONTUNMAP on a shared file mapping (Linux 5.13 and later). */
bool arena__move_have_dontunmap(void)
{
    static _Atomic int known; /* 0 unknown, 1 yes, 2 no */
    int k = atomic_load(&known);
    if (k)
        return k == 1;
    size_t page = arena__os_page();
    int fd = arena__os_memfd_create("arena-probe", MFD_CLOEXEC);
    bool ok = false;
    if (fd >= 0 && arena__os_ftruncate(fd, (off_t)page) == 0) {
        char *src = arena__os_mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        char *dst = arena__os_reserve(page, page);
        if (src != MAP_FAILED && dst) {
            ok = mremap_dontunmap(dst, src, page) == 0;
            arena__os_munmap(src, page);
            arena__os_munmap(dst, page);
        } else {
            if (src != MAP_FAILED)
                arena__os_munmap(src, page);
            if (dst)
                arena__os_munmap(dst, page);
        }
    }
    arena__os_close(fd);
    atomic_store(&known, ok ? 1 : 2);
    return ok;
}

/* Copy npages file pages from..  into to.. through temporary shared mappings (so the
 * copy neither faults on a tracked or protected view nor counts as a write to it). */
int arena__move_copy_file(const struct arena__move_ctx *c, size_t to, size_t from, size_t npages)
{
    size_t len = npages * c->page_size;
    errno = 0;
    /* MAP_POPULATE: one batched fault-in instead of a fault per page (4-10x faster here). */
    char *src = arena__os_mmap(NULL, len, PROT_READ, MAP_SHARED | MAP_POPULATE, c->fd, (off_t)(from * c->page_size));
    if (src == MAP_FAILED)
        return err_or(ENOMEM);
    char *dst = arena__os_mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, c->fd,
                               (off_t)(to * c->page_size));
    if (dst == MAP_FAILED) {
        int err = err_or(ENOMEM);
        arena__os_munmap(src, len);
        return err;
    }
    memcpy(dst, src, len);
    arena__os_munmap(dst, len);
    arena__os_munmap(src, len);
    return 0;
}
