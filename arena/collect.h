/*
 * collect.h -- the compacting collector (collect.c, docs/design.md §7). Never installed.
 * Layer 6 (docs/design.md §2): calls heap.c, track.c, view.c, map.c, backing.c and os.c.
 * Its public entry points (arena_collect, arena_forward, ...) are declared in arena.h.
 */
#ifndef ARENA_COLLECT_H
#define ARENA_COLLECT_H

#include "core.h"

/* Free the forwarding tables of the last collection (arena_destroy). */
void arena__gc_fini(arena_t *a);
/* Free the one-pass collector's tables (trace.c; arena_destroy). */
void arena__trace_fini(arena_t *a);
/* True while arena_trace_collect runs a's callbacks on the calling thread (trace.c). */
bool arena__tracing(const arena_t *a);

#endif /* ARENA_COLLECT_H */
