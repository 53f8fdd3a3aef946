/*
 * bench_fork.c -- what fork() costs a process holding a live, resident arena, per
 * resident GiB, against fork() of a process holding as much anonymous resident memory.
 * Measured in the parent from the call to its return (the child exits at once).
 */
#include "bench.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static double fork_ms(void)
{
    uint64_t t0 = bench_now_ns();
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    uint64_t t1 = bench_now_ns();
    if (pid < 0)
        return NAN;
    int status;
    waitpid(pid, &status, 0);
    return (double)(t1 - t0) / 1e6;
}

static double median_fork_ms(int reps)
{
    double v[16];
    int n = reps < 16 ? reps : 16;
    for (int i = 0; i < n; i++)
        v[i] = fork_ms();
    return bench_median(v, n);
}

int bench_fork(const struct bench_opts *o)
{
    if (!bench_need("fork", "the heap (arena_alloc)", bench_have_heap()))
        return 0;
    int reps = o->repeat < 5 ? 5 : o->repeat;
    const double gib = (double)((size_t)1 << 30);
    arena_t *a = bench_arena("fork", o->heap * 2, 0);
    if (!a)
        return 0;
    size_t page = arena_page_size(a), n = o->heap / page;
    for (size_t i = 0; i < n; i++) {
        char *p = arena_alloc(a, page);
        if (!p) {
            bench_note("fork", "failed", "arena_alloc(page) failed");
            arena_destroy(a);
            return 0;
        }
        memset(p, 0x5a, page);
    }
    double resident = (double)bench_heap_resident(a);
    bench_progress("fork arena");
    double arena_ms = median_fork_ms(reps);
    arena_destroy(a);

    char *anon = mmap(NULL, n * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (anon == MAP_FAILED) {
        bench_note("fork", "failed", "mmap of the anonymous baseline failed");
        return 0;
    }
    memset(anon, 0x5a, n * page);
    double anon_resident = (double)bench_resident(anon, n * page);
    bench_progress("fork anonymous");
    double anon_ms = median_fork_ms(reps);
    munmap(anon, n * page);
    bench_row("fork", "ms_per_resident_gib", arena_ms / (resident / gib), "ms",
              anon_ms / (anon_resident / gib));
    bench_row("fork", "resident", resident, "bytes", anon_resident);
    return 0;
}
