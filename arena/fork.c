/*
 * fork.c -- fork() of a process that holds arenas (docs/design.md §9, .req.fork.no-tear to .req.fork.thread-state).
 *
 * Every heap page is a page of a MAP_SHARED file, so after a plain fork() parent and
 * child would write into the same memory. The atfork handlers give the child its own
 * copy of every arena:
 *   prepare  (parent, before fork): take every arena's lock, so no thread is in the middle
 *            of a slow-path allocation, a view change or a collection (.req.fork.no-tear);
 *   child    (only the forking thread exists): clear the view registry's reader counts that
 *            other threads held at fork() (view.c); per arena, copy every file page in use into
 *            a new file, tell the parent the copy is complete, then re-map every view run onto
 *            the new file at the same address (.req.fork.no-shared-memory);
 *   parent   wait until the child has copied, then unlock. Without the wait the forking thread
 *            could write into the heap before the child had read it, and the child would see a
 *            write made after fork() returned (.req.fork.no-shared-memory).
 * A failure in the child cannot be returned from fork(): it is recorded in the arena and
 * every later call on that arena fails with it (.req.fork.child-failure). The child never crashes for it: the
 * old file stays mapped wherever the new one could not be.
 *
 * Layer 4 (docs/design.md §2): calls view.c, map.c, backing.c and os.c; the heap and the
 * tracker are reset through the hooks arena.c registers (struct arena__fork_hooks).
 */
#include "fork.h"

#include "view.h"

#include <errno.h>

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static arena_t *registry;            /* every live arena, linked by fork_next */
static bool handlers_installed;
static int handshake[2] = {-1, -1}; /* read end kept by the parent, write end by the child */
static _Atomic(const struct arena__fork_hooks *) hooks;

void arena__fork_set_hooks(const struct arena__fork_hooks *h)
{
    atomic_store(&hooks, h);
}

/* ------------------------------------------------------------ re-backing ---- */

/* Give a a file of its own: a twin of its backing file (backing.c: same kind and place,
 * every page in use reserved), the pages copied (map.c), every view re-mapped onto it at
 * the same addresses (view.c). 0, or the error that left a on its shared file with every
 * view as it was. */
static int reback(arena_t *a)
{
    struct arena__backing *twin;
    int err = arena__backing_twin(a->backing, &twin);
    if (err != 0)
        return err;
    err = arena__map_copy_to_twin(twin, a->backing);
    arena_view_t *failed = NULL;
    for (arena_view_t *v = a->views; v != NULL && err == 0; v = arena__view_next(v))
        if ((err = arena__view_reback(v, twin)) != 0)
            failed = v;
    if (err != 0) {
        /* The view that failed put itself back; the ones before it go back too (.req.view.all-or-nothing). A
         * refused undo leaves runs on the twin, whose file their mappings keep alive. */
        for (arena_view_t *u = failed ? a->views : NULL; u != NULL && u != failed; u = arena__view_next(u))
            (void)arena__view_reback_undo(u);
        arena__backing_close(twin);
        return err;
    }
    arena__backing_swap(a->backing, twin);
    return 0;
}

/* ------------------------------------------------------------ the handlers ---- */

static void prepare(void)
{
    pthread_mutex_lock(&registry_lock);
    handshake[0] = handshake[1] = -1;
    if (registry == NULL)
        return;
    for (arena_t *a = registry; a != NULL; a = a->fork_next)
        pthread_mutex_lock(&a->lock);
    if (arena__os_pipe(handshake) != 0)
        handshake[0] = handshake[1] = -1;
}

static void unlock_all(void)
{
    for (arena_t *a = registry; a != NULL; a = a->fork_next)
        pthread_mutex_unlock(&a->lock);
    pthread_mutex_unlock(&registry_lock);
}

static void parent(void)
{
    if (handshake[1] >= 0) {
        char byte;
        arena__os_close(handshake[1]);
        /* EOF once the child closed its end: after its copy, or when it died. */
        while (arena__os_read(handshake[0], &byte, 1) > 0)
            ;
        arena__os_close(handshake[0]);
    }
    unlock_all();
}

static void child(void)
{
    int synced = handshake[1] >= 0;
    arena__view_forked(); /* before anything opens, closes or untracks a view */
    if (synced)
        arena__os_close(handshake[0]);
    for (arena_t *a = registry; a != NULL; a = a->fork_next) {
        if (a->fork_error != 0)
            continue;
        const struct arena__fork_hooks *h = atomic_load(&hooks);
        if (h != NULL && h->heap != NULL)
            h->heap(a);
        /* Without the hand-shake the parent may already be writing into the file, so no copy
         * made now could be trusted to be the state at fork(). */
        a->fork_error = synced ? reback(a) : ARENA_EMFILE;
        if (a->fork_error == 0 && h != NULL && h->track != NULL)
            h->track(a);
    }
    if (synced)
        arena__os_close(handshake[1]);
    unlock_all();
}

/* ------------------------------------------------------------ registry ---- */

int arena__fork_register(arena_t *a)
{
    int err = 0;
    pthread_mutex_lock(&registry_lock);
    if (!handlers_installed) {
        err = -pthread_atfork(prepare, parent, child);
        handlers_installed = err == 0;
    }
    if (err == 0) {
        a->fork_next = registry;
        registry = a;
    }
    pthread_mutex_unlock(&registry_lock);
    return err;
}

void arena__fork_unregister(arena_t *a)
{
    pthread_mutex_lock(&registry_lock);
    for (arena_t **p = &registry; *p != NULL; p = &(*p)->fork_next) {
        if (*p == a) {
            *p = a->fork_next;
            break;
        }
    }
    pthread_mutex_unlock(&registry_lock);
}
