/*
 * view.h -- views (view.c): a virtual range whose every slot shows one file page or
 * nothing. Never installed. The struct is private to view.c; neighbours use the accessors.
 *
 * Layer 3 (docs/design.md §2): calls map.c, backing.c and os.c. The tracker (beside this
 * layer, above it in the call graph) is told of changes through the hooks it registers,
 * never by a direct call.
 */
#ifndef ARENA_VIEW_H
#define ARENA_VIEW_H

#include "core.h"

/* Called by view.c with the arena lock held. Registered once (arena_create) by the layer
 * that owns tracking; until then, and for a hook left NULL, nothing is called. */
struct arena__view_hooks {
    /* Before the view's range is unmapped (arena_view_close, arena_destroy). */
    void (*closing)(arena_view_t *v);
    /* BEFORE view.c re-creates or re-protects the mappings of slots [slot, slot+n) (map,
     * unmap, mprotect, an undo): the new mapping is open to the mutator even when it shows
     * the same file page with the same protection as before. */
    void (*remapping)(arena_view_t *v, size_t slot, size_t n);
    /* AFTER slots [src, src+n) moved to [dst, dst+n) (any mover, copying included). */
    void (*moved)(arena_view_t *v, size_t dst, size_t src, size_t n);
};
void arena__view_set_hooks(const struct arena__view_hooks *hooks);

/* Internal entry points used by heap/collect/track/fork (the public API wraps them with
 * argument checks and the arena lock; these assume both were done). */
int arena__view_create(arena_t *a, int layout, size_t nslots, int prot, int flags, bool is_heap,
                       arena_view_t **out);
void arena__view_destroy(arena_view_t *v);
/* Set slots to show file pages (or ARENA_NO_PAGE) with a given mover; checks the budget
 * first, restores the old contents on failure. */
int arena__view_set(arena_view_t *v, size_t slot, const size_t *file_pages, size_t n, int mover);
int arena__view_set_run(arena_view_t *v, size_t slot, size_t file_page, size_t n, int mover);
/* As arena__view_set_run, by moving the caller's populated shared mapping of those file
 * pages (at scratch: an arena__map_window) into place; the scratch mapping is consumed
 * either way. */
int arena__view_adopt_run(arena_view_t *v, size_t slot, size_t file_page, size_t n, char *scratch);
/* Slots dst.. show what src.. showed, src.. (outside dst..) nothing; all-or-nothing.
 * MREMAP carries page tables; COPY shows fresh file pages from the backing holding a copy
 * (the old pages stay allocated: their owner frees them); MMAP_FIXED / REMAP_FILE_PAGES
 * map the same file pages at dst. AUTO = the view's mover. Calls the `moved` hook on
 * success. */
int arena__view_move_run(arena_view_t *v, size_t dst, size_t src, size_t n, int mover);
/* dst and src (not overlapping, each one run at one protection) trade what they show by
 * page-table moves; 0 with *swapped false: dst shows src's pages, src nothing. */
int arena__view_swap_run(arena_view_t *v, size_t dst, size_t src, size_t n, bool *swapped);
/* Slots [slot, slot+n) get protection prot (ARENA_PROT_*): budget first, all-or-nothing. */
int arena__view_protect(arena_view_t *v, size_t slot, size_t n, int prot);
/* The mapping count the view would have if slots [slot, slot+n) showed file pages
 * (file_pages[i], or file_page+i when file_pages is NULL; ARENA_NO_PAGE for nothing). */
size_t arena__view_vmas_if(const arena_view_t *v, size_t slot, const size_t *file_pages,
                           size_t file_page, size_t n);
/* Fill the page tables of slots [slot, slot+n) (advice: errors are ignored). */
void arena__view_populate(arena_view_t *v, size_t slot, size_t n);
/* Re-back (fork.c): every run the view shows is mapped from twin instead of the arena's
 * backing file, at the same addresses, with the same protections and mapping count. On
 * failure the runs already changed show the old file again and the error is returned. */
int arena__view_reback(arena_view_t *v, const struct arena__backing *twin);
/* Undo a successful arena__view_reback of a view (a later view failed). */
int arena__view_reback_undo(arena_view_t *v);

/* ------------------------------------------------------------- accessors ---- */
char *arena__view_base(const arena_view_t *v);
size_t arena__view_nslots(const arena_view_t *v);
char *arena__view_slot_addr(const arena_view_t *v, size_t slot);
/* The file page slot shows, or ARENA_NO_PAGE. */
size_t arena__view_page(const arena_view_t *v, size_t slot);
/* The slot's ARENA_PROT_* (the view's unless arena_view_protect changed it). */
int arena__view_slot_prot(const arena_view_t *v, size_t slot);
int arena__view_prot(const arena_view_t *v);          /* the view's ARENA_PROT_* */
int arena__view_flags(const arena_view_t *v);         /* ARENA_VIEW_PRIVATE */
arena_t *arena__view_arena(const arena_view_t *v);
bool arena__view_closed(const arena_view_t *v);
bool arena__view_is_heap(const arena_view_t *v);
bool arena__view_is_mirror(const arena_view_t *v);    /* an open MIRROR view */
size_t arena__view_vmas(const arena_view_t *v);        /* mappings accounted */
/* 1 + the highest slot that ever showed a file page, at most nslots: slots past it never
 * showed anything, so whole-view walks stop there. */
size_t arena__view_used_end(const arena_view_t *v);
arena_view_t *arena__view_next(const arena_view_t *v); /* in arena->views */
/* MIRROR: the last collection could not update it; until one does, arena_view_addr
 * returns NULL for it (.req.fault.no-data-loss). */
void arena__view_set_out_of_step(arena_view_t *v, bool out);
/* The tracker's per-view state (track.c owns it; NULL when not tracking). Published for
 * registry readers (arena__view_visit): set it before a fault can need it; replacing a
 * tracker returns only after every reader that may have read the old one has left, so the
 * caller may then free it. */
struct arena__track *arena__view_track(const arena_view_t *v);
void arena__view_set_track(arena_view_t *v, struct arena__track *t);

/* Records of what slots show, for a neighbour (the tracker) to compare later: an opaque
 * 32-bit record of the file page (0 = nothing) and an 8-bit one of the protection per slot.
 * snapshot writes the records of slots [lo, hi) into rec[lo..hi) and prot[lo..hi);
 * changed is true when a slot of [lo, hi) differs from its records. With prot NULL
 * protections are neither written nor compared. */
/* A record no slot ever has: a neighbour's record set to it always reads as changed. */
#define ARENA__VIEW_REC_STALE 1u
void arena__view_snapshot(const arena_view_t *v, size_t lo, size_t hi, uint32_t *rec, uint8_t *prot);
bool arena__view_changed(const arena_view_t *v, size_t lo, size_t hi, const uint32_t *rec,
                         const uint8_t *prot);

/* The view of arena a containing addr, or NULL; *slot gets the slot. Lock-free and
 * async-signal-safe: it reads a process-wide published table of view ranges. The view may
 * close (and its tracker go) as soon as it returns: a caller that uses it concurrently
 * with its owner needs arena__view_visit. */
arena_view_t *arena__view_find(const arena_t *a, const void *addr, size_t *slot);
/* The same across every arena of the process. */
arena_view_t *arena__view_find_any(const void *addr, size_t *slot);
/* fn(v, slot, arg) for the view v of any arena containing addr, run inside the registry's
 * reader bracket: until fn returns, v is not freed and neither is a tracker replaced by
 * arena__view_set_track. Returns fn's result, or 0 when no view contains addr. Lock-free;
 * async-signal-safe when fn is (the SIGSEGV tracker's fault handler). fn must not change
 * the registry (create or close a view, set a tracker): that waits for it. */
int arena__view_visit(const void *addr, int (*fn)(arena_view_t *v, size_t slot, void *arg), void *arg);
/* fork.c, in the child: the registry's reader counts and lock as no thread holds them. */
void arena__view_forked(void);

#endif /* ARENA_VIEW_H */
