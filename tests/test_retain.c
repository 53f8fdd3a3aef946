/*
 * test_retain.c -- retained pages (docs/design.md .req.heap.retain-pages): a collection keeps dead pages
 * mapped and resident, allocation and the next collection reuse them without a system
 * call, and only the trim, the delay or the hard limit release them. Also the cheap
 * queries for runtimes: arena_is_marked, arena_allocated_bytes.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arena.h"
#include "core.h"
#include "fixtures.h"
#include "heap.h"
#include "os.h"
#include "track_util.h"

static arena_t *make(size_t retain_bytes, unsigned delay_ms, size_t retain_max)
{
    return TEST_ARENA(.reserve = (size_t)1 << 30, .retain_bytes = retain_bytes, .retain_delay_ms = delay_ms,
                      .retain_max = retain_max);
}

static arena_stats_t stats(arena_t *a)
{
    arena_stats_t s;
    cr_assert_eq(arena_stats(a, &s), 0);
    return s;
}

/* n objects of 1000 bytes, each filled with its tag; every 64th survives the collection. */
static void garbage_cycle(arena_t *a, size_t n, char **keep)
{
    for (size_t i = 0; i < n; i++) {
        char *p = arena_alloc(a, 1000);
        cr_assert_not_null(p);
        for (size_t b = 0; b < 1000; b++)
            cr_assert_eq(p[b], 0, "a reused page was not cleared");
        memset(p, 0x5a, 1000);
        if (i % 64 == 0)
            cr_assert_eq(arena_mark(a, p), 0);
    }
    for (char **k = keep; k && *k; k++)
        cr_assert_eq(arena_mark(a, *k), 0);
    arena_collect_stats_t st;
    cr_assert_eq(arena_collect(a, &st), 0);
    for (char **k = keep; k && *k; k++)
        *k = arena_forward(a, *k);
}

Test(retain, reuse_after_collect_without_growing_the_file)
{
    arena_t *a = make(0, 0, 0);
    char *keep[2] = {arena_alloc(a, 300), NULL};
    memset(keep[0], 0x77, 300);
    garbage_cycle(a, 4000, keep);
    arena_stats_t s1 = stats(a);
    cr_assert_geq(s1.retained_bytes, 500 * s1.page_size, "retained %zu", s1.retained_bytes);
    /* Retained pages stay resident and allocated to the file. */
    cr_assert_geq(s1.resident_bytes, s1.retained_bytes);
    cr_assert_geq(s1.file_bytes, s1.retained_bytes);
    for (int c = 0; c < 5; c++) {
        garbage_cycle(a, 4000, keep);
        arena_stats_t s = stats(a);
        /* Every cycle reuses the pages the previous one retained: the file does not grow. */
        cr_assert_leq(s.file_bytes, s1.file_bytes + 64 * s.page_size, "cycle %d: file %zu -> %zu", c,
                      s1.file_bytes, s.file_bytes);
        for (int b = 0; b < 300; b++)
            cr_assert_eq((unsigned char)keep[0][b], 0x77);
    }
    arena_destroy(a);
}

Test(retain, trim_releases_everything_retained)
{
    arena_t *a = make(0, 0, 0);
    garbage_cycle(a, 4000, NULL);
    arena_stats_t before = stats(a);
    cr_assert_gt(before.retained_bytes, 0);
    cr_assert_eq(arena_trim(a, 4 * before.page_size), 0);
    arena_stats_t mid = stats(a);
    cr_assert_leq(mid.retained_bytes, 4 * before.page_size);
    cr_assert_eq(arena_trim(a, 0), 0);
    arena_stats_t after = stats(a);
    cr_assert_eq(after.retained_bytes, 0);
    cr_assert_lt(after.file_bytes + before.retained_bytes / 2, before.file_bytes, "file %zu -> %zu",
                 before.file_bytes, after.file_bytes);
    /* Resident is the live pages only (4000 / 64 objects of 1000 bytes, 4 per page). */
    cr_assert_leq(after.resident_bytes, 20 * after.page_size, "resident %zu", after.resident_bytes);
    /* Allocation after a trim maps fresh pages again. */
    garbage_cycle(a, 4000, NULL);
    cr_assert_eq(arena_trim(NULL, 0), ARENA_ENULL);
    arena_destroy(a);
}

Test(retain, hard_limit_releases_in_the_collection)
{
    arena_t *a = make(0, 0, 1); /* retain_max 1 byte: nothing is kept */
    garbage_cycle(a, 4000, NULL);
    arena_stats_t s = stats(a);
    cr_assert_eq(s.retained_bytes, 0);
    cr_assert_leq(s.resident_bytes, 20 * s.page_size, "resident %zu", s.resident_bytes);
    arena_destroy(a);

    a = make(0, 0, (size_t)64 * 4096);
    for (char *p; (p = arena_alloc(a, 1000)) != NULL && stats(a).allocated_bytes < (8u << 20);)
        memset(p, 1, 1000);
    arena_collect_stats_t st;
    cr_assert_eq(arena_collect(a, &st), 0);
    cr_assert_gt(st.pages_released, 1000, "the surplus over retain_max went at once");
    s = stats(a);
    cr_assert_leq(s.retained_bytes, (size_t)64 * 4096);
    cr_assert_geq(s.retained_bytes, (size_t)32 * 4096);
    arena_destroy(a);
}

Test(retain, surplus_released_after_the_delay)
{
    size_t soft = (size_t)32 * 4096;
    arena_t *a = make(soft, 20, 0);
    garbage_cycle(a, 8000, NULL);
    cr_assert_gt(stats(a).retained_bytes, soft, "the collection released before the delay");
    struct timespec ts = {0, 60 * 1000 * 1000};
    nanosleep(&ts, NULL);
    /* The next pool refill releases the surplus that stayed unused past the delay. */
    for (int i = 0; i < 4 * 4; i++)
        cr_assert_not_null(arena_alloc(a, 1000));
    arena_stats_t s = stats(a);
    cr_assert_leq(s.retained_bytes, soft, "retained %zu after the delay", s.retained_bytes);
    arena_destroy(a);
}

/* Large objects reuse retained runs too, and read as zero. */
Test(retain, large_objects_reuse_retained_runs)
{
    arena_t *a = make(0, 0, 0);
    for (int i = 0; i < 64; i++)
        memset(arena_alloc(a, 5 * 4096), 0xee, 5 * 4096);
    cr_assert_eq(arena_collect(a, NULL), 0);
    size_t file = stats(a).file_bytes;
    for (int i = 0; i < 64; i++) {
        unsigned char *p = arena_alloc(a, 5 * 4096);
        cr_assert_not_null(p);
        for (size_t b = 0; b < 5 * 4096; b += 7)
            cr_assert_eq(p[b], 0);
    }
    cr_assert_leq(stats(a).file_bytes, file);
    arena_destroy(a);
}

/* Pages retained by a collection and reused by allocation are reported as touched. */
static void tracked(int backend)
{
    arena_config_t cfg;
    arena_config_init(&cfg);
    cfg.tracker = backend;
    cfg.reserve = (size_t)1 << 30;
    arena_t *a = NULL;
    cr_assert_eq(arena_create(&a, &cfg), 0);
    arena_view_t *hv = arena_heap_view(a);
    garbage_cycle(a, 2000, NULL);
    cr_assert_gt(stats(a).retained_bytes, 0);
    int err = arena_track_start(hv, ARENA_TRACK_WRITES);
    if (err == ARENA_ENOTSUP && backend == ARENA_TRACKER_UFFD && !kernel_has_uffd_wp_async())
        cr_skip_test("userfaultfd WP_ASYNC unavailable");
    cr_assert_eq(err, 0, "track_start: %s", arena_strerror(err));
    void *scratch[4096];
    size_t got;
    while (arena_track_take(hv, scratch, 4096, &got) == 0 && got == 4096)
        ;
    char *objs[200];
    for (int i = 0; i < 200; i++) {
        objs[i] = arena_alloc(a, 1000);
        cr_assert_not_null(objs[i]);
        objs[i][999] = 1;
    }
    unsigned char *seen = calloc(arena_view_slots(hv), 1);
    cr_assert_geq(take_all(hv, seen, 256), 1);
    char *base = arena_view_base(hv);
    for (int i = 0; i < 200; i++)
        cr_assert(seen[(size_t)(objs[i] - base) / arena_page_size(a)], "object %d's page not reported", i);
    /* A collection over a tracked heap with retained pages keeps every byte. */
    for (int i = 0; i < 200; i += 2)
        cr_assert_eq(arena_mark(a, objs[i]), 0);
    cr_assert_eq(arena_collect(a, NULL), 0);
    for (int i = 0; i < 200; i += 2) {
        char *p = arena_forward(a, objs[i]);
        cr_assert_not_null(p);
        cr_assert_eq(p[999], 1);
    }
    free(seen);
    arena_destroy(a);
}

Test(retain, tracked_sigsegv) { tracked(ARENA_TRACKER_SIGSEGV); }
Test(retain, tracked_uffd) { tracked(ARENA_TRACKER_UFFD); }

Test(retain, is_marked_and_allocated_bytes)
{
    arena_t *a = make(0, 0, 0);
    int local;
    char *p = arena_alloc(a, 100), *q = arena_alloc(a, 100);
    cr_assert_eq(arena_is_marked(a, p), 0);
    cr_assert_eq(arena_mark(a, p + 50), 0);
    cr_assert_eq(arena_is_marked(a, p), 1);
    cr_assert_eq(arena_is_marked(a, p + 99), 1);
    cr_assert_eq(arena_is_marked(a, q), 0);
    cr_assert_eq(arena_is_marked(a, &local), ARENA_EFOREIGN);
    cr_assert_eq(arena_is_marked(a, p + 4000), ARENA_ENOTOBJ);
    cr_assert_eq(arena_is_marked(NULL, p), ARENA_ENULL);
    cr_assert_eq(arena_allocated_bytes(a), stats(a).allocated_bytes);
    cr_assert_geq(arena_allocated_bytes(a), 224);
    arena_collect_stats_t st;
    cr_assert_eq(arena_collect(a, &st), 0);
    cr_assert_gt(st.pause_ns, 0);
    p = arena_forward(a, p);
    cr_assert_eq(arena_is_marked(a, p), 0, "marks are cleared by the collection");
    cr_assert_eq(arena_allocated_bytes(a), 112);
    cr_assert_eq(arena_allocated_bytes(NULL), 0);
    arena_destroy(a);
}

/* The inline fast path: objects as arena_alloc makes them, and a collection invalidates
 * the buffer (the page it bumped through may have been retained or reused). */
Test(retain, lab_alloc)
{
    arena_t *a = make(0, 0, 0);
    arena_lab_t lab;
    cr_assert_eq(arena_lab_init(a, &lab), 0);
    cr_assert_eq(arena_lab_init(NULL, &lab), ARENA_ENULL);
    char *objs[3000];
    for (int i = 0; i < 3000; i++) {
        size_t size = 1 + (size_t)(i * 37) % 300;
        objs[i] = i % 7 == 0 ? arena_alloc(a, size) : arena_lab_alloc(&lab, size);
        cr_assert_not_null(objs[i]);
        cr_assert_eq((uintptr_t)objs[i] % 16, 0);
        cr_assert_eq(arena_object_size(a, objs[i]), (size + 15) & ~(size_t)15);
        cr_assert_eq(arena_object(a, objs[i] + size - 1), objs[i]);
        for (size_t b = 0; b < size; b++)
            cr_assert_eq(objs[i][b], 0);
        memset(objs[i], i & 0xff, size);
    }
    char *big = arena_lab_alloc(&lab, 3 * 4096);
    cr_assert_not_null(big);
    cr_assert_eq(arena_object_size(a, big), 3 * 4096);
    cr_assert_null(arena_lab_alloc(&lab, 0));
    for (int i = 0; i < 3000; i += 3)
        cr_assert_eq(arena_mark(a, objs[i]), 0);
    cr_assert_eq(arena_collect(a, NULL), 0);
    for (int i = 0; i < 3000; i += 3)
        objs[i] = arena_forward(a, objs[i]);
    /* After the collection the buffer refills: nothing lands on a survivor. */
    for (int i = 0; i < 3000; i++) {
        char *p = arena_lab_alloc(&lab, 64);
        cr_assert_not_null(p);
        for (int b = 0; b < 64; b++)
            cr_assert_eq(p[b], 0, "a lab object was not zero after a collection");
        memset(p, 0xff, 64);
    }
    for (int i = 0; i < 3000; i += 3) {
        size_t size = 1 + (size_t)(i * 37) % 300;
        for (size_t b = 0; b < size; b++)
            cr_assert_eq((unsigned char)objs[i][b], (unsigned char)(i & 0xff), "survivor %d overwritten", i);
    }
    size_t before = arena_allocated_bytes(a);
    arena_lab_retire(&lab);
    cr_assert_leq(arena_allocated_bytes(a), before);
    cr_assert_not_null(arena_lab_alloc(&lab, 16), "a retired buffer refills");
    arena_destroy(a);
}

/* A lab takes pool pages a batch at a time and enters the next page of the batch without
 * the lock: the allocated bytes still count exactly the objects once the lab retires
 * (the rests of the pages it left and the pages it never entered do not count). */
Test(retain, lab_batch_counts_objects_only)
{
    arena_t *a = make(0, 0, 0);
    arena_lab_t lab;
    cr_assert_eq(arena_lab_init(a, &lab), 0);
    size_t before = arena_allocated_bytes(a), sum = 0;
    char *first = NULL, *last = NULL;
    for (int i = 0; i < 200; i++) {
        size_t size = 100 + (size_t)(i * 53) % 900;
        char *p = arena_lab_alloc(&lab, size);
        cr_assert_not_null(p);
        first = first ? first : p;
        last = p;
        sum += (size + 15) & ~(size_t)15;
    }
    cr_assert_gt((size_t)(last - first), 8 * arena_page_size(a), "the objects spread over several pages");
    cr_assert_geq(arena_allocated_bytes(a), before + sum);
    arena_lab_retire(&lab);
    cr_assert_eq(arena_allocated_bytes(a), before + sum, "allocated %zu, objects %zu", arena_allocated_bytes(a) - before,
                 sum);
    arena_destroy(a);
}

/* Pages entered without the lock are cleared when they are retained pages, and a batch
 * taken before a collection is never entered after it: the collection may have handed
 * those pages to arena_alloc, to-space or the pool. */
Test(retain, lab_batch_cleared_and_void_after_collect)
{
    arena_t *a = make(0, 0, 0);
    size_t page = arena_page_size(a);
    /* Pages full of 0xff bytes, all dead: retained by the collection, dirty. */
    for (int i = 0; i < 400; i++)
        memset(arena_alloc(a, 1000), 0xff, 1000);
    cr_assert_eq(arena_collect(a, NULL), 0);
    cr_assert_gt(stats(a).retained_bytes, 32 * page);
    arena_lab_t lab;
    cr_assert_eq(arena_lab_init(a, &lab), 0);
    char *keep = arena_lab_alloc(&lab, 48); /* takes a batch of retained pages */
    cr_assert_not_null(keep);
    memset(keep, 0x11, 48);
    for (int i = 0; i < 4 * (int)(page / 256); i++) {
        char *p = arena_lab_alloc(&lab, 256);
        cr_assert_not_null(p);
        for (int b = 0; b < 256; b++)
            cr_assert_eq((unsigned char)p[b], 0, "object %d byte %d of a retained page not cleared", i, b);
    }
    cr_assert_eq(arena_mark(a, keep), 0);
    cr_assert_eq(arena_collect(a, NULL), 0);
    keep = arena_forward(a, keep);
    cr_assert_not_null(keep);
    /* Everything the collection retained goes to arena_alloc, filled with its objects. */
    enum { N = 600 };
    char *other[N];
    for (int i = 0; i < N; i++) {
        other[i] = arena_alloc(a, 240);
        cr_assert_not_null(other[i]);
        memset(other[i], 0x22, 240);
    }
    for (int i = 0; i < 2 * (int)(page / 256); i++) {
        char *p = arena_lab_alloc(&lab, 256);
        cr_assert_not_null(p);
        cr_assert_eq(arena_object(a, p), p);
        cr_assert_eq(arena_object_size(a, p), 256);
        for (int b = 0; b < 256; b++)
            cr_assert_eq((unsigned char)p[b], 0, "lab object %d byte %d is not fresh", i, b);
        memset(p, 0x33, 256);
    }
    for (int i = 0; i < N; i++)
        for (int b = 0; b < 240; b++)
            cr_assert_eq((unsigned char)other[i][b], 0x22, "object %d overwritten by the lab", i);
    for (int b = 0; b < 48; b++)
        cr_assert_eq((unsigned char)keep[b], 0x11, "the survivor was overwritten");
    arena_destroy(a);
}

/* A heap whose whole reservation is used and then retained: the retained run reaches the
 * last slot, and rebuilding the free lists must stop there, not read the page table past
 * its end (a 1 GiB heap filled by threads crashed with SIGSEGV in arena_collect). The
 * table is moved in front of an inaccessible page so a read past it faults here too. */
Test(retain, whole_reservation_retained)
{
    arena_config_t cfg;
    arena_config_init(&cfg);
    cfg.reserve = (size_t)4 << 20;
    cfg.page_size = 4096;
    arena_t *a = NULL;
    cr_assert_eq(arena_create(&a, &cfg), 0);
    struct arena__heap *h = a->heap;
    size_t len = h->table_bytes[0];
    cr_assert_eq(len % 4096, 0);
    char *area = mmap(NULL, len + 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(area, MAP_FAILED);
    void *moved = mremap(h->pages, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, area);
    cr_assert_eq(moved, (void *)area);
    h->pages = moved;

    size_t n = 0;
    while (arena_alloc(a, 1000) != NULL)
        n++;
    cr_assert_eq(errno, ENOMEM);
    cr_assert_eq(n, (cfg.reserve / 4096) * 4, "every slot of the reservation holds objects");
    cr_assert_eq(arena_collect(a, NULL), 0);
    cr_assert_eq(stats(a).retained_bytes, cfg.reserve, "every page retained");
    char *base = arena_view_base(arena_heap_view(a));
    size_t again = 0;
    char *p;
    while ((p = arena_alloc(a, 1000)) != NULL) {
        cr_assert(p >= base && p + 1000 <= base + cfg.reserve, "an object outside the reservation");
        again++;
    }
    cr_assert_eq(again, n, "the retained reservation is reused whole");
    cr_assert_eq(arena_collect(a, NULL), 0);
    cr_assert_eq(arena_trim(a, 0), 0);
    cr_assert_eq(stats(a).retained_bytes, 0);
    arena_destroy(a);
    munmap(area + len, 4096);
}

/* What one collection of ring_cycles left: the file's size, the parked file pages, and the
 * retained pages the collection swapped to the slots a long run vacated. */
struct ring_after {
    size_t file_bytes, nparked, pages_parked;
};

/* A ring of live objects (each allocation replaces the oldest), collected every `every`
 * allocations through the lab: every object is zero and found by arena_object when made, and
 * the ring survives each collection. */
static void ring_cycles(arena_t *a, size_t ring_n, size_t every, int cycles, struct ring_after *after)
{
    char **ring = calloc(ring_n, sizeof *ring);
    arena_lab_t lab;
    cr_assert_eq(arena_lab_init(a, &lab), 0);
    uint64_t seed = 7;
    for (size_t i = 0; i < (size_t)cycles * every; i++) {
        if (i % every == 0 && i > 0) {
            for (size_t j = 0; j < ring_n; j++)
                if (ring[j] != NULL)
                    cr_assert_eq(arena_mark(a, ring[j]), 0);
            arena_collect_stats_t st;
            cr_assert_eq(arena_collect(a, &st), 0);
            for (size_t j = 0; j < ring_n; j++) {
                if (ring[j] == NULL)
                    continue;
                ring[j] = arena_forward(a, ring[j]);
                cr_assert_not_null(ring[j]);
                cr_assert_eq(*(size_t *)ring[j] % ring_n, j, "ring object %zu lost", j);
            }
            after[i / every - 1] = (struct ring_after){stats(a).file_bytes, a->heap->nparked, st.pages_parked};
        }
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        size_t size = 16 + (size_t)(seed >> 33) % 241;
        char *p = arena_lab_alloc(&lab, size);
        cr_assert_not_null(p);
        for (size_t b = 0; b < size; b++)
            cr_assert_eq(p[b], 0, "object %zu byte %zu not zero", i, b);
        cr_assert_eq(arena_object(a, p + size - 1), p);
        cr_assert_eq(arena_object_size(a, p), (size + 15) & ~(size_t)15);
        memset(p, 0xa5, size);
        *(size_t *)p = i;
        ring[i % ring_n] = p;
    }
    free(ring);
}

/* A live run longer than 2 MiB slides down onto retained slots it overlaps, every cycle.
 * It moves by swaps of pieces, so the retained pages stay mapped at the slots it vacates:
 * nothing is parked, and at a fixed live size the file stops growing. */
Test(retain, long_run_slides_by_swaps)
{
    arena_t *a = make(0, 0, 0);
    struct ring_after after[8];
    ring_cycles(a, (size_t)1 << 14, (size_t)1 << 16, 9, after);
    size_t swapped = 0;
    for (int c = 0; c < 8; c++) {
        cr_assert_eq(after[c].nparked, 0, "collection %d parked %zu pages", c + 1, after[c].nparked);
        swapped += after[c].pages_parked;
        if (c > 2)
            cr_assert_leq(after[c].file_bytes, after[2].file_bytes, "collection %d: the file grew from %zu to %zu bytes",
                          c + 1, after[2].file_bytes, after[c].file_bytes);
    }
    cr_assert_gt(swapped, 0, "no long run was swapped down");
    arena_destroy(a);
}

/* Under a tracker moves stay plain mremaps (.req.track.moves), which park the retained pages
 * at their targets. Allocation maps parked pages again before it asks the file for fresh
 * ones: allocating as many pages as are retained uses up the parked pages without growing the
 * file, and every reused page comes back zeroed. */
Test(retain, parked_pages_reused_by_allocation)
{
    arena_config_t cfg;
    arena_config_init(&cfg);
    cfg.tracker = ARENA_TRACKER_SIGSEGV;
    cfg.reserve = (size_t)1 << 30;
    arena_t *a = NULL;
    cr_assert_eq(arena_create(&a, &cfg), 0);
    cr_assert_eq(arena_track_start(arena_heap_view(a), ARENA_TRACK_WRITES), 0);
    struct ring_after after[4];
    ring_cycles(a, (size_t)1 << 14, (size_t)1 << 16, 5, after);
    arena_stats_t s = stats(a);
    size_t parked = a->heap->nparked, pages = s.retained_bytes / s.page_size;
    cr_assert_gt(parked, 0, "no collection parked a page: the test does not reach the reuse");
    /* The pool's current chunk (at most 1024 pages) is handed out before the retained slots. */
    for (size_t i = 0; i < pages + 1024 && a->heap->nparked != 0; i++) {
        unsigned char *p = arena_alloc(a, s.page_size);
        cr_assert_not_null(p);
        for (size_t b = 0; b < s.page_size; b += 8)
            cr_assert_eq(*(uint64_t *)(p + b), 0, "page %zu not zero at %zu", i, b);
        p[0] = 1;
    }
    cr_assert_eq(a->heap->nparked, 0, "%zu of %zu parked pages left", a->heap->nparked, parked);
    cr_assert_leq(stats(a).file_bytes, s.file_bytes + 64 * s.page_size, "the file grew from %zu to %zu bytes",
                  s.file_bytes, stats(a).file_bytes);
    arena_destroy(a);
}

/* A punch refused inside arena_trim: the run was unmapped and its file pages parked, so the
 * retained total did not change, yet the run list did. Allocation afterwards (arena_alloc and
 * a lab) must get mapped, distinct pages, never an emptied run's slot. */
static void trim_with_failed_punch(bool lab_path)
{
    arena_t *a = NULL;
    arena_config_t cfg;
    arena_config_init(&cfg);
    cfg.reserve = (size_t)256 << 20;
    cr_assert_eq(arena_create(&a, &cfg), 0);
    for (int i = 0; i < 20000; i++)
        cr_assert_not_null(arena_alloc(a, 100));
    cr_assert_geq(arena_collect(a, NULL), 0);
    arena__fault_arm(ARENA_SYS_FALLOCATE, 1, ENOSPC);
    int rc = arena_trim(a, 0);
    arena__fault_disarm_all();
    cr_assert_eq(rc, ARENA_ENOSPC, "the refused punch is reported");
    arena_lab_t lab;
    cr_assert_eq(arena_lab_init(a, &lab), 0);
    enum { N = 40000 };
    static unsigned char *objs[N];
    for (int i = 0; i < N; i++) {
        objs[i] = lab_path ? arena_lab_alloc(&lab, 100) : arena_alloc(a, 100);
        cr_assert_not_null(objs[i]);
        cr_assert_eq(arena_object(a, objs[i] + 50), objs[i]);
        memset(objs[i], i & 0xff, 100);
    }
    for (int i = 0; i < N; i++)
        cr_assert_eq(objs[i][99], i & 0xff, "object %d was overwritten", i);
    arena_lab_retire(&lab);
    arena_destroy(a);
}

Test(retain, trim_with_failed_punch_then_alloc) { trim_with_failed_punch(false); }
Test(retain, trim_with_failed_punch_then_lab_alloc) { trim_with_failed_punch(true); }
