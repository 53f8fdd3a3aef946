/*
 * programs.h -- GCBench and binary-trees, written once; included by each collector's file
 * (gc_arena.c, gc_boehm.c, gc_malloc.c) after it defines:
 *
 *   NEW_OBJ(size)      a node's memory (may collect; contents need not be zeroed)
 *   NEW_ATOMIC(size)   memory that holds no pointers (may collect)
 *   ROOTS(r, n)        declares void *r[n], NULL, that the collector sees as roots and
 *                      updates when objects move; ROOTS_END(r, n) ends them (LIFO)
 *   KEEP_ATOMIC(pp)    *pp (pointer-free object) is a root until DROP_ATOMIC(pp)
 *   DROP_TREE(t)       the tree t is garbage from now on (malloc frees it here)
 *   SET_FIELD(o, f, v) o->f = v, for a node o allocated before the last NEW_*: the
 *                      write barrier of a generational collector (a node's first
 *                      fields, written right after its NEW_OBJ, are plain stores)
 *
 * A moving collector may move every object at each NEW_*: a pointer that is not in a
 * root slot is reread from one after an allocation. Every tree is verified (node count)
 * and folded into a checksum that must not depend on the collector.
 */
#ifndef ARENA_PEER_PROGRAMS_H
#define ARENA_PEER_PROGRAMS_H

#include <stdio.h>
#include <string.h>

struct gnode { /* GCBench's Node: two children and two ints */
    struct gnode *left, *right;
    uint32_t i, j;
};
struct bnode { /* binary-trees' node */
    struct bnode *left, *right;
};

static uint64_t checksum_mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h * 0xbf58476d1ce4e5b9ull;
}

static uint64_t tree_size(int depth) { return ((uint64_t)1 << (depth + 1)) - 1; }

/* ------------------------------------------------------------------ GCBench -- */
static uint32_t gnode_ids;

static struct gnode *gnode_new(void)
{
    struct gnode *n = NEW_OBJ(sizeof *n);
    n->left = n->right = NULL;
    n->i = gnode_ids++;
    n->j = 0;
    return n;
}

/* Top-down: give t (reachable from a root) two children per level. */
static void populate(int depth, struct gnode *t)
{
    if (depth <= 0)
        return;
    depth--;
    ROOTS(r, 1);
    r[0] = t;
    struct gnode *l = gnode_new();
    SET_FIELD((struct gnode *)r[0], left, l);
    struct gnode *rt = gnode_new();
    SET_FIELD((struct gnode *)r[0], right, rt);
    populate(depth, ((struct gnode *)r[0])->left);
    populate(depth, ((struct gnode *)r[0])->right);
    ROOTS_END(r, 1);
}

/* Bottom-up. */
static struct gnode *make_tree(int depth)
{
    if (depth <= 0)
        return gnode_new();
    ROOTS(r, 2);
    r[0] = make_tree(depth - 1);
    r[1] = make_tree(depth - 1);
    struct gnode *n = gnode_new();
    n->left = r[0];
    n->right = r[1];
    ROOTS_END(r, 2);
    return n;
}

static void gwalk(const struct gnode *t, uint64_t *count, uint64_t *h)
{
    for (; t; t = t->right) {
        ++*count;
        *h = checksum_mix(*h, t->i);
        gwalk(t->left, count, h);
    }
}

/* Every node of a depth-d tree is there, in creation order: fold it into *sum. */
static void gcheck(const struct gnode *t, int depth, uint64_t *sum, const char *what)
{
    uint64_t count = 0, h = 0;
    gwalk(t, &count, &h);
    if (count != tree_size(depth))
        peer_fail("GCBench: %s tree of depth %d has %llu nodes, not %llu", what, depth,
                  (unsigned long long)count, (unsigned long long)tree_size(depth));
    *sum = checksum_mix(checksum_mix(*sum, count), h);
}

static void time_construction(const struct peer_params *p, int depth, uint64_t *sum)
{
    uint64_t iters = 2 * tree_size(p->stretch_depth) / tree_size(depth);
    for (uint64_t i = 0; i < iters; i++) {
        ROOTS(r, 1);
        r[0] = gnode_new();
        populate(depth, r[0]);
        if (i + 1 == iters)
            gcheck(r[0], depth, sum, "top-down");
        DROP_TREE((struct gnode *)r[0]);
        ROOTS_END(r, 1);
    }
    for (uint64_t i = 0; i < iters; i++) {
        ROOTS(r, 1);
        r[0] = make_tree(depth);
        if (i + 1 == iters)
            gcheck(r[0], depth, sum, "bottom-up");
        DROP_TREE((struct gnode *)r[0]);
        ROOTS_END(r, 1);
    }
}

static uint64_t gcbench(const struct peer_params *p)
{
    uint64_t sum = 0;
    gnode_ids = 0;
    {
        ROOTS(r, 1);
        r[0] = make_tree(p->stretch_depth);
        gcheck(r[0], p->stretch_depth, &sum, "stretch");
        DROP_TREE((struct gnode *)r[0]);
        ROOTS_END(r, 1);
    }
    ROOTS(live, 1);
    live[0] = gnode_new();
    populate(p->long_lived_depth, live[0]);
    double *array = NEW_ATOMIC(p->array_size * sizeof *array);
    KEEP_ATOMIC(&array);
    for (size_t i = 0; i < p->array_size / 2; i++)
        array[i] = 1.0 / (double)i;
    for (int d = p->min_depth; d <= p->max_depth; d += 2)
        time_construction(p, d, &sum);
    if (p->array_size > 2000 && array[1000] != 1.0 / 1000)
        peer_fail("GCBench: the long-lived array lost its contents");
    gcheck(live[0], p->long_lived_depth, &sum, "long-lived");
    DROP_TREE((struct gnode *)live[0]);
    DROP_ATOMIC(&array);
    ROOTS_END(live, 1);
    return sum;
}

/* ------------------------------------------------------------- binary-trees -- */
static struct bnode *bottom_up(int depth)
{
    ROOTS(r, 2);
    if (depth > 0) {
        r[0] = bottom_up(depth - 1);
        r[1] = bottom_up(depth - 1);
    }
    struct bnode *n = NEW_OBJ(sizeof *n);
    n->left = r[0];
    n->right = r[1];
    ROOTS_END(r, 2);
    return n;
}

static uint64_t item_check(const struct bnode *t)
{
    return t->left ? 1 + item_check(t->left) + item_check(t->right) : 1;
}

static void bcheck(uint64_t got, uint64_t want, const char *what, int depth)
{
    if (got != want)
        peer_fail("binary-trees: %s of depth %d counted %llu nodes, not %llu", what, depth,
                  (unsigned long long)got, (unsigned long long)want);
}

static uint64_t binary_trees(const struct peer_params *p)
{
    int max = p->max_depth < p->min_depth + 2 ? p->min_depth + 2 : p->max_depth;
    uint64_t sum = 0, c;
    {
        ROOTS(r, 1);
        r[0] = bottom_up(max + 1);
        c = item_check(r[0]);
        bcheck(c, tree_size(max + 1), "stretch tree", max + 1);
        sum = checksum_mix(sum, c);
        DROP_TREE((struct bnode *)r[0]);
        ROOTS_END(r, 1);
    }
    ROOTS(live, 1);
    live[0] = bottom_up(max);
    for (int d = p->min_depth; d <= max; d += 2) {
        uint64_t iters = (uint64_t)1 << (max - d + p->min_depth), check = 0;
        for (uint64_t i = 0; i < iters; i++) {
            ROOTS(r, 1);
            r[0] = bottom_up(d);
            check += item_check(r[0]);
            DROP_TREE((struct bnode *)r[0]);
            ROOTS_END(r, 1);
        }
        bcheck(check, iters * tree_size(d), "trees", d);
        sum = checksum_mix(sum, check);
    }
    c = item_check(live[0]);
    bcheck(c, tree_size(max), "long lived tree", max);
    sum = checksum_mix(sum, c);
    DROP_TREE((struct bnode *)live[0]);
    ROOTS_END(live, 1);
    return sum;
}

/* The collector's entry point calls this between its own setup and teardown. */
static int run_program(const char *program, const struct peer_params *p, uint64_t *checksum)
{
    if (!strcmp(program, "gcbench"))
        *checksum = gcbench(p);
    else if (!strcmp(program, "binary-trees"))
        *checksum = binary_trees(p);
    else
        return -1;
    return 0;
}

#endif
