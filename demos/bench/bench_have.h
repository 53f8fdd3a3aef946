/*
 * bench_have.h -- which library entry points this build of arena has.
 *
 * The library is written by several people in parallel; arena-bench and arena-stress
 * are built against whatever has landed. Every entry point the tools use is declared
 * weak: one that is not in the library links as NULL, and the row (or mode) that
 * needs it is skipped with a note instead of failing to build or being faked.
 * With a static library a weak reference alone does not pull an archive member in:
 * the life-cycle calls (arena_create, arena_destroy, arena_strerror) are referenced
 * strongly, and the library's own references from them pull in the heap, collection,
 * views, tracking and statistics.
 */
#ifndef ARENA_BENCH_HAVE_H
#define ARENA_BENCH_HAVE_H

#include "arena.h"

#pragma weak arena_alloc
#pragma weak arena_object
#pragma weak arena_object_size
#pragma weak arena_contains
#pragma weak arena_mark
#pragma weak arena_pin
#pragma weak arena_collect
#pragma weak arena_forward
#pragma weak arena_view_open
#pragma weak arena_view_close
#pragma weak arena_heap_view
#pragma weak arena_view_base
#pragma weak arena_view_slots
#pragma weak arena_view_addr
#pragma weak arena_track_start
#pragma weak arena_track_take
#pragma weak arena_track_stop
#pragma weak arena_track_backend
#pragma weak arena_stats
#pragma weak arena_trim
#pragma weak arena_allocated_bytes

#define ARENA_HAVE(fn) ((void (*)(void))(fn) != (void (*)(void))0)

/* arena_strerror when present, else a number. */
static inline const char *arena_have_strerror(int err)
{
    return arena_strerror(err);
}

#endif
