/*
 * core.h -- struct arena: the record that holds one arena's modules together, and the
 * constants the modules above the mapping layer share. Never installed.
 *
 * The layers (docs/design.md §2), each calling only the ones below it:
 *     os -> backing -> map -> view (track beside it) -> fork -> heap -> collect -> arena.c
 * Each module's own state is a private struct behind its header (backing.h, map.h,
 * view.h, track.h, heap.h, collect.h, fork.h); struct arena only holds pointers to them
 * and the few fields every layer from view up reads (page size, configuration, lock).
 */
#ifndef ARENA_CORE_H
#define ARENA_CORE_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "backing.h"
#include "map.h"
#include "os.h"

#define ARENA__GRANULE 16u                 /* allocation granule and alignment */
#define ARENA__2M ((size_t)2 << 20)
#define ARENA__DEFAULT_RESERVE ((size_t)64 << 30)

struct arena__track;   /* track.c */
struct arena__heap;    /* heap.h */
struct arena__gc;      /* collect.c */
struct arena__trace;   /* trace.c */

struct arena {
    uint64_t id;                 /* process-unique, never reused (thread caches key on it) */
    arena_config_t cfg;          /* as given, defaults filled in */
    size_t page_size;
    size_t page_shift;
    pthread_mutex_t lock;        /* views, file pages, slow-path allocation */
    struct arena__backing *backing;
    struct arena__budget budget; /* mappings of every view plus tracking's splits (map.c) */
    arena_view_t *heap_view;     /* the primary view: the heap */
    arena_view_t *views;         /* every open view, heap_view included (view.c links them) */
    struct arena__heap *heap;
    struct arena__gc *gc;
    struct arena__trace *trace;  /* trace.c's tables, kept between collections */
    /* statistics that outlive a collection */
    size_t collections;
    uint64_t bytes_remapped, bytes_copied, pages_released;
    _Atomic uint64_t track_faults;
    /* fork.c: 0, or the error a forked child's re-backing left (.req.fork.child-failure): every public call on
     * the arena then fails with it. Only ever set in a child, before it runs user code. */
    int fork_error;
    arena_t *fork_next;          /* fork.c's registry of live arenas */
    /* view.c: ARENA_EBROKEN once the kernel refused to undo a half-done change of the heap's
     * view: the heap's layout is no longer what the heap believes. */
    int undo_error;
    /* collect.c (arena__set_tracing): set while arena_trace_collect runs its callbacks on
     * callback_thread with the lock held (.req.trace.callback-calls). */
    atomic_bool in_callbacks;
    pthread_t callback_thread;
};

/* The error a failed re-backing left in a forked child, or 0. Public entry points check it
 * first and fail with it (arena_alloc: NULL and errno set to it). */
static inline int arena__broken(const arena_t *a)
{
    return a->fork_error ? a->fork_error : a->undo_error;
}

/* What a public call that takes the lock checks first: the error of a broken arena, or
 * ARENA_ESTATE when it comes from a callback of this arena's arena_trace_collect, whose
 * thread already holds the lock and would wait for itself forever
 * (.req.trace.callback-calls). 0 when the call may go on. */
static inline int arena__callable(const arena_t *a)
{
    int err = arena__broken(a);
    if (err == 0 && atomic_load_explicit(&a->in_callbacks, memory_order_acquire) &&
        pthread_equal(a->callback_thread, pthread_self()))
        err = ARENA_ESTATE;
    return err;
}

static inline void arena__set_broken(arena_t *a, int err)
{
    if (!a->undo_error)
        a->undo_error = err;
}

#endif /* ARENA_CORE_H */
