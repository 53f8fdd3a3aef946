/*
 * prog_fork_registry.c -- fork() while other threads are inside the view registry's reader
 * section (docs/design.md .req.view.registry, .req.fork.thread-state). A plain ctest
 * program: fork() inside a Criterion test hangs its runner.
 *
 * Two threads of the parent keep the registry busy: one looks views up by address
 * (arena__view_find_any) without pause, the other writes to the pages of a view tracked
 * with the SIGSEGV backend, so its fault handler looks the tracker up, and re-arms them
 * with arena_track_take. Meanwhile the main thread forks again and again; each child
 * opens and closes a view (a registry change: it waits for the registry's readers) and
 * tracks a write through the SIGSEGV handler, under alarm(). A reader count copied into
 * the child from a thread that was inside the reader section at fork() belongs to no
 * thread of the child: unless the child resets it, the child's first view change waits
 * for it for ever, and the alarm kills the child.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "arena.h"
#include "fixtures.h"
#include "prog_check.h"
#include "view.h"

#define PAGES 16
#define ROUNDS 60
#define CHILD_SECONDS 10

static arena_t *a;
static arena_view_t *tracked;
static atomic_bool stop;
static atomic_ulong finds, writes;

static void *find_loop(void *arg)
{
    (void)arg;
    char *base = arena_view_base(tracked);
    size_t ps = arena_page_size(a), slot = 0, i = 0;
    while (!atomic_load(&stop)) {
        size_t want = i++ % PAGES;
        arena_view_t *v = arena__view_find_any(base + want * ps + 1, &slot);
        if (v != tracked || slot != want) {
            CHECK(v == tracked && slot == want, "lookup of slot %zu found %p slot %zu", want, (void *)v, slot);
            break;
        }
        atomic_fetch_add(&finds, 1);
    }
    return NULL;
}

static void *write_loop(void *arg)
{
    (void)arg;
    volatile char *base = arena_view_base(tracked);
    size_t ps = arena_page_size(a);
    void *pages[PAGES];
    unsigned char round = 0;
    while (!atomic_load(&stop)) {
        round++;
        for (size_t p = 0; p < PAGES; p++)
            base[p * ps] = (char)round; /* an armed page faults: the handler opens it */
        size_t count = 0;
        int err = arena_track_take(tracked, pages, PAGES, &count);
        if (err != 0) {
            CHECK(err == 0, "arena_track_take: %s", arena_strerror(err));
            break;
        }
        atomic_fetch_add(&writes, 1);
    }
    return NULL;
}

/* The child: a registry change, then a write tracked through the SIGSEGV handler. 0 when
 * both worked; a hang ends in SIGALRM. */
static int child(void)
{
    alarm(CHILD_SECONDS);
    arena_view_t *v = NULL;
    int err = arena_view_open(a, ARENA_VIEW_EMPTY, 4, ARENA_PROT_READ, 0, &v);
    if (err != 0)
        return 1;
    size_t slot = 9;
    if (arena__view_find(a, (char *)arena_view_base(v) + arena_page_size(a), &slot) != v || slot != 1)
        return 2;
    if (arena_view_close(v) != 0)
        return 3;
    void *pages[PAGES];
    size_t count = 0;
    if (arena_track_take(tracked, pages, PAGES, &count) != 0) /* every page counts touched after fork */
        return 4;
    char *base = arena_view_base(tracked);
    base[3 * arena_page_size(a)] = 1;
    if (arena_track_take(tracked, pages, PAGES, &count) != 0 || count != 1 || pages[0] != base + 3 * arena_page_size(a))
        return 5;
    return 0;
}

int main(void)
{
    a = TEST_ARENA(.tracker = ARENA_TRACKER_SIGSEGV);
    tracked = a ? test_rw_view(a, PAGES, NULL) : NULL;
    if (!tracked)
        return 1;
    int err = arena_track_start(tracked, ARENA_TRACK_WRITES);
    CHECK(err == 0, "arena_track_start: %s", arena_strerror(err));
    if (err != 0)
        return 1;
    pthread_t finder, writer;
    if (pthread_create(&finder, NULL, find_loop, NULL) != 0 || pthread_create(&writer, NULL, write_loop, NULL) != 0)
        return fprintf(stderr, "pthread_create failed\n"), 1;
    int hung = 0, bad = 0, r = 0;
    for (; r < ROUNDS && failures == 0; r++) {
        while ((atomic_load(&finds) == 0 || atomic_load(&writes) == 0) && failures == 0) /* both under way */
            sched_yield();
        fflush(stderr);
        pid_t pid = fork();
        if (pid < 0) {
            CHECK(pid >= 0, "fork failed");
            break;
        }
        if (pid == 0)
            _exit(child());
        int status = 0;
        CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) {
            hung++;
            CHECK(0, "round %d: the child's view open/close hung for %d s (registry readers left over from fork)", r,
                  CHILD_SECONDS);
        } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            bad++;
            CHECK(0, "round %d: child status %#x (exit %d)", r, status, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        }
        atomic_store(&finds, 0);
        atomic_store(&writes, 0);
    }
    atomic_store(&stop, true);
    pthread_join(finder, NULL);
    pthread_join(writer, NULL);
    CHECK(arena_track_stop(tracked) == 0, "arena_track_stop");
    arena_destroy(a);
    printf("prog_fork_registry: %d forks, %d children hung, %d failed otherwise\n", r, hung, bad);
    return failures ? 1 : 0;
}
