/*
 * test_trace.c -- one trace per collection (arena_trace_collect, arena_fix): a random
 * object-graph property test over many seeds (every reachable object checked by
 * checksum, every reference fixed to the one copy, dead objects freed), pins, interior
 * roots, to-space exhaustion, young collections with a remembered set, tracking and a
 * mirror view across a collection, bad input. arena_fix_inline (the first stage of a fix
 * in the header) is held to arena_fix's answers: the property runs fix every reference
 * both ways and compare, and targeted tests cover what it settles without a call.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "fixtures.h"
#include "prop_util.h"

/* A test object: header, nptr references (possibly interior), then payload words. */
struct tobj {
    uint32_t id, nptr;
    uint64_t seed;
    void *ptr[];
};

#define MAXP 4

struct node {
    size_t size;
    uint32_t nptr;
    uint64_t seed;
    uint32_t tgt[MAXP];   /* UINT32_MAX = NULL */
    uint32_t off[MAXP];
    char *addr;           /* where it was last seen */
    bool pinned;
    uint32_t seen;        /* epoch of the last verification that reached it */
};

struct model {
    struct node *n;
    size_t count, cap;
    uint32_t *root_tgt, *root_off;   /* roots[i] names node root_tgt[i] at root_off[i] */
    void **roots;
    size_t nroots;
    uint32_t epoch;
    /* young collections: old objects written since the last collection */
    char **remset;
    size_t nremset;
};


static size_t payload_first(uint32_t nptr)
{
    return (sizeof(struct tobj) + nptr * sizeof(void *)) / 8;
}

/* How the format fixes a reference: arena_fix, arena_fix_inline, or both on the same
 * address, one after the other (the second sees the object already reached: it must give
 * the first one's answer, whichever of the two settles it). */
enum fix_mode { FIX_CALL, FIX_INLINE, FIX_CALL_THEN_INLINE, FIX_INLINE_THEN_CALL };
static enum fix_mode fix_mode;

static int fix_ref(arena_ss_t *ss, void **ref)
{
    void *orig = *ref, *again = orig;
    int rc, rc2;
    switch (fix_mode) {
    case FIX_CALL:
        return arena_fix(ss, ref);
    case FIX_INLINE:
        return arena_fix_inline(ss, ref);
    case FIX_CALL_THEN_INLINE:
        rc = arena_fix(ss, ref);
        rc2 = arena_fix_inline(ss, &again);
        break;
    default:
        rc = arena_fix_inline(ss, ref);
        rc2 = arena_fix(ss, &again);
        break;
    }
    cr_assert_eq(rc2, rc, "a second fix of %p answered %d, the first %d", orig, rc2, rc);
    cr_assert_eq(again, *ref, "a second fix of %p gave %p, the first %p", orig, again, *ref);
    return rc;
}

static void scan_tobj(arena_ss_t *ss, void *obj, size_t size, void *closure)
{
    (void)closure;
    struct tobj *o = obj;
    cr_assert_geq(size, sizeof *o + o->nptr * sizeof(void *), "scan got a short size");
    for (uint32_t i = 0; i < o->nptr; i++)
        cr_assert_eq(fix_ref(ss, &o->ptr[i]), 0, "fix of a field failed");
}

static void roots_model(arena_ss_t *ss, void *closure)
{
    struct model *m = closure;
    for (size_t i = 0; i < m->nroots; i++)
        cr_assert_eq(fix_ref(ss, &m->roots[i]), 0);
    for (size_t i = 0; i < m->nremset; i++) {
        struct tobj *o = (struct tobj *)m->remset[i];
        for (uint32_t k = 0; k < o->nptr; k++)
            cr_assert_eq(fix_ref(ss, &o->ptr[k]), 0);
    }
}

static size_t allocs;    /* objects new_node allocated */
static bool small_only;  /* new_node: 16-256 bytes, at least one field */

static uint32_t new_node(arena_t *a, struct model *m, size_t page)
{
    allocs++;
    if (m->count == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 1024;
        m->n = realloc(m->n, m->cap * sizeof *m->n);
        cr_assert_not_null(m->n);
    }
    uint32_t id = (uint32_t)m->count++;
    struct node *n = &m->n[id];
    memset(n, 0, sizeof *n);
    n->nptr = (uint32_t)(rnd() % (MAXP + 1));
    if (small_only && n->nptr == 0)
        n->nptr = 1;
    uint64_t k = rnd() % 100;
    size_t min = (payload_first(n->nptr) + 1) * 8;
    if (small_only)
        k = 0;
    n->size = k < 85 ? min + rnd() % 200 : k < 97 ? min + rnd() % (page - min) : page + 1 + rnd() % (2 * page);
    n->seed = rnd();
    for (uint32_t i = 0; i < MAXP; i++)
        n->tgt[i] = UINT32_MAX;
    struct tobj *o = arena_alloc(a, n->size);
    cr_assert_not_null(o);
    o->id = id;
    o->nptr = n->nptr;
    o->seed = n->seed;
    uint64_t *w = (uint64_t *)o;
    for (size_t i = payload_first(n->nptr); i < n->size / 8; i++)
        w[i] = word_of(n->seed, i);
    n->addr = (char *)o;
    return id;
}

static void set_edge(struct model *m, uint32_t from, uint32_t i, uint32_t to)
{
    struct node *f = &m->n[from];
    struct tobj *o = (struct tobj *)f->addr;
    f->tgt[i] = to;
    if (to == UINT32_MAX) {
        o->ptr[i] = NULL;
        return;
    }
    /* A quarter of the references are interior. */
    f->off[i] = rnd() % 4 == 0 ? (uint32_t)(rnd() % m->n[to].size) & ~7u : 0;
    o->ptr[i] = m->n[to].addr + f->off[i];
}

static void set_root(struct model *m, size_t r, uint32_t to, bool interior)
{
    m->root_tgt[r] = to;
    m->root_off[r] = interior ? (uint32_t)(rnd() % m->n[to].size) : 0;
    m->roots[r] = m->n[to].addr + m->root_off[r];
}

/* Reach object id at p: where every reference says, the same address for every
 * reference, with its id, header and payload intact. */
static size_t visit(arena_t *a, struct model *m, uint32_t id, char *p, uint32_t *stack, size_t *sp)
{
    struct node *n = &m->n[id];
    if (n->seen == m->epoch) {
        cr_assert_eq(p, n->addr, "two references to object %u disagree: %p vs %p", id, p, n->addr);
        return 0;
    }
    n->seen = m->epoch;
    n->addr = p;
    cr_assert_eq(arena_object(a, p), p, "object %u at %p is not a live object", id, p);
    cr_assert_geq(arena_object_size(a, p), n->size);
    struct tobj *o = (struct tobj *)p;
    cr_assert_eq(o->id, id, "object %u: header says %u", id, o->id);
    cr_assert_eq(o->nptr, n->nptr);
    cr_assert_eq(o->seed, n->seed);
    const uint64_t *w = (const uint64_t *)p;
    for (size_t i = payload_first(n->nptr); i < n->size / 8; i++)
        cr_assert_eq(w[i], word_of(n->seed, i), "object %u payload word %zu", id, i);
    for (uint32_t i = 0; i < n->nptr; i++) {
        if (n->tgt[i] == UINT32_MAX)
            cr_assert_null(o->ptr[i]);
        else
            stack[(*sp)++] = i | id << 3;   /* field i of id: resolved when popped */
    }
    return 1;
}

/* Walk from the roots; returns the number of objects reached. */
static size_t verify(arena_t *a, struct model *m)
{
    m->epoch++;
    uint32_t *stack = malloc((m->count * MAXP + 1) * sizeof *stack);
    size_t sp = 0, reached = 0;
    cr_assert_not_null(stack);
    for (size_t r = 0; r < m->nroots; r++) {
        reached += visit(a, m, m->root_tgt[r], (char *)m->roots[r] - m->root_off[r], stack, &sp);
        while (sp) {
            uint32_t e = stack[--sp], from = e >> 3, i = e & 7;
            struct tobj *o = (struct tobj *)m->n[from].addr;
            uint32_t t = m->n[from].tgt[i];
            reached += visit(a, m, t, (char *)o->ptr[i] - m->n[from].off[i], stack, &sp);
        }
    }
    free(stack);
    return reached;
}

static bool is_reached(const struct model *m, uint32_t id)
{
    return m->n[id].seen == m->epoch;
}

/* The model through the old interface: every object reached at the last verify() marked
 * (one in pin_every pinned at random; none when 0), arena_collect, then the roots and every
 * reached object's references forwarded. The unreached are dropped from the model: the
 * collection freed them. Returns what arena_collect returned. */
static int mark_collect_forward(arena_t *a, struct model *m, unsigned pin_every)
{
    for (uint32_t i = 0; i < m->count; i++)
        if (is_reached(m, i)) {
            bool pin = pin_every != 0 && rnd() % pin_every == 0;
            cr_assert_eq(pin ? arena_pin(a, m->n[i].addr) : arena_mark(a, m->n[i].addr), 0);
        }
    int rc = arena_collect(a, NULL);
    for (size_t r = 0; r < m->nroots; r++)
        m->roots[r] = arena_forward(a, m->roots[r]);
    for (uint32_t i = 0; i < m->count; i++) {
        if (!is_reached(m, i)) {
            m->n[i].addr = NULL;
            continue;
        }
        struct tobj *o = arena_forward(a, m->n[i].addr);
        cr_assert_not_null(o);
        for (uint32_t k = 0; k < o->nptr; k++)
            o->ptr[k] = arena_forward(a, o->ptr[k]);
    }
    return rc;
}

/* Objects the model has in the heap: reachable or not, not yet freed by a collection. */
static size_t in_heap(const struct model *m)
{
    size_t n = 0;
    for (size_t i = 0; i < m->count; i++)
        n += m->n[i].addr != NULL;
    return n;
}

static uint32_t pick_reached(struct model *m)
{
    for (int tries = 0; tries < 64; tries++) {
        uint32_t id = (uint32_t)(rnd() % m->count);
        if (is_reached(m, id))
            return id;
    }
    return m->root_tgt[rnd() % m->nroots];
}

/* cfg.shuffle for the arenas make() creates (the shuffled variants of the property and
 * young tests: .req.heap.shuffle's pages under the one-pass collector). */
static int shuffle_mode = ARENA_SHUFFLE_OFF;

static arena_t *make(size_t page, size_t max_file)
{
    return TEST_ARENA(.page_size = page, .reserve = (size_t)1 << 31, .max_file = max_file,
                      .shuffle = shuffle_mode, .shuffle_seed = rng_state);
}

static void model_init(struct model *m, size_t nroots)
{
    memset(m, 0, sizeof *m);
    m->nroots = nroots;
    m->roots = calloc(nroots, sizeof *m->roots);
    m->root_tgt = calloc(nroots, sizeof *m->root_tgt);
    m->root_off = calloc(nroots, sizeof *m->root_off);
    m->remset = calloc(1 << 16, sizeof *m->remset);
    cr_assert(m->roots && m->root_tgt && m->root_off && m->remset);
}

static void model_free(struct model *m)
{
    free(m->n);
    free(m->roots);
    free(m->root_tgt);
    free(m->root_off);
    free(m->remset);
}

/* Allocate `count` new objects wired at random into the reachable graph. */
static void grow_graph(arena_t *a, struct model *m, size_t count, size_t page, bool first)
{
    size_t base = m->count;
    for (size_t i = 0; i < count; i++)
        new_node(a, m, page);
    for (size_t i = base; i < m->count; i++)
        for (uint32_t k = 0; k < m->n[i].nptr; k++)
            set_edge(m, (uint32_t)i, k, rnd() % 5 == 0 ? UINT32_MAX : (uint32_t)(base + rnd() % count));
    for (size_t r = 0; r < m->nroots; r++)
        if (first || rnd() % 3 == 0)
            set_root(m, r, (uint32_t)(base + rnd() % count), rnd() % 4 == 0);
    (void)first;
}

static const arena_format_t *format_of(struct model *m)
{
    static arena_format_t f;
    f = (arena_format_t){scan_tobj, roots_model, m};
    return &f;
}

/* --------------------------------------------------------------------------------- */

static void property_run(uint64_t seed, size_t page)
{
    rng_state = seed * 0x2545F4914F6CDD1Dull + 1;
    arena_t *a = make(page, 0);
    struct model m;
    model_init(&m, 16);
    grow_graph(a, &m, 400, page, true);
    size_t evacuated = 0;
    for (int cycle = 0; cycle < 6; cycle++) {
        size_t expect = verify(a, &m);
        /* Pin a few reachable objects: they must not move. */
        uint32_t pinned[4];
        char *at[4];
        for (int i = 0; i < 4; i++) {
            pinned[i] = pick_reached(&m);
            at[i] = m.n[pinned[i]].addr;
            cr_assert_eq(arena_pin(a, at[i]), 0);
        }
        size_t had = in_heap(&m);
        arena_collect_stats_t st;
        cr_assert_eq(arena_trace_collect(a, format_of(&m), ARENA_TRACE_FULL, &st), 0);
        cr_assert_eq(st.objects_live, expect, "seed %llu cycle %d: %zu live, %zu reachable",
                     (unsigned long long)seed, cycle, st.objects_live, expect);
        /* Exact, however the sweep found the dead (.req.trace.lazy-sweep). */
        cr_assert_eq(st.objects_freed, had - expect, "seed %llu cycle %d: %zu freed of %zu, %zu reachable",
                     (unsigned long long)seed, cycle, st.objects_freed, had, expect);
        cr_assert_gt(st.pause_ns, 0);
        evacuated += st.objects_evacuated;
        cr_assert_eq(verify(a, &m), expect);
        for (int i = 0; i < 4; i++)
            cr_assert_eq(m.n[pinned[i]].addr, at[i], "a pinned object moved");
        /* The unreachable are gone. */
        for (size_t i = 0; i < m.count; i++)
            if (!is_reached(&m, (uint32_t)i))
                m.n[i].addr = NULL;
        /* Mutate: rewire some fields of reachable objects, add young objects. */
        for (int k = 0; k < 100; k++) {
            uint32_t f = pick_reached(&m), t = pick_reached(&m);
            if (m.n[f].nptr)
                set_edge(&m, f, (uint32_t)(rnd() % m.n[f].nptr), t);
        }
        size_t base = m.count;
        grow_graph(a, &m, 300, page, false);
        for (int k = 0; k < 60; k++) {
            uint32_t f = pick_reached(&m);
            if (m.n[f].nptr)
                set_edge(&m, f, (uint32_t)(rnd() % m.n[f].nptr), (uint32_t)(base + rnd() % 300));
        }
    }
    cr_assert_gt(evacuated, 0, "no object was ever evacuated");
    arena_destroy(a);
    model_free(&m);
}

Test(trace, property_many_seeds_4k)
{
    for (uint64_t seed = 1; seed <= 24; seed++)
        property_run(seed, 4096);
}

Test(trace, property_many_seeds_16k)
{
    for (uint64_t seed = 100; seed <= 108; seed++)
        property_run(seed, 16384);
}

Test(trace, property_many_seeds_shuffled)
{
    shuffle_mode = ARENA_SHUFFLE_ON;
    for (uint64_t seed = 200; seed <= 211; seed++)
        property_run(seed, seed % 2 ? 4096 : 16384);
}

/* The same graphs fixed with arena_fix_inline, and with both fixes compared on every
 * reference: interior references, large objects, pinned objects, copies. */
Test(trace, property_fix_inline_agrees)
{
    static const enum fix_mode modes[] = {FIX_INLINE, FIX_CALL_THEN_INLINE, FIX_INLINE_THEN_CALL};
    for (uint64_t seed = 200; seed < 212; seed++) {
        fix_mode = modes[seed % 3];
        property_run(seed, seed % 2 ? 16384 : 4096);
    }
    fix_mode = FIX_CALL;
}

/* .req.trace.lazy-sweep: pages whose objects all died or moved are retained without their
 * start and end bits cleared, and cleared when reused. Every granule of every page that
 * holds an object is looked up after each collection and after each round of allocation
 * (which reuses those pages, as does the next collection's to-space): arena_object must
 * answer the live object covering it or NULL, never a stale start, arena_object_size the
 * object's size, arena_is_marked 0; a stale reference to a freed object must still fail.
 * Then arena_collect (which needs every retained slot swept) and meshing run on the
 * same heap. */
struct span {
    char *at;
    size_t size;
};

static int span_cmp(const void *x, const void *y)
{
    const struct span *a = x, *b = y;
    return a->at < b->at ? -1 : a->at > b->at;
}

/* The objects the heap holds now: the model's with an address (the reached ones after
 * a collection, and everything allocated since). */
static size_t current_spans(const struct model *m, struct span *out)
{
    size_t n = 0;
    for (size_t i = 0; i < m->count; i++)
        if (m->n[i].addr != NULL)
            out[n++] = (struct span){m->n[i].addr, (m->n[i].size + 15) & ~(size_t)15};
    qsort(out, n, sizeof *out, span_cmp);
    return n;
}

static void check_pages(arena_t *a, const struct model *m, size_t page, const char *when)
{
    struct span *sp = malloc((m->count + 1) * sizeof *sp);
    cr_assert_not_null(sp);
    size_t n = current_spans(m, sp), checked = 0;
    char *last_page = NULL;
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(arena_object_size(a, sp[i].at), sp[i].size, "%s: object %p has size %zu, not %zu", when,
                     (void *)sp[i].at, arena_object_size(a, sp[i].at), sp[i].size);
        cr_assert_eq(arena_is_marked(a, sp[i].at), 0, "%s: object %p still marked", when, (void *)sp[i].at);
        char *first = (char *)((uintptr_t)sp[i].at & ~(uintptr_t)(page - 1));
        char *end = sp[i].at + sp[i].size;
        /* Every page the object covers, once: each granule answers its covering object. */
        for (char *pg = first < last_page ? last_page : first; pg < end; pg += page) {
            size_t j = i;
            while (j > 0 && sp[j - 1].at + sp[j - 1].size > pg)
                j--;
            for (char *g = pg; g < pg + page; g += 16) {
                while (j < n && sp[j].at + sp[j].size <= g)
                    j++;
                void *want = j < n && sp[j].at <= g ? sp[j].at : NULL;
                cr_assert_eq(arena_object(a, g), want, "%s: granule %p answers %p, the live object there is %p",
                             when, (void *)g, arena_object(a, g), want);
                checked++;
            }
            last_page = pg + page;
        }
    }
    cr_assert_gt(checked, 0);
    free(sp);
}

static void *stale_ref[2];
static int stale_rc[2][2];
static void roots_stale(arena_ss_t *ss, void *closure)
{
    for (int i = 0; i < 2; i++) { /* first: no copy has taken their slots as to-space yet */
        void *r = stale_ref[i], *r2 = r;
        stale_rc[i][0] = r == NULL ? ARENA_ENOTOBJ : arena_fix(ss, &r);
        stale_rc[i][1] = r == NULL ? ARENA_ENOTOBJ : arena_fix_inline(ss, &r2);
    }
    roots_model(ss, closure);
}

static size_t stale_checks;

static void lazy_sweep_run(uint64_t seed, size_t page)
{
    rng_state = seed * 0x9E3779B97F4A7C15ull + 3;
    arena_t *a = make(page, 0);
    struct model m;
    model_init(&m, 12);
    grow_graph(a, &m, 500, page, true);
    for (int cycle = 0; cycle < 8; cycle++) {
        size_t expect = verify(a, &m);
        if (cycle % 3 == 1)
            cr_assert_eq(arena_pin(a, m.n[pick_reached(&m)].addr), 0);
        /* Stale references, to an unreachable object and to where a copied one was: once
         * their slots are free, fixing them is an error (the marks of the copied went). */
        char **before = malloc(m.count * sizeof *before);
        cr_assert_not_null(before);
        for (size_t i = 0; i < m.count; i++)
            before[i] = m.n[i].addr;
        size_t had = in_heap(&m);
        arena_collect_stats_t st;
        cr_assert_eq(arena_trace_collect(a, format_of(&m), ARENA_TRACE_FULL, &st), 0);
        cr_assert_eq(st.objects_live, expect);
        cr_assert_eq(st.objects_freed, had - expect);
        cr_assert_eq(verify(a, &m), expect);
        stale_ref[0] = stale_ref[1] = NULL;
        for (size_t i = 0; i < m.count; i++) {
            bool moved = is_reached(&m, (uint32_t)i) && m.n[i].addr != before[i];
            bool died = !is_reached(&m, (uint32_t)i) && before[i] != NULL;
            if ((moved || died) && m.n[i].size <= page && arena_object(a, before[i]) == NULL &&
                stale_ref[moved] == NULL)
                stale_ref[moved] = before[i];
        }
        free(before);
        for (size_t i = 0; i < m.count; i++)
            if (!is_reached(&m, (uint32_t)i))
                m.n[i].addr = NULL;
        check_pages(a, &m, page, "after the collection");
        if (stale_ref[0] != NULL || stale_ref[1] != NULL) {
            static arena_format_t f;
            f = (arena_format_t){scan_tobj, roots_stale, &m};
            cr_assert_eq(arena_trace_collect(a, &f, ARENA_TRACE_FULL, NULL), 0);
            for (int i = 0; i < 4; i++)
                cr_assert_eq(stale_rc[i / 2][i % 2], ARENA_ENOTOBJ, "a reference to a %s object was fixed by %s (%d)",
                             i / 2 ? "copied" : "dead", i % 2 ? "arena_fix_inline" : "arena_fix", stale_rc[i / 2][i % 2]);
            cr_assert_eq(verify(a, &m), expect);
            check_pages(a, &m, page, "after a second collection");
            stale_checks++;
        }
        /* Reuse the retained pages: new objects, some wired into the live graph. */
        size_t base = m.count;
        grow_graph(a, &m, 400, page, false);
        for (int k = 0; k < 60; k++) {
            uint32_t f = pick_reached(&m);
            if (m.n[f].nptr)
                set_edge(&m, f, (uint32_t)(rnd() % m.n[f].nptr), (uint32_t)(base + rnd() % 400));
        }
        check_pages(a, &m, page, "after allocation");
    }
    /* arena_collect and meshing over slots a one-pass collection left unswept. */
    size_t expect = verify(a, &m);
    cr_assert(mark_collect_forward(a, &m, 8) >= 0);
    cr_assert_eq(verify(a, &m), expect);
    check_pages(a, &m, page, "after arena_collect");
    grow_graph(a, &m, 300, page, false);
    check_pages(a, &m, page, "after allocation past arena_collect");
    expect = verify(a, &m);
    cr_assert_eq(arena_trace_collect(a, format_of(&m), ARENA_TRACE_FULL, NULL), 0);
    cr_assert_eq(verify(a, &m), expect);
    arena_destroy(a);
    model_free(&m);
}

Test(trace, lazily_swept_pages_reused_show_no_stale_bits)
{
    stale_checks = 0;
    for (uint64_t seed = 300; seed < 316; seed++)
        lazy_sweep_run(seed, seed % 4 == 3 ? 16384 : 4096);
    cr_assert_gt(stale_checks, 0, "no stale reference was ever tried");
}

/* A full trace frees what is unreachable, keeps what is, and an old page is not
 * copied again once dense. */
Test(trace, frees_unreachable_and_keeps_dense_pages)
{
    rng_state = 7;
    allocs = 0;
    arena_t *a = make(0, 0);
    struct model m;
    model_init(&m, 1);
    /* A list of 2000 small objects, all reachable from one root. */
    for (int i = 0; i < 2000; i++) {
        uint32_t id = new_node(a, &m, 4096);
        while (m.n[id].nptr == 0 || m.n[id].size > 256) {
            m.count--;
            id = new_node(a, &m, 4096);
        }
        for (uint32_t k = 0; k < m.n[id].nptr; k++)
            set_edge(&m, id, k, k == 0 && id > 0 ? id - 1 : UINT32_MAX);
    }
    set_root(&m, 0, (uint32_t)m.count - 1, false);
    size_t discarded = allocs - 2000;   /* the ones new_node made and the loop dropped */
    /* Garbage next to it. */
    for (int i = 0; i < 2000; i++)
        cr_assert_not_null(arena_alloc(a, 64));
    arena_collect_stats_t st;
    cr_assert_eq(arena_trace_collect(a, format_of(&m), ARENA_TRACE_FULL, &st), 0);
    cr_assert_eq(st.objects_live, 2000);
    cr_assert_eq(st.objects_freed, 2000 + discarded);
    cr_assert_eq(st.objects_evacuated, 2000, "young pages are evacuation candidates");
    cr_assert_lt(st.pages_after, st.pages_before, "dead pages left the heap");
    cr_assert_eq(verify(a, &m), 2000);
    /* Dense now: the second full collection marks in place. */
    cr_assert_eq(arena_trace_collect(a, format_of(&m), ARENA_TRACE_FULL, &st), 0);
    cr_assert_eq(st.objects_live, 2000);
    cr_assert_lt(st.objects_evacuated, 100);
    cr_assert_eq(verify(a, &m), 2000);
    arena_destroy(a);
    model_free(&m);
}

/* A root into the middle of an object keeps it and is fixed to the same byte. */
Test(trace, interior_roots)
{
    rng_state = 11;
    arena_t *a = make(0, 0);
    struct model m;
    model_init(&m, 64);
    grow_graph(a, &m, 200, 4096, true);
    for (size_t r = 0; r < m.nroots; r++)
        set_root(&m, r, (uint32_t)(rnd() % m.count), true);
    size_t expect = verify(a, &m);
    cr_assert_eq(arena_trace_collect(a, format_of(&m), ARENA_TRACE_FULL, NULL), 0);
    cr_assert_eq(verify(a, &m), expect);
    /* A reference to a free page or past the heap's objects is not an object. */
    arena_destroy(a);
    model_free(&m);
}

static void *fix_result_ref;
static int fix_result;
static void roots_one(arena_ss_t *ss, void *closure)
{
    (void)closure;
    fix_result = fix_ref(ss, &fix_result_ref);
}
static void scan_none(arena_ss_t *ss, void *obj, size_t size, void *closure)
{
    (void)ss, (void)obj, (void)size, (void)closure;
}

static void fix_outside_run(void)
{
    arena_t *a = make(0, 0);
    char *o = arena_alloc(a, 64);
    cr_assert_not_null(o);
    arena_format_t f = {scan_none, roots_one, NULL};
    static char outside[16];
    fix_result_ref = outside;
    cr_assert_eq(arena_trace_collect(a, &f, ARENA_TRACE_FULL, NULL), 0);
    cr_assert_eq(fix_result, 0);
    cr_assert_eq(fix_result_ref, (void *)outside);
    /* o died in that collection: its page is free now. */
    fix_result_ref = o;
    cr_assert_eq(arena_trace_collect(a, &f, ARENA_TRACE_FULL, NULL), 0);
    cr_assert_eq(fix_result, ARENA_ENOTOBJ);
    cr_assert_eq(fix_result_ref, (void *)o, "a reference that names nothing is left alone");
    fix_result_ref = NULL;
    cr_assert_eq(arena_trace_collect(a, &f, ARENA_TRACE_FULL, NULL), 0);
    cr_assert_eq(fix_result, 0);
    arena_destroy(a);
}

Test(trace, fix_outside_and_not_an_object)
{
    for (int k = FIX_CALL; k <= FIX_INLINE_THEN_CALL; k++) {
        fix_mode = (enum fix_mode)k;
        fix_outside_run();
    }
    fix_mode = FIX_CALL;
}

/* With the backing file capped, to-space runs out half-way: the rest is marked in
 * place and every object survives intact. */
Test(trace, tospace_exhaustion_falls_back_to_marking)
{
    rng_state = 23;
    size_t cap = (size_t)2 << 20;
    arena_t *a = make(4096, cap);
    small_only = true;
    struct model m;
    model_init(&m, 8);
    /* Fill most of the file with reachable small objects. */
    size_t base = m.count;
    for (;;) {
        arena_stats_t s;
        cr_assert_eq(arena_stats(a, &s), 0);
        if (s.heap_pages * 4096 + 48 * 4096 > cap)
            break;
        uint32_t id = new_node(a, &m, 4096);
        for (uint32_t k = 0; k < m.n[id].nptr; k++)
            set_edge(&m, id, k, id == base ? UINT32_MAX : k == 0 ? id - 1 : (uint32_t)(base + rnd() % (id - base)));
    }
    for (size_t r = 0; r < m.nroots; r++)
        set_root(&m, r, (uint32_t)(m.count - 1 - r), false);
    size_t expect = verify(a, &m);
    cr_assert_gt(expect, 300, "reached %zu of %zu", expect, m.count);
    arena_collect_stats_t st;
    int rc = arena_trace_collect(a, format_of(&m), ARENA_TRACE_FULL, &st);
    cr_assert(rc == 0 || rc == -ARENA_ENOSPC, "rc %d", rc);
    cr_assert_eq(st.objects_live, expect);
    cr_assert_lt(st.objects_evacuated, expect, "to-space should have run out: rc %d, %zu of %zu evacuated, pages %zu", rc, st.objects_evacuated, expect, st.pages_before);
    cr_assert_gt(st.pages_in_place, 0);
    cr_assert_eq(verify(a, &m), expect);
    /* And the heap still works afterwards. */
    cr_assert_eq(arena_trace_collect(a, format_of(&m), ARENA_TRACE_FULL, &st), 0);
    cr_assert_eq(verify(a, &m), expect);
    arena_destroy(a);
    model_free(&m);
}

/* A young collection: old objects are neither traced nor freed, young ones reachable
 * only through an old object's written field (the remembered set) survive. */
/* The objects from base on that a young collection keeps: reachable from the roots or from
 * a field of a remembered object (some of those are no longer reachable themselves: their
 * young targets are floating garbage the trace keeps). */
static size_t young_live(const struct model *m, size_t base)
{
    bool *seen = calloc(m->count, sizeof *seen);
    uint32_t *stack = malloc((m->count * MAXP + m->nroots + m->nremset * MAXP) * sizeof *stack);
    cr_assert(seen && stack);
    size_t sp = 0, n = 0;
    for (size_t r = 0; r < m->nroots; r++)
        stack[sp++] = m->root_tgt[r];
    for (size_t i = 0; i < m->nremset; i++) {
        const struct node *o = &m->n[((const struct tobj *)m->remset[i])->id];
        for (uint32_t k = 0; k < o->nptr; k++)
            if (o->tgt[k] != UINT32_MAX)
                stack[sp++] = o->tgt[k];
    }
    while (sp != 0) {
        uint32_t id = stack[--sp];
        if (seen[id])
            continue;
        seen[id] = true;
        n += id >= base;
        for (uint32_t k = 0; k < m->n[id].nptr; k++)
            if (m->n[id].tgt[k] != UINT32_MAX && id >= base) /* old objects' fields are not traced */
                stack[sp++] = m->n[id].tgt[k];
    }
    free(seen);
    free(stack);
    return n;
}

/* Returns the young objects the young collection kept. */
static size_t young_run(uint64_t seed)
{
    rng_state = seed;
    arena_t *a = make(0, 0);
    struct model m;
    model_init(&m, 4);
    grow_graph(a, &m, 300, 4096, true);
    cr_assert_eq(arena_trace_collect(a, format_of(&m), ARENA_TRACE_FULL, NULL), 0);
    (void)verify(a, &m); /* marks the reached objects, for the choices below */
    /* An unreachable old object stays through young collections (floating garbage). */
    uint32_t dead_old = UINT32_MAX;
    for (uint32_t i = 0; i < m.count && dead_old == UINT32_MAX; i++)
        if (!is_reached(&m, i))
            dead_old = i;
    char *old_addr[300];
    for (uint32_t i = 0; i < 300; i++)
        old_addr[i] = is_reached(&m, i) ? m.n[i].addr : NULL;
    /* Young objects hung only from old objects' fields. */
    size_t base = m.count;
    grow_graph(a, &m, 200, 4096, false);
    for (size_t r = 0; r < m.nroots; r++) { /* roots back to old objects */
        uint32_t t = pick_reached(&m);
        while (t >= base)
            t = pick_reached(&m);
        set_root(&m, r, t, false);
    }
    m.nremset = 0;
    for (int k = 0; k < 50; k++) {
        uint32_t f = (uint32_t)(rnd() % base);
        if (!is_reached(&m, f) || m.n[f].nptr == 0 || m.n[f].addr == NULL)
            continue;
        set_edge(&m, f, 0, (uint32_t)(base + rnd() % 200));
        m.remset[m.nremset++] = m.n[f].addr;
    }
    size_t expect = verify(a, &m), young_reached = young_live(&m, base);
    arena_collect_stats_t st;
    cr_assert_eq(arena_trace_collect(a, format_of(&m), ARENA_TRACE_YOUNG, &st), 0);
    m.nremset = 0;
    /* Only the young were condemned: exact counts of them (.req.trace.condemned-set). */
    cr_assert_eq(st.objects_live, young_reached, "seed %llu: live %zu young reached %zu", (unsigned long long)seed, st.objects_live, young_reached);
    cr_assert_eq(st.objects_freed, 200 - young_reached, "seed %llu: %zu freed, %zu of 200 reached",
                 (unsigned long long)seed, st.objects_freed, young_reached);
    cr_assert_eq(verify(a, &m), expect);
    for (uint32_t i = 0; i < 300; i++)
        if (old_addr[i] != NULL && is_reached(&m, i))
            cr_assert_eq(m.n[i].addr, old_addr[i], "an old object moved in a young collection");
    if (dead_old != UINT32_MAX && m.n[dead_old].addr != NULL && arena_object(a, m.n[dead_old].addr))
        cr_assert_eq(arena_object(a, m.n[dead_old].addr), m.n[dead_old].addr);
    /* A full collection after it sees the same graph. */
    cr_assert_eq(arena_trace_collect(a, format_of(&m), ARENA_TRACE_FULL, &st), 0);
    cr_assert_eq(st.objects_live, expect);
    cr_assert_eq(verify(a, &m), expect);
    arena_destroy(a);
    model_free(&m);
    return young_reached;
}

Test(trace, young_collection_with_remembered_set)
{
    cr_assert_gt(young_run(31), 0, "no young object survived");
}

/* The same over seeds: exact live and freed counts of every young collection. */
Test(trace, young_collection_counts_many_seeds)
{
    size_t kept = 0;
    for (uint64_t seed = 40; seed < 56; seed++)
        kept += young_run(seed);
    cr_assert_gt(kept, 0, "no young object survived");
}

Test(trace, young_collection_shuffled)
{
    shuffle_mode = ARENA_SHUFFLE_ON;
    young_run(31);
}

/* arena_fix_inline settles references to old objects of a young collection itself (the
 * pages it does not condemn): the same graph, each reference fixed both ways. */
Test(trace, young_collection_fix_inline_agrees)
{
    for (int k = FIX_INLINE; k <= FIX_INLINE_THEN_CALL; k++) {
        fix_mode = (enum fix_mode)k;
        young_run(31);
    }
    fix_mode = FIX_CALL;
}

/* A mirror view shows the moved objects at their new place; the tracker reports the
 * pages the copies landed on. */
Test(trace, mirror_and_tracking_follow)
{
    rng_state = 41;
    arena_t *a = make(0, 0);
    arena_view_t *mirror = NULL;
    cr_assert_eq(arena_view_open(a, ARENA_VIEW_MIRROR, 0, ARENA_PROT_READ, 0, &mirror), 0);
    arena_view_t *hv = arena_heap_view(a);
    int trc = arena_track_start(hv, ARENA_TRACK_WRITES);
    struct model m;
    model_init(&m, 8);
    grow_graph(a, &m, 400, 4096, true);
    size_t expect = verify(a, &m);
    char **before = calloc(m.count, sizeof *before);
    cr_assert_not_null(before);
    for (uint32_t i = 0; i < m.count; i++)
        before[i] = m.n[i].addr;
    static void *pages[1 << 16];
    size_t n = 0;
    if (trc == 0)
        cr_assert_eq(arena_track_take(hv, pages, 1 << 16, &n), 0);
    arena_collect_stats_t st;
    cr_assert_eq(arena_trace_collect(a, format_of(&m), ARENA_TRACE_FULL, &st), 0);
    cr_assert_gt(st.objects_evacuated, 0);
    cr_assert_eq(verify(a, &m), expect);
    size_t ps = arena_page_size(a);
    if (trc == 0)
        cr_assert_eq(arena_track_take(hv, pages, 1 << 16, &n), 0);
    for (uint32_t i = 0; i < m.count; i++) {
        if (!is_reached(&m, i))
            continue;
        char *p = m.n[i].addr;
        char *mp = arena_view_addr(mirror, p);
        cr_assert_not_null(mp);
        cr_assert_eq(memcmp(mp, p, m.n[i].size), 0, "the mirror shows another object %u", i);
        if (trc != 0 || before[i] == p)
            continue;
        char *pg = (char *)((uintptr_t)p & ~(uintptr_t)(ps - 1));
        bool found = false;
        for (size_t k = 0; k < n && !found; k++)
            found = pages[k] == pg;
        cr_assert(found, "the page of moved object %u is not reported touched", i);
    }
    if (trc == 0)
        cr_assert_eq(arena_track_stop(hv), 0);
    free(before);
    arena_destroy(a);
    model_free(&m);
}

Test(trace, bad_input)
{
    arena_t *a = make(0, 0);
    arena_format_t ok = {scan_none, roots_one, NULL};
    arena_format_t noscan = {NULL, roots_one, NULL}, noroots = {scan_none, NULL, NULL};
    fix_result_ref = NULL;
    cr_assert_eq(arena_trace_collect(NULL, &ok, ARENA_TRACE_FULL, NULL), ARENA_ENULL);
    cr_assert_eq(arena_trace_collect(a, NULL, ARENA_TRACE_FULL, NULL), ARENA_ENULL);
    cr_assert_eq(arena_trace_collect(a, &noscan, ARENA_TRACE_FULL, NULL), ARENA_ENULL);
    cr_assert_eq(arena_trace_collect(a, &noroots, ARENA_TRACE_FULL, NULL), ARENA_ENULL);
    cr_assert_eq(arena_trace_collect(a, &ok, 7, NULL), ARENA_ECONFIG);
    cr_assert_eq(arena_trace_collect(a, &ok, -1, NULL), ARENA_ECONFIG);
    void *r = NULL;
    cr_assert_eq(arena_fix(NULL, &r), ARENA_ENULL);
    arena_destroy(a);
}

/* The old interface still works after a one-pass collection and before one. */
Test(trace, mixes_with_mark_collect_forward)
{
    rng_state = 53;
    arena_t *a = make(0, 0);
    struct model m;
    model_init(&m, 8);
    grow_graph(a, &m, 300, 4096, true);
    size_t expect = verify(a, &m);
    cr_assert_eq(arena_trace_collect(a, format_of(&m), ARENA_TRACE_FULL, NULL), 0);
    cr_assert_eq(verify(a, &m), expect);
    /* mark everything reachable, collect, forward every reference */
    cr_assert_eq(mark_collect_forward(a, &m, 0), 0);
    cr_assert_eq(verify(a, &m), expect);
    /* young after arena_collect: what arena_collect kept is old */
    cr_assert_eq(arena_trace_collect(a, format_of(&m), ARENA_TRACE_YOUNG, NULL), 0);
    cr_assert_eq(verify(a, &m), expect);
    arena_destroy(a);
    model_free(&m);
}

/* ------------------------------------------------------------- arena_fix_inline -- */

static void *case_ref[8];
static int case_rc[8];
static size_t case_n;
static void roots_cases(arena_ss_t *ss, void *closure)
{
    (void)closure;
    for (size_t i = 0; i < case_n; i++)
        case_rc[i] = arena_fix_inline(ss, &case_ref[i]);
}

static void collect_cases(arena_t *a, int mode, arena_collect_stats_t *st)
{
    arena_format_t f = {scan_none, roots_cases, NULL};
    cr_assert_eq(arena_trace_collect(a, &f, mode, st), 0);
    for (size_t i = 0; i < case_n; i++)
        cr_assert_eq(case_rc[i], 0, "reference %zu: %d", i, case_rc[i]);
}

/* What the inline stage settles without a call: addresses outside the heap, a copy made
 * earlier in the same collection (named by its start, and by an address in its first 16
 * bytes), an object kept in place; and what it leaves to arena_fix (an address past the
 * first 16 bytes): each gives the answer arena_fix gives. */
Test(trace, fix_inline_outside_forwarded_interior)
{
    arena_t *a = make(0, 0);
    struct tobj *o = arena_alloc(a, 64);
    cr_assert_not_null(o);
    o->id = 77;
    static char outside[32];
    char local[16];
    void *ref[8] = {o, o, (char *)o + 8, (char *)o + 40, outside, local, NULL, (void *)(uintptr_t)8};
    memcpy(case_ref, ref, sizeof ref);
    case_n = 8;
    arena_collect_stats_t st;
    collect_cases(a, ARENA_TRACE_FULL, &st);
    cr_assert_eq(st.objects_live, 1);
    cr_assert_eq(st.objects_evacuated, 1, "a young object is copied");
    char *copy = case_ref[0];
    cr_assert_neq(copy, (char *)o);
    cr_assert_eq(((struct tobj *)copy)->id, 77);
    cr_assert_eq(case_ref[1], copy, "the second fix finds the copy");
    cr_assert_eq(case_ref[2], copy + 8, "an address in the first granule follows the copy");
    cr_assert_eq(case_ref[3], copy + 40, "an interior address follows the copy");
    for (size_t i = 4; i < 8; i++)
        cr_assert_eq(case_ref[i], ref[i], "reference %zu outside the heap was written", i);
    arena_destroy(a);
}

/* A pinned object stays: every fix of it, inline or not, leaves the reference alone. */
Test(trace, fix_inline_pinned)
{
    arena_t *a = make(0, 0);
    char *p = arena_alloc(a, 48);
    cr_assert_not_null(p);
    cr_assert_eq(arena_pin(a, p), 0);
    void *ref[4] = {p, p, p + 8, p + 32};
    memcpy(case_ref, ref, sizeof ref);
    case_n = 4;
    arena_collect_stats_t st;
    collect_cases(a, ARENA_TRACE_FULL, &st);
    cr_assert_eq(st.objects_evacuated, 0);
    for (size_t i = 0; i < 4; i++)
        cr_assert_eq(case_ref[i], ref[i], "a reference to a pinned object changed");
    arena_destroy(a);
}

/* In a young collection an old object is on a page the collection does not condemn: the
 * inline stage answers 0 and writes nothing, and a young object next to the references
 * still moves. */
Test(trace, fix_inline_young_mode_old_objects)
{
    arena_t *a = make(0, 0);
    char *old = arena_alloc(a, 64);
    cr_assert_not_null(old);
    case_ref[0] = old;
    case_n = 1;
    collect_cases(a, ARENA_TRACE_FULL, NULL);
    old = case_ref[0];   /* copied once: now on an old page */
    char *young = arena_alloc(a, 32);
    cr_assert_not_null(young);
    memcpy(young, "young", 6);
    void *ref[4] = {old, old + 8, old + 40, young};
    memcpy(case_ref, ref, sizeof ref);
    case_n = 4;
    arena_collect_stats_t st;
    collect_cases(a, ARENA_TRACE_YOUNG, &st);
    for (size_t i = 0; i < 3; i++)
        cr_assert_eq(case_ref[i], ref[i], "a reference to an old object changed in a young collection");
    cr_assert_eq(st.objects_evacuated, 1);
    cr_assert_neq(case_ref[3], (void *)young);
    cr_assert_str_eq(case_ref[3], "young");
    arena_destroy(a);
}

/* A young collection after arena_collect: an object allocated since into a gap of a page
 * arena_collect kept for its pins (.req.heap.recycle-pinned) is young on an old page. It
 * is not in the runtime's remembered set, so the collection itself must scan it: the young
 * object it references survives and its field follows the copy. */
struct cell {
    void *ptr;
    uint64_t tag;
};
static void *cell_root;
static void scan_cell(arena_ss_t *ss, void *obj, size_t size, void *closure)
{
    (void)size;
    (void)closure;
    cr_assert_eq(arena_fix(ss, &((struct cell *)obj)->ptr), 0);
}
static void roots_cell(arena_ss_t *ss, void *closure)
{
    (void)closure;
    cr_assert_eq(arena_fix(ss, &cell_root), 0);
}

Test(trace, young_after_collect_scans_objects_in_recycled_gaps)
{
    arena_t *a = make(4096, 0);
    struct cell *first = arena_alloc(a, 32), *mid = NULL;
    for (int i = 1; i < 64; i++) {
        struct cell *p = arena_alloc(a, 32);
        if (i == 32)
            mid = p;
    }
    cr_assert_eq(arena_pin(a, first), 0);
    cr_assert_eq(arena_pin(a, mid), 0);
    cr_assert_geq(arena_collect(a, NULL), 0);
    struct cell *y = arena_alloc(a, 32), *z;
    cr_assert_eq((uintptr_t)y / 4096, (uintptr_t)first / 4096, "y went into a gap of the pinned page");
    do
        z = arena_alloc(a, 1024);
    while ((uintptr_t)z / 4096 == (uintptr_t)first / 4096);
    z->tag = 0x1234;
    y->ptr = z;
    cell_root = y;
    arena_format_t f = {scan_cell, roots_cell, NULL};
    cr_assert_eq(arena_trace_collect(a, &f, ARENA_TRACE_YOUNG, NULL), 0);
    cr_assert_eq(cell_root, y, "an object on an old page moved");
    cr_assert_eq(arena_object(a, y->ptr), y->ptr, "y's field names no live object");
    cr_assert_eq(((struct cell *)y->ptr)->tag, 0x1234);
    /* The next young collection: y is old now, nothing is scanned twice or lost. */
    cr_assert_eq(arena_trace_collect(a, &f, ARENA_TRACE_YOUNG, NULL), 0);
    cr_assert_eq(((struct cell *)y->ptr)->tag, 0x1234);
    arena_destroy(a);
}

/* A collection started from a callback of arena_trace_collect (which holds the arena's
 * lock) is refused with ARENA_ESTATE instead of waiting forever for that lock. */
static arena_t *reentered;
static int reenter_trace_rc, reenter_collect_rc;
static void roots_reenter(arena_ss_t *ss, void *closure)
{
    (void)ss;
    reenter_trace_rc = arena_trace_collect(reentered, closure, ARENA_TRACE_FULL, NULL);
    reenter_collect_rc = arena_collect(reentered, NULL);
}

Test(trace, collection_from_a_callback_is_refused, .timeout = 20)
{
    reentered = make(0, 0);
    cr_assert_not_null(arena_alloc(reentered, 32));
    arena_format_t f = {scan_cell, roots_reenter, NULL};
    f.closure = &f;
    cr_assert_eq(arena_trace_collect(reentered, &f, ARENA_TRACE_FULL, NULL), 0);
    cr_assert_eq(reenter_trace_rc, ARENA_ESTATE);
    cr_assert_eq(reenter_collect_rc, ARENA_ESTATE);
    /* Outside a callback both run. */
    f.roots = roots_cell;
    cell_root = NULL;
    cr_assert_eq(arena_trace_collect(reentered, &f, ARENA_TRACE_FULL, NULL), 0);
    cr_assert_geq(arena_collect(reentered, NULL), 0);
    arena_destroy(reentered);
}

/* .req.trace.to-space-reserve: roots are an array of object addresses; objects hold no field. */
static void **reserve_roots;
static size_t reserve_nroots;
static void roots_array(arena_ss_t *ss, void *closure)
{
    (void)closure;
    for (size_t i = 0; i < reserve_nroots; i++)
        cr_assert_eq(arena_fix(ss, &reserve_roots[i]), 0);
}

/* Every other object of npages pages of 64-byte objects becomes a root (half-full pages:
 * evacuated), the rest garbage; stamps the survivors with their index. */
static void reserve_round(arena_t *a, size_t npages)
{
    size_t per = 4096 / 64;
    for (size_t i = 0; i < npages * per; i++) {
        char *o = arena_alloc(a, 64);
        cr_assert_not_null(o);
        if (i % 2 == 0) {
            reserve_roots[i / 2] = o;
            memcpy(o, &i, sizeof i);
        }
    }
    reserve_nroots = npages * per / 2;
}

/* After a collection that evacuated, the mutator's allocation uses up every page retained
 * beyond the reserve, but not the reserve: the next young collection, whose survivors are as
 * many, takes its to-space from it, with no fresh file page inside the pause. */
static void young_tospace_from_reserve(size_t npages)
{
    arena_t *a = make(4096, 0);
    reserve_roots = calloc(npages * 64, sizeof *reserve_roots);
    cr_assert_not_null(reserve_roots);
    arena_format_t f = {scan_none, roots_array, NULL};
    arena_collect_stats_t st;
    reserve_round(a, npages);
    cr_assert_eq(arena_trace_collect(a, &f, ARENA_TRACE_FULL, &st), 0);
    cr_assert_gt(st.bytes_evacuated, npages * 4096 / 4, "the half-full pages were evacuated");
    /* Garbage: more than every page the collection retained. */
    arena_stats_t s;
    cr_assert_eq(arena_stats(a, &s), 0);
    for (size_t i = 0; i < 2 * s.retained_bytes / 64 + 4096; i++)
        cr_assert_not_null(arena_alloc(a, 64));
    /* A round of young objects, half of them surviving, then the young collection. */
    /* The old survivors are dropped: the round below replaces the roots. */
    reserve_round(a, npages);
    arena_stats_t before, after;
    cr_assert_eq(arena_stats(a, &before), 0);
    cr_assert_eq(arena_trace_collect(a, &f, ARENA_TRACE_YOUNG, &st), 0);
    cr_assert_eq(arena_stats(a, &after), 0);
    cr_assert_gt(st.bytes_evacuated, npages * 4096 / 4, "the young survivors were evacuated");
    cr_assert_geq(before.retained_bytes, st.bytes_evacuated,
                  "the reserve left for the young collection (%zu bytes) is short of its survivors (%zu)",
                  before.retained_bytes, (size_t)st.bytes_evacuated);
    cr_assert_leq(after.file_bytes, before.file_bytes,
                  "the young collection took fresh file pages: %zu -> %zu bytes", before.file_bytes,
                  after.file_bytes);
    for (size_t i = 0; i < reserve_nroots; i++) {
        size_t v;
        memcpy(&v, reserve_roots[i], sizeof v);
        cr_assert_eq(v, 2 * i, "survivor %zu lost", i);
    }
    free(reserve_roots);
    arena_destroy(a);
}

Test(trace, young_tospace_comes_from_the_reserve) { young_tospace_from_reserve(64); }

/* Survivors beyond the retention's smallest soft amount: the reserve follows this collection's
 * live bytes, not the previous one's (the first collection's reserve was capped at the soft
 * amount of an empty heap, and the young collection took fresh pages in its pause). */
Test(trace, young_tospace_reserve_follows_the_live_bytes) { young_tospace_from_reserve(12288); }

/* The reserve never outlives the retention's soft amount: after one-pass collections that
 * copied much, an arena_collect that finds little alive lowers the soft amount, and the
 * pool must not take back fresh, round after round, what the delayed purge releases. */
Test(trace, reserve_follows_a_falling_soft_amount)
{
    arena_t *a = TEST_ARENA(.page_size = 4096, .reserve = (size_t)1 << 30, .retain_delay_ms = 1);
    const size_t n = 80000;
    reserve_roots = calloc(n, sizeof *reserve_roots);
    cr_assert_not_null(reserve_roots);
    arena_format_t f = {scan_none, roots_array, NULL};
    for (int round = 0; round < 2; round++) {
        reserve_nroots = 0;
        for (size_t i = 0; i < n; i++) {
            void *p = arena_alloc(a, 1000);
            cr_assert_not_null(p);
            if (i % 2 == 0)
                reserve_roots[reserve_nroots++] = p;
        }
        cr_assert_eq(arena_trace_collect(a, &f, ARENA_TRACE_FULL, NULL), 0);
    }
    reserve_nroots = 100;
    for (size_t i = 0; i < reserve_nroots; i++)
        cr_assert_eq(arena_mark(a, reserve_roots[i]), 0);
    cr_assert_geq(arena_collect(a, NULL), 0);
    arena_stats_t s;
    for (int r = 0; r < 24; r++) {
        usleep(3000); /* past retain_delay_ms: the next refill purges the surplus */
        for (int i = 0; i < 3000; i++)
            cr_assert_not_null(arena_alloc(a, 1000));
    }
    cr_assert_eq(arena_stats(a, &s), 0);
    /* The default soft amount with 1 MiB alive is its floor, 16 MiB; a pool chunk of slack. */
    cr_assert_leq(s.retained_bytes, (size_t)18 << 20,
                  "%zu bytes stay retained with %zu alive: the reserve outlived the soft amount",
                  s.retained_bytes, s.live_bytes);
    free(reserve_roots);
    arena_destroy(a);
}
