/*
 * map.c -- every mapping of the backing file (docs/design.md §5): map a run, unmap, mremap,
 * temporary windows and copies, re-backing copies; the lazily committed tables; the VMA
 * budget; the copy/remap break-even.
 *
 * Layer 2 (docs/design.md §2): calls backing.c and os.c only.
 *
 * .req.map.remap-shared-only  remap_file_pages only on a range that is already a shared file mapping of the
 *       same protection (the kernel requires it); view.c establishes other ranges with
 *       MAP_FIXED. A private view refuses it (ARENA_EPRIVATE).
 * .req.map.no-holes  Empty slots are a PROT_NONE anonymous reservation, never a hole: another thread's
 *       mmap could otherwise land inside a view.
 * .req.map.mremap-keeps-tables  mremap moves page tables (no refault) with MREMAP_DONTUNMAP, so the source is never
 *       a hole either; it is put back to PROT_NONE afterwards. Overlapping source and
 *       target go through a scratch reservation.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "map.h"

#include "os.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

/* errno left 0 by a failed call (a fault-injected one may): say what it means. */
static void errno_or(int fallback)
{
    if (errno <= 0)
        errno = fallback;
}

int arena__map_run(const struct arena__backing *b, char *addr, size_t file_page, size_t npages, int prot,
                   int mover, bool priv)
{
    size_t ps = arena__backing_page_size(b), len = npages * ps;
    off_t off = (off_t)(file_page * ps);
    if (mover == ARENA_MOVE_REMAP_FILE_PAGES) {
        if (priv)
            return ARENA_EPRIVATE;
        errno = 0;
        if (arena__os_remap_file_pages(addr, len, (size_t)off / arena__os_page()) == 0)
            return 0;
        return arena__os_error(ARENA_EINVAL);
    }
    errno = 0;
    void *p = arena__os_mmap(addr, len, arena__os_prot(prot), (priv ? MAP_PRIVATE : MAP_SHARED) | MAP_FIXED,
                             arena__backing_fd(b), off);
    return p == MAP_FAILED ? arena__os_error(ARENA_ENOMEM) : 0;
}

int arena__map_unmap(const struct arena__backing *b, char *addr, size_t npages)
{
    errno = 0;
    size_t len = npages * arena__backing_page_size(b);
    return arena__os_unreserve_to_none(addr, len) < 0 ? arena__os_error(ARENA_ENOMEM) : 0;
}

/* Only for an undo, which must free before it maps: at the process's mapping limit the
 * kernel refuses every mmap (even one that would lower the count) but not an munmap that
 * splits nothing. The caller maps the range again at once (a short gap in .req.map.no-holes). */
int arena__map_release(char *addr, size_t len)
{
    errno = 0;
    return arena__os_munmap(addr, len) < 0 ? arena__os_error(ARENA_ENOMEM) : 0;
}

static int mremap_dontunmap(char *dst, char *src, size_t len)
{
    errno = 0;
    void *p = arena__os_mremap(src, len, len, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, dst);
    return p == MAP_FAILED ? arena__os_error(ARENA_EINVAL) : 0;
}

/* dst shows what src showed; src (where it does not overlap dst) shows nothing. */
int arena__map_mremap(const struct arena__backing *b, char *dst, char *src, size_t npages)
{
    if (!arena__map_have_dontunmap())
        return ARENA_ENOTSUP;
    size_t ps = arena__backing_page_size(b), len = npages * ps;
    if (dst == src)
        return 0;
    bool overlap = dst < src + len && src < dst + len;
    int err;
    if (!overlap) {
        err = mremap_dontunmap(dst, src, len);
        if (err)
            return err;
        return arena__map_unmap(b, src, npages);
    }
    char *scratch = arena__os_reserve(len, arena__os_page());
    if (!scratch)
        return arena__os_error(ARENA_ENOMEM);
    /* When the second step fails, src still maps the same file pages (DONTUNMAP): it is
     * as it was, minus page tables. */
    err = mremap_dontunmap(scratch, src, len);
    if (!err)
        err = mremap_dontunmap(dst, scratch, len);
    if (!err) {
        /* The part of src that dst does not cover goes back to the reservation. If that is
         * refused the move has still happened (part of src now shows dst's pages, it cannot
         * be "as it was"): report success; the leftover keeps showing old file pages until
         * the slots are mapped again (.req.fault.no-data-loss). */
        char *lo = src < dst ? src : dst + len;
        size_t left = src < dst ? (size_t)(dst - src) : (size_t)(src - dst);
        (void)arena__map_unmap(b, lo, left / ps);
    }
    arena__os_munmap(scratch, len);
    return err;
}

/* a and b trade what they show by three page-table moves through a scratch reservation:
 * no page table is torn down (mremap onto a range with resident page tables zaps them,
 * which costs an order of magnitude more than moving them). A failure before b's pages
 * reach a leaves both as they were (minus page tables: DONTUNMAP keeps the mappings);
 * a failure of the last step leaves the move done and b showing nothing (*swapped false). */
int arena__map_swap(const struct arena__backing *b, char *a_addr, char *b_addr, size_t npages, bool *swapped)
{
    *swapped = false;
    if (!arena__map_have_dontunmap())
        return ARENA_ENOTSUP;
    size_t len = npages * arena__backing_page_size(b);
    char *scratch = arena__os_reserve(len, arena__os_page());
    if (!scratch)
        return arena__os_error(ARENA_ENOMEM);
    int err = mremap_dontunmap(scratch, a_addr, len);
    if (!err)
        err = mremap_dontunmap(a_addr, b_addr, len);
    if (!err) {
        *swapped = mremap_dontunmap(b_addr, scratch, len) == 0;
        if (!*swapped) /* b keeps showing its old pages until the slots are mapped again (.req.fault.no-data-loss) */
            (void)arena__map_unmap(b, b_addr, npages);
    }
    arena__os_munmap(scratch, len);
    return err;
}

/* Probe once: MREMAP_DONTUNMAP on a shared file mapping (Linux 5.13 and later). */
bool arena__map_have_dontunmap(void)
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

int arena__map_protect(char *addr, size_t len, int prot)
{
    errno = 0;
    return arena__os_mprotect(addr, len, arena__os_prot(prot)) < 0 ? arena__os_error(ARENA_EINVAL) : 0;
}

void arena__map_populate(char *addr, size_t len)
{
    /* Only advice: an older kernel (EINVAL) or a refusal leaves the pages to fault in. */
    (void)arena__os_madvise(addr, len, MADV_POPULATE_WRITE);
}

/* ------------------------------------------------------- windows and copies ---- */

/* A temporary shared mapping of bytes [off, off+len) of fd. MAP_POPULATE: one batched
 * fault-in instead of a fault per page. NULL with errno on failure. */
static char *window(int fd, size_t off, size_t len, int prot)
{
    errno = 0;
    void *p = arena__os_mmap(NULL, len, prot, MAP_SHARED | MAP_POPULATE, fd, (off_t)off);
    if (p == MAP_FAILED) {
        errno_or(ENOMEM);
        return NULL;
    }
    return p;
}

char *arena__map_window(const struct arena__backing *b, size_t first, size_t npages)
{
    size_t ps = arena__backing_page_size(b);
    return window(arena__backing_fd(b), first * ps, npages * ps, PROT_READ | PROT_WRITE);
}

void arena__map_window_close(const struct arena__backing *b, char *w, size_t npages)
{
    if (w && npages)
        arena__os_munmap(w, npages * arena__backing_page_size(b));
}

/* The one "map two windows and memcpy": len bytes of from_fd at from_off into to_fd at
 * to_off. */
static int copy_fd(int to_fd, size_t to_off, int from_fd, size_t from_off, size_t len)
{
    char *src = window(from_fd, from_off, len, PROT_READ);
    if (!src)
        return arena__os_error(ARENA_EIO);
    char *dst = window(to_fd, to_off, len, PROT_READ | PROT_WRITE);
    if (!dst) {
        int err = arena__os_error(ARENA_EIO);
        arena__os_munmap(src, len);
        return err;
    }
    memcpy(dst, src, len);
    arena__os_munmap(dst, len);
    arena__os_munmap(src, len);
    return 0;
}

int arena__map_copy(const struct arena__backing *b, size_t to, size_t from, size_t npages)
{
    size_t ps = arena__backing_page_size(b);
    int fd = arena__backing_fd(b);
    return copy_fd(fd, to * ps, fd, from * ps, npages * ps);
}

/* Copies of a whole file go in pieces of this many bytes at most: bounds the page tables
 * and the address space the two windows take at once. */
#define COPY_PIECE ((size_t)16 << 20)

int arena__map_copy_to_twin(const struct arena__backing *twin, const struct arena__backing *b)
{
    size_t ps = arena__backing_page_size(b), first = 0, n;
    size_t piece = COPY_PIECE / ps ? COPY_PIECE / ps : 1;
    for (size_t from = 0; (n = arena__backing_next_used(b, from, &first)) != 0; from = first + n) {
        for (size_t done = 0; done < n; done += piece) {
            size_t k = n - done < piece ? n - done : piece;
            int err = copy_fd(arena__backing_fd(twin), (first + done) * ps, arena__backing_fd(b),
                              (first + done) * ps, k * ps);
            if (err)
                return err;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------- tables ---- */

void *arena__map_table(size_t len)
{
    errno = 0;
    void *p = arena__os_mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        errno_or(ENOMEM);
        return NULL;
    }
    return p;
}

int arena__map_table_free(void *p, size_t len)
{
    errno = 0;
    return arena__os_munmap(p, len) < 0 ? arena__os_error(ARENA_EINVAL) : 0;
}

/* ---------------------------------------------------------------- VMA budget ---- */

/* A safe share of vm.max_map_count (.req.map.vma-budget): half of what the process has not
 * used yet, so the runtime and its libraries keep the other half. */
static size_t default_limit(size_t max, size_t used)
{
    size_t budget = used < max ? (max - used) / 2 : 0;
    return budget < 64 ? 64 : budget;
}

/* Mappings left free below vm.max_map_count whatever the configured budget, as a margin for
 * the runtime's own mappings (.req.map.vma-budget). Undos do not rely on it: they free before they map
 * (view.c, .req.view.undo-frees-first), since the process may use this margin up later. */
#define ROLLBACK_HEADROOM 512

/* .req.map.process-budget: every arena of the process also draws from one process-wide budget. Its limit is
 * set by the first arena (half of what vm.max_map_count leaves then, as for one arena) and
 * raised only by an arena configured with a larger budget of its own (clamped as above).
 * Without it each default arena took half of what was left, and five of them all of it. */
static _Atomic size_t process_used;
static _Atomic size_t process_limit;

static void process_limit_raise(size_t at_least)
{
    size_t cur = atomic_load(&process_limit);
    while (cur < at_least && !atomic_compare_exchange_weak(&process_limit, &cur, at_least))
        ;
}

size_t arena__budget_limit_for(size_t configured)
{
    /* One read of each: /proc/self/maps costs a file walk. */
    size_t max = arena__os_max_map_count(), used = arena__os_count_maps();
    size_t room = used + ROLLBACK_HEADROOM < max ? max - used - ROLLBACK_HEADROOM : 64;
    size_t shared = atomic_load(&process_used) + default_limit(max, used);
    process_limit_raise(shared < room ? shared : room);
    size_t budget = configured ? configured : atomic_load(&process_limit);
    budget = budget > room ? room : budget;
    process_limit_raise(budget);
    return budget;
}

void arena__budget_init(struct arena__budget *bu, size_t limit)
{
    bu->limit = limit;
    atomic_store(&bu->used, 0);
}

size_t arena__budget_used(const struct arena__budget *bu)
{
    return atomic_load(&((struct arena__budget *)bu)->used);
}

size_t arena__budget_limit(const struct arena__budget *bu)
{
    return bu->limit;
}

size_t arena__budget_process_used(void)
{
    return atomic_load(&process_used);
}

size_t arena__budget_process_limit(void)
{
    return atomic_load(&process_limit);
}

size_t arena__budget_room(const struct arena__budget *bu)
{
    size_t now = arena__budget_used(bu), all = atomic_load(&process_used), lim = atomic_load(&process_limit);
    size_t mine = bu->limit > now ? bu->limit - now : 0, shared = lim > all ? lim - all : 0;
    return mine < shared ? mine : shared;
}

int arena__budget_check(const struct arena__budget *bu, size_t extra)
{
    return extra > arena__budget_room(bu) ? ARENA_EVMA : 0;
}

/* Atomics only: the SIGSEGV tracker's handler calls it. */
void arena__budget_change(struct arena__budget *bu, size_t from, size_t to)
{
    if (to >= from) {
        atomic_fetch_add(&bu->used, to - from);
        atomic_fetch_add(&process_used, to - from);
    } else {
        atomic_fetch_sub(&bu->used, from - to);
        atomic_fetch_sub(&process_used, from - to);
    }
}

/* ------------------------------------------------------ copy/remap break-even ---- */
#define CALIB_MAX_PAGES 64
#define CALIB_ROUNDS 2

static _Atomic size_t calibrated_copy_below;

/* Best of CALIB_ROUNDS: copying k pages vs mapping a k-page file run with MAP_FIXED
 * and touching every page once (the refault is part of the price of a remap). */
static void time_k(char *src, char *dst, int fd, size_t k, size_t page, uint64_t *copy_ns, uint64_t *remap_ns)
{
    uint64_t best_copy = UINT64_MAX, best_remap = UINT64_MAX;
    for (int r = 0; r < CALIB_ROUNDS; r++) {
        memcpy(dst, src, k * page); /* fault the target in: time the copy alone */
        uint64_t t0 = arena__os_now_ns();
        memcpy(dst, src, k * page);
        uint64_t t1 = arena__os_now_ns();
        void *m = arena__os_mmap(dst, k * page, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd,
                                 (off_t)(((size_t)r % 2) * CALIB_MAX_PAGES * page));
        volatile char sink = 0;
        if (m != MAP_FAILED)
            for (size_t i = 0; i < k; i++)
                sink ^= ((volatile char *)dst)[i * page];
        (void)sink;
        uint64_t t2 = arena__os_now_ns();
        if (m == MAP_FAILED)
            return;
        best_copy = t1 - t0 < best_copy ? t1 - t0 : best_copy;
        best_remap = t2 - t1 < best_remap ? t2 - t1 : best_remap;
    }
    *copy_ns = best_copy;
    *remap_ns = best_remap;
}

/* The smallest run length (OS pages, among 1, 4, 16, 64) for which remapping beat copying
 * here; CALIB_MAX_PAGES when copying always won or nothing could be measured. Runs once
 * per process, on a scratch memfd of its own. */
static size_t calibrate(size_t page)
{
    size_t result = CALIB_MAX_PAGES;
    size_t len = 2 * CALIB_MAX_PAGES * page;
    int fd = arena__os_memfd_create("arena-calibrate", MFD_CLOEXEC);
    if (fd < 0)
        return result;
    char *src = NULL, *dst = NULL;
    if (arena__os_ftruncate(fd, (off_t)len) < 0 || arena__os_fallocate(fd, 0, 0, (off_t)len) < 0)
        goto out;
    src = window(fd, 0, len, PROT_READ | PROT_WRITE);
    dst = window(fd, 0, len, PROT_READ | PROT_WRITE);
    if (!src || !dst)
        goto out;
    memset(src + CALIB_MAX_PAGES * page, 1, CALIB_MAX_PAGES * page);
    for (size_t k = 1; k <= CALIB_MAX_PAGES; k *= 4) {
        uint64_t copy_ns = 0, remap_ns = UINT64_MAX;
        time_k(src + CALIB_MAX_PAGES * page, dst, fd, k, page, &copy_ns, &remap_ns);
        if (remap_ns < copy_ns) {
            result = k;
            break;
        }
    }
out:
    if (src)
        arena__os_munmap(src, len);
    if (dst)
        arena__os_munmap(dst, len);
    arena__os_close(fd);
    return result;
}

size_t arena__map_copy_below(size_t configured, size_t page_size)
{
    if (configured)
        return configured;
    size_t os_pages = atomic_load_explicit(&calibrated_copy_below, memory_order_acquire);
    if (os_pages == 0) {
        os_pages = calibrate(arena__os_page());
        size_t expected = 0;
        if (!atomic_compare_exchange_strong(&calibrated_copy_below, &expected, os_pages))
            os_pages = expected;
    }
    size_t per_page = page_size / arena__os_page();
    return os_pages / per_page ? os_pages / per_page : 1;
}
