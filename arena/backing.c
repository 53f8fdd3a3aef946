/*
 * backing.c -- the backing file and the allocator of its pages (docs/design.md §4).
 *
 * .req.backing.memfd  The backing is a memfd (MFD_CLOEXEC, MFD_NOEXEC_SEAL where the kernel has it),
 *       or an unlinked O_TMPFILE file (0600, O_CLOEXEC): never visible by name, never
 *       left behind, never inherited across exec.
 * .req.backing.reserve-before-use  A page is fallocate()d before it is handed out, so exhaustion of memory or of
 *       the filesystem is an error code (ENOSPC/ENOMEM), never a SIGBUS on first write.
 * .req.backing.punch-on-free  A page given back is punched (FALLOC_FL_PUNCH_HOLE|KEEP_SIZE): its memory
 *       returns to the system at once, and it reads as zero when handed out again.
 * .req.backing.grow-only  The file only grows; a memfd is sealed against shrinking (F_SEAL_SHRINK) so no
 *       one holding the descriptor can turn a mapped page into a SIGBUS.
 * .req.backing.max-file  cfg.max_file caps the file: past it allocation fails with ENOSPC. Its default is
 *       the memory the process may use at all (physical memory plus swap, or the memory
 *       cgroup's limit where lower: arena.c), so no request can ask for more than exists.
 * .req.backing.memory-left Every request must fit in what memory is left now (os_memory.c) less a headroom for
 *       the rest of the process, checked before each step, or it fails with ENOMEM; fallocate runs in
 *       bounded steps, and a failed request punches back what it committed. Shmem pages are
 *       charged to no process: an unbounded fallocate would have the OOM killer kill others.
 *
 * Layer 1 (docs/design.md §2): calls os.c only.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "backing.h"

#include "os.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif
#ifndef F_SEAL_SHRINK
#define F_ADD_SEALS 1033
#define F_SEAL_SHRINK 0x0002
#endif

/* The backing file: one memfd (or O_TMPFILE file), a page allocator over it.
 * Every page handed out is fallocate()d first, so a write to it can never SIGBUS;
 * every page given back is punched, so its memory returns to the system at once. */
struct arena__backing {
    int fd;
    int kind;              /* ARENA_BACKING_MEMFD or ARENA_BACKING_TMPFILE */
    char *dir;             /* cfg.dir as given (NULL = unset), for a twin */
    size_t page_size;      /* arena page */
    size_t file_pages;     /* current file size in pages */
    size_t max_pages;      /* cap from cfg.max_file; 0 = none */
    uint64_t *used;        /* bit per file page: handed out */
    size_t used_cap;       /* capacity of used[] in pages */
    size_t used_count;
    size_t hint;           /* first page worth searching from */
    size_t headroom;       /* memory the file leaves to the rest of the process (.req.backing.memory-left) */
    size_t left_estimate;  /* memory left at the last reading, less what was committed since */
};

/* File pages are stored in 32-bit slot tables (view.c), and UINT32_MAX means "none". */
#define BACKING_PAGE_LIMIT ((size_t)UINT32_MAX - 1)

/* .req.backing.memory-left: one fallocate call commits at most this much. */
#define COMMIT_STEP ((size_t)64 << 20)
/* .req.backing.memory-left: the system is asked how much memory is left only when the estimate from its last
 * answer comes within this much of the headroom, so a growing heap does not read /proc and
 * the cgroup files for every chunk. */
#define RECHECK_BELOW ((size_t)256 << 20)

static int punch(struct arena__backing *b, size_t first, size_t npages)
{
    if (arena__os_fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)(first * b->page_size),
                            (off_t)(npages * b->page_size)) < 0)
        return arena__os_error(ARENA_EIO);
    return 0;
}

/* .req.backing.memory-left: bytes more can be committed and still leave b->headroom of the memory left. Every
 * commit asks, not only large ones: inside a memory cgroup, chunk-sized commits that fill the
 * limit would have the process OOM-killed at its next allocation of any kind. */
static bool memory_fits(struct arena__backing *b, size_t bytes)
{
    if (b->left_estimate < bytes + b->headroom + RECHECK_BELOW)
        b->left_estimate = arena__os_memory_left();
    return b->left_estimate >= bytes + b->headroom;
}

/* The headroom: an eighth of the memory the process may use, between 16 MiB and 1 GiB. */
static size_t memory_headroom(void)
{
    size_t h = arena__os_memory_limit() / 8;
    const size_t lo = (size_t)16 << 20, hi = (size_t)1 << 30;
    return h < lo ? lo : h > hi ? hi : h;
}

/* Allocate file pages [first, first+npages) to the file (.req.backing.reserve-before-use), in steps of COMMIT_STEP, each
 * step only while what is still to come fits in the memory left (.req.backing.memory-left). All or nothing: on
 * failure what this call committed is punched again (the pages were holes before). */
static int commit(struct arena__backing *b, size_t first, size_t npages)
{
    size_t step = COMMIT_STEP / b->page_size ? COMMIT_STEP / b->page_size : 1;
    size_t done = 0;
    int err = 0;
    while (done < npages) {
        size_t n = npages - done < step ? npages - done : step;
        if (!memory_fits(b, (npages - done) * b->page_size)) {
            err = ARENA_ENOMEM;
            break;
        }
        if (arena__os_fallocate(b->fd, 0, (off_t)((first + done) * b->page_size), (off_t)(n * b->page_size)) < 0) {
            if (errno == EINTR)
                continue; /* a handled signal: go on; a fatal one does not return */
            err = arena__os_error(ARENA_ENOSPC);
            done += n;   /* the refused step may have committed part of itself */
            break;
        }
        done += n;
        b->left_estimate -= b->left_estimate < n * b->page_size ? b->left_estimate : n * b->page_size;
    }
    if (err && done)
        (void)punch(b, first, done);
    return err;
}

static int open_memfd(void)
{
    unsigned base = MFD_CLOEXEC | MFD_ALLOW_SEALING;
    int fd = arena__os_memfd_create("arena", base | MFD_NOEXEC_SEAL);
    if (fd < 0 && errno == EINVAL) /* kernels before 6.3 do not know MFD_NOEXEC_SEAL */
        fd = arena__os_memfd_create("arena", base);
    if (fd < 0)
        return -1;
    /* .req.backing.grow-only. Best effort: a kernel without sealing still gives a working backing. */
    (void)arena__os_fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK);
    return fd;
}

static int open_tmpfile(const char *dir)
{
    if (!dir || !*dir)
        dir = getenv("TMPDIR");
    if (!dir || !*dir)
        dir = "/tmp";
    return arena__os_open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC | O_EXCL, 0600);
}

/* A new file of the given kind: memfd, or O_TMPFILE in dir. -1 with errno on failure. */
static int open_kind(int kind, const char *dir)
{
    return kind == ARENA_BACKING_TMPFILE ? open_tmpfile(dir) : open_memfd();
}

static struct arena__backing *backing_new(const char *dir, size_t page_size)
{
    struct arena__backing *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->fd = -1;
    b->page_size = page_size;
    if (dir && !(b->dir = strdup(dir))) {
        free(b);
        return NULL;
    }
    return b;
}

int arena__backing_open(struct arena__backing **out, const arena_config_t *cfg, size_t page_size)
{
    *out = NULL;
    size_t max_pages = 0;
    if (cfg->max_file) {
        max_pages = cfg->max_file / page_size;
        if (max_pages == 0)
            return ARENA_ECONFIG;
    }
    if (max_pages == 0 || max_pages > BACKING_PAGE_LIMIT)
        max_pages = BACKING_PAGE_LIMIT;
    struct arena__backing *b = backing_new(cfg->dir, page_size);
    if (!b)
        return ARENA_ENOMEM;
    b->max_pages = max_pages;
    b->headroom = memory_headroom();

    int fd = -1, err = 0;
    if (cfg->backing != ARENA_BACKING_TMPFILE) {
        fd = open_kind(ARENA_BACKING_MEMFD, NULL);
        b->kind = ARENA_BACKING_MEMFD;
        err = fd < 0 ? arena__os_error(ARENA_EMFILE) : 0;
    }
    if (fd < 0 && cfg->backing != ARENA_BACKING_MEMFD) {
        fd = open_kind(ARENA_BACKING_TMPFILE, b->dir);
        if (fd < 0)
            err = arena__os_error(err);
        b->kind = ARENA_BACKING_TMPFILE;
    }
    if (fd < 0) {
        arena__backing_close(b);
        return err ? err : ARENA_ENOMEM;
    }
    b->fd = fd;
    *out = b;
    return 0;
}

void arena__backing_close(struct arena__backing *b)
{
    if (!b)
        return;
    if (b->fd >= 0)
        arena__os_close(b->fd);
    free(b->used);
    free(b->dir);
    free(b);
}

bool arena__backing_is_used(const struct arena__backing *b, size_t page)
{
    return page < b->used_cap && (b->used[page / 64] >> (page % 64) & 1);
}

static void mark_range(struct arena__backing *b, size_t first, size_t n, bool used)
{
    for (size_t p = first; p < first + n; p++) {
        uint64_t bit = (uint64_t)1 << (p % 64);
        if (used)
            b->used[p / 64] |= bit;
        else
            b->used[p / 64] &= ~bit;
    }
    b->used_count = used ? b->used_count + n : b->used_count - n;
}

/* Length of the free run starting at p, looking no further than limit. */
static size_t free_run(const struct arena__backing *b, size_t p, size_t limit)
{
    size_t q = p;
    while (q < limit) {
        if ((q % 64) == 0 && q + 64 <= limit && b->used[q / 64] == 0) {
            q += 64;
            continue;
        }
        if (arena__backing_is_used(b, q))
            break;
        q++;
    }
    return q - p;
}

/* First free run of npages in [lo, hi), or SIZE_MAX. */
static size_t search(const struct arena__backing *b, size_t lo, size_t hi, size_t npages)
{
    size_t p = lo;
    while (p < hi) {
        if (arena__backing_is_used(b, p)) {
            p++;
            continue;
        }
        size_t run = free_run(b, p, hi);
        if (run >= npages)
            return p;
        p += run;
    }
    return SIZE_MAX;
}

/* First fit from the hint on, then from 0; failing both, the file's free tail, which
 * grows. */
static size_t find_run(const struct arena__backing *b, size_t npages)
{
    size_t p = search(b, b->hint < b->file_pages ? b->hint : b->file_pages, b->file_pages, npages);
    if (p == SIZE_MAX)
        p = search(b, 0, b->file_pages, npages);
    if (p != SIZE_MAX)
        return p;
    size_t tail = b->file_pages;
    while (tail > 0 && !arena__backing_is_used(b, tail - 1))
        tail--;
    return tail;
}

/* Make the bitmap cover pages [0, pages). */
static int ensure_bitmap(struct arena__backing *b, size_t pages)
{
    if (pages <= b->used_cap)
        return 0;
    size_t cap = b->used_cap ? b->used_cap : 1024;
    while (cap < pages)
        cap *= 2;
    uint64_t *grown = realloc(b->used, cap / 64 * sizeof *grown);
    if (!grown)
        return ARENA_ENOMEM;
    memset(grown + b->used_cap / 64, 0, (cap - b->used_cap) / 64 * sizeof *grown);
    b->used = grown;
    b->used_cap = cap;
    return 0;
}

/* Grow the file to at least pages pages: geometric (a sparse file costs nothing) but
 * capped by max_pages. */
static int grow_file(struct arena__backing *b, size_t pages)
{
    if (pages <= b->file_pages)
        return 0;
    if (pages > b->max_pages)
        return ARENA_ENOSPC;
    size_t target = b->file_pages * 2 > pages ? b->file_pages * 2 : pages;
    if (target < 64)
        target = 64;
    if (target > b->max_pages)
        target = b->max_pages;
    int err = ensure_bitmap(b, target);
    if (err)
        return err;
    if (arena__os_ftruncate(b->fd, (off_t)(target * b->page_size)) < 0)
        return arena__os_error(ARENA_EIO);
    b->file_pages = target;
    return 0;
}

int arena__backing_alloc(struct arena__backing *b, size_t npages, size_t *first)
{
    if (npages == 0)
        return ARENA_ESIZE;
    if (npages > b->max_pages)
        return ARENA_ENOSPC;
    size_t p = find_run(b, npages);
    if (p > b->max_pages - npages)
        return ARENA_ENOSPC;
    int err = grow_file(b, p + npages);
    if (err)
        return err;
    /* .req.backing.reserve-before-use: reserve before handing out. */
    err = commit(b, p, npages);
    if (err)
        return err;
    mark_range(b, p, npages, true);
    if (p == b->hint)
        b->hint = p + npages;
    *first = p;
    return 0;
}

static bool range_used(const struct arena__backing *b, size_t first, size_t npages)
{
    if (npages == 0 || first >= b->file_pages || npages > b->file_pages - first)
        return false;
    for (size_t p = first; p < first + npages; p++)
        if (!arena__backing_is_used(b, p))
            return false;
    return true;
}

int arena__backing_punch(struct arena__backing *b, size_t first, size_t npages)
{
    if (!range_used(b, first, npages))
        return ARENA_ERANGE;
    return punch(b, first, npages);
}

int arena__backing_reserve(struct arena__backing *b, size_t first, size_t npages)
{
    if (!range_used(b, first, npages))
        return ARENA_ERANGE;
    return commit(b, first, npages);
}

int arena__backing_free(struct arena__backing *b, size_t first, size_t npages)
{
    if (!range_used(b, first, npages))
        return ARENA_ERANGE;
    /* .req.backing.punch-on-free. When the punch fails the pages stay handed out: a page that may still hold
     * data must never be handed out again as zeroed. */
    int err = punch(b, first, npages);
    if (err)
        return err;
    mark_range(b, first, npages, false);
    if (first < b->hint)
        b->hint = first;
    return 0;
}

size_t arena__backing_bytes(const struct arena__backing *b)
{
    return arena__os_file_bytes(b->fd);
}

int arena__backing_check_used(const struct arena__backing *b, size_t first, size_t n)
{
    return range_used(b, first, n) ? 0 : ARENA_ERANGE;
}

size_t arena__backing_next_used(const struct arena__backing *b, size_t from, size_t *first)
{
    size_t p = from;
    while (p < b->file_pages && !arena__backing_is_used(b, p)) {
        if (p % 64 == 0 && p + 64 <= b->used_cap && b->used[p / 64] == 0)
            p += 64;
        else
            p++;
    }
    if (p >= b->file_pages)
        return 0;
    size_t end = p;
    while (end < b->file_pages && arena__backing_is_used(b, end))
        end++;
    *first = p;
    return end - p;
}

size_t arena__backing_file_pages(const struct arena__backing *b)
{
    return b->file_pages;
}

size_t arena__backing_used_pages(const struct arena__backing *b)
{
    return b->used_count;
}

size_t arena__backing_max_pages(const struct arena__backing *b)
{
    return b->max_pages;
}

size_t arena__backing_page_size(const struct arena__backing *b)
{
    return b->page_size;
}

int arena__backing_kind(const struct arena__backing *b)
{
    return b->kind;
}

int arena__backing_fd(const struct arena__backing *b)
{
    return b->fd;
}

/* Size the twin like b and reserve (fallocate) every page in use, so no later write to
 * the copy can SIGBUS (.req.backing.reserve-before-use). */
static int twin_fill(struct arena__backing *t, const struct arena__backing *b)
{
    if (b->file_pages == 0)
        return 0;
    int err = ensure_bitmap(t, b->used_cap);
    if (err)
        return err;
    memcpy(t->used, b->used, b->used_cap / 64 * sizeof *t->used);
    t->file_pages = b->file_pages;
    t->used_count = b->used_count;
    t->hint = b->hint;
    if (arena__os_ftruncate(t->fd, (off_t)(b->file_pages * b->page_size)) != 0)
        return arena__os_error(ARENA_EIO);
    size_t first = 0, n;
    for (size_t from = 0; (n = arena__backing_next_used(b, from, &first)) != 0; from = first + n)
        if ((err = commit(t, first, n)) != 0)
            return err;
    return 0;
}

int arena__backing_twin(const struct arena__backing *b, struct arena__backing **out)
{
    *out = NULL;
    struct arena__backing *t = backing_new(b->dir, b->page_size);
    if (!t)
        return ARENA_ENOMEM;
    t->kind = b->kind;
    t->max_pages = b->max_pages;
    t->fd = open_kind(b->kind, b->dir);
    int err = t->fd < 0 ? (arena__os_error(ARENA_EMFILE)) : twin_fill(t, b);
    if (err) {
        arena__backing_close(t);
        return err;
    }
    *out = t;
    return 0;
}

void arena__backing_swap(struct arena__backing *b, struct arena__backing *twin)
{
    int old = b->fd;
    b->fd = twin->fd;
    twin->fd = old;
    arena__backing_close(twin);
}
