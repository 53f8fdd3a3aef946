/*
 * test_roots.c -- ambiguous roots (arena_pin_range, arena_pin_stack; docs/design.md §7):
 * words into the middle of objects, just past their end, into freed space and outside
 * the arena; the calling thread's stack and another thread's; and a property test of
 * many collections with random ambiguous roots against a model (a seed sweep).
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"

static uint64_t rng_state;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static arena_t *make(size_t page)
{
    arena_config_t cfg;
    arena_config_init(&cfg);
    cfg.page_size = page;
    cfg.reserve = (size_t)1 << 32;
    arena_t *a = NULL;
    cr_assert_eq(arena_create(&a, &cfg), 0);
    return a;
}

static void fill(char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (char)(seed * 31 + i);
}

static bool intact(const char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (char)(seed * 31 + i))
            return false;
    return true;
}

/* The callback: counts reports, and checks each is the start of a live object. */
static void count_root(void *obj, void *ctx)
{
    cr_assert_eq(arena_object(*(arena_t **)ctx, obj), obj);
    ((size_t *)ctx)[1]++;
}

static size_t pin_words(arena_t *a, uintptr_t *w, size_t n)
{
    size_t ctx[2] = {(size_t)(uintptr_t)a, 0};
    cr_assert_eq(arena_pin_range(a, w, w + n, count_root, ctx), 0);
    return ctx[1];
}

Test(roots, interior_pointers_pin)
{
    arena_t *a = make(4096);
    enum { N = 64 };
    char *obj[N];
    uintptr_t words[N];
    for (int i = 0; i < N; i++) {
        obj[i] = arena_alloc(a, 48 + 16 * (size_t)(i % 7));
        fill(obj[i], 48, (unsigned)i);
        /* the first byte, the last byte, or somewhere in between */
        size_t size = arena_object_size(a, obj[i]);
        size_t off = i % 3 == 0 ? 0 : i % 3 == 1 ? size - 1 : size / 2;
        words[i] = (uintptr_t)(obj[i] + off);
    }
    /* some dead objects in between, so the pinned pages are not all full */
    for (int i = 0; i < 200; i++)
        arena_alloc(a, 64);
    cr_assert_eq(pin_words(a, words, N), N);
    arena_collect_stats_t st;
    cr_assert_eq(arena_collect(a, &st), 0);
    cr_assert_eq(st.objects_live, N);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(arena_forward(a, obj[i]), obj[i], "an ambiguously rooted object moved");
        cr_assert(intact(obj[i], 48, (unsigned)i));
    }
    arena_destroy(a);
}

Test(roots, just_past_the_end_pins_nothing)
{
    arena_t *a = make(4096);
    /* x then y adjacent: x's end is y's start, which pins y and not x */
    char *x = arena_alloc(a, 64), *y = arena_alloc(a, 64);
    cr_assert_eq(x + 64, y);
    /* z is the last object of its page: its end is the next page */
    char *z = NULL;
    for (;;) {
        char *p = arena_alloc(a, 256);
        if ((uintptr_t)(p + 256) % 4096 == 0) {
            z = p;
            break;
        }
    }
    uintptr_t words[2] = {(uintptr_t)(x + 64), (uintptr_t)(z + 256)};
    fill(y, 64, 7);
    cr_assert_eq(pin_words(a, words, 2), 1, "only y is named");
    arena_collect_stats_t st;
    cr_assert_eq(arena_collect(a, &st), 0);
    cr_assert_eq(st.objects_live, 1);
    cr_assert_null(arena_forward(a, x), "x was kept by a pointer past its end");
    cr_assert_null(arena_forward(a, z), "z was kept by a pointer past its end");
    cr_assert_eq(arena_forward(a, y), y);
    cr_assert(intact(y, 64, 7));
    arena_destroy(a);
}

Test(roots, freed_space_pins_nothing)
{
    arena_t *a = make(4096);
    char *x = arena_alloc(a, 64), *dead = arena_alloc(a, 128), *y = arena_alloc(a, 64);
    fill(x, 64, 1);
    fill(y, 64, 2);
    /* x and y survive pinned (their page stays); dead is freed in place */
    cr_assert_eq(arena_pin(a, x), 0);
    cr_assert_eq(arena_pin(a, y), 0);
    cr_assert_eq(arena_collect(a, NULL), 0);
    cr_assert_eq(arena_forward(a, x), x);
    cr_assert_null(arena_object(a, dead + 8));
    /* now a word into the freed object's space, and one just past x (also freed space) */
    uintptr_t words[3] = {(uintptr_t)(dead + 8), (uintptr_t)dead, (uintptr_t)(x + 64)};
    cr_assert_eq(pin_words(a, words, 3), 0);
    arena_mark(a, y);
    arena_collect_stats_t st;
    cr_assert_eq(arena_collect(a, &st), 0);
    cr_assert_eq(st.objects_live, 1);
    cr_assert_null(arena_forward(a, x), "x kept by a word into freed space");
    arena_destroy(a);
}

Test(roots, foreign_words_pin_nothing)
{
    arena_t *a = make(4096);
    char *x = arena_alloc(a, 64);
    char *heap_base = (char *)arena_view_base(arena_heap_view(a));
    static char global[16];
    char *m = malloc(64);
    int local;
    uintptr_t words[] = {
        0, 1, (uintptr_t)-1, 0xdeadbeefcafeULL, (uintptr_t)global, (uintptr_t)m, (uintptr_t)&local,
        (uintptr_t)(heap_base - 16), (uintptr_t)(heap_base + ((size_t)1 << 31)), /* reserved, never used */
        (uintptr_t)(heap_base + ((size_t)1 << 32)),                            /* just past the heap */
    };
    size_t n = sizeof words / sizeof words[0];
    cr_assert_eq(pin_words(a, words, n), 0);
    cr_assert_eq(arena_collect(a, NULL), 0);
    cr_assert_null(arena_forward(a, x));
    free(m);
    arena_destroy(a);
}

Test(roots, unaligned_range_and_errors)
{
    arena_t *a = make(4096);
    char *x = arena_alloc(a, 64);
    uintptr_t words[3] = {0, (uintptr_t)(x + 3), 0};
    size_t ctx[2] = {(size_t)(uintptr_t)a, 0};
    /* [words+1 byte, end): rounded up, the first aligned word is words[1] */
    cr_assert_eq(arena_pin_range(a, (char *)words + 1, words + 3, count_root, ctx), 0);
    cr_assert_eq(ctx[1], 1);
    /* a range ending inside a word does not read that word */
    cr_assert_eq(arena_pin_range(a, words + 1, (char *)(words + 2) - 1, count_root, ctx), 0);
    cr_assert_eq(ctx[1], 1);
    cr_assert_eq(arena_pin_range(a, NULL, NULL, count_root, ctx), 0);
    cr_assert_eq(ctx[1], 1);
    cr_assert_eq(arena_pin_range(a, words, words + 3, NULL, NULL), 0);
    cr_assert_eq(arena_pin_range(NULL, words, words + 1, NULL, NULL), ARENA_ENULL);
    cr_assert_eq(arena_pin_range(a, words, NULL, NULL, NULL), ARENA_ENULL);
    cr_assert_eq(arena_pin_range(a, words + 1, words, NULL, NULL), ARENA_ERANGE);
    cr_assert_eq(arena_pin_stack(NULL, NULL, NULL), ARENA_ENULL);
    cr_assert_eq(arena_collect(a, NULL), 0);
    cr_assert_eq(arena_forward(a, x), x);
    arena_destroy(a);
}

/* ------------------------------------------------- recycled pinned pages -- */

/* One page of 64-byte objects with every fourth pinned: after the collection the page
 * stays with gaps (.req.heap.recycle-pinned). Returns the page; pinned[] gets the pins. */
static char *pinned_page(arena_t *a, char **pinned, size_t *npinned)
{
    char *first = arena_alloc(a, 64);
    char *page = (char *)((uintptr_t)first & ~(uintptr_t)4095);
    cr_assert_eq(first, page, "a fresh arena starts a page");
    *npinned = 0;
    for (char *p = first; p != NULL && (uintptr_t)p - (uintptr_t)page < 4096; p = arena_alloc(a, 64)) {
        fill(p, 64, (unsigned)(p - page));
        if ((p - page) / 64 % 4 == 1) {
            cr_assert_eq(arena_pin(a, p + 10), 0);
            pinned[(*npinned)++] = p;
        }
        if ((uintptr_t)(p + 64) % 4096 == 0)
            break;
    }
    return page;
}

Test(roots, new_objects_fill_the_gaps_of_pinned_pages)
{
    arena_t *a = make(4096);
    char *pinned[64];
    size_t np;
    char *page = pinned_page(a, pinned, &np);
    cr_assert_eq(np, 16);
    arena_collect_stats_t st;
    cr_assert_eq(arena_collect(a, &st), 0);
    cr_assert_eq(st.pages_pinned, 1);
    /* The gaps are 3 objects of 64 bytes (192 bytes) between the pins: a 48-byte object
     * fits, so does a 192-byte one; a 208-byte one does not. */
    size_t in_page = 0;
    for (int i = 0; i < 64; i++) {
        size_t size = i % 3 == 0 ? 192 : 48;
        char *p = arena_alloc(a, size);
        cr_assert_not_null(p);
        for (size_t k = 0; k < size; k++)
            cr_assert_eq(p[k], 0, "a recycled gap was not cleared");
        memset(p, 0x5a, size);
        if ((uintptr_t)p - (uintptr_t)page < 4096) {
            in_page++;
            cr_assert_eq((p - page) / 64 % 4 != 1, 1, "a new object over a pinned one");
        }
        cr_assert_eq(arena_object(a, p + size - 1), p);
    }
    cr_assert_geq(in_page, 16, "the pinned page's gaps were not reused");
    char *big = arena_alloc(a, 208);
    cr_assert((uintptr_t)big - (uintptr_t)page >= 4096, "a 208-byte object in a 192-byte gap");
    for (size_t i = 0; i < np; i++) {
        cr_assert_eq(arena_object(a, pinned[i]), pinned[i]);
        cr_assert(intact(pinned[i], 64, (unsigned)(pinned[i] - page)), "a pinned object was overwritten");
    }
    arena_destroy(a);
}

/* An object no gap fits costs the list at most one page: many 400-byte objects (the gaps
 * are 192 bytes) still leave the pinned pages to the small objects that follow. */
Test(roots, objects_no_gap_fits_leave_the_recycled_pages)
{
    arena_t *a = make(4096);
    enum { PAGES = 20, PER = 64 };
    char **o = calloc(PAGES * PER, sizeof *o);
    cr_assert_not_null(o);
    for (size_t i = 0; i < PAGES * PER; i++) {
        o[i] = arena_alloc(a, 64);
        if (i % 4 == 1)
            cr_assert_eq(arena_pin(a, o[i]), 0);
    }
    char *lo = (char *)((uintptr_t)o[0] & ~(uintptr_t)4095);
    char *hi = (char *)((uintptr_t)o[PAGES * PER - 1] | 4095);
    arena_collect_stats_t st;
    cr_assert_eq(arena_collect(a, &st), 0);
    cr_assert_eq(st.pages_pinned, PAGES);
    for (int i = 0; i < 4; i++) {
        char *big = arena_alloc(a, 400);
        cr_assert(big < lo || big > hi, "a 400-byte object in a 192-byte gap");
    }
    size_t in_pinned = 0;
    for (size_t i = 0; i < PAGES * 48; i++) {
        char *p = arena_alloc(a, 64);
        in_pinned += p >= lo && p <= hi;
    }
    cr_assert_geq(in_pinned, (PAGES - 4) * 48, "the recycled pages were spent on objects that did not fit");
    free(o);
    arena_destroy(a);
}

/* A word into a gap names nothing until a new object takes that space; then it names the
 * new object, which the next collection keeps where it is. */
Test(roots, recycled_space_pins_the_new_object)
{
    arena_t *a = make(4096);
    char *pinned[64];
    size_t np;
    char *page = pinned_page(a, pinned, &np);
    cr_assert_eq(arena_collect(a, NULL), 0);
    uintptr_t gap_word = (uintptr_t)(page + 8); /* the dead object at offset 0 */
    cr_assert_eq(pin_words(a, &gap_word, 1), 0, "freed space pinned something");
    char *p = arena_alloc(a, 64);
    cr_assert_eq(p, page, "the first gap is at the page's start");
    fill(p, 64, 77);
    cr_assert_eq(pin_words(a, &gap_word, 1), 1);
    for (size_t i = 0; i < np; i++)
        cr_assert_eq(arena_mark(a, pinned[i]), 0);
    arena_collect_stats_t st;
    cr_assert_eq(arena_collect(a, &st), 0);
    cr_assert_eq(st.objects_live, np + 1);
    cr_assert_eq(arena_forward(a, p), p);
    cr_assert(intact(p, 64, 77));
    arena_destroy(a);
}

/* Two threads allocating at once after a collection that left many pinned pages: each
 * claims pages of its own, so no object overlaps another and every byte stays. */
struct filler {
    arena_t *a;
    char **objs;
    size_t n;
    unsigned seed;
};

static void *fill_thread(void *arg)
{
    struct filler *f = arg;
    for (size_t i = 0; i < f->n; i++) {
        size_t size = 16 + 16 * ((i + f->seed) % 8);
        f->objs[i] = arena_alloc(f->a, size);
        if (f->objs[i] != NULL)
            fill(f->objs[i], size, f->seed + (unsigned)i);
    }
    return NULL;
}

Test(roots, threads_fill_recycled_pages_apart)
{
    arena_t *a = make(4096);
    enum { N = 6000, T = 2, PER = 3000 };
    char **old = calloc(N, sizeof *old);
    cr_assert_not_null(old);
    for (size_t i = 0; i < N; i++) {
        old[i] = arena_alloc(a, 48);
        fill(old[i], 48, (unsigned)i);
        if (i % 7 == 0)
            cr_assert_eq(arena_pin(a, old[i]), 0);
    }
    cr_assert_eq(arena_collect(a, NULL), 0);
    struct filler f[T];
    pthread_t t[T];
    for (int k = 0; k < T; k++) {
        f[k] = (struct filler){.a = a, .objs = calloc(PER, sizeof(char *)), .n = PER, .seed = 1000u * (unsigned)(k + 1)};
        cr_assert_not_null(f[k].objs);
        cr_assert_eq(pthread_create(&t[k], NULL, fill_thread, &f[k]), 0);
    }
    for (int k = 0; k < T; k++)
        pthread_join(t[k], NULL);
    for (int k = 0; k < T; k++)
        for (size_t i = 0; i < PER; i++) {
            size_t size = 16 + 16 * ((i + f[k].seed) % 8);
            cr_assert_not_null(f[k].objs[i]);
            cr_assert_eq(arena_object(a, f[k].objs[i] + size - 1), f[k].objs[i]);
            cr_assert(intact(f[k].objs[i], size, f[k].seed + (unsigned)i), "thread %d object %zu overwritten", k, i);
        }
    for (size_t i = 0; i < N; i += 7)
        cr_assert(intact(old[i], 48, (unsigned)i), "a pinned object was overwritten");
    for (int k = 0; k < T; k++)
        free(f[k].objs);
    free(old);
    arena_destroy(a);
}

/* --------------------------------------------------------------- the stack -- */

/* Builds a list whose only references are this frame's locals, then collects with the
 * stack scanned; every node must keep its address and contents. */
__attribute__((noinline)) static void list_on_stack(arena_t *a, int n)
{
    char *volatile nodes[32];
    char *last = NULL; /* may live in a register only */
    for (int i = 0; i < n; i++) {
        char *p = arena_alloc(a, 96);
        fill(p, 96, (unsigned)i);
        nodes[i % 32] = p;
        last = p;
        for (int g = 0; g < 20; g++)
            arena_alloc(a, 80); /* garbage around each node */
    }
    size_t ctx[2] = {(size_t)(uintptr_t)a, 0};
    cr_assert_eq(arena_pin_stack(a, count_root, ctx), 0);
    cr_assert_geq(ctx[1], 32);
    arena_collect_stats_t st;
    cr_assert_eq(arena_collect(a, &st), 0);
    cr_assert_lt(st.objects_live, (size_t)n * 21, "the stack scan kept everything");
    for (int i = n - 32; i < n; i++) {
        cr_assert_eq(arena_forward(a, nodes[i % 32]), nodes[i % 32]);
        cr_assert(intact(nodes[i % 32], 96, (unsigned)i));
    }
    cr_assert_eq(arena_forward(a, last), last);
    cr_assert(intact(last, 96, (unsigned)(n - 1)));
}

Test(roots, own_stack_and_registers)
{
    arena_t *a = make(4096);
    list_on_stack(a, 200);
    arena_destroy(a);
}

struct other {
    arena_t *a;
    pthread_barrier_t *at_safepoint, *collected;
    char *obj;
    bool ok;
    size_t ctx[2];
};

static void *other_thread(void *arg)
{
    struct other *o = arg;
    char *volatile mine = arena_alloc(o->a, 200);
    fill(mine, 200, 9);
    o->obj = mine;
    /* the safepoint: this thread scans its own stack, then parks */
    o->ctx[0] = (size_t)(uintptr_t)o->a;
    int err = arena_pin_stack(o->a, count_root, o->ctx);
    pthread_barrier_wait(o->at_safepoint);
    pthread_barrier_wait(o->collected);
    o->ok = err == 0 && arena_forward(o->a, mine) == mine && intact(mine, 200, 9);
    return NULL;
}

Test(roots, another_threads_stack_at_a_safepoint)
{
    arena_t *a = make(4096);
    pthread_barrier_t b1, b2;
    pthread_barrier_init(&b1, NULL, 2);
    pthread_barrier_init(&b2, NULL, 2);
    struct other o = {.a = a, .at_safepoint = &b1, .collected = &b2};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, other_thread, &o), 0);
    pthread_barrier_wait(&b1);
    cr_assert_geq(o.ctx[1], 1);
    arena_collect_stats_t st;
    cr_assert_eq(arena_collect(a, &st), 0);
    cr_assert_geq(st.objects_live, 1);
    pthread_barrier_wait(&b2);
    pthread_join(t, NULL);
    cr_assert(o.ok, "the other thread's object moved or changed");
    pthread_barrier_destroy(&b1);
    pthread_barrier_destroy(&b2);
    arena_destroy(a);
}

/* ------------------------------------------------------------ the property -- */

struct ref {
    char *p;
    size_t size;
    unsigned seed;
};

static size_t obj_size(size_t page)
{
    uint64_t k = rnd() % 100;
    size_t s = k < 85 ? 16 + rnd() % 300 : k < 97 ? 300 + rnd() % (page - 300) : page + rnd() % (2 * page);
    return (s + 15) & ~(size_t)15;
}

/* The model's answer for one word: the index of the object it points into, or -1. */
static long model_find(const struct ref *refs, size_t n, uintptr_t w)
{
    for (size_t i = 0; i < n; i++)
        if (w >= (uintptr_t)refs[i].p && w < (uintptr_t)refs[i].p + refs[i].size)
            return (long)i;
    return -1;
}

/* Many collections: each allocates, keeps some objects precisely (arena_mark, they may
 * move), names others by ambiguous words (interior, past the end, into dead space, random
 * heap addresses), and checks the collector against the model. */
static void property(uint64_t seed, size_t page)
{
    rng_state = seed;
    arena_t *a = make(page);
    char *heap = (char *)arena_view_base(arena_heap_view(a));
    size_t cap = 1500, n = 0;
    struct ref *refs = calloc(cap, sizeof *refs);
    char **dead = calloc(4096, sizeof *dead);
    size_t ndead = 0;
    enum { W = 256 };
    uintptr_t *words = malloc(W * sizeof *words);
    for (int cycle = 0; cycle < 40; cycle++) {
        size_t fresh = 50 + rnd() % 250;
        for (size_t i = 0; i < fresh && n < cap; i++) {
            struct ref r = {.size = obj_size(page), .seed = (unsigned)rnd()};
            r.p = arena_alloc(a, r.size);
            cr_assert_not_null(r.p);
            cr_assert_eq(arena_object_size(a, r.p), r.size);
            fill(r.p, r.size, r.seed);
            refs[n++] = r;
        }
        for (size_t i = 0; i < W; i++) {
            uint64_t k = rnd() % 100;
            const struct ref *r = &refs[rnd() % n];
            if (k < 35)
                words[i] = (uintptr_t)(r->p + rnd() % r->size);   /* interior */
            else if (k < 55)
                words[i] = (uintptr_t)(r->p + r->size);           /* just past the end */
            else if (k < 70 && ndead > 0)
                words[i] = (uintptr_t)(dead[rnd() % ndead] + 16 * (rnd() % 4)); /* dead space */
            else if (k < 85)
                words[i] = (uintptr_t)(heap + (rnd() % (64u << 20)));            /* anywhere */
            else
                words[i] = (uintptr_t)rnd();
        }
        bool *pinned = calloc(n, sizeof *pinned), *marked = calloc(n, sizeof *marked);
        size_t expect_words = 0;
        for (size_t i = 0; i < W; i++) {
            long j = model_find(refs, n, words[i]);
            if (j >= 0) {
                pinned[j] = true;
                expect_words++;
            }
        }
        cr_assert_eq(pin_words(a, words, W), expect_words, "seed %llu cycle %d", (unsigned long long)seed,
                     cycle);
        size_t expect_live = 0;
        for (size_t i = 0; i < n; i++) {
            marked[i] = !pinned[i] && rnd() % 100 < 30;
            if (marked[i])
                cr_assert_eq(arena_mark(a, refs[i].p + rnd() % refs[i].size), 0);
            expect_live += pinned[i] || marked[i];
        }
        arena_collect_stats_t st;
        cr_assert_eq(arena_collect(a, &st), 0);
        cr_assert_eq(st.objects_live, expect_live, "seed %llu cycle %d", (unsigned long long)seed, cycle);
        size_t kept = 0;
        for (size_t i = 0; i < n; i++) {
            char *now = arena_forward(a, refs[i].p);
            if (!pinned[i] && !marked[i]) {
                cr_assert_null(now, "a dead object forwards");
                if (ndead < 4096)
                    dead[ndead++] = refs[i].p;
                continue;
            }
            cr_assert_not_null(now, "a live object was lost (seed %llu)", (unsigned long long)seed);
            if (pinned[i])
                cr_assert_eq(now, refs[i].p, "an ambiguously rooted object moved");
            cr_assert(intact(now, refs[i].size, refs[i].seed), "object bytes changed");
            refs[kept] = refs[i];
            refs[kept++].p = now;
        }
        n = kept;
        /* dead space may be reused by later allocations: forget it after a while */
        if (ndead > 2048)
            ndead = 0;
        /* dead addresses now holding a new object are not dead space any more */
        size_t d = 0;
        for (size_t i = 0; i < ndead; i++)
            if (arena_object(a, dead[i]) == NULL && arena_object(a, dead[i] + 48) == NULL)
                dead[d++] = dead[i];
        ndead = d;
        free(pinned);
        free(marked);
    }
    free(words);
    free(dead);
    free(refs);
    arena_destroy(a);
}

Test(roots, property_seed_sweep_4k)
{
    for (uint64_t seed = 1; seed <= 12; seed++)
        property(seed * 7919, 4096);
}

Test(roots, property_seed_sweep_16k)
{
    for (uint64_t seed = 1; seed <= 6; seed++)
        property(seed * 104729, 16384);
}

/* A signal handler on an alternate stack (sigaltstack) is not on the thread's stack:
 * [its sp, the thread's stack base) is no stack and crosses unmapped memory. The call
 * says so instead of scanning it. */
static arena_t *altstack_arena;
static volatile int altstack_result = 1;

static void altstack_handler(int sig)
{
    (void)sig;
    altstack_result = arena_pin_stack(altstack_arena, NULL, NULL);
}

/* The alternate stack lies below the thread's stack with an unmapped hole between them,
 * so a scan from the handler's frame up to the thread's stack base would fault. */
enum { ALT = 1 << 16, HOLE = 1 << 20, STACK = 1 << 20 };
static char *altstack_region;

static void *altstack_thread(void *arg)
{
    (void)arg;
    stack_t ss = {.ss_sp = altstack_region, .ss_size = ALT};
    cr_assert_eq(sigaltstack(&ss, NULL), 0);
    cr_assert_eq(arena_pin_stack(altstack_arena, NULL, NULL), 0); /* on its own stack: fine */
    struct sigaction sa = {.sa_handler = altstack_handler, .sa_flags = SA_ONSTACK}, prev;
    sigemptyset(&sa.sa_mask);
    cr_assert_eq(sigaction(SIGUSR1, &sa, &prev), 0);
    cr_assert_eq(pthread_kill(pthread_self(), SIGUSR1), 0);
    cr_assert_eq(sigaction(SIGUSR1, &prev, NULL), 0);
    ss = (stack_t){.ss_flags = SS_DISABLE};
    cr_assert_eq(sigaltstack(&ss, NULL), 0);
    return NULL;
}

Test(roots, pin_stack_on_an_alternate_signal_stack)
{
    altstack_arena = make(4096);
    cr_assert_not_null(arena_alloc(altstack_arena, 64));
    altstack_region = mmap(NULL, ALT + HOLE + STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(altstack_region, MAP_FAILED);
    cr_assert_eq(munmap(altstack_region + ALT, HOLE), 0);
    pthread_attr_t attr;
    cr_assert_eq(pthread_attr_init(&attr), 0);
    cr_assert_eq(pthread_attr_setstack(&attr, altstack_region + ALT + HOLE, STACK), 0);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, &attr, altstack_thread, NULL), 0);
    cr_assert_eq(pthread_join(t, NULL), 0);
    pthread_attr_destroy(&attr);
    cr_assert_eq(altstack_result, ARENA_ERANGE, "got %d", altstack_result);
    munmap(altstack_region, ALT);
    munmap(altstack_region + ALT + HOLE, STACK);
    arena_destroy(altstack_arena);
}
