/*
 * track.h -- page tracking (track.c and its backends, docs/design.md §8). Never installed.
 * Beside the view layer (docs/design.md §2): calls view.c, map.c and os.c; view.c reaches it
 * only through the hooks of struct arena__view_hooks (arena__track_view_hooks).
 * Its public entry points (arena_track_*) are declared in arena.h.
 */
#ifndef ARENA_TRACK_H
#define ARENA_TRACK_H

#include "core.h"

struct arena__view_hooks;
/* What view.c must tell the tracker (a slot run moved, a view closing): registered with
 * arena__view_set_hooks by arena_create. */
extern const struct arena__view_hooks arena__track_view_hooks;

/* Every call below is a no-op for a view that is not tracked, so callers need not test. */
void arena__track_arena_destroy(arena_t *a);      /* stop tracking every view of the arena */
/* AFTER slots [src, src+n) of view v moved to [dst, dst+n) (any mover, copying included):
 * the moved pages keep their touched state (.req.track.moves). Calling it twice for one move is harmless.
 * Other changes of what slots show need no call: tracking finds them by comparing slot
 * records (arena__view_changed) and counts their pages as touched (.req.track.new-contents). */
void arena__track_moved(arena_view_t *v, size_t dst, size_t src, size_t n);
/* ARENA_TRACK_OLD's scope: set bit s of bits (zeroed, slots [0, end)) when heap slot s
 * holds objects that survived a collection (heap.c's arena__heap_old_slots, registered by
 * arena_create). Called with the arena lock held. */
void arena__track_set_old_hook(void (*fn)(const arena_t *a, size_t end, uint64_t *bits));
/* fork.c's hook (struct arena__fork_hooks.track), see fork.h. */
void arena__track_forked(arena_t *a);

#endif /* ARENA_TRACK_H */
