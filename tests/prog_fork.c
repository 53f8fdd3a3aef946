/*
 * prog_fork.c -- fork() of a process holding arenas (docs/design.md §9, .req.fork.no-tear to .req.fork.thread-state).
 * A plain ctest program: fork() inside a Criterion test hangs its runner.
 *
 *  1. isolation: after fork() a write in the parent is not seen by the child and vice versa,
 *     through the heap, a MIRROR view and a LINEAR view; both keep allocating and collecting;
 *  2. fork while another thread allocates: the child's heap is consistent and works;
 *  3. a re-backing that fails in the child (fault injected) leaves the arena refusing every
 *     call with the error, without a crash; the parent is unaffected.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "arena.h"
#include "fixtures.h"
#include "os.h"

#define NOBJ 200

static int failures;
#define CHECK(cond, ...)                                                                     \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "%s[%d] %s:%d: %s: ", getpid() == parent_pid ? "parent" : "child",  \
                    (int)getpid(), __FILE__, __LINE__, #cond);                              \
            fprintf(stderr, __VA_ARGS__);                                                    \
            fputc('\n', stderr);                                                             \
            failures++;                                                                      \
        }                                                                                    \
    } while (0)

static pid_t parent_pid;

struct obj {
    char *p;
    size_t size;
};

static size_t obj_size(size_t i, size_t ps)
{
    return i % 29 == 4 ? 3 * ps + 80 : 16 + (i * 97) % 900;
}

static void fill(struct obj *o, unsigned char tag)
{
    memset(o->p, tag, o->size);
}

static bool all(const char *p, size_t n, unsigned char tag)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] != tag)
            return false;
    return true;
}

static arena_t *make_arena(void)
{
    arena_t *a = TEST_ARENA(.reserve = (size_t)256 << 20);
    CHECK(a != NULL, "arena_create");
    return a;
}

static void alloc_all(arena_t *a, struct obj *objs, size_t n, unsigned char tag)
{
    for (size_t i = 0; i < n; i++) {
        objs[i].size = obj_size(i, arena_page_size(a));
        objs[i].p = arena_alloc(a, objs[i].size);
        CHECK(objs[i].p != NULL, "arena_alloc: %s", strerror(errno));
        if (objs[i].p == NULL)
            exit(1);
        fill(&objs[i], tag);
    }
}

/* Keep every other object, collect, forward, and check the survivors still hold tag. */
static void collect_half(arena_t *a, struct obj *objs, size_t *n, unsigned char tag)
{
    size_t kept = 0;
    for (size_t i = 0; i < *n; i++)
        if (i % 2 == 0)
            CHECK(arena_mark(a, objs[i].p) == 0, "mark");
    int err = arena_collect(a, NULL);
    CHECK(err == 0, "arena_collect: %s", arena_strerror(err));
    for (size_t i = 0; i < *n; i++) {
        if (i % 2 != 0)
            continue;
        struct obj o = objs[i];
        o.p = arena_forward(a, o.p);
        CHECK(o.p != NULL && all(o.p, o.size, tag), "object %zu after collect", i);
        objs[kept++] = o;
    }
    *n = kept;
}

/* A one-byte message between parent and child, so each writes only when the other has
 * looked, and looks only after the other has written. */
static void send(int fd)
{
    char b = 1;
    if (write(fd, &b, 1) != 1)
        exit(2);
}

static void expect(int fd)
{
    char b;
    if (read(fd, &b, 1) != 1)
        exit(2);
}

static int wait_child(pid_t pid)
{
    int status;
    if (waitpid(pid, &status, 0) != pid)
        return 1;
    if (WIFSIGNALED(status)) {
        fprintf(stderr, "child killed by signal %d\n", WTERMSIG(status));
        return 1;
    }
    return WEXITSTATUS(status);
}

/* -------------------------------------------------------------- 1. isolation ---- */

static void check_views(arena_t *a, arena_view_t *mirror, arena_view_t *linear, struct obj *objs,
                        size_t n, unsigned char tag)
{
    arena_view_t *heap = arena_heap_view(a);
    size_t ps = arena_page_size(a);
    for (size_t i = 0; i < n; i++) {
        char *m = arena_view_addr(mirror, objs[i].p);
        CHECK(m != NULL && all(m, objs[i].size, tag), "object %zu through the mirror", i);
    }
    /* file page f of the LINEAR view is the heap slot showing f */
    char *hb = arena_view_base(heap), *lb = arena_view_base(linear);
    for (size_t s = 0; s < 256; s++) {
        size_t f = arena_view_file_page(heap, s);
        if (f != ARENA_NO_PAGE && f < arena_view_slots(linear))
            CHECK(memcmp(hb + s * ps, lb + f * ps, ps) == 0, "LINEAR page %zu vs heap slot %zu", f, s);
    }
}

static void test_isolation(void)
{
    static struct obj objs[NOBJ];
    size_t n = NOBJ;
    int to_child[2], to_parent[2];
    arena_t *a = make_arena();
    arena_view_t *mirror = NULL, *linear = NULL;
    alloc_all(a, objs, n, 0xA1);
    int err = arena_view_open(a, ARENA_VIEW_MIRROR, 0, ARENA_PROT_READ, 0, &mirror);
    CHECK(err == 0, "MIRROR: %s", arena_strerror(err));
    err = arena_view_open(a, ARENA_VIEW_LINEAR, 16, ARENA_PROT_READ, 0, &linear);
    CHECK(err == 0, "LINEAR: %s", arena_strerror(err));
    if (mirror == NULL || linear == NULL)
        exit(1);
    if (pipe(to_child) != 0 || pipe(to_parent) != 0)
        exit(1);

    pid_t pid = fork();
    if (pid == 0) {
        check_views(a, mirror, linear, objs, n, 0xA1);
        expect(to_child[0]);               /* the parent wrote 0xB2 */
        for (size_t i = 0; i < n; i++)
            CHECK(all(objs[i].p, objs[i].size, 0xA1), "child sees the parent's write in %zu", i);
        check_views(a, mirror, linear, objs, n, 0xA1);
        for (size_t i = 0; i < n; i++)
            fill(&objs[i], 0xC3);
        check_views(a, mirror, linear, objs, n, 0xC3);
        send(to_parent[1]);
        struct obj more[50];
        alloc_all(a, more, 50, 0xC4);
        collect_half(a, objs, &n, 0xC3);
        check_views(a, mirror, linear, objs, n, 0xC3);
        arena_destroy(a);
        _exit(failures != 0);
    }
    CHECK(pid > 0, "fork: %s", strerror(errno));
    for (size_t i = 0; i < n; i++)
        fill(&objs[i], 0xB2);
    send(to_child[1]);
    expect(to_parent[0]);                  /* the child wrote 0xC3 */
    for (size_t i = 0; i < n; i++)
        CHECK(all(objs[i].p, objs[i].size, 0xB2), "parent sees the child's write in %zu", i);
    check_views(a, mirror, linear, objs, n, 0xB2);
    struct obj more[50];
    alloc_all(a, more, 50, 0xB5);
    collect_half(a, objs, &n, 0xB2);
    check_views(a, mirror, linear, objs, n, 0xB2);
    CHECK(wait_child(pid) == 0, "the child failed");
    arena_destroy(a);
    close(to_child[0]), close(to_child[1]), close(to_parent[0]), close(to_parent[1]);
    printf("fork: isolation through heap, MIRROR and LINEAR views: %s\n", failures ? "FAIL" : "ok");
}

/* ------------------------------------------------- 2. fork while allocating ---- */

static arena_t *busy_arena;
static atomic_bool stop;
static atomic_ulong busy_allocs;

static void *allocator(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        size_t size = 16 + (atomic_load(&busy_allocs) * 37) % 3000;
        char *p = arena_alloc(busy_arena, size);
        if (p == NULL)
            continue; /* the heap fills up: nothing is collected while this thread runs */
        memset(p, 0x3c, size);
        if (!all(p, size, 0x3c))
            fprintf(stderr, "allocator thread: object changed under it\n"), abort();
        atomic_fetch_add(&busy_allocs, 1);
    }
    return NULL;
}

static void test_fork_while_allocating(void)
{
    static struct obj objs[NOBJ];
    size_t n = NOBJ;
    pthread_t thread;
    busy_arena = make_arena();
    alloc_all(busy_arena, objs, n, 0x5e);
    if (pthread_create(&thread, NULL, allocator, NULL) != 0)
        exit(1);
    int forks = 0;
    for (int round = 0; round < 6; round++) {
        while (atomic_load(&busy_allocs) < (unsigned long)(round + 1) * 200)
            sched_yield();
        pid_t pid = fork();
        if (pid == 0) {
            /* Only this thread exists here: the other thread's objects are garbage. */
            for (size_t i = 0; i < n; i++)
                CHECK(all(objs[i].p, objs[i].size, 0x5e), "child: object %zu", i);
            struct obj more[80];
            alloc_all(busy_arena, more, 80, 0x6f);
            collect_half(busy_arena, objs, &n, 0x5e);
            alloc_all(busy_arena, more, 80, 0x70);
            _exit(failures != 0);
        }
        CHECK(pid > 0, "fork: %s", strerror(errno));
        CHECK(wait_child(pid) == 0, "child of round %d failed", round);
        forks++;
    }
    atomic_store(&stop, true);
    pthread_join(thread, NULL);
    collect_half(busy_arena, objs, &n, 0x5e);
    arena_destroy(busy_arena);
    printf("fork: %d forks while a thread allocated (%lu objects): %s\n", forks,
           atomic_load(&busy_allocs), failures ? "FAIL" : "ok");
}

/* ------------------------------------------------- 3. re-backing that fails ---- */

static void test_broken_child(void)
{
    static struct obj objs[20];
    arena_t *a = make_arena();
    alloc_all(a, objs, 20, 0x11);
    /* The fault counters are inherited: the child's re-backing hits the armed failure. */
    arena__fault_arm(ARENA_SYS_MEMFD_CREATE, 1, EMFILE);
    arena__fault_arm(ARENA_SYS_OPEN, 1, EMFILE);
    pid_t pid = fork();
    if (pid == 0) {
        errno = 0;
        CHECK(arena_alloc(a, 64) == NULL && errno == EMFILE, "alloc in a broken child: errno %d",
              errno);
        int err = arena_collect(a, NULL);
        CHECK(err == ARENA_EMFILE, "collect in a broken child: %d", err);
        arena_view_t *v = NULL;
        err = arena_view_open(a, ARENA_VIEW_MIRROR, 0, ARENA_PROT_READ, 0, &v);
        CHECK(err == ARENA_EMFILE, "view_open in a broken child: %d", err);
        arena_destroy(a); /* must still be possible */
        _exit(failures != 0);
    }
    arena__fault_disarm_all();
    CHECK(wait_child(pid) == 0, "broken child failed");
    char *p = arena_alloc(a, 64);
    CHECK(p != NULL, "the parent is unaffected");
    arena_destroy(a);
    printf("fork: failed re-backing in the child is reported, not a crash: %s\n",
           failures ? "FAIL" : "ok");
}

/* Retained pages (.req.heap.retain-pages) across fork: the child's allocations reuse pages the parent's
 * collection retained, which must read as zero in the child and must not show up in the
 * parent; a parked or retained page of the child is the child's own. */
static void test_retained(void)
{
    arena_t *a = make_arena();
    struct obj objs[NOBJ];
    size_t n = NOBJ;
    alloc_all(a, objs, n, 0x33);
    collect_half(a, objs, &n, 0x33);
    arena_stats_t s;
    CHECK(arena_stats(a, &s) == 0 && s.retained_bytes > 0, "the collection retained no page");
    int to_parent[2];
    CHECK(pipe(to_parent) == 0, "pipe");
    pid_t pid = fork();
    if (pid == 0) {
        struct obj fresh[NOBJ];
        for (size_t i = 0; i < NOBJ; i++) {
            fresh[i].size = obj_size(i, arena_page_size(a));
            fresh[i].p = arena_alloc(a, fresh[i].size);
            CHECK(fresh[i].p != NULL && all(fresh[i].p, fresh[i].size, 0), "child: object %zu not zero", i);
            if (fresh[i].p != NULL)
                fill(&fresh[i], 0x44);
        }
        for (size_t i = 0; i < n; i++)
            CHECK(all(objs[i].p, objs[i].size, 0x33), "child: survivor %zu", i);
        CHECK(arena_trim(a, 0) == 0, "child: trim");
        send(to_parent[1]);
        arena_destroy(a);
        _exit(failures != 0);
    }
    CHECK(pid > 0, "fork: %s", strerror(errno));
    expect(to_parent[0]);
    /* The parent reuses the same retained slots: zero here too, whatever the child wrote. */
    for (size_t i = 0; i < NOBJ; i++) {
        size_t size = obj_size(i, arena_page_size(a));
        char *p = arena_alloc(a, size);
        CHECK(p != NULL && all(p, size, 0), "parent: object %zu not zero", i);
    }
    for (size_t i = 0; i < n; i++)
        CHECK(all(objs[i].p, objs[i].size, 0x33), "parent: survivor %zu", i);
    CHECK(wait_child(pid) == 0, "the child failed");
    close(to_parent[0]);
    close(to_parent[1]);
    arena_destroy(a);
    printf("fork: retained pages are reused zeroed on both sides: %s\n", failures ? "FAIL" : "ok");
}

int main(void)
{
    parent_pid = getpid();
    setvbuf(stdout, NULL, _IONBF, 0);
    alarm(120);
    test_isolation();
    test_fork_while_allocating();
    test_broken_child();
    test_retained();
    return failures != 0;
}
