/*
 * map.h -- the mapping layer (map.c): every mapping of the backing file, the VMA budget,
 * the lazily committed tables of the modules above, and the copy/remap break-even.
 * Never installed.
 *
 * Layer 2 (docs/design.md §2): calls backing.c and os.c. Each primitive works on whole
 * arena pages and leaves its range as it was when it fails before changing anything (the
 * kernel guarantees that for a single mmap / mremap / remap); the view layer (view.c)
 * decides which to use, keeps the slot tables and undoes earlier steps of an operation.
 */
#ifndef ARENA_MAP_H
#define ARENA_MAP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "backing.h"

/* ------------------------------------------------------------------ mapping ---- */
/* [addr, addr+npages) shows file pages file_page.. of b with prot (ARENA_PROT_*), shared or
 * private (copy-on-write). mover: REMAP_FILE_PAGES needs the range to be a shared file
 * mapping already (the caller checks); MMAP_FIXED works always. */
int arena__map_run(const struct arena__backing *b, char *addr, size_t file_page, size_t npages, int prot,
                   int mover, bool priv);
/* The range shows nothing again (PROT_NONE reservation). */
/* munmap [addr, addr+len), leaving a gap the caller fills at once (undo paths only). */
int arena__map_release(char *addr, size_t len);
int arena__map_unmap(const struct arena__backing *b, char *addr, size_t npages);
/* mremap(MREMAP_FIXED|MREMAP_DONTUNMAP) src -> dst, then src (where dst does not cover it)
 * goes back to the reservation. Overlapping ranges go through a scratch reservation.
 * Page tables move along: no refault. The source range must be one mapping. */
int arena__map_mremap(const struct arena__backing *b, char *dst, char *src, size_t npages);
/* Non-overlapping ranges a and b, each one mapping, trade what they show (page tables move
 * along). Returns an error with both as they were; or 0 with *swapped true, or 0 with
 * *swapped false when a shows b's pages and b shows nothing. */
int arena__map_swap(const struct arena__backing *b, char *a_addr, char *b_addr, size_t npages, bool *swapped);
/* True when the kernel supports MREMAP_DONTUNMAP on shared mappings (probed once). */
bool arena__map_have_dontunmap(void);
/* Protection of a mapped range (ARENA_PROT_*). */
int arena__map_protect(char *addr, size_t len, int prot);
/* Fill the page tables of a shared range whose file pages are reserved (advice only). */
void arena__map_populate(char *addr, size_t len);

/* ------------------------------------------------------- windows and copies ---- */
/* A temporary shared read-write mapping of file pages [first, first+npages), populated:
 * NULL with errno on failure. Close it (or the part not handed on) with
 * arena__map_window_close. */
char *arena__map_window(const struct arena__backing *b, size_t first, size_t npages);
void arena__map_window_close(const struct arena__backing *b, char *w, size_t npages);
/* Copy file pages from.. into to.. of the same file through temporary mappings (so the
 * copy neither faults on a tracked or protected view nor counts as a write to it). */
int arena__map_copy(const struct arena__backing *b, size_t to, size_t from, size_t npages);
/* Copy every handed-out page of b into its twin (arena__backing_twin), same page numbers. */
int arena__map_copy_to_twin(const struct arena__backing *twin, const struct arena__backing *b);

/* ------------------------------------------------------------------- tables ---- */
/* len bytes of private anonymous memory, zero, committed page by page as it is touched
 * (MAP_NORESERVE): the slot tables of views and the heap's tables. NULL with errno. */
void *arena__map_table(size_t len);
int arena__map_table_free(void *p, size_t len);

/* ---------------------------------------------------------------- VMA budget ---- */
/* Mappings accounted to one arena against its limit (.req.map.vma-budget). Fields are map.c's. */
struct arena__budget {
    size_t limit;
    _Atomic size_t used;
};
/* The limit to use for a configured budget (0 = the process-wide one, .req.map.process-budget), clamped so a
 * rollback always has mappings left (.req.map.vma-budget). The first call sets the process-wide limit to a
 * safe share of vm.max_map_count; a larger configured budget raises it. */
size_t arena__budget_limit_for(size_t configured);
void arena__budget_init(struct arena__budget *bu, size_t limit);
size_t arena__budget_used(const struct arena__budget *bu);
size_t arena__budget_limit(const struct arena__budget *bu);
/* Mappings that may still be added: within the arena's limit and the process-wide one
 * (.req.map.process-budget: every arena of the process draws from one budget). */
size_t arena__budget_room(const struct arena__budget *bu);
/* 0 when adding `extra` mappings keeps within both limits, else ARENA_EVMA. */
int arena__budget_check(const struct arena__budget *bu, size_t extra);
/* The process-wide count and limit (arena_stats). */
size_t arena__budget_process_used(void);
size_t arena__budget_process_limit(void);
/* The accounted count goes from `from` to `to` (a view's count changed, tracking split). */
void arena__budget_change(struct arena__budget *bu, size_t from, size_t to);

/* ---------------------------------------------------- copy/remap break-even ---- */
/* Run length in arena pages below which copying beats remapping: configured (non-zero)
 * or measured once per process. */
size_t arena__map_copy_below(size_t configured, size_t page_size);

#endif /* ARENA_MAP_H */
