/*
 * common.h -- small helpers shared by the demos (header only; include it first, it
 * defines _GNU_SOURCE for program_invocation_short_name).
 *
 * Exit codes used by every demo: 0 success, 1 failure (an error or a failed check),
 * 2 refused by the VMA budget (see arena-reverse), 64 bad command line.
 */
#ifndef ARENA_DEMOS_COMMON_H
#define ARENA_DEMOS_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"

#define DEMO_EXIT_FAIL 1
#define DEMO_EXIT_BUDGET 2
#define DEMO_EXIT_USAGE 64

__attribute__((format(printf, 2, 3), noreturn))
static inline void demo_exit(int status, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "%s: ", program_invocation_short_name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(status);
}

#define demo_die(...) demo_exit(DEMO_EXIT_FAIL, __VA_ARGS__)
#define demo_usage_error(...) demo_exit(DEMO_EXIT_USAGE, __VA_ARGS__)

/* Die with the library's description of err unless it is 0. */
static inline void demo_check(int err, const char *what)
{
    if (err != 0)
        demo_die("%s failed: %s (%d)", what, arena_strerror(err), err);
}

/* "4096", "256K", "10M", "1G" (binary units) -> bytes; dies on anything else. */
static inline size_t demo_parse_size(const char *opt, const char *text)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(text, &end, 10);
    unsigned shift = 0;
    if (end != text) {
        switch (*end) {
        case 'k': case 'K': shift = 10; end++; break;
        case 'm': case 'M': shift = 20; end++; break;
        case 'g': case 'G': shift = 30; end++; break;
        default: break;
        }
        if ((*end == 'i' || *end == 'I') && shift)
            end++;
        if ((*end == 'b' || *end == 'B') && shift)
            end++;
    }
    if (end == text || *end != '\0' || errno || text[0] == '-' || (n << shift) >> shift != n)
        demo_usage_error("%s: not a size: '%s' (examples: 4096, 256K, 10M, 1G)", opt, text);
    return (size_t)(n << shift);
}

/* An unsigned decimal integer in [min, max] (0x for hex); dies with a usage error otherwise. */
static inline unsigned long long demo_parse_uint(const char *opt, const char *text, unsigned long long min,
                                                 unsigned long long max)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(text, &end, 0);
    if (end == text || *end != '\0' || errno || text[0] == '-' || n < min || n > max)
        demo_usage_error("%s: '%s' is not a whole number from %llu to %llu", opt, text, min, max);
    return n;
}

static const struct { const char *name; int mover; } demo_movers[] = {
    {"auto", ARENA_MOVE_AUTO},
    {"remap_file_pages", ARENA_MOVE_REMAP_FILE_PAGES},
    {"mmap_fixed", ARENA_MOVE_MMAP_FIXED},
    {"mremap", ARENA_MOVE_MREMAP},
    {"copy", ARENA_MOVE_COPY},
};

static inline const char *demo_mover_name(int mover)
{
    for (size_t i = 0; i < sizeof demo_movers / sizeof demo_movers[0]; i++)
        if (demo_movers[i].mover == mover)
            return demo_movers[i].name;
    return "?";
}

/* Full names, or the short forms rfp, fixed. */
static inline int demo_parse_mover(const char *text)
{
    if (strcasecmp(text, "rfp") == 0)
        return ARENA_MOVE_REMAP_FILE_PAGES;
    if (strcasecmp(text, "fixed") == 0)
        return ARENA_MOVE_MMAP_FIXED;
    for (size_t i = 0; i < sizeof demo_movers / sizeof demo_movers[0]; i++)
        if (strcasecmp(text, demo_movers[i].name) == 0)
            return demo_movers[i].mover;
    demo_usage_error("--mover: unknown mover '%s' (auto, remap_file_pages|rfp, mmap_fixed|fixed, mremap, copy)",
                     text);
}

/* The command line of a demo whose only options are --mover NAME and --help: returns the
 * mover (default_mover when not given); --help prints usage and exits 0, anything else is a
 * usage error (exit DEMO_EXIT_USAGE). */
static inline int demo_mover_args(int argc, char **argv, int default_mover, void (*usage)(FILE *))
{
    static const struct option longopts[] = {
        {"mover", required_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    int mover = default_mover, c;
    while ((c = getopt_long(argc, argv, "m:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': mover = demo_parse_mover(optarg); break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); exit(DEMO_EXIT_USAGE);
        }
    }
    if (optind < argc)
        demo_usage_error("unexpected argument '%s' (see --help)", argv[optind]);
    return mover;
}

/* The command line of a demo that takes no option but --help: --help prints usage and
 * exits 0, anything else is a usage error (exit DEMO_EXIT_USAGE). */
static inline void demo_help_args(int argc, char **argv, void (*usage)(FILE *))
{
    static const struct option longopts[] = {{"help", no_argument, NULL, 'h'}, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (c == 'h') {
            usage(stdout);
            exit(0);
        }
        usage(stderr);
        exit(DEMO_EXIT_USAGE);
    }
    if (optind < argc)
        demo_usage_error("unexpected argument '%s' (see --help)", argv[optind]);
}

static inline uint64_t demo_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Lines of /proc/self/maps (one per VMA) that overlap [lo, hi): what the kernel really
 * holds for a range, to set beside the arena's own accounting. -1 if unreadable. */
static inline long demo_maps_count(const void *lo, const void *hi)
{
    FILE *f = fopen("/proc/self/maps", "re");
    if (!f)
        return -1;
    long count = 0;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        uintptr_t start, end;
        if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR, &start, &end) == 2 &&
            start < (uintptr_t)hi && end > (uintptr_t)lo)
            count++;
        /* a line longer than the buffer: skip its tail so it is not read as a line */
        while (!strchr(line, '\n') && fgets(line, sizeof line, f))
            ;
    }
    fclose(f);
    return count;
}

/* The permission field ("rw-s") of the mapping holding addr, into perms[5]; "?" if none. */
static inline void demo_maps_perms(const void *addr, char perms[5])
{
    strcpy(perms, "?");
    FILE *f = fopen("/proc/self/maps", "re");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        uintptr_t start, end;
        char p[5];
        if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %4s", &start, &end, p) == 3 &&
            start <= (uintptr_t)addr && (uintptr_t)addr < end) {
            memcpy(perms, p, 5);
            break;
        }
        while (!strchr(line, '\n') && fgets(line, sizeof line, f))
            ;
    }
    fclose(f);
}

/* A progress line on stderr, only when stderr is a terminal, at most ~10 times a second.
 * Call demo_progress_done() after the loop to clear it. */
static inline void demo_progress(const char *what, size_t done, size_t total)
{
    static int tty = -1;
    static uint64_t last;
    if (tty < 0)
        tty = isatty(STDERR_FILENO);
    if (!tty)
        return;
    uint64_t now = demo_now_ns();
    if (done != total && now - last < 100000000u)
        return;
    last = now;
    fprintf(stderr, "\r%s: %zu/%zu (%zu%%)\033[K", what, done, total, total ? done * 100 / total : 100);
    fflush(stderr);
}

static inline void demo_progress_done(void)
{
    if (isatty(STDERR_FILENO))
        fputs("\r\033[K", stderr);
}

#endif /* ARENA_DEMOS_COMMON_H */
