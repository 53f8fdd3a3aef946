/*
 * arena.h -- a garbage-collected heap whose memory lives in one backing file.
 *
 * Every heap page is a page of one memfd (or unlinked temp file) mapped MAP_SHARED.
 * That lets the heap compact by remapping file pages instead of copying bytes, show
 * the same file page at several addresses (views), return dead pages exactly (hole
 * punching), and track touched pages (libsigsegv or userfaultfd).
 *
 * Conventions (every function below follows them unless it says otherwise):
 *  - Functions returning int return 0 on success or a negative error code (the libuv
 *    convention): ARENA_E* below. When the kernel refused something the code is the
 *    negated errno value (ARENA_ENOMEM == -ENOMEM, ARENA_ENOSPC == -ENOSPC, ...; an errno
 *    without a name below is still returned as -errno); the library's own refusals have
 *    codes of their own, from -1001 down. arena_strerror() describes every code. A negative
 *    code always means nothing was changed. The two collections (arena_collect,
 *    arena_trace_collect) return a POSITIVE value when they completed (objects may have
 *    moved: arena_forward is valid, *st filled) but met a refusal on the way: the value
 *    negated is its code (arena_strerror(-rc)). An undo the kernel refuses marks the view
 *    (or, for the heap's view, the arena) ARENA_EBROKEN instead of leaving it half changed.
 *  - The library never prints, never aborts, never exits, and leaks no descriptor.
 *  - "page" means an arena page (arena_config_t.page_size, a multiple of the OS page);
 *    "slot" is a page-sized position in a view; "file page" is a page of the backing file.
 *  - Thread safety: arena_alloc, arena_object, arena_object_size and arena_forward may be
 *    called from any thread at any time outside a collection. View and tracking calls
 *    take the arena's lock and may be called from any thread. arena_mark, arena_pin and
 *    arena_collect are stop-the-world: the runtime guarantees no other thread touches
 *    the arena while they run. arena_destroy must be the last call on an arena.
 */
#ifndef ARENA_H
#define ARENA_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(ARENA_SHARED_BUILD)
#define ARENA_API __attribute__((visibility("default")))
#else
#define ARENA_API
#endif

#define ARENA_VERSION_MAJOR 0
#define ARENA_VERSION_MINOR 1
#define ARENA_VERSION_PATCH 0

typedef struct arena arena_t;           /* opaque: one heap over one backing file */
typedef struct arena_view arena_view_t; /* opaque: a virtual range showing file pages */

/* ---------------------------------------------------------------------------------
 * Error codes: one table, from which both the enum and arena_strerror are built.
 * X(name, value, description). Every value is negative: -errno for what the kernel
 * refused, -1001 and below for the library's own refusals.
 * ------------------------------------------------------------------------------- */
#define ARENA_ERROR_TABLE(X)                                                                          \
    /* the kernel refused (value = -errno) */                                                        \
    X(ARENA_ENOMEM, -ENOMEM, "out of memory (or the process mapping limit)")                          \
    X(ARENA_ENOSPC, -ENOSPC, "no space left for the backing file")                                    \
    X(ARENA_EMFILE, -EMFILE, "too many open files")                                                   \
    X(ARENA_ENFILE, -ENFILE, "too many open files in the system")                                     \
    X(ARENA_EINVAL, -EINVAL, "invalid argument (the kernel refused the request)")                     \
    X(ARENA_EPERM, -EPERM, "operation not permitted")                                                 \
    X(ARENA_EACCES, -EACCES, "permission denied")                                                     \
    X(ARENA_ENOSYS, -ENOSYS, "system call not available")                                             \
    X(ARENA_EOPNOTSUPP, -EOPNOTSUPP, "operation not supported by the file system")                    \
    X(ARENA_EFAULT, -EFAULT, "bad address")                                                           \
    X(ARENA_EAGAIN, -EAGAIN, "resource temporarily unavailable")                                      \
    X(ARENA_ENOENT, -ENOENT, "no such file or directory")                                             \
    X(ARENA_EEXIST, -EEXIST, "file exists")                                                           \
    X(ARENA_EFBIG, -EFBIG, "file too large")                                                          \
    X(ARENA_EIO, -EIO, "input/output error")                                                          \
    X(ARENA_EINTR, -EINTR, "interrupted system call")                                                 \
    /* the library refused */                                                                        \
    X(ARENA_ENULL, -1001, "a required pointer argument is NULL")                                      \
    X(ARENA_ERANGE, -1002, "a slot, file page or count is out of range")                              \
    X(ARENA_ESIZE, -1004, "a size of 0, or larger than the reservation allows")                       \
    X(ARENA_ECLOSED, -1005, "the view was closed")                                                    \
    X(ARENA_EFOREIGN, -1006, "the pointer is not inside this arena")                                  \
    X(ARENA_ENOTOBJ, -1007, "the pointer is not inside a live object")                                \
    X(ARENA_EVMA, -1008, "the operation would cross the arena's VMA budget")                          \
    X(ARENA_EPRIVATE, -1009, "remap_file_pages cannot work on a private (copy-on-write) view")        \
    X(ARENA_EBUSY, -1010, "already in that state (tracking started twice, ...)")                      \
    X(ARENA_ENOTSUP, -1011, "the kernel or the build lacks what this needs")                          \
    X(ARENA_EHEAP, -1012, "the heap's own view cannot be remapped or closed by hand")                 \
    X(ARENA_ECONFIG, -1013, "a configuration field has an invalid value")                             \
    X(ARENA_ESTATE, -1014, "the call is not valid in the current state")                              \
    X(ARENA_EPROT, -1015, "an invalid protection (unknown bits, write with execute, or untrackable)") \
    X(ARENA_ENOCOLLECT, -1016, "arena_collect could not start (no memory for its tables): nothing "   \
                               "was collected, nothing moved, the marks stay for a retry")            \
    X(ARENA_EFORWARDED, -1017, "the address was forwarded already (arena_forward_check)")         \
    X(ARENA_EBROKEN, -1018, "the kernel refused to undo a half-done change: the view (or, for "    \
                            "the heap's view, the arena) is unusable; close or destroy it")

enum arena_error {
    ARENA_OK = 0,
#define ARENA_ERROR_ENUM_(name, value, text) name = (value),
    ARENA_ERROR_TABLE(ARENA_ERROR_ENUM_)
#undef ARENA_ERROR_ENUM_
};

/* The library's own codes are the ones at or below this; above it (and below 0), -errno. */
#define ARENA_ELIBRARY (-1000)

/* A static string describing err, an ARENA_E* code (or any -errno). A positive errno
 * value (what arena_alloc leaves in errno) is described as its negation. Never NULL. */
ARENA_API const char *arena_strerror(int err);

/* ---------------------------------------------------------------------------------
 * Configuration
 * ------------------------------------------------------------------------------- */
enum arena_backing {
    ARENA_BACKING_AUTO = 0,  /* memfd where the kernel has it, else an O_TMPFILE file */
    ARENA_BACKING_MEMFD,     /* memfd_create only */
    ARENA_BACKING_TMPFILE,   /* an unlinked O_TMPFILE file in cfg.dir (never visible by name) */
};

enum arena_mover {
    ARENA_MOVE_AUTO = 0,          /* collector: per run, copy short runs, mremap long ones (2 MiB-aligned when
                                     possible); arena_view_move: MREMAP where the kernel has it, else MMAP_FIXED */
    ARENA_MOVE_REMAP_FILE_PAGES,  /* remap_file_pages(2) on an existing shared mapping */
    ARENA_MOVE_MMAP_FIXED,        /* mmap(MAP_FIXED) of the file run at the target */
    ARENA_MOVE_MREMAP,            /* mremap(MREMAP_FIXED|MREMAP_DONTUNMAP): page tables move along */
    ARENA_MOVE_COPY,              /* copy into fresh file pages (no remapping of the target) */
};

enum arena_tracker {
    ARENA_TRACKER_AUTO = 0,  /* userfaultfd WP_ASYNC + PAGEMAP_SCAN where allowed, else libsigsegv */
    ARENA_TRACKER_SIGSEGV,   /* mprotect + a SIGSEGV handler through libsigsegv */
    ARENA_TRACKER_UFFD,      /* userfaultfd write protection; ARENA_ENOTSUP where unavailable */
};

typedef struct arena_config {
    size_t reserve;          /* virtual bytes reserved for the heap; 0 = 64 GiB */
    size_t page_size;        /* arena page; a power-of-two multiple of the OS page; 0 = OS page */
    int backing;             /* enum arena_backing; default AUTO */
    const char *dir;         /* directory for ARENA_BACKING_TMPFILE; NULL = $TMPDIR, else /tmp */
    int mover;               /* enum arena_mover; default AUTO */
    size_t vma_budget;       /* most mappings the arena may add; 0 = the process-wide budget. Every
                                arena of the process also draws from one process-wide budget: half
                                of what vm.max_map_count left when the first arena was created,
                                raised by an arena configured with a larger budget. A value larger
                                than the kernel can honour (max_map_count minus the process's
                                mappings minus 512) is clamped: arena_stats() reports both budgets */
    int tracker;             /* enum arena_tracker; default AUTO */
    size_t copy_below;       /* runs shorter than this many pages are copied, not remapped;
                                0 = calibrated once per process */
    unsigned sparse_percent; /* pages less than this % live are evacuated object by object; 0 = 75
                              * (copying live bytes is far cheaper than keeping a page: at 25
                              * a 30 %-survival heap kept 1.44x its live bytes, at 75 1.12x) */
    size_t max_file;         /* cap on the backing file in bytes (exhaustion -> ARENA_ENOSPC); 0 = the memory the
                                process may use: physical memory plus swap, or its memory cgroup's limit
                                where lower (arena_stats reports the cap in force). Independently, a
                                request larger than 64 MiB must fit in the memory left at that moment,
                                or it fails with ARENA_ENOMEM before anything is committed */
    /* Retained pages (docs/design.md §6, .req.heap.retain-pages): a collection keeps dead pages resident and
     * mapped as the allocation pool and the next collection's to-space, instead of handing
     * them back to the kernel page by page. Only the surplus is released, in large batches. */
    size_t retain_bytes;     /* retained bytes kept however long they stay unused; 0 = the larger of
                                16 MiB and twice the live bytes after the last collection */
    unsigned retain_delay_ms; /* retained bytes above retain_bytes are released once they have stayed
                                above it this long (checked when allocation refills its pool;
                                a collection only starts the clock); 0 = 250 ms */
    size_t retain_max;       /* at the end of a collection the retained bytes above this are released
                                at once; 0 = the larger of 64 MiB and 4 x the live bytes; set 1 to
                                keep nothing (every dead page released by each collection) */
    unsigned debug;          /* ARENA_DEBUG_* flags; 0 = none */
    int mesh;                /* enum arena_mesh: meshing of pinned pages in collections (docs/design.md
                                §7, .req.mesh.what); default ARENA_MESH_AUTO, which does not mesh */
    int shuffle;             /* enum arena_shuffle: randomised placement of small objects within
                                their page (docs/design.md §6, .req.heap.shuffle); default OFF */
    uint64_t shuffle_seed;   /* seeds ARENA_SHUFFLE_ON's random order: the same seed, the same
                                allocation sequence on one thread give the same layout;
                                0 = seeded from the clock */
} arena_config_t;

enum arena_mesh {
    ARENA_MESH_AUTO = 0,     /* the library's choice; now: never mesh. New objects refill the gaps of
                                pinned pages (.req.heap.recycle-pinned), which a meshed page never
                                gets, and each mesh costs a mapping call (docs/design.md §7) */
    ARENA_MESH_OFF,          /* never mesh */
    ARENA_MESH_ON,           /* mesh pinned pages at most half occupied in each collection (Mesh,
                                PLDI 2019): for a heap that stays sparse after a collection, e.g. a
                                runtime that pins much and then allocates little (arena_trim
                                releases the file pages meshing frees) */
};

/* cfg.shuffle. ARENA_SHUFFLE_ON places each object of at most 1 KiB at a random slot of a
 * page that holds only objects of its rounded size (one class per 16 bytes: a slot is
 * exactly the object), in the order of a per-page shuffle vector: a Fisher-Yates permutation of the
 * page's slots drawn when the thread takes the page (Mesh, Powers, Tench, Berger and
 * McGregor, PLDI 2019: shuffle vectors). Larger objects are bump allocated as without it.
 * It helps meshing (cfg.mesh = ARENA_MESH_ON; without meshing it only costs) where the
 * objects that survive pinned follow a regular
 * pattern (every k-th object of a run of equal-sized ones: bump allocation puts every
 * page's survivors at the same offsets, so no two pages mesh); with random survivors it
 * changes nothing. Costs: every small allocation takes a call and a vector pop instead of
 * the inline bump (arena_lab_alloc always calls arena_lab_refill), each thread holds a
 * partly filled page per size class it allocates (their unused slots stay empty until a
 * collection evacuates the page), pinned pages' gaps are not recycled, and a thread's
 * first shuffled allocation in an arena mallocs its state (4.4 KiB on 4 KiB pages, 40 KiB
 * on 64 KiB pages; when that fails the thread allocates unshuffled). Pages
 * larger than ARENA_SHUFFLE_MAX_PAGE are refused (ARENA_ECONFIG). arena-bench rows
 * mesh.regular and alloc/ns_per_object_shuffled measure both sides. */
enum arena_shuffle {
    ARENA_SHUFFLE_OFF = 0,   /* bump allocation: objects in allocation order */
    ARENA_SHUFFLE_ON,        /* shuffle vectors for objects up to 1 KiB */
};
#define ARENA_SHUFFLE_MAX_PAGE ((size_t)64 << 10)

/* cfg.debug: arena_collect never moves an object to an address where a live object was
 * before (a unit whose target held one stays in place), so arena_forward_check can tell
 * every already-forwarded address from an old one. Costs compaction, not correctness. */
#define ARENA_DEBUG_FORWARD 1u

/* Fill *cfg with the defaults (all zero means default, so this is a memset plus documentation). */
ARENA_API void arena_config_init(arena_config_t *cfg);

/* ---------------------------------------------------------------------------------
 * Life cycle
 * ------------------------------------------------------------------------------- */

/* Create an arena. cfg may be NULL for the defaults. On success *out is the arena.
 * Errors: ARENA_ENULL, ARENA_ECONFIG, ARENA_ENOMEM, ARENA_EMFILE, ARENA_ENOSYS, and -errno of memfd_create,
 * open(O_TMPFILE) or mmap report. */
ARENA_API int arena_create(arena_t **out, const arena_config_t *cfg);

/* Unmap every view, close the backing file, free everything. NULL is ignored. */
ARENA_API void arena_destroy(arena_t *a);

/* The arena page size in bytes. */
ARENA_API size_t arena_page_size(const arena_t *a);

/* ---------------------------------------------------------------------------------
 * The heap
 * ------------------------------------------------------------------------------- */

/* A zeroed object of size bytes, 16-byte aligned. An object no larger than a page
 * never straddles a page boundary; larger ones get their own run of pages.
 * Returns NULL with errno (positive, as errno always is) = EINVAL (a NULL arena, size 0
 * or beyond the reservation), ENOMEM (reservation, memory or VMA budget exhausted) or
 * ENOSPC (backing file full), EDEADLK (from a callback of arena_trace_collect, whose
 * thread holds the lock a new page needs); arena_strerror(errno) describes it. */
ARENA_API void *arena_alloc(arena_t *a, size_t size);

/* The start of the live object containing p (p may be an interior pointer), or NULL
 * when p is not inside a live object of this arena. Cheap enough for conservative
 * stack scanning. */
ARENA_API void *arena_object(const arena_t *a, const void *p);

/* The usable size of the object starting at obj (its requested size rounded up to
 * 16), or 0 when obj is not the start of a live object. */
ARENA_API size_t arena_object_size(const arena_t *a, const void *obj);

/* Nonzero when p points into the arena's heap reservation (live object or not). */
ARENA_API int arena_contains(const arena_t *a, const void *p);

/* An allocation buffer for arena_lab_alloc, the inline fast path of arena_alloc: one per
 * thread, owned by the runtime (a thread-local or a field of its thread structure). The
 * fields are the library's to set; read none. */
typedef struct arena_lab {
    char *cur, *end;            /* the free part of the thread's current page */
    char *base;                 /* the heap view's base: granule i is base + 16 i */
    uint64_t *starts, *ends;    /* the heap's object start and end bitmaps, bit per granule */
    const uint64_t *epoch_now;  /* the heap's epoch: every collection (and fork) bumps it */
    uint64_t epoch;             /* the epoch [cur, end) and [next, last) belong to */
    arena_t *arena;
    char *next, *last;          /* pages taken with the current one, not entered yet */
    size_t unused;              /* rests of pages left since the lock was last taken */
    int dirty;                  /* [next, last) are retained pages: clear each when entered */
} arena_lab_t;

/* Make *lab an empty buffer of a's heap. Errors: ARENA_ENULL, the error a failed fork left. */
ARENA_API int arena_lab_init(arena_t *a, arena_lab_t *lab);

/* The slow path of arena_lab_alloc: a new current page (objects larger than a page, and
 * every error, go to arena_alloc). Same results as arena_alloc. The lab takes pages from
 * the pool a batch at a time (up to 64 KiB of consecutive slots) and enters the next one
 * without the lock; until a collection, the pages not entered yet count as allocated. */
ARENA_API void *arena_lab_refill(arena_lab_t *lab, size_t size);

/* Give the unused rest of the buffer's pages back to the accounting of allocated bytes (a
 * thread that stops allocating; optional). The pages stay empty until the next
 * collection. The buffer stays usable. */
ARENA_API void arena_lab_retire(arena_lab_t *lab);

/* arena_alloc inlined: the same zeroed, 16-byte aligned object, from the buffer's current
 * page when it fits and no collection happened since the page was taken (a bump and two
 * bitmap stores, no call), else through arena_lab_refill. Only the thread owning lab may
 * use it; allocations through several labs and arena_alloc may be mixed freely. */
static inline void *arena_lab_alloc(arena_lab_t *lab, size_t size)
{
    size_t rounded = (size + 15) & ~(size_t)15;
    char *p = lab->cur;
    if (__builtin_expect(rounded - 1 < (size_t)(lab->end - p) &&
                             __atomic_load_n(lab->epoch_now, __ATOMIC_RELAXED) == lab->epoch, 1)) {
        size_t g = (size_t)(p - lab->base) >> 4, e = g + (rounded >> 4) - 1;
        /* End bit first: a concurrent arena_object that sees the start finds the end. Only
         * this thread writes its page's words; relaxed atomics keep those readers defined. */
        uint64_t w = __atomic_load_n(&lab->ends[e >> 6], __ATOMIC_RELAXED);
        __atomic_store_n(&lab->ends[e >> 6], w | (uint64_t)1 << (e & 63), __ATOMIC_RELAXED);
        w = __atomic_load_n(&lab->starts[g >> 6], __ATOMIC_RELAXED);
        __atomic_store_n(&lab->starts[g >> 6], w | (uint64_t)1 << (g & 63), __ATOMIC_RELAXED);
        lab->cur = p + rounded;
        return p;
    }
    return arena_lab_refill(lab, size);
}

/* Mark the object containing p (an interior pointer is fine) live for the next
 * collection. Errors: ARENA_ENULL, ARENA_EFOREIGN, ARENA_ENOTOBJ. Idempotent. */
ARENA_API int arena_mark(arena_t *a, const void *p);

/* Mark the object containing p live and pinned: it survives the next collection at
 * the same address and is never evacuated. Same errors as arena_mark. */
ARENA_API int arena_pin(arena_t *a, const void *p);

/* Ambiguous roots (mostly-copying collection, Bartlett 1988; stack scanning after
 * Boehm and Weiser 1988). Every aligned machine word in [lo, hi) is read as a possible
 * pointer: a word that points into a live object of the heap (its first byte up to its
 * last, interior pointers included) pins that object for the next collection, as
 * arena_pin does; a word just past an object's end, into freed space, into a page with
 * no object there or outside the heap pins nothing. "Live" means allocated and not yet
 * freed by a collection: an unreachable object a stale word names stays one more cycle,
 * the price of conservatism. lo is rounded up to word alignment; lo == hi == NULL is an
 * empty range. fn (may be NULL) is called with the start of the object and ctx for every
 * word that named one (an object named by two words is reported twice): the runtime
 * traces from these objects, since a pin keeps an object, not what it points to. Errors: ARENA_ENULL (a, or one of lo/hi NULL),
 * ARENA_ERANGE (hi < lo). The range must be readable. Stop-the-world, like arena_pin. */
typedef void arena_root_fn(void *obj, void *ctx);
ARENA_API int arena_pin_range(arena_t *a, const void *lo, const void *hi, arena_root_fn *fn, void *ctx);

/* arena_pin_range over the calling thread's registers and stack: callee-saved registers
 * are spilled into a frame of this call (setjmp, __builtin_unwind_init), then every word
 * from there to the stack's base (pthread_getattr_np, looked up once per thread) is
 * scanned. Other threads' stacks: each thread calls arena_pin_stack itself at a safepoint
 * before it parks (the runtime serialises these calls and the collection), or records
 * its own stack bounds and registers where the collector can pass them to
 * arena_pin_range (docs/runtime-guide.md, "Conservative roots"). Errors: ARENA_ENULL, the
 * negated errno of pthread_getattr_np (ARENA_ENOMEM, ...), ARENA_ERANGE when called on a
 * stack other than the thread's own (a sigaltstack signal handler, a coroutine's stack:
 * scan that with arena_pin_range). Stop-the-world, like arena_pin. */
ARENA_API int arena_pin_stack(arena_t *a, arena_root_fn *fn, void *ctx);

/* Statistics of one collection. */
typedef struct arena_collect_stats {
    size_t objects_live;      /* marked objects */
    size_t bytes_live;        /* their bytes */
    size_t objects_freed;     /* unmarked objects */
    size_t pages_before;      /* heap pages in use before */
    size_t pages_after;       /* after */
    size_t pages_released;    /* dead pages whose file page was punched */
    size_t pages_pinned;      /* pages that stayed because of pins */
    size_t pages_in_place;    /* live pages that did not need to move */
    size_t runs_remapped;     /* runs moved by remapping (any primitive) */
    size_t pages_remapped;
    size_t runs_mremap_2m;    /* of those, runs moved as 2 MiB-aligned mremaps */
    size_t runs_copied;       /* runs moved by copying into fresh file pages */
    size_t pages_copied;
    size_t objects_evacuated; /* objects copied out of sparse pages */
    size_t bytes_evacuated;
    size_t vmas_before;       /* the arena's mapping count before and after */
    size_t vmas_after;
    uint64_t pause_ns;        /* wall time of the whole call, lock wait included */
    size_t pages_retained;    /* dead or vacated pages kept resident and mapped for reuse */
    size_t pages_slid;        /* live pages moved by a copy into retained pages (no system call) */
    size_t pages_parked;      /* retained pages a 2 MiB move swapped to the slots it vacated */
    size_t pages_meshed;      /* pinned pages whose objects moved into another page's file page,
                                 which both slots now show: their own file page was released */
    uint64_t mesh_ns;         /* time spent meshing, included in pause_ns */
} arena_collect_stats_t;

/* Free every object that was not marked or pinned since the previous collection,
 * evacuate sparse pages into retained pages, slide live pages toward the low end of the
 * heap (copying short runs into retained pages, moving long ones by mremap), and clear
 * the marks. Dead pages are retained (cfg.retain_*; arena_trim releases them). Mirror
 * views follow. st may be NULL. After it returns, use arena_forward() to update every
 * pointer the runtime holds. Errors: ARENA_ENULL; ARENA_ESTATE from a callback of
 * arena_trace_collect (nothing collected); ARENA_ENOCOLLECT when the forwarding
 * table cannot be allocated (nothing was collected, the marks stay). A positive return: the
 * collection completed, and -rc is the first error it met (ARENA_ENOMEM, ARENA_EVMA, ...):
 * objects may have moved, so the runtime must still forward its pointers; a move
 * that failed was finished by copying or left in place, no object is lost, *st is
 * filled and arena_forward is valid for whatever did move. A MIRROR view the collection
 * could not update is out of step (arena_view_addr returns NULL for it) until a later
 * collection updates it. Stop-the-world. */
ARENA_API int arena_collect(arena_t *a, arena_collect_stats_t *st);

/* Where the object that contained old (an address valid before the last collection)
 * is now: the new address of the same byte. Returns old itself for objects that did
 * not move and for pointers outside the heap; NULL for a pointer into an object that
 * died in the last collection, or into heap space that held no object. Valid until the
 * next collection, for addresses from before the last one only. */
ARENA_API void *arena_forward(const arena_t *a, const void *old);

/* Debug check before arena_forward(a, p): 0 when p may be a pre-collection address (forwarding
 * it is right), ARENA_EFORWARDED when p lies in an object the last collection moved there, or
 * one allocated since (p was forwarded already, or is new: forwarding it again would answer NULL or, without the flag below,
 * a pointer into another object). Exact with cfg.debug & ARENA_DEBUG_FORWARD; without it,
 * it reports only the addresses where no object lived before the collection, and not the
 * objects allocated since into the gaps of pinned pages (docs/design.md
 * .req.heap.recycle-pinned). Lock-free,
 * not during a collection. ARENA_ENULL for a NULL arena. */
ARENA_API int arena_forward_check(const arena_t *a, const void *p);

/* 1 when the object containing p is marked (or pinned) for the next collection, 0 when
 * it is not, so a runtime needs no mark bit of its own; negative: ARENA_ENULL,
 * ARENA_EFOREIGN, ARENA_ENOTOBJ, as arena_mark. Stop-the-world, like arena_mark. */
ARENA_API int arena_is_marked(const arena_t *a, const void *p);

/* Bytes handed out by arena_alloc since the last collection plus the live bytes it left
 * (arena_stats' allocated_bytes) without the lock or the mincore pass of arena_stats:
 * one relaxed load, for deciding when to collect. A thread's current page counts in full
 * when the thread takes it. 0 for NULL. */
ARENA_API size_t arena_allocated_bytes(const arena_t *a);

/* Release retained pages (see arena_config_t.retain_*) until at most keep bytes stay
 * retained: their mappings go, their file pages are punched, in runs, the highest slots
 * first. arena_trim(a, 0) releases every retained page, so resident memory is the live
 * pages only. Takes the arena lock; not during a collection. Errors: ARENA_ENULL, or the
 * code (-errno) of the first refused unmap or punch (the pages it could not release stay retained). */
ARENA_API int arena_trim(arena_t *a, size_t keep);

/* ---------------------------------------------------------------------------------
 * One trace per collection: an object format (scan/fix)
 *
 * A runtime that can describe its objects lets the arena trace them: one call marks,
 * moves and updates every reference in a single pass, with no arena_mark /
 * arena_forward walk of its own. The protocol is the Memory Pool System's object
 * format: a scan callback visits each reference field of one object and hands its
 * address to arena_fix, which may rewrite it (MPS "scan/fix", Ravenbrook, see
 * https://www.ravenbrook.com/project/mps/master/manual/html/topic/scanning.html), and
 * a roots callback does the same for the runtime's roots.
 *
 * Policy (Immix opportunistic evacuation, Blackburn & McKinley, PLDI 2008): before the
 * trace the collection picks evacuation candidates, the pages allocated since the
 * previous collection and the pages that were sparse (below cfg.sparse_percent live)
 * at the end of it. Objects on candidates reached by the trace are copied to free
 * pages and scanned from there, Cheney-style (Cheney, CACM 1970); the old copy holds
 * a forwarding address, so every later fix of the same object returns the copy.
 * Objects on other pages are marked in place and keep their address. When no free
 * page can be had (ENOSPC, the VMA budget, cfg.max_file), the rest are marked in
 * place; at the cap the few file pages the allocator leaves free for collections are
 * to-space, so each collection there frees some pages. Afterwards dead objects are freed, and pages left with no live object
 * (every evacuated candidate) become retained pages, reused by allocation and by the
 * next collection's to-space (cfg.retain_* say how many stay).
 * ------------------------------------------------------------------------------- */
typedef struct arena_ss arena_ss_t;  /* opaque scan state, valid during one callback */

/* Visit every reference field of the object at obj (size usable bytes, a multiple of
 * 16): call arena_fix(ss, &field) for each field that holds a pointer, untagged. It is
 * called exactly once per live object reached, on its final copy. */
typedef void (*arena_scan_fn)(arena_ss_t *ss, void *obj, size_t size, void *closure);
/* Visit every root: arena_fix(ss, &root) for each location outside the condemned
 * objects that may hold a reference into the heap (stack slots, globals, and in a
 * ARENA_TRACE_YOUNG collection the remembered set: fields of old objects written since
 * the previous collection). A location may be fixed twice. */
typedef void (*arena_roots_fn)(arena_ss_t *ss, void *closure);

typedef struct arena_format {
    arena_scan_fn scan;     /* required */
    arena_roots_fn roots;   /* required */
    void *closure;          /* passed to both, unchanged */
} arena_format_t;

enum arena_trace_mode {
    ARENA_TRACE_FULL = 0,   /* every object may die; the whole live heap is traced */
    ARENA_TRACE_YOUNG = 1,  /* only objects allocated since the previous collection (of
                               either kind) may die or move; objects that survived one
                               are neither traced nor freed ("sticky" generations:
                               Demers et al., POPL 1990), so the roots must include every
                               reference from them to younger objects */
};

/* Fix one reference, from a scan or roots callback (with that callback's ss): *ref is
 * an address of this arena's heap, possibly interior (any byte of a live object; a
 * pointer one past an object's end belongs to whatever follows). If the object moved
 * in this collection, *ref is rewritten to the same byte of the copy; otherwise *ref is
 * left alone (nothing is written). The object is kept live and will be scanned.
 * Returns 0 (also for NULL and for addresses outside the heap, left alone),
 * ARENA_ENOTOBJ for a heap address holding no live object (left alone: a conservative
 * runtime may ignore it), ARENA_ENULL for a NULL ss or ref. Only during the callback
 * that received ss, on the collecting thread. */
ARENA_API int arena_fix(arena_ss_t *ss, void **ref);

/* What arena_fix_inline reads without a call. Every arena_ss_t begins with this record;
 * the library fills it before the first callback and keeps it true during the trace. The
 * fields are the library's to set; a runtime reads none of them (arena_fix_inline does). */
typedef struct arena_ss_head {
    uintptr_t base;             /* the heap's first byte (granule i is base + 16 i) */
    size_t heap_bytes;          /* the heap's length: an address outside is left alone */
    size_t condemned_bytes;     /* [base, base + condemned_bytes): the slots the heap had when
                                   the collection began, the only ones that may be condemned */
    const uint64_t *reached;    /* bit per granule below condemned_bytes: the object starting
                                   there was reached (or pinned, or marked) */
    const uint64_t *moved;      /* bit per granule: the object starting there was copied; its
                                   first word holds the copy's address */
    const uint64_t *kept;       /* bit per page below condemned_bytes: the page holds objects
                                   this collection does not condemn (old, in a young one);
                                   NULL when there is none (a full collection) */
    size_t page_shift;          /* log2 of the arena page */
} arena_ss_head_t;

/* arena_fix with its first stage inlined: the same contract and results, exactly (the
 * Memory Pool System's split of a fix into MPS_FIX1, an inline test that settles most
 * references, and MPS_FIX2, the call; Ravenbrook, "Scanning" in the MPS manual). Settled
 * without a call: NULL and every address outside the heap (0, left alone); an object
 * already copied in this collection, named by an address in its first 16 bytes (*ref
 * rewritten to the same byte of the copy); an object already reached and kept in place,
 * named likewise (0, nothing written); an address on a page the collection does not
 * condemn (0). Everything else (the first fix of an object, interior addresses past an
 * object's first 16 bytes, to-space addresses, errors) calls arena_fix. Only where
 * arena_fix may be called. */
static inline int arena_fix_inline(arena_ss_t *ss, void **ref)
{
    if (__builtin_expect(ss == NULL || ref == NULL, 0))
        return arena_fix(ss, ref);
    const arena_ss_head_t *h = (const arena_ss_head_t *)(const void *)ss;
    uintptr_t p = (uintptr_t)*ref, off = p - h->base;
    if (off >= h->condemned_bytes)
        return off < h->heap_bytes ? arena_fix(ss, ref) : 0;
    size_t g = off >> 4, w = g >> 6, s = off >> h->page_shift;
    uint64_t bit = (uint64_t)1 << (g & 63);
    if (!(__atomic_load_n(&h->reached[w], __ATOMIC_RELAXED) & bit)) {
        /* Not reached (a copied object was reached too): a first fix, unless the page is
         * not condemned. */
        return h->kept != NULL && ((h->kept[s >> 6] >> (s & 63)) & 1) ? 0 : arena_fix(ss, ref);
    }
    if (__atomic_load_n(&h->moved[w], __ATOMIC_RELAXED) & bit) {
        char *copy;
        __builtin_memcpy(&copy, (const void *)(p & ~(uintptr_t)15), sizeof copy);
        *ref = copy + (p & 15);
    }
    return 0;
}

/* Collect in one pass with the runtime's format (see above). Objects arena_pin()ned or
 * arena_mark()ed since the previous collection are extra roots that keep their
 * address (pinning is how a conservative runtime protects what an ambiguous
 * reference names). mode: enum arena_trace_mode. st may be NULL; st->pause_ns is the
 * whole pause, callbacks included; objects_evacuated / bytes_evacuated count the
 * copies; pages_in_place the condemned pages kept. Mirror views and tracking follow:
 * a copy lands on a page the tracker reports as touched, and a mirror shows the heap's
 * new layout. arena_forward() knows nothing of this collection's moves (every
 * reference the format reaches was already fixed): afterwards it answers as if no
 * collection had forwarded anything: an address inside a live object is returned as
 * it is, and the old address of a moved (or dead) object gives NULL, as an address
 * that holds no object. arena_forward_check answers 0 for every address then.
 * Errors: ARENA_ENULL (a, fmt, fmt->scan or fmt->roots NULL), ARENA_ECONFIG (mode),
 * ARENA_ENOCOLLECT when the collection's tables cannot be allocated (nothing was
 * collected, no callback was called), ARENA_ESTATE when called from one of this arena's
 * own scan or roots callbacks (as arena_collect: the trace holds the lock); a positive return: -rc is the first error met by a
 * collection that still completed (references were fixed) (a page that could not be given back stays
 * allocated, no object is lost).
 * Thread rules: stop-the-world like arena_collect, and the callbacks run on the calling
 * thread with the arena's lock held: they may call arena_fix, arena_object,
 * arena_object_size and arena_contains, and no other arena function. A call that would
 * take the lock (allocation that needs a page, trim, stats, file pages, views, tracking,
 * collections) or mark or pin returns ARENA_ESTATE from there (arena_alloc: NULL with
 * errno EDEADLK) instead of waiting forever. */
ARENA_API int arena_trace_collect(arena_t *a, const arena_format_t *fmt, int mode,
                                  arena_collect_stats_t *st);

/* ---------------------------------------------------------------------------------
 * The backing file, for views that are not the heap
 * ------------------------------------------------------------------------------- */

/* Reserve npages consecutive file pages (zeroed, allocated with fallocate so a write
 * can never SIGBUS) that the heap will not use; *first receives the first file page.
 * Errors: ARENA_ENULL, ARENA_ESIZE (npages 0), ARENA_ENOSPC (cfg.max_file or the file
 * system), ARENA_ENOMEM, or -errno of ftruncate / fallocate. */
ARENA_API int arena_file_alloc(arena_t *a, size_t npages, size_t *first);

/* Give back file pages from arena_file_alloc: their memory is punched out of the file.
 * Every view must have stopped showing them (not checked). Errors: ARENA_ENULL,
 * ARENA_ESIZE (npages 0), ARENA_ERANGE (a page not allocated), -errno of the punch. */
ARENA_API int arena_file_free(arena_t *a, size_t first, size_t npages);

/* ---------------------------------------------------------------------------------
 * Views
 * ------------------------------------------------------------------------------- */
enum arena_view_layout {
    ARENA_VIEW_EMPTY = 0,  /* every slot shows nothing (PROT_NONE reservation) */
    ARENA_VIEW_LINEAR,     /* slot i shows file page first + i (first = 0 for arena_view_open) */
    ARENA_VIEW_MIRROR,     /* the heap's layout at another base, kept in step by collections */
};

#define ARENA_PROT_NONE 0
#define ARENA_PROT_READ 1
#define ARENA_PROT_WRITE 2
#define ARENA_PROT_EXEC 4

#define ARENA_VIEW_PRIVATE 1  /* view flag: MAP_PRIVATE, writes are copy-on-write and seen by no one else */

#define ARENA_NO_PAGE ((size_t)-1) /* in a slot table: the slot shows nothing */

/* Open a view of nslots slots (for MIRROR, 0 = the heap's whole reservation).
 * prot is the view's protection: READ, READ|WRITE or READ|EXEC (WRITE|EXEC is refused
 * with ARENA_EPROT so W^X pairs stay honest). flags: 0 or ARENA_VIEW_PRIVATE.
 * LINEAR shows file pages 0..nslots-1, which must exist (arena_file_alloc).
 * Errors: ARENA_ENULL, ARENA_ECONFIG (layout, flags), ARENA_ESIZE, ARENA_EPROT,
 * ARENA_ERANGE, ARENA_EVMA, ARENA_ENOMEM. */
ARENA_API int arena_view_open(arena_t *a, int layout, size_t nslots, int prot, int flags,
                              arena_view_t **out);

/* Close a view: its range is unmapped; the handle answers ARENA_ECLOSED until
 * arena_destroy. Errors: ARENA_ENULL, ARENA_ECLOSED, ARENA_EHEAP (the heap view), or the
 * -errno of a refused munmap (the view then stays open, with tracking stopped). */
ARENA_API int arena_view_close(arena_view_t *v);

/* The heap's own view (slot i = the i-th page of the heap reservation). It can be
 * read, tracked and inspected, but not remapped, protected or closed by hand. */
ARENA_API arena_view_t *arena_heap_view(arena_t *a);

ARENA_API void *arena_view_base(const arena_view_t *v);   /* address of slot 0 */
ARENA_API size_t arena_view_slots(const arena_view_t *v); /* number of slots */
ARENA_API int arena_view_prot(const arena_view_t *v);     /* the protection it was opened with */

/* The file page that slot shows, or ARENA_NO_PAGE. */
ARENA_API size_t arena_view_file_page(const arena_view_t *v, size_t slot);

/* For a MIRROR view: the address in v of the heap byte heap_ptr, or NULL (also while the
 * mirror is out of step after a failed collection, see arena_collect). */
ARENA_API void *arena_view_addr(const arena_view_t *v, const void *heap_ptr);

/* Choose the primitive this view uses (default: the arena's). REMAP_FILE_PAGES on a
 * private view: ARENA_EPRIVATE. MREMAP where the kernel lacks MREMAP_DONTUNMAP for
 * shared mappings: ARENA_ENOTSUP. Also ARENA_ENULL, ARENA_ECLOSED, ARENA_EHEAP,
 * ARENA_ECONFIG (unknown mover). */
ARENA_API int arena_view_set_mover(arena_view_t *v, int mover);

/* Slots slot..slot+npages-1 show file pages file_page..file_page+npages-1 (the same
 * file page may be shown at any number of slots, in any number of views). Uses the
 * view's mover when it is REMAP_FILE_PAGES or MMAP_FIXED; the moving primitives
 * (MREMAP, COPY) have nothing to move here and establish the mapping with MMAP_FIXED.
 * Errors: ARENA_ENULL, ARENA_ECLOSED, ARENA_EHEAP, ARENA_ESIZE (npages 0),
 * ARENA_ERANGE (slot or file page out of range), ARENA_EVMA, and the kernel's -errno. */
ARENA_API int arena_view_map(arena_view_t *v, size_t slot, size_t file_page, size_t npages);

/* Slots slot..slot+npages-1 show nothing. Same errors as arena_view_map. */
ARENA_API int arena_view_unmap(arena_view_t *v, size_t slot, size_t npages);

/* Apply a whole table: slot first+i shows file_pages[i] (or nothing for ARENA_NO_PAGE),
 * for i < n. One system call per maximal run of slots that show consecutive file
 * pages and change. The VMA budget is checked for the final layout before anything
 * changes; on a kernel error mid-way the slots already changed are put back. */
ARENA_API int arena_view_apply(arena_view_t *v, size_t first, const size_t *file_pages, size_t n);

/* Move: slots dst.. show what slots src.. showed, and src.. show nothing (where the
 * ranges do not overlap). Uses the view's mover: MREMAP carries page tables (no
 * refault), COPY copies into fresh file pages. With COPY both the old and the fresh
 * file pages stay allocated and belong to the caller (arena_view_file_page tells the
 * fresh ones; give either back with arena_file_free). Errors as arena_view_map, plus
 * ARENA_ENOTSUP (MREMAP unavailable) and ARENA_ENOSPC (COPY). */
ARENA_API int arena_view_move(arena_view_t *v, size_t dst, size_t src, size_t npages);

/* Change the protection of slots slot..slot+npages-1 (ARENA_PROT_* bits, W+X refused
 * with ARENA_EPROT). Each protection run may cost a mapping: ARENA_EVMA past the
 * budget. Other errors as arena_view_unmap. */
ARENA_API int arena_view_protect(arena_view_t *v, size_t slot, size_t npages, int prot);

/* The number of mappings (VMAs) this view is accounted for. */
ARENA_API size_t arena_view_vmas(const arena_view_t *v);

/* ---------------------------------------------------------------------------------
 * Tracking touched pages (write barrier, remembered set, snapshots, hot/cold maps)
 * ------------------------------------------------------------------------------- */
#define ARENA_TRACK_WRITES 1  /* report pages written */
#define ARENA_TRACK_ACCESS 2  /* report pages read or written (libsigsegv only) */
/* With ARENA_TRACK_WRITES, on the heap view only: watch only the pages that hold objects
 * that survived a collection (the old generation of ARENA_TRACE_YOUNG). Other pages
 * (allocated since the last collection, free, retained) are left open: writes to them cost
 * no fault and are not reported. A page that becomes old is reported by the next take
 * (the collection that made it old wrote it) and watched from then on. */
#define ARENA_TRACK_OLD 4

/* Start tracking the view (use arena_heap_view(a) for the heap). Every page starts
 * clean. With the libsigsegv backend every thread that writes (or, ACCESS, reads) tracked
 * pages must leave SIGSEGV unblocked: a thread that blocks it is killed by its first such
 * write; the calling thread is checked (ARENA_ESTATE), others cannot be. With ACCESS
 * tracking a system call that reads from an armed page (write(2) from it) fails with EFAULT
 * unless arena_track_prepare_io was called on the range first. Errors: ARENA_ENULL,
 * ARENA_ECLOSED, ARENA_ECONFIG (what), ARENA_EPROT (the view cannot be written / read),
 * ARENA_EBUSY (already tracking), ARENA_ENOTSUP, ARENA_ESTATE (libsigsegv backend and the
 * calling thread blocks SIGSEGV), ARENA_EVMA, -errno. ARENA_TRACK_OLD is accepted only as
 * ARENA_TRACK_WRITES | ARENA_TRACK_OLD on arena_heap_view(a) (else ARENA_ECONFIG). */
ARENA_API int arena_track_start(arena_view_t *v, int what);

/* Store up to max addresses of pages touched since start or the last take, re-arm
 * them, and set *count. Pages left over stay pending for the next take. Under VMA
 * pressure tracking coarsens to blocks of pages and reports every page of a touched
 * block (conservative, never a missed page). Errors: ARENA_ENULL, ARENA_ECLOSED,
 * ARENA_ESTATE (not tracking), -errno. */
ARENA_API int arena_track_take(arena_view_t *v, void **pages, size_t max, size_t *count);

/* What arena_track_take would report now, without re-arming anything or taking it off
 * the pending set: *count is the number of such pages, the first max of them are stored
 * (in address order; call again with room for *count to have them all). A stop-the-world
 * collector reads its remembered set with it, so that its own writes to those pages
 * (fixing fields) do not fault, and re-arms everything with the take that ends the
 * collection. With the libsigsegv backend the pages stay open, with userfaultfd written,
 * until that take. Errors as arena_track_take, and ARENA_ENOMEM. */
ARENA_API int arena_track_peek(arena_view_t *v, void **pages, size_t max, size_t *count);

/* Stop tracking: every page becomes accessible again. Errors: ARENA_ENULL,
 * ARENA_ECLOSED, ARENA_ESTATE (not tracking). */
ARENA_API int arena_track_stop(arena_view_t *v);

/* Before a system call writes into [addr, addr+len) (read(2), recv(2), ...): mark the
 * pages touched and unprotect them, so the kernel does not return EFAULT. Errors:
 * ARENA_ENULL, ARENA_ERANGE (the range wraps). */
ARENA_API int arena_track_prepare_io(arena_t *a, void *addr, size_t len);

/* Which backend tracks the view: ARENA_TRACKER_SIGSEGV or _UFFD, or -1 when none. */
ARENA_API int arena_track_backend(const arena_view_t *v);

/* ---------------------------------------------------------------------------------
 * Statistics
 * ------------------------------------------------------------------------------- */
typedef struct arena_stats {
    size_t page_size;
    size_t reserve;           /* heap reservation in bytes */
    size_t heap_pages;        /* heap slots holding objects (or reserved for them) */
    size_t allocated_bytes;   /* bytes handed out by arena_alloc since the last collection plus live */
    size_t live_bytes;        /* live bytes after the last collection */
    size_t resident_bytes;    /* heap memory resident now (mincore), retained pages included */
    size_t retained_bytes;    /* dead pages kept resident for reuse (mapped free slots and parked
                                 file pages); arena_trim releases them */
    size_t file_bytes;        /* blocks allocated to the backing file */
    size_t file_size;         /* logical size of the backing file */
    size_t vmas;              /* mappings the arena accounts for, all views */
    size_t vma_budget;
    size_t views;             /* open views, the heap's included */
    size_t collections;
    uint64_t bytes_remapped;  /* totals over every collection */
    uint64_t bytes_copied;
    uint64_t pages_released;
    uint64_t track_faults;    /* faults taken by the libsigsegv tracker */
    size_t copy_below;        /* the copy/remap break-even in pages in force */
    int backing;              /* ARENA_BACKING_MEMFD or _TMPFILE, as chosen */
    int mover;                /* the arena's mover as configured */
    size_t max_file;          /* the cap on the backing file in force, bytes (arena_config_t.max_file) */
    size_t process_vmas;      /* mappings accounted by every arena of the process */
    size_t process_vma_budget; /* the process-wide budget they all draw from (arena_config_t.vma_budget) */
} arena_stats_t;

/* Fill *s with a snapshot of the arena (takes the arena lock; one mincore pass over the
 * used heap). Errors: ARENA_ENULL. */
ARENA_API int arena_stats(const arena_t *a, arena_stats_t *s);

#ifdef __cplusplus
}
#endif
#endif /* ARENA_H */
