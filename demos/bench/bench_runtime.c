/*
 * bench_runtime.c -- the arena under a real runtime: arena-lisp (built next to
 * arena-bench) runs its programs with --gc=arena and --gc=semispace and reports
 * --stats as a JSON line; rows give total time, GC pause and peak RSS, arena against
 * semispace. Without arena-lisp (or its programs) the row is a note.
 */
#include "bench.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef ARENA_SOURCE_DIR
#define ARENA_SOURCE_DIR "."
#endif

/* The number after "key": in a JSON line, or NAN. */
static double json_number(const char *line, const char *key)
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

/* The first of several possible names the stats line uses for one figure. */
static double json_any(const char *line, const char *const *keys)
{
    for (; *keys; keys++) {
        double v = json_number(line, *keys);
        if (!isnan(v))
            return v;
    }
    return NAN;
}

static const char *const total_keys[] = {"total_ns", "time_ns", "elapsed_ns", "wall_ns", NULL};
static const char *const pause_keys[] = {"gc_pause_ns", "gc_ns", "pause_ns", "gc_time_ns", NULL};
static const char *const rss_keys[] = {"peak_rss", "peak_rss_bytes", "max_rss", "maxrss", NULL};

enum { F_TOTAL, F_PAUSE, F_RSS, F_N };

/* Run one program under one collector; fills f[] from the stats line. */
static int run_lisp(const char *lisp, const char *prog, const char *gc, double f[F_N],
                    char *why, size_t whylen)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' --gc=%s --stats '%s' 2>&1 >/dev/null", lisp, gc, prog);
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
        f[F_TOTAL] = json_any(line, total_keys);
        f[F_PAUSE] = json_any(line, pause_keys);
        f[F_RSS] = json_any(line, rss_keys);
        found = true;
    }
    int status = pclose(p);
    if (!found || status != 0) {
        snprintf(why, whylen, "%s --gc=%s --stats %s: %s", lisp, gc, prog,
                 found ? "exited with an error" : "printed no stats line");
        return -1;
    }
    return 0;
}

static bool is_program(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && (!strcmp(dot, ".lisp") || !strcmp(dot, ".lsp") || !strcmp(dot, ".scm"));
}

static void one_program(const struct bench_opts *o, const char *lisp, const char *path,
                        const char *name)
{
    char bench[256], why[512];
    snprintf(bench, sizeof bench, "runtime.%.*s", (int)(strrchr(name, '.') - name), name);
    int reps = o->repeat;
    double *v = malloc((size_t)reps * F_N * 2 * sizeof *v), *b = v + (size_t)reps * F_N;
    for (int r = 0; r < reps; r++) {
        double fa[F_N], fs[F_N];
        bench_progress("%s %d/%d", bench, r + 1, reps);
        if (run_lisp(lisp, path, "arena", fa, why, sizeof why) ||
            run_lisp(lisp, path, "semispace", fs, why, sizeof why)) {
            bench_note(bench, "failed", why);
            free(v);
            return;
        }
        for (int k = 0; k < F_N; k++) {
            v[k * reps + r] = fa[k];
            b[k * reps + r] = fs[k];
        }
    }
    bench_row(bench, "total_time", bench_median(v, reps), "ns", bench_median(b, reps));
    bench_row(bench, "gc_pause", bench_median(v + reps, reps), "ns", bench_median(b + reps, reps));
    bench_row(bench, "peak_rss", bench_median(v + 2 * reps, reps), "bytes",
              bench_median(b + 2 * reps, reps));
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
    snprintf(dirs[1], sizeof dirs[1], "%s/demos/lisp/programs", ARENA_SOURCE_DIR);
    snprintf(dirs[2], sizeof dirs[2], "%s/../demos/lisp/programs", o->self);
    int ran = 0;
    for (int d = 0; d < 3 && !ran; d++) {
        DIR *dir = dirs[d][0] ? opendir(dirs[d]) : NULL;
        if (!dir)
            continue;
        /* Sorted order keeps the rows in the same order from run to run. */
        struct dirent **names;
        closedir(dir);
        int n = scandir(dirs[d], &names, NULL, alphasort);
        for (int i = 0; i < n; i++) {
            if (is_program(names[i]->d_name) && (!o->quick || ran == 0)) {
                char path[8192];
                if (snprintf(path, sizeof path, "%s/%s", dirs[d], names[i]->d_name) <
                    (int)sizeof path) {
                    one_program(o, lisp, path, names[i]->d_name);
                    ran++;
                }
            }
            free(names[i]);
        }
        if (n > 0)
            free(names);
    }
    if (!ran)
        bench_note("runtime", "skipped",
                   "no arena-lisp programs found (set ARENA_LISP_PROGRAMS to their directory)");
    return 0;
}
