/*
 * backing.h -- the backing file and the allocator of its pages (backing.c). Never installed.
 * Layer 1 (docs/design.md §2): calls os.c only. The struct is private to backing.c; the
 * descriptor itself is handed out to the map layer (map.c) and nowhere else.
 */
#ifndef ARENA_BACKING_H
#define ARENA_BACKING_H

#include <stdbool.h>
#include <stddef.h>

#include "arena.h"

struct arena__backing;

/* Open a backing file as cfg asks (kind, dir, max_file); *out gets it. */
int arena__backing_open(struct arena__backing **out, const arena_config_t *cfg, size_t page_size);
void arena__backing_close(struct arena__backing *b);   /* NULL is ignored */
/* npages consecutive free file pages, reserved and zero; *first gets the first. */
int arena__backing_alloc(struct arena__backing *b, size_t npages, size_t *first);
/* Punch and free. */
int arena__backing_free(struct arena__backing *b, size_t first, size_t npages);
/* Punch only: the memory goes back to the system, contents read as zero, the pages stay
 * handed out. A punched page is no longer reserved: call arena__backing_reserve before
 * writing to it again, or a write under memory pressure could SIGBUS (.req.backing.reserve-before-use). */
int arena__backing_punch(struct arena__backing *b, size_t first, size_t npages);
/* fallocate handed-out pages again (after a punch): ENOSPC / ENOMEM instead of SIGBUS. */
int arena__backing_reserve(struct arena__backing *b, size_t first, size_t npages);
bool arena__backing_is_used(const struct arena__backing *b, size_t page);
/* 0 when file pages [first, first+n) are all handed out, else ARENA_ERANGE. */
int arena__backing_check_used(const struct arena__backing *b, size_t first, size_t n);
/* The next run [*first, *first + return) of handed-out pages at or after from; 0 at the end. */
size_t arena__backing_next_used(const struct arena__backing *b, size_t from, size_t *first);
/* Blocks allocated to the file, in bytes (fstat st_blocks * 512). */
size_t arena__backing_bytes(const struct arena__backing *b);
size_t arena__backing_file_pages(const struct arena__backing *b);   /* file size in pages */
size_t arena__backing_used_pages(const struct arena__backing *b);   /* pages handed out */
size_t arena__backing_max_pages(const struct arena__backing *b);    /* cap in pages */
size_t arena__backing_page_size(const struct arena__backing *b);
int arena__backing_kind(const struct arena__backing *b);            /* ARENA_BACKING_* */

/* Re-backing (fork.c through map.c): a twin is a new file of the same kind, place and size
 * with the same pages handed out and reserved (not yet copied). arena__backing_swap makes b
 * use the twin's file and closes b's old one; the twin is consumed either way. */
int arena__backing_twin(const struct arena__backing *b, struct arena__backing **out);
void arena__backing_swap(struct arena__backing *b, struct arena__backing *twin);

/* For map.c only (the call-graph check enforces it): the descriptor. */
int arena__backing_fd(const struct arena__backing *b);

#endif /* ARENA_BACKING_H */
