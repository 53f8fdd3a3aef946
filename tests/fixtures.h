/*
 * fixtures.h -- the test fixtures every suite and test program shares: an arena built from a
 * few configuration fields, fresh file pages with known contents, a read-write view of them.
 *
 * Under Criterion (criterion.h included first) a fixture that cannot be built fails the test
 * with the library's message; in a plain ctest program it returns NULL / (size_t)-1 and the
 * program checks.
 */
#ifndef ARENA_TEST_FIXTURES_H
#define ARENA_TEST_FIXTURES_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "arena.h"

#ifdef CRITERION_H_
#define FIXTURE_CHECK(ok, ...) cr_assert(ok, __VA_ARGS__)
#else
#define FIXTURE_CHECK(ok, ...)                                                                     \
    do {                                                                                           \
        if (!(ok)) {                                                                               \
            fprintf(stderr, "fixture: ");                                                          \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
        }                                                                                          \
    } while (0)
#endif

/* An arena whose configuration is the defaults (arena_config_init: all zero) with the fields
 * given as designated initializers changed:
 *     arena_t *a = TEST_ARENA(.reserve = (size_t)64 << 20, .backing = ARENA_BACKING_TMPFILE);
 */
#define TEST_ARENA(...) test_arena_with((arena_config_t){__VA_ARGS__})

static inline arena_t *test_arena_with(arena_config_t cfg)
{
    arena_t *a = NULL;
    int err = arena_create(&a, &cfg);
    FIXTURE_CHECK(err == 0, "arena_create: %s", arena_strerror(err));
    return err == 0 ? a : NULL;
}

/* A read-write EMPTY view of n slots showing n fresh file pages (slot i: first + i); *first
 * gets the first file page when not NULL. NULL on failure. */
static inline arena_view_t *test_rw_view(arena_t *a, size_t n, size_t *first)
{
    size_t fp;
    arena_view_t *v = NULL;
    int err = arena_file_alloc(a, n, &fp);
    if (err == 0)
        err = arena_view_open(a, ARENA_VIEW_EMPTY, n, ARENA_PROT_READ | ARENA_PROT_WRITE, 0, &v);
    if (err == 0)
        err = arena_view_map(v, 0, fp, n);
    FIXTURE_CHECK(err == 0, "a view of %zu fresh pages: %s", n, arena_strerror(err));
    if (err != 0)
        return NULL;
    if (first)
        *first = fp;
    return v;
}

/* n fresh file pages, each tagged in its first word with tag0 + i (written through a
 * temporary view, closed again); the first file page, or (size_t)-1 on failure. */
static inline size_t test_tagged_pages(arena_t *a, size_t n, uint64_t tag0)
{
    size_t first;
    arena_view_t *v = test_rw_view(a, n, &first);
    if (v == NULL)
        return (size_t)-1;
    char *base = arena_view_base(v);
    for (size_t i = 0; i < n; i++)
        *(uint64_t *)(base + i * arena_page_size(a)) = tag0 + i;
    int err = arena_view_close(v);
    FIXTURE_CHECK(err == 0, "arena_view_close: %s", arena_strerror(err));
    return err == 0 ? first : (size_t)-1;
}

#endif /* ARENA_TEST_FIXTURES_H */
