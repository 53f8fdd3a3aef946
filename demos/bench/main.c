/*
 * arena-bench -- measures what remapping file pages buys against the obvious baseline,
 * both in the same run: one JSON object per line on stdout (see bench.h).
 *
 *   arena-bench [--only NAME] [--heap SIZE] [--quick] [--repeat N]
 *
 * Rows: compact, alloc, release, track, fork, runtime, conservative. Targets are reported by the
 * README's Performance section, never asserted here: timing depends on the machine.
 */
#include "bench.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct {
    const char *name;
    int (*run)(const struct bench_opts *);
} rows[] = {
    {"compact", bench_compact}, {"alloc", bench_alloc}, {"release", bench_release},
    {"track", bench_track},     {"fork", bench_fork},   {"runtime", bench_runtime},
    {"conservative", bench_conservative},
};

static int parse_size(const char *s, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s)
        return -1;
    switch (*end) {
    case 'k': case 'K': v <<= 10; end++; break;
    case 'm': case 'M': v <<= 20; end++; break;
    case 'g': case 'G': v <<= 30; end++; break;
    default: break;
    }
    if (*end == 'i' || *end == 'B')
        end += strspn(end, "iB");
    if (*end || v == 0)
        return -1;
    *out = (size_t)v;
    return 0;
}

static void usage(FILE *f)
{
    fputs("usage: arena-bench [--only NAME] [--heap SIZE] [--quick] [--repeat N]\n"
          "  rows: compact alloc release track fork runtime conservative\n"
          "  SIZE accepts K, M, G suffixes (default 256M; --quick uses 16M)\n", f);
}

int main(int argc, char **argv)
{
    struct bench_opts o = {.heap = 0, .repeat = 1};
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(arg, "--quick")) {
            o.quick = true;
        } else if (!strcmp(arg, "--only") && val) {
            o.only = val;
            i++;
        } else if (!strcmp(arg, "--heap") && val) {
            if (parse_size(val, &o.heap)) {
                fprintf(stderr, "arena-bench: bad --heap %s\n", val);
                return 64;
            }
            i++;
        } else if (!strcmp(arg, "--repeat") && val) {
            o.repeat = atoi(val);
            if (o.repeat < 1 || o.repeat > 1000) {
                fprintf(stderr, "arena-bench: bad --repeat %s\n", val);
                return 64;
            }
            i++;
        } else if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "arena-bench: unknown option or missing value: %s\n", arg);
            usage(stderr);
            return 64; /* a bad command line; 2 would say the VMA budget refused a layout */
        }
    }
    if (!o.heap)
        o.heap = o.quick ? (size_t)16 << 20 : (size_t)256 << 20;

    static char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    self[n > 0 ? n : 0] = 0;
    o.self = n > 0 ? dirname(self) : ".";

    bool found = false;
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        if (o.only && strcmp(o.only, rows[r].name))
            continue;
        found = true;
        bench_progress("%s ...", rows[r].name);
        rows[r].run(&o);
    }
    bench_progress("%s", "");
    if (!found) {
        fprintf(stderr, "arena-bench: no row named %s\n", o.only);
        usage(stderr);
        return 64;
    }
    return 0;
}
