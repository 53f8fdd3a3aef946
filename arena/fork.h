/*
 * fork.h -- fork() of a process that holds arenas (fork.c, docs/design.md §9). Never installed.
 * Layer 4 (docs/design.md §2): calls view.c, map.c, backing.c and os.c; heap and tracking
 * state is reset through the hooks arena.c registers, never by a direct call.
 */
#ifndef ARENA_FORK_H
#define ARENA_FORK_H

#include "core.h"

/* Run in a forked child with the arena lock held and only the forking thread alive.
 * heap: forget per-thread allocation state (the threads owning it do not exist here).
 * track: runs after the views were re-mapped onto the child's file with the view's
 * protection; kernel tracking state inherited from the parent must be dropped, then
 * tracking re-armed with every page reported touched at the next take, or stopped. */
struct arena__fork_hooks {
    void (*heap)(arena_t *a);
    void (*track)(arena_t *a);
};
void arena__fork_set_hooks(const struct arena__fork_hooks *hooks);

/* arena_create calls arena__fork_register once the arena is complete (the first call
 * installs the pthread_atfork handlers); arena_destroy calls arena__fork_unregister first.
 * In a forked child every registered arena is re-backed by a private copy of its file, so
 * parent and child no longer share heap memory. */
int arena__fork_register(arena_t *a);
void arena__fork_unregister(arena_t *a);

#endif /* ARENA_FORK_H */
