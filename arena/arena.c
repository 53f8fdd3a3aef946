/*
 * arena.c -- the public life cycle: configuration, create / destroy, errors, the file
 * page API, statistics, the VMA budget and the copy/remap break-even (docs/design.md §4).
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static _Atomic uint64_t next_arena_id = 1;

void arena_config_init(arena_config_t *cfg)
{
    if (cfg)
        memset(cfg, 0, sizeof *cfg);
}

const char *arena_strerror(int err)
{
    switch (err) {
    case ARENA_OK: return "success";
    case ARENA_ENULL: return "a required pointer argument is NULL";
    case ARENA_ERANGE: return "a slot, file page or count is out of range";
    case ARENA_EALIGN: return "an address, size or offset is not page aligned";
    case ARENA_ESIZE: return "a size of 0, or larger than the reservation allows";
    case ARENA_ECLOSED: return "the view was closed";
    case ARENA_EFOREIGN: return "the pointer is not inside this arena";
    case ARENA_ENOTOBJ: return "the pointer is not inside a live object";
    case ARENA_EVMA: return "the operation would cross the arena's VMA budget";
    case ARENA_EPRIVATE: return "remap_file_pages cannot work on a private (copy-on-write) view";
    case ARENA_EBUSY: return "already in that state";
    case ARENA_ENOTSUP: return "the kernel or the build lacks what this needs";
    case ARENA_EHEAP: return "the heap's own view cannot be remapped or closed by hand";
    case ARENA_ECONFIG: return "a configuration field has an invalid value";
    case ARENA_ESTATE: return "the call is not valid in the current state";
    case ARENA_EPROT: return "an invalid protection (write and execute together)";
    case ARENA_ENOCOLLECT: return "no memory to start the collection: nothing was collected";
    default: break;
    }
    if (err > 0) {
        /* strerror() may return a buffer another thread overwrites; the common kernel
         * answers get static strings, the rest a generic one. */
        switch (err) {
        case ENOMEM: return "out of memory (or the process mapping limit)";
        case ENOSPC: return "no space left for the backing file";
        case EMFILE: return "too many open files";
        case ENFILE: return "too many open files in the system";
        case EINVAL: return "invalid argument (the kernel refused the request)";
        case EPERM: return "operation not permitted";
        case EACCES: return "permission denied";
        case ENOSYS: return "system call not available";
        case EOPNOTSUPP: return "operation not supported by the file system";
        case EFAULT: return "bad address";
        case EAGAIN: return "resource temporarily unavailable";
        case EBUSY: return "device or resource busy";
        case ENOENT: return "no such file or directory";
        case EEXIST: return "file exists";
        case EFBIG: return "file too large";
        case EIO: return "input/output error";
        default: return "system error";
        }
    }
    return "unknown arena error";
}

/* ------------------------------------------------------------------ config -- */
static int check_config(const arena_config_t *cfg, size_t os_page)
{
    if (cfg->page_size && (cfg->page_size < os_page || (cfg->page_size & (cfg->page_size - 1))))
        return ARENA_ECONFIG;
    if (cfg->backing < ARENA_BACKING_AUTO || cfg->backing > ARENA_BACKING_TMPFILE)
        return ARENA_ECONFIG;
    if (cfg->mover < ARENA_MOVE_AUTO || cfg->mover > ARENA_MOVE_COPY)
        return ARENA_ECONFIG;
    if (cfg->tracker < ARENA_TRACKER_AUTO || cfg->tracker > ARENA_TRACKER_UFFD)
        return ARENA_ECONFIG;
    if (cfg->sparse_percent > 100)
        return ARENA_ECONFIG;
    return 0;
}

/* A safe share of vm.max_map_count (R4.9): half of what the process has not
 * used yet, so the runtime and its libraries keep the other half. */
static size_t default_vma_budget(size_t max, size_t used)
{
    size_t budget = used < max ? (max - used) / 2 : 0;
    return budget < 64 ? 64 : budget;
}

/* Mappings kept free below vm.max_map_count whatever the configured budget: a batch the
 * kernel refuses half-way is rolled back with mmap(MAP_FIXED), and a rollback needs
 * mappings of its own. A budget the kernel cannot honour is clamped to this (R4.9). */
#define ROLLBACK_HEADROOM 512

static size_t clamp_vma_budget(size_t budget, size_t max, size_t used)
{
    size_t room = used + ROLLBACK_HEADROOM < max ? max - used - ROLLBACK_HEADROOM : 64;
    return budget > room ? room : budget;
}

static void fill_defaults(arena_config_t *cfg, size_t os_page)
{
    if (!cfg->page_size)
        cfg->page_size = os_page;
    if (!cfg->reserve)
        cfg->reserve = ARENA__DEFAULT_RESERVE;
    /* Whole 2 MiB units, so the heap view can be placed 2 MiB aligned end to end. */
    cfg->reserve = (cfg->reserve + ARENA__2M - 1) & ~(ARENA__2M - 1);
    if (cfg->reserve < cfg->page_size)
        cfg->reserve = cfg->page_size;
    if (!cfg->sparse_percent)
        cfg->sparse_percent = 75;
    /* R4.7: never more file than the process could ever hold in memory. */
    if (!cfg->max_file)
        cfg->max_file = arena__os_memory_limit();
    /* One read of each: /proc/self/maps costs a file walk per arena_create. */
    size_t max = arena__os_max_map_count(), used = arena__os_count_maps();
    if (!cfg->vma_budget)
        cfg->vma_budget = default_vma_budget(max, used);
    cfg->vma_budget = clamp_vma_budget(cfg->vma_budget, max, used);
}

/* ------------------------------------------------------------- life cycle -- */
int arena_create(arena_t **out, const arena_config_t *cfg_in)
{
    if (!out)
        return ARENA_ENULL;
    *out = NULL;
    arena_config_t cfg;
    if (cfg_in)
        cfg = *cfg_in;
    else
        arena_config_init(&cfg);
    size_t os_page = arena__os_page();
    int err = check_config(&cfg, os_page);
    if (err)
        return err;
    fill_defaults(&cfg, os_page);
    if (cfg.reserve / cfg.page_size >= (size_t)UINT32_MAX)
        return ARENA_ECONFIG; /* slots are counted in 32 bits */

    arena_t *a = calloc(1, sizeof *a);
    if (!a)
        return ENOMEM;
    a->id = atomic_fetch_add(&next_arena_id, 1);
    a->cfg = cfg;
    a->page_size = cfg.page_size;
    a->page_shift = (size_t)__builtin_ctzl(cfg.page_size);
    a->vma_budget = cfg.vma_budget;
    err = pthread_mutex_init(&a->lock, NULL);
    if (err) {
        free(a);
        return err;
    }
    err = arena__backing_open(&a->backing, &cfg, a->page_size);
    if (err)
        goto fail_lock;
    (void)arena__copy_below(a); /* calibrate now, not in the middle of a collection */
    err = arena__heap_init(a);
    if (err)
        goto fail_views;
    err = arena__fork_register(a); /* R9.1 */
    if (err) {
        arena__heap_fini(a);
        goto fail_views;
    }
    *out = a;
    return 0;

fail_views:
    while (a->views)
        arena__view_destroy(a->views);
    arena__backing_close(&a->backing);
fail_lock:
    pthread_mutex_destroy(&a->lock);
    free(a);
    return err;
}

void arena_destroy(arena_t *a)
{
    if (!a)
        return;
    arena__fork_unregister(a);
    arena__track_arena_destroy(a);
    arena__gc_fini(a);
    arena__heap_fini(a);
    while (a->views)
        arena__view_destroy(a->views);
    a->heap_view = NULL;
    arena__backing_close(&a->backing);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

size_t arena_page_size(const arena_t *a)
{
    return a ? a->page_size : 0;
}

/* ------------------------------------------------------------- file pages -- */
int arena_file_alloc(arena_t *a, size_t npages, size_t *first)
{
    if (!a || !first)
        return ARENA_ENULL;
    if (npages == 0)
        return ARENA_ESIZE;
    pthread_mutex_lock(&a->lock);
    int err = arena__backing_alloc(&a->backing, npages, first);
    pthread_mutex_unlock(&a->lock);
    return err;
}

int arena_file_free(arena_t *a, size_t first, size_t npages)
{
    if (!a)
        return ARENA_ENULL;
    if (npages == 0)
        return ARENA_ESIZE;
    pthread_mutex_lock(&a->lock);
    int err = arena__backing_free(&a->backing, first, npages);
    pthread_mutex_unlock(&a->lock);
    return err;
}

/* ------------------------------------------------------------- statistics -- */
/* Resident bytes of slots [0, high) of the heap view, by mincore in bounded chunks. */
static size_t resident_bytes(const arena_view_t *v, size_t page_size)
{
    size_t os_page = arena__os_page(), total = 0;
    size_t len = v->high * page_size;
    unsigned char vec[4096];
    for (size_t off = 0; off < len; off += sizeof vec * os_page) {
        size_t chunk = len - off < sizeof vec * os_page ? len - off : sizeof vec * os_page;
        if (arena__os_mincore(v->base + off, chunk, vec) < 0)
            continue;
        for (size_t i = 0; i < chunk / os_page; i++)
            total += (vec[i] & 1) * os_page;
    }
    return total;
}

int arena_stats(const arena_t *a, arena_stats_t *s)
{
    if (!a || !s)
        return ARENA_ENULL;
    arena_t *m = (arena_t *)a; /* the lock is not part of the logical state */
    memset(s, 0, sizeof *s);
    pthread_mutex_lock(&m->lock);
    s->page_size = a->page_size;
    s->reserve = a->cfg.reserve;
    if (a->heap_view)
        s->resident_bytes = resident_bytes(a->heap_view, a->page_size);
    arena__heap_stats(a, s);
    s->file_bytes = arena__backing_bytes(&a->backing);
    s->file_size = a->backing.file_pages * a->page_size;
    s->max_file = a->backing.max_pages * a->page_size;
    s->vmas = arena__vmas(a);
    s->vma_budget = a->vma_budget;
    for (const arena_view_t *v = a->views; v; v = v->next)
        s->views++;
    s->collections = a->collections;
    s->bytes_remapped = a->bytes_remapped;
    s->bytes_copied = a->bytes_copied;
    s->pages_released = a->pages_released;
    s->track_faults = atomic_load(&m->track_faults);
    s->copy_below = arena__copy_below(m);
    s->backing = a->backing.kind;
    s->mover = a->cfg.mover;
    pthread_mutex_unlock(&m->lock);
    return 0;
}

/* ------------------------------------------------------------- VMA budget -- */
size_t arena__vmas(const arena_t *a)
{
    size_t total = atomic_load(&((arena_t *)a)->track_vmas);
    for (const arena_view_t *v = a->views; v; v = v->next)
        total += v->vmas;
    return total;
}

int arena__vma_check(const arena_t *a, size_t extra)
{
    size_t now = arena__vmas(a);
    return (now + extra < now || now + extra > a->vma_budget) ? ARENA_EVMA : 0;
}

int arena__prot_os(int prot)
{
    return ((prot & ARENA_PROT_READ) ? PROT_READ : 0) | ((prot & ARENA_PROT_WRITE) ? PROT_WRITE : 0) |
           ((prot & ARENA_PROT_EXEC) ? PROT_EXEC : 0);
}

/* ------------------------------------------------- copy/remap break-even -- */
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

/* The smallest run length (pages, among 1, 4, 16, 64) for which remapping beat copying
 * here; CALIB_MAX_PAGES when copying always won or nothing could be measured. On the
 * project's 2-core VMs a refault costs 10-15 us against 0.25 us to copy a page, so the
 * answer is 64 there. Costs 10-25 ms, once per process. */
static size_t calibrate(size_t page)
{
    size_t result = CALIB_MAX_PAGES;
    size_t len = 2 * CALIB_MAX_PAGES * page;
    int fd = arena__os_memfd_create("arena-calibrate", MFD_CLOEXEC);
    if (fd < 0)
        return result;
    char *src = MAP_FAILED, *dst = MAP_FAILED;
    if (arena__os_ftruncate(fd, (off_t)len) < 0 || arena__os_fallocate(fd, 0, 0, (off_t)len) < 0)
        goto out;
    src = arena__os_mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    dst = arena__os_mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (src == MAP_FAILED || dst == MAP_FAILED)
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
    if (src != MAP_FAILED)
        arena__os_munmap(src, len);
    if (dst != MAP_FAILED)
        arena__os_munmap(dst, len);
    arena__os_close(fd);
    return result;
}

size_t arena__copy_below(arena_t *a)
{
    if (a->cfg.copy_below)
        return a->cfg.copy_below;
    size_t os_pages = atomic_load_explicit(&calibrated_copy_below, memory_order_acquire);
    if (os_pages == 0) {
        os_pages = calibrate(arena__os_page());
        size_t expected = 0;
        if (!atomic_compare_exchange_strong(&calibrated_copy_below, &expected, os_pages))
            os_pages = expected;
    }
    size_t per_page = a->page_size / arena__os_page();
    return os_pages / per_page ? os_pages / per_page : 1;
}
