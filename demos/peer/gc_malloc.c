/*
 * gc_malloc.c -- the benchmarks on glibc malloc with explicit frees: a dropped tree is
 * freed at once, node by node; that free is what this variant reports as its "GC" time,
 * and the longest one as its pause.
 */
#include "peer.h"

#include <stdlib.h>

static struct peer_result *R;

static void *alloc(size_t size)
{
    void *p = malloc(size);
    if (!p)
        peer_fail("malloc(%zu) failed", size);
    return p;
}

/* Both node types start with their two children. */
struct tree {
    struct tree *left, *right;
};

static void free_tree(struct tree *t)
{
    while (t) {
        struct tree *right = t->right;
        free_tree(t->left);
        free(t);
        t = right;
    }
}

static void drop_tree(void *t)
{
    uint64_t t0 = peer_now_ns();
    free_tree(t);
    uint64_t pause = peer_now_ns() - t0;
    R->gc_ns += pause;
    if (pause > R->max_pause_ns)
        R->max_pause_ns = pause;
    R->collections++;
}

#define NEW_OBJ(size) alloc(size)
#define NEW_ATOMIC(size) alloc(size)
#define ROOTS(r, n) void *r[n] = {0}
#define ROOTS_END(r, n) ((void)(r))
#define KEEP_ATOMIC(pp) ((void)(pp))
#define DROP_ATOMIC(pp) free(*(pp))
#define SET_FIELD(o, f, v) ((o)->f = (v))
#define DROP_TREE(t) drop_tree(t)
#include "programs.h"

int peer_run_malloc(const char *program, const struct peer_params *p, struct peer_result *r)
{
    R = r;
    return run_program(program, p, &r->checksum);
}
