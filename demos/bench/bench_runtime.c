/*
 * bench_runtime.c -- the arena under a real runtime: arena-lisp (built next to
 * arena-bench) runs its programs with --gc=arena and --gc=semispace and reports
 * --stats as a JSON line ({"total_ms","gc_pause_ms","peak_rss_kb",...}); rows give total
 * time, GC pause and peak RSS, arena (and arena --generational, with each write barrier)
 * against semispace. The programs are the .scm files
 * of demos/lisp-programs (or $ARENA_LISP_PROGRAMS). Without arena-lisp, its programs or
 * its arena collector, the row is a note.
 */
#include "bench.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef ARENA_SOURCE_DIR
#define ARENA_SOURCE_DIR "."
#endif

enum { F_TOTAL, F_PAUSE, F_RSS, F_N };

/* Run one program under one collector; fills f[] from the stats line. */
static int run_lisp(const char *lisp, const char *prog, const char *gc, double f[F_N],
                    char *why, size_t whylen)
{
    char cmd[4096];
    /* The stats line follows the program's own output on stdout. */
    snprintf(cmd, sizeof cmd, "'%s' --gc=%s --stats '%s' 2>/dev/null", lisp, gc, prog);
    for (double *x = f; x < f + F_N; x++)
        *x = NAN;
    FILE *p = popen(cmd, "r");
    if (!p) {
        snprintf(why, whylen, "cannot run %s", lisp);
        return -1;
    }
    char line[8192];
    bool found = false;
    while (fgets(line, sizeof line, p)) {
        if (line[0] != '{')
            continue;
        f[F_TOTAL] = bench_json_number(line, "total_ms");
        f[F_PAUSE] = bench_json_number(line, "gc_pause_ms");
        f[F_RSS] = bench_json_number(line, "peak_rss_kb");
        found = !isnan(f[F_TOTAL]);
    }
    int status = pclose(p);
    if (!found || status != 0) {
        snprintf(why, whylen, "%s --gc=%s --stats %s: %s", lisp, gc, prog,
                 found ? "exited with an error" : "printed no stats line");
        return -1;
    }
    return 0;
}

/* A Scheme program meant to run to completion: a .scm file without a .err file next to
 * it (error.scm, circular.scm, session.scm: the tests expect their errors). */
static bool is_program(const char *dir, const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot || strcmp(dot, ".scm"))
        return false;
    char err[8192];
    int n = snprintf(err, sizeof err, "%s/%.*s.err", dir, (int)(dot - name), name);
    return n > 0 && (size_t)n < sizeof err && access(err, F_OK) != 0;
}

/* --quick runs only the smallest program. */
static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

/* The collectors compared with semispace: the arena, and the arena with generations:
 * with arena-lisp's default write barrier (card marking: the _generational rows, which
 * carry the target) and with page tracking as the barrier (_generational_pages, for
 * comparison, no target). */
static const struct {
    const char *args, *suffix;
} variants[] = {{"arena", ""},
                {"arena --generational", "_generational"},
                {"arena --generational --barrier=pages", "_generational_pages"}};
#define NVARIANTS (sizeof variants / sizeof variants[0])

static void one_program(const struct bench_opts *o, const char *lisp, const char *path,
                        const char *name)
{
    static const char *const metrics[F_N] = {"total_time", "gc_pause", "peak_rss"};
    static const char *const units[F_N] = {"ms", "ms", "KiB"};
    char bench[256], why[512], metric[64];
    snprintf(bench, sizeof bench, "runtime.%.*s", (int)(strrchr(name, '.') - name), name);
    size_t reps = (size_t)o->repeat;
    /* v[(variant * F_N + figure) * reps + r]; the semispace baseline is variant NVARIANTS. */
    double *v = malloc((NVARIANTS + 1) * F_N * reps * sizeof *v);
    bool failed[NVARIANTS + 1] = {false};
    for (size_t r = 0; r < reps; r++) {
        for (size_t k = 0; k <= NVARIANTS; k++) {
            double f[F_N];
            bench_progress("%s %zu/%zu", bench, r + 1, reps);
            if (failed[k] || run_lisp(lisp, path, k < NVARIANTS ? variants[k].args : "semispace",
                                      f, why, sizeof why)) {
                if (!failed[k])
                    bench_note(bench, "failed", why);
                failed[k] = true;
                continue;
            }
            for (int m = 0; m < F_N; m++)
                v[(k * F_N + (size_t)m) * reps + r] = f[m];
        }
    }
    for (size_t k = 0; k < NVARIANTS && !failed[NVARIANTS]; k++) {
        if (failed[k])
            continue;
        for (size_t m = 0; m < F_N; m++) {
            snprintf(metric, sizeof metric, "%s%s", metrics[m], variants[k].suffix);
            bench_row(bench, metric, bench_median(v + (k * F_N + m) * reps, (int)reps), units[m],
                      bench_median(v + (NVARIANTS * F_N + m) * reps, (int)reps));
        }
    }
    free(v);
}

int bench_runtime(const struct bench_opts *o)
{
    char lisp[4096];
    snprintf(lisp, sizeof lisp, "%s/arena-lisp", o->self);
    if (access(lisp, X_OK)) {
        bench_note("runtime", "skipped", "arena-lisp is not built next to arena-bench");
        return 0;
    }
    const char *env = getenv("ARENA_LISP_PROGRAMS");
    char dirs[3][4096];
    snprintf(dirs[0], sizeof dirs[0], "%s", env ? env : "");
    snprintf(dirs[1], sizeof dirs[1], "%s/demos/lisp-programs", ARENA_SOURCE_DIR);
    snprintf(dirs[2], sizeof dirs[2], "%s/../demos/lisp-programs", o->self);
    int ran = 0;
    for (int d = 0; d < 3 && !ran; d++) {
        /* Sorted order keeps the rows in the same order from run to run. */
        struct dirent **names;
        int n = dirs[d][0] ? scandir(dirs[d], &names, NULL, alphasort) : -1;
        char path[8192], smallest[8192] = "";
        off_t smallest_size = -1;
        for (int i = 0; i < n; i++) {
            if (is_program(dirs[d], names[i]->d_name) &&
                snprintf(path, sizeof path, "%s/%s", dirs[d], names[i]->d_name) < (int)sizeof path) {
                off_t size = file_size(path);
                if (!o->quick) {
                    one_program(o, lisp, path, names[i]->d_name);
                    ran++;
                } else if (size >= 0 && (smallest_size < 0 || size < smallest_size)) {
                    smallest_size = size;
                    memcpy(smallest, path, sizeof path);
                }
            }
            free(names[i]);
        }
        if (n >= 0)
            free(names);
        if (smallest[0]) {
            one_program(o, lisp, smallest, strrchr(smallest, '/') + 1);
            ran++;
        }
    }
    if (!ran)
        bench_note("runtime", "skipped",
                   "no arena-lisp programs found (set ARENA_LISP_PROGRAMS to their directory)");
    return 0;
}
