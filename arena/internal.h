/*
 * internal.h -- types and interfaces shared between the library's modules. Never installed.
 *
 * Data flows one way (docs/design.md §2):
 *     os -> backing -> move -> view -> heap -> collect,   with track beside view.
 * Nothing below view.c knows about objects; nothing above view.c calls mmap.
 * Each module owns its state; struct arena only holds them together.
 */
#ifndef ARENA_INTERNAL_H
#define ARENA_INTERNAL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "os.h"

#define ARENA__GRANULE 16u                 /* allocation granule and alignment */
#define ARENA__NO_PAGE32 UINT32_MAX        /* slot table entry: the slot shows nothing */
#define ARENA__2M ((size_t)2 << 20)
#define ARENA__DEFAULT_RESERVE ((size_t)64 << 30)

/* ---------------------------------------------------------------- backing.c ---- */
/* The backing file: one memfd (or O_TMPFILE file), a page allocator over it.
 * Every page handed out is fallocate()d first, so a write to it can never SIGBUS;
 * every page given back is punched, so its memory returns to the system at once. */
struct arena__backing {
    int fd;
    int kind;              /* ARENA_BACKING_MEMFD or ARENA_BACKING_TMPFILE */
    size_t page_size;      /* arena page */
    size_t file_pages;     /* current file size in pages */
    size_t max_pages;      /* cap from cfg.max_file; 0 = none */
    uint64_t *used;        /* bit per file page: handed out */
    size_t used_cap;       /* capacity of used[] in pages */
    size_t used_count;
    size_t hint;           /* first page worth searching from */
};

int arena__backing_open(struct arena__backing *b, const arena_config_t *cfg, size_t page_size);
void arena__backing_close(struct arena__backing *b);
/* npages consecutive free file pages, reserved and zero; *first gets the first. */
int arena__backing_alloc(struct arena__backing *b, size_t npages, size_t *first);
/* Punch and free. */
int arena__backing_free(struct arena__backing *b, size_t first, size_t npages);
/* Punch only: the memory goes back to the system, contents read as zero, the pages stay
 * handed out. A punched page is no longer reserved: call arena__backing_reserve before
 * writing to it again, or a write under memory pressure could SIGBUS (R4.4). */
int arena__backing_punch(struct arena__backing *b, size_t first, size_t npages);
/* fallocate handed-out pages again (after a punch): ENOSPC / ENOMEM instead of SIGBUS. */
int arena__backing_reserve(struct arena__backing *b, size_t first, size_t npages);
bool arena__backing_is_used(const struct arena__backing *b, size_t page);
/* Blocks allocated to the file, in bytes (fstat st_blocks * 512). */
size_t arena__backing_bytes(const struct arena__backing *b);

/* ------------------------------------------------------------------- move.c ---- */
/* The primitives that change what a virtual range shows. Each works on whole arena
 * pages and leaves the range as it was on failure where the kernel allows it; the
 * callers (view.c) restore the rest. */
struct arena__move_ctx {
    int fd;               /* the backing file */
    size_t page_size;
    int map_flags;        /* MAP_SHARED or MAP_PRIVATE */
};

/* [addr, addr+npages) shows file pages file_page.. with prot (PROT_* values).
 * mover: REMAP_FILE_PAGES needs the range to be a shared file mapping already (the
 * caller checks); MMAP_FIXED works always. */
int arena__move_map(const struct arena__move_ctx *c, char *addr, size_t file_page, size_t npages,
                    int prot, int mover);
/* The range shows nothing again (PROT_NONE reservation). */
int arena__move_unmap(const struct arena__move_ctx *c, char *addr, size_t npages);
/* mremap(MREMAP_FIXED|MREMAP_DONTUNMAP) src -> dst, then src (where dst does not cover it)
 * goes back to the reservation. Overlapping ranges go through a scratch reservation.
 * Page tables move along: no refault. The source range must be one mapping. */
int arena__move_mremap(const struct arena__move_ctx *c, char *dst, char *src, size_t npages);
/* True when the kernel supports MREMAP_DONTUNMAP on shared mappings (probed once). */
bool arena__move_have_dontunmap(void);
/* Copy the contents of file pages from.. to to.. through temporary mappings. */
int arena__move_copy_file(const struct arena__move_ctx *c, size_t to, size_t from, size_t npages);

/* ------------------------------------------------------------------- view.c ---- */
struct arena__track;

struct arena_view {
    arena_t *arena;
    char *base;            /* slot 0; 2 MiB aligned */
    size_t nslots;
    int layout;            /* enum arena_view_layout */
    int prot;              /* ARENA_PROT_* of the view */
    int flags;             /* ARENA_VIEW_PRIVATE */
    int mover;             /* enum arena_mover */
    bool closed;
    bool is_heap;
    /* Slot table, lazily committed anonymous memory (untouched = zero), so it is stored
     * complemented: slot_enc[i] == ~file_page, 0 = the slot shows nothing. Read it with
     * arena__view_page(); only view.c writes it. */
    uint32_t *slot_enc;
    /* Per-slot protection, NULL until arena_view_protect first differs from the view's:
     * slot_prot[i] ^ prot is the slot's ARENA_PROT_*. Read with arena__view_slot_prot(). */
    uint8_t *slot_prot;
    size_t vmas;           /* mappings accounted: maximal runs of slots showing consecutive file
                              pages with equal protection, plus runs of empty slots */
    size_t shown;          /* slots showing a file page */
    size_t high;           /* 1 + the highest slot that ever showed a file page */
    int registry;          /* index in the process-wide table of views (view.c), -1 = none */
    bool out_of_step;      /* MIRROR: the last collection could not update it (R9.6); until one
                              does, arena_view_addr returns NULL for it */
    struct arena__track *track;   /* NULL when not tracking */
    struct arena_view *next;      /* in arena->views */
};

/* Internal entry points used by heap/collect/track (the public API wraps them with
 * argument checks and the arena lock; these assume both were done). */
int arena__view_create(arena_t *a, int layout, size_t nslots, int prot, int flags, bool is_heap,
                       arena_view_t **out);
void arena__view_destroy(arena_view_t *v);
/* Set slots to show file pages (or ARENA_NO_PAGE) with a given mover; checks the budget
 * first, restores the old contents on failure. */
int arena__view_set(arena_view_t *v, size_t slot, const size_t *file_pages, size_t n, int mover);
int arena__view_set_run(arena_view_t *v, size_t slot, size_t file_page, size_t n, int mover);
/* As arena__view_set_run, by moving the caller's populated shared mapping of those file
 * pages (at scratch) into place; the scratch mapping is consumed either way. */
int arena__view_adopt_run(arena_view_t *v, size_t slot, size_t file_page, size_t n, char *scratch);
/* Slots dst.. show what src.. showed, src.. (outside dst..) nothing; all-or-nothing.
 * MREMAP carries page tables; COPY shows fresh file pages from the backing holding a copy
 * (the old pages stay allocated: their owner frees them); MMAP_FIXED / REMAP_FILE_PAGES
 * map the same file pages at dst. AUTO = the view's mover. Calls arena__track_moved on
 * success, so callers must not. */
int arena__view_move_run(arena_view_t *v, size_t dst, size_t src, size_t n, int mover);
/* Slots [slot, slot+n) get protection prot (ARENA_PROT_*): budget first, all-or-nothing. */
int arena__view_protect(arena_view_t *v, size_t slot, size_t n, int prot);
/* The mapping count the view would have if slots [slot, slot+n) showed file pages
 * (file_pages[i], or file_page+i when file_pages is NULL; ARENA_NO_PAGE for nothing). */
size_t arena__view_vmas_if(const arena_view_t *v, size_t slot, const size_t *file_pages,
                           size_t file_page, size_t n);
/* The file page slot shows, or ARENA_NO_PAGE. */
static inline size_t arena__view_page(const arena_view_t *v, size_t slot)
{
    uint32_t e = v->slot_enc[slot];
    return e ? (size_t)~e : ARENA_NO_PAGE;
}
/* The slot's ARENA_PROT_* (the view's unless arena_view_protect changed it). */
static inline int arena__view_slot_prot(const arena_view_t *v, size_t slot)
{
    return v->slot_prot ? (v->slot_prot[slot] ^ v->prot) : v->prot;
}
/* The view of arena a containing addr, or NULL; *slot gets the slot. Lock-free and
 * async-signal-safe: it reads a process-wide published table of view ranges. */
arena_view_t *arena__view_find(const arena_t *a, const void *addr, size_t *slot);
/* The same across every arena of the process (for the SIGSEGV tracker). */
arena_view_t *arena__view_find_any(const void *addr, size_t *slot);

/* ------------------------------------------------------------------- heap.c ---- */
struct arena__heap;    /* private to heap.c and collect.c: see heap.h */
int arena__heap_init(arena_t *a);
void arena__heap_fini(arena_t *a);   /* frees the heap's tables; the heap view dies with the views */
/* arena_stats' heap fields: heap_pages, live_bytes, allocated_bytes (a->lock held). */
void arena__heap_stats(const arena_t *a, arena_stats_t *s);

/* ---------------------------------------------------------------- collect.c ---- */
struct arena__gc;      /* forwarding tables of the last collection: private to collect.c */
void arena__gc_fini(arena_t *a);

/* ------------------------------------------------------------------ track.c ---- */
/* Every hook below is a no-op for a view that is not tracked, so callers need not test.
 * Before a view is unmapped (arena_view_close, arena_destroy) tracking stops. */
void arena__track_view_closing(arena_view_t *v);
void arena__track_arena_destroy(arena_t *a);      /* stop tracking every view of the arena */
/* AFTER slots [src, src+n) of view v moved to [dst, dst+n) (any mover, copying included):
 * the moved pages keep their touched state (R8.6). Calling it twice for one move is harmless.
 * Other changes of what slots show need no call: tracking finds them in the slot table and
 * counts their pages as touched (R8.7). */
void arena__track_moved(arena_view_t *v, size_t dst, size_t src, size_t n);
/* BEFORE view.c re-creates or re-protects the mappings of slots [slot, slot+n) (map, unmap,
 * mprotect, an undo): the new mapping is open to the mutator even when it shows the same
 * file page with the same protection as when it was armed, so the next take must count
 * those slots as touched (R8.7) instead of trusting the slot table. */
void arena__track_remapping(arena_view_t *v, size_t slot, size_t n);

/* ------------------------------------------------------------------ arena.c ---- */
struct arena {
    uint64_t id;                 /* process-unique, never reused (thread caches key on it) */
    arena_config_t cfg;          /* as given, defaults filled in */
    size_t page_size;
    size_t page_shift;
    size_t vma_budget;
    pthread_mutex_t lock;        /* views, file pages, slow-path allocation */
    struct arena__backing backing;
    arena_view_t *heap_view;     /* the primary view: the heap */
    arena_view_t *views;         /* every open view, heap_view included */
    struct arena__heap *heap;
    struct arena__gc *gc;
    /* mappings added by tracking (protection splits): track.c keeps it, arena__vmas adds it */
    _Atomic size_t track_vmas;
    /* statistics that outlive a collection */
    size_t collections;
    uint64_t bytes_remapped, bytes_copied, pages_released;
    _Atomic uint64_t track_faults;
    /* fork.c: 0, or the error a forked child's re-backing left (R9.3): every public call on
     * the arena then fails with it. Only ever set in a child, before it runs user code. */
    int fork_error;
    arena_t *fork_next;          /* fork.c's registry of live arenas */
};

/* Needs struct arena complete, hence here rather than with the other view entries. */
static inline char *arena__view_slot_addr(const arena_view_t *v, size_t slot)
{
    return v->base + slot * v->arena->page_size;
}

/* Sum of the mappings accounted by every view of the arena (plus tracking splits). */
size_t arena__vmas(const arena_t *a);
/* 0 when adding `extra` mappings keeps the arena within its budget, else ARENA_EVMA. */
int arena__vma_check(const arena_t *a, size_t extra);
/* The copy/remap break-even in pages (cfg.copy_below, or calibrated once). */
size_t arena__copy_below(arena_t *a);

/* ------------------------------------------------------------------- fork.c ---- */
/* fork() (docs/design.md §9). arena_create calls arena__fork_register once the arena is
 * complete (the first call installs the pthread_atfork handlers); arena_destroy calls
 * arena__fork_unregister first. In a forked child every registered arena is re-backed by a
 * private copy of its file, so parent and child no longer share heap memory. */
int arena__fork_register(arena_t *a);
void arena__fork_unregister(arena_t *a);
/* The error a failed re-backing left in a forked child, or 0. Public entry points check it
 * first and fail with it (arena_alloc: NULL and errno set to it). */
static inline int arena__broken(const arena_t *a)
{
    return a->fork_error;
}
/* Hooks fork.c calls in the child, with the arena lock held and only the forking thread alive.
 * heap.c: forget per-thread allocation state (the threads owning it do not exist here: bump the
 * epoch). track.c: runs after the views were re-mapped onto the child's file with the view's
 * protection; kernel tracking state inherited from the parent (a userfaultfd context acts on the
 * parent's mm, so no ioctl on it) must be dropped, then tracking re-armed with every page
 * reported touched at the next take (conservative) or stopped. */
void arena__heap_forked(arena_t *a);
void arena__track_forked(arena_t *a);

/* Convert ARENA_PROT_* to PROT_*. */
int arena__prot_os(int prot);

#endif /* ARENA_INTERNAL_H */
