/* util.c -- rows, timing, medians and memory probes shared by the arena-bench rows. */
#include "bench.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static void print_number(FILE *f, double v)
{
    if (isnan(v) || isinf(v))
        fputs("null", f);
    else if (v == floor(v) && fabs(v) < 1e15)
        fprintf(f, "%.0f", v);
    else
        fprintf(f, "%.6g", v);
}

/* Bench and metric names are our own identifiers; notes may hold anything printable. */
static void print_string(FILE *f, const char *s)
{
    putc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            putc(c, f);
    }
    putc('"', f);
}

/* The targets of issue 11 and the README (ratio <= max). A bench ending in '*' is a prefix. */
static const struct {
    const char *bench, *metric;
    double max;
} targets[] = {
    {"compact.run1", "pause_per_live_page", 1.0},
    {"compact.run1", "pause_vs_warm_copy", 1.5},
    {"compact.run1", "pause_touch_per_live_page", 1.1},
    {"compact.run2m", "pause_per_live_page", 0.1},
    {"compact.run2m", "pause_touch_per_live_page", 0.6},
    {"alloc", "ns_per_object_16_256", 0.5},
    {"alloc", "ns_per_object_steady", 0.3},
    {"release.runs", "resident_after_collect", 1.05},
    {"release.scattered", "resident_after_collect", 1.25},
    {"track.sigsegv", "ns_per_first_write", 2.5},
    {"track.uffd", "ns_per_first_write", 1.3},
    {"runtime.*", "gc_pause", 2.0},
    {"runtime.*", "total_time", 1.2},
    {"runtime.*", "gc_pause_generational", 1.0},
    {"peer.conservative", "peak_rss", 0.8},
    {"mesh.pinned", "resident_per_live", 1.3},
    {"peer.*", "total_time", 1.0},
    {"peer.*", "max_pause", 1.0},
    {"peer.*", "peak_rss", 1.0},
    {"peer.*", "system_time", 3.0},
};

double bench_target(const char *bench, const char *metric)
{
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        const char *t = targets[i].bench;
        size_t n = strlen(t);
        bool match = t[n - 1] == '*' ? !strncmp(bench, t, n - 1) : !strcmp(bench, t);
        if (match && !strcmp(metric, targets[i].metric))
            return targets[i].max;
    }
    return NAN;
}

static struct bench_rec *recs;
static size_t nrecs, cap_recs;
static FILE *json_copy;
static bool json_on_stdout = true;
double bench_fault_ns = NAN;

void bench_output(bool to_stdout, FILE *copy)
{
    json_on_stdout = to_stdout;
    json_copy = copy;
}

const struct bench_rec *bench_records(size_t *n)
{
    *n = nrecs;
    return recs;
}

static void print_rec(FILE *f, const struct bench_rec *r)
{
    fputs("{\"bench\":", f);
    print_string(f, r->bench);
    fputs(",\"metric\":", f);
    print_string(f, r->metric);
    fputs(",\"value\":", f);
    print_number(f, r->value);
    fputs(",\"unit\":", f);
    if (r->unit[0])
        print_string(f, r->unit);
    else
        fputs("null", f);
    fputs(",\"baseline\":", f);
    print_number(f, r->baseline);
    fputs(",\"ratio\":", f);
    print_number(f, r->ratio);
    if (!isnan(r->target)) {
        fputs(",\"target\":", f);
        print_number(f, r->target);
        fputs(",\"met\":", f);
        fputs(isnan(r->ratio) ? "null" : r->ratio <= r->target ? "true" : "false", f);
    }
    fputs(",\"fault_ns\":", f);
    print_number(f, r->fault_ns);
    if (r->note[0]) {
        fputs(",\"note\":", f);
        print_string(f, r->note);
    }
    fputs("}\n", f);
    fflush(f);
}

void bench_record(const struct bench_rec *r)
{
    if (nrecs == cap_recs) {
        size_t c = cap_recs ? 2 * cap_recs : 256;
        struct bench_rec *n = realloc(recs, c * sizeof *n);
        if (!n)
            return; /* the row is still printed; only the summary misses it */
        recs = n;
        cap_recs = c;
    }
    recs[nrecs++] = *r;
}

static void emit(const struct bench_rec *r)
{
    bench_record(r);
    if (json_on_stdout)
        print_rec(stdout, r);
    if (json_copy)
        print_rec(json_copy, r);
}

static void fill(struct bench_rec *r, const char *bench, const char *metric)
{
    memset(r, 0, sizeof *r);
    snprintf(r->bench, sizeof r->bench, "%s", bench);
    snprintf(r->metric, sizeof r->metric, "%s", metric);
    r->target = bench_target(bench, metric);
    r->fault_ns = bench_fault_ns;
}

void bench_row_note(const char *bench, const char *metric, double value, const char *unit,
                    double baseline, const char *note)
{
    struct bench_rec r;
    fill(&r, bench, metric);
    r.value = value;
    snprintf(r.unit, sizeof r.unit, "%s", unit);
    r.baseline = baseline;
    r.ratio = isnan(baseline) || baseline == 0 ? NAN : value / baseline;
    if (note)
        snprintf(r.note, sizeof r.note, "%s", note);
    else if (isnan(value))
        snprintf(r.note, sizeof r.note, "not measured: the library call failed or is missing");
    emit(&r);
}

void bench_row(const char *bench, const char *metric, double value, const char *unit,
               double baseline)
{
    bench_row_note(bench, metric, value, unit, baseline, NULL);
}

void bench_note(const char *bench, const char *metric, const char *note)
{
    struct bench_rec r;
    fill(&r, bench, metric);
    r.value = r.baseline = r.ratio = NAN;
    snprintf(r.note, sizeof r.note, "%s", note);
    emit(&r);
}

/* Minor fault cost: the first write to each page of a fallocated memfd through a fresh
 * MAP_SHARED mapping (the page is in the page cache; only the page table is missing).
 * Median over 5 mappings of the same file, ns per page. */
double bench_measure_fault(size_t pages)
{
    size_t os_page = (size_t)sysconf(_SC_PAGESIZE), len = pages * os_page;
    int fd = memfd_create("arena-bench-fault", MFD_CLOEXEC);
    if (fd < 0)
        return NAN;
    double v[5];
    int n = 0;
    if (fallocate(fd, 0, 0, (off_t)len) == 0) {
        for (; n < 5; n++) {
            char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            if (p == MAP_FAILED)
                break;
            uint64_t t0 = bench_now_ns();
            for (size_t i = 0; i < len; i += os_page)
                *(volatile char *)(p + i) = 1;
            v[n] = (double)(bench_now_ns() - t0) / (double)pages;
            munmap(p, len);
        }
    }
    close(fd);
    return bench_median(v, n);
}

/* The number after "key": in one of our JSON lines; NAN for null or a missing key. */
double bench_json_number(const char *line, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(line, pat);
    if (!p)
        return NAN;
    p += strlen(pat);
    while (*p == ' ')
        p++;
    char *end;
    double v = strtod(p, &end);
    return end == p ? NAN : v;
}

/* The string after "key": (escapes undone) into out; false when missing or not a string. */
bool bench_json_string(const char *line, const char *key, char *out, size_t outlen)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *p = strstr(line, pat);
    if (!p || !outlen)
        return false;
    size_t n = 0;
    for (p += strlen(pat); *p && *p != '"'; p++) {
        char c = *p;
        if (c == '\\' && p[1] == 'u' && p[2] && p[3] && p[4] && p[5]) {
            c = (char)strtol((char[]){p[4], p[5], 0}, NULL, 16);
            p += 5;
        } else if (c == '\\' && p[1]) {
            c = *++p;
        }
        if (n + 1 < outlen)
            out[n++] = c;
    }
    out[n] = 0;
    return true;
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
