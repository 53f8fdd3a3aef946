/*
 * prog_fork_views.c -- fork() keeps what every view shows, for every view kind and every slot
 * protection (issue 12, item 4; docs/design.md §9). A plain ctest program: fork() inside a
 * Criterion test hangs its runner.
 *
 * For each layout (EMPTY mapped by hand, LINEAR, MIRROR of the heap) x shared / private
 * (copy-on-write) x slot protection (NONE, READ, WRITE, READ|WRITE, READ|EXEC, EXEC): the parent writes a
 * pattern through the view (for a private view, its own copy-on-write contents, which the file
 * does not hold), protects the slots, forks; the child opens the slots to READ again and must
 * read exactly what the parent's view showed. Before the fix a private slot protected NONE (or
 * EXEC without READ) came back showing the file's page, not its own contents.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "arena.h"

#define SLOTS 4

static const char *layout_name[] = {"EMPTY", "LINEAR", "MIRROR"};

static unsigned char expected(size_t slot, size_t off, int priv)
{
    return (unsigned char)((priv ? 0x80 : 0) + slot * 7 + (off % 13));
}

/* One case; returns 0 when the child saw what it should. */
static int run_case(int layout, int priv, int prot)
{
    arena_t *a;
    if (arena_create(&a, NULL) != 0)
        return fprintf(stderr, "arena_create failed\n"), 1;
    size_t ps = arena_page_size(a), first = 0;
    arena_view_t *v = NULL;
    int flags = priv ? ARENA_VIEW_PRIVATE : 0, err = 0;
    if (layout == ARENA_VIEW_MIRROR) {
        char *obj = arena_alloc(a, SLOTS * ps); /* its own run of heap pages */
        if (!obj)
            return fprintf(stderr, "arena_alloc failed\n"), 1;
        memset(obj, 0x11, SLOTS * ps);
        err = arena_view_open(a, ARENA_VIEW_MIRROR, 0, ARENA_PROT_READ | ARENA_PROT_WRITE, flags, &v);
        if (!err) {
            char *m = arena_view_addr(v, obj);
            size_t slot0 = (size_t)(m - (char *)arena_view_base(v)) / ps;
            /* Work on the object's slots: move the view's base pointer there. */
            for (size_t s = 0; s < SLOTS; s++)
                for (size_t off = 0; off < ps; off++)
                    m[s * ps + off] = (char)expected(s, off, priv);
            if (prot != (ARENA_PROT_READ | ARENA_PROT_WRITE))
                err = arena_view_protect(v, slot0, SLOTS, prot);
            first = slot0;
        }
    } else {
        err = arena_file_alloc(a, SLOTS, &first);
        if (!err && layout == ARENA_VIEW_LINEAR && first != 0)
            return fprintf(stderr, "LINEAR needs file page 0 first\n"), 1;
        if (!err)
            err = arena_view_open(a, layout, SLOTS, ARENA_PROT_READ | ARENA_PROT_WRITE, flags, &v);
        if (!err && layout == ARENA_VIEW_EMPTY)
            err = arena_view_map(v, 0, first, SLOTS);
        if (!err) {
            char *b = arena_view_base(v);
            for (size_t s = 0; s < SLOTS; s++)
                for (size_t off = 0; off < ps; off++)
                    b[s * ps + off] = (char)expected(s, off, priv);
            if (prot != (ARENA_PROT_READ | ARENA_PROT_WRITE))
                err = arena_view_protect(v, 0, SLOTS, prot);
        }
        first = 0;
    }
    if (err)
        return fprintf(stderr, "setup %s: %s\n", layout_name[layout], arena_strerror(err)), 1;
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        return perror("fork"), 1;
    if (pid == 0) {
        int bad = arena_view_protect(v, first, SLOTS, ARENA_PROT_READ);
        if (bad) {
            fprintf(stderr, "child: arena_view_protect: %s\n", arena_strerror(bad));
            _exit(1);
        }
        const unsigned char *b = (const unsigned char *)arena_view_base(v) + first * ps;
        for (size_t s = 0; s < SLOTS; s++)
            for (size_t off = 0; off < ps; off++)
                if (b[s * ps + off] != expected(s, off, priv)) {
                    fprintf(stderr, "child: slot %zu byte %zu is 0x%02x, the parent's view showed 0x%02x\n", s,
                            off, b[s * ps + off], expected(s, off, priv));
                    _exit(1);
                }
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    arena_destroy(a);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

int main(void)
{
    static const int prots[] = {ARENA_PROT_NONE, ARENA_PROT_READ, ARENA_PROT_WRITE, ARENA_PROT_READ | ARENA_PROT_WRITE,
                                ARENA_PROT_READ | ARENA_PROT_EXEC, ARENA_PROT_EXEC};
    static const char *prot_name[] = {"NONE", "READ", "WRITE", "READ|WRITE", "READ|EXEC", "EXEC"};
    enum { NPROT = sizeof prots / sizeof prots[0] };
    int failures = 0, cases = 0;
    for (int layout = ARENA_VIEW_EMPTY; layout <= ARENA_VIEW_MIRROR; layout++)
        for (int priv = 0; priv <= 1; priv++)
            for (int p = 0; p < NPROT; p++) {
                int bad = run_case(layout, priv, prots[p]);
                cases++;
                failures += bad;
                printf("%-6s %-7s %-10s %s\n", layout_name[layout], priv ? "private" : "shared", prot_name[p],
                       bad ? "FAIL" : "ok");
            }
    printf("%d of %d cases failed\n", failures, cases);
    return failures ? 1 : 0;
}
