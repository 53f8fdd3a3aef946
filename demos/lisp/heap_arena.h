/*
 * heap_arena.h -- state shared by the arena backend (heap_arena.c) and its
 * generational mode (heap_gen.c).
 */
#ifndef HEAP_ARENA_H
#define HEAP_ARENA_H

#include "arena.h"
#include "lisp.h"

/* Bits of the header's mark byte (generational mode only). */
#define AH_OLD 2     /* survived a collection */
#define AH_SCANNED 4 /* an old object whose fields this young collection fixed */

struct arena_heap {
    arena_t *a;
    size_t initial;      /* --heap: first threshold, and the nursery in generational mode */
    size_t threshold;    /* bytes to allocate before the next collection */
    size_t since;        /* bytes allocated since the last collection */
    size_t live;         /* bytes live after the last collection (the arena's count) */
    int gen;
    uint64_t collections, marked_objects;
    size_t pages_released, pages_in_place, objects_evacuated;
    uint64_t arena_pause_ns;
};
extern struct arena_heap AH;

void ah_fix(arena_ss_t *ss, val *slot);
void ah_fix_fields(arena_ss_t *ss, obj *o);
void ah_fix_roots(arena_ss_t *ss);
void ah_trace(const arena_format_t *fmt, int mode);
void ah_set_threshold(size_t need);

int gen_init(void);
void gen_collect(size_t need);
void gen_fini(void);
void gen_describe(FILE *out);

#endif
