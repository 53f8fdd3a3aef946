/*
 * prog_mesh_fork.c -- fork across meshed pages (docs/design.md §7 .req.mesh.what, §9): a plain ctest
 * program, since fork inside Criterion hangs. The parent meshes two pinned pages; the
 * child (re-backed onto its own file by the atfork handlers) must see every object at its
 * address, both slots still showing one file page, writes through one slot visible at the
 * other, and its writes invisible to the parent; the parent then collects again.
 * Exit 0 when every check holds.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "arena.h"

#define PAGE 4096
#define OBJ 64
#define PER_PAGE (PAGE / OBJ)

#include "prog_check.h"

static void fill(char *p, uint32_t tag)
{
    for (size_t i = 0; i < OBJ; i += 4)
        memcpy(p + i, &(uint32_t){tag * 2654435761u + (uint32_t)i}, 4);
}

static bool intact(const char *p, uint32_t tag)
{
    for (size_t i = 0; i < OBJ; i += 4) {
        uint32_t w;
        memcpy(&w, p + i, 4);
        if (w != tag * 2654435761u + (uint32_t)i)
            return false;
    }
    return true;
}

static bool kept(size_t i) { return (i % 2) == ((i / PER_PAGE) % 2); }

int main(void)
{
    arena_config_t cfg;
    arena_config_init(&cfg);
    cfg.page_size = PAGE;
    cfg.reserve = (size_t)1 << 30;
    cfg.mesh = ARENA_MESH_ON;
    arena_t *a = NULL;
    if (arena_create(&a, &cfg) != 0) {
        fprintf(stderr, "prog_mesh_fork: arena_create failed\n");
        return 1;
    }
    char *objs[2 * PER_PAGE], *p;
    do
        p = arena_alloc(a, OBJ);
    while ((uintptr_t)p % PAGE != 0);
    objs[0] = p;
    for (size_t i = 1; i < 2 * PER_PAGE; i++)
        objs[i] = arena_alloc(a, OBJ);
    for (size_t i = 0; i < 2 * PER_PAGE; i++) {
        fill(objs[i], (uint32_t)i);
        if (kept(i))
            arena_pin(a, objs[i]);
    }
    arena_collect_stats_t st;
    CHECK(arena_collect(a, &st) == 0, "collect failed");
    CHECK(st.pages_meshed == 1, "expected one mesh, got %zu", st.pages_meshed);
    arena_view_t *hv = arena_heap_view(a);
    size_t base = (size_t)(objs[0] - (char *)arena_view_base(hv)) / PAGE;
    size_t fp = arena_view_file_page(hv, base);
    CHECK(fp == arena_view_file_page(hv, base + 1), "parent: the slots do not share a file page");

    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        for (size_t i = 0; i < 2 * PER_PAGE; i++)
            if (kept(i))
                CHECK(intact(objs[i], (uint32_t)i), "child: object %zu differs", i);
        CHECK(arena_view_file_page(hv, base) == arena_view_file_page(hv, base + 1),
              "child: the slots do not share a file page");
        fill(objs[PER_PAGE + 1], 999);
        CHECK(memcmp(objs[1], objs[PER_PAGE + 1], OBJ) == 0, "child: a write through one slot is not seen at the other");
        CHECK(intact(objs[0], 0), "child: the other page's object changed");
        /* the child's heap works: a collection with the same pins keeps the mesh */
        for (size_t i = 0; i < 2 * PER_PAGE; i++)
            if (kept(i))
                arena_pin(a, objs[i]);
        CHECK(arena_collect(a, NULL) == 0, "child: collect failed");
        CHECK(intact(objs[PER_PAGE + 1], 999) && intact(objs[0], 0), "child: objects lost by its collection");
        _exit(failures ? 1 : 0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child failed (status %d)", status);
    for (size_t i = 0; i < 2 * PER_PAGE; i++)
        if (kept(i))
            CHECK(intact(objs[i], (uint32_t)i), "parent: object %zu changed by the child", i);
    /* the parent's next collection: page 0's objects die, page 1's stay pinned */
    for (size_t i = PER_PAGE; i < 2 * PER_PAGE; i++)
        if (kept(i))
            arena_pin(a, objs[i]);
    CHECK(arena_collect(a, NULL) == 0, "collect failed");
    for (size_t i = PER_PAGE; i < 2 * PER_PAGE; i++)
        if (kept(i))
            CHECK(intact(objs[i], (uint32_t)i) && arena_forward(a, objs[i]) == objs[i], "object %zu lost", i);
    CHECK(arena_object(a, objs[0]) == NULL, "a dead object is still there");
    arena_destroy(a);
    printf("prog_mesh_fork: %s\n", failures ? "FAILED" : "every check held");
    return failures != 0;
}
