/*
 * prog_model_mix.c -- a property test against a model (.req.trace.lazy-sweep and the
 * collectors' interplay): one arena collected by arena_collect (arena_mark, collect,
 * arena_forward) and by arena_trace_collect (full and ARENA_TRACE_YOUNG, with a remembered
 * set of the old objects written since) in a random mix, with pins (arena_pin and
 * arena_pin_range), interior references, large objects, sizes at the shuffle class
 * boundaries, arena_alloc and arena_lab_alloc, trims, page tracking, a small cfg.max_file,
 * forks whose child collects on its own, and the seed's choice of page size, cfg.shuffle and
 * cfg.mesh. After each collection every live object is found where its references say, with
 * its contents, size, marks cleared, and arena_object answers random heap addresses (pages
 * that died and were left unswept included) as the model does. A young collection keeps the
 * young objects allocated into the gaps of pages arena_collect kept for pins (trace.c's
 * push_recycled): the model keeps them too. A plain program because it forks.
 * Usage: prog_model_mix [seeds [steps [first seed]]]. Exit 1 on the first disagreement.
 */
#include "arena.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAXOBJ 4096
#define MAXF 6
#define NROOTS 24

struct obj {
    int live;          /* in the heap (not yet freed by a collection) */
    int old;           /* survived a collection */
    int dirty;         /* old, and a field written since the last collection */
    int pinned;        /* pinned for the next collection */
    int marked;        /* arena_mark()ed since the last collection: kept, in place by a trace */
    int recycled;      /* young, in a gap of a page arena_collect kept for a pin: a root of
                          the next young collection (.req.heap.recycle-pinned) */
    char *addr;
    size_t size;       /* usable (rounded) */
    int nf;
    int tgt[MAXF];     /* -1 = NULL */
    size_t off[MAXF];
};

static struct obj o[MAXOBJ];
static int nobj;
static int root_tgt[NROOTS];
static size_t root_off[NROOTS];
static void *roots[NROOTS];
static uint64_t rs;
static char *pinned_pages[MAXOBJ];
static int npinned_pages;
static size_t page_sz;
static arena_lab_t lab;
static int tracking;
static int small_file;
static unsigned long cap_failures;
static arena_t *A;
static const char *where;
static unsigned long seed_now;

static uint64_t rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}

#define FAIL(...)                                                                                 \
    do {                                                                                          \
        fprintf(stderr, "seed %lu at %s: ", seed_now, where);                                     \
        fprintf(stderr, __VA_ARGS__);                                                             \
        fprintf(stderr, "\n");                                                                    \
        exit(1);                                                                                  \
    } while (0)

/* Object layout: word 0 = id, word 1 = nf, words 2.. = fields (pointers). */
static void **field(int id, int f) { return (void **)(o[id].addr + 16 + 8 * (size_t)f); }

static size_t pick_size(size_t page)
{
    static const size_t fixed[] = {16, 32, 48, 64, 96, 256, 272, 1008, 1024, 1025, 1040, 2048};
    switch (rnd() % 8) {
    case 0: return fixed[rnd() % (sizeof fixed / sizeof *fixed)];
    case 1: return page - 16 * (rnd() % 3);
    case 2: return page + 16 * (rnd() % 3);
    case 3: if (rnd() % 4 == 0) return page * (2 + rnd() % 3) + 16 * (rnd() % 2); /* fallthrough */
    default: return 16 + 16 * (rnd() % 40);
    }
}

static void do_alloc(size_t page)
{
    int id = nobj;
    if (nobj == MAXOBJ) { /* reuse a dead object's number: nothing live names it */
        for (id = 0; id < MAXOBJ && o[id].live; id++)
            ;
        if (id == MAXOBJ)
            return;
    }
    size_t sz = pick_size(page);
    char *p = rnd() % 2 ? arena_alloc(A, sz) : arena_lab_alloc(&lab, sz);
    if (p == NULL && small_file && (errno == ENOSPC || errno == ENOMEM))
    {
        cap_failures++;
        return; /* at the cap */
    }
    if (p == NULL)
        FAIL("alloc %zu failed", sz);
    size_t usable = (sz + 15) & ~(size_t)15;
    for (size_t i = 0; i < usable; i++)
        if (p[i] != 0)
            FAIL("alloc %zu not zeroed at %zu", sz, i);
    if (id == nobj)
        nobj++;
    memset(&o[id], 0, sizeof o[id]);
    o[id].live = 1;
    o[id].addr = p;
    o[id].size = usable;
    int maxf = (int)((usable - 16) / 8);
    o[id].nf = maxf < MAXF ? maxf : MAXF;
    for (int f = 0; f < MAXF; f++)
        o[id].tgt[f] = -1;
    ((uint64_t *)p)[0] = (uint64_t)id + 1000;
    ((uint64_t *)p)[1] = (uint64_t)o[id].nf;
    /* the last word: a second copy of the id */
    if (usable >= 16 + 8 * (size_t)o[id].nf + 8 && usable > 16)
        memcpy(p + usable - 8, &((uint64_t){(uint64_t)id + 7000}), 8);
    for (int k = 0; k < npinned_pages; k++)
        if ((char *)((uintptr_t)p & ~(uintptr_t)(page_sz - 1)) == pinned_pages[k])
            o[id].recycled = 1;
    int r = (int)(rnd() % NROOTS);
    root_tgt[r] = id;
    root_off[r] = rnd() % 2 ? 0 : (rnd() % usable) & ~(size_t)7;
    roots[r] = p + root_off[r];
}

static int pick_live(void)
{
    if (nobj == 0)
        return -1;
    for (int t = 0; t < 8; t++) {
        int i = (int)(rnd() % (uint64_t)nobj);
        if (o[i].live)
            return i;
    }
    return -1;
}

static void do_store(void)
{
    int a = pick_live(), b = rnd() % 5 ? pick_live() : -1;
    if (a < 0 || o[a].nf == 0)
        return;
    int f = (int)(rnd() % (uint64_t)o[a].nf);
    size_t off = b >= 0 && rnd() % 3 == 0 ? (rnd() % o[b].size) : 0;
    o[a].tgt[f] = b;
    o[a].off[f] = off;
    *field(a, f) = b >= 0 ? o[b].addr + off : NULL;
    if (o[a].old)
        o[a].dirty = 1;
}

/* live after a collection: closure of roots, pins (and every old object in a young one) */
static void closure(int young, char *keep)
{
    int *stack = malloc(sizeof(int) * MAXOBJ * (MAXF + 1) + 64), sp = 0;
    memset(keep, 0, MAXOBJ);
    for (int r = 0; r < NROOTS; r++)
        if (root_tgt[r] >= 0)
            stack[sp++] = root_tgt[r];
    for (int i = 0; i < nobj; i++)
        if (o[i].live && (o[i].pinned || o[i].marked || (young && (o[i].old || o[i].recycled))))
            stack[sp++] = i;
    while (sp > 0) {
        int i = stack[--sp];
        if (keep[i])
            continue;
        if (!o[i].live)
            FAIL("model: dead object %d reachable", i);
        keep[i] = 1;
        for (int f = 0; f < o[i].nf; f++)
            if (o[i].tgt[f] >= 0 && !keep[o[i].tgt[f]])
                stack[sp++] = o[i].tgt[f];
    }
    free(stack);
}

/* After a collection: update addresses from the (fixed or forwarded) references, check them. */
static void settle(const char *keep, int mode) /* 0 full trace, 1 young trace, 2 collect */
{
    char *seen = calloc(MAXOBJ, 1);
    for (int r = 0; r < NROOTS; r++) {
        int t = root_tgt[r];
        if (t < 0)
            continue;
        char *a = (char *)roots[r] - root_off[r];
        if (seen[t] && a != o[t].addr)
            FAIL("root %d names obj %d at %p, another ref said %p", r, t, (void *)a, (void *)o[t].addr);
        o[t].addr = a;
        seen[t] = 1;
    }
    /* fields: iterate until stable */
    int changed = 1;
    while (changed) {
        changed = 0;
        for (int i = 0; i < nobj; i++) {
            if (!keep[i] || !(seen[i] || o[i].pinned || o[i].marked || (mode == 1 && (o[i].old || o[i].recycled)) || mode == 2))
                continue;
            if (!seen[i]) {
                seen[i] = 1;
                changed = 1;
            }
            if (*(uint64_t *)o[i].addr != (uint64_t)i + 1000)
                FAIL("obj %d at %p holds id %llu", i, (void *)o[i].addr,
                     (unsigned long long)*(uint64_t *)o[i].addr);
            for (int f = 0; f < o[i].nf; f++) {
                int t = o[i].tgt[f];
                char *v = *field(i, f);
                if (t < 0) {
                    if (v != NULL)
                        FAIL("obj %d field %d should be NULL, is %p", i, f, (void *)v);
                    continue;
                }
                char *a = v - o[i].off[f];
                if (seen[t] && a != o[t].addr)
                    FAIL("obj %d field %d names obj %d at %p, known at %p", i, f, t, (void *)a,
                         (void *)o[t].addr);
                if (!seen[t]) {
                    o[t].addr = a;
                    seen[t] = 1;
                    changed = 1;
                }
            }
        }
    }
    for (int i = 0; i < nobj; i++) {
        if (o[i].live && !keep[i]) {
            o[i].live = 0;
        } else if (keep[i]) {
            if (!seen[i])
                FAIL("live obj %d not reached by the check", i);
            o[i].old = 1;
        }
        o[i].dirty = 0;
        o[i].pinned = 0;
        o[i].marked = 0;
        o[i].recycled = 0;
    }
    free(seen);
}

static void check_objects(void)
{
    for (int i = 0; i < nobj; i++) {
        if (!o[i].live)
            continue;
        char *p = o[i].addr;
        if (arena_is_marked(A, p + o[i].size / 2) != (o[i].pinned || o[i].marked ? 1 : 0))
            FAIL("obj %d: arena_is_marked %d, pinned %d", i, arena_is_marked(A, p + o[i].size / 2), o[i].pinned);
        if (*(uint64_t *)p != (uint64_t)i + 1000)
            FAIL("obj %d id word wrong", i);
        if (arena_object_size(A, p) != o[i].size)
            FAIL("obj %d size %zu, arena says %zu", i, o[i].size, arena_object_size(A, p));
        size_t probes[4] = {0, o[i].size - 1, rnd() % o[i].size, o[i].size / 2};
        for (int k = 0; k < 4; k++)
            if (arena_object(A, p + probes[k]) != p)
                FAIL("arena_object(obj %d + %zu) = %p, want %p", i, probes[k],
                     arena_object(A, p + probes[k]), (void *)p);
        if (o[i].size > 16 && 16 + 8 * (size_t)o[i].nf + 8 <= o[i].size) {
            uint64_t t;
            memcpy(&t, p + o[i].size - 8, 8);
            if (t != (uint64_t)i + 7000)
                FAIL("obj %d tail word %llu", i, (unsigned long long)t);
        }
    }
}

static int cmp_addr(const void *x, const void *y)
{
    const struct obj *a = *(struct obj *const *)x, *b = *(struct obj *const *)y;
    return a->addr < b->addr ? -1 : a->addr > b->addr;
}

/* arena_object on random addresses of the heap's used range agrees with the model. */
static void check_random_addresses(int n)
{
    arena_view_t *v = arena_heap_view(A);
    char *base = arena_view_base(v);
    struct obj **sorted = malloc(sizeof *sorted * MAXOBJ);
    int ns = 0;
    char *hi = base;
    for (int i = 0; i < nobj; i++)
        if (o[i].live) {
            sorted[ns++] = &o[i];
            if (o[i].addr + o[i].size > hi)
                hi = o[i].addr + o[i].size;
        }
    qsort(sorted, (size_t)ns, sizeof *sorted, cmp_addr);
    size_t span = (size_t)(hi - base) + 4 * arena_page_size(A);
    for (int k = 0; k < n; k++) {
        char *p = base + rnd() % span;
        int lo = 0, h = ns; /* first with addr > p */
        while (lo < h) {
            int m = (lo + h) / 2;
            if (sorted[m]->addr <= p)
                lo = m + 1;
            else
                h = m;
        }
        char *want = NULL;
        if (lo > 0 && p < sorted[lo - 1]->addr + sorted[lo - 1]->size)
            want = sorted[lo - 1]->addr;
        char *got = arena_object(A, p);
        if (got != want) {
            if (getenv("MIX_DEBUG")) {
                fprintf(stderr, "size of got %zu\n", got ? arena_object_size(A, got) : 0);
                for (int i = 0; i < nobj; i++)
                    if (o[i].addr <= p + 4096 && o[i].addr + o[i].size + 4096 > p)
                        fprintf(stderr, "obj %d live %d old %d addr %p size %zu\n", i, o[i].live, o[i].old, (void *)o[i].addr, o[i].size);
            }
            FAIL("arena_object(%p) = %p, model says %p (base %p)", (void *)p, (void *)got, (void *)want,
                 (void *)base);
        }
    }
    free(sorted);
}

/* trace callbacks */
static int trace_young;
static void scan(arena_ss_t *ss, void *obj, size_t size, void *cl)
{
    (void)cl;
    uint64_t *w = obj;
    int id = (int)(w[0] - 1000);
    if (id < 0 || id >= nobj)
        FAIL("scan of %p: bad id %lld", obj, (long long)w[0] - 1000);
    if (size != o[id].size)
        FAIL("scan of obj %d: size %zu, want %zu", id, size, o[id].size);
    for (int f = 0; f < (int)w[1]; f++) {
        int rc = rnd() % 2 ? arena_fix(ss, (void **)&w[2 + f]) : arena_fix_inline(ss, (void **)&w[2 + f]);
        if (rc != 0)
            FAIL("fix of obj %d field %d: %d", id, f, rc);
    }
}

static void troots(arena_ss_t *ss, void *cl)
{
    (void)cl;
    for (int r = 0; r < NROOTS; r++)
        if (roots[r] != NULL && arena_fix(ss, &roots[r]) != 0)
            FAIL("fix of root %d", r);
    if (trace_young)
        for (int i = 0; i < nobj; i++)
            if (o[i].live && o[i].dirty)
                for (int f = 0; f < o[i].nf; f++) {
                    int rc = arena_fix_inline(ss, field(i, f));
                    if (rc != 0)
                        FAIL("fix of remembered obj %d field %d: %d", i, f, rc);
                }
}

static void do_trace(int young)
{
    char keep[MAXOBJ];
    closure(young, keep);
    trace_young = young;
    arena_format_t fmt = {scan, troots, NULL};
    arena_collect_stats_t st;
    int rc = arena_trace_collect(A, &fmt, young ? ARENA_TRACE_YOUNG : ARENA_TRACE_FULL, &st);
    if (rc < 0 || (rc > 0 && !small_file))
        FAIL("arena_trace_collect: %d", rc);
    /* pinned objects, and old ones in a young collection, were not moved: settle starts from them */
    settle(keep, young);
    npinned_pages = 0; /* a trace voids the recycle list */
    for (int i = 0; i < nobj; i++)
        if (o[i].live && arena_forward(A, o[i].addr + o[i].size - 1) != o[i].addr + o[i].size - 1)
            FAIL("arena_forward after a trace moved obj %d", i);
}

static void do_collect(void)
{
    char keep[MAXOBJ];
    closure(0, keep);
    for (int i = 0; i < nobj; i++)
        if (keep[i]) {
            int rc = rnd() % 2 ? arena_mark(A, o[i].addr) : arena_mark(A, o[i].addr + rnd() % o[i].size);
            if (rc != 0)
                FAIL("arena_mark obj %d: %d", i, rc);
            if (arena_is_marked(A, o[i].addr) != 1)
                FAIL("obj %d not marked after arena_mark", i);
        } else if (o[i].live && arena_is_marked(A, o[i].addr) != 0) {
            FAIL("unmarked obj %d is marked", i);
        }
    arena_collect_stats_t st;
    int rc = arena_collect(A, &st);
    if (rc < 0 || (rc > 0 && !small_file))
        FAIL("arena_collect: %d", rc);
    for (int r = 0; r < NROOTS; r++)
        if (roots[r] != NULL)
            roots[r] = arena_forward(A, roots[r]);
    for (int i = 0; i < nobj; i++) {
        if (!keep[i]) {
            continue;
        }
        char *old = o[i].addr;
        char *nw = arena_forward(A, old);
        if (nw == NULL)
            FAIL("arena_forward of live obj %d is NULL", i);
        o[i].addr = nw;
        for (int f = 0; f < o[i].nf; f++) {
            void **fp = field(i, f);
            if (*fp != NULL) {
                void *x = arena_forward(A, *fp);
                if (x == NULL)
                    FAIL("forward of obj %d field %d NULL", i, f);
                *fp = x;
            }
        }
    }
    npinned_pages = 0;
    for (int i = 0; i < nobj; i++)
        if (keep[i] && o[i].pinned && o[i].size <= page_sz)
            pinned_pages[npinned_pages++] = (char *)((uintptr_t)o[i].addr & ~(uintptr_t)(page_sz - 1));
    settle(keep, 2);
}

static void do_pin(void)
{
    int i = pick_live();
    if (i < 0)
        return;
    int rc;
    if (rnd() % 3 == 0) { /* a mark without a pin: a root of the next trace, kept in place */
        rc = arena_mark(A, o[i].addr + rnd() % o[i].size);
        if (rc != 0)
            FAIL("mark obj %d: %d", i, rc);
        o[i].marked = 1;
        return;
    }
    if (rnd() % 2) {
        rc = arena_pin(A, o[i].addr + rnd() % o[i].size);
    } else {
        void *word = o[i].addr + rnd() % o[i].size;
        rc = arena_pin_range(A, &word, &word + 1, NULL, NULL);
    }
    if (rc != 0)
        FAIL("pin obj %d: %d", i, rc);
    o[i].pinned = 1;
}

/* A child collects, checks and allocates on its own copy of the heap; the parent goes on. */
static void do_fork(size_t page)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        FAIL("fork");
    if (pid == 0) {
        where = "child";
        for (int i = 0; i < 30; i++) {
            do_alloc(page);
            do_store();
            if (i % 10 == 9) {
                unsigned k = (unsigned)(rnd() % 3);
                if (k == 0)
                    do_collect();
                else
                    do_trace(k == 2);
                check_objects();
                check_random_addresses(100);
            }
        }
        _exit(0);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        FAIL("child failed (status %#x)", status);
}

static void run(unsigned long seed, int steps)
{
    seed_now = seed;
    rs = seed * 0x9E3779B97F4A7C15ull + 1;
    memset(o, 0, sizeof o);
    nobj = 0;
    for (int r = 0; r < NROOTS; r++) {
        root_tgt[r] = -1;
        roots[r] = NULL;
    }
    arena_config_t cfg;
    arena_config_init(&cfg);
    static const size_t pages[] = {0, 4096, 16384, 65536};
    cfg.page_size = pages[rnd() % 4];
    cfg.shuffle = rnd() % 2 ? ARENA_SHUFFLE_ON : ARENA_SHUFFLE_OFF;
    cfg.shuffle_seed = rnd();
    cfg.mesh = (int)(rnd() % 3);
    cfg.retain_max = rnd() % 3 == 0 ? 1 : 0;
    cfg.reserve = (size_t)1 << 30;
    small_file = rnd() % 4 == 0;
    cfg.max_file = small_file ? (size_t)(4 + rnd() % 16) << 16 : (size_t)256 << 20;
    int rc = arena_create(&A, &cfg);
    if (rc != 0) {
        where = "create";
        FAIL("arena_create: %d", rc);
    }
    size_t page = arena_page_size(A);
    page_sz = page;
    if (arena_lab_init(A, &lab) != 0)
        FAIL("lab init");
    tracking = rnd() % 3 == 0;
    if (tracking && arena_track_start(arena_heap_view(A), ARENA_TRACK_WRITES) != 0)
        FAIL("track start");
    npinned_pages = 0;
    if (getenv("MIX_DEBUG"))
        fprintf(stderr, "page %zu shuffle %d mesh %d retain_max %zu\n", page, cfg.shuffle, cfg.mesh, cfg.retain_max);
    for (int s = 0; s < steps; s++) {
        unsigned k = (unsigned)(rnd() % 100);
        if (getenv("MIX_DEBUG") && getenv("MIX_TRACE"))
            fprintf(stderr, "step %d k %u\n", s, k);
        if (k < 45) {
            where = "alloc";
            do_alloc(page);
        } else if (k < 70) {
            where = "store";
            do_store();
        } else if (k < 75) {
            where = "drop root";
            int r = (int)(rnd() % NROOTS);
            root_tgt[r] = -1;
            roots[r] = NULL;
        } else if (k < 79) {
            where = "pin";
            do_pin();
        } else if (k < 83) {
            where = "trace full";
            do_trace(0);
        } else if (k < 89) {
            where = "trace young";
            do_trace(1);
        } else if (k < 92) {
            where = "collect";
            do_collect();
        } else if (k < 94) {
            where = "trim";
            if (arena_trim(A, rnd() % 2 ? 0 : page * (rnd() % 8)) != 0)
                FAIL("trim");
        } else if (k < 95) {
            where = "stats";
            arena_stats_t st;
            if (arena_stats(A, &st) != 0)
                FAIL("stats");
            if (tracking) {
                void *pg[64];
                size_t n;
                where = "track take";
                int rc = arena_track_take(arena_heap_view(A), pg, 64, &n);
                if (rc != 0)
                    FAIL("arena_track_take: %d", rc);
            }
            if (rnd() % 4 == 0)
                do_fork(page);
        } else {
            where = "check";
            check_objects();
            check_random_addresses(200);
        }
        if (getenv("MIX_DEBUG") && k >= 79 && k < 94)
            fprintf(stderr, "step %d %s (obj9 live %d)\n", s, where, nobj > 9 ? o[9].live : -1);
        if (k >= 79 && k < 92) {
            where = "after collection";
            check_objects();
            check_random_addresses(100);
        }
    }
    arena_destroy(A);
}

int main(int argc, char **argv)
{
    unsigned long seeds = argc > 1 ? strtoul(argv[1], NULL, 0) : 24;
    unsigned long first = argc > 3 ? strtoul(argv[3], NULL, 0) : 1;
    int steps = argc > 2 ? atoi(argv[2]) : 1500;
    for (unsigned long s = first; s < first + seeds; s++)
        run(s, steps);
    printf("ok: %lu seeds x %d steps (%lu allocations refused at the file cap)\n", seeds, steps, cap_failures);
    return 0;
}
