/* A program outside the project that uses the installed arena: it must find the header
 * and the library through find_package(arena) or pkg-config, and work. */
#include <arena.h>
#include <stdio.h>
#include <string.h>

static int fail(const char *what, int err)
{
    fprintf(stderr, "consumer: %s: %s\n", what, arena_strerror(err));
    return 1;
}

int main(void)
{
    arena_t *a;
    arena_view_t *v;
    size_t first;
    int err = arena_create(&a, NULL);
    if (err)
        return fail("arena_create", err);
    if ((err = arena_file_alloc(a, 1, &first)))
        return fail("arena_file_alloc", err);
    if ((err = arena_view_open(a, ARENA_VIEW_EMPTY, 2, ARENA_PROT_READ | ARENA_PROT_WRITE, 0, &v)))
        return fail("arena_view_open", err);
    /* one file page at two slots: a write through one is read through the other */
    if ((err = arena_view_map(v, 0, first, 1)) || (err = arena_view_map(v, 1, first, 1)))
        return fail("arena_view_map", err);
    char *base = arena_view_base(v);
    strcpy(base, "hello through slot 0");
    int ok = strcmp(base + arena_page_size(a), "hello through slot 0") == 0;
    if ((err = arena_view_close(v)))
        return fail("arena_view_close", err);
    arena_destroy(a);
    if (!ok) {
        fprintf(stderr, "consumer: slot 1 does not show what was written through slot 0\n");
        return 1;
    }
    printf("consumer: arena %d.%d.%d works\n", ARENA_VERSION_MAJOR, ARENA_VERSION_MINOR, ARENA_VERSION_PATCH);
    return 0;
}
