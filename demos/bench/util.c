/* util.c -- rows, timing, medians and memory probes shared by the arena-bench rows. */
#include "bench.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static void print_number(double v)
{
    if (isnan(v) || isinf(v))
        fputs("null", stdout);
    else if (v == floor(v) && fabs(v) < 1e15)
        printf("%.0f", v);
    else
        printf("%.6g", v);
}

/* Bench and metric names are our own identifiers; notes may hold anything printable. */
static void print_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

void bench_row(const char *bench, const char *metric, double value, const char *unit,
               double baseline)
{
    fputs("{\"bench\":", stdout);
    print_string(bench);
    fputs(",\"metric\":", stdout);
    print_string(metric);
    fputs(",\"value\":", stdout);
    print_number(value);
    fputs(",\"unit\":", stdout);
    print_string(unit);
    fputs(",\"baseline\":", stdout);
    print_number(baseline);
    fputs(",\"ratio\":", stdout);
    print_number(isnan(baseline) || baseline == 0 ? NAN : value / baseline);
    if (isnan(value))
        fputs(",\"note\":\"not measured: the library call failed or is missing\"", stdout);
    fputs("}\n", stdout);
    fflush(stdout);
}

void bench_note(const char *bench, const char *metric, const char *note)
{
    fputs("{\"bench\":", stdout);
    print_string(bench);
    fputs(",\"metric\":", stdout);
    print_string(metric);
    fputs(",\"value\":null,\"unit\":null,\"baseline\":null,\"ratio\":null,\"note\":", stdout);
    print_string(note);
    fputs("}\n", stdout);
    fflush(stdout);
}

void bench_progress(const char *fmt, ...)
{
    static int tty = -1;
    if (tty < 0)
        tty = isatty(STDERR_FILENO);
    if (!tty)
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("\r\033[K", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fflush(stderr);
}

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

double bench_median(double *v, int n)
{
    if (n <= 0)
        return NAN;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

uint64_t bench_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

size_t bench_resident(const void *addr, size_t len)
{
    size_t os_page = (size_t)sysconf(_SC_PAGESIZE);
    enum { CHUNK = 1 << 16 };
    static unsigned char vec[CHUNK];
    size_t resident = 0;
    const char *p = addr;
    for (size_t done = 0; done < len;) {
        size_t pages = (len - done) / os_page;
        if (pages > CHUNK)
            pages = CHUNK;
        if (pages == 0)
            break;
        if (mincore((void *)(p + done), pages * os_page, vec) == 0) {
            for (size_t i = 0; i < pages; i++)
                resident += vec[i] & 1;
        }
        /* ENOMEM: a hole in the range, nothing resident there. */
        done += pages * os_page;
    }
    return resident * os_page;
}

size_t bench_heap_resident(arena_t *a)
{
    arena_view_t *v = arena_heap_view(a);
    return bench_resident(arena_view_base(v), arena_view_slots(v) * arena_page_size(a));
}

size_t bench_vmas(void)
{
    FILE *f = fopen("/proc/self/maps", "re");
    if (!f)
        return 0;
    size_t n = 0;
    int c;
    while ((c = getc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

bool bench_need(const char *bench, const char *what, bool have)
{
    if (!have) {
        char note[256];
        snprintf(note, sizeof note, "skipped: %s is not in this build of the library", what);
        bench_note(bench, "skipped", note);
    }
    return have;
}

bool bench_have_heap(void)
{
    return ARENA_HAVE(arena_create) && ARENA_HAVE(arena_destroy) && ARENA_HAVE(arena_alloc) &&
           ARENA_HAVE(arena_mark) && ARENA_HAVE(arena_collect) && ARENA_HAVE(arena_forward) &&
           ARENA_HAVE(arena_page_size) && ARENA_HAVE(arena_heap_view) &&
           ARENA_HAVE(arena_view_base) && ARENA_HAVE(arena_view_slots);
}

arena_t *bench_arena(const char *bench, size_t reserve, int tracker)
{
    arena_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.reserve = reserve;
    cfg.tracker = tracker;
    arena_t *a = NULL;
    int err = arena_create(&a, &cfg);
    if (err) {
        char note[256];
        snprintf(note, sizeof note, "arena_create failed: %s", arena_have_strerror(err));
        bench_note(bench, "skipped", note);
        return NULL;
    }
    return a;
}
