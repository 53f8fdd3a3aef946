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
/* The one-pass collector's tables at their first sizes (trace.c; arena_create), so that a
 * first collection allocates nothing either: in a thread that never called malloc before, the
 * first call sets up a malloc arena for it. Best effort: what is missing is allocated when a
 * collection needs it. */
void arena__trace_init(arena_t *a);
/* Free the one-pass collector's tables (trace.c; arena_destroy). */
void arena__trace_fini(arena_t *a);
/* trace.c names the arena whose callbacks it runs on the calling thread (NULL after); core.h's
 * arena__callable then refuses the locking calls from that thread. */
void arena__set_tracing(arena_t *a);

#endif /* ARENA_COLLECT_H */
