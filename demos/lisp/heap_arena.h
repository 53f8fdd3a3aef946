/*
 * heap_arena.h -- state shared by the arena backend (heap_arena.c) and its
 * generational mode (heap_gen.c).
 */
#ifndef HEAP_ARENA_H
#define HEAP_ARENA_H

#include "arena.h"
#include "lisp.h"

/* Bits of the header's mark byte. */
#define AH_MARKED 1  /* reached in this collection's mark pass, not yet fixed */
#define AH_OLD 2     /* survived a collection (generational mode) */
#define AH_SCANNED 4 /* an old object whose fields this minor collection traced */

struct arena_heap {
    arena_t *a;
    size_t initial;      /* --heap: first threshold, and the nursery in generational mode */
    size_t threshold;    /* bytes to allocate before the next collection */
    size_t since;        /* bytes allocated since the last collection */
    size_t live;         /* bytes live after the last collection (arena_collect's count) */
    val *stack;          /* the mark stack */
    size_t sp, cap;
    int gen;
    uint64_t collections, marked_objects;
    size_t pages_released, pages_remapped, pages_copied, objects_evacuated;
    uint64_t arena_pause_ns;
};
extern struct arena_heap AH;

void ah_push(val v);
val ah_forward(val v);
void ah_mark_roots(void);
void ah_fix_roots(void);
void ah_mark_drain(int young_only);
void ah_fix_drain(void (*survivor)(obj *o));
void ah_run_collect(void);
void ah_set_threshold(size_t need);

int gen_init(void);
void gen_collect(size_t need);
void gen_fini(void);
void gen_describe(FILE *out);

#endif
