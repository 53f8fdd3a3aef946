/*
 * arena-peer -- GCBench and binary-trees on the arena, on Boehm GC and on malloc/free,
 * one program on one collector per process, so peak RSS and system time belong to it.
 * Prints one JSON line: total and GC time, longest pause, collections, peak RSS, system
 * time and the program's checksum (the same on every collector). arena-bench runs it for
 * its peer.* rows.
 *
 *   arena-peer [--program gcbench|binary-trees] [--gc arena|arena-mark|boehm|malloc] [--depth N]
 *              [--quick] [--min-heap SIZE] [--grow PERCENT] [--nursery SIZE] [--barrier cards|pages]
 *              [--log]
 */
#include "peer.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

uint64_t peer_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t peer_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

_Noreturn void peer_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("arena-peer: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* Peak resident set in KiB: VmHWM, not ru_maxrss, which keeps the peak of the process
 * that forked us across exec (arena-bench's own size would show in every child). */
static long peak_rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "re");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

static void usage(FILE *f)
{
    fputs("usage: arena-peer [--program gcbench|binary-trees] [--gc arena|arena-mark|boehm|malloc]\n"
          "                  [--depth N] [--quick] [--min-heap SIZE] [--grow PERCENT]\n"
          "                  [--nursery SIZE] [--barrier cards|pages] [--log]\n"
          "  Runs one classic collector benchmark on one collector and prints one JSON line\n"
          "  (total_ms, gc_ms, max_pause_ms, collections, young_collections, peak_rss_kb,\n"
          "  system_ms, checksum).\n"
          "  gcbench: Ellis/Kovac/Boehm GCBench (stretch tree 18, long-lived tree 16 and a\n"
          "  500000-double array, trees of depth 4..16 top-down and bottom-up).\n"
          "  binary-trees: the Benchmarks Game program, max depth --depth (default 16).\n"
          "  --gc arena: precise roots, an object format and arena_trace_collect (one pass),\n"
          "  generational: a young collection (ARENA_TRACE_YOUNG) when the nursery is full;\n"
          "  the nursery adapts between --nursery / 4 and --nursery (default --min-heap / 4)\n"
          "  so that a young collection copies about --nursery / 4 bytes; a full one when\n"
          "  the old objects grew by --grow % of what the last full one kept, at least\n"
          "  --min-heap (defaults 4M, 100; --quick: 256K), deferred while the heap grows,\n"
          "  and once due, until a young collection promotes little (at most 2 * --nursery\n"
          "  bytes of promotion later). The remembered set: --barrier cards\n"
          "  (default: a card per page, marked by the program's writes) or pages (the\n"
          "  arena's page tracking of the heap's old pages, ARENA_TRACK_OLD).\n"
          "  --nursery 0: every collection full, after allocating max(--min-heap, live *\n"
          "  --grow %) bytes; any other --nursery is at least 4K.\n"
          "  --gc arena-mark: arena_mark / arena_collect / arena_forward, every collection\n"
          "  full, after allocating max(--min-heap, live * --grow %) bytes.\n"
          "  --gc boehm: Boehm GC defaults (exit 77 when built without libgc).\n"
          "  --gc malloc: glibc malloc, every dropped tree freed at once.\n"
          "  --log: one line per collection of --gc arena on stderr (kind, pause, CPU time,\n"
          "  bytes allocated since the last one, live and evacuated bytes, pages, nursery).\n"
          "  --quick: small sizes (gcbench depths 14/12/4..12, binary-trees depth 10).\n"
          "  --barrier, --nursery and --log are --gc arena's (--barrier needs a nursery:\n"
          "  not --nursery 0); with another collector they are refused.\n"
          "Exit status: 0 the benchmark ran, 1 an error (a collector failed), 64 bad usage,\n"
          "77 --gc boehm in a build without Boehm GC.\n",
          f);
}

/* A smaller nursery would collect on nearly every allocation (the survivor budget is an
 * eighth of it): refused as a bad option rather than left to run for hours. */
#define PEER_MIN_NURSERY ((size_t)4 << 10)

static int parse_size(const char *s, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s)
        return -1;
    if (*end == 'K' || *end == 'k')
        v <<= 10, end++;
    else if (*end == 'M' || *end == 'm')
        v <<= 20, end++;
    if (*end || v == 0)
        return -1;
    *out = (size_t)v;
    return 0;
}

int main(int argc, char **argv)
{
    const char *program = "gcbench", *gc = "arena";
    int depth = 0;
    bool quick = false, nursery_set = false, barrier_set = false;
    struct peer_params p = {.grow_percent = 100};
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(arg, "--log")) {
            p.log = true;
        } else if (!strcmp(arg, "--quick")) {
            quick = true;
        } else if (!strcmp(arg, "--program") && val) {
            program = argv[++i];
        } else if (!strcmp(arg, "--gc") && val) {
            gc = argv[++i];
        } else if (!strcmp(arg, "--depth") && val && atoi(val) >= 4 && atoi(val) <= 24) {
            depth = atoi(argv[++i]);
        } else if (!strcmp(arg, "--min-heap") && val && !parse_size(val, &p.min_heap)) {
            i++;
        } else if (!strcmp(arg, "--nursery") && val &&
                   (!strcmp(val, "0") || (!parse_size(val, &p.nursery) && p.nursery >= PEER_MIN_NURSERY))) {
            nursery_set = true;
            p.nursery = strcmp(argv[++i], "0") ? p.nursery : 0;
        } else if (!strcmp(arg, "--barrier") && val && (!strcmp(val, "cards") || !strcmp(val, "pages"))) {
            p.track_pages = !strcmp(argv[++i], "pages");
            barrier_set = true;
        } else if (!strcmp(arg, "--grow") && val && atoi(val) >= 10 && atoi(val) <= 10000) {
            p.grow_percent = (unsigned)atoi(argv[++i]);
        } else {
            fprintf(stderr, "arena-peer: bad option %s%s%s\n", arg, val ? " " : "", val ? val : "");
            usage(stderr);
            return 64;
        }
    }
    peer_run_fn *run = !strcmp(gc, "arena")        ? peer_run_arena
                       : !strcmp(gc, "arena-mark") ? peer_run_arena_mark
                       : !strcmp(gc, "boehm")  ? peer_run_boehm
                       : !strcmp(gc, "malloc") ? peer_run_malloc
                                               : NULL;
    if (!run || (strcmp(program, "gcbench") && strcmp(program, "binary-trees"))) {
        fprintf(stderr, "arena-peer: unknown %s %s\n", run ? "program" : "collector", run ? program : gc);
        usage(stderr);
        return 64;
    }
    /* Only --gc arena's young collections have a remembered set: an option that would
     * change nothing is refused rather than silently ignored. */
    const char *arena_only = barrier_set ? "--barrier" : nursery_set ? "--nursery" : p.log ? "--log" : NULL;
    if (arena_only && strcmp(gc, "arena")) {
        fprintf(stderr, "arena-peer: %s applies to --gc arena only, not --gc %s\n", arena_only, gc);
        return 64;
    }
    if (barrier_set && nursery_set && !p.nursery) {
        fputs("arena-peer: --barrier: --nursery 0 makes every collection full, with no barrier\n", stderr);
        return 64;
    }
    if (!strcmp(gc, "boehm") && !peer_have_boehm) {
        fprintf(stderr, "arena-peer: built without Boehm GC (libgc-dev, pkg-config bdw-gc)\n");
        return 77;
    }
    if (!p.min_heap) /* --quick: small enough that the quick sizes still collect */
        p.min_heap = quick ? (size_t)256 << 10 : (size_t)4 << 20;
    if (!nursery_set)
        p.nursery = p.min_heap / 4;
    p.min_depth = 4;
    if (!strcmp(program, "gcbench")) {
        p.stretch_depth = quick ? 14 : 18;
        p.long_lived_depth = quick ? 12 : 16;
        p.max_depth = quick ? 12 : 16;
        p.array_size = quick ? 50000 : 500000;
    } else {
        p.max_depth = depth ? depth : quick ? 10 : 16;
    }

    struct peer_result r = {0};
    uint64_t t0 = peer_now_ns();
    int rc = run(program, &p, &r);
    uint64_t t1 = peer_now_ns();
    if (rc)
        return rc;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"program\":\"%s\",\"gc\":\"%s\",\"total_ms\":%.3f,\"gc_ms\":%.3f,\"max_pause_ms\":%.3f,"
           "\"collections\":%llu,\"young_collections\":%llu,\"peak_rss_kb\":%ld,\"system_ms\":%.3f,\"checksum\":\"%016llx\"}\n",
           program, gc, (double)(t1 - t0) / 1e6, (double)r.gc_ns / 1e6, (double)r.max_pause_ns / 1e6,
           (unsigned long long)r.collections, (unsigned long long)r.young, peak_rss_kb(),
           (double)ru.ru_stime.tv_sec * 1e3 + (double)ru.ru_stime.tv_usec / 1e3,
           (unsigned long long)r.checksum);
    return 0;
}
