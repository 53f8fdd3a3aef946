/*
 * heap_semi.c -- the reference collector: two malloc'd semispaces, Cheney copying.
 *
 * Allocation bumps a pointer in from-space. A collection copies every object
 * reachable from the roots into to-space (breadth first: to-space itself is the
 * queue), leaving a T_FORWARD header and the new address behind, then swaps the
 * spaces. When the survivors fill more than half of a space, both spaces double,
 * so collections stay proportional to allocation.
 */
#include <stdlib.h>
#include <string.h>

#include "lisp.h"

static struct {
    char *from, *to;
    size_t size;      /* bytes in each space */
    char *free, *end; /* bump region in from-space */
    size_t live;      /* bytes surviving the last collection */
} S;

static char *space_new(size_t size)
{
    return aligned_alloc(16, size);
}

static int semi_init(size_t bytes, int generational)
{
    (void)generational;
    S.size = bytes < 64 * 1024 ? 64 * 1024 : (bytes + 15) & ~(size_t)15;
    S.from = space_new(S.size);
    S.to = space_new(S.size);
    if (!S.from || !S.to)
        return -1;
    S.free = S.from;
    S.end = S.from + S.size;
    return 0;
}

static void *semi_alloc(size_t bytes)
{
    if ((size_t)(S.end - S.free) < bytes)
        return NULL;
    void *p = S.free;
    S.free += bytes;
    return p;
}

static char *copy_free;

static val copy_obj(val v)
{
    if (!PTR_P(v))
        return v;
    obj *o = OBJ(v);
    if ((o->hdr & 0xff) == T_FORWARD)
        return o->f[0];
    size_t n = obj_bytes(o);
    obj *to = (obj *)copy_free;
    memcpy(to, o, n);
    copy_free += n;
    o->hdr = T_FORWARD;
    o->f[0] = (val)to;
    return (val)to;
}

static void visit_root(val *slot, void *ctx)
{
    (void)ctx;
    *slot = copy_obj(*slot);
}

static void cheney(void)
{
    copy_free = S.to;
    lisp_each_root(visit_root, NULL);
    for (char *scan = S.to; scan < copy_free;) {
        obj *o = (obj *)scan;
        size_t n = obj_nvals(o);
        for (size_t i = 0; i < n; i++)
            o->f[i] = copy_obj(o->f[i]);
        scan += obj_bytes(o);
    }
    char *old = S.from;
    S.from = S.to;
    S.to = old;
    S.free = copy_free;
    S.end = S.from + S.size;
    S.live = (size_t)(copy_free - S.from);
}

static int semi_collect(size_t need)
{
    cheney();
    if (S.live + need <= S.size / 2)
        return 0;
    /* Too full: grow both spaces, copying once more into the bigger one. */
    size_t size = S.size;
    while (S.live + need > size / 2)
        size *= 2;
    char *bigger = space_new(size);
    if (!bigger)
        return S.live + need <= S.size ? 0 : -1;
    free(S.to);
    S.to = bigger;
    S.size = size;
    cheney();  /* from-space (old size) -> the bigger space */
    free(S.to);
    S.to = space_new(size);
    if (!S.to) {
        /* The heap cannot continue without a to-space. */
        fprintf(stderr, "arena-lisp: out of memory growing the semispaces to %zu bytes\n", size);
        exit(1);
    }
    return 0;
}

static void semi_fini(void)
{
    free(S.from);
    free(S.to);
    memset(&S, 0, sizeof S);
}

static void semi_describe(FILE *out)
{
    fprintf(out, ",\"heap_kb\":%zu,\"live_kb\":%zu", 2 * S.size / 1024, S.live / 1024);
}

const struct heap_backend heap_semispace = {
    .name = "semispace",
    .init = semi_init,
    .alloc = semi_alloc,
    .collect = semi_collect,
    .fini = semi_fini,
    .describe = semi_describe,
};
