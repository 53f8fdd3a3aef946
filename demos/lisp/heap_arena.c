/*
 * heap_arena.c -- the interpreter's heap on the arena: arena_alloc for every object,
 * and a precise collection in three passes (R10.2).
 *
 *   1. mark:    trace from the roots with an explicit stack; each object reached is
 *               flagged in its header (so it is traced once) and arena_mark()ed.
 *   2. collect: arena_collect() frees the unmarked, releases dead pages and slides
 *               live pages down by remapping (objects move, their bytes do not).
 *   3. fix:     trace again from the forwarded roots; at each flagged object clear
 *               the flag and replace every pointer field by arena_forward(field).
 *               Each object is fixed exactly once, so no field is forwarded twice.
 *
 * With --generational (and page tracking), most collections are minor: see
 * heap_gen.c for what that means precisely.
 */
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "heap_arena.h"

struct arena_heap AH;

static _Noreturn void fatal(const char *what, int err)
{
    fprintf(stderr, "arena-lisp: %s: %s\n", what, arena_strerror(err));
    exit(3);
}

void ah_push(val v)
{
    if (AH.sp == AH.cap) {
        AH.cap = AH.cap ? 2 * AH.cap : 4096;
        AH.stack = realloc(AH.stack, AH.cap * sizeof *AH.stack);
        if (!AH.stack) {
            fprintf(stderr, "arena-lisp: out of memory for the mark stack\n");
            exit(3);
        }
    }
    AH.stack[AH.sp++] = v;
}

val ah_forward(val v)
{
    if (!PTR_P(v))
        return v;
    void *p = arena_forward(AH.a, (void *)v);
    if (!p) {
        /* A reachable object died: a root or a barrier was missed. */
        fprintf(stderr, "arena-lisp: arena_forward lost a reachable object at %p\n", (void *)v);
        abort();
    }
    return (val)p;
}

/* Trace from whatever is on the stack; with young_only, never enter an old object. */
void ah_mark_drain(int young_only)
{
    while (AH.sp) {
        obj *o = OBJ(AH.stack[--AH.sp]);
        if (MARK(o) & AH_MARKED)
            continue;
        if (young_only && (MARK(o) & AH_OLD))
            continue;
        SET_MARK(o, MARK(o) | AH_MARKED);
        int rc = arena_mark(AH.a, o);
        if (rc)
            fatal("arena_mark", rc);
        AH.marked_objects++;
        size_t n = obj_nvals(o);
        for (size_t i = 0; i < n; i++)
            if (PTR_P(o->f[i]))
                ah_push(o->f[i]);
    }
}

/* Objects on the stack are already forwarded; fix their fields once each. */
void ah_fix_drain(void (*survivor)(obj *o))
{
    while (AH.sp) {
        obj *o = OBJ(AH.stack[--AH.sp]);
        if (!(MARK(o) & AH_MARKED))
            continue;
        SET_MARK(o, MARK(o) & ~AH_MARKED);
        if (survivor)
            survivor(o);
        size_t n = obj_nvals(o);
        for (size_t i = 0; i < n; i++)
            if (PTR_P(o->f[i])) {
                o->f[i] = ah_forward(o->f[i]);
                ah_push(o->f[i]);
            }
    }
}

static void mark_root(val *slot, void *ctx)
{
    (void)ctx;
    if (PTR_P(*slot))
        ah_push(*slot);
}

static void fix_root(val *slot, void *ctx)
{
    (void)ctx;
    if (PTR_P(*slot)) {
        *slot = ah_forward(*slot);
        ah_push(*slot);
    }
}

void ah_mark_roots(void) { lisp_each_root(mark_root, NULL); }
void ah_fix_roots(void) { lisp_each_root(fix_root, NULL); }

void ah_run_collect(void)
{
    arena_collect_stats_t st;
    int rc = arena_collect(AH.a, &st);
    if (rc)
        fatal("arena_collect", rc);
    AH.live = st.bytes_live;
    AH.pages_released += st.pages_released;
    AH.pages_remapped += st.pages_remapped;
    AH.pages_copied += st.pages_copied;
    AH.objects_evacuated += st.objects_evacuated;
    AH.arena_pause_ns += st.pause_ns;
}

void ah_set_threshold(size_t need)
{
    size_t t = AH.initial;
    if (2 * AH.live > t)
        t = 2 * AH.live;
    if (2 * need > t)
        t = 2 * need;
    AH.threshold = t;
    AH.since = 0;
}

static void full_collect(size_t need)
{
    ah_mark_roots();
    ah_mark_drain(0);
    ah_run_collect();
    ah_fix_roots();
    ah_fix_drain(NULL);
    ah_set_threshold(need);
}

static int arena_init(size_t bytes, int generational)
{
    arena_config_t cfg;
    arena_config_init(&cfg);
    /* The tracker keeps per-slot state for the whole reservation: reserve what a
     * demo can use, not the default 64 GiB. */
    cfg.reserve = (size_t)2 << 30;
    cfg.tracker = L.tracker == 1 ? ARENA_TRACKER_SIGSEGV : L.tracker == 2 ? ARENA_TRACKER_UFFD : ARENA_TRACKER_AUTO;
    int rc = arena_create(&AH.a, &cfg);
    if (rc) {
        fprintf(stderr, "arena-lisp: arena_create: %s\n", arena_strerror(rc));
        return -1;
    }
    AH.initial = bytes;
    ah_set_threshold(0);
    if (generational && gen_init() != 0)
        return -1;
    return 0;
}

static void *arena_alloc_obj(size_t bytes)
{
    if (AH.since + bytes > AH.threshold)
        return NULL;
    void *p = arena_alloc(AH.a, bytes);
    if (p)
        AH.since += bytes;
    return p;
}

static int arena_collect_all(size_t need)
{
    if (AH.gen)
        gen_collect(need);
    else
        full_collect(need);
    AH.collections++;
    return 0;
}

static void arena_fini(void)
{
    if (AH.gen)
        gen_fini();
    arena_destroy(AH.a);
    free(AH.stack);
    memset(&AH, 0, sizeof AH);
}

static void arena_describe(FILE *out)
{
    arena_stats_t s;
    if (arena_stats(AH.a, &s) == 0)
        fprintf(out, ",\"heap_kb\":%zu,\"resident_kb\":%zu,\"file_kb\":%zu,\"vmas\":%zu",
                s.heap_pages * s.page_size / 1024, s.resident_bytes / 1024, s.file_bytes / 1024, s.vmas);
    fprintf(out, ",\"live_kb\":%zu,\"pages_released\":%zu,\"pages_remapped\":%zu,\"pages_copied\":%zu,"
                 "\"objects_evacuated\":%zu,\"arena_collect_ms\":%.3f",
            AH.live / 1024, AH.pages_released, AH.pages_remapped, AH.pages_copied, AH.objects_evacuated,
            (double)AH.arena_pause_ns / 1e6);
    if (AH.gen)
        gen_describe(out);
}

const struct heap_backend heap_arena_backend = {
    .name = "arena",
    .init = arena_init,
    .alloc = arena_alloc_obj,
    .collect = arena_collect_all,
    .fini = arena_fini,
    .describe = arena_describe,
};
