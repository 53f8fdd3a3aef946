/*
 * gc_boehm.c -- the benchmarks on Boehm GC (libgc, found by CMake through pkg-config
 * bdw-gc): GC_MALLOC for nodes, GC_MALLOC_ATOMIC for the array of doubles as the
 * original GCBench.c does, every setting at its default. Collections are timed from
 * GC_EVENT_START to GC_EVENT_END; Boehm sweeps lazily during allocation, so that part
 * of its work is in total_time only.
 */
#include "peer.h"

#ifdef ARENA_PEER_HAVE_BOEHM
#include <gc/gc.h>

const bool peer_have_boehm = true;

static struct peer_result *R;
static uint64_t started;

static void GC_CALLBACK on_event(GC_EventType e)
{
    if (e == GC_EVENT_START) {
        started = peer_now_ns();
    } else if (e == GC_EVENT_END) {
        uint64_t pause = peer_now_ns() - started;
        R->gc_ns += pause;
        if (pause > R->max_pause_ns)
            R->max_pause_ns = pause;
        R->collections++;
    }
}

static void *alloc(size_t size, int atomic)
{
    void *p = atomic ? GC_MALLOC_ATOMIC(size) : GC_MALLOC(size);
    if (!p)
        peer_fail("GC_MALLOC(%zu) failed", size);
    return p;
}

#define NEW_OBJ(size) alloc(size, 0)
#define NEW_ATOMIC(size) alloc(size, 1)
#define ROOTS(r, n) void *r[n] = {0}
#define ROOTS_END(r, n) ((void)(r))
#define KEEP_ATOMIC(pp) ((void)(pp))
#define DROP_ATOMIC(pp) ((void)(pp))
#define SET_FIELD(o, f, v) ((o)->f = (v))
#define DROP_TREE(t) ((void)(t))
#include "programs.h"

int peer_run_boehm(const char *program, const struct peer_params *p, struct peer_result *r)
{
    R = r;
    GC_INIT();
    GC_set_on_collection_event(on_event);
    return run_program(program, p, &r->checksum);
}
#else
const bool peer_have_boehm = false;

int peer_run_boehm(const char *program, const struct peer_params *p, struct peer_result *r)
{
    (void)program, (void)p, (void)r;
    return 77;
}
#endif
