/*
 * prog_maplimit_undo.c -- at the process's mapping limit every call either succeeds or
 * changes nothing, and a negative return always means "nothing changed" (issue 12, item 2).
 *
 * The test never touches vm.max_map_count: it uses up its OWN mapping count with one-page
 * anonymous mappings of alternating protection (so they cannot merge) until mmap refuses,
 * then gives back 0, 10 or 200 of them and runs one operation: a 4096-slot reversal
 * (arena_view_apply), arena_view_map, arena_view_protect, arena_view_move, arena_collect,
 * arena_track_start + take. Afterwards (the mappings given back) it checks each slot's file
 * page and contents (by checksum), arena_view_vmas against /proc/self/maps, and for a
 * collection that no survivor moved when the code is negative.
 * A plain program: it manipulates the process's own mapping count.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arena.h"

#include "prog_check.h"

#define N 4096u
static size_t ps;

/* ------------------------------------------------------ the process's mappings -- */
static void **held;
static size_t nheld, capheld;

/* Map one-page anonymous mappings until the kernel refuses, then give `left` back. */
static void consume(size_t left)
{
    nheld = 0;
    for (;;) {
        if (nheld == capheld) {
            capheld = capheld ? 2 * capheld : 1 << 16;
            held = realloc(held, capheld * sizeof *held);
            if (!held) {
                fprintf(stderr, "out of memory\n");
                exit(1);
            }
        }
        void *p = mmap(NULL, ps, (nheld & 1) ? PROT_READ : PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            break;
        held[nheld++] = p;
    }
    for (size_t i = 0; i < left && nheld > 0; i++)
        munmap(held[--nheld], ps);
}

static void release(void)
{
    while (nheld > 0)
        munmap(held[--nheld], ps);
}

/* Mappings of /proc/self/maps that intersect [lo, hi). */
static size_t maps_in(uintptr_t lo, uintptr_t hi)
{
    FILE *f = fopen("/proc/self/maps", "re");
    size_t n = 0;
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        unsigned long s, e;
        if (sscanf(line, "%lx-%lx", &s, &e) == 2 && s < hi && e > lo)
            n++;
    }
    if (f)
        fclose(f);
    return n;
}

/* ------------------------------------------------------------- view state -- */
struct state {
    size_t page[N];
    uint64_t sum[N];
    int prot[N];
    size_t vmas;
};

static uint64_t checksum(const unsigned char *p)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < ps; i += 64)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

/* Slot protections are not public: the test keeps its own record of what it set. */
static int prots[N];

static void snapshot(const arena_view_t *v, struct state *s)
{
    unsigned char *base = arena_view_base(v);
    for (size_t i = 0; i < N; i++) {
        s->page[i] = arena_view_file_page(v, i);
        s->prot[i] = prots[i];
        s->sum[i] = s->page[i] != ARENA_NO_PAGE && (prots[i] & ARENA_PROT_READ) ? checksum(base + i * ps) : 0;
    }
    s->vmas = arena_view_vmas(v);
}

static bool same(const struct state *a, const struct state *b, const char *what)
{
    for (size_t i = 0; i < N; i++)
        if (a->page[i] != b->page[i] || a->sum[i] != b->sum[i]) {
            fprintf(stderr, "  %s: slot %zu shows page %zu (sum %llx), expected %zu (sum %llx)\n", what, i,
                    b->page[i], (unsigned long long)b->sum[i], a->page[i], (unsigned long long)a->sum[i]);
            return false;
        }
    return true;
}

static size_t changed_slots(const struct state *a, const struct state *b)
{
    size_t n = 0;
    for (size_t i = 0; i < N; i++)
        n += a->page[i] != b->page[i];
    return n;
}

/* --------------------------------------------------------------- fixtures -- */
static arena_t *a;
static arena_view_t *v;
static size_t first;

static void setup(void)
{
    arena_config_t cfg;
    arena_config_init(&cfg);
    CHECK(arena_create(&a, &cfg) == 0, "arena_create");
    CHECK(arena_file_alloc(a, 2 * N, &first) == 0, "file_alloc");
    CHECK(arena_view_open(a, ARENA_VIEW_EMPTY, N, ARENA_PROT_READ | ARENA_PROT_WRITE, 0, &v) == 0, "open");
    CHECK(arena_view_map(v, 0, first + N, N) == 0, "map");
    unsigned char *base = arena_view_base(v);
    for (size_t i = 0; i < N; i++)
        memset(base + i * ps, (int)(i * 7 + 1), ps);
    CHECK(arena_view_map(v, 0, first, N) == 0, "map");
    for (size_t i = 0; i < N; i++) {
        memset(base + i * ps, (int)(i * 13 + 3), ps);
        base[i * ps] = (unsigned char)(i >> 4);
        prots[i] = ARENA_PROT_READ | ARENA_PROT_WRITE;
    }
}

static void teardown(void)
{
    arena_destroy(a);
    a = NULL;
    v = NULL;
}

static void check_vmas(const char *what)
{
    uintptr_t lo = (uintptr_t)arena_view_base(v);
    size_t k = maps_in(lo, lo + N * ps);
    /* The reservation's edges may merge with neighbouring PROT_NONE mappings: still one each. */
    CHECK(k == arena_view_vmas(v), "%s: /proc/self/maps shows %zu mappings in the view, arena_view_vmas %zu", what, k,
          arena_view_vmas(v));
}

/* One view operation at `left` mappings below the limit: rc < 0 => nothing changed;
 * rc == 0 => the expected layout. */
static void view_case(const char *what, size_t left, int (*op)(void), void (*expect)(struct state *))
{
    struct state *before = malloc(sizeof *before), *after = malloc(sizeof *after), *want = malloc(sizeof *want);
    snapshot(v, before);
    int saved[N];
    memcpy(saved, prots, sizeof saved);
    consume(left);
    int rc = op();
    release();
    if (rc < 0)
        memcpy(prots, saved, sizeof saved);
    snapshot(v, after);
    printf("  %-8s left %3zu: rc %d (%s), %zu slots differ, vmas %zu -> %zu\n", what, left, rc,
           rc ? arena_strerror(rc) : "ok", changed_slots(before, after), before->vmas, after->vmas);
    if (rc < 0) {
        CHECK(same(before, after, what), "%s at %zu left: rc %d but the view changed", what, left, rc);
        CHECK(before->vmas == after->vmas, "%s: vmas %zu -> %zu on error", what, before->vmas, after->vmas);
    } else {
        CHECK(rc == 0, "%s: rc %d", what, rc);
        *want = *before;
        expect(want);
        CHECK(same(want, after, what), "%s at %zu left: succeeded with the wrong layout", what, left);
    }
    check_vmas(what);
    free(before);
    free(after);
    free(want);
}

/* ------------------------------------------------------------- operations -- */
static size_t rev[N];

static int op_apply(void)
{
    return arena_view_apply(v, 0, rev, N);
}

static void expect_apply(struct state *s)
{
    struct state old = *s;
    for (size_t i = 0; i < N; i++) {
        s->page[i] = old.page[N - 1 - i];
        s->sum[i] = old.sum[N - 1 - i];
    }
}

/* 300 single-page maps from the other half of the file, one call each: only the last ones
 * can meet the limit; the test holds each call to all-or-nothing. */
static int map_rc;
static int op_map(void)
{
    for (size_t i = 0; i < 300; i++) {
        int rc = arena_view_map(v, 2 * i + 1, first + N + 2 * i + 1, 1);
        if (rc) {
            map_rc = (int)i;
            return rc;
        }
    }
    map_rc = 300;
    return 0;
}

static void expect_map(struct state *s)
{
    (void)s;
}

static int op_map_one(void)
{
    /* one call over a run in the middle of the mapping: needs two new mappings */
    return arena_view_map(v, 1000, first + N + 1000, 7);
}

static void expect_map_one(struct state *s)
{
    unsigned char *base = arena_view_base(v);
    for (size_t i = 1000; i < 1007; i++) {
        s->page[i] = first + N + i;
        s->sum[i] = checksum(base + i * ps);
    }
}

static int op_protect(void)
{
    int rc = arena_view_protect(v, 1, 2000, ARENA_PROT_READ);
    if (rc == 0)
        for (size_t i = 1; i < 2001; i++)
            prots[i] = ARENA_PROT_READ;
    return rc;
}

static void expect_same(struct state *s)
{
    (void)s;
}

static int op_move(void)
{
    return arena_view_move(v, 0, N / 2, N / 2);
}

static void expect_move(struct state *s)
{
    for (size_t i = 0; i < N / 2; i++) {
        s->page[i] = s->page[N / 2 + i];
        s->sum[i] = s->sum[N / 2 + i];
        s->page[N / 2 + i] = ARENA_NO_PAGE;
        s->sum[N / 2 + i] = 0;
    }
}

/* ---------------------------------------------------------------- the cases -- */
static void run_view_cases(size_t left)
{
    setup();
    view_case("apply", left, op_apply, expect_apply);
    teardown();

    setup();
    view_case("map1", left, op_map_one, expect_map_one);
    teardown();

    /* Many calls, each must be all-or-nothing; the test only checks the one that failed. */
    setup();
    {
        struct state *before = malloc(sizeof *before), *after = malloc(sizeof *after);
        consume(left);
        int rc = 0;
        size_t i;
        for (i = 0; i < 300 && rc == 0; i++) {
            snapshot(v, before);
            rc = arena_view_map(v, 2 * i + 1, first + N + 2 * i + 1, 1);
        }
        release();
        snapshot(v, after);
        printf("  %-8s left %3zu: %zu calls, last rc %d\n", "map", left, i, rc);
        if (rc < 0)
            CHECK(same(before, after, "map") && before->vmas == after->vmas, "map: rc %d changed the view", rc);
        check_vmas("map");
        free(before);
        free(after);
    }
    teardown();

    setup();
    /* Every other slot of [0, 4000) reversed in pairs: many mappings, then a protection over them. */
    for (size_t i = 0; i < N; i++)
        rev[i] = first + i;
    for (size_t i = 0; i + 1 < 4000; i += 4) {
        rev[i] = first + i + 1;
        rev[i + 1] = first + i;
    }
    CHECK(arena_view_apply(v, 0, rev, N) == 0, "apply");
    view_case("protect", left, op_protect, expect_same);
    teardown();

    setup();
    for (size_t i = 0; i < N; i++)
        rev[i] = first + (i < N / 2 ? i : N - 1 - (i - N / 2));
    CHECK(arena_view_apply(v, 0, rev, N) == 0, "apply");
    view_case("move", left, op_move, expect_move);
    teardown();

    for (size_t i = 0; i < N; i++)
        rev[i] = first + N - 1 - i;
    (void)op_map;
    (void)expect_map;
}

static void track_case(size_t left)
{
    setup();
    struct state *before = malloc(sizeof *before), *after = malloc(sizeof *after);
    snapshot(v, before);
    consume(left);
    int rc = arena_track_start(v, ARENA_TRACK_WRITES);
    int rc2 = 1;
    size_t count = 0;
    void **pages = malloc(N * sizeof *pages);
    unsigned char *base = arena_view_base(v);
    if (rc == 0) {
        for (size_t i = 0; i < N; i += 97)
            base[i * ps + 1] ^= 0x5a;
        rc2 = arena_track_take(v, pages, N, &count);
    }
    release();
    printf("  %-8s left %3zu: start %d (%s), take %d, %zu pages\n", "track", left, rc, rc ? arena_strerror(rc) : "ok",
           rc2, count);
    if (rc < 0) {
        snapshot(v, after);
        CHECK(same(before, after, "track") && before->vmas == after->vmas, "track start %d changed the view", rc);
        size_t c;
        CHECK(arena_track_take(v, pages, N, &c) == ARENA_ESTATE, "a refused start still tracks");
    } else if (rc2 == 0) {
        size_t seen = 0;
        for (size_t k = 0; k < count; k++) {
            size_t s = (size_t)((unsigned char *)pages[k] - base) / ps;
            seen += s % 97 == 0;
        }
        CHECK(seen == (N + 96) / 97, "take reported %zu of %u written pages", seen, (N + 96) / 97);
    } else {
        CHECK(rc2 > 0, "take: %d", rc2); /* a failed take must not lose what it did not report */
        size_t c = 0;
        CHECK(arena_track_take(v, pages, N, &c) == 0, "take after the limit");
        size_t seen = 0;
        for (size_t k = 0; k < c; k++)
            seen += (size_t)((unsigned char *)pages[k] - base) / ps % 97 == 0;
        CHECK(seen == (N + 96) / 97, "after a refused take, %zu of %u written pages reported", seen, (N + 96) / 97);
    }
    if (rc == 0)
        arena_track_stop(v);
    free(pages);
    free(before);
    free(after);
    teardown();
}

#define NOBJ 30000
static void collect_case(size_t left)
{
    arena_config_t cfg;
    arena_config_init(&cfg);
    arena_t *h;
    CHECK(arena_create(&h, &cfg) == 0, "arena_create");
    unsigned char **objs = malloc(NOBJ * sizeof *objs);
    size_t *sizes = malloc(NOBJ * sizeof *sizes);
    for (size_t i = 0; i < NOBJ; i++) {
        sizes[i] = 48 + (i * 37) % 700;
        objs[i] = arena_alloc(h, sizes[i]);
        CHECK(objs[i] != NULL, "alloc");
        memset(objs[i], (int)(i & 0xff), sizes[i]);
    }
    /* Survivors: runs of pages live and dead, so the collection moves many runs. */
    for (size_t i = 0; i < NOBJ; i++)
        if ((i / 400) % 3 != 1 && i % 5 != 0)
            arena_mark(h, objs[i]);
    consume(left);
    arena_collect_stats_t st;
    memset(&st, 0, sizeof st);
    int rc = arena_collect(h, &st);
    release();
    size_t moved = 0, bad = 0;
    for (size_t i = 0; i < NOBJ; i++) {
        if ((i / 400) % 3 == 1 || i % 5 == 0)
            continue;
        unsigned char *p = rc < 0 ? objs[i] : arena_forward(h, objs[i]);
        moved += arena_forward(h, objs[i]) != objs[i];
        for (size_t k = 0; k < sizes[i]; k += 16)
            if (p[k] != (unsigned char)(i & 0xff)) {
                bad++;
                break;
            }
    }
    printf("  %-8s left %3zu: rc %d (%s), %zu survivors moved, remapped %zu copied %zu, %zu corrupt\n", "collect",
           left, rc, rc ? arena_strerror(rc < 0 ? rc : -rc) : "ok", moved, st.pages_remapped, st.pages_copied, bad);
    CHECK(bad == 0, "collect: %zu survivors lost their contents", bad);
    if (rc < 0)
        CHECK(moved == 0, "collect returned %d (nothing changed) but %zu survivors moved", rc, moved);
    free(objs);
    free(sizes);
    arena_destroy(h);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--help") == 0) {
        printf("usage: %s\nRuns arena operations at the process's own mapping limit.\n", argv[0]);
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "usage: %s\n", argv[0]);
        return 64;
    }
#if defined(__SANITIZE_ADDRESS__)
    /* ASan's own allocator maps memory on demand and aborts at the limit this test creates. */
    printf("prog_maplimit_undo: skipped under AddressSanitizer\n");
    return 0;
#endif
    ps = (size_t)sysconf(_SC_PAGESIZE);
    static const size_t lefts[] = {0, 10, 200};
    for (size_t i = 0; i < N; i++)
        rev[i] = 0;
    for (size_t k = 0; k < sizeof lefts / sizeof *lefts; k++) {
        setup();
        for (size_t i = 0; i < N; i++)
            rev[i] = first + N - 1 - i;
        teardown();
        run_view_cases(lefts[k]);
        track_case(lefts[k]);
        collect_case(lefts[k]);
    }
    free(held);
    if (failures) {
        fprintf(stderr, "prog_maplimit_undo: %d failures\n", failures);
        return 1;
    }
    printf("prog_maplimit_undo: ok\n");
    return 0;
}
