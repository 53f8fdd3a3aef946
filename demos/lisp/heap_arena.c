/*
 * heap_arena.c -- the interpreter's heap on the arena: arena_lab_alloc (arena_alloc inlined) for every object,
 * and a precise collection in one pass (.req.runtime.one-trace).
 *
 * The interpreter describes its objects once, as an arena object format (include/arena.h,
 * after the Memory Pool System's scan/fix protocol): scan_obj visits the value fields an
 * object's header announces and hands each heap pointer to arena_fix; scan_roots does the
 * same for the root stack and the symbol table. arena_trace_collect() then marks, moves
 * and updates every reference in one trace: objects on pages allocated since the last
 * collection (and on sparse pages) are copied out Cheney-style, the rest are marked in
 * place and keep their address. No mark bit in the header, no second walk to forward.
 *
 * With --generational (and page tracking), most collections are young ones: see
 * heap_gen.c for what that means precisely.
 */
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "heap_arena.h"

struct arena_heap AH;

/* The heap refused what the interpreter cannot do without: a failure (exit status 1). */
_Noreturn void ah_fatal(const char *what, int err)
{
    fprintf(stderr, "arena-lisp: %s: %s\n", what, arena_strerror(err));
    exit(1);
}

/* A root or a field names no live object: a rooting mistake or a missed barrier. */
void ah_fix_failed(val v, int rc)
{
    fprintf(stderr, "arena-lisp: arena_fix: %p: %s\n", (void *)v, arena_strerror(rc));
    abort();
}

static inline __attribute__((always_inline)) void fix_root(val *slot, void *ctx)
{
    ah_fix_inline(ctx, slot);
}

void ah_fix_roots(arena_ss_t *ss)
{
    lisp_each_root(fix_root, ss);
}

void ah_fix_young_roots(arena_ss_t *ss)
{
    lisp_each_young_root(fix_root, ss);
}

static void scan_obj(arena_ss_t *ss, void *o, size_t size, void *closure)
{
    (void)size, (void)closure;
    ah_fix_fields(ss, o);
}

static void scan_roots(arena_ss_t *ss, void *closure)
{
    (void)closure;
    ah_fix_roots(ss);
}

void ah_trace(const arena_format_t *fmt, int mode)
{
    arena_collect_stats_t st;
    int rc = arena_trace_collect(AH.a, fmt, mode, &st);
    if (rc < 0) /* > 0: completed, met a kernel error on the way */
        ah_fatal("arena_trace_collect", rc);
    AH.live = mode == ARENA_TRACE_FULL ? st.bytes_live : AH.live + st.bytes_live;
    AH.pages_released += st.pages_released;
    AH.objects_evacuated += st.objects_evacuated;
    AH.pages_in_place += st.pages_in_place;
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
    static const arena_format_t fmt = {scan_obj, scan_roots, NULL};
    ah_trace(&fmt, ARENA_TRACE_FULL);
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
    rc = arena_lab_init(AH.a, &AH.lab);
    if (rc) {
        fprintf(stderr, "arena-lisp: arena_lab_init: %s\n", arena_strerror(rc));
        arena_destroy(AH.a);
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
    void *p = arena_lab_alloc(&AH.lab, bytes);
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
    memset(&AH, 0, sizeof AH);
}

static void arena_describe(FILE *out)
{
    arena_stats_t s;
    if (arena_stats(AH.a, &s) == 0)
        fprintf(out, ",\"heap_kb\":%zu,\"resident_kb\":%zu,\"file_kb\":%zu,\"vmas\":%zu",
                s.heap_pages * s.page_size / 1024, s.resident_bytes / 1024, s.file_bytes / 1024, s.vmas);
    fprintf(out, ",\"live_kb\":%zu,\"pages_released\":%zu,\"pages_in_place\":%zu,"
                 "\"objects_evacuated\":%zu,\"arena_collect_ms\":%.3f",
            AH.live / 1024, AH.pages_released, AH.pages_in_place, AH.objects_evacuated,
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
