/*
 * track.c -- page tracking front end (docs/design.md §8).
 *
 * This first increment fixes the interface the other modules call: the hooks are
 * correct for views that are not tracked (the only kind until the backends land),
 * and the public calls refuse with ARENA_ENOTSUP.
 */
#include "internal.h"

void arena__track_view_closing(arena_view_t *v)
{
    if (v == NULL || v->track == NULL)
        return;
}

void arena__track_arena_destroy(arena_t *a)
{
    (void)a;
}

void arena__track_moved(arena_view_t *v, size_t dst, size_t src, size_t n)
{
    (void)dst;
    (void)src;
    (void)n;
    if (v == NULL || v->track == NULL)
        return;
}

int arena_track_start(arena_view_t *v, int what)
{
    if (v == NULL)
        return ARENA_ENULL;
    if (what & ~(ARENA_TRACK_WRITES | ARENA_TRACK_ACCESS) || what == 0)
        return ARENA_ECONFIG;
    return ARENA_ENOTSUP;
}

int arena_track_take(arena_view_t *v, void **pages, size_t max, size_t *count)
{
    if (count != NULL)
        *count = 0;
    if (v == NULL || count == NULL || (pages == NULL && max != 0))
        return ARENA_ENULL;
    return v->track == NULL ? ARENA_ESTATE : ARENA_ENOTSUP;
}

int arena_track_stop(arena_view_t *v)
{
    if (v == NULL)
        return ARENA_ENULL;
    return v->track == NULL ? ARENA_ESTATE : ARENA_ENOTSUP;
}

int arena_track_prepare_io(arena_t *a, void *addr, size_t len)
{
    (void)addr;
    (void)len;
    return a == NULL ? ARENA_ENULL : 0;
}

int arena_track_backend(const arena_view_t *v)
{
    (void)v;
    return -1;
}

/* Nothing is tracked by this front end yet, so a forked child has no tracking state to drop. */
void arena__track_forked(arena_t *a)
{
    (void)a;
}
