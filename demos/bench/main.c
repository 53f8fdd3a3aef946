/*
 * arena-bench -- measures what remapping file pages buys against the obvious baseline,
 * both in the same run: one JSON object per line on stdout (see bench.h).
 *
 *   arena-bench [--only GROUP] [--heap SIZE] [--quick] [--repeat N]
 *               [--summary] [--svg FILE] [--json FILE] [--from FILE]
 *
 * Rows: machine, compact, alloc, release, track, fork, runtime, peer, mesh. Each row says
 * whether it meets its target; nothing is asserted here: timing depends on the machine.
 */
#include "bench.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

static const struct {
    const char *name;
    int (*run)(const struct bench_opts *);
} rows[] = {
    {"compact", bench_compact}, {"alloc", bench_alloc}, {"release", bench_release},
    {"track", bench_track},     {"fork", bench_fork},   {"runtime", bench_runtime},
    {"peer", bench_peer},       {"mesh", bench_mesh},
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
    fputs("usage: arena-bench [--only GROUP] [--heap SIZE] [--quick] [--repeat N]\n"
          "                   [--summary] [--svg FILE] [--json FILE] [--from FILE]\n"
          "  GROUP: compact alloc release track fork runtime peer mesh (and machine: the minor-fault\n"
          "  cost every row carries as fault_ns); --only GROUP measures that group's rows\n"
          "  SIZE accepts K, M, G suffixes (default 256M; --quick uses 16M)\n"
          "  --quick      small sizes for a smoke test: not the README's conditions\n"
          "  --repeat N   run every measurement N times and report medians\n"
          "  --summary    print a Markdown table (ratio, target, met or missed) instead of JSON\n"
          "  --svg FILE   write a chart of the ratios against their targets (log scale)\n"
          "  --json FILE  also write the JSON rows to FILE\n"
          "  --from FILE  measure nothing: read the JSON rows of an earlier run and print their\n"
          "               table (as --summary does) unless --svg FILE asks for the chart alone\n"
          "Exit status: 0 the rows were measured and printed (a row that cannot be measured is\n"
          "a note, not a failure), 1 a file could not be read or written, 64 bad usage.\n", f);
}

/* The machine row: minor-fault cost, with kernel, CPUs and date as its note. */
static void machine_row(bool quick)
{
    bench_fault_ns = bench_measure_fault(quick ? 1024 : 8192);
    struct utsname u;
    char note[256], date[32] = "";
    time_t now = time(NULL);
    strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&now));
    if (uname(&u))
        snprintf(u.release, sizeof u.release, "?");
    snprintf(note, sizeof note, "Linux %s %s, %ld CPUs, %s%s", u.release, u.machine,
             sysconf(_SC_NPROCESSORS_ONLN), date, quick ? ", --quick sizes" : "");
    bench_row_note("machine", "minor_fault", bench_fault_ns, "ns", NAN, note);
}

/* Rows of an earlier run (one JSON object per line, as printed by bench_row). */
static int read_rows(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        struct bench_rec r;
        memset(&r, 0, sizeof r);
        if (!bench_json_string(line, "bench", r.bench, sizeof r.bench) ||
            !bench_json_string(line, "metric", r.metric, sizeof r.metric))
            continue;
        bench_json_string(line, "unit", r.unit, sizeof r.unit);
        bench_json_string(line, "note", r.note, sizeof r.note);
        r.value = bench_json_number(line, "value");
        r.baseline = bench_json_number(line, "baseline");
        r.ratio = bench_json_number(line, "ratio");
        r.target = bench_json_number(line, "target");
        r.fault_ns = bench_json_number(line, "fault_ns");
        bench_record(&r);
    }
    fclose(f);
    return 0;
}

int main(int argc, char **argv)
{
    struct bench_opts o = {.heap = 0, .repeat = 1};
    bool summary = false;
    const char *svg = NULL, *json = NULL, *from = NULL;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(arg, "--quick")) {
            o.quick = true;
        } else if (!strcmp(arg, "--summary")) {
            summary = true;
        } else if (!strcmp(arg, "--svg") && val) {
            svg = argv[++i];
        } else if (!strcmp(arg, "--json") && val) {
            json = argv[++i];
        } else if (!strcmp(arg, "--from") && val) {
            from = argv[++i];
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

    if (o.only && strcmp(o.only, "machine")) {
        bool known = false;
        for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++)
            known |= !strcmp(o.only, rows[r].name);
        if (!known) {
            fprintf(stderr, "arena-bench: no row named %s\n", o.only);
            usage(stderr);
            return 64;
        }
    }
    /* An earlier run's rows are read for a person: print their table unless only the
     * chart was asked for (echoing the JSON back would repeat the file). */
    if (from && !svg)
        summary = true;
    FILE *copy = NULL;
    if (json && !(copy = fopen(json, "we"))) {
        fprintf(stderr, "arena-bench: cannot write %s\n", json);
        return 1;
    }
    bench_output(!summary, copy);

    if (from) {
        if (read_rows(from)) {
            fprintf(stderr, "arena-bench: cannot read %s\n", from);
            return 1;
        }
    } else {
        machine_row(o.quick);
        for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
            if (o.only && strcmp(o.only, rows[r].name))
                continue;
            bench_progress("%s ...", rows[r].name);
            rows[r].run(&o);
        }
        bench_progress("%s", "");
    }
    if (copy && fclose(copy)) {
        fprintf(stderr, "arena-bench: cannot write %s\n", json);
        return 1;
    }
    if (summary)
        bench_summary(stdout, o.quick);
    if (svg && bench_svg(svg, o.quick)) {
        fprintf(stderr, "arena-bench: cannot write %s\n", svg);
        return 1;
    }
    return 0;
}
