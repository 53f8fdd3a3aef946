/*
 * test_badinput.c -- every public function, given what a buggy caller passes: NULL, foreign
 * pointers (stack, malloc, another arena), stale and dead pointers, sizes of 0 and beyond the
 * reservation, out-of-range slots, closed views, write+execute. Each gets the error code
 * arena.h documents for it, never a crash (docs/design.md §9, .req.api.bad-input).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"

#define RESERVE ((size_t)64 << 20)

static arena_t *a, *other;

static void setup(void)
{
    arena_config_t cfg;
    arena_config_init(&cfg);
    cfg.reserve = RESERVE;
    cr_assert_eq(arena_create(&a, &cfg), 0);
    cr_assert_eq(arena_create(&other, &cfg), 0);
}

static void teardown(void)
{
    arena_destroy(a);
    arena_destroy(other);
}

TestSuite(badinput, .init = setup, .fini = teardown);

/* ---------------------------------------------------------------- life cycle ---- */

Test(badinput, create_null_out)
{
    cr_expect_eq(arena_create(NULL, NULL), ARENA_ENULL);
}

Test(badinput, create_bad_config)
{
    arena_config_t cfg;
    arena_t *x = (arena_t *)0x1;

    arena_config_init(&cfg);
    cfg.page_size = 5000; /* not a power-of-two multiple of the OS page */
    cr_expect_eq(arena_create(&x, &cfg), ARENA_ECONFIG, "page_size 5000");
    arena_config_init(&cfg);
    cfg.page_size = 1024; /* smaller than the OS page */
    cr_expect_eq(arena_create(&x, &cfg), ARENA_ECONFIG, "page_size 1024");
    arena_config_init(&cfg);
    cfg.backing = 77;
    cr_expect_eq(arena_create(&x, &cfg), ARENA_ECONFIG, "backing 77");
    arena_config_init(&cfg);
    cfg.mover = 77;
    cr_expect_eq(arena_create(&x, &cfg), ARENA_ECONFIG, "mover 77");
    arena_config_init(&cfg);
    cfg.tracker = 77;
    cr_expect_eq(arena_create(&x, &cfg), ARENA_ECONFIG, "tracker 77");
    arena_config_init(&cfg);
    cfg.sparse_percent = 101;
    cr_expect_eq(arena_create(&x, &cfg), ARENA_ECONFIG, "sparse_percent 101");
    cr_expect_null(x, "*out is NULL after an error");
}

Test(badinput, create_tmpfile_in_missing_dir)
{
    arena_config_t cfg;
    arena_t *x = NULL;
    arena_config_init(&cfg);
    cfg.reserve = RESERVE;
    cfg.backing = ARENA_BACKING_TMPFILE;
    cfg.dir = "/nonexistent/arena-test-dir";
    int err = arena_create(&x, &cfg);
    cr_expect_eq(err, ARENA_ENOENT, "the kernel's -errno, got %d", err);
    cr_expect_null(x);
}

Test(badinput, destroy_null_and_strerror)
{
    arena_destroy(NULL);
    int codes[] = {0, ARENA_ENULL, ARENA_EPROT, ARENA_ESTATE, ARENA_ENOMEM, ARENA_ENOSPC, -1, -999, -999999, ENOMEM, ENOSPC, 123456};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        const char *s = arena_strerror(codes[i]);
        cr_expect_not_null(s);
        cr_expect_gt(strlen(s), 0);
    }
    cr_expect_str_neq(arena_strerror(ARENA_ENULL), arena_strerror(ARENA_EFOREIGN));
}

Test(badinput, null_arena_queries)
{
    int local = 0;
    cr_expect_eq(arena_page_size(NULL), 0);
    cr_expect_null(arena_object(NULL, &local));
    cr_expect_eq(arena_object_size(NULL, &local), 0);
    cr_expect_eq(arena_contains(NULL, &local), 0);
    cr_expect_null(arena_heap_view(NULL));
    arena_stats_t st;
    cr_expect_eq(arena_stats(NULL, &st), ARENA_ENULL);
    cr_expect_eq(arena_stats(a, NULL), ARENA_ENULL);
}

/* ---------------------------------------------------------------- allocation ---- */

Test(badinput, alloc_bad_sizes)
{
    errno = 0;
    cr_expect_null(arena_alloc(NULL, 16));
    cr_expect_eq(errno, EINVAL);
    errno = 0;
    cr_expect_null(arena_alloc(a, 0));
    cr_expect_eq(errno, EINVAL);
    errno = 0;
    cr_expect_null(arena_alloc(a, RESERVE + 1));
    cr_expect_eq(errno, EINVAL);
    errno = 0;
    cr_expect_null(arena_alloc(a, SIZE_MAX));
    cr_expect_eq(errno, EINVAL);
    errno = 0;
    cr_expect_null(arena_alloc(a, SIZE_MAX - 15)); /* rounds up past SIZE_MAX */
    cr_expect_eq(errno, EINVAL);
    /* the lab's slow path, called directly: the same results as arena_alloc */
    errno = 0;
    cr_expect_null(arena_lab_refill(NULL, 16));
    cr_expect_eq(errno, EINVAL);
    /* still usable */
    cr_expect_not_null(arena_alloc(a, 16));
}

Test(badinput, foreign_pointers)
{
    int on_stack = 0;
    char *on_malloc = malloc(64);
    char *in_other = arena_alloc(other, 64);
    char *mine = arena_alloc(a, 64);
    cr_assert_not_null(on_malloc);
    cr_assert_not_null(in_other);
    cr_assert_not_null(mine);
    const void *foreign[] = {&on_stack, on_malloc, in_other, (void *)1, (void *)UINTPTR_MAX};
    for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++) {
        const void *p = foreign[i];
        cr_expect_null(arena_object(a, p), "object %zu", i);
        cr_expect_eq(arena_object_size(a, p), 0, "object_size %zu", i);
        cr_expect_eq(arena_contains(a, p), 0, "contains %zu", i);
        cr_expect_eq(arena_mark(a, p), ARENA_EFOREIGN, "mark %zu", i);
        cr_expect_eq(arena_pin(a, p), ARENA_EFOREIGN, "pin %zu", i);
    }
    cr_expect_eq(arena_mark(a, NULL), ARENA_ENULL);
    cr_expect_eq(arena_pin(a, NULL), ARENA_ENULL);
    cr_expect_eq(arena_mark(NULL, mine), ARENA_ENULL);
    cr_expect_eq(arena_pin(NULL, mine), ARENA_ENULL);
    cr_expect_null(arena_object(a, NULL));
    cr_expect_eq(arena_object_size(a, NULL), 0);
    /* the objects of the other arena are untouched by all that */
    cr_expect_eq(arena_object(other, in_other + 10), in_other);
    free(on_malloc);
}

Test(badinput, inside_but_not_an_object)
{
    char *obj = arena_alloc(a, 64);
    cr_assert_not_null(obj);
    size_t ps = arena_page_size(a);
    /* the end of the reservation: inside the heap, never an object here */
    char *base = arena_view_base(arena_heap_view(a));
    char *far = base + RESERVE - ps;
    cr_expect(arena_contains(a, far));
    cr_expect_null(arena_object(a, far));
    cr_expect_eq(arena_mark(a, far), ARENA_ENOTOBJ);
    cr_expect_eq(arena_pin(a, far), ARENA_ENOTOBJ);
    /* interior pointers are objects, but not object starts */
    cr_expect_eq(arena_object(a, obj + 17), obj);
    cr_expect_eq(arena_object_size(a, obj + 16), 0);
    cr_expect_eq(arena_object_size(a, obj), 64);
}

Test(badinput, dead_and_stale_pointers)
{
    char *dead = arena_alloc(a, 64);
    char *kept = arena_alloc(a, 64);
    cr_assert_not_null(dead);
    cr_assert_not_null(kept);
    memset(kept, 0x5a, 64);
    /* pinned: kept's page stays where it is, so dead's address is not reused by sliding */
    cr_assert_eq(arena_pin(a, kept), 0);
    cr_assert_eq(arena_collect(a, NULL), 0);
    cr_expect_null(arena_forward(a, dead), "a dead object forwards to NULL");
    cr_expect_null(arena_forward(a, dead + 8));
    cr_expect_eq(arena_forward(a, kept), kept, "pinned objects do not move");
    cr_expect_null(arena_object(a, dead));
    cr_expect_eq(arena_object_size(a, dead), 0);
    cr_expect_eq(arena_mark(a, dead), ARENA_ENOTOBJ);
    cr_expect_eq(arena_pin(a, dead + 3), ARENA_ENOTOBJ);
    /* outside the heap, arena_forward is the identity */
    int on_stack = 0;
    cr_expect_eq(arena_forward(a, &on_stack), &on_stack);
    cr_expect_eq(arena_collect(NULL, NULL), ARENA_ENULL);
    /* still usable */
    char *again = arena_alloc(a, 32);
    cr_expect_not_null(again);
    cr_expect_eq(kept[63], 0x5a);
}

/* ---------------------------------------------------------------- file pages ---- */

Test(badinput, file_alloc_free)
{
    size_t first = 0;
    cr_expect_eq(arena_file_alloc(NULL, 1, &first), ARENA_ENULL);
    cr_expect_eq(arena_file_alloc(a, 1, NULL), ARENA_ENULL);
    cr_expect_eq(arena_file_alloc(a, 0, &first), ARENA_ESIZE);
    int err = arena_file_alloc(a, SIZE_MAX / 2, &first);
    cr_expect(err == ARENA_ESIZE || err == ARENA_ENOSPC || err == ARENA_ENOMEM, "huge file_alloc: %d", err);
    cr_assert_eq(arena_file_alloc(a, 2, &first), 0);
    cr_expect_eq(arena_file_free(a, first + 1000000, 1), ARENA_ERANGE);
    cr_expect_eq(arena_file_free(a, first, SIZE_MAX), ARENA_ERANGE);
    cr_expect_eq(arena_file_free(a, first, 0), ARENA_ESIZE);
    cr_expect_eq(arena_file_free(NULL, first, 1), ARENA_ENULL);
    cr_expect_eq(arena_file_free(a, first, 2), 0);
    cr_expect_eq(arena_file_free(a, first, 2), ARENA_ERANGE, "double free");
}

/* ---------------------------------------------------------------- views ---- */

Test(badinput, view_open_bad_args)
{
    arena_view_t *v = (arena_view_t *)0x1;
    size_t first;
    cr_assert_eq(arena_file_alloc(a, 4, &first), 0);
    cr_expect_eq(arena_view_open(NULL, ARENA_VIEW_LINEAR, 4, ARENA_PROT_READ, 0, &v), ARENA_ENULL);
    cr_expect_eq(arena_view_open(a, ARENA_VIEW_LINEAR, 4, ARENA_PROT_READ, 0, NULL), ARENA_ENULL);
    cr_expect_eq(arena_view_open(a, ARENA_VIEW_LINEAR, 0, ARENA_PROT_READ, 0, &v), ARENA_ESIZE);
    cr_expect_eq(arena_view_open(a, ARENA_VIEW_EMPTY, 0, ARENA_PROT_READ, 0, &v), ARENA_ESIZE);
    cr_expect_eq(arena_view_open(a, ARENA_VIEW_EMPTY, SIZE_MAX / 2, ARENA_PROT_READ, 0, &v),
                 ARENA_ESIZE);
    cr_expect_eq(arena_view_open(a, ARENA_VIEW_LINEAR, first + 1000, ARENA_PROT_READ, 0, &v),
                 ARENA_ERANGE, "LINEAR past the file pages that exist");
    int wx = ARENA_PROT_WRITE | ARENA_PROT_EXEC;
    cr_expect_eq(arena_view_open(a, ARENA_VIEW_LINEAR, 4, wx, 0, &v), ARENA_EPROT);
    cr_expect_eq(arena_view_open(a, ARENA_VIEW_LINEAR, 4, wx | ARENA_PROT_READ, 0, &v), ARENA_EPROT);
    cr_expect_eq(arena_view_open(a, ARENA_VIEW_LINEAR, 4, 64, 0, &v), ARENA_EPROT, "unknown bits");
    cr_expect_eq(arena_view_open(a, 77, 4, ARENA_PROT_READ, 0, &v), ARENA_ECONFIG, "layout 77");
    cr_expect_eq(arena_view_open(a, ARENA_VIEW_EMPTY, 4, ARENA_PROT_READ, 0x100, &v), ARENA_ECONFIG,
                 "unknown flags");
    cr_expect_null(v, "*out is NULL after an error");
}

Test(badinput, view_calls_on_null)
{
    cr_expect_eq(arena_view_close(NULL), ARENA_ENULL);
    cr_expect_null(arena_view_base(NULL));
    cr_expect_eq(arena_view_slots(NULL), 0);
    cr_expect_eq(arena_view_file_page(NULL, 0), ARENA_NO_PAGE);
    cr_expect_null(arena_view_addr(NULL, NULL));
    cr_expect_eq(arena_view_set_mover(NULL, ARENA_MOVE_COPY), ARENA_ENULL);
    cr_expect_eq(arena_view_map(NULL, 0, 0, 1), ARENA_ENULL);
    cr_expect_eq(arena_view_unmap(NULL, 0, 1), ARENA_ENULL);
    size_t pages[1] = {0};
    cr_expect_eq(arena_view_apply(NULL, 0, pages, 1), ARENA_ENULL);
    cr_expect_eq(arena_view_move(NULL, 1, 0, 1), ARENA_ENULL);
    cr_expect_eq(arena_view_protect(NULL, 0, 1, ARENA_PROT_READ), ARENA_ENULL);
    cr_expect_eq(arena_view_vmas(NULL), 0);
}

Test(badinput, view_ranges)
{
    arena_view_t *v;
    size_t first;
    cr_assert_eq(arena_file_alloc(a, 4, &first), 0);
    cr_assert_eq(arena_view_open(a, ARENA_VIEW_EMPTY, 8, ARENA_PROT_READ | ARENA_PROT_WRITE, 0, &v), 0);
    cr_expect_eq(arena_view_map(v, 0, first, 0), ARENA_ESIZE);
    cr_expect_eq(arena_view_map(v, 8, first, 1), ARENA_ERANGE, "slot == nslots");
    cr_expect_eq(arena_view_map(v, 7, first, 2), ARENA_ERANGE, "runs past the end");
    cr_expect_eq(arena_view_map(v, SIZE_MAX, first, 2), ARENA_ERANGE, "slot + n overflows");
    cr_expect_eq(arena_view_map(v, 0, SIZE_MAX - 1, 2), ARENA_ERANGE, "file page overflows");
    cr_expect_eq(arena_view_map(v, 0, first + 1000000, 1), ARENA_ERANGE, "file page past the file");
    cr_expect_eq(arena_view_unmap(v, 0, 0), ARENA_ESIZE);
    cr_expect_eq(arena_view_unmap(v, 6, 3), ARENA_ERANGE);
    cr_expect_eq(arena_view_apply(v, 0, NULL, 2), ARENA_ENULL);
    size_t bad[2] = {first, first + 1000000};
    cr_expect_eq(arena_view_apply(v, 0, bad, 2), ARENA_ERANGE);
    cr_expect_eq(arena_view_file_page(v, 0), ARENA_NO_PAGE, "apply changed nothing on error");
    cr_expect_eq(arena_view_apply(v, 7, bad, 2), ARENA_ERANGE);
    cr_expect_eq(arena_view_move(v, 7, 0, 2), ARENA_ERANGE);
    cr_expect_eq(arena_view_move(v, 0, 7, 2), ARENA_ERANGE);
    cr_expect_eq(arena_view_move(v, 0, 1, 0), ARENA_ESIZE);
    cr_expect_eq(arena_view_protect(v, 7, 2, ARENA_PROT_READ), ARENA_ERANGE);
    cr_expect_eq(arena_view_protect(v, 0, 0, ARENA_PROT_READ), ARENA_ESIZE);
    cr_expect_eq(arena_view_protect(v, 0, 1, ARENA_PROT_WRITE | ARENA_PROT_EXEC), ARENA_EPROT);
    cr_expect_eq(arena_view_protect(v, 0, 1, 99), ARENA_EPROT);
    cr_expect_eq(arena_view_set_mover(v, 77), ARENA_ECONFIG);
    cr_expect_eq(arena_view_file_page(v, 8), ARENA_NO_PAGE);
    cr_expect_eq(arena_view_file_page(v, SIZE_MAX), ARENA_NO_PAGE);
    /* the view still works */
    cr_expect_eq(arena_view_map(v, 0, first, 4), 0);
    cr_expect_eq(arena_view_file_page(v, 3), first + 3);
    cr_expect_eq(arena_view_close(v), 0);
}

Test(badinput, heap_view_is_not_yours)
{
    arena_view_t *h = arena_heap_view(a);
    size_t first;
    cr_assert_not_null(h);
    cr_assert_eq(arena_file_alloc(a, 1, &first), 0);
    cr_expect_eq(arena_view_close(h), ARENA_EHEAP);
    cr_expect_eq(arena_view_map(h, 0, first, 1), ARENA_EHEAP);
    cr_expect_eq(arena_view_unmap(h, 0, 1), ARENA_EHEAP);
    cr_expect_eq(arena_view_apply(h, 0, &first, 1), ARENA_EHEAP);
    cr_expect_eq(arena_view_move(h, 1, 0, 1), ARENA_EHEAP);
    cr_expect_eq(arena_view_protect(h, 0, 1, ARENA_PROT_READ), ARENA_EHEAP);
    /* and an allocation still works after all those refusals */
    cr_expect_not_null(arena_alloc(a, 100));
}

Test(badinput, view_of_another_arena)
{
    arena_view_t *v;
    size_t first;
    cr_assert_eq(arena_file_alloc(other, 1, &first), 0);
    cr_assert_eq(arena_view_open(other, ARENA_VIEW_EMPTY, 2, ARENA_PROT_READ, 0, &v), 0);
    char *obj = arena_alloc(a, 16);
    cr_assert_not_null(obj);
    cr_expect_null(arena_view_addr(v, obj), "not a mirror, and not this arena's heap");
    cr_expect_eq(arena_view_close(v), 0);
}

Test(badinput, closed_view)
{
    arena_view_t *v;
    size_t first;
    cr_assert_eq(arena_file_alloc(a, 2, &first), 0);
    cr_assert_eq(arena_view_open(a, ARENA_VIEW_EMPTY, 4, ARENA_PROT_READ, 0, &v), 0);
    cr_assert_eq(arena_view_close(v), 0);
    cr_expect_eq(arena_view_close(v), ARENA_ECLOSED);
    cr_expect_eq(arena_view_map(v, 0, first, 1), ARENA_ECLOSED);
    cr_expect_eq(arena_view_unmap(v, 0, 1), ARENA_ECLOSED);
    cr_expect_eq(arena_view_apply(v, 0, &first, 1), ARENA_ECLOSED);
    cr_expect_eq(arena_view_move(v, 1, 0, 1), ARENA_ECLOSED);
    cr_expect_eq(arena_view_protect(v, 0, 1, ARENA_PROT_READ), ARENA_ECLOSED);
    cr_expect_eq(arena_view_set_mover(v, ARENA_MOVE_COPY), ARENA_ECLOSED);
    cr_expect_eq(arena_view_file_page(v, 0), ARENA_NO_PAGE);
    cr_expect_null(arena_view_addr(v, arena_alloc(a, 16)));
    cr_expect_neq(arena_track_start(v, ARENA_TRACK_WRITES), 0, "tracking a closed view");
}

Test(badinput, private_view_refuses_remap_file_pages)
{
    arena_view_t *v;
    cr_assert_eq(arena_view_open(a, ARENA_VIEW_EMPTY, 2, ARENA_PROT_READ, ARENA_VIEW_PRIVATE, &v), 0);
    cr_expect_eq(arena_view_set_mover(v, ARENA_MOVE_REMAP_FILE_PAGES), ARENA_EPRIVATE);
    cr_expect_eq(arena_view_close(v), 0);
}

/* ---------------------------------------------------------------- tracking ---- */

Test(badinput, tracking_bad_args)
{
    arena_view_t *h = arena_heap_view(a);
    void *pages[4];
    size_t count = 7;
    cr_expect_eq(arena_track_start(NULL, ARENA_TRACK_WRITES), ARENA_ENULL);
    cr_expect_eq(arena_track_start(h, 0), ARENA_ECONFIG);
    cr_expect_eq(arena_track_start(h, 64), ARENA_ECONFIG);
    cr_expect_eq(arena_track_take(NULL, pages, 4, &count), ARENA_ENULL);
    cr_expect_eq(arena_track_take(h, pages, 4, NULL), ARENA_ENULL);
    cr_expect_eq(arena_track_take(h, NULL, 4, &count), ARENA_ENULL);
    cr_expect_eq(arena_track_take(h, pages, 4, &count), ARENA_ESTATE, "not tracking");
    cr_expect_eq(count, 0);
    cr_expect_eq(arena_track_stop(NULL), ARENA_ENULL);
    cr_expect_eq(arena_track_stop(h), ARENA_ESTATE, "not tracking");
    cr_expect_eq(arena_track_prepare_io(NULL, pages, 8), ARENA_ENULL);
    cr_expect_eq(arena_track_backend(NULL), -1);
    cr_expect_eq(arena_track_backend(h), -1);
    int err = arena_track_start(h, ARENA_TRACK_WRITES);
    if (err == 0) {
        cr_expect_eq(arena_track_start(h, ARENA_TRACK_WRITES), ARENA_EBUSY);
        cr_expect_eq(arena_track_stop(h), 0);
        cr_expect_eq(arena_track_stop(h), ARENA_ESTATE);
    } else {
        cr_expect_eq(err, ARENA_ENOTSUP, "start: %d", err);
    }
}

/* One table gives every code its value and its text: the codes are negative, the kernel's are
 * -errno, arena_strerror says for each exactly what the table says, and a positive errno (what
 * arena_alloc leaves) reads as its negation. */
Test(badinput, one_error_table)
{
    cr_expect_eq(ARENA_ENOMEM, -ENOMEM);
    cr_expect_eq(ARENA_ENOSPC, -ENOSPC);
    cr_expect_lt(ARENA_ENULL, ARENA_ELIBRARY);
    cr_expect_str_eq(arena_strerror(ENOMEM), arena_strerror(ARENA_ENOMEM));
#define CHECK_ROW(name, value, text)                                                                \
    cr_expect_lt(name, 0, #name);                                                                   \
    cr_expect_str_eq(arena_strerror(name), text, #name);
    ARENA_ERROR_TABLE(CHECK_ROW)
#undef CHECK_ROW
    cr_expect_str_eq(arena_strerror(-ENOTTY), "system error");
    cr_expect_str_eq(arena_strerror(-1999), "unknown arena error");
}

/* ------------------------------------------------- calls from a trace callback ---- */

/* Every call that takes the arena's lock, made from a callback of arena_trace_collect (whose
 * thread holds it), is refused instead of waiting forever; so are marks and pins, which would
 * hide an unscanned object (.req.trace.callback-calls). */
static struct {
    void *obj, *alloc_small, *alloc_large, *lab_obj;
    int alloc_errno, large_errno, lab_errno;
    int trim, stats, file_alloc, file_free, view_open, view_protect, track_start, mark, pin,
        pin_range;
    size_t file_first;
    arena_view_t *mirror;
    arena_lab_t lab;
} cb;

static void cb_scan(arena_ss_t *ss, void *p, size_t size, void *closure)
{
    (void)ss, (void)p, (void)size, (void)closure;
}

static void cb_roots(arena_ss_t *ss, void *closure)
{
    (void)closure;
    cr_assert_geq(arena_fix(ss, &cb.obj), 0); /* allowed: the object survives */
    errno = 0;
    cb.alloc_small = arena_alloc(a, 32);
    cb.alloc_errno = errno;
    errno = 0;
    cb.alloc_large = arena_alloc(a, 3 * arena_page_size(a));
    cb.large_errno = errno;
    errno = 0;
    cb.lab_obj = arena_lab_alloc(&cb.lab, 48);
    cb.lab_errno = errno;
    arena_lab_retire(&cb.lab); /* does nothing here; must not hang */
    arena_stats_t st;
    cb.trim = arena_trim(a, 0);
    cb.stats = arena_stats(a, &st);
    size_t first = 0;
    cb.file_alloc = arena_file_alloc(a, 1, &first);
    cb.file_free = arena_file_free(a, cb.file_first, 1);
    arena_view_t *v = NULL;
    cb.view_open = arena_view_open(a, ARENA_VIEW_EMPTY, 4, ARENA_PROT_READ, 0, &v);
    cb.view_protect = arena_view_protect(cb.mirror, 0, 1, ARENA_PROT_READ);
    cb.track_start = arena_track_start(cb.mirror, ARENA_TRACK_WRITES);
    cb.mark = arena_mark(a, cb.obj);
    cb.pin = arena_pin(a, cb.obj);
    void *range[1] = {cb.obj};
    cb.pin_range = arena_pin_range(a, range, range + 1, NULL, NULL);
}

Test(badinput, locking_calls_from_a_trace_callback, .timeout = 30)
{
    memset(&cb, 0, sizeof cb);
    cr_assert_eq(arena_lab_init(a, &cb.lab), 0);
    cr_assert_not_null(arena_lab_alloc(&cb.lab, 48)); /* the lab holds a page */
    cb.obj = arena_alloc(a, 64);
    cr_assert_not_null(cb.obj);
    memset(cb.obj, 0x5a, 64);
    cr_assert_eq(arena_file_alloc(a, 1, &cb.file_first), 0);
    cr_assert_eq(arena_view_open(a, ARENA_VIEW_MIRROR, 0, ARENA_PROT_READ | ARENA_PROT_WRITE, 0, &cb.mirror), 0);
    arena_format_t f = {cb_scan, cb_roots, NULL};
    cr_assert_eq(arena_trace_collect(a, &f, ARENA_TRACE_FULL, NULL), 0);
    cr_expect_null(cb.alloc_small);
    cr_expect_eq(cb.alloc_errno, EDEADLK);
    cr_expect_null(cb.alloc_large);
    cr_expect_eq(cb.large_errno, EDEADLK);
    cr_expect_null(cb.lab_obj);
    cr_expect_eq(cb.lab_errno, EDEADLK);
    int codes[] = {cb.trim, cb.stats, cb.file_alloc, cb.file_free, cb.view_open, cb.view_protect,
                   cb.track_start, cb.mark, cb.pin, cb.pin_range};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        cr_expect_eq(codes[i], ARENA_ESTATE, "call %zu from the callback returned %d", i, codes[i]);
    /* The object survived unmarked by the refused calls, and everything works again after. */
    unsigned char *o = cb.obj;
    for (int i = 0; i < 64; i++)
        cr_assert_eq(o[i], 0x5a);
    cr_assert_not_null(arena_alloc(a, 32));
    cr_assert_not_null(arena_lab_alloc(&cb.lab, 48));
    arena_lab_retire(&cb.lab);
    arena_stats_t st;
    cr_assert_eq(arena_stats(a, &st), 0);
    cr_assert_eq(arena_trim(a, 0), 0);
    cr_assert_eq(arena_mark(a, cb.obj), 0);
    cr_assert_eq(arena_file_free(a, cb.file_first, 1), 0);
    cr_assert_eq(arena_view_close(cb.mirror), 0);
}
