/*
 * heap_arena.h -- state shared by the arena backend (heap_arena.c) and its
 * generational mode (heap_gen.c).
 */
#ifndef HEAP_ARENA_H
#define HEAP_ARENA_H

#include "arena.h"
#include "lisp.h"

/* Bit of the header's mark byte (generational mode only): survived a collection. */
#define AH_OLD MARK_OLD
#define AH_REMEMBERED MARK_REMEMBERED

struct arena_heap {
    arena_t *a;
    arena_lab_t lab;     /* the interpreter's one thread allocates inline through it */
    size_t initial;      /* --heap: first threshold, and the nursery in generational mode */
    size_t threshold;    /* bytes to allocate before the next collection */
    size_t since;        /* bytes allocated since the last collection */
    size_t live;         /* bytes live after the last collection (the arena's count) */
    int gen;
    uint64_t collections;
    size_t pages_released, pages_in_place, objects_evacuated;
    uint64_t arena_pause_ns;
};
extern struct arena_heap AH;

_Noreturn __attribute__((noinline, cold)) void ah_fix_failed(val v, int rc);
_Noreturn void ah_fatal(const char *what, int err);

/* One value field: only heap pointers are references; fixnums, characters and constants
 * are left alone. Written back only when the object moved (no write, no dirty page).
 * arena_fix_inline settles a reference to an object already reached without a call. */
static inline __attribute__((always_inline)) void ah_fix_inline(arena_ss_t *ss, val *slot)
{
    val v = *slot;
    if (!PTR_P(v))
        return;
    void *p = (void *)v;
    int rc = arena_fix_inline(ss, &p);
    if (rc)
        ah_fix_failed(v, rc);
    if ((val)p != v)
        *slot = (val)p;
}

/* The value fields of o (those obj_nvals counts), unrolled per type: a collection runs this once per
 * object it reaches, and most objects are pairs, environments and closures. */
static inline __attribute__((always_inline)) void ah_fix_fields(arena_ss_t *ss, obj *o)
{
    switch (o->hdr & 0xff) {
    case T_PAIR:
        ah_fix_inline(ss, &o->f[0]);
        ah_fix_inline(ss, &o->f[1]);
        return;
    case T_ENV:
        ah_fix_inline(ss, &o->f[0]);
        ah_fix_inline(ss, &o->f[1]);
        ah_fix_inline(ss, &o->f[2]);
        return;
    case T_CLOSURE:
        for (size_t i = 0; i < 4; i++)
            ah_fix_inline(ss, &o->f[i]);
        return;
    case T_SYMBOL:
        ah_fix_inline(ss, &o->f[0]);
        return;
    case T_VECTOR:
        for (size_t i = 0, n = (size_t)(o->hdr >> 24); i < n; i++)
            ah_fix_inline(ss, &o->f[i]);
        return;
    default:
        return;
    }
}

void ah_fix_roots(arena_ss_t *ss);
void ah_fix_young_roots(arena_ss_t *ss); /* those that may name young objects */
void ah_trace(const arena_format_t *fmt, int mode);
void ah_set_threshold(size_t need);

int gen_init(void);
void gen_collect(size_t need);
void gen_fini(void);
void gen_describe(FILE *out);

#endif
